//! Server-Sent Events (`sse_user`): each user keeps one event stream, a GET with
//! `Accept: text/event-stream` over HTTP/1.1 (hyper; rustls for `https://`), opened
//! by `open` and read by later `wait` steps. Each step is one event with request type
//! `SSE`.
//!
//! As in LoadDensity: a step without a URL reuses the user's last one (else the
//! `host` argument); `open` counts no bytes; `wait` reads events until one whose data
//! contains `expect` (any event without `expect`) and counts the bytes of the values
//! of every event it read; `wait` on a stream that is not open fails, and so does
//! one on a stream the server ended. Unlike LoadDensity (requests without
//! `raise_for_status`), an `open` answered with a status of 400 or more fails.

mod events;
mod task;

pub use task::{DEFAULT_TIMEOUT, FIELDS, METHODS, SseMethod, SseTask};

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{ACCEPT, HOST, USER_AGENT};
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value};
use url::Url;

use self::events::EventReader;
use crate::protocol::fields::render_optional;
use crate::protocol::http::{
    Driver, Socket, Target, TlsConnectors, drive, open_socket, user_agent,
};
use crate::protocol::user_connection::UserConnection;
use crate::protocol::{Failure, ParseContext, ParsedSpec, Protocol, StepContext, StepOutcome};
use crate::redact::redact_url_credentials;
use crate::task::{Task, TaskError};

/// Server-Sent Events, LoadDensity's `sse_user`.
#[derive(Debug, Clone)]
pub struct Sse;

/// An open event stream: the response body, the connection that feeds it, and the
/// bytes read from it that are not yet events.
struct Stream {
    body: Incoming,
    driver: Option<Driver>,
    reader: EventReader,
    /// Kept so that the connection is not told to close before its response ends.
    _sender: http1::SendRequest<Empty<Bytes>>,
}

/// One user's SSE client: its open stream and the URL of the last one.
pub struct SseClient(Connection);

/// A user's stream, and the URL of the open stream or of the last one.
type Connection = UserConnection<Stream>;

impl Protocol for Sse {
    type Spec = SseTask;
    /// The TLS configuration for `https://` (offering HTTP/1.1 only).
    type Shared = TlsConnectors;
    type Client = SseClient;

    const FIELDS: &'static [&'static str] = task::FIELDS;

    fn parse(
        object: &Map<String, Value>,
        method_key: Option<&str>,
        path: &str,
        ctx: &ParseContext<'_>,
    ) -> Result<ParsedSpec<SseTask>, TaskError> {
        task::parse(object, method_key, path, ctx)
    }

    fn csv_sources(spec: &SseTask, into: &mut Vec<usize>) {
        spec.csv_sources(into);
    }

    fn client(tls: &Arc<TlsConnectors>) -> SseClient {
        SseClient(UserConnection::new(tls))
    }

    async fn step(
        client: &mut SseClient,
        task: &Task<SseTask>,
        ctx: &mut StepContext<'_>,
    ) -> StepOutcome {
        let (client, spec) = (&mut client.0, &task.spec);
        let (url, name, expect) = {
            let mut render = ctx.render();
            let url = render_optional(spec.url.as_ref(), &mut render);
            let name = render_optional(spec.name.as_ref(), &mut render);
            let expect = render_optional(spec.expect.as_ref(), &mut render);
            (url, name, expect)
        };
        let timed =
            tokio::time::timeout(spec.timeout, run(client, spec, url, expect.as_deref())).await;
        let result = timed.unwrap_or_else(|_| {
            if spec.method == SseMethod::Open {
                client.connection = None;
            }
            let waited = humantime::format_duration(spec.timeout);
            Err(Failure::timeout(match (spec.method, &expect) {
                (SseMethod::Wait, Some(expect)) => {
                    format!("timed out after {waited} waiting for an event containing `{expect}`")
                }
                (SseMethod::Wait, None) => format!("timed out after {waited} waiting for an event"),
                _ => format!("timed out after {waited}"),
            }))
        });
        let end = Instant::now();
        client.log_url(ctx);
        StepOutcome::finished(end, name, result)
    }
}

