//! Stand-alone entry points to the scenario language: render one template, check one
//! assertion or run one extractor against a response, outside a running test. For
//! tools that check a script's pieces, and for the property tests
//! (`tests/fuzz_scenario.rs`), which must reach the same code a virtual user runs.

use std::collections::HashMap;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde_json::Value;

use super::check::{Assertion, Extractor, ResponseView};
use super::resolver::{CsvTables, RenderContext, SharedVariables};
use super::template::{Template, TemplateValue};

/// Parses `text` as a task's string would be (its `${csv...}` placeholders resolved
/// against `tables`) and renders it with `variables`, reading the first row of every
/// CSV source. `Err` is the parse error a script would get.
pub fn render_template(
    text: &str,
    variables: &HashMap<String, String>,
    tables: &CsvTables,
) -> Result<String, String> {
    let template = Template::parse(text, tables).map_err(|e| e.to_string())?;
    let shared = SharedVariables::new();
    let rows = vec![0; tables.len()];
    let mut rng = SmallRng::seed_from_u64(0);
    let mut ctx = RenderContext::new(variables, &shared, &mut rng).with_csv(tables, &rows);
    Ok(template.render(&mut ctx))
}

/// Parses a JSON value whose strings may hold placeholders (a `json` body, an
/// assertion's expected value) and renders it with `variables`.
pub fn render_value(value: &Value, variables: &HashMap<String, String>) -> Result<Value, String> {
    let tables = CsvTables::default();
    let template = TemplateValue::parse(value, &tables).map_err(|e| e.to_string())?;
    let shared = SharedVariables::new();
    let mut rng = SmallRng::seed_from_u64(0);
    let mut ctx = RenderContext::new(variables, &shared, &mut rng);
    Ok(template.render(&mut ctx))
}

/// Parses one entry of a task's `assertions` (no CSV sources). `Err` is
/// `(field, message)`.
pub fn parse_assertion(value: &Value) -> Result<Assertion, (String, String)> {
    Assertion::parse(value, &CsvTables::default()).map_err(|(field, e)| (field, e.to_string()))
}

/// Parses one entry of a task's `extract`. `Err` is `(field, message)`.
pub fn parse_extractor(value: &Value) -> Result<Extractor, (String, String)> {
    Extractor::parse(value)
}

/// Checks an assertion against a response, its placeholders rendered with
/// `variables`; `Err` says what failed and what was seen.
pub fn check_assertion(
    assertion: &Assertion,
    response: &ResponseView<'_>,
    variables: &HashMap<String, String>,
) -> Result<(), String> {
    let shared = SharedVariables::new();
    let mut rng = SmallRng::seed_from_u64(0);
    let mut ctx = RenderContext::new(variables, &shared, &mut rng);
    assertion.check(response, &mut ctx)
}
