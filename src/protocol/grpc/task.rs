//! The `grpc_user` task schema: `target` / `host`, `proto` (with `includes`),
//! `method` (`package.Service/Method`), `payload` (JSON, placeholders in its
//! strings), `metadata` (pairs or an object), `timeout` and `name`, parsed
//! strictly at start; or `reflection: true` instead of `proto`. LoadDensity's
//! Python stub fields (`stub_path`, `request_path`) are refused with an error
//! saying what to write instead.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use prost_reflect::MessageDescriptor;
use serde_json::{Map, Value};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::transport::{ClientTlsConfig, Endpoint, Identity};

use super::codec::DynamicCodec;
use super::{reflection, schema};
use crate::event::intern_endpoint;
use crate::protocol::client_cert::{self, ClientCert};
use crate::protocol::fields::report_name;
use crate::protocol::http::tls::accept_any_certificate;
use crate::protocol::{ParseContext, ParsedSpec};
use crate::scenario::{CsvLookup, Template, TemplateValue};
use crate::task::{TaskError, err, parse_bool, parse_timeout};

/// The fields a `grpc_user` task reads (`stub_path` and `request_path` only to
/// explain what to write instead).
pub const FIELDS: &[&str] = &[
    "target",
    "host",
    "proto",
    "includes",
    "reflection",
    "method",
    "payload",
    "metadata",
    "timeout",
    "name",
    "verify",
    "cert",
    "client_cert",
    "rpc",
    "stub_path",
    "request_path",
];

/// The server used when neither the task nor LD_start_test names one
/// (LoadDensity's default).
pub const DEFAULT_TARGET: &str = "localhost:50051";

/// How long a call (and connecting) may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// One gRPC call of a scenario.
#[derive(Debug, Clone)]
pub struct GrpcTask {
    /// The server (each user opens its own channel to it).
    pub(super) target: Arc<Target>,
    /// `/package.Service/Method`.
    pub(super) path: PathAndQuery,
    /// `package.Service/Method`, for errors.
    pub(super) method: String,
    /// Decodes replies as the method's output type.
    pub(super) codec: DynamicCodec,
    /// How the method streams (a streamed reply is timed to its last message).
    pub(super) kind: RpcKind,
    /// The request message (unary and server-streaming methods).
    pub(super) payload: Payload,
    /// The request messages, in order (client-streaming and bidirectional methods).
    pub(super) messages: Vec<Payload>,
    pub(super) metadata: Vec<(AsciiMetadataKey, MetadataValue)>,
    pub(super) timeout: Duration,
    /// A templated `name`, rendered per request.
    pub(super) name: Option<Template>,
}

impl GrpcTask {
    /// The CSV sources this task reads.
    pub(crate) fn csv_sources(&self, into: &mut Vec<usize>) {
        for payload in std::iter::once(&self.payload).chain(&self.messages) {
            if let Payload::Template { template, .. } = payload {
                template.csv_sources(into);
            }
        }
        for (_, value) in &self.metadata {
            if let MetadataValue::Template(template) = value {
                template.csv_sources(into);
            }
        }
        if let Some(name) = &self.name {
            name.csv_sources(into);
        }
    }
}

/// How a method streams, as LoadDensity's `rpc` field names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcKind {
    /// One request, one reply (`unary`).
    Unary,
    /// One request, a stream of replies (`server_stream`).
    ServerStream,
    /// A stream of requests, one reply (`client_stream`).
    ClientStream,
    /// Streams both ways (`bidi`; LoadDensity also takes `bidirectional`, `bidi_stream`).
    Bidi,
}

impl RpcKind {
    fn of(method: &prost_reflect::MethodDescriptor) -> Self {
        match (method.is_client_streaming(), method.is_server_streaming()) {
            (false, false) => Self::Unary,
            (false, true) => Self::ServerStream,
            (true, false) => Self::ClientStream,
            (true, true) => Self::Bidi,
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_lowercase().as_str() {
            "unary" => Self::Unary,
            "server_stream" => Self::ServerStream,
            "client_stream" => Self::ClientStream,
            "bidi" | "bidirectional" | "bidi_stream" => Self::Bidi,
            _ => return None,
        })
    }

    /// How scripts write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unary => "unary",
            Self::ServerStream => "server_stream",
            Self::ClientStream => "client_stream",
            Self::Bidi => "bidi",
        }
    }

    /// True when the client sends a stream of messages.
    pub fn client_streams(self) -> bool {
        matches!(self, Self::ClientStream | Self::Bidi)
    }
}

/// A gRPC server: where to connect, and how it is named in errors.
#[derive(Debug)]
pub(super) struct Target {
    pub(super) endpoint: Endpoint,
    /// `host:port`, or `https://host:port` for TLS.
    pub(super) label: String,
    /// False when any certificate is accepted.
    pub(super) verify: bool,
    /// The client certificate offered (its id; 0: none).
    pub(super) cert: u64,
}

