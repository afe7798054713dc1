//! NATS (`nats_user`, request type `NATS`) with async-nats, as LoadDensity 0.0.79
//! drives nats-py: each user holds one connection, opened by a `connect` step and
//! kept until its `close` step (or the user's end); a step that needs it when none
//! is open fails (`not connected`), as LoadDensity's does, and the next `connect`
//! opens a new one. While connected, async-nats reconnects by itself after a
//! dropped connection, as nats-py does.
//!
//! `publish` is timed to its write to the socket (so a message counted as sent is
//! one the server gets, even when the run stops before `close`), `subscribe` to the
//! last of its `max_messages` messages, `request` to the reply. The server's `-ERR`
//! lines arrive on their own: the step during which one arrives (or the next step)
//! fails with its text. The response length is the payload's size for `publish`,
//! the messages' total for `subscribe`, the reply's for `request`, zero otherwise.

mod task;

pub use task::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, DEFAULT_URL, FIELDS, MAX_MESSAGES, METHODS,
    NatsMethod, NatsTask,
};

use std::borrow::Cow;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::{Client, ConnectOptions, Event, Request, RequestErrorKind, ServerError, Subject};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::protocol::fields::render_optional;
use crate::protocol::step_timer::StepTimer;
use crate::protocol::{Failure, ParseContext, ParsedSpec, Protocol, StepContext, StepOutcome};
use crate::redact::{redact_url_credentials, split_url_credentials};
use crate::task::{Task, TaskError};

/// Server errors a connection keeps for its user's next look.
const ERROR_QUEUE: usize = 64;

/// The `nats_user` protocol.
#[derive(Debug, Clone)]
pub struct Nats;

/// One open connection and the server errors it received.
struct Open {
    client: Client,
    errors: mpsc::Receiver<String>,
    /// The servers, without credentials.
    label: String,
}

/// One virtual user's NATS connection.
#[derive(Default)]
pub struct NatsClient {
    open: Option<Open>,
    /// `publish`'s deadline, where a timeout per publish would arm and remove a
    /// timer every time.
    timer: StepTimer,
}

/// A server error as the server sent it (`-ERR 'Permissions Violation ...'`).
fn server_error_text(error: &ServerError) -> String {
    match error {
        ServerError::AuthorizationViolation => "-ERR 'Authorization Violation'".to_string(),
        ServerError::SlowConsumer(sid) => format!("slow consumer on subscription {sid}"),
        ServerError::Other(text) => format!("-ERR '{text}'"),
    }
}

/// The open connection, or why there is none.
fn connection<'a>(open: &'a Option<Open>, what: &str) -> Result<&'a Client, String> {
    open.as_ref()
        .map(|open| &open.client)
        .ok_or_else(|| format!("{what}: not connected; run a `connect` step first"))
}

impl NatsClient {
    /// The open connection, or why there is none.
    fn client(&self, what: &str) -> Result<&Client, String> {
        connection(&self.open, what)
    }

    /// The server errors received since the last look, as one message.
    fn server_errors(&mut self) -> Option<String> {
        let open = self.open.as_mut()?;
        if open.errors.is_empty() {
            return None;
        }
        let mut all: Vec<String> = Vec::new();
        while let Ok(error) = open.errors.try_recv() {
            all.push(error);
        }
        (!all.is_empty()).then(|| format!("server error: {}", all.join("; ")))
    }

    /// Flushes and closes the connection, waiting at most `timeout`.
    async fn close(&mut self, timeout: Duration) -> Result<(), String> {
        let Some(open) = self.open.as_ref() else {
            return Ok(());
        };
        let client = open.client.clone();
        let label = open.label.clone();
        let flushed = tokio::time::timeout(timeout, client.flush()).await;
        let errors = self.server_errors();
        self.open = None;
        // Drain: the server gets the UNSUBs, then the connection closes once the
        // client is dropped.
        let _ = client.drain().await;
        match (flushed, errors) {
            (Ok(Ok(())), None) => Ok(()),
            (Ok(Ok(())), Some(errors)) => Err(format!("close {label}: {errors}")),
            (Ok(Err(e)), _) => Err(format!("close {label}: {e}")),
            (Err(_), _) => Err(format!("close {label}: timed out after {timeout:?}")),
        }
    }

