//! The `mqtt_user` task schema (LoadDensity's fields): `method`, `broker` /
//! `host`, `topic`, `payload` (text or `hex:...`), `qos`, `retain`, `username`,
//! `password`, `client_id`, `keepalive`, `timeout`, `name`, and our `timestamp`.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::event::intern_endpoint;
use crate::protocol::fields::{
    host_or_default, report_name, small_uint, step_method, text_template,
};
use crate::protocol::{ParseContext, ParsedSpec};
use crate::scenario::Template;
use crate::task::{TaskError, err, parse_bool, parse_timeout};

/// The fields an `mqtt_user` task reads.
pub const FIELDS: &[&str] = &[
    "method",
    "broker",
    "host",
    "topic",
    "payload",
    "qos",
    "retain",
    "username",
    "password",
    "client_id",
    "keepalive",
    "timeout",
    "name",
    "timestamp",
];

/// The steps an `mqtt_user` task may take (`publish` when it names none).
pub const METHODS: &[&str] = &["connect", "publish", "subscribe", "disconnect"];

/// The broker used when a task names none (LoadDensity's default).
pub const DEFAULT_BROKER: &str = "127.0.0.1:1883";

/// How long a publish waits for its acknowledgement by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What an MQTT task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttMethod {
    /// Connect (when not connected yet), timed to the CONNACK.
    Connect,
    /// Publish, timed to the PUBACK (qos 1), PUBCOMP (qos 2) or the write (qos 0).
    Publish,
    /// Subscribe, timed to the SUBACK.
    Subscribe,
    /// Disconnect.
    Disconnect,
}

/// One MQTT step of a scenario.
#[derive(Debug, Clone)]
pub struct MqttTask {
    pub(super) method: MqttMethod,
    pub(super) broker: Template,
    pub(super) topic: Option<Template>,
    pub(super) payload: Option<Template>,
    pub(super) qos: rumqttc::QoS,
    pub(super) retain: bool,
    pub(super) username: Option<Template>,
    pub(super) password: Option<Template>,
    pub(super) client_id: Option<Template>,
    pub(super) keepalive: Duration,
    pub(super) timeout: Duration,
    pub(super) name: Option<Template>,
    /// Prefix the payload with our send time, for end-to-end latency on receipt.
    pub(super) timestamp: bool,
}

impl MqttTask {
    /// The CSV sources this task reads.
    pub(crate) fn csv_sources(&self, into: &mut Vec<usize>) {
        let templates = [
            Some(&self.broker),
            self.topic.as_ref(),
            self.payload.as_ref(),
            self.username.as_ref(),
            self.password.as_ref(),
            self.client_id.as_ref(),
            self.name.as_ref(),
        ];
        Template::csv_sources_of(templates, into);
    }
}

/// Parses the MQTT fields of one task object.
pub(crate) fn parse(
    object: &Map<String, Value>,
    method_key: Option<&str>,
    path: &str,
    ctx: &ParseContext<'_>,
) -> Result<ParsedSpec<MqttTask>, TaskError> {
    let method_text = step_method(object, method_key.or(Some("publish")), path, METHODS)?;
    let method = match method_text.as_str() {
        "connect" => MqttMethod::Connect,
        "publish" => MqttMethod::Publish,
        "subscribe" => MqttMethod::Subscribe,
        _ => MqttMethod::Disconnect,
    };
    let csv = ctx.csv;
    let broker = match (
        text_template(object, "broker", path, csv)?,
        text_template(object, "host", path, csv)?,
    ) {
        (Some(broker), _) | (None, Some(broker)) => broker,
        (None, None) => {
            // LD_start_test's `host` is the broker of steps that name none (as in
            // LoadDensity): `host:port`, a bare host (port 1883), or mqtt:// / tcp://.
            let default = host_or_default(ctx.host_text, DEFAULT_BROKER, |host| {
                let scheme = host.split_once("://").map(|(scheme, _)| scheme);
                if scheme.is_some_and(|s| s != "mqtt" && s != "tcp") {
                    return Err(format!(
                        "`{host}` is not an MQTT broker; expected host:port or mqtt://host:port (or give the step a `broker`)"
                    ));
                }
                parse_broker(host).map(|_| ())
            })?;
            Template::parse(default, csv).map_err(|e| err(format!("{path}.broker"), e))?
        }
    };
    if let Some(text) = broker.static_text() {
        parse_broker(&text).map_err(|e| err(format!("{path}.broker"), e))?;
    }
    let topic = text_template(object, "topic", path, csv)?;
    if matches!(method, MqttMethod::Publish | MqttMethod::Subscribe) && topic.is_none() {
        return Err(err(
            format!("{path}.topic"),
            format!("missing field; `{method_text}` needs a topic"),
        ));
    }
    let payload = text_template(object, "payload", path, csv)?;
    if let Some(text) = payload.as_ref().and_then(Template::static_text) {
        payload_bytes(&text).map_err(|e| err(format!("{path}.payload"), e))?;
    }
    let qos = match small_uint(object, "qos", path, 0, 2)? {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    };
    let keepalive = Duration::from_secs(small_uint(object, "keepalive", path, 60, 65535)?.max(5));
    let topic_text = object.get("topic").and_then(Value::as_str).unwrap_or("");
    let (name_text, name) = report_name(object, path, csv, &format!("{method_text}:{topic_text}"))?;
    Ok(ParsedSpec {
        endpoint: intern_endpoint("MQTT", &name_text),
        spec: MqttTask {
            method,
            broker,
            topic,
            payload,
            qos,
            retain: parse_bool(object, "retain", path, false)?,
            username: text_template(object, "username", path, csv)?,
            password: text_template(object, "password", path, csv)?,
            client_id: text_template(object, "client_id", path, csv)?,
            keepalive,
            timeout: parse_timeout(object, path, DEFAULT_TIMEOUT)?,
            name,
            timestamp: parse_bool(object, "timestamp", path, false)?,
        },
    })
}

/// `host:port` (or `mqtt://host:port`) to host and port.
pub(super) fn parse_broker(text: &str) -> Result<(String, u16), String> {
    let bare = text
        .strip_prefix("mqtt://")
        .or_else(|| text.strip_prefix("tcp://"))
        .unwrap_or(text)
        .trim_end_matches('/');
    let (host, port) = match bare.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !port.contains(']') => (host, port),
        _ => (bare, "1883"),
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("`{text}` is not host:port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("`{text}` is not host:port"));
    }
    Ok((host.to_string(), port))
}

/// A payload's bytes: text, or `hex:` followed by hex digits.
pub(super) fn payload_bytes(text: &str) -> Result<Vec<u8>, String> {
    let Some(hex) = text.strip_prefix("hex:") else {
        return Ok(text.as_bytes().to_vec());
    };
    let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err("`hex:` payload has an odd number of digits".to_string());
    }
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).unwrap_or("");
            u8::from_str_radix(text, 16).map_err(|_| format!("`{text}` is not a hex byte"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brokers_and_payloads() {
        assert_eq!(
            parse_broker("127.0.0.1:1884"),
            Ok(("127.0.0.1".into(), 1884))
        );
        assert_eq!(parse_broker("mqtt://h"), Ok(("h".into(), 1883)));
        assert!(parse_broker("h:x").is_err());
        assert_eq!(payload_bytes("hex:00ff10"), Ok(vec![0, 255, 16]));
        assert_eq!(payload_bytes("abc"), Ok(b"abc".to_vec()));
        assert!(payload_bytes("hex:abc").is_err());
    }
}
