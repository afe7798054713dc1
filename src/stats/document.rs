//! The result document: the summary (LoadDensity's schema) plus what makes it outlive
//! the run and merge with others: the `run` block (when, what, how much load, SLA
//! results) and the `histograms` block (every latency histogram in HdrHistogram's
//! V2 deflate format, base64, values in µs).
//!
//! A document read back with [`ResultDocument::read`] reproduces every printed
//! percentile: [`ResultDocument::overall_histogram`] and
//! [`ResultDocument::name_histogram`] decode the exact histograms the numbers came from.
//! Counts, histograms (keyed by name) and errors add up across documents; timeline
//! entries are aligned through `run.started_at` (entry `t` is seconds after it).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::summary::Summary;

/// The result document is the summary with its `run` and `histograms` blocks.
pub type ResultDocument = Summary;

/// This build's version, as written in `run.tool_version`.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// When and how the recorded requests were produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Start of the first recorded test (UTC, RFC 3339 with milliseconds).
    #[serde(default)]
    pub started_at: Option<String>,
    /// End of the last recorded test (UTC, RFC 3339 with milliseconds).
    #[serde(default)]
    pub ended_at: Option<String>,
    /// The loaddensity version that ran the tests.
    #[serde(default)]
    pub tool_version: String,
    /// The script, as given on the command line (file, directory or `-`).
    #[serde(default)]
    pub script: Option<String>,
    /// One entry per `LD_start_test` recorded, in order.
    #[serde(default)]
    pub load: Vec<LoadDescription>,
    /// The SLA gates' results, when gates ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<Vec<SlaGateResult>>,
    /// The execution segment this instance ran (`I/N`), when running a segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<Value>,
    /// The instances whose results were merged into this document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<Value>,
}

impl Default for RunInfo {
    fn default() -> Self {
        Self {
            started_at: None,
            ended_at: None,
            tool_version: TOOL_VERSION.to_string(),
            script: None,
            load: Vec::new(),
            sla: None,
            segment: None,
            instances: None,
        }
    }
}

/// The load of one test (`LD_start_test`), as the script asked for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadDescription {
    /// When the test started (UTC, RFC 3339 with milliseconds).
    pub started_at: String,
    /// When it ended.
    pub ended_at: String,
    /// Seconds it ran.
    pub duration_s: f64,
    /// `user_count` (a segment's share of it when running one).
    pub users: u32,
    /// `spawn_rate`, users per second (a segment's share).
    pub spawn_rate: f64,
    /// `test_time`, seconds (`None`: until interrupted or the shape's end).
    #[serde(default)]
    pub test_time: Option<f64>,
    /// `load_shape` and `shape_config`, when a shape drove the users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Value>,
    /// `arrival_rate` (the open model), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_rate: Option<Value>,
    /// Users actually started.
    #[serde(default)]
    pub users_started: u32,
    /// True when the test was interrupted.
    #[serde(default)]
    pub interrupted: bool,
}

/// One SLA gate's result (`LD_evaluate_sla`, `LD_assert_sla`, `--sla`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaGateResult {
    /// The rule, e.g. `latency_p95(browse)`.
    pub rule: String,
    /// True when it held.
    pub passed: bool,
    /// The measured value (`None` when the name had no requests).
    #[serde(default)]
    pub actual: Option<f64>,
    /// `lt`, `lte`, `gt` or `gte`.
    pub op: String,
    /// The limit.
    pub value: f64,
    /// Why, in one line.
    pub reason: String,
}

/// One sampled response: the first 3 of each (name, status or error) keep their
/// headers and the first 4 KiB of their body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseSample {
    /// Request type, e.g. `GET`.
    pub request_type: String,
    /// Request name.
    pub name: String,
    /// The URL requested.
    pub url: String,
    /// HTTP status, when a response arrived.
    #[serde(default)]
    pub status_code: Option<u16>,
    /// The failure text, for a failed request.
    #[serde(default)]
    pub error: Option<String>,
    /// When the request started (UTC, RFC 3339 with milliseconds).
    pub start_time: String,
    /// Response time, ms.
    pub response_time_ms: f64,
    /// Full response body length, bytes.
    pub response_length: u64,
    /// Response headers in order (credential-bearing values such as `set-cookie` are
    /// replaced by `<redacted>`).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The first 4 KiB of the body, as text (invalid UTF-8 replaced).
    #[serde(default)]
    pub body: String,
    /// True when the body was longer than what is kept.
    #[serde(default)]
    pub body_truncated: bool,
}

/// The latency histograms: HdrHistogram V2 deflate, base64, values in µs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    /// All requests.
    #[serde(default)]
    pub overall: String,
    /// Per request name (request types sharing a name merged, as in `per_name`).
    #[serde(default)]
    pub per_name: BTreeMap<String, String>,
}

