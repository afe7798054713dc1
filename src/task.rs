//! LoadDensity's task schema, parsed strictly into ready-to-send [`Task`]s.
//!
//! A task is parsed once when the test starts; everything the request path needs
//! (method, URIs, headers, body bytes) is prepared here, so sending a request only
//! clones cheap reference-counted parts.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT};
use http::{HeaderMap, Method};
use serde_json::{Map, Value};
use url::Url;

use crate::event::{Endpoint, intern_endpoint};
use crate::http::Target;

/// Default request timeout, as Locust's FastHttpUser (60 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The task fields this engine implements.
const FIELDS: &[&str] = &[
    "method",
    "request_url",
    "url",
    "name",
    "headers",
    "params",
    "json",
    "data",
    "timeout",
    "allow_redirects",
    "verify",
];

/// Task fields that belong to the scenario language, not implemented yet.
const SCENARIO_FIELDS: &[&str] = &[
    "assertions",
    "extract",
    "weight",
    "run_if",
    "skip_if",
    "auth",
    "cookies",
    "files",
];

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete", "head", "options"];

/// A task that cannot be used, with the path of the offending field (`tasks[1].timeout`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{path}`: {message}")]
pub struct TaskError {
    /// Where in the arguments the problem is, e.g. `tasks[0].headers.Accept`.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

fn err(path: impl Into<String>, message: impl Into<String>) -> TaskError {
    TaskError {
        path: path.into(),
        message: message.into(),
    }
}

/// One request of a scenario, ready to send.
#[derive(Debug, Clone)]
pub struct Task {
    /// What the request is reported as.
    pub endpoint: Arc<Endpoint>,
    /// HTTP method.
    pub method: Method,
    /// Where the request goes.
    pub target: Target,
    /// Request headers (without `Host`, which the client adds for HTTP/1.1).
    pub headers: HeaderMap,
    /// Request body; empty for none.
    pub body: Bytes,
    /// Limit on the whole request, redirects included.
    pub timeout: Duration,
    /// Follow 3xx responses (default true, as in Locust).
    pub allow_redirects: bool,
    /// Verify TLS certificates (default true).
    pub verify: bool,
}

/// The `User-Agent` sent unless a task sets its own.
pub fn user_agent() -> HeaderValue {
    HeaderValue::from_static(concat!("loaddensity/", env!("CARGO_PKG_VERSION")))
}

/// Parses LoadDensity's `tasks` argument: a list of tasks, the legacy map
/// `{"get": {...}, "post": {...}}`, or `{"mode": "sequence", "tasks": [...]}`.
///
/// `host` is the base for relative URLs (LoadDensity's `host` argument).
pub fn parse_tasks(value: &Value, host: Option<&Url>) -> Result<Vec<Task>, TaskError> {
    let tasks = match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let path = format!("tasks[{i}]");
                let object = item
                    .as_object()
                    .ok_or_else(|| err(&path, format!("expected a task object, got {item}")))?;
                parse_task(object, None, &path, host)
            })
            .collect::<Result<Vec<_>, _>>()?,
        Value::Object(map) if map.contains_key("tasks") || map.contains_key("mode") => {
            return parse_scenario(map, host);
        }
        Value::Object(map) => map
            .iter()
            .map(|(method, item)| {
                let path = format!("tasks.{method}");
                let object = item
                    .as_object()
                    .ok_or_else(|| err(&path, format!("expected a task object, got {item}")))?;
                parse_task(object, Some(method), &path, host)
            })
            .collect::<Result<Vec<_>, _>>()?,
        other => {
            return Err(err(
                "tasks",
                format!("expected a list of tasks or a map of method to task, got {other}"),
            ));
        }
    };
    if tasks.is_empty() {
        return Err(err("tasks", "expected at least one task"));
    }
    Ok(tasks)
}

