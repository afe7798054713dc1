//! LoadDensity's `websocket_user` task fields, parsed strictly into [`WsTask`]s.

use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value};

use crate::event::intern_endpoint;
use crate::protocol::client_cert::{self, ClientCert};
use crate::protocol::fields::{parse_headers, report_name};
use crate::protocol::payload::{Payload, optional_template};
use crate::protocol::{ParseContext, ParsedSpec};
use crate::scenario::Template;
use crate::task::{TaskError, err, parse_bool, parse_timeout};

/// The `websocket_user` task fields (besides the common ones).
pub const FIELDS: &[&str] = &[
    "method",
    "request_url",
    "url",
    "name",
    "payload",
    "expect",
    "timeout",
    "headers",
    "subprotocols",
    "verify",
    "cert",
    "client_cert",
];

/// Default step timeout, as LoadDensity's (5 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a step does on the user's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsMethod {
    /// Opens the connection (times the handshake).
    Connect,
    /// Sends one frame.
    Send,
    /// Waits for one data frame.
    Recv,
    /// Sends one frame and waits for the first data frame back.
    SendRecv,
    /// Closes the connection (close handshake).
    Close,
}

/// The methods, as written in scripts.
pub const METHODS: &[&str] = &["connect", "send", "recv", "sendrecv", "close"];

impl WsMethod {
    fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_lowercase().as_str() {
            "connect" => Self::Connect,
            "send" => Self::Send,
            "recv" => Self::Recv,
            "sendrecv" => Self::SendRecv,
            "close" => Self::Close,
            _ => return None,
        })
    }

    /// How scripts write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Send => "send",
            Self::Recv => "recv",
            Self::SendRecv => "sendrecv",
            Self::Close => "close",
        }
    }
}

/// The WebSocket part of a task.
#[derive(Debug, Clone)]
pub struct WsTask {
    /// What the step does.
    pub method: WsMethod,
    /// `request_url` / `url` (else LoadDensity's `host`); reused by later steps.
    pub(super) url: Option<Template>,
    /// A `name` with placeholders, rendered per request.
    pub(super) name: Option<Template>,
    /// What `send` and `sendrecv` send.
    pub(super) payload: Option<Payload>,
    /// A substring the received frame must contain.
    pub(super) expect: Option<Template>,
    /// Limit on the step.
    pub(super) timeout: Duration,
    /// LoadDensity's `host` argument: the URL when no step named one.
    pub(super) host: Option<String>,
    /// Extra handshake headers.
    pub(super) headers: Vec<(HeaderName, HeaderValue)>,
    /// `Sec-WebSocket-Protocol` offered in the handshake (empty: none).
    pub(super) subprotocols: Option<HeaderValue>,
    /// `verify` (true): check a `wss://` server's certificate, as `http_user` does.
    pub(super) verify: bool,
    /// `cert` / `client_cert`: the client certificate a `wss://` connection offers.
    pub(super) client_cert: Option<Arc<ClientCert>>,
    /// Neither `url` nor `name` given: the step is reported under the user's current
    /// URL, as LoadDensity names it.
    pub(super) named_by_url: bool,
}

impl WsTask {
    /// The CSV sources this task reads.
    pub(super) fn csv_sources(&self, into: &mut Vec<usize>) {
        for template in [&self.url, &self.name, &self.expect].into_iter().flatten() {
            template.csv_sources(into);
        }
        if let Some(payload) = &self.payload {
            payload.csv_sources(into);
        }
    }
}

