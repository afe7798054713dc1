//! HAR import: turns a browser or proxy recording (HAR 1.2, from Chrome or Firefox
//! DevTools, mitmproxy, Charles...) into LoadDensity tasks or a whole action script.
//!
//! The mapping follows LoadDensity's importer: method, URL and request headers are
//! copied (without `host`, `content-length`, `connection` and HTTP/2 pseudo-headers),
//! a JSON body becomes `json`, form parameters a `data` object and other text
//! `data`, the recorded status a `status_code` assertion, the name `METHOD /path`,
//! and the tasks run in `sequence` mode. Beyond it: entries served from the browser
//! cache or that failed (status 0) are skipped, `Cookie` and `Authorization` headers
//! copied from the recording are reported as warnings, the recorded think time can
//! be kept as each task's `wait`, and a malformed recording is an error naming the
//! entry and the field.

mod timestamp;

use std::path::Path;

use regex::Regex;
use serde_json::{Map, Value, json};

use crate::json_file::{self, JsonFileError};

/// Request headers never copied from a recording.
pub const DROPPED_HEADERS: &[&str] = &["host", "content-length", "connection"];

/// Request headers copied but reported: they usually need a variable.
pub const SENSITIVE_HEADERS: &[&str] = &["cookie", "authorization"];

/// The methods a task can use (lower case).
const METHODS: &[&str] = &["get", "post", "put", "patch", "delete", "head", "options"];

/// A recording that cannot be read or converted.
#[derive(Debug, thiserror::Error)]
pub enum HarError {
    /// The file could not be read, or its text is not valid JSON.
    #[error(transparent)]
    File(#[from] JsonFileError),
    /// A field of the recording is missing or of the wrong type.
    #[error("{}field `{field}`: {message}", entry_text(*entry))]
    Field {
        /// The 0-based index in `log.entries`, when the problem is in an entry.
        entry: Option<usize>,
        /// The field's path, e.g. `log.entries[3].request.url`.
        field: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// Every entry was left out: a script without tasks could not run.
    #[error(
        "no request left to replay ({filtered} excluded by include/exclude, {skipped} skipped as cached or failed)"
    )]
    NothingToReplay {
        /// Entries the patterns left out.
        filtered: usize,
        /// Entries the cache/failure rules left out.
        skipped: usize,
    },
    /// An `include` or `exclude` pattern is not a valid regular expression.
    #[error("{option}[{index}]: `{pattern}` is not a valid regular expression: {message}")]
    Pattern {
        /// `include` or `exclude`.
        option: &'static str,
        /// The pattern's index in its list.
        index: usize,
        /// The pattern.
        pattern: String,
        /// The regex parser's message.
        message: String,
    },
}

fn entry_text(entry: Option<usize>) -> String {
    entry.map_or_else(String::new, |i| format!("entry {i}: "))
}

/// Which entries to keep and how to convert them.
#[derive(Debug, Clone, Default)]
pub struct HarFilter {
    /// Keep only entries whose URL matches one of these (all when empty).
    pub include: Vec<Regex>,
    /// Drop entries whose URL matches one of these.
    pub exclude: Vec<Regex>,
    /// Put the recorded pause before each entry into the task's `wait`.
    pub keep_think_time: bool,
}

impl HarFilter {
    /// A filter from pattern texts, with errors naming the bad pattern.
    pub fn new(
        include: &[String],
        exclude: &[String],
        keep_think_time: bool,
    ) -> Result<Self, HarError> {
        Ok(Self {
            include: compile("include", include)?,
            exclude: compile("exclude", exclude)?,
            keep_think_time,
        })
    }

    fn keeps(&self, url: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| p.is_match(url)))
            && !self.exclude.iter().any(|p| p.is_match(url))
    }
}

fn compile(option: &'static str, patterns: &[String]) -> Result<Vec<Regex>, HarError> {
    patterns
        .iter()
        .enumerate()
        .map(|(index, pattern)| {
            Regex::new(pattern).map_err(|e| HarError::Pattern {
                option,
                index,
                pattern: pattern.clone(),
                message: e.to_string(),
            })
        })
        .collect()
}

