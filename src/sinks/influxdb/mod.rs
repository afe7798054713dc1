//! The InfluxDB sink: every request as one line-protocol point, sent in batches over
//! UDP or HTTP(S), never in the way of the load.
//!
//! - Point: measurement `loaddensity_request` (by default); tags `request_type` and
//!   `name`; fields `latency_ms` (float), `response_bytes` (integer), `success`
//!   (boolean) and, on failure only, `error` (string, at most 512 characters); the
//!   request's start as a nanosecond timestamp. See [`line_protocol`].
//! - The request path only pushes a small record into a bounded queue
//!   (`max_pending_points`); when it is full the point is dropped and counted.
//! - A background thread encodes the records and flushes every `flush_interval` or at
//!   `batch_size` lines: UDP datagrams of at most `udp_payload_bytes` holding whole
//!   lines, or an HTTP POST (InfluxDB 1.x `/write?db=`, 2.x/3.x/Cloud
//!   `/api/v2/write?org=&bucket=`, VictoriaMetrics, Telegraf...), gzip optional.
//! - Drops and write errors are counted ([`influxdb_sink_report`], the summary's `sinks`
//!   section) and warned about at most every 10 s. Tokens are never printed.
//!
//! One sink runs per run ([`crate::sinks::Sinks`]): [`start_influxdb_sink`] while it runs
//! changes nothing, and [`stop_influxdb_sink`] detaches it, flushes what is pending
//! (bounded by `timeout`) and ends the background thread.

mod flusher;
pub mod line_protocol;
mod queue;
pub(crate) mod transport;

pub use transport::Token;

use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Uri;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::endpoint::{Endpoint, Refusal, credential_free_endpoint, shown_url, without_query};
use super::{Attached, Sinks, lock};
use flusher::{FlushSettings, Flusher, Sender};
use queue::{Counters, Queue};
use transport::{HttpTarget, HttpTransport, UdpTransport};

/// Default transport, as in LoadDensity.
pub const DEFAULT_TRANSPORT: Transport = Transport::Udp;
/// Default UDP host.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// Default UDP port (InfluxDB's UDP listener).
pub const DEFAULT_PORT: u16 = 8089;
/// Default measurement.
pub const DEFAULT_MEASUREMENT: &str = "loaddensity_request";
/// Default write timeout, and bound of the final flush, in seconds.
pub const DEFAULT_TIMEOUT_SECS: f64 = 2.0;
/// Default flush interval, in milliseconds.
pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 1000;
/// Default lines per batch.
pub const DEFAULT_BATCH_SIZE: usize = 5000;
/// Default largest UDP datagram payload, in bytes: fits a 1500-byte Ethernet MTU.
pub const DEFAULT_UDP_PAYLOAD_BYTES: usize = 1400;
/// Default largest UDP datagram payload to a loopback address, in bytes. Loopback's MTU
/// is 64 KiB, so such a datagram is never fragmented, and one `send` carries ~250 lines
/// instead of ~10: the kernel's per-datagram cost, most of the sink's, is cut ~20 times.
pub const LOOPBACK_UDP_PAYLOAD_BYTES: usize = 32_768;
/// Default bound of the queue, in points.
pub const DEFAULT_MAX_PENDING_POINTS: usize = 500_000;

/// How points are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP datagrams to `host:port` (fire and forget).
    Udp,
    /// HTTP(S) POSTs to `url`.
    Http,
}

impl Transport {
    /// `udp` or `http`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Http => "http",
        }
    }
}

impl FromStr for Transport {
    type Err = InfluxError;

    /// `udp` or `http`, in any case.
    fn from_str(text: &str) -> Result<Self, InfluxError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "udp" => Ok(Transport::Udp),
            "http" => Ok(Transport::Http),
            _ => Err(InfluxError::UnknownTransport(text.to_string())),
        }
    }
}

