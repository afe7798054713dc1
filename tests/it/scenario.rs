//! The scenario language end to end against the built-in target: assertions,
//! extractors, modes, conditions, placeholders, CSV sources, auth, cookies, files,
//! a login flow with a token per user, and the errors of bad scenarios.

use crate::common;

use common::summary::errors_of;
use common::{Target, Workdir, run, run_ok_with_summary, stderr, stdout};
use serde_json::{Value, json};

fn script(actions: Value) -> String {
    json!({ "load_density": actions }).to_string()
}

/// A short closed-model test of `tasks` (1 user unless `users` says otherwise).
fn start_test(users: u32, seconds: f64, tasks: Value) -> Value {
    json!(["LD_start_test", {
        "user_count": users, "spawn_rate": 100, "test_time": seconds,
        "wait_time": {"constant": 0.005}, "tasks": tasks
    }])
}

fn count(summary: &Value, name: &str) -> u64 {
    summary["per_name"][name]["count"].as_u64().unwrap_or(0)
}

fn failures(summary: &Value, name: &str) -> u64 {
    summary["per_name"][name]["failures"].as_u64().unwrap_or(0)
}

/// Runs `command` (the binary, with its environment) on `file`; returns the summary.
fn run_command(
    mut command: std::process::Command,
    file: &std::path::Path,
    work: &Workdir,
) -> Value {
    let summary = work.path("summary.json");
    let output = command
        .arg("run")
        .arg(file)
        .arg("--summary-json")
        .arg(&summary)
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", stderr(&output));
    common::read_json(&summary)
}

fn assert_no_failures(summary: &Value, name: &str) {
    assert_eq!(
        failures(summary, name),
        0,
        "{name}: {:?}",
        errors_of(summary, name)
    );
}

#[test]
fn each_assertion_type_passes_and_fails_with_what_was_seen() {
    let target = Target::start();
    let work = Workdir::new();
    let cases = [
        (
            "status pass",
            "/status/404",
            json!({"type": "status_code", "value": 404}),
            true,
        ),
        (
            "status fail",
            "/json",
            json!({"type": "status_code", "value": 201}),
            false,
        ),
        (
            "contains pass",
            "/json",
            json!({"type": "contains", "value": "alpha"}),
            true,
        ),
        (
            "contains fail",
            "/json",
            json!({"type": "contains", "value": "omega"}),
            false,
        ),
        (
            "not_contains pass",
            "/json",
            json!({"type": "not_contains", "value": "omega"}),
            true,
        ),
        (
            "not_contains fail",
            "/json",
            json!({"type": "not_contains", "value": "alpha"}),
            false,
        ),
        (
            "json_path pass",
            "/json",
            json!({"type": "json_path", "path": "items.1.name", "value": "beta"}),
            true,
        ),
        (
            "json_path fail",
            "/json",
            json!({"type": "json_path", "path": "items.0.id", "value": 5}),
            false,
        ),
        (
            "header pass",
            "/json",
            json!({"type": "header", "name": "Content-Type", "value": "application/json"}),
            true,
        ),
        (
            "header fail",
            "/json",
            json!({"type": "header", "name": "X-Missing", "value": "x"}),
            false,
        ),
        (
            "regex pass",
            "/json",
            json!({"type": "regex", "pattern": "\"id\":\\s*2"}),
            true,
        ),
        (
            "regex fail",
            "/json",
            json!({"type": "regex", "pattern": "^nope$"}),
            false,
        ),
    ];
    let tasks: Vec<Value> = cases
        .iter()
        .map(|(name, path, assertion, _)| {
            json!({"method": "get", "url": target.url(path), "name": name, "assertions": [assertion]})
        })
        .collect();
    let file = work.write("a.json", &script(json!([start_test(1, 1.0, json!(tasks))])));
    let (_, summary) = run_ok_with_summary(&file, &work);
    for (name, _, _, passes) in &cases {
        let n = count(&summary, name);
        assert!(n > 0, "{name} never ran");
        let expected_failures = if *passes { 0 } else { n };
        assert_eq!(failures(&summary, name), expected_failures, "{name}");
    }
    let seen = |name: &str| errors_of(&summary, name).join(" | ");
    assert_eq!(
        seen("status fail"),
        "assertion status_code: expected 201, got 200"
    );
    assert!(seen("contains fail").contains("body does not contain \"omega\""));
    assert!(seen("not_contains fail").contains("body contains \"alpha\""));
    assert_eq!(
        seen("json_path fail"),
        "assertion json_path `items.0.id`: expected 5, got 1"
    );
    assert!(seen("header fail").contains("`x-missing`: expected \"x\", got no such header"));
    assert!(seen("regex fail").contains("does not match /^nope$/"));
}

