//! The `nats_user` task schema (LoadDensity 0.0.79's fields): `method` (`connect`,
//! `publish`, `subscribe`, `request`, `close`), `servers`, `url`, `subject`,
//! `payload`, `max_messages`, `timeout` and `name`; parsed strictly. The servers are
//! the step's `servers`, else its `url`, else LD_start_test's `host` (or
//! `connection.url`), else `nats://127.0.0.1:4222`.

use std::time::Duration;

use async_nats::Subject;
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::event::intern_endpoint;
use crate::protocol::fields::{report_name, small_uint, step_method, text_template};
use crate::protocol::{ParseContext, ParsedSpec};
use crate::redact::redact_url_credentials;
use crate::scenario::Template;
use crate::task::{TaskError, err, parse_timeout};

/// The fields a `nats_user` task reads.
pub const FIELDS: &[&str] = &[
    "method",
    "servers",
    "url",
    "subject",
    "payload",
    "max_messages",
    "timeout",
    "name",
];

/// The methods, as written in scripts.
pub const METHODS: &[&str] = &["connect", "publish", "subscribe", "request", "close"];

/// The server used when neither the step nor LD_start_test names one (LoadDensity's
/// default).
pub const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

/// How long `subscribe` waits for each message and `request` for its reply by
/// default (LoadDensity's `timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long connecting, publishing and closing may take when the step gives no
/// `timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most messages one `subscribe` step may wait for.
pub const MAX_MESSAGES: u64 = 1_000_000;

/// What a NATS step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatsMethod {
    /// Opens a connection to the first server that answers (closing the user's
    /// previous one).
    Connect,
    /// Publishes `payload` to `subject`, timed to its write to the socket.
    Publish,
    /// Subscribes to `subject`, waits for `max_messages` messages (each within
    /// `timeout`), and unsubscribes.
    Subscribe,
    /// Sends `payload` to `subject` and waits `timeout` for the reply.
    Request,
    /// Flushes and closes the connection (nothing to do when none is open).
    Close,
}

/// A server a `connect` step tries, and the field that names it.
#[derive(Debug, Clone)]
pub(super) struct Server {
    /// Its URL (`nats://host:port`), checked when parsed unless it holds placeholders.
    pub(super) url: Template,
    /// Where it was given (`tasks[0].servers[1]`, `host`), for errors.
    pub(super) field: String,
}

/// One NATS step of a scenario.
#[derive(Debug, Clone)]
pub struct NatsTask {
    pub(super) method: NatsMethod,
    /// The servers to try, in order (`nats://` or `tls://`), for `connect`.
    pub(super) servers: Vec<Server>,
    pub(super) subject: Option<Template>,
    pub(super) payload: Option<Template>,
    /// `subject` when it has no placeholder: built once, so that a step neither
    /// renders nor copies it.
    pub(super) fixed_subject: Option<Subject>,
    /// `payload` when it has no placeholder, likewise.
    pub(super) fixed_payload: Option<Bytes>,
    pub(super) max_messages: u64,
    /// The step's `timeout`, when given.
    pub(super) timeout: Option<Duration>,
    /// A templated `name`, rendered per request.
    pub(super) name: Option<Template>,
}

impl NatsTask {
    /// The CSV sources this task reads.
    pub(crate) fn csv_sources(&self, into: &mut Vec<usize>) {
        let templates = [
            self.subject.as_ref(),
            self.payload.as_ref(),
            self.name.as_ref(),
        ];
        Template::csv_sources_of(
            templates
                .into_iter()
                .chain(self.servers.iter().map(|s| Some(&s.url))),
            into,
        );
    }

    /// How long `subscribe` waits for each message and `request` for its reply.
    pub(super) fn wait(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    /// How long connecting, publishing and closing may take.
    pub(super) fn io_timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT)
    }
}

