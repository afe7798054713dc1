//! HTTP/3 (`http3_user`): requests over QUIC (quinn, h3; rustls with ring), one
//! event each with request type `HTTP/3`.
//!
//! As in LoadDensity: a step succeeds once the whole response has arrived, and its
//! length is the response body's size; `expect_status` fails it on any other
//! status (without it any status succeeds, as aioquic's template counts them);
//! `timeout` (default 10 s) bounds the handshake and the exchange together;
//! `ca_file` adds a CA bundle to trust; `json` or `body` is sent for POST, PUT and
//! PATCH. Unlike LoadDensity, which opens a QUIC connection per step, each user keeps
//! its connection to an origin and reuses it for later steps (a new one when the
//! server closed it), as a browser does.

mod task;

pub use task::{DEFAULT_TIMEOUT, FIELDS, Http3Task};

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes};
use http::{Request, Uri};
use serde_json::{Map, Value};
use tokio::task::JoinHandle;
use url::Url;

use crate::protocol::{Failure, ParseContext, ParsedSpec, Protocol, StepContext, StepOutcome};
use crate::redact::redact_url_credentials;
use crate::task::{Task, TaskError};

/// HTTP/3, LoadDensity's `http3_user`.
#[derive(Debug, Clone)]
pub struct Http3;

type SendRequest = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;

/// An open HTTP/3 connection to one origin.
struct Connection {
    host: String,
    port: u16,
    tls_key: (bool, Option<String>),
    quic: quinn::Connection,
    sender: SendRequest,
    /// The task driving the HTTP/3 connection (control streams, GOAWAY).
    driver: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.quic.close(0u32.into(), b"");
        self.driver.abort();
    }
}

/// One user's HTTP/3 client: its UDP endpoint and its connection.
pub struct Http3Client {
    endpoint: Option<(bool, quinn::Endpoint)>,
    connection: Option<Connection>,
}

impl Protocol for Http3 {
    type Spec = Http3Task;
    type Shared = ();
    type Client = Http3Client;

    const FIELDS: &'static [&'static str] = task::FIELDS;

    fn parse(
        object: &Map<String, Value>,
        method_key: Option<&str>,
        path: &str,
        ctx: &ParseContext<'_>,
    ) -> Result<ParsedSpec<Http3Task>, TaskError> {
        task::parse(object, method_key, path, ctx)
    }

    fn csv_sources(spec: &Http3Task, into: &mut Vec<usize>) {
        spec.csv_sources(into);
    }

    fn client(_shared: &Arc<()>) -> Http3Client {
        Http3Client {
            endpoint: None,
            connection: None,
        }
    }

    async fn step(
        client: &mut Http3Client,
        task: &Task<Http3Task>,
        ctx: &mut StepContext<'_>,
    ) -> StepOutcome {
        let spec = &task.spec;
        let (url, name) = {
            let mut render = ctx.render();
            let url = spec.url.render(&mut render);
            let name = spec.name.as_ref().map(|n| n.render(&mut render));
            (url, name)
        };
        let url = match (url.starts_with('/'), &spec.host) {
            (true, Some(host)) => Url::parse(host).and_then(|base| base.join(&url)),
            _ => Url::parse(&url),
        };
        let result = match url {
            Err(e) => Err(Failure::from(format!("not a URL: {e}"))),
            Ok(url) => {
                if let Some(log) = ctx.log_url() {
                    log.clear();
                    log.push_str(&redact_url_credentials(url.as_str()));
                }
                match tokio::time::timeout(spec.timeout, exchange(client, spec, &url)).await {
                    Ok(result) => result,
                    Err(_) => {
                        // The connection is in an unknown state: start afresh.
                        client.connection = None;
                        Err(Failure::timed_out(spec.timeout))
                    }
                }
            }
        };
        let end = Instant::now();
        match result {
            Ok((status, length)) => {
                let failure = spec
                    .expect_status
                    .filter(|expected| *expected != status)
                    .map(|expected| {
                        Failure::expectation(format!(
                            "http3 status expected {expected}, got {status}"
                        ))
                    });
                StepOutcome {
                    status: Some(status),
                    ..StepOutcome::finished(end, name, failure.map_or(Ok(length), Err))
                }
            }
            Err(failure) => StepOutcome::finished(end, name, Err(failure)),
        }
    }
}

