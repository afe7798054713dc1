//! Async HTTP with optional HTTP/2 (`async_http_user`), LoadDensity's httpx-backed
//! user: `http_user`'s task schema and hyper client (one keep-alive connection per
//! origin and user, a cookie jar), reported with request type `HTTPX`.
//!
//! As in LoadDensity: LD_start_test's `http2: true` offers HTTP/2 (by ALPN over TLS,
//! as httpx does; plain `http://` stays HTTP/1.1), and without it only HTTP/1.1 is
//! offered; `follow_redirects` is httpx's name for `allow_redirects`. Beyond
//! LoadDensity's template: `expect_status` (the status the response must have) and
//! `ca_file` (a PEM bundle trusted besides the system's roots), as `http3_user` has.
//! Unlike httpx without `raise_for_status`, a status of 400 or more fails, as it does
//! for `http_user`, unless `expect_status` or `assertions` decide.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::event::intern_endpoint;
use crate::protocol::http::{Http, HttpTask, Session, TlsConnectors, read_ca_file};
use crate::protocol::{ParseContext, ParsedSpec, Protocol, StepContext, StepOutcome};
use crate::task::{Task, TaskError, err, parse_bool};

/// The fields `async_http_user` reads besides `http_user`'s.
const OWN_FIELDS: &[&str] = &["follow_redirects", "expect_status", "ca_file", "http2"];

/// The `async_http_user` task fields: `http_user`'s and [`OWN_FIELDS`].
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
    "follow_redirects",
    "verify",
    "auth",
    "cookies",
    "files",
    "assertions",
    "extract",
    "expect_status",
    "ca_file",
    "http2",
];

/// Async HTTP, LoadDensity's `async_http_user`.
#[derive(Debug, Clone)]
pub struct AsyncHttp;

/// Which TLS connectors a task needs: its `http2` and its `ca_file`.
type TlsKey = (bool, Option<PathBuf>);

/// The `async_http_user` part of a task: an `http_user` task reported as `HTTPX`,
/// and the TLS connectors its `http2` and `ca_file` call for.
#[derive(Debug)]
pub struct AsyncHttpTask {
    /// The request as `http_user` sends it.
    http: Task<HttpTask>,
    key: TlsKey,
    tls: Arc<TlsConnectors>,
}

/// One user's client: an `http_user` session for each set of TLS connectors its
/// tasks need (one, unless tasks differ in `http2` or `ca_file`).
pub struct AsyncHttpClient {
    sessions: Vec<(TlsKey, Session)>,
}

impl Protocol for AsyncHttp {
    type Spec = AsyncHttpTask;
    type Shared = ();
    type Client = AsyncHttpClient;

    const FIELDS: &'static [&'static str] = FIELDS;

    fn parse(
        object: &Map<String, Value>,
        method_key: Option<&str>,
        path: &str,
        ctx: &ParseContext<'_>,
    ) -> Result<ParsedSpec<AsyncHttpTask>, TaskError> {
        let mut http = object.clone();
        for key in OWN_FIELDS {
            http.remove(*key);
        }
        if let Some(follow) = object.get("follow_redirects") {
            if object.contains_key("allow_redirects") {
                return Err(err(
                    format!("{path}.follow_redirects"),
                    "give either `follow_redirects` or `allow_redirects`, not both",
                ));
            }
            http.insert("allow_redirects".into(), follow.clone());
        }
        if let Some(status) = expect_status(object, path)? {
            // An assertion on the status: it alone decides success (with any others).
            let assertion = json!({"type": "status_code", "value": status});
            match http
                .entry("assertions")
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                Value::Array(list) => list.push(assertion),
                other => {
                    return Err(err(
                        format!("{path}.assertions"),
                        format!("expected a list of assertions, got {other}"),
                    ));
                }
            }
        }
        let parsed = <Http as Protocol>::parse(&http, method_key, path, ctx)?;
        let endpoint = intern_endpoint("HTTPX", &parsed.endpoint.name);
        let http2 = parse_bool(object, "http2", path, false)?;
        let ca_file = match object.get("ca_file") {
            None | Some(Value::Null) => None,
            Some(Value::String(file)) => Some(PathBuf::from(file)),
            Some(other) => {
                return Err(err(
                    format!("{path}.ca_file"),
                    format!("expected the path of a PEM file, got {other}"),
                ));
            }
        };
        let roots = match &ca_file {
            Some(file) => read_ca_file(file).map_err(|m| err(format!("{path}.ca_file"), m))?,
            None => Vec::new(),
        };
        Ok(ParsedSpec {
            endpoint: endpoint.clone(),
            spec: AsyncHttpTask {
                http: Task {
                    endpoint,
                    spec: parsed.spec,
                    weight: 1,
                    run_if: None,
                    skip_if: None,
                    wait: None,
                    retry: None,
                    throttle: None,
                    think_time: None,
                },
                key: (http2, ca_file),
                tls: Arc::new(TlsConnectors::with_options(http2, roots)),
            },
        })
    }

    fn csv_sources(spec: &AsyncHttpTask, into: &mut Vec<usize>) {
        <Http as Protocol>::csv_sources(&spec.http.spec, into);
    }

    fn client(_shared: &Arc<()>) -> AsyncHttpClient {
        AsyncHttpClient {
            sessions: Vec::new(),
        }
    }

    async fn step(
        client: &mut AsyncHttpClient,
        task: &Task<AsyncHttpTask>,
        ctx: &mut StepContext<'_>,
    ) -> StepOutcome {
        let spec = &task.spec;
        let index = match client.sessions.iter().position(|(key, _)| *key == spec.key) {
            Some(index) => index,
            None => {
                let session = Session::new(spec.tls.clone());
                client.sessions.push((spec.key.clone(), session));
                client.sessions.len() - 1
            }
        };
        let session = &mut client.sessions[index].1;
        <Http as Protocol>::step(session, &spec.http, ctx).await
    }
}

/// `expect_status`: an HTTP status (100 to 599), as a number or its digits.
fn expect_status(object: &Map<String, Value>, path: &str) -> Result<Option<u16>, TaskError> {
    let status = match object.get("expect_status") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    };
    match status.and_then(|s| u16::try_from(s).ok()) {
        Some(s) if (100..=599).contains(&s) => Ok(Some(s)),
        _ => Err(err(
            format!("{path}.expect_status"),
            format!(
                "expected an HTTP status from 100 to 599, got {}",
                object["expect_status"]
            ),
        )),
    }
}
