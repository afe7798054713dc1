//! The Prometheus remote-write sink: pushes the pull exporter's series (same names,
//! labels and buckets) plus `job="loaddensity"` and `instance` to a remote-write 1.0
//! receiver (Prometheus with `--web.enable-remote-write-receiver`, Mimir, Thanos,
//! VictoriaMetrics...) every `interval`, and once more when it stops. A pod of a
//! Kubernetes Job ends before a scrape would see its last seconds; a push does not.
//!
//! Requests are recorded by the same sharded listener as the pull exporter, so the
//! request path costs one uncontended lock. A background thread takes a snapshot of
//! the cumulative counts each interval, encodes it (protobuf, snappy) and posts it.
//! Memory is bounded by the series count (the `max_series` guard): only the latest
//! snapshot is ever sent, so a failed push loses resolution, never counts. A failed
//! push is retried a few times, then counted in the report and logged.

mod proto;
mod series;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::endpoint::{Endpoint, http_endpoint};
use super::http_post::{HttpPoster, PostError};
use super::prometheus::{DEFAULT_MAX_SERIES, Metrics};
use super::{Attached, Sinks, lock};

/// Default push interval, in milliseconds.
pub const DEFAULT_INTERVAL_MS: u64 = 5000;
/// Default timeout of one push, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Attempts per push before it counts as failed.
pub const ATTEMPTS: u32 = 3;
/// The `job` label of every series.
pub const JOB: &str = "loaddensity";

/// Settings of [`start_prometheus_remote_write`].
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteWriteOptions {
    /// The receiver, e.g. `http://prometheus:9090/api/v1/write`.
    pub url: String,
    /// Time between pushes. Default 5 s.
    pub interval: Duration,
    /// Extra request headers (e.g. `Authorization`, `X-Scope-OrgID`); their values
    /// are never logged.
    pub headers: Vec<(String, String)>,
    /// Timeout of one push attempt. Default 10 s.
    pub timeout: Duration,
    /// Distinct `name` label values kept before the rest fold into `__other__`.
    pub max_series: usize,
}

impl Default for RemoteWriteOptions {
    fn default() -> Self {
        Self {
            url: String::new(),
            interval: Duration::from_millis(DEFAULT_INTERVAL_MS),
            headers: Vec::new(),
            timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
            max_series: DEFAULT_MAX_SERIES,
        }
    }
}

impl std::fmt::Debug for RemoteWriteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWriteOptions")
            .field("url", &redacted_url(&self.url))
            .field("interval", &self.interval)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .field("max_series", &self.max_series)
            .finish()
    }
}

/// Why the sink could not start.
#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    /// The URL is not an http(s) URL with a host.
    #[error("`{0}`: expected an http:// or https:// URL, e.g. http://127.0.0.1:9090/api/v1/write")]
    InvalidUrl(String),
    /// A header name or value cannot be sent.
    #[error(
        "header `{0}`: not a valid HTTP header name, or its value holds characters a header cannot carry"
    )]
    InvalidHeader(String),
    /// The interval or the timeout is zero.
    #[error("{0} must be at least 1 ms")]
    InvalidDuration(&'static str),
    /// `max_series` is 0.
    #[error("max_series must be at least 1")]
    InvalidMaxSeries,
    /// The thread or its runtime could not be started.
    #[error("cannot start the remote-write thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// The parsed target of the pushes.
#[derive(Clone)]
struct Target {
    uri: Uri,
    host: String,
    port: u16,
    https: bool,
    /// The `Host` header: the URL's authority, without credentials.
    host_header: HeaderValue,
    headers: HeaderMap,
}

impl Target {
    /// The client that pushes to it, with the remote-write headers and the user's.
    fn into_poster(self) -> HttpPoster {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, self.host_header);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
        headers.insert(USER_AGENT, HeaderValue::from_static("loaddensity"));
        headers.insert(
            "x-prometheus-remote-write-version",
            HeaderValue::from_static("0.1.0"),
        );
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        let shown = redacted_url(&self.uri.to_string());
        HttpPoster::new(&self.uri, self.host, self.port, self.https, headers, shown)
    }
}

/// Checks options without side effects.
pub fn check_remote_write_options(options: &RemoteWriteOptions) -> Result<(), RemoteWriteError> {
    target(options).map(|_| ())
}

