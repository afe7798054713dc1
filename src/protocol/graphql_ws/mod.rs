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

use futures_util::SinkExt;
use serde_json::{Map, Value, json};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::protocol::fields::render_optional;
use crate::protocol::http::TlsConnectors;
use crate::protocol::user_connection::UserConnection;
use crate::protocol::websocket::conn::{self, Data, Stream};
use crate::protocol::{Failure, ParseContext, ParsedSpec, Protocol, StepContext, StepOutcome};
use crate::task::{Task, TaskError};

/// GraphQL over WebSocket, LoadDensity's `graphql_ws_user`.
#[derive(Debug, Clone)]
pub struct GraphqlWs;

/// One user's GraphQL-over-WebSocket client: its open, acknowledged connection and
/// the URL of the last one.
pub struct GraphqlWsClient(Connection);

/// A user's connection, and the URL of the last one (for the request log).
type Connection = UserConnection<Stream>;

impl Protocol for GraphqlWs {
    type Spec = GraphqlWsTask;
    /// The TLS configuration for `wss://`.
    type Shared = TlsConnectors;
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

    fn client(tls: &Arc<TlsConnectors>) -> GraphqlWsClient {
        GraphqlWsClient(UserConnection::new(tls))
    }

    async fn step(
        client: &mut GraphqlWsClient,
        task: &Task<GraphqlWsTask>,
        ctx: &mut StepContext<'_>,
    ) -> StepOutcome {
        let (client, spec) = (&mut client.0, &task.spec);
        let (url, name, id, query) = {
            let mut render = ctx.render();
            let url = render_optional(spec.url.as_ref(), &mut render);
            let name = render_optional(spec.name.as_ref(), &mut render);
            let id = spec.id.render(&mut render);
            let query = render_optional(spec.query.as_ref(), &mut render);
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
            Err(Failure::timed_out(spec.timeout))
        });
        let end = Instant::now();
        client.log_url(ctx);
        StepOutcome::finished(end, name, result)
    }
}

/// Runs one step; the number of bytes counted, or why it failed.
async fn run(
    client: &mut Connection,
    spec: &GraphqlWsTask,
    url: Option<String>,
    id: &str,
    query: Option<&str>,
) -> Result<u64, Failure> {
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
                conn::close(&mut stream).await;
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
                return Err(Failure::network(format!("send failed: {e}")));
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
            result.map_err(|(failure, _)| failure)
        }
    }
}

/// Opens a connection to `url` (closing another one first), sends `connection_init`
/// and reads the server's acknowledgement: the bytes of the acknowledgement.
async fn connect(
    client: &mut Connection,
    spec: &GraphqlWsTask,
    url: String,
) -> Result<u64, Failure> {
    if let Some(mut old) = client.connection.take() {
        let _ = WebSocketStream::close(&mut *old, None).await;
    }
    client.url = Some(url.clone());
    let mut stream = conn::open(
        &url,
        &spec.headers,
        Some(&spec.protocol),
        &client.tls,
        spec.verify,
    )
    .await?;
    let init = json!({"type": "connection_init", "payload": spec.init_payload}).to_string();
    stream
        .send(Message::text(init))
        .await
        .map_err(|e| Failure::network(format!("send connection_init failed: {e}")))?;
    let ack = loop {
        let text = receive(&mut stream).await?;
        match message_type(&text).as_deref() {
            Some("ping") => pong(&mut stream).await?,
            Some("connection_ack") => break text,
            _ => {
                return Err(Failure::expectation(format!(
                    "expected connection_ack, got `{}`",
                    shorten(&text)
                )));
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
) -> Result<u64, (Failure, bool)> {
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
        .map_err(|e| (Failure::network(format!("send failed: {e}")), true))?;
    let mut total = 0;
    let mut read = 0;
    // Bounded by `max_messages` messages of this operation, and by the step's timeout.
    while read < spec.max_messages {
        let text = receive(stream).await.map_err(|e| (e, true))?;
        let parsed: Value = match serde_json::from_str(&text) {
            Ok(value) => value,
            Err(_) => {
                return Err((
                    Failure::expectation(format!(
                        "the server sent a message that is not JSON: `{}`",
                        shorten(&text)
                    )),
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
                    Failure::from(format!(
                        "the server refused the subscription: {}",
                        parsed["payload"]
                    )),
                    false,
                ));
            }
            other => {
                return Err((
                    Failure::expectation(format!(
                        "unexpected `{other}` message: `{}`",
                        shorten(&text)
                    )),
                    false,
                ));
            }
        }
    }
    Ok(total)
}

/// The next text (or UTF-8 binary) message; pings of WebSocket itself are answered
/// by the library.
async fn receive(stream: &mut Stream) -> Result<Utf8Bytes, Failure> {
    match conn::receive(stream).await? {
        Data::Text(text) => Ok(text),
        Data::Binary(bytes) => Utf8Bytes::try_from(bytes).map_err(|_| {
            Failure::expectation("the server sent a binary message that is not UTF-8")
        }),
    }
}

/// Answers the protocol's `ping`.
async fn pong(stream: &mut Stream) -> Result<(), Failure> {
    stream
        .send(Message::text(r#"{"type":"pong"}"#))
        .await
        .map_err(|e| Failure::network(format!("send pong failed: {e}")))
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
