//! MQTT 3.1.1 (`mqtt_user`, request type `MQTT`) with rumqttc: each user keeps one
//! connection, opened by its first step (or a `connect` task) and driven by a
//! small task of its own that forwards what the broker sends (acknowledgements,
//! messages) over a bounded channel to the user's steps.
//!
//! `publish` is timed to the PUBACK (qos 1), the PUBCOMP (qos 2) or the write
//! (qos 0); `subscribe` to the SUBACK. A message received on a subscription is
//! reported as its own event, `recv:{topic}`, with the end-to-end latency when its
//! payload starts with our timestamp (`ld-ts:<unix µs>;`, added by
//! `"timestamp": true`), else zero.

mod task;

pub use task::{DEFAULT_BROKER, DEFAULT_TIMEOUT, FIELDS, METHODS, MqttMethod, MqttTask};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::event::{Endpoint, intern_endpoint};
use crate::protocol::fields::render_optional;
use crate::protocol::{
    ExtraEvent, Failure, FailureKind, ParseContext, ParsedSpec, Protocol, StepContext, StepOutcome,
};
use crate::task::{Task, TaskError};

/// The prefix of a payload that carries its send time.
const TIMESTAMP_PREFIX: &[u8] = b"ld-ts:";
/// What the connection's driver may hold for the user before it waits.
const NOTICE_QUEUE: usize = 256;
/// `recv:` names a user remembers; past this the cache starts over.
const RECV_NAME_LIMIT: usize = 1024;

/// The `mqtt_user` protocol.
#[derive(Debug, Clone)]
pub struct Mqtt;

/// What the driver forwards to the user.
enum Notice {
    Event(Instant, Event),
    Closed(String),
}

/// One open connection and its driver task.
struct Connection {
    broker: String,
    client: AsyncClient,
    notices: mpsc::Receiver<Notice>,
    driver: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// One virtual user's MQTT connection and its `recv:` endpoints.
#[derive(Default)]
pub struct MqttClient {
    connection: Option<Connection>,
    recv_names: HashMap<String, Arc<Endpoint>>,
}

async fn drive(mut eventloop: EventLoop, tx: mpsc::Sender<Notice>) {
    loop {
        let notice = match eventloop.poll().await {
            Ok(
                Event::Incoming(Packet::PingResp)
                | Event::Outgoing(Outgoing::PingReq | Outgoing::PingResp),
            ) => continue,
            Ok(event) => Notice::Event(Instant::now(), event),
            Err(e) => Notice::Closed(e.to_string()),
        };
        let closed = matches!(notice, Notice::Closed(_));
        if tx.send(notice).await.is_err() || closed {
            return;
        }
    }
}

impl MqttClient {
    /// The `recv:{topic}` endpoint.
    fn recv_endpoint(&mut self, topic: &str) -> Arc<Endpoint> {
        if let Some(found) = self.recv_names.get(topic) {
            return found.clone();
        }
        if self.recv_names.len() >= RECV_NAME_LIMIT {
            self.recv_names.clear();
        }
        let endpoint = intern_endpoint("MQTT", &format!("recv:{topic}"));
        self.recv_names.insert(topic.to_string(), endpoint.clone());
        endpoint
    }

    /// Reports a received message.
    fn received(&mut self, at: Instant, publish: &rumqttc::Publish, ctx: &mut StepContext<'_>) {
        let latency = sent_at(&publish.payload)
            .and_then(|sent| SystemTime::now().duration_since(sent).ok())
            .unwrap_or(Duration::ZERO);
        let endpoint = self.recv_endpoint(&publish.topic);
        ctx.report(ExtraEvent {
            endpoint,
            start: at.checked_sub(latency).unwrap_or(at),
            response_time: latency,
            response_length: publish.payload.len() as u64,
            failure: None,
        });
    }

    /// Reports what arrived since the last step; drops a closed connection.
    fn drain(&mut self, ctx: &mut StepContext<'_>) {
        loop {
            let Some(connection) = self.connection.as_mut() else {
                return;
            };
            match connection.notices.try_recv() {
                Ok(Notice::Event(at, Event::Incoming(Packet::Publish(p)))) => {
                    self.received(at, &p, ctx);
                }
                Ok(Notice::Event(..)) => {}
                Ok(Notice::Closed(_)) | Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.connection = None;
                }
                Err(mpsc::error::TryRecvError::Empty) => return,
            }
        }
    }