#[test]
fn extractors_feed_later_requests_of_the_same_user() {
    let target = Target::start();
    let work = Workdir::new();
    let tasks = json!([
        {"method": "post", "url": target.url("/login"), "name": "login", "extract": [
            {"var": "token", "from": "json_path", "path": "data.token"},
            {"var": "rid", "from": "header", "name": "X-Request-Id"},
            {"var": "code", "from": "status_code"},
            {"var": "n", "from": "regex", "pattern": "\"n\":(\\d+)"}
        ]},
        {"method": "get", "url": target.url("/echo"), "name": "echo",
            "headers": {"X-Token": "${var.token}", "X-Rid": "${var.rid}", "X-Code": "${var.code}"},
            "assertions": [
                {"type": "json_path", "path": "headers.x-token", "value": "tok-${var.n}"},
                {"type": "json_path", "path": "headers.x-rid", "value": "req-${var.n}"},
                {"type": "json_path", "path": "headers.x-code", "value": "200"}
            ]}
    ]);
    let file = work.write("e.json", &script(json!([start_test(2, 1.0, tasks)])));
    let (_, summary) = run_ok_with_summary(&file, &work);
    assert!(count(&summary, "echo") > 10, "{summary}");
    assert_no_failures(&summary, "echo");
}

#[test]
fn each_user_logs_in_with_its_own_token_and_cookie() {
    let target = Target::start();
    let work = Workdir::new();
    // /whoami answers 403 for a token issued on another connection: a variable shared
    // between users (LoadDensity's behaviour) would fail here.
    let tasks = json!([
        {"method": "post", "url": target.url("/login"), "name": "login", "extract": [
            {"var": "token", "path": "data.token"},
            {"var": "n", "path": "data.n"}
        ]},
        {"method": "get", "url": target.url("/delay/5"), "name": "think"},
        {"method": "get", "url": target.url("/whoami"), "name": "whoami",
            "auth": {"type": "bearer", "token": "${var.token}"},
            "assertions": [
                {"type": "status_code", "value": 200},
                {"type": "json_path", "path": "cookie", "value": "session=s${var.n}"}
            ]}
    ]);
    let file = work.write("l.json", &script(json!([start_test(8, 1.5, tasks)])));
    let (_, summary) = run_ok_with_summary(&file, &work);
    let whoami = count(&summary, "whoami");
    assert!(whoami >= 40, "only {whoami} whoami requests");
    assert_no_failures(&summary, "whoami");
    assert_eq!(summary["totals"]["failures"], 0);
}

#[test]
fn weighted_mode_splits_by_weight() {
    let target = Target::start();
    let work = Workdir::new();
    let tasks = json!({"mode": "weighted", "tasks": [
        {"method": "get", "url": target.url("/"), "name": "heavy", "weight": 3},
        {"method": "get", "url": target.url("/"), "name": "light"}
    ]});
    let file = work.write(
        "w.json",
        &script(json!([["LD_start_test", {
            "user_count": 2, "spawn_rate": 100, "test_time": 1.5,
            "wait_time": {"constant": 0}, "tasks": tasks
        }]])),
    );
    let (_, summary) = run_ok_with_summary(&file, &work);
    let (heavy, light) = (count(&summary, "heavy"), count(&summary, "light"));
    let n = heavy + light;
    assert!(n >= 2000, "only {n} requests");
    // Binomial(n, 0.75): the standard deviation of the share is under 0.01 here.
    let share = heavy as f64 / n as f64;
    assert!((0.70..0.80).contains(&share), "heavy share {share} of {n}");
}

