//! HTTP task fields with a shape of their own: `auth`, the body (`json`, `data`,
//! `files`) and key/value pairs (`params`, `data`, `cookies`).

use bytes::Bytes;
use http::header::HeaderValue;
use serde_json::Map;
use serde_json::Value;

use super::template::{BodyTemplate, HeaderTemplate};
use crate::scenario::{CsvLookup, Template, TemplateValue};
use crate::task::{TaskError, err};

pub(super) fn parse_auth(
    auth: &Value,
    field: &str,
    csv: &dyn CsvLookup,
) -> Result<HeaderTemplate, TaskError> {
    let object = auth.as_object().ok_or_else(|| {
        err(
            field,
            format!("expected {{\"type\": \"basic\", \"username\", \"password\"}} or {{\"type\": \"bearer\", \"token\"}}, got {auth}"),
        )
    })?;
    let text = |key: &str| -> Result<Template, TaskError> {
        match object.get(key) {
            Some(Value::String(s)) => {
                Template::parse(s, csv).map_err(|e| err(format!("{field}.{key}"), e))
            }
            Some(other) => Err(err(
                format!("{field}.{key}"),
                format!("expected a string, got {other}"),
            )),
            None => Err(err(format!("{field}.{key}"), "missing field")),
        }
    };
    let kind = match object.get("type") {
        Some(Value::String(t)) => t.to_ascii_lowercase(),
        _ => {
            return Err(err(
                format!("{field}.type"),
                "expected \"basic\" or \"bearer\"",
            ));
        }
    };
    let allowed: &[&str] = match kind.as_str() {
        "basic" => &["type", "username", "password"],
        "bearer" => &["type", "token"],
        other => {
            return Err(err(
                format!("{field}.type"),
                format!("unknown auth type `{other}`; expected basic or bearer"),
            ));
        }
    };
    if let Some(key) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(err(
            format!("{field}.{key}"),
            format!("unknown field; expected one of: {}", allowed.join(", ")),
        ));
    }
    if kind == "basic" {
        Ok(HeaderTemplate::Basic(text("username")?, text("password")?))
    } else {
        let token = match object.get("token") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(err(
                    format!("{field}.token"),
                    format!("expected a string, got {other}"),
                ));
            }
            None => return Err(err(format!("{field}.token"), "missing field")),
        };
        Template::parse(&format!("Bearer {token}"), csv)
            .map(HeaderTemplate::Text)
            .map_err(|e| err(format!("{field}.token"), e))
    }
}

pub(super) type ParsedBody = (Bytes, Option<HeaderValue>, Option<BodyTemplate>);

