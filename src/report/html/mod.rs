//! The HTML report: one self-contained page (inline CSS and SVG, no script, no
//! network fetch) built from a run's result document. It shows the run's header and
//! SLA banner, a per-endpoint table in Locust's layout, charts over time (requests
//! and failures per second, p50/p95/p99, active users), each endpoint's
//! response-time distribution, the errors, the SLA gates and response samples.
//!
//! Long timelines are downsampled to [`series::MAX_POINTS`] points a line, so a 1-hour run
//! stays well under 2 MB.

mod chart;
mod series;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt::Write;

use hdrhistogram::Histogram;

use crate::stats::{
    LoadDescription, NameStats, ResponseSample, ResultDocument, SlaGateResult, Summary,
};
use chart::{LineChart, Series, clock, distribution_chart};
use series::{distribution_bins, timeline_points};

/// Most endpoints that get a distribution chart (those with the most requests).
pub(crate) const MAX_DISTRIBUTIONS: usize = 50;
/// Most rows of the error table.
pub(crate) const MAX_ERROR_ROWS: usize = 200;

/// What the page shows besides the statistics, taken from the document's `run` and
/// `histograms` blocks.
#[derive(Debug, Default)]
struct ReportContext<'a> {
    /// The load of each test, in words.
    load: Option<String>,
    /// Response-time histograms (µs) by endpoint name.
    histograms: BTreeMap<String, Histogram<u64>>,
    /// Histograms that could not be decoded, with why.
    unreadable: Vec<String>,
    /// SLA gate results, when gates ran.
    sla: &'a [SlaGateResult],
}

impl<'a> ReportContext<'a> {
    fn of(document: &'a ResultDocument) -> Self {
        let mut histograms = BTreeMap::new();
        let mut unreadable = Vec::new();
        for name in document.histograms.per_name.keys() {
            match document.name_histogram(name) {
                Some(Ok(h)) => {
                    histograms.insert(name.clone(), h);
                }
                Some(Err(e)) => unreadable.push(e.to_string()),
                None => {}
            }
        }
        let load: Vec<String> = document.run.load.iter().map(load_text).collect();
        Self {
            load: (!load.is_empty()).then(|| load.join("; ")),
            histograms,
            unreadable,
            sla: document.run.sla.as_deref().unwrap_or_default(),
        }
    }
}

/// One test's load in words, e.g. `50 users (spawn rate 10/s) for 60 s, ran 60.0 s`.
fn load_text(load: &LoadDescription) -> String {
    let mut text = match &load.arrival_rate {
        Some(rate) => format!("open model {rate}, up to {} users", load.users),
        None => format!("{} users (spawn rate {}/s)", load.users, load.spawn_rate),
    };
    if let Some(shape) = &load.shape {
        let _ = write!(text, ", shape {shape}");
    }
    match load.test_time {
        Some(t) => {
            let _ = write!(text, " for {t} s");
        }
        None => text.push_str(" until stopped"),
    }
    let _ = write!(text, ", ran {:.1} s", load.duration_s);
    if load.interrupted {
        text.push_str(" (interrupted)");
    }
    text
}

