//! The BGP finite state machine of RFC 4271 §8, pure: `Fsm::process(input) -> Vec<Output>`.
//!
//! It owns no socket and no clock. The session task (`session.rs`) feeds it inputs — named after
//! the RFC 4271 §8.1 events they stand for — and carries out its outputs: connect, send a
//! message, start or stop a timer, close the connection, report the session up or down.
//!
//! ```text
//!  ManualStart ─► Idle ─► Connect ⇄ Active ─► OpenSent ─► OpenConfirm ─► Established
//!                  ▲                                                          │
//!                  └──── any error, NOTIFICATION, hold timer, ManualStop ◄────┘
//! ```
//!
//! Simplifications, as an announce-only speaker with one connection per peer allows:
//! DelayOpen and connection collision detection (§6.8) are not used, since a peer is either
//! active or passive; after a failure the machine restarts by itself after the ConnectRetry time
//! (the optional IdleHoldTimer of §8.1.1 doubles as AutomaticStart, event 3).

use std::net::Ipv4Addr;
use std::time::Duration;

use super::codec::{
    Capability, DecodeError, ErrorAction, Family, GracefulRestartFamily, Message, Notification,
    Open,
};

/// The `Down` reason of a manual stop (not an error, so not reported as the last error).
pub const STOPPED: &str = "stopped";

/// RFC 4271 §8.2.2: the hold timer while waiting for the peer's OPEN ("4 minutes suggested").
pub const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);

/// The session states of RFC 4271 §8.2.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

/// The timers of RFC 4271 §10 (plus the optional IdleHoldTimer of §8.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    ConnectRetry,
    Hold,
    Keepalive,
    IdleHold,
}

impl From<Timer> for Input {
    /// The RFC 4271 §8.1.3 event of an expired timer.
    fn from(timer: Timer) -> Input {
        match timer {
            Timer::ConnectRetry => Input::ConnectRetryTimerExpires,
            Timer::Hold => Input::HoldTimerExpires,
            Timer::Keepalive => Input::KeepaliveTimerExpires,
            Timer::IdleHold => Input::IdleHoldTimerExpires,
        }
    }
}

impl Timer {
    pub const ALL: [Timer; 4] = [
        Timer::ConnectRetry,
        Timer::Hold,
        Timer::Keepalive,
        Timer::IdleHold,
    ];
}

/// What configures one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsmConfig {
    pub local_asn: u32,
    pub peer_asn: u32,
    pub router_id: Ipv4Addr,
    /// Hold time offered in our OPEN, seconds (0 = no keepalives).
    pub hold_time: u16,
    /// Keepalive interval; `None` = a third of the negotiated hold time.
    pub keepalive: Option<u16>,
    pub connect_retry: Duration,
    /// Wait for the peer to connect (RFC 4271 §8.1.1 PassiveTcpEstablishment).
    pub passive: bool,
    /// Families we announce (multiprotocol capabilities).
    pub families: Vec<Family>,
    /// Graceful restart time to advertise (RFC 4724), or `None` for no capability.
    pub graceful_restart: Option<u16>,
    /// This process restarted after advertising routes (see `restart.rs`): the Restart State
    /// bit of RFC 4724 §3 is set, telling the peer not to wait for our End-of-RIB.
    pub restarting: bool,
}

impl FsmConfig {
    /// Our OPEN message (RFC 4271 §4.2 with the capabilities of RFC 4760, 2918, 6793, 4724).
    pub fn open(&self) -> Open {
        let mut caps: Vec<Capability> = self
            .families
            .iter()
            .map(|family| Capability::Multiprotocol(*family))
            .collect();
        caps.push(Capability::RouteRefresh);
        caps.push(Capability::FourOctetAs(self.local_asn));
        if let Some(restart_time) = self.graceful_restart {
            caps.push(Capability::GracefulRestart {
                restarting: self.restarting,
                restart_time: restart_time.min(0x0fff),
                // The node keeps forwarding while the announcer restarts.
                families: self
                    .families
                    .iter()
                    .map(|family| GracefulRestartFamily {
                        family: *family,
                        forwarding_preserved: true,
                    })
                    .collect(),
            });
        }
        Open::new(self.local_asn, self.hold_time, self.router_id, caps)
    }
}

/// What both OPENs agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub hold_time: u16,
    pub keepalive: u16,
    pub four_octet_as: bool,
    /// Families both sides offered; only these are sent.
    pub families: Vec<Family>,
    pub route_refresh: bool,
    pub graceful_restart: bool,
    pub peer_asn: u32,
    pub peer_id: Ipv4Addr,
    /// Names for status: "mp-ipv4-unicast", "4-octet-as", "route-refresh", ...
    pub capabilities: Vec<String>,
}

