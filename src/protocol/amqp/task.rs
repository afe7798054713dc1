//! The `amqp_user` task schema (LoadDensity 0.0.79's fields): `method` (`connect`,
//! `declare_queue`, `publish`, `consume`, `close`), `url`, `queue`, `durable`,
//! `exclusive`, `auto_delete`, `exchange`, `routing_key`, `body`, `auto_ack`,
//! `max_messages`, `name`, and our `timeout`; parsed strictly. The broker is the
//! step's `url`, else LD_start_test's `host` (or `connection.url`), else
//! `amqp://127.0.0.1:5672/%2F`.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::event::intern_endpoint;
use crate::protocol::fields::{
    host_or_default, report_name, small_uint, step_method, text_template,
};
use crate::protocol::{ParseContext, ParsedSpec};
use crate::redact::redact_url_credentials;
use crate::scenario::Template;
use crate::task::{TaskError, err, parse_bool, parse_timeout};

/// The fields an `amqp_user` task reads.
pub const FIELDS: &[&str] = &[
    "method",
    "url",
    "queue",
    "durable",
    "exclusive",
    "auto_delete",
    "exchange",
    "routing_key",
    "body",
    "auto_ack",
    "max_messages",
    "name",
    "timeout",
];

/// The methods, as written in scripts.
pub const METHODS: &[&str] = &["connect", "declare_queue", "publish", "consume", "close"];

/// The broker used when neither the step nor LD_start_test names one (LoadDensity's
/// default).
pub const DEFAULT_URL: &str = "amqp://127.0.0.1:5672/%2F";

/// How long connecting, and each broker operation, may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most messages one `consume` step may take.
pub const MAX_MESSAGES: u64 = 1_000_000;

/// What an AMQP step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmqpMethod {
    /// Opens a connection and a channel (closing the user's previous ones).
    Connect,
    /// `queue.declare`, timed to its `declare-ok`.
    DeclareQueue,
    /// `basic.publish` of `body`, timed to the write (no publisher confirms, as
    /// LoadDensity's pika `BlockingConnection`).
    Publish,
    /// Up to `max_messages` `basic.get`s, stopping at an empty queue.
    Consume,
    /// Closes the connection (nothing to do when none is open).
    Close,
}

/// One AMQP step of a scenario.
#[derive(Debug, Clone)]
pub struct AmqpTask {
    pub(super) method: AmqpMethod,
    /// The broker's URL (`amqp://` or `amqps://`), for `connect`.
    pub(super) url: Template,
    pub(super) queue: Option<Template>,
    pub(super) durable: bool,
    pub(super) exclusive: bool,
    pub(super) auto_delete: bool,
    pub(super) exchange: Option<Template>,
    pub(super) routing_key: Option<Template>,
    pub(super) body: Option<Template>,
    pub(super) auto_ack: bool,
    pub(super) max_messages: u64,
    /// A templated `name`, rendered per request.
    pub(super) name: Option<Template>,
    pub(super) timeout: Duration,
}

impl AmqpTask {
    /// The CSV sources this task reads.
    pub(crate) fn csv_sources(&self, into: &mut Vec<usize>) {
        let templates = [
            Some(&self.url),
            self.queue.as_ref(),
            self.exchange.as_ref(),
            self.routing_key.as_ref(),
            self.body.as_ref(),
            self.name.as_ref(),
        ];
        Template::csv_sources_of(templates, into);
    }
}

/// Parses the AMQP fields of one task object. `method_key` is the method given by
/// a legacy map's key.
pub(crate) fn parse(
    object: &Map<String, Value>,
    method_key: Option<&str>,
    path: &str,
    ctx: &ParseContext<'_>,
) -> Result<ParsedSpec<AmqpTask>, TaskError> {
    let method_text = step_method(object, method_key, path, METHODS)?;
    let method = match method_text.as_str() {
        "connect" => AmqpMethod::Connect,
        "declare_queue" => AmqpMethod::DeclareQueue,
        "publish" => AmqpMethod::Publish,
        "consume" => AmqpMethod::Consume,
        _ => AmqpMethod::Close,
    };
    let csv = ctx.csv;
    let url = match text_template(object, "url", path, csv)? {
        Some(url) => {
            if let Some(text) = url.static_text() {
                check_url(&text).map_err(|e| err(format!("{path}.url"), e))?;
            }
            url
        }
        None => {
            let default = host_or_default(ctx.host_text, DEFAULT_URL, check_url)?;
            Template::parse(default, csv).map_err(|e| err(format!("{path}.url"), e))?
        }
    };
    let (name_text, name) = report_name(object, path, csv, &method_text)?;
    Ok(ParsedSpec {
        endpoint: intern_endpoint("AMQP", &name_text),
        spec: AmqpTask {
            method,
            url,
            queue: text_template(object, "queue", path, csv)?,
            durable: parse_bool(object, "durable", path, false)?,
            exclusive: parse_bool(object, "exclusive", path, false)?,
            auto_delete: parse_bool(object, "auto_delete", path, false)?,
            exchange: text_template(object, "exchange", path, csv)?,
            routing_key: text_template(object, "routing_key", path, csv)?,
            body: text_template(object, "body", path, csv)?,
            auto_ack: parse_bool(object, "auto_ack", path, true)?,
            max_messages: small_uint(object, "max_messages", path, 1, MAX_MESSAGES)?,
            name,
            timeout: parse_timeout(object, path, DEFAULT_TIMEOUT)?,
        },
    })
}

/// Checks that `text` is an AMQP URL (its password masked in the error).
pub(super) fn check_url(text: &str) -> Result<(), String> {
    let shown = redact_url_credentials(text);
    let parsed = url::Url::parse(text).map_err(|e| format!("`{shown}` is not a URL: {e}"))?;
    match parsed.scheme() {
        "amqp" | "amqps" => {}
        other => {
            return Err(format!(
                "scheme `{other}` of `{shown}` is not AMQP; expected amqp://user:password@host:port/vhost or amqps:// for TLS"
            ));
        }
    }
    text.parse::<lapin::uri::AMQPUri>()
        .map(|_| ())
        .map_err(|e| format!("`{shown}`: {e}"))
}

/// The broker as shown in messages: `scheme://host:port/vhost`, never the
/// credentials.
pub(super) fn label(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(url) => {
            let host = url.host_str().unwrap_or("");
            match url.port() {
                Some(port) => format!("{}://{host}:{port}{}", url.scheme(), url.path()),
                None => format!("{}://{host}{}", url.scheme(), url.path()),
            }
        }
        Err(_) => redact_url_credentials(text).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_shown_without_credentials() {
        assert!(check_url("amqp://guest:guest@127.0.0.1:5672/%2F").is_ok());
        assert!(check_url("amqps://h/").is_ok());
        let refused = check_url("http://u:hunter2@h/").expect_err("not amqp");
        assert!(
            refused.contains("not AMQP") && !refused.contains("hunter2"),
            "{refused}"
        );
        assert_eq!(
            label("amqp://guest:secret@127.0.0.1:5672/%2F"),
            "amqp://127.0.0.1:5672/%2F"
        );
    }
}
