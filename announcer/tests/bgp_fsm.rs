//! The RFC 4271 §8 state machine without sockets: inputs go in, outputs are checked, and the
//! timers run on tokio's paused clock so timer behaviour is exact and instant.

use std::net::Ipv4Addr;
use std::time::Duration;

use announcer::bgp::codec::{
    Capability, DecodeError, Family, Message, Notification, Open, RouteRefresh, Update,
};
use announcer::bgp::fsm::{Fsm, FsmConfig, Input, OPEN_HOLD_TIME, Output, State, Timer};
use announcer::bgp::timers::Timers;
use tokio::time::Instant;

const LOCAL_AS: u32 = 64513;
const PEER_AS: u32 = 64512;

fn config() -> FsmConfig {
    FsmConfig {
        local_asn: LOCAL_AS,
        peer_asn: PEER_AS,
        router_id: Ipv4Addr::new(192, 0, 2, 1),
        hold_time: 9,
        keepalive: None,
        connect_retry: Duration::from_secs(5),
        passive: false,
        families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        graceful_restart: None,
        restarting: false,
    }
}

fn peer_open(asn: u32, hold: u16, caps: Vec<Capability>) -> Open {
    Open::new(asn, hold, Ipv4Addr::new(192, 0, 2, 2), caps)
}

fn full_caps(asn: u32) -> Vec<Capability> {
    vec![
        Capability::Multiprotocol(Family::IPV4_UNICAST),
        Capability::Multiprotocol(Family::IPV6_UNICAST),
        Capability::RouteRefresh,
        Capability::FourOctetAs(asn),
        Capability::GracefulRestart {
            restarting: false,
            restart_time: 120,
            families: vec![],
        },
    ]
}

/// An FSM plus its timers on the paused tokio clock, recording outputs.
struct Harness {
    fsm: Fsm,
    timers: Timers,
    start: Instant,
}

impl Harness {
    fn new(config: FsmConfig) -> Self {
        Harness {
            fsm: Fsm::new(config),
            timers: Timers::default(),
            start: Instant::now(),
        }
    }

    fn feed(&mut self, input: Input) -> Vec<Output> {
        let outputs = self.fsm.process(input);
        for output in &outputs {
            self.timers.apply(output);
        }
        outputs
    }

    /// Lets the earliest timer fire and feeds its expiry; returns (seconds since start, timer,
    /// outputs).
    async fn fire_next(&mut self) -> (u64, Timer, Vec<Output>) {
        let timer = self.timers.expired().await;
        let input = Input::from(timer);
        let at = (Instant::now() - self.start).as_secs();
        (at, timer, self.feed(input))
    }

    /// Drives the machine to Established with a peer offering `caps`.
    fn establish(&mut self, caps: Vec<Capability>) -> Vec<Output> {
        self.feed(Input::ManualStart);
        self.feed(Input::TcpConnectionConfirmed);
        self.feed(Input::Message(Message::Open(peer_open(PEER_AS, 90, caps))));
        self.feed(Input::Message(Message::Keepalive))
    }
}

fn sent(outputs: &[Output]) -> Vec<Message> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(message) => Some(message.clone()),
            _ => None,
        })
        .collect()
}

fn sent_notification(outputs: &[Output]) -> Option<(u8, u8)> {
    sent(outputs).into_iter().find_map(|m| match m {
        Message::Notification(n) => Some((n.code, n.subcode)),
        _ => None,
    })
}

fn down_reason(outputs: &[Output]) -> Option<(String, bool)> {
    outputs.iter().find_map(|o| match o {
        Output::Down {
            reason,
            was_established,
        } => Some((reason.clone(), *was_established)),
        _ => None,
    })
}

#[test]
fn active_start_connects_and_arms_connect_retry() {
    let mut fsm = Fsm::new(config());
    assert_eq!(
        fsm.process(Input::ManualStart),
        vec![
            Output::StopTimer(Timer::IdleHold),
            Output::StartTimer(Timer::ConnectRetry, Duration::from_secs(5)),
            Output::Connect,
            Output::StateChanged {
                from: State::Idle,
                to: State::Connect
            },
        ]
    );
}

#[test]
fn passive_start_waits_in_active_without_connecting() {
    let mut fsm = Fsm::new(FsmConfig {
        passive: true,
        ..config()
    });
    let outputs = fsm.process(Input::ManualStart);
    assert!(!outputs.contains(&Output::Connect));
    assert_eq!(fsm.state(), State::Active);
}

