//! One request as a Datadog span, in the agent's v0.4 trace format (msgpack), and the
//! payload that carries many of them, each its own trace of one span.
//!
//! The span is the one LoadDensity's ddtrace listener makes: name
//! `"{request_type}.{name}"`, resource the request's name, type `http`, start and
//! duration the request's own; meta `request.type`, `request.name`, `env` (when set)
//! and, on failure, `error.type` and `error.msg` with `error = 1`. ddtrace stores an
//! integer tag as a metric, so `response.length` is in `metrics`, as it is there,
//! beside `_sampling_priority_v1 = 1` (keep), which ddtrace sets on every root span.

use rmp::encode::{write_f64, write_map_len, write_sint, write_str, write_uint};

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
    pub(crate) service: &'a str,
    pub(crate) env: Option<&'a str>,
    pub(crate) start_ns: i64,
    pub(crate) duration_ns: i64,
    pub(crate) response_length: u64,
    /// `(error.type, error.msg)` on failure.
    pub(crate) error: Option<(&'a str, &'a str)>,
}

/// msgpack `array 32` marker: a payload's header is written once its count is known.
const ARRAY32: u8 = 0xdd;
/// Bytes of a payload's header.
const HEADER: usize = 5;
/// msgpack fixarray of one element: a trace holding one span.
const ONE_SPAN_TRACE: u8 = 0x91;

/// A v0.4 payload being filled: `[[span], [span], ...]`.
#[derive(Debug)]
pub(crate) struct Payload {
    body: Vec<u8>,
    traces: usize,
}

impl Payload {
    /// An empty payload with room for about `spans` spans.
    pub(crate) fn with_capacity(spans: usize) -> Self {
        let mut body = Vec::with_capacity(HEADER + spans.min(1 << 16) * 320);
        body.extend_from_slice(&[ARRAY32, 0, 0, 0, 0]);
        Self { body, traces: 0 }
    }

    /// Traces (= spans) in the payload.
    pub(crate) fn traces(&self) -> usize {
        self.traces
    }

    /// Appends one span as a trace of its own: a map of the span's fields, as the
    /// agent's v0.4 intake reads it. Written with rmp's encoding functions (not serde:
    /// a third of the cost per span), with the smallest integer encodings, as
    /// rmp-serde writes them.
    pub(crate) fn push(&mut self, fields: &SpanFields<'_>) {
        let body = &mut self.body;
        body.push(ONE_SPAN_TRACE);
        // Writing to a Vec cannot fail.
        let _ = write_map_len(body, 12);
        put_uint(body, "trace_id", fields.trace_id);
        put_uint(body, "span_id", fields.span_id);
        put_uint(body, "parent_id", 0);
        put_str(body, "name", fields.name);
        put_str(body, "resource", fields.resource);
        put_str(body, "service", fields.service);
        put_str(body, "type", "http");
        put_sint(body, "start", fields.start_ns);
        put_sint(body, "duration", fields.duration_ns);
        put_sint(body, "error", i64::from(fields.error.is_some()));
        let meta_len = 2 + u32::from(fields.env.is_some()) + 2 * u32::from(fields.error.is_some());
        let _ = write_str(body, "meta");
        let _ = write_map_len(body, meta_len);
        put_str(body, "request.type", fields.request_type);
        put_str(body, "request.name", fields.resource);
        if let Some(env) = fields.env {
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
        self.traces += 1;
    }

    /// The finished body, its header holding the trace count.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let count = u32::try_from(self.traces).unwrap_or(u32::MAX).to_be_bytes();
        self.body[1..HEADER].copy_from_slice(&count);
        self.body
    }
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

    fn fields(error: Option<(&'static str, &'static str)>) -> SpanFields<'static> {
        SpanFields {
            trace_id: u64::MAX - 1,
            span_id: 7,
            name: "GET.home",
            request_type: "GET",
            resource: "home",
            service: "svc",
            env: Some("staging"),
            start_ns: 1_700_000_000_123_456_789,
            duration_ns: 2_500_000,
            response_length: 42,
            error,
        }
    }

    #[test]
    fn payload_decodes_as_a_list_of_one_span_traces() {
        let mut payload = Payload::with_capacity(2);
        payload.push(&fields(None));
        payload.push(&fields(Some(("HTTPError", "HTTP 500"))));
        assert_eq!(payload.traces(), 2);
        let body = payload.finish();
        let decoded: Value = rmp_serde::from_slice(&body).expect("msgpack");
        let traces = decoded.as_array().expect("array");
        assert_eq!(traces.len(), 2);
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
        runner
            .run(&proptest::collection::vec(span, 1..5), |spans| {
                let mut payload = Payload::with_capacity(spans.len());
                for ((name, resource, service, env), (trace, id, start, duration, length), error) in
                    &spans
                {
                    payload.push(&SpanFields {
                        trace_id: *trace,
                        span_id: *id,
                        name,
                        request_type: "GET",
                        resource,
                        service,
                        env: env.as_deref(),
                        start_ns: *start,
                        duration_ns: *duration,
                        response_length: *length,
                        error: error.as_ref().map(|(t, m)| (t.as_str(), m.as_str())),
                    });
                }
                prop_assert_eq!(payload.traces(), spans.len());
                let decoded: Value = rmp_serde::from_slice(&payload.finish()).expect("msgpack");
                let traces = decoded.as_array().expect("a list of traces");
                prop_assert_eq!(traces.len(), spans.len());
                for (
                    trace,
                    ((name, resource, service, env), (trace_id, id, start, duration, _), error),
                ) in traces.iter().zip(&spans)
                {
                    let span = &trace[0];
                    prop_assert_eq!(trace.as_array().map(Vec::len), Some(1));
                    prop_assert_eq!(span["trace_id"].as_u64(), Some(*trace_id));
                    prop_assert_eq!(span["span_id"].as_u64(), Some(*id));
                    prop_assert_eq!(span["name"].as_str(), Some(name.as_str()));
                    prop_assert_eq!(span["resource"].as_str(), Some(resource.as_str()));
                    prop_assert_eq!(span["service"].as_str(), Some(service.as_str()));
                    prop_assert_eq!(span["start"].as_i64(), Some(*start));
                    prop_assert_eq!(span["duration"].as_i64(), Some(*duration));
                    prop_assert_eq!(span["meta"]["env"].as_str(), env.as_deref());
                    prop_assert_eq!(span["error"].as_i64(), Some(i64::from(error.is_some())));
                    if let Some((kind, message)) = error {
                        prop_assert_eq!(span["meta"]["error.type"].as_str(), Some(kind.as_str()));
                        prop_assert_eq!(span["meta"]["error.msg"].as_str(), Some(message.as_str()));
                    }
                }
                Ok(())
            })
            .expect("every span round-trips");
    }
}
