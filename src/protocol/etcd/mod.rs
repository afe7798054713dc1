//! etcd (`etcd_user`, request type `ETCD`): LoadDensity's steps `connect`, `put`,
//! `get`, `delete` and `close`, each one request event, on etcd's v3 KV API over
//! gRPC (tonic, one HTTP/2 connection per user).
//!
//! The three KV calls and their messages are written out here ([`kv`]) rather than
//! taken from the `etcd-client` crate: that crate compiles etcd's `.proto` files in
//! its build script and so needs `protoc` on every machine that builds us, for
//! three calls whose messages are a few fields each.
//!
//! As in LoadDensity, a user's client lives from its `connect` step to its `close`
//! step; `put`, `get` or `delete` before `connect` (or after `close`) fails with
//! "etcd not connected". tonic reconnects a dropped HTTP/2 connection by itself on
//! the next call. Unlike LoadDensity (etcd3gw connects on the first call),
//! `connect` really connects, so a refused connection is counted there.
//!
//! Response lengths are LoadDensity's: the value's length for `put`, the value read
//! for `get` (0 when the key is absent), 0 otherwise.

pub mod kv;
mod task;

pub use task::{DEFAULT_PORT, DEFAULT_TIMEOUT, EtcdTask, FIELDS, METHODS};

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tonic::transport::{Channel, Endpoint};

use crate::protocol::key_value::Op;
use crate::protocol::{Failure, ParseContext, ParsedSpec, Protocol, StepContext, StepOutcome};
use crate::task::{Task, TaskError};

/// The `etcd_user` protocol.
#[derive(Debug, Clone)]
pub struct Etcd;

/// One virtual user's etcd client: the server its `connect` step named and the
/// channel to it.
#[derive(Default)]
pub struct EtcdClient {
    connection: Option<(String, Channel)>,
}

/// Opens a channel to `server` (`host:port`).
pub async fn connect(server: &str, timeout: Duration) -> Result<Channel, Failure> {
    let endpoint = Endpoint::from_shared(format!("http://{server}"))
        .map_err(|e| Failure::connect(format!("connect {server}: {e}")))?
        .connect_timeout(timeout)
        .tcp_nodelay(true);
    match tokio::time::timeout(timeout, endpoint.connect()).await {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(e)) => Err(Failure::connect(format!(
            "connect {server}: {}",
            kv::chain(&e)
        ))),
        Err(_) => Err(Failure::connect(format!(
            "connect {server}: timed out after {timeout:?}"
        ))),
    }
}

impl Protocol for Etcd {
    type Spec = EtcdTask;
    type Shared = ();
    type Client = EtcdClient;

    const FIELDS: &'static [&'static str] = FIELDS;

    fn parse(
        object: &Map<String, Value>,
        method_key: Option<&str>,
        path: &str,
        ctx: &ParseContext<'_>,
    ) -> Result<ParsedSpec<EtcdTask>, TaskError> {
        task::parse(object, method_key, path, ctx)
    }

    fn csv_sources(spec: &EtcdTask, into: &mut Vec<usize>) {
        spec.csv_sources(into);
    }

    fn client(_shared: &Arc<()>) -> EtcdClient {
        EtcdClient::default()
    }

    async fn step(
        client: &mut EtcdClient,
        task: &Task<EtcdTask>,
        ctx: &mut StepContext<'_>,
    ) -> StepOutcome {
        let spec = &task.spec;
        let timeout = spec.timeout;
        let (name, rendered) = spec.render(ctx);
        let result = match (&spec.op, rendered.as_slice()) {
            (Op::Connect { .. }, [server]) => {
                client.connection = None;
                connect(server, timeout).await.map(|channel| {
                    client.connection = Some((server.clone(), channel));
                    0
                })
            }
            (Op::Close, _) => {
                client.connection = None;
                Ok(0)
            }
            (op, args) => match &client.connection {
                None => Err("etcd not connected; run a `connect` step first".into()),
                Some((server, channel)) => {
                    let call = async {
                        match (op, args) {
                            (Op::Write { .. }, [key, value]) => {
                                kv::put(channel.clone(), key, value).await?;
                                Ok(value.len() as u64)
                            }
                            (Op::Get { .. }, [key]) => kv::get(channel.clone(), key)
                                .await
                                .map(|value| value.map_or(0, |v| v.len() as u64)),
                            (Op::Delete { .. }, [key]) => {
                                kv::delete(channel.clone(), key).await.map(|_| 0)
                            }
                            _ => Ok(0),
                        }
                    };
                    match tokio::time::timeout(timeout, call).await {
                        Ok(Ok(length)) => Ok(length),
                        Ok(Err(e)) => Err(Failure {
                            message: format!("{server}: {}", e.message),
                            ..e
                        }),
                        Err(_) => Err(Failure::timeout(format!(
                            "{server}: timed out after {timeout:?}"
                        ))),
                    }
                }
            },
        };
        StepOutcome::finished(Instant::now(), name, result)
    }
}
