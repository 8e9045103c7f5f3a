//! Fault tolerance: injected 409s and 500s, dropped watches and 410 Gone, a restart in the
//! middle of a burst, and two replicas on one API server. In every case the controller must
//! converge and never give one address to two Services.

mod support;

use std::{collections::BTreeMap, time::Duration};

use support::*;
use test_apiserver::{FaultRule, TestApiServer};

async fn create_many(client: &kube::Client, prefix: &str, count: usize) {
    for i in 0..count {
        create(client, "default", &lb(&format!("{prefix}-{i}"))).await;
    }
}

async fn wait_all_allocated(
    client: &kube::Client,
    prefix: &str,
    count: usize,
) -> BTreeMap<String, String> {
    let mut seen = BTreeMap::new();
    for i in 0..count {
        let name = format!("{prefix}-{i}");
        let address = wait_allocated(client, "default", &name).await;
        seen.insert(name, address);
    }
    seen
}

fn assert_distinct(allocations: &BTreeMap<String, String>) {
    let mut by_address: BTreeMap<&String, &String> = BTreeMap::new();
    for (name, address) in allocations {
        if let Some(other) = by_address.insert(address, name) {
            panic!("{address} given to both {other} and {name}");
        }
    }
}

#[tokio::test]
async fn injected_conflicts_and_server_errors_converge_without_duplicates() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(&client, &[("range-global", "192.0.2.1-192.0.2.60")]).await;
    let controller = start(&server, &[]);
    server.faults().inject(
        FaultRule::status(409)
            .times(8)
            .resource("services")
            .verb("patch"),
    );
    server.faults().inject(
        FaultRule::status(500)
            .times(8)
            .resource("services")
            .verb("patch"),
    );
    server.faults().inject(
        FaultRule::status(500)
            .times(3)
            .resource("services")
            .verb("get"),
    );
    create_many(&client, "svc", 30).await;
    let allocations = wait_all_allocated(&client, "svc", 30).await;
    assert_distinct(&allocations);
    assert_no_duplicates(&client).await;
    assert_eq!(server.faults().pending(), 0, "every injected fault was hit");
    let errors: u64 = ["conflict", "api_server_error"]
        .iter()
        .map(|kind| {
            controller
                .metrics
                .reconcile_errors
                .get(&provider::metrics::ReasonLabel {
                    reason: kind.to_string(),
                })
                .map_or(0, |c| c.get())
        })
        .sum();
    assert!(errors >= 16, "the injected failures are counted: {errors}");
}

#[tokio::test]
async fn dropped_watches_and_410_gone_relist_and_converge() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(&client, &[("range-global", "192.0.2.1-192.0.2.60")]).await;
    let _controller = start(&server, &[]);
    create_many(&client, "a", 10).await;
    server.drop_watches();
    create_many(&client, "b", 10).await;
    // Forget history and cut the watches: the resumed watch gets 410 Gone and must relist.
    server.compact();
    server.drop_watches();
    create_many(&client, "c", 10).await;
    server.faults().inject(
        FaultRule::status(500)
            .times(2)
            .resource("services")
            .verb("watch"),
    );
    server.drop_watches();
    merge(
        &client,
        "default",
        "a-0",
        serde_json::json!({"spec": {"type": "ClusterIP"}}),
    )
    .await;
    let mut all = wait_all_allocated(&client, "b", 10).await;
    all.extend(wait_all_allocated(&client, "c", 10).await);
    for i in 1..10 {
        let name = format!("a-{i}");
        all.insert(
            name.clone(),
            wait_allocated(&client, "default", &name).await,
        );
    }
    wait_service(&client, "default", "a-0", "released after ClusterIP", |s| {
        ips(s).is_none()
    })
    .await;
    assert_distinct(&all);
    assert_no_duplicates(&client).await;
}