    /// Waits until `done` accepts an event (reporting received messages), the
    /// connection closes, or `deadline`.
    async fn wait_for(
        &mut self,
        ctx: &mut StepContext<'_>,
        deadline: tokio::time::Instant,
        what: &str,
        mut done: impl FnMut(&Event) -> Option<Result<(), String>>,
    ) -> Result<Instant, Failure> {
        loop {
            let Some(connection) = self.connection.as_mut() else {
                return Err(format!("{what}: not connected").into());
            };
            match tokio::time::timeout_at(deadline, connection.notices.recv()).await {
                Err(_) => return Err(Failure::timeout(format!("{what}: timed out"))),
                Ok(None) => {
                    self.connection = None;
                    return Err(Failure::network(format!("{what}: connection closed")));
                }
                Ok(Some(Notice::Closed(e))) => {
                    self.connection = None;
                    return Err(Failure::network(format!("{what}: {e}")));
                }
                Ok(Some(Notice::Event(at, Event::Incoming(Packet::Publish(p))))) => {
                    self.received(at, &p, ctx);
                }
                Ok(Some(Notice::Event(at, event))) => {
                    if let Some(result) = done(&event) {
                        return result.map(|()| at).map_err(Failure::from);
                    }
                }
            }
        }
    }

    /// Connects to `broker` unless already connected there; waits for the CONNACK.
    async fn ensure_connected(
        &mut self,
        task: &MqttTask,
        broker: &str,
        fields: &Rendered,
        ctx: &mut StepContext<'_>,
    ) -> Result<(), Failure> {
        if self.connection.as_ref().is_some_and(|c| c.broker == broker) {
            return Ok(());
        }
        self.connection = None;
        let (host, port) = task::parse_broker(broker)?;
        let client_id = fields
            .client_id
            .clone()
            .unwrap_or_else(|| format!("loaddensity-{}", uuid::Uuid::new_v4().simple()));
        let mut options = MqttOptions::new(client_id, host, port);
        options
            .set_keep_alive(task.keepalive)
            .set_clean_session(true);
        if let Some(user) = &fields.username {
            options.set_credentials(user.clone(), fields.password.clone().unwrap_or_default());
        }
        let (client, eventloop) = AsyncClient::new(options, 16);
        let (tx, notices) = mpsc::channel(NOTICE_QUEUE);
        let driver = tokio::spawn(drive(eventloop, tx));
        self.connection = Some(Connection {
            broker: broker.to_string(),
            client,
            notices,
            driver,
        });
        let deadline = tokio::time::Instant::now() + task.timeout;
        let result = self
            .wait_for(
                ctx,
                deadline,
                &format!("connect {broker}"),
                |event| match event {
                    Event::Incoming(Packet::ConnAck(ack)) => {
                        Some(if ack.code == rumqttc::ConnectReturnCode::Success {
                            Ok(())
                        } else {
                            Err(format!("connection refused: {:?}", ack.code))
                        })
                    }
                    _ => None,
                },
            )
            .await;
        if result.is_err() {
            self.connection = None;
        }
        // No CONNACK (refused, reset, timed out): the broker could not be reached.
        result.map(|_| ()).map_err(|failure| match failure.kind {
            FailureKind::Timeout | FailureKind::Network => Failure::connect(failure.message),
            _ => failure,
        })
    }
}

/// A task's fields rendered for one step.
struct Rendered {
    broker: String,
    topic: String,
    payload: Result<Vec<u8>, String>,
    username: Option<String>,
    password: Option<String>,
    client_id: Option<String>,
    name: Option<String>,
}

fn render(task: &MqttTask, ctx: &mut StepContext<'_>) -> Rendered {
    let mut render = ctx.render();
    let payload = task.payload.as_ref().map_or_else(
        || Ok(Vec::new()),
        |p| task::payload_bytes(&p.render(&mut render)),
    );
    let payload = payload.map(|bytes| {
        if task.timestamp {
            let micros = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_micros());
            let mut stamped = format!("ld-ts:{micros};").into_bytes();
            stamped.extend_from_slice(&bytes);
            stamped
        } else {
            bytes
        }
    });
    Rendered {
        broker: task.broker.render(&mut render),
        topic: render_optional(task.topic.as_ref(), &mut render).unwrap_or_default(),
        payload,
        username: render_optional(task.username.as_ref(), &mut render),
        password: render_optional(task.password.as_ref(), &mut render),
        client_id: render_optional(task.client_id.as_ref(), &mut render),
        name: render_optional(task.name.as_ref(), &mut render),
    }
}

/// The send time a payload carries (`ld-ts:<unix µs>;...`).
fn sent_at(payload: &[u8]) -> Option<SystemTime> {
    let rest = payload.strip_prefix(TIMESTAMP_PREFIX)?;
    let end = rest.iter().position(|b| *b == b';')?;
    let micros: u64 = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
    UNIX_EPOCH.checked_add(Duration::from_micros(micros))
}

