//! Assertions on a response and the extractors that set a user's variables from it.
//! Both are parsed (regexes compiled, paths split) when the test starts.

use http::HeaderMap;
use http::header::HeaderName;
use regex::Regex;
use serde_json::Value;

use super::condition::loose_eq;
use super::resolver::{RenderContext, session_key, value_text};
use super::template::{CsvLookup, Template, TemplateError, TemplateValue};

/// The assertion types.
pub const ASSERTION_TYPES: &[&str] = &[
    "status_code",
    "contains",
    "not_contains",
    "json_path",
    "header",
    "regex",
];
/// Where an extractor may read from.
pub const EXTRACT_SOURCES: &[&str] = &["json_path", "header", "status_code", "regex"];

/// Longest response body kept for assertions and extractors; a longer one is checked
/// on its first bytes only (its full length is still counted).
pub const MAX_CAPTURED_BODY: usize = 4 * 1024 * 1024;

/// A dot path into a JSON document, with list indices: `data.items.0.id`.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    text: String,
    parts: Vec<String>,
}

impl JsonPath {
    /// Parses a dot path; empty segments are an error.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("expected a dot path such as `data.items.0.id`, got an empty path".into());
        }
        let parts: Vec<String> = text.split('.').map(str::to_string).collect();
        if parts.iter().any(String::is_empty) {
            return Err(format!(
                "`{text}` has an empty segment; expected a dot path such as `data.items.0.id`"
            ));
        }
        Ok(Self {
            text: text.to_string(),
            parts,
        })
    }

    /// The value at this path, if there is one (JSON `null` counts as none).
    pub fn find<'v>(&self, document: &'v Value) -> Option<&'v Value> {
        let mut cursor = document;
        for part in &self.parts {
            cursor = match cursor {
                Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                Value::Object(map) => map.get(part)?,
                _ => return None,
            };
        }
        (!cursor.is_null()).then_some(cursor)
    }
}

/// One assertion of a task.
#[derive(Debug, Clone)]
pub enum Assertion {
    /// `{"type": "status_code", "value": 200}`.
    StatusCode(u16),
    /// `{"type": "contains", "value": s}`.
    Contains(Template),
    /// `{"type": "not_contains", "value": s}`.
    NotContains(Template),
    /// `{"type": "json_path", "path": p, "value": v}`.
    JsonPath(JsonPath, TemplateValue),
    /// `{"type": "header", "name": n, "value": v}`.
    Header(HeaderName, Template),
    /// `{"type": "regex", "pattern": p}`: the body matches.
    Regex(Regex),
}

/// Where an extractor reads.
#[derive(Debug, Clone)]
pub enum ExtractFrom {
    /// A value of the JSON body.
    JsonPath(JsonPath),
    /// A response header.
    Header(HeaderName),
    /// The status code.
    StatusCode,
    /// The first capture group (or the whole match) of a regex on the body.
    Regex(Regex),
}

/// `{"var": "token", "from": "json_path", "path": "data.token"}`, and
/// `"scope": "session"` for a `${session.NAME}` variable.
#[derive(Debug, Clone)]
pub struct Extractor {
    /// The user variable it sets.
    pub var: String,
    /// Which namespace it sets: `${var.NAME}` (default) or `${session.NAME}`.
    pub scope: VariableScope,
    /// Where the value comes from.
    pub from: ExtractFrom,
    /// The key in the user's variable map (`var`, or its session key).
    key: String,
}

/// The namespace an extractor writes (LoadDensity's `scope`): both belong to the
/// user that extracted them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariableScope {
    /// `"scope": "var"` (the default): read as `${var.NAME}` or `${NAME}`.
    Var,
    /// `"scope": "session"`: read as `${session.NAME}` only.
    Session,
}

/// The extractor scopes, as written in a script.
pub const EXTRACT_SCOPES: &[&str] = &["var", "session"];

