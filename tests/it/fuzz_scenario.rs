//! Property tests of the scenario language's parsers over outside input: `${...}`
//! templates, CSV sources, and assertions and extractors over arbitrary response
//! bodies and headers. Each property: no panic, and either an error naming the field
//! (or file), or a result that round-trips.
//!
//! Deterministic: a fixed seed and a bounded number of cases (`common::fuzz::runner`).

use crate::common;

use common::fuzz::runner;

use std::collections::HashMap;

use http::{HeaderMap, HeaderName, HeaderValue};
use loaddensity::scenario::probe::{
    check_assertion, parse_assertion, parse_extractor, render_template, render_value,
};
use loaddensity::scenario::{CsvData, CsvTables, ResponseView, value_text};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Text rich in the characters the parsers care about.
fn tricky_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => any::<char>().prop_map(String::from),
            3 => prop::sample::select(vec![
                "${", "}", "$", "{", ".", "(", ")", ",", "var.", "env.", "csv.", "faker.",
                "randint(", "uuid()", "now()", "\"", "\\", "\n", "\r", " ", "\u{feff}", "\u{0}",
                "csv.src.a", "1", "-9223372036854775808", "9223372036854775807",
            ])
            .prop_map(str::to_string),
            1 => "[a-z]{1,4}",
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

fn var_name() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,8}"
}

/// One piece of a template and what it renders to.
#[derive(Debug, Clone)]
enum Piece {
    /// Text with no `$`: stays as is.
    Literal(String),
    /// `${var.NAME}` (or `${NAME}`, with spaces) of a variable that is set.
    Set(String, bool),
    /// A placeholder that stays as written: an unset variable or an unknown kind.
    Kept(String),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        "[^$]{0,8}".prop_map(Piece::Literal),
        (var_name(), any::<bool>()).prop_map(|(n, short)| Piece::Set(n, short)),
        prop_oneof![
            var_name().prop_map(|n| format!("${{var.unset-{n}}}")),
            "[a-z]{1,5}".prop_map(|n| format!("${{nokind_{n}(1)}}")),
            Just("${}".to_string()),
            Just("${var.}".to_string()),
        ]
        .prop_map(Piece::Kept),
    ]
}

#[test]
fn any_template_parses_or_names_the_placeholder() {
    let tables = CsvTables::default();
    let variables = HashMap::from([("a".to_string(), "x${var.a}".to_string())]);
    runner(4000)
        .run(&tricky_text(), |text| {
            match render_template(&text, &variables, &tables) {
                Ok(out) => {
                    if !text.contains("${") {
                        prop_assert_eq!(out, text);
                    }
                }
                Err(message) => {
                    // The error quotes the placeholder (`${...}`) it is about.
                    prop_assert!(message.contains("`${"), "{message} for {text:?}");
                }
            }
            Ok(())
        })
        .expect("no failing case");
}

