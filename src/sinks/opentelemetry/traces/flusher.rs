//! The exporter task: empties the shards, turns records into spans and hands them to
//! the OTLP span exporter in batches of at most `max_export_batch_size`.
//!
//! It runs on the exporter's own runtime, never on the request path. One export is
//! in flight at a time, bounded by the timeout: while a slow collector holds it, or
//! during the pause after a failed export, the shards fill up to the budget and
//! further spans are dropped and counted, so memory stays bounded and the load is
//! never slowed.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use opentelemetry::trace::{
    Event, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_otlp::SpanExporter as OtlpSpanExporter;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use super::queue::{NewEndpoint, Record, SpanQueue, TraceStats};
use crate::sinks::lock;

/// How often the shards are emptied.
const TICK: Duration = Duration::from_millis(50);
/// The least time between two warnings about failed exports.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// First and longest pause after a failed export. While it lasts the shards are not
/// emptied: spans for a collector that is down are dropped on the request path
/// (counted) rather than built and sent in vain.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The methods `http.request.method` is set for (the request type of HTTP tasks).
const HTTP_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// What the flusher needs to know.
#[derive(Debug, Clone)]
pub(super) struct FlushSettings {
    pub(super) interval: Duration,
    pub(super) batch_size: usize,
    pub(super) timeout: Duration,
}

/// An endpoint's strings, ready for its spans.
#[derive(Debug)]
struct Known {
    span_name: String,
    request_type: Arc<str>,
    name: Arc<str>,
    http_method: bool,
}

pub(super) struct Flusher {
    queue: Arc<SpanQueue>,
    stats: Arc<TraceStats>,
    exporter: OtlpSpanExporter,
    settings: FlushSettings,
    scope: InstrumentationScope,
    endpoints: Vec<Option<Known>>,
    new_endpoints: Vec<NewEndpoint>,
    /// Spans made and not yet exported.
    spans: Vec<SpanData>,
    records: Vec<Record>,
    urls: String,
    rng: SmallRng,
    last_warning: Option<Instant>,
    unwarned: u64,
    /// After a failed export: no drain nor export before this.
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl std::fmt::Debug for Flusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flusher")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Flusher {
    pub(super) fn new(
        queue: Arc<SpanQueue>,
        exporter: OtlpSpanExporter,
        settings: FlushSettings,
    ) -> Self {
        Self {
            stats: queue.stats.clone(),
            queue,
            exporter,
            scope: InstrumentationScope::builder(crate::sinks::opentelemetry::SCOPE)
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            endpoints: Vec::new(),
            new_endpoints: Vec::new(),
            spans: Vec::with_capacity(settings.batch_size),
            records: Vec::new(),
            urls: String::new(),
            rng: SmallRng::from_entropy(),
            last_warning: None,
            unwarned: 0,
            retry_at: None,
            backoff: FIRST_BACKOFF,
            settings,
        }
    }

