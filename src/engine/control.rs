//! Controls of a running test, for the web UI (Locust's Stop and Edit buttons):
//! stop it, change the user count and spawn rate of a closed-model test, and read
//! how many users run now.
//!
//! A resizable test's user count is a [`LiveUsers`] target, the same a Locust master
//! sets on a worker: the engine's spawner follows it as a [`super::LoadShape::Live`]
//! shape (read every 10 ms). The users count themselves in and out of
//! [`RunControl::active_users`] when they start and stop; nothing here is touched per
//! request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use tokio_util::sync::CancellationToken;

use super::LiveUsers;

/// Where a test is, in Locust's words (`ready`, `spawning`, `running`, `stopping`,
/// `stopped`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Started, still ramping up to the target users.
    Spawning,
    /// At its target (or an open-model or shaped test running).
    Running,
    /// Told to stop: users finish their in-flight requests.
    Stopping,
    /// Ended.
    Stopped,
}

impl RunState {
    /// Locust's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Spawning => "spawning",
            RunState::Running => "running",
            RunState::Stopping => "stopping",
            RunState::Stopped => "stopped",
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            0 => RunState::Spawning,
            1 => RunState::Running,
            2 => RunState::Stopping,
            _ => RunState::Stopped,
        }
    }
}

/// Why [`RunControl::swarm`] refused a change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SwarmError {
    /// The test follows a load shape or an arrival rate: its users are not a count.
    #[error(
        "this test's users follow its {0}; only a closed-model test without a load shape can change its user count"
    )]
    NotAdjustable(&'static str),
    /// `spawn_rate` is not a positive finite number.
    #[error("spawn_rate: expected a positive number of users per second, got {0}")]
    SpawnRate(f64),
    /// The test has ended.
    #[error("the test has ended")]
    Ended,
}

/// The controls of one running test. The engine holds one through
/// [`crate::engine::RunObservers::control`]; the web UI holds another handle.
#[derive(Debug)]
pub struct RunControl {
    stop: CancellationToken,
    users: Users,
    active_users: Arc<AtomicUsize>,
    state: AtomicU8,
}

/// A test's users: a target that may change, or fixed by what they follow.
#[derive(Debug)]
enum Users {
    Live(LiveUsers),
    Fixed {
        by: &'static str,
        users: u32,
        spawn_rate: f64,
    },
}

impl RunControl {
    /// Controls of a closed-model test of `users` started at `spawn_rate` whose count
    /// may change.
    pub fn adjustable(users: u32, spawn_rate: f64) -> Self {
        Self::new(Users::Live(LiveUsers::new(users, spawn_rate)))
    }

    /// Controls of a test whose users follow `what` (`load shape`, `arrival rate`):
    /// it can be stopped, not resized.
    pub fn fixed(what: &'static str, users: u32, spawn_rate: f64) -> Self {
        Self::new(Users::Fixed {
            by: what,
            users,
            spawn_rate,
        })
    }

    fn new(users: Users) -> Self {
        Self {
            stop: CancellationToken::new(),
            users,
            active_users: Arc::new(AtomicUsize::new(0)),
            state: AtomicU8::new(0),
        }
    }

    /// Stops the test: users finish their in-flight request, as at the end of its
    /// test time. Later actions of the script still run.
    pub fn stop(&self) {
        if self.state() != RunState::Stopped {
            self.set_state(RunState::Stopping);
        }
        self.stop.cancel();
    }

    /// Cancelled once [`RunControl::stop`] was called.
    pub fn stopped(&self) -> &CancellationToken {
        &self.stop
    }

    /// Changes the target user count and the rate users start or stop at (Locust's
    /// `/swarm` on a running test).
    pub fn swarm(&self, users: u32, spawn_rate: f64) -> Result<(), SwarmError> {
        let live = match &self.users {
            Users::Fixed { by, .. } => return Err(SwarmError::NotAdjustable(by)),
            Users::Live(live) => live,
        };
        if !(spawn_rate > 0.0 && spawn_rate.is_finite()) {
            return Err(SwarmError::SpawnRate(spawn_rate));
        }
        if matches!(self.state(), RunState::Stopping | RunState::Stopped) {
            return Err(SwarmError::Ended);
        }
        live.set(users, spawn_rate);
        Ok(())
    }

    /// True when the user count may change.
    pub fn is_adjustable(&self) -> bool {
        matches!(self.users, Users::Live(_))
    }

    /// The target the spawner follows when the user count may change.
    pub(crate) fn live_users(&self) -> Option<&LiveUsers> {
        match &self.users {
            Users::Live(live) => Some(live),
            Users::Fixed { .. } => None,
        }
    }

    /// The user count the test aims at.
    pub fn target_users(&self) -> u32 {
        match &self.users {
            Users::Live(live) => live.target().0,
            Users::Fixed { users, .. } => *users,
        }
    }

    /// Users started per second on the way to the target.
    pub fn spawn_rate(&self) -> f64 {
        match &self.users {
            Users::Live(live) => live.target().1,
            Users::Fixed { spawn_rate, .. } => *spawn_rate,
        }
    }

    /// Users running now.
    pub fn active_users(&self) -> usize {
        self.active_users.load(Ordering::Relaxed)
    }

    /// The counter the engine's users count themselves in.
    pub(crate) fn active_users_counter(&self) -> Arc<AtomicUsize> {
        self.active_users.clone()
    }

    /// Where the test is.
    pub fn state(&self) -> RunState {
        RunState::from_u8(self.state.load(Ordering::Relaxed))
    }

    pub(crate) fn set_state(&self, state: RunState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }
}
