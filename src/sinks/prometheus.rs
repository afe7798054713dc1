//! The Prometheus exporter: a pull endpoint (`/metrics`) serving per-endpoint request
//! counts, latencies and response sizes while a test runs.
//!
//! Metrics, with LoadDensity's names, labels and buckets:
//! - `loaddensity_requests_total{request_type, name, outcome}`, a counter (`outcome` is
//!   `success` or `failure`);
//! - `loaddensity_request_latency_ms{request_type, name}`, a histogram with buckets 5,
//!   10, 25, 50, 100, 250, 500, 1000, 2500, 5000 and 10000 ms;
//! - `loaddensity_response_bytes{request_type, name}`, a histogram with buckets 64, 256,
//!   1 Ki, 4 Ki, 16 Ki, 64 Ki, 256 Ki and 1 Mi bytes.
//!
//! Recording costs one uncontended lock per request: each worker thread records into
//! its own shard, a vector indexed by [`crate::EndpointId`] whose slot is resolved
//! (labels, cardinality guard) once per endpoint. A scrape merges the shards and
//! encodes them with the official `prometheus-client` crate, in the OpenMetrics text
//! format when the scraper asks for it (Prometheus does) and in the classic text
//! format 0.0.4 otherwise.
//!
//! The HTTP server runs on a thread of its own with a current-thread runtime, so it
//! works whether or not the caller runs in a runtime, and stopping it frees the port.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelValue, LabelValueEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Attached, Sinks, lock};
use crate::event::{Endpoint, RequestEvent};
use crate::listener::RequestListener;
use crate::serve::serve_http1;
use crate::shard::{Padded, SHARDS, shard_index};

/// Default port, as in LoadDensity.
pub const DEFAULT_PORT: u16 = 9646;
/// Default bind address: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1";
/// Default number of distinct `name` label values before folding into [`OTHER_NAME`].
pub const DEFAULT_MAX_SERIES: usize = 1000;
/// The `name` label value that names beyond `max_series` are folded into.
pub const OTHER_NAME: &str = "__other__";

/// Upper bounds of `loaddensity_request_latency_ms`, in milliseconds.
pub const LATENCY_BUCKETS_MS: [f64; 11] = [
    5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];
/// Upper bounds of `loaddensity_response_bytes`, in bytes.
pub const BYTES_BUCKETS: [f64; 8] = [
    64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0,
];

/// Content type of the classic Prometheus text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of the OpenMetrics text format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

// OpenMetrics names a counter family without its `_total` suffix; the encoder adds it
// to the sample, and the classic format gets it back on HELP and TYPE (see `to_classic`).
pub(crate) const REQUESTS: &str = "loaddensity_requests";
pub(crate) const LATENCY: &str = "loaddensity_request_latency_ms";
pub(crate) const BYTES: &str = "loaddensity_response_bytes";
const REQUESTS_HELP: &str = "Requests completed by loaddensity, by outcome (success or failure).";
const LATENCY_HELP: &str =
    "Request latency in milliseconds, from start to end of the response body.";
const BYTES_HELP: &str = "Response body size in bytes.";

pub(crate) const OUTCOMES: [&str; 2] = ["success", "failure"];

/// Settings of [`start_prometheus_exporter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusOptions {
    /// Port to bind; 0 picks a free one. Default 9646.
    pub port: u16,
    /// IP address to bind (or `localhost`). Default `127.0.0.1`; `0.0.0.0` exposes the
    /// endpoint to other machines (a Docker or Kubernetes scrape).
    pub addr: String,
    /// Distinct `name` label values kept before further names are folded into
    /// `__other__`. Default 1000.
    pub max_series: usize,
}

