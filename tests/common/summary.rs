//! Reading a `--summary-json` document in tests, and running a script of actions
//! through the binary to get one.

use serde_json::{Value, json};

use super::{Workdir, run_ok_with_summary};

/// `{"load_density": actions}` as text.
pub fn script(actions: Value) -> String {
    json!({ "load_density": actions }).to_string()
}

/// Writes `actions` to `file` in `work`, runs it, and returns the summary document.
pub fn run_script(work: &Workdir, file: &str, actions: Value) -> Value {
    let path = work.write(file, &script(actions));
    run_ok_with_summary(&path, work).1
}

/// Requests recorded under `name`.
pub fn count(summary: &Value, name: &str) -> u64 {
    summary["per_name"][name]["count"].as_u64().unwrap_or(0)
}

/// Failed requests recorded under `name`.
pub fn failures(summary: &Value, name: &str) -> u64 {
    summary["per_name"][name]["failures"].as_u64().unwrap_or(0)
}

/// Response bytes recorded under `name`.
pub fn bytes(summary: &Value, name: &str) -> u64 {
    summary["per_name"][name]["response_bytes"]
        .as_u64()
        .unwrap_or(0)
}

/// The error texts recorded under `name`.
pub fn errors_of(summary: &Value, name: &str) -> Vec<String> {
    summary["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter(|e| e["name"] == name)
                .filter_map(|e| e["error"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
