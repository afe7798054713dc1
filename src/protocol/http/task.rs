//! HTTP's task schema (LoadDensity's `http_user` / `fast_http_user` fields),
//! parsed strictly into [`HttpTask`]s.
//!
//! A task is parsed once when the test starts. A task without placeholders is
//! prepared completely here, so sending it only clones cheap reference-counted parts.
//! A task with placeholders keeps its static parts prepared and its `${...}` parts
//! as parsed templates, rendered per request (see [`crate::scenario`]).

use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderName, HeaderValue, USER_AGENT};
use http::{HeaderMap, Method};
use serde_json::{Map, Value};
use url::Url;

use super::fields::{pairs, parse_auth, parse_body, scalar_text};
use super::template::{
    HeaderTemplate, Rendered, RequestSpec, RequestTemplate, UrlTemplate, basic_auth, build_url,
};
use super::{Capture, PreparedRequest, Target};
use crate::event::intern_endpoint;
use crate::protocol::fields::report_name;
use crate::protocol::{ParseContext, ParsedSpec};
use crate::redact::{redact_url_credentials, split_url_credentials};
use crate::scenario::{Assertion, Extractor, RenderContext, Template};
use crate::task::{TaskError, err, parse_bool, parse_timeout};

/// Default request timeout, as Locust's FastHttpUser (60 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The HTTP task fields this engine implements (besides the common ones).
pub const FIELDS: &[&str] = &[
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
    "cert",
    "client_cert",
    "auth",
    "cookies",
    "files",
    "assertions",
    "extract",
];

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete", "head", "options"];

/// The HTTP part of a task: the request, what to check in its response and what
/// to extract from it.
#[derive(Debug, Clone)]
pub struct HttpTask {
    request: RequestSpec,
    /// Checks on the response; when present they alone decide success.
    pub assertions: Vec<Assertion>,
    /// Variables set (for this user) from a successful response.
    pub extract: Vec<Extractor>,
}

/// The `User-Agent` sent unless a task sets its own.
pub fn user_agent() -> HeaderValue {
    HeaderValue::from_static(concat!("loaddensity/", env!("CARGO_PKG_VERSION")))
}

impl HttpTask {
    /// The request, when it has no placeholders.
    pub fn prepared(&self) -> Option<&PreparedRequest> {
        match &self.request {
            RequestSpec::Static(request) => Some(request),
            RequestSpec::Dynamic(_) => None,
        }
    }

    /// True when the request has placeholders to render per request.
    pub fn is_templated(&self) -> bool {
        matches!(self.request, RequestSpec::Dynamic(_))
    }

    /// The CSV sources this task reads.
    pub(crate) fn csv_sources(&self, into: &mut Vec<usize>) {
        self.request.csv_sources(into);
    }

    /// The request to send (the prepared one, or the template rendered for this
    /// user) and, for a templated `name`, the name to report it under.
    pub(crate) fn render(
        &self,
        ctx: &mut RenderContext<'_>,
    ) -> Result<(Rendered<'_>, Option<String>), String> {
        self.request.render(ctx)
    }
}