/// Inputs, each named after the RFC 4271 §8.1 event it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Event 1 (ManualStart) or 4 (ManualStart_with_PassiveTcpEstablishment), per config.
    ManualStart,
    /// Event 2: ManualStop. We send a Cease NOTIFICATION with this subcode data.
    ManualStop(Notification),
    /// Event 9.
    ConnectRetryTimerExpires,
    /// Event 10.
    HoldTimerExpires,
    /// Event 11.
    KeepaliveTimerExpires,
    /// Event 13 (IdleHoldTimer_Expires), used as AutomaticStart (event 3).
    IdleHoldTimerExpires,
    /// Event 16 (Tcp_CR_Acked) / 17 (TcpConnectionConfirmed): a connection exists.
    TcpConnectionConfirmed,
    /// Event 18: the connection failed or closed; the text says why.
    TcpConnectionFails(String),
    /// Events 19-28: a message arrived.
    Message(Message),
    /// Events 21, 22, 28 (BGPHeaderErr, BGPOpenMsgErr, UpdateMsgErr): a message did not decode.
    MessageError(DecodeError),
}

/// What the session task must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Open a TCP connection to the peer (RFC 4271 "initiates a TCP connection").
    Connect,
    Send(Message),
    StartTimer(Timer, Duration),
    StopTimer(Timer),
    /// Drop the TCP connection.
    CloseConnection,
    StateChanged {
        from: State,
        to: State,
    },
    /// The session is Established: send the full route set, then End-of-RIB.
    Established(Negotiated),
    /// The session left a connected state; `reason` becomes the peer's last error.
    Down {
        reason: String,
        was_established: bool,
    },
    /// The peer asked for our routes again (RFC 2918 §4): resend them.
    RouteRefreshRequested(Family),
    /// A received UPDATE was malformed and treated as withdraw (RFC 7606); session stays up.
    UpdateError(String),
}

/// One BGP session's state machine.
#[derive(Debug, Clone)]
pub struct Fsm {
    config: FsmConfig,
    state: State,
    negotiated: Option<Negotiated>,
}

