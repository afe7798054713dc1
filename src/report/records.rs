//! The per-request reports, in LoadDensity's shapes: CSV (one row per request), and
//! the success/failure JSON and XML documents (`Success_TestN` / `Failure_TestN`
//! records whose values are all strings). They stream from the request log, so a
//! million records never sit in memory at once.
//!
//! `text`, `content` and `headers` carry the response sample of the requests that were
//! sampled (the first few of each name and status), and are empty for the others.

use std::io::{self, Write};

use serde_json::{Map, Value};

use super::{ReportError, xml_escape};
use crate::request_log::RequestRecord;
use crate::stats::ResponseSample;

/// The CSV header, exactly as LoadDensity writes it.
pub const CSV_HEADER: [&str; 8] = [
    "outcome",
    "Method",
    "test_url",
    "name",
    "status_code",
    "response_time_ms",
    "response_length",
    "error",
];

/// How many records of each kind a report holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordCounts {
    /// Successful requests.
    pub successes: u64,
    /// Failed requests.
    pub failures: u64,
}

fn log_error(error: io::Error) -> ReportError {
    ReportError::io("<request log>", error)
}

/// Writes every record as a CSV row, after the header.
pub fn write_csv(
    records: impl Iterator<Item = io::Result<RequestRecord>>,
    output: impl Write,
    file: &str,
) -> Result<RecordCounts, ReportError> {
    let to_error = |e: csv::Error| match e.into_kind() {
        csv::ErrorKind::Io(io) => ReportError::io(file, io),
        other => ReportError::io(file, io::Error::other(format!("{other:?}"))),
    };
    let mut writer = csv::Writer::from_writer(output);
    writer.write_record(CSV_HEADER).map_err(to_error)?;
    let mut counts = RecordCounts::default();
    let mut number = ryu::Buffer::new();
    let mut integer = itoa::Buffer::new();
    let mut status = itoa::Buffer::new();
    for record in records {
        let record = record.map_err(log_error)?;
        let outcome = if record.is_success() {
            counts.successes += 1;
            "success"
        } else {
            counts.failures += 1;
            "failure"
        };
        writer
            .write_record([
                outcome,
                &record.request_type,
                &record.url,
                &record.name,
                record.status.map_or("", |s| status.format(s)),
                number.format(record.response_time_ms()),
                integer.format(record.response_length),
                record.error.as_deref().unwrap_or(""),
            ])
            .map_err(to_error)?;
    }
    writer.flush().map_err(|e| ReportError::io(file, e))?;
    Ok(counts)
}

/// LoadDensity's string values of one record: (key, value) in its order.
fn fields(record: &RequestRecord, samples: &[ResponseSample]) -> Vec<(&'static str, String)> {
    let status = record
        .status
        .map_or_else(|| "None".to_string(), |s| s.to_string());
    let mut fields = vec![
        ("Method", record.request_type.to_string()),
        ("test_url", record.url.clone()),
        ("name", record.name.to_string()),
        ("status_code", status),
    ];
    match &record.error {
        None => {
            let sample = record.sample.and_then(|i| samples.get(i as usize));
            let (text, headers) = match sample {
                Some(sample) => {
                    let headers: Map<String, Value> = sample
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect();
                    (sample.body.clone(), Value::Object(headers).to_string())
                }
                None => (String::new(), String::new()),
            };
            fields.push(("text", text.clone()));
            fields.push(("content", text));
            fields.push(("headers", headers));
        }
        Some(error) => fields.push(("error", error.clone())),
    }
    fields
}

/// One JSON object of string values.
fn object(fields: Vec<(&'static str, String)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::String(v)))
            .collect(),
    )
}