/// Parses the HTTP fields of one task object.
pub(crate) fn parse(
    object: &Map<String, Value>,
    method_key: Option<&str>,
    path: &str,
    ctx: &ParseContext<'_>,
) -> Result<ParsedSpec<HttpTask>, TaskError> {
    let (host, csv) = (ctx.host, ctx.csv);
    if let (None, Some(text)) = (host, ctx.host_text) {
        let problem = Url::parse(text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        let text = redact_url_credentials(text);
        return Err(err("host", format!("`{text}` is not a URL: {problem}")));
    }
    // Credentials in a URL are sent as basic auth, never in the URL itself: the
    // `host`'s for a relative URL, the URL's own otherwise.
    let (host_credentials, clean_host) = match host.and_then(|h| split_url_credentials(h.as_str()))
    {
        Some((credentials, clean)) => (Some(credentials), Url::parse(&clean).ok()),
        None => (None, host.cloned()),
    };
    let host = clean_host.as_ref();
    if method_key.is_some() && object.contains_key("method") {
        return Err(err(
            format!("{path}.method"),
            "the method is already given by the map key",
        ));
    }
    let template = |field: &str, text: &str| {
        Template::parse(text, csv).map_err(|e| err(format!("{path}.{field}"), e))
    };

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
    let written_url = url_text.as_str();
    let (url_credentials, clean_url) = match split_url_credentials(written_url) {
        Some((credentials, clean)) => (Some(credentials), Some(clean)),
        None => (None, None),
    };
    let url_text = clean_url.as_deref().unwrap_or(written_url);
    let credentials = url_credentials.or(host_credentials.filter(|_| !url_text.contains("://")));
    let url_template = template(url_field, url_text)?;
    let params = match object.get("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(params) => pairs(params, &format!("{path}.params"))?
            .into_iter()
            .map(|(k, v)| Ok((template("params", &k)?, template("params", &v)?)))
            .collect::<Result<Vec<_>, TaskError>>()?,
    };
    let url_is_static =
        url_template.is_static() && params.iter().all(|(k, v)| k.is_static() && v.is_static());
    let (target, url) = if url_is_static {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| {
                (
                    k.static_text().unwrap_or_default(),
                    v.static_text().unwrap_or_default(),
                )
            })
            .collect();
        let url = build_url(url_text, &params, host).map_err(|m| err(&url_path, m))?;
        let target = Target::from_url(&url)
            .map_err(|message| err(&url_path, format!("`{url}`: {message}")))?;
        (Some(target), None)
    } else {
        if let Some(scheme) = url_text.split_once("://").map(|(s, _)| s)
            && !scheme.contains("${")
            && scheme != "http"
            && scheme != "https"
        {
            return Err(err(
                &url_path,
                format!("scheme `{scheme}` is not supported; use http or https"),
            ));
        }
        (None, Some(UrlTemplate::new(url_template, params, host)))
    };

    // Without a `name`: the URL as written, its password masked.
    let (name_text, name_template) =
        report_name(object, path, csv, &redact_url_credentials(written_url))?;

    let explicit_auth = object.get("auth").is_some_and(|v| !v.is_null())
        || object
            .get("headers")
            .and_then(Value::as_object)
            .is_some_and(|map| map.keys().any(|k| k.eq_ignore_ascii_case("authorization")));
    let mut headers = HeaderMap::new();
    let mut dynamic_headers = Vec::new();
    headers.insert(USER_AGENT, user_agent());
    let (body, content_type, body_template) = parse_body(object, path, csv)?;
    if let Some(content_type) = content_type {
        headers.insert(CONTENT_TYPE, content_type);
    }
    let mut add_header = |name: HeaderName, value: HeaderTemplate, field: &str| {
        match &value {
            HeaderTemplate::Text(t) if t.is_static() => {
                let text = t.static_text().unwrap_or_default();
                let value = HeaderValue::from_str(&text)
                    .map_err(|_| err(field, "not a valid header value"))?;
                headers.insert(name, value);
            }
            HeaderTemplate::Basic(u, p) if u.is_static() && p.is_static() => {
                let text = basic_auth(
                    &u.static_text().unwrap_or_default(),
                    &p.static_text().unwrap_or_default(),
                );
                let value = HeaderValue::from_str(&text)
                    .map_err(|_| err(field, "not a valid header value"))?;
                headers.insert(name, value);
            }
            _ => dynamic_headers.push((name, value)),
        }
        Ok::<(), TaskError>(())
    };
    match object.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                let field = format!("{path}.headers.{key}");
                let name = HeaderName::from_bytes(key.as_bytes())
                    .map_err(|_| err(&field, "not a valid header name"))?;
                let text = scalar_text(value)
                    .filter(|_| !value.is_null())
                    .ok_or_else(|| err(&field, format!("expected a string, got {value}")))?;
                let value = Template::parse(&text, csv).map_err(|e| err(&field, e))?;
                add_header(name, HeaderTemplate::Text(value), &field)?;
            }
        }
        Some(other) => {
            return Err(err(
                format!("{path}.headers"),
                format!("expected a map of header name to value, got {other}"),
            ));
        }
    }
    if let Some(auth) = object.get("auth").filter(|v| !v.is_null()) {
        let field = format!("{path}.auth");
        add_header(AUTHORIZATION, parse_auth(auth, &field, csv)?, &field)?;
    }
    if let Some(cookies) = object.get("cookies").filter(|v| !v.is_null()) {
        let field = format!("{path}.cookies");
        let line = pairs(cookies, &field)?
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        if !line.is_empty() {
            let value = Template::parse(&line, csv).map_err(|e| err(&field, e))?;
            add_header(COOKIE, HeaderTemplate::Text(value), &field)?;
        }
    }

    // The URL's credentials, unless the task sets its own Authorization.
    if let Some(credentials) = credentials.filter(|_| !explicit_auth) {
        let part = |text: &str| {
            Template::parse(text, csv).map_err(|_| {
                err(
                    &url_path,
                    "the user or password before `@` has a placeholder that is not valid",
                )
            })
        };
        let basic = HeaderTemplate::Basic(part(&credentials.user)?, part(&credentials.password)?);
        add_header(AUTHORIZATION, basic, &url_path)?;
    }

    let timeout = parse_timeout(object, path, DEFAULT_TIMEOUT)?;

    let assertions = match object.get("assertions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                Assertion::parse(item, csv).map_err(|(field, message)| {
                    err(
                        field_path(&format!("{path}.assertions[{i}]"), &field),
                        message,
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(err(
                format!("{path}.assertions"),
                format!("expected a list of assertions, got {other}"),
            ));
        }
    };
    let extract = match object.get("extract") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                Extractor::parse(item).map_err(|(field, message)| {
                    err(field_path(&format!("{path}.extract[{i}]"), &field), message)
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(item @ Value::Object(_)) => {
            vec![Extractor::parse(item).map_err(|(field, message)| {
                err(field_path(&format!("{path}.extract"), &field), message)
            })?]
        }
        Some(other) => {
            return Err(err(
                format!("{path}.extract"),
                format!("expected a list of extractors, got {other}"),
            ));
        }
    };
    let capture = Capture {
        headers: assertions.iter().any(Assertion::needs_headers)
            || extract.iter().any(Extractor::needs_headers),
        body: assertions.iter().any(Assertion::needs_body)
            || extract.iter().any(Extractor::needs_body),
    };
    let base = PreparedRequest {
        method: method.clone(),
        target: match &target {
            Some(target) => target.clone(),
            None => placeholder_target(),
        },
        headers,
        body,
        timeout,
        allow_redirects: parse_bool(object, "allow_redirects", path, true)?,
        verify: parse_bool(object, "verify", path, true)?,
        client_cert: crate::protocol::client_cert::parse(object, path)?,
        capture,
        wire: None,
    };
    let request = if url.is_none()
        && name_template.is_none()
        && dynamic_headers.is_empty()
        && body_template.is_none()
    {
        RequestSpec::Static(base.with_wire())
    } else {
        RequestSpec::Dynamic(Box::new(RequestTemplate {
            base,
            url,
            name: name_template,
            headers: dynamic_headers,
            body: body_template,
        }))
    };
    Ok(ParsedSpec {
        endpoint: intern_endpoint(method.as_str(), &name_text),
        spec: HttpTask {
            request,
            assertions,
            extract,
        },
    })
}

