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
