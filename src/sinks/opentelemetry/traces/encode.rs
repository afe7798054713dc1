//! Spans in OTLP's protobuf encoding, written straight into the bytes of an export
//! request (`ExportTraceServiceRequest` of `opentelemetry/proto/collector/trace/v1`).
//!
//! Why by hand: the official exporter takes the SDK's `SpanData` and converts every span
//! into owned protobuf structs (a `String` per attribute key and value, a vector per
//! attribute list, a map per batch) before prost encodes them: about 11,000
//! instructions and twenty allocations a span, most of what the traces exporter cost
//! the load generator (callgrind; `bench/sink_cpu.sh` measures it). What is written here
//! is a fixed, small subset of `trace.proto` (one resource, one scope, spans with
//! string and integer attributes, an `exception` event and a status), with prost's
//! wire-format helpers and no allocation per span once the buffers have grown. The
//! tests decode it with the official definitions (`opentelemetry-proto`).

use bytes::Bytes;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};

/// `SpanKind.SPAN_KIND_CLIENT`.
const KIND_CLIENT: u64 = 3;
/// `Status.StatusCode.STATUS_CODE_ERROR`.
const STATUS_ERROR: u64 = 2;
/// `TraceFlags` sampled, and `SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK` (the parent is not
/// remote: these spans are roots), as the official exporter sets them.
const SPAN_FLAGS: u32 = 0x01 | 0x100;

/// An attribute's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum AttributeValue<'a> {
    /// `AnyValue.string_value`.
    Str(&'a str),
    /// `AnyValue.int_value`.
    Int(i64),
}

/// Bytes of a length-delimited field: key, length, then `len` bytes.
fn delimited_len(field: u32, len: usize) -> usize {
    prost::encoding::key_len(field) + encoded_len_varint(len as u64) + len
}

fn put_delimited(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    encode_key(field, WireType::LengthDelimited, buf);
    encode_varint(bytes.len() as u64, buf);
    buf.extend_from_slice(bytes);
}

/// Bytes of an `AnyValue` holding `value`.
fn any_value_len(value: AttributeValue<'_>) -> usize {
    match value {
        AttributeValue::Str(text) => delimited_len(1, text.len()),
        AttributeValue::Int(number) => 1 + encoded_len_varint(number as u64),
    }
}

