//! LoadDensity's task schema, parsed strictly into [`Task`]s.
//!
//! A task is parsed once when the test starts. A task without placeholders is
//! prepared completely here, so sending it only clones cheap reference-counted parts.
//! A task with placeholders keeps its static parts prepared and its `${...}` parts
//! as parsed templates, rendered per request (see [`crate::scenario`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderName, HeaderValue, USER_AGENT};
use http::{HeaderMap, Method};
use serde_json::{Map, Value};
use url::Url;

use crate::event::{Endpoint, intern_endpoint};
use crate::http::{Capture, PreparedRequest, Target};
use crate::scenario::{
    Assertion, Condition, CsvLookup, Extractor, RenderContext, Template, TemplateValue,
};

/// Default request timeout, as Locust's FastHttpUser (60 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The task fields this engine implements.
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
    "auth",
    "cookies",
    "files",
    "assertions",
    "extract",
    "weight",
    "run_if",
    "skip_if",
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

pub(crate) fn err(path: impl Into<String>, message: impl Into<String>) -> TaskError {
    TaskError {
        path: path.into(),
        message: message.into(),
    }
}

/// One step of a scenario: a request, what to check in its response, what to
/// extract from it, and when to run it.
#[derive(Debug, Clone)]
pub struct Task {
    /// What the request is reported as (for a templated `name`, the name as written;
    /// each request is then reported under its rendered name).
    pub endpoint: Arc<Endpoint>,
    request: RequestSpec,
    /// Checks on the response; when present they alone decide success.
    pub assertions: Vec<Assertion>,
    /// Variables set (for this user) from a successful response.
    pub extract: Vec<Extractor>,
    /// Relative weight in a `weighted` scenario (default 1).
    pub weight: u32,
    /// Run only when this holds.
    pub run_if: Option<Condition>,
    /// Skip when this holds.
    pub skip_if: Option<Condition>,
}

// The prepared request is read on every request: kept inline, one per task.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum RequestSpec {
    Static(PreparedRequest),
    Dynamic(Box<RequestTemplate>),
}

/// The parts of a request that hold placeholders, next to the prepared rest.
#[derive(Debug, Clone)]
struct RequestTemplate {
    /// The request with every static part in place (its target is unused when the
    /// URL is templated).
    base: PreparedRequest,
    url: Option<UrlTemplate>,
    name: Option<Template>,
    headers: Vec<(HeaderName, HeaderTemplate)>,
    body: Option<BodyTemplate>,
}

#[derive(Debug, Clone)]
struct UrlTemplate {
    url: Template,
    params: Vec<(Template, Template)>,
    host: Option<Url>,
    /// When the literal start of the URL fixes the origin: that origin, its text
    /// (empty for a path relative to `host`), and the template of the rest (from the
    /// path on). Only the path is then rendered and checked per request.
    fast: Option<(Target, String, Template)>,
}

impl UrlTemplate {
    fn new(url: Template, params: Vec<(Template, Template)>, host: Option<&Url>) -> Self {
        let prefix = url.literal_prefix();
        let fast = if prefix.starts_with('/') {
            host.and_then(|h| Target::from_url(h).ok())
                .map(|origin| (origin, String::new(), url.clone()))
        } else if let Some(scheme_end) = prefix.find("://") {
            prefix[scheme_end + 3..].find('/').and_then(|slash| {
                let end = scheme_end + 3 + slash;
                let origin = Url::parse(&prefix[..end]).ok()?;
                let origin = Target::from_url(&origin).ok()?;
                Some((origin, prefix[..end].to_string(), url.without_prefix(end)))
            })
        } else {
            None
        };
        Self {
            url,
            params,
            host: host.cloned(),
            fast,
        }
    }