fn parse_scenario(map: &Map<String, Value>, host: Option<&Url>) -> Result<Vec<Task>, TaskError> {
    for key in map.keys() {
        if key != "mode" && key != "tasks" {
            return Err(err(
                format!("tasks.{key}"),
                "unknown field; a scenario has `mode` and `tasks`",
            ));
        }
    }
    let mode = match map.get("mode") {
        None | Some(Value::Null) => "sequence".to_string(),
        Some(Value::String(mode)) => mode.to_ascii_lowercase(),
        Some(other) => {
            return Err(err("tasks.mode", format!("expected a string, got {other}")));
        }
    };
    match mode.as_str() {
        "sequence" => {}
        "weighted" | "conditional" => {
            return Err(err(
                "tasks.mode",
                format!("scenario mode `{mode}` is not supported yet; use `sequence`"),
            ));
        }
        _ => {
            return Err(err(
                "tasks.mode",
                format!("unknown mode `{mode}`; expected sequence, weighted or conditional"),
            ));
        }
    }
    let inner = map
        .get("tasks")
        .ok_or_else(|| err("tasks.tasks", "missing field"))?;
    parse_tasks(inner, host)
}

fn parse_task(
    object: &Map<String, Value>,
    method_key: Option<&str>,
    path: &str,
    host: Option<&Url>,
) -> Result<Task, TaskError> {
    for key in object.keys() {
        if SCENARIO_FIELDS.contains(&key.as_str()) {
            return Err(err(
                format!("{path}.{key}"),
                "is not supported yet (it comes with the scenario language)",
            ));
        }
        if !FIELDS.contains(&key.as_str()) {
            return Err(err(
                format!("{path}.{key}"),
                format!("unknown field; expected one of: {}", FIELDS.join(", ")),
            ));
        }
        if key == "method" && method_key.is_some() {
            return Err(err(
                format!("{path}.method"),
                "the method is already given by the map key",
            ));
        }
    }

    let method_text = match (method_key, object.get("method")) {
        (Some(key), _) => key.to_string(),
        (None, Some(Value::String(m))) => m.clone(),
        (None, Some(other)) => {
            return Err(err(
                format!("{path}.method"),
                format!("expected a string, got {other}"),
            ));
        }
        (None, None) => return Err(err(format!("{path}.method"), "missing field")),
    };
    let lower = method_text.to_ascii_lowercase();
    if !METHODS.contains(&lower.as_str()) {
        return Err(err(
            format!("{path}.method"),
            format!(
                "unsupported method `{method_text}`; expected one of: {}",
                METHODS.join(", ")
            ),
        ));
    }
    let method = Method::from_bytes(lower.to_ascii_uppercase().as_bytes())
        .map_err(|e| err(format!("{path}.method"), e.to_string()))?;

    let (url_field, url_text) = match (object.get("request_url"), object.get("url")) {
        (Some(_), Some(_)) => {
            return Err(err(
                format!("{path}.url"),
                "give either `request_url` or `url`, not both",
            ));
        }
        (Some(Value::String(u)), None) => ("request_url", u),
        (None, Some(Value::String(u))) => ("url", u),
        (Some(other), None) | (None, Some(other)) => {
            let field = if object.contains_key("url") {
                "url"
            } else {
                "request_url"
            };
            return Err(err(
                format!("{path}.{field}"),
                format!("expected a URL string, got {other}"),
            ));
        }
        (None, None) => return Err(err(format!("{path}.request_url"), "missing field")),
    };
    let url_path = format!("{path}.{url_field}");
    let mut url = match (Url::parse(url_text), host) {
        (Ok(url), _) => url,
        (Err(url::ParseError::RelativeUrlWithoutBase), Some(base)) => base
            .join(url_text)
            .map_err(|e| err(&url_path, format!("`{url_text}` is not a valid URL: {e}")))?,
        (Err(url::ParseError::RelativeUrlWithoutBase), None) => {
            return Err(err(
                &url_path,
                format!("`{url_text}` is relative; give an absolute URL or the `host` argument"),
            ));
        }
        (Err(e), _) => {
            return Err(err(
                &url_path,
                format!("`{url_text}` is not a valid URL: {e}"),
            ));
        }
    };
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(err(
            &url_path,
            format!(
                "scheme `{}` is not supported; use http or https",
                url.scheme()
            ),
        ));
    }

    let name = match object.get("name") {
        None | Some(Value::Null) => url_text.clone(),
        Some(Value::String(n)) => n.clone(),
        Some(other) => {
            return Err(err(
                format!("{path}.name"),
                format!("expected a string, got {other}"),
            ));
        }
    };

    if let Some(params) = object.get("params") {
        append_params(&mut url, params, &format!("{path}.params"))?;
    }

    let mut headers = HeaderMap::new();
    headers.insert(USER_AGENT, user_agent());
    let (body, content_type) = parse_body(object, path)?;
    if let Some(content_type) = content_type {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    match object.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                let field = format!("{path}.headers.{key}");
                let name = HeaderName::from_bytes(key.as_bytes())
                    .map_err(|_| err(&field, "not a valid header name"))?;
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    other => {
                        return Err(err(&field, format!("expected a string, got {other}")));
                    }
                };
                let value = HeaderValue::from_str(&text)
                    .map_err(|_| err(&field, "not a valid header value"))?;
                headers.insert(name, value);
            }
        }
        Some(other) => {
            return Err(err(
                format!("{path}.headers"),
                format!("expected a map of header name to value, got {other}"),
            ));
        }
    }

    let timeout = match object.get("timeout") {
        None | Some(Value::Null) => DEFAULT_TIMEOUT,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(s) if s > 0.0 && s.is_finite() && s < 1e9 => Duration::from_secs_f64(s),
            _ => {
                return Err(err(
                    format!("{path}.timeout"),
                    format!("expected a positive number of seconds, got {n}"),
                ));
            }
        },
        Some(other) => {
            return Err(err(
                format!("{path}.timeout"),
                format!("expected a positive number of seconds, got {other}"),
            ));
        }
    };

    let target =
        Target::from_url(&url).map_err(|message| err(&url_path, format!("`{url}`: {message}")))?;
    Ok(Task {
        endpoint: intern_endpoint(method.as_str(), &name),
        method,
        target,
        headers,
        body,
        timeout,
        allow_redirects: parse_bool(object, "allow_redirects", path, true)?,
        verify: parse_bool(object, "verify", path, true)?,
    })
}

