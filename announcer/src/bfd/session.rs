//! One BFD session's state machine (RFC 5880 §6.8, asynchronous mode), pure:
//! `Session::process(input) -> Vec<Output>`.
//!
//! It owns no socket and no clock. The I/O task (`task.rs`) feeds it inputs named after the
//! RFC 5880 sections they come from — a received packet (§6.8.6), the transmit timer (§6.8.7),
//! the detection timer (§6.8.4), a parameter change (§6.8.3), administrative up/down
//! (§6.8.16) — and carries out its outputs: send these bytes, (re)start or stop a timer,
//! report a state change.
//!
//! ```text
//!            remote Down                 remote Init/Up
//!  ┌──────┐ ───────────► ┌──────┐ ───────────────────► ┌────┐
//!  │ Down │              │ Init │                      │ Up │
//!  └──────┘ ◄─────────── └──────┘ ◄── remote Down ──── └────┘
//!     ▲      detection time / remote AdminDown            │
//!     └───────────── detection time, remote Down ─────────┘
//!  (Down → Up directly on remote Init)
//! ```
//!
//! Choices where the RFC leaves room: no demand mode and no echo function (we advertise
//! Required Min Echo RX 0); a packet goes out at once on every state change, besides the
//! periodic ones; while not Up we transmit at most once a second (§6.8.3); a parameter change
//! starts a Poll Sequence, and until the Final arrives the slower of old and new intervals is in
//! force so neither side ever sees a detection time it did not agree to.

use std::time::Duration;

use super::packet::{AuthKey, ControlPacket, Diagnostic, State, verify};

/// §6.8.3: the slowest transmit interval while the session is not Up.
pub const IDLE_TX: Duration = Duration::from_secs(1);

/// The timers of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Periodic transmission (§6.8.7).
    Transmit,
    /// No packet from the peer for the Detection Time (§6.8.4).
    Detection,
}

/// What the operator configured (§6.8.1 state variables they may set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameters {
    /// bfd.DesiredMinTxInterval once Up.
    pub desired_min_tx: Duration,
    /// bfd.RequiredMinRxInterval.
    pub required_min_rx: Duration,
    /// bfd.DetectMult.
    pub detect_mult: u8,
}

/// Inputs, each named after the RFC 5880 section that says what happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// §6.8.16 (leaving AdminDown): start the session in Down.
    AdminUp,
    /// §6.8.16: AdminDown, tell the peer with diagnostic 7.
    AdminDown,
    /// §6.8.6: bytes of a Control packet that arrived for this session.
    ControlPacketReceived(Vec<u8>),
    /// §6.8.7: time to transmit a periodic Control packet.
    TransmitTimerExpires,
    /// §6.8.4: Detection Time passed without a valid packet.
    DetectionTimerExpires,
    /// §6.8.3: new intervals or multiplier (starts a Poll Sequence).
    ParametersChanged(Parameters),
}

/// What the I/O task must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send these bytes to the peer's BFD port.
    Send(Vec<u8>),
    StartTimer(Timer, Duration),
    StopTimer(Timer),
    StateChanged {
        from: State,
        to: State,
        diagnostic: Diagnostic,
    },
    /// A received packet was discarded; the text says which check of §6.8.6 failed.
    Discarded(String),
}

/// The §6.8.1 state variables.
#[derive(Debug, Clone)]
pub struct Session {
    params: Parameters,
    /// Parameters in force before the Poll Sequence that is still running.
    previous: Option<Parameters>,
    auth: Option<AuthKey>,
    state: State,
    remote_state: State,
    local_discr: u32,
    remote_discr: u32,
    local_diag: Diagnostic,
    /// Microseconds, as last received.
    remote_min_rx: u32,
    remote_desired_min_tx: u32,
    remote_detect_mult: u8,
    polling: bool,
    rcv_auth_seq: u32,
    auth_seq_known: bool,
    xmit_auth_seq: u32,
    /// xorshift state for the transmit jitter of §6.8.7.
    jitter: u64,
}

