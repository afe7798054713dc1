//! GraphQL subscriptions over WebSocket (`graphql_ws_user`), the
//! `graphql-transport-ws` protocol: each user keeps one connection (tokio-tungstenite,
//! rustls for `wss://`), opened by `connect` (the handshake, `connection_init` and the
//! server's `connection_ack`) and reused by later steps. Each step is one event with
//! request type `GRAPHQL-WS`.
//!
//! As in LoadDensity: `subscribe` sends the operation and reads up to
//! `max_messages` messages (stopping at `complete`), counting their bytes; `complete`
//! counts the bytes of the message it sends; `subscribe` on a connection that is not
//! open fails, `complete` and `close` on one do nothing. Beyond LoadDensity: messages
//! of other operations are skipped, the server's `ping` is answered with `pong`, an
//! `error` message fails the step with its errors, and `connect` checks that the
//! server acknowledged.

mod task;

pub use task::{
    DEFAULT_PROTOCOL, DEFAULT_TIMEOUT, FIELDS, GraphqlWsMethod, GraphqlWsTask, METHODS,
};

use std::sync::Arc;
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::protocol::http::TlsConnectors;
use crate::protocol::{ParseContext, ParsedSpec, Protocol, StepContext, StepOutcome};
use crate::redact::redact_url_credentials;
use crate::task::ErrorClass;
use crate::task::{Task, TaskError};

/// GraphQL over WebSocket, LoadDensity's `graphql_ws_user`.
#[derive(Debug, Clone)]
pub struct GraphqlWs;

/// What the users of one run share: the TLS configuration for `wss://`.
#[derive(Debug, Default)]
pub struct GraphqlWsShared {
    tls: TlsConnectors,
}

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One user's GraphQL-over-WebSocket client.
pub struct GraphqlWsClient {
    shared: Arc<GraphqlWsShared>,
    /// The open, acknowledged connection (boxed: most of a user's life is spent
    /// waiting).
    connection: Option<Box<Stream>>,
    /// The URL of the last connection, for the request log.
    url: Option<String>,
}

impl Protocol for GraphqlWs {
    type Spec = GraphqlWsTask;
    type Shared = GraphqlWsShared;
    type Client = GraphqlWsClient;

    const FIELDS: &'static [&'static str] = task::FIELDS;

    fn parse(
        object: &Map<String, Value>,
        method_key: Option<&str>,
        path: &str,
        ctx: &ParseContext<'_>,
    ) -> Result<ParsedSpec<GraphqlWsTask>, TaskError> {
        task::parse(object, method_key, path, ctx)
    }

    fn csv_sources(spec: &GraphqlWsTask, into: &mut Vec<usize>) {
        spec.csv_sources(into);
    }

    fn client(shared: &Arc<GraphqlWsShared>) -> GraphqlWsClient {
        GraphqlWsClient {
            shared: shared.clone(),
            connection: None,
            url: None,
        }
    }

    async fn step(
        client: &mut GraphqlWsClient,
        task: &Task<GraphqlWsTask>,
        ctx: &mut StepContext<'_>,
    ) -> StepOutcome {
        let spec = &task.spec;
        let (url, name, id, query) = {
            let mut render = ctx.render();
            let url = spec.url.as_ref().map(|u| u.render(&mut render));
            let name = spec.name.as_ref().map(|n| n.render(&mut render));
            let id = spec.id.render(&mut render);
            let query = spec.query.as_ref().map(|q| q.render(&mut render));
            (url, name, id, query)
        };
        let timed =
            tokio::time::timeout(spec.timeout, run(client, spec, url, &id, query.as_deref())).await;
        let result = timed.unwrap_or_else(|_| {
            // A message may still come for a cut-off exchange: a connect starts
            // afresh; a subscription keeps its connection, as LoadDensity does.
            if spec.method == GraphqlWsMethod::Connect {
                client.connection = None;
            }
            Err(format!(
                "timed out after {}",
                humantime::format_duration(spec.timeout)
            ))
        });
        let end = Instant::now();
        if let Some(log) = ctx.log_url() {
            log.clear();
            log.push_str(&redact_url_credentials(client.url.as_deref().unwrap_or("")));
        }
        let (response_length, failure) = match result {
            Ok(length) => (length, None),
            Err(failure) => (0, Some(failure)),
        };
        StepOutcome {
            end,
            name,
            status: None,
            response_length,
            failure,
            connect_failure: false,
            class: ErrorClass::Permanent,
            sample: None,
        }
    }
}

/// Runs one step; the number of bytes counted, or why it failed.
async fn run(
    client: &mut GraphqlWsClient,
    spec: &GraphqlWsTask,
    url: Option<String>,
    id: &str,
    query: Option<&str>,
) -> Result<u64, String> {
    match spec.method {
        GraphqlWsMethod::Connect => {
            let url = url
                .or_else(|| spec.host.clone())
                .ok_or("no URL to connect to: give `url`")?;
            // Boxed: the handshake's future is large and rare.
            Box::pin(connect(client, spec, url)).await
        }
        GraphqlWsMethod::Close => {
            if let Some(mut stream) = client.connection.take() {
                // The close handshake: send ours, read until the peer's.
                let _ = WebSocketStream::close(&mut *stream, None).await;
                while let Some(Ok(_)) = stream.next().await {}
            }
            Ok(0)
        }
        GraphqlWsMethod::Complete => {
            let Some(stream) = client.connection.as_mut() else {
                return Ok(0);
            };
            let message = json!({"id": id, "type": "complete"}).to_string();
            let length = message.len() as u64;
            if let Err(e) = stream.send(Message::text(message)).await {
                client.connection = None;
                return Err(format!("send failed: {e}"));
            }
            Ok(length)
        }
        GraphqlWsMethod::Subscribe => {
            let stream = client
                .connection
                .as_mut()
                .ok_or("graphql-ws not connected: add a `connect` step before `subscribe`")?;
            let result = subscribe(stream, spec, id, query.unwrap_or_default()).await;
            if let Err((_, true)) = result {
                client.connection = None;
            }
            result.map_err(|(message, _)| message)
        }
    }
}