/// Writes one `KeyValue` as field `field` of the enclosing message.
fn put_attribute(buf: &mut Vec<u8>, field: u32, key: &str, value: AttributeValue<'_>) {
    let value_len = any_value_len(value);
    let len = delimited_len(1, key.len()) + delimited_len(2, value_len);
    encode_key(field, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
    put_delimited(buf, 1, key.as_bytes());
    encode_key(2, WireType::LengthDelimited, buf);
    encode_varint(value_len as u64, buf);
    match value {
        AttributeValue::Str(text) => put_delimited(buf, 1, text.as_bytes()),
        AttributeValue::Int(number) => {
            encode_key(3, WireType::Varint, buf);
            encode_varint(number as u64, buf);
        }
    }
}

/// What is the same in every span of the exporter: the resource and the scope,
/// already encoded.
#[derive(Debug, Clone)]
pub(super) struct BatchHeader {
    /// `ResourceSpans.resource` (field 1), key and length included.
    resource_field: Vec<u8>,
    /// `ScopeSpans.scope` (field 1), key and length included.
    scope_field: Vec<u8>,
}

impl BatchHeader {
    /// A resource with `resource` string attributes, and the scope `scope_name`
    /// version `scope_version`.
    pub(super) fn new(resource: &[(&str, &str)], scope_name: &str, scope_version: &str) -> Self {
        let mut attributes = Vec::new();
        for (key, value) in resource {
            put_attribute(&mut attributes, 1, key, AttributeValue::Str(value));
        }
        let mut resource_field = Vec::new();
        put_delimited(&mut resource_field, 1, &attributes);
        let mut scope = Vec::new();
        put_delimited(&mut scope, 1, scope_name.as_bytes());
        put_delimited(&mut scope, 2, scope_version.as_bytes());
        let mut scope_field = Vec::new();
        put_delimited(&mut scope_field, 1, &scope);
        Self {
            resource_field,
            scope_field,
        }
    }

    /// The most bytes the request's framing can take in front of the spans: two keys,
    /// two lengths of at most five bytes, the resource and the scope.
    fn max_len(&self) -> usize {
        2 * (1 + 5) + self.resource_field.len() + self.scope_field.len()
    }
}

/// Span fields written once and copied into every span that has them (an endpoint's
/// name and constant attributes, a URL's attributes): encoding them per span was most
/// of the exporter's cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct SpanFields(Vec<u8>);

impl SpanFields {
    /// No fields.
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// Adds the span's name (`Span.name`).
    pub(super) fn name(mut self, name: &str) -> Self {
        put_delimited(&mut self.0, 5, name.as_bytes());
        self
    }

    /// Adds a string attribute.
    pub(super) fn str_attribute(mut self, key: &str, value: &str) -> Self {
        put_attribute(&mut self.0, 9, key, AttributeValue::Str(value));
        self
    }
}

/// The spans of one export request being written.
///
/// They are written behind room for the request's framing, which is filled in when the
/// request is taken: the spans are never copied, and the request is handed over
/// without a copy either.
#[derive(Debug)]
pub(super) struct SpanBatch {
    header: BatchHeader,
    /// Bytes kept free in front of `spans` for the framing.
    room: usize,
    /// `room` bytes, then the `ScopeSpans.spans` fields so far, keys and lengths included.
    spans: Vec<u8>,
    count: usize,
    /// One span's fields, before its length is known.
    scratch: Vec<u8>,
}

/// One span, in the batch that made it: add attributes, then [`SpanWriter::finish`].
pub(super) struct SpanWriter<'b> {
    batch: &'b mut SpanBatch,
}

impl SpanBatch {
    /// An empty batch of spans under `header`'s resource and scope.
    pub(super) fn new(header: BatchHeader) -> Self {
        let room = header.max_len();
        Self {
            header,
            room,
            spans: vec![0; room],
            count: 0,
            scratch: Vec::with_capacity(512),
        }
    }

    /// Spans written so far.
    pub(super) fn len(&self) -> usize {
        self.count
    }

    /// True when no span has been written since the last [`SpanBatch::take`].
    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Starts a CLIENT span (the ids must not be 0; times in nanoseconds since the
    /// Unix epoch); its name comes with [`SpanWriter::fields`].
    pub(super) fn span(
        &mut self,
        trace_id: u128,
        span_id: u64,
        start_ns: u64,
        end_ns: u64,
    ) -> SpanWriter<'_> {
        let buf = &mut self.scratch;
        buf.clear();
        put_delimited(buf, 1, &trace_id.to_be_bytes());
        put_delimited(buf, 2, &span_id.to_be_bytes());
        encode_key(6, WireType::Varint, buf);
        encode_varint(KIND_CLIENT, buf);
        encode_key(7, WireType::SixtyFourBit, buf);
        buf.extend_from_slice(&start_ns.to_le_bytes());
        encode_key(8, WireType::SixtyFourBit, buf);
        buf.extend_from_slice(&end_ns.max(start_ns).to_le_bytes());
        encode_key(16, WireType::ThirtyTwoBit, buf);
        buf.extend_from_slice(&SPAN_FLAGS.to_le_bytes());
        SpanWriter { batch: self }
    }

