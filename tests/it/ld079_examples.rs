//! LoadDensity 0.0.79's own examples of the fields it added. The wheel has no
//! example folder; its README (the wheel's `METADATA`) has three JSON examples that
//! use them: "Think Time & Throttle" (a task list), the declarative per-task
//! `retry` of "Reliability", and the mTLS task of "Auth". Each is used verbatim:
//! the first two run against nginx (their `${var.base}` registered with the README's
//! own `LD_register_variables` form, pointing at it); the mTLS one names an outside
//! host and certificate files, so it is linted: the only problem found is the
//! missing certificate file, at its field. The README has no JSON example of
//! database sources or session variables (only their placeholder table).

use crate::common;
use crate::nginx::Nginx;

use common::Workdir;
use common::summary::run_script;
use serde_json::{Value, json};

/// The README's "Think Time & Throttle" example, as written.
const THINK_TIME_AND_THROTTLE: &str = r#"[
  {"method": "get", "request_url": "${var.base}/home",
   "think_time": {"min": 0.5, "max": 1.5}},
  {"method": "get", "request_url": "${var.base}/checkout",
   "throttle": {"key": "checkout", "rps": 25, "burst": 5}}
]"#;

/// The README's declarative retry (`task["retry"] = ...` in "Reliability").
const RETRY: &str = r#"{"transient": 3, "flaky": 1, "base_delay": 0.2}"#;

/// The README's mTLS task ("Auth").
const MTLS_TASK: &str = r#"{"method": "get", "request_url": "https://mtls.api/x",
 "cert": ["/etc/ssl/client.pem", "/etc/ssl/key.pem"]}"#;

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("the README's JSON parses")
}

/// The per-name entries whose name contains `text`: (requests, failures, retries).
fn totals(summary: &Value, text: &str) -> (u64, u64, u64) {
    let mut sum = (0, 0, 0);
    for (name, entry) in summary["per_name"].as_object().into_iter().flatten() {
        if name.contains(text) {
            sum.0 += entry["count"].as_u64().unwrap_or(0);
            sum.1 += entry["failures"].as_u64().unwrap_or(0);
            sum.2 += entry["retries"].as_u64().unwrap_or(0);
        }
    }
    sum
}

#[test]
fn think_time_and_throttle_example_runs_unchanged() {
    let nginx = Nginx::start();
    let work = Workdir::new();
    let base = format!("http://127.0.0.1:{}", nginx.http_port);
    let seconds = 3;
    let users = 4;
    let summary = run_script(
        &work,
        "readme.json",
        json!([
            ["LD_register_variables", {"variables": {"base": base}}],
            ["LD_start_test", {
                "user_detail_dict": {"user": "fast_http_user"},
                "user_count": users, "spawn_rate": 100, "test_time": seconds,
                "wait_time": {"constant": 0},
                "tasks": parse(THINK_TIME_AND_THROTTLE)
            }]
        ]),
    );
    let (home, home_failures, _) = totals(&summary, "/home");
    let (checkout, checkout_failures, _) = totals(&summary, "/checkout");
    assert_eq!(
        (home_failures, checkout_failures),
        (0, 0),
        "{}",
        summary["errors"]
    );
    assert!(
        home >= users && checkout >= users,
        "{}",
        summary["per_name"]
    );
    // At least 0.5 s of thinking after each /home: at most 6 per user in 3 s (and
    // one more begun), where nginx would answer thousands without it.
    assert!(home <= users * (seconds * 2 + 1), "{}", summary["per_name"]);
    assert!(checkout <= home, "{}", summary["per_name"]);
}

#[test]
fn retry_example_runs_unchanged() {
    let nginx = Nginx::start();
    let work = Workdir::new();
    let base = format!("http://127.0.0.1:{}", nginx.http_port);
    let closed = format!("http://127.0.0.1:{}", common::closed_port());
    let task = |url: String, name: &str| json!({"method": "get", "request_url": url, "name": name, "retry": parse(RETRY)});
    let summary = run_script(
        &work,
        "retry.json",
        json!([["LD_start_test", {
            "user_detail_dict": {"user": "fast_http_user"},
            "user_count": 2, "spawn_rate": 100, "test_time": 3,
            "wait_time": {"constant": 0},
            "tasks": [
                task(format!("{base}/busy"), "busy"),
                task(format!("{closed}/"), "refused"),
                task(format!("{base}/"), "fine")
            ]
        }]]),
    );
    // A 503 is flaky: one retry (`flaky: 1`), so two attempts per iteration.
    let (busy, busy_failures, busy_retries) = totals(&summary, "busy");
    assert!(busy >= 2, "{}", summary["per_name"]);
    assert_eq!(busy_failures, busy);
    assert!(
        busy.abs_diff(2 * busy_retries) <= 2,
        "{}",
        summary["per_name"]
    );
    // A refused connection is transient: three retries, so four attempts.
    let (refused, _, refused_retries) = totals(&summary, "refused");
    assert!(refused >= 4, "{}", summary["per_name"]);
    assert!(
        refused.abs_diff(4 * refused_retries / 3) <= 4,
        "{}",
        summary["per_name"]
    );
    let (fine, fine_failures, fine_retries) = totals(&summary, "fine");
    assert!(fine >= 1 && fine_failures == 0 && fine_retries == 0);
}

#[test]
fn mtls_example_parses_and_only_its_missing_files_are_reported() {
    let document = json!({"load_density": [["LD_start_test", {
        "user_detail_dict": {"user": "http_user"},
        "user_count": 1, "spawn_rate": 1, "test_time": 1,
        "tasks": [parse(MTLS_TASK)]
    }]]});
    let findings = common::executor().lint_document(&document, None);
    let errors: Vec<_> = findings
        .iter()
        .filter(|f| f.severity == loaddensity::action::lint::Severity::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{findings:#?}");
    assert_eq!(errors[0].location, "actions[0].tasks[0].cert");
    assert!(
        errors[0].message.contains("/etc/ssl/client.pem"),
        "{findings:#?}"
    );
}