/// Opens a connection to `url` (closing another one first), sends `connection_init`
/// and reads the server's acknowledgement: the bytes of the acknowledgement.
async fn connect(
    client: &mut GraphqlWsClient,
    spec: &GraphqlWsTask,
    url: String,
) -> Result<u64, String> {
    if let Some(mut old) = client.connection.take() {
        let _ = WebSocketStream::close(&mut *old, None).await;
    }
    let shown = redact_url_credentials(&url).into_owned();
    client.url = Some(url.clone());
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("`{shown}` is not a WebSocket URL: {e}"))?;
    for (name, value) in &spec.headers {
        request.headers_mut().insert(name.clone(), value.clone());
    }
    request
        .headers_mut()
        .insert(SEC_WEBSOCKET_PROTOCOL, spec.protocol.clone());
    let connector = if url.len() >= 6 && url[..6].eq_ignore_ascii_case("wss://") {
        Connector::Rustls(client.shared.tls.get_http1(spec.verify).config().clone())
    } else {
        Connector::Plain
    };
    let (mut stream, _response) =
        tokio_tungstenite::connect_async_tls_with_config(request, None, true, Some(connector))
            .await
            .map_err(|e| format!("connect to `{shown}` failed: {e}"))?;
    let init = json!({"type": "connection_init", "payload": spec.init_payload}).to_string();
    stream
        .send(Message::text(init))
        .await
        .map_err(|e| format!("send connection_init failed: {e}"))?;
    let ack = loop {
        let text = receive(&mut stream).await?;
        match message_type(&text).as_deref() {
            Some("ping") => pong(&mut stream).await?,
            Some("connection_ack") => break text,
            _ => {
                return Err(format!("expected connection_ack, got `{}`", shorten(&text)));
            }
        }
    };
    client.connection = Some(Box::new(stream));
    Ok(ack.len() as u64)
}

/// Sends `subscribe` and reads up to `max_messages` messages of the operation (or
/// until its `complete`): their bytes. The error says whether the connection is
/// lost.
async fn subscribe(
    stream: &mut Stream,
    spec: &GraphqlWsTask,
    id: &str,
    query: &str,
) -> Result<u64, (String, bool)> {
    let message = json!({
        "id": id,
        "type": "subscribe",
        "payload": {
            "query": query,
            "variables": spec.variables,
            "operationName": spec.operation_name,
        },
    });
    stream
        .send(Message::text(message.to_string()))
        .await
        .map_err(|e| (format!("send failed: {e}"), true))?;
    let mut total = 0;
    let mut read = 0;
    // Bounded by `max_messages` messages of this operation, and by the step's timeout.
    while read < spec.max_messages {
        let text = receive(stream).await.map_err(|e| (e, true))?;
        let parsed: Value = match serde_json::from_str(&text) {
            Ok(value) => value,
            Err(_) => {
                return Err((
                    format!(
                        "the server sent a message that is not JSON: `{}`",
                        shorten(&text)
                    ),
                    false,
                ));
            }
        };
        let kind = parsed["type"].as_str().unwrap_or_default();
        if kind == "ping" {
            pong(stream).await.map_err(|e| (e, true))?;
            continue;
        }
        if parsed["id"].as_str() != Some(id) {
            continue;
        }
        total += text.len() as u64;
        read += 1;
        match kind {
            "next" => {}
            "complete" => break,
            "error" => {
                return Err((
                    format!("the server refused the subscription: {}", parsed["payload"]),
                    false,
                ));
            }
            other => {
                return Err((
                    format!("unexpected `{other}` message: `{}`", shorten(&text)),
                    false,
                ));
            }
        }
    }
    Ok(total)
}

/// The next text (or UTF-8 binary) message; pings of WebSocket itself are answered
/// by the library.
async fn receive(stream: &mut Stream) -> Result<Utf8Bytes, String> {
    // Bounded by the step's timeout; control frames only in between.
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text),
            Some(Ok(Message::Binary(bytes))) => {
                return Utf8Bytes::try_from(bytes)
                    .map_err(|_| "the server sent a binary message that is not UTF-8".into());
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Close(frame))) => {
                return Err(match frame {
                    Some(f) => format!(
                        "the server closed the connection (code {}{}{})",
                        u16::from(f.code),
                        if f.reason.is_empty() { "" } else { ": " },
                        f.reason
                    ),
                    None => "the server closed the connection".into(),
                });
            }
            Some(Err(e)) => return Err(format!("receive failed: {e}")),
            None => return Err("the connection is closed".into()),
        }
    }
}

/// Answers the protocol's `ping`.
async fn pong(stream: &mut Stream) -> Result<(), String> {
    stream
        .send(Message::text(r#"{"type":"pong"}"#))
        .await
        .map_err(|e| format!("send pong failed: {e}"))
}

/// The `type` of a protocol message, when it is JSON with one.
fn message_type(text: &str) -> Option<String> {
    let value: Value = serde_json::from_str(text).ok()?;
    value["type"].as_str().map(str::to_string)
}

/// The start of a message, for error texts.
fn shorten(text: &str) -> String {
    text.chars().take(120).collect()
}
