//! Task fields shared by the message protocols (WebSocket, raw sockets): a
//! `payload` that is text (with placeholders) or raw bytes written `hex:DEADBEEF`,
//! and substring checks on what came back.

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::scenario::{CsvLookup, RenderContext, Template};
use crate::task::{TaskError, err};

/// What a step sends.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Bytes known when the test starts: text without placeholders (`binary`
    /// false), or `hex:...` (`binary` true).
    Static {
        /// What is sent.
        bytes: Bytes,
        /// True for `hex:` bytes.
        binary: bool,
    },
    /// UTF-8 text with placeholders, rendered per request.
    Template(Template),
}

impl Payload {
    /// Parses the `payload` field (`None` when absent or null).
    pub(crate) fn parse(
        object: &Map<String, Value>,
        path: &str,
        csv: &dyn CsvLookup,
    ) -> Result<Option<Self>, TaskError> {
        let field = format!("{path}.payload");
        match object.get("payload") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => match text.strip_prefix("hex:") {
                Some(hex) => decode_hex(hex)
                    .map(|bytes| {
                        Some(Self::Static {
                            bytes: bytes.into(),
                            binary: true,
                        })
                    })
                    .map_err(|m| err(field, m)),
                None => {
                    let template = Template::parse(text, csv).map_err(|e| err(field, e))?;
                    Ok(Some(match template.static_text() {
                        Some(text) => Self::Static {
                            bytes: text.into(),
                            binary: false,
                        },
                        None => Self::Template(template),
                    }))
                }
            },
            Some(other) => Err(err(
                field,
                format!("expected a string (text, or `hex:` and hex digits), got {other}"),
            )),
        }
    }

    /// True for `hex:` bytes.
    pub fn is_binary(&self) -> bool {
        matches!(self, Self::Static { binary: true, .. })
    }

    /// The bytes to send (a cheap clone when static).
    pub(crate) fn render(&self, ctx: &mut RenderContext<'_>) -> Bytes {
        match self {
            Self::Static { bytes, .. } => bytes.clone(),
            Self::Template(template) => Bytes::from(template.render(ctx)),
        }
    }

    /// The bytes to send, borrowed when static (no reference count to touch).
    pub(crate) fn render_borrowed(&self, ctx: &mut RenderContext<'_>) -> Cow<'_, [u8]> {
        match self {
            Self::Static { bytes, .. } => Cow::Borrowed(bytes),
            Self::Template(template) => Cow::Owned(template.render(ctx).into()),
        }
    }

    /// The CSV sources its placeholders read.
    pub(crate) fn csv_sources(&self, into: &mut Vec<usize>) {
        if let Self::Template(template) = self {
            template.csv_sources(into);
        }
    }
}

/// Bytes from hex digits (`DEADBEEF`, case-insensitive, spaces allowed between bytes).
fn decode_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!(
            "`hex:{text}` has an odd number of hex digits; expected pairs like `hex:DEADBEEF`"
        ));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let high = (pair[0] as char).to_digit(16);
            let low = (pair[1] as char).to_digit(16);
            match (high, low) {
                (Some(h), Some(l)) => Ok((h * 16 + l) as u8),
                _ => Err(format!(
                    "`hex:{text}` is not hex; expected digits 0-9 and A-F like `hex:DEADBEEF`"
                )),
            }
        })
        .collect()
}

/// An optional text field that may hold placeholders (`expect`, `expect_substring`).
pub(crate) fn optional_template(
    object: &Map<String, Value>,
    key: &str,
    path: &str,
    csv: &dyn CsvLookup,
) -> Result<Option<Template>, TaskError> {
    let field = format!("{path}.{key}");
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Template::parse(text, csv)
            .map(Some)
            .map_err(|e| err(field, e)),
        Some(other @ (Value::Number(_) | Value::Bool(_))) => {
            Template::parse(&other.to_string(), csv)
                .map(Some)
                .map_err(|e| err(field, e))
        }
        Some(other) => Err(err(field, format!("expected a string, got {other}"))),
    }
}

/// Checks that `data` (read as UTF-8, invalid bytes replaced) contains `expect`.
pub(crate) fn check_contains(data: &[u8], expect: &str) -> Result<(), String> {
    let text = String::from_utf8_lossy(data);
    if text.contains(expect) {
        Ok(())
    } else {
        let shown: String = text.chars().take(80).collect();
        Err(format!(
            "expected `{expect}` in the response, got `{shown}`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hex_payloads_decode_and_bad_ones_name_the_field() {
        let csv = crate::scenario::CsvTables::default();
        let object = json!({"payload": "hex:DEad BEEF"});
        let payload = Payload::parse(object.as_object().expect("map"), "tasks[0]", &csv)
            .expect("valid")
            .expect("present");
        assert!(payload.is_binary());
        assert!(
            matches!(payload, Payload::Static { ref bytes, .. } if bytes[..] == [0xde, 0xad, 0xbe, 0xef])
        );
        for bad in ["hex:ABC", "hex:zz"] {
            let object = json!({ "payload": bad });
            let e = Payload::parse(object.as_object().expect("map"), "tasks[1]", &csv)
                .expect_err("bad hex");
            assert_eq!(e.path, "tasks[1].payload");
        }
        assert!(check_contains(b"PONG\n", "PONG").is_ok());
        assert!(check_contains(b"nope", "PONG").is_err());
    }
}