/// HTML-escapes text for element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A latency in ms with precision that suits its size.
fn ms(value: f64) -> String {
    if !value.is_finite() {
        "–".into()
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn rate(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f4f6f9}
main{max-width:1200px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:24px;margin:8px 0}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d5dae2;padding-bottom:4px}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}dl.meta dt{color:#5b6475}dl.meta dd{margin:0}
.banner{padding:10px 14px;border-radius:6px;font-weight:600;margin:12px 0}.banner.pass{background:#dff3e4;color:#17662f}.banner.fail{background:#fbe0e0;color:#9b1c1c}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}.card{background:#fff;border:1px solid #d5dae2;border-radius:6px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:20px}.card span{color:#5b6475;font-size:12px}
table{border-collapse:collapse;background:#fff;width:100%;font-size:13px}th,td{border:1px solid #d5dae2;padding:4px 8px;text-align:right}
th{background:#eef1f5}td.name,th.name,td.text{text-align:left;word-break:break-all}tr.total td{font-weight:600;background:#f7f8fa}
td.bad{color:#9b1c1c;font-weight:600}td.ok{color:#17662f;font-weight:600}
svg.chart{display:block;width:100%;height:auto;border:1px solid #d5dae2;border-radius:6px;margin:8px 0}
svg .title{font-size:14px;font-weight:600;fill:#1d2330}svg .grid{stroke:#e3e7ed;stroke-width:1}
svg .ylabel{font-size:11px;fill:#5b6475;text-anchor:end}svg .xlabel{font-size:11px;fill:#5b6475;text-anchor:middle}
svg .legend{font-size:12px;fill:#1d2330}svg .nodata{font-size:14px;fill:#8a93a3;text-anchor:middle}svg .bar{fill:#4a7fd6}
.note{color:#5b6475;font-size:12px}details{background:#fff;border:1px solid #d5dae2;border-radius:6px;margin:6px 0;padding:6px 10px}
pre{white-space:pre-wrap;word-break:break-all;font-size:12px;background:#f7f8fa;padding:6px;max-height:320px;overflow:auto}
"#;

/// Renders the report of a result document as one self-contained HTML page. A
/// histogram that cannot be decoded is named on the page instead of drawn.
pub(crate) fn render_html(document: &ResultDocument) -> String {
    let context = &ReportContext::of(document);
    let summary: &Summary = document;
    let mut out = String::with_capacity(64 * 1024);
    let title = document.run.script.as_deref().map_or_else(
        || "loaddensity report".to_string(),
        |s| format!("loaddensity report: {s}"),
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body><main>\n",
        escape(&title)
    );
    header(&mut out, summary, context);
    endpoint_table(&mut out, summary);
    timeline_charts(&mut out, summary);
    distributions(&mut out, summary, context);
    errors(&mut out, summary);
    sla_table(&mut out, context);
    samples(&mut out, &document.samples);
    let ran_by = &document.run.tool_version;
    let _ = write!(
        out,
        "<p class=\"note\">Generated by loaddensity {}{}.</p>\n</main></body></html>\n",
        env!("CARGO_PKG_VERSION"),
        if ran_by.is_empty() || ran_by == env!("CARGO_PKG_VERSION") {
            String::new()
        } else {
            format!(" from a run of loaddensity {}", escape(ran_by))
        }
    );
    out
}

fn header(out: &mut String, summary: &Summary, context: &ReportContext<'_>) {
    out.push_str("<header><h1>Load test report</h1><dl class=\"meta\">");
    let duration = format!(
        "{} ({:.1} s)",
        clock(summary.totals.duration_s),
        summary.totals.duration_s
    );
    let run = &summary.run;
    let rows = [
        ("Script", run.script.clone()),
        ("Started", run.started_at.clone()),
        ("Ended", run.ended_at.clone()),
        ("Duration", Some(duration)),
        ("Load", context.load.clone()),
    ];
    for (label, value) in rows {
        if let Some(value) = value {
            let _ = write!(out, "<dt>{label}</dt><dd>{}</dd>", escape(&value));
        }
    }
    out.push_str("</dl>");
    if !context.sla.is_empty() {
        let failed = context.sla.iter().filter(|r| !r.passed).count();
        let total = context.sla.len();
        if failed == 0 {
            let _ = write!(
                out,
                "<div class=\"banner pass\" id=\"sla-banner\">SLA PASSED: {total} of {total} gates held</div>"
            );
        } else {
            let _ = write!(
                out,
                "<div class=\"banner fail\" id=\"sla-banner\">SLA FAILED: {failed} of {total} gates failed</div>"
            );
        }
    }
    let t = &summary.totals;
    let l = &summary.latency_overall;
    let cards = [
        (t.requests.to_string(), "requests"),
        (
            format!("{} ({:.2}%)", t.failures, t.failure_rate * 100.0),
            "failures",
        ),
        (rate(t.rps), "requests/s"),
        (ms(l.p50_ms), "p50 ms"),
        (ms(l.p95_ms), "p95 ms"),
        (ms(l.p99_ms), "p99 ms"),
        (ms(l.max_ms), "max ms"),
    ];
    out.push_str("<div class=\"cards\">");
    for (value, label) in cards {
        let _ = write!(
            out,
            "<div class=\"card\"><b>{}</b><span>{label}</span></div>",
            escape(&value)
        );
    }
    if t.dropped_iterations > 0 {
        let _ = write!(
            out,
            "<div class=\"card\"><b>{}</b><span>dropped iterations</span></div>",
            t.dropped_iterations
        );
    }
    out.push_str("</div></header>\n");
}

fn endpoint_row(out: &mut String, class: &str, name: &str, s: &NameStats, avg_size: Option<f64>) {
    let size = avg_size.map_or_else(|| "–".to_string(), |b| format!("{b:.0}"));
    let failures_class = if s.failures > 0 { " class=\"bad\"" } else { "" };
    let _ = writeln!(
        out,
        "<tr{class}><td class=\"name\">{}</td><td>{}</td><td{failures_class}>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{size}</td><td>{}</td></tr>",
        escape(name),
        s.count,
        s.failures,
        ms(s.p50_ms),
        ms(s.p90_ms),
        ms(s.p95_ms),
        ms(s.p99_ms),
        ms(s.max_ms),
        ms(s.mean_ms),
        rate(s.rps),
    );
}

fn endpoint_table(out: &mut String, summary: &Summary) {
    out.push_str("<section id=\"endpoints\"><h2>Requests by endpoint</h2><table><thead><tr><th class=\"name\">Name</th><th>Requests</th><th>Failures</th><th>Median ms</th><th>90%ile ms</th><th>95%ile ms</th><th>99%ile ms</th><th>Max ms</th><th>Average ms</th><th>Average size (bytes)</th><th>RPS</th></tr></thead><tbody>\n");
    for (name, stats) in &summary.per_name {
        endpoint_row(out, "", name, stats, stats.avg_size_bytes());
    }
    let t = &summary.totals;
    let l = &summary.latency_overall;
    let weighted_mean: f64 = summary
        .per_name
        .values()
        .map(|n| n.mean_ms * n.count as f64)
        .sum();
    let bytes: u64 = summary.per_name.values().map(|n| n.response_bytes).sum();
    let aggregated = NameStats {
        count: t.requests,
        failures: t.failures,
        rps: t.rps,
        min_ms: 0.0,
        max_ms: l.max_ms,
        mean_ms: if t.requests == 0 {
            0.0
        } else {
            weighted_mean / t.requests as f64
        },
        p50_ms: l.p50_ms,
        p90_ms: l.p90_ms,
        p95_ms: l.p95_ms,
        p99_ms: l.p99_ms,
        response_bytes: bytes,
        retries: summary.per_name.values().map(|n| n.retries).sum(),
    };
    let size = aggregated.avg_size_bytes();
    endpoint_row(out, " class=\"total\"", "Aggregated", &aggregated, size);
    out.push_str("</tbody></table></section>\n");
}

fn timeline_charts(out: &mut String, summary: &Summary) {
    let (points, per_point) = timeline_points(&summary.timeline);
    out.push_str("<section id=\"timeline\"><h2>Over time</h2>");
    if per_point > 1 {
        let _ = write!(
            out,
            "<p class=\"note\" id=\"downsampled\">{} seconds shown as {} points of {per_point} s: rates are averages over each point, p95 and p99 the worst second's, p50 the requests-weighted mean.</p>",
            summary.timeline.len(),
            points.len()
        );
    }
    let line = |f: fn(&series::TimelinePoint) -> f64| -> Vec<(f64, f64)> {
        points.iter().map(|p| (p.t, f(p))).collect()
    };
    let charts = [
        LineChart {
            id: "rps",
            title: "Requests and failures per second",
            series: vec![
                Series {
                    label: "requests/s",
                    color: "#2f8f4e",
                    points: line(|p| p.rps),
                },
                Series {
                    label: "failures/s",
                    color: "#d33a3a",
                    points: line(|p| p.failures_per_s),
                },
            ],
        },
        LineChart {
            id: "latency",
            title: "Response time (ms)",
            series: vec![
                Series {
                    label: "p50",
                    color: "#4a7fd6",
                    points: line(|p| p.p50_ms),
                },
                Series {
                    label: "p95",
                    color: "#e0902f",
                    points: line(|p| p.p95_ms),
                },
                Series {
                    label: "p99",
                    color: "#b8336a",
                    points: line(|p| p.p99_ms),
                },
            ],
        },
        LineChart {
            id: "users",
            title: "Active users",
            series: vec![Series {
                label: "users",
                color: "#6b4fbb",
                points: line(|p| p.users),
            }],
        },
    ];
    for chart in &charts {
        out.push_str(&chart.render());
        out.push('\n');
    }
    out.push_str("</section>\n");
}

fn distributions(out: &mut String, summary: &Summary, context: &ReportContext<'_>) {
    out.push_str("<section id=\"distributions\"><h2>Response-time distribution by endpoint</h2>");
    for problem in &context.unreadable {
        let _ = write!(
            out,
            "<p class=\"note\">Histogram not drawn: {}</p>",
            escape(problem)
        );
    }
    if context.histograms.is_empty() {
        out.push_str(
            "<p class=\"note\">This result document carries no histograms (`histograms`), so no distribution can be drawn.</p></section>\n",
        );
        return;
    }
    let mut names: Vec<(&String, &Histogram<u64>)> = context.histograms.iter().collect();
    names.sort_by_key(|(_, h)| std::cmp::Reverse(h.len()));
    if names.len() > MAX_DISTRIBUTIONS {
        let _ = write!(
            out,
            "<p class=\"note\">The {MAX_DISTRIBUTIONS} endpoints with the most requests, of {}.</p>",
            names.len()
        );
        names.truncate(MAX_DISTRIBUTIONS);
    }
    names.sort_by(|a, b| a.0.cmp(b.0));
    for (i, (name, histogram)) in names.into_iter().enumerate() {
        let requests = summary
            .per_name
            .get(name)
            .map_or(histogram.len(), |s| s.count);
        let title = format!("{name}: {requests} requests, response time (ms)");
        out.push_str(&distribution_chart(
            &format!("distribution-{i}"),
            &title,
            &distribution_bins(histogram),
        ));
        out.push('\n');
    }
    out.push_str("</section>\n");
}

fn errors(out: &mut String, summary: &Summary) {
    out.push_str("<section id=\"errors\"><h2>Errors</h2>");
    if summary.errors.is_empty() {
        out.push_str("<p class=\"note\">No request failed.</p></section>\n");
        return;
    }
    out.push_str("<table><thead><tr><th>Occurrences</th><th class=\"name\">Method</th><th class=\"name\">Name</th><th class=\"name\">Error</th></tr></thead><tbody>\n");
    for error in summary.errors.iter().take(MAX_ERROR_ROWS) {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"name\">{}</td><td class=\"name\">{}</td><td class=\"text\">{}</td></tr>",
            error.occurrences,
            escape(&error.request_type),
            escape(&error.name),
            escape(&error.error)
        );
    }
    out.push_str("</tbody></table>");
    if summary.errors.len() > MAX_ERROR_ROWS {
        let _ = write!(
            out,
            "<p class=\"note\">{} more error kinds not shown.</p>",
            summary.errors.len() - MAX_ERROR_ROWS
        );
    }
    out.push_str("</section>\n");
}

fn sla_table(out: &mut String, context: &ReportContext<'_>) {
    out.push_str("<section id=\"sla\"><h2>SLA gates</h2>");
    if context.sla.is_empty() {
        out.push_str("<p class=\"note\">No SLA gate ran.</p></section>\n");
        return;
    }
    out.push_str("<table><thead><tr><th class=\"name\">Rule</th><th>Actual</th><th>Limit</th><th>Result</th></tr></thead><tbody>\n");
    for row in context.sla {
        let op = match row.op.as_str() {
            "lt" => "<",
            "lte" => "≤",
            "gt" => ">",
            "gte" => "≥",
            other => other,
        };
        let (class, verdict) = if row.passed {
            ("ok", "PASS")
        } else {
            ("bad", "FAIL")
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"name\">{}</td><td>{}</td><td>{} {}</td><td class=\"{class}\">{verdict}</td></tr>",
            escape(&row.rule),
            row.actual.map_or_else(
                || "no requests".into(),
                |a| format!("{}", (a * 10_000.0).round() / 10_000.0)
            ),
            escape(op),
            row.value
        );
    }
    out.push_str("</tbody></table></section>\n");
}

fn samples(out: &mut String, samples: &[ResponseSample]) {
    out.push_str("<section id=\"samples\"><h2>Response samples</h2>");
    if samples.is_empty() {
        out.push_str("<p class=\"note\">No response samples in this result document (the request log keeps the first 3 responses of each endpoint and status or error; with <code>max_records: 0</code> it keeps none).</p></section>\n");
        return;
    }
    for sample in samples {
        let outcome = match (&sample.error, sample.status_code) {
            (Some(error), _) => format!("error: {error}"),
            (None, Some(status)) => format!("HTTP {status}"),
            (None, None) => "no response".into(),
        };
        let _ = write!(
            out,
            "<details><summary>{} {} ({}) — {}</summary>",
            escape(&sample.request_type),
            escape(&sample.name),
            escape(&sample.url),
            escape(&outcome)
        );
        if !sample.headers.is_empty() {
            out.push_str("<pre class=\"headers\">");
            for (name, value) in &sample.headers {
                let _ = writeln!(out, "{}: {}", escape(name), escape(value));
            }
            out.push_str("</pre>");
        }
        let _ = write!(
            out,
            "<pre class=\"body\">{}{}</pre></details>",
            escape(&sample.body),
            if sample.body_truncated {
                "\n… (truncated)"
            } else {
                ""
            }
        );
    }
    out.push_str("</section>\n");
}
