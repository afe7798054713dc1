use serde_json::{Value, json};

use super::{HarError, HarFilter, TestSettings, har_to_tasks, parse_har, path_only};

fn entry(method: &str, url: &str, status: i64, started: &str) -> Value {
    json!({
        "startedDateTime": started,
        "time": 100.0,
        "request": {"method": method, "url": url, "headers": [
            {"name": "Host", "value": "example.com"},
            {"name": ":authority", "value": "example.com"},
            {"name": "Content-Length", "value": "12"},
            {"name": "Connection", "value": "keep-alive"},
            {"name": "Accept", "value": "application/json"}
        ]},
        "response": {"status": status}
    })
}

fn har(entries: Vec<Value>) -> Value {
    json!({"log": {"version": "1.2", "entries": entries}})
}

#[test]
fn mapping_rules() {
    let mut post_json = entry(
        "POST",
        "https://example.com/api/items",
        201,
        "2024-01-01T00:00:00.000Z",
    );
    post_json["request"]["postData"] =
        json!({"mimeType": "application/json; charset=utf-8", "text": "{\"a\":1}"});
    let mut form = entry(
        "POST",
        "https://example.com/login",
        302,
        "2024-01-01T00:00:01.100Z",
    );
    form["request"]["postData"] = json!({"mimeType": "application/x-www-form-urlencoded",
        "params": [{"name": "user", "value": "u"}, {"name": "", "value": "x"}], "text": "user=u"});
    let mut plain = entry(
        "PUT",
        "https://example.com/note?x=1",
        200,
        "2024-01-01T00:00:03.200Z",
    );
    plain["request"]["postData"] = json!({"mimeType": "text/plain", "text": "hello"});
    plain["request"]["headers"]
        .as_array_mut()
        .expect("list")
        .push(json!({"name": "Authorization", "value": "Bearer secret"}));
    let asset = entry(
        "GET",
        "https://example.com/logo.png",
        200,
        "2024-01-01T00:00:04Z",
    );
    let mut cached = entry(
        "GET",
        "https://example.com/app.js",
        200,
        "2024-01-01T00:00:04Z",
    );
    cached["_fromCache"] = json!("memory");
    let failed = entry(
        "GET",
        "https://example.com/blocked",
        0,
        "2024-01-01T00:00:04Z",
    );
    let document = har(vec![post_json, form, plain, asset, cached, failed]);
    let filter = HarFilter::new(&[], &[r"\.png$".into()], true).expect("filter");
    let conversion = har_to_tasks(&document, &filter).expect("converts");
    assert_eq!(conversion.filtered, 1);
    assert_eq!(conversion.skipped.len(), 2, "{:?}", conversion.skipped);
    assert!(conversion.skipped[0].reason.contains("cache"));
    assert!(conversion.skipped[1].reason.contains("status 0"));
    assert_eq!(conversion.tasks.len(), 3);
    let first = &conversion.tasks[0];
    assert_eq!(first["method"], "post");
    assert_eq!(first["request_url"], "https://example.com/api/items");
    assert_eq!(first["name"], "POST /api/items");
    assert_eq!(first["json"], json!({"a": 1}));
    assert_eq!(first["headers"], json!({"Accept": "application/json"}));
    assert_eq!(
        first["assertions"],
        json!([{"type": "status_code", "value": 201}])
    );
    assert!(first.get("wait").is_none());
    let second = &conversion.tasks[1];
    assert_eq!(second["data"], json!({"user": "u"}));
    assert_eq!(second["allow_redirects"], json!(false));
    // 1.1 s start minus (0 + 100 ms) of the first entry.
    assert_eq!(second["wait"], json!(1.0));
    let third = &conversion.tasks[2];
    assert_eq!(third["data"], json!("hello"));
    assert_eq!(third["name"], "PUT /note?x=1");
    assert_eq!(third["wait"], json!(2.0));
    assert_eq!(conversion.warnings.len(), 1);
    assert!(conversion.warnings[0].contains("entry 2"));
    assert!(conversion.warnings[0].contains("Authorization"));
    assert!(!conversion.warnings[0].contains("secret"));

    let script = conversion
        .action_json(&TestSettings::default())
        .expect("tasks");
    let start = &script["load_density"][0];
    assert_eq!(start[0], "LD_start_test");
    assert_eq!(start[1]["tasks"]["mode"], "sequence");
    assert_eq!(start[1]["user_count"], 10);
    assert_eq!(start[1]["spawn_rate"], 5.0);
    assert_eq!(start[1]["test_time"], 60.0);
    assert_eq!(start[1]["user_detail_dict"]["user"], "fast_http_user");
}

