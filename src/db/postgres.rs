//! PostgreSQL through tokio-postgres, without TLS (`sslmode=disable` or `prefer`;
//! `require` is refused when the URL is read).
//!
//! A statement is prepared once per connection, the server inferring its parameters'
//! types, and each parameter goes out in the text format (the Bind message's format
//! code 0, as libpq sends them): the server reads `"42"` for an `int4`, `numeric`,
//! `date` or `jsonb` parameter with the type's input function, exactly as it reads
//! the literal `'42'` psycopg2 would have written into the statement.

use std::collections::HashMap;
use std::str::FromStr;

use bytes::BytesMut;
use serde_json::Value;
use tokio_postgres::types::{Format, IsNull, ToSql, Type};
use tokio_postgres::{Client, Config, NoTls, SimpleQueryMessage, Statement};

use super::{BoundSql, DbError, TextRows, param_text};

/// Prepared statements kept per connection (a statement built from placeholders
/// may differ every time; past this many, the cache starts afresh).
const MAX_PREPARED: usize = 256;

/// The tokio-postgres configuration of a SQLAlchemy PostgreSQL URL.
pub(crate) fn config(url: &str) -> Result<Config, String> {
    let rest = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .ok_or("expected postgresql://user:password@host:port/db")?;
    let config = Config::from_str(&format!("postgresql://{rest}")).map_err(|e| e.to_string())?;
    if matches!(
        config.get_ssl_mode(),
        tokio_postgres::config::SslMode::Require
    ) {
        return Err(
            "TLS to PostgreSQL is not supported; use sslmode=disable or sslmode=prefer".into(),
        );
    }
    Ok(config)
}

/// Connects, and drives the connection on a task of its own.
pub(crate) async fn connect(config: &Config) -> Result<PgConnection, String> {
    let (client, connection) = config.connect(NoTls).await.map_err(|e| chain(&e))?;
    tokio::spawn(async move {
        // Ends when the client is dropped or the server goes away; the client's
        // next call reports it.
        let _ = connection.await;
    });
    Ok(PgConnection {
        client,
        prepared: HashMap::new(),
    })
}

/// An error with its causes (tokio-postgres's own text is terse).
fn chain(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return db.to_string();
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// One PostgreSQL connection and the statements it has prepared.
pub struct PgConnection {
    client: Client,
    prepared: HashMap<String, Statement>,
}

fn sql_error(client: &Client, error: &tokio_postgres::Error) -> DbError {
    if error.as_db_error().is_none() && (client.is_closed() || error.is_closed()) {
        DbError::Lost(chain(error))
    } else {
        DbError::Sql(chain(error))
    }
}

/// A parameter in the text format, whatever the type the server gave it: the server
/// reads it with that type's input function, as it reads a quoted literal of the
/// statement (psycopg2 writes each value into the statement as a literal; libpq, and
/// so pgbench, send text parameters too). `None` is `NULL`.
#[derive(Debug)]
struct TextParam<'a>(Option<&'a str>);

impl ToSql for TextParam<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Some(text) => {
                out.extend_from_slice(text.as_bytes());
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.to_sql(ty, out)
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }
}

impl PgConnection {
    async fn prepare(&mut self, sql: &BoundSql) -> Result<Statement, DbError> {
        let text = sql.numbered();
        if let Some(statement) = self.prepared.get(&text) {
            return Ok(statement.clone());
        }
        let statement = self
            .client
            .prepare(&text)
            .await
            .map_err(|e| sql_error(&self.client, &e))?;
        if self.prepared.len() >= MAX_PREPARED {
            self.prepared.clear();
        }
        self.prepared.insert(text, statement.clone());
        Ok(statement)
    }

    pub(crate) async fn execute(
        &mut self,
        sql: &BoundSql,
        params: &[Value],
    ) -> Result<u64, DbError> {
        let statement = self.prepare(sql).await?;
        let values: Vec<Option<String>> = params.iter().map(param_text).collect();
        let texts: Vec<TextParam<'_>> = values.iter().map(|v| TextParam(v.as_deref())).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            texts.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        let result = if statement.columns().is_empty() {
            self.client.execute(&statement, &refs).await
        } else {
            self.client
                .query(&statement, &refs)
                .await
                .map(|rows| rows.len() as u64)
        };
        result.map_err(|e| sql_error(&self.client, &e))
    }

    pub(crate) async fn query_text(&mut self, query: &str) -> Result<TextRows, DbError> {
        let statement = self
            .client
            .prepare(query)
            .await
            .map_err(|e| sql_error(&self.client, &e))?;
        let columns: Vec<String> = statement
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        let booleans: Vec<bool> = statement
            .columns()
            .iter()
            .map(|c| *c.type_() == Type::BOOL)
            .collect();
        let messages = self
            .client
            .simple_query(query)
            .await
            .map_err(|e| sql_error(&self.client, &e))?;
        let mut rows = Vec::new();
        for message in messages {
            if let SimpleQueryMessage::Row(row) = message {
                let cells = (0..columns.len())
                    .map(|i| match (row.get(i), booleans.get(i)) {
                        (Some("t"), Some(true)) => "true".to_string(),
                        (Some("f"), Some(true)) => "false".to_string(),
                        (Some(text), _) => text.to_string(),
                        (None, _) => String::new(),
                    })
                    .collect();
                rows.push(cells);
            }
        }
        Ok(TextRows { columns, rows })
    }
}
