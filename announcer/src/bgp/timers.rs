//! The deadlines of one session's FSM timers, on tokio's clock (so tests can pause it).
//!
//! The FSM says `StartTimer`/`StopTimer`; [`Timers::apply`] records the deadline and
//! [`Timers::expired`] waits for the earliest one and names it, for the session to feed back
//! as the matching `*TimerExpires` input.

use tokio::time::Instant;

use super::fsm::{Output, Timer};

/// Pending deadlines, one slot per timer.
#[derive(Debug, Default, Clone)]
pub struct Timers {
    deadlines: [Option<Instant>; 4],
}

fn slot(timer: Timer) -> usize {
    match timer {
        Timer::ConnectRetry => 0,
        Timer::Hold => 1,
        Timer::Keepalive => 2,
        Timer::IdleHold => 3,
    }
}

impl Timers {
    /// Records a timer output; other outputs are ignored.
    pub fn apply(&mut self, output: &Output) {
        match output {
            Output::StartTimer(timer, after) => {
                self.deadlines[slot(*timer)] = Some(Instant::now() + *after)
            }
            Output::StopTimer(timer) => self.deadlines[slot(*timer)] = None,
            _ => {}
        }
    }

    /// When `timer` fires, if it runs.
    pub fn deadline(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[slot(timer)]
    }

    /// Waits for the earliest running timer, stops it and returns it. Never returns while no
    /// timer runs (so it can sit in a `select!`).
    pub async fn expired(&mut self) -> Timer {
        let next = Timer::ALL
            .into_iter()
            .filter_map(|timer| self.deadline(timer).map(|at| (at, timer)))
            .min_by_key(|(at, _)| *at);
        match next {
            Some((at, timer)) => {
                tokio::time::sleep_until(at).await;
                self.deadlines[slot(timer)] = None;
                timer
            }
            None => std::future::pending().await,
        }
    }
}
