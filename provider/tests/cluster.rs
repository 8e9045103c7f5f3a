//! Cluster mode against the in-process API server and in-process announcers (real gRPC
//! servers with mandatory client certificates, see `support/announcer.rs`): discovery from
//! EndpointSlices, one owner per layer2 address, the Announced condition and Events, moves
//! when a node becomes NotReady, full sets after an announcer restart, no change on a
//! provider restart, and generations that keep increasing across leaders.

mod support;

use std::time::Duration;

use kube::Client;
use proto::announcer::v1 as pb;
use support::announcer::{FakeAnnouncer, Pki, register_nodes, set_node_ready};
use support::*;
use test_apiserver::TestApiServer;

const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];

/// Nodes node-1..3, Ready, and one EndpointSlice per announcer.
async fn cluster(client: &Client, announcers: &[FakeAnnouncer]) {
    let names: Vec<String> = NODES.iter().map(|n| n.to_string()).collect();
    register_nodes(client, &names, announcers).await;
}

/// Three in-process announcers, registered as node-1..3.
async fn three_announcers(client: &Client, pki: &Pki) -> Vec<FakeAnnouncer> {
    let announcers = vec![
        FakeAnnouncer::start(pki).await,
        FakeAnnouncer::start(pki).await,
        FakeAnnouncer::start(pki).await,
    ];
    cluster(client, &announcers).await;
    announcers
}

fn announced(svc: &k8s_openapi::api::core::v1::Service) -> Option<(String, String, String)> {
    svc.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "ferrolb.io/Announced")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn ingress(svc: &k8s_openapi::api::core::v1::Service) -> Vec<String> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|i| i.iter().filter_map(|i| i.ip.clone()).collect())
        .unwrap_or_default()
}

/// Which fakes hold `address`, by node name.
fn holders(announcers: &[FakeAnnouncer], address: &str) -> Vec<&'static str> {
    NODES
        .iter()
        .zip(announcers)
        .filter(|(_, f)| f.addresses().iter().any(|a| a == address))
        .map(|(n, _)| *n)
        .collect()
}

async fn wait_announced(client: &Client, name: &str) -> (String, String) {
    eventually(&format!("{name} announced"), || async {
        let svc = get(client, "default", name).await?;
        let (status, _, message) = announced(&svc)?;
        let ips = ingress(&svc);
        (status == "True" && !ips.is_empty()).then(|| (ips.join(","), message))
    })
    .await
}