impl Session {
    /// A session in AdminDown; `seed` feeds the transmit jitter and the first auth sequence
    /// number (§6.7.3 wants it random), so tests can be deterministic.
    pub fn new(local_discr: u32, params: Parameters, auth: Option<AuthKey>, seed: u64) -> Self {
        let mut jitter = seed | 1;
        let xmit_auth_seq = xorshift(&mut jitter) as u32;
        Session {
            params,
            previous: None,
            auth,
            state: State::AdminDown,
            remote_state: State::Down,
            local_discr,
            remote_discr: 0,
            local_diag: Diagnostic::NONE,
            remote_min_rx: 1,
            remote_desired_min_tx: 0,
            remote_detect_mult: 0,
            polling: false,
            rcv_auth_seq: 0,
            auth_seq_known: false,
            xmit_auth_seq,
            jitter,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn local_diagnostic(&self) -> Diagnostic {
        self.local_diag
    }

    pub fn local_discriminator(&self) -> u32 {
        self.local_discr
    }

    pub fn remote_discriminator(&self) -> u32 {
        self.remote_discr
    }

    /// The Detection Time in force (§6.8.4, asynchronous mode): the remote multiplier times
    /// the larger of our RequiredMinRx and the remote's DesiredMinTx.
    pub fn detection_time(&self) -> Duration {
        let rx = micros(self.effective_min_rx()).max(u64::from(self.remote_desired_min_tx));
        Duration::from_micros(rx * u64::from(self.remote_detect_mult.max(1)))
    }

    /// The interval between periodic packets before jitter (§6.8.7), or `None` when the peer
    /// asked for none (RemoteMinRxInterval 0).
    pub fn transmit_interval(&self) -> Option<Duration> {
        if self.remote_min_rx == 0 {
            return None;
        }
        let ours = micros(self.effective_min_tx());
        Some(Duration::from_micros(
            ours.max(u64::from(self.remote_min_rx)),
        ))
    }

    /// Applies one input and returns what to do, in order.
    pub fn process(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::AdminUp => {
                if self.state == State::AdminDown {
                    self.local_diag = Diagnostic::NONE;
                    self.set_state(&mut out, State::Down, Diagnostic::NONE);
                    self.transmit(&mut out, false);
                }
            }
            Input::AdminDown => {
                if self.state != State::AdminDown {
                    self.set_state(
                        &mut out,
                        State::AdminDown,
                        Diagnostic::ADMINISTRATIVELY_DOWN,
                    );
                    // §6.8.16: tell the peer before going silent.
                    self.send(&mut out, false);
                    out.push(Output::StopTimer(Timer::Transmit));
                    out.push(Output::StopTimer(Timer::Detection));
                }
            }
            Input::ControlPacketReceived(bytes) => self.receive(&mut out, &bytes),
            Input::TransmitTimerExpires => {
                if self.state != State::AdminDown {
                    self.transmit(&mut out, false);
                }
            }
            Input::DetectionTimerExpires => self.detection_expired(&mut out),
            Input::ParametersChanged(params) => {
                if params != self.params {
                    self.previous.get_or_insert_with(|| self.params.clone());
                    self.params = params;
                    self.polling = true;
                    if self.state != State::AdminDown {
                        self.transmit(&mut out, false);
                    }
                }
            }
        }
        out
    }

    /// §6.8.6, in the RFC's order after the packet-only checks done by the codec.
    fn receive(&mut self, out: &mut Vec<Output>, bytes: &[u8]) {
        let packet = match ControlPacket::decode(bytes) {
            Ok(packet) => packet,
            Err(error) => return out.push(Output::Discarded(error.to_string())),
        };
        if packet.your_discriminator != 0 && packet.your_discriminator != self.local_discr {
            return out.push(Output::Discarded(format!(
                "your discriminator {} is not ours ({})",
                packet.your_discriminator, self.local_discr
            )));
        }
        if packet.your_discriminator == 0 && !matches!(packet.state, State::Down | State::AdminDown)
        {
            return out.push(Output::Discarded(format!(
                "your discriminator 0 in state {}",
                packet.state.name()
            )));
        }
        if let Err(reason) = self.authenticate(bytes, &packet) {
            return out.push(Output::Discarded(reason));
        }
        if packet.demand {
            // We never enter demand mode; a peer that does would stop sending. Treat its
            // packets as plain asynchronous ones (§6.6: demand is per direction).
        }
        self.remote_discr = packet.my_discriminator;
        self.remote_state = packet.state;
        self.remote_min_rx = packet.required_min_rx;
        self.remote_desired_min_tx = packet.desired_min_tx;
        self.remote_detect_mult = packet.detect_mult;
        if packet.final_ && self.polling {
            // §6.5: the Poll Sequence is over; the new parameters are in force.
            self.polling = false;
            self.previous = None;
        }
        if self.state == State::AdminDown {
            return;
        }
        let before = self.state;
        if packet.state == State::AdminDown {
            if self.state != State::Down {
                self.local_diag = Diagnostic::NEIGHBOR_SIGNALED_DOWN;
                self.set_state(out, State::Down, Diagnostic::NEIGHBOR_SIGNALED_DOWN);
            }
        } else {
            match (self.state, packet.state) {
                (State::Down, State::Down) => self.set_state(out, State::Init, Diagnostic::NONE),
                (State::Down, State::Init) => self.set_state(out, State::Up, Diagnostic::NONE),
                (State::Init, State::Init | State::Up) => {
                    self.set_state(out, State::Up, Diagnostic::NONE)
                }
                (State::Up, State::Down) => {
                    self.local_diag = Diagnostic::NEIGHBOR_SIGNALED_DOWN;
                    self.set_state(out, State::Down, Diagnostic::NEIGHBOR_SIGNALED_DOWN)
                }
                _ => {}
            }
        }
        // The detection timer runs while the peer talks to us (§6.8.4).
        out.push(Output::StartTimer(Timer::Detection, self.detection_time()));
        if packet.poll {
            // §6.8.7: answer a Poll with a Final at once.
            self.send(out, true);
        }
        if self.state != before {
            self.transmit(out, false);
        } else if self.transmit_interval().is_none() {
            out.push(Output::StopTimer(Timer::Transmit));
        }
    }

    /// §6.7.1: authentication present exactly when configured; §6.7.3/§6.7.4 sequence window.
    fn authenticate(&mut self, bytes: &[u8], packet: &ControlPacket) -> Result<(), String> {
        let Some(key) = &self.auth else {
            return match packet.auth {
                Some(_) => Err("authentication present but none configured".into()),
                None => Ok(()),
            };
        };
        let Some(section) = &packet.auth else {
            return Err("authentication missing".into());
        };
        if !verify(bytes, packet, key) {
            return Err(format!(
                "authentication failed (type {}, key id {})",
                section.auth_type, section.key_id
            ));
        }
        if section.auth_type == 1 {
            return Ok(());
        }
        let window = 3 * u32::from(packet.detect_mult);
        if self.auth_seq_known {
            let low = if key.kind.meticulous() {
                self.rcv_auth_seq.wrapping_add(1)
            } else {
                self.rcv_auth_seq
            };
            // Sequence space wraps (§6.7.3): compare distances from the low end.
            let distance = section.sequence.wrapping_sub(low);
            let span = window.saturating_sub(u32::from(key.kind.meticulous()));
            if distance > span {
                return Err(format!(
                    "sequence number {} outside [{low}, {}]",
                    section.sequence,
                    low.wrapping_add(span)
                ));
            }
        }
        self.rcv_auth_seq = section.sequence;
        self.auth_seq_known = true;
        Ok(())
    }

    fn detection_expired(&mut self, out: &mut Vec<Output>) {
        // §6.8.1: forget the peer once it has been silent this long.
        self.remote_discr = 0;
        self.remote_state = State::Down;
        self.remote_min_rx = 1;
        self.remote_desired_min_tx = 0;
        self.auth_seq_known = false;
        out.push(Output::StopTimer(Timer::Detection));
        if matches!(self.state, State::Init | State::Up) {
            self.local_diag = Diagnostic::CONTROL_DETECTION_TIME_EXPIRED;
            self.set_state(out, State::Down, Diagnostic::CONTROL_DETECTION_TIME_EXPIRED);
            self.transmit(out, false);
        }
    }

    /// Sends a periodic packet and schedules the next one with jitter (§6.8.7).
    fn transmit(&mut self, out: &mut Vec<Output>, final_: bool) {
        self.send(out, final_);
        match self.transmit_interval() {
            Some(interval) => {
                // 75–100 % of the interval, 75–90 % with a multiplier of 1.
                let top = if self.params.detect_mult == 1 { 15 } else { 25 };
                let cut = xorshift(&mut self.jitter) % (top + 1);
                let jittered = interval.mul_f64((100 - cut) as f64 / 100.0);
                out.push(Output::StartTimer(Timer::Transmit, jittered));
            }
            None => out.push(Output::StopTimer(Timer::Transmit)),
        }
    }

    fn send(&mut self, out: &mut Vec<Output>, final_: bool) {
        let packet = ControlPacket {
            diagnostic: self.local_diag,
            state: self.state,
            // §6.8.7: never Poll and Final together.
            poll: self.polling && !final_,
            final_,
            control_plane_independent: false,
            demand: false,
            multipoint: false,
            detect_mult: self.params.detect_mult,
            my_discriminator: self.local_discr,
            your_discriminator: self.remote_discr,
            desired_min_tx: self.advertised_min_tx(),
            required_min_rx: micros_u32(self.params.required_min_rx),
            required_min_echo_rx: 0,
            auth: None,
        };
        let key = self.auth.as_ref().map(|key| {
            if key.kind.meticulous() || self.xmit_auth_seq == 0 {
                self.xmit_auth_seq = self.xmit_auth_seq.wrapping_add(1);
            }
            (key, self.xmit_auth_seq)
        });
        out.push(Output::Send(packet.encode(key)));
    }

    /// §6.8.3: at least one second while not Up.
    fn advertised_min_tx(&self) -> u32 {
        let tx = if self.state == State::Up {
            self.params.desired_min_tx
        } else {
            self.params.desired_min_tx.max(IDLE_TX)
        };
        micros_u32(tx)
    }

    /// Our transmit interval: during a Poll Sequence the faster of old and new (a slower
    /// rate must wait for the Final, §6.8.3).
    fn effective_min_tx(&self) -> Duration {
        let current = Duration::from_micros(u64::from(self.advertised_min_tx()));
        match &self.previous {
            Some(old) if self.state == State::Up => current.min(old.desired_min_tx),
            _ => current,
        }
    }

    /// Our receive interval: during a Poll Sequence the slower of old and new (a faster
    /// rate must wait for the Final, §6.8.3).
    fn effective_min_rx(&self) -> Duration {
        match &self.previous {
            Some(old) => self.params.required_min_rx.max(old.required_min_rx),
            None => self.params.required_min_rx,
        }
    }

    fn set_state(&mut self, out: &mut Vec<Output>, to: State, diagnostic: Diagnostic) {
        if self.state == to {
            return;
        }
        let from = self.state;
        self.state = to;
        if to == State::Up {
            self.local_diag = Diagnostic::NONE;
        }
        if to == State::AdminDown {
            self.local_diag = diagnostic;
        }
        // Leaving or entering Up changes the advertised DesiredMinTx (§6.8.3 one-second
        // rule), which is a parameter change: poll for it.
        if (from == State::Up) != (to == State::Up) && self.params.desired_min_tx < IDLE_TX {
            self.polling = true;
        }
        out.push(Output::StateChanged {
            from,
            to,
            diagnostic,
        });
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

fn micros_u32(duration: Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}
