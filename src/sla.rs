//! SLA gates (LoadDensity's `LD_evaluate_sla` and `LD_assert_sla`, k6's thresholds):
//! rules on latency percentiles, failure rate and request counts, evaluated against a
//! [`Summary`].

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::stats::{SlaGateResult, Summary};

/// What a rule measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Median latency, ms.
    LatencyP50,
    /// 90th percentile latency, ms.
    LatencyP90,
    /// 95th percentile latency, ms.
    LatencyP95,
    /// 99th percentile latency, ms.
    LatencyP99,
    /// Mean latency, ms (per name only).
    LatencyMean,
    /// Failures / requests, 0–1.
    FailureRate,
    /// Number of requests.
    Requests,
}

const METRICS: &[(&str, Metric)] = &[
    ("latency_p50", Metric::LatencyP50),
    ("latency_p90", Metric::LatencyP90),
    ("latency_p95", Metric::LatencyP95),
    ("latency_p99", Metric::LatencyP99),
    ("latency_mean", Metric::LatencyMean),
    ("failure_rate", Metric::FailureRate),
    ("requests", Metric::Requests),
];

impl Metric {
    fn label(self) -> &'static str {
        METRICS
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("?", |(name, _)| name)
    }
}

/// The comparison a rule's actual value must satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=` (the default)
    Lte,
    /// `>`
    Gt,
    /// `>=`
    Gte,
}

const OPS: &[(&str, Op)] = &[
    ("lt", Op::Lt),
    ("lte", Op::Lte),
    ("gt", Op::Gt),
    ("gte", Op::Gte),
];

impl Op {
    fn holds(self, actual: f64, limit: f64) -> bool {
        match self {
            Op::Lt => actual < limit,
            Op::Lte => actual <= limit,
            Op::Gt => actual > limit,
            Op::Gte => actual >= limit,
        }
    }

    fn label(self) -> &'static str {
        OPS.iter()
            .find(|(_, o)| *o == self)
            .map_or("?", |(name, _)| name)
    }
}

/// One gate.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// What is measured.
    pub metric: Metric,
    /// One request name, or `None` for all requests.
    pub name: Option<String>,
    /// The comparison.
    pub op: Op,
    /// The limit.
    pub value: f64,
    /// Evaluate the rule even when it measured no requests (`allow_empty`; off by
    /// default: a gate on no requests fails with [`NO_REQUESTS`]).
    pub allow_empty: bool,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{}({name})", self.metric.label()),
            None => write!(f, "{}", self.metric.label()),
        }
    }
}

