//! The transport side: an exporter wrapper that counts export outcomes and logs
//! failures at a limited rate, and the HTTP client of the OTLP/HTTP transport.
//!
//! The SDK's periodic reader calls the exporter on a thread of its own, so neither a
//! slow nor a dead collector ever reaches the request path. The HTTP client runs each
//! request on the exporter's own runtime and bounds it by the export timeout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONNECTION, HOST};
use http::{HeaderName, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::OtelError;
use crate::sinks::lock;

/// At most one log line about failed exports per this interval.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// Largest response body read from a collector.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Counts of export outcomes, shared with the summary's `sinks` section.
#[derive(Debug, Default)]
pub(super) struct ExportStats {
    exports: AtomicU64,
    errors: AtomicU64,
    log: Mutex<LogState>,
}

#[derive(Debug, Default)]
struct LogState {
    last_logged: Option<Instant>,
    unlogged: u64,
    last_error: Option<String>,
}

impl ExportStats {
    /// Successful exports.
    pub(super) fn exports(&self) -> u64 {
        self.exports.load(Ordering::Relaxed)
    }

    /// Failed exports.
    pub(super) fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The text of the latest failure.
    pub(super) fn last_error(&self) -> Option<String> {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_error
            .clone()
    }

    fn record(&self, result: &OTelSdkResult) {
        let Err(error) = result else {
            self.exports.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.errors.fetch_add(1, Ordering::Relaxed);
        let text = error.to_string();
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.unlogged += 1;
        let now = Instant::now();
        if log
            .last_logged
            .is_none_or(|at| now.duration_since(at) >= LOG_EVERY)
        {
            tracing::warn!(
                "opentelemetry exporter: {} export(s) failed since the last message (the load goes on; \
                 failed exports are counted in the summary's sinks section); latest: {text}",
                log.unlogged
            );
            log.unlogged = 0;
            log.last_logged = Some(now);
        }
        log.last_error = Some(text);
    }
}

/// Wraps the OTLP exporter to count its outcomes.
pub(super) struct CountingExporter<E> {
    inner: E,
    stats: Arc<ExportStats>,
}

impl<E> CountingExporter<E> {
    pub(super) fn new(inner: E, stats: Arc<ExportStats>) -> Self {
        Self { inner, stats }
    }
}

impl<E: PushMetricExporter> PushMetricExporter for CountingExporter<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.inner.export(metrics).await;
        self.stats.record(&result);
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

/// The OTLP/HTTP client: HTTP/1.1 over plain TCP, or TLS by rustls with the system's
/// roots, run on the exporter's runtime whatever thread awaits it. The connection is
/// kept open between exports (a new one per export cost more than the encoding at
/// high span rates); one that the collector has closed is replaced, and a request
/// that failed on a kept connection before any answer is sent once more on a new one.
pub(super) struct RuntimeHttpClient {
    runtime: tokio::runtime::Handle,
    tls: Option<TlsConnector>,
    timeout: Duration,
    /// Sent with every request. Never printed.
    headers: Arc<Vec<(HeaderName, HeaderValue)>>,
    /// The open connection between two exports.
    idle: Arc<Mutex<Option<IdleConnection>>>,
}

impl RuntimeHttpClient {
    /// A client for an `endpoint` (TLS when it is `https:`), with no connection open
    /// yet.
    pub(super) fn new(
        runtime: &tokio::runtime::Handle,
        endpoint: &str,
        timeout: Duration,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<Self, OtelError> {
        let tls = if endpoint.starts_with("https:") {
            Some(tls_connector().map_err(|e| OtelError::Build(format!("TLS: {e}")))?)
        } else {
            None
        };
        Ok(Self {
            runtime: runtime.clone(),
            tls,
            timeout,
            headers: Arc::new(headers.to_vec()),
            idle: Arc::default(),
        })
    }
}

/// A kept HTTP/1.1 connection, and the `scheme://authority` it goes to.
pub(super) struct IdleConnection {
    origin: String,
    sender: SendRequest<Full<Bytes>>,
}

impl std::fmt::Debug for RuntimeHttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeHttpClient")
            .field("timeout", &self.timeout)
            .field("headers", &self.headers.len())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl HttpClient for RuntimeHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let tls = self.tls.clone();
        let timeout = self.timeout;
        let headers = self.headers.clone();
        let idle = self.idle.clone();
        let task = self.runtime.spawn(async move {
            match tokio::time::timeout(timeout, send(request, tls, &headers, &idle)).await {
                Ok(result) => result,
                Err(_) => Err(format!("the collector did not answer within {timeout:?}").into()),
            }
        });
        task.await
            .map_err(|e| HttpError::from(format!("export task failed: {e}")))?
    }
}

async fn send(
    request: Request<Bytes>,
    tls: Option<TlsConnector>,
    headers: &[(HeaderName, HeaderValue)],
    idle: &Mutex<Option<IdleConnection>>,
) -> Result<Response<Bytes>, HttpError> {
    let (mut parts, body) = request.into_parts();
    let uri = parts.uri.clone();
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(format!("`{uri}` is not an http:// or https:// URL").into()),
    };
    let authority = uri.authority().ok_or("the endpoint has no host")?.clone();
    let origin = format!("{}://{authority}", if https { "https" } else { "http" });
    parts.uri = uri.path_and_query().map_or("/", |p| p.as_str()).parse()?;
    parts
        .headers
        .insert(HOST, HeaderValue::from_str(authority.as_str())?);
    for (name, value) in headers {
        parts.headers.insert(name.clone(), value.clone());
    }
    let kept = lock(idle)
        .take()
        .filter(|c| c.origin == origin && !c.sender.is_closed());
    if let Some(IdleConnection { mut sender, .. }) = kept {
        let request = Request::from_parts(parts.clone(), Full::new(body.clone()));
        let sent = async {
            sender.ready().await?;
            sender.send_request(request).await
        }
        .await;
        match sent {
            Ok(response) => return finish(response, sender, origin, idle).await,
            // The collector closed the kept connection (an idle timeout) before it
            // read the request: sent again below on a new one.
            Err(error)
                if error.is_canceled() || error.is_closed() || error.is_incomplete_message() => {}
            Err(error) => return Err(error.into()),
        }
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    tcp.set_nodelay(true)?;
    let mut sender = if https {
        let tls = tls.ok_or("TLS is not configured")?;
        let name = ServerName::try_from(host)?;
        handshake(TokioIo::new(tls.connect(name, tcp).await?)).await?
    } else {
        handshake(TokioIo::new(tcp)).await?
    };
    let response = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await?;
    finish(response, sender, origin, idle).await
}

/// Opens HTTP/1.1 on `io`; the connection runs on its own task until it closes or
/// its sender is dropped.
async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, HttpError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Reads the response's body (at most [`MAX_RESPONSE_BYTES`]) and keeps the connection
/// for the next export unless the collector is closing it.
async fn finish(
    response: Response<hyper::body::Incoming>,
    sender: SendRequest<Full<Bytes>>,
    origin: String,
    idle: &Mutex<Option<IdleConnection>>,
) -> Result<Response<Bytes>, HttpError> {
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_RESPONSE_BYTES)
        .collect()
        .await?
        .to_bytes();
    let closing = parts
        .headers
        .get(CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    if !closing {
        *lock(idle) = Some(IdleConnection { origin, sender });
    }
    Ok(Response::from_parts(parts, body))
}

/// A TLS connector verifying against the system's roots, for `https` endpoints.
pub(super) fn tls_connector() -> Result<TlsConnector, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}