/// The settings of the generated `LD_start_test` (LoadDensity's defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct TestSettings {
    /// `user_detail_dict.user`.
    pub user: String,
    /// `user_count` (10).
    pub user_count: u32,
    /// `spawn_rate` (5 users per second).
    pub spawn_rate: f64,
    /// `test_time` in seconds (60).
    pub test_time: f64,
}

impl Default for TestSettings {
    fn default() -> Self {
        Self {
            user: "fast_http_user".into(),
            user_count: 10,
            spawn_rate: 5.0,
            test_time: 60.0,
        }
    }
}

/// Why an entry was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The 0-based index in `log.entries`.
    pub entry: usize,
    /// The reason, e.g. `served from the browser cache`.
    pub reason: String,
}

/// The tasks of a recording, with what was left out and what needs attention.
#[derive(Debug, Clone, Default)]
pub struct Conversion {
    /// One task per kept entry, in recorded order.
    pub tasks: Vec<Value>,
    /// Entries left out by the cache/failure rules (not those the filter excluded).
    pub skipped: Vec<Skipped>,
    /// Entries the `include`/`exclude` patterns left out.
    pub filtered: usize,
    /// Things to check before running, e.g. a copied `Authorization` header.
    pub warnings: Vec<String>,
}

impl Conversion {
    /// The action script running these tasks in `sequence` mode; an error when no
    /// task is left.
    pub fn action_json(&self, settings: &TestSettings) -> Result<Value, HarError> {
        if self.tasks.is_empty() {
            return Err(HarError::NothingToReplay {
                filtered: self.filtered,
                skipped: self.skipped.len(),
            });
        }
        Ok(json!({
            "load_density": [[
                "LD_start_test",
                {
                    "user_detail_dict": {"user": settings.user},
                    "tasks": {"mode": "sequence", "tasks": self.tasks},
                    "user_count": settings.user_count,
                    "spawn_rate": settings.spawn_rate,
                    "test_time": settings.test_time,
                }
            ]]
        }))
    }
}

/// Reads a HAR file (a UTF-8 byte order mark is allowed).
pub fn load_har(path: &Path) -> Result<Value, HarError> {
    let text = json_file::read_text(path)?;
    parse_har(&text, &path.display().to_string())
}

/// Parses HAR text; `name` is used in errors.
pub fn parse_har(text: &str, name: &str) -> Result<Value, HarError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    Ok(json_file::parse_json(text, name)?)
}

/// Converts a HAR document into tasks.
pub fn har_to_tasks(har: &Value, filter: &HarFilter) -> Result<Conversion, HarError> {
    let log = har.get("log").ok_or_else(|| {
        field(
            None,
            "log",
            "missing; expected a HAR document {\"log\": {...}}",
        )
    })?;
    let entries = log
        .get("entries")
        .and_then(Value::as_array)
        .ok_or_else(|| field(None, "log.entries", "expected a list of entries"))?;
    let mut conversion = Conversion::default();
    let mut previous_end: Option<f64> = None;
    for (index, entry) in entries.iter().enumerate() {
        let entry = Entry::parse(index, entry)?;
        // The think time counts from the end of the previous recorded entry,
        // whether or not that one is kept.
        let started = entry.started_ms;
        let wait = match (previous_end, started) {
            (Some(end), Some(start)) => Some(((start - end).max(0.0)).round() / 1000.0),
            _ => None,
        };
        if let Some(start) = started {
            let end = start + entry.time_ms.max(0.0);
            previous_end = Some(previous_end.map_or(end, |p| p.max(end)));
        }
        if !filter.keeps(&entry.url) {
            conversion.filtered += 1;
            continue;
        }
        if let Some(reason) = entry.skip_reason() {
            conversion.skipped.push(Skipped {
                entry: index,
                reason,
            });
            continue;
        }
        let mut task = entry.task(&mut conversion.warnings);
        if filter.keep_think_time
            && !conversion.tasks.is_empty()
            && let Some(wait) = wait.filter(|w| *w > 0.0)
        {
            task.insert("wait".into(), json!(wait));
        }
        conversion.tasks.push(Value::Object(task));
    }
    Ok(conversion)
}