/// Settings of [`start_influxdb_sink`]. `Debug` never shows the token, nor the URL's
/// query (which may hold credentials).
#[derive(Clone, PartialEq)]
pub struct InfluxOptions {
    /// UDP (default) or HTTP.
    pub transport: Transport,
    /// UDP: host name or IP address. Default `127.0.0.1`.
    pub host: String,
    /// UDP: port. Default 8089.
    pub port: u16,
    /// HTTP: the write URL, `http://` or `https://`, e.g.
    /// `http://127.0.0.1:8086/write?db=loaddensity` or
    /// `https://.../api/v2/write?org=ORG&bucket=BUCKET`. Required with HTTP.
    pub url: Option<String>,
    /// HTTP: sent as `Authorization: Token <token>`.
    pub token: Option<Token>,
    /// The measurement. Default `loaddensity_request`.
    pub measurement: String,
    /// HTTP: the most one write may take; also bounds the final flush at stop.
    /// Default 2 s.
    pub timeout: Duration,
    /// Flush at least this often. Default 1 s.
    pub flush_interval: Duration,
    /// Flush when this many lines are waiting. Default 5000.
    pub batch_size: usize,
    /// UDP: the largest datagram payload. Default (`None`): 1400 bytes, or 32768 to a
    /// loopback address ([`udp_payload_bytes_for`]).
    pub udp_payload_bytes: Option<usize>,
    /// Points held at most (queued, being sent, waiting for a retry); beyond it new
    /// points are dropped and counted. Default 500,000.
    pub max_pending_points: usize,
    /// HTTP: gzip the bodies. Default false.
    pub gzip: bool,
}

impl Default for InfluxOptions {
    fn default() -> Self {
        Self {
            transport: DEFAULT_TRANSPORT,
            host: DEFAULT_HOST.to_string(),
            port: DEFAULT_PORT,
            url: None,
            token: None,
            measurement: DEFAULT_MEASUREMENT.to_string(),
            timeout: Duration::from_secs_f64(DEFAULT_TIMEOUT_SECS),
            flush_interval: Duration::from_millis(DEFAULT_FLUSH_INTERVAL_MS),
            batch_size: DEFAULT_BATCH_SIZE,
            udp_payload_bytes: None,
            max_pending_points: DEFAULT_MAX_PENDING_POINTS,
            gzip: false,
        }
    }
}

impl std::fmt::Debug for InfluxOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfluxOptions")
            .field("transport", &self.transport)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("url", &self.url.as_deref().map(without_query))
            .field("token", &self.token)
            .field("measurement", &self.measurement)
            .field("timeout", &self.timeout)
            .field("flush_interval", &self.flush_interval)
            .field("batch_size", &self.batch_size)
            .field("udp_payload_bytes", &self.udp_payload_bytes)
            .field("max_pending_points", &self.max_pending_points)
            .field("gzip", &self.gzip)
            .finish()
    }
}

/// The default largest datagram payload to `addr`: [`LOOPBACK_UDP_PAYLOAD_BYTES`] to a
/// loopback address, else [`DEFAULT_UDP_PAYLOAD_BYTES`].
pub fn udp_payload_bytes_for(addr: &SocketAddr) -> usize {
    if addr.ip().is_loopback() {
        LOOPBACK_UDP_PAYLOAD_BYTES
    } else {
        DEFAULT_UDP_PAYLOAD_BYTES
    }
}

