//! Cluster mode against the in-process API server and in-process announcers (real gRPC
//! servers with mandatory client certificates, see `support/announcer.rs`): discovery from
//! EndpointSlices, one owner per layer2 address, the Announced condition and Events, moves
//! when a node becomes NotReady, full sets after an announcer restart, no change on a
//! provider restart, and generations that keep increasing across leaders; and the provider's
//! side of announcer failover (issue #11): every candidate gets the entry, its peers and the
//! heartbeat key from the Secret (the same for every leader), a takeover the announcers
//! decide is adopted without a second move, and without a readable Secret only the first
//! candidate gets the entry, with no key.

mod support;

use std::time::Duration;

use kube::Client;
use proto::announcer::v1 as pb;
use support::announcer::{Election, FakeAnnouncer, Pki, register_nodes, set_node_ready};
use support::*;
use test_apiserver::{FaultRule, TestApiServer};

const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];

/// Nodes node-1..3, Ready, and one EndpointSlice per announcer.
async fn cluster(client: &Client, announcers: &[FakeAnnouncer]) {
    let names: Vec<String> = NODES.iter().map(|n| n.to_string()).collect();
    register_nodes(client, &names, announcers).await;
}

/// Three in-process announcers, registered as node-1..3.
async fn three_announcers(client: &Client, pki: &Pki) -> Vec<FakeAnnouncer> {
    let election = Election::default();
    let announcers = vec![
        FakeAnnouncer::start_in(pki, &election).await,
        FakeAnnouncer::start_in(pki, &election).await,
        FakeAnnouncer::start_in(pki, &election).await,
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

/// Which fakes answer for `address` (report it ACTIVE), by node name.
fn holders(announcers: &[FakeAnnouncer], address: &str) -> Vec<&'static str> {
    NODES
        .iter()
        .zip(announcers)
        .filter(|(_, f)| f.active().iter().any(|a| a == address))
        .map(|(n, _)| *n)
        .collect()
}

/// Which fakes were sent `address`, by node name.
fn sent_to(announcers: &[FakeAnnouncer], address: &str) -> Vec<&'static str> {
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
    // Every candidate holds every entry (three nodes, three candidates); one answers.
    assert_eq!(held.iter().map(Vec::len).sum::<usize>(), 36);
    let answering: usize = announcers.iter().map(|a| a.active().len()).sum();
    assert_eq!(answering, 12);
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

/// The heartbeat key as the Secret kube-system/ferrolb-heartbeat holds it.
async fn secret_key(client: &Client) -> Option<Vec<u8>> {
    let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), "kube-system");
    let secret = api.get_opt("ferrolb-heartbeat").await.ok()??;
    Some(secret.data?.get("key")?.0.clone())
}

