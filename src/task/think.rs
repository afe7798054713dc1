//! A task's `think_time` field: seconds, or `{min, max}` drawn uniformly, slept after
//! the task (LoadDensity's `_apply_think_time`), apart from the test's `wait_time`.

use std::time::Duration;

use rand::Rng;
use serde_json::{Map, Value};

use super::{TaskError, err};

/// The longest think time accepted, seconds.
const MAX_THINK: f64 = 3600.0;

/// A pause after a task: fixed, or uniform in `[min, max)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThinkTime {
    min: Duration,
    max: Duration,
}

impl ThinkTime {
    /// Parses `think_time` of the task at `path`; `None` when absent, null or 0.
    pub(crate) fn parse(
        object: &Map<String, Value>,
        path: &str,
    ) -> Result<Option<Self>, TaskError> {
        let seconds = |value: Option<&Value>, field: &str| -> Result<Option<f64>, TaskError> {
            match value {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n
                    .as_f64()
                    .filter(|s| (0.0..=MAX_THINK).contains(s))
                    .map(Some)
                    .ok_or_else(|| {
                        err(
                            field,
                            format!("expected a number of seconds from 0 to {MAX_THINK}, got {n}"),
                        )
                    }),
                Some(other) => Err(err(
                    field,
                    format!("expected a number of seconds from 0 to {MAX_THINK}, got {other}"),
                )),
            }
        };
        let field = format!("{path}.think_time");
        let (min, max) = match object.get("think_time") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(map)) => {
                if let Some(key) = map.keys().find(|k| *k != "min" && *k != "max") {
                    return Err(err(
                        format!("{field}.{key}"),
                        "unknown field; expected min, max",
                    ));
                }
                let min = seconds(map.get("min"), &format!("{field}.min"))?.unwrap_or(0.0);
                let max = seconds(map.get("max"), &format!("{field}.max"))?.unwrap_or(min);
                if max < min {
                    return Err(err(
                        format!("{field}.max"),
                        format!("expected at least min ({min}), got {max}"),
                    ));
                }
                (min, max)
            }
            value @ Some(Value::Number(_)) => {
                let s = seconds(value, &field)?.unwrap_or(0.0);
                (s, s)
            }
            Some(other) => {
                return Err(err(
                    field,
                    format!("expected seconds or {{\"min\": ..., \"max\": ...}}, got {other}"),
                ));
            }
        };
        Ok((max > 0.0).then(|| Self {
            min: Duration::from_secs_f64(min),
            max: Duration::from_secs_f64(max),
        }))
    }

    /// This time's pause.
    pub fn draw(&self, rng: &mut impl Rng) -> Duration {
        if self.max > self.min {
            rng.gen_range(self.min..self.max)
        } else {
            self.min
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;
    use serde_json::json;

    fn parse(value: Value) -> Result<Option<ThinkTime>, TaskError> {
        let object = json!({ "think_time": value });
        ThinkTime::parse(object.as_object().expect("object"), "tasks[0]")
    }

    #[test]
    fn fixed_range_and_zero() {
        assert_eq!(parse(json!(0)).expect("valid"), None);
        let mut rng = SmallRng::seed_from_u64(3);
        let fixed = parse(json!(0.5)).expect("valid").expect("some");
        assert_eq!(fixed.draw(&mut rng), Duration::from_millis(500));
        let range = parse(json!({"min": 1, "max": 2}))
            .expect("valid")
            .expect("some");
        for _ in 0..100 {
            let d = range.draw(&mut rng);
            assert!(d >= Duration::from_secs(1) && d < Duration::from_secs(2));
        }
        let only_min = parse(json!({"min": 0.25})).expect("valid").expect("some");
        assert_eq!(only_min.draw(&mut rng), Duration::from_millis(250));
    }

    #[test]
    fn errors_name_the_field() {
        for (value, path) in [
            (json!(-1), "tasks[0].think_time"),
            (json!("1s"), "tasks[0].think_time"),
            (json!({"min": 2, "max": 1}), "tasks[0].think_time.max"),
            (json!({"low": 2}), "tasks[0].think_time.low"),
        ] {
            assert_eq!(
                parse(value.clone()).expect_err("invalid").path,
                path,
                "{value}"
            );
        }
    }
}