/// A rule that cannot be used, with its path (`rules[2].op`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{path}`: {message}")]
pub struct RuleError {
    /// Where the problem is.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

fn rule_error(path: String, message: impl Into<String>) -> RuleError {
    RuleError {
        path,
        message: message.into(),
    }
}

fn names<T>(table: &[(&str, T)]) -> String {
    table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// Parses LoadDensity's rule list.
pub fn parse_rules(rules: &Value) -> Result<Vec<Rule>, RuleError> {
    let list = rules.as_array().ok_or_else(|| {
        rule_error(
            "rules".into(),
            format!("expected a list of rules, got {rules}"),
        )
    })?;
    if list.is_empty() {
        return Err(rule_error("rules".into(), "expected at least one rule"));
    }
    list.iter()
        .enumerate()
        .map(|(i, rule)| parse_rule(rule, &format!("rules[{i}]")))
        .collect()
}

fn parse_rule(rule: &Value, path: &str) -> Result<Rule, RuleError> {
    let object = rule
        .as_object()
        .ok_or_else(|| rule_error(path.into(), format!("expected a rule object, got {rule}")))?;
    for key in object.keys() {
        if !["type", "name", "op", "value", "allow_empty"].contains(&key.as_str()) {
            return Err(rule_error(
                format!("{path}.{key}"),
                "unknown field; expected type, name, op, value, allow_empty",
            ));
        }
    }
    let kind = object.get("type").and_then(Value::as_str).ok_or_else(|| {
        rule_error(
            format!("{path}.type"),
            format!("missing; expected one of: {}", names(METRICS)),
        )
    })?;
    let metric = METRICS
        .iter()
        .find(|(n, _)| *n == kind)
        .map(|(_, m)| *m)
        .ok_or_else(|| {
            rule_error(
                format!("{path}.type"),
                format!("unknown type `{kind}`; expected one of: {}", names(METRICS)),
            )
        })?;
    let op = match object.get("op") {
        None | Some(Value::Null) => Op::Lte,
        Some(Value::String(op)) => OPS
            .iter()
            .find(|(n, _)| n == op)
            .map(|(_, o)| *o)
            .ok_or_else(|| {
                rule_error(
                    format!("{path}.op"),
                    format!("unknown op `{op}`; expected one of: {}", names(OPS)),
                )
            })?,
        Some(other) => {
            return Err(rule_error(
                format!("{path}.op"),
                format!("expected one of {}, got {other}", names(OPS)),
            ));
        }
    };
    let value = match object.get("value") {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        None | Some(Value::Null) => {
            return Err(rule_error(
                format!("{path}.value"),
                "missing; expected a number",
            ));
        }
        Some(other) => {
            return Err(rule_error(
                format!("{path}.value"),
                format!("expected a number, got {other}"),
            ));
        }
    };
    let name = match object.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name.clone()),
        Some(other) => {
            return Err(rule_error(
                format!("{path}.name"),
                format!("expected a request name, got {other}"),
            ));
        }
    };
    let allow_empty = match object.get("allow_empty") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(allow)) => *allow,
        Some(other) => {
            return Err(rule_error(
                format!("{path}.allow_empty"),
                format!("expected true or false, got {other}"),
            ));
        }
    };
    if metric == Metric::LatencyMean && name.is_none() {
        return Err(rule_error(
            format!("{path}.name"),
            "latency_mean is per name: give the request `name`",
        ));
    }
    Ok(Rule {
        metric,
        name,
        op,
        value,
        allow_empty,
    })
}

/// A rule's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleResult {
    /// The rule, e.g. `latency_p95(browse)`.
    pub rule: String,
    /// True when the actual value satisfies the rule.
    pub passed: bool,
    /// The measured value (`None` when the rule measured no requests).
    pub actual: Option<f64>,
    /// `lt`, `lte`, `gt` or `gte`.
    pub op: &'static str,
    /// The limit.
    pub value: f64,
    /// One line saying why, e.g. `latency_p95(browse)=1234.5 not lte 1000`.
    pub reason: String,
}

/// A verdict as the result document keeps it (`run.sla`).
impl From<&RuleResult> for SlaGateResult {
    fn from(r: &RuleResult) -> Self {
        Self {
            rule: r.rule.clone(),
            passed: r.passed,
            actual: r.actual,
            op: r.op.to_string(),
            value: r.value,
            reason: r.reason.clone(),
        }
    }
}

/// The reason a gate on no requests fails.
pub const NO_REQUESTS: &str = "no requests recorded";

/// How many requests a rule is evaluated on: all of them, or those of its name.
pub fn requests_measured(rule: &Rule, summary: &Summary) -> u64 {
    match &rule.name {
        None => summary.totals.requests,
        Some(name) => summary.per_name.get(name).map_or(0, |stats| stats.count),
    }
}

/// The empty-gate check, for every caller that evaluates rules (`LD_assert_sla`,
/// `LD_evaluate_sla`, `bench --sla`, and gates on merged or compared summaries): the
/// failure reason when `rule` measured no requests and does not `allow_empty`,
/// e.g. `latency_p95: no requests recorded`.
pub fn check_not_empty(rule: &Rule, summary: &Summary) -> Result<(), String> {
    if rule.allow_empty || requests_measured(rule, summary) > 0 {
        return Ok(());
    }
    Err(match &rule.name {
        None => format!("{rule}: {NO_REQUESTS}"),
        Some(_) => format!("{rule}: {NO_REQUESTS} with that name"),
    })
}

