//! Task field parsers shared by the protocols: texts that may hold `${...}`
//! placeholders (Redis, MQTT, gRPC), the reported `name` (every protocol), plain
//! strings and small integers, the method, the URL and handshake headers, each error
//! naming its field (`tasks[0].key`).

use http::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value};

use crate::scenario::{CsvLookup, RenderContext, Template};
use crate::task::{TaskError, err};

/// A text field that may hold placeholders; numbers and booleans are taken as
/// their text. `None` when absent or null.
pub(crate) fn text_template(
    object: &Map<String, Value>,
    key: &str,
    path: &str,
    csv: &dyn CsvLookup,
) -> Result<Option<Template>, TaskError> {
    let text = match object.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(other) => {
            return Err(err(
                format!("{path}.{key}"),
                format!("expected a string or a number, got {other}"),
            ));
        }
    };
    Template::parse(&text, csv)
        .map(Some)
        .map_err(|e| err(format!("{path}.{key}"), e))
}

/// An unsigned integer field no larger than `max`, `default` when absent or null.
pub(crate) fn small_uint(
    object: &Map<String, Value>,
    key: &str,
    path: &str,
    default: u64,
    max: u64,
) -> Result<u64, TaskError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|v| v <= max) => {
            Ok(n.as_u64().unwrap_or(default))
        }
        Some(other) => Err(err(
            format!("{path}.{key}"),
            format!("expected an integer from 0 to {max}, got {other}"),
        )),
    }
}

/// The `name` a task is reported under: its text (`default` when absent), and its
/// template when it holds placeholders (then rendered per request).
pub(crate) fn report_name(
    object: &Map<String, Value>,
    path: &str,
    csv: &dyn CsvLookup,
    default: &str,
) -> Result<(String, Option<Template>), TaskError> {
    match object.get("name") {
        None | Some(Value::Null) => Ok((default.to_string(), None)),
        Some(Value::String(n)) => {
            let parsed = Template::parse(n, csv).map_err(|e| err(format!("{path}.name"), e))?;
            Ok(match parsed.static_text() {
                Some(text) => (text, None),
                None => (n.clone(), Some(parsed)),
            })
        }
        Some(other) => Err(err(
            format!("{path}.name"),
            format!("expected a string, got {other}"),
        )),
    }
}

/// Renders an optional template (`None` stays `None`).
pub(crate) fn render_optional(
    template: Option<&Template>,
    ctx: &mut RenderContext<'_>,
) -> Option<String> {
    template.map(|t| t.render(ctx))
}

/// `headers`: a map of header name to value (text or number), each checked.
pub(crate) fn parse_headers(
    object: &Map<String, Value>,
    path: &str,
) -> Result<Vec<(HeaderName, HeaderValue)>, TaskError> {
    match object.get("headers") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(key, value)| {
                let field = format!("{path}.headers.{key}");
                let name = HeaderName::from_bytes(key.as_bytes())
                    .map_err(|_| err(&field, "not a valid header name"))?;
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    other => return Err(err(&field, format!("expected a string, got {other}"))),
                };
                let value = HeaderValue::from_str(&text)
                    .map_err(|_| err(&field, "not a valid header value"))?;
                Ok((name, value))
            })
            .collect(),
        Some(other) => Err(err(
            format!("{path}.headers"),
            format!("expected a map of header name to value, got {other}"),
        )),
    }
}

/// The method of a task: the legacy map's key, else `method`, else `default` (a
/// missing method is an error when there is none).
pub(crate) fn method_text(
    object: &Map<String, Value>,
    method_key: Option<&str>,
    path: &str,
    default: Option<&str>,
) -> Result<String, TaskError> {
    match (method_key, object.get("method")) {
        (Some(_), Some(_)) => Err(err(
            format!("{path}.method"),
            "the method is already given by the map key",
        )),
        (Some(key), None) => Ok(key.to_string()),
        (None, Some(Value::String(m))) => Ok(m.clone()),
        (None, None | Some(Value::Null)) => default
            .map(str::to_string)
            .ok_or_else(|| err(format!("{path}.method"), "missing field")),
        (None, Some(other)) => Err(err(
            format!("{path}.method"),
            format!("expected a string, got {other}"),
        )),
    }
}

/// `request_url` or `url` (not both): the field's name and its text; `None` when
/// neither is given. `what` describes the URL expected (`an http:// or https:// URL`).
pub(crate) fn url_text<'o>(
    object: &'o Map<String, Value>,
    path: &str,
    what: &str,
) -> Result<Option<(&'static str, &'o str)>, TaskError> {
    let present = |key: &str| !matches!(object.get(key), None | Some(Value::Null));
    let field = match (present("request_url"), present("url")) {
        (true, true) => {
            return Err(err(
                format!("{path}.url"),
                "give either `request_url` or `url`, not both",
            ));
        }
        (true, false) => "request_url",
        (false, true) => "url",
        (false, false) => return Ok(None),
    };
    match object.get(field) {
        Some(Value::String(text)) => Ok(Some((field, text.as_str()))),
        other => Err(err(
            format!("{path}.{field}"),
            format!("expected {what}, got {}", other.unwrap_or(&Value::Null)),
        )),
    }
}

