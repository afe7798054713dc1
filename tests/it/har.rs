//! HAR import end to end: a recording with JSON, form and plain-text bodies, an
//! asset to exclude, a cached and a failed entry converts with `import-har`, then
//! runs with no failure against the built-in target started by the test.

use crate::common;

use common::{Target, Workdir, error, executor, ok, run, run_ok_with_summary, stderr};
use serde_json::{Value, json};

fn entry(method: &str, url: &str, status: u16, started: &str) -> Value {
    json!({
        "startedDateTime": started,
        "time": 20.5,
        "request": {
            "method": method, "url": url, "httpVersion": "HTTP/1.1",
            "headers": [
                {"name": "Host", "value": "recorded.example"},
                {"name": "Connection", "value": "keep-alive"},
                {"name": "Accept", "value": "*/*"},
                {"name": "X-Recorded", "value": "yes"}
            ],
            "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0
        },
        "response": {"status": status, "statusText": "", "httpVersion": "HTTP/1.1",
                     "headers": [], "cookies": [], "content": {"size": 0, "mimeType": "text/plain"},
                     "redirectURL": "", "headersSize": -1, "bodySize": 0},
        "cache": {}, "timings": {"send": 0, "wait": 20, "receive": 0.5}
    })
}

/// A HAR 1.2 recording of a session against `target`.
fn recording(target: &Target) -> Value {
    let mut json_post = entry(
        "POST",
        &target.url("/echo"),
        200,
        "2024-03-01T10:00:00.000Z",
    );
    json_post["request"]["postData"] =
        json!({"mimeType": "application/json", "text": "{\"item\": 7, \"note\": \"first\"}"});
    json_post["request"]["headers"]
        .as_array_mut()
        .expect("headers")
        .push(json!({"name": "Authorization", "value": "Bearer recorded-secret"}));
    let mut form_post = entry(
        "POST",
        &target.url("/echo"),
        200,
        "2024-03-01T11:00:00.250+01:00",
    );
    form_post["request"]["postData"] = json!({
        "mimeType": "application/x-www-form-urlencoded",
        "params": [{"name": "user", "value": "alice"}, {"name": "remember", "value": "1"}],
        "text": "user=alice&remember=1"
    });
    let mut plain_put = entry("PUT", &target.url("/echo"), 200, "2024-03-01T10:00:00.500Z");
    plain_put["request"]["postData"] =
        json!({"mimeType": "text/plain", "text": "hello from a HAR"});
    let mut cached = entry("GET", &target.url("/json"), 200, "2024-03-01T10:00:00.600Z");
    cached["_fromCache"] = json!("disk");
    json!({"log": {
        "version": "1.2",
        "creator": {"name": "WebInspector", "version": "537.36"},
        "pages": [],
        "entries": [
            json_post,
            form_post,
            entry("GET", &target.url("/static/logo.png"), 200, "2024-03-01T10:00:00.300Z"),
            plain_put,
            cached,
            entry("GET", &target.url("/blocked"), 0, "2024-03-01T10:00:00.700Z"),
            entry("GET", &target.url("/json?page=2"), 200, "2024-03-01T10:00:00.800Z"),
            entry("GET", &target.url("/status/204"), 204, "2024-03-01T10:00:00.900Z")
        ]
    }})
}