fn field_path(prefix: &str, field: &str) -> String {
    if field.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

/// The target of a request whose URL is rendered per request; never sent.
fn placeholder_target() -> Target {
    let url = Url::parse("http://127.0.0.1/").expect("a valid URL");
    Target::from_url(&url).expect("a valid target")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    type Task = crate::task::Task<HttpTask>;

    fn parse_tasks(value: &Value, host: Option<&Url>) -> Result<Vec<Task>, TaskError> {
        crate::engine::parse_tasks(value, host).map(|s| s.tasks)
    }

    fn one(task: Value) -> Result<Task, TaskError> {
        parse_tasks(&json!([task]), None).map(|mut v| v.remove(0))
    }

    fn prepared(task: &Task) -> &PreparedRequest {
        task.prepared().expect("a task without placeholders")
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
        let endpoint = task.endpoint.clone();
        let task = prepared(&task);
        assert_eq!(task.method, Method::POST);
        assert_eq!(&*endpoint.name, "create");
        assert_eq!(&*endpoint.request_type, "POST");
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
        assert_eq!(prepared(&tasks[1]).method, Method::POST);
        assert_eq!(&prepared(&tasks[1]).body[..], b"a=b+c");
    }

    #[test]
    fn relative_url_uses_host() {
        let host = Url::parse("http://127.0.0.1:9000").ok();
        let tasks =
            parse_tasks(&json!([{"method": "get", "url": "/p"}]), host.as_ref()).expect("valid");
        assert_eq!(prepared(&tasks[0]).target.origin.port, 9000);
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
                json!({"method": "get", "url": "http://h/", "assertions": {}}),
                "tasks[0].assertions",
                "expected a list",
            ),
            (
                json!({"method": "get", "url": "http://h/", "auth": {"type": "digest"}}),
                "tasks[0].auth.type",
                "unknown auth type",
            ),
            (
                json!({"method": "get", "url": "http://h/", "files": {"f": "/nonexistent/f"}}),
                "tasks[0].files.f",
                "cannot read",
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
    }

    #[test]
    fn params_as_pairs_and_raw_data() {
        let task = one(json!({"method": "put", "url": "http://h/p", "params": [["a", 1], ["a", 2]], "data": "raw body"}))
            .expect("valid");
        let task = prepared(&task);
        assert_eq!(task.target.origin_form.to_string(), "/p?a=1&a=2");
        assert_eq!(&task.body[..], b"raw body");
        assert!(!task.headers.contains_key(CONTENT_TYPE));
    }

    #[test]
    fn placeholders_make_a_task_templated_and_render_per_user() {
        use crate::scenario::{RenderContext, SharedVariables};
        use rand::SeedableRng;
        let task = one(json!({
            "method": "post", "url": "http://h/items/${var.id}", "params": {"q": "${var.q}"},
            "headers": {"X-Static": "s", "X-User": "${var.id}"},
            "auth": {"type": "bearer", "token": "${var.token}"},
            "cookies": {"sid": "abc"},
            "json": {"id": "${var.id}", "n": 1}
        }))
        .expect("valid");
        assert!(task.is_templated());
        assert_eq!(&*task.endpoint.name, "http://h/items/${var.id}");
        let user = std::collections::HashMap::from([
            ("id".to_string(), "7".to_string()),
            ("q".to_string(), "a b".to_string()),
            ("token".to_string(), "t-1".to_string()),
        ]);
        let shared = SharedVariables::new();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let mut ctx = RenderContext::new(&user, &shared, &mut rng);
        let (request, name) = task.render(&mut ctx).expect("renders");
        assert_eq!(name, None, "reported under the task's endpoint");
        assert_eq!(request.target.origin_form.to_string(), "/items/7?q=a+b");
        assert_eq!(request.headers["x-static"], "s");
        assert_eq!(request.headers["x-user"], "7");
        assert_eq!(request.headers[AUTHORIZATION], "Bearer t-1");
        assert_eq!(request.headers[COOKIE], "sid=abc");
        assert_eq!(&request.body[..], br#"{"id":"7","n":1}"#);

        let basic = one(json!({"method": "get", "url": "http://h/", "auth": {"type": "basic", "username": "u", "password": "p"}}))
            .expect("valid");
        assert_eq!(prepared(&basic).headers[AUTHORIZATION], "Basic dTpw");
    }

    #[test]
    fn a_rendered_request_keeps_the_task_settings_and_rejects_bad_header_values() {
        use crate::scenario::{RenderContext, SharedVariables};
        use rand::SeedableRng;
        let task = one(json!({
            "method": "get", "url": "https://h:8443/p/${var.id}",
            "headers": {"X-User": "${var.id}", "X-Static": "s"},
            "timeout": 3, "allow_redirects": false, "verify": false,
            "assertions": [{"type": "contains", "value": "ok"}]
        }))
        .expect("valid");
        let shared = SharedVariables::new();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let user = std::collections::HashMap::from([("id".to_string(), "7".to_string())]);
        let mut ctx = RenderContext::new(&user, &shared, &mut rng);
        let (request, _) = task.render(&mut ctx).expect("renders");
        assert_eq!(request.method, Method::GET);
        assert_eq!(request.timeout, Duration::from_secs(3));
        assert!(!request.allow_redirects && !request.verify);
        assert_eq!(request.headers["x-static"], "s");
        assert!(request.capture.body, "the assertion needs the body");
        assert!(
            request.wire.is_none(),
            "a rendered request is serialized per send"
        );
        assert_eq!(request.target.origin_form.to_string(), "/p/7");
        assert_eq!(
            request.target.absolute.as_ref().map(ToString::to_string),
            Some("https://h:8443/p/7".to_string()),
            "HTTP/2 needs the absolute form"
        );

        let plain = one(json!({"method": "get", "url": "http://h/p/${var.id}"})).expect("valid");
        let (request, _) = plain.render(&mut ctx).expect("renders");
        assert_eq!(request.target.origin_form.to_string(), "/p/7");
        assert!(
            request.target.absolute.is_none(),
            "plain http is HTTP/1.1 only"
        );

        let user = std::collections::HashMap::from([("id".to_string(), "a\nb".to_string())]);
        let mut ctx = RenderContext::new(&user, &shared, &mut rng);
        let Err(message) = task.render(&mut ctx) else {
            panic!("a line break in a header value must be refused");
        };
        assert!(
            message.contains("x-user") && message.contains("a\nb"),
            "{message}"
        );
    }
}