fn actual(rule: &Rule, summary: &Summary) -> Option<f64> {
    match &rule.name {
        None => {
            let latency = &summary.latency_overall;
            let totals = &summary.totals;
            Some(match rule.metric {
                Metric::LatencyP50 => latency.p50_ms,
                Metric::LatencyP90 => latency.p90_ms,
                Metric::LatencyP95 => latency.p95_ms,
                Metric::LatencyP99 => latency.p99_ms,
                Metric::LatencyMean => return None,
                Metric::FailureRate => totals.failure_rate,
                Metric::Requests => totals.requests as f64,
            })
        }
        Some(name) => {
            let Some(stats) = summary.per_name.get(name) else {
                return (rule.metric == Metric::Requests).then_some(0.0);
            };
            Some(match rule.metric {
                Metric::LatencyP50 => stats.p50_ms,
                Metric::LatencyP90 => stats.p90_ms,
                Metric::LatencyP95 => stats.p95_ms,
                Metric::LatencyP99 => stats.p99_ms,
                Metric::LatencyMean => stats.mean_ms,
                Metric::FailureRate if stats.count == 0 => 0.0,
                Metric::FailureRate => stats.failures as f64 / stats.count as f64,
                Metric::Requests => stats.count as f64,
            })
        }
    }
}

/// Evaluates one rule against a summary. A rule that measured no requests fails
/// with [`NO_REQUESTS`] ([`check_not_empty`]); with `allow_empty` a `requests` rule
/// is evaluated on 0 and any other rule passes.
pub fn evaluate_rule(rule: &Rule, summary: &Summary) -> RuleResult {
    let label = rule.to_string();
    let empty = requests_measured(rule, summary) == 0;
    let actual = if empty && rule.metric != Metric::Requests {
        None
    } else {
        actual(rule, summary)
    };
    let (passed, reason) = match (check_not_empty(rule, summary), actual) {
        (Err(reason), _) => (false, reason),
        (Ok(()), Some(value)) if rule.op.holds(value, rule.value) => (
            true,
            format!(
                "{label}={} {} {}",
                round(value),
                rule.op.label(),
                rule.value
            ),
        ),
        (Ok(()), Some(value)) => (
            false,
            format!(
                "{label}={} not {} {}",
                round(value),
                rule.op.label(),
                rule.value
            ),
        ),
        (Ok(()), None) => (true, format!("{label}: {NO_REQUESTS} (allow_empty)")),
    };
    RuleResult {
        rule: label,
        passed,
        actual,
        op: rule.op.label(),
        value: rule.value,
        reason,
    }
}

/// Evaluates every rule against a summary (see [`evaluate_rule`]).
pub fn evaluate(rules: &[Rule], summary: &Summary) -> Vec<RuleResult> {
    rules
        .iter()
        .map(|rule| evaluate_rule(rule, summary))
        .collect()
}

/// Rounds for display: 0.1 ms resolution is plenty, and rates keep 4 decimals.
fn round(value: f64) -> f64 {
    if value.abs() >= 1.0 {
        (value * 10.0).round() / 10.0
    } else {
        (value * 10_000.0).round() / 10_000.0
    }
}

