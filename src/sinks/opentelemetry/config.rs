//! The exporter's settings, and how unset ones are resolved from the standard
//! `OTEL_*` environment variables.

use std::collections::BTreeMap;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use url::Url;

/// Default `service.name`, as in LoadDensity.
pub const DEFAULT_SERVICE_NAME: &str = "loaddensity";
/// Default export interval, as in LoadDensity.
pub const DEFAULT_EXPORT_INTERVAL_MS: u64 = 5000;
/// Default time limit of one export (the OTLP exporter's), and of the stop.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Default gRPC endpoint.
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// Default HTTP/protobuf endpoint.
pub const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318/v1/metrics";
/// Default HTTP/protobuf endpoint of the traces exporter.
pub const DEFAULT_HTTP_TRACES_ENDPOINT: &str = "http://localhost:4318/v1/traces";

/// An OTLP signal: which `OTEL_EXPORTER_OTLP_{SIGNAL}_*` variables apply to it, and
/// its path under an OTLP/HTTP base URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// The metrics exporter.
    Metrics,
    /// The traces exporter.
    Traces,
}

impl Signal {
    /// The signal's path under an OTLP/HTTP base URL.
    fn http_path(self) -> &'static str {
        match self {
            Self::Metrics => "v1/metrics",
            Self::Traces => "v1/traces",
        }
    }

    /// The HTTP default endpoint.
    fn default_http(self) -> &'static str {
        match self {
            Self::Metrics => DEFAULT_HTTP_ENDPOINT,
            Self::Traces => DEFAULT_HTTP_TRACES_ENDPOINT,
        }
    }

    /// `OTEL_EXPORTER_OTLP_{SIGNAL}_ENDPOINT`.
    fn endpoint_variable(self) -> &'static str {
        match self {
            Self::Metrics => "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            Self::Traces => "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        }
    }

    /// `OTEL_EXPORTER_OTLP_{SIGNAL}_PROTOCOL`.
    fn protocol_variable(self) -> &'static str {
        match self {
            Self::Metrics => "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            Self::Traces => "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        }
    }

    /// `OTEL_EXPORTER_OTLP_{SIGNAL}_TIMEOUT`.
    fn timeout_variable(self) -> &'static str {
        match self {
            Self::Metrics => "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
            Self::Traces => "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        }
    }
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (port 4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318, path `/v1/metrics`).
    HttpProtobuf,
}

impl OtlpProtocol {
    /// Parses `grpc` or `http/protobuf`.
    pub fn parse(text: &str) -> Result<Self, OtelConfigError> {
        match text.trim() {
            "grpc" => Ok(Self::Grpc),
            "http/protobuf" => Ok(Self::HttpProtobuf),
            other => Err(OtelConfigError::Protocol(other.to_string())),
        }
    }

    /// `grpc` or `http/protobuf`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
        }
    }
}

/// Whether exported values accumulate since the start or restart at every export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OtelTemporality {
    /// Each export carries the totals since the exporter started (the default).
    #[default]
    Cumulative,
    /// Each export carries what happened since the previous export.
    Delta,
}

impl OtelTemporality {
    /// Parses `cumulative` or `delta`.
    pub fn parse(text: &str) -> Result<Self, OtelConfigError> {
        match text.trim() {
            "cumulative" => Ok(Self::Cumulative),
            "delta" => Ok(Self::Delta),
            other => Err(OtelConfigError::Temporality(other.to_string())),
        }
    }

    /// `cumulative` or `delta`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cumulative => "cumulative",
            Self::Delta => "delta",
        }
    }
}

/// How the two histograms are aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HistogramKind {
    /// Fixed bucket bounds, the same as the Prometheus exporter's (the default).
    #[default]
    Explicit,
    /// Base-2 exponential buckets, whose resolution adapts to the values (better
    /// percentiles).
    Exponential,
}