#[test]
fn conditions_skip_or_run_tasks() {
    let target = Target::start();
    let work = Workdir::new();
    let url = target.url("/");
    let task = |name: &str, field: &str, condition: Value| json!({"method": "get", "url": url, "name": name, field: condition});
    for mode in ["sequence", "conditional"] {
        let tasks = json!({"mode": mode, "tasks": [
            task("always", "run_if", json!(true)),
            task("never", "run_if", json!(0)),
            task("skipped", "skip_if", json!("${var.feature}")),
            task("equals", "run_if", json!({"equals": ["${var.feature}", "on"]})),
            task("not_equals", "run_if", json!({"not_equals": ["${var.feature}", "on"]})),
            task("in", "run_if", json!({"in": ["${var.role}", ["admin", "root"]]})),
            task("truthy unset", "run_if", json!({"truthy": "${var.unset}"}))
        ]});
        let file = work.write(
            "c.json",
            &script(json!([
                ["LD_register_variable", {"name": "feature", "value": "on"}],
                ["LD_register_variables", {"variables": {"role": "admin"}}],
                start_test(1, 0.5, tasks)
            ])),
        );
        let (_, summary) = run_ok_with_summary(&file, &work);
        for name in ["always", "equals", "in"] {
            assert!(count(&summary, name) > 0, "{mode}: {name} never ran");
        }
        for name in ["never", "skipped", "not_equals", "truthy unset"] {
            assert_eq!(count(&summary, name), 0, "{mode}: {name} ran");
        }
    }
}

#[test]
fn every_placeholder_kind_is_expanded() {
    let target = Target::start();
    let work = Workdir::new();
    let csv = work.write("users.csv", "name,password\nann,a1\nbob,b2\ncy,c3\n");
    let tasks = json!([{
        "method": "post", "url": target.url("/echo?who=${var.who}"), "name": "echo",
        "headers": {
            "X-Var": "${var.who}", "X-Env": "${env.LD_TEST_SECRET_PATH}",
            "X-Csv": "${csv.users.name}:${csv.users.password}", "X-Uuid": "${uuid()}",
            "X-Now": "${now()}", "X-Rand": "${randint(5, 9)}", "X-Faker": "${faker.email}",
            "X-Name": "${faker.name}", "X-Unknown": "${nope.x}"
        },
        "json": {"nested": ["${var.who}", {"deep": "${randint(1, 1)}"}]},
        "assertions": [
            {"type": "json_path", "path": "query", "value": "who=ld"},
            {"type": "json_path", "path": "headers.x-var", "value": "ld"},
            {"type": "json_path", "path": "headers.x-env", "value": "/from/env"},
            {"type": "regex", "pattern": "\"x-csv\":\"(ann:a1|bob:b2|cy:c3)\""},
            {"type": "regex", "pattern": "\"x-uuid\":\"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-"},
            {"type": "regex", "pattern": "\"x-now\":\"\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\""},
            {"type": "regex", "pattern": "\"x-rand\":\"[5-9]\""},
            {"type": "regex", "pattern": "\"x-faker\":\"[^\"@]+@[^\"]+\""},
            {"type": "regex", "pattern": "\"x-name\":\"[A-Za-z]"},
            {"type": "json_path", "path": "headers.x-unknown", "value": "${nope.x}"},
            {"type": "contains", "value": "\\\"nested\\\":[\\\"ld\\\",{\\\"deep\\\":\\\"1\\\"}]"}
        ]
    }]);
    let file = work.write(
        "p.json",
        &script(json!([
            ["LD_register_csv_source", {"name": "users", "file_path": csv.to_str().expect("utf8")}],
            ["LD_start_test", {
                "user_count": 1, "spawn_rate": 100, "test_time": 0.5,
                "wait_time": {"constant": 0.005}, "tasks": tasks,
                "variables": {"who": "ld"}
            }]
        ])),
    );
    let mut command = common::bin();
    command.env("LD_TEST_SECRET_PATH", "/from/env");
    let summary = run_command(command, &file, &work);
    assert!(count(&summary, "echo") > 5, "{summary}");
    assert_no_failures(&summary, "echo");
}

