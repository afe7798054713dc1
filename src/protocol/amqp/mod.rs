//! AMQP 0-9-1 (`amqp_user`, request type `AMQP`) with lapin, as LoadDensity 0.0.79
//! drives RabbitMQ with pika: each user holds one connection and one channel,
//! opened by a `connect` step and kept until its `close` step (or the user's end).
//! A step that needs the channel when none is open fails, as LoadDensity's does
//! (`amqp channel not open`); the next `connect` opens a new one.
//!
//! A channel the broker closes (a `queue.declare` that contradicts the queue's
//! arguments, a `basic.get` on a missing queue, ...) fails its step with the
//! broker's reply (`NOT_FOUND - no queue 'q'`), and the steps after it fail with
//! that reason until a `connect`. The response length is the body's size for
//! `publish`, the bodies' total for `consume`, and zero otherwise.

mod task;

pub use task::{AmqpMethod, AmqpTask, DEFAULT_TIMEOUT, DEFAULT_URL, FIELDS, MAX_MESSAGES, METHODS};

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::{Map, Value};

use crate::protocol::fields::render_optional;
use crate::protocol::{
    Failure, FailureKind, ParseContext, ParsedSpec, Protocol, StepContext, StepOutcome,
};
use crate::redact::redact_url_credentials;
use crate::scenario::Template;
use crate::task::{Task, TaskError};

/// The `amqp_user` protocol.
#[derive(Debug, Clone)]
pub struct Amqp;

/// One open connection and its channel.
struct Open {
    connection: Connection,
    channel: Channel,
    /// The broker, without credentials.
    label: String,
}

/// One virtual user's AMQP connection.
#[derive(Default)]
pub struct AmqpClient {
    open: Option<Open>,
    /// Why the last channel ended, when the broker (or the network) ended it.
    lost: Option<String>,
}

impl AmqpClient {
    /// The open channel, or why there is none.
    fn channel(&self, what: &str) -> Result<&Channel, String> {
        match (&self.open, &self.lost) {
            (Some(open), _) => Ok(&open.channel),
            (None, Some(lost)) => Err(format!(
                "{what}: amqp channel not open ({lost}); a `connect` step opens a new one"
            )),
            (None, None) => Err(format!(
                "{what}: amqp channel not open; run a `connect` step first"
            )),
        }
    }

    /// Runs one broker operation on the channel within `timeout`. A failure that
    /// ended the channel or the connection drops them (remembering why).
    async fn operate<T, F>(
        &mut self,
        what: &str,
        timeout: Duration,
        operation: impl FnOnce(Channel) -> F,
    ) -> Result<T, Failure>
    where
        F: Future<Output = Result<T, lapin::Error>>,
    {
        let channel = self.channel(what)?.clone();
        match tokio::time::timeout(timeout, operation(channel)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                let message = describe(&e);
                let ended = self.open.as_ref().is_none_or(|open| {
                    !open.channel.status().connected() || !open.connection.status().connected()
                });
                if ended {
                    self.open = None;
                    self.lost = Some(message.clone());
                }
                Err(Failure::new(kind(&e), format!("{what}: {message}")))
            }
            Err(_) => {
                // A late reply would still arrive on this channel: start afresh.
                let message = format!("timed out after {timeout:?}");
                self.open = None;
                self.lost = Some(format!("{what} {message}"));
                Err(Failure::timeout(format!("{what}: {message}")))
            }
        }
    }

    /// Closes the connection, waiting at most `timeout` for the broker.
    async fn close(&mut self, timeout: Duration) -> Result<(), String> {
        self.lost = None;
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        match tokio::time::timeout(timeout, open.connection.close(200, "OK".into())).await {
            Ok(Ok(())) => Ok(()),
            // Already closed by the broker or the network: nothing left to close.
            Ok(Err(_)) if !open.connection.status().connected() => Ok(()),
            Ok(Err(e)) => Err(format!("close {}: {}", open.label, describe(&e))),
            Err(_) => Err(format!("close {}: timed out after {timeout:?}", open.label)),
        }
    }

    /// Opens a connection and a channel to `url`, closing the previous ones.
    async fn connect(&mut self, url: &str, timeout: Duration) -> Result<(), Failure> {
        if self.open.is_some() {
            let _ = self.close(timeout).await;
        }
        self.lost = None;
        let label = task::label(url);
        let properties = ConnectionProperties::default().with_connection_name("loaddensity".into());
        let opened = tokio::time::timeout(timeout, async {
            let connection = Connection::connect(url, properties).await?;
            let channel = connection.create_channel().await?;
            Ok::<_, lapin::Error>((connection, channel))
        })
        .await;
        match opened {
            Ok(Ok((connection, channel))) => {
                self.open = Some(Open {
                    connection,
                    channel,
                    label,
                });
                Ok(())
            }
            Ok(Err(e)) => Err(Failure::connect(format!(
                "connect {label}: {}",
                describe(&e)
            ))),
            Err(_) => Err(Failure::connect(format!(
                "connect {label}: timed out after {timeout:?}"
            ))),
        }
    }
}