impl Protocol for Mqtt {
    type Spec = MqttTask;
    type Shared = ();
    type Client = MqttClient;

    const FIELDS: &'static [&'static str] = FIELDS;

    fn parse(
        object: &Map<String, Value>,
        method_key: Option<&str>,
        path: &str,
        ctx: &ParseContext<'_>,
    ) -> Result<ParsedSpec<MqttTask>, TaskError> {
        task::parse(object, method_key, path, ctx)
    }

    fn csv_sources(spec: &MqttTask, into: &mut Vec<usize>) {
        spec.csv_sources(into);
    }

    fn client(_shared: &Arc<()>) -> MqttClient {
        MqttClient::default()
    }

    async fn step(
        client: &mut MqttClient,
        task: &Task<MqttTask>,
        ctx: &mut StepContext<'_>,
    ) -> StepOutcome {
        let fields = render(task, ctx);
        client.drain(ctx);
        let name = fields.name.clone();
        let (end, result) = match run(client, task, &fields, ctx).await {
            Ok((end, length)) => (end, Ok(length)),
            Err(failure) => (Instant::now(), Err(failure)),
        };
        StepOutcome::finished(end, name, result)
    }
}

/// Runs one step: when it ended and the bytes it counts.
async fn run(
    client: &mut MqttClient,
    task: &MqttTask,
    fields: &Rendered,
    ctx: &mut StepContext<'_>,
) -> Result<(Instant, u64), Failure> {
    if task.method == MqttMethod::Disconnect {
        if let Some(connection) = client.connection.as_ref() {
            let _ = connection.client.disconnect().await;
            let deadline = tokio::time::Instant::now() + task.timeout;
            let _ = client
                .wait_for(ctx, deadline, "disconnect", |event| {
                    matches!(event, Event::Outgoing(Outgoing::Disconnect)).then_some(Ok(()))
                })
                .await;
            client.connection = None;
        }
        return Ok((Instant::now(), 0));
    }
    client
        .ensure_connected(task, &fields.broker, fields, ctx)
        .await?;
    let deadline = tokio::time::Instant::now() + task.timeout;
    match task.method {
        MqttMethod::Connect | MqttMethod::Disconnect => Ok((Instant::now(), 0)),
        MqttMethod::Publish => {
            let payload = fields.payload.clone()?;
            let length = payload.len() as u64;
            let sender = client.connection.as_ref().map(|c| c.client.clone());
            let sender = sender.ok_or("publish: not connected")?;
            sender
                .publish(fields.topic.clone(), task.qos, task.retain, payload)
                .await
                .map_err(|e| format!("publish: {e}"))?;
            let qos = task.qos;
            let mut pkid = None;
            let end = client
                .wait_for(ctx, deadline, "publish", |event| match (event, qos) {
                    (Event::Outgoing(Outgoing::Publish(id)), QoS::AtMostOnce) => {
                        let _ = id;
                        Some(Ok(()))
                    }
                    (Event::Outgoing(Outgoing::Publish(id)), _) if pkid.is_none() => {
                        pkid = Some(*id);
                        None
                    }
                    (Event::Incoming(Packet::PubAck(ack)), QoS::AtLeastOnce)
                        if Some(ack.pkid) == pkid =>
                    {
                        Some(Ok(()))
                    }
                    (Event::Incoming(Packet::PubComp(comp)), QoS::ExactlyOnce)
                        if Some(comp.pkid) == pkid =>
                    {
                        Some(Ok(()))
                    }
                    _ => None,
                })
                .await?;
            Ok((end, length))
        }
        MqttMethod::Subscribe => {
            let sender = client.connection.as_ref().map(|c| c.client.clone());
            let sender = sender.ok_or("subscribe: not connected")?;
            sender
                .subscribe(fields.topic.clone(), task.qos)
                .await
                .map_err(|e| format!("subscribe: {e}"))?;
            let mut pkid = None;
            let end = client
                .wait_for(ctx, deadline, "subscribe", |event| match event {
                    Event::Outgoing(Outgoing::Subscribe(id)) if pkid.is_none() => {
                        pkid = Some(*id);
                        None
                    }
                    Event::Incoming(Packet::SubAck(ack)) if Some(ack.pkid) == pkid => Some(
                        if ack
                            .return_codes
                            .iter()
                            .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                        {
                            Err(format!(
                                "subscribe `{}`: refused by the broker",
                                fields.topic
                            ))
                        } else {
                            Ok(())
                        },
                    ),
                    _ => None,
                })
                .await?;
            Ok((end, 0))
        }
    }
}