    /// Runs until `shutdown`, then exports what is left within the timeout.
    pub(super) async fn run(mut self, shutdown: CancellationToken) {
        let mut last_export = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(TICK.min(self.settings.interval)) => {}
            }
            if let Some(at) = self.retry_at {
                if Instant::now() < at {
                    continue;
                }
                self.retry_at = None;
            }
            self.drain();
            let timeout = self.settings.timeout;
            while self.spans.len() >= self.settings.batch_size
                && !shutdown.is_cancelled()
                && self.retry_at.is_none()
            {
                self.export_batch(timeout).await;
                last_export = Instant::now();
            }
            if !self.spans.is_empty()
                && self.retry_at.is_none()
                && last_export.elapsed() >= self.settings.interval
            {
                self.export_batch(timeout).await;
                last_export = Instant::now();
            }
        }
        // The stop: what every shard still holds, for at most the timeout.
        let deadline = Instant::now() + self.settings.timeout;
        self.drain();
        while !self.spans.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.export_batch(left).await;
        }
        let left = self.spans.len();
        if left > 0 {
            TraceStats::add(&self.stats.spans_failed, left);
            self.queue.release(left);
            self.spans.clear();
        }
        let _ = self
            .exporter
            .shutdown_with_timeout(Duration::from_millis(100));
    }

    /// Empties every shard into spans.
    fn drain(&mut self) {
        let mut records = std::mem::take(&mut self.records);
        let mut urls = std::mem::take(&mut self.urls);
        let queue = self.queue.clone();
        for shard in queue.shards.iter() {
            {
                let mut shard = lock(&shard.0);
                if shard.records.is_empty() && shard.new_endpoints.is_empty() {
                    continue;
                }
                std::mem::swap(&mut shard.records, &mut records);
                std::mem::swap(&mut shard.urls, &mut urls);
                self.new_endpoints.append(&mut shard.new_endpoints);
            }
            self.learn_endpoints();
            for record in records.drain(..) {
                let span = self.span(&record, &urls);
                self.spans.push(span);
            }
            urls.clear();
        }
        self.records = records;
        self.urls = urls;
    }

    fn learn_endpoints(&mut self) {
        for endpoint in self.new_endpoints.drain(..) {
            let index = endpoint.id.0 as usize;
            if self.endpoints.len() <= index {
                self.endpoints.resize_with(index + 1, || None);
            }
            let current = &self.endpoints[index];
            if current.as_ref().is_some_and(|k| {
                Arc::ptr_eq(&k.name, &endpoint.name)
                    && Arc::ptr_eq(&k.request_type, &endpoint.request_type)
            }) {
                continue;
            }
            self.endpoints[index] = Some(Known {
                span_name: format!("{} {}", endpoint.request_type, endpoint.name),
                http_method: HTTP_METHODS.contains(&&*endpoint.request_type),
                request_type: endpoint.request_type,
                name: endpoint.name,
            });
        }
    }

    /// A new trace id and span id (neither 0).
    fn new_ids(&mut self) -> (u128, u64) {
        let trace_id = loop {
            let id: u128 = self.rng.r#gen();
            if id != 0 {
                break id;
            }
        };
        let span_id = loop {
            let id: u64 = self.rng.r#gen();
            if id != 0 {
                break id;
            }
        };
        (trace_id, span_id)
    }

    /// The span of one record: LoadDensity's attributes, then the semantic
    /// conventions' where they apply.
    fn span(&mut self, record: &Record, urls: &str) -> SpanData {
        let start = UNIX_EPOCH + Duration::from_nanos(record.start_ns);
        let end = start + Duration::from_nanos(record.duration_ns);
        let known = self
            .endpoints
            .get(record.endpoint.0 as usize)
            .and_then(Option::as_ref);
        let (span_name, request_type, name, http) = match known {
            Some(k) => (
                k.span_name.clone(),
                Value::from(k.request_type.clone()),
                Value::from(k.name.clone()),
                k.http_method,
            ),
            // Cannot happen: a shard announces an endpoint before its first record.
            None => (String::new(), Value::from(""), Value::from(""), false),
        };
        let mut attributes = Vec::with_capacity(8);
        if http {
            attributes.push(KeyValue::new("http.request.method", request_type.clone()));
        }
        attributes.push(KeyValue::new("request.type", request_type));
        attributes.push(KeyValue::new("request.name", name));
        attributes.push(KeyValue::new(
            "response.length",
            i64::try_from(record.response_length).unwrap_or(i64::MAX),
        ));
        attributes.push(KeyValue::new(
            "outcome",
            if record.failure.is_some() {
                "failure"
            } else {
                "success"
            },
        ));
        let (url_start, url_length) = (record.url.0 as usize, record.url.1 as usize);
        if let Some(url) = urls.get(url_start..url_start + url_length)
            && url_length > 0
        {
            attributes.push(KeyValue::new("url.full", redact(url).into_owned()));
            if let Some(host) = server_address(url) {
                attributes.push(KeyValue::new("server.address", host.to_string()));
            }
        }
        if http && record.status != 0 {
            attributes.push(KeyValue::new(
                "http.response.status_code",
                i64::from(record.status),
            ));
        }
        let mut events = SpanEvents::default();
        let status = match &record.failure {
            None => Status::Unset,
            Some(text) => {
                // As LoadDensity's `record_exception`: an `exception` event.
                events.events.push(Event::new(
                    "exception",
                    end,
                    vec![KeyValue::new("exception.message", text.to_string())],
                    0,
                ));
                Status::error(text.to_string())
            }
        };
        let (trace_id, span_id) = match record.ids {
            // The ids sent in the request's `traceparent`.
            Some(ids) => ids,
            None => self.new_ids(),
        };
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(trace_id),
                SpanId::from(span_id),
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Client,
            name: Cow::Owned(span_name),
            start_time: start,
            end_time: end.max(start),
            attributes,
            dropped_attributes_count: 0,
            events,
            links: SpanLinks::default(),
            status,
            instrumentation_scope: self.scope.clone(),
        }
    }

    /// Exports the oldest `batch_size` spans, waiting at most `limit`.
    async fn export_batch(&mut self, limit: Duration) {
        let n = self.spans.len().min(self.settings.batch_size);
        let batch: Vec<SpanData> = self.spans.drain(..n).collect();
        let result = tokio::time::timeout(limit, self.exporter.export(batch)).await;
        self.queue.release(n);
        let error = match result {
            Ok(Ok(())) => {
                TraceStats::add(&self.stats.exports, 1);
                TraceStats::add(&self.stats.spans_exported, n);
                self.retry_at = None;
                self.backoff = FIRST_BACKOFF;
                return;
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("the collector did not answer within {limit:?}"),
        };
        TraceStats::add(&self.stats.export_errors, 1);
        TraceStats::add(&self.stats.spans_failed, n);
        self.unwarned += 1;
        let now = Instant::now();
        self.retry_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        if self
            .last_warning
            .is_none_or(|at| now.duration_since(at) >= WARN_EVERY)
        {
            tracing::warn!(
                "opentelemetry traces exporter: {} export(s) failed since the last message \
                 (the load goes on; counted in the summary's sinks section); latest: {error}",
                self.unwarned
            );
            self.unwarned = 0;
            self.last_warning = Some(now);
        }
        *lock(&self.stats.last_error) = Some(error);
    }
}