    /// The export request holding every span written, and how many; the batch is
    /// empty again afterwards.
    pub(super) fn take(&mut self) -> (Bytes, usize) {
        let header = &self.header;
        let scope_spans_len = header.scope_field.len() + (self.spans.len() - self.room);
        let resource_spans_len = header.resource_field.len() + delimited_len(2, scope_spans_len);
        let mut framing = Vec::with_capacity(self.room);
        encode_key(1, WireType::LengthDelimited, &mut framing);
        encode_varint(resource_spans_len as u64, &mut framing);
        framing.extend_from_slice(&header.resource_field);
        encode_key(2, WireType::LengthDelimited, &mut framing);
        encode_varint(scope_spans_len as u64, &mut framing);
        framing.extend_from_slice(&header.scope_field);
        // A request of more than 4 GiB would need longer varints than the room has;
        // batches are far smaller (`max_export_batch_size` spans of a few hundred bytes).
        let start = self.room.saturating_sub(framing.len());
        self.spans[start..self.room].copy_from_slice(&framing[..self.room - start]);
        let mut next = Vec::with_capacity(self.spans.capacity());
        next.resize(self.room, 0);
        let request = Bytes::from(std::mem::replace(&mut self.spans, next)).slice(start..);
        let count = std::mem::take(&mut self.count);
        (request, count)
    }
}

