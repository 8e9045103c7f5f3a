//! A Sync that changes only labels and candidates must not touch the data plane: a client
//! keeps getting answers through 100 such Syncs (ICMP echo for vip mode, ARP for layer2
//! mode), no `removed` event is sent and the status keeps its `since` time.

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use announcer::ctl::{CtlArgs, CtlCommand, connect};
use common::{Announcer, Host, Lan, can_use_netns};
use futures::StreamExt;
use proto::announcer::v1::{self as pb, announcer_client::AnnouncerClient, event::Kind};
use tonic::transport::Channel;

const V4: &str = "192.0.2.20";
/// Requests the client sends, [`INTERVAL`] apart: 6 s, of which the Syncs take about 2 s
/// after the first.
const PROBES: u32 = 300;
/// Between two requests. arping waits only one interval for the last reply, so not less than
/// a loaded machine may take to answer.
const INTERVAL: &str = "0.02";
const SYNCS: u64 = 100;

fn announcement(mode: pb::Mode, revision: u64) -> pb::Announcement {
    pb::Announcement {
        address: V4.into(),
        mode: mode.into(),
        labels: HashMap::from([("revision".to_string(), revision.to_string())]),
        candidates: vec!["node-a".into(), format!("node-{revision}")],
        ..Default::default()
    }
}

async fn client(announcer: &Announcer) -> AnnouncerClient<Channel> {
    let args = CtlArgs {
        server: announcer.server(),
        ca: None,
        cert: None,
        key: None,
        server_name: None,
        command: CtlCommand::State,
    };
    connect(&args).await.expect("connect")
}

async fn status(client: &mut AnnouncerClient<Channel>) -> pb::AnnouncementStatus {
    let state = client
        .get_state(pb::GetStateRequest {})
        .await
        .expect("state")
        .into_inner();
    assert_eq!(state.announcements.len(), 1, "{state:?}");
    state.announcements[0].clone()
}

/// Starts the client's probes: `ping` for vip mode (the node's kernel answers), `arping` for
/// layer2 mode (the announcer's responder answers; nothing else holds the address).
fn start_probes(client: &Host, mode: pb::Mode) -> Child {
    let count = PROBES.to_string();
    let mut args = vec!["netns", "exec", &client.ns];
    match mode {
        pb::Mode::Vip => args.extend(["ping", "-n", "-q", "-c", &count, "-i", INTERVAL, "-W", "2"]),
        _ => args.extend(["arping", "-c", &count, "-W", INTERVAL, "-I", "eth0"]),
    }
    args.push(V4);
    Command::new("ip")
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start probes")
}

/// (sent, answered) from the summary line of ping (`400 packets transmitted, 400 received`)
/// or arping (`400 packets transmitted, 400 packets received`).
fn probe_counts(output: &str) -> (u32, u32) {
    let line = output
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no summary in {output}"));
    let numbers: Vec<u32> = line
        .split([',', ' '])
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(numbers.len() >= 2, "{line}");
    (numbers[0], numbers[1])
}

async fn labels_only_syncs_keep_answering(mode: pb::Mode) {
    let lan = Lan::new(2);
    let (node, probe_host) = (&lan.hosts[0], &lan.hosts[1]);
    let announcer = Announcer::start(node, &[]);
    let mut api = client(&announcer).await;
    api.sync(pb::SyncRequest {
        generation: 1,
        announcements: vec![announcement(mode, 0)],
        node: "node-a".into(),
        ..Default::default()
    })
    .await
    .expect("first sync");
    let before = status(&mut api).await;
    assert_eq!(before.phase, pb::Phase::Active as i32, "{before:?}");

    let events = Arc::new(Mutex::new(Vec::new()));
    let mut stream = api
        .watch_events(pb::WatchEventsRequest {})
        .await
        .expect("watch")
        .into_inner();
    let collected = Arc::clone(&events);
    let watcher = tokio::spawn(async move {
        while let Some(Ok(event)) = stream.next().await {
            if let Some(Kind::AnnouncementChanged(changed)) = event.kind {
                collected.lock().expect("events").push(changed);
            }
        }
    });

    let mut probes = start_probes(probe_host, mode);
    // Pacing, not an assertion: let the probes run alone for a second first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    for generation in 2..=SYNCS + 1 {
        let response = api
            .sync(pb::SyncRequest {
                generation,
                announcements: vec![announcement(mode, generation)],
                node: "node-a".into(),
                ..Default::default()
            })
            .await
            .expect("sync")
            .into_inner();
        assert_eq!(response.removed, 0, "{response:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let syncing = started.elapsed();
    assert!(
        matches!(probes.try_wait(), Ok(None)),
        "the probes ended before the {SYNCS} Syncs did ({syncing:?}): they did not cover them"
    );
    let output = tokio::task::spawn_blocking(move || probes.wait_with_output())
        .await
        .expect("join")
        .expect("probes");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (sent, answered) = probe_counts(&text);
    eprintln!("{mode:?}: {sent} sent / {answered} answered during {SYNCS} Syncs in {syncing:?}");
    assert_eq!((sent, answered), (PROBES, PROBES), "{text}");

    let after = status(&mut api).await;
    assert_eq!(after.phase, pb::Phase::Active as i32, "{after:?}");
    assert_eq!(after.since_unix_ms, before.since_unix_ms, "{after:?}");
    let reported = after.announcement.expect("announcement");
    assert_eq!(reported.labels["revision"], (SYNCS + 1).to_string());
    assert_eq!(
        reported.candidates,
        vec!["node-a".to_string(), format!("node-{}", SYNCS + 1)]
    );

    watcher.abort();
    let events = events.lock().expect("events");
    assert!(
        events.iter().all(|e| !e.removed),
        "a labels-only Sync removed an announcement: {events:?}"
    );
    assert_eq!(
        events.len() as u64,
        SYNCS,
        "one labels event per Sync: {events:?}"
    );
    let log = announcer.log_text();
    assert_eq!(
        log.matches("packet socket opened").count(),
        1,
        "the packet socket was reopened:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vip_keeps_answering_ping_through_100_labels_only_syncs() {
    if !common::netns_tools(
        "vip_keeps_answering_ping_through_100_labels_only_syncs",
        &["ping"],
    ) {
        return;
    }
    labels_only_syncs_keep_answering(pb::Mode::Vip).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layer2_keeps_answering_arp_through_100_labels_only_syncs() {
    if !can_use_netns("layer2_keeps_answering_arp_through_100_labels_only_syncs") {
        return;
    }
    labels_only_syncs_keep_answering(pb::Mode::Layer2).await;
}