/// Parses the NATS fields of one task object. `method_key` is the method given by
/// a legacy map's key.
pub(crate) fn parse(
    object: &Map<String, Value>,
    method_key: Option<&str>,
    path: &str,
    ctx: &ParseContext<'_>,
) -> Result<ParsedSpec<NatsTask>, TaskError> {
    let method_text = step_method(object, method_key, path, METHODS)?;
    let method = match method_text.as_str() {
        "connect" => NatsMethod::Connect,
        "publish" => NatsMethod::Publish,
        "subscribe" => NatsMethod::Subscribe,
        "request" => NatsMethod::Request,
        _ => NatsMethod::Close,
    };
    let csv = ctx.csv;
    let server = |text: &str, field: &str| -> Result<Server, TaskError> {
        let url = Template::parse(text, csv).map_err(|e| err(field, e))?;
        if let Some(text) = url.static_text() {
            check_server(&text).map_err(|e| err(field, e))?;
        }
        Ok(Server {
            url,
            field: field.to_string(),
        })
    };
    let servers = match object.get("servers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(one)) => vec![server(one, &format!("{path}.servers"))?],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let field = format!("{path}.servers[{i}]");
                match item {
                    Value::String(text) => server(text, &field),
                    other => Err(err(field, format!("expected a server URL, got {other}"))),
                }
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(err(
                format!("{path}.servers"),
                format!("expected a list of server URLs, got {other}"),
            ));
        }
    };
    let servers = if !servers.is_empty() {
        servers
    } else {
        match object.get("url") {
            None | Some(Value::Null) => match ctx.host_text {
                Some(host) => vec![server(host, "host")?],
                None => vec![server(DEFAULT_URL, &format!("{path}.url"))?],
            },
            Some(Value::String(url)) => vec![server(url, &format!("{path}.url"))?],
            Some(other) => {
                return Err(err(
                    format!("{path}.url"),
                    format!("expected a server URL, got {other}"),
                ));
            }
        }
    };
    let subject = text_template(object, "subject", path, csv)?;
    if matches!(
        method,
        NatsMethod::Publish | NatsMethod::Subscribe | NatsMethod::Request
    ) && subject.is_none()
    {
        return Err(err(
            format!("{path}.subject"),
            format!("missing field; `{method_text}` needs a subject"),
        ));
    }
    let timeout = match object.get("timeout") {
        None | Some(Value::Null) => None,
        Some(_) => Some(parse_timeout(object, path, DEFAULT_TIMEOUT)?),
    };
    let (name_text, name) = report_name(object, path, csv, &method_text)?;
    let payload = text_template(object, "payload", path, csv)?;
    Ok(ParsedSpec {
        endpoint: intern_endpoint("NATS", &name_text),
        spec: NatsTask {
            method,
            servers,
            fixed_subject: subject
                .as_ref()
                .and_then(Template::static_text)
                .map(Subject::from),
            fixed_payload: payload
                .as_ref()
                .and_then(Template::static_text)
                .map(Bytes::from),
            subject,
            payload,
            max_messages: small_uint(object, "max_messages", path, 1, MAX_MESSAGES)?,
            timeout,
            name,
        },
    })
}

/// Checks that `text` is a NATS server address (`nats://host:port`, `tls://...`
/// or `host:port`), its password masked in the error.
pub(super) fn check_server(text: &str) -> Result<async_nats::ServerAddr, String> {
    let shown = redact_url_credentials(text);
    let not_nats =
        || format!("`{shown}` is not a NATS server; expected nats://host:port or tls://host:port");
    if let Some((scheme, _)) = text.split_once("://")
        && !matches!(scheme, "nats" | "tls")
    {
        return Err(not_nats());
    }
    let addr: async_nats::ServerAddr = text
        .parse()
        .map_err(|e: std::io::Error| format!("`{shown}`: {e}"))?;
    match addr.scheme() {
        "nats" | "tls" => Ok(addr),
        _ => Err(not_nats()),
    }
}

/// A server as shown in messages: `scheme://host:port`, never the credentials.
pub(super) fn label(addr: &async_nats::ServerAddr) -> String {
    format!("{}://{}:{}", addr.scheme(), addr.host(), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_checked_and_shown_without_credentials() {
        let addr = check_server("nats://u:hunter2@127.0.0.1:4333").expect("nats");
        assert_eq!(label(&addr), "nats://127.0.0.1:4333");
        assert_eq!(
            label(&check_server("127.0.0.1").expect("bare")),
            "nats://127.0.0.1:4222"
        );
        let refused = check_server("http://u:hunter2@h/").expect_err("not nats");
        assert!(!refused.contains("hunter2"), "{refused}");
        assert!(check_server("ws://h:80").is_err());
    }
}