impl HistogramKind {
    /// Parses `explicit` or `exponential`.
    pub fn parse(text: &str) -> Result<Self, OtelConfigError> {
        match text.trim() {
            "explicit" => Ok(Self::Explicit),
            "exponential" => Ok(Self::Exponential),
            other => Err(OtelConfigError::Histogram(other.to_string())),
        }
    }

    /// `explicit` or `exponential`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Explicit => "explicit",
            Self::Exponential => "exponential",
        }
    }
}

/// Settings of [`super::start_opentelemetry_exporter`]. Fields left `None` follow the
/// OpenTelemetry environment variables, then the defaults.
#[derive(Clone, PartialEq, Eq)]
pub struct OtelOptions {
    /// Collector URL. `None`: `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`, then
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, then `http://localhost:4317` (gRPC) or
    /// `http://localhost:4318/v1/metrics` (HTTP).
    pub endpoint: Option<String>,
    /// The resource's `service.name`. Default `loaddensity`.
    pub service_name: String,
    /// Milliseconds between exports. `None`: `OTEL_METRIC_EXPORT_INTERVAL`, then 5000.
    pub export_interval_ms: Option<u64>,
    /// Transport. `None`: `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`, then
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, then gRPC.
    pub protocol: Option<OtlpProtocol>,
    /// Extra request headers (gRPC metadata), e.g. a vendor's API key. Never printed.
    /// `OTEL_EXPORTER_OTLP_HEADERS` is added to them.
    pub headers: BTreeMap<String, String>,
    /// Cumulative (default) or delta.
    pub temporality: OtelTemporality,
    /// Explicit buckets (default) or base-2 exponential histograms.
    pub histogram: HistogramKind,
    /// Time limit of one export, and of the final flush at stop, in milliseconds.
    /// `None`: `OTEL_EXPORTER_OTLP_METRICS_TIMEOUT`, then `OTEL_EXPORTER_OTLP_TIMEOUT`,
    /// then 10000.
    pub timeout_ms: Option<u64>,
}

impl Default for OtelOptions {
    fn default() -> Self {
        Self {
            endpoint: None,
            service_name: DEFAULT_SERVICE_NAME.to_string(),
            export_interval_ms: None,
            protocol: None,
            headers: BTreeMap::new(),
            temporality: OtelTemporality::default(),
            histogram: HistogramKind::default(),
            timeout_ms: None,
        }
    }
}