    /// Connects to the first of `servers` (rendered from `fields`) that answers,
    /// closing the previous connection. A server that is not a NATS URL is a
    /// permanent failure naming its field: trying again cannot mend it.
    async fn connect(
        &mut self,
        servers: &[String],
        fields: &[task::Server],
        timeout: Duration,
    ) -> Result<(), Failure> {
        if self.open.is_some() {
            let _ = self.close(timeout).await;
        }
        // async-nats ignores a URL's user and password: take them out (as nats-py
        // reads them, the first server's that has any) and give them as options.
        let mut credentials = None;
        let mut addrs = Vec::with_capacity(servers.len());
        for (text, server) in servers.iter().zip(fields) {
            let bare = match split_url_credentials(text) {
                Some((found, bare)) => {
                    credentials.get_or_insert(found);
                    bare
                }
                None => text.clone(),
            };
            let addr = task::check_server(&bare)
                .map_err(|e| Failure::from(format!("connect: {}: {e}", server.field)))?;
            addrs.push(addr);
        }
        let label = addrs.iter().map(task::label).collect::<Vec<_>>().join(",");
        let (tx, errors) = mpsc::channel(ERROR_QUEUE);
        let options = match credentials {
            // `nats://user:password@host`, or `nats://token@host`.
            Some(c) if !c.password.is_empty() => {
                ConnectOptions::with_user_and_password(c.user, c.password)
            }
            Some(c) if !c.user.is_empty() => ConnectOptions::with_token(c.user),
            _ => ConnectOptions::new(),
        };
        let options = options
            .name("loaddensity")
            .connection_timeout(timeout)
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let Event::ServerError(error) = event {
                        let _ = tx.try_send(server_error_text(&error));
                    }
                }
            });
        match tokio::time::timeout(timeout, options.connect(addrs)).await {
            Ok(Ok(client)) => {
                self.open = Some(Open {
                    client,
                    errors,
                    label,
                });
                Ok(())
            }
            Ok(Err(e)) => Err(Failure::connect(format!(
                "connect {label}: {}",
                redact_url_credentials(&e.to_string())
            ))),
            Err(_) => Err(Failure::connect(format!(
                "connect {label}: timed out after {timeout:?}"
            ))),
        }
    }
}

/// A task's texts rendered for one step.
struct Rendered<'t> {
    servers: Vec<String>,
    subject: Cow<'t, Subject>,
    payload: Cow<'t, Bytes>,
    name: Option<String>,
}

/// Renders the step's fields; a field without placeholders is the task's own,
/// borrowed (no rendering, no allocation, no reference count).
fn render<'t>(task: &'t NatsTask, ctx: &mut StepContext<'_>) -> Rendered<'t> {
    let mut render = ctx.render();
    Rendered {
        servers: match task.method {
            NatsMethod::Connect => task
                .servers
                .iter()
                .map(|s| s.url.render(&mut render))
                .collect(),
            _ => Vec::new(),
        },
        subject: match &task.fixed_subject {
            Some(subject) => Cow::Borrowed(subject),
            None => Cow::Owned(
                render_optional(task.subject.as_ref(), &mut render)
                    .map_or_else(|| Subject::from_static(""), Subject::from),
            ),
        },
        payload: match &task.fixed_payload {
            Some(payload) => Cow::Borrowed(payload),
            None => Cow::Owned(
                render_optional(task.payload.as_ref(), &mut render)
                    .map(Bytes::from)
                    .unwrap_or_default(),
            ),
        },
        name: render_optional(task.name.as_ref(), &mut render),
    }
}

impl Protocol for Nats {
    type Spec = NatsTask;
    type Shared = ();
    type Client = NatsClient;

    const FIELDS: &'static [&'static str] = FIELDS;

    fn parse(
        object: &Map<String, Value>,
        method_key: Option<&str>,
        path: &str,
        ctx: &ParseContext<'_>,
    ) -> Result<ParsedSpec<NatsTask>, TaskError> {
        task::parse(object, method_key, path, ctx)
    }

    fn csv_sources(spec: &NatsTask, into: &mut Vec<usize>) {
        spec.csv_sources(into);
    }

    fn client(_shared: &Arc<()>) -> NatsClient {
        NatsClient::default()
    }

    async fn step(
        client: &mut NatsClient,
        task: &Task<NatsTask>,
        ctx: &mut StepContext<'_>,
    ) -> StepOutcome {
        let mut fields = render(task, ctx);
        let name = fields.name.take();
        let result = run(client, task, &fields, ctx.began).await;
        let end = Instant::now();
        if let Some(url) = ctx.log_url() {
            url.clear();
            if let Some(open) = &client.open {
                url.push_str(&open.label);
            }
            url.push('/');
            url.push_str(&fields.subject);
        }
        // A `-ERR` that arrived meanwhile fails the step (with its own failure, if any).
        let result = match (result, client.server_errors()) {
            (result, None) => result,
            (Ok(_), Some(errors)) => Err(Failure::from(errors)),
            (Err(failure), Some(errors)) => Err(failure.and(&errors)),
        };
        StepOutcome::finished(end, name, result)
    }
}

/// `operation` within `timeout` counted from `began` (the step's start, a clock
/// reading the step already has), its error as `what: error` (the client's errors
/// are those of its connection). `what` is only formatted on failure: a publish
/// should not pay for an error text it almost never needs.
async fn timed<T, E: std::fmt::Display>(
    what: impl std::fmt::Display,
    timeout: Duration,
    began: Instant,
    operation: impl Future<Output = Result<T, E>>,
) -> Result<T, Failure> {
    let done = tokio::time::timeout_at((began + timeout).into(), operation).await;
    timed_outcome(what, timeout, done.ok())
}

