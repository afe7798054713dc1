//! One request as a Datadog span, in one of the agent's trace formats (msgpack), and
//! the payload that carries many of them, each its own trace of one span.
//!
//! The span is the one LoadDensity's ddtrace listener makes: name
//! `"{request_type}.{name}"`, resource the request's name, type `http`, start and
//! duration the request's own; meta `request.type`, `request.name`, `env` (when set)
//! and, on failure, `error.type` and `error.msg` with `error = 1`. ddtrace stores an
//! integer tag as a metric, so `response.length` is in `metrics`, as it is there,
//! beside `_sampling_priority_v1 = 1` (keep), which ddtrace sets on every root span.
//!
//! Two formats, as ddtrace's `DD_TRACE_API_VERSION` chooses ([`ApiVersion`]):
//! - v0.4: `[[span], ...]`, each span a map with its keys and strings written out
//!   (about 300 bytes a span here).
//! - v0.5, the default: `[strings, [[span], ...]]`, each span an array of 12 fields
//!   whose strings are indexes into the payload's string table, so that a span is
//!   about 70 bytes: a quarter of the bytes to encode, send and decode.

use std::collections::HashMap;

use rmp::encode::{write_f64, write_map_len, write_sint, write_str, write_uint};

/// The agent intake's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `PUT /v0.4/traces`: spans as maps.
    V04,
    /// `PUT /v0.5/traces`: spans as arrays over a string table.
    V05,
}

impl ApiVersion {
    /// The environment variable ddtrace reads the format from.
    pub const ENV: &'static str = "DD_TRACE_API_VERSION";

    /// The intake's path.
    pub fn path(self) -> &'static str {
        match self {
            Self::V04 => "/v0.4/traces",
            Self::V05 => "/v0.5/traces",
        }
    }

    /// The name, as `DD_TRACE_API_VERSION` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::V04 => "v0.4",
            Self::V05 => "v0.5",
        }
    }

    /// `v0.4` or `v0.5`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "v0.4" => Some(Self::V04),
            "v0.5" => Some(Self::V05),
            _ => None,
        }
    }
}

/// What a span says beyond its endpoint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpanFields<'a> {
    pub(crate) trace_id: u64,
    pub(crate) span_id: u64,
    /// `"{request_type}.{name}"`.
    pub(crate) name: &'a str,
    pub(crate) request_type: &'a str,
    /// The request's name: the resource and `request.name`.
    pub(crate) resource: &'a str,
    pub(crate) start_ns: i64,
    pub(crate) duration_ns: i64,
    pub(crate) response_length: u64,
    /// `(error.type, error.msg)` on failure.
    pub(crate) error: Option<(&'a str, &'a str)>,
}

/// msgpack `array 32` marker: a count written once it is known.
const ARRAY32: u8 = 0xdd;
/// Bytes of a v0.4 payload's header.
const HEADER: usize = 5;
/// msgpack fixarray of one element: a trace holding one span.
const ONE_SPAN_TRACE: u8 = 0x91;
/// msgpack fixarray of 12 elements: a v0.5 span.
const V05_SPAN: u8 = 0x9c;
/// msgpack fixarray of 2 elements: a v0.5 payload (strings, traces).
const V05_PAYLOAD: u8 = 0x92;

/// The strings every v0.5 payload starts its table with, at these indexes (ddtrace
/// puts the empty string first too).
const FIXED_STRINGS: [&str; 9] = [
    "",
    "http",
    "request.type",
    "request.name",
    "env",
    "error.type",
    "error.msg",
    "response.length",
    "_sampling_priority_v1",
];
const S_HTTP: u64 = 1;
const S_REQUEST_TYPE: u64 = 2;
const S_REQUEST_NAME: u64 = 3;
const S_ENV: u64 = 4;
const S_ERROR_TYPE: u64 = 5;
const S_ERROR_MSG: u64 = 6;
const S_RESPONSE_LENGTH: u64 = 7;
const S_SAMPLING_PRIORITY: u64 = 8;

/// A v0.5 payload's string table: the strings, msgpack-encoded end to end, and their
/// indexes.
#[derive(Debug, Default)]
struct StringTable {
    encoded: Vec<u8>,
    index: HashMap<Box<str>, u32>,
}

