//! The open model (`arrival_rate`, like k6's constant- and ramping-arrival-rate):
//! iterations start on a schedule whatever the target's speed, each on a free virtual
//! user from a pool of at most `max_users`. Latency counts from each iteration's
//! scheduled start, so a stalled target shows in the percentiles (no coordinated
//! omission). An iteration with no free user is dropped and counted.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::user::{UserStop, VirtualUser, run_iteration};
use super::{RunShared, STOP_GRACE};
use crate::protocol::Protocol;

/// One stage of a ramping arrival rate: the rate moves linearly to `target` over
/// `duration`.
#[derive(Debug, Clone, PartialEq)]
pub struct RateStage {
    /// This stage's own length.
    pub duration: Duration,
    /// The rate reached at its end, iterations per time unit.
    pub target: f64,
}

/// An arrival-rate schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrivalRate {
    /// Rate at the start, iterations per time unit (the constant rate when there are
    /// no stages).
    pub start_rate: f64,
    /// Ramping stages; empty for a constant rate until the test time ends.
    pub stages: Vec<RateStage>,
    /// The unit of the rates.
    pub time_unit: Duration,
    /// Most iterations in flight at once.
    pub max_users: u32,
}

const KEYS: &[&str] = &["rate", "start_rate", "stages", "time_unit", "max_users"];

fn number(map: &Map<String, Value>, key: &str) -> Result<Option<f64>, (String, String)> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err((
            format!("arrival_rate.{key}"),
            format!("expected a number, got {other}"),
        )),
    }
}

/// The fastest schedule a run may ask for, in iterations per second: the scheduler
/// wakes every millisecond, and one machine does not start more iterations than this.
pub(crate) const MAX_ITERATIONS_PER_SECOND: f64 = 1_000_000.0;
/// The shortest `time_unit`, in seconds (the scheduler's tick; a shorter one would
/// round to nothing).
pub(crate) const MIN_TIME_UNIT: f64 = 0.001;

/// Refuses a rate (iterations per `time_unit` seconds) over
/// [`MAX_ITERATIONS_PER_SECOND`], naming the limit.
fn within_limit(rate: f64, time_unit: f64, field: &str) -> Result<f64, (String, String)> {
    let per_second = rate / time_unit;
    if per_second <= MAX_ITERATIONS_PER_SECOND {
        Ok(rate)
    } else {
        Err((
            field.to_string(),
            format!(
                "{rate} per {time_unit} s is {per_second:e} iterations per second, over the limit of \
                 {MAX_ITERATIONS_PER_SECOND:e} per second that one machine can start"
            ),
        ))
    }
}

fn non_negative(value: f64, field: &str) -> Result<f64, (String, String)> {
    if value >= 0.0 && value.is_finite() && value < 1e12 {
        Ok(value)
    } else {
        Err((
            field.to_string(),
            format!("expected a number >= 0 and below 1e12, got {value}"),
        ))
    }
}

