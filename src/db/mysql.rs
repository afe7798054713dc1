//! MySQL and MariaDB through mysql_async, without TLS. SQLAlchemy's URL
//! (`mysql+pymysql://user:password@host:3306/db?charset=utf8mb4`) is read here:
//! `charset` (utf8 or utf8mb4, what the driver speaks anyway) and `unix_socket` are
//! the query options understood. The driver keeps each connection's prepared
//! statements.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Params, Value as MyValue};
use serde_json::Value;

use super::{BoundSql, DbError, TextRows};

/// The mysql_async options of a SQLAlchemy MySQL URL.
pub(crate) fn opts(connection_string: &str) -> Result<Opts, String> {
    let rest = connection_string
        .split_once("://")
        .map(|(_, rest)| rest)
        .ok_or("expected mysql://user:password@host:port/db")?;
    let plain = format!("mysql://{rest}");
    let url = url::Url::parse(&plain).map_err(|e| format!("not a valid URL: {e}"))?;
    let (user, password) = match crate::redact::split_url_credentials(&plain) {
        Some((credentials, _)) => (
            Some(credentials.user).filter(|u| !u.is_empty()),
            Some(credentials.password).filter(|p| !p.is_empty()),
        ),
        None => (None, None),
    };
    let db = url.path().trim_start_matches('/');
    let mut builder = OptsBuilder::default()
        .ip_or_hostname(
            url.host_str()
                .filter(|h| !h.is_empty())
                .unwrap_or("localhost"),
        )
        .tcp_port(url.port().unwrap_or(3306))
        .user(user)
        .pass(password)
        .db_name(Some(db).filter(|d| !d.is_empty()))
        .prefer_socket(false);
    for (key, value) in url.query_pairs() {
        match &*key {
            "charset" if matches!(&*value, "utf8" | "utf8mb4") => {}
            "charset" => {
                return Err(format!(
                    "charset `{value}` is not supported; use utf8mb4 (the default)"
                ));
            }
            "unix_socket" => builder = builder.socket(Some(value.into_owned())),
            other => {
                return Err(format!(
                    "URL option `{other}` is not supported (supported: charset, unix_socket); TLS to MySQL is not supported"
                ));
            }
        }
    }
    Ok(Opts::from(builder))
}

pub(crate) async fn connect(opts: &Opts) -> Result<Conn, String> {
    Conn::new(opts.clone()).await.map_err(|e| e.to_string())
}

fn sql_error(error: mysql_async::Error) -> DbError {
    match error {
        mysql_async::Error::Server(e) => {
            DbError::Sql(format!("ERROR {} ({}): {}", e.code, e.state, e.message))
        }
        other => DbError::Lost(other.to_string()),
    }
}

/// A JSON parameter as a MySQL value (booleans are 1 and 0, lists and objects
/// JSON text).
fn to_mysql(value: &Value) -> MyValue {
    match value {
        Value::Null => MyValue::NULL,
        Value::Bool(b) => MyValue::Int(i64::from(*b)),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => MyValue::Int(i),
            (None, Some(u), _) => MyValue::UInt(u),
            (None, None, Some(x)) => MyValue::Double(x),
            _ => MyValue::Bytes(n.to_string().into_bytes()),
        },
        Value::String(s) => MyValue::Bytes(s.clone().into_bytes()),
        other => MyValue::Bytes(other.to_string().into_bytes()),
    }
}

pub(crate) async fn execute(
    conn: &mut Conn,
    sql: &BoundSql,
    params: &[Value],
) -> Result<u64, DbError> {
    let (text, uses) = sql.positional();
    let values: Vec<MyValue> = uses.iter().map(|&i| to_mysql(&params[i])).collect();
    let params = if values.is_empty() {
        Params::Empty
    } else {
        Params::Positional(values)
    };
    let mut result = conn.exec_iter(text, params).await.map_err(sql_error)?;
    let returns_rows = result.columns().is_some_and(|c| !c.is_empty());
    let mut rows = 0u64;
    result.for_each(|_| rows += 1).await.map_err(sql_error)?;
    let affected = result.affected_rows();
    result.drop_result().await.map_err(sql_error)?;
    Ok(if returns_rows { rows } else { affected })
}

pub(crate) async fn query_text(conn: &mut Conn, query: &str) -> Result<TextRows, DbError> {
    let mut result = conn.query_iter(query).await.map_err(sql_error)?;
    let columns: Vec<String> = result
        .columns()
        .map(|c| c.iter().map(|c| c.name_str().into_owned()).collect())
        .unwrap_or_default();
    let mut rows = Vec::new();
    result
        .for_each(|row| {
            let cells = row
                .unwrap()
                .into_iter()
                .map(|value| match value {
                    MyValue::NULL => String::new(),
                    MyValue::Bytes(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    MyValue::Int(i) => i.to_string(),
                    MyValue::UInt(u) => u.to_string(),
                    MyValue::Float(x) => x.to_string(),
                    MyValue::Double(x) => x.to_string(),
                    other => other.as_sql(true).trim_matches('\'').to_string(),
                })
                .collect();
            rows.push(cells);
        })
        .await
        .map_err(sql_error)?;
    result.drop_result().await.map_err(sql_error)?;
    Ok(TextRows { columns, rows })
}