/// What the checks see of a response.
#[derive(Debug)]
pub struct ResponseView<'r> {
    /// Final status.
    pub status: u16,
    /// Final headers (empty unless the task needs them).
    pub headers: &'r HeaderMap,
    /// The body, up to [`MAX_CAPTURED_BODY`] (empty unless the task needs it).
    pub body: &'r [u8],
    json: std::cell::OnceCell<Option<Value>>,
}

impl<'r> ResponseView<'r> {
    /// A view of a response.
    pub fn new(status: u16, headers: &'r HeaderMap, body: &'r [u8]) -> Self {
        Self {
            status,
            headers,
            body,
            json: std::cell::OnceCell::new(),
        }
    }

    fn json(&self) -> Option<&Value> {
        self.json
            .get_or_init(|| serde_json::from_slice(self.body).ok())
            .as_ref()
    }

    fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.body)
    }

    fn header(&self, name: &HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn short(text: &str) -> String {
    const LIMIT: usize = 120;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

impl Assertion {
    /// Parses one entry of `assertions`. Errors are `(field, problem)`.
    pub(crate) fn parse(value: &Value, csv: &dyn CsvLookup) -> Result<Self, AssertionError> {
        let object = value.as_object().ok_or_else(|| {
            (
                String::new(),
                TemplateError::from(format!("expected an assertion object, got {value}")),
            )
        })?;
        let kind = string_field(object, "type")
            .map_err(invalid)?
            .to_ascii_lowercase();
        let allowed: &[&str] = match kind.as_str() {
            "status_code" | "contains" | "not_contains" => &["type", "value"],
            "json_path" => &["type", "path", "value"],
            "header" => &["type", "name", "value"],
            "regex" => &["type", "pattern"],
            _ => {
                return Err((
                    "type".into(),
                    format!(
                        "unknown assertion type `{kind}`; expected one of: {}",
                        ASSERTION_TYPES.join(", ")
                    )
                    .into(),
                ));
            }
        };
        check_fields(object, allowed).map_err(invalid)?;
        let template = |field: &str| -> Result<Template, AssertionError> {
            let text = match object.get(field) {
                Some(Value::String(s)) => s.clone(),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => value_text(v),
                Some(other) => {
                    return Err((
                        field.into(),
                        format!("expected a string, got {other}").into(),
                    ));
                }
                None => return Err((field.into(), "missing field".into())),
            };
            Template::parse(&text, csv).map_err(|e| (field.to_string(), e))
        };
        Ok(match kind.as_str() {
            "status_code" => {
                let code = object
                    .get("value")
                    .and_then(|v| match v {
                        Value::Number(n) => n.as_u64(),
                        Value::String(s) => s.parse().ok(),
                        _ => None,
                    })
                    .and_then(|c| u16::try_from(c).ok())
                    .filter(|c| (100..=999).contains(c))
                    .ok_or_else(|| {
                        (
                            "value".to_string(),
                            TemplateError::from("expected a status code 100..=999"),
                        )
                    })?;
                Self::StatusCode(code)
            }
            "contains" => Self::Contains(template("value")?),
            "not_contains" => Self::NotContains(template("value")?),
            "json_path" => {
                let path = JsonPath::parse(string_field(object, "path").map_err(invalid)?)
                    .map_err(|e| ("path".to_string(), TemplateError::from(e)))?;
                let expected = object
                    .get("value")
                    .ok_or_else(|| ("value".to_string(), TemplateError::from("missing field")))?;
                let expected =
                    TemplateValue::parse(expected, csv).map_err(|e| ("value".to_string(), e))?;
                Self::JsonPath(path, expected)
            }
            "header" => Self::Header(header_name(object).map_err(invalid)?, template("value")?),
            _ => Self::Regex(regex(object).map_err(invalid)?),
        })
    }

    /// True when the check reads the body.
    pub fn needs_body(&self) -> bool {
        matches!(
            self,
            Self::Contains(_) | Self::NotContains(_) | Self::JsonPath(..) | Self::Regex(_)
        )
    }

    /// True when the check reads the headers.
    pub fn needs_headers(&self) -> bool {
        matches!(self, Self::Header(..))
    }

    /// `Err` says which assertion failed and what was seen.
    pub(crate) fn check(
        &self,
        response: &ResponseView<'_>,
        ctx: &mut RenderContext<'_>,
    ) -> Result<(), String> {
        match self {
            Self::StatusCode(expected) => {
                (response.status == *expected).then_some(()).ok_or_else(|| {
                    format!(
                        "assertion status_code: expected {expected}, got {}",
                        response.status
                    )
                })
            }
            Self::Contains(value) => {
                let value = value.render(ctx);
                response
                    .text()
                    .contains(&value)
                    .then_some(())
                    .ok_or_else(|| {
                        format!(
                            "assertion contains: body does not contain {:?}",
                            short(&value)
                        )
                    })
            }
            Self::NotContains(value) => {
                let value = value.render(ctx);
                (!response.text().contains(&value))
                    .then_some(())
                    .ok_or_else(|| {
                        format!("assertion not_contains: body contains {:?}", short(&value))
                    })
            }
            Self::JsonPath(path, expected) => {
                let expected = expected.render(ctx);
                let actual = response.json().and_then(|doc| path.find(doc));
                match actual {
                    Some(actual) if values_match(actual, &expected) => Ok(()),
                    Some(actual) => Err(format!(
                        "assertion json_path `{}`: expected {}, got {}",
                        path.text,
                        short(&expected.to_string()),
                        short(&actual.to_string())
                    )),
                    None => Err(format!(
                        "assertion json_path `{}`: expected {}, got nothing{}",
                        path.text,
                        short(&expected.to_string()),
                        if response.json().is_none() {
                            " (the body is not JSON)"
                        } else {
                            ""
                        }
                    )),
                }
            }
            Self::Header(name, expected) => {
                let expected = expected.render(ctx);
                match response.header(name) {
                    Some(actual) if actual == expected => Ok(()),
                    actual => Err(format!(
                        "assertion header `{name}`: expected {:?}, got {}",
                        short(&expected),
                        actual.map_or("no such header".to_string(), |a| format!("{:?}", short(a)))
                    )),
                }
            }
            Self::Regex(regex) => regex
                .is_match(&response.text())
                .then_some(())
                .ok_or_else(|| {
                    format!("assertion regex: body does not match /{}/", regex.as_str())
                }),
        }
    }
}

fn values_match(actual: &Value, expected: &Value) -> bool {
    match (actual.as_f64(), expected.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => loose_eq(actual, expected),
    }
}

impl Extractor {
    /// Parses one entry of `extract`. Errors are `(field, message)`.
    pub(crate) fn parse(value: &Value) -> Result<Self, (String, String)> {
        let object = value.as_object().ok_or_else(|| {
            (
                String::new(),
                format!("expected an extractor object, got {value}"),
            )
        })?;
        let var = string_field(object, "var")?;
        if var.is_empty() {
            return Err(("var".into(), "expected a variable name".into()));
        }
        let scope = match object.get("scope") {
            None | Some(Value::Null) => VariableScope::Var,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("var") => VariableScope::Var,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("session") => VariableScope::Session,
            Some(other) => {
                return Err((
                    "scope".into(),
                    format!(
                        "expected one of: {}, got {other}",
                        EXTRACT_SCOPES.join(", ")
                    ),
                ));
            }
        };
        let source = match object.get("from") {
            None => "json_path".to_string(),
            Some(Value::String(s)) => s.to_ascii_lowercase(),
            Some(other) => return Err(("from".into(), format!("expected a string, got {other}"))),
        };
        let (allowed, from): (&[&str], _) = match source.as_str() {
            "json_path" => (
                &["var", "from", "scope", "path"],
                ExtractFrom::JsonPath(
                    JsonPath::parse(string_field(object, "path")?)
                        .map_err(|e| ("path".to_string(), e))?,
                ),
            ),
            "header" => (
                &["var", "from", "scope", "name"],
                ExtractFrom::Header(header_name(object)?),
            ),
            "status_code" => (&["var", "from", "scope"], ExtractFrom::StatusCode),
            "regex" => (
                &["var", "from", "scope", "pattern"],
                ExtractFrom::Regex(regex(object)?),
            ),
            other => {
                return Err((
                    "from".into(),
                    format!(
                        "unknown source `{other}`; expected one of: {}",
                        EXTRACT_SOURCES.join(", ")
                    ),
                ));
            }
        };
        check_fields(object, allowed)?;
        let key = match scope {
            VariableScope::Var => var.to_string(),
            VariableScope::Session => session_key(var),
        };
        Ok(Self {
            var: var.to_string(),
            scope,
            from,
            key,
        })
    }

    /// The key its value is kept under in the user's variable map: the name for
    /// `scope: var`, the session key for `scope: session`.
    pub fn variable_key(&self) -> &str {
        &self.key
    }

    /// True when it reads the body.
    pub fn needs_body(&self) -> bool {
        matches!(self.from, ExtractFrom::JsonPath(_) | ExtractFrom::Regex(_))
    }

    /// True when it reads the headers.
    pub fn needs_headers(&self) -> bool {
        matches!(self.from, ExtractFrom::Header(_))
    }

    /// The extracted text, if the response has it.
    pub fn extract(&self, response: &ResponseView<'_>) -> Option<String> {
        match &self.from {
            ExtractFrom::JsonPath(path) => {
                response.json().and_then(|d| path.find(d)).map(value_text)
            }
            ExtractFrom::Header(name) => response.header(name).map(str::to_string),
            ExtractFrom::StatusCode => Some(response.status.to_string()),
            ExtractFrom::Regex(regex) => {
                let text = response.text();
                let captures = regex.captures(&text)?;
                captures
                    .get(1)
                    .or_else(|| captures.get(0))
                    .map(|m| m.as_str().to_string())
            }
        }
    }
}

type FieldError = (String, String);

/// An assertion that cannot be used: the field, and what is wrong with it (a
/// placeholder source that cannot be reached, or anything else).
pub(crate) type AssertionError = (String, TemplateError);

fn invalid((field, message): FieldError) -> AssertionError {
    (field, TemplateError::Invalid(message))
}

fn string_field<'v>(
    object: &'v serde_json::Map<String, Value>,
    field: &str,
) -> Result<&'v str, FieldError> {
    match object.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err((field.into(), format!("expected a string, got {other}"))),
        None => Err((field.into(), "missing field".into())),
    }
}

