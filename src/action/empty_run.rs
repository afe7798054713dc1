//! The warning after `LD_start_test` when a test measured nothing: it sent no
//! requests at all, or none of them could connect. Names the likely cause from what
//! the run saw, so that a row of zeros is never mistaken for a fast target.

use crate::engine::RunReport;

/// What one test recorded: its own requests and failures (not the earlier tests').
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TestCounts {
    /// Requests this test completed.
    pub(crate) requests: u64,
    /// Of those, the failed ones.
    pub(crate) failures: u64,
}

/// The warning for a test that measured nothing, or `None` when it measured
/// something.
pub(crate) fn empty_run_warning(report: &RunReport, counts: TestCounts) -> Option<String> {
    if counts.requests == 0 {
        return Some(format!(
            "the test sent no requests: {}",
            no_request_cause(report)
        ));
    }
    if counts.failures == counts.requests && report.connect_failures == counts.requests {
        return Some(format!(
            "every request of the test ({}) failed to connect: is the target up, and are its host and port right?",
            counts.requests
        ));
    }
    None
}

fn no_request_cause(report: &RunReport) -> String {
    if report.users_started == 0 {
        return "no user started (the test ended or was interrupted first)".to_string();
    }
    if report.out_of_data {
        return "the CSV data ran out (a csv source with `cycle: false` had no rows left)"
            .to_string();
    }
    if report.tasks_skipped > 0 {
        return format!(
            "the conditions never held (tasks skipped by `run_if`/`skip_if`: {})",
            report.tasks_skipped
        );
    }
    if report.interrupted {
        return "the run was interrupted before any request completed".to_string();
    }
    "no request completed within the test time (is `test_time` shorter than a request?)".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn report() -> RunReport {
        RunReport {
            duration: Duration::from_secs(1),
            users_started: 2,
            interrupted: false,
            dropped_iterations: 0,
            tasks_skipped: 0,
            connect_failures: 0,
            out_of_data: false,
        }
    }

    const NONE: TestCounts = TestCounts {
        requests: 0,
        failures: 0,
    };

    #[test]
    fn names_the_likely_cause() {
        let skipped = RunReport {
            tasks_skipped: 40,
            ..report()
        };
        let warning = empty_run_warning(&skipped, NONE).expect("a warning");
        assert!(warning.contains("conditions never held"), "{warning}");
        assert!(warning.contains("40"), "{warning}");

        let exhausted = RunReport {
            out_of_data: true,
            tasks_skipped: 3,
            ..report()
        };
        let warning = empty_run_warning(&exhausted, NONE).expect("a warning");
        assert!(warning.contains("CSV data ran out"), "{warning}");

        let refused = RunReport {
            connect_failures: 7,
            ..report()
        };
        let counts = TestCounts {
            requests: 7,
            failures: 7,
        };
        let warning = empty_run_warning(&refused, counts).expect("a warning");
        assert!(warning.contains("failed to connect"), "{warning}");

        let no_users = RunReport {
            users_started: 0,
            ..report()
        };
        assert!(
            empty_run_warning(&no_users, NONE)
                .expect("a warning")
                .contains("no user started")
        );
    }

    #[test]
    fn quiet_when_something_was_measured() {
        let counts = TestCounts {
            requests: 7,
            failures: 7,
        };
        // Failures that are HTTP errors are measurements.
        assert_eq!(empty_run_warning(&report(), counts), None);
        let some_connected = RunReport {
            connect_failures: 3,
            ..report()
        };
        assert_eq!(empty_run_warning(&some_connected, counts), None);
    }
}