#[test]
fn templates_round_trip() {
    let strategy = (
        prop::collection::vec(piece(), 0..8),
        prop::collection::hash_map(var_name(), tricky_text(), 0..4),
    );
    let tables = CsvTables::default();
    runner(2000)
        .run(&strategy, |(pieces, mut variables)| {
            let (mut text, mut expected) = (String::new(), String::new());
            for piece in &pieces {
                match piece {
                    Piece::Literal(literal) => {
                        text.push_str(literal);
                        expected.push_str(literal);
                    }
                    Piece::Set(name, short) => {
                        let value = variables
                            .entry(name.clone())
                            .or_insert_with(|| format!("<{name}>"));
                        text.push_str(&if *short {
                            format!("${{ {name} }}")
                        } else {
                            format!("${{var.{name}}}")
                        });
                        // Values are not expanded again.
                        expected.push_str(value);
                    }
                    Piece::Kept(raw) => {
                        text.push_str(raw);
                        expected.push_str(raw);
                    }
                }
            }
            let out = render_template(&text, &variables, &tables);
            prop_assert_eq!(out.as_deref(), Ok(expected.as_str()), "template {:?}", text);
            Ok(())
        })
        .expect("no failing case");
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e9f64..1e9).prop_map(|f| json!(f)),
        tricky_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z]{1,4}", inner), 0..4)
                .prop_map(|f| Value::Object(f.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

#[test]
fn templated_values_never_panic_and_keep_their_shape() {
    let variables = HashMap::from([("a".to_string(), "1".to_string())]);
    runner(1000)
        .run(&json_value(), |value| {
            if let Ok(out) = render_value(&value, &variables) {
                // Placeholders only change strings: the shape stays.
                prop_assert_eq!(shape(&out), shape(&value));
            }
            Ok(())
        })
        .expect("no failing case");
}

fn shape(value: &Value) -> String {
    match value {
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(shape).collect::<Vec<_>>().join(",")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{k}:{}", shape(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Value::String(_) => "s".into(),
        other => other.to_string(),
    }
}

#[test]
fn any_csv_file_reads_or_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data.csv");
    let bytes = prop::collection::vec(
        prop_oneof![
            any::<u8>(),
            prop::sample::select(b",\"\n\r ab\xef\xbb\xbf".to_vec()),
        ],
        0..200,
    );
    runner(1500)
        .run(&(bytes, any::<bool>()), |(bytes, cycle)| {
            std::fs::write(&path, &bytes).expect("write");
            match CsvData::read(&path, cycle) {
                Ok(data) => {
                    // Never more rows than lines in the file.
                    let lines = bytes.iter().filter(|b| **b == b'\n').count() + 1;
                    prop_assert!(
                        data.len() <= lines,
                        "{} rows from {lines} lines",
                        data.len()
                    );
                }
                Err(error) => {
                    let text = error.to_string();
                    prop_assert!(text.contains(&path.display().to_string()), "{text}");
                }
            }
            Ok(())
        })
        .expect("no failing case");
}

#[test]
fn csv_tables_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("table.csv");
    let strategy = (1usize..5).prop_flat_map(|width| {
        (
            prop::collection::btree_set("[A-Za-z_][A-Za-z0-9_]{0,6}", width..=width),
            prop::collection::vec(prop::collection::vec(tricky_text(), width..=width), 1..6),
        )
    });
    runner(600)
        .run(&strategy, |(columns, rows)| {
            let columns: Vec<String> = columns.into_iter().collect();
            let mut writer = csv::Writer::from_path(&path).expect("create");
            writer.write_record(&columns).expect("header");
            for row in &rows {
                writer.write_record(row).expect("row");
            }
            writer.flush().expect("flush");
            drop(writer);
            let data = CsvData::read(&path, false).map_err(|e| {
                TestCaseError::fail(format!(
                    "{e}: {}",
                    std::fs::read_to_string(&path).unwrap_or_default()
                ))
            })?;
            prop_assert_eq!(data.len(), rows.len());
            let mut tables = CsvTables::default();
            tables.insert("src", data);
            for (i, column) in columns.iter().enumerate() {
                let out =
                    render_template(&format!("${{csv.src.{column}}}"), &HashMap::new(), &tables);
                prop_assert_eq!(out.as_deref(), Ok(rows[0][i].as_str()));
            }
            let missing = render_template("${csv.src.no_such_column!}", &HashMap::new(), &tables)
                .expect_err("an unknown column");
            prop_assert!(
                missing.contains("table.csv") && missing.contains("no_such_column!"),
                "{missing}"
            );
            Ok(())
        })
        .expect("no failing case");
}

/// Arbitrary assertion objects: a real type with real and arbitrary fields.
fn assertion_json() -> impl Strategy<Value = Value> {
    let kind = prop::sample::select(vec![
        "status_code",
        "contains",
        "not_contains",
        "json_path",
        "header",
        "regex",
        "STATUS_CODE",
        "nope",
    ]);
    let field = prop::sample::select(vec!["value", "path", "name", "pattern", "type", "extra"]);
    (kind, prop::collection::vec((field, json_value()), 0..4)).prop_map(|(kind, fields)| {
        let mut object: Map<String, Value> = fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        object.insert("type".into(), json!(kind));
        Value::Object(object)
    })
}

