//! The BFD state machine (RFC 5880 §6.8) driven as data: two sessions hand each other the
//! bytes they send, with no sockets and no clock; timer expiries are fed as inputs.

use std::time::Duration;

use announcer::bfd::packet::{AuthKey, AuthType, ControlPacket, Diagnostic, State};
use announcer::bfd::session::{Input, Output, Parameters, Session, Timer};
use proptest::prelude::*;

fn params(ms: u64, mult: u8) -> Parameters {
    Parameters {
        desired_min_tx: Duration::from_millis(ms),
        required_min_rx: Duration::from_millis(ms),
        detect_mult: mult,
    }
}

fn sent(outputs: &[Output]) -> Vec<Vec<u8>> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(bytes) => Some(bytes.clone()),
            _ => None,
        })
        .collect()
}

fn timer(outputs: &[Output], which: Timer) -> Option<Duration> {
    outputs.iter().rev().find_map(|o| match o {
        Output::StartTimer(t, d) if *t == which => Some(*d),
        _ => None,
    })
}

/// Delivers everything in flight both ways until both sides are quiet or `rounds` is spent.
fn exchange(a: &mut Session, b: &mut Session, mut to_b: Vec<Vec<u8>>, rounds: usize) {
    let mut to_a = Vec::new();
    for _ in 0..rounds {
        if to_a.is_empty() && to_b.is_empty() {
            break;
        }
        let mut next_to_a = Vec::new();
        for bytes in to_b.drain(..) {
            next_to_a.extend(sent(&b.process(Input::ControlPacketReceived(bytes))));
        }
        let mut next_to_b = Vec::new();
        for bytes in to_a.drain(..) {
            next_to_b.extend(sent(&a.process(Input::ControlPacketReceived(bytes))));
        }
        to_a = next_to_a;
        to_b = next_to_b;
    }
}

fn up_pair(auth_a: Option<AuthKey>, auth_b: Option<AuthKey>) -> (Session, Session) {
    let mut a = Session::new(11, params(300, 3), auth_a, 1);
    let mut b = Session::new(22, params(300, 3), auth_b, 2);
    let first = sent(&a.process(Input::AdminUp));
    let _ = b.process(Input::AdminUp);
    exchange(&mut a, &mut b, first, 10);
    (a, b)
}

fn sha1(secret: &[u8], kind: AuthType) -> AuthKey {
    AuthKey {
        kind,
        key_id: 1,
        secret: secret.to_vec(),
    }
}

#[test]
fn three_way_handshake_brings_both_sides_up() {
    let (a, b) = up_pair(None, None);
    assert_eq!((a.state(), b.state()), (State::Up, State::Up));
    assert_eq!(a.remote_discriminator(), 22);
    assert_eq!(b.remote_discriminator(), 11);
}

#[test]
fn down_session_transmits_at_most_once_a_second_and_up_at_the_agreed_rate() {
    let mut a = Session::new(1, params(100, 3), None, 9);
    let out = a.process(Input::AdminUp);
    let first = ControlPacket::decode(&sent(&out)[0]).expect("decodes");
    assert_eq!(
        first.desired_min_tx, 1_000_000,
        "§6.8.3: at least 1 s while not Up"
    );
    let (a, _) = up_pair(None, None);
    assert_eq!(a.transmit_interval(), Some(Duration::from_millis(300)));
    assert_eq!(a.detection_time(), Duration::from_millis(900));
}

#[test]
fn transmit_timer_has_jitter_within_75_to_100_percent() {
    let (mut a, _) = up_pair(None, None);
    for _ in 0..200 {
        let out = a.process(Input::TransmitTimerExpires);
        let next = timer(&out, Timer::Transmit).expect("rescheduled");
        assert!(
            next >= Duration::from_millis(225) && next <= Duration::from_millis(300),
            "{next:?}"
        );
    }
}

#[test]
fn detection_time_expiry_takes_the_session_down_with_diagnostic_1() {
    let (mut a, _) = up_pair(None, None);
    let out = a.process(Input::DetectionTimerExpires);
    assert!(out.contains(&Output::StateChanged {
        from: State::Up,
        to: State::Down,
        diagnostic: Diagnostic::CONTROL_DETECTION_TIME_EXPIRED
    }));
    let packet = ControlPacket::decode(&sent(&out)[0]).expect("decodes");
    assert_eq!((packet.state, packet.diagnostic.0), (State::Down, 1));
    assert_eq!(packet.your_discriminator, 0, "the silent peer is forgotten");
}

#[test]
fn admin_down_from_the_peer_takes_us_down_with_diagnostic_3() {
    let (mut a, mut b) = up_pair(None, None);
    let out = b.process(Input::AdminDown);
    let bytes = sent(&out);
    assert_eq!(
        ControlPacket::decode(&bytes[0])
            .expect("decodes")
            .diagnostic
            .0,
        7
    );
    let out = a.process(Input::ControlPacketReceived(bytes[0].clone()));
    assert!(out.contains(&Output::StateChanged {
        from: State::Up,
        to: State::Down,
        diagnostic: Diagnostic::NEIGHBOR_SIGNALED_DOWN
    }));
}

#[test]
fn restarted_peer_with_a_new_discriminator_is_detected_and_comes_up_again() {
    let (mut a, _) = up_pair(None, None);
    let mut restarted = Session::new(33, params(300, 3), None, 5);
    let hello = sent(&restarted.process(Input::AdminUp));
    let out = a.process(Input::ControlPacketReceived(hello[0].clone()));
    assert_eq!(a.state(), State::Down, "remote Down while Up: {out:?}");
    exchange(&mut a, &mut restarted, sent(&out), 10);
    assert_eq!((a.state(), restarted.state()), (State::Up, State::Up));
}