/// The candidate list each fake was sent for `address` (empty when it was sent none).
fn lists(announcers: &[FakeAnnouncer], address: &str) -> Vec<Vec<String>> {
    announcers
        .iter()
        .map(|f| {
            let state = f.state.lock().expect("lock");
            state
                .set
                .values()
                .find(|a| a.address == address)
                .map(|a| a.candidates.clone())
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn every_candidate_gets_the_entry_its_peers_and_one_key_that_survives_a_hand_over() {
    let server = TestApiServer::new();
    let client = server.client();
    let pki = Pki::new();
    let announcers = three_announcers(&client, &pki).await;
    set_pools(&client, &[("range-global", "192.0.2.100-192.0.2.110")]).await;
    let flags = ["--announcers=cluster"];
    let running = start_with_tls(&server, &flags, Some(pki.client()));
    create(&client, "default", &lb("web")).await;
    let (address, _) = wait_announced(&client, "web").await;

    assert_eq!(sent_to(&announcers, &address), NODES, "every candidate");
    let lists = lists(&announcers, &address);
    assert_eq!(lists[0].len(), 3);
    assert!(lists.iter().all(|l| *l == lists[0]), "same list: {lists:?}");
    assert_eq!(holders(&announcers, &address), [lists[0][0].as_str()]);
    let key = secret_key(&client)
        .await
        .expect("the provider created the Secret");
    assert_eq!(key.len(), 32);
    let peers: Vec<(String, String)> = NODES
        .iter()
        .map(|n| (n.to_string(), "127.0.0.1".to_string()))
        .collect();
    let before: Vec<usize> = announcers.iter().map(|a| a.syncs().len()).collect();
    for announcer in &announcers {
        let last = announcer.syncs().last().cloned().expect("a Sync");
        assert_eq!(last.key, key, "{}: the Secret's key", last.node);
        assert_eq!(
            last.peers, peers,
            "{}: every candidate, itself included",
            last.node
        );
    }

    // A new leader (a later process) reads the same key and sends the same sets.
    drop(running);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let _running = start_with_tls(&server, &flags, Some(pki.client()));
    for (i, announcer) in announcers.iter().enumerate() {
        let syncs = eventually("the new leader syncs", || async {
            let syncs = announcer.syncs();
            (syncs.len() > before[i]).then_some(syncs)
        })
        .await;
        for sync in &syncs[before[i]..] {
            assert_eq!((sync.added, sync.removed), (0, 0), "{sync:?}");
            assert_eq!(sync.key, key, "{}: the same key", sync.node);
            assert_eq!(sync.peers, peers);
        }
    }
    assert_eq!(secret_key(&client).await, Some(key));
}

#[tokio::test]
async fn a_takeover_by_the_announcers_is_adopted_without_a_second_move() {
    let server = TestApiServer::new();
    let client = server.client();
    let pki = Pki::new();
    let announcers = three_announcers(&client, &pki).await;
    set_pools(&client, &[("range-global", "192.0.2.100-192.0.2.110")]).await;
    let running = start_with_tls(&server, &["--announcers=cluster"], Some(pki.client()));
    create(&client, "default", &lb("web")).await;
    let (address, _) = wait_announced(&client, "web").await;
    let owner = holders(&announcers, &address)[0];
    let next = lists(&announcers, &address)[0][1].clone();
    let next_index = NODES.iter().position(|n| *n == next).expect("node");
    let before: Vec<usize> = announcers.iter().map(|a| a.syncs().len()).collect();

    let sentence = announcers[next_index].take_over(&address);
    assert_eq!(
        sentence,
        format!("took over from {owner}: {owner} stopped answering heartbeats")
    );
    eventually("the condition names the new holder", || async {
        let svc = get(&client, "default", "web").await?;
        let (status, _, message) = announced(&svc)?;
        (status == "True" && message == format!("{address} by {next} (answered in layer2 mode)"))
            .then_some(())
    })
    .await;
    eventually("a Moved Event quotes the announcer", || async {
        events_for(&server, "web")
            .iter()
            .any(|(reason, note)| {
                reason == "Moved"
                    && *note == format!("{address} moved from {owner} to {next}: {sentence}")
            })
            .then_some(())
    })
    .await;
    // Give the provider time to (wrongly) react, then check it sent nothing that changes a set.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (i, announcer) in announcers.iter().enumerate() {
        for sync in &announcer.syncs()[before[i]..] {
            assert_eq!((sync.added, sync.removed), (0, 0), "{}: {sync:?}", NODES[i]);
        }
    }
    assert_eq!(holders(&announcers, &address), [next.as_str()]);
    let moves = running
        .metrics
        .moves
        .get_or_create(&provider::metrics::ReasonLabel {
            reason: "heartbeat".into(),
        })
        .get();
    assert_eq!(moves, 1);
}

#[tokio::test]
async fn an_address_conflict_an_announcer_sees_is_a_warning_event_on_the_service() {
    let server = TestApiServer::new();
    let client = server.client();
    let pki = Pki::new();
    let announcers = three_announcers(&client, &pki).await;
    set_pools(&client, &[("range-global", "192.0.2.100-192.0.2.110")]).await;
    let running = start_with_tls(&server, &["--announcers=cluster"], Some(pki.client()));
    create(&client, "default", &lb("web")).await;
    let (address, _) = wait_announced(&client, "web").await;
    let owner = holders(&announcers, &address)[0];
    let owner_index = NODES.iter().position(|n| *n == owner).expect("node");
    announcers[owner_index].report_conflict(&address, "02:00:00:00:00:99");
    let expected = format!(
        "{owner} saw another host (02:00:00:00:00:99) answer for {address} on eth0, which \
         {owner} answers for with 02:00:00:00:00:01 (arp-reply); two nodes or a static host \
         hold the address"
    );
    eventually(
        "a Warning Event AddressConflict names both MACs",
        || async {
            events_for(&server, "web")
                .iter()
                .any(|(reason, note)| reason == "AddressConflict" && *note == expected)
                .then_some(())
        },
    )
    .await;
    assert_eq!(running.metrics.address_conflicts.get(), 1);
}

#[tokio::test]
async fn without_a_readable_key_only_the_first_candidate_answers_until_the_secret_is_readable() {
    let server = TestApiServer::new();
    let client = server.client();
    let pki = Pki::new();
    let announcers = three_announcers(&client, &pki).await;
    set_pools(&client, &[("range-global", "192.0.2.100-192.0.2.110")]).await;
    // RBAC refuses the Secret (403 on every request for secrets).
    server.faults().inject(
        FaultRule::status(403)
            .times(u32::MAX)
            .resource("secrets")
            .message("secrets \"ferrolb-heartbeat\" is forbidden: the test refuses it"),
    );
    let running = start_with_tls(&server, &["--announcers=cluster"], Some(pki.client()));
    create(&client, "default", &lb("web")).await;
    let (address, message) = wait_announced(&client, "web").await;
    let sent = sent_to(&announcers, &address);
    assert_eq!(sent.len(), 1, "first candidate only: {sent:?}");
    assert_eq!(
        message,
        format!("{address} by {} (answered in layer2 mode)", sent[0])
    );
    for announcer in &announcers {
        let last = announcer.syncs().last().cloned().expect("a Sync");
        assert!(last.key.is_empty(), "{}: no key", last.node);
        assert!(last.peers.is_empty(), "{}: no peers", last.node);
    }
    let errors = running
        .metrics
        .heartbeat_key_errors
        .get_or_create(&provider::metrics::ReasonLabel {
            reason: "api_rejected".into(),
        })
        .get();
    assert!(errors >= 1, "counted: {errors}");

    // Readable again: the retry reads (creates) the key and every candidate gets the entry.
    server.faults().clear();
    eventually("every candidate gets the entry with the key", || async {
        let key = secret_key(&client).await?;
        let all = sent_to(&announcers, &address).len() == 3
            && announcers
                .iter()
                .all(|a| a.syncs().last().is_some_and(|s| s.key == key));
        all.then_some(())
    })
    .await;
    assert_eq!(
        holders(&announcers, &address),
        sent,
        "the first candidate keeps it"
    );
}