/// Streams `{"Success_Test1": {...}, ...}` and `{"Failure_Test1": {...}, ...}`.
pub fn write_json(
    records: impl Iterator<Item = io::Result<RequestRecord>>,
    samples: &[ResponseSample],
    mut success: impl Write,
    mut failure: impl Write,
) -> Result<RecordCounts, ReportError> {
    let mut counts = RecordCounts::default();
    let io = |e: io::Error| ReportError::io("<json report>", e);
    success.write_all(b"{").map_err(io)?;
    failure.write_all(b"{").map_err(io)?;
    for record in records {
        let record = record.map_err(log_error)?;
        let (out, key, n) = if record.is_success() {
            counts.successes += 1;
            (
                &mut success as &mut dyn Write,
                "Success_Test",
                counts.successes,
            )
        } else {
            counts.failures += 1;
            (
                &mut failure as &mut dyn Write,
                "Failure_Test",
                counts.failures,
            )
        };
        let separator = if n == 1 { "\n" } else { ",\n" };
        write!(
            out,
            "{separator}    \"{key}{n}\": {}",
            object(fields(&record, samples))
        )
        .map_err(io)?;
    }
    for (out, n) in [
        (&mut success as &mut dyn Write, counts.successes),
        (&mut failure as &mut dyn Write, counts.failures),
    ] {
        out.write_all(if n == 0 { b"}\n" } else { b"\n}\n" })
            .map_err(io)?;
        out.flush().map_err(io)?;
    }
    Ok(counts)
}

/// The two JSON documents as values (`LD_generate_json`): (success, failure).
pub fn render_json(
    records: impl Iterator<Item = io::Result<RequestRecord>>,
    samples: &[ResponseSample],
) -> Result<(Value, Value), ReportError> {
    let mut success = Map::new();
    let mut failure = Map::new();
    for record in records {
        let record = record.map_err(log_error)?;
        let value = object(fields(&record, samples));
        if record.is_success() {
            success.insert(format!("Success_Test{}", success.len() + 1), value);
        } else {
            failure.insert(format!("Failure_Test{}", failure.len() + 1), value);
        }
    }
    Ok((Value::Object(success), Value::Object(failure)))
}

fn write_xml_record(
    out: &mut dyn Write,
    key: &str,
    n: u64,
    fields: Vec<(&'static str, String)>,
) -> io::Result<()> {
    writeln!(out, "\t<{key}{n}>")?;
    for (name, value) in fields {
        writeln!(out, "\t\t<{name}>{}</{name}>", xml_escape(&value))?;
    }
    writeln!(out, "\t</{key}{n}>")
}

/// Streams the same records under a root `<xml_data>`.
pub fn write_xml(
    records: impl Iterator<Item = io::Result<RequestRecord>>,
    samples: &[ResponseSample],
    mut success: impl Write,
    mut failure: impl Write,
) -> Result<RecordCounts, ReportError> {
    let io = |e: io::Error| ReportError::io("<xml report>", e);
    for out in [&mut success as &mut dyn Write, &mut failure] {
        out.write_all(b"<?xml version=\"1.0\" ?>\n<xml_data>\n")
            .map_err(io)?;
    }
    let mut counts = RecordCounts::default();
    for record in records {
        let record = record.map_err(log_error)?;
        let fields = fields(&record, samples);
        let written = if record.is_success() {
            counts.successes += 1;
            write_xml_record(&mut success, "Success_Test", counts.successes, fields)
        } else {
            counts.failures += 1;
            write_xml_record(&mut failure, "Failure_Test", counts.failures, fields)
        };
        written.map_err(io)?;
    }
    for out in [&mut success as &mut dyn Write, &mut failure] {
        out.write_all(b"</xml_data>\n").map_err(io)?;
        out.flush().map_err(io)?;
    }
    Ok(counts)
}

/// The two XML documents as text (`LD_generate_xml`): (success, failure).
pub fn render_xml(
    records: impl Iterator<Item = io::Result<RequestRecord>>,
    samples: &[ResponseSample],
) -> Result<(String, String), ReportError> {
    let mut success = Vec::new();
    let mut failure = Vec::new();
    write_xml(records, samples, &mut success, &mut failure)?;
    Ok((
        String::from_utf8_lossy(&success).into_owned(),
        String::from_utf8_lossy(&failure).into_owned(),
    ))
}