impl Target {
    /// True when a channel opened for `other` serves this target too.
    pub(super) fn same_as(&self, other: &Self) -> bool {
        self.label == other.label && self.verify == other.verify && self.cert == other.cert
    }
}

/// The request message.
#[derive(Debug, Clone)]
pub(super) enum Payload {
    /// Encoded once at start (no placeholders).
    Static(Bytes),
    /// Rendered, converted and encoded per request.
    Template {
        template: TemplateValue,
        message: MessageDescriptor,
    },
}

/// A metadata value: fixed, or rendered per request.
#[derive(Debug, Clone)]
pub(super) enum MetadataValue {
    Static(AsciiMetadataValue),
    Template(Template),
}

const STUB_FORM: &str = "LoadDensity's Python stub modules cannot be loaded here; \
    give `proto` (the service's .proto file) and `method` as `package.Service/Method` instead, \
    e.g. {\"proto\": \"protos/greeter.proto\", \"method\": \"helloworld.Greeter/SayHello\", \
    \"payload\": {\"name\": \"world\"}}";

/// Parses the gRPC fields of one task object.
pub(crate) fn parse(
    object: &Map<String, Value>,
    method_key: Option<&str>,
    path: &str,
    ctx: &ParseContext<'_>,
) -> Result<ParsedSpec<GrpcTask>, TaskError> {
    for key in ["stub_path", "request_path"] {
        if object.get(key).is_some_and(|v| !v.is_null()) {
            return Err(err(format!("{path}.{key}"), STUB_FORM));
        }
    }
    let reflection = parse_bool(object, "reflection", path, false)?;
    let proto = match object.get("proto") {
        Some(Value::String(p)) if !p.is_empty() => {
            if reflection {
                return Err(err(
                    format!("{path}.reflection"),
                    "give either `proto` or `reflection: true`, not both",
                ));
            }
            Some(PathBuf::from(p))
        }
        None | Some(Value::Null) if reflection => None,
        None | Some(Value::Null) => {
            return Err(err(
                format!("{path}.proto"),
                "missing field; expected the path of the service's .proto file (or `reflection: true`)",
            ));
        }
        Some(other) => {
            return Err(err(
                format!("{path}.proto"),
                format!("expected the path of a .proto file, got {other}"),
            ));
        }
    };
    let includes = parse_includes(object, path)?;
    let method_text = match object.get("method") {
        Some(Value::String(m)) => m.clone(),
        None | Some(Value::Null) => method_key.map(str::to_string).ok_or_else(|| {
            err(
                format!("{path}.method"),
                "missing field; expected `package.Service/Method`",
            )
        })?,
        Some(other) => {
            return Err(err(
                format!("{path}.method"),
                format!("expected `package.Service/Method`, got {other}"),
            ));
        }
    };
    let timeout = parse_timeout(object, path, DEFAULT_TIMEOUT)?;
    let verify = parse_bool(object, "verify", path, true)?;
    let cert = client_cert::parse(object, path)?;
    let target = parse_target(object, path, ctx, timeout, verify, cert.as_deref())?;
    let (service, _) =
        schema::split_method(&method_text).map_err(|e| err(format!("{path}.method"), e))?;
    let (pool, source) = match &proto {
        Some(proto) => (
            schema::compile(proto, &includes).map_err(|e| err(format!("{path}.proto"), e))?,
            format!("`{}`", proto.display()),
        ),
        None => (
            reflection::fetch(&target.endpoint, &target.label, service, timeout)
                .map_err(|e| err(format!("{path}.reflection"), e))?,
            format!("the reflection of {}", target.label),
        ),
    };
    let method = schema::find_method(&pool, &method_text, &source)
        .map_err(|e| err(format!("{path}.method"), e))?;
    let kind = RpcKind::of(&method);
    match object.get("rpc") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => match RpcKind::parse(text) {
            Some(given) if given == kind => {}
            Some(given) => {
                return Err(err(
                    format!("{path}.rpc"),
                    format!(
                        "`{method_text}` is a {} method, not {}",
                        kind.as_str(),
                        given.as_str()
                    ),
                ));
            }
            None => {
                return Err(err(
                    format!("{path}.rpc"),
                    format!(
                        "unknown rpc `{text}`; expected unary, server_stream, client_stream or bidi"
                    ),
                ));
            }
        },
        Some(other) => {
            return Err(err(
                format!("{path}.rpc"),
                format!("expected unary, server_stream, client_stream or bidi, got {other}"),
            ));
        }
    }
    let full_method = format!("{}/{}", method.parent_service().full_name(), method.name());
    let grpc_path = PathAndQuery::try_from(format!("/{full_method}"))
        .map_err(|e| err(format!("{path}.method"), e.to_string()))?;
    let field = format!("{path}.payload");
    let (payload, messages) = match object.get("payload") {
        // A stream: each item of a list is one message (LoadDensity's
        // `_build_request_iter`); one object is a stream of one.
        Some(Value::Array(items)) if kind.client_streams() => {
            let messages = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    parse_message(item, &format!("{field}[{i}]"), &method.input(), ctx.csv)
                })
                .collect::<Result<Vec<_>, _>>()?;
            (Payload::Static(Bytes::new()), messages)
        }
        _ if kind.client_streams() => (
            Payload::Static(Bytes::new()),
            vec![parse_payload(object, path, &method.input(), ctx.csv)?],
        ),
        _ => (
            parse_payload(object, path, &method.input(), ctx.csv)?,
            Vec::new(),
        ),
    };
    let metadata = parse_metadata(object, path, ctx.csv)?;
    let (name_text, name) = report_name(object, path, ctx.csv, &full_method)?;
    Ok(ParsedSpec {
        endpoint: intern_endpoint("GRPC", &name_text),
        spec: GrpcTask {
            target: Arc::new(target),
            path: grpc_path,
            method: full_method,
            codec: DynamicCodec::new(method.output()),
            kind,
            payload,
            messages,
            metadata,
            timeout,
            name,
        },
    })
}