/// Sends the step's request on the user's connection (opened when needed) and
/// reads the whole response: its status and its body's length.
async fn exchange(
    client: &mut Http3Client,
    spec: &Http3Task,
    url: &Url,
) -> Result<(u16, u64), Failure> {
    if url.scheme() != "https" {
        return Err(format!("scheme `{}` is not supported; use https://", url.scheme()).into());
    }
    let host = url
        .host_str()
        .ok_or_else(|| "the URL has no host".to_string())?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let reusable = client.connection.as_ref().is_some_and(|c| {
        c.host == host
            && c.port == port
            && c.tls_key == spec.tls_key
            && c.quic.close_reason().is_none()
    });
    if !reusable {
        client.connection = None;
        // Boxed: the handshake's future is large and rare.
        let connection = Box::pin(connect(client, spec, host, port)).await?;
        client.connection = Some(connection);
    }
    let Some(connection) = client.connection.as_mut() else {
        return Err(String::from("no connection").into());
    };
    let result = request(&mut connection.sender, spec, url).await;
    if result.is_err() {
        client.connection = None;
    }
    result
}

/// Opens a QUIC connection to `host:port` and the HTTP/3 session on it.
async fn connect(
    client: &mut Http3Client,
    spec: &Http3Task,
    host: String,
    port: u16,
) -> Result<Connection, Failure> {
    let addr: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| format!("cannot resolve `{host}`"))?;
    let ipv6 = addr.is_ipv6();
    if client.endpoint.as_ref().is_none_or(|(v6, _)| *v6 != ipv6) {
        let bind: SocketAddr = if ipv6 {
            "[::]:0".parse()
        } else {
            "0.0.0.0:0".parse()
        }
        .map_err(|e| format!("{e}"))?;
        let endpoint =
            quinn::Endpoint::client(bind).map_err(|e| format!("cannot open a UDP socket: {e}"))?;
        client.endpoint = Some((ipv6, endpoint));
    }
    let Some((_, endpoint)) = client.endpoint.as_ref() else {
        return Err(String::from("no UDP endpoint").into());
    };
    let connecting = endpoint
        .connect_with((*spec.quic).clone(), addr, &host)
        .map_err(|e| format!("connect to {host}:{port} failed: {e}"))?;
    let quic = connecting
        .await
        .map_err(|e| Failure::connect(format!("connect to {host}:{port} failed: {e}")))?;
    let (mut driver, sender) = h3::client::new(h3_quinn::Connection::new(quic.clone()))
        .await
        .map_err(|e| Failure::network(format!("HTTP/3 session with {host}:{port} failed: {e}")))?;
    let driver = tokio::spawn(async move {
        let _ = poll_fn(|cx| driver.poll_close(cx)).await;
    });
    Ok(Connection {
        host,
        port,
        tls_key: spec.tls_key.clone(),
        quic,
        sender,
        driver,
    })
}

/// One request and its whole response: the status and the body's length.
async fn request(
    sender: &mut SendRequest,
    spec: &Http3Task,
    url: &Url,
) -> Result<(u16, u64), Failure> {
    let uri: Uri = url
        .as_str()
        .parse()
        .map_err(|e| format!("not a request URI: {e}"))?;
    let mut request = Request::new(());
    *request.method_mut() = spec.method.clone();
    *request.uri_mut() = uri;
    for (name, value) in &spec.headers {
        request.headers_mut().insert(name.clone(), value.clone());
    }
    let mut stream = sender
        .send_request(request)
        .await
        .map_err(|e| Failure::network(format!("send failed: {e}")))?;
    let with_body = matches!(spec.method.as_str(), "POST" | "PUT" | "PATCH");
    if with_body && !spec.body.is_empty() {
        stream
            .send_data(spec.body.clone())
            .await
            .map_err(|e| Failure::network(format!("send failed: {e}")))?;
    }
    stream
        .finish()
        .await
        .map_err(|e| Failure::network(format!("send failed: {e}")))?;
    let response = stream
        .recv_response()
        .await
        .map_err(|e| Failure::network(format!("no response: {e}")))?;
    let mut length = 0u64;
    // Bounded by the step's timeout.
    while let Some(mut chunk) = stream
        .recv_data()
        .await
        .map_err(|e| Failure::network(format!("reading the response failed: {e}")))?
    {
        let n = chunk.remaining();
        length += n as u64;
        chunk.advance(n);
    }
    Ok((response.status().as_u16(), length))
}