impl Default for PrometheusOptions {
    fn default() -> Self {
        Self {
            port: DEFAULT_PORT,
            addr: DEFAULT_ADDR.to_string(),
            max_series: DEFAULT_MAX_SERIES,
        }
    }
}

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    /// The address is not an IP address.
    #[error("`{0}` is not an IP address (expected e.g. 127.0.0.1, 0.0.0.0 or ::1)")]
    InvalidAddr(String),
    /// `max_series` is 0.
    #[error("max_series must be at least 1")]
    InvalidMaxSeries,
    /// The port could not be bound, usually because it is in use.
    #[error("cannot bind {addr}: {source} (pick another port, or 0 for a free one)")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The system's error.
        source: std::io::Error,
    },
    /// The server's runtime or thread could not be started.
    #[error("cannot start the exporter's server: {0}")]
    Server(#[source] std::io::Error),
}

/// Parses an exporter bind address: an IPv4 or IPv6 literal (brackets allowed), or
/// `localhost`.
pub fn parse_addr(text: &str) -> Result<IpAddr, PrometheusError> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let bare = trimmed
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(trimmed);
    bare.parse()
        .map_err(|_| PrometheusError::InvalidAddr(text.to_string()))
}

struct Running {
    addr: SocketAddr,
    attached: Attached,
}

/// This sink's state in one run's [`Sinks`].
#[derive(Default)]
pub(crate) struct SinkState {
    running: Mutex<Option<Running>>,
}

/// Starts the exporter: attaches its listener to the request event of `sinks` and
/// serves `/metrics`. Returns the bound port.
///
/// When the exporter is already running this returns its port and logs so; the
/// options are then ignored. Counts start from zero at every start.
pub fn start_prometheus_exporter(
    sinks: &Sinks,
    options: PrometheusOptions,
) -> Result<u16, PrometheusError> {
    let mut running = lock(&sinks.prometheus.running);
    if let Some(current) = running.as_ref() {
        tracing::info!(
            "prometheus exporter already running on http://{}/metrics",
            current.addr
        );
        return Ok(current.addr.port());
    }
    let ip = parse_addr(&options.addr)?;
    if options.max_series == 0 {
        return Err(PrometheusError::InvalidMaxSeries);
    }
    let wanted = SocketAddr::new(ip, options.port);
    let std_listener =
        std::net::TcpListener::bind(wanted).map_err(|source| PrometheusError::Bind {
            addr: wanted,
            source,
        })?;
    std_listener
        .set_nonblocking(true)
        .map_err(PrometheusError::Server)?;
    let addr = std_listener.local_addr().map_err(PrometheusError::Server)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PrometheusError::Server)?;
    let listener = {
        let _context = runtime.enter();
        TcpListener::from_std(std_listener).map_err(PrometheusError::Server)?
    };

    let metrics = Arc::new(Metrics::new(options.max_series));
    let mut registry = Registry::default();
    registry.register_collector(Box::new(MetricsCollector(metrics.clone())));
    let registry = Arc::new(registry);
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let thread = std::thread::Builder::new()
        .name("loaddensity-prometheus".into())
        .spawn(move || runtime.block_on(serve(listener, registry, token)))
        .map_err(PrometheusError::Server)?;

    let listener_id = sinks.listeners().add(metrics);
    *running = Some(Running {
        addr,
        attached: Attached {
            listener: listener_id,
            shutdown,
            thread,
        },
    });
    if !ip.is_loopback() {
        tracing::info!(
            "prometheus exporter bound to {addr}: exposed beyond this machine, to any host that can reach it"
        );
    }
    tracing::info!("prometheus exporter serving http://{addr}/metrics");
    Ok(addr.port())
}

/// Stops the exporter: detaches its listener and shuts the HTTP server down, closing
/// open connections and freeing the port before it returns. Returns false when it
/// was not running.
pub fn stop_prometheus_exporter(sinks: &Sinks) -> bool {
    // The lock is held until the port is free, so a start racing this stop cannot
    // fail to bind the same port.
    let mut running = lock(&sinks.prometheus.running);
    let Some(current) = running.take() else {
        return false;
    };
    current
        .attached
        .detach_and_join(sinks.listeners(), "prometheus exporter");
    tracing::info!("prometheus exporter on {} stopped", current.addr);
    true
}

/// The address the exporter is bound to, when it is running.
pub fn prometheus_exporter_addr(sinks: &Sinks) -> Option<SocketAddr> {
    lock(&sinks.prometheus.running).as_ref().map(|r| r.addr)
}

