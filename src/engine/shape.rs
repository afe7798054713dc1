//! Load shapes (LoadDensity's `load_shape` + `shape_config`): the target user count
//! and spawn rate at each moment of the test. The plain closed model is the constant
//! shape.

use std::time::Duration;

use serde_json::{Map, Value};

use super::LiveUsers;

/// One stage of the `stages` shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// This stage's own length.
    pub duration: Duration,
    /// Target users during the stage.
    pub users: u32,
    /// Users started or stopped per second to reach the target.
    pub spawn_rate: f64,
}

/// How many users should run over time.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadShape {
    /// `user_count` users, started at `spawn_rate`, until the test time ends.
    Constant {
        /// Users.
        users: u32,
        /// Users started per second.
        spawn_rate: f64,
    },
    /// Stages in order; the test ends after the last.
    Stages(Vec<Stage>),
    /// A target set from outside while the test runs (a Locust master's); never ends
    /// by itself.
    Live(LiveUsers),
    /// Baseline, then spike, then baseline.
    Spike {
        /// Users before and after the spike.
        baseline_users: u32,
        /// Users during the spike.
        spike_users: u32,
        /// Users started or stopped per second.
        spawn_rate: f64,
        /// Baseline before the spike.
        pre: Duration,
        /// The spike.
        spike: Duration,
        /// Baseline after the spike.
        post: Duration,
    },
    /// Linear ramp up, hold, linear ramp down.
    Soak {
        /// Users while holding.
        users: u32,
        /// Users started or stopped per second.
        spawn_rate: f64,
        /// Ramp-up time.
        ramp: Duration,
        /// Hold time.
        hold: Duration,
        /// Ramp-down time.
        cooldown: Duration,
    },
}

/// The shape names `load_shape` accepts.
pub const SHAPES: &[&str] = &["stages", "spike", "soak"];

impl LoadShape {
    /// The most users the shape ever asks for; `None` for a live target (set from
    /// outside, unknown in advance).
    pub fn peak_users(&self) -> Option<u32> {
        match self {
            LoadShape::Constant { users, .. } | LoadShape::Soak { users, .. } => Some(*users),
            LoadShape::Stages(stages) => Some(stages.iter().map(|s| s.users).max().unwrap_or(0)),
            LoadShape::Live(_) => None,
            LoadShape::Spike {
                baseline_users,
                spike_users,
                ..
            } => Some((*baseline_users).max(*spike_users)),
        }
    }

    /// Target users and spawn rate at `t` since the start; `None` once the shape has
    /// ended.
    pub fn at(&self, t: Duration) -> Option<(u32, f64)> {
        match self {
            LoadShape::Constant { users, spawn_rate } => Some((*users, *spawn_rate)),
            LoadShape::Live(live) => Some(live.target()),
            LoadShape::Stages(stages) => {
                let mut end = Duration::ZERO;
                stages.iter().find_map(|stage| {
                    end += stage.duration;
                    (t < end).then_some((stage.users, stage.spawn_rate))
                })
            }
            LoadShape::Spike {
                baseline_users,
                spike_users,
                spawn_rate,
                pre,
                spike,
                post,
            } => {
                if t < *pre {
                    Some((*baseline_users, *spawn_rate))
                } else if t < *pre + *spike {
                    Some((*spike_users, *spawn_rate))
                } else if t < *pre + *spike + *post {
                    Some((*baseline_users, *spawn_rate))
                } else {
                    None
                }
            }
            LoadShape::Soak {
                users,
                spawn_rate,
                ramp,
                hold,
                cooldown,
            } => {
                let fraction = |elapsed: Duration, of: Duration| {
                    if of.is_zero() {
                        1.0
                    } else {
                        (elapsed.as_secs_f64() / of.as_secs_f64()).clamp(0.0, 1.0)
                    }
                };
                let target = |f: f64| (f64::from(*users) * f).ceil() as u32;
                if t < *ramp {
                    Some((target(fraction(t, *ramp)), *spawn_rate))
                } else if t < *ramp + *hold {
                    Some((*users, *spawn_rate))
                } else if t < *ramp + *hold + *cooldown {
                    let down = fraction(t - *ramp - *hold, *cooldown);
                    Some((target(1.0 - down), *spawn_rate))
                } else {
                    None
                }
            }
        }
    }