/// The host of an `scheme://host[:port]/...` URL (without the brackets of an IPv6
/// address).
fn server_address(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

/// `url` with the credentials of its authority, if any, replaced by `REDACTED`, as
/// the semantic conventions ask for `url.full`.
fn redact(url: &str) -> Cow<'_, str> {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return Cow::Borrowed(url);
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    match url[scheme_end..authority_end].rfind('@') {
        None => Cow::Borrowed(url),
        Some(at) => Cow::Owned(format!(
            "{}REDACTED:REDACTED{}",
            &url[..scheme_end],
            &url[scheme_end + at..]
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::{redact, server_address};

    #[test]
    fn server_address_of_urls() {
        assert_eq!(
            server_address("http://127.0.0.1:8080/x?y"),
            Some("127.0.0.1")
        );
        assert_eq!(server_address("https://example.com"), Some("example.com"));
        assert_eq!(server_address("http://[::1]:80/"), Some("::1"));
        assert_eq!(server_address("http://u@host/"), Some("host"));
        assert_eq!(server_address("no url"), None);
        assert_eq!(server_address("http:///path"), None);
    }

    #[test]
    fn credentials_in_urls_are_redacted() {
        assert_eq!(
            redact("http://user:s3cret@host:1/p?q=a@b"),
            "http://REDACTED:REDACTED@host:1/p?q=a@b"
        );
        assert_eq!(redact("http://host/p?q=a@b"), "http://host/p?q=a@b");
    }
}