async fn serve(listener: TcpListener, registry: Arc<Registry>, shutdown: CancellationToken) {
    serve_http1(listener, shutdown, move |request: Request<Incoming>| {
        let response = respond(&registry, &request);
        async move { response }
    })
    .await;
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

fn respond(registry: &Registry, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if !matches!(request.uri().path(), "/metrics" | "/") {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: metrics are at /metrics\n",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
    }
    let openmetrics = wants_openmetrics(request.headers().get_all(ACCEPT).iter());
    match encode(registry, openmetrics) {
        Ok(text) => {
            let mut response = Response::new(Full::new(Bytes::from(text)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(if openmetrics {
                    OPENMETRICS_CONTENT_TYPE
                } else {
                    TEXT_CONTENT_TYPE
                }),
            );
            response
        }
        Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n"),
    }
}

/// True when an Accept header lists OpenMetrics (without `q=0`).
fn wants_openmetrics<'a>(accept: impl Iterator<Item = &'a HeaderValue>) -> bool {
    accept
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            parts.next() == Some("application/openmetrics-text") && !parts.any(is_zero_q)
        })
}

fn is_zero_q(param: &str) -> bool {
    param.split_once('=').is_some_and(|(key, value)| {
        key.trim() == "q" && value.trim().parse::<f64>().is_ok_and(|q| q == 0.0)
    })
}

/// Encodes a registry in OpenMetrics (`openmetrics`) or in the classic text format.
fn encode(registry: &Registry, openmetrics: bool) -> Result<String, std::fmt::Error> {
    let mut text = String::with_capacity(8 * 1024);
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(if openmetrics { text } else { to_classic(&text) })
}

/// Turns the OpenMetrics text `prometheus-client` writes into the classic text format
/// 0.0.4: counters are described under their sample name (with `_total`), and the
/// `# UNIT` and `# EOF` lines, which the classic format does not have, are dropped.
fn to_classic(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 64);
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let described = ["# HELP ", "# TYPE "].into_iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match described {
            Some(line) => out.push_str(&line),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// A label value, escaped as both text formats require (`prometheus-client` writes
/// label values as they are).
struct Escaped<'a>(&'a str);

impl EncodeLabelValue for Escaped<'_> {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        let mut rest = self.0;
        while let Some(i) = rest.find(['\\', '"', '\n']) {
            encoder.write_str(&rest[..i])?;
            encoder.write_str(match rest.as_bytes()[i] {
                b'\\' => "\\\\",
                b'"' => "\\\"",
                _ => "\\n",
            })?;
            rest = &rest[i + 1..];
        }
        encoder.write_str(rest)
    }
}

/// The labels shared by every series of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SeriesKey {
    pub(crate) request_type: Arc<str>,
    pub(crate) name: Arc<str>,
}

/// Observation counts per bucket (not cumulative), for the finite upper bounds `N`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hist<const N: usize> {
    pub(crate) buckets: [u64; N],
    pub(crate) count: u64,
    pub(crate) sum: f64,
}

impl<const N: usize> Default for Hist<N> {
    fn default() -> Self {
        Self {
            buckets: [0; N],
            count: 0,
            sum: 0.0,
        }
    }
}

impl<const N: usize> Hist<N> {
    #[inline]
    fn observe(&mut self, bounds: &[f64; N], value: f64) {
        self.count += 1;
        self.sum += value;
        if let Some(i) = bounds.iter().position(|bound| value <= *bound) {
            self.buckets[i] += 1;
        }
    }

    fn merge(&mut self, other: &Self) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
    }

    /// (upper bound, count) pairs as `prometheus-client` encodes them: not cumulative,
    /// `f64::MAX` standing for `+Inf`.
    fn encoder_buckets(&self, bounds: &[f64; N]) -> Vec<(f64, u64)> {
        let finite: u64 = self.buckets.iter().sum();
        bounds
            .iter()
            .copied()
            .zip(self.buckets)
            .chain(std::iter::once((f64::MAX, self.count - finite)))
            .collect()
    }
}

