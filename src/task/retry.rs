//! A task's `retry` field: LoadDensity's `AdaptiveRetryPolicy` (a budget of retries
//! per class of error, exponential backoff with jitter), and the classes themselves.
//!
//! Every attempt is a request event of its own; the engine retries a failed attempt
//! while the budget of its class lasts ([`RetryPolicy::delay`]).

use std::time::Duration;

use rand::Rng;
use serde_json::{Map, Value};

use super::{TaskError, err};

/// How a failed request is retried: LoadDensity's three classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorClass {
    /// Connection errors and timeouts: retried liberally (`transient`, default 5).
    Transient,
    /// Failed assertions, unparsable JSON, and (here, not in LoadDensity) a 5xx or 429
    /// response: retried sparingly (`flaky`, default 2).
    Flaky,
    /// Everything else: not retried unless `permanent` says so (default 0).
    #[default]
    Permanent,
}

impl ErrorClass {
    /// The class of a failed attempt whose protocol said `class`: a 5xx or 429 status
    /// counts as flaky even without an assertion.
    pub fn with_status(self, status: Option<u16>) -> Self {
        match (self, status) {
            (Self::Permanent, Some(s)) if s >= 500 || s == 429 => Self::Flaky,
            (class, _) => class,
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Transient => 0,
            Self::Flaky => 1,
            Self::Permanent => 2,
        }
    }
}

/// The fields of `retry`, with LoadDensity's defaults.
pub const RETRY_FIELDS: &[&str] = &[
    "transient",
    "flaky",
    "permanent",
    "base_delay",
    "max_delay",
    "backoff_factor",
    "jitter",
];

/// LoadDensity's `AdaptiveRetryPolicy`: retries allowed per class of error for one
/// run of a task, and the pause before each retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after transient errors (default 5).
    pub transient: u32,
    /// Retries after flaky errors (default 2).
    pub flaky: u32,
    /// Retries after permanent errors (default 0).
    pub permanent: u32,
    /// The first pause, seconds (default 0.1).
    pub base_delay: f64,
    /// The longest pause before jitter, seconds (default 5).
    pub max_delay: f64,
    /// Each pause is the previous one times this (default 2).
    pub backoff_factor: f64,
    /// Up to this fraction of the pause is added at random (default 0.25).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            transient: 5,
            flaky: 2,
            permanent: 0,
            base_delay: 0.1,
            max_delay: 5.0,
            backoff_factor: 2.0,
            jitter: 0.25,
        }
    }
}

/// The retries one run of a task has used, per class.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryBudget {
    used: [u32; 3],
    attempts: u32,
}

impl RetryBudget {
    /// True once a retry has been granted: the next attempt is a retry.
    pub fn retrying(&self) -> bool {
        self.used.iter().any(|n| *n > 0)
    }
}

