//! LoadDensity's `socket_user` task fields, parsed strictly into [`SocketTask`]s.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::event::intern_endpoint;
use crate::protocol::fields::report_name;
use crate::protocol::payload::{Payload, optional_template};
use crate::protocol::{ParseContext, ParsedSpec};
use crate::scenario::{Template, TemplateError};
use crate::task::{TaskError, err, parse_bool, parse_timeout};

/// The `socket_user` task fields (besides the common ones).
pub const FIELDS: &[&str] = &[
    "protocol",
    "target",
    "host",
    "name",
    "payload",
    "expect_bytes",
    "expect_substring",
    "timeout",
    "keep_alive",
];

/// Default step timeout, as LoadDensity's (5 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Most bytes a step reads (`expect_bytes` above this is refused).
pub const MAX_EXPECT_BYTES: u64 = 16 * 1024 * 1024;

/// The transports, as written in scripts.
pub const PROTOCOLS: &[&str] = &["tcp", "udp"];

/// TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A TCP connection per step (or per user with `keep_alive`).
    Tcp,
    /// One datagram per step, and one back when `expect_bytes` > 0.
    Udp,
}

/// Where a step connects: an address known when the test starts, or a
/// `host:port` resolved (and rendered) per step.
#[derive(Debug, Clone)]
pub(super) enum Destination {
    /// An IP literal and port.
    Address(SocketAddr),
    /// A host name, or placeholders.
    Resolve(Template),
}

/// The socket part of a task.
#[derive(Debug, Clone)]
pub struct SocketTask {
    /// TCP or UDP.
    pub transport: Transport,
    pub(super) destination: Destination,
    /// A `name` with placeholders, rendered per request.
    pub(super) name: Option<Template>,
    /// What is sent (nothing when absent).
    pub(super) payload: Option<Payload>,
    /// Read at most this many bytes (0: do not read).
    pub(super) expect_bytes: usize,
    /// A substring the response must contain.
    pub(super) expect_substring: Option<Template>,
    /// Limit on the whole step.
    pub(super) timeout: Duration,
    /// TCP: reuse one connection per user.
    pub(super) keep_alive: bool,
}

impl SocketTask {
    /// The CSV sources this task reads.
    pub(super) fn csv_sources(&self, into: &mut Vec<usize>) {
        if let Destination::Resolve(template) = &self.destination {
            template.csv_sources(into);
        }
        for template in [&self.name, &self.expect_substring].into_iter().flatten() {
            template.csv_sources(into);
        }
        if let Some(payload) = &self.payload {
            payload.csv_sources(into);
        }
    }
}

/// Parses the socket fields of one task object.
pub(super) fn parse(
    object: &Map<String, Value>,
    method_key: Option<&str>,
    path: &str,
    ctx: &ParseContext<'_>,
) -> Result<ParsedSpec<SocketTask>, TaskError> {
    if method_key.is_some() {
        return Err(err(
            path,
            "socket_user tasks are a list of task objects, not a map of method to task",
        ));
    }
    let protocol_text = match object.get("protocol") {
        None | Some(Value::Null) => "tcp".to_string(),
        Some(Value::String(p)) => p.to_ascii_lowercase(),
        Some(other) => {
            return Err(err(
                format!("{path}.protocol"),
                format!("expected \"tcp\" or \"udp\", got {other}"),
            ));
        }
    };
    let transport = match protocol_text.as_str() {
        "tcp" => Transport::Tcp,
        "udp" => Transport::Udp,
        other => {
            return Err(err(
                format!("{path}.protocol"),
                format!(
                    "unsupported protocol `{other}`; expected one of: {}",
                    PROTOCOLS.join(", ")
                ),
            ));
        }
    };
    let target = |key: &str| -> Result<Option<(String, String)>, TaskError> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(t)) => Ok(Some((format!("{path}.{key}"), t.clone()))),
            Some(other) => Err(err(
                format!("{path}.{key}"),
                format!("expected \"host:port\", got {other}"),
            )),
        }
    };
    let (field, target_text) = match (target("target")?, target("host")?) {
        (Some(t), _) | (None, Some(t)) => t,
        (None, None) => match ctx.host_text {
            Some(host) => ("host".to_string(), host.to_string()),
            None => {
                return Err(err(
                    format!("{path}.target"),
                    "missing field: give \"host:port\" in `target` (or the `host` argument)",
                ));
            }
        },
    };
    let destination = parse_destination(&target_text, ctx).map_err(|m| err(&field, m))?;
    let expect_bytes = match object.get("expect_bytes") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => {
            n.as_u64()
                .filter(|n| *n <= MAX_EXPECT_BYTES)
                .ok_or_else(|| {
                    err(
                        format!("{path}.expect_bytes"),
                        format!("expected a whole number from 0 to {MAX_EXPECT_BYTES}, got {n}"),
                    )
                })? as usize
        }
        Some(other) => {
            return Err(err(
                format!("{path}.expect_bytes"),
                format!("expected a whole number of bytes, got {other}"),
            ));
        }
    };
    let expect_substring = optional_template(object, "expect_substring", path, ctx.csv)?;
    let keep_alive = parse_bool(object, "keep_alive", path, false)?;
    if keep_alive && transport == Transport::Udp {
        return Err(err(
            format!("{path}.keep_alive"),
            "only for `tcp`: UDP has no connection to keep",
        ));
    }
    let (name_text, name) = report_name(
        object,
        path,
        ctx.csv,
        &format!("{protocol_text}:{target_text}"),
    )?;
    let request_type = match transport {
        Transport::Tcp => "TCP",
        Transport::Udp => "UDP",
    };
    Ok(ParsedSpec {
        endpoint: intern_endpoint(request_type, &name_text),
        spec: SocketTask {
            transport,
            destination,
            name,
            payload: Payload::parse(object, path, ctx.csv)?,
            expect_bytes,
            expect_substring,
            timeout: parse_timeout(object, path, DEFAULT_TIMEOUT)?,
            keep_alive,
        },
    })
}

fn parse_destination(text: &str, ctx: &ParseContext<'_>) -> Result<Destination, TemplateError> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(Destination::Address(address));
    }
    let template = Template::parse(text, ctx.csv)?;
    if template.is_static() {
        match text.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
            _ => return Err(format!("`{text}` is not \"host:port\"").into()),
        }
    }
    Ok(Destination::Resolve(template))
}