#[tokio::test]
async fn restart_mid_burst_changes_no_existing_address() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(&client, &[("range-global", "192.0.2.1-192.0.2.120")]).await;
    let first = start(&server, &[]);
    create_many(&client, "burst", 80).await;
    // Stop the controller while it is still writing.
    eventually("some Services allocated", || async {
        let api: kube::Api<k8s_openapi::api::core::v1::Service> =
            kube::Api::namespaced(client.clone(), "default");
        let list = api.list(&Default::default()).await.ok()?;
        (list.items.iter().filter(|s| allocated(s).is_some()).count() >= 10).then_some(())
    })
    .await;
    drop(first);
    let api: kube::Api<k8s_openapi::api::core::v1::Service> =
        kube::Api::namespaced(client.clone(), "default");
    let before: BTreeMap<String, String> = api
        .list(&Default::default())
        .await
        .expect("list")
        .items
        .iter()
        .filter_map(|s| Some((s.metadata.name.clone()?, allocated(s)?)))
        .collect();
    assert!(
        before.contains_key("burst-0"),
        "the oldest Service was served first"
    );
    // While no controller runs, the holder of the lowest address is deleted (it waits on our
    // finalizer) and a new Service appears: re-allocating from scratch would now hand the
    // lowest address to another Service; adopting first must not.
    delete(&client, "default", "burst-0").await;
    create(&client, "default", &lb("late")).await;
    let _second = start(&server, &[]);
    let mut after = BTreeMap::new();
    for i in 1..80 {
        let name = format!("burst-{i}");
        after.insert(
            name.clone(),
            wait_allocated(&client, "default", &name).await,
        );
    }
    eventually("burst-0 released and removed", || async {
        get(&client, "default", "burst-0")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    after.insert(
        "late".into(),
        wait_allocated(&client, "default", "late").await,
    );
    for (name, address) in before.iter().filter(|(name, _)| *name != "burst-0") {
        assert_eq!(
            after.get(name),
            Some(address),
            "{name} kept its address across the restart"
        );
    }
    assert_distinct(&after);
    assert_no_duplicates(&client).await;
}

#[tokio::test]
async fn two_replicas_on_one_api_server_never_duplicate() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(&client, &[("range-global", "192.0.2.1-192.0.2.120")]).await;
    let election = [
        "--leader-elect=true",
        "--lease-duration=2s",
        "--renew-deadline=1500ms",
        "--retry-period=200ms",
    ];
    let mut a_flags = election.to_vec();
    a_flags.push("--identity=replica-a");
    let mut b_flags = election.to_vec();
    b_flags.push("--identity=replica-b");
    let a = start(&server, &a_flags);
    let b = start(&server, &b_flags);
    create_many(&client, "one", 30).await;
    let mut all = wait_all_allocated(&client, "one", 30).await;
    assert_distinct(&all);
    let leaders = a.metrics.leader.get() + b.metrics.leader.get();
    assert_eq!(leaders, 1, "exactly one replica leads");
    // Kill the leader; the other takes over after the lease expires and serves new Services.
    let survivor = if a.metrics.leader.get() == 1 {
        drop(a);
        b
    } else {
        drop(b);
        a
    };
    create_many(&client, "two", 20).await;
    all.extend(wait_all_allocated(&client, "two", 20).await);
    assert_eq!(survivor.metrics.leader.get(), 1);
    assert_eq!(survivor.metrics.leader_transitions.get(), 1);
    assert_distinct(&all);
    assert_no_duplicates(&client).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test]
async fn leader_that_cannot_renew_stops_writing_before_its_lease_expires() {
    let server = TestApiServer::new();
    let client = server.client();
    set_pools(&client, &[("range-global", "192.0.2.1-192.0.2.20")]).await;
    let leader = start(
        &server,
        &[
            "--leader-elect=true",
            "--lease-duration=3s",
            "--renew-deadline=1500ms",
            "--retry-period=200ms",
            "--identity=solo",
        ],
    );
    create(&client, "default", &lb("before")).await;
    wait_allocated(&client, "default", "before").await;
    assert_eq!(leader.metrics.leader.get(), 1);
    // The API server now refuses every Lease request: renewals fail.
    server
        .faults()
        .inject(FaultRule::status(500).times(100_000).resource("leases"));
    eventually("leader stops claiming", || async {
        (leader.metrics.leader.get() == 0).then_some(())
    })
    .await;
    let lease = server
        .object(
            "coordination.k8s.io/v1",
            "Lease",
            Some("kube-system"),
            "ferrolb-provider",
        )
        .expect("the Lease exists");
    let renewed: k8s_openapi::jiff::Timestamp = lease["spec"]["renewTime"]
        .as_str()
        .expect("renewTime")
        .parse()
        .expect("a timestamp");
    let duration = lease["spec"]["leaseDurationSeconds"]
        .as_i64()
        .expect("duration");
    let expires = renewed + k8s_openapi::jiff::SignedDuration::from_secs(duration);
    assert!(
        k8s_openapi::jiff::Timestamp::now() < expires,
        "stopped writing only after the lease had expired (expiry {expires})"
    );
    // Without the claim nothing is written.
    create(&client, "default", &lb("during")).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let during = get(&client, "default", "during").await.expect("exists");
    assert!(
        ips(&during).is_none(),
        "a replica without a current claim wrote"
    );
    // Renewals work again: a new term adopts and serves.
    server.faults().clear();
    assert_eq!(
        wait_allocated(&client, "default", "during").await,
        "192.0.2.2"
    );
    assert_no_duplicates(&client).await;
}
