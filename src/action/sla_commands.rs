//! `LD_evaluate_sla` and `LD_assert_sla`: SLA gates against the summary of the
//! recorded requests, or against a `summary` given to them (a summary object, ours or
//! LoadDensity's `build_summary()`, or the path of a summary JSON file).

use serde::Deserialize;
use serde_json::Value;

use super::args::{CheckArgs, typed};
use super::{ActionError, Executor};
use crate::sla::{Rule, RuleResult, evaluate, parse_rules};
use crate::stats::{ResultError, SlaGateResult, Summary};
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlaArgs {
    rules: Value,
    /// The summary to evaluate instead of the live one.
    #[serde(default)]
    summary: Option<Value>,
}

impl SlaArgs {
    fn rules(&self) -> Result<Vec<Rule>, ActionError> {
        parse_rules(&self.rules).map_err(|e| ActionError::argument(e.path, e.message))
    }

    /// The `summary` argument, read; `None` when not given (the live summary).
    fn summary(&self) -> Result<Option<Summary>, ActionError> {
        let field = |e: ResultError| ActionError::argument("summary", e.to_string());
        match &self.summary {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(path)) => Summary::read(Path::new(path)).map(Some).map_err(field),
            Some(object @ Value::Object(_)) => Summary::from_json_text(&object.to_string())
                .map(Some)
                .map_err(field),
            Some(other) => Err(ActionError::argument(
                "summary",
                format!(
                    "expected a summary object or the path of a summary JSON file, got {other}"
                ),
            )),
        }
    }
}

impl CheckArgs for SlaArgs {
    fn check(&self) -> Result<(), ActionError> {
        self.rules()?;
        // A file may be written by an earlier action: only its form is checked here.
        if !matches!(&self.summary, Some(Value::String(_))) {
            self.summary()?;
        }
        Ok(())
    }
}

/// Evaluates the rules, prints one line per rule, and returns the results.
fn evaluate_and_print(
    executor: &mut Executor,
    args: &SlaArgs,
) -> Result<(Vec<RuleResult>, Value), ActionError> {
    let summary = match args.summary()? {
        Some(given) => given,
        None => executor.summary(),
    };
    let results = evaluate(&args.rules()?, &summary);
    executor.record_sla(results.iter().map(SlaGateResult::from));
    let mut text = String::from("SLA gates:\n");
    for result in &results {
        let mark = if result.passed { "PASS" } else { "FAIL" };
        text.push_str(&format!("  {mark}  {}\n", result.reason));
    }
    executor.write_output(&text);
    let value = serde_json::to_value(&results).map_err(|e| ActionError::Failed(e.to_string()))?;
    Ok((results, value))
}

pub(super) fn register_sla_commands(executor: &mut Executor) {
    executor.add_command(
        "LD_evaluate_sla",
        typed(&["rules", "summary"], |ex, args: SlaArgs| {
            evaluate_and_print(ex, &args).map(|(_, value)| value)
        }),
    );
    executor.add_command(
        "LD_assert_sla",
        typed(&["rules", "summary"], |ex, args: SlaArgs| {
            let (results, value) = evaluate_and_print(ex, &args)?;
            let failed: Vec<&str> = results
                .iter()
                .filter(|r| !r.passed)
                .map(|r| r.reason.as_str())
                .collect();
            if failed.is_empty() {
                Ok(value)
            } else {
                Err(ActionError::SlaFailed(failed.join("; ")))
            }
        }),
    );
}
