//! The JUnit XML report, for Jenkins, GitLab and GitHub annotations.
//!
//! LoadDensity writes one test case per request; no CI can show a million of them.
//! This writes one `<testcase>` per endpoint (request name), failing when the endpoint
//! had failed requests (count, rate and the most frequent errors), and one per SLA gate
//! (failing with the actual value and the limit).

use std::fmt::Write;

use super::xml_escape;
use crate::stats::ResultDocument;

/// How many of an endpoint's most frequent errors the failure message lists.
const TOP_ERRORS: usize = 5;

/// Renders the JUnit report of a result document.
pub fn render_junit(document: &ResultDocument) -> String {
    let gates = document.run.sla.as_deref().unwrap_or_default();
    let endpoint_failures = document
        .per_name
        .values()
        .filter(|s| s.failures > 0)
        .count();
    let gate_failures = gates.iter().filter(|g| !g.passed).count();
    let tests = document.per_name.len() + gates.len();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"loaddensity\" tests=\"{tests}\" failures=\"{}\" time=\"{:.3}\">",
        endpoint_failures + gate_failures,
        document.totals.duration_s
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"endpoints\" tests=\"{}\" failures=\"{endpoint_failures}\" errors=\"0\" time=\"{:.3}\">",
        document.per_name.len(),
        document.totals.duration_s
    );
    for (name, stats) in &document.per_name {
        let _ = write!(
            out,
            "    <testcase classname=\"loaddensity.endpoints\" name=\"{}\" time=\"{:.3}\"",
            xml_escape(name),
            stats.mean_ms / 1000.0
        );
        if stats.failures == 0 {
            out.push_str("/>\n");
            continue;
        }
        let rate = stats.failures as f64 / stats.count.max(1) as f64;
        let message = format!(
            "{} of {} requests failed ({:.2}%)",
            stats.failures,
            stats.count,
            rate * 100.0
        );
        let mut detail = String::new();
        let mut errors: Vec<_> = document.errors.iter().filter(|e| &e.name == name).collect();
        errors.sort_by_key(|e| std::cmp::Reverse(e.occurrences));
        for error in errors.iter().take(TOP_ERRORS) {
            let _ = writeln!(
                detail,
                "{} x {} {}",
                error.occurrences, error.request_type, error.error
            );
        }
        let _ = writeln!(
            out,
            ">\n      <failure message=\"{}\" type=\"failures\">{}</failure>\n    </testcase>",
            xml_escape(&message),
            xml_escape(&detail)
        );
    }
    out.push_str("  </testsuite>\n");
    if !gates.is_empty() {
        let _ = writeln!(
            out,
            "  <testsuite name=\"sla\" tests=\"{}\" failures=\"{gate_failures}\" errors=\"0\">",
            gates.len()
        );
        for gate in gates {
            let _ = write!(
                out,
                "    <testcase classname=\"loaddensity.sla\" name=\"{} {} {}\"",
                xml_escape(&gate.rule),
                xml_escape(&gate.op),
                gate.value
            );
            if gate.passed {
                out.push_str("/>\n");
                continue;
            }
            let actual = gate
                .actual
                .map_or_else(|| "no value".to_string(), |a| a.to_string());
            let message = format!(
                "actual {actual}, limit {} {}: {}",
                gate.op, gate.value, gate.reason
            );
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\" type=\"sla\"/>\n    </testcase>",
                xml_escape(&message)
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