#[test]
fn events_other_than_start_are_ignored_in_idle() {
    let mut fsm = Fsm::new(config());
    for input in [
        Input::HoldTimerExpires,
        Input::KeepaliveTimerExpires,
        Input::TcpConnectionConfirmed,
        Input::Message(Message::Keepalive),
        Input::ManualStop(Notification::admin_shutdown()),
    ] {
        assert_eq!(fsm.process(input.clone()), vec![], "{input:?}");
        assert_eq!(fsm.state(), State::Idle);
    }
}

#[tokio::test(start_paused = true)]
async fn connect_retry_expiry_connects_again_every_interval() {
    let mut h = Harness::new(config());
    h.feed(Input::ManualStart);
    for expected_at in [5, 10, 15] {
        let (at, timer, outputs) = h.fire_next().await;
        assert_eq!((at, timer), (expected_at, Timer::ConnectRetry));
        assert!(outputs.contains(&Output::Connect));
        assert_eq!(h.fsm.state(), State::Connect);
    }
}

#[tokio::test(start_paused = true)]
async fn failed_connection_goes_active_and_retries_after_connect_retry() {
    let mut h = Harness::new(config());
    h.feed(Input::ManualStart);
    let outputs = h.feed(Input::TcpConnectionFails(
        "connect: connection refused".into(),
    ));
    assert_eq!(h.fsm.state(), State::Active);
    assert_eq!(
        down_reason(&outputs),
        Some(("connect: connection refused".into(), false))
    );
    let (at, timer, outputs) = h.fire_next().await;
    assert_eq!((at, timer), (5, Timer::ConnectRetry));
    assert!(outputs.contains(&Output::Connect));
    assert_eq!(h.fsm.state(), State::Connect);
}

#[test]
fn connection_sends_our_open_and_waits_four_minutes() {
    let mut fsm = Fsm::new(FsmConfig {
        graceful_restart: Some(120),
        ..config()
    });
    fsm.process(Input::ManualStart);
    let outputs = fsm.process(Input::TcpConnectionConfirmed);
    assert_eq!(fsm.state(), State::OpenSent);
    assert!(outputs.contains(&Output::StopTimer(Timer::ConnectRetry)));
    assert!(outputs.contains(&Output::StartTimer(Timer::Hold, OPEN_HOLD_TIME)));
    let messages = sent(&outputs);
    let [Message::Open(open)] = messages.as_slice() else {
        panic!("one OPEN expected")
    };
    assert_eq!(open.asn(), LOCAL_AS);
    assert_eq!(open.hold_time, 9);
    assert!(open.supports(Family::IPV6_UNICAST));
    assert!(open.has(|c| matches!(c, Capability::RouteRefresh)));
    assert!(open.has(|c| matches!(
        c,
        Capability::GracefulRestart {
            restart_time: 120,
            ..
        }
    )));
}