/// Parses a command-line gate such as `p95<800`, `failure_rate<0.01` or
/// `requests>=1000` into a rule (`p50`…`p99` and `mean` are short for
/// `latency_*`; `mean` applies to `name`).
pub fn parse_flag(text: &str, name: &str) -> Result<Rule, String> {
    let ops = [
        ("<=", Op::Lte),
        (">=", Op::Gte),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let (at, symbol, op) = ops
        .iter()
        .filter_map(|(s, op)| text.find(s).map(|at| (at, *s, *op)))
        .min_by_key(|(at, s, _)| (*at, std::cmp::Reverse(s.len())))
        .ok_or_else(|| format!("`{text}`: expected METRIC<VALUE, e.g. p95<800"))?;
    let metric_text = text[..at].trim();
    let value: f64 = text[at + symbol.len()..]
        .trim()
        .parse()
        .map_err(|_| format!("`{text}`: the limit is not a number"))?;
    let full = match metric_text {
        "p50" | "p90" | "p95" | "p99" | "mean" => format!("latency_{metric_text}"),
        other => other.to_string(),
    };
    let metric = METRICS
        .iter()
        .find(|(n, _)| *n == full)
        .map(|(_, m)| *m)
        .ok_or_else(|| {
            format!(
                "`{text}`: unknown metric `{metric_text}`; expected p50, p90, p95, p99, mean, failure_rate or requests"
            )
        })?;
    Ok(Rule {
        metric,
        name: (metric == Metric::LatencyMean).then(|| name.to_string()),
        op,
        value,
        allow_empty: false,
    })
}

impl Rule {
    /// The rule in LoadDensity's JSON form.
    pub fn to_json(&self) -> Value {
        let mut rule = serde_json::json!({
            "type": self.metric.label(),
            "op": self.op.label(),
            "value": self.value,
        });
        if let Some(name) = &self.name {
            rule["name"] = name.clone().into();
        }
        if self.allow_empty {
            rule["allow_empty"] = true.into();
        }
        rule
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{LatencyOverall, NameStats, Totals};
    use serde_json::json;
    use std::collections::BTreeMap;

    fn summary() -> Summary {
        let mut per_name = BTreeMap::new();
        per_name.insert(
            "browse".to_string(),
            NameStats {
                count: 100,
                failures: 5,
                rps: 10.0,
                min_ms: 1.0,
                max_ms: 2000.0,
                mean_ms: 300.0,
                p50_ms: 200.0,
                p90_ms: 900.0,
                p95_ms: 1234.5,
                p99_ms: 1900.0,
                response_bytes: 0,
                retries: 0,
            },
        );
        Summary {
            totals: Totals {
                requests: 200,
                successes: 195,
                failures: 5,
                failure_rate: 0.025,
                duration_s: 10.0,
                rps: 20.0,
                dropped_iterations: 0,
            },
            latency_overall: LatencyOverall {
                count: 200,
                p50_ms: 100.0,
                p90_ms: 500.0,
                p95_ms: 800.0,
                p99_ms: 1500.0,
                max_ms: 2000.0,
            },
            per_name,
            errors: vec![],
            timeline: vec![],
            sinks: BTreeMap::new(),
            run: Default::default(),
            samples: vec![],
            histograms: Default::default(),
        }
    }

    #[test]
    fn every_type_and_op_passes_and_fails() {
        let s = summary();
        // (rule, expected pass)
        let cases = [
            (json!({"type": "latency_p50", "value": 100}), true),
            (
                json!({"type": "latency_p50", "op": "lt", "value": 100}),
                false,
            ),
            (
                json!({"type": "latency_p90", "op": "gt", "value": 499}),
                true,
            ),
            (
                json!({"type": "latency_p90", "op": "gt", "value": 500}),
                false,
            ),
            (
                json!({"type": "latency_p95", "name": "browse", "value": 1000}),
                false,
            ),
            (
                json!({"type": "latency_p95", "name": "browse", "op": "gte", "value": 1234.5}),
                true,
            ),
            (
                json!({"type": "latency_p99", "op": "lte", "value": 1500}),
                true,
            ),
            (
                json!({"type": "latency_p99", "op": "lte", "value": 1499}),
                false,
            ),
            (
                json!({"type": "latency_mean", "name": "browse", "op": "lt", "value": 301}),
                true,
            ),
            (
                json!({"type": "latency_mean", "name": "browse", "op": "lt", "value": 300}),
                false,
            ),
            (
                json!({"type": "failure_rate", "op": "lt", "value": 0.03}),
                true,
            ),
            (
                json!({"type": "failure_rate", "name": "browse", "op": "lt", "value": 0.05}),
                false,
            ),
            (json!({"type": "requests", "op": "gte", "value": 200}), true),
            (
                json!({"type": "requests", "op": "gte", "value": 201}),
                false,
            ),
            (
                json!({"type": "requests", "name": "nope", "op": "gte", "value": 1}),
                false,
            ),
            (
                json!({"type": "latency_p50", "name": "nope", "value": 1}),
                false,
            ),
        ];
        for (rule, expected) in cases {
            let rules = parse_rules(&json!([rule.clone()])).expect("valid rule");
            let result = &evaluate(&rules, &s)[0];
            assert_eq!(result.passed, expected, "{rule}: {}", result.reason);
        }
        let rules = parse_rules(&json!([{"type": "latency_p95", "name": "browse", "value": 1000}]))
            .expect("valid");
        assert_eq!(
            evaluate(&rules, &s)[0].reason,
            "latency_p95(browse)=1234.5 not lte 1000"
        );
    }

    #[test]
    fn bad_rules_name_the_field() {
        for (rules, path, needle) in [
            (
                json!([{"type": "latency_p42", "value": 1}]),
                "rules[0].type",
                "unknown type",
            ),
            (
                json!([{"type": "requests", "op": "eq", "value": 1}]),
                "rules[0].op",
                "unknown op",
            ),
            (json!([{"type": "requests"}]), "rules[0].value", "missing"),
            (
                json!([{"type": "requests", "value": "1"}]),
                "rules[0].value",
                "expected a number",
            ),
            (
                json!([{"type": "latency_mean", "value": 1}]),
                "rules[0].name",
                "per name",
            ),
            (
                json!([{"type": "requests", "value": 1, "limit": 2}]),
                "rules[0].limit",
                "unknown field",
            ),
            (json!([]), "rules", "at least one"),
        ] {
            let e = parse_rules(&rules).expect_err("invalid");
            assert_eq!(e.path, path, "{rules}");
            assert!(e.message.contains(needle), "{rules}: {}", e.message);
        }
    }

    fn empty_summary() -> Summary {
        let mut s = summary();
        s.per_name.clear();
        s.totals = Totals {
            requests: 0,
            successes: 0,
            failures: 0,
            failure_rate: 0.0,
            duration_s: 10.0,
            rps: 0.0,
            dropped_iterations: 0,
        };
        s.latency_overall = LatencyOverall {
            count: 0,
            p50_ms: 0.0,
            p90_ms: 0.0,
            p95_ms: 0.0,
            p99_ms: 0.0,
            max_ms: 0.0,
        };
        s
    }

    #[test]
    fn gates_on_no_requests_fail_unless_allow_empty() {
        let empty = empty_summary();
        for rule in [
            json!({"type": "latency_p95", "op": "lt", "value": 100}),
            json!({"type": "failure_rate", "op": "lte", "value": 0.01}),
            json!({"type": "requests", "op": "gte", "value": 0}),
            json!({"type": "latency_p50", "name": "browse", "value": 100}),
            json!({"type": "latency_mean", "name": "browse", "value": 100}),
        ] {
            let rules = parse_rules(&json!([rule.clone()])).expect("valid rule");
            let result = &evaluate(&rules, &empty)[0];
            assert!(!result.passed, "{rule}: {}", result.reason);
            assert!(result.reason.contains(NO_REQUESTS), "{}", result.reason);
            assert_eq!(
                check_not_empty(&rules[0], &empty),
                Err(result.reason.clone())
            );

            let mut allowed = rule.clone();
            allowed["allow_empty"] = json!(true);
            let rules = parse_rules(&json!([allowed])).expect("valid rule");
            assert!(rules[0].allow_empty);
            assert_eq!(Rule::to_json(&rules[0])["allow_empty"], json!(true));
            let result = &evaluate(&rules, &empty)[0];
            assert!(result.passed, "{rule} with allow_empty: {}", result.reason);
            assert_eq!(check_not_empty(&rules[0], &empty), Ok(()));
        }
        // allow_empty does not turn a count gate green.
        let rules = parse_rules(
            &json!([{"type": "requests", "op": "gte", "value": 1, "allow_empty": true}]),
        )
        .expect("valid");
        let result = &evaluate(&rules, &empty)[0];
        assert!(!result.passed);
        assert_eq!(result.reason, "requests=0 not gte 1");
        // With requests, the overall gate is evaluated as before.
        let rules = parse_rules(&json!([{"type": "latency_p95", "op": "lt", "value": 100}]))
            .expect("valid");
        assert_eq!(check_not_empty(&rules[0], &summary()), Ok(()));
        let e = parse_rules(&json!([{"type": "requests", "value": 1, "allow_empty": "yes"}]))
            .expect_err("invalid");
        assert_eq!(e.path, "rules[0].allow_empty");
    }

    #[test]
    fn command_line_gates() {
        let rule = parse_flag("p95<800", "u").expect("ok");
        assert_eq!(
            (rule.metric, rule.op, rule.value),
            (Metric::LatencyP95, Op::Lt, 800.0)
        );
        let rule = parse_flag("requests>=10", "u").expect("ok");
        assert_eq!((rule.metric, rule.op), (Metric::Requests, Op::Gte));
        let rule = parse_flag("mean <= 5", "http://x/").expect("ok");
        assert_eq!(rule.name.as_deref(), Some("http://x/"));
        assert!(parse_flag("p97<1", "u").is_err());
        assert!(parse_flag("p95=1", "u").is_err());
        assert!(parse_flag("p95<abc", "u").is_err());
    }
}
