//! The task schema the key-value user types share (`etcd_user`, `memcached_user`:
//! LoadDensity's two key-value templates): `method` (`connect`, the store's write
//! step, `get`, `delete`, `close`), `host` and `port` (for `connect`), `key`,
//! `value`, `name` (default: the method) and `timeout`. The keys of LD_start_test's
//! `connection` are default step fields; `connect` goes to LD_start_test's `host`
//! when the step names none (on the store's port).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::event::intern_endpoint;
use crate::protocol::fields::{
    default_host_port, port_field, render_optional, report_name, required_text, step_method,
    text_template, value_text_field,
};
use crate::protocol::{ParseContext, ParsedSpec, StepContext};
use crate::scenario::Template;
use crate::task::{TaskError, parse_timeout};

/// The fields a key-value task reads.
pub const FIELDS: &[&str] = &["method", "host", "port", "key", "value", "name", "timeout"];

/// How long connecting or a command may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What tells one key-value user type from another in its tasks.
#[derive(Debug)]
pub(crate) struct Store {
    /// The request type of its events (`ETCD`).
    pub(crate) request_type: &'static str,
    /// Its steps: `connect`, `get`, `delete`, `close` and its write (`put`, `set`).
    pub(crate) methods: &'static [&'static str],
    /// The port `connect` uses by default.
    pub(crate) default_port: u16,
}

/// What a step does.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Connect {
        host: Template,
        port: u16,
    },
    /// The store's write (`put`, `set`).
    Write {
        key: Template,
        value: Template,
    },
    Get {
        key: Template,
    },
    Delete {
        key: Template,
    },
    Close,
}

/// One key-value step of a scenario.
#[derive(Debug, Clone)]
pub struct KeyValueTask {
    pub(crate) op: Op,
    pub(crate) name: Option<Template>,
    pub(crate) timeout: Duration,
}

impl KeyValueTask {
    /// The CSV and database sources this task reads.
    pub(crate) fn csv_sources(&self, into: &mut Vec<usize>) {
        let templates: Vec<&Template> = match &self.op {
            Op::Connect { host, .. } => vec![host],
            Op::Write { key, value } => vec![key, value],
            Op::Get { key } | Op::Delete { key } => vec![key],
            Op::Close => vec![],
        };
        for template in templates.into_iter().chain(&self.name) {
            template.csv_sources(into);
        }
    }

    /// The step's texts for one run: its name, and `host:port` for `connect` (an
    /// IPv6 host in brackets), the key (and value) for the others, nothing for
    /// `close`.
    pub(crate) fn render(&self, ctx: &mut StepContext<'_>) -> (Option<String>, Vec<String>) {
        let mut render = ctx.render();
        let rendered = match &self.op {
            Op::Connect { host, port } => {
                let host = host.render(&mut render);
                let host = if host.contains(':') && !host.starts_with('[') {
                    format!("[{host}]")
                } else {
                    host
                };
                vec![format!("{host}:{port}")]
            }
            Op::Write { key, value } => vec![key.render(&mut render), value.render(&mut render)],
            Op::Get { key } | Op::Delete { key } => vec![key.render(&mut render)],
            Op::Close => Vec::new(),
        };
        (render_optional(self.name.as_ref(), &mut render), rendered)
    }
}

/// Parses the fields of one task object of `store`.
pub(crate) fn parse(
    store: &Store,
    object: &Map<String, Value>,
    method_key: Option<&str>,
    path: &str,
    ctx: &ParseContext<'_>,
) -> Result<ParsedSpec<KeyValueTask>, TaskError> {
    let object = &ctx.defaults.merged(object, FIELDS)?;
    let method = step_method(object, method_key, path, store.methods)?;
    let op = match method.as_str() {
        "connect" => {
            let (default_host, default_port) = default_host_port(ctx.host_text, store.default_port);
            let host = text_template(object, "host", path, ctx.csv)?
                .unwrap_or_else(|| Template::parse(&default_host, ctx.csv).unwrap_or_default());
            Op::Connect {
                host,
                port: port_field(object, path, default_port)?,
            }
        }
        "get" => Op::Get {
            key: required_text(object, "key", path, &method, ctx)?,
        },
        "delete" => Op::Delete {
            key: required_text(object, "key", path, &method, ctx)?,
        },
        "close" => Op::Close,
        // The store's write step.
        _ => Op::Write {
            key: required_text(object, "key", path, &method, ctx)?,
            value: value_text_field(object, path, ctx)?,
        },
    };
    let (name_text, name) = report_name(object, path, ctx.csv, &method)?;
    let timeout = parse_timeout(object, path, DEFAULT_TIMEOUT)?;
    Ok(ParsedSpec {
        endpoint: intern_endpoint(store.request_type, &name_text),
        spec: KeyValueTask { op, name, timeout },
    })
}
