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

/// An `LD_start_test` action: `users` users of type `user` running `tasks` for
/// `seconds`, 10 ms apart.
pub fn start_user_test(user: &str, users: u32, seconds: f64, tasks: Value) -> Value {
    json!(["LD_start_test", {
        "user_detail_dict": {"user": user},
        "user_count": users, "spawn_rate": 100, "test_time": seconds,
        "wait_time": {"constant": 0.01}, "tasks": tasks
    }])
}

/// Checks that no request recorded under any of `names` failed (their errors shown
/// when one did).
pub fn assert_no_failures(summary: &Value, names: &[&str]) {
    for name in names {
        assert_eq!(
            failures(summary, name),
            0,
            "{name}: {:?}",
            errors_of(summary, name)
        );
    }
}

/// Checks that requests were recorded under `name`, that every one failed, and that
/// the first error contains `needle`.
pub fn assert_all_failed(summary: &Value, name: &str, needle: &str) {
    let requests = count(summary, name);
    assert!(requests >= 1, "{name}: {summary}");
    assert_eq!(failures(summary, name), requests, "{name}");
    let errors = errors_of(summary, name);
    assert!(errors[0].contains(needle), "{name}: {errors:?}");
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
