//! Property tests of action documents: any JSON, and every command with arbitrary
//! arguments, is validated without a panic, and every failure is located (file,
//! action index, command) and, for a bad argument, names a field that was given.
//!
//! Deterministic: a fixed seed and a bounded number of cases (`common::fuzz::runner`).

use crate::common;

use common::fuzz::runner;

use loaddensity::action::ActionFailure;
use loaddensity::{ActionError, Executor, ExecutorOptions};
use proptest::prelude::*;
use serde_json::{Map, Number, Value, json};

/// Names LoadDensity scripts use, so that arbitrary objects often hit real fields.
const KEYS: &[&str] = &[
    "user_count",
    "spawn_rate",
    "test_time",
    "tasks",
    "user_detail_dict",
    "user",
    "host",
    "wait_time",
    "constant",
    "between",
    "shape",
    "stages",
    "variables",
    "csv_sources",
    "name",
    "value",
    "values",
    "file_path",
    "cycle",
    "rules",
    "type",
    "op",
    "seconds",
    "method",
    "url",
    "request_url",
    "headers",
    "params",
    "json",
    "data",
    "assertions",
    "extract",
    "run_if",
    "skip_if",
    "timeout",
    "weight",
    "mode",
    "path",
    "pattern",
    "var",
    "from",
    "action",
    "action_list",
    "file_path_list",
    "port",
    "addr",
    "measurement",
    "transport",
    "endpoint",
    "protocol",
    "arrival_rate",
    "max_users",
    "duration",
    "rate",
    "sources",
    "equals",
    "in",
    "truthy",
    "auth",
    "username",
    "password",
    "token",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "get",
            "post",
            "http://127.0.0.1:1/",
            "/x",
            "${var.a}",
            "${",
            "}",
            "${csv.a.b}",
            "${randint(9, 1)}",
            "${faker.nope}",
            "lt",
            "lte",
            "latency_p95",
            "fast_http_user",
            "http_user",
            "sequence",
            "weighted",
            "1s",
            "-1",
            "NaN",
            "\u{0}",
            "é",
            "json_path",
            "status_code",
            "header",
            "regex",
            "(",
            "[",
            "\\",
        ])
        .prop_map(str::to_string),
        ".{0,12}",
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        prop::sample::select(vec![0.0, -0.0, 0.5, -1.0, 1e300, -1e300, 1e-300, 3.0])
            .prop_map(|f| Value::Number(Number::from_f64(f).unwrap_or_else(|| 0.into()))),
        (-1000i64..1000).prop_map(|n| json!(n)),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(str::to_string),
        1 => "[a-z_]{0,6}",
    ]
}

/// Any JSON value, at most 4 levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn executor() -> Executor {
    let mut executor = Executor::new(ExecutorOptions {
        threads: Some(1),
        progress: false,
    })
    .expect("executor");
    executor.set_output(Box::new(std::io::sink()));
    executor
}

/// The part of a field path before its first `.` or `[`.
fn root(field: &str) -> &str {
    field.split(['.', '[']).next().unwrap_or("")
}

/// A failure is located, says something, and a bad named argument names a field
/// that was given (or none, when the arguments as a whole are wrong).
fn check_failure(failure: &ActionFailure, source: &str, given: Option<&Map<String, Value>>) {
    let text = failure.to_string();
    assert!(
        text.starts_with(&format!("{source}: action[{}] (", failure.index)),
        "{text}"
    );
    assert!(!failure.error.to_string().trim().is_empty(), "{text}");
    if let (ActionError::Argument { field, message }, Some(given)) = (&failure.error, given) {
        let root = root(field);
        assert!(
            root.is_empty() || given.contains_key(root) || message.contains("missing"),
            "field `{field}` was not given ({given:?}): {text}"
        );
    }
}