fn parse_includes(object: &Map<String, Value>, path: &str) -> Result<Vec<PathBuf>, TaskError> {
    let field = format!("{path}.includes");
    match object.get("includes") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(dir)) => Ok(vec![PathBuf::from(dir)]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(dir) => Ok(PathBuf::from(dir)),
                other => Err(err(
                    &field,
                    format!("expected a directory path, got {other}"),
                )),
            })
            .collect(),
        Some(other) => Err(err(
            field,
            format!("expected a list of import directories, got {other}"),
        )),
    }
}

fn parse_payload(
    object: &Map<String, Value>,
    path: &str,
    input: &MessageDescriptor,
    csv: &dyn CsvLookup,
) -> Result<Payload, TaskError> {
    let field = format!("{path}.payload");
    let empty = Value::Object(Map::new());
    let value = match object.get("payload") {
        None | Some(Value::Null) => &empty,
        Some(value @ Value::Object(_)) => value,
        Some(other) => {
            return Err(err(
                field,
                format!(
                    "expected a JSON object (the `{}` message), got {other}",
                    input.full_name()
                ),
            ));
        }
    };
    parse_message(value, &field, input, csv)
}

/// One request message: a JSON object of the `input` type, checked and, without
/// placeholders, encoded once.
fn parse_message(
    value: &Value,
    field: &str,
    input: &MessageDescriptor,
    csv: &dyn CsvLookup,
) -> Result<Payload, TaskError> {
    if !value.is_object() {
        return Err(err(
            field,
            format!(
                "expected a JSON object (the `{}` message), got {value}",
                input.full_name()
            ),
        ));
    }
    schema::check_field_names(value, input).map_err(|e| err(field, e))?;
    let template = TemplateValue::parse(value, csv).map_err(|e| err(field, e))?;
    match template {
        TemplateValue::Static(value) => schema::encode_payload(&value, input)
            .map(Payload::Static)
            .map_err(|e| err(field, e)),
        template => Ok(Payload::Template {
            template,
            message: input.clone(),
        }),
    }
}

fn parse_metadata(
    object: &Map<String, Value>,
    path: &str,
    csv: &dyn CsvLookup,
) -> Result<Vec<(AsciiMetadataKey, MetadataValue)>, TaskError> {
    let field = format!("{path}.metadata");
    let pairs: Vec<(String, &Value)> = match object.get("metadata") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item.as_array().map(Vec::as_slice) {
                Some([Value::String(key), value]) => Ok((key.clone(), value)),
                _ => Err(err(
                    format!("{field}[{i}]"),
                    "expected a [key, value] pair of strings",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(err(
                field,
                "expected an object or a list of [key, value] pairs",
            ));
        }
    };
    pairs
        .into_iter()
        .map(|(key, value)| {
            let at = format!("{field}.{key}");
            if key.ends_with("-bin") {
                return Err(err(at, "binary metadata (`-bin` keys) is not supported"));
            }
            let parsed_key = AsciiMetadataKey::from_bytes(key.to_ascii_lowercase().as_bytes())
                .map_err(|_| err(&at, "not a valid metadata key"))?;
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return Err(err(&at, "expected a string value")),
            };
            let template = Template::parse(&text, csv).map_err(|e| err(&at, e))?;
            let value = match template.static_text() {
                // The value is never echoed: it may be a token.
                Some(text) => MetadataValue::Static(
                    AsciiMetadataValue::try_from(text.as_str())
                        .map_err(|_| err(&at, "the value is not valid ASCII metadata"))?,
                ),
                None => MetadataValue::Template(template),
            };
            Ok((parsed_key, value))
        })
        .collect()
}