#[test]
fn csv_rows_cycle_or_run_out() {
    let target = Target::start();
    let work = Workdir::new();
    let csv = work.write("users.csv", "name\nann\nbob\ncy\n");
    let echo = json!([{"method": "get", "url": target.url("/echo"), "name": "${csv.users.name}"}]);
    // cycle: false: each row once, then the users stop and the test ends early.
    let file = work.write(
        "once.json",
        &script(json!([["LD_start_test", {
            "user_count": 2, "spawn_rate": 100, "test_time": 20,
            "wait_time": {"constant": 0.01}, "tasks": echo,
            "csv_sources": [{"name": "users", "file_path": csv.to_str().expect("utf8"), "cycle": false}]
        }]])),
    );
    let started = std::time::Instant::now();
    let (_, summary) = run_ok_with_summary(&file, &work);
    assert!(
        started.elapsed().as_secs() < 10,
        "the test did not end with its data"
    );
    assert_eq!(summary["totals"]["requests"], 3, "{summary}");
    for name in ["ann", "bob", "cy"] {
        assert_eq!(count(&summary, name), 1, "{name}");
    }
    // cycle: true (the default): rows come round again, in order across users.
    let file = work.write(
        "cycle.json",
        &script(json!([
            ["LD_register_csv_sources", {"sources": [{"name": "users", "file_path": csv.to_str().expect("utf8")}]}],
            start_test(2, 0.5, echo)
        ])),
    );
    let (_, summary) = run_ok_with_summary(&file, &work);
    let counts: Vec<u64> = ["ann", "bob", "cy"]
        .iter()
        .map(|n| count(&summary, n))
        .collect();
    assert!(counts.iter().all(|&c| c >= 5), "{counts:?}");
    let spread = counts.iter().max().unwrap_or(&0) - counts.iter().min().unwrap_or(&0);
    assert!(spread <= 2, "rows not handed out in turn: {counts:?}");
}

#[test]
fn auth_cookies_and_file_uploads_reach_the_server() {
    let target = Target::start();
    let work = Workdir::new();
    let upload = work.write("hello.txt", "file body 123");
    let tasks = json!([
        {"method": "get", "url": target.url("/echo"), "name": "basic",
            "auth": {"type": "basic", "username": "u", "password": "p"},
            "cookies": {"a": "1", "b": "two"},
            "assertions": [
                {"type": "json_path", "path": "headers.authorization", "value": "Basic dTpw"},
                {"type": "json_path", "path": "headers.cookie", "value": "a=1; b=two"}
            ]},
        {"method": "post", "url": target.url("/echo"), "name": "upload",
            "files": {"doc": upload.to_str().expect("utf8")}, "data": {"title": "T"},
            "assertions": [
                {"type": "regex", "pattern": "multipart/form-data; boundary="},
                {"type": "contains", "value": "filename=\\\"hello.txt\\\""},
                {"type": "contains", "value": "file body 123"},
                {"type": "contains", "value": "name=\\\"title\\\"\\r\\n\\r\\nT"}
            ]}
    ]);
    let file = work.write("f.json", &script(json!([start_test(1, 0.5, tasks)])));
    let (_, summary) = run_ok_with_summary(&file, &work);
    for name in ["basic", "upload"] {
        assert!(count(&summary, name) > 0, "{name}");
        assert_eq!(
            failures(&summary, name),
            0,
            "{name}: {:?}",
            errors_of(&summary, name)
        );
    }
}