fn check_fields(
    object: &serde_json::Map<String, Value>,
    allowed: &[&str],
) -> Result<(), FieldError> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err((
            key.clone(),
            format!("unknown field; expected one of: {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

fn header_name(object: &serde_json::Map<String, Value>) -> Result<HeaderName, FieldError> {
    let name = string_field(object, "name")?;
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        (
            "name".to_string(),
            format!("`{name}` is not a valid header name"),
        )
    })
}

fn regex(object: &serde_json::Map<String, Value>) -> Result<Regex, FieldError> {
    let pattern = string_field(object, "pattern")?;
    Regex::new(pattern).map_err(|e| {
        (
            "pattern".to_string(),
            format!("`{pattern}` is not a valid regex: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::resolver::{CsvTables, SharedVariables};
    use rand::SeedableRng;
    use rand::rngs::SmallRng;
    use serde_json::json;
    use std::collections::HashMap;

    fn check(assertion: Value, status: u16, headers: &HeaderMap, body: &str) -> Result<(), String> {
        let a = Assertion::parse(&assertion, &CsvTables::default()).expect("parses");
        let user = HashMap::from([("id".to_string(), "1".to_string())]);
        let shared = SharedVariables::new();
        let mut rng = SmallRng::seed_from_u64(1);
        let view = ResponseView::new(status, headers, body.as_bytes());
        a.check(&view, &mut RenderContext::new(&user, &shared, &mut rng))
    }

    #[test]
    fn assertions_pass_and_fail_with_what_was_seen() {
        let mut headers = HeaderMap::new();
        headers.insert("x-id", "abc".parse().expect("value"));
        let body = r#"{"data": {"items": [{"id": 1}, {"id": 2}]}}"#;
        // (assertion, None when it passes, else a part of its failure text)
        let cases = [
            (json!({"type": "status_code", "value": 200}), None),
            (
                json!({"type": "status_code", "value": 201}),
                Some("assertion status_code: expected 201, got 200"),
            ),
            (json!({"type": "contains", "value": "items"}), None),
            (
                json!({"type": "contains", "value": "nope"}),
                Some("does not contain \"nope\""),
            ),
            (json!({"type": "not_contains", "value": "error"}), None),
            (
                json!({"type": "json_path", "path": "data.items.0.id", "value": "${var.id}"}),
                None,
            ),
            (
                json!({"type": "json_path", "path": "data.items.1.id", "value": 1}),
                Some("expected 1, got 2"),
            ),
            (
                json!({"type": "json_path", "path": "data.x", "value": 1}),
                Some("got nothing"),
            ),
            (
                json!({"type": "header", "name": "X-Id", "value": "abc"}),
                None,
            ),
            (
                json!({"type": "header", "name": "X-Other", "value": "abc"}),
                Some("no such header"),
            ),
            (json!({"type": "regex", "pattern": r#""id": \d"#}), None),
        ];
        for (assertion, expected) in cases {
            let result = check(assertion.clone(), 200, &headers, body);
            match expected {
                None => assert_eq!(result, Ok(()), "{assertion}"),
                Some(needle) => {
                    let e = result.expect_err("must fail");
                    assert!(e.contains(needle), "{assertion}: {e}");
                }
            }
        }
    }

    #[test]
    fn extractors() {
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", "r-9".parse().expect("value"));
        let body = r#"{"data": {"token": "t-1", "n": 5}}"#;
        let view = ResponseView::new(201, &headers, body.as_bytes());
        let get = |e: Value| Extractor::parse(&e).expect("parses").extract(&view);
        assert_eq!(
            get(json!({"var": "t", "path": "data.token"})),
            Some("t-1".into())
        );
        assert_eq!(
            get(json!({"var": "t", "from": "json_path", "path": "data.n"})),
            Some("5".into())
        );
        assert_eq!(
            get(json!({"var": "t", "from": "json_path", "path": "data.none"})),
            None
        );
        assert_eq!(
            get(json!({"var": "t", "from": "header", "name": "X-Request-Id"})),
            Some("r-9".into())
        );
        assert_eq!(
            get(json!({"var": "t", "from": "status_code"})),
            Some("201".into())
        );
        assert_eq!(
            get(json!({"var": "t", "from": "regex", "pattern": "\"token\": \"([^\"]+)\""})),
            Some("t-1".into())
        );
    }

    #[test]
    fn bad_checks_name_the_field() {
        let tables = CsvTables::default();
        for (value, field, needle) in [
            (
                json!({"type": "regex", "pattern": "(unclosed"}),
                "pattern",
                "not a valid regex",
            ),
            (
                json!({"type": "json_path", "path": "a..b", "value": 1}),
                "path",
                "empty segment",
            ),
            (json!({"type": "bogus"}), "type", "unknown assertion type"),
            (
                json!({"type": "status_code", "value": 42}),
                "value",
                "100..=999",
            ),
            (
                json!({"type": "contains", "value": "x", "extra": 1}),
                "extra",
                "unknown field",
            ),
        ] {
            let (f, m) = Assertion::parse(&value, &tables).expect_err("must fail");
            let m = m.to_string();
            assert_eq!(f, field, "{value}");
            assert!(m.contains(needle), "{value}: {m}");
        }
        let (f, m) = Extractor::parse(&json!({"var": "x", "from": "cookie"})).expect_err("bad");
        assert_eq!(f, "from");
        assert!(m.contains("unknown source"));
        let (f, _) = Extractor::parse(&json!({"var": "x", "from": "regex", "pattern": "["}))
            .expect_err("bad");
        assert_eq!(f, "pattern");
    }
}
