//! The exporter task: empties the shards, writes records as spans straight into
//! OTLP export requests ([`super::encode`]) of at most `max_export_batch_size` spans,
//! and sends them ([`super::transport`]).
//!
//! It runs on the exporter's own runtime, never on the request path. One export is
//! in flight at a time, bounded by the timeout: while a slow collector holds it, or
//! during the pause after a failed export, the shards fill up to the budget and
//! further spans are dropped and counted, so memory stays bounded and the load is
//! never slowed.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use super::encode::{BatchHeader, SpanBatch, SpanFields};
use super::queue::{NewEndpoint, Record, SpanQueue, TraceStats};
use super::transport::Transport;
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
    request_type: Arc<str>,
    name: Arc<str>,
    http_method: bool,
    /// The span's name and the attributes that are the same in every span of the
    /// endpoint, encoded.
    fields: SpanFields,
    /// The URL of the endpoint's latest span and its attributes, encoded: most
    /// endpoints always have the same URL.
    url: Option<(Box<str>, SpanFields)>,
}

/// The `outcome` attribute of a success and of a failure, encoded.
#[derive(Debug)]
struct Outcomes {
    success: SpanFields,
    failure: SpanFields,
}

pub(super) struct Flusher {
    queue: Arc<SpanQueue>,
    stats: Arc<TraceStats>,
    transport: Transport,
    settings: FlushSettings,
    endpoints: Vec<Option<Known>>,
    new_endpoints: Vec<NewEndpoint>,
    outcomes: Outcomes,
    /// The export request being filled.
    batch: SpanBatch,
    /// Export requests full and not yet sent, with their span counts.
    ready: VecDeque<(Bytes, usize)>,
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
        transport: Transport,
        header: BatchHeader,
        settings: FlushSettings,
    ) -> Self {
        Self {
            stats: queue.stats.clone(),
            queue,
            transport,
            endpoints: Vec::new(),
            new_endpoints: Vec::new(),
            outcomes: Outcomes {
                success: SpanFields::new().str_attribute("outcome", "success"),
                failure: SpanFields::new().str_attribute("outcome", "failure"),
            },
            batch: SpanBatch::new(header),
            ready: VecDeque::new(),
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

    /// Spans written and not yet exported.
    fn pending(&self) -> usize {
        self.batch.len() + self.ready.iter().map(|(_, n)| n).sum::<usize>()
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
            while !self.ready.is_empty() && !shutdown.is_cancelled() && self.retry_at.is_none() {
                self.export_next(timeout).await;
                last_export = Instant::now();
            }
            if !self.batch.is_empty()
                && self.retry_at.is_none()
                && last_export.elapsed() >= self.settings.interval
            {
                self.ready.push_back(self.batch.take());
                self.export_next(timeout).await;
                last_export = Instant::now();
            }
        }
        // The stop: what every shard still holds, for at most the timeout.
        let deadline = Instant::now() + self.settings.timeout;
        self.drain();
        if !self.batch.is_empty() {
            self.ready.push_back(self.batch.take());
        }
        while !self.ready.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.export_next(left).await;
        }
        let left = self.pending();
        if left > 0 {
            TraceStats::add(&self.stats.spans_failed, left);
            self.queue.release(left);
            self.ready.clear();
        }
    }

    /// Empties every shard into the export requests.
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
            TraceStats::add(&self.queue.stats.spans_sampled, records.len());
            self.learn_endpoints();
            for record in records.drain(..) {
                self.write_span(&record, &urls);
                if self.batch.len() >= self.settings.batch_size {
                    self.ready.push_back(self.batch.take());
                }
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
            let http_method = HTTP_METHODS.contains(&&*endpoint.request_type);
            let mut fields =
                SpanFields::new().name(&format!("{} {}", endpoint.request_type, endpoint.name));
            if http_method {
                fields = fields.str_attribute("http.request.method", &endpoint.request_type);
            }
            fields = fields
                .str_attribute("request.type", &endpoint.request_type)
                .str_attribute("request.name", &endpoint.name);
            self.endpoints[index] = Some(Known {
                request_type: endpoint.request_type,
                name: endpoint.name,
                http_method,
                fields,
                url: None,
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

    /// Writes the span of one record: LoadDensity's attributes, then the semantic
    /// conventions' where they apply.
    fn write_span(&mut self, record: &Record, urls: &str) {
        let (trace_id, span_id) = match record.ids {
            // The ids sent in the request's `traceparent`.
            Some(ids) => ids,
            None => self.new_ids(),
        };
        let end_ns = record.start_ns.saturating_add(record.duration_ns);
        // Cannot be None: a shard announces an endpoint before its first record.
        let Some(known) = self
            .endpoints
            .get_mut(record.endpoint.0 as usize)
            .and_then(Option::as_mut)
        else {
            return;
        };
        let (url_start, url_length) = (record.url.0 as usize, record.url.1 as usize);
        let url = urls
            .get(url_start..url_start + url_length)
            .filter(|url| !url.is_empty());
        if let Some(url) = url
            && known.url.as_ref().is_none_or(|(last, _)| **last != *url)
        {
            let mut fields = SpanFields::new().str_attribute("url.full", &redact(url));
            if let Some(host) = server_address(url) {
                fields = fields.str_attribute("server.address", host);
            }
            known.url = Some((url.into(), fields));
        }
        let mut span = self.batch.span(trace_id, span_id, record.start_ns, end_ns);
        span.fields(&known.fields).int_attribute(
            "response.length",
            i64::try_from(record.response_length).unwrap_or(i64::MAX),
        );
        span.fields(if record.failure.is_some() {
            &self.outcomes.failure
        } else {
            &self.outcomes.success
        });
        if url.is_some()
            && let Some((_, fields)) = &known.url
        {
            span.fields(fields);
        }
        if known.http_method && record.status != 0 {
            span.int_attribute("http.response.status_code", i64::from(record.status));
        }
        span.finish(record.failure.as_deref(), end_ns);
    }

    /// Sends the oldest full export request, waiting at most `limit`.
    async fn export_next(&mut self, limit: Duration) {
        let Some((body, n)) = self.ready.pop_front() else {
            return;
        };
        let result = tokio::time::timeout(limit, self.transport.export(body)).await;
        self.queue.release(n);
        let error = match result {
            Ok(Ok(rejected)) => {
                let rejected = usize::try_from(rejected).unwrap_or(usize::MAX).min(n);
                TraceStats::add(&self.stats.exports, 1);
                TraceStats::add(&self.stats.spans_exported, n - rejected);
                TraceStats::add(&self.stats.spans_failed, rejected);
                self.retry_at = None;
                self.backoff = FIRST_BACKOFF;
                return;
            }
            Ok(Err(error)) => error,
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