impl SpanWriter<'_> {
    /// Adds fields encoded beforehand (the name, constant attributes).
    pub(super) fn fields(&mut self, fields: &SpanFields) -> &mut Self {
        self.batch.scratch.extend_from_slice(&fields.0);
        self
    }

    /// Adds an integer attribute.
    pub(super) fn int_attribute(&mut self, key: &str, value: i64) -> &mut Self {
        put_attribute(&mut self.batch.scratch, 9, key, AttributeValue::Int(value));
        self
    }

    /// Ends the span: on `failure`, an `exception` event with its message at `end_ns`
    /// (as LoadDensity's `record_exception`) and an error status with the message.
    pub(super) fn finish(self, failure: Option<&str>, end_ns: u64) {
        let batch = self.batch;
        let buf = &mut batch.scratch;
        if let Some(message) = failure {
            let attribute_len = delimited_len(1, "exception.message".len())
                + delimited_len(2, any_value_len(AttributeValue::Str(message)));
            let event_len =
                1 + 8 + delimited_len(2, "exception".len()) + delimited_len(3, attribute_len);
            encode_key(11, WireType::LengthDelimited, buf);
            encode_varint(event_len as u64, buf);
            encode_key(1, WireType::SixtyFourBit, buf);
            buf.extend_from_slice(&end_ns.to_le_bytes());
            put_delimited(buf, 2, b"exception");
            put_attribute(buf, 3, "exception.message", AttributeValue::Str(message));
            let status_len = delimited_len(2, message.len()) + 1 + encoded_len_varint(STATUS_ERROR);
            encode_key(15, WireType::LengthDelimited, buf);
            encode_varint(status_len as u64, buf);
            put_delimited(buf, 2, message.as_bytes());
            encode_key(3, WireType::Varint, buf);
            encode_varint(STATUS_ERROR, buf);
        }
        put_delimited(&mut batch.spans, 2, &batch.scratch);
        batch.count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};
    use prost::Message as _;

    fn attribute(
        attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue],
        key: &str,
    ) -> Option<Value> {
        attributes
            .iter()
            .find(|a| a.key == key)
            .and_then(|a| a.value.clone()?.value)
    }

    #[test]
    fn the_official_definitions_read_what_is_written() {
        let header = BatchHeader::new(
            &[("service.name", "svc"), ("service.instance.id", "pod-1")],
            "loaddensity",
            "1.2.3",
        );
        let mut batch = SpanBatch::new(header);
        let long = "x".repeat(300);
        let mut span = batch.span(u128::MAX - 5, 7, 1_000, 3_500);
        span.fields(
            &SpanFields::new()
                .name("GET home")
                .str_attribute("request.type", "GET"),
        )
        .int_attribute("response.length", 12_345)
        .int_attribute("negative", -2);
        span.finish(None, 3_500);
        let mut span = batch.span(42, u64::MAX, 5_000, 4_000);
        span.fields(
            &SpanFields::new()
                .name(&long)
                .str_attribute("url.full", &long),
        );
        span.finish(Some("HTTP 500 Internal Server Error"), 5_000);
        assert_eq!(batch.len(), 2);
        let (bytes, count) = batch.take();
        assert_eq!(count, 2);
        assert!(batch.is_empty());
        let request = ExportTraceServiceRequest::decode(bytes).expect("decodes");
        assert_eq!(request.resource_spans.len(), 1);
        let resource_spans = &request.resource_spans[0];
        let resource = resource_spans.resource.as_ref().expect("resource");
        assert_eq!(
            attribute(&resource.attributes, "service.name"),
            Some(Value::StringValue("svc".into()))
        );
        assert_eq!(
            attribute(&resource.attributes, "service.instance.id"),
            Some(Value::StringValue("pod-1".into()))
        );
        let scope_spans = &resource_spans.scope_spans[0];
        let scope = scope_spans.scope.as_ref().expect("scope");
        assert_eq!(
            (scope.name.as_str(), scope.version.as_str()),
            ("loaddensity", "1.2.3")
        );
        let [ok, failed] = scope_spans.spans.as_slice() else {
            panic!("two spans: {:?}", scope_spans.spans)
        };
        assert_eq!(ok.trace_id, (u128::MAX - 5).to_be_bytes());
        assert_eq!(ok.span_id, 7u64.to_be_bytes());
        assert_eq!(ok.name, "GET home");
        assert_eq!(ok.kind, SpanKind::Client as i32);
        assert_eq!(
            (ok.start_time_unix_nano, ok.end_time_unix_nano),
            (1_000, 3_500)
        );
        assert_eq!(ok.flags, 0x101);
        assert!(ok.parent_span_id.is_empty());
        assert_eq!(
            attribute(&ok.attributes, "request.type"),
            Some(Value::StringValue("GET".into()))
        );
        assert_eq!(
            attribute(&ok.attributes, "response.length"),
            Some(Value::IntValue(12_345))
        );
        assert_eq!(
            attribute(&ok.attributes, "negative"),
            Some(Value::IntValue(-2))
        );
        assert!(ok.events.is_empty());
        assert_ne!(
            ok.status.clone().unwrap_or_default().code,
            StatusCode::Error as i32
        );

        assert_eq!(failed.name, long);
        // An end before the start is clamped to the start.
        assert_eq!(
            (failed.start_time_unix_nano, failed.end_time_unix_nano),
            (5_000, 5_000)
        );
        assert_eq!(
            attribute(&failed.attributes, "url.full"),
            Some(Value::StringValue(long))
        );
        let status = failed.status.clone().expect("status");
        assert_eq!(status.code, StatusCode::Error as i32);
        assert_eq!(status.message, "HTTP 500 Internal Server Error");
        let [event] = failed.events.as_slice() else {
            panic!("one event: {:?}", failed.events)
        };
        assert_eq!(
            (event.name.as_str(), event.time_unix_nano),
            ("exception", 5_000)
        );
        assert_eq!(
            attribute(&event.attributes, "exception.message"),
            Some(Value::StringValue("HTTP 500 Internal Server Error".into()))
        );
    }

    #[test]
    fn an_empty_batch_is_a_valid_request_and_batches_are_independent() {
        let mut batch = SpanBatch::new(BatchHeader::new(&[("service.name", "s")], "n", "v"));
        let (bytes, count) = batch.take();
        assert_eq!(count, 0);
        let request = ExportTraceServiceRequest::decode(bytes).expect("decodes");
        assert!(request.resource_spans[0].scope_spans[0].spans.is_empty());
        for round in 0..3u64 {
            for i in 0..100 {
                let mut span = batch.span(1, i + 1, round, round + 1);
                span.fields(&SpanFields::new().name("s"))
                    .int_attribute("round", round as i64);
                span.finish(None, round + 1);
            }
            let (bytes, count) = batch.take();
            assert_eq!(count, 100);
            let request = ExportTraceServiceRequest::decode(bytes).expect("decodes");
            let spans = &request.resource_spans[0].scope_spans[0].spans;
            assert_eq!(spans.len(), 100);
            assert!(spans.iter().all(|s| s.start_time_unix_nano == round));
        }
    }
}
