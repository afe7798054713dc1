//! Property tests of the YAML and TOML readers and of the linter: arbitrary and
//! mutated text is read without a panic, and every syntax error names the file, a
//! line and a column inside the text; arbitrary documents are linted without a
//! panic, and every finding has a rule, a message and a path in the document.
//!
//! Deterministic: a fixed seed and a bounded number of cases (`common::fuzz::runner`).

use crate::common;

use common::fuzz::runner;

use loaddensity::action::{DocumentError, DocumentFormat, parse_document};
use loaddensity::{Executor, ExecutorOptions};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const VALID_YAML: &str = "load_density:\n  - - LD_start_test\n    - user_count: 2\n      tasks:\n        - {method: get, request_url: 'http://127.0.0.1:1/${var.a}', extract: [{var: t, scope: session}]}\n  - [LD_sleep, [0.1]]\n  - [LD_summary]\n";
const VALID_TOML: &str = "load_density = [\n  [\"LD_start_test\", {user_count = 2, tasks = [{method = \"get\", request_url = \"http://127.0.0.1:1/\"}]}],\n  [\"LD_sleep\", [0.1]],\n  [\"LD_summary\"],\n]\n[extra]\nkey = 'v'\n";

/// Text made of the characters YAML and TOML care about.
fn syntax_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "load_density",
            ":",
            " ",
            "  ",
            "\n",
            "- ",
            "[",
            "]",
            "{",
            "}",
            ",",
            "=",
            "\"",
            "'",
            "#",
            "&a",
            "*a",
            "!!str",
            "---",
            "...",
            "|",
            ">",
            "\t",
            "1",
            "-1.5e3",
            "true",
            "null",
            "~",
            "LD_sleep",
            "seconds",
            "é",
            "\u{0}",
            "\\",
            "\r\n",
            "[[",
            "]]",
            "0x1F",
            "1979-05-27T07:32:00Z",
            "inf",
            "nan",
            "? ",
            "%YAML 1.2",
        ]),
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

/// A valid document with a few characters inserted, removed or replaced.
fn mutated(base: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            any::<prop::sample::Index>(),
            0u8..3,
            prop::sample::select(vec![
                '[', ']', '{', '}', ',', ':', '"', '\'', '\n', ' ', '=', '-', '#', 'x', '\t',
            ]),
        ),
        1..6,
    )
    .prop_map(move |edits| {
        let mut chars: Vec<char> = base.chars().collect();
        for (at, kind, c) in edits {
            let i = at.index(chars.len() + 1);
            match kind {
                0 => chars.insert(i, c),
                1 if i < chars.len() => {
                    chars.remove(i);
                }
                _ if i < chars.len() => chars[i] = c,
                _ => chars.push(c),
            }
        }
        chars.into_iter().collect()
    })
}

fn check_read(text: &str, format: DocumentFormat) -> Result<(), TestCaseError> {
    let name = format!("fuzz.{}", format.name().to_lowercase());
    match parse_document(text, format, &name) {
        Ok(_) => Ok(()),
        Err(DocumentError::Syntax {
            path,
            format: f,
            line,
            column,
            message,
        }) => {
            prop_assert_eq!(&path, &name);
            prop_assert_eq!(f, format.name());
            let lines = text.split('\n').count();
            prop_assert!(
                line >= 1 && line <= lines + 1,
                "line {} of {}: {:?}",
                line,
                lines,
                text
            );
            prop_assert!(column >= 1, "column {}", column);
            prop_assert!(!message.trim().is_empty());
            Ok(())
        }
        Err(other) => {
            prop_assert!(false, "{format:?}: unexpected error {other}");
            Ok(())
        }
    }
}

#[test]
fn yaml_reader_never_panics_and_locates_errors() {
    runner(600)
        .run(
            &prop_oneof![syntax_soup(), mutated(VALID_YAML), ".{0,80}"],
            |text| check_read(&text, DocumentFormat::Yaml),
        )
        .expect("no failing case");
}

#[test]
fn toml_reader_never_panics_and_locates_errors() {
    runner(600)
        .run(
            &prop_oneof![syntax_soup(), mutated(VALID_TOML), ".{0,80}"],
            |text| check_read(&text, DocumentFormat::Toml),
        )
        .expect("no failing case");
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

const KEYS: &[&str] = &[
    "user_count",
    "spawn_rate",
    "test_time",
    "tasks",
    "user_detail_dict",
    "user",
    "host",
    "wait_time",
    "variables",
    "csv_sources",
    "name",
    "value",
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
    "json",
    "data",
    "assertions",
    "extract",
    "var",
    "from",
    "scope",
    "path",
    "run_if",
    "skip_if",
    "timeout",
    "weight",
    "mode",
    "sources",
    "actions",
    "known_commands",
    "text",
    "indent",
    "doc",
    "yaml_file_path",
    "toml_save_path",
    "action_doc",
    "action_list",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..100).prop_map(|n| json!(n)),
        Just(json!(0.5)),
        prop::sample::select(vec![
            "",
            "get",
            "http://127.0.0.1:1/",
            "/x",
            "${var.a}",
            "${session.a}",
            "${",
            "${csv.a.b}",
            "${randint(9, 1)}",
            "${faker.nope}",
            "${env.LOADDENSITY_FUZZ_UNSET}",
            "session",
            "global",
            "json_path",
            "weighted",
            "fast_http_user",
            "LD_summary",
            "x.csv",
        ])
        .prop_map(|s| Value::String(s.to_string())),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (prop::sample::select(KEYS).prop_map(str::to_string), inner),
                0..5
            )
            .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

#[test]
fn linter_never_panics_and_every_finding_has_a_path() {
    let executor = executor();
    let commands: Vec<String> = executor.command_names().map(str::to_string).collect();
    let action = prop_oneof![
        3 => (prop::sample::select(commands), json_value()).prop_map(|(c, a)| json!([c, a])),
        1 => (prop::sample::select(vec!["LD_nope", "LD_start_tset", ""]), json_value()).prop_map(|(c, a)| json!([c, a])),
        1 => json_value(),
    ];
    let document = prop_oneof![
        3 => prop::collection::vec(action.clone(), 0..5).prop_map(|a| json!({"load_density": a})),
        1 => prop::collection::vec(action, 0..5).prop_map(Value::Array),
        1 => json_value(),
    ];
    runner(800)
        .run(&document, |document| {
            let count = match &document {
                Value::Array(list) => Some(list.len()),
                Value::Object(map) => map
                    .get("load_density")
                    .and_then(Value::as_array)
                    .map(Vec::len),
                _ => None,
            };
            let findings = executor.lint_document(&document, None);
            for finding in &findings {
                prop_assert!(
                    !finding.rule.is_empty() && !finding.message.trim().is_empty(),
                    "{finding:?}"
                );
                prop_assert!(
                    !finding.location.is_empty(),
                    "no path: {finding:?} in {document}"
                );
                if let Some(rest) = finding.location.strip_prefix("actions[") {
                    let index: usize = rest
                        .split(']')
                        .next()
                        .and_then(|i| i.parse().ok())
                        .unwrap_or(usize::MAX);
                    prop_assert!(
                        count.is_some_and(|n| index < n),
                        "{finding:?} in {document}"
                    );
                }
            }
            // A document the linter finds no error in reads as a document.
            if !loaddensity::action::lint::has_errors(&findings) {
                prop_assert!(
                    loaddensity::action::actions(&document, "x").is_ok(),
                    "{document}"
                );
            }
            Ok(())
        })
        .expect("no failing case");
}
