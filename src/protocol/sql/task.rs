//! The `sql_user` task schema (LoadDensity's `sql_user_template.py`): `method`
//! (`execute`, the only one, and optional), `sql`, `params` (a mapping for the
//! statement's `:name` parameters), `expect_rows`, `name` (default `sql`) and
//! `timeout`; and the database: LD_start_test's `connection_string`, else `host`,
//! else `sqlite:///:memory:` (LoadDensity's default).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::db::{BoundSql, Database};
use crate::event::intern_endpoint;
use crate::protocol::fields::{report_name, text_template};
use crate::protocol::{ParseContext, ParsedSpec};
use crate::scenario::{Template, TemplateValue};
use crate::task::{TaskError, err, parse_timeout};

/// The fields a `sql_user` task reads.
pub const FIELDS: &[&str] = &["method", "sql", "params", "expect_rows", "name", "timeout"];

/// The database used when LD_start_test names none (LoadDensity's default).
pub const DEFAULT_CONNECTION_STRING: &str = "sqlite:///:memory:";

/// How long a statement (and connecting) may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// One SQL statement of a scenario.
#[derive(Debug, Clone)]
pub struct SqlTask {
    /// The database, shared by the run's tasks (one connection per user).
    pub(super) database: Arc<Database>,
    /// The statement split at its parameters, when it has no placeholder.
    pub(super) bound: Option<BoundSql>,
    /// The statement as written, rendered per request when it has placeholders.
    pub(super) sql: Template,
    /// `params`: name to value (each value may hold placeholders).
    pub(super) params: Vec<(String, TemplateValue)>,
    pub(super) expect_rows: Option<u64>,
    /// A templated `name`, rendered per request.
    pub(super) name: Option<Template>,
    pub(super) timeout: Duration,
}

impl SqlTask {
    /// The CSV and database sources this task reads.
    pub(crate) fn csv_sources(&self, into: &mut Vec<usize>) {
        self.sql.csv_sources(into);
        if let Some(name) = &self.name {
            name.csv_sources(into);
        }
        for (_, value) in &self.params {
            value.csv_sources(into);
        }
    }
}

/// Parses the SQL fields of one task object.
pub(crate) fn parse(
    object: &Map<String, Value>,
    method_key: Option<&str>,
    path: &str,
    ctx: &ParseContext<'_>,
) -> Result<ParsedSpec<SqlTask>, TaskError> {
    let method = match object.get("method") {
        None | Some(Value::Null) => method_key,
        Some(Value::String(m)) => Some(m.as_str()),
        Some(other) => {
            return Err(err(
                format!("{path}.method"),
                format!("expected \"execute\", got {other}"),
            ));
        }
    };
    if let Some(method) = method
        && !method.eq_ignore_ascii_case("execute")
    {
        return Err(err(
            format!("{path}.method"),
            format!("`{method}` is not a sql_user method; expected execute"),
        ));
    }
    let csv = ctx.csv;
    let sql = text_template(object, "sql", path, csv)?.ok_or_else(|| {
        err(
            format!("{path}.sql"),
            "missing field; expected the statement to run, e.g. \"SELECT 1\"",
        )
    })?;
    let params = match object.get("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(key, value)| {
                TemplateValue::parse(value, csv)
                    .map(|v| (key.clone(), v))
                    .map_err(|e| err(format!("{path}.params.{key}"), e))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(err(
                format!("{path}.params"),
                format!("expected a mapping of parameter name to value, got {other}"),
            ));
        }
    };
    let bound = sql.static_text().map(|text| BoundSql::parse(&text));
    if let Some(bound) = &bound
        && let Some(missing) = bound
            .names()
            .iter()
            .find(|name| !params.iter().any(|(key, _)| key == *name))
    {
        return Err(err(
            format!("{path}.params"),
            format!("the statement's parameter `:{missing}` has no value in `params`"),
        ));
    }
    let expect_rows = match object.get("expect_rows") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
        Some(other) => {
            return Err(err(
                format!("{path}.expect_rows"),
                format!("expected a number of rows, got {other}"),
            ));
        }
    };
    let (name_text, name) = report_name(object, path, csv, "sql")?;
    let timeout = parse_timeout(object, path, DEFAULT_TIMEOUT)?;
    let (field, url) = match (ctx.defaults.connection_string, ctx.host_text) {
        (Some(url), _) => ("connection_string", url),
        (None, Some(host)) => ("host", host),
        (None, None) => ("connection_string", DEFAULT_CONNECTION_STRING),
    };
    let database = Database::parse(url).map_err(|e| err(field, e.to_string()))?;
    Ok(ParsedSpec {
        endpoint: intern_endpoint("SQL", &name_text),
        spec: SqlTask {
            database: Arc::new(database),
            bound,
            sql,
            params,
            expect_rows,
            name,
            timeout,
        },
    })
}