#[test]
fn include_and_think_time_off() {
    let document = har(vec![
        entry(
            "GET",
            "https://api.example.com/a",
            200,
            "2024-01-01T00:00:00Z",
        ),
        entry(
            "GET",
            "https://cdn.example.com/b",
            200,
            "2024-01-01T00:00:05Z",
        ),
        entry(
            "GET",
            "https://api.example.com/c",
            200,
            "2024-01-01T00:00:09Z",
        ),
    ]);
    let filter = HarFilter::new(&[r"api\.example".into()], &[], false).expect("filter");
    let conversion = har_to_tasks(&document, &filter).expect("converts");
    assert_eq!(conversion.tasks.len(), 2);
    assert_eq!(conversion.filtered, 1);
    assert!(conversion.tasks.iter().all(|t| t.get("wait").is_none()));
}

#[test]
fn errors_name_entry_and_field() {
    let cases = [
        (json!({}), None, "log"),
        (json!({"log": {}}), None, "log.entries"),
        (har(vec![json!(1)]), Some(0), "log.entries[0]"),
        (
            har(vec![
                entry("GET", "https://h/", 200, "x"),
                json!({"request": {"url": "https://h/"}}),
            ]),
            Some(0),
            "log.entries[0].startedDateTime",
        ),
        (
            har(vec![json!({"request": {"method": "GET"}})]),
            Some(0),
            "log.entries[0].request.url",
        ),
        (
            har(vec![
                json!({"request": {"method": "GET", "url": "https://h/", "headers": [{"name": 1}]}}),
            ]),
            Some(0),
            "log.entries[0].request.headers[0].name",
        ),
        (
            har(vec![
                entry("GET", "https://h/", 200, "2024-01-01T00:00:00Z"),
                json!({"request": {"method": "POST", "url": "https://h/", "postData": {"text": 5}}}),
            ]),
            Some(1),
            "log.entries[1].request.postData.text",
        ),
        (
            har(vec![
                json!({"request": {"method": "GET", "url": "https://h/"}, "response": {"status": "ok"}}),
            ]),
            Some(0),
            "log.entries[0].response.status",
        ),
    ];
    for (document, entry, path) in cases {
        match har_to_tasks(&document, &HarFilter::default()) {
            Err(HarError::Field {
                entry: e, field, ..
            }) => {
                assert_eq!(e, entry, "{document}");
                assert_eq!(field, path, "{document}");
            }
            other => panic!("{document}: expected a field error, got {other:?}"),
        }
    }
    let error = HarFilter::new(&["(".into()], &[], false).expect_err("bad regex");
    assert!(error.to_string().starts_with("include[0]: `(`"), "{error}");
    let error = parse_har("\u{feff}{\"log\": [}", "rec.har").expect_err("bad json");
    assert!(error.to_string().starts_with("rec.har: line 1"), "{error}");
    assert!(parse_har("\u{feff}{\"log\": {\"entries\": []}}", "rec.har").is_ok());
}

#[test]
fn paths() {
    assert_eq!(path_only("https://h/a/b?q=1"), "/a/b?q=1");
    assert_eq!(path_only("https://h"), "/");
    assert_eq!(path_only("https://h?x"), "/");
    assert_eq!(path_only("nourl"), "nourl");
}
