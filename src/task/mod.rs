//! A task as every protocol has it: what it is reported as, its weight, the
//! conditions that run or skip it, and how it is paced and retried (`retry`,
//! `throttle`, `think_time`), around the protocol's own fields; and the field parsers
//! the protocols share. Parsed strictly, with errors naming the field
//! (`tasks[1].timeout`).

pub mod retry;
pub mod think;
pub mod throttle;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::event::Endpoint;
use crate::scenario::{Condition, RenderContext, TemplateError};

pub use retry::{ErrorClass, RetryPolicy};
pub use think::ThinkTime;
pub use throttle::Throttle;

/// The task fields every protocol has.
pub const COMMON_FIELDS: &[&str] = &[
    "weight",
    "run_if",
    "skip_if",
    "wait",
    "retry",
    "throttle",
    "think_time",
];

/// A task that cannot be used, with the path of the offending field (`tasks[1].timeout`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{path}`: {message}")]
pub struct TaskError {
    /// Where in the arguments the problem is, e.g. `tasks[0].headers.Accept`.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
    /// What kind of problem it is.
    pub kind: TaskErrorKind,
}

/// What kind of problem a [`TaskError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskErrorKind {
    /// A field is missing, unknown, mistyped or out of range.
    #[default]
    Invalid,
    /// A `${csv.*}` or `${db.*}` placeholder names a source (or a column) that is not
    /// registered: the source cannot be reached.
    UnreachableSource,
}

/// The message of a [`TaskError`] and its kind: from text (invalid), or from a
/// template's error (which knows whether a source cannot be reached).
pub(crate) struct Problem {
    message: String,
    kind: TaskErrorKind,
}

impl From<String> for Problem {
    fn from(message: String) -> Self {
        Self {
            message,
            kind: TaskErrorKind::Invalid,
        }
    }
}

impl From<&str> for Problem {
    fn from(message: &str) -> Self {
        message.to_string().into()
    }
}

impl From<&String> for Problem {
    fn from(message: &String) -> Self {
        message.clone().into()
    }
}

impl From<TemplateError> for Problem {
    fn from(error: TemplateError) -> Self {
        Self {
            kind: if error.is_source() {
                TaskErrorKind::UnreachableSource
            } else {
                TaskErrorKind::Invalid
            },
            message: error.to_string(),
        }
    }
}

pub(crate) fn err(path: impl Into<String>, problem: impl Into<Problem>) -> TaskError {
    let Problem { message, kind } = problem.into();
    TaskError {
        path: path.into(),
        message,
        kind,
    }
}

/// One step of a scenario: the protocol's request spec `S`, what it is reported
/// as, and when to run it. Dereferences to the spec.
#[derive(Debug, Clone)]
pub struct Task<S> {
    /// What the request is reported as (for a templated `name`, the name as written;
    /// each request is then reported under its rendered name).
    pub endpoint: Arc<Endpoint>,
    /// The protocol's own fields.
    pub spec: S,
    /// Relative weight in a `weighted` scenario (default 1).
    pub weight: u32,
    /// Run only when this holds.
    pub run_if: Option<Condition>,
    /// Skip when this holds.
    pub skip_if: Option<Condition>,
    /// A pause before the request (a think time kept from a HAR recording).
    pub wait: Option<Duration>,
    /// `retry`: how failed requests are retried (`None`: never).
    pub retry: Option<RetryPolicy>,
    /// `throttle`: the token bucket each request waits for (`None`: no cap).
    pub throttle: Option<Arc<Throttle>>,
    /// `think_time`: a pause after the task (`None`: none).
    pub think_time: Option<ThinkTime>,
}

impl<S> Deref for Task<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.spec
    }
}

impl<S> Task<S> {
    /// True when the task runs this time (`run_if` holds and `skip_if` does not).
    pub(crate) fn should_run(&self, ctx: &mut RenderContext<'_>) -> bool {
        self.run_if.as_ref().is_none_or(|c| c.holds(ctx))
            && !self.skip_if.as_ref().is_some_and(|c| c.holds(ctx))
    }
}

/// A boolean field, `default` when absent or null.
pub(crate) fn parse_bool(
    object: &Map<String, Value>,
    key: &str,
    path: &str,
    default: bool,
) -> Result<bool, TaskError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(err(
            format!("{path}.{key}"),
            format!("expected true or false, got {other}"),
        )),
    }
}

/// A `timeout` field in seconds, `default` when absent or null.
pub(crate) fn parse_timeout(
    object: &Map<String, Value>,
    path: &str,
    default: Duration,
) -> Result<Duration, TaskError> {
    match object.get("timeout") {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(s) if s > 0.0 && s.is_finite() && s < 1e9 => Ok(Duration::from_secs_f64(s)),
            _ => Err(err(
                format!("{path}.timeout"),
                format!("expected a positive number of seconds, got {n}"),
            )),
        },
        Some(other) => Err(err(
            format!("{path}.timeout"),
            format!("expected a positive number of seconds, got {other}"),
        )),
    }
}