impl StringTable {
    fn intern(&mut self, text: &str) -> u64 {
        if let Some(&at) = self.index.get(text) {
            return u64::from(at);
        }
        let at = u32::try_from(self.index.len()).unwrap_or(u32::MAX);
        let _ = write_str(&mut self.encoded, text);
        self.index.insert(text.into(), at);
        u64::from(at)
    }
}

/// A payload being filled.
#[derive(Debug)]
pub(crate) struct Payload {
    /// v0.4: the whole body, its header to be filled; v0.5: the traces only.
    body: Vec<u8>,
    traces: usize,
    /// What the format keeps besides the body.
    format: Format,
}

/// What a payload keeps besides its body, per format.
#[derive(Debug)]
enum Format {
    /// v0.4 writes every string in full: the service and env as written.
    V04 {
        service: Box<str>,
        env: Option<Box<str>>,
    },
    /// v0.5 writes strings as indexes into the payload's table.
    V05 {
        strings: StringTable,
        /// The indexes of the service and env.
        service: u64,
        env: Option<u64>,
        /// Each endpoint's (name, resource, request type) indexes, by endpoint slot.
        endpoints: Vec<Option<[u64; 3]>>,
    },
}

impl Payload {
    /// An empty payload in `version`'s format with room for about `spans` spans, of
    /// `service` and, when set, `env`.
    pub(crate) fn new(version: ApiVersion, spans: usize, service: &str, env: Option<&str>) -> Self {
        let per_span = match version {
            ApiVersion::V04 => 320,
            ApiVersion::V05 => 80,
        };
        let mut body = Vec::with_capacity(HEADER + spans.min(1 << 16) * per_span);
        let format = match version {
            ApiVersion::V04 => {
                body.extend_from_slice(&[ARRAY32, 0, 0, 0, 0]);
                Format::V04 {
                    service: service.into(),
                    env: env.map(Into::into),
                }
            }
            ApiVersion::V05 => {
                let mut strings = StringTable::default();
                for text in FIXED_STRINGS {
                    strings.intern(text);
                }
                Format::V05 {
                    service: strings.intern(service),
                    env: env.map(|env| strings.intern(env)),
                    strings,
                    endpoints: Vec::new(),
                }
            }
        };
        Self {
            body,
            traces: 0,
            format,
        }
    }

    /// Traces (= spans) in the payload.
    pub(crate) fn traces(&self) -> usize {
        self.traces
    }

    /// Appends one span as a trace of its own. `endpoint` is a dense slot of the span's
    /// endpoint: spans of one slot share name, resource and request type. Written with
    /// rmp's encoding functions (not serde: a third of the cost per span), with the
    /// smallest integer encodings, as rmp-serde writes them.
    pub(crate) fn push(&mut self, endpoint: usize, fields: &SpanFields<'_>) {
        match &mut self.format {
            Format::V04 { service, env } => {
                push_v04(&mut self.body, service, env.as_deref(), fields)
            }
            Format::V05 {
                strings,
                service,
                env,
                endpoints,
            } => {
                if endpoints.len() <= endpoint {
                    endpoints.resize(endpoint + 1, None);
                }
                let known = *endpoints[endpoint].get_or_insert_with(|| {
                    [
                        strings.intern(fields.name),
                        strings.intern(fields.resource),
                        strings.intern(fields.request_type),
                    ]
                });
                let error = fields
                    .error
                    .map(|(kind, message)| (strings.intern(kind), strings.intern(message)));
                push_v05(&mut self.body, (*service, *env), known, error, fields);
            }
        }
        self.traces += 1;
    }

    /// The finished body.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let traces = u32::try_from(self.traces).unwrap_or(u32::MAX).to_be_bytes();
        match self.format {
            Format::V04 { .. } => {
                self.body[1..HEADER].copy_from_slice(&traces);
                self.body
            }
            Format::V05 { strings, .. } => {
                let count = u32::try_from(strings.index.len())
                    .unwrap_or(u32::MAX)
                    .to_be_bytes();
                let mut out =
                    Vec::with_capacity(1 + 2 * HEADER + strings.encoded.len() + self.body.len());
                out.push(V05_PAYLOAD);
                out.push(ARRAY32);
                out.extend_from_slice(&count);
                out.extend_from_slice(&strings.encoded);
                out.push(ARRAY32);
                out.extend_from_slice(&traces);
                out.extend_from_slice(&self.body);
                out
            }
        }
    }
}

