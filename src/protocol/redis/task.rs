//! The `redis_user` task schema: `method` (any Redis command), `key`, `value`,
//! extra `args`, `expect`, `name` and `timeout`, parsed strictly; and where the
//! server is (LD_start_test's `connection.url`, else `host`, else
//! `redis://127.0.0.1:6379/0`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::event::intern_endpoint;
use crate::protocol::fields::{report_name, text_template};
use crate::protocol::{ParseContext, ParsedSpec};
use crate::scenario::Template;
use crate::task::{TaskError, err, parse_timeout};

/// The fields a `redis_user` task reads.
pub const FIELDS: &[&str] = &[
    "method", "key", "value", "args", "expect", "name", "timeout",
];

/// The server used when LD_start_test names none (LoadDensity's default).
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379/0";

/// How long a command (and connecting) may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// One Redis command of a scenario.
#[derive(Debug, Clone)]
pub struct RedisTask {
    /// The server, shared by the run's tasks (opened per user on first use).
    pub(super) server: Arc<Server>,
    /// The command name, upper case (`SET`).
    pub(super) command: String,
    pub(super) key: Option<Template>,
    pub(super) value: Option<Template>,
    pub(super) args: Vec<Template>,
    /// The reply text the command must return, when given.
    pub(super) expect: Option<Template>,
    /// A templated `name`, rendered per request.
    pub(super) name: Option<Template>,
    pub(super) timeout: Duration,
}

impl RedisTask {
    /// The CSV sources this task reads.
    pub(crate) fn csv_sources(&self, into: &mut Vec<usize>) {
        let templates = [&self.key, &self.value, &self.expect, &self.name];
        for template in templates.into_iter().flatten() {
            template.csv_sources(into);
        }
        for arg in &self.args {
            arg.csv_sources(into);
        }
    }
}

/// A Redis server: the client that opens connections to it, and how it is named
/// in errors (without its password).
#[derive(Debug)]
pub(super) struct Server {
    pub(super) client: redis::Client,
    /// `host:port` (or the socket path), never the credentials.
    pub(super) label: String,
}

impl Server {
    fn open(url: &url::Url) -> Result<Self, String> {
        match url.scheme() {
            "redis" | "rediss" | "unix" | "redis+unix" => {}
            other => {
                return Err(format!(
                    "scheme `{other}` is not a Redis URL; expected redis://host:port/db or rediss:// for TLS"
                ));
            }
        }
        let label = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
            (Some(host), None) => format!("{}://{host}", url.scheme()),
            _ => format!("{}://{}", url.scheme(), url.path()),
        };
        let client = redis::Client::open(url.as_str()).map_err(|e| format!("{label}: {e}"))?;
        Ok(Self { client, label })
    }
}

/// Parses the Redis fields of one task object. `method_key` is the method given by
/// a legacy map's key.
pub(crate) fn parse(
    object: &Map<String, Value>,
    method_key: Option<&str>,
    path: &str,
    ctx: &ParseContext<'_>,
) -> Result<ParsedSpec<RedisTask>, TaskError> {
    if object.contains_key("connection") {
        return Err(err(
            format!("{path}.connection"),
            "give `connection` to LD_start_test, not to a task",
        ));
    }
    let method = match object.get("method") {
        Some(Value::String(m)) => m.clone(),
        None | Some(Value::Null) => method_key.map(str::to_string).ok_or_else(|| {
            err(
                format!("{path}.method"),
                "missing field; expected a Redis command such as get, set, incr",
            )
        })?,
        Some(other) => {
            return Err(err(
                format!("{path}.method"),
                format!("expected a Redis command name such as get, got {other}"),
            ));
        }
    };
    let command = method.trim().to_ascii_uppercase();
    if command.is_empty()
        || !command
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'|')
    {
        return Err(err(
            format!("{path}.method"),
            format!("`{method}` is not a Redis command name"),
        ));
    }
    let csv = ctx.csv;
    let key = text_template(object, "key", path, csv)?;
    let value = text_template(object, "value", path, csv)?;
    let expect = text_template(object, "expect", path, csv)?;
    let args = match object.get("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let field = format!("{path}.args[{i}]");
                let text = match item {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    other => {
                        return Err(err(
                            &field,
                            format!("expected a string or a number, got {other}"),
                        ));
                    }
                };
                Template::parse(&text, csv).map_err(|e| err(&field, e))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(err(
                format!("{path}.args"),
                format!("expected a list of arguments, got {other}"),
            ));
        }
    };
    let (name_text, name) = report_name(object, path, csv, &method.to_ascii_lowercase())?;
    let timeout = parse_timeout(object, path, DEFAULT_TIMEOUT)?;
    // LD_start_test's `connection.url`, else its `host` (a URL, or `host:port`).
    let host = ctx.host_text.map(|text| {
        if text.contains("://") {
            url::Url::parse(text).map_err(|e| err("host", format!("`{text}`: {e}")))
        } else {
            url::Url::parse(&format!("redis://{text}"))
                .map_err(|e| err("host", format!("`{text}` is not host:port: {e}")))
        }
    });
    let server = match host.transpose()? {
        Some(url) => Server::open(&url).map_err(|e| err("connection.url", e))?,
        None => {
            let url =
                url::Url::parse(DEFAULT_URL).map_err(|e| err("connection.url", e.to_string()))?;
            Server::open(&url).map_err(|e| err("connection.url", e))?
        }
    };
    Ok(ParsedSpec {
        endpoint: intern_endpoint("REDIS", &name_text),
        spec: RedisTask {
            server: Arc::new(server),
            command,
            key,
            value,
            args,
            expect,
            name,
            timeout,
        },
    })
}