impl ArrivalRate {
    /// Parses `{"rate": R, "time_unit": s, "max_users": M}` or
    /// `{"stages": [{"duration": s, "rate": R}, ...], "start_rate": R0, "max_users": M}`.
    pub fn from_json(value: &Value) -> Result<Self, (String, String)> {
        let map = value.as_object().ok_or_else(|| {
            (
                "arrival_rate".to_string(),
                format!("expected {{\"rate\": R, \"max_users\": M}} or {{\"stages\": [...], \"max_users\": M}}, got {value}"),
            )
        })?;
        if let Some(key) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err((
                format!("arrival_rate.{key}"),
                format!("unknown key; expected one of: {}", KEYS.join(", ")),
            ));
        }
        let time_unit = non_negative(
            number(map, "time_unit")?.unwrap_or(1.0),
            "arrival_rate.time_unit",
        )?;
        if time_unit < MIN_TIME_UNIT {
            return Err((
                "arrival_rate.time_unit".into(),
                format!(
                    "expected seconds >= {MIN_TIME_UNIT} (1 ms, the scheduler's tick), got {time_unit}"
                ),
            ));
        }
        let max_users = match number(map, "max_users")? {
            Some(n) if n >= 1.0 && n.fract() == 0.0 && n <= 1e7 => n as u32,
            Some(n) => {
                return Err((
                    "arrival_rate.max_users".into(),
                    format!("expected a whole number >= 1, got {n}"),
                ));
            }
            None => return Err(("arrival_rate.max_users".into(), "missing field".into())),
        };
        let rate = number(map, "rate")?;
        let stages = match map.get("stages") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(stages)) if !stages.is_empty() => stages
                .iter()
                .enumerate()
                .map(|(i, stage)| parse_stage(stage, i, time_unit))
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => {
                return Err((
                    "arrival_rate.stages".into(),
                    format!("expected a non-empty list of {{\"duration\", \"rate\"}}, got {other}"),
                ));
            }
        };
        let start_rate = match (rate, stages.is_empty(), number(map, "start_rate")?) {
            (Some(_), false, _) => {
                return Err((
                    "arrival_rate.rate".into(),
                    "give either `rate` (constant) or `stages` (ramping), not both".into(),
                ));
            }
            (Some(rate), true, None) => within_limit(
                non_negative(rate, "arrival_rate.rate")?,
                time_unit,
                "arrival_rate.rate",
            )?,
            (None, true, _) => {
                return Err((
                    "arrival_rate.rate".into(),
                    "missing field (or give `stages`)".into(),
                ));
            }
            (None, false, start) => within_limit(
                non_negative(start.unwrap_or(0.0), "arrival_rate.start_rate")?,
                time_unit,
                "arrival_rate.start_rate",
            )?,
            (Some(_), true, Some(_)) => {
                return Err((
                    "arrival_rate.start_rate".into(),
                    "only for `stages`; a constant `rate` has no start rate".into(),
                ));
            }
        };
        Ok(ArrivalRate {
            start_rate,
            stages,
            time_unit: Duration::from_secs_f64(time_unit),
            max_users,
        })
    }

    /// When the schedule ends; `None` for a constant rate.
    pub fn end(&self) -> Option<Duration> {
        (!self.stages.is_empty()).then(|| self.stages.iter().map(|s| s.duration).sum())
    }

    /// Iterations due by `t` (a real number; iteration k is due when it reaches k).
    pub fn iterations_by(&self, t: Duration) -> f64 {
        let unit = self.time_unit.as_secs_f64();
        let mut t = t.as_secs_f64();
        if self.stages.is_empty() {
            return self.start_rate * t / unit;
        }
        let mut total = 0.0;
        let mut rate = self.start_rate;
        for stage in &self.stages {
            let d = stage.duration.as_secs_f64();
            let span = t.min(d);
            let slope = if d > 0.0 {
                (stage.target - rate) / d
            } else {
                0.0
            };
            total += rate * span + slope * span * span / 2.0;
            t -= span;
            rate = stage.target;
            if t <= 0.0 {
                break;
            }
        }
        total / unit
    }
}

fn parse_stage(stage: &Value, index: usize, time_unit: f64) -> Result<RateStage, (String, String)> {
    let field = |key: &str| format!("arrival_rate.stages[{index}].{key}");
    let map = stage.as_object().ok_or_else(|| {
        (
            format!("arrival_rate.stages[{index}]"),
            format!("expected {{\"duration\", \"rate\"}}, got {stage}"),
        )
    })?;
    if let Some(key) = map.keys().find(|k| *k != "duration" && *k != "rate") {
        return Err((field(key), "unknown key; expected duration, rate".into()));
    }
    let get = |key: &str| -> Result<f64, (String, String)> {
        match map.get(key) {
            Some(Value::Number(n)) => non_negative(n.as_f64().unwrap_or(f64::NAN), &field(key)),
            None => Err((field(key), "missing field".into())),
            Some(other) => Err((field(key), format!("expected a number, got {other}"))),
        }
    };
    Ok(RateStage {
        duration: Duration::from_secs_f64(get("duration")?),
        target: within_limit(get("rate")?, time_unit, &field("rate"))?,
    })
}

/// How often the scheduler wakes; scheduled times are interpolated, not rounded to it.
const TICK: Duration = Duration::from_millis(1);
/// The most iterations started in one wake (ten ticks' worth at the fastest legal
/// rate): a scheduler that fell behind catches up over several wakes, and looks at
/// the stop between them.
const MAX_BATCH: u64 = 10_000;