/// Writes a v0.4 span: a map of the span's fields, strings in full.
fn push_v04(body: &mut Vec<u8>, service: &str, env: Option<&str>, fields: &SpanFields<'_>) {
    body.push(ONE_SPAN_TRACE);
    // Writing to a Vec cannot fail.
    let _ = write_map_len(body, 12);
    put_uint(body, "trace_id", fields.trace_id);
    put_uint(body, "span_id", fields.span_id);
    put_uint(body, "parent_id", 0);
    put_str(body, "name", fields.name);
    put_str(body, "resource", fields.resource);
    put_str(body, "service", service);
    put_str(body, "type", "http");
    put_sint(body, "start", fields.start_ns);
    put_sint(body, "duration", fields.duration_ns);
    put_sint(body, "error", i64::from(fields.error.is_some()));
    let meta_len = 2 + u32::from(env.is_some()) + 2 * u32::from(fields.error.is_some());
    let _ = write_str(body, "meta");
    let _ = write_map_len(body, meta_len);
    put_str(body, "request.type", fields.request_type);
    put_str(body, "request.name", fields.resource);
    if let Some(env) = env {
        put_str(body, "env", env);
    }
    if let Some((kind, message)) = fields.error {
        put_str(body, "error.type", kind);
        put_str(body, "error.msg", message);
    }
    let _ = write_str(body, "metrics");
    let _ = write_map_len(body, 2);
    let _ = write_str(body, "response.length");
    let _ = write_f64(body, fields.response_length as f64);
    let _ = write_str(body, "_sampling_priority_v1");
    let _ = write_f64(body, 1.0);
}

/// Writes a v0.5 span: service, name, resource, trace_id, span_id, parent_id, start,
/// duration, error, meta, metrics, type; strings as the indexes given: the service's
/// and env's, the endpoint's (name, resource, request type), the error's (type, message).
fn push_v05(
    body: &mut Vec<u8>,
    (service, env): (u64, Option<u64>),
    [name, resource, request_type]: [u64; 3],
    error: Option<(u64, u64)>,
    fields: &SpanFields<'_>,
) {
    body.extend_from_slice(&[ONE_SPAN_TRACE, V05_SPAN]);
    let _ = write_uint(body, service);
    let _ = write_uint(body, name);
    let _ = write_uint(body, resource);
    let _ = write_uint(body, fields.trace_id);
    let _ = write_uint(body, fields.span_id);
    let _ = write_uint(body, 0);
    let _ = write_sint(body, fields.start_ns);
    let _ = write_sint(body, fields.duration_ns);
    let _ = write_sint(body, i64::from(error.is_some()));
    let meta_len = 2 + u32::from(env.is_some()) + 2 * u32::from(error.is_some());
    let _ = write_map_len(body, meta_len);
    put_indexes(body, S_REQUEST_TYPE, request_type);
    put_indexes(body, S_REQUEST_NAME, resource);
    if let Some(env) = env {
        put_indexes(body, S_ENV, env);
    }
    if let Some((kind, message)) = error {
        put_indexes(body, S_ERROR_TYPE, kind);
        put_indexes(body, S_ERROR_MSG, message);
    }
    let _ = write_map_len(body, 2);
    let _ = write_uint(body, S_RESPONSE_LENGTH);
    let _ = write_f64(body, fields.response_length as f64);
    let _ = write_uint(body, S_SAMPLING_PRIORITY);
    let _ = write_f64(body, 1.0);
    let _ = write_uint(body, S_HTTP);
}

/// Writes a map entry of two string indexes.
fn put_indexes(body: &mut Vec<u8>, key: u64, value: u64) {
    let _ = write_uint(body, key);
    let _ = write_uint(body, value);
}

/// Writes `key` and the string `value` of a map entry.
fn put_str(body: &mut Vec<u8>, key: &str, value: &str) {
    let _ = write_str(body, key);
    let _ = write_str(body, value);
}

/// Writes `key` and the unsigned `value` of a map entry, in its smallest encoding.
fn put_uint(body: &mut Vec<u8>, key: &str, value: u64) {
    let _ = write_str(body, key);
    let _ = write_uint(body, value);
}

/// Writes `key` and the signed `value` of a map entry, in its smallest encoding.
fn put_sint(body: &mut Vec<u8>, key: &str, value: i64) {
    let _ = write_str(body, key);
    let _ = write_sint(body, value);
}

