//! Databases named by the SQLAlchemy URLs LoadDensity users write: SQLite
//! (`sqlite:///relative.db`, `sqlite:////absolute.db`, `sqlite://` in memory),
//! PostgreSQL (`postgresql://`, `postgresql+psycopg2://`, `postgres://`) and
//! MySQL / MariaDB (`mysql://`, `mysql+pymysql://`, `mariadb://`).
//!
//! One module for both users of a database: `${db.SOURCE.COLUMN}` placeholder
//! sources read their rows here once, at start ([`Database::read_rows`]), and
//! `sql_user` keeps one [`Connection`] per virtual user and runs each step's
//! statement on it ([`Connection::execute`]). Statements run in autocommit mode, so
//! every step commits.
//!
//! A database is only ever shown by its [`Database::label`]: the URL with its
//! password masked ([`crate::redact`]).

mod bind;
mod mysql;
mod postgres;
mod sqlite;

pub use bind::BoundSql;

use std::time::Duration;

use serde_json::Value;

use crate::redact::redact_url_credentials;

/// What goes wrong with a database: each message names the database by its label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbError {
    /// The connection string is not a URL we can use.
    #[error("`{url}`: {message}")]
    Url {
        /// The connection string, password masked.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// Connecting failed (refused, authentication, unknown database, ...).
    #[error("connect {label}: {message}")]
    Connect {
        /// The database.
        label: String,
        /// The driver's message.
        message: String,
    },
    /// The server refused a statement: its error text.
    #[error("{0}")]
    Sql(String),
    /// A statement's parameters do not fit it.
    #[error("{0}")]
    Params(String),
    /// The connection was lost; the next statement reconnects.
    #[error("connection lost: {0}")]
    Lost(String),
    /// No answer in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

impl DbError {
    /// True when the connection can no longer be used (a new one is needed).
    pub fn breaks_connection(&self) -> bool {
        matches!(
            self,
            DbError::Lost(_) | DbError::Timeout(_) | DbError::Connect { .. }
        )
    }
}

/// Rows read as text: column names and, per row, one text per column (`NULL` is
/// empty, booleans `true`/`false`, numbers and dates as the server writes them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextRows {
    /// The column names, in order.
    pub columns: Vec<String>,
    /// The rows.
    pub rows: Vec<Vec<String>>,
}

/// Which server a URL names, and how to reach it.
#[derive(Debug, Clone)]
enum Target {
    Sqlite(sqlite::SqliteTarget),
    Postgres(Box<tokio_postgres::Config>),
    MySql(Box<mysql_async::Opts>),
}

/// A database named by a connection string, ready to connect to.
#[derive(Debug, Clone)]
pub struct Database {
    target: Target,
    label: String,
}

/// The URL schemes each kind accepts (SQLAlchemy's dialect, with or without its
/// driver).
const SQLITE: &[&str] = &["sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"];
const POSTGRES: &[&str] = &[
    "postgresql",
    "postgres",
    "postgresql+psycopg2",
    "postgresql+psycopg",
    "postgresql+asyncpg",
    "postgresql+pg8000",
];
const MYSQL: &[&str] = &[
    "mysql",
    "mysql+pymysql",
    "mysql+mysqldb",
    "mysql+mysqlconnector",
    "mysql+asyncmy",
    "mysql+aiomysql",
    "mariadb",
    "mariadb+pymysql",
    "mariadb+mysqldb",
    "mariadb+mariadbconnector",
];

impl Database {
    /// Parses a SQLAlchemy URL.
    pub fn parse(connection_string: &str) -> Result<Self, DbError> {
        let shown = redact_url_credentials(connection_string).into_owned();
        let url_error = |message: String| DbError::Url {
            url: shown.clone(),
            message,
        };
        let scheme = connection_string
            .split_once("://")
            .map(|(scheme, _)| scheme.to_ascii_lowercase())
            .ok_or_else(|| {
                url_error(
                    "expected a URL such as sqlite:///file.db, postgresql://user:password@host/db or mysql://user:password@host/db"
                        .into(),
                )
            })?;
        let target = if SQLITE.contains(&scheme.as_str()) {
            Target::Sqlite(sqlite::SqliteTarget::parse(connection_string).map_err(url_error)?)
        } else if POSTGRES.contains(&scheme.as_str()) {
            Target::Postgres(Box::new(
                postgres::config(connection_string).map_err(url_error)?,
            ))
        } else if MYSQL.contains(&scheme.as_str()) {
            Target::MySql(Box::new(mysql::opts(connection_string).map_err(url_error)?))
        } else {
            return Err(url_error(format!(
                "unsupported database `{scheme}`; expected one of: {}",
                [SQLITE, POSTGRES, MYSQL].concat().join(", ")
            )));
        };
        let label = match &target {
            Target::Sqlite(target) => target.label(),
            _ => label_of(connection_string),
        };
        Ok(Self { target, label })
    }