impl std::fmt::Debug for OtelOptions {
    // Header values are secrets (API keys): only their names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtelOptions")
            .field("endpoint", &self.endpoint)
            .field("service_name", &self.service_name)
            .field("export_interval_ms", &self.export_interval_ms)
            .field("protocol", &self.protocol)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("temporality", &self.temporality)
            .field("histogram", &self.histogram)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// A setting that cannot be used. Messages never contain header values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtelConfigError {
    /// The endpoint is not an `http://` or `https://` URL with a host.
    #[error(
        "`{endpoint}`{} is not an http:// or https:// URL with a host (e.g. http://localhost:4317): {reason}",
        source_text(origin)
    )]
    Endpoint {
        /// The text given.
        endpoint: String,
        /// Where it came from: empty for the argument, else the variable's name.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The export interval is 0.
    #[error("export_interval_ms must be at least 1, got {0}")]
    Interval(u64),
    /// The timeout is 0.
    #[error("timeout_ms must be at least 1, got {0}")]
    Timeout(u64),
    /// The protocol is neither `grpc` nor `http/protobuf`.
    #[error("unknown protocol `{0}`: expected `grpc` or `http/protobuf`")]
    Protocol(String),
    /// The temporality is neither `cumulative` nor `delta`.
    #[error("unknown temporality `{0}`: expected `cumulative` or `delta`")]
    Temporality(String),
    /// The histogram kind is neither `explicit` nor `exponential`.
    #[error("unknown histogram `{0}`: expected `explicit` or `exponential`")]
    Histogram(String),
    /// A header name or value is not valid in HTTP (the value is not shown).
    #[error("header `{name}`: {reason}")]
    Header {
        /// The header's name.
        name: String,
        /// What is wrong (never the value itself).
        reason: &'static str,
    },
    /// `service_name` is empty.
    #[error("service_name must not be empty")]
    ServiceName,
    /// An `OTEL_*` variable holds a value that cannot be used.
    #[error("{variable}: {message}")]
    Environment {
        /// The variable.
        variable: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

fn source_text(source: &str) -> String {
    if source.is_empty() {
        String::new()
    } else {
        format!(" (from {source})")
    }
}

/// The settings with every default and environment variable applied, checked.
#[derive(Clone, PartialEq, Eq)]
pub struct ResolvedOptions {
    /// Collector URL (for HTTP, including `/v1/metrics`).
    pub endpoint: String,
    /// The resource's `service.name`.
    pub service_name: String,
    /// Time between exports.
    pub export_interval: Duration,
    /// Transport.
    pub protocol: OtlpProtocol,
    /// Validated extra headers. Never printed.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Cumulative or delta.
    pub temporality: OtelTemporality,
    /// Explicit or exponential.
    pub histogram: HistogramKind,
    /// Time limit of one export and of the stop.
    pub timeout: Duration,
}

impl std::fmt::Debug for ResolvedOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedOptions")
            .field("endpoint", &self.endpoint)
            .field("service_name", &self.service_name)
            .field("export_interval", &self.export_interval)
            .field("protocol", &self.protocol)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("temporality", &self.temporality)
            .field("histogram", &self.histogram)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Reads an environment variable; unset, empty and non-Unicode values count as unset.
pub(crate) fn env(variable: &str) -> Option<String> {
    std::env::var(variable)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The first of `variables` that is set, read as a number of milliseconds.
fn env_millis(variables: &[&'static str]) -> Result<Option<u64>, OtelConfigError> {
    env_number(variables, "a number of milliseconds")
}

/// The first of `variables` that is set, read as a whole number (`what` words the
/// expectation in the error, e.g. "a number of spans").
pub(crate) fn env_number(
    variables: &[&'static str],
    what: &str,
) -> Result<Option<u64>, OtelConfigError> {
    for variable in variables {
        if let Some(text) = env(variable) {
            return text
                .parse()
                .map(Some)
                .map_err(|_| OtelConfigError::Environment {
                    variable,
                    message: format!("expected {what}, got `{text}`"),
                });
        }
    }
    Ok(None)
}

impl OtelOptions {
    /// Applies the environment variables and defaults, and checks every setting.
    pub fn resolve(&self) -> Result<ResolvedOptions, OtelConfigError> {
        let protocol = resolve_protocol(self.protocol, Signal::Metrics)?;
        let endpoint = resolve_endpoint(self.endpoint.as_deref(), protocol)?;
        let interval_ms = match self.export_interval_ms {
            Some(ms) => ms,
            None => {
                env_millis(&["OTEL_METRIC_EXPORT_INTERVAL"])?.unwrap_or(DEFAULT_EXPORT_INTERVAL_MS)
            }
        };
        if interval_ms == 0 {
            return Err(OtelConfigError::Interval(0));
        }
        let timeout_ms = resolve_timeout_ms(self.timeout_ms, Signal::Metrics)?;
        if self.service_name.trim().is_empty() {
            return Err(OtelConfigError::ServiceName);
        }
        let headers = parse_headers(&self.headers)?;
        Ok(ResolvedOptions {
            endpoint,
            service_name: self.service_name.clone(),
            export_interval: Duration::from_millis(interval_ms),
            protocol,
            headers,
            temporality: self.temporality,
            histogram: self.histogram,
            timeout: Duration::from_millis(timeout_ms),
        })
    }
}

/// The transport: the argument, else `OTEL_EXPORTER_OTLP_{SIGNAL}_PROTOCOL`, else
/// `OTEL_EXPORTER_OTLP_PROTOCOL`, else gRPC.
pub(crate) fn resolve_protocol(
    explicit: Option<OtlpProtocol>,
    signal: Signal,
) -> Result<OtlpProtocol, OtelConfigError> {
    if let Some(protocol) = explicit {
        return Ok(protocol);
    }
    match [signal.protocol_variable(), "OTEL_EXPORTER_OTLP_PROTOCOL"]
        .into_iter()
        .find_map(|variable| env(variable).map(|value| (variable, value)))
    {
        Some((variable, value)) => {
            OtlpProtocol::parse(&value).map_err(|e| OtelConfigError::Environment {
                variable,
                message: e.to_string(),
            })
        }
        None => Ok(OtlpProtocol::Grpc),
    }
}

/// The export timeout in milliseconds: the argument, else
/// `OTEL_EXPORTER_OTLP_{SIGNAL}_TIMEOUT`, else `OTEL_EXPORTER_OTLP_TIMEOUT`, else
/// 10000. Zero is refused.
pub(crate) fn resolve_timeout_ms(
    explicit: Option<u64>,
    signal: Signal,
) -> Result<u64, OtelConfigError> {
    let timeout_ms = match explicit {
        Some(ms) => ms,
        None => env_millis(&[signal.timeout_variable(), "OTEL_EXPORTER_OTLP_TIMEOUT"])?
            .unwrap_or(DEFAULT_TIMEOUT_MS),
    };
    if timeout_ms == 0 {
        return Err(OtelConfigError::Timeout(0));
    }
    Ok(timeout_ms)
}

/// Checks the extra headers (values marked sensitive).
pub(crate) fn parse_headers(
    headers: &BTreeMap<String, String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, OtelConfigError> {
    headers
        .iter()
        .map(|(name, value)| parse_header(name, value))
        .collect()
}

fn parse_header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), OtelConfigError> {
    let header_name =
        HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| OtelConfigError::Header {
            name: name.to_string(),
            reason: "not a valid HTTP header name",
        })?;
    let mut header_value = HeaderValue::from_str(value).map_err(|_| OtelConfigError::Header {
        name: name.to_string(),
        reason: "the value holds characters not allowed in an HTTP header",
    })?;
    header_value.set_sensitive(true);
    Ok((header_name, header_value))
}

/// The collector URL: the argument, else `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` (used
/// as is), else `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL: HTTP appends `v1/metrics`),
/// else the protocol's default. For HTTP, an argument without a path gets
/// `/v1/metrics`.
pub fn resolve_endpoint(
    explicit: Option<&str>,
    protocol: OtlpProtocol,
) -> Result<String, OtelConfigError> {
    resolve_signal_endpoint(explicit, protocol, Signal::Metrics)
}

/// [`resolve_endpoint`] for `signal`: its own `OTEL_EXPORTER_OTLP_{SIGNAL}_ENDPOINT`,
/// path and HTTP default.
pub(crate) fn resolve_signal_endpoint(
    explicit: Option<&str>,
    protocol: OtlpProtocol,
    signal: Signal,
) -> Result<String, OtelConfigError> {
    let http = protocol == OtlpProtocol::HttpProtobuf;
    let signal_variable = signal.endpoint_variable();
    if let Some(text) = explicit {
        let mut url = check_url(text, "")?;
        if !http {
            // gRPC uses the origin only; keep the text as written.
            return Ok(text.trim().to_string());
        }
        if matches!(url.path(), "" | "/") {
            url.set_path(signal.http_path());
        }
        return Ok(url.to_string());
    }
    if let Some(text) = env(signal_variable) {
        check_url(&text, signal_variable)?;
        return Ok(text);
    }
    if let Some(text) = env("OTEL_EXPORTER_OTLP_ENDPOINT") {
        let url = check_url(&text, "OTEL_EXPORTER_OTLP_ENDPOINT")?;
        if !http {
            return Ok(text);
        }
        let mut joined = url;
        let path = format!(
            "{}/{}",
            joined.path().trim_end_matches('/'),
            signal.http_path()
        );
        joined.set_path(&path);
        return Ok(joined.to_string());
    }
    Ok(if http {
        signal.default_http()
    } else {
        DEFAULT_GRPC_ENDPOINT
    }
    .to_string())
}

/// Checks that `text` is an `http` or `https` URL with a host.
pub fn check_url(text: &str, source: &str) -> Result<Url, OtelConfigError> {
    let error = |reason: String| OtelConfigError::Endpoint {
        endpoint: crate::redact::redact_url_credentials(text).into_owned(),
        origin: source.to_string(),
        reason,
    };
    let url = Url::parse(text.trim()).map_err(|e| error(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(error(format!("scheme `{}`", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(error("no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(error(
            "credentials in the URL are not supported; pass them in `headers`".into(),
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_endpoints() {
        let grpc = |t| resolve_endpoint(Some(t), OtlpProtocol::Grpc);
        let http = |t| resolve_endpoint(Some(t), OtlpProtocol::HttpProtobuf);
        assert_eq!(
            grpc("http://collector:4317").as_deref(),
            Ok("http://collector:4317")
        );
        assert_eq!(
            http("http://collector:4318").as_deref(),
            Ok("http://collector:4318/v1/metrics")
        );
        assert_eq!(
            http("https://otlp.example/custom/path").as_deref(),
            Ok("https://otlp.example/custom/path")
        );
        for bad in ["not a url", "collector:4317", "ftp://x/", "http://"] {
            let e = grpc(bad).expect_err(bad);
            assert!(e.to_string().contains("is not an http://"), "{e}");
        }
        let e = grpc("http://user:secret@host/").expect_err("credentials");
        assert!(e.to_string().contains("credentials"), "{e}");
    }

    #[test]
    fn enums_parse_strictly() {
        assert_eq!(
            OtlpProtocol::parse("http/protobuf"),
            Ok(OtlpProtocol::HttpProtobuf)
        );
        assert!(
            OtlpProtocol::parse("http/json")
                .expect_err("json")
                .to_string()
                .contains("`grpc` or `http/protobuf`")
        );
        assert_eq!(OtelTemporality::parse("delta"), Ok(OtelTemporality::Delta));
        assert!(OtelTemporality::parse("Delta").is_err());
        assert_eq!(
            HistogramKind::parse("exponential"),
            Ok(HistogramKind::Exponential)
        );
        assert!(HistogramKind::parse("hdr").is_err());
    }

    #[test]
    fn header_values_are_never_shown() {
        let options = OtelOptions {
            endpoint: Some("http://127.0.0.1:4317".into()),
            headers: [("x-api-key".to_string(), "s3cr3t\n".to_string())].into(),
            ..OtelOptions::default()
        };
        let e = options.resolve().expect_err("newline in value");
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        assert!(!format!("{options:?}").contains("s3cr3t"));
        let options = OtelOptions {
            headers: [("x-api-key".to_string(), "s3cr3t".to_string())].into(),
            ..options
        };
        let resolved = options.resolve().expect("valid");
        assert!(!format!("{resolved:?}").contains("s3cr3t"));
        assert!(format!("{resolved:?}").contains("x-api-key"));
        let bad_name = OtelOptions {
            headers: [("bad name".to_string(), "v".to_string())].into(),
            ..OtelOptions::default()
        };
        assert!(bad_name.resolve().is_err());
    }

    #[test]
    fn zero_values_are_rejected() {
        let zero = OtelOptions {
            endpoint: Some("http://127.0.0.1:4317".into()),
            export_interval_ms: Some(0),
            ..OtelOptions::default()
        };
        assert_eq!(zero.resolve(), Err(OtelConfigError::Interval(0)));
        let zero = OtelOptions {
            endpoint: Some("http://127.0.0.1:4317".into()),
            timeout_ms: Some(0),
            ..OtelOptions::default()
        };
        assert_eq!(zero.resolve(), Err(OtelConfigError::Timeout(0)));
    }
}