impl Fsm {
    pub fn new(config: FsmConfig) -> Self {
        Fsm {
            config,
            state: State::Idle,
            negotiated: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Sets our BGP identifier once the connection's local address is known (before OPEN).
    pub fn set_router_id(&mut self, router_id: Ipv4Addr) {
        self.config.router_id = router_id;
    }

    /// What was negotiated, while the session is OpenConfirm or Established.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// Applies one input (RFC 4271 §8.2.2) and returns what to do, in order.
    pub fn process(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match (self.state, input) {
            (State::Idle, Input::ManualStart | Input::IdleHoldTimerExpires) => self.start(&mut out),
            (State::Idle, _) => {}
            (_, Input::ManualStart) => {}
            (_, Input::IdleHoldTimerExpires) => {}
            (State::Connect | State::Active, Input::ManualStop(_)) => {
                self.go_idle(&mut out, None, STOPPED.into(), false)
            }
            (_, Input::ManualStop(cease)) => {
                self.go_idle(&mut out, Some(cease), STOPPED.into(), false)
            }
            (State::Connect | State::Active, Input::ConnectRetryTimerExpires) => {
                out.push(Output::StartTimer(
                    Timer::ConnectRetry,
                    self.config.connect_retry,
                ));
                if !self.config.passive {
                    out.push(Output::Connect);
                    self.set_state(&mut out, State::Connect);
                }
            }
            (State::Connect | State::Active, Input::TcpConnectionConfirmed) => {
                out.push(Output::StopTimer(Timer::ConnectRetry));
                out.push(Output::Send(Message::Open(self.config.open())));
                out.push(Output::StartTimer(Timer::Hold, OPEN_HOLD_TIME));
                self.set_state(&mut out, State::OpenSent);
            }
            (State::Connect | State::Active, Input::TcpConnectionFails(reason)) => {
                out.push(Output::CloseConnection);
                out.push(Output::StartTimer(
                    Timer::ConnectRetry,
                    self.config.connect_retry,
                ));
                out.push(Output::Down {
                    reason,
                    was_established: false,
                });
                self.set_state(&mut out, State::Active);
            }
            (State::Connect | State::Active, _) => {
                // A message or timer without a connection: RFC 4271 §8.2.2 "any other event".
                self.go_idle(
                    &mut out,
                    None,
                    "unexpected event before the connection".into(),
                    true,
                )
            }
            // A second connection while one is open: the session task refuses it (no collision
            // detection, §6.8, since each peer is either active or passive).
            (_, Input::TcpConnectionConfirmed) => {}
            (_, Input::TcpConnectionFails(reason)) => self.go_idle(&mut out, None, reason, true),
            (_, Input::HoldTimerExpires) => self.go_idle(
                &mut out,
                Some(Notification::new(Notification::HOLD_TIMER_EXPIRED, 0)),
                "hold timer expired".into(),
                true,
            ),
            (_, Input::ConnectRetryTimerExpires) => {}
            (State::OpenSent, Input::KeepaliveTimerExpires) => {}
            (_, Input::KeepaliveTimerExpires) => {
                out.push(Output::Send(Message::Keepalive));
                if let Some(negotiated) = &self.negotiated {
                    out.push(Output::StartTimer(
                        Timer::Keepalive,
                        secs(negotiated.keepalive),
                    ));
                }
            }
            (_, Input::MessageError(error)) => self.message_error(&mut out, error),
            (_, Input::Message(Message::Notification(notification))) => self.go_idle(
                &mut out,
                None,
                format!("NOTIFICATION received: {notification}"),
                true,
            ),
            (State::OpenSent, Input::Message(Message::Open(open))) => {
                self.open_received(&mut out, open)
            }
            (State::OpenSent, Input::Message(other)) => self.unexpected(&mut out, &other, 1),
            (State::OpenConfirm, Input::Message(Message::Keepalive)) => {
                self.restart_hold(&mut out);
                self.set_state(&mut out, State::Established);
                if let Some(negotiated) = &self.negotiated {
                    out.push(Output::Established(negotiated.clone()));
                }
            }
            (State::OpenConfirm, Input::Message(other)) => self.unexpected(&mut out, &other, 2),
            (State::Established, Input::Message(Message::Open(open))) => {
                self.unexpected(&mut out, &Message::Open(open), 3)
            }
            (State::Established, Input::Message(Message::Keepalive | Message::Update(_))) => {
                // Received routes are discarded: we only announce.
                self.restart_hold(&mut out);
            }
            (State::Established, Input::Message(Message::RouteRefresh(refresh))) => {
                self.restart_hold(&mut out);
                let negotiated = self
                    .negotiated
                    .as_ref()
                    .is_some_and(|n| n.families.contains(&refresh.family));
                // RFC 2918 §4: a request for a family not negotiated is ignored.
                if negotiated && refresh.subtype == 0 {
                    out.push(Output::RouteRefreshRequested(refresh.family));
                }
            }
        }
        out
    }

    fn start(&mut self, out: &mut Vec<Output>) {
        out.push(Output::StopTimer(Timer::IdleHold));
        if self.config.passive {
            // Event 4: wait for the peer in Active.
            self.set_state(out, State::Active);
        } else {
            out.push(Output::StartTimer(
                Timer::ConnectRetry,
                self.config.connect_retry,
            ));
            out.push(Output::Connect);
            self.set_state(out, State::Connect);
        }
    }

    /// RFC 4271 §6.2 checks on the peer's OPEN, then negotiation (§4.2: hold time is the
    /// smaller of both; RFC 5492 capabilities).
    fn open_received(&mut self, out: &mut Vec<Output>, open: Open) {
        let peer_asn = open.asn();
        if peer_asn != self.config.peer_asn {
            let data = open.my_as.to_be_bytes();
            return self.go_idle(
                out,
                Some(Notification::with_data(
                    Notification::OPEN_MESSAGE_ERROR,
                    2,
                    data,
                )),
                format!(
                    "peer sent AS {peer_asn}, configured peer AS is {}",
                    self.config.peer_asn
                ),
                true,
            );
        }
        if peer_asn == self.config.local_asn && open.bgp_identifier == self.config.router_id {
            // RFC 6286 §2.2: within an AS the identifiers must differ.
            return self.go_idle(
                out,
                Some(Notification::new(Notification::OPEN_MESSAGE_ERROR, 3)),
                format!(
                    "iBGP peer uses our own BGP identifier {}",
                    open.bgp_identifier
                ),
                true,
            );
        }
        let hold_time = self.config.hold_time.min(open.hold_time);
        let keepalive = match (hold_time, self.config.keepalive) {
            (0, _) => 0,
            (hold, Some(configured)) => configured.clamp(1, (hold / 3).max(1)),
            (hold, None) => (hold / 3).max(1),
        };
        let four_octet_as = open.has(|cap| matches!(cap, Capability::FourOctetAs(_)));
        let families: Vec<Family> = self
            .config
            .families
            .iter()
            .copied()
            .filter(|family| open.supports(*family))
            .collect();
        let route_refresh = open.has(|cap| matches!(cap, Capability::RouteRefresh));
        let graceful_restart = self.config.graceful_restart.is_some()
            && open.has(|cap| matches!(cap, Capability::GracefulRestart { .. }));
        let mut capabilities: Vec<String> = families
            .iter()
            .map(|family| format!("mp-{family}"))
            .collect();
        if four_octet_as {
            capabilities.push("4-octet-as".into());
        }
        if route_refresh {
            capabilities.push("route-refresh".into());
        }
        if graceful_restart {
            capabilities.push("graceful-restart".into());
        }
        let negotiated = Negotiated {
            hold_time,
            keepalive,
            four_octet_as,
            families,
            route_refresh,
            graceful_restart,
            peer_asn,
            peer_id: open.bgp_identifier,
            capabilities,
        };
        out.push(Output::Send(Message::Keepalive));
        if hold_time == 0 {
            out.push(Output::StopTimer(Timer::Hold));
        } else {
            out.push(Output::StartTimer(Timer::Keepalive, secs(keepalive)));
            out.push(Output::StartTimer(Timer::Hold, secs(hold_time)));
        }
        self.negotiated = Some(negotiated);
        self.set_state(out, State::OpenConfirm);
    }

    fn message_error(&mut self, out: &mut Vec<Output>, error: DecodeError) {
        match error.action {
            ErrorAction::TreatAsWithdraw if self.state == State::Established => {
                self.restart_hold(out);
                out.push(Output::UpdateError(error.reason));
            }
            ErrorAction::TreatAsWithdraw => {
                // An UPDATE before Established is itself an FSM error.
                let notification =
                    Notification::new(Notification::FSM_ERROR, self.fsm_error_subcode());
                self.go_idle(out, Some(notification), error.reason, true)
            }
            ErrorAction::SendNotification(notification) => {
                let reason = format!("sent NOTIFICATION {notification}: {}", error.reason);
                self.go_idle(out, Some(notification), reason, true)
            }
        }
    }

    /// RFC 6608 §4 FSM error subcodes: 1 OpenSent, 2 OpenConfirm, 3 Established.
    fn fsm_error_subcode(&self) -> u8 {
        match self.state {
            State::OpenSent => 1,
            State::OpenConfirm => 2,
            State::Established => 3,
            _ => 0,
        }
    }

    fn unexpected(&mut self, out: &mut Vec<Output>, message: &Message, subcode: u8) {
        let reason = format!("unexpected {} in state {:?}", message.kind(), self.state);
        self.go_idle(
            out,
            Some(Notification::new(Notification::FSM_ERROR, subcode)),
            reason,
            true,
        )
    }

    /// Leaves for Idle: optional NOTIFICATION, close, stop timers, report, and — unless the
    /// stop was manual — schedule an automatic restart.
    fn go_idle(
        &mut self,
        out: &mut Vec<Output>,
        notify: Option<Notification>,
        reason: String,
        automatic_restart: bool,
    ) {
        let was_established = self.state == State::Established;
        if let Some(notification) = notify {
            out.push(Output::Send(Message::Notification(notification)));
        }
        out.push(Output::CloseConnection);
        for timer in [Timer::ConnectRetry, Timer::Hold, Timer::Keepalive] {
            out.push(Output::StopTimer(timer));
        }
        out.push(Output::Down {
            reason,
            was_established,
        });
        self.negotiated = None;
        self.set_state(out, State::Idle);
        if automatic_restart {
            out.push(Output::StartTimer(
                Timer::IdleHold,
                self.config.connect_retry,
            ));
        }
    }

    fn restart_hold(&self, out: &mut Vec<Output>) {
        if let Some(negotiated) = &self.negotiated
            && negotiated.hold_time > 0
        {
            out.push(Output::StartTimer(Timer::Hold, secs(negotiated.hold_time)));
        }
    }

    fn set_state(&mut self, out: &mut Vec<Output>, to: State) {
        if self.state != to {
            out.push(Output::StateChanged {
                from: self.state,
                to,
            });
            self.state = to;
        }
    }
}

fn secs(seconds: u16) -> Duration {
    Duration::from_secs(u64::from(seconds))
}