fn parse_target(
    object: &Map<String, Value>,
    path: &str,
    ctx: &ParseContext<'_>,
    timeout: Duration,
    verify: bool,
    cert: Option<&ClientCert>,
) -> Result<Target, TaskError> {
    let (key, text) = match (object.get("target"), object.get("host")) {
        (Some(Value::String(t)), _) => ("target", t.clone()),
        (None | Some(Value::Null), Some(Value::String(h))) => ("host", h.clone()),
        (None | Some(Value::Null), None | Some(Value::Null)) => (
            "target",
            ctx.host_text.unwrap_or(DEFAULT_TARGET).to_string(),
        ),
        (Some(other), _) | (_, Some(other)) => {
            return Err(err(
                format!("{path}.target"),
                format!(
                    "expected `host:port`, `http://host:port` or `https://host:port`, got {other}"
                ),
            ));
        }
    };
    let target =
        open_target(&text, timeout, verify, cert).map_err(|e| err(format!("{path}.{key}"), e))?;
    if cert.is_some() && !target.label.starts_with("https://") {
        let field = if object.get("cert").is_some_and(|v| !v.is_null()) {
            "cert"
        } else {
            "client_cert"
        };
        return Err(err(
            format!("{path}.{field}"),
            format!(
                "a client certificate needs TLS: write the target as `https://{}`",
                target.label
            ),
        ));
    }
    Ok(target)
}

/// The endpoint of `host:port`, `http://host:port` or `https://host:port` (TLS,
/// verified against the system's roots unless `verify` is false).
pub(super) fn open_target(
    text: &str,
    timeout: Duration,
    verify: bool,
    cert: Option<&ClientCert>,
) -> Result<Target, String> {
    let text = text.trim().trim_end_matches('/');
    let (uri, tls, label) = if let Some(rest) = text.strip_prefix("https://") {
        (format!("https://{rest}"), true, text.to_string())
    } else if let Some(rest) = text.strip_prefix("http://") {
        (format!("http://{rest}"), false, rest.to_string())
    } else if text.contains("://") {
        return Err(format!(
            "`{text}`: expected `host:port`, `http://host:port` or `https://host:port`"
        ));
    } else {
        (format!("http://{text}"), false, text.to_string())
    };
    if text.contains("${") {
        return Err(format!(
            "`{text}`: placeholders are not supported in the target"
        ));
    }
    let bad = || format!("`{text}` is not `host:port`");
    let parsed = url::Url::parse(&uri).map_err(|_| bad())?;
    if parsed.host_str().is_none_or(str::is_empty) || parsed.path().len() > 1 {
        return Err(bad());
    }
    let mut endpoint = Endpoint::from_shared(uri)
        .map_err(|_| bad())?
        .connect_timeout(timeout)
        .tcp_nodelay(true);
    if tls {
        let mut config = ClientTlsConfig::new();
        if let Some(cert) = cert {
            config = config.identity(Identity::from_pem(&cert.cert_pem, &cert.key_pem));
        }
        endpoint = if verify {
            endpoint.tls_config(config.with_native_roots())
        } else {
            endpoint.tls_config_with_verifier(config, accept_any_certificate())
        }
        .map_err(|e| format!("`{text}`: {e}"))?;
    }
    Ok(Target {
        endpoint,
        label,
        verify,
        cert: cert.map_or(0, ClientCert::id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_take_host_port_and_http_or_https_urls() {
        let timeout = Duration::from_secs(1);
        let plain = open_target("127.0.0.1:50051", timeout, true, None).expect("host:port");
        assert_eq!(plain.label, "127.0.0.1:50051");
        assert_eq!(plain.endpoint.uri().to_string(), "http://127.0.0.1:50051/");
        let http = open_target("http://localhost:9/", timeout, true, None).expect("http");
        assert_eq!(http.label, "localhost:9");
        let tls = open_target("https://localhost:9", timeout, false, None).expect("https");
        assert_eq!(tls.label, "https://localhost:9");
        assert!(
            !tls.same_as(&open_target("https://localhost:9", timeout, true, None).expect("https"))
        );
        for bad in [
            "ftp://h:1",
            "h:port",
            "http://h:1/path",
            "${var.host}:1",
            "",
        ] {
            assert!(open_target(bad, timeout, true, None).is_err(), "{bad}");
        }
    }
}