impl RetryPolicy {
    /// Parses `retry` of the task at `path`: `None` when absent or null.
    pub(crate) fn parse(
        object: &Map<String, Value>,
        path: &str,
    ) -> Result<Option<Self>, TaskError> {
        let map = match object.get("retry") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(map)) => map,
            Some(other) => {
                return Err(err(
                    format!("{path}.retry"),
                    format!(
                        "expected an object with {}, got {other}",
                        RETRY_FIELDS.join(", ")
                    ),
                ));
            }
        };
        if let Some(key) = map.keys().find(|k| !RETRY_FIELDS.contains(&k.as_str())) {
            return Err(err(
                format!("{path}.retry.{key}"),
                format!(
                    "unknown field; expected one of: {}",
                    RETRY_FIELDS.join(", ")
                ),
            ));
        }
        let mut policy = Self::default();
        let count = |key: &str, default: u32| -> Result<u32, TaskError> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::Number(n)) => n
                    .as_u64()
                    .and_then(|v| u32::try_from(v).ok())
                    .filter(|v| *v <= 1000)
                    .ok_or_else(|| {
                        err(
                            format!("{path}.retry.{key}"),
                            format!("expected a number of retries from 0 to 1000, got {n}"),
                        )
                    }),
                Some(other) => Err(err(
                    format!("{path}.retry.{key}"),
                    format!("expected a number of retries from 0 to 1000, got {other}"),
                )),
            }
        };
        let seconds = |key: &str, default: f64, max: f64| -> Result<f64, TaskError> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::Number(n)) => n
                    .as_f64()
                    .filter(|v| (0.0..=max).contains(v))
                    .ok_or_else(|| {
                        err(
                            format!("{path}.retry.{key}"),
                            format!("expected a number from 0 to {max}, got {n}"),
                        )
                    }),
                Some(other) => Err(err(
                    format!("{path}.retry.{key}"),
                    format!("expected a number from 0 to {max}, got {other}"),
                )),
            }
        };
        policy.transient = count("transient", policy.transient)?;
        policy.flaky = count("flaky", policy.flaky)?;
        policy.permanent = count("permanent", policy.permanent)?;
        policy.base_delay = seconds("base_delay", policy.base_delay, 3600.0)?;
        policy.max_delay = seconds("max_delay", policy.max_delay, 3600.0)?;
        policy.backoff_factor = seconds("backoff_factor", policy.backoff_factor, 1000.0)?;
        policy.jitter = seconds("jitter", policy.jitter, 100.0)?;
        Ok(Some(policy))
    }

    fn budget(&self, class: ErrorClass) -> u32 {
        match class {
            ErrorClass::Transient => self.transient,
            ErrorClass::Flaky => self.flaky,
            ErrorClass::Permanent => self.permanent,
        }
    }

    /// After a failed attempt of class `class`: the pause before the next attempt, or
    /// `None` when the budget of that class is spent (as LoadDensity's `decide`:
    /// `base_delay * backoff_factor^(attempt-1)`, capped at `max_delay`, plus up to
    /// `jitter` of it at random).
    pub fn delay(
        &self,
        budget: &mut RetryBudget,
        class: ErrorClass,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        budget.attempts += 1;
        let used = &mut budget.used[class.index()];
        if *used >= self.budget(class) {
            return None;
        }
        *used += 1;
        let exponent = i32::try_from(budget.attempts - 1).unwrap_or(i32::MAX);
        let raw = self.base_delay * self.backoff_factor.powi(exponent);
        let capped = if raw.is_finite() {
            raw.min(self.max_delay)
        } else {
            self.max_delay
        };
        let jitter = if self.jitter > 0.0 && capped > 0.0 {
            rng.gen_range(0.0..capped * self.jitter)
        } else {
            0.0
        };
        Some(Duration::from_secs_f64((capped + jitter).clamp(0.0, 1e6)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;
    use serde_json::json;

    fn parse(value: Value) -> Result<Option<RetryPolicy>, TaskError> {
        let object = json!({ "retry": value });
        RetryPolicy::parse(object.as_object().expect("object"), "tasks[0]")
    }

    #[test]
    fn defaults_are_loaddensitys() {
        assert_eq!(
            parse(json!({})).expect("valid"),
            Some(RetryPolicy::default())
        );
        let p = parse(json!({"flaky": 1, "base_delay": 0}))
            .expect("valid")
            .expect("some");
        assert_eq!((p.flaky, p.transient, p.base_delay), (1, 5, 0.0));
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(json!({"flakey": 1})).expect_err("unknown");
        assert_eq!(e.path, "tasks[0].retry.flakey");
        let e = parse(json!({"transient": -1})).expect_err("negative");
        assert_eq!(e.path, "tasks[0].retry.transient");
        let e = parse(json!(3)).expect_err("not an object");
        assert_eq!(e.path, "tasks[0].retry");
    }

    #[test]
    fn budgets_per_class_and_backoff() {
        let policy = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        let mut rng = SmallRng::seed_from_u64(1);
        let mut budget = RetryBudget::default();
        let delays: Vec<_> = (0..3)
            .map(|_| policy.delay(&mut budget, ErrorClass::Flaky, &mut rng))
            .collect();
        assert_eq!(
            delays,
            [
                Some(Duration::from_millis(100)),
                Some(Duration::from_millis(200)),
                None
            ]
        );
        assert_eq!(
            policy.delay(&mut budget, ErrorClass::Permanent, &mut rng),
            None
        );
        let capped = RetryPolicy {
            base_delay: 4.0,
            jitter: 0.25,
            ..RetryPolicy::default()
        };
        let mut budget = RetryBudget::default();
        for _ in 0..5 {
            let d = capped
                .delay(&mut budget, ErrorClass::Transient, &mut rng)
                .expect("budget left");
            assert!(
                d >= Duration::from_secs(4) && d <= Duration::from_secs_f64(6.25),
                "{d:?}"
            );
        }
        assert_eq!(
            capped.delay(&mut budget, ErrorClass::Transient, &mut rng),
            None
        );
    }

    #[test]
    fn server_errors_are_flaky() {
        assert_eq!(
            ErrorClass::Permanent.with_status(Some(503)),
            ErrorClass::Flaky
        );
        assert_eq!(
            ErrorClass::Permanent.with_status(Some(429)),
            ErrorClass::Flaky
        );
        assert_eq!(
            ErrorClass::Permanent.with_status(Some(404)),
            ErrorClass::Permanent
        );
        assert_eq!(
            ErrorClass::Transient.with_status(None),
            ErrorClass::Transient
        );
    }
}