    /// Parses `load_shape` and `shape_config`. The error is (field, message).
    pub fn from_json(name: &str, config: &Value) -> Result<Self, (String, String)> {
        let empty = Map::new();
        let config = match config {
            Value::Null => &empty,
            Value::Object(map) => map,
            other => {
                return Err((
                    "shape_config".into(),
                    format!("expected a dict, got {other}"),
                ));
            }
        };
        let reader = Config { map: config };
        match name {
            "stages" => {
                reader.only(&["stages"])?;
                let stages = config
                    .get("stages")
                    .and_then(Value::as_array)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        (
                            "shape_config.stages".to_string(),
                            "expected a non-empty list of {\"duration\", \"users\", \"spawn_rate\"}"
                                .to_string(),
                        )
                    })?;
                let stages = stages
                    .iter()
                    .enumerate()
                    .map(|(i, stage)| parse_stage(stage, i))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(LoadShape::Stages(stages))
            }
            "spike" => {
                reader.only(&[
                    "baseline_users",
                    "spike_users",
                    "spawn_rate",
                    "pre_seconds",
                    "spike_seconds",
                    "post_seconds",
                ])?;
                let baseline_users = reader.users("baseline_users", 0)?;
                Ok(LoadShape::Spike {
                    baseline_users,
                    spike_users: reader.users("spike_users", baseline_users)?,
                    spawn_rate: reader.rate("spawn_rate", 10.0)?,
                    pre: reader.seconds("pre_seconds", 30.0)?,
                    spike: reader.seconds("spike_seconds", 30.0)?,
                    post: reader.seconds("post_seconds", 30.0)?,
                })
            }
            "soak" => {
                reader.only(&[
                    "users",
                    "spawn_rate",
                    "ramp_seconds",
                    "hold_seconds",
                    "cooldown_seconds",
                ])?;
                if !config.contains_key("users") {
                    return Err(("shape_config.users".into(), "missing field".into()));
                }
                let users = reader.users("users", 0)?;
                Ok(LoadShape::Soak {
                    users,
                    spawn_rate: reader.rate("spawn_rate", (f64::from(users) / 10.0).max(1.0))?,
                    ramp: reader.seconds("ramp_seconds", 60.0)?,
                    hold: reader.seconds("hold_seconds", 600.0)?,
                    cooldown: reader.seconds("cooldown_seconds", 60.0)?,
                })
            }
            other => Err((
                "load_shape".into(),
                format!(
                    "unknown shape `{other}`; expected one of: {}",
                    SHAPES.join(", ")
                ),
            )),
        }
    }
}

/// A stage's `spawn_rate` when it gives none (LoadDensity's default).
const STAGE_SPAWN_RATE: f64 = 1.0;

fn parse_stage(stage: &Value, index: usize) -> Result<Stage, (String, String)> {
    let map = stage.as_object().ok_or_else(|| {
        (
            format!("shape_config.stages[{index}]"),
            format!("expected {{\"duration\", \"users\", \"spawn_rate\"}}, got {stage}"),
        )
    })?;
    let reader = Config { map };
    let prefix = format!("stages[{index}].");
    reader
        .only(&["duration", "users", "spawn_rate"])
        .map_err(|(f, m)| {
            (
                f.replace("shape_config.", &format!("shape_config.{prefix}")),
                m,
            )
        })?;
    let field = |(f, m): (String, String)| {
        (
            f.replace("shape_config.", &format!("shape_config.{prefix}")),
            m,
        )
    };
    for required in ["duration", "users"] {
        if !map.contains_key(required) {
            return Err((
                format!("shape_config.{prefix}{required}"),
                "missing field".into(),
            ));
        }
    }
    Ok(Stage {
        duration: reader.seconds("duration", 0.0).map_err(field)?,
        users: reader.users("users", 0).map_err(field)?,
        // LoadDensity's `_stages_tick`: a stage without `spawn_rate` ramps at 1 user/s.
        spawn_rate: reader.rate("spawn_rate", STAGE_SPAWN_RATE).map_err(field)?,
    })
}

struct Config<'a> {
    map: &'a Map<String, Value>,
}

