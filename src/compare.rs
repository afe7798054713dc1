//! Comparing two runs (`loaddensity compare`): per endpoint, the change in request
//! rate, latency percentiles and failure rate between a base and a new result
//! document, and `--fail-if` limits that make the comparison a regression check.
//!
//! A limit reads `[NAME:]METRIC OP VALUE`: `p95>+10%` (grew by more than 10 %),
//! `rps<-20%` (fell by more than 20 %), `p99>+50` (grew by more than 50 ms),
//! `failure_rate>0.01` (the new run's value, unsigned, is above 0.01). Without a
//! `NAME:` it applies to every endpoint and to `Aggregated` (all requests).

use std::fmt::{self, Write};

use crate::stats::Summary;

/// The name of the all-requests row.
pub const AGGREGATED: &str = "Aggregated";

/// What is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Requests.
    Requests,
    /// Requests per second.
    Rps,
    /// Median, ms.
    P50,
    /// 90th percentile, ms.
    P90,
    /// 95th percentile, ms.
    P95,
    /// 99th percentile, ms.
    P99,
    /// Mean, ms.
    Mean,
    /// Maximum, ms.
    Max,
    /// Failures / requests.
    FailureRate,
}

const METRICS: &[(&str, Metric)] = &[
    ("requests", Metric::Requests),
    ("rps", Metric::Rps),
    ("p50", Metric::P50),
    ("p90", Metric::P90),
    ("p95", Metric::P95),
    ("p99", Metric::P99),
    ("mean", Metric::Mean),
    ("max", Metric::Max),
    ("failure_rate", Metric::FailureRate),
];

/// The metrics printed for each endpoint.
const SHOWN: &[Metric] = &[
    Metric::Requests,
    Metric::Rps,
    Metric::P50,
    Metric::P95,
    Metric::P99,
    Metric::FailureRate,
];

impl Metric {
    /// The name used in limits, e.g. `p95`.
    pub fn name(self) -> &'static str {
        METRICS
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("?", |(n, _)| n)
    }

    fn unit(self) -> &'static str {
        match self {
            Metric::Requests | Metric::FailureRate | Metric::Rps => "",
            _ => " ms",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let text = text.strip_prefix("latency_").unwrap_or(text);
        let text = text.strip_suffix("_ms").unwrap_or(text);
        METRICS.iter().find(|(n, _)| *n == text).map(|(_, m)| *m)
    }
}

/// One endpoint's (or all requests') figures in one run.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Figures {
    /// Requests.
    pub requests: f64,
    /// Requests per second.
    pub rps: f64,
    /// Median, ms.
    pub p50: f64,
    /// 90th percentile, ms.
    pub p90: f64,
    /// 95th percentile, ms.
    pub p95: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// Mean, ms.
    pub mean: f64,
    /// Maximum, ms.
    pub max: f64,
    /// Failures / requests.
    pub failure_rate: f64,
}

impl Figures {
    /// The value of one metric.
    pub fn get(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Requests => self.requests,
            Metric::Rps => self.rps,
            Metric::P50 => self.p50,
            Metric::P90 => self.p90,
            Metric::P95 => self.p95,
            Metric::P99 => self.p99,
            Metric::Mean => self.mean,
            Metric::Max => self.max,
            Metric::FailureRate => self.failure_rate,
        }
    }

    fn of_summary(summary: &Summary) -> Vec<(String, Figures)> {
        let t = &summary.totals;
        let l = &summary.latency_overall;
        let weighted: f64 = summary
            .per_name
            .values()
            .map(|n| n.mean_ms * n.count as f64)
            .sum();
        let mut all = vec![(
            AGGREGATED.to_string(),
            Figures {
                requests: t.requests as f64,
                rps: t.rps,
                p50: l.p50_ms,
                p90: l.p90_ms,
                p95: l.p95_ms,
                p99: l.p99_ms,
                mean: if t.requests == 0 {
                    0.0
                } else {
                    weighted / t.requests as f64
                },
                max: l.max_ms,
                failure_rate: t.failure_rate,
            },
        )];
        all.extend(summary.per_name.iter().map(|(name, n)| {
            (
                name.clone(),
                Figures {
                    requests: n.count as f64,
                    rps: n.rps,
                    p50: n.p50_ms,
                    p90: n.p90_ms,
                    p95: n.p95_ms,
                    p99: n.p99_ms,
                    mean: n.mean_ms,
                    max: n.max_ms,
                    failure_rate: if n.count == 0 {
                        0.0
                    } else {
                        n.failures as f64 / n.count as f64
                    },
                },
            )
        }));
        all
    }
}