/// The step's result from an operation's: its value, its error as a network failure,
/// or, when it did not finish (`None`), a timeout; both texts start with `what`.
fn timed_outcome<T, E: std::fmt::Display>(
    what: impl std::fmt::Display,
    timeout: Duration,
    done: Option<Result<T, E>>,
) -> Result<T, Failure> {
    match done {
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) => Err(Failure::network(format!("{what}: {e}"))),
        None => Err(Failure::timeout(format!(
            "{what}: timed out after {timeout:?}"
        ))),
    }
}

/// An operation on a subject, as error texts name it: ``publish `a.b` ``.
struct Operation<'a>(&'static str, &'a str);

impl std::fmt::Display for Operation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} `{}`", self.0, self.1)
    }
}

/// Runs one step: the bytes it counts. `publish` runs inline; the other methods'
/// futures are large (async-nats's connect holds its options and connector) and
/// boxed, so that the step future every publish moves around stays small.
async fn run(
    client: &mut NatsClient,
    task: &NatsTask,
    fields: &Rendered<'_>,
    began: Instant,
) -> Result<u64, Failure> {
    match task.method {
        NatsMethod::Connect => {
            Box::pin(client.connect(&fields.servers, &task.servers, task.io_timeout()))
                .await
                .map(|()| 0)
        }
        NatsMethod::Close => Ok(Box::pin(client.close(task.io_timeout()))
            .await
            .map(|()| 0)?),
        NatsMethod::Publish => {
            let nats = connection(&client.open, "publish")?;
            let timeout = task.io_timeout();
            let (subject, payload) = (&*fields.subject, &*fields.payload);
            let publish = pin!(async {
                nats.publish(subject.clone(), payload.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                nats.flush().await.map_err(|e| e.to_string())
            });
            let published = client.timer.within(began + timeout, publish).await;
            timed_outcome(Operation("publish", subject), timeout, published)
                .map(|()| payload.len() as u64)
        }
        NatsMethod::Subscribe => Box::pin(subscribe(client, task, fields, began)).await,
        NatsMethod::Request => Box::pin(request(client, task, fields)).await,
    }
}

/// `subscribe`: subscribes, waits for `max_messages` messages, unsubscribes; the
/// messages' total size.
async fn subscribe(
    client: &mut NatsClient,
    task: &NatsTask,
    fields: &Rendered<'_>,
    began: Instant,
) -> Result<u64, Failure> {
    let subject: &str = &fields.subject;
    let nats = client.client("subscribe")?;
    let what = Operation("subscribe", subject);
    let mut subscription = timed(
        &what,
        task.io_timeout(),
        began,
        nats.subscribe(Subject::clone(&fields.subject)),
    )
    .await?;
    let wait = task.wait();
    let mut total = 0;
    let mut result = Ok(());
    for i in 0..task.max_messages {
        match tokio::time::timeout(wait, subscription.next()).await {
            Ok(Some(message)) => total += message.payload.len() as u64,
            Ok(None) => {
                result = Err(Failure::network(format!(
                    "{what}: the subscription was closed"
                )));
                break;
            }
            Err(_) => {
                result = Err(Failure::timeout(format!(
                    "{what}: timed out after {wait:?} waiting for message {} of {}",
                    i + 1,
                    task.max_messages
                )));
                break;
            }
        }
    }
    let _ = subscription.unsubscribe().await;
    result?;
    Ok(total)
}

/// `request`: sends the payload and waits for the reply; the reply's size.
async fn request(
    client: &mut NatsClient,
    task: &NatsTask,
    fields: &Rendered<'_>,
) -> Result<u64, Failure> {
    let subject: &str = &fields.subject;
    let nats = client.client("request")?;
    let wait = task.wait();
    let request = Request::new()
        .payload(Bytes::clone(&fields.payload))
        .timeout(Some(wait));
    // The client's own timeout answers first; ours is a backstop.
    match tokio::time::timeout(
        wait + Duration::from_secs(1),
        nats.send_request(Subject::clone(&fields.subject), request),
    )
    .await
    {
        Ok(Ok(reply)) => Ok(reply.payload.len() as u64),
        Ok(Err(e)) => Err(match e.kind() {
            RequestErrorKind::NoResponders => {
                Failure::from(format!("request `{subject}`: no responders"))
            }
            RequestErrorKind::TimedOut => {
                Failure::timeout(format!("request `{subject}`: timed out after {wait:?}"))
            }
            _ => Failure::network(format!("request `{subject}`: {e}")),
        }),
        Err(_) => Err(Failure::timeout(format!(
            "request `{subject}`: timed out after {wait:?}"
        ))),
    }
}