    fn render(&self, ctx: &mut RenderContext<'_>) -> Result<Target, String> {
        let params: Vec<(String, String)> = self
            .params
            .iter()
            .map(|(k, v)| (k.render(ctx), v.render(ctx)))
            .collect();
        let text = match &self.fast {
            Some((origin, origin_text, rest)) => {
                let mut path = rest.render(ctx);
                let plain = path.len();
                if !params.is_empty() {
                    path.push(if path.contains('?') { '&' } else { '?' });
                    let start = path.len();
                    let mut query = form_urlencoded::Serializer::for_suffix(path, start);
                    query.extend_pairs(&params);
                    path = query.finish();
                }
                if let Some(target) = origin.with_path(&path) {
                    return Ok(target);
                }
                // Characters that need escaping: take the general path.
                path.truncate(plain);
                format!("{origin_text}{path}")
            }
            None => self.url.render(ctx),
        };
        let url = build_url(&text, &params, self.host.as_ref())?;
        Target::from_url(&url).map_err(|m| format!("`{url}`: {m}"))
    }
}

#[derive(Debug, Clone)]
enum HeaderTemplate {
    Text(Template),
    Basic(Template, Template),
}

#[derive(Debug, Clone)]
enum BodyTemplate {
    Json(TemplateValue),
    Raw(Template),
    Form(Vec<(Template, Template)>),
}

/// The `User-Agent` sent unless a task sets its own.
pub fn user_agent() -> HeaderValue {
    HeaderValue::from_static(concat!("loaddensity/", env!("CARGO_PKG_VERSION")))
}

impl Task {
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
        if let RequestSpec::Dynamic(t) = &self.request {
            if let Some(url) = &t.url {
                url.url.csv_sources(into);
                for (k, v) in &url.params {
                    k.csv_sources(into);
                    v.csv_sources(into);
                }
            }
            if let Some(name) = &t.name {
                name.csv_sources(into);
            }
            for (_, header) in &t.headers {
                match header {
                    HeaderTemplate::Text(v) => v.csv_sources(into),
                    HeaderTemplate::Basic(u, p) => {
                        u.csv_sources(into);
                        p.csv_sources(into);
                    }
                }
            }
            match &t.body {
                Some(BodyTemplate::Json(v)) => v.csv_sources(into),
                Some(BodyTemplate::Raw(v)) => v.csv_sources(into),
                Some(BodyTemplate::Form(pairs)) => {
                    for (k, v) in pairs {
                        k.csv_sources(into);
                        v.csv_sources(into);
                    }
                }
                None => {}
            }
        }
    }

    /// True when the task runs this time (`run_if` holds and `skip_if` does not).
    pub(crate) fn should_run(&self, ctx: &mut RenderContext<'_>) -> bool {
        self.run_if.as_ref().is_none_or(|c| c.holds(ctx))
            && !self.skip_if.as_ref().is_some_and(|c| c.holds(ctx))
    }

    /// The request to send (the prepared one, or the template rendered for this
    /// user) and, for a templated `name`, the name to report it under (else
    /// [`Task::endpoint`]).
    pub(crate) fn render(
        &self,
        ctx: &mut RenderContext<'_>,
    ) -> Result<(Rendered<'_>, Option<String>), String> {
        let template = match &self.request {
            RequestSpec::Static(request) => return Ok((Rendered::Prepared(request), None)),
            RequestSpec::Dynamic(template) => template,
        };
        let mut request = Box::new(template.base.clone());
        if let Some(url) = &template.url {
            request.target = url.render(ctx)?;
        }
        for (name, header) in &template.headers {
            let text = match header {
                HeaderTemplate::Text(value) => value.render(ctx),
                HeaderTemplate::Basic(user, password) => {
                    basic_auth(&user.render(ctx), &password.render(ctx))
                }
            };
            let value = HeaderValue::from_str(&text)
                .map_err(|_| format!("header `{name}`: `{text}` is not a valid header value"))?;
            request.headers.insert(name.clone(), value);
        }
        match &template.body {
            Some(BodyTemplate::Json(value)) => {
                let bytes = serde_json::to_vec(&value.render(ctx)).map_err(|e| e.to_string())?;
                request.body = Bytes::from(bytes);
            }
            Some(BodyTemplate::Raw(text)) => request.body = Bytes::from(text.render(ctx)),
            Some(BodyTemplate::Form(pairs)) => {
                let encoded = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(pairs.iter().map(|(k, v)| (k.render(ctx), v.render(ctx))))
                    .finish();
                request.body = Bytes::from(encoded);
            }
            None => {}
        }
        let name = template.name.as_ref().map(|name| name.render(ctx));
        Ok((Rendered::Owned(request), name))
    }
}

