//! Redis (`redis_user`, request type `REDIS`): each task sends one command over
//! the user's own connection (the `redis` crate's multiplexed connection, plain
//! or TLS for `rediss://`), opened on the user's first command and reopened after
//! a connection error or a timeout. Nothing is pipelined.
//!
//! An error reply is a failure carrying the server's error text; the response
//! length is the size of the reply as sent in RESP.

mod task;

pub use task::{DEFAULT_TIMEOUT, DEFAULT_URL, FIELDS, RedisTask};

use std::sync::Arc;
use std::time::Instant;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value as Reply};
use serde_json::{Map, Value};

use crate::protocol::fields::render_optional;
use crate::protocol::{
    Failure, FailureKind, ParseContext, ParsedSpec, Protocol, StepContext, StepOutcome,
};
use crate::task::{Task, TaskError};

/// The `redis_user` protocol.
#[derive(Debug, Clone)]
pub struct Redis;

/// One virtual user's Redis connection, opened on first use.
#[derive(Default)]
pub struct RedisClient {
    /// The open connection and the server it goes to.
    connection: Option<(Arc<task::Server>, MultiplexedConnection)>,
}

impl RedisClient {
    /// The connection to `server`, opened when needed.
    async fn connection(
        &mut self,
        server: &Arc<task::Server>,
        timeout: std::time::Duration,
    ) -> Result<&mut MultiplexedConnection, String> {
        let same = self
            .connection
            .as_ref()
            .is_some_and(|(open, _)| Arc::ptr_eq(open, server) || open.label == server.label);
        if !same {
            self.connection = None;
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(None);
            let connect = server
                .client
                .get_multiplexed_async_connection_with_config(&config);
            let connection = match tokio::time::timeout(timeout, connect).await {
                Ok(Ok(connection)) => connection,
                Ok(Err(e)) => return Err(format!("connect {}: {e}", server.label)),
                Err(_) => {
                    return Err(format!(
                        "connect {}: timed out after {:?}",
                        server.label, timeout
                    ));
                }
            };
            self.connection = Some((server.clone(), connection));
        }
        match &mut self.connection {
            Some((_, connection)) => Ok(connection),
            None => Err(format!("connect {}: no connection", server.label)),
        }
    }
}

impl Protocol for Redis {
    type Spec = RedisTask;
    type Shared = ();
    type Client = RedisClient;

    const FIELDS: &'static [&'static str] = FIELDS;

    fn parse(
        object: &Map<String, Value>,
        method_key: Option<&str>,
        path: &str,
        ctx: &ParseContext<'_>,
    ) -> Result<ParsedSpec<RedisTask>, TaskError> {
        task::parse(object, method_key, path, ctx)
    }

    fn csv_sources(spec: &RedisTask, into: &mut Vec<usize>) {
        spec.csv_sources(into);
    }

    fn client(_shared: &Arc<()>) -> RedisClient {
        RedisClient::default()
    }

    async fn step(
        client: &mut RedisClient,
        task: &Task<RedisTask>,
        ctx: &mut StepContext<'_>,
    ) -> StepOutcome {
        let mut command = redis::cmd(&task.command);
        let (name, expect) = {
            let mut render = ctx.render();
            for part in [&task.key, &task.value].into_iter().flatten() {
                command.arg(part.render(&mut render));
            }
            for arg in &task.args {
                command.arg(arg.render(&mut render));
            }
            (
                render_optional(task.name.as_ref(), &mut render),
                render_optional(task.expect.as_ref(), &mut render),
            )
        };
        let connection = match client.connection(&task.server, task.timeout).await {
            Ok(connection) => connection,
            Err(failure) => {
                return StepOutcome {
                    name,
                    ..StepOutcome::failed(Failure::connect(failure))
                };
            }
        };
        let result =
            tokio::time::timeout(task.timeout, command.query_async::<Reply>(connection)).await;
        let end = Instant::now();
        // A reply's bytes are counted even when it fails the step.
        let mut length = 0;
        let result = match result {
            Ok(Ok(reply)) => {
                length = reply_size(&reply);
                match (&reply, expect) {
                    (Reply::ServerError(e), _) => Err(Failure::from(e.to_string())),
                    (_, Some(expected)) => {
                        let got = reply_text(&reply);
                        if got == expected {
                            Ok(length)
                        } else {
                            Err(Failure::expectation(format!(
                                "expected reply `{expected}`, got `{got}`"
                            )))
                        }
                    }
                    _ => Ok(length),
                }
            }
            Ok(Err(e)) => {
                if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() {
                    client.connection = None;
                }
                let kind = if e.is_timeout() {
                    FailureKind::Timeout
                } else if e.is_io_error() || e.is_connection_dropped() {
                    FailureKind::Network
                } else {
                    FailureKind::Other
                };
                Err(Failure::new(kind, e.to_string()))
            }
            Err(_) => {
                // The late reply would still come on this connection: start afresh.
                client.connection = None;
                Err(Failure::timeout(format!(
                    "{} timed out after {:?}",
                    task.command, task.timeout
                )))
            }
        };
        StepOutcome {
            response_length: length,
            ..StepOutcome::finished(end, name, result)
        }
    }
}