/// Refuses a URL whose scheme is not one of `schemes` (placeholders in the scheme
/// are checked when rendered).
pub(crate) fn check_scheme(text: &str, schemes: &[&str]) -> Result<(), String> {
    let expected = schemes
        .iter()
        .map(|s| format!("{s}://"))
        .collect::<Vec<_>>()
        .join(" or ");
    match text.split_once("://") {
        Some((scheme, _)) if scheme.contains("${") => Ok(()),
        Some((scheme, _)) if schemes.iter().any(|s| scheme.eq_ignore_ascii_case(s)) => Ok(()),
        Some((scheme, _)) => Err(format!(
            "scheme `{scheme}` is not supported; use {expected}"
        )),
        None if text.starts_with("${") => Ok(()),
        None => Err(format!(
            "`{}` is not a URL; expected {expected}",
            crate::redact::redact_url_credentials(text)
        )),
    }
}

/// A step's `method`, lower case (LoadDensity lowers it), one of `methods`; from
/// the legacy map's key when the task has none.
pub(crate) fn step_method(
    object: &Map<String, Value>,
    method_key: Option<&str>,
    path: &str,
    methods: &[&str],
) -> Result<String, TaskError> {
    let method = match object.get("method") {
        Some(Value::String(m)) => m.to_ascii_lowercase(),
        None | Some(Value::Null) => method_key.map(str::to_ascii_lowercase).ok_or_else(|| {
            err(
                format!("{path}.method"),
                format!("missing field; expected one of: {}", methods.join(", ")),
            )
        })?,
        Some(other) => {
            return Err(err(
                format!("{path}.method"),
                format!("expected one of {}, got {other}", methods.join(", ")),
            ));
        }
    };
    if !methods.contains(&method.as_str()) {
        return Err(err(
            format!("{path}.method"),
            format!(
                "unknown method `{method}`; expected one of: {}",
                methods.join(", ")
            ),
        ));
    }
    Ok(method)
}

/// The server of a step that names none: LD_start_test's `host` when given (checked
/// by `check`, its error naming `host`), else `default`.
pub(crate) fn host_or_default<'a>(
    host_text: Option<&'a str>,
    default: &'a str,
    check: impl FnOnce(&str) -> Result<(), String>,
) -> Result<&'a str, TaskError> {
    match host_text {
        Some(host) => {
            check(host).map_err(|e| err("host", e))?;
            Ok(host)
        }
        None => Ok(default),
    }
}

/// Where a step connects by default: LD_start_test's `host` (`host`, `host:port`
/// or `scheme://host:port`), else `127.0.0.1`; the port is `default_port` unless the
/// host names one.
pub(crate) fn default_host_port(host_text: Option<&str>, default_port: u16) -> (String, u16) {
    let Some(text) = host_text.map(str::trim).filter(|t| !t.is_empty()) else {
        return ("127.0.0.1".to_string(), default_port);
    };
    let authority = match text.split_once("://") {
        Some((_, rest)) => rest.split(['/', '?', '#']).next().unwrap_or(rest),
        None => text,
    };
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if let Some((host, port)) = authority.rsplit_once(':')
        && let Ok(port) = port.parse::<u16>()
        && !host.is_empty()
    {
        return (host.trim_matches(['[', ']']).to_string(), port);
    }
    (authority.trim_matches(['[', ']']).to_string(), default_port)
}

/// A `port` field: an integer (or its text) from 1 to 65535, `default` when absent.
pub(crate) fn port_field(
    object: &Map<String, Value>,
    path: &str,
    default: u16,
) -> Result<u16, TaskError> {
    let bad = |shown: &dyn std::fmt::Display| {
        err(
            format!("{path}.port"),
            format!("expected a port from 1 to 65535, got {shown}"),
        )
    };
    match object.get("port") {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(n)),
        Some(Value::String(s)) => s
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(s)),
        Some(other) => Err(bad(other)),
    }
}

/// A required text field.
pub(crate) fn required_text(
    object: &Map<String, Value>,
    key: &str,
    path: &str,
    method: &str,
    ctx: &crate::protocol::ParseContext<'_>,
) -> Result<Template, TaskError> {
    text_template(object, key, path, ctx.csv)?.ok_or_else(|| {
        err(
            format!("{path}.{key}"),
            format!("missing field; `{method}` needs a {key}"),
        )
    })
}

/// A `value`: text as it is, other JSON as JSON text (empty when absent, as in
/// LoadDensity).
pub(crate) fn value_text_field(
    object: &Map<String, Value>,
    path: &str,
    ctx: &crate::protocol::ParseContext<'_>,
) -> Result<Template, TaskError> {
    match object.get("value") {
        Some(Value::Array(_) | Value::Object(_)) => {
            let text = object
                .get("value")
                .map(Value::to_string)
                .unwrap_or_default();
            Template::parse(&text, ctx.csv).map_err(|e| err(format!("{path}.value"), e))
        }
        _ => Ok(text_template(object, "value", path, ctx.csv)?.unwrap_or_default()),
    }
}