#[test]
fn any_document_validates_without_panic() {
    let executor = executor();
    let strategy = prop_oneof![
        json_value(),
        prop::collection::vec(json_value(), 0..5).prop_map(|actions| json!({"load_density": actions})),
        prop::collection::vec((text(), json_value()), 0..5).prop_map(|actions| {
            json!({"load_density": actions.into_iter().map(|(c, a)| json!([c, a])).collect::<Vec<_>>()})
        }),
    ];
    runner(512)
        .run(&strategy, |document| {
            match executor.validate_document(&document, "fuzz.json") {
                Ok(failures) => {
                    for failure in &failures {
                        check_failure(failure, "fuzz.json", None);
                    }
                }
                Err(error) => assert!(error.to_string().starts_with("fuzz.json"), "{error}"),
            }
            Ok(())
        })
        .expect("no failing case");
}

#[test]
fn every_command_with_arbitrary_arguments() {
    let executor = executor();
    let commands: Vec<String> = executor.command_names().map(str::to_string).collect();
    assert!(commands.len() > 20, "{commands:?}");
    let args = prop_oneof![
        3 => prop::collection::vec((key(), json_value()), 0..6)
            .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        1 => prop::collection::vec(json_value(), 0..4).prop_map(Value::Array),
        1 => json_value(),
    ];
    runner(1500)
        .run(
            &(prop::sample::select(commands), args),
            |(command, args)| {
                let document = json!([[command, args]]);
                let failures = executor
                    .validate_document(&document, "cmd.json")
                    .unwrap_or_else(|e| panic!("{document}: {e}"));
                for failure in &failures {
                    check_failure(failure, "cmd.json", args.as_object());
                    match &failure.error {
                        // Arguments that are neither a dict nor a list: the message names
                        // the command.
                        ActionError::Malformed(message) => {
                            prop_assert!(message.contains(&format!("`{command}`")), "{message}");
                        }
                        _ => prop_assert_eq!(&failure.command, &command),
                    }
                }
                Ok(())
            },
        )
        .expect("no failing case");
}

/// Issue #26: arrival rates from far below to far beyond what a machine can start,
/// with units down to a picosecond. Each is accepted exactly when it is within the
/// limits (at most 1e6 iterations per second, a unit of at least 1 ms), else refused
/// by `validate` naming the `arrival_rate` field and the limit.
#[test]
fn arrival_rates_past_the_limits_are_refused() {
    let executor = executor();
    let magnitude = |exponents: std::ops::Range<i32>| {
        (1.0f64..10.0, exponents).prop_map(|(mantissa, exponent)| mantissa * 10f64.powi(exponent))
    };
    runner(400)
        .run(
            &(magnitude(-3..13), magnitude(-13..7), any::<bool>()),
            |(rate, unit, staged)| {
                let arrival = if staged {
                    json!({"stages": [{"duration": 1, "rate": rate}], "time_unit": unit, "max_users": 2})
                } else {
                    json!({"rate": rate, "time_unit": unit, "max_users": 2})
                };
                let document = json!([["LD_start_test", {
                    "test_time": 1, "arrival_rate": arrival,
                    "tasks": [{"method": "get", "url": "http://127.0.0.1:1/"}]
                }]]);
                let failures = executor
                    .validate_document(&document, "rate.json")
                    .expect("a document");
                if unit >= 0.001 && rate / unit <= 1e6 && rate < 1e12 {
                    prop_assert!(failures.is_empty(), "{arrival}: {failures:?}");
                } else {
                    prop_assert_eq!(failures.len(), 1, "{}", arrival);
                    let text = failures[0].to_string();
                    match &failures[0].error {
                        ActionError::Argument { field, message } => {
                            prop_assert!(field.starts_with("arrival_rate."), "{text}");
                            prop_assert!(
                                message.contains("1e6 per second")
                                    || message.contains(">= 0.001")
                                    || message.contains("below 1e12"),
                                "{text}"
                            );
                        }
                        other => prop_assert!(false, "{arrival}: {other}"),
                    }
                }
                Ok(())
            },
        )
        .expect("no failing case");
}