/// Everything recorded for one endpoint.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeriesData {
    pub(crate) outcomes: [u64; 2],
    pub(crate) latency_ms: Hist<11>,
    pub(crate) bytes: Hist<8>,
}

impl SeriesData {
    #[inline]
    fn record(&mut self, event: &RequestEvent<'_>) {
        self.outcomes[usize::from(!event.outcome.is_success())] += 1;
        self.latency_ms
            .observe(&LATENCY_BUCKETS_MS, event.response_time_ms());
        // Precision loss above 2^53 bytes is irrelevant for bucketing.
        #[allow(clippy::cast_precision_loss)]
        self.bytes
            .observe(&BYTES_BUCKETS, event.response_length as f64);
    }

    fn merge(&mut self, other: &Self) {
        self.outcomes[0] += other.outcomes[0];
        self.outcomes[1] += other.outcomes[1];
        self.latency_ms.merge(&other.latency_ms);
        self.bytes.merge(&other.bytes);
    }
}

/// One shard's slot for one endpoint id.
struct Slot {
    // The endpoint's own strings, to notice an id reused by another interner.
    request_type: Arc<str>,
    name: Arc<str>,
    key: SeriesKey,
    data: SeriesData,
}

impl Slot {
    #[inline]
    fn is_for(&self, endpoint: &Endpoint) -> bool {
        Arc::ptr_eq(&self.name, &endpoint.name)
            && Arc::ptr_eq(&self.request_type, &endpoint.request_type)
    }
}

#[derive(Default)]
struct Shard {
    slots: Vec<Option<Slot>>,
    // Slots replaced because their id was reused; kept so their counts stay.
    retired: Vec<Slot>,
}

/// The names seen so far: the cardinality guard.
struct Names {
    kept: HashSet<Arc<str>>,
    warned: bool,
}

/// The exporter's listener: per-thread shards of per-endpoint data (the remote-write
/// sink records with one too).
pub(crate) struct Metrics {
    shards: Box<[Padded<Mutex<Shard>>]>,
    names: Mutex<Names>,
    max_series: usize,
    other: Arc<str>,
}

impl Metrics {
    pub(crate) fn new(max_series: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Padded::default()).collect(),
            names: Mutex::new(Names {
                kept: HashSet::new(),
                warned: false,
            }),
            max_series,
            other: OTHER_NAME.into(),
        }
    }

    /// The labels of an endpoint, applying the cardinality guard. Runs once per
    /// endpoint and shard, never per request.
    #[cold]
    fn resolve(&self, endpoint: &Endpoint) -> SeriesKey {
        let mut names = lock(&self.names);
        let name = if names.kept.contains(&endpoint.name) {
            endpoint.name.clone()
        } else if names.kept.len() < self.max_series {
            names.kept.insert(endpoint.name.clone());
            endpoint.name.clone()
        } else {
            if !names.warned {
                names.warned = true;
                tracing::warn!(
                    "prometheus exporter: more than {} distinct request names; further names \
                     (first: `{}`) are reported as name=\"{OTHER_NAME}\". Name tasks with a \
                     fixed `name` instead of URLs with IDs in them, or raise max_series",
                    self.max_series,
                    endpoint.name
                );
            }
            self.other.clone()
        };
        SeriesKey {
            request_type: endpoint.request_type.clone(),
            name,
        }
    }

    /// Every shard merged by labels.
    pub(crate) fn merged(&self) -> BTreeMap<SeriesKey, SeriesData> {
        let mut merged: BTreeMap<SeriesKey, SeriesData> = BTreeMap::new();
        for shard in self.shards.iter() {
            let shard = lock(&shard.0);
            for slot in shard.slots.iter().flatten().chain(shard.retired.iter()) {
                match merged.get_mut(&slot.key) {
                    Some(data) => data.merge(&slot.data),
                    None => {
                        merged.insert(slot.key.clone(), slot.data.clone());
                    }
                }
            }
        }
        merged
    }
}

