//! The agent's trace intake: `PUT {agent_url}/v0.5/traces` (or `/v0.4/traces`)
//! through the sinks' shared keep-alive client ([`HttpPoster`]), msgpack bodies with the headers a Datadog
//! tracer sends, and the InfluxDB sink's error kinds.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

use super::span::ApiVersion;
use crate::sinks::http_post::{HttpPoster, PostError};
use crate::sinks::influxdb::transport::WriteError;

/// Where the agent listens, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AgentAddress {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) https: bool,
    /// The path before `/v0.5/traces` (usually empty).
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
    shown: String,
    poster: HttpPoster,
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient")
            .field("agent", &self.shown)
            .finish_non_exhaustive()
    }
}

impl AgentClient {
    /// A client of `address`'s intake in `version`'s format; connects on the first send.
    pub(crate) fn new(address: AgentAddress, version: ApiVersion) -> Result<Self, String> {
        let host = if address.host.contains(':') {
            format!("[{}]:{}", address.host, address.port)
        } else {
            format!("{}:{}", address.host, address.port)
        };
        let host_header = HeaderValue::from_str(&host)
            .map_err(|_| "the agent's host is not a valid Host header".to_string())?;
        let path: Uri = format!("{}{}", address.base_path, version.path())
            .parse()
            .map_err(|_| "the agent's path is not a valid URL path".to_string())?;
        let mut headers = HeaderMap::new();
        headers.insert(HOST, host_header);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/msgpack"),
        );
        headers.insert(USER_AGENT, HeaderValue::from_static("loaddensity"));
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
        let shown = address.display();
        let poster = HttpPoster::new(
            &path,
            address.host.clone(),
            address.port,
            address.https,
            headers,
            shown.clone(),
        )
        .with_method(Method::PUT);
        Ok(Self { shown, poster })
    }

    /// Drops the connection; the next send opens a new one.
    pub(crate) fn reset(&mut self) {
        self.poster.reset();
    }

    /// PUTs one payload of `traces` traces, waiting at most `timeout` for the exchange.
    pub(crate) async fn send(
        &mut self,
        body: Bytes,
        traces: usize,
        timeout: Duration,
    ) -> Result<(), WriteError> {
        let count = (
            HeaderName::from_static("x-datadog-trace-count"),
            HeaderValue::from(traces),
        );
        let result = self
            .poster
            .post_with(body, Some(count), timeout)
            .await
            .map_err(agent_error);
        if result.as_ref().is_err_and(WriteError::retryable) {
            self.poster.reset();
        }
        result
    }
}

/// The agent's answer as the flusher sorts it: 429 means the agent was overloaded and
/// dropped the payload, worth trying again; any other 4xx would fail again.
fn agent_error(error: PostError) -> WriteError {
    match error {
        PostError::Status { status, body }
            if status.is_client_error() && status.as_u16() != 429 =>
        {
            WriteError::Rejected { status, body }
        }
        PostError::Status { status, body } => WriteError::ServerError { status, body },
        PostError::Timeout(timeout) => WriteError::Timeout(timeout),
        error @ (PostError::TlsName(_) | PostError::Io(_)) => WriteError::Io(error.to_string()),
    }
}
