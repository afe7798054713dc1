//! Property test of the StatsD encoder and packer: for any method and name text, any
//! prefix and packet size, every datagram is at most `max_packet_bytes`, and every line
//! parses back (with a parser written here from the StatsD and DogStatsD datagram
//! formats) to the metric's name, value and type, and to the sanitized tag values.
//!
//! Deterministic: a fixed seed and a bounded number of cases.

use crate::common;

use common::fuzz::runner;

use loaddensity::sinks::statsd::Dialect;
use loaddensity::sinks::statsd::encoder::{Encoder, Metric};
use loaddensity::sinks::statsd::packet::{Packer, Packet};
use proptest::prelude::*;

/// One parsed line.
#[derive(Debug, PartialEq)]
struct Line {
    name: String,
    value: u64,
    kind: String,
    /// DogStatsD tags in order, as (key, value).
    tags: Vec<(String, String)>,
}

/// `name:value|type[|@rate][|#k:v,...]`: the name ends at the first `:`, fields are
/// separated by `|`, tags by `,`, a tag's key from its value by the first `:`.
fn parse(line: &str) -> Result<Line, String> {
    if line.is_empty() || line.contains('\n') {
        return Err(format!("bad line {line:?}"));
    }
    let (name, rest) = line.split_once(':').ok_or("no `:`")?;
    let mut fields = rest.split('|');
    let value = fields
        .next()
        .ok_or("no value")?
        .parse()
        .map_err(|e| format!("value: {e}"))?;
    let kind = fields.next().ok_or("no type")?.to_string();
    let mut tags = Vec::new();
    for field in fields {
        let list = field.strip_prefix('#').ok_or(format!("field {field:?}"))?;
        for tag in list.split(',') {
            let (key, value) = tag.split_once(':').ok_or(format!("tag {tag:?}"))?;
            if value.contains(':') {
                return Err(format!("tag {tag:?} has two `:`"));
            }
            tags.push((key.to_string(), value.to_string()));
        }
    }
    Ok(Line {
        name: name.to_string(),
        value,
        kind,
        tags,
    })
}

/// LoadDensity's sanitizing, written again here: `| , : #` (and line breaks) to `_`.
fn sanitized(text: &str, folded: bool) -> String {
    text.chars()
        .map(|c| match c {
            '|' | ',' | ':' | '#' | '\n' | '\r' => '_',
            '.' if folded => '_',
            c => c,
        })
        .collect()
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9/ _.-]{0,40}",
        "[|,:#.\\n\\r ;=@a-z]{0,60}",
        any::<String>(),
        "[é🙂a]{0,700}",
    ]
}

#[test]
fn any_text_gives_bounded_packets_of_parseable_lines() {
    let strategy = (
        text(),
        text(),
        prop_oneof![Just(""), Just("loaddensity"), Just("a.b_c-d")],
        any::<bool>(),
        prop_oneof![180usize..400, 400usize..2000, Just(1432usize)],
        prop::collection::vec((0usize..3, any::<bool>(), any::<u64>()), 1..60),
    );
    runner(400)
        .run(
            &strategy,
            |(method, name, prefix, dogstatsd, max, metrics)| {
                let dialect = if dogstatsd {
                    Dialect::DogStatsd
                } else {
                    Dialect::Statsd
                };
                let Ok(encoder) = Encoder::new(prefix, dialect, max) else {
                    // Too small for this prefix: refused up front, checked in options.
                    prop_assert!(max < 300);
                    return Ok(());
                };
                let series = encoder.series(&method, &name);
                let (m, n) = encoder.tag_values(&method, &name);
                // The values written are LoadDensity's sanitized text, cut to fit.
                let method_default = if method.is_empty() { "REQ" } else { &method };
                let name_default = if name.is_empty() { "unknown" } else { &name };
                prop_assert!(sanitized(method_default, !dogstatsd).starts_with(&m));
                prop_assert!(sanitized(name_default, !dogstatsd).starts_with(&n));
                prop_assert!(!m.is_empty() && !n.is_empty());
                // Any packet leaves 64 bytes for both, the method at least 16 of them.
                if method_default.len() <= 16 && method_default.len() + name_default.len() <= 64 {
                    prop_assert_eq!(&m, &sanitized(method_default, !dogstatsd));
                    prop_assert_eq!(&n, &sanitized(name_default, !dogstatsd));
                }

                let mut packer = Packer::new(max);
                let mut datagrams: Vec<Vec<u8>> = Vec::new();
                let mut send = |p: Packet<'_>| datagrams.push(p.bytes.to_vec());
                let mut line = Vec::new();
                for &(metric, success, value) in &metrics {
                    line.clear();
                    series.write(success, Metric::ALL[metric], value, &mut line);
                    packer.push(&line, 0, &mut send);
                }
                packer.flush(&mut send);

                let dot = if prefix.is_empty() { "" } else { "." };
                let mut parsed = Vec::new();
                for datagram in &datagrams {
                    prop_assert!(datagram.len() <= max, "{} > {max}", datagram.len());
                    let text = std::str::from_utf8(datagram)
                        .map_err(|e| TestCaseError::fail(format!("not UTF-8: {e}")))?;
                    for line in text.split('\n') {
                        parsed.push(parse(line).map_err(TestCaseError::fail)?);
                    }
                }
                prop_assert_eq!(parsed.len(), metrics.len());
                for (line, &(metric, success, value)) in parsed.iter().zip(&metrics) {
                    let metric = Metric::ALL[metric];
                    let outcome = if success { "success" } else { "failure" };
                    prop_assert_eq!(line.value, value);
                    prop_assert_eq!(line.kind.as_str(), metric.kind());
                    if dogstatsd {
                        prop_assert_eq!(&line.name, &format!("{prefix}{dot}{}", metric.name()));
                        let expected = vec![
                            ("method".to_string(), m.clone()),
                            ("name".to_string(), n.clone()),
                            ("outcome".to_string(), outcome.to_string()),
                        ];
                        prop_assert_eq!(&line.tags, &expected);
                    } else {
                        prop_assert_eq!(
                            &line.name,
                            &format!("{prefix}{dot}{}.{m}.{n}.{outcome}", metric.name())
                        );
                        prop_assert!(line.tags.is_empty());
                    }
                }
                Ok(())
            },
        )
        .expect("property");
}