#[test]
fn poll_is_answered_with_final_and_ends_the_poll_sequence() {
    let (mut a, mut b) = up_pair(None, None);
    let out = a.process(Input::ParametersChanged(params(50, 3)));
    let poll = ControlPacket::decode(&sent(&out)[0]).expect("decodes");
    assert!(poll.poll && !poll.final_);
    // Until the Final, the slower receive interval stays in force.
    assert_eq!(a.detection_time(), Duration::from_millis(900));
    let answer = sent(&b.process(Input::ControlPacketReceived(sent(&out)[0].clone())));
    let final_ = ControlPacket::decode(&answer[0]).expect("decodes");
    assert!(final_.final_ && !final_.poll);
    let _ = a.process(Input::ControlPacketReceived(answer[0].clone()));
    assert!(
        !ControlPacket::decode(&sent(&a.process(Input::TransmitTimerExpires))[0])
            .expect("decodes")
            .poll
    );
    // Now b's 300 ms transmit interval bounds our detection time: 3 × 300 ms.
    assert_eq!(a.detection_time(), Duration::from_millis(900));
    assert_eq!(a.transmit_interval(), Some(Duration::from_millis(300)));
}

#[test]
fn wrong_sha1_key_never_comes_up() {
    let (a, b) = up_pair(
        Some(sha1(b"right", AuthType::KeyedSha1)),
        Some(sha1(b"wrong", AuthType::KeyedSha1)),
    );
    assert_eq!((a.state(), b.state()), (State::Down, State::Down));
}

#[test]
fn same_sha1_key_comes_up_and_missing_auth_is_discarded() {
    let (a, b) = up_pair(
        Some(sha1(b"right", AuthType::MeticulousKeyedSha1)),
        Some(sha1(b"right", AuthType::MeticulousKeyedSha1)),
    );
    assert_eq!((a.state(), b.state()), (State::Up, State::Up));
    let (a, b) = up_pair(Some(sha1(b"right", AuthType::KeyedSha1)), None);
    assert_eq!((a.state(), b.state()), (State::Down, State::Down));
}

#[test]
fn meticulous_sha1_refuses_a_replayed_packet() {
    let key = sha1(b"k", AuthType::MeticulousKeyedSha1);
    let (mut a, mut b) = up_pair(Some(key.clone()), Some(key));
    let packet = sent(&b.process(Input::TransmitTimerExpires)).remove(0);
    let first = a.process(Input::ControlPacketReceived(packet.clone()));
    assert!(!first.iter().any(|o| matches!(o, Output::Discarded(_))));
    let replay = a.process(Input::ControlPacketReceived(packet));
    assert!(
        replay
            .iter()
            .any(|o| matches!(o, Output::Discarded(r) if r.contains("sequence"))),
        "{replay:?}"
    );
}

#[test]
fn packet_for_another_discriminator_is_discarded() {
    let (mut a, mut b) = up_pair(None, None);
    let mut bytes = sent(&b.process(Input::TransmitTimerExpires)).remove(0);
    bytes[8..12].copy_from_slice(&999u32.to_be_bytes());
    let out = a.process(Input::ControlPacketReceived(bytes));
    assert!(matches!(&out[..], [Output::Discarded(_)]), "{out:?}");
    assert_eq!(a.state(), State::Up);
}

proptest! {
    /// Whatever packets get lost and whichever timers fire first, once the link is clean
    /// again both sides come Up, and no output ever carries Poll and Final together.
    #[test]
    fn any_loss_pattern_recovers_once_the_link_is_clean(
        events in proptest::collection::vec((0u8..4, any::<bool>()), 0..60)
    ) {
        let mut a = Session::new(1, params(300, 3), None, 3);
        let mut b = Session::new(2, params(300, 3), None, 4);
        let mut to_b = sent(&a.process(Input::AdminUp));
        let mut to_a = sent(&b.process(Input::AdminUp));
        for (event, deliver) in events {
            let outputs = match event {
                0 => a.process(Input::TransmitTimerExpires),
                1 => b.process(Input::TransmitTimerExpires),
                2 => a.process(Input::DetectionTimerExpires),
                _ => b.process(Input::DetectionTimerExpires),
            };
            let bytes = sent(&outputs);
            if event % 2 == 0 { to_b.extend(bytes) } else { to_a.extend(bytes) }
            if deliver {
                for packet in to_b.drain(..).chain(to_a.drain(..)).collect::<Vec<_>>() {
                    let decoded = ControlPacket::decode(&packet).expect("we send valid packets");
                    prop_assert!(!(decoded.poll && decoded.final_));
                    let out = if decoded.my_discriminator == 1 {
                        b.process(Input::ControlPacketReceived(packet))
                    } else {
                        a.process(Input::ControlPacketReceived(packet))
                    };
                    if decoded.my_discriminator == 1 { to_a.extend(sent(&out)) } else { to_b.extend(sent(&out)) }
                }
            } else {
                to_a.clear();
                to_b.clear();
            }
        }
        // Clean link: periodic transmissions on both sides, everything delivered.
        for _ in 0..4 {
            to_b.extend(sent(&a.process(Input::TransmitTimerExpires)));
            to_a.extend(sent(&b.process(Input::TransmitTimerExpires)));
            exchange(&mut a, &mut b, std::mem::take(&mut to_b), 10);
            exchange(&mut b, &mut a, std::mem::take(&mut to_a), 10);
        }
        prop_assert_eq!((a.state(), b.state()), (State::Up, State::Up));
    }
}
