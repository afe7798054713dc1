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

/// The request types of the recorded errors.
pub fn error_request_types(summary: &Value) -> Vec<&str> {
    summary["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["request_type"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `actions` (each refused) and checks that the error line of action `i` names
/// `expected[i]`'s field and contains its text; the run exits 1. Returns stderr.
pub fn assert_action_errors(
    work: &Workdir,
    actions: Vec<Value>,
    expected: &[(&str, &str)],
) -> String {
    let file = work.write("bad.json", &script(Value::Array(actions)));
    let output = super::run(&["run", file.to_str().expect("utf8")], None);
    assert_eq!(output.status.code(), Some(1));
    let text = super::stderr(&output);
    for (i, (field, needle)) in expected.iter().enumerate() {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("action[{i}]")))
            .unwrap_or_else(|| panic!("no error for action[{i}] in:\n{text}"));
        assert!(line.contains(field), "{line}");
        assert!(line.contains(needle), "{line}");
    }
    text
}
