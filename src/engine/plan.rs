//! What a test run does: how many users, how fast they start, for how long, and
//! which tasks each runs.

use std::sync::Arc;
use std::time::Duration;

use super::{ArrivalRate, LoadShape, WaitTime};
use crate::protocol::Protocol;
use crate::scenario::Scenario;

/// A closed-model test (Locust's): `users` users loop over `tasks` of protocol `P`.
#[derive(Debug)]
pub struct TestPlan<P: Protocol> {
    /// Number of virtual users.
    pub users: u32,
    /// Users started per second.
    pub spawn_rate: f64,
    /// How long the test runs; `None` runs until interrupted.
    pub test_time: Option<Duration>,
    /// Pause after each pass over the tasks.
    pub wait: WaitTime,
    /// A load shape (`load_shape`); when set it decides the user count over time
    /// and ends the test, and `users` / `spawn_rate` are not used.
    pub shape: Option<LoadShape>,
    /// The open model (`arrival_rate`); when set, iterations start on its schedule and
    /// `users`, `spawn_rate`, `shape` and `wait` are not used.
    pub arrival: Option<ArrivalRate>,
    /// The scenario every user runs.
    pub scenario: Arc<Scenario<P>>,
}

impl<P: Protocol> TestPlan<P> {
    /// The user count over time: the load shape, or `users` at `spawn_rate`.
    pub fn shape(&self) -> LoadShape {
        self.shape.clone().unwrap_or(LoadShape::Constant {
            users: self.users,
            spawn_rate: self.spawn_rate,
        })
    }
}