/// One endpoint in both runs (`None` where it did not appear).
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointComparison {
    /// The endpoint name, or [`AGGREGATED`].
    pub name: String,
    /// Its figures in the base run.
    pub base: Option<Figures>,
    /// Its figures in the new run.
    pub new: Option<Figures>,
}

/// Compares two result documents: `Aggregated` first, then every endpoint of
/// either run by name.
pub fn compare(base: &Summary, new: &Summary) -> Vec<EndpointComparison> {
    let base = Figures::of_summary(base);
    let new = Figures::of_summary(new);
    let mut names: Vec<&String> = base.iter().chain(&new).map(|(n, _)| n).collect();
    names.sort_by_key(|n| (n.as_str() != AGGREGATED, n.as_str()));
    names.dedup();
    let find = |list: &[(String, Figures)], name: &str| {
        list.iter().find(|(n, _)| n == name).map(|(_, f)| *f)
    };
    names
        .into_iter()
        .map(|name| EndpointComparison {
            name: name.clone(),
            base: find(&base, name),
            new: find(&new, name),
        })
        .collect()
}

/// The relative change from `base` to `new` in percent (infinite from 0 to more).
pub fn change_pct(base: f64, new: f64) -> f64 {
    if base == new {
        0.0
    } else if base == 0.0 {
        f64::INFINITY.copysign(new)
    } else {
        (new - base) / base.abs() * 100.0
    }
}

/// A `--fail-if` limit that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--fail-if `{text}`: {message}")]
pub struct LimitError {
    /// The limit as given.
    pub text: String,
    /// What is wrong and what was expected.
    pub message: String,
}

/// What a limit's value measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// The new run's value (`failure_rate>0.01`).
    Value(f64),
    /// The change, in the metric's unit (`p95>+50`).
    Change(f64),
    /// The change in percent (`p95>+10%`).
    ChangePct(f64),
}

/// The comparison that makes a limit fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
}

impl Op {
    fn passed(self, actual: f64, limit: f64) -> bool {
        match self {
            Op::Gt => actual > limit,
            Op::Gte => actual >= limit,
            Op::Lt => actual < limit,
            Op::Lte => actual <= limit,
        }
    }
}

/// A `--fail-if` limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// The text given.
    pub text: String,
    /// One endpoint (or [`AGGREGATED`]), or `None` for all.
    pub name: Option<String>,
    /// What is measured.
    pub metric: Metric,
    /// How it is compared.
    pub op: Op,
    /// Against what.
    pub bound: Bound,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Parses `[NAME:]METRIC OP VALUE`, e.g. `p95>+10%`, `rps<-20%`, `/api:p99>+50`,