#[test]
fn bad_scenarios_are_clear_errors_and_other_actions_still_run() {
    let work = Workdir::new();
    let csv = work.write("users.csv", "name\nann\n");
    let csv_path = csv.to_str().expect("utf8");
    let get = |extra: Value| {
        let mut task = json!({"method": "get", "url": "http://127.0.0.1:9/"});
        if let (Some(task), Some(extra)) = (task.as_object_mut(), extra.as_object()) {
            task.extend(extra.clone());
        }
        json!(["LD_start_test", {"user_count": 1, "test_time": 1, "tasks": [task]}])
    };
    let cases = [
        (
            get(json!({"assertions": [{"type": "regex", "pattern": "(unclosed"}]})),
            "tasks[0].assertions[0].pattern",
            "not a valid regex",
        ),
        (
            get(json!({"extract": [{"var": "x", "path": "data..token"}]})),
            "tasks[0].extract[0].path",
            "empty segment",
        ),
        (
            json!(["LD_register_csv_source", {"name": "u", "file_path": "/nonexistent/users.csv"}]),
            "file_path",
            "/nonexistent/users.csv",
        ),
        (
            get(json!({"url": "http://127.0.0.1:9/${csv.users.email}"})),
            "tasks[0].url",
            "has no column `email`",
        ),
        (
            json!(["LD_start_test", {"user_count": 1, "test_time": 1, "tasks": {"mode": "weighted", "tasks": [
                {"method": "get", "url": "http://127.0.0.1:9/", "weight": 0}]}}]),
            "tasks.tasks[0].weight",
            "positive integer",
        ),
        (
            get(json!({"run_if": {"matches": ["a", "b"]}})),
            "tasks[0].run_if",
            "unknown predicate `matches`",
        ),
        (
            get(json!({"url": "http://127.0.0.1:9/${randint(9, 1)}"})),
            "tasks[0].url",
            "min <= max",
        ),
    ];
    let mut actions =
        vec![json!(["LD_register_csv_source", {"name": "users", "file_path": csv_path}])];
    actions.extend(cases.iter().map(|(action, _, _)| action.clone()));
    actions.push(json!(["LD_register_variable", {"name": "still", "value": "runs"}]));
    let file = work.write("bad.json", &script(json!(actions)));
    let file_text = file.to_str().expect("utf8");

    let validate = run(&["validate", file_text], None);
    assert!(!validate.status.success());
    let output = run(&["run", file_text], None);
    assert_eq!(output.status.code(), Some(1));
    for text in [stderr(&validate) + &stdout(&validate), stderr(&output)] {
        for (i, (_, field, needle)) in cases.iter().enumerate() {
            let line = text
                .lines()
                .find(|l| l.contains(&format!("action[{}]", i + 1)))
                .unwrap_or_else(|| panic!("no error for action[{}] in:\n{text}", i + 1));
            assert!(line.contains(file_text), "{line}");
            assert!(line.contains(field), "{line}");
            assert!(line.contains(needle), "{line}");
        }
        assert!(
            !text.contains(&format!("action[{}]", cases.len() + 1)),
            "{text}"
        );
    }
}

#[test]
fn the_example_scenario_runs_clean() {
    // examples/scenario.json as shipped, on a free port and for 2 s instead of 10.
    let port = common::closed_port();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/scenario.json"
    ))
    .expect("example")
    .replace("18080", &port.to_string())
    .replace("\"test_time\": 10", "\"test_time\": 2")
    .replace("scenario-summary", "summary-report");
    let work = Workdir::new();
    let file = work.write("scenario.json", &text);
    let mut command = common::bin();
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    let summary = run_command(command, &file, &work);
    // Login once per user (it skips itself once the token is set), then browsing.
    assert_eq!(count(&summary, "login"), 20, "{summary}");
    let (items, cart, profile) = (
        count(&summary, "/items/[id]"),
        count(&summary, "/cart"),
        count(&summary, "profile"),
    );
    assert!(
        items > cart && cart > profile && profile > 0,
        "{items} {cart} {profile}"
    );
    assert_eq!(summary["totals"]["failures"], 0, "{:?}", summary["errors"]);
    let _ = std::fs::remove_file(concat!(env!("CARGO_MANIFEST_DIR"), "/summary-report.json"));
}
