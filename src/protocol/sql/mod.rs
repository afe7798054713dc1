//! SQL (`sql_user`, request type `SQL`): each task runs one statement on the
//! user's own connection to the database ([`crate::db`]: SQLite, PostgreSQL,
//! MySQL / MariaDB), opened on the user's first statement and reopened after the
//! connection is lost or a statement times out.
//!
//! Each statement commits (autocommit). LoadDensity 0.0.79 runs it through a
//! SQLAlchemy `Connection` and never commits, so its INSERTs and UPDATEs are rolled
//! back when the connection goes back to the pool; here they stay.
//!
//! The response length is the number of rows the statement returned, or for one
//! that returns none the rows it changed (LoadDensity's `rowcount`). A server error
//! is a failure carrying its text; `expect_rows` fails on any other count.

mod task;

pub use task::{DEFAULT_CONNECTION_STRING, DEFAULT_TIMEOUT, FIELDS, SqlTask};

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

use crate::db::{BoundSql, Connection};
use crate::protocol::fields::render_optional;
use crate::protocol::{
    Failure, FailureKind, ParseContext, ParsedSpec, Protocol, StepContext, StepOutcome,
};
use crate::task::{Task, TaskError};

/// The `sql_user` protocol.
#[derive(Debug, Clone)]
pub struct Sql;

/// One virtual user's database connection, opened on first use.
#[derive(Default)]
pub struct SqlClient {
    connection: Option<Connection>,
}

impl Protocol for Sql {
    type Spec = SqlTask;
    type Shared = ();
    type Client = SqlClient;

    const FIELDS: &'static [&'static str] = FIELDS;

    fn parse(
        object: &Map<String, Value>,
        method_key: Option<&str>,
        path: &str,
        ctx: &ParseContext<'_>,
    ) -> Result<ParsedSpec<SqlTask>, TaskError> {
        task::parse(object, method_key, path, ctx)
    }

    fn csv_sources(spec: &SqlTask, into: &mut Vec<usize>) {
        spec.csv_sources(into);
    }

    fn client(_shared: &Arc<()>) -> SqlClient {
        SqlClient::default()
    }

    async fn step(
        client: &mut SqlClient,
        task: &Task<SqlTask>,
        ctx: &mut StepContext<'_>,
    ) -> StepOutcome {
        let spec = &task.spec;
        let (name, sql, params) = {
            let mut render = ctx.render();
            let sql = match &spec.bound {
                Some(bound) => Cow::Borrowed(bound),
                None => Cow::Owned(BoundSql::parse(&spec.sql.render(&mut render))),
            };
            let params: Vec<(&str, Value)> = spec
                .params
                .iter()
                .map(|(key, value)| (key.as_str(), value.render(&mut render)))
                .collect();
            (
                render_optional(spec.name.as_ref(), &mut render),
                sql,
                params,
            )
        };
        let mut values = Vec::with_capacity(sql.names().len());
        for wanted in sql.names() {
            match params.iter().find(|(key, _)| key == wanted) {
                Some((_, value)) => values.push(value.clone()),
                None => {
                    return StepOutcome {
                        name,
                        ..StepOutcome::failed(format!(
                            "the statement's parameter `:{wanted}` has no value in `params`"
                        ))
                    };
                }
            }
        }
        if client.connection.is_none() {
            match spec.database.connect(spec.timeout).await {
                Ok(connection) => client.connection = Some(connection),
                Err(e) => {
                    return StepOutcome {
                        name,
                        ..StepOutcome::failed(Failure::connect(e.to_string()))
                    };
                }
            }
        }
        let Some(connection) = client.connection.as_mut() else {
            return StepOutcome {
                name,
                ..StepOutcome::failed("no connection")
            };
        };
        let result = tokio::time::timeout(spec.timeout, connection.execute(&sql, &values)).await;
        let end = Instant::now();
        let result = match result {
            Ok(Ok(rows)) => match spec.expect_rows {
                Some(expected) if expected != rows => Err(Failure::expectation(format!(
                    "expected {expected} rows, got {rows}"
                ))),
                _ => Ok(rows),
            },
            Ok(Err(e)) => {
                let broken = e.breaks_connection();
                if broken {
                    client.connection = None;
                }
                let kind = if broken {
                    FailureKind::Network
                } else {
                    FailureKind::Other
                };
                Err(Failure::new(kind, e.to_string()))
            }
            Err(_) => {
                // The late answer would still come on this connection: start afresh.
                client.connection = None;
                Err(Failure::timeout(format!(
                    "statement timed out after {:?}",
                    spec.timeout
                )))
            }
        };
        StepOutcome::finished(end, name, result)
    }
}