/// `failure_rate>0.01`.
pub fn parse_limit(text: &str) -> Result<Limit, LimitError> {
    let error = |message: String| LimitError {
        text: text.to_string(),
        message,
    };
    let at = text.find(['<', '>']).ok_or_else(|| {
        error("expected [NAME:]METRIC>VALUE, e.g. p95>+10% or failure_rate>0.01".into())
    })?;
    let (left, rest) = text.split_at(at);
    let (op, value) = if let Some(v) = rest.strip_prefix(">=") {
        (Op::Gte, v)
    } else if let Some(v) = rest.strip_prefix("<=") {
        (Op::Lte, v)
    } else if let Some(v) = rest.strip_prefix('>') {
        (Op::Gt, v)
    } else {
        (Op::Lt, &rest[1..])
    };
    let (name, metric_text) = match left.rsplit_once(':') {
        Some((name, metric)) if !name.trim().is_empty() => (Some(name.trim().to_string()), metric),
        Some((_, metric)) => (None, metric),
        None => (None, left),
    };
    let metric = Metric::parse(metric_text).ok_or_else(|| {
        error(format!(
            "unknown metric `{}`; expected one of {}",
            metric_text.trim(),
            METRICS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let value = value.trim();
    let signed = value.starts_with(['+', '-']);
    let (number, percent) = match value.strip_suffix('%') {
        Some(number) => (number.trim(), true),
        None => (value, false),
    };
    let number: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| error(format!("`{value}` is not a number (e.g. +10%, -5, 0.01)")))?;
    let bound = match (signed, percent) {
        (true, true) => Bound::ChangePct(number),
        (true, false) => Bound::Change(number),
        (false, false) => Bound::Value(number),
        (false, true) => {
            return Err(error(format!(
                "a percentage is a change: write it with a sign, e.g. +{number}% or -{number}%"
            )));
        }
    };
    Ok(Limit {
        text: text.to_string(),
        name,
        metric,
        op,
        bound,
    })
}

/// A limit passed by one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The limit.
    pub limit: String,
    /// The endpoint, or [`AGGREGATED`].
    pub name: String,
    /// One line saying what changed, e.g. `p95 1.2 ms → 101.3 ms (+8341.7%)`.
    pub reason: String,
}

/// Every limit each endpoint passed. A change limit needs the endpoint in both runs;
/// a value limit, in the new one. A named limit whose endpoint is in neither run is
/// itself reported.
pub fn check(limits: &[Limit], comparisons: &[EndpointComparison]) -> Vec<Violation> {
    let mut violations = Vec::new();
    for limit in limits {
        let mut matched = false;
        for c in comparisons {
            if limit.name.as_deref().is_some_and(|n| n != c.name) {
                continue;
            }
            matched = true;
            let Some(new) = c.new else { continue };
            let new_value = new.get(limit.metric);
            let (actual, base_value) = match (limit.bound, c.base) {
                (Bound::Value(_), base) => (new_value, base.map(|b| b.get(limit.metric))),
                (Bound::Change(_), Some(base)) => (
                    new_value - base.get(limit.metric),
                    Some(base.get(limit.metric)),
                ),
                (Bound::ChangePct(_), Some(base)) => (
                    change_pct(base.get(limit.metric), new_value),
                    Some(base.get(limit.metric)),
                ),
                (_, None) => continue,
            };
            let bound = match limit.bound {
                Bound::Value(v) | Bound::Change(v) | Bound::ChangePct(v) => v,
            };
            if limit.op.passed(actual, bound) {
                let unit = limit.metric.unit();
                let metric = limit.metric.name();
                let reason = match base_value {
                    Some(base) => format!(
                        "{metric} {}{unit} → {}{unit} ({})",
                        number(base),
                        number(new_value),
                        change_text(base, new_value)
                    ),
                    None => format!("{metric} {}{unit}", number(new_value)),
                };
                violations.push(Violation {
                    limit: limit.text.clone(),
                    name: c.name.clone(),
                    reason,
                });
            }
        }
        if !matched && let Some(name) = &limit.name {
            violations.push(Violation {
                limit: limit.text.clone(),
                name: name.clone(),
                reason: "no endpoint with that name in either run".into(),
            });
        }
    }
    violations
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else if value.abs() >= 100.0 {
        format!("{value:.1}")
    } else if value.abs() >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.4}")
    }
}

fn change_text(base: f64, new: f64) -> String {
    let pct = change_pct(base, new);
    if pct.is_infinite() {
        "new".into()
    } else {
        format!("{pct:+.1}%")
    }
}

