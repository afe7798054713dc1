//! Property test of the InfluxDB line-protocol encoder: any measurement, tag and field
//! value round-trips through a line-protocol parser written here from the
//! specification (InfluxDB v2 "Line protocol" reference: elements, special characters
//! and escaping, comments).
//!
//! Deterministic: a fixed seed and a bounded number of cases.

use crate::common;

use common::fuzz::runner;

use std::collections::BTreeMap;

use loaddensity::sinks::influxdb::line_protocol::{
    PointFields, SeriesPrefix, encode_line, truncate_error,
};
use loaddensity::sinks::influxdb::{InfluxOptions, check_options};
use proptest::prelude::*;

/// A field value as the specification types it.
#[derive(Debug, Clone, PartialEq)]
enum FieldValue {
    Float(f64),
    Integer(i64),
    UInteger(u64),
    String(String),
    Boolean(bool),
}

/// One parsed point.
#[derive(Debug, Clone, PartialEq)]
struct Point {
    measurement: String,
    tags: BTreeMap<String, String>,
    fields: BTreeMap<String, FieldValue>,
    timestamp: Option<i64>,
}

/// Reads an identifier (measurement, tag key or value, field key) up to an unescaped
/// byte of `stops`. A backslash escapes the next character when it is one of
/// `escapable` or a backslash; any other backslash is literal.
fn identifier<'a>(
    input: &'a str,
    stops: &[char],
    escapable: &[char],
) -> Result<(String, &'a str), String> {
    let mut out = String::new();
    let mut chars = input.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            match chars.peek() {
                Some(&(_, next)) if next == '\\' || escapable.contains(&next) => {
                    out.push(next);
                    chars.next();
                }
                _ => out.push('\\'),
            }
        } else if stops.contains(&c) {
            return Ok((out, &input[i..]));
        } else if c == '\n' {
            return Err("a raw newline inside an element".into());
        } else {
            out.push(c);
        }
    }
    Ok((out, ""))
}

fn field_value(input: &str) -> Result<(FieldValue, &str), String> {
    if let Some(rest) = input.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.clone().next() {
                    Some((_, next @ ('"' | '\\'))) => {
                        out.push(next);
                        chars.next();
                    }
                    _ => out.push('\\'),
                },
                '"' => return Ok((FieldValue::String(out), &rest[i + 1..])),
                '\n' => return Err("a raw newline inside a string field".into()),
                other => out.push(other),
            }
        }
        return Err("an unterminated string field".into());
    }
    let end = input.find([',', ' ']).unwrap_or(input.len());
    let (token, rest) = input.split_at(end);
    let value = match token {
        "t" | "T" | "true" | "True" | "TRUE" => FieldValue::Boolean(true),
        "f" | "F" | "false" | "False" | "FALSE" => FieldValue::Boolean(false),
        _ if token.ends_with('i') => FieldValue::Integer(
            token[..token.len() - 1]
                .parse()
                .map_err(|e| format!("integer `{token}`: {e}"))?,
        ),
        _ if token.ends_with('u') => FieldValue::UInteger(
            token[..token.len() - 1]
                .parse()
                .map_err(|e| format!("uinteger `{token}`: {e}"))?,
        ),
        _ => FieldValue::Float(token.parse().map_err(|e| format!("float `{token}`: {e}"))?),
    };
    Ok((value, rest))
}

/// Parses one line (without its newline). `None` for a comment or a blank line.
fn parse_line(line: &str) -> Result<Option<Point>, String> {
    if line.trim().is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (measurement, mut rest) = identifier(line, &[',', ' '], &[',', ' '])?;
    if measurement.is_empty() {
        return Err("an empty measurement".into());
    }
    let mut tags = BTreeMap::new();
    while let Some(tag) = rest.strip_prefix(',') {
        let (key, after) = identifier(tag, &['=', ',', ' '], &[',', '=', ' '])?;
        let after = after.strip_prefix('=').ok_or("a tag without `=`")?;
        let (value, after) = identifier(after, &[',', ' '], &[',', '=', ' '])?;
        if key.is_empty() || value.is_empty() {
            return Err(format!("an empty tag key or value in `{tag}`"));
        }
        tags.insert(key, value);
        rest = after;
    }
    let mut rest = rest.strip_prefix(' ').ok_or("no field set")?;
    let mut fields = BTreeMap::new();
    loop {
        let (key, after) = identifier(rest, &['='], &[',', '=', ' '])?;
        let after = after.strip_prefix('=').ok_or("a field without `=`")?;
        let (value, after) = field_value(after)?;
        if key.is_empty() {
            return Err("an empty field key".into());
        }
        fields.insert(key, value);
        match after.strip_prefix(',') {
            Some(next) => rest = next,
            None => {
                rest = after;
                break;
            }
        }
    }
    let timestamp = match rest.strip_prefix(' ') {
        Some(ts) => Some(ts.parse().map_err(|e| format!("timestamp `{ts}`: {e}"))?),
        None if rest.is_empty() => None,
        None => return Err(format!("trailing `{rest}`")),
    };
    Ok(Some(Point {
        measurement,
        tags,
        fields,
        timestamp,
    }))
}