/// Starts iterations on schedule until `stop`, or until the schedule ends (then
/// cancels `ended`). Returns the number of virtual users created.
pub(super) async fn run_open_model<P: Protocol>(
    shared: Arc<RunShared<P>>,
    arrival: ArrivalRate,
    stop: CancellationToken,
    ended: CancellationToken,
) -> u32 {
    let (idle_tx, mut idle_rx) = mpsc::unbounded_channel::<VirtualUser<P>>();
    let mut in_flight = JoinSet::new();
    let mut created: u32 = 0;
    let start = Instant::now();
    let end = arrival.end();
    let mut launched: u64 = 0;
    let (mut previous_t, mut previous_n) = (Duration::ZERO, 0.0f64);
    while !stop.is_cancelled() {
        let t = start.elapsed();
        if end.is_some_and(|end| t >= end) || shared.out_of_data.is_cancelled() {
            ended.cancel();
            break;
        }
        let n = arrival.iterations_by(t);
        // Iteration k is due at N(t) = k: launch every one due by now (at most
        // MAX_BATCH per wake), each with its scheduled time interpolated between the
        // last two looks.
        let batch_end = launched.saturating_add(MAX_BATCH);
        while (launched as f64) <= n && launched < batch_end {
            let k = launched as f64;
            let fraction = if n > previous_n {
                ((k - previous_n) / (n - previous_n)).clamp(0.0, 1.0)
            } else {
                1.0
            };
            let scheduled = start + previous_t + (t - previous_t).mul_f64(fraction);
            launched += 1;
            let user = match idle_rx.try_recv() {
                Ok(user) => user,
                Err(_) if created < arrival.max_users => {
                    created += 1;
                    VirtualUser::new(&shared)
                }
                Err(_) => {
                    shared.dropped_iterations.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            let (shared, idle_tx) = (shared.clone(), idle_tx.clone());
            let stop = UserStop::with_run(stop.clone());
            in_flight.spawn(async move {
                let mut user = user;
                shared.active_users.fetch_add(1, Ordering::Relaxed);
                run_iteration(&shared, &mut user, Some(scheduled), &stop).await;
                shared.active_users.fetch_sub(1, Ordering::Relaxed);
                let _ = idle_tx.send(user);
            });
        }
        (previous_t, previous_n) = (t, n);
        while in_flight.try_join_next().is_some() {}
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.cancelled() => {}
        }
    }
    stop.cancelled().await;
    let drained = tokio::time::timeout(STOP_GRACE, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        in_flight.shutdown().await;
    }
    created
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn constant_and_ramping_schedules() {
        let constant = ArrivalRate::from_json(&json!({"rate": 50, "max_users": 4})).expect("ok");
        assert_eq!(constant.end(), None);
        assert!((constant.iterations_by(Duration::from_secs(2)) - 100.0).abs() < 1e-9);
        let per_minute =
            ArrivalRate::from_json(&json!({"rate": 60, "time_unit": 60, "max_users": 1}))
                .expect("ok");
        assert!((per_minute.iterations_by(Duration::from_secs(10)) - 10.0).abs() < 1e-9);
        // 0 -> 10/s over 2 s, then 10 -> 10/s for 1 s: 10 + 10 iterations.
        let ramp = ArrivalRate::from_json(
            &json!({"stages": [{"duration": 2, "rate": 10}, {"duration": 1, "rate": 10}], "max_users": 5}),
        )
        .expect("ok");
        assert_eq!(ramp.end(), Some(Duration::from_secs(3)));
        assert!((ramp.iterations_by(Duration::from_secs(1)) - 2.5).abs() < 1e-9);
        assert!((ramp.iterations_by(Duration::from_secs(3)) - 20.0).abs() < 1e-9);
    }

    #[test]
    fn bad_arrival_rates_name_the_field() {
        for (value, field) in [
            (json!({"rate": 10}), "arrival_rate.max_users"),
            (json!({"max_users": 1}), "arrival_rate.rate"),
            (json!({"rate": -1, "max_users": 1}), "arrival_rate.rate"),
            (json!({"rate": 1, "max_users": 0}), "arrival_rate.max_users"),
            (
                json!({"rate": 1, "max_users": 1, "burst": 2}),
                "arrival_rate.burst",
            ),
            (
                json!({"rate": 1, "stages": [{"duration": 1, "rate": 1}], "max_users": 1}),
                "arrival_rate.rate",
            ),
            (
                json!({"stages": [{"duration": 1}], "max_users": 1}),
                "arrival_rate.stages[0].rate",
            ),
            (
                json!({"rate": 1, "time_unit": 0, "max_users": 1}),
                "arrival_rate.time_unit",
            ),
            // Beyond what a machine can start: refused, not hung on.
            (json!({"rate": 1e11, "max_users": 2}), "arrival_rate.rate"),
            (
                json!({"rate": 1, "time_unit": 1e-12, "max_users": 1}),
                "arrival_rate.time_unit",
            ),
            (
                json!({"rate": 2, "time_unit": 1e-6, "max_users": 1}),
                "arrival_rate.time_unit",
            ),
            (
                json!({"rate": 2000, "time_unit": 0.001, "max_users": 1}),
                "arrival_rate.rate",
            ),
            (
                json!({"stages": [{"duration": 1, "rate": 1e7}], "max_users": 1}),
                "arrival_rate.stages[0].rate",
            ),
            (
                json!({"start_rate": 1e9, "stages": [{"duration": 1, "rate": 1}], "max_users": 1}),
                "arrival_rate.start_rate",
            ),
        ] {
            let (got, _) = ArrivalRate::from_json(&value).expect_err("invalid");
            assert_eq!(got, field, "{value}");
        }
        let (_, message) =
            ArrivalRate::from_json(&json!({"rate": 1e11, "max_users": 2})).expect_err("too fast");
        assert!(message.contains("1e6 per second"), "{message}");
    }

    #[test]
    fn the_fastest_legal_rates_are_accepted() {
        for value in [
            json!({"rate": 1e6, "max_users": 1}),
            json!({"rate": 1000, "time_unit": 0.001, "max_users": 1}),
            json!({"rate": 1e11, "time_unit": 1e6, "max_users": 1}),
        ] {
            let arrival = ArrivalRate::from_json(&value).expect("legal");
            assert!(!arrival.time_unit.is_zero(), "{value}");
        }
    }
}