fn field(entry: Option<usize>, path: impl Into<String>, message: impl Into<String>) -> HarError {
    HarError::Field {
        entry,
        field: path.into(),
        message: message.into(),
    }
}

/// The parts of one entry the conversion uses.
struct Entry<'a> {
    index: usize,
    method: String,
    url: String,
    headers: Vec<(&'a str, &'a str)>,
    body: Option<Body<'a>>,
    status: i64,
    from_cache: Option<String>,
    started_ms: Option<f64>,
    time_ms: f64,
}

enum Body<'a> {
    Json(Value),
    Form(Vec<(&'a str, &'a str)>),
    Text(&'a str),
}

impl<'a> Entry<'a> {
    fn parse(index: usize, value: &'a Value) -> Result<Self, HarError> {
        let at = |rest: &str| format!("log.entries[{index}]{rest}");
        let fail = |rest: &str, message: &str| field(Some(index), at(rest), message);
        let entry = value
            .as_object()
            .ok_or_else(|| fail("", "expected an object"))?;
        let request = entry
            .get("request")
            .and_then(Value::as_object)
            .ok_or_else(|| fail(".request", "expected an object"))?;
        let method = str_field(request, "method")
            .filter(|m| !m.is_empty())
            .ok_or_else(|| fail(".request.method", "expected a non-empty string"))?
            .to_ascii_lowercase();
        let url = str_field(request, "url")
            .filter(|u| !u.is_empty())
            .ok_or_else(|| fail(".request.url", "expected a non-empty string"))?
            .to_string();
        let headers = name_value_list(request.get("headers"), &|i, rest, message| {
            fail(&format!(".request.headers[{i}]{rest}"), message)
        })?;
        let body = match request.get("postData") {
            None | Some(Value::Null) => None,
            Some(Value::Object(post)) => parse_body(post, &|rest, message| {
                fail(&format!(".request.postData{rest}"), message)
            })?,
            Some(_) => return Err(fail(".request.postData", "expected an object")),
        };
        let status = match entry.get("response") {
            None | Some(Value::Null) => 0,
            Some(Value::Object(response)) => match response.get("status") {
                None | Some(Value::Null) => 0,
                Some(Value::Number(n)) => n
                    .as_i64()
                    .ok_or_else(|| fail(".response.status", "expected an integer"))?,
                Some(_) => return Err(fail(".response.status", "expected an integer")),
            },
            Some(_) => return Err(fail(".response", "expected an object")),
        };
        let from_cache = match entry.get("_fromCache") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Bool(true)) => Some("cache".into()),
            _ => None,
        };
        let started_ms = match entry.get("startedDateTime") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(timestamp::parse_millis(text).ok_or_else(|| {
                fail(
                    ".startedDateTime",
                    &format!("`{text}` is not an ISO 8601 date-time"),
                )
            })?),
            Some(_) => return Err(fail(".startedDateTime", "expected a string")),
        };
        let time_ms = match entry.get("time") {
            None | Some(Value::Null) => 0.0,
            Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
            Some(_) => return Err(fail(".time", "expected a number of milliseconds")),
        };
        Ok(Self {
            index,
            method,
            url,
            headers,
            body,
            status,
            from_cache,
            started_ms,
            time_ms,
        })
    }

    fn skip_reason(&self) -> Option<String> {
        if let Some(cache) = &self.from_cache {
            return Some(format!("served from the browser cache ({cache})"));
        }
        if self.status == 0 {
            return Some("failed or blocked in the recording (status 0)".into());
        }
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Some(format!("not an HTTP(S) URL: {}", short(&self.url)));
        }
        if !METHODS.contains(&self.method.as_str()) {
            return Some(format!(
                "method {} is not supported",
                self.method.to_ascii_uppercase()
            ));
        }
        None
    }

    fn task(&self, warnings: &mut Vec<String>) -> Map<String, Value> {
        let name = format!(
            "{} {}",
            self.method.to_ascii_uppercase(),
            path_only(&self.url)
        );
        let mut task = Map::new();
        task.insert("method".into(), json!(self.method));
        task.insert("request_url".into(), json!(self.url));
        task.insert("name".into(), json!(name));
        let mut headers = Map::new();
        for (header, value) in &self.headers {
            let lower = header.trim().to_ascii_lowercase();
            if lower.is_empty() || lower.starts_with(':') || DROPPED_HEADERS.contains(&&*lower) {
                continue;
            }
            if SENSITIVE_HEADERS.contains(&&*lower) {
                warnings.push(format!(
                    "entry {} ({name}): header `{}` copied from the recording; it usually \
                     expires: replace its value with a variable, e.g. ${{var.{lower}}}",
                    self.index,
                    header.trim()
                ));
            }
            headers.insert(header.trim().to_string(), json!(value));
        }
        if !headers.is_empty() {
            task.insert("headers".into(), Value::Object(headers));
        }
        match &self.body {
            Some(Body::Json(value)) => {
                task.insert("json".into(), value.clone());
            }
            Some(Body::Form(params)) => {
                let form: Map<String, Value> = params
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), json!(v)))
                    .collect();
                task.insert("data".into(), Value::Object(form));
            }
            Some(Body::Text(text)) => {
                task.insert("data".into(), json!(text));
            }
            None => {}
        }
        if (100..=599).contains(&self.status) {
            task.insert(
                "assertions".into(),
                json!([{"type": "status_code", "value": self.status}]),
            );
            // The browser recorded each hop of a redirect as its own entry.
            if (300..400).contains(&self.status) {
                task.insert("allow_redirects".into(), json!(false));
            }
        }
        task
    }
}