/// What a value reads back as: the protocol has no newline inside a value, so the
/// encoder writes it as the two characters `\n` (and a carriage return as `\r`).
fn readback(text: &str) -> String {
    text.replace('\n', "\\n").replace('\r', "\\r")
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            2 => any::<char>().prop_map(String::from),
            3 => prop::sample::select(vec![
                ",", "=", " ", "\\", "\"", "\n", "\r", "#", "\t", "a", "é", "\\\\", "\\ ", "\\,", "\\=",
                "\\\"", "\\n",
            ])
            .prop_map(str::to_string),
        ],
        0..16,
    )
    .prop_map(|parts| parts.concat())
}

#[test]
fn the_parser_reads_the_specification_examples() {
    let point = parse_line(r#"my\ Measurement,tag\ Key1=tag\ Value1,tag\,Key2=tag\,Value2 fieldKey="string with \"quotes\"",n=1i 1556813561098000000"#)
        .expect("valid")
        .expect("a point");
    assert_eq!(point.measurement, "my Measurement");
    assert_eq!(point.tags["tag Key1"], "tag Value1");
    assert_eq!(point.tags["tag,Key2"], "tag,Value2");
    assert_eq!(
        point.fields["fieldKey"],
        FieldValue::String("string with \"quotes\"".into())
    );
    assert_eq!(point.fields["n"], FieldValue::Integer(1));
    assert_eq!(point.timestamp, Some(1_556_813_561_098_000_000));
    assert_eq!(parse_line("# a comment"), Ok(None));
    assert!(parse_line("m,t=1").is_err());
    assert!(parse_line("m f=\"open").is_err());
}

#[test]
fn every_point_round_trips() {
    let strategy = (
        text(),
        text(),
        text(),
        prop::option::of(text()),
        // Latencies up to 2^53 ns (104 days, where `ns as f64` is still exact), and the
        // usual ones (up to 10 s).
        prop_oneof![0u64..1 << 53, 0u64..10_000_000_000],
        any::<u64>(),
        any::<bool>(),
        any::<i64>(),
    );
    runner(4000)
        .run(
            &strategy,
            |(
                measurement,
                request_type,
                name,
                error,
                latency_ns,
                response_bytes,
                success,
                timestamp_ns,
            )| {
                let options = InfluxOptions {
                    measurement: measurement.clone(),
                    ..InfluxOptions::default()
                };
                if check_options(&options).is_err() {
                    return Ok(());
                }
                let prefix = SeriesPrefix::new(&measurement, &request_type, &name);
                let fields = PointFields {
                    latency_ns,
                    response_bytes,
                    success,
                    error: error.as_deref(),
                    timestamp_ns,
                };
                let mut out = Vec::new();
                encode_line(&prefix, &fields, &mut out);
                let line = String::from_utf8(out).expect("utf8");
                let body = line.strip_suffix('\n').expect("ends with a newline");
                prop_assert!(!body.contains('\n'), "one line: {:?}", line);
                let point = parse_line(body)
                    .map_err(|e| TestCaseError::fail(format!("{e}: {line:?}")))?
                    .ok_or_else(|| TestCaseError::fail(format!("read as a comment: {line:?}")))?;
                prop_assert_eq!(&point.measurement, &readback(&measurement), "{:?}", line);
                let mut tags = BTreeMap::new();
                for (key, value) in [("request_type", &request_type), ("name", &name)] {
                    if !value.is_empty() {
                        tags.insert(key.to_string(), readback(value));
                    }
                }
                prop_assert_eq!(&point.tags, &tags, "{:?}", line);
                // The nearest f64 to the exact number of milliseconds.
                prop_assert_eq!(
                    &point.fields["latency_ms"],
                    &FieldValue::Float(latency_ns as f64 / 1e6),
                    "{} ns in {:?}",
                    latency_ns,
                    line
                );
                // An integer field is a signed 64-bit integer: larger counts saturate.
                let bytes = i64::try_from(response_bytes).unwrap_or(i64::MAX);
                prop_assert_eq!(
                    point.fields.get("response_bytes"),
                    Some(&FieldValue::Integer(bytes)),
                    "response_bytes {} in {:?}",
                    response_bytes,
                    line
                );
                prop_assert_eq!(&point.fields["success"], &FieldValue::Boolean(success));
                let error = error.map(|e| FieldValue::String(readback(truncate_error(&e))));
                prop_assert_eq!(point.fields.get("error"), error.as_ref());
                prop_assert_eq!(point.timestamp, Some(timestamp_ns));
                Ok(())
            },
        )
        .expect("no failing case");
}