#[tokio::test]
async fn a_layer2_service_is_announced_by_one_node_and_moves_when_it_is_not_ready() {
    let server = TestApiServer::new();
    let client = server.client();
    let pki = Pki::new();
    let announcers = three_announcers(&client, &pki).await;
    set_pools(&client, &[("range-global", "192.0.2.100-192.0.2.110")]).await;
    let running = start_with_tls(&server, &["--announcers=cluster"], Some(pki.client()));
    create(&client, "default", &lb("web")).await;

    let (address, message) = wait_announced(&client, "web").await;
    let owners = holders(&announcers, &address);
    assert_eq!(owners.len(), 1, "exactly one node answers: {owners:?}");
    let owner = owners[0];
    assert_eq!(
        message,
        format!("{address} by {owner} (answered in layer2 mode)")
    );
    let owner_index = NODES.iter().position(|n| *n == owner).expect("node");
    let entry = announcers[owner_index]
        .state
        .lock()
        .expect("lock")
        .set
        .values()
        .next()
        .cloned()
        .expect("entry");
    assert_eq!(entry.candidates.len(), 3, "{entry:?}");
    assert_eq!(entry.candidates[0], owner);
    assert_eq!(entry.labels["service"], "default/web");
    assert_eq!(
        announcers[owner_index]
            .syncs()
            .last()
            .map(|s| s.node.clone()),
        Some(owner.to_string())
    );
    let events = events_for(&server, "web");
    assert!(
        events.iter().any(|(reason, note)| reason == "Announced"
            && note == &format!("{address} announced by {owner} (layer2)")),
        "{events:?}"
    );
    assert!(running.metrics.announcers_connected.get() == 3);

    set_node_ready(&client, owner, false).await;
    let next = eventually("address moved", || async {
        let now = holders(&announcers, &address);
        (now.len() == 1 && now[0] != owner).then(|| now[0])
    })
    .await;
    let (_, message) = eventually("condition names the new node", || async {
        let (ips, message) = wait_announced(&client, "web").await;
        message.contains(next).then_some((ips, message))
    })
    .await;
    assert_eq!(
        message,
        format!("{address} by {next} (answered in layer2 mode)")
    );
    eventually("a Moved Event says why", || async {
        events_for(&server, "web")
            .iter()
            .any(|(reason, note)| {
                reason == "Moved"
                    && note
                        == &format!(
                            "{address} moved from {owner} to {next}: {owner}: it is not Ready"
                        )
            })
            .then_some(())
    })
    .await;

    delete(&client, "default", "web").await;
    eventually("withdrawn everywhere", || async {
        announcers
            .iter()
            .all(|a| a.addresses().is_empty())
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn restarts_of_the_provider_change_nothing_and_a_restarted_announcer_gets_its_set() {
    let server = TestApiServer::new();
    let client = server.client();
    let pki = Pki::new();
    let mut announcers = three_announcers(&client, &pki).await;
    set_pools(&client, &[("range-global", "192.0.2.100-192.0.2.130")]).await;
    let flags = ["--announcers=cluster"];
    let running = start_with_tls(&server, &flags, Some(pki.client()));
    for i in 0..12 {
        create(&client, "default", &lb(&format!("web-{i}"))).await;
    }
    for i in 0..12 {
        wait_announced(&client, &format!("web-{i}")).await;
    }
    let held: Vec<Vec<String>> = announcers.iter().map(FakeAnnouncer::addresses).collect();
    assert_eq!(held.iter().map(Vec::len).sum::<usize>(), 12);
    let before: Vec<usize> = announcers.iter().map(|a| a.syncs().len()).collect();
    drop(running);
    // The next process starts later, so its generations are higher (start time in ms).
    tokio::time::sleep(Duration::from_millis(5)).await;
    let running = start_with_tls(&server, &flags, Some(pki.client()));
    for (i, announcer) in announcers.iter().enumerate() {
        let syncs = eventually("the new process syncs", || async {
            let syncs = announcer.syncs();
            (syncs.len() > before[i]).then_some(syncs)
        })
        .await;
        for sync in &syncs[before[i]..] {
            assert_eq!(
                (sync.added, sync.removed),
                (0, 0),
                "a restart changed {}: {sync:?}",
                NODES[i]
            );
        }
        assert!(syncs[before[i]].generation > syncs[before[i] - 1].generation);
        assert!(announcer.state.lock().expect("lock").refused.is_empty());
    }
    let after: Vec<Vec<String>> = announcers.iter().map(FakeAnnouncer::addresses).collect();
    assert_eq!(after, held);

    // An announcer that restarts (empty, generation 0) gets its whole set at once.
    let busiest = (0..3).max_by_key(|i| held[*i].len()).expect("one");
    let restarted = announcers.remove(busiest).restart(&pki).await;
    announcers.insert(busiest, restarted);
    eventually("the restarted announcer holds its set again", || async {
        (announcers[busiest].addresses() == held[busiest]).then_some(())
    })
    .await;
    assert_eq!(
        announcers[busiest].syncs().len(),
        1,
        "one Sync brings it all back"
    );
    drop(running);
}

#[tokio::test]
async fn a_deposed_leaders_late_sync_is_refused() {
    let server = TestApiServer::new();
    let client = server.client();
    let pki = Pki::new();
    let announcers = three_announcers(&client, &pki).await;
    set_pools(&client, &[("range-global", "192.0.2.100-192.0.2.110")]).await;
    let lease = [
        "--announcers=cluster",
        "--leader-elect=true",
        "--lease-duration=2s",
        "--renew-deadline=1500ms",
        "--retry-period=200ms",
    ];
    let mut a_flags = lease.to_vec();
    a_flags.push("--identity=replica-a");
    let a = start_with_tls(&server, &a_flags, Some(pki.client()));
    create(&client, "default", &lb("web")).await;
    let (address, _) = wait_announced(&client, "web").await;
    let owner = NODES
        .iter()
        .position(|n| holders(&announcers, &address).contains(n))
        .expect("an owner");
    let deposed = announcers[owner].syncs().last().cloned().expect("a sync");
    // Replica A stops without releasing the Lease; B takes over once it expires.
    drop(a);
    let mut b_flags = lease.to_vec();
    b_flags.push("--identity=replica-b");
    let _b = start_with_tls(&server, &b_flags, Some(pki.client()));
    let newer = eventually("replica B syncs", || async {
        announcers[owner]
            .syncs()
            .last()
            .filter(|s| s.generation != deposed.generation)
            .cloned()
    })
    .await;
    assert!(
        newer.generation > deposed.generation,
        "{newer:?} after {deposed:?}"
    );
    assert_eq!(
        (newer.added, newer.removed),
        (0, 0),
        "the hand-over changed nothing"
    );

    // A's late Sync (an empty set under its old generation) must not undo B's.
    let channel = tonic::transport::Endpoint::from_shared(format!(
        "https://127.0.0.1:{}",
        announcers[owner].addr.port()
    ))
    .expect("uri")
    .tls_config(
        tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&pki.ca))
            .identity(tonic::transport::Identity::from_pem(
                &pki.client_cert,
                &pki.client_key,
            ))
            .domain_name("ferrolb-announcer"),
    )
    .expect("tls")
    .connect()
    .await
    .expect("connect");
    let mut late = pb::announcer_client::AnnouncerClient::new(channel);
    let refused = late
        .sync(pb::SyncRequest {
            generation: deposed.generation,
            announcements: Vec::new(),
            node: NODES[owner].to_string(),
            ..Default::default()
        })
        .await
        .expect_err("stale Sync refused");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert_eq!(holders(&announcers, &address), [NODES[owner]]);
}
