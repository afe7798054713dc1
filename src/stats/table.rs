//! The end-of-test table, in Locust's layout with percentile columns added.

use std::fmt::Write;

use super::recorder::{EndpointStats, StatsSnapshot};
use super::summary::{ms, percentile_ms};

const NAME_WIDTH: usize = 40;

fn row(out: &mut String, stats: &EndpointStats, seconds: f64) {
    let h = &stats.latency_us;
    let count = stats.count();
    let fail_pct = if count == 0 {
        0.0
    } else {
        100.0 * stats.failures as f64 / count as f64
    };
    let (avg, min, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (h.mean() / 1000.0, ms(h.min()), ms(h.max()))
    };
    let rps = if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    };
    let mut name: String = stats.name.chars().take(NAME_WIDTH).collect();
    if stats.name.chars().count() > NAME_WIDTH {
        name.pop();
        name.push('…');
    }
    let _ = writeln!(
        out,
        "{:<8} {:<NAME_WIDTH$} {:>9} {:>8}({:>5.2}%) | {:>8.2} {:>8.2} {:>8.2} | {:>8.2} {:>8.2} {:>8.2} {:>8.2} | {:>9.2}",
        stats.request_type,
        name,
        count,
        stats.failures,
        fail_pct,
        avg,
        min,
        max,
        percentile_ms(h, 50.0),
        percentile_ms(h, 90.0),
        percentile_ms(h, 95.0),
        percentile_ms(h, 99.0),
        rps
    );
}

/// Renders the statistics table (times in ms), with an `Aggregated` row and, when
/// there were failures, an error report.
pub fn render_table(snapshot: &StatsSnapshot) -> String {
    let seconds = snapshot.duration.as_secs_f64();
    let mut out = String::new();
    let header = format!(
        "{:<8} {:<NAME_WIDTH$} {:>9} {:>17} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>8} | {:>9}",
        "Type",
        "Name",
        "# reqs",
        "# fails",
        "Avg",
        "Min",
        "Max",
        "p50",
        "p90",
        "p95",
        "p99",
        "req/s"
    );
    let rule = "-".repeat(header.chars().count());
    let _ = writeln!(out, "{header}\n{rule}");
    for endpoint in &snapshot.endpoints {
        row(&mut out, endpoint, seconds);
    }
    let _ = writeln!(out, "{rule}");
    let aggregated = snapshot.aggregated();
    row(&mut out, &aggregated, seconds);
    if aggregated.count() == 0 {
        let _ = writeln!(
            out,
            "No requests were recorded: these zeros are not measurements."
        );
    }
    if snapshot.dropped_iterations > 0 {
        let _ = writeln!(
            out,
            "Dropped iterations: {} (the open model's max_users were all busy)",
            snapshot.dropped_iterations
        );
    }

    if aggregated.retries > 0 {
        let _ = writeln!(
            out,
            "\nRetries (each also counted in # reqs)\n{:>9}  Name",
            "# retries"
        );
        for endpoint in snapshot.endpoints.iter().filter(|e| e.retries > 0) {
            let _ = writeln!(
                out,
                "{:>9}  {} {}",
                endpoint.retries, endpoint.request_type, endpoint.name
            );
        }
    }

    let mut errors: Vec<(&EndpointStats, &str, u64)> = snapshot
        .endpoints
        .iter()
        .flat_map(|e| e.errors.iter().map(move |(t, n)| (e, &**t, *n)))
        .collect();
    if !errors.is_empty() {
        errors.sort_by_key(|e| std::cmp::Reverse(e.2));
        let _ = writeln!(out, "\nError report\n{:>9}  Error", "# occur");
        for (endpoint, text, n) in errors {
            let _ = writeln!(
                out,
                "{n:>9}  {} {}: {text}",
                endpoint.request_type, endpoint.name
            );
        }
    }
    out
}