pub(super) fn parse_body(
    object: &Map<String, Value>,
    path: &str,
    csv: &dyn CsvLookup,
) -> Result<ParsedBody, TaskError> {
    let json = object.get("json").filter(|v| !v.is_null());
    let data = object.get("data").filter(|v| !v.is_null());
    let files = object.get("files").filter(|v| !v.is_null());
    if let Some(files) = files {
        if json.is_some() {
            return Err(err(
                format!("{path}.json"),
                "give either `json` or `files` (a multipart form), not both",
            ));
        }
        let fields = match data {
            None => Vec::new(),
            Some(data @ (Value::Object(_) | Value::Array(_))) => {
                pairs(data, &format!("{path}.data"))?
            }
            Some(other) => {
                return Err(err(
                    format!("{path}.data"),
                    format!("with `files`, `data` must be a form dict, got {other}"),
                ));
            }
        };
        if fields
            .iter()
            .any(|(k, v)| k.contains("${") || v.contains("${"))
        {
            return Err(err(
                format!("{path}.data"),
                "placeholders in the form fields of a multipart upload are not supported",
            ));
        }
        let (body, content_type) =
            super::multipart::multipart(&fields, files, &format!("{path}.files"))?;
        return Ok((body, Some(content_type), None));
    }
    match (json, data) {
        (Some(_), Some(_)) => Err(err(
            format!("{path}.data"),
            "give either `json` or `data`, not both",
        )),
        (Some(json), None) => {
            let parsed =
                TemplateValue::parse(json, csv).map_err(|e| err(format!("{path}.json"), e))?;
            let content_type = Some(HeaderValue::from_static("application/json"));
            match parsed {
                TemplateValue::Static(value) => {
                    let bytes = serde_json::to_vec(&value)
                        .map_err(|e| err(format!("{path}.json"), e.to_string()))?;
                    Ok((Bytes::from(bytes), content_type, None))
                }
                dynamic => Ok((
                    Bytes::new(),
                    content_type,
                    Some(BodyTemplate::Json(dynamic)),
                )),
            }
        }
        (None, Some(Value::String(raw))) => {
            let parsed = Template::parse(raw, csv).map_err(|e| err(format!("{path}.data"), e))?;
            match parsed.static_text() {
                Some(text) => Ok((Bytes::from(text), None, None)),
                None => Ok((Bytes::new(), None, Some(BodyTemplate::Raw(parsed)))),
            }
        }
        (None, Some(data @ (Value::Object(_) | Value::Array(_)))) => {
            let field = format!("{path}.data");
            let pairs = pairs(data, &field)?;
            let content_type = Some(HeaderValue::from_static(
                "application/x-www-form-urlencoded",
            ));
            if pairs
                .iter()
                .any(|(k, v)| k.contains("${") || v.contains("${"))
            {
                let templates = pairs
                    .iter()
                    .map(|(k, v)| {
                        Ok((
                            Template::parse(k, csv).map_err(|e| err(&field, e))?,
                            Template::parse(v, csv).map_err(|e| err(&field, e))?,
                        ))
                    })
                    .collect::<Result<Vec<_>, TaskError>>()?;
                if templates
                    .iter()
                    .any(|(k, v)| !k.is_static() || !v.is_static())
                {
                    return Ok((
                        Bytes::new(),
                        content_type,
                        Some(BodyTemplate::Form(templates)),
                    ));
                }
            }
            let encoded = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish();
            Ok((Bytes::from(encoded), content_type, None))
        }
        (None, Some(other)) => Err(err(
            format!("{path}.data"),
            format!("expected a form dict or a raw string, got {other}"),
        )),
        (None, None) => Ok((Bytes::new(), None, None)),
    }
}

/// The text of a scalar used in a query string or form (strings as they are).
pub(super) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
        _ => None,
    }
}

/// Key/value pairs from a dict (list values repeat the key, as `requests` does) or
/// a list of `[key, value]` pairs.
pub(super) fn pairs(value: &Value, path: &str) -> Result<Vec<(String, String)>, TaskError> {
    let mut out = Vec::new();
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match v {
                    Value::Null => {}
                    Value::Array(items) => {
                        for item in items {
                            let text = scalar_text(item).ok_or_else(|| {
                                err(format!("{path}.{key}"), "expected scalar values")
                            })?;
                            out.push((key.clone(), text));
                        }
                    }
                    other => {
                        let text = scalar_text(other).ok_or_else(|| {
                            err(
                                format!("{path}.{key}"),
                                format!("expected a string or number, got {other}"),
                            )
                        })?;
                        out.push((key.clone(), text));
                    }
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let pair = item.as_array().filter(|p| p.len() == 2);
                let (k, v) = match pair.map(|p| (scalar_text(&p[0]), scalar_text(&p[1]))) {
                    Some((Some(k), Some(v))) => (k, v),
                    _ => {
                        return Err(err(
                            format!("{path}[{i}]"),
                            format!("expected a [key, value] pair, got {item}"),
                        ));
                    }
                };
                out.push((k, v));
            }
        }
        other => {
            return Err(err(
                path,
                format!("expected a dict or a list of [key, value] pairs, got {other}"),
            ));
        }
    }
    Ok(out)
}
