//! Property tests of the HAR importer (`src/har`) over outside input: recordings
//! whose fields have arbitrary values and arbitrary types, and arbitrary text as a
//! file. Each property: no panic, and either an error naming the entry and the
//! field, or a conversion that accounts for every entry and whose action script
//! passes the executor's validation (it would run).
//!
//! Deterministic: a fixed seed and a bounded number of cases (`common::fuzz::runner`).

use crate::common;

use common::fuzz::runner;

use loaddensity::Executor;
use loaddensity::har::{HarError, HarFilter, TestSettings, har_to_tasks, parse_har};
use loaddensity::json_file::JsonFileError;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Any JSON value of a small depth: what a field of the wrong type may hold.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// A value of the expected kind most of the time, anything now and then.
fn or_wrong(good: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    prop_oneof![6 => good, 1 => any_json()]
}

fn method() -> impl Strategy<Value = Value> {
    or_wrong(
        prop_oneof![
            prop::sample::select(vec![
                "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"
            ])
            .prop_map(str::to_string),
            "[A-Za-z]{0,8}",
            ".{0,6}",
        ]
        .prop_map(Value::String),
    )
}

fn url() -> impl Strategy<Value = Value> {
    or_wrong(
        prop_oneof![
            4 => ("(http|https)", "[a-z]{1,8}(\\.[a-z]{2,3})?", "(/[a-zA-Z0-9._~%-]{0,6}){0,3}", "(\\?[a-z]=[a-z0-9%]{0,4})?")
                .prop_map(|(scheme, host, path, query)| format!("{scheme}://{host}{path}{query}")),
            1 => ".{0,20}",
        ]
        .prop_map(Value::String),
    )
}

fn headers() -> impl Strategy<Value = Value> {
    let name = prop_oneof![
        prop::sample::select(vec![
            "Host",
            ":authority",
            ":path",
            "Content-Length",
            "Connection",
            "Accept",
            "Cookie",
            "Authorization",
            "Content-Type",
            "X-Trace",
        ])
        .prop_map(str::to_string),
        ".{0,10}",
    ];
    let pair = (
        or_wrong(name.prop_map(Value::String)),
        or_wrong(".{0,16}".prop_map(Value::String)),
    )
        .prop_map(|(name, value)| json!({"name": name, "value": value}));
    or_wrong(prop::collection::vec(or_wrong(pair), 0..5).prop_map(Value::Array))
}

fn post_data() -> impl Strategy<Value = Option<Value>> {
    let mime = prop::sample::select(vec![
        "application/json",
        "application/json; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain",
        "",
    ]);
    let text = prop_oneof![
        Just("{\"a\":1,\"b\":[true,null]}".to_string()),
        Just("a=1&b=%20".to_string()),
        ".{0,24}",
    ];
    let params = prop::collection::vec(
        (".{0,6}", ".{0,6}").prop_map(|(name, value)| json!({"name": name, "value": value})),
        0..3,
    );
    let post = (
        or_wrong(mime.prop_map(|m| Value::String(m.to_string()))),
        or_wrong(text.prop_map(Value::String)),
        prop::option::of(or_wrong(params.prop_map(Value::Array))),
    )
        .prop_map(|(mime, text, params)| {
            let mut post = json!({"mimeType": mime, "text": text});
            if let Some(params) = params {
                post["params"] = params;
            }
            post
        });
    prop::option::of(or_wrong(post))
}

fn entry() -> impl Strategy<Value = Value> {
    let status = or_wrong(prop_oneof![Just(0), Just(304), 100i64..600].prop_map(|s| json!(s)));
    let started = or_wrong(
        prop_oneof![
            (0u32..60, 0u32..1000).prop_map(|(s, ms)| format!("2024-05-01T10:00:{s:02}.{ms:03}Z")),
            Just("2024-05-01T10:00:00+02:00".to_string()),
            ".{0,12}",
        ]
        .prop_map(Value::String),
    );
    let time = or_wrong((-5.0f64..5000.0).prop_map(|t| json!(t)));
    (
        (method(), url(), headers(), post_data()),
        (status, prop::option::of(started), prop::option::of(time)),
        prop::option::of(or_wrong(any::<bool>().prop_map(|b| json!(b)))),
    )
        .prop_map(
            |((method, url, headers, post), (status, started, time), cached)| {
                let mut request = json!({"method": method, "url": url, "headers": headers});
                if let Some(post) = post {
                    request["postData"] = post;
                }
                let mut entry = json!({"request": request, "response": {"status": status}});
                if let Some(started) = started {
                    entry["startedDateTime"] = started;
                }
                if let Some(time) = time {
                    entry["time"] = time;
                }
                if let Some(cached) = cached {
                    entry["_fromCache"] = cached;
                }
                entry
            },
        )
}

