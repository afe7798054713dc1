//! WebSocket (`websocket_user`): each user keeps one connection (tokio-tungstenite,
//! rustls for `wss://`), opened by `connect` or by the first step that needs it,
//! and reused by later steps. Each step is one event with request type `WS`.
//!
//! As in LoadDensity: a step without a URL reuses the user's last one (else the
//! `host` argument); `connect` to the URL already open does nothing; `send` counts
//! the payload's bytes, `recv` the received ones and `sendrecv` both.

pub(crate) mod conn;
mod task;

pub use task::{DEFAULT_TIMEOUT, FIELDS, METHODS, WsMethod, WsTask};

use std::sync::Arc;
use std::time::Instant;

use futures_util::SinkExt;
use serde_json::{Map, Value};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

use self::conn::{Data, Stream};
use crate::protocol::fields::render_optional;
use crate::protocol::http::TlsConnectors;
use crate::protocol::payload::check_contains;
use crate::protocol::user_connection::UserConnection;
use crate::protocol::{Failure, ParseContext, ParsedSpec, Protocol, StepContext, StepOutcome};
use crate::task::{Task, TaskError};

/// WebSocket, LoadDensity's `websocket_user`.
#[derive(Debug, Clone)]
pub struct WebSocket;

/// One user's WebSocket client: its open connection and the URL of the last one.
pub struct WsClient(Connection);

/// A user's connection, and the URL of the open connection or of the last one.
type Connection = UserConnection<Stream>;

impl Protocol for WebSocket {
    type Spec = WsTask;
    /// The TLS configuration for `wss://` (offering HTTP/1.1 only, as WebSocket's
    /// handshake needs).
    type Shared = TlsConnectors;
    type Client = WsClient;

    const FIELDS: &'static [&'static str] = task::FIELDS;

    fn parse(
        object: &Map<String, Value>,
        method_key: Option<&str>,
        path: &str,
        ctx: &ParseContext<'_>,
    ) -> Result<ParsedSpec<WsTask>, TaskError> {
        task::parse(object, method_key, path, ctx)
    }

    fn csv_sources(spec: &WsTask, into: &mut Vec<usize>) {
        spec.csv_sources(into);
    }

    fn client(tls: &Arc<TlsConnectors>) -> WsClient {
        WsClient(UserConnection::new(tls))
    }

    async fn step(
        client: &mut WsClient,
        task: &Task<WsTask>,
        ctx: &mut StepContext<'_>,
    ) -> StepOutcome {
        let (client, spec) = (&mut client.0, &task.spec);
        let (url, name, expect, payload) = {
            let mut render = ctx.render();
            let url = render_optional(spec.url.as_ref(), &mut render);
            let name = render_optional(spec.name.as_ref(), &mut render);
            let expect = render_optional(spec.expect.as_ref(), &mut render);
            let payload = match (spec.method, &spec.payload) {
                (WsMethod::Send | WsMethod::SendRecv, Some(payload)) => {
                    let bytes = payload.render(&mut render);
                    Some((bytes, payload.is_binary()))
                }
                _ => None,
            };
            (url, name, expect, payload)
        };
        let timed = tokio::time::timeout(
            spec.timeout,
            run(client, spec, url, expect.as_deref(), payload),
        )
        .await;
        let result = match timed {
            Ok(result) => result,
            Err(_) => {
                // A frame may still come for a cut-off send: start afresh.
                if spec.method != WsMethod::Recv {
                    client.connection = None;
                }
                Err(Failure::timed_out(spec.timeout))
            }
        };
        let end = Instant::now();
        // Credentials in the URL are masked, as graphql_ws and sse mask them.
        client.log_url(ctx);
        // A step with neither URL nor name is reported under the user's current URL
        // (LoadDensity's naming); no copy when that is the task's own name.
        let name = match (&name, &client.url) {
            (None, Some(current)) if spec.named_by_url && **current != *task.endpoint.name => {
                Some(current.clone())
            }
            _ => name,
        };
        StepOutcome::finished(end, name, result)
    }
}

/// Runs one step; the number of bytes counted, or why it failed.
async fn run(
    client: &mut Connection,
    spec: &WsTask,
    url: Option<String>,
    expect: Option<&str>,
    payload: Option<(Bytes, bool)>,
) -> Result<u64, Failure> {
    // The step's URL, else the user's last one, else `host`: looked up only when a
    // connection is to be opened (a step on an open connection copies no URL).
    let target = |client: &Connection| {
        url.clone()
            .or_else(|| client.url.clone())
            .or_else(|| spec.host.clone())
    };
    match spec.method {
        WsMethod::Connect => {
            let url = target(client).ok_or("no URL to connect to: give `request_url`")?;
            if client.connection.is_some() && client.url.as_deref() == Some(url.as_str()) {
                return Ok(0);
            }
            // Boxed: the handshake's future is large and rare.
            Box::pin(connect(client, spec, url)).await?;
            return Ok(0);
        }
        WsMethod::Close => {
            if let Some(mut stream) = client.connection.take() {
                conn::close(&mut stream).await;
            }
            return Ok(0);
        }
        WsMethod::Send | WsMethod::Recv | WsMethod::SendRecv => {}
    }
    if client.connection.is_none() {
        let url = target(client).ok_or_else(|| {
            format!(
                "`{}` on a connection that is not open: add a `connect` step or a `request_url`",
                spec.method.as_str()
            )
        })?;
        Box::pin(connect(client, spec, url)).await?;
    }
    let Some(stream) = client.connection.as_mut() else {
        return Err("the connection is not open".into());
    };
    let mut length = 0;
    if let Some((bytes, binary)) = payload.or_else(|| {
        matches!(spec.method, WsMethod::Send | WsMethod::SendRecv).then(|| (Bytes::new(), false))
    }) {
        length += bytes.len() as u64;
        let message = if binary {
            Message::Binary(bytes)
        } else {
            Message::Text(
                Utf8Bytes::try_from(bytes).map_err(|_| "the payload is not UTF-8".to_string())?,
            )
        };
        if let Err(e) = stream.send(message).await {
            client.connection = None;
            return Err(Failure::network(format!("send failed: {e}")));
        }
    }
    if spec.method == WsMethod::Send {
        return Ok(length);
    }
    let received = match receive(stream).await {
        Ok(data) => data,
        Err(e) => {
            client.connection = None;
            return Err(e);
        }
    };
    if let Some(expect) = expect {
        check_contains(&received, expect).map_err(Failure::expectation)?;
    }
    Ok(length + received.len() as u64)
}

/// The next data message's bytes.
async fn receive(stream: &mut Stream) -> Result<Bytes, Failure> {
    Ok(match conn::receive(stream).await? {
        Data::Text(text) => Bytes::from(text),
        Data::Binary(bytes) => bytes,
    })
}

/// Opens a connection to `url` (closing another one first).
async fn connect(client: &mut Connection, spec: &WsTask, url: String) -> Result<(), Failure> {
    if let Some(mut old) = client.connection.take() {
        let _ = WebSocketStream::close(&mut *old, None).await;
    }
    let tls = spec
        .client_cert
        .as_ref()
        .map_or(&*client.tls, |c| &c.connectors);
    // Later steps without a URL retry this one, even when it fails: they must not
    // fall back to an older connection's URL and read its stale frames.
    client.url = Some(url.clone());
    let stream = conn::open(
        &url,
        &spec.headers,
        spec.subprotocols.as_ref(),
        tls,
        spec.verify,
    )
    .await?;
    client.connection = Some(Box::new(stream));
    Ok(())
}