/// The kind of a failed broker operation: the broker's refusal is permanent, a
/// lost or broken connection transient.
fn kind(error: &lapin::Error) -> FailureKind {
    match error.kind() {
        lapin::ErrorKind::IOError(_)
        | lapin::ErrorKind::InvalidConnectionState(_)
        | lapin::ErrorKind::MissingHeartbeatError => FailureKind::Network,
        _ => FailureKind::Other,
    }
}

/// A lapin error as a message: the broker's reply for a channel or connection it
/// closed, never a URL's password.
fn describe(error: &lapin::Error) -> String {
    let text = match error.kind() {
        lapin::ErrorKind::ProtocolError(amqp) => {
            let which = match amqp.kind() {
                lapin::protocol::AMQPErrorKind::Soft(_) => "channel",
                lapin::protocol::AMQPErrorKind::Hard(_) => "connection",
            };
            format!(
                "{which} closed by the broker ({}): {}",
                amqp.get_id(),
                amqp.get_message()
            )
        }
        _ => error.to_string(),
    };
    redact_url_credentials(&text).into_owned()
}

/// A task's texts rendered for one step.
struct Rendered {
    url: String,
    queue: String,
    exchange: String,
    routing_key: String,
    body: String,
    name: Option<String>,
}

fn render(task: &AmqpTask, ctx: &mut StepContext<'_>) -> Rendered {
    let mut render = ctx.render();
    let name = render_optional(task.name.as_ref(), &mut render);
    let mut text = |t: Option<&Template>| render_optional(t, &mut render).unwrap_or_default();
    Rendered {
        url: text(Some(&task.url)),
        queue: text(task.queue.as_ref()),
        exchange: text(task.exchange.as_ref()),
        routing_key: text(task.routing_key.as_ref()),
        body: text(task.body.as_ref()),
        name,
    }
}

impl Protocol for Amqp {
    type Spec = AmqpTask;
    type Shared = ();
    type Client = AmqpClient;

    const FIELDS: &'static [&'static str] = FIELDS;

    fn parse(
        object: &Map<String, Value>,
        method_key: Option<&str>,
        path: &str,
        ctx: &ParseContext<'_>,
    ) -> Result<ParsedSpec<AmqpTask>, TaskError> {
        task::parse(object, method_key, path, ctx)
    }

    fn csv_sources(spec: &AmqpTask, into: &mut Vec<usize>) {
        spec.csv_sources(into);
    }

    fn client(_shared: &Arc<()>) -> AmqpClient {
        AmqpClient::default()
    }

    async fn step(
        client: &mut AmqpClient,
        task: &Task<AmqpTask>,
        ctx: &mut StepContext<'_>,
    ) -> StepOutcome {
        let mut fields = render(task, ctx);
        let name = fields.name.take();
        if let Some(url) = ctx.log_url() {
            url.clear();
            url.push_str(&task::label(&fields.url));
        }
        let result = run(client, task, &fields).await;
        StepOutcome::finished(Instant::now(), name, result)
    }
}

/// Runs one step: the bytes it counts.
async fn run(client: &mut AmqpClient, task: &AmqpTask, fields: &Rendered) -> Result<u64, Failure> {
    let timeout = task.timeout;
    match task.method {
        AmqpMethod::Connect => client.connect(&fields.url, timeout).await.map(|()| 0),
        AmqpMethod::Close => Ok(client.close(timeout).await.map(|()| 0)?),
        AmqpMethod::DeclareQueue => {
            let options = QueueDeclareOptions {
                durable: task.durable,
                exclusive: task.exclusive,
                auto_delete: task.auto_delete,
                ..QueueDeclareOptions::default()
            };
            let queue = fields.queue.as_str();
            client
                .operate("declare_queue", timeout, |channel| async move {
                    channel
                        .queue_declare(queue.into(), options, FieldTable::default())
                        .await
                })
                .await?;
            Ok(0)
        }
        AmqpMethod::Publish => {
            let body = fields.body.as_bytes();
            let (exchange, routing_key) = (fields.exchange.as_str(), fields.routing_key.as_str());
            client
                .operate("publish", timeout, |channel| async move {
                    channel
                        .basic_publish(
                            exchange.into(),
                            routing_key.into(),
                            BasicPublishOptions::default(),
                            body,
                            BasicProperties::default(),
                        )
                        .await?
                        .await
                })
                .await?;
            Ok(body.len() as u64)
        }
        AmqpMethod::Consume => {
            let options = BasicGetOptions {
                no_ack: task.auto_ack,
            };
            let mut total = 0;
            for _ in 0..task.max_messages {
                let queue = fields.queue.as_str();
                let got = client
                    .operate("consume", timeout, |channel| async move {
                        channel.basic_get(queue.into(), options).await
                    })
                    .await?;
                match got {
                    Some(message) => total += message.delivery.data.len() as u64,
                    None => break,
                }
            }
            Ok(total)
        }
    }
}