/// A request to send: a task's prepared one, or one rendered from its templates
/// (boxed, to keep every user's future small).
pub(crate) enum Rendered<'t> {
    Prepared(&'t PreparedRequest),
    Owned(Box<PreparedRequest>),
}

impl std::ops::Deref for Rendered<'_> {
    type Target = PreparedRequest;

    fn deref(&self) -> &PreparedRequest {
        match self {
            Self::Prepared(request) => request,
            Self::Owned(request) => request,
        }
    }
}

fn basic_auth(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// An absolute URL from a task's URL text (relative ones joined to `host`) and its
/// query parameters.
fn build_url(text: &str, params: &[(String, String)], host: Option<&Url>) -> Result<Url, String> {
    let mut url = match (Url::parse(text), host) {
        (Ok(url), _) => url,
        (Err(url::ParseError::RelativeUrlWithoutBase), Some(base)) => base
            .join(text)
            .map_err(|e| format!("`{text}` is not a valid URL: {e}"))?,
        (Err(url::ParseError::RelativeUrlWithoutBase), None) => {
            return Err(format!(
                "`{text}` is relative; give an absolute URL or the `host` argument"
            ));
        }
        (Err(e), _) => return Err(format!("`{text}` is not a valid URL: {e}")),
    };
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!(
            "scheme `{}` is not supported; use http or https",
            url.scheme()
        ));
    }
    if !params.is_empty() {
        url.query_pairs_mut().extend_pairs(params);
    }
    Ok(url)
}

/// Parses one task object. `method_key` is the method given by the legacy map's key;
/// `path` names the task in errors (`tasks[0]`); `host` is the base for relative URLs.
pub(crate) fn parse_task(
    object: &Map<String, Value>,
    method_key: Option<&str>,
    path: &str,
    host: Option<&Url>,
    csv: &dyn CsvLookup,
) -> Result<Task, TaskError> {
    for key in object.keys() {
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

    let (name_text, name_template) = match object.get("name") {
        None | Some(Value::Null) => (url_text.clone(), None),
        Some(Value::String(n)) => {
            let parsed = template("name", n)?;
            match parsed.static_text() {
                Some(text) => (text, None),
                None => (n.clone(), Some(parsed)),
            }
        }
        Some(other) => {
            return Err(err(
                format!("{path}.name"),
                format!("expected a string, got {other}"),
            ));
        }
    };

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
    let weight = match object.get("weight") {
        None | Some(Value::Null) => 1,
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|w| u32::try_from(w).ok())
            .filter(|w| *w >= 1)
            .ok_or_else(|| {
                err(
                    format!("{path}.weight"),
                    format!("expected a positive integer, got {n}"),
                )
            })?,
        Some(other) => {
            return Err(err(
                format!("{path}.weight"),
                format!("expected a positive integer, got {other}"),
            ));
        }
    };
    let condition = |field: &str| -> Result<Option<Condition>, TaskError> {
        object
            .get(field)
            .map(|v| Condition::parse(v, csv).map_err(|e| err(format!("{path}.{field}"), e)))
            .transpose()
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
    Ok(Task {
        endpoint: intern_endpoint(method.as_str(), &name_text),
        request,
        assertions,
        extract,
        weight,
        run_if: condition("run_if")?,
        skip_if: condition("skip_if")?,
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

fn parse_auth(auth: &Value, field: &str, csv: &dyn CsvLookup) -> Result<HeaderTemplate, TaskError> {
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

type ParsedBody = (Bytes, Option<HeaderValue>, Option<BodyTemplate>);

fn parse_body(
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
            crate::scenario::multipart(&fields, files, &format!("{path}.files"))?;
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

/// Reads a file for a multipart upload, naming the task field on failure.
pub(crate) fn read_upload(path: &Path, field: &str) -> Result<Vec<u8>, TaskError> {
    std::fs::read(path).map_err(|e| err(field, format!("cannot read `{}`: {e}", path.display())))
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_tasks(value: &Value, host: Option<&Url>) -> Result<Vec<Task>, TaskError> {
        crate::scenario::parse_tasks(value, host).map(|s| s.tasks)
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
}