/// Why the sink could not start. Messages never include a token or a URL's query.
#[derive(Debug, thiserror::Error)]
pub enum InfluxError {
    /// `transport` is neither `udp` nor `http`.
    #[error("unknown transport `{0}`: expected `udp` or `http`")]
    UnknownTransport(String),
    /// HTTP without a URL.
    #[error("transport `http` needs a `url`, e.g. http://127.0.0.1:8086/write?db=loaddensity")]
    MissingUrl,
    /// The URL's scheme is not http or https.
    #[error("the url must start with http:// or https:// (got `{0}`); nothing was sent")]
    UnsupportedScheme(String),
    /// The URL cannot be used.
    #[error("invalid url: {0}")]
    InvalidUrl(String),
    /// The UDP host cannot be resolved.
    #[error("cannot resolve `{host}:{port}`: {reason}")]
    UnknownHost {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// Why.
        reason: String,
    },
    /// A setting is out of range.
    #[error("{name}: {message}")]
    InvalidSetting {
        /// The setting's name, as in the action.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The socket, runtime or thread could not be set up.
    #[error("cannot start the influxdb sink: {0}")]
    Start(#[source] std::io::Error),
}

/// Where points go, once checked.
enum Destination {
    Udp(SocketAddr),
    Http(HttpTarget),
}

impl Destination {
    fn describe(&self) -> String {
        match self {
            Destination::Udp(addr) => format!("udp://{addr}"),
            Destination::Http(target) => target.display(),
        }
    }
}

/// Checks options without side effects (no socket, nothing sent); the UDP host is
/// not resolved here.
pub fn check_options(options: &InfluxOptions) -> Result<(), InfluxError> {
    check_settings(options)?;
    if options.transport == Transport::Http {
        http_target(options)?;
    }
    Ok(())
}

fn check_settings(options: &InfluxOptions) -> Result<(), InfluxError> {
    let invalid = |name, message: &str| {
        Err(InfluxError::InvalidSetting {
            name,
            message: message.to_string(),
        })
    };
    if options.measurement.is_empty() {
        return invalid("measurement", "must not be empty");
    }
    if options.measurement.starts_with('#') {
        return invalid(
            "measurement",
            "must not start with `#` (a comment in line protocol)",
        );
    }
    if options.batch_size == 0 {
        return invalid("batch_size", "must be at least 1");
    }
    if options.max_pending_points == 0 {
        return invalid("max_pending_points", "must be at least 1");
    }
    if options
        .udp_payload_bytes
        .is_some_and(|bytes| !(64..=65_507).contains(&bytes))
    {
        return invalid("udp_payload_bytes", "must be between 64 and 65507");
    }
    if options.flush_interval.is_zero() {
        return invalid("flush_interval_ms", "must be at least 1");
    }
    if options.timeout.is_zero() {
        return invalid("timeout", "must be positive");
    }
    Ok(())
}

fn http_target(options: &InfluxOptions) -> Result<HttpTarget, InfluxError> {
    let url = options
        .url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or(InfluxError::MissingUrl)?;
    let Endpoint {
        url: parsed,
        host,
        port,
        https,
    } = credential_free_endpoint(url, ": pass a `token`").map_err(|refusal| match refusal {
        Refusal::UnsupportedScheme(scheme) => InfluxError::UnsupportedScheme(scheme),
        Refusal::InvalidUrl(why) => InfluxError::InvalidUrl(why),
    })?;
    let uri: Uri = parsed
        .as_str()
        .parse()
        .map_err(|e| InfluxError::InvalidUrl(format!("`{}`: {e}", shown_url(url))))?;
    Ok(HttpTarget {
        uri,
        host,
        port,
        https,
        token: options.token.clone(),
        gzip: options.gzip,
    })
}

fn destination(options: &InfluxOptions) -> Result<Destination, InfluxError> {
    check_settings(options)?;
    match options.transport {
        Transport::Http => Ok(Destination::Http(http_target(options)?)),
        Transport::Udp => {
            let unknown = |reason: String| InfluxError::UnknownHost {
                host: options.host.clone(),
                port: options.port,
                reason,
            };
            let host = options.host.trim();
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            let addrs: Vec<SocketAddr> = (host, options.port)
                .to_socket_addrs()
                .map_err(|e| unknown(e.to_string()))?
                .collect();
            let addr = addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .copied()
                .ok_or_else(|| unknown("no address".into()))?;
            Ok(Destination::Udp(addr))
        }
    }
}

struct Running {
    attached: Attached,
    target: String,
}

/// The counters of the running sink, or of the last one, kept after stop.
struct Report {
    counters: Arc<Counters>,
    transport: Transport,
    target: String,
}

/// This sink's state in one run's [`Sinks`].
#[derive(Default)]
pub(crate) struct SinkState {
    running: Mutex<Option<Running>>,
    report: Mutex<Option<Report>>,
}

/// Starts the sink: checks the options (before anything is sent), attaches a listener
/// to the request event of `sinks` and starts the background thread. Returns true
/// when it started, false when it was already running (the options are then ignored,
/// as in LoadDensity).
pub fn start_influxdb_sink(sinks: &Sinks, options: InfluxOptions) -> Result<bool, InfluxError> {
    let mut running = lock(&sinks.influxdb.running);
    if let Some(current) = running.as_ref() {
        tracing::info!(
            "influxdb sink already running, sending to {}; start ignored",
            current.target
        );
        return Ok(false);
    }
    let destination = destination(&options)?;
    let target = destination.describe();
    let sender = match destination {
        Destination::Udp(addr) => Sender::Udp(
            UdpTransport::connect(
                addr,
                options
                    .udp_payload_bytes
                    .unwrap_or_else(|| udp_payload_bytes_for(&addr)),
            )
            .map_err(InfluxError::Start)?,
        ),
        Destination::Http(target) => Sender::Http(Box::new(
            HttpTransport::new(target).map_err(InfluxError::InvalidUrl)?,
        )),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(InfluxError::Start)?;
    let counters = Arc::new(Counters::default());
    let queue = Arc::new(Queue::new(options.max_pending_points, counters.clone()));
    let flusher = Flusher::new(
        queue.clone(),
        sender,
        FlushSettings {
            measurement: options.measurement.clone(),
            flush_interval: options.flush_interval,
            batch_size: options.batch_size,
            timeout: options.timeout,
        },
    );
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let thread = std::thread::Builder::new()
        .name("loaddensity-influxdb".into())
        .spawn(move || runtime.block_on(flusher.run(token)))
        .map_err(InfluxError::Start)?;
    counters
        .running
        .store(true, std::sync::atomic::Ordering::Relaxed);
    *lock(&sinks.influxdb.report) = Some(Report {
        counters,
        transport: options.transport,
        target: target.clone(),
    });
    let listener = sinks.listeners().add(queue);
    tracing::info!(
        "influxdb sink sending {} points to {target}",
        options.transport.as_str()
    );
    *running = Some(Running {
        attached: Attached {
            listener,
            shutdown,
            thread,
        },
        target,
    });
    Ok(true)
}

/// Stops the sink: detaches its listener, sends what is pending (for at most the
/// `timeout` it was started with) and ends the background thread. Returns false when
/// it was not running. Its counters stay readable ([`influxdb_sink_report`]).
pub fn stop_influxdb_sink(sinks: &Sinks) -> bool {
    let mut running = lock(&sinks.influxdb.running);
    let Some(current) = running.take() else {
        return false;
    };
    current
        .attached
        .detach_and_join(sinks.listeners(), "influxdb sink");
    if let Some(report) = lock(&sinks.influxdb.report).as_ref() {
        report
            .counters
            .running
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }
    tracing::info!("influxdb sink to {} stopped", current.target);
    true
}

/// True while the sink runs.
pub fn influxdb_sink_running(sinks: &Sinks) -> bool {
    lock(&sinks.influxdb.running).is_some()
}

/// The counters of the running sink, or of the last one stopped (`null` when none
/// ever started): `points_sent`, `points_dropped` (of which `dropped_queue_full`),
/// `write_errors`, `retries`, `batches_sent`, `bytes_sent`, `last_error`...
pub fn influxdb_sink_report(sinks: &Sinks) -> Value {
    match lock(&sinks.influxdb.report).as_ref() {
        Some(report) => report
            .counters
            .report(report.transport.as_str(), &report.target),
        None => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(url: &str) -> InfluxOptions {
        InfluxOptions {
            transport: Transport::Http,
            url: Some(url.into()),
            ..InfluxOptions::default()
        }
    }

    #[test]
    fn transports() {
        assert_eq!("UDP".parse::<Transport>().ok(), Some(Transport::Udp));
        assert_eq!(" Http ".parse::<Transport>().ok(), Some(Transport::Http));
        let error = "tcp".parse::<Transport>().err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("unknown transport `tcp`: expected `udp` or `http`")
        );
    }

    #[test]
    fn urls() {
        assert!(check_options(&http("http://127.0.0.1:8086/write?db=x")).is_ok());
        assert!(check_options(&http("HTTPS://example.com/api/v2/write?org=o&bucket=b")).is_ok());
        for bad in [
            "file:///etc/passwd",
            "gopher://example.com/",
            "example.com/write",
        ] {
            let error = check_options(&http(bad)).err().map(|e| e.to_string());
            assert!(
                error
                    .as_deref()
                    .is_some_and(|e| e.contains("must start with http:// or https://")),
                "{bad}: {error:?}"
            );
        }
        let missing = InfluxOptions {
            transport: Transport::Http,
            ..InfluxOptions::default()
        };
        assert!(matches!(
            check_options(&missing),
            Err(InfluxError::MissingUrl)
        ));
        assert!(check_options(&http("http://u:pw@host/write")).is_err());
        let target = http_target(&http("https://[::1]/api/v2/write?org=o")).expect("target");
        assert_eq!((target.host.as_str(), target.port), ("::1", 443));
        assert_eq!(target.display(), "https://[::1]:443/api/v2/write");
    }

    #[test]
    fn settings() {
        let bad = InfluxOptions {
            batch_size: 0,
            ..InfluxOptions::default()
        };
        assert!(check_options(&bad).is_err());
        let bad = InfluxOptions {
            udp_payload_bytes: Some(10),
            ..InfluxOptions::default()
        };
        assert!(check_options(&bad).is_err());
        assert!(check_options(&InfluxOptions::default()).is_ok());
    }

    #[test]
    fn debug_hides_secrets() {
        let options = InfluxOptions {
            token: Some(Token::new("s3cr3t-token")),
            ..http("http://127.0.0.1:8086/write?db=x&p=pa55")
        };
        let debug = format!("{options:?}");
        assert!(
            !debug.contains("s3cr3t") && !debug.contains("pa55"),
            "{debug}"
        );
    }
}
