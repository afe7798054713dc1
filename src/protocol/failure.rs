//! Why a step failed, and how its failure is retried: the one place that maps a kind
//! of failure to the retry classes of LoadDensity's `AdaptiveRetryPolicy`
//! (`classify_error`: connection errors and timeouts transient, failed assertions and
//! unparsable JSON flaky, everything else permanent).
//!
//! A protocol says what happened ([`Failure::connect`], [`Failure::timeout`], ...);
//! [`StepOutcome::failed`] and [`StepOutcome::finished`] turn that into the
//! event's failure text, its connect-failure count and its [`ErrorClass`].

use std::fmt;
use std::time::{Duration, Instant};

use super::StepOutcome;
use crate::task::ErrorClass;

/// What kind of failure a step had, as the retry policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No connection could be opened (refused, reset, unreachable, or timed out
    /// while connecting): transient, and counted as a connect failure.
    Connect,
    /// The step ran out of time: transient.
    Timeout,
    /// An open connection failed or was lost (I/O error, reset, closed): transient.
    Network,
    /// The answer was not the expected one (`expect`, an assertion, a status or row
    /// count) or could not be parsed: flaky.
    Expectation,
    /// Anything else (the server refused the request, the task cannot run): permanent.
    Other,
}

impl FailureKind {
    /// The retry class of a failure of this kind.
    pub fn class(self) -> ErrorClass {
        match self {
            Self::Connect | Self::Timeout | Self::Network => ErrorClass::Transient,
            Self::Expectation => ErrorClass::Flaky,
            Self::Other => ErrorClass::Permanent,
        }
    }
}

/// Why a step failed: the text its request event carries, and its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The failure text of the request event.
    pub message: String,
    /// What kind of failure it is.
    pub kind: FailureKind,
}

impl Failure {
    /// A failure of kind `kind`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            kind,
        }
    }

    /// No connection could be opened.
    pub fn connect(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Connect, message)
    }

    /// The step ran out of time.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Timeout, message)
    }

    /// The step ran out of its `timeout`: `timed out after 1s 500ms`.
    pub fn timed_out(timeout: Duration) -> Self {
        Self::timeout(format!(
            "timed out after {}",
            humantime::format_duration(timeout)
        ))
    }

    /// An open connection failed.
    pub fn network(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Network, message)
    }

    /// The answer was not the expected one, or could not be parsed.
    pub fn expectation(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Expectation, message)
    }

    /// The same failure with `more` appended to its text (`text; more`).
    pub fn and(self, more: &str) -> Self {
        Self {
            message: format!("{}; {more}", self.message),
            ..self
        }
    }
}

/// Any other failure (permanent).
impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self::new(FailureKind::Other, message)
    }
}

/// Any other failure (permanent).
impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        Self::new(FailureKind::Other, message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

impl StepOutcome {
    /// A failure that ends now, with no status and no bytes.
    pub fn failed(failure: impl Into<Failure>) -> Self {
        let failure = failure.into();
        Self {
            end: Instant::now(),
            name: None,
            status: None,
            response_length: 0,
            connect_failure: failure.kind == FailureKind::Connect,
            class: failure.kind.class(),
            failure: Some(failure.message),
            sample: None,
        }
    }

    /// The outcome of a step without a status that ended at `end`, reported under
    /// `name`: the bytes it counted, or why it failed.
    pub fn finished(end: Instant, name: Option<String>, result: Result<u64, Failure>) -> Self {
        match result {
            Ok(response_length) => Self {
                end,
                name,
                status: None,
                response_length,
                failure: None,
                connect_failure: false,
                class: ErrorClass::Permanent,
                sample: None,
            },
            Err(failure) => Self {
                end,
                name,
                ..Self::failed(failure)
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_loaddensitys_classes() {
        for (kind, class) in [
            (FailureKind::Connect, ErrorClass::Transient),
            (FailureKind::Timeout, ErrorClass::Transient),
            (FailureKind::Network, ErrorClass::Transient),
            (FailureKind::Expectation, ErrorClass::Flaky),
            (FailureKind::Other, ErrorClass::Permanent),
        ] {
            assert_eq!(kind.class(), class, "{kind:?}");
        }
    }

    #[test]
    fn outcomes_carry_text_class_and_connect_count() {
        let refused = StepOutcome::failed(Failure::connect("connect: refused"));
        assert_eq!(refused.failure.as_deref(), Some("connect: refused"));
        assert!(refused.connect_failure);
        assert_eq!(refused.class, ErrorClass::Transient);
        let other = StepOutcome::finished(Instant::now(), None, Err("bad".into()));
        assert!(!other.connect_failure);
        assert_eq!(other.class, ErrorClass::Permanent);
        let ok = StepOutcome::finished(Instant::now(), Some("n".into()), Ok(7));
        assert_eq!((ok.response_length, ok.failure), (7, None));
        assert_eq!(ok.name.as_deref(), Some("n"));
        let both = Failure::expectation("expected 1 row, got 0").and("-ERR x");
        assert_eq!(both.message, "expected 1 row, got 0; -ERR x");
        assert_eq!(both.kind, FailureKind::Expectation);
    }
}