#[test]
fn import_har_converts_and_runs_with_no_failures() {
    let target = Target::start();
    let work = Workdir::new();
    let har = work.write("session.har", &format!("\u{feff}{}", recording(&target)));
    let script = work.path("test.json");
    let output = run(
        &[
            "import-har",
            har.to_str().expect("utf8"),
            "-o",
            script.to_str().expect("utf8"),
            "--exclude",
            r"\.png$",
            "--users",
            "2",
            "--spawn-rate",
            "20",
            "--test-time",
            "2",
            "--keep-think-time",
        ],
        None,
    );
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(err.contains("header `Authorization` copied"), "{err}");
    assert!(!err.contains("recorded-secret"), "the secret leaked: {err}");
    assert!(
        err.contains("skipped entry 4: served from the browser cache"),
        "{err}"
    );
    assert!(err.contains("skipped entry 5"), "{err}");
    assert!(err.contains("5 tasks"), "{err}");

    let document = work.read_json("test.json");
    let start = &document["load_density"][0][1];
    assert_eq!(start["user_count"], 2);
    assert_eq!(start["tasks"]["mode"], "sequence");
    let tasks = start["tasks"]["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 5);
    assert_eq!(tasks[0]["json"], json!({"item": 7, "note": "first"}));
    assert_eq!(tasks[0]["name"], "POST /echo");
    assert_eq!(tasks[1]["data"], json!({"user": "alice", "remember": "1"}));
    // 10:00:00.250 UTC minus the end of the first entry (0 + 20.5 ms).
    assert_eq!(tasks[1]["wait"], json!(0.23));
    assert_eq!(tasks[2]["data"], "hello from a HAR");
    assert_eq!(tasks[3]["name"], "GET /json?page=2");
    assert_eq!(
        tasks[4]["assertions"],
        json!([{"type": "status_code", "value": 204}])
    );
    for task in tasks {
        let headers = task["headers"].as_object().expect("headers");
        assert!(!headers.contains_key("Host") && !headers.contains_key("Connection"));
        assert_eq!(headers["X-Recorded"], "yes");
    }

    let validate = run(&["validate", script.to_str().expect("utf8")], None);
    assert!(validate.status.success(), "{}", stderr(&validate));
    let (_, summary) = run_ok_with_summary(&script, &work);
    let totals = &summary["totals"];
    assert!(
        totals["requests"].as_u64().expect("count") >= 5,
        "{summary}"
    );
    assert_eq!(totals["failures"], 0, "{summary}");
    let names = summary["per_name"].as_object().expect("per_name");
    for name in [
        "POST /echo",
        "PUT /echo",
        "GET /json?page=2",
        "GET /status/204",
    ] {
        assert!(names.contains_key(name), "{name} missing: {summary}");
    }
    assert!(!names.keys().any(|n| n.contains("logo")), "{summary}");
}

#[test]
fn har_actions_return_their_results() {
    let target = Target::start();
    let work = Workdir::new();
    let har = work.write("rec.har", &recording(&target).to_string());
    let har = har.to_str().expect("utf8");
    let mut executor = executor();
    let records = executor.execute_document(
        &json!([
            ["LD_load_har", {"file_path": har}],
            ["LD_har_to_tasks", {"har": har, "include": ["/echo"]}],
            ["LD_har_to_action_json", {"har": recording(&target), "exclude": ["png"], "test_time": 1,
                                       "user_count": 1, "spawn_rate": 10}],
            ["LD_har_to_tasks", {"har": {"log": {"entries": [{"request": {"method": "GET"}}]}}}],
            ["LD_har_to_tasks", {"har": har, "exclude": ["("]}],
            ["LD_add_package_to_executor", {"package": "os"}]
        ]),
        "har-actions",
    );
    assert_eq!(ok(&records[0])["log"]["version"], "1.2");
    let tasks = ok(&records[1]).as_array().expect("list");
    assert_eq!(tasks.len(), 3);
    assert!(
        tasks
            .iter()
            .all(|t| t["request_url"].as_str().expect("url").ends_with("/echo"))
    );
    let script = ok(&records[2]).clone();
    assert_eq!(script["load_density"][0][1]["test_time"], 1.0);
    let message = error(&records[3]).to_string();
    assert!(
        message.contains("entry 0: field `log.entries[0].request.url`"),
        "{message}"
    );
    let message = error(&records[4]).to_string();
    assert!(message.contains("exclude[0]"), "{message}");
    let message = error(&records[5]).to_string();
    assert!(message.contains("Executor::add_command"), "{message}");

    // The generated script runs as is.
    let before = executor.stats().counts();
    let records = executor.execute_document(&script, "generated");
    ok(&records[0]);
    let (requests, failures) = executor.stats().counts();
    assert!(requests > before.0, "no request sent");
    assert_eq!(failures, before.1, "some requests failed");
}

#[test]
fn task_wait_pauses_before_the_request() {
    let target = Target::start();
    let mut executor = executor();
    let records = executor.execute_document(
        &json!([["LD_start_test", {
            "user_count": 1, "spawn_rate": 10, "test_time": 1, "wait_time": {"constant": 0},
            "tasks": {"mode": "sequence", "tasks": [
                {"method": "get", "request_url": target.url("/")},
                {"method": "get", "request_url": target.url("/json"), "wait": 0.4}
            ]}
        }], ["LD_start_test", {"tasks": [{"method": "get", "request_url": target.url("/"), "wait": -1}]}]]),
        "wait",
    );
    let result = ok(&records[0]);
    // Each iteration pauses 0.4 s: at most 3 in one second (without the pause, hundreds).
    let requests = result["requests"].as_u64().expect("requests");
    assert!((2..=6).contains(&requests), "{result}");
    assert_eq!(result["failures_total"], 0, "{result}");
    let message = error(&records[1]).to_string();
    assert!(message.contains("field `tasks[0].wait`"), "{message}");
}