/// A result document that cannot be read or used.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// The file could not be read or written.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The document could not be written (the previous file, if any, is intact).
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    /// A field is missing or of the wrong type.
    #[error("{file}: field `{field}`: {message}")]
    Field {
        /// The file (`<document>` when not read from a file).
        file: String,
        /// The field's path, e.g. `totals.requests`.
        field: String,
        /// What was wrong.
        message: String,
    },
}

/// Encodes a histogram: V2 deflate, base64.
pub fn encode_histogram(histogram: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Serializing into a Vec cannot fail for a histogram with in-range counts.
    let _ = V2DeflateSerializer::new().serialize(histogram, &mut bytes);
    BASE64.encode(bytes)
}

/// Decodes a histogram written by [`encode_histogram`] (or any HdrHistogram library's
/// V2 / V2 deflate encoding, base64). `field` names it in the error.
pub fn decode_histogram(text: &str, field: &str) -> Result<Histogram<u64>, ResultError> {
    let error = |message: String| ResultError::Field {
        file: "<document>".into(),
        field: field.to_string(),
        message,
    };
    if text.is_empty() {
        return Ok(super::recorder::new_histogram());
    }
    let bytes = BASE64
        .decode(text.trim())
        .map_err(|e| error(format!("not base64: {e}")))?;
    let mut histogram: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| error(format!("not an HdrHistogram V2 encoding: {e:?}")))?;
    histogram.auto(true);
    Ok(histogram)
}

/// A time as UTC RFC 3339 with milliseconds, e.g. `2026-01-02T03:04:05.678Z`.
pub fn rfc3339_millis(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

impl Summary {
    /// Reads a result document (`--summary-json`, `LD_generate_summary_report`).
    pub fn read(path: &Path) -> Result<Self, ResultError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ResultError::Io {
            file: file.clone(),
            source,
        })?;
        Self::from_json_text(&text).map_err(|e| e.in_file(&file))
    }

    /// Parses a result document from JSON text.
    pub fn from_json_text(text: &str) -> Result<Self, ResultError> {
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let field = e.path().to_string();
            ResultError::Field {
                file: "<document>".into(),
                field: if field == "." { String::new() } else { field },
                message: e.into_inner().to_string(),
            }
        })
    }

    /// Writes the document as pretty JSON, whole or not at all.
    pub fn write(&self, path: &Path) -> Result<(), ResultError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| ResultError::Field {
            file: path.display().to_string(),
            field: String::new(),
            message: e.to_string(),
        })?;
        crate::output::write_atomically(path, (text + "\n").as_bytes())?;
        Ok(())
    }

    /// The latency histogram of every request (µs).
    pub fn overall_histogram(&self) -> Result<Histogram<u64>, ResultError> {
        decode_histogram(&self.histograms.overall, "histograms.overall")
    }

    /// The latency histogram of one request name (µs); `None` when the document has none.
    pub fn name_histogram(&self, name: &str) -> Option<Result<Histogram<u64>, ResultError>> {
        self.histograms
            .per_name
            .get(name)
            .map(|text| decode_histogram(text, &format!("histograms.per_name.{name}")))
    }

    /// Every per-name histogram, decoded.
    pub fn name_histograms(&self) -> Result<BTreeMap<String, Histogram<u64>>, ResultError> {
        self.histograms
            .per_name
            .iter()
            .map(|(name, text)| {
                decode_histogram(text, &format!("histograms.per_name.{name}"))
                    .map(|h| (name.clone(), h))
            })
            .collect()
    }
}

impl ResultError {
    /// The same error, naming `file`.
    pub fn in_file(self, file: &str) -> Self {
        match self {
            ResultError::Field { field, message, .. } => ResultError::Field {
                file: file.to_string(),
                field,
                message,
            },
            io => io,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::summary::percentile_ms;

    #[test]
    fn histogram_round_trip_is_exact() {
        let mut h = crate::stats::recorder::new_histogram();
        for v in [1u64, 17, 950, 12_345, 1_000_000, 7_654_321] {
            let _ = h.record_n(v, v % 7 + 1);
        }
        let back = decode_histogram(&encode_histogram(&h), "x").expect("decodes");
        assert_eq!(back.len(), h.len());
        for pct in [50.0, 90.0, 95.0, 99.0, 100.0] {
            assert_eq!(percentile_ms(&back, pct), percentile_ms(&h, pct));
        }
        assert_eq!(back.max(), h.max());
    }

    #[test]
    fn errors_name_the_field() {
        let err = Summary::from_json_text(r#"{"totals": {"requests": "x"}}"#)
            .expect_err("bad document")
            .in_file("r.json");
        let text = err.to_string();
        assert!(
            text.contains("r.json") && text.contains("totals.requests"),
            "{text}"
        );
        let err = decode_histogram("!!", "histograms.overall").expect_err("bad");
        assert!(err.to_string().contains("histograms.overall"));
    }
}