fn extractor_json() -> impl Strategy<Value = Value> {
    let from = prop::sample::select(vec!["json_path", "header", "status_code", "regex", "nope"]);
    let field = prop::sample::select(vec!["var", "path", "name", "pattern", "from", "extra"]);
    (from, prop::collection::vec((field, json_value()), 0..4)).prop_map(|(from, fields)| {
        let mut object: Map<String, Value> = fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        object.insert("from".into(), json!(from));
        object.entry("var").or_insert(json!("v"));
        Value::Object(object)
    })
}

/// A response: status, headers (valid names and values) and a body that is JSON,
/// text or bytes.
/// A response: status, headers, body.
type ArbitraryResponse = (u16, Vec<(String, Vec<u8>)>, Vec<u8>);

fn response() -> impl Strategy<Value = ArbitraryResponse> {
    let header = (
        "[a-z][a-z0-9-]{0,10}",
        prop::collection::vec(prop_oneof![0x20u8..0x7f, 0x80u8..=0xff, Just(b'\t')], 0..30),
    );
    let body = prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        tricky_text().prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..200),
        (1usize..2000).prop_map(|n| "[".repeat(n).into_bytes()),
    ];
    (100u16..1000, prop::collection::vec(header, 0..5), body)
}

fn header_map(headers: &[(String, Vec<u8>)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// `(field, message)` errors name a field of the object or a required one.
fn check_field_error(object: &Value, (field, message): &(String, String), required: &[&str]) {
    assert!(!message.is_empty());
    assert!(
        field.is_empty() || required.contains(&field.as_str()) || object.get(field).is_some(),
        "field `{field}` is not in {object}: {message}"
    );
}

#[test]
fn assertions_over_arbitrary_responses() {
    let variables = HashMap::new();
    runner(3000)
        .run(
            &(assertion_json(), response()),
            |(spec, (status, headers, body))| {
                let headers = header_map(&headers);
                let view = ResponseView::new(status, &headers, &body);
                match parse_assertion(&spec) {
                    Ok(assertion) => {
                        let verdict = check_assertion(&assertion, &view, &variables);
                        if let Err(message) = &verdict {
                            prop_assert!(message.starts_with("assertion "), "{message}");
                        }
                        // A literal `contains` is exactly a substring test.
                        if spec["type"] == "contains"
                            && let Some(text) = spec["value"].as_str()
                            && !text.contains("${")
                        {
                            let contained = String::from_utf8_lossy(&body).contains(text);
                            prop_assert_eq!(verdict.is_ok(), contained);
                        }
                    }
                    Err(error) => check_field_error(
                        &spec,
                        &error,
                        &["type", "value", "path", "name", "pattern"],
                    ),
                }
                Ok(())
            },
        )
        .expect("no failing case");
}

#[test]
fn extractors_over_arbitrary_responses() {
    runner(3000)
        .run(
            &(extractor_json(), response()),
            |(spec, (status, headers, body))| {
                let headers = header_map(&headers);
                let view = ResponseView::new(status, &headers, &body);
                match parse_extractor(&spec) {
                    Ok(extractor) => {
                        let value = extractor.extract(&view);
                        if spec["from"] == "status_code" {
                            prop_assert_eq!(value, Some(status.to_string()));
                        }
                    }
                    Err(error) => check_field_error(
                        &spec,
                        &error,
                        &["var", "from", "path", "name", "pattern"],
                    ),
                }
                Ok(())
            },
        )
        .expect("no failing case");
}

#[test]
fn json_paths_and_headers_round_trip() {
    let strategy = (
        prop::collection::vec("[a-z_][a-z0-9_]{0,5}", 1..4),
        json_value(),
        "[a-z][a-z0-9-]{0,10}",
        "[ -~]{0,30}",
    );
    let variables = HashMap::new();
    runner(2000)
        .run(&strategy, |(keys, leaf, header, header_value)| {
            // As read off the wire (the JSON parser's floats are what the checks see).
            let leaf: Value = serde_json::from_str(&leaf.to_string()).expect("valid JSON");
            // {"k1": {"k2": leaf}} read back by the path k1.k2.
            let document = keys
                .iter()
                .rev()
                .fold(leaf.clone(), |inner, key| json!({ key: inner }));
            let body = document.to_string().into_bytes();
            let mut headers = HeaderMap::new();
            let header_value = header_value.trim().to_string();
            headers.insert(
                HeaderName::try_from(header.as_str()).expect("a valid name"),
                HeaderValue::from_str(&header_value).expect("a valid value"),
            );
            let view = ResponseView::new(200, &headers, &body);
            let path = keys.join(".");
            let extractor =
                parse_extractor(&json!({"var": "v", "from": "json_path", "path": path}))
                    .expect("a valid extractor");
            let expected = (!leaf.is_null()).then(|| value_text(&leaf));
            prop_assert_eq!(extractor.extract(&view), expected.clone());
            if !leaf.is_null() && !has_placeholder(&leaf) {
                let assertion =
                    parse_assertion(&json!({"type": "json_path", "path": path, "value": leaf}))
                        .expect("a valid assertion");
                let verdict = check_assertion(&assertion, &view, &variables);
                prop_assert!(verdict.is_ok(), "{:?}", verdict);
            }
            let extractor = parse_extractor(&json!({"var": "h", "from": "header", "name": header}))
                .expect("a valid extractor");
            prop_assert_eq!(extractor.extract(&view), Some(header_value.clone()));
            let assertion =
                parse_assertion(&json!({"type": "header", "name": header, "value": header_value}))
                    .expect("a valid assertion");
            if !header_value.contains("${") {
                prop_assert!(check_assertion(&assertion, &view, &variables).is_ok());
            }
            Ok(())
        })
        .expect("no failing case");
}

fn has_placeholder(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains("${"),
        Value::Array(items) => items.iter().any(has_placeholder),
        Value::Object(map) => map.values().any(has_placeholder),
        _ => false,
    }
}

/// Issue #26: URLs with credentials. Whatever the user and password, a task named by
/// its URL shows the password masked (`user:***@`), an error never quotes it, and
/// masking any text never panics and is idempotent.
#[test]
fn url_credentials_never_reach_a_name() {
    use loaddensity::engine::parse_tasks;
    use loaddensity::redact::redact_url_credentials;
    let user = "[A-Za-z0-9._~!$&'()*+,;=%-]{0,10}";
    let password = "[A-Za-z0-9]{6,12}".prop_map(|p| format!("Pw{p}"));
    let rest = prop_oneof![
        Just("/p".to_string()),
        Just("/items/${var.id}".to_string()),
        Just(":8080/a?b=c@d".to_string()),
        Just(":bad port/".to_string()),
    ];
    let url_like = prop::collection::vec(
        prop::sample::select(vec![
            "http://", "://", "@", ":", "/", "?", "#", "a", "b", " ", "`", "***", "%40", "\u{e9}",
        ]),
        0..16,
    )
    .prop_map(|parts| parts.concat());
    let other = prop_oneof![tricky_text(), url_like];
    runner(400)
        .run(
            &(user, password, rest, other),
            |(user, password, rest, other)| {
                prop_assume!(!user.contains(&password));
                let url = format!("http://{user}:{password}@127.0.0.1{rest}");
                match parse_tasks(&json!([{"method": "get", "url": url}]), None) {
                    Ok(scenario) => {
                        let name = &scenario.tasks[0].endpoint.name;
                        prop_assert!(!name.contains(&password), "{name}");
                        prop_assert!(name.contains(":***@"), "{name}");
                    }
                    Err(error) => {
                        prop_assert!(!error.to_string().contains(&password), "{error}")
                    }
                }
                let once = redact_url_credentials(&other).into_owned();
                prop_assert_eq!(redact_url_credentials(&once), once.as_str());
                Ok(())
            },
        )
        .expect("no failing case");
}