fn target(options: &RemoteWriteOptions) -> Result<Target, RemoteWriteError> {
    let invalid = || RemoteWriteError::InvalidUrl(redacted_url(&options.url));
    let Endpoint {
        url: parsed,
        host,
        port,
        https,
    } = http_endpoint(options.url.trim()).map_err(|_| invalid())?;
    let uri: Uri = parsed.as_str().parse().map_err(|_| invalid())?;
    let authority = uri.authority().map_or(host.as_str(), |a| a.as_str());
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host_header = HeaderValue::from_str(authority).map_err(|_| invalid())?;
    if options.interval.is_zero() {
        return Err(RemoteWriteError::InvalidDuration("interval_ms"));
    }
    if options.timeout.is_zero() {
        return Err(RemoteWriteError::InvalidDuration("timeout_ms"));
    }
    if options.max_series == 0 {
        return Err(RemoteWriteError::InvalidMaxSeries);
    }
    let mut headers = HeaderMap::new();
    for (name, value) in &options.headers {
        let header = HeaderName::try_from(name.as_str())
            .map_err(|_| RemoteWriteError::InvalidHeader(name.clone()))?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| RemoteWriteError::InvalidHeader(name.clone()))?;
        value.set_sensitive(true);
        headers.insert(header, value);
    }
    Ok(Target {
        uri,
        host,
        port,
        https,
        host_header,
        headers,
    })
}

/// Scheme, host, port and path of a URL, without credentials or query.
fn redacted_url(text: &str) -> String {
    match url::Url::parse(text.trim()) {
        Ok(url) => format!(
            "{}://{}{}{}",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.port().map(|p| format!(":{p}")).unwrap_or_default(),
            url.path()
        ),
        Err(_) => "<not a URL>".to_string(),
    }
}

/// What the sink did, for the summary's `sinks` section.
#[derive(Debug, Default)]
struct Counters {
    pushes: AtomicU64,
    failed_pushes: AtomicU64,
    retries: AtomicU64,
    series: AtomicU64,
    last_error: Mutex<Option<String>>,
}

struct Running {
    attached: Attached,
}

/// This sink's state in one run's [`Sinks`].
#[derive(Default)]
pub(crate) struct SinkState {
    running: Mutex<Option<Running>>,
    last: Mutex<Option<(String, Arc<Counters>)>>,
}

/// Starts the sink: attaches its listener to the request event of `sinks` and
/// pushes every `interval`. The `instance` label is the instance name
/// ([`crate::instance`]) or, when none is set, the host name. When the sink is
/// already running this logs so and changes nothing. Counts start from zero.
pub fn start_prometheus_remote_write(
    sinks: &Sinks,
    options: &RemoteWriteOptions,
) -> Result<(), RemoteWriteError> {
    let target = target(options)?;
    let mut running = lock(&sinks.remote_write.running);
    if running.is_some() {
        tracing::info!("prometheus remote write already running");
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RemoteWriteError::Thread)?;
    let metrics = Arc::new(Metrics::new(options.max_series));
    let counters = Arc::new(Counters::default());
    let instance = crate::instance::instance_name().unwrap_or_else(crate::instance::host_name);
    let shutdown = CancellationToken::new();
    let pusher = Pusher {
        poster: target.into_poster(),
        timeout: options.timeout,
        metrics: metrics.clone(),
        counters: counters.clone(),
        instance,
    };
    let (interval, token) = (options.interval, shutdown.clone());
    let thread = std::thread::Builder::new()
        .name("loaddensity-remote-write".into())
        .spawn(move || runtime.block_on(pusher.run(interval, token)))
        .map_err(RemoteWriteError::Thread)?;
    let listener = sinks.listeners().add(metrics);
    let url = redacted_url(&options.url);
    tracing::info!(
        "prometheus remote write: pushing to {url} every {:?}",
        options.interval
    );
    *lock(&sinks.remote_write.last) = Some((url, counters));
    *running = Some(Running {
        attached: Attached {
            listener,
            shutdown,
            thread,
        },
    });
    Ok(())
}

/// Stops the sink: detaches its listener, makes the final push (with its retries) and
/// waits for it. Returns false when it was not running.
pub fn stop_prometheus_remote_write(sinks: &Sinks) -> bool {
    let mut running = lock(&sinks.remote_write.running);
    let Some(current) = running.take() else {
        return false;
    };
    current
        .attached
        .detach_and_join(sinks.listeners(), "prometheus remote write");
    true
}

/// True while the sink runs.
pub fn prometheus_remote_write_running(sinks: &Sinks) -> bool {
    lock(&sinks.remote_write.running).is_some()
}

