//! A test plan's slice for one execution segment ([`crate::Segment`]): user counts
//! (`user_count`, a shape's users, `max_users`) are split so that the slices add up
//! exactly, rates (`spawn_rate`, arrival rates) are divided by the instance count.

use super::{ArrivalRate, LoadShape, RateStage, Stage, TestPlan};
use crate::protocol::Protocol;
use crate::segment::Segment;

impl<P: Protocol> TestPlan<P> {
    /// This plan's slice for `segment`; the whole plan for `0/1`.
    #[must_use]
    pub fn for_segment(mut self, segment: &Segment) -> Self {
        self.users = segment.share(self.users);
        self.spawn_rate = segment.share_rate(self.spawn_rate);
        self.shape = self.shape.map(|s| s.for_segment(segment));
        self.arrival = self.arrival.map(|a| a.for_segment(segment));
        self
    }

    /// One line saying what this plan runs, e.g. `closed model: 4 users at 2.5/s`,
    /// for `loaddensity validate --segment`.
    pub fn describe(&self) -> String {
        if let Some(arrival) = &self.arrival {
            let unit = arrival.time_unit.as_secs_f64();
            let per = if (unit - 1.0).abs() < 1e-9 {
                "s".to_string()
            } else {
                format!("{unit}s")
            };
            let rates = if arrival.stages.is_empty() {
                format!("{}/{per}", round(arrival.start_rate))
            } else {
                let targets: Vec<String> = arrival
                    .stages
                    .iter()
                    .map(|s| format!("{}/{per}", round(s.target)))
                    .collect();
                format!(
                    "from {}/{per} through {}",
                    round(arrival.start_rate),
                    targets.join(", ")
                )
            };
            return format!(
                "open model: {rates} iterations, max_users {}",
                arrival.max_users
            );
        }
        match &self.shape {
            None => format!(
                "closed model: {} users at {}/s",
                self.users,
                round(self.spawn_rate)
            ),
            Some(LoadShape::Stages(stages)) => {
                let parts: Vec<String> = stages
                    .iter()
                    .map(|s| format!("{} users at {}/s", s.users, round(s.spawn_rate)))
                    .collect();
                format!("stages: {}", parts.join(", "))
            }
            Some(LoadShape::Spike {
                baseline_users,
                spike_users,
                spawn_rate,
                ..
            }) => format!(
                "spike: {baseline_users} baseline users, {spike_users} spike users at {}/s",
                round(*spawn_rate)
            ),
            Some(LoadShape::Soak {
                users, spawn_rate, ..
            }) => format!("soak: {users} users at {}/s", round(*spawn_rate)),
            Some(LoadShape::Constant { users, spawn_rate }) => {
                format!("closed model: {users} users at {}/s", round(*spawn_rate))
            }
            Some(LoadShape::Live(live)) => {
                format!("closed model: {} users, set while running", live.target().0)
            }
        }
    }
}

/// A rate with at most 3 decimals, without trailing zeros.
fn round(x: f64) -> String {
    let text = format!("{x:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl LoadShape {
    /// This shape's slice for `segment`.
    #[must_use]
    pub fn for_segment(self, segment: &Segment) -> Self {
        match self {
            // The master that sets it splits the users among its workers.
            LoadShape::Live(live) => LoadShape::Live(live),
            LoadShape::Constant { users, spawn_rate } => LoadShape::Constant {
                users: segment.share(users),
                spawn_rate: segment.share_rate(spawn_rate),
            },
            LoadShape::Stages(stages) => LoadShape::Stages(
                stages
                    .into_iter()
                    .map(|stage| Stage {
                        duration: stage.duration,
                        users: segment.share(stage.users),
                        spawn_rate: segment.share_rate(stage.spawn_rate),
                    })
                    .collect(),
            ),
            LoadShape::Spike {
                baseline_users,
                spike_users,
                spawn_rate,
                pre,
                spike,
                post,
            } => LoadShape::Spike {
                baseline_users: segment.share(baseline_users),
                spike_users: segment.share(spike_users),
                spawn_rate: segment.share_rate(spawn_rate),
                pre,
                spike,
                post,
            },
            LoadShape::Soak {
                users,
                spawn_rate,
                ramp,
                hold,
                cooldown,
            } => LoadShape::Soak {
                users: segment.share(users),
                spawn_rate: segment.share_rate(spawn_rate),
                ramp,
                hold,
                cooldown,
            },
        }
    }
}

impl ArrivalRate {
    /// This schedule's slice for `segment`: every rate divided by the instance count,
    /// and this instance's share of `max_users`.
    #[must_use]
    pub fn for_segment(self, segment: &Segment) -> Self {
        ArrivalRate {
            start_rate: segment.share_rate(self.start_rate),
            stages: self
                .stages
                .into_iter()
                .map(|stage| RateStage {
                    duration: stage.duration,
                    target: segment.share_rate(stage.target),
                })
                .collect(),
            time_unit: self.time_unit,
            max_users: segment.share(self.max_users),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn seg(i: u32, n: u32) -> Segment {
        Segment::new(i, n).expect("valid")
    }

    #[test]
    fn shapes_split_users_and_rates() {
        let shape = LoadShape::from_json(
            "stages",
            &json!({"stages": [{"duration": 1, "users": 10, "spawn_rate": 6}, {"duration": 1, "users": 2}]}),
        )
        .expect("parses");
        let slices: Vec<LoadShape> = (0..3)
            .map(|i| shape.clone().for_segment(&seg(i, 3)))
            .collect();
        let users_at = |t: u64| -> u32 {
            slices
                .iter()
                .map(|s| s.at(Duration::from_secs(t)).expect("running").0)
                .sum()
        };
        assert_eq!(users_at(0), 10);
        assert_eq!(users_at(1), 2);
        let (_, rate) = slices[0].at(Duration::ZERO).expect("running");
        assert!((rate - 2.0).abs() < 1e-9);
    }

    #[test]
    fn arrival_rates_divide() {
        let arrival = ArrivalRate::from_json(
            &json!({"stages": [{"duration": 2, "rate": 30}], "start_rate": 3, "max_users": 10}),
        )
        .expect("parses");
        let slice = arrival.clone().for_segment(&seg(2, 3));
        assert_eq!(slice.max_users, 4);
        assert!((slice.start_rate - 1.0).abs() < 1e-9);
        assert!((slice.stages[0].target - 10.0).abs() < 1e-9);
        let whole = arrival.iterations_by(Duration::from_secs(2));
        let parts: f64 = (0..3)
            .map(|i| {
                arrival
                    .clone()
                    .for_segment(&seg(i, 3))
                    .iterations_by(Duration::from_secs(2))
            })
            .sum();
        assert!((whole - parts).abs() < 1e-6);
    }
}