/// The reply as text, to compare with `expect` (nil is empty, OK is `OK`).
fn reply_text(reply: &Reply) -> String {
    match reply {
        Reply::Nil => String::new(),
        Reply::Int(i) => i.to_string(),
        Reply::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Reply::SimpleString(s) => s.clone(),
        Reply::Okay => "OK".to_string(),
        Reply::Double(d) => d.to_string(),
        Reply::Boolean(b) => b.to_string(),
        Reply::VerbatimString { text, .. } => text.clone(),
        other => format!("{other:?}"),
    }
}

/// The size of a reply as RESP puts it on the wire (close enough for RESP3
/// types, exact for RESP2's).
fn reply_size(reply: &Reply) -> u64 {
    fn digits(n: u64) -> u64 {
        u64::from(n.checked_ilog10().unwrap_or(0)) + 1
    }
    fn header(len: usize) -> u64 {
        // `*3\r\n`, `$5\r\n`: type byte, length digits, CRLF.
        1 + digits(len as u64) + 2
    }
    fn items<'a>(values: impl Iterator<Item = &'a Reply>) -> u64 {
        values.map(reply_size).sum()
    }
    match reply {
        Reply::Nil => 5,
        Reply::Int(i) => 1 + i.to_string().len() as u64 + 2,
        Reply::BulkString(bytes) => header(bytes.len()) + bytes.len() as u64 + 2,
        Reply::Array(values) | Reply::Set(values) => header(values.len()) + items(values.iter()),
        Reply::Push { data, .. } => header(data.len()) + items(data.iter()),
        Reply::SimpleString(s) => 1 + s.len() as u64 + 2,
        Reply::Okay => 5,
        Reply::Map(pairs) => {
            header(pairs.len())
                + pairs
                    .iter()
                    .map(|(k, v)| reply_size(k) + reply_size(v))
                    .sum::<u64>()
        }
        Reply::Attribute { data, attributes } => {
            header(attributes.len())
                + attributes
                    .iter()
                    .map(|(k, v)| reply_size(k) + reply_size(v))
                    .sum::<u64>()
                + reply_size(data)
        }
        Reply::Double(d) => 1 + d.to_string().len() as u64 + 2,
        Reply::Boolean(_) => 4,
        Reply::VerbatimString { text, .. } => header(text.len() + 4) + text.len() as u64 + 6,
        Reply::BigNumber(n) => 1 + format!("{n:?}").len() as u64 + 2,
        Reply::ServerError(e) => 1 + e.to_string().len() as u64 + 2,
        other => format!("{other:?}").len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_sizes_are_resp_sizes() {
        assert_eq!(reply_size(&Reply::Okay), "+OK\r\n".len() as u64);
        assert_eq!(reply_size(&Reply::Nil), "$-1\r\n".len() as u64);
        assert_eq!(reply_size(&Reply::Int(42)), ":42\r\n".len() as u64);
        assert_eq!(
            reply_size(&Reply::BulkString(b"hello".to_vec())),
            "$5\r\nhello\r\n".len() as u64
        );
        assert_eq!(
            reply_size(&Reply::Array(vec![
                Reply::BulkString(b"a".to_vec()),
                Reply::Int(1)
            ])),
            "*2\r\n$1\r\na\r\n:1\r\n".len() as u64
        );
    }

    #[test]
    fn reply_texts() {
        assert_eq!(reply_text(&Reply::Nil), "");
        assert_eq!(reply_text(&Reply::Okay), "OK");
        assert_eq!(reply_text(&Reply::Int(7)), "7");
        assert_eq!(reply_text(&Reply::BulkString(b"v".to_vec())), "v");
    }
}
