//! memcached (`memcached_user`, request type `MEMCACHED`): LoadDensity's steps
//! `connect`, `set`, `get`, `delete` and `close`, each one request event, over the
//! text protocol through the `async-memcached` crate (Shopify's tokio client; it
//! closes a connection whose reply was left half read, so a timed-out command
//! never leaves a stale reply behind).
//!
//! As in LoadDensity (pymemcache), a user's connection lives from its `connect`
//! step to its `close` step; `set`, `get` or `delete` before `connect` (or after
//! `close`) fails with "memcached not connected". When the server drops the
//! connection, the command that sees it fails and the next one reconnects to the
//! same server, as pymemcache does. Unlike LoadDensity, `connect` really connects
//! (pymemcache connects on the first command, so a refused connection shows there),
//! and `set` and `delete` wait for the server's reply (pymemcache's default is
//! `noreply`), so their time is a round trip and a failure is counted.
//!
//! Response lengths are LoadDensity's: the value's length for `set`, the value
//! read for `get` (0 for a miss), 0 otherwise. A `delete` of a missing key
//! succeeds (pymemcache returns False without raising).

mod task;

pub use task::{DEFAULT_PORT, DEFAULT_TIMEOUT, FIELDS, METHODS, MemcachedTask};

use std::sync::Arc;
use std::time::Instant;

use async_memcached::{AsciiProtocol, Client, Error, Status};
use serde_json::{Map, Value};

use crate::protocol::key_value::Op;
use crate::protocol::{
    Failure, FailureKind, ParseContext, ParsedSpec, Protocol, StepContext, StepOutcome,
};
use crate::task::{Task, TaskError};

/// The `memcached_user` protocol.
#[derive(Debug, Clone)]
pub struct Memcached;

/// One virtual user's memcached connection: the server its `connect` step named,
/// and the connection (reopened after the server dropped it).
#[derive(Default)]
pub struct MemcachedClient {
    server: Option<String>,
    connection: Option<Client>,
}

impl MemcachedClient {
    async fn open(server: &str, timeout: std::time::Duration) -> Result<Client, Failure> {
        match tokio::time::timeout(timeout, Client::new(format!("tcp://{server}"))).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(Failure::connect(format!("connect {server}: {e}"))),
            Err(_) => Err(Failure::connect(format!(
                "connect {server}: timed out after {timeout:?}"
            ))),
        }
    }
}

impl Protocol for Memcached {
    type Spec = MemcachedTask;
    type Shared = ();
    type Client = MemcachedClient;

    const FIELDS: &'static [&'static str] = FIELDS;

    fn parse(
        object: &Map<String, Value>,
        method_key: Option<&str>,
        path: &str,
        ctx: &ParseContext<'_>,
    ) -> Result<ParsedSpec<MemcachedTask>, TaskError> {
        task::parse(object, method_key, path, ctx)
    }

    fn csv_sources(spec: &MemcachedTask, into: &mut Vec<usize>) {
        spec.csv_sources(into);
    }

    fn client(_shared: &Arc<()>) -> MemcachedClient {
        MemcachedClient::default()
    }

    async fn step(
        client: &mut MemcachedClient,
        task: &Task<MemcachedTask>,
        ctx: &mut StepContext<'_>,
    ) -> StepOutcome {
        let spec = &task.spec;
        let timeout = spec.timeout;
        let (name, rendered) = spec.render(ctx);
        let result = match (&spec.op, rendered.as_slice()) {
            (Op::Connect { .. }, [server]) => {
                client.connection = None;
                client.server = Some(server.clone());
                MemcachedClient::open(server, timeout)
                    .await
                    .map(|connection| {
                        client.connection = Some(connection);
                        0
                    })
            }
            (Op::Close, _) => {
                client.connection = None;
                client.server = None;
                Ok(0)
            }
            (op, args) => command(client, op, args, timeout).await,
        };
        StepOutcome::finished(Instant::now(), name, result)
    }
}

/// Runs `set`, `get` or `delete` on the user's connection (reconnecting to the
/// server of its `connect` step when the last command lost it).
async fn command(
    client: &mut MemcachedClient,
    op: &Op,
    args: &[String],
    timeout: std::time::Duration,
) -> Result<u64, Failure> {
    let Some(server) = client.server.clone() else {
        return Err("memcached not connected; run a `connect` step first".into());
    };
    if client.connection.as_ref().is_none_or(Client::is_closed) {
        client.connection = None;
        client.connection = Some(MemcachedClient::open(&server, timeout).await?);
    }
    let Some(connection) = client.connection.as_mut() else {
        return Err("memcached not connected".into());
    };
    let run = async {
        match (op, args) {
            (Op::Write { .. }, [key, value]) => connection
                .set(key.as_bytes(), value.as_str(), None, None)
                .await
                .map(|()| value.len() as u64),
            (Op::Get { .. }, [key]) => connection.get(key.as_bytes()).await.map(|value| {
                value
                    .and_then(|v| v.data)
                    .map_or(0, |data| data.len() as u64)
            }),
            (Op::Delete { .. }, [key]) => match connection.delete(key.as_bytes()).await {
                Ok(()) | Err(Error::Protocol(Status::NotFound)) => Ok(0),
                Err(e) => Err(e),
            },
            _ => Ok(0),
        }
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(length)) => Ok(length),
        Ok(Err(e)) => {
            let lost = matches!(
                e,
                Error::Io(_) | Error::ConnectionClosed | Error::Connect(_)
            );
            if lost {
                client.connection = None;
            }
            let kind = if lost {
                FailureKind::Network
            } else {
                FailureKind::Other
            };
            Err(Failure::new(kind, format!("{server}: {e}")))
        }
        Err(_) => {
            // The reply may still come on this connection: start afresh.
            client.connection = None;
            Err(Failure::timeout(format!(
                "{server}: timed out after {timeout:?}"
            )))
        }
    }
}