/// The comparison as a text table: one block per endpoint, one line per metric.
pub fn render_comparison(comparisons: &[EndpointComparison]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<40} {:<14} {:>14} {:>14} {:>10}",
        "Name", "Metric", "Base", "New", "Change"
    );
    let _ = writeln!(out, "{}", "-".repeat(96));
    for c in comparisons {
        let mut name: String = c.name.chars().take(40).collect();
        for metric in SHOWN {
            let label = format!("{}{}", metric.name(), metric.unit());
            let base = c.base.map(|f| f.get(*metric));
            let new = c.new.map(|f| f.get(*metric));
            let change = match (base, new) {
                (Some(b), Some(n)) => change_text(b, n),
                (None, Some(_)) => "only new".into(),
                (Some(_), None) => "only base".into(),
                (None, None) => String::new(),
            };
            let _ = writeln!(
                out,
                "{:<40} {:<14} {:>14} {:>14} {:>10}",
                name,
                label,
                base.map_or_else(|| "-".into(), number),
                new.map_or_else(|| "-".into(), number),
                change
            );
            name.clear();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse() {
        let l = parse_limit("p95>+10%").expect("limit");
        assert_eq!(
            (l.name, l.metric, l.op, l.bound),
            (None, Metric::P95, Op::Gt, Bound::ChangePct(10.0))
        );
        let l = parse_limit("http://h:80/a:rps<-20%").expect("limit");
        assert_eq!(l.name.as_deref(), Some("http://h:80/a"));
        assert_eq!((l.metric, l.op), (Metric::Rps, Op::Lt));
        assert_eq!(l.bound, Bound::ChangePct(-20.0));
        assert_eq!(
            parse_limit("failure_rate>=0.01").expect("limit").bound,
            Bound::Value(0.01)
        );
        assert_eq!(
            parse_limit("latency_p99_ms>+50").expect("limit").bound,
            Bound::Change(50.0)
        );
        for bad in ["p95", "p42>+1%", "p95>10%", "p95>abc"] {
            let e = parse_limit(bad).expect_err(bad);
            assert!(
                e.to_string().starts_with(&format!("--fail-if `{bad}`")),
                "{e}"
            );
        }
    }

    fn figures(rps: f64, p95: f64, failure_rate: f64) -> Figures {
        Figures {
            requests: rps * 10.0,
            rps,
            p95,
            failure_rate,
            ..Figures::default()
        }
    }

    #[test]
    fn limits_fail_on_the_endpoints_that_pass_them() {
        let comparisons = vec![
            EndpointComparison {
                name: AGGREGATED.into(),
                base: Some(figures(100.0, 10.0, 0.0)),
                new: Some(figures(90.0, 10.5, 0.02)),
            },
            EndpointComparison {
                name: "/slow".into(),
                base: Some(figures(50.0, 10.0, 0.0)),
                new: Some(figures(20.0, 100.0, 0.0)),
            },
            EndpointComparison {
                name: "/gone".into(),
                base: Some(figures(50.0, 10.0, 0.0)),
                new: None,
            },
        ];
        let limits: Vec<Limit> = ["p95>+10%", "rps<-20%", "failure_rate>0.01", "/x:p95>+1"]
            .iter()
            .map(|t| parse_limit(t).expect("limit"))
            .collect();
        let violations = check(&limits, &comparisons);
        let found: Vec<(&str, &str)> = violations
            .iter()
            .map(|v| (v.limit.as_str(), v.name.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("p95>+10%", "/slow"),
                ("rps<-20%", "/slow"),
                ("failure_rate>0.01", AGGREGATED),
                ("/x:p95>+1", "/x"),
            ]
        );
        assert_eq!(violations[0].reason, "p95 10 ms → 100 ms (+900.0%)");
        assert!(check(&limits[..1], &comparisons[..1]).is_empty());
    }

    #[test]
    fn changes_from_zero() {
        assert_eq!(change_pct(0.0, 0.0), 0.0);
        assert!(change_pct(0.0, 3.0).is_infinite());
        assert_eq!(change_pct(4.0, 5.0), 25.0);
        assert_eq!(change_text(0.0, 1.0), "new");
    }
}
