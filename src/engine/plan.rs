//! What a test run does: how many users, how fast they start, for how long, and
//! which tasks each runs.

use std::time::Duration;

use super::WaitTime;
use crate::task::Task;

/// A closed-model test (Locust's): `users` users loop over `tasks`.
#[derive(Debug, Clone)]
pub struct TestPlan {
    /// Number of virtual users.
    pub users: u32,
    /// Users started per second.
    pub spawn_rate: f64,
    /// How long the test runs; `None` runs until interrupted.
    pub test_time: Option<Duration>,
    /// Pause after each pass over the tasks.
    pub wait: WaitTime,
    /// The scenario every user runs, in order.
    pub tasks: Vec<Task>,
}
