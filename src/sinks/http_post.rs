//! Sending payloads to an HTTP(S) endpoint, for the sinks that push (InfluxDB over
//! HTTP, Prometheus remote write, the Datadog agent): one keep-alive HTTP/1.1
//! connection (rustls for https), each request bounded by a timeout, and what the
//! server answered. Which failures are worth a retry, and when, is each sink's own
//! policy.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How much of an error response's body is kept for the log.
const BODY_EXCERPT: usize = 256;

/// Why a POST failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PostError {
    /// The server answered with a status that is not a success.
    #[error("HTTP {status}: {body}")]
    Status {
        /// The status.
        status: StatusCode,
        /// The start of the response body.
        body: String,
    },
    /// No answer within the timeout.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The host is not a valid TLS server name.
    #[error("`{0}` is not a valid TLS name")]
    TlsName(String),
    /// Connecting, TLS, or the exchange failed.
    #[error("{0}")]
    Io(String),
}

/// A keep-alive HTTP/1.1 client that POSTs (or PUTs) to one endpoint.
pub(crate) struct HttpPoster {
    method: Method,
    host: String,
    port: u16,
    https: bool,
    /// The request target: the URL's path and query.
    path: Uri,
    /// Sent with every POST (`Host` included).
    headers: HeaderMap,
    /// How errors name the endpoint (without credentials).
    shown: String,
    /// Built on the first https connection.
    tls: Option<TlsConnector>,
    sender: Option<http1::SendRequest<Full<Bytes>>>,
}

impl HttpPoster {
    /// A client that POSTs to `uri`'s path and query on `host`:`port` (over TLS when
    /// `https`), with `headers` (`Host` included); `shown` names the endpoint in
    /// errors. Connects on the first POST.
    pub(crate) fn new(
        uri: &Uri,
        host: String,
        port: u16,
        https: bool,
        headers: HeaderMap,
        shown: String,
    ) -> Self {
        let path = uri
            .path_and_query()
            .cloned()
            .map_or_else(|| Uri::from_static("/"), Uri::from);
        Self {
            method: Method::POST,
            host,
            port,
            https,
            path,
            headers,
            shown,
            tls: None,
            sender: None,
        }
    }

    /// Sends with `method` instead of POST (the Datadog agent takes PUT).
    #[must_use]
    pub(crate) fn with_method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Drops the connection; the next POST opens a new one.
    pub(crate) fn reset(&mut self) {
        self.sender = None;
    }

    /// POSTs `body` and waits at most `timeout` for the whole exchange (connecting
    /// included). The connection is kept whatever the outcome: [`HttpPoster::reset`]
    /// drops it.
    pub(crate) async fn post(&mut self, body: Bytes, timeout: Duration) -> Result<(), PostError> {
        self.post_with(body, None, timeout).await
    }

    /// [`HttpPoster::post`] with one more header for this request only.
    pub(crate) async fn post_with(
        &mut self,
        body: Bytes,
        extra: Option<(HeaderName, HeaderValue)>,
        timeout: Duration,
    ) -> Result<(), PostError> {
        tokio::time::timeout(timeout, self.exchange(body, extra))
            .await
            .unwrap_or(Err(PostError::Timeout(timeout)))
    }

    async fn exchange(
        &mut self,
        body: Bytes,
        extra: Option<(HeaderName, HeaderValue)>,
    ) -> Result<(), PostError> {
        let mut request = Request::builder()
            .method(self.method.clone())
            .uri(self.path.clone())
            .body(Full::new(body))
            .map_err(|e| PostError::Io(e.to_string()))?;
        *request.headers_mut() = self.headers.clone();
        if let Some((name, value)) = extra {
            request.headers_mut().insert(name, value);
        }
        let sender = match self.sender.as_mut() {
            Some(sender) if !sender.is_closed() => sender,
            _ => {
                let sender = self.connect().await?;
                self.sender.insert(sender)
            }
        };
        sender
            .ready()
            .await
            .map_err(|e| PostError::Io(format!("connection: {e}")))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| PostError::Io(format!("request: {e}")))?;
        let status = response.status();
        let mut body = response.into_body();
        let mut excerpt = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| PostError::Io(format!("response: {e}")))?;
            if let Some(data) = frame.data_ref() {
                let room = BODY_EXCERPT.saturating_sub(excerpt.len());
                excerpt.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
        if status.is_success() {
            return Ok(());
        }
        Err(PostError::Status {
            status,
            body: String::from_utf8_lossy(&excerpt).trim().to_string(),
        })
    }

    async fn connect(&mut self) -> Result<http1::SendRequest<Full<Bytes>>, PostError> {
        let host = self.host.as_str();
        let tcp = TcpStream::connect((host, self.port))
            .await
            .map_err(|e| PostError::Io(format!("connect {}: {e}", self.shown)))?;
        let _ = tcp.set_nodelay(true);
        if !self.https {
            return handshake(TokioIo::new(tcp)).await;
        }
        let name =
            ServerName::try_from(host.to_string()).map_err(|_| PostError::TlsName(host.into()))?;
        let tls = self
            .tls
            .get_or_insert_with(tls_connector)
            .connect(name, tcp)
            .await
            .map_err(|e| PostError::Io(format!("TLS with {host}: {e}")))?;
        handshake(TokioIo::new(tls)).await
    }
}

/// The HTTP/1.1 handshake; the connection is driven by a task of its own.
async fn handshake<IO>(io: IO) -> Result<http1::SendRequest<Full<Bytes>>, PostError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(io)
        .await
        .map_err(|e| PostError::Io(format!("HTTP handshake: {e}")))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// A rustls connector verifying against the system's roots, offering HTTP/1.1 only.
fn tls_connector() -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.with_root_certificates(roots.clone())
                .with_no_client_auth()
        })
        .unwrap_or_else(|_| {
            ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth()
        });
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}