    /// How the database is shown: `scheme://user@host:port/db` (no password), or
    /// the SQLite file.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Opens a connection (`timeout` bounds connecting).
    pub async fn connect(&self, timeout: Duration) -> Result<Connection, DbError> {
        let connect = async {
            match &self.target {
                Target::Sqlite(target) => target.open(true).map(Connection::Sqlite),
                Target::Postgres(config) => postgres::connect(config)
                    .await
                    .map(|c| Connection::Postgres(Box::new(c))),
                Target::MySql(opts) => mysql::connect(opts).await.map(Connection::MySql),
            }
        };
        match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(message)) => Err(DbError::Connect {
                label: self.label.clone(),
                message: redact_url_credentials(&message).into_owned(),
            }),
            Err(_) => Err(DbError::Connect {
                label: self.label.clone(),
                message: format!("timed out after {timeout:?}"),
            }),
        }
    }

    /// Runs `query` once and reads every row as text (a placeholder source's rows).
    /// Blocks: it runs on a thread of its own, so it may be called from anywhere,
    /// inside an async runtime or not. A SQLite file must exist.
    pub fn read_rows(&self, query: &str, timeout: Duration) -> Result<TextRows, DbError> {
        let read = async {
            let mut connection = match &self.target {
                Target::Sqlite(target) => {
                    target
                        .open(false)
                        .map(Connection::Sqlite)
                        .map_err(|message| DbError::Connect {
                            label: self.label.clone(),
                            message,
                        })?
                }
                _ => self.connect(timeout).await?,
            };
            let rows = tokio::time::timeout(timeout, connection.query_text(query))
                .await
                .map_err(|_| DbError::Timeout(timeout))?;
            connection.close().await;
            rows
        };
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| DbError::Lost(format!("cannot start a runtime: {e}")))?
                        .block_on(read)
                })
                .join()
                .unwrap_or_else(|_| Err(DbError::Lost("the reading thread panicked".into())))
        })
    }
}

/// `scheme://user@host:port/db`: the URL without its password or query.
fn label_of(connection_string: &str) -> String {
    let without_query = connection_string
        .split_once('?')
        .map_or(connection_string, |(before, _)| before);
    match crate::redact::split_url_credentials(without_query) {
        Some((credentials, clean)) => {
            let (scheme, rest) = clean.split_once("://").unwrap_or(("", &clean));
            if credentials.user.is_empty() {
                format!("{scheme}://{rest}")
            } else {
                format!("{scheme}://{}@{rest}", credentials.user)
            }
        }
        None => without_query.to_string(),
    }
}

/// One open connection to a database, used by one virtual user.
pub enum Connection {
    /// SQLite (a blocking library: statements run on tokio's blocking threads).
    Sqlite(sqlite::SqliteConnection),
    /// PostgreSQL, with the statements it has prepared.
    Postgres(Box<postgres::PgConnection>),
    /// MySQL or MariaDB (the driver caches prepared statements).
    MySql(mysql_async::Conn),
}

impl Connection {
    /// Runs `sql` with `params` (values in the order of `sql.names()`): the number
    /// of rows it returned, or for a statement that returns none, the rows it
    /// changed. Autocommit: the statement is committed when it returns.
    pub async fn execute(&mut self, sql: &BoundSql, params: &[Value]) -> Result<u64, DbError> {
        match self {
            Connection::Sqlite(connection) => connection.execute(sql, params).await,
            Connection::Postgres(connection) => connection.execute(sql, params).await,
            Connection::MySql(connection) => mysql::execute(connection, sql, params).await,
        }
    }

    /// Runs `query` (no parameters) and reads its rows as text.
    pub async fn query_text(&mut self, query: &str) -> Result<TextRows, DbError> {
        match self {
            Connection::Sqlite(connection) => connection.query_text(query).await,
            Connection::Postgres(connection) => connection.query_text(query).await,
            Connection::MySql(connection) => mysql::query_text(connection, query).await,
        }
    }

    /// Closes the connection politely (errors ignored).
    pub async fn close(self) {
        match self {
            Connection::Sqlite(_) | Connection::Postgres(_) => {}
            Connection::MySql(connection) => {
                let _ = connection.disconnect().await;
            }
        }
    }
}

/// A parameter's text, for drivers that take text: strings as they are, numbers
/// and booleans as written in JSON, lists and objects as JSON; `None` for null.
pub(crate) fn param_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_every_kind_parse_and_hide_the_password() {
        for (url, label) in [
            ("sqlite://", "sqlite://:memory:"),
            ("sqlite:///:memory:", "sqlite://:memory:"),
            ("sqlite:///data/users.db", "sqlite:///data/users.db"),
            ("sqlite:////tmp/users.db", "sqlite:////tmp/users.db"),
            (
                "postgresql://ann:s3cret@127.0.0.1:5433/shop",
                "postgresql://ann@127.0.0.1:5433/shop",
            ),
            (
                "postgresql+psycopg2://ann:s3cret@db/shop?sslmode=disable",
                "postgresql+psycopg2://ann@db/shop",
            ),
            (
                "mysql+pymysql://root:pw@127.0.0.1:3307/shop?charset=utf8mb4",
                "mysql+pymysql://root@127.0.0.1:3307/shop",
            ),
            ("mariadb://bob@h/shop", "mariadb://bob@h/shop"),
        ] {
            let db = Database::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(db.label(), label, "{url}");
            assert!(!db.label().contains("s3cret") && !db.label().contains("pw"));
        }
    }

    #[test]
    fn bad_urls_are_clear_and_hide_the_password() {
        for (url, needle) in [
            ("oracle://u:s3cret@h/db", "unsupported database `oracle`"),
            ("just text", "expected a URL"),
            ("postgresql://u:s3cret@h:notaport/db", "port"),
            (
                "postgresql://u:s3cret@h/db?sslmode=require",
                "TLS to PostgreSQL",
            ),
            ("mysql://u:s3cret@h/db?ssl_ca=/x", "ssl_ca"),
            ("sqlite:///x.db?mode=ro", "mode"),
        ] {
            let e = Database::parse(url).expect_err(url).to_string();
            assert!(e.contains(needle), "{url}: {e}");
            assert!(!e.contains("s3cret"), "{url}: {e}");
        }
    }
}