/// The counters of the running or last sink: pushes, failed pushes, retries, series
/// in the last push and the last error; `null` when it never ran.
pub fn prometheus_remote_write_report(sinks: &Sinks) -> Value {
    let last = lock(&sinks.remote_write.last);
    let Some((url, counters)) = last.as_ref() else {
        return Value::Null;
    };
    json!({
        "url": url,
        "pushes": counters.pushes.load(Ordering::Relaxed),
        "failed_pushes": counters.failed_pushes.load(Ordering::Relaxed),
        "retries": counters.retries.load(Ordering::Relaxed),
        "series": counters.series.load(Ordering::Relaxed),
        "last_error": *lock(&counters.last_error),
    })
}

struct Pusher {
    poster: HttpPoster,
    timeout: Duration,
    metrics: Arc<Metrics>,
    counters: Arc<Counters>,
    instance: String,
}

impl Pusher {
    async fn run(mut self, interval: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => self.push(false).await,
                () = shutdown.cancelled() => break,
            }
        }
        // The listener is detached by now: this push holds every request.
        self.push(true).await;
    }

    /// Sends the current snapshot, retrying failures that may pass.
    async fn push(&mut self, last: bool) {
        let merged = self.metrics.merged();
        if merged.is_empty() && !last {
            return;
        }
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let request = series::write_request(
            &merged,
            &[("job", JOB), ("instance", &self.instance)],
            now_ms,
        );
        let series = request.timeseries.len() as u64;
        let body = match series::encode(&request) {
            Ok(body) => Bytes::from(body),
            Err(error) => {
                self.failed(format!("snappy: {error}"));
                return;
            }
        };
        let mut backoff = Duration::from_millis(250);
        for attempt in 1..=ATTEMPTS {
            let outcome = self.poster.post(body.clone(), self.timeout).await;
            match outcome.map_err(Failure::from) {
                Ok(()) => {
                    self.counters.pushes.fetch_add(1, Ordering::Relaxed);
                    self.counters.series.store(series, Ordering::Relaxed);
                    return;
                }
                Err(Failure::Final(message)) => {
                    self.failed(message);
                    return;
                }
                Err(Failure::Retry(message)) => {
                    self.poster.reset();
                    if attempt == ATTEMPTS {
                        self.failed(message);
                        return;
                    }
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
    }

    fn failed(&self, message: String) {
        let failures = self.counters.failed_pushes.fetch_add(1, Ordering::Relaxed) + 1;
        // Log the first failure and then every tenth, not one line per interval.
        if failures == 1 || failures.is_multiple_of(10) {
            tracing::warn!("prometheus remote write: push failed ({failures} so far): {message}");
        }
        *lock(&self.counters.last_error) = Some(message);
    }
}

/// Why one attempt failed.
enum Failure {
    /// Worth another attempt (connection, timeout, 5xx, 429).
    Retry(String),
    /// Would fail again (4xx, bad request).
    Final(String),
}

impl From<PostError> for Failure {
    fn from(error: PostError) -> Self {
        let message = error.to_string();
        match error {
            // As the spec says: retry 5xx and 429, never other 4xx.
            PostError::Status { status, .. }
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS =>
            {
                Failure::Retry(message)
            }
            PostError::Status { .. } | PostError::TlsName(_) => Failure::Final(message),
            PostError::Timeout(_) | PostError::Io(_) => Failure::Retry(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_and_redacted() {
        let options = |url: &str| RemoteWriteOptions {
            url: url.into(),
            ..RemoteWriteOptions::default()
        };
        assert!(check_remote_write_options(&options("http://127.0.0.1:9090/api/v1/write")).is_ok());
        assert!(check_remote_write_options(&options("ftp://host/x")).is_err());
        assert!(check_remote_write_options(&options("not a url")).is_err());
        let mut bad_header = options("http://[::1]:9090/api/v1/write");
        bad_header.headers = vec![("bad header".into(), "x".into())];
        assert!(matches!(
            check_remote_write_options(&bad_header),
            Err(RemoteWriteError::InvalidHeader(_))
        ));
        let mut secret = options("https://user:pw@host:9443/push?token=abc");
        secret.headers = vec![("Authorization".into(), "Bearer s3cret".into())];
        let shown = format!("{secret:?}");
        assert!(!shown.contains("pw") && !shown.contains("abc") && !shown.contains("s3cret"));
        assert!(shown.contains("https://host:9443/push"), "{shown}");
    }
}