/// Runs one step; the number of bytes counted, or why it failed.
async fn run(
    client: &mut Connection,
    spec: &SseTask,
    url: Option<String>,
    expect: Option<&str>,
) -> Result<u64, Failure> {
    match spec.method {
        SseMethod::Open => {
            let url = url
                .or_else(|| client.url.clone())
                .or_else(|| spec.host.clone())
                .ok_or("no URL to open: give `request_url`")?;
            client.connection = None;
            // Later steps without a URL retry this one, even when it fails.
            client.url = Some(url.clone());
            // Boxed: the handshake's future is large and rare.
            client.connection = Some(Box::pin(open(&client.tls, spec, &url)).await?);
            Ok(0)
        }
        SseMethod::Close => {
            client.connection = None;
            Ok(0)
        }
        SseMethod::Wait => {
            let stream = client
                .connection
                .as_mut()
                .ok_or("the SSE stream is not open: add an `open` step before `wait`")?;
            let result = wait(stream, expect).await;
            if result.is_err() {
                client.connection = None;
            }
            result
        }
    }
}

/// Opens the event stream at `url`: the request, and its response's head.
async fn open(tls: &TlsConnectors, spec: &SseTask, url: &str) -> Result<Box<Stream>, Failure> {
    let shown = redact_url_credentials(url);
    let parsed = Url::parse(url).map_err(|e| format!("`{shown}` is not a URL: {e}"))?;
    let target = Target::from_url(&parsed).map_err(|e| format!("`{shown}`: {e}"))?;
    let socket = open_socket(&target.origin, || tls.get_http1(spec.verify))
        .await
        .map_err(Failure::from)?;
    let (mut sender, driver) = match socket {
        Socket::Plain(tcp) => handshake(TokioIo::new(tcp)).await?,
        Socket::Tls(tls) => handshake(TokioIo::new(*tls)).await?,
    };
    let mut driver = Some(driver);
    let mut request = Request::new(Empty::<Bytes>::new());
    *request.uri_mut() = target.origin_form.clone();
    let headers = request.headers_mut();
    headers.insert(HOST, target.host_header.clone());
    headers.insert(USER_AGENT, user_agent());
    for (name, value) in &spec.headers {
        headers.insert(name.clone(), value.clone());
    }
    // LoadDensity's `setdefault("Accept", "text/event-stream")`.
    if !headers.contains_key(ACCEPT) {
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    }
    let response = drive(&mut driver, sender.send_request(request))
        .await
        .map_err(|e| Failure::network(format!("GET `{shown}` failed: {e}")))?;
    let status = response.status();
    if status.as_u16() >= 400 {
        return Err(Failure::from(
            format!(
                "HTTP {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )
            .trim_end()
            .to_string(),
        ));
    }
    Ok(Box::new(Stream {
        body: response.into_body(),
        driver,
        reader: EventReader::default(),
        _sender: sender,
    }))
}

/// The HTTP/1.1 handshake on an open socket: the request sender, and the connection
/// future to drive while waiting.
async fn handshake<IO>(io: IO) -> Result<(http1::SendRequest<Empty<Bytes>>, Driver), Failure>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(io)
        .await
        .map_err(|e| Failure::network(format!("HTTP handshake failed: {e}")))?;
    let driver: Driver = Box::pin(async move {
        let _ = conn.await;
    });
    Ok((sender, driver))
}

/// Reads events until one whose data contains `expect` (or any, without it): the
/// bytes of the values of every event read.
async fn wait(stream: &mut Stream, expect: Option<&str>) -> Result<u64, Failure> {
    let mut total = 0;
    // Bounded by the step's timeout.
    loop {
        while let Some(event) = stream.reader.next_event()? {
            total += event.length;
            if expect.is_none_or(|e| event.data.contains(e)) {
                return Ok(total);
            }
        }
        match drive(&mut stream.driver, stream.body.frame()).await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    stream.reader.push(data);
                }
            }
            Some(Err(e)) => return Err(Failure::network(format!("the SSE stream failed: {e}"))),
            None => {
                return Err(Failure::network(match expect {
                    Some(expect) => {
                        format!("the SSE stream ended before an event containing `{expect}`")
                    }
                    None => "the SSE stream ended before an event".to_string(),
                }));
            }
        }
    }
}
