//! A user count set from outside while a closed-model test runs: what a Locust
//! master asks a worker for ([`crate::locust_worker`]) and what the web UI's `/swarm`
//! sets ([`super::RunControl`]). The spawner reads the target every tick and reports
//! how many users it runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A shared, changeable user target and the spawner's running count. Clones share
/// the same counts.
#[derive(Debug, Clone, Default)]
pub struct LiveUsers(Arc<LiveCounts>);

#[derive(Debug, Default)]
struct LiveCounts {
    target: AtomicU32,
    running: AtomicU32,
    /// The spawn rate's bits (`f64`); 0 bits means 0.0.
    rate: AtomicU64,
}

impl LiveUsers {
    /// A target of `users`, reached at `spawn_rate` users per second.
    pub fn new(users: u32, spawn_rate: f64) -> Self {
        let live = Self::default();
        live.set(users, spawn_rate);
        live
    }

    /// Sets the target: users start or retire (most recent first) at `spawn_rate`
    /// per second until `users` run.
    pub fn set(&self, users: u32, spawn_rate: f64) {
        let rate = if spawn_rate.is_finite() && spawn_rate > 0.0 {
            spawn_rate
        } else {
            IMMEDIATE
        };
        self.0.rate.store(rate.to_bits(), Ordering::Relaxed);
        self.0.target.store(users, Ordering::Release);
    }

    /// The target users and spawn rate.
    pub fn target(&self) -> (u32, f64) {
        let users = self.0.target.load(Ordering::Acquire);
        (users, f64::from_bits(self.0.rate.load(Ordering::Relaxed)))
    }

    /// Users running now, as the spawner last counted them (retired users finishing
    /// their last request are not counted).
    pub fn running(&self) -> u32 {
        self.0.running.load(Ordering::Acquire)
    }

    pub(crate) fn set_running(&self, users: u32) {
        self.0.running.store(users, Ordering::Release);
    }
}

/// The rate that starts or retires every missing user at the next tick.
pub const IMMEDIATE: f64 = 1e9;

impl PartialEq for LiveUsers {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_target_and_bad_rates_mean_immediate() {
        let live = LiveUsers::new(3, 2.0);
        let other = live.clone();
        other.set(7, f64::NAN);
        assert_eq!(live.target(), (7, IMMEDIATE));
        live.set_running(5);
        assert_eq!(other.running(), 5);
        assert_eq!(live, other);
        assert_ne!(live, LiveUsers::new(7, IMMEDIATE));
    }
}