fn parse_bool(
    object: &Map<String, Value>,
    key: &str,
    path: &str,
    default: bool,
) -> Result<bool, TaskError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(err(
            format!("{path}.{key}"),
            format!("expected true or false, got {other}"),
        )),
    }
}

/// The text of a scalar used in a query string or form (strings as they are).
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
        _ => None,
    }
}

/// Key/value pairs from a dict (list values repeat the key, as `requests` does) or
/// a list of `[key, value]` pairs.
fn pairs(value: &Value, path: &str) -> Result<Vec<(String, String)>, TaskError> {
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

fn append_params(url: &mut Url, params: &Value, path: &str) -> Result<(), TaskError> {
    if params.is_null() {
        return Ok(());
    }
    let pairs = pairs(params, path)?;
    if !pairs.is_empty() {
        url.query_pairs_mut().extend_pairs(pairs);
    }
    Ok(())
}

fn parse_body(
    object: &Map<String, Value>,
    path: &str,
) -> Result<(Bytes, Option<&'static str>), TaskError> {
    let json = object.get("json").filter(|v| !v.is_null());
    let data = object.get("data").filter(|v| !v.is_null());
    match (json, data) {
        (Some(_), Some(_)) => Err(err(
            format!("{path}.data"),
            "give either `json` or `data`, not both",
        )),
        (Some(json), None) => {
            let bytes =
                serde_json::to_vec(json).map_err(|e| err(format!("{path}.json"), e.to_string()))?;
            Ok((Bytes::from(bytes), Some("application/json")))
        }
        (None, Some(Value::String(raw))) => Ok((Bytes::from(raw.clone()), None)),
        (None, Some(data @ (Value::Object(_) | Value::Array(_)))) => {
            let pairs = pairs(data, &format!("{path}.data"))?;
            let encoded = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish();
            Ok((
                Bytes::from(encoded),
                Some("application/x-www-form-urlencoded"),
            ))
        }
        (None, Some(other)) => Err(err(
            format!("{path}.data"),
            format!("expected a form dict or a raw string, got {other}"),
        )),
        (None, None) => Ok((Bytes::new(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(task: Value) -> Result<Task, TaskError> {
        parse_tasks(&json!([task]), None).map(|mut v| v.remove(0))
    }

    #[test]
    fn list_form_with_all_fields() {
        let task = one(json!({
            "method": "Post", "request_url": "http://127.0.0.1:8080/a?x=1",
            "name": "create", "headers": {"X-Test": "yes"},
            "params": {"b": "2", "c": [3, 4]}, "json": {"k": "v"},
            "timeout": 2.5, "allow_redirects": false, "verify": false
        }))
        .expect("valid");
        assert_eq!(task.method, Method::POST);
        assert_eq!(&*task.endpoint.name, "create");
        assert_eq!(&*task.endpoint.request_type, "POST");
        assert_eq!(task.target.origin_form.to_string(), "/a?x=1&b=2&c=3&c=4");
        assert_eq!(task.headers["x-test"], "yes");
        assert_eq!(task.headers[CONTENT_TYPE], "application/json");
        assert_eq!(&task.body[..], br#"{"k":"v"}"#);
        assert_eq!(task.timeout, Duration::from_millis(2500));
        assert!(!task.allow_redirects && !task.verify);
    }

    #[test]
    fn legacy_map_and_default_name() {
        let tasks = parse_tasks(
            &json!({"get": {"request_url": "http://h/x"}, "post": {"request_url": "http://h/y", "data": {"a": "b c"}}}),
            None,
        )
        .expect("valid");
        assert_eq!(tasks.len(), 2);
        assert_eq!(&*tasks[0].endpoint.name, "http://h/x");
        assert_eq!(tasks[1].method, Method::POST);
        assert_eq!(&tasks[1].body[..], b"a=b+c");
    }

    #[test]
    fn relative_url_uses_host() {
        let host = Url::parse("http://127.0.0.1:9000").ok();
        let tasks =
            parse_tasks(&json!([{"method": "get", "url": "/p"}]), host.as_ref()).expect("valid");
        assert_eq!(tasks[0].target.origin.port, 9000);
        assert_eq!(&*tasks[0].endpoint.name, "/p");
        let e = one(json!({"method": "get", "url": "/p"})).expect_err("relative");
        assert_eq!(e.path, "tasks[0].url");
        assert!(e.message.contains("host"));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                json!({"method": "get", "url": "http://h/", "bogus": 1}),
                "tasks[0].bogus",
                "unknown field",
            ),
            (
                json!({"method": "get", "url": "http://h/", "assertions": []}),
                "tasks[0].assertions",
                "not supported yet",
            ),
            (
                json!({"method": "fetch", "url": "http://h/"}),
                "tasks[0].method",
                "unsupported method",
            ),
            (json!({"url": "http://h/"}), "tasks[0].method", "missing"),
            (
                json!({"method": "get", "url": "ftp://h/"}),
                "tasks[0].url",
                "scheme",
            ),
            (
                json!({"method": "get", "url": "http://h/", "timeout": "5"}),
                "tasks[0].timeout",
                "positive number",
            ),
            (
                json!({"method": "get", "url": "http://h/", "headers": {"A": [1]}}),
                "tasks[0].headers.A",
                "expected a string",
            ),
            (
                json!({"method": "get", "url": "http://h/", "json": {}, "data": "x"}),
                "tasks[0].data",
                "either",
            ),
            (
                json!({"method": "get", "url": "http://h/", "verify": "no"}),
                "tasks[0].verify",
                "true or false",
            ),
        ];
        for (task, path, needle) in cases {
            let e = one(task.clone()).expect_err("must fail");
            assert_eq!(e.path, path, "{task}");
            assert!(e.message.contains(needle), "{task}: {}", e.message);
        }
        assert!(parse_tasks(&json!([]), None).is_err());
        let e = parse_tasks(
            &json!({"mode": "weighted", "tasks": [{"method": "get", "url": "http://h/"}]}),
            None,
        )
        .expect_err("weighted not yet");
        assert!(e.message.contains("not supported yet"));
    }

    #[test]
    fn params_as_pairs_and_raw_data() {
        let task = one(json!({"method": "put", "url": "http://h/p", "params": [["a", 1], ["a", 2]], "data": "raw body"}))
            .expect("valid");
        assert_eq!(task.target.origin_form.to_string(), "/p?a=1&a=2");
        assert_eq!(&task.body[..], b"raw body");
        assert!(!task.headers.contains_key(CONTENT_TYPE));
    }
}