impl RequestListener for Metrics {
    #[inline]
    fn on_request(&self, event: &RequestEvent<'_>) {
        let index = event.endpoint.id.0 as usize;
        let mut shard = lock(&self.shards[shard_index()].0);
        if shard.slots.len() <= index {
            shard.slots.resize_with(index + 1, || None);
        }
        let fresh = match &shard.slots[index] {
            Some(slot) => !slot.is_for(event.endpoint),
            None => true,
        };
        if fresh {
            let slot = Slot {
                request_type: event.endpoint.request_type.clone(),
                name: event.endpoint.name.clone(),
                key: self.resolve(event.endpoint),
                data: SeriesData::default(),
            };
            if let Some(old) = shard.slots[index].replace(slot) {
                shard.retired.push(old);
            }
        }
        if let Some(slot) = shard.slots[index].as_mut() {
            slot.data.record(event);
        }
    }
}

#[derive(Clone)]
struct MetricsCollector(Arc<Metrics>);

impl std::fmt::Debug for MetricsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsCollector").finish_non_exhaustive()
    }
}

impl Collector for MetricsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let merged = self.0.merged();
        {
            let mut family =
                encoder.encode_descriptor(REQUESTS, REQUESTS_HELP, None, MetricType::Counter)?;
            for (key, data) in &merged {
                for (outcome, count) in OUTCOMES.iter().zip(data.outcomes) {
                    if count == 0 {
                        continue;
                    }
                    let labels = [
                        ("request_type", Escaped(&key.request_type)),
                        ("name", Escaped(&key.name)),
                        ("outcome", Escaped(outcome)),
                    ];
                    family
                        .encode_family(&labels)?
                        .encode_counter::<NoLabelSet, u64, u64>(&count, None)?;
                }
            }
        }
        {
            let mut family =
                encoder.encode_descriptor(LATENCY, LATENCY_HELP, None, MetricType::Histogram)?;
            for (key, data) in &merged {
                let labels = [
                    ("request_type", Escaped(&key.request_type)),
                    ("name", Escaped(&key.name)),
                ];
                let h = &data.latency_ms;
                family
                    .encode_family(&labels)?
                    .encode_histogram::<NoLabelSet>(
                        h.sum,
                        h.count,
                        &h.encoder_buckets(&LATENCY_BUCKETS_MS),
                        None,
                    )?;
            }
        }
        {
            let mut family =
                encoder.encode_descriptor(BYTES, BYTES_HELP, None, MetricType::Histogram)?;
            for (key, data) in &merged {
                let labels = [
                    ("request_type", Escaped(&key.request_type)),
                    ("name", Escaped(&key.name)),
                ];
                let h = &data.bytes;
                family
                    .encode_family(&labels)?
                    .encode_histogram::<NoLabelSet>(
                        h.sum,
                        h.count,
                        &h.encoder_buckets(&BYTES_BUCKETS),
                        None,
                    )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EndpointInterner, Outcome};
    use std::time::{Duration, SystemTime};

    fn event<'a>(endpoint: &'a Endpoint, ms: u64, bytes: u64, ok: bool) -> RequestEvent<'a> {
        RequestEvent {
            endpoint,
            url: None,
            response: None,
            retry: false,
            start_time: SystemTime::now(),
            response_time: Duration::from_millis(ms),
            response_length: bytes,
            status: Some(if ok { 200 } else { 500 }),
            outcome: if ok {
                Outcome::Success
            } else {
                Outcome::Failure("HTTP 500")
            },
        }
    }

    fn exposition(metrics: &Arc<Metrics>, openmetrics: bool) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(MetricsCollector(metrics.clone())));
        encode(&registry, openmetrics).expect("encode")
    }

    #[test]
    fn records_merges_and_encodes_both_formats() {
        let interner = EndpointInterner::default();
        let a = interner.intern("GET", "/a");
        let b = interner.intern("POST", "we \"quote\" \\ and\nnewline");
        let metrics = Arc::new(Metrics::new(10));
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let metrics = metrics.clone();
                let (a, b) = (a.clone(), b.clone());
                scope.spawn(move || {
                    for i in 0..100u64 {
                        metrics.on_request(&event(&a, 7, 100, true));
                        if i % 10 == 0 {
                            metrics.on_request(&event(&b, 20_000, 5_000_000, false));
                        }
                    }
                });
            }
        });
        let om = exposition(&metrics, true);
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(om.contains("# TYPE loaddensity_requests counter\n"), "{om}");
        assert!(
            om.contains(
                "loaddensity_requests_total{request_type=\"GET\",name=\"/a\",outcome=\"success\"} 400\n"
            ),
            "{om}"
        );
        assert!(
            om.contains("name=\"we \\\"quote\\\" \\\\ and\\nnewline\",outcome=\"failure\"} 40\n"),
            "{om}"
        );
        assert!(
            om.contains(
                "loaddensity_request_latency_ms_bucket{le=\"5.0\",request_type=\"GET\",name=\"/a\"} 0\n"
            ),
            "{om}"
        );
        assert!(
            om.contains(
                "loaddensity_request_latency_ms_bucket{le=\"10.0\",request_type=\"GET\",name=\"/a\"} 400\n"
            ),
            "{om}"
        );
        assert!(om.contains("newline\"} 40\n"), "{om}");
        assert!(!om.contains("outcome=\"failure\"} 0"), "{om}");

        let text = exposition(&metrics, false);
        assert!(!text.contains("# EOF"), "{text}");
        assert!(
            text.contains("# HELP loaddensity_requests_total Requests"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE loaddensity_requests_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE loaddensity_response_bytes histogram\n"),
            "{text}"
        );
        assert!(
            text.contains("loaddensity_response_bytes_sum{request_type=\"GET\",name=\"/a\"} 40000"),
            "{text}"
        );
    }

    #[test]
    fn cardinality_is_bounded() {
        let interner = EndpointInterner::default();
        let metrics = Arc::new(Metrics::new(3));
        for i in 0..10 {
            let endpoint = interner.intern("GET", &format!("/item/{i}"));
            metrics.on_request(&event(&endpoint, 1, 1, true));
            metrics.on_request(&event(&endpoint, 1, 1, true));
        }
        let merged = metrics.merged();
        assert_eq!(merged.len(), 4);
        let other = merged
            .iter()
            .find(|(key, _)| &*key.name == OTHER_NAME)
            .expect("__other__ series");
        assert_eq!(other.1.outcomes[0], 14);
        assert!(lock(&metrics.names).warned);
    }

    #[test]
    fn reused_ids_keep_their_own_labels() {
        let first = EndpointInterner::default();
        let second = EndpointInterner::default();
        let a = first.intern("GET", "/a");
        let b = second.intern("GET", "/b");
        assert_eq!(a.id, b.id);
        let metrics = Arc::new(Metrics::new(10));
        metrics.on_request(&event(&a, 1, 1, true));
        metrics.on_request(&event(&b, 1, 1, true));
        metrics.on_request(&event(&b, 1, 1, true));
        let merged = metrics.merged();
        let names: Vec<(&str, u64)> = merged
            .iter()
            .map(|(k, d)| (&*k.name, d.outcomes[0]))
            .collect();
        assert_eq!(names, vec![("/a", 1), ("/b", 2)]);
    }

    #[test]
    fn accept_negotiation() {
        let check =
            |value: &str| wants_openmetrics([HeaderValue::from_str(value).expect("header")].iter());
        assert!(check(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        assert!(check("application/openmetrics-text"));
        assert!(!check("text/plain"));
        assert!(!check("*/*"));
        assert!(!check("application/openmetrics-text; q=0"));
    }

    #[test]
    fn addresses() {
        assert!(parse_addr("127.0.0.1").is_ok());
        assert!(parse_addr("[::1]").is_ok());
        assert!(parse_addr("::").is_ok());
        assert!(parse_addr("localhost").is_ok());
        assert!(matches!(
            parse_addr("not an address"),
            Err(PrometheusError::InvalidAddr(_))
        ));
    }
}