/// The Restart State bit (RFC 4724 §3) is set only after a restart.
#[test]
fn open_sets_the_restart_state_bit_only_after_a_restart() {
    for restarting in [false, true] {
        let mut fsm = Fsm::new(FsmConfig {
            graceful_restart: Some(120),
            restarting,
            ..config()
        });
        fsm.process(Input::ManualStart);
        let outputs = fsm.process(Input::TcpConnectionConfirmed);
        let messages = sent(&outputs);
        let [Message::Open(open)] = messages.as_slice() else {
            panic!("one OPEN expected")
        };
        assert!(
            open.has(|c| matches!(
                c,
                Capability::GracefulRestart { restarting: r, families, .. }
                    if *r == restarting && families.iter().all(|f| f.forwarding_preserved)
            )),
            "restarting={restarting}: {open:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn open_sent_without_an_answer_expires_the_hold_timer() {
    let mut h = Harness::new(config());
    h.feed(Input::ManualStart);
    h.feed(Input::TcpConnectionConfirmed);
    let (at, timer, outputs) = h.fire_next().await;
    assert_eq!((at, timer), (240, Timer::Hold));
    assert_eq!(sent_notification(&outputs), Some((4, 0)));
    assert_eq!(h.fsm.state(), State::Idle);
    assert_eq!(
        down_reason(&outputs),
        Some(("hold timer expired".into(), false))
    );
}

#[test]
fn peer_open_negotiates_the_smaller_hold_time_and_confirms() {
    let mut fsm = Fsm::new(config());
    fsm.process(Input::ManualStart);
    fsm.process(Input::TcpConnectionConfirmed);
    let outputs = fsm.process(Input::Message(Message::Open(peer_open(
        PEER_AS,
        90,
        full_caps(PEER_AS),
    ))));
    assert_eq!(fsm.state(), State::OpenConfirm);
    assert_eq!(sent(&outputs), vec![Message::Keepalive]);
    assert!(outputs.contains(&Output::StartTimer(Timer::Hold, Duration::from_secs(9))));
    assert!(outputs.contains(&Output::StartTimer(
        Timer::Keepalive,
        Duration::from_secs(3)
    )));
    let negotiated = fsm.negotiated().expect("negotiated");
    assert_eq!((negotiated.hold_time, negotiated.keepalive), (9, 3));
    assert!(negotiated.four_octet_as);
}

#[test]
fn configured_keepalive_is_kept_below_a_third_of_the_hold_time() {
    let cases = [(Some(1), 1), (Some(30), 3), (None, 3)];
    for (keepalive, expected) in cases {
        let mut fsm = Fsm::new(FsmConfig {
            keepalive,
            ..config()
        });
        fsm.process(Input::ManualStart);
        fsm.process(Input::TcpConnectionConfirmed);
        fsm.process(Input::Message(Message::Open(peer_open(
            PEER_AS,
            90,
            full_caps(PEER_AS),
        ))));
        assert_eq!(
            fsm.negotiated().expect("negotiated").keepalive,
            expected,
            "{keepalive:?}"
        );
    }
}

#[test]
fn zero_hold_time_runs_without_keepalives() {
    let mut fsm = Fsm::new(config());
    fsm.process(Input::ManualStart);
    fsm.process(Input::TcpConnectionConfirmed);
    let outputs = fsm.process(Input::Message(Message::Open(peer_open(
        PEER_AS,
        0,
        full_caps(PEER_AS),
    ))));
    assert!(outputs.contains(&Output::StopTimer(Timer::Hold)));
    assert!(
        !outputs
            .iter()
            .any(|o| matches!(o, Output::StartTimer(Timer::Keepalive, _)))
    );
}

/// (name, peer OPEN, expected NOTIFICATION) for OPENs the machine must refuse.
#[test]
fn bad_peer_opens_are_refused_with_the_rfc_notification() {
    let cases = [
        (
            "wrong peer AS",
            peer_open(65000, 90, full_caps(65000)),
            (2, 2),
        ),
        (
            "4-octet AS differs from configured",
            peer_open(4_200_000_000, 90, full_caps(4_200_000_000)),
            (2, 2),
        ),
    ];
    for (name, open, expected) in cases {
        let mut fsm = Fsm::new(config());
        fsm.process(Input::ManualStart);
        fsm.process(Input::TcpConnectionConfirmed);
        let outputs = fsm.process(Input::Message(Message::Open(open)));
        assert_eq!(sent_notification(&outputs), Some(expected), "{name}");
        assert_eq!(fsm.state(), State::Idle, "{name}");
        assert!(
            outputs
                .iter()
                .any(|o| matches!(o, Output::StartTimer(Timer::IdleHold, _)))
        );
    }
    // iBGP with our own identifier (RFC 6286 §2.2).
    let mut fsm = Fsm::new(FsmConfig {
        peer_asn: LOCAL_AS,
        ..config()
    });
    fsm.process(Input::ManualStart);
    fsm.process(Input::TcpConnectionConfirmed);
    let same_id = Open::new(
        LOCAL_AS,
        90,
        Ipv4Addr::new(192, 0, 2, 1),
        full_caps(LOCAL_AS),
    );
    let outputs = fsm.process(Input::Message(Message::Open(same_id)));
    assert_eq!(sent_notification(&outputs), Some((2, 3)));
}

#[test]
fn keepalive_in_open_confirm_establishes_with_negotiated_capabilities() {
    let mut h = Harness::new(FsmConfig {
        graceful_restart: Some(120),
        ..config()
    });
    let outputs = h.establish(full_caps(PEER_AS));
    assert_eq!(h.fsm.state(), State::Established);
    let negotiated = outputs
        .iter()
        .find_map(|o| match o {
            Output::Established(n) => Some(n.clone()),
            _ => None,
        })
        .expect("Established output");
    assert_eq!(
        negotiated.capabilities,
        vec![
            "mp-ipv4-unicast",
            "mp-ipv6-unicast",
            "4-octet-as",
            "route-refresh",
            "graceful-restart"
        ]
    );
    assert_eq!(negotiated.peer_asn, PEER_AS);
}

#[test]
fn families_the_peer_lacks_are_not_negotiated() {
    let mut h = Harness::new(config());
    h.establish(vec![Capability::FourOctetAs(PEER_AS)]);
    let negotiated = h.fsm.negotiated().expect("negotiated");
    assert_eq!(negotiated.families, vec![Family::IPV4_UNICAST]);
    assert!(
        !negotiated.graceful_restart,
        "we did not offer graceful restart"
    );
    assert!(!negotiated.route_refresh);
}

#[tokio::test(start_paused = true)]
async fn established_sends_keepalives_each_third_of_hold_then_expires_hold() {
    let mut h = Harness::new(config());
    h.establish(full_caps(PEER_AS));
    let mut events = Vec::new();
    loop {
        let (at, timer, outputs) = h.fire_next().await;
        events.push((at, timer));
        if timer == Timer::Hold {
            assert_eq!(sent_notification(&outputs), Some((4, 0)));
            assert_eq!(
                down_reason(&outputs),
                Some(("hold timer expired".into(), true))
            );
            break;
        }
        assert_eq!(sent(&outputs), vec![Message::Keepalive]);
    }
    assert_eq!(
        events,
        vec![
            (3, Timer::Keepalive),
            (6, Timer::Keepalive),
            (9, Timer::Hold)
        ]
    );
    assert_eq!(h.fsm.state(), State::Idle);
}

#[tokio::test(start_paused = true)]
async fn received_messages_restart_the_hold_timer() {
    let mut h = Harness::new(config());
    h.establish(full_caps(PEER_AS));
    tokio::time::advance(Duration::from_secs(8)).await;
    // Received UPDATEs are discarded but prove the peer is alive.
    let outputs = h.feed(Input::Message(Message::Update(Update::end_of_rib(
        Family::IPV4_UNICAST,
    ))));
    assert_eq!(
        outputs,
        vec![Output::StartTimer(Timer::Hold, Duration::from_secs(9))]
    );
    let hold_at = h.timers.deadline(Timer::Hold).expect("hold runs");
    assert_eq!((hold_at - h.start).as_secs(), 17);
    tokio::time::advance(Duration::from_secs(8)).await;
    h.feed(Input::Message(Message::Keepalive));
    let hold_at = h.timers.deadline(Timer::Hold).expect("hold runs");
    assert_eq!((hold_at - h.start).as_secs(), 25);
}

#[test]
fn malformed_update_treated_as_withdraw_keeps_the_session() {
    let mut h = Harness::new(config());
    h.establish(full_caps(PEER_AS));
    let error =
        DecodeError::treat_as_withdraw("UPDATE attribute ORIGIN: invalid value [07]".into());
    let outputs = h.feed(Input::MessageError(error));
    assert_eq!(h.fsm.state(), State::Established);
    assert!(outputs.contains(&Output::UpdateError(
        "UPDATE attribute ORIGIN: invalid value [07]".into()
    )));
    assert_eq!(sent_notification(&outputs), None);
}

#[test]
fn decode_errors_send_their_notification_and_restart_later() {
    let mut h = Harness::new(config());
    h.establish(full_caps(PEER_AS));
    let error = DecodeError::notify(3, 1, Vec::new(), "withdrawn length overruns".into());
    let outputs = h.feed(Input::MessageError(error));
    assert_eq!(sent_notification(&outputs), Some((3, 1)));
    assert_eq!(h.fsm.state(), State::Idle);
    let (reason, was_established) = down_reason(&outputs).expect("down");
    assert!(
        reason.contains("UPDATE Message Error/Malformed Attribute List"),
        "{reason}"
    );
    assert!(was_established);
}

#[tokio::test(start_paused = true)]
async fn after_a_failure_the_session_restarts_by_itself() {
    let mut h = Harness::new(config());
    h.establish(full_caps(PEER_AS));
    let outputs = h.feed(Input::TcpConnectionFails("connection reset by peer".into()));
    assert_eq!(
        down_reason(&outputs),
        Some(("connection reset by peer".into(), true))
    );
    assert!(outputs.contains(&Output::CloseConnection));
    let (at, timer, outputs) = h.fire_next().await;
    assert_eq!((at, timer), (5, Timer::IdleHold));
    assert!(outputs.contains(&Output::Connect));
    assert_eq!(h.fsm.state(), State::Connect);
}

#[test]
fn notification_from_the_peer_ends_the_session_with_its_text() {
    let mut h = Harness::new(config());
    h.establish(full_caps(PEER_AS));
    let outputs = h.feed(Input::Message(Message::Notification(
        Notification::admin_shutdown(),
    )));
    assert_eq!(
        sent_notification(&outputs),
        None,
        "never answer a NOTIFICATION with one"
    );
    assert_eq!(
        down_reason(&outputs),
        Some((
            "NOTIFICATION received: Cease/Administrative Shutdown".into(),
            true
        ))
    );
}

#[test]
fn manual_stop_sends_cease_and_stays_idle() {
    let mut h = Harness::new(config());
    h.establish(full_caps(PEER_AS));
    let outputs = h.feed(Input::ManualStop(Notification::admin_shutdown()));
    assert_eq!(sent_notification(&outputs), Some((6, 2)));
    assert_eq!(h.fsm.state(), State::Idle);
    assert!(
        !outputs.iter().any(|o| matches!(o, Output::StartTimer(..))),
        "no automatic restart"
    );
    for timer in Timer::ALL {
        assert_eq!(h.timers.deadline(timer), None, "{timer:?} still runs");
    }
}

#[test]
fn unexpected_messages_get_fsm_error_with_the_state_subcode() {
    // (state reached, message, RFC 6608 subcode)
    let open = Message::Open(peer_open(PEER_AS, 90, full_caps(PEER_AS)));
    let update = Message::Update(Update::default());
    let cases: [(State, Message, u8); 3] = [
        (State::OpenSent, update.clone(), 1),
        (State::OpenConfirm, update, 2),
        (State::Established, open.clone(), 3),
    ];
    for (state, message, subcode) in cases {
        let mut fsm = Fsm::new(config());
        fsm.process(Input::ManualStart);
        fsm.process(Input::TcpConnectionConfirmed);
        if state != State::OpenSent {
            fsm.process(Input::Message(open.clone()));
        }
        if state == State::Established {
            fsm.process(Input::Message(Message::Keepalive));
        }
        assert_eq!(fsm.state(), state);
        let outputs = fsm.process(Input::Message(message));
        assert_eq!(sent_notification(&outputs), Some((5, subcode)), "{state:?}");
        assert_eq!(fsm.state(), State::Idle);
    }
}

#[test]
fn route_refresh_for_a_negotiated_family_asks_for_a_resend() {
    let mut h = Harness::new(config());
    h.establish(full_caps(PEER_AS));
    let ipv6 = RouteRefresh {
        family: Family::IPV6_UNICAST,
        subtype: 0,
    };
    let outputs = h.feed(Input::Message(Message::RouteRefresh(ipv6)));
    assert!(outputs.contains(&Output::RouteRefreshRequested(Family::IPV6_UNICAST)));
    let other = RouteRefresh {
        family: Family { afi: 25, safi: 65 },
        subtype: 0,
    };
    let outputs = h.feed(Input::Message(Message::RouteRefresh(other)));
    assert!(
        !outputs
            .iter()
            .any(|o| matches!(o, Output::RouteRefreshRequested(_)))
    );
}

#[tokio::test(start_paused = true)]
async fn open_confirm_keeps_sending_keepalives_until_the_peer_answers() {
    let mut h = Harness::new(config());
    h.feed(Input::ManualStart);
    h.feed(Input::TcpConnectionConfirmed);
    h.feed(Input::Message(Message::Open(peer_open(
        PEER_AS,
        90,
        full_caps(PEER_AS),
    ))));
    let (at, timer, outputs) = h.fire_next().await;
    assert_eq!((at, timer), (3, Timer::Keepalive));
    assert_eq!(sent(&outputs), vec![Message::Keepalive]);
    assert_eq!(h.fsm.state(), State::OpenConfirm);
}

#[test]
fn connection_lost_before_open_goes_idle_and_restarts() {
    let mut fsm = Fsm::new(config());
    fsm.process(Input::ManualStart);
    fsm.process(Input::TcpConnectionConfirmed);
    let outputs = fsm.process(Input::TcpConnectionFails("connection reset by peer".into()));
    assert_eq!(fsm.state(), State::Idle);
    assert_eq!(
        down_reason(&outputs),
        Some(("connection reset by peer".into(), false))
    );
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::StartTimer(Timer::IdleHold, _)))
    );
}

#[test]
fn every_state_change_is_reported() {
    let mut h = Harness::new(config());
    let mut changes = Vec::new();
    let mut record = |outputs: Vec<Output>| {
        for o in outputs {
            if let Output::StateChanged { from, to } = o {
                changes.push((from, to));
            }
        }
    };
    record(h.feed(Input::ManualStart));
    record(h.feed(Input::TcpConnectionConfirmed));
    record(h.feed(Input::Message(Message::Open(peer_open(
        PEER_AS,
        90,
        full_caps(PEER_AS),
    )))));
    record(h.feed(Input::Message(Message::Keepalive)));
    record(h.feed(Input::ManualStop(Notification::admin_shutdown())));
    assert_eq!(
        changes,
        vec![
            (State::Idle, State::Connect),
            (State::Connect, State::OpenSent),
            (State::OpenSent, State::OpenConfirm),
            (State::OpenConfirm, State::Established),
            (State::Established, State::Idle),
        ]
    );
}