fn recording() -> impl Strategy<Value = Value> {
    or_wrong(
        prop::collection::vec(or_wrong(entry()), 0..6)
            .prop_map(|entries| json!({"log": {"version": "1.2", "entries": entries}})),
    )
}

/// The property for one recording and filter.
fn check(executor: &Executor, har: &Value, filter: &HarFilter) -> Result<(), TestCaseError> {
    let entries = har["log"]["entries"].as_array().map_or(0, Vec::len);
    match har_to_tasks(har, filter) {
        Ok(conversion) => {
            prop_assert_eq!(
                conversion.tasks.len() + conversion.skipped.len() + conversion.filtered,
                entries,
                "every entry is kept, skipped or filtered"
            );
            for skipped in &conversion.skipped {
                prop_assert!(skipped.entry < entries && !skipped.reason.is_empty());
            }
            let script = match conversion.action_json(&TestSettings::default()) {
                Ok(script) => script,
                Err(HarError::NothingToReplay { filtered, skipped }) => {
                    prop_assert!(conversion.tasks.is_empty());
                    prop_assert_eq!(filtered + skipped, entries);
                    return Ok(());
                }
                Err(other) => return Err(TestCaseError::fail(other.to_string())),
            };
            let failures = executor
                .validate_document(&script, "converted.json")
                .map_err(|e| TestCaseError::fail(format!("{e}: {script}")))?;
            prop_assert!(
                failures.is_empty(),
                "the converted script does not validate: {:?}\n{}",
                failures
                    .iter()
                    .map(|f| f.error.to_string())
                    .collect::<Vec<_>>(),
                script
            );
        }
        Err(HarError::Field {
            entry,
            field,
            message,
        }) => {
            prop_assert!(field.starts_with("log"), "{field}");
            prop_assert!(!message.is_empty());
            if let Some(index) = entry {
                prop_assert!(index < entries, "entry {index} of {entries}");
                let named = format!("log.entries[{index}]");
                prop_assert!(field.starts_with(&named), "{field} names {named}");
            }
        }
        Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
    }
    Ok(())
}

#[test]
fn any_recording_converts_to_a_valid_script_or_names_the_bad_field() {
    let executor = common::executor();
    let everything = HarFilter::new(&[], &[], false).expect("filter");
    let filtered =
        HarFilter::new(&["https?://[a-m]".into()], &["\\.png$|/x".into()], true).expect("filter");
    runner(400)
        .run(&recording(), |har| {
            check(&executor, &har, &everything)?;
            check(&executor, &har, &filtered)
        })
        .expect("property");
}

#[test]
fn any_text_parses_or_is_a_json_error_with_its_position() {
    let text = prop_oneof![
        ".{0,40}",
        any_json().prop_map(|v| v.to_string()),
        recording().prop_map(|v| {
            // A recording cut short somewhere.
            let text = v.to_string();
            let cut = text.len() / 2;
            text.get(..cut).unwrap_or(&text).to_string()
        }),
    ];
    runner(300)
        .run(&text, |text| {
            match parse_har(&text, "rec.har") {
                Ok(value) => {
                    let bare = text.strip_prefix('\u{feff}').unwrap_or(&text);
                    let again: Value = serde_json::from_str(bare).map_err(|e| {
                        TestCaseError::fail(format!("accepted text serde rejects: {e}"))
                    })?;
                    prop_assert_eq!(value, again);
                }
                Err(HarError::File(JsonFileError::Json {
                    path, line, column, ..
                })) => {
                    prop_assert_eq!(path, "rec.har");
                    prop_assert!(line >= 1 && column <= text.len() + 1);
                }
                Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
            }
            Ok(())
        })
        .expect("property");
}
