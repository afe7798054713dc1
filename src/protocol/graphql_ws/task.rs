//! LoadDensity's `graphql_ws_user` task fields, parsed strictly into
//! [`GraphqlWsTask`]s.

use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value};

use crate::event::intern_endpoint;
use crate::protocol::fields::{
    check_scheme, method_text, parse_headers, report_name, small_uint, text_template, url_text,
};
use crate::protocol::{ParseContext, ParsedSpec};
use crate::scenario::Template;
use crate::task::{TaskError, err, parse_bool, parse_timeout};

/// The `graphql_ws_user` task fields (besides the common ones).
pub const FIELDS: &[&str] = &[
    "method",
    "url",
    "request_url",
    "name",
    "protocol",
    "timeout",
    "headers",
    "init_payload",
    "id",
    "query",
    "variables",
    "operation_name",
    "max_messages",
    "verify",
];

/// Default step timeout, as LoadDensity's (5 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The WebSocket subprotocol offered unless `protocol` names another.
pub const DEFAULT_PROTOCOL: &str = "graphql-transport-ws";

/// The methods, as written in scripts.
pub const METHODS: &[&str] = &["connect", "subscribe", "complete", "close"];

/// What a step does on the user's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphqlWsMethod {
    /// Opens the connection: the WebSocket handshake, `connection_init` and its
    /// `connection_ack`.
    Connect,
    /// Sends `subscribe` and reads up to `max_messages` messages of the operation.
    Subscribe,
    /// Sends `complete` for the operation.
    Complete,
    /// Closes the connection.
    Close,
}

impl GraphqlWsMethod {
    fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_lowercase().as_str() {
            "connect" => Self::Connect,
            "subscribe" => Self::Subscribe,
            "complete" => Self::Complete,
            "close" => Self::Close,
            _ => return None,
        })
    }

    /// How scripts write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Subscribe => "subscribe",
            Self::Complete => "complete",
            Self::Close => "close",
        }
    }
}

/// The GraphQL-over-WebSocket part of a task.
#[derive(Debug, Clone)]
pub struct GraphqlWsTask {
    /// What the step does.
    pub method: GraphqlWsMethod,
    /// `url` (else LoadDensity's `host`), for `connect`.
    pub(super) url: Option<Template>,
    /// LoadDensity's `host` argument: the URL when the step names none.
    pub(super) host: Option<String>,
    /// A `name` with placeholders, rendered per request.
    pub(super) name: Option<Template>,
    /// The `Sec-WebSocket-Protocol` offered.
    pub(super) protocol: HeaderValue,
    /// Limit on the step.
    pub(super) timeout: Duration,
    /// Extra handshake headers.
    pub(super) headers: Vec<(HeaderName, HeaderValue)>,
    /// `connection_init`'s payload.
    pub(super) init_payload: Value,
    /// The operation's id (default `1`).
    pub(super) id: Template,
    /// The subscription's document (`subscribe`).
    pub(super) query: Option<Template>,
    /// The operation's variables.
    pub(super) variables: Value,
    /// The operation's name (`operationName`).
    pub(super) operation_name: Option<String>,
    /// Messages to read for a `subscribe` (default 1).
    pub(super) max_messages: u64,
    /// `verify` (true): check a `wss://` server's certificate.
    pub(super) verify: bool,
}

impl GraphqlWsTask {
    /// The CSV sources this task reads.
    pub(super) fn csv_sources(&self, into: &mut Vec<usize>) {
        for template in [&self.url, &self.name, &self.query].into_iter().flatten() {
            template.csv_sources(into);
        }
        self.id.csv_sources(into);
    }
}

/// Parses the GraphQL-over-WebSocket fields of one task object.
pub(super) fn parse(
    object: &Map<String, Value>,
    method_key: Option<&str>,
    path: &str,
    ctx: &ParseContext<'_>,
) -> Result<ParsedSpec<GraphqlWsTask>, TaskError> {
    let method_text = method_text(object, method_key, path, None)?;
    let method = GraphqlWsMethod::parse(&method_text).ok_or_else(|| {
        err(
            format!("{path}.method"),
            format!(
                "unsupported graphql_ws method `{method_text}`; expected one of: {}",
                METHODS.join(", ")
            ),
        )
    })?;
    const SCHEMES: &[&str] = &["ws", "wss"];
    let url = match url_text(object, path, "a ws:// or wss:// URL")? {
        Some((field, text)) => {
            check_scheme(text, SCHEMES).map_err(|m| err(format!("{path}.{field}"), m))?;
            Some(Template::parse(text, ctx.csv).map_err(|e| err(format!("{path}.{field}"), e))?)
        }
        None => None,
    };
    if let Some(host) = ctx.host_text {
        check_scheme(host, SCHEMES).map_err(|m| err("host", m))?;
    } else if method == GraphqlWsMethod::Connect && url.is_none() {
        return Err(err(
            format!("{path}.url"),
            "missing field: `connect` needs a ws:// or wss:// URL (or the `host` argument)",
        ));
    }
    let query = text_template(object, "query", path, ctx.csv)?;
    if method == GraphqlWsMethod::Subscribe && query.is_none() {
        return Err(err(
            format!("{path}.query"),
            "missing field: `subscribe` needs the subscription's document",
        ));
    }
    let protocol = match object.get("protocol") {
        None | Some(Value::Null) => HeaderValue::from_static(DEFAULT_PROTOCOL),
        Some(Value::String(p)) => HeaderValue::from_str(p)
            .map_err(|_| err(format!("{path}.protocol"), "not a valid subprotocol name"))?,
        Some(other) => {
            return Err(err(
                format!("{path}.protocol"),
                format!("expected a subprotocol name, got {other}"),
            ));
        }
    };
    let json_object = |key: &str| match object.get(key) {
        None | Some(Value::Null) => Ok(Value::Object(Map::new())),
        Some(value @ Value::Object(_)) => Ok(value.clone()),
        Some(other) => Err(err(
            format!("{path}.{key}"),
            format!("expected a JSON object, got {other}"),
        )),
    };
    let operation_name = match object.get("operation_name") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) => Some(n.clone()),
        Some(other) => {
            return Err(err(
                format!("{path}.operation_name"),
                format!("expected a string, got {other}"),
            ));
        }
    };
    let id = text_template(object, "id", path, ctx.csv)?
        .map_or_else(|| Template::parse("1", ctx.csv), Ok)
        .map_err(|e| err(format!("{path}.id"), e))?;
    let (name_text, name) = report_name(object, path, ctx.csv, method.as_str())?;
    Ok(ParsedSpec {
        endpoint: intern_endpoint("GRAPHQL-WS", &name_text),
        spec: GraphqlWsTask {
            method,
            url,
            host: ctx.host_text.map(str::to_string),
            name,
            protocol,
            timeout: parse_timeout(object, path, DEFAULT_TIMEOUT)?,
            headers: parse_headers(object, path)?,
            init_payload: json_object("init_payload")?,
            id,
            query,
            variables: json_object("variables")?,
            operation_name,
            max_messages: small_uint(object, "max_messages", path, 1, 1_000_000)?,
            verify: parse_bool(object, "verify", path, true)?,
        },
    })
}