fn str_field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    object.get(name).and_then(Value::as_str)
}

type FieldError<'f> = &'f dyn Fn(usize, &str, &str) -> HarError;

/// A HAR `[{"name": ..., "value": ...}]` list (headers, form params).
fn name_value_list<'a>(
    value: Option<&'a Value>,
    fail: FieldError<'_>,
) -> Result<Vec<(&'a str, &'a str)>, HarError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(fail(
                0,
                "",
                "expected a list of {\"name\", \"value\"} objects",
            ));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let object = item
                .as_object()
                .ok_or_else(|| fail(i, "", "expected an object {\"name\", \"value\"}"))?;
            let name =
                str_field(object, "name").ok_or_else(|| fail(i, ".name", "expected a string"))?;
            let value = match object.get("value") {
                None | Some(Value::Null) => "",
                Some(Value::String(s)) => s,
                Some(_) => return Err(fail(i, ".value", "expected a string")),
            };
            Ok((name, value))
        })
        .collect()
}

fn parse_body<'a>(
    post: &'a Map<String, Value>,
    fail: &dyn Fn(&str, &str) -> HarError,
) -> Result<Option<Body<'a>>, HarError> {
    let mime = match post.get("mimeType") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.to_ascii_lowercase(),
        Some(_) => return Err(fail(".mimeType", "expected a string")),
    };
    let text = match post.get("text") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()).filter(|s| !s.is_empty()),
        Some(_) => return Err(fail(".text", "expected a string")),
    };
    let params = name_value_list(post.get("params"), &|i, rest, message| {
        fail(&format!(".params[{i}]{rest}"), message)
    })?;
    if mime.contains("application/json")
        && let Some(text) = text
    {
        return Ok(Some(match serde_json::from_str(text) {
            Ok(value) => Body::Json(value),
            Err(_) => Body::Text(text),
        }));
    }
    let params: Vec<_> = params.into_iter().filter(|(k, _)| !k.is_empty()).collect();
    if !params.is_empty() {
        return Ok(Some(Body::Form(params)));
    }
    Ok(text.map(Body::Text))
}

/// `https://host/a/b?q=1` → `/a/b?q=1` (LoadDensity's task name).
fn path_only(url: &str) -> &str {
    let Some((_, rest)) = url.split_once("://") else {
        return url;
    };
    match rest.find('/') {
        Some(i) => &rest[i..],
        None => "/",
    }
}

fn short(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests;