/// `error.type` for a failed request, after the exception class Locust's HTTP client
/// raises: `HTTPError` for a status of 400 or more, `CatchResponseError` for a response
/// a check failed, `Timeout` or `ConnectionError` when no response arrived.
pub(crate) fn error_type(status: Option<u16>, message: &str) -> &'static str {
    match status {
        Some(code) if code >= 400 => "HTTPError",
        Some(_) => "CatchResponseError",
        None if message.to_ascii_lowercase().contains("timed out")
            || message.to_ascii_lowercase().contains("timeout") =>
        {
            "Timeout"
        }
        None => "ConnectionError",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::collections::BTreeMap;

    fn fields(error: Option<(&'static str, &'static str)>) -> SpanFields<'static> {
        SpanFields {
            trace_id: u64::MAX - 1,
            span_id: 7,
            name: "GET.home",
            request_type: "GET",
            resource: "home",
            start_ns: 1_700_000_000_123_456_789,
            duration_ns: 2_500_000,
            response_length: 42,
            error,
        }
    }

    /// A payload's traces as v0.4's JSON shape, whichever the format: a v0.5 payload's
    /// spans are read by the spec's field order and their indexes looked up in its
    /// string table (which must start with the empty string).
    fn decode(version: ApiVersion, body: &[u8]) -> Value {
        if version == ApiVersion::V04 {
            return rmp_serde::from_slice(body).expect("msgpack");
        }
        type Span = (
            u32,
            u32,
            u32,
            u64,
            u64,
            u64,
            i64,
            i64,
            i32,
            BTreeMap<u32, u32>,
            BTreeMap<u32, f64>,
            u32,
        );
        let (strings, traces): (Vec<String>, Vec<Vec<Span>>) =
            rmp_serde::from_slice(body).expect("a v0.5 payload");
        assert_eq!(strings[0], "", "the table starts with the empty string");
        let text = |index: u32| strings[index as usize].clone();
        let span = |f: &Span| {
            let meta: BTreeMap<String, String> =
                f.9.iter().map(|(k, v)| (text(*k), text(*v))).collect();
            let metrics: BTreeMap<String, f64> = f.10.iter().map(|(k, v)| (text(*k), *v)).collect();
            json!({
                "service": text(f.0), "name": text(f.1), "resource": text(f.2),
                "trace_id": f.3, "span_id": f.4, "parent_id": f.5,
                "start": f.6, "duration": f.7, "error": f.8,
                "meta": meta, "metrics": metrics, "type": text(f.11),
            })
        };
        traces
            .iter()
            .map(|trace| Value::Array(trace.iter().map(span).collect()))
            .collect()
    }

    #[test]
    fn payload_decodes_as_a_list_of_one_span_traces() {
        for version in [ApiVersion::V04, ApiVersion::V05] {
            payload_decodes_in(version);
        }
    }

    fn payload_decodes_in(version: ApiVersion) {
        let mut payload = Payload::new(version, 2, "svc", Some("staging"));
        payload.push(0, &fields(None));
        payload.push(0, &fields(Some(("HTTPError", "HTTP 500"))));
        assert_eq!(payload.traces(), 2);
        let body = payload.finish();
        let decoded = decode(version, &body);
        let traces = decoded.as_array().expect("array");
        assert_eq!(traces.len(), 2, "{version:?}");
        assert_eq!(
            traces[0],
            json!([{
                "trace_id": u64::MAX - 1, "span_id": 7, "parent_id": 0,
                "name": "GET.home", "resource": "home", "service": "svc", "type": "http",
                "start": 1_700_000_000_123_456_789i64, "duration": 2_500_000, "error": 0,
                "meta": {"request.type": "GET", "request.name": "home", "env": "staging"},
                "metrics": {"response.length": 42.0, "_sampling_priority_v1": 1.0},
            }])
        );
        assert_eq!(traces[1][0]["error"], 1);
        assert_eq!(traces[1][0]["meta"]["error.type"], "HTTPError");
        assert_eq!(traces[1][0]["meta"]["error.msg"], "HTTP 500");
    }

    #[test]
    fn a_v05_span_is_a_quarter_of_a_v04_span() {
        let size = |version| {
            let mut payload = Payload::new(version, 100, "loaddensity", None);
            for _ in 0..100 {
                payload.push(0, &fields(None));
            }
            payload.finish().len()
        };
        let (v04, v05) = (size(ApiVersion::V04), size(ApiVersion::V05));
        assert!(v05 * 3 < v04, "v0.5 {v05} bytes against v0.4 {v04}");
    }

    #[test]
    fn api_versions_parse_as_ddtrace_spells_them() {
        assert_eq!(ApiVersion::parse("v0.4"), Some(ApiVersion::V04));
        assert_eq!(ApiVersion::parse(" v0.5 "), Some(ApiVersion::V05));
        assert_eq!(ApiVersion::parse("v0.7"), None);
        assert_eq!(ApiVersion::V05.path(), "/v0.5/traces");
    }

    #[test]
    fn error_types() {
        assert_eq!(error_type(Some(404), "HTTP 404 Not Found"), "HTTPError");
        assert_eq!(error_type(Some(200), "body lacks x"), "CatchResponseError");
        assert_eq!(error_type(None, "request timed out"), "Timeout");
        assert_eq!(error_type(None, "connection refused"), "ConnectionError");
    }

    /// Any text in names, service, env and errors, any ids, times and sizes: the
    /// payload decodes, with one trace of one span per push, every field as given.
    #[test]
    fn any_span_round_trips_through_msgpack() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
        // A fixed seed and a bounded count, as the other property tests.
        let mut runner = TestRunner::new_with_rng(
            Config {
                cases: 300,
                failure_persistence: None,
                ..Config::default()
            },
            TestRng::from_seed(RngAlgorithm::ChaCha, &[25; 32]),
        );
        let text = || proptest::string::string_regex("(?s).{0,40}").expect("regex");
        let span = (
            (text(), text(), text(), proptest::option::of(text())),
            (
                any::<u64>(),
                any::<u64>(),
                any::<i64>(),
                any::<i64>(),
                any::<u64>(),
            ),
            proptest::option::of((text(), text())),
        );
        let versions = proptest::sample::select(vec![ApiVersion::V04, ApiVersion::V05]);
        runner
            .run(
                &(versions, proptest::collection::vec(span, 1..5)),
                |(version, spans)| {
                    // A service and env per payload: the first span's.
                    let ((_, _, service, env), _, _) = &spans[0];
                    let mut payload = Payload::new(version, spans.len(), service, env.as_deref());
                    for (
                        slot,
                        ((name, resource, _, _), (trace, id, start, duration, length), error),
                    ) in spans.iter().enumerate()
                    {
                        payload.push(
                            slot,
                            &SpanFields {
                                trace_id: *trace,
                                span_id: *id,
                                name,
                                request_type: "GET",
                                resource,
                                start_ns: *start,
                                duration_ns: *duration,
                                response_length: *length,
                                error: error.as_ref().map(|(t, m)| (t.as_str(), m.as_str())),
                            },
                        );
                    }
                    prop_assert_eq!(payload.traces(), spans.len());
                    let decoded = decode(version, &payload.finish());
                    let traces = decoded.as_array().expect("a list of traces");
                    prop_assert_eq!(traces.len(), spans.len());
                    for (
                        trace,
                        ((name, resource, _, _), (trace_id, id, start, duration, _), error),
                    ) in traces.iter().zip(&spans)
                    {
                        let span = &trace[0];
                        prop_assert_eq!(trace.as_array().map(Vec::len), Some(1));
                        prop_assert_eq!(span["trace_id"].as_u64(), Some(*trace_id));
                        prop_assert_eq!(span["span_id"].as_u64(), Some(*id));
                        prop_assert_eq!(span["name"].as_str(), Some(name.as_str()));
                        prop_assert_eq!(span["resource"].as_str(), Some(resource.as_str()));
                        prop_assert_eq!(
                            span["meta"]["request.name"].as_str(),
                            Some(resource.as_str())
                        );
                        prop_assert_eq!(span["service"].as_str(), Some(service.as_str()));
                        prop_assert_eq!(span["start"].as_i64(), Some(*start));
                        prop_assert_eq!(span["duration"].as_i64(), Some(*duration));
                        prop_assert_eq!(span["meta"]["env"].as_str(), env.as_deref());
                        prop_assert_eq!(span["error"].as_i64(), Some(i64::from(error.is_some())));
                        if let Some((kind, message)) = error {
                            prop_assert_eq!(
                                span["meta"]["error.type"].as_str(),
                                Some(kind.as_str())
                            );
                            prop_assert_eq!(
                                span["meta"]["error.msg"].as_str(),
                                Some(message.as_str())
                            );
                        }
                    }
                    Ok(())
                },
            )
            .expect("every span round-trips");
    }
}
