//! LoadDensity's `sse_user` task fields, parsed strictly into [`SseTask`]s.

use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value};

use crate::event::intern_endpoint;
use crate::protocol::fields::{check_scheme, method_text, parse_headers, report_name, url_text};
use crate::protocol::payload::optional_template;
use crate::protocol::{ParseContext, ParsedSpec};
use crate::redact::redact_url_credentials;
use crate::scenario::Template;
use crate::task::{TaskError, err, parse_bool, parse_timeout};

/// The `sse_user` task fields (besides the common ones).
pub const FIELDS: &[&str] = &[
    "method",
    "request_url",
    "url",
    "name",
    "expect",
    "timeout",
    "headers",
    "verify",
];

/// Default step timeout, as LoadDensity's (30 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The methods, as written in scripts (`connect` is LoadDensity's other name for
/// `open`).
pub const METHODS: &[&str] = &["open", "connect", "wait", "close"];

/// What a step does with the user's event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseMethod {
    /// GET with `Accept: text/event-stream`: opens the stream (times the response head).
    Open,
    /// Reads events until one whose data contains `expect` (or any event).
    Wait,
    /// Closes the stream.
    Close,
}

impl SseMethod {
    fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_lowercase().as_str() {
            "open" | "connect" => Self::Open,
            "wait" => Self::Wait,
            "close" => Self::Close,
            _ => return None,
        })
    }

    /// How scripts write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Wait => "wait",
            Self::Close => "close",
        }
    }
}

/// The SSE part of a task.
#[derive(Debug, Clone)]
pub struct SseTask {
    /// What the step does.
    pub method: SseMethod,
    /// `request_url` / `url`; else the user's last URL, else LoadDensity's `host`.
    pub(super) url: Option<Template>,
    /// A `name` with placeholders, rendered per request.
    pub(super) name: Option<Template>,
    /// A substring an event's data must contain (`wait`).
    pub(super) expect: Option<Template>,
    /// Limit on the step.
    pub(super) timeout: Duration,
    /// LoadDensity's `host` argument: the URL when no step named one.
    pub(super) host: Option<String>,
    /// Extra request headers (`open`).
    pub(super) headers: Vec<(HeaderName, HeaderValue)>,
    /// `verify` (true): check an `https://` server's certificate.
    pub(super) verify: bool,
}

impl SseTask {
    /// The CSV sources this task reads.
    pub(super) fn csv_sources(&self, into: &mut Vec<usize>) {
        for template in [&self.url, &self.name, &self.expect].into_iter().flatten() {
            template.csv_sources(into);
        }
    }
}

/// Parses the SSE fields of one task object.
pub(super) fn parse(
    object: &Map<String, Value>,
    method_key: Option<&str>,
    path: &str,
    ctx: &ParseContext<'_>,
) -> Result<ParsedSpec<SseTask>, TaskError> {
    // LoadDensity's default method.
    let method_text = method_text(object, method_key, path, Some("wait"))?;
    let method = SseMethod::parse(&method_text).ok_or_else(|| {
        err(
            format!("{path}.method"),
            format!(
                "unsupported sse method `{method_text}`; expected one of: {}",
                METHODS.join(", ")
            ),
        )
    })?;
    const SCHEMES: &[&str] = &["http", "https"];
    let url_text = url_text(object, path, "an http:// or https:// URL")?;
    let url = match url_text {
        Some((field, text)) => {
            check_scheme(text, SCHEMES).map_err(|m| err(format!("{path}.{field}"), m))?;
            Some(Template::parse(text, ctx.csv).map_err(|e| err(format!("{path}.{field}"), e))?)
        }
        None => None,
    };
    if let Some(host) = ctx.host_text {
        check_scheme(host, SCHEMES).map_err(|m| err("host", m))?;
    } else if method == SseMethod::Open && url.is_none() {
        return Err(err(
            format!("{path}.request_url"),
            "missing field: `open` needs an http:// or https:// URL (or the `host` argument)",
        ));
    }
    let default_name = url_text.map(|(_, u)| u).or(ctx.host_text).map_or_else(
        || method.as_str().to_string(),
        |u| redact_url_credentials(u).into_owned(),
    );
    let (name_text, name) = report_name(object, path, ctx.csv, &default_name)?;
    Ok(ParsedSpec {
        endpoint: intern_endpoint("SSE", &name_text),
        spec: SseTask {
            method,
            url,
            name,
            expect: optional_template(object, "expect", path, ctx.csv)?,
            timeout: parse_timeout(object, path, DEFAULT_TIMEOUT)?,
            host: ctx.host_text.map(str::to_string),
            headers: parse_headers(object, path)?,
            verify: parse_bool(object, "verify", path, true)?,
        },
    })
}
