//! The `memcached_user` task schema (LoadDensity's `memcached_user_template.py`):
//! `method` (`connect`, `set`, `get`, `delete`, `close`), `host` and `port` (for
//! `connect`), `key`, `value`, `name` (default: the method) and `timeout`. The
//! keys of LD_start_test's `connection` are default step fields; `connect` goes to
//! LD_start_test's `host` when the step names none (port 11211).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::event::intern_endpoint;
use crate::protocol::fields::{
    default_host_port, port_field, report_name, required_text, step_method, text_template,
    value_text_field,
};
use crate::protocol::{ParseContext, ParsedSpec};
use crate::scenario::Template;
use crate::task::{TaskError, parse_timeout};

/// The fields a `memcached_user` task reads.
pub const FIELDS: &[&str] = &["method", "host", "port", "key", "value", "name", "timeout"];

/// The steps LoadDensity's template has.
pub const METHODS: &[&str] = &["connect", "set", "get", "delete", "close"];

/// memcached's port.
pub const DEFAULT_PORT: u16 = 11211;

/// How long connecting or a command may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a step does.
#[derive(Debug, Clone)]
pub(super) enum Op {
    Connect { host: Template, port: u16 },
    Set { key: Template, value: Template },
    Get { key: Template },
    Delete { key: Template },
    Close,
}

/// One memcached step of a scenario.
#[derive(Debug, Clone)]
pub struct MemcachedTask {
    pub(super) op: Op,
    pub(super) name: Option<Template>,
    pub(super) timeout: Duration,
}

impl MemcachedTask {
    /// The CSV and database sources this task reads.
    pub(crate) fn csv_sources(&self, into: &mut Vec<usize>) {
        let templates: Vec<&Template> = match &self.op {
            Op::Connect { host, .. } => vec![host],
            Op::Set { key, value } => vec![key, value],
            Op::Get { key } | Op::Delete { key } => vec![key],
            Op::Close => vec![],
        };
        for template in templates.into_iter().chain(&self.name) {
            template.csv_sources(into);
        }
    }
}

/// Parses the memcached fields of one task object.
pub(crate) fn parse(
    object: &Map<String, Value>,
    method_key: Option<&str>,
    path: &str,
    ctx: &ParseContext<'_>,
) -> Result<ParsedSpec<MemcachedTask>, TaskError> {
    let object = &ctx.defaults.merged(object, FIELDS)?;
    let method = step_method(object, method_key, path, METHODS)?;
    let op = match method.as_str() {
        "connect" => {
            let (default_host, default_port) = default_host_port(ctx.host_text, DEFAULT_PORT);
            let host = text_template(object, "host", path, ctx.csv)?
                .unwrap_or_else(|| Template::parse(&default_host, ctx.csv).unwrap_or_default());
            Op::Connect {
                host,
                port: port_field(object, path, default_port)?,
            }
        }
        "set" => Op::Set {
            key: required_text(object, "key", path, &method, ctx)?,
            value: value_text_field(object, path, ctx)?,
        },
        "get" => Op::Get {
            key: required_text(object, "key", path, &method, ctx)?,
        },
        "delete" => Op::Delete {
            key: required_text(object, "key", path, &method, ctx)?,
        },
        _ => Op::Close,
    };
    let (name_text, name) = report_name(object, path, ctx.csv, &method)?;
    let timeout = parse_timeout(object, path, DEFAULT_TIMEOUT)?;
    Ok(ParsedSpec {
        endpoint: intern_endpoint("MEMCACHED", &name_text),
        spec: MemcachedTask { op, name, timeout },
    })
}