/// Parses the WebSocket fields of one task object.
pub(super) fn parse(
    object: &Map<String, Value>,
    method_key: Option<&str>,
    path: &str,
    ctx: &ParseContext<'_>,
) -> Result<ParsedSpec<WsTask>, TaskError> {
    let method_text = match (method_key, object.get("method")) {
        (Some(_), Some(_)) => {
            return Err(err(
                format!("{path}.method"),
                "the method is already given by the map key",
            ));
        }
        (Some(key), None) => key.to_string(),
        (None, Some(Value::String(m))) => m.clone(),
        (None, Some(other)) => {
            return Err(err(
                format!("{path}.method"),
                format!("expected a string, got {other}"),
            ));
        }
        // LoadDensity's default.
        (None, None) => "send".to_string(),
    };
    let method = WsMethod::parse(&method_text).ok_or_else(|| {
        err(
            format!("{path}.method"),
            format!(
                "unsupported websocket method `{method_text}`; expected one of: {}",
                METHODS.join(", ")
            ),
        )
    })?;
    let template = |field: &str, text: &str| {
        Template::parse(text, ctx.csv).map_err(|e| err(format!("{path}.{field}"), e))
    };
    let url_text = match (object.get("request_url"), object.get("url")) {
        (Some(_), Some(_)) => {
            return Err(err(
                format!("{path}.url"),
                "give either `request_url` or `url`, not both",
            ));
        }
        (Some(Value::String(u)), None) => Some(("request_url", u.as_str())),
        (None, Some(Value::String(u))) => Some(("url", u.as_str())),
        (None, None) | (Some(Value::Null), None) | (None, Some(Value::Null)) => None,
        (Some(other), None) | (None, Some(other)) => {
            let field = if object.contains_key("url") {
                "url"
            } else {
                "request_url"
            };
            return Err(err(
                format!("{path}.{field}"),
                format!("expected a ws:// or wss:// URL, got {other}"),
            ));
        }
    };
    let url = match url_text {
        Some((field, text)) => {
            check_scheme(text).map_err(|m| err(format!("{path}.{field}"), m))?;
            Some(template(field, text)?)
        }
        None => None,
    };
    if method == WsMethod::Connect && url.is_none() {
        match ctx.host_text {
            Some(host) => check_scheme(host).map_err(|m| err("host", m))?,
            None => {
                return Err(err(
                    format!("{path}.request_url"),
                    "missing field: `connect` needs a ws:// or wss:// URL (or the `host` argument)",
                ));
            }
        }
    }
    let default_name = url_text
        .map(|(_, u)| u)
        .or(ctx.host_text)
        .unwrap_or(method.as_str());
    let (name_text, name) = report_name(object, path, ctx.csv, default_name)?;
    let headers = parse_headers(object, path)?;
    let subprotocols = parse_subprotocols(object, path)?;
    Ok(ParsedSpec {
        endpoint: intern_endpoint("WS", &name_text),
        spec: WsTask {
            method,
            url,
            name,
            payload: Payload::parse(object, path, ctx.csv)?,
            expect: optional_template(object, "expect", path, ctx.csv)?,
            timeout: parse_timeout(object, path, DEFAULT_TIMEOUT)?,
            host: ctx.host_text.map(str::to_string),
            headers,
            subprotocols,
            verify: parse_bool(object, "verify", path, true)?,
            client_cert: client_cert::parse(object, path)?,
            named_by_url: url_text.is_none() && object.get("name").is_none_or(Value::is_null),
        },
    })
}

/// Refuses URLs that are not `ws://` or `wss://` (placeholders in the scheme are
/// checked when rendered).
fn check_scheme(text: &str) -> Result<(), String> {
    match text.split_once("://") {
        Some((scheme, _)) if scheme.contains("${") => Ok(()),
        Some((scheme, _))
            if scheme.eq_ignore_ascii_case("ws") || scheme.eq_ignore_ascii_case("wss") =>
        {
            Ok(())
        }
        Some((scheme, _)) => Err(format!(
            "scheme `{scheme}` is not supported; use ws:// or wss://"
        )),
        None if text.starts_with("${") => Ok(()),
        None => Err(format!("`{text}` is not a ws:// or wss:// URL")),
    }
}

fn parse_subprotocols(
    object: &Map<String, Value>,
    path: &str,
) -> Result<Option<HeaderValue>, TaskError> {
    let field = format!("{path}.subprotocols");
    let names: Vec<&str> = match object.get("subprotocols") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .ok_or_else(|| err(&field, format!("expected strings, got {item}")))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(err(
                &field,
                format!("expected a list of subprotocol names, got {other}"),
            ));
        }
    };
    if names.is_empty() {
        return Ok(None);
    }
    HeaderValue::from_str(&names.join(", "))
        .map(Some)
        .map_err(|_| err(&field, "not valid subprotocol names"))
}