impl Config<'_> {
    fn only(&self, keys: &[&str]) -> Result<(), (String, String)> {
        match self.map.keys().find(|k| !keys.contains(&k.as_str())) {
            Some(key) => Err((
                format!("shape_config.{key}"),
                format!("unknown key; expected one of: {}", keys.join(", ")),
            )),
            None => Ok(()),
        }
    }

    fn number(&self, key: &str) -> Result<Option<f64>, (String, String)> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(other) => Err((
                format!("shape_config.{key}"),
                format!("expected a number, got {other}"),
            )),
        }
    }

    fn users(&self, key: &str, default: u32) -> Result<u32, (String, String)> {
        match self.number(key)? {
            None => Ok(default),
            Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= f64::from(u32::MAX) => Ok(n as u32),
            Some(n) => Err((
                format!("shape_config.{key}"),
                format!("expected a whole number of users >= 0, got {n}"),
            )),
        }
    }

    fn rate(&self, key: &str, default: f64) -> Result<f64, (String, String)> {
        match self.number(key)? {
            None => Ok(default),
            Some(n) if n > 0.0 && n.is_finite() => Ok(n),
            Some(n) => Err((
                format!("shape_config.{key}"),
                format!("expected a positive number of users per second, got {n}"),
            )),
        }
    }

    fn seconds(&self, key: &str, default: f64) -> Result<Duration, (String, String)> {
        match self.number(key)?.unwrap_or(default) {
            n if n >= 0.0 && n.is_finite() && n < 1e9 => Ok(Duration::from_secs_f64(n)),
            n => Err((
                format!("shape_config.{key}"),
                format!("expected a number of seconds >= 0, got {n}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn stages_spike_soak_over_time() {
        let stages = LoadShape::from_json(
            "stages",
            &json!({"stages": [{"duration": 2, "users": 5, "spawn_rate": 5}, {"duration": 3, "users": 1}]}),
        )
        .expect("valid");
        assert_eq!(stages.at(secs(0.0)), Some((5, 5.0)));
        assert_eq!(stages.at(secs(1.9)), Some((5, 5.0)));
        assert_eq!(stages.at(secs(2.0)), Some((1, 1.0)));
        assert_eq!(stages.at(secs(5.0)), None);

        let spike = LoadShape::from_json(
            "spike",
            &json!({"baseline_users": 2, "spike_users": 8, "pre_seconds": 1, "spike_seconds": 1, "post_seconds": 1}),
        )
        .expect("valid");
        assert_eq!(spike.at(secs(0.5)).map(|t| t.0), Some(2));
        assert_eq!(spike.at(secs(1.5)).map(|t| t.0), Some(8));
        assert_eq!(spike.at(secs(2.5)).map(|t| t.0), Some(2));
        assert_eq!(spike.at(secs(3.0)), None);
        let default_spike =
            LoadShape::from_json("spike", &json!({"baseline_users": 3})).expect("ok");
        assert_eq!(default_spike.at(secs(45.0)), Some((3, 10.0)));
        assert_eq!(default_spike.at(secs(90.0)), None);

        let soak = LoadShape::from_json(
            "soak",
            &json!({"users": 10, "ramp_seconds": 10, "hold_seconds": 5, "cooldown_seconds": 10}),
        )
        .expect("valid");
        assert_eq!(soak.at(secs(0.0)), Some((0, 1.0)));
        assert_eq!(soak.at(secs(5.0)).map(|t| t.0), Some(5));
        assert_eq!(soak.at(secs(12.0)).map(|t| t.0), Some(10));
        assert_eq!(soak.at(secs(20.0)).map(|t| t.0), Some(5));
        assert_eq!(soak.at(secs(25.0)), None);
    }

    #[test]
    fn bad_shapes_list_the_valid_ones() {
        let (field, message) = LoadShape::from_json("ramp", &json!({})).expect_err("unknown");
        assert_eq!(field, "load_shape");
        assert!(message.contains("stages, spike, soak"), "{message}");
        let (field, message) =
            LoadShape::from_json("spike", &json!({"peak_users": 3})).expect_err("key");
        assert_eq!(field, "shape_config.peak_users");
        assert!(message.contains("baseline_users"), "{message}");
        let (field, _) = LoadShape::from_json(
            "stages",
            &json!({"stages": [{"duration": 1, "users": 1, "rate": 2}]}),
        )
        .expect_err("key");
        assert_eq!(field, "shape_config.stages[0].rate");
        let (field, _) = LoadShape::from_json("soak", &json!({})).expect_err("users");
        assert_eq!(field, "shape_config.users");
        let (field, _) =
            LoadShape::from_json("stages", &json!({"stages": [{"duration": -1, "users": 1}]}))
                .expect_err("negative");
        assert_eq!(field, "shape_config.stages[0].duration");
    }
}
