//! LoadDensity's `http3_user` task fields, parsed strictly into [`Http3Task`]s.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value};

use crate::event::intern_endpoint;
use crate::protocol::fields::{check_scheme, method_text, parse_headers, report_name, url_text};
use crate::protocol::http::read_ca_file;
use crate::protocol::http::tls::{accept_any_certificate, root_store};
use crate::protocol::{ParseContext, ParsedSpec};
use crate::redact::redact_url_credentials;
use crate::scenario::Template;
use crate::task::{TaskError, err, parse_bool, parse_timeout};

/// The `http3_user` task fields (besides the common ones).
pub const FIELDS: &[&str] = &[
    "method",
    "request_url",
    "url",
    "name",
    "headers",
    "json",
    "body",
    "expect_status",
    "timeout",
    "ca_file",
    "verify_mode",
    "verify",
];

/// Default step timeout (handshake and exchange), as LoadDensity's (10 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete", "head", "options"];

/// The HTTP/3 part of a task.
#[derive(Debug, Clone)]
pub struct Http3Task {
    /// The request method.
    pub(super) method: Method,
    /// The `https://` URL (relative ones are joined to `host` when rendered).
    pub(super) url: Template,
    /// LoadDensity's `host`: the base of relative URLs.
    pub(super) host: Option<String>,
    /// A `name` with placeholders, rendered per request.
    pub(super) name: Option<Template>,
    /// Extra request headers.
    pub(super) headers: Vec<(HeaderName, HeaderValue)>,
    /// The body (`json`, else `body`), sent for POST, PUT and PATCH as LoadDensity does.
    pub(super) body: Bytes,
    /// The status the response must have.
    pub(super) expect_status: Option<u16>,
    /// Limit on the handshake and the exchange together.
    pub(super) timeout: Duration,
    /// The QUIC client configuration (ALPN `h3`, the roots or no verification).
    pub(super) quic: Arc<quinn::ClientConfig>,
    /// Which configuration it is, to reuse a connection only with the same one.
    pub(super) tls_key: (bool, Option<String>),
}

impl Http3Task {
    /// The CSV sources this task reads.
    pub(super) fn csv_sources(&self, into: &mut Vec<usize>) {
        for template in [Some(&self.url), self.name.as_ref()].into_iter().flatten() {
            template.csv_sources(into);
        }
    }
}

/// Parses the HTTP/3 fields of one task object.
pub(super) fn parse(
    object: &Map<String, Value>,
    method_key: Option<&str>,
    path: &str,
    ctx: &ParseContext<'_>,
) -> Result<ParsedSpec<Http3Task>, TaskError> {
    // LoadDensity's default.
    let method_text = method_text(object, method_key, path, Some("get"))?;
    if !METHODS.contains(&method_text.to_ascii_lowercase().as_str()) {
        return Err(err(
            format!("{path}.method"),
            format!(
                "unsupported http3 method `{method_text}`; expected one of: {}",
                METHODS.join(", ")
            ),
        ));
    }
    let method = Method::from_bytes(method_text.to_ascii_uppercase().as_bytes())
        .map_err(|_| err(format!("{path}.method"), "not a valid method"))?;
    if let Some(host) = ctx.host_text {
        check_scheme(host, &["https"]).map_err(|m| err("host", m))?;
    }
    let (field, text) = match url_text(object, path, "an https:// URL")? {
        Some(found) => found,
        None => match ctx.host_text {
            Some(host) => ("host", host),
            None => {
                return Err(err(
                    format!("{path}.request_url"),
                    "missing field: an https:// URL (or the `host` argument)",
                ));
            }
        },
    };
    let relative = text.starts_with('/');
    if relative && ctx.host_text.is_none() {
        return Err(err(
            format!("{path}.{field}"),
            format!("`{text}` is relative: give an https:// URL or the `host` argument"),
        ));
    }
    if !relative {
        check_scheme(text, &["https"]).map_err(|m| err(format!("{path}.{field}"), m))?;
    }
    let url = Template::parse(text, ctx.csv).map_err(|e| err(format!("{path}.{field}"), e))?;
    let body = match (object.get("json"), object.get("body")) {
        (Some(_), Some(_)) => {
            return Err(err(
                format!("{path}.body"),
                "give either `json` or `body`, not both",
            ));
        }
        (Some(json), None) => Bytes::from(json.to_string()),
        (None, Some(Value::String(text))) => Bytes::from(text.clone()),
        (None, None | Some(Value::Null)) => Bytes::new(),
        (None, Some(other)) => {
            return Err(err(
                format!("{path}.body"),
                format!("expected a string, got {other}"),
            ));
        }
    };
    let expect_status = match object.get("expect_status") {
        None | Some(Value::Null) => None,
        Some(value) => {
            let status = match value {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            match status.and_then(|s| u16::try_from(s).ok()) {
                Some(s) if (100..=599).contains(&s) => Some(s),
                _ => {
                    return Err(err(
                        format!("{path}.expect_status"),
                        format!("expected an HTTP status from 100 to 599, got {value}"),
                    ));
                }
            }
        }
    };
    // aioquic's `verify_mode` is Python's ssl.VerifyMode: 0 (CERT_NONE) turns the
    // check off; 1 and 2 keep it.
    let verify_mode = match object.get("verify_mode") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if matches!(n.as_u64(), Some(0..=2)) => Some(n.as_u64() != Some(0)),
        Some(other) => {
            return Err(err(
                format!("{path}.verify_mode"),
                format!("expected 0 (CERT_NONE), 1 or 2 (CERT_REQUIRED), got {other}"),
            ));
        }
    };
    let verify = parse_bool(object, "verify", path, true)? && verify_mode.unwrap_or(true);
    let ca_file = match object.get("ca_file") {
        None | Some(Value::Null) => None,
        Some(Value::String(file)) => Some(file.clone()),
        Some(other) => {
            return Err(err(
                format!("{path}.ca_file"),
                format!("expected the path of a PEM file, got {other}"),
            ));
        }
    };
    let quic =
        client_config(verify, ca_file.as_deref()).map_err(|m| err(format!("{path}.ca_file"), m))?;
    let default_name = redact_url_credentials(text).into_owned();
    let (name_text, name) = report_name(object, path, ctx.csv, &default_name)?;
    Ok(ParsedSpec {
        endpoint: intern_endpoint("HTTP/3", &name_text),
        spec: Http3Task {
            method,
            url,
            host: ctx.host_text.map(str::to_string),
            name,
            headers: parse_headers(object, path)?,
            body,
            expect_status,
            timeout: parse_timeout(object, path, DEFAULT_TIMEOUT)?,
            quic: Arc::new(quic),
            tls_key: (verify, ca_file),
        },
    })
}

/// The QUIC client configuration: TLS 1.3 (ring), ALPN `h3`, and the system's roots
/// plus `ca_file`'s certificates, or no verification at all.
fn client_config(verify: bool, ca_file: Option<&str>) -> Result<quinn::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?;
    let mut config = if verify {
        let extra = match ca_file {
            Some(file) => read_ca_file(Path::new(file))?,
            None => Vec::new(),
        };
        builder
            .with_root_certificates(root_store(&extra))
            .with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(accept_any_certificate())
            .with_no_client_auth()
    };
    config.alpn_protocols = vec![b"h3".to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(config)
        .map_err(|e| format!("no QUIC configuration: {e}"))?;
    Ok(quinn::ClientConfig::new(Arc::new(quic)))
}
