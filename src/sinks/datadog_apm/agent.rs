//! The agent's trace intake: `PUT {agent_url}/v0.4/traces` on one keep-alive
//! HTTP/1.1 connection (rustls for https), msgpack bodies with the headers a Datadog
//! tracer sends. It reuses the InfluxDB sink's connection helpers and error kinds.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::sinks::influxdb::transport::{WriteError, handshake, tls_connector};

/// The path of the v0.4 trace intake.
pub(crate) const TRACES_PATH: &str = "/v0.4/traces";
/// How much of an error response's body is kept.
const BODY_EXCERPT: usize = 256;

/// Where the agent listens, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AgentAddress {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) https: bool,
    /// The path before `/v0.4/traces` (usually empty).
    pub(crate) base_path: String,
}

impl AgentAddress {
    /// `http://host:port`, as reports show it.
    pub(crate) fn display(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}{}", self.port, self.base_path)
    }
}

/// A keep-alive client of one agent.
pub(crate) struct AgentClient {
    address: AgentAddress,
    host_header: HeaderValue,
    path: String,
    tls: Option<TlsConnector>,
    sender: Option<http1::SendRequest<Full<Bytes>>>,
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient")
            .field("agent", &self.address.display())
            .finish_non_exhaustive()
    }
}

impl AgentClient {
    /// A client of `address`; connects on the first send.
    pub(crate) fn new(address: AgentAddress) -> Result<Self, String> {
        let host = if address.host.contains(':') {
            format!("[{}]:{}", address.host, address.port)
        } else {
            format!("{}:{}", address.host, address.port)
        };
        let host_header = HeaderValue::from_str(&host)
            .map_err(|_| "the agent's host is not a valid Host header".to_string())?;
        let path = format!("{}{TRACES_PATH}", address.base_path);
        let tls = address.https.then(tls_connector);
        Ok(Self {
            address,
            host_header,
            path,
            tls,
            sender: None,
        })
    }

    /// Drops the connection; the next send opens a new one.
    pub(crate) fn reset(&mut self) {
        self.sender = None;
    }

    /// PUTs one payload of `traces` traces, waiting at most `timeout` for the exchange.
    pub(crate) async fn send(
        &mut self,
        body: Bytes,
        traces: usize,
        timeout: Duration,
    ) -> Result<(), WriteError> {
        let result = tokio::time::timeout(timeout, self.exchange(body, traces)).await;
        let result = result.unwrap_or(Err(WriteError::Timeout(timeout)));
        if result.as_ref().is_err_and(WriteError::retryable) {
            self.sender = None;
        }
        result
    }

    async fn exchange(&mut self, body: Bytes, traces: usize) -> Result<(), WriteError> {
        let mut request = Request::builder()
            .method(Method::PUT)
            .uri(self.path.as_str())
            .body(Full::new(body))
            .map_err(|e| WriteError::Io(e.to_string()))?;
        let headers = request.headers_mut();
        headers.insert(HOST, self.host_header.clone());
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/msgpack"),
        );
        headers.insert(USER_AGENT, HeaderValue::from_static("loaddensity"));
        headers.insert(
            HeaderName::from_static("x-datadog-trace-count"),
            HeaderValue::from(traces),
        );
        headers.insert(
            HeaderName::from_static("datadog-meta-lang"),
            HeaderValue::from_static("rust"),
        );
        headers.insert(
            HeaderName::from_static("datadog-meta-tracer-version"),
            HeaderValue::from_static(concat!("loaddensity-", env!("CARGO_PKG_VERSION"))),
        );
        // A real agent then answers 429 when it drops a payload, instead of 200.
        headers.insert(
            HeaderName::from_static("datadog-send-real-http-status"),
            HeaderValue::from_static("true"),
        );
        let sender = match self.sender.as_mut() {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.sender.insert(self.connect().await?),
        };
        sender
            .ready()
            .await
            .map_err(|e| WriteError::Io(format!("connection: {e}")))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| WriteError::Io(format!("request: {e}")))?;
        let status = response.status();
        let mut body = response.into_body();
        let mut excerpt = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| WriteError::Io(format!("response: {e}")))?;
            if let Some(data) = frame.data_ref() {
                let room = BODY_EXCERPT.saturating_sub(excerpt.len());
                excerpt.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
        if status.is_success() {
            return Ok(());
        }
        let body = String::from_utf8_lossy(&excerpt).trim().to_string();
        // 429: the agent is overloaded and dropped the payload; worth trying again.
        if status.is_client_error() && status.as_u16() != 429 {
            Err(WriteError::Rejected { status, body })
        } else {
            Err(WriteError::ServerError { status, body })
        }
    }

    async fn connect(&self) -> Result<http1::SendRequest<Full<Bytes>>, WriteError> {
        let host = self.address.host.as_str();
        let tcp = TcpStream::connect((host, self.address.port))
            .await
            .map_err(|e| WriteError::Io(format!("connect {}: {e}", self.address.display())))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => handshake(TokioIo::new(tcp)).await,
            Some(connector) => {
                let name = ServerName::try_from(host.to_string())
                    .map_err(|_| WriteError::Io(format!("`{host}` is not a valid TLS name")))?;
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| WriteError::Io(format!("TLS with {host}: {e}")))?;
                handshake(TokioIo::new(tls)).await
            }
        }
    }
}
