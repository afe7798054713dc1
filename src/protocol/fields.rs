//! Task field parsers shared by the protocols: texts that may hold `${...}`
//! placeholders (Redis, MQTT, gRPC), the reported `name` (every protocol), plain
//! strings and small integers, each error naming its field (`tasks[0].key`).

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
