//! SQLite through rusqlite (bundled). SQLAlchemy's URL forms: `sqlite://` and
//! `sqlite:///:memory:` are a private in-memory database (one per connection, so one
//! per virtual user), `sqlite:///name.db` is relative to the working directory,
//! `sqlite:////abs/name.db` absolute. rusqlite blocks, so a statement runs on
//! tokio's blocking threads with the connection moved there and back.

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::OpenFlags;
use rusqlite::types::{Value as SqlValue, ValueRef};
use serde_json::Value;

use super::{BoundSql, DbError, TextRows};

/// How long a statement waits for another connection's lock (pysqlite's default).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An SQLite database: a file or memory.
#[derive(Debug, Clone)]
pub(crate) struct SqliteTarget {
    /// `None`: in memory.
    path: Option<PathBuf>,
}

impl SqliteTarget {
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let (_, rest) = url
            .split_once("://")
            .ok_or_else(|| "expected sqlite:///path".to_string())?;
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            return Err(format!(
                "SQLite URL options (`{query}`) are not supported; give the path only"
            ));
        }
        if rest.is_empty() {
            return Ok(Self { path: None });
        }
        let Some(path) = rest.strip_prefix('/') else {
            return Err(
                "expected sqlite:///relative/path.db, sqlite:////absolute/path.db or sqlite:// (memory)"
                    .into(),
            );
        };
        if path.is_empty() || path == ":memory:" {
            return Ok(Self { path: None });
        }
        Ok(Self {
            path: Some(PathBuf::from(path)),
        })
    }

    pub(crate) fn label(&self) -> String {
        match &self.path {
            None => "sqlite://:memory:".into(),
            Some(path) => format!("sqlite:///{}", path.display()),
        }
    }

    /// Opens the database; `create`: make the file when it does not exist
    /// (SQLAlchemy's behaviour; a placeholder source wants an existing file).
    pub(crate) fn open(&self, create: bool) -> Result<SqliteConnection, String> {
        let connection = match &self.path {
            None => rusqlite::Connection::open_in_memory().map_err(|e| e.to_string())?,
            Some(path) => {
                let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                if create {
                    flags |= OpenFlags::SQLITE_OPEN_CREATE;
                }
                rusqlite::Connection::open_with_flags(path, flags)
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?
            }
        };
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| e.to_string())?;
        Ok(SqliteConnection {
            connection: Some(connection),
        })
    }
}

/// One SQLite connection (`None` while a statement runs on a blocking thread, or
/// after one was abandoned by a timeout).
pub struct SqliteConnection {
    connection: Option<rusqlite::Connection>,
}

impl SqliteConnection {
    /// Runs `work` on a blocking thread with the connection.
    async fn run<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&rusqlite::Connection) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let connection = self
            .connection
            .take()
            .ok_or_else(|| DbError::Lost("the previous statement did not finish".into()))?;
        let (connection, result) = tokio::task::spawn_blocking(move || {
            let result = work(&connection);
            (connection, result)
        })
        .await
        .map_err(|e| DbError::Lost(format!("statement thread failed: {e}")))?;
        self.connection = Some(connection);
        result
    }

    pub(crate) async fn execute(
        &mut self,
        sql: &BoundSql,
        params: &[Value],
    ) -> Result<u64, DbError> {
        let (text, uses) = sql.positional();
        let values: Vec<SqlValue> = uses.iter().map(|&i| to_sqlite(&params[i])).collect();
        self.run(move |connection| {
            let mut statement = connection
                .prepare_cached(&text)
                .map_err(|e| DbError::Sql(e.to_string()))?;
            let sql_error = |e: rusqlite::Error| DbError::Sql(e.to_string());
            if statement.column_count() > 0 {
                let mut rows = statement
                    .query(rusqlite::params_from_iter(values))
                    .map_err(sql_error)?;
                let mut count = 0;
                while rows.next().map_err(sql_error)?.is_some() {
                    count += 1;
                }
                Ok(count)
            } else {
                statement
                    .execute(rusqlite::params_from_iter(values))
                    .map(|n| n as u64)
                    .map_err(sql_error)
            }
        })
        .await
    }

    pub(crate) async fn query_text(&mut self, query: &str) -> Result<TextRows, DbError> {
        let query = query.to_string();
        self.run(move |connection| {
            let sql_error = |e: rusqlite::Error| DbError::Sql(e.to_string());
            let mut statement = connection.prepare(&query).map_err(sql_error)?;
            let columns: Vec<String> = statement
                .column_names()
                .into_iter()
                .map(str::to_string)
                .collect();
            let mut rows = statement.query([]).map_err(sql_error)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(sql_error)? {
                let mut cells = Vec::with_capacity(columns.len());
                for i in 0..columns.len() {
                    cells.push(match row.get_ref(i).map_err(sql_error)? {
                        ValueRef::Null => String::new(),
                        ValueRef::Integer(n) => n.to_string(),
                        ValueRef::Real(x) => x.to_string(),
                        ValueRef::Text(t) | ValueRef::Blob(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                    });
                }
                out.push(cells);
            }
            Ok(TextRows { columns, rows: out })
        })
        .await
    }
}

/// A JSON parameter as an SQLite value (booleans are 1 and 0, lists and objects
/// JSON text).
fn to_sqlite(value: &Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => SqlValue::Integer(i),
            (None, Some(x)) => SqlValue::Real(x),
            _ => SqlValue::Text(n.to_string()),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}
