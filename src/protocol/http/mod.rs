//! HTTP (`http_user`, `fast_http_user`): the task schema, and the client of a
//! virtual user: one keep-alive connection per origin, HTTP/1.1, or HTTP/2 when TLS
//! negotiates it by ALPN, over rustls.
//!
//! Each user drives its own connection inside its own task (no spawned connection
//! task, so no cross-task wake-up per request): see [`drive`]. HTTP/1.1 goes through
//! hyper's client connection, HTTP/2 through the `h2` crate directly (`http2`).

mod connect;
mod fast;
mod fields;
mod http2;
mod multipart;
mod redirect;
mod session;
mod step;
mod task;
mod template;
pub(crate) mod tls;

pub(crate) use connect::{Socket, open_socket};
pub use fast::{FastSession, WireRequest};
pub(crate) use session::{Driver, drive};
pub use session::{RequestError, Response, Session};
pub use step::{Http, HttpClient};
pub use task::{DEFAULT_TIMEOUT, FIELDS, HttpTask, user_agent};
pub use template::Rendered;
pub use tls::{TlsConnectors, read_ca_file};

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Uri};
use url::Url;

/// What of a response to keep for assertions and extractors. By default only the
/// status and the body's length are kept; the body itself is dropped as it arrives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capture {
    /// Keep the final response's headers.
    pub headers: bool,
    /// Keep the final response's body, up to [`crate::scenario::MAX_CAPTURED_BODY`].
    pub body: bool,
}

/// A request ready to send: everything computed, nothing left to parse.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    /// HTTP method.
    pub method: Method,
    /// Where the request goes.
    pub target: Target,
    /// Request headers (without `Host`, which the client adds for HTTP/1.1).
    pub headers: HeaderMap,
    /// Request body; empty for none.
    pub body: Bytes,
    /// Limit on the whole request, redirects included.
    pub timeout: Duration,
    /// Follow 3xx responses (default true, as in Locust).
    pub allow_redirects: bool,
    /// Verify TLS certificates (default true).
    pub verify: bool,
    /// The client certificate offered for mutual TLS (`cert` / `client_cert`).
    pub client_cert: Option<Arc<crate::protocol::client_cert::ClientCert>>,
    /// What of the response to keep.
    pub capture: Capture,
    /// The whole request serialized once (for requests without placeholders), which
    /// the `fast_http_user` client writes as is.
    pub wire: Option<WireRequest>,
}

impl PreparedRequest {
    /// The same request, serialized once for the `fast_http_user` client.
    pub fn with_wire(mut self) -> Self {
        self.wire = Some(WireRequest::new(&self));
        self
    }
}

/// Scheme, host and port: what one connection can serve.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// True for `https`.
    pub https: bool,
    /// Host name or IP literal (without brackets).
    pub host: Arc<str>,
    /// Port.
    pub port: u16,
}

/// Where a request goes, in the forms the client needs, computed once.
#[derive(Debug, Clone)]
pub struct Target {
    /// The connection it needs.
    pub origin: Origin,
    /// `/path?query`, for HTTP/1.1 request lines.
    pub origin_form: Uri,
    /// The absolute URI, for HTTP/2 pseudo-headers. [`Target::from_url`] always sets
    /// it; [`Target::with_path`] leaves it `None` for plain http (HTTP/2 runs over TLS
    /// only, so nothing reads it there).
    pub absolute: Option<Uri>,
    /// The `Host` header value for HTTP/1.1.
    pub host_header: HeaderValue,
}

impl Target {
    /// Writes the URL requested into `buf`, as the request event reports it (reused:
    /// no allocation once it is large enough).
    pub fn write_url(&self, buf: &mut String) {
        buf.clear();
        buf.push_str(if self.origin.https {
            "https://"
        } else {
            "http://"
        });
        buf.push_str(self.host_header.to_str().unwrap_or(""));
        buf.push_str(
            self.origin_form
                .path_and_query()
                .map_or("/", |p| p.as_str()),
        );
    }

    /// Prepares a target from an `http` or `https` URL. Credentials in the URL are
    /// left out (a task sends them as basic auth).
    pub fn from_url(url: &Url) -> Result<Self, String> {
        let without_credentials;
        let url = if url.username().is_empty() && url.password().is_none() {
            url
        } else {
            let mut clean = url.clone();
            let _ = clean.set_username("");
            let _ = clean.set_password(None);
            without_credentials = clean;
            &without_credentials
        };
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(format!("scheme `{other}` is not supported")),
        };
        let host = url.host_str().ok_or("the URL has no host")?;
        let port = url.port_or_known_default().ok_or("the URL has no port")?;
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let mut origin_form = url.path().to_string();
        if let Some(query) = url.query() {
            origin_form.push('?');
            origin_form.push_str(query);
        }
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        Ok(Self {
            origin: Origin {
                https,
                host: bare_host.into(),
                port,
            },
            origin_form: origin_form.parse().map_err(|e| format!("{e}"))?,
            absolute: Some(url.as_str().parse().map_err(|e| format!("{e}"))?),
            host_header: HeaderValue::from_str(&authority).map_err(|e| format!("{e}"))?,
        })
    }

    /// The same origin with another `/path?query` (already percent-encoded); `None`
    /// when it is not a valid request target. Cheaper than parsing a whole URL.
    pub fn with_path(&self, path_and_query: &str) -> Option<Self> {
        if !path_and_query.starts_with('/') {
            return None;
        }
        // Only HTTP/2 (over TLS) sends the absolute form.
        let absolute = if self.origin.https {
            let host = self.host_header.to_str().ok()?;
            Some(format!("https://{host}{path_and_query}").parse().ok()?)
        } else {
            None
        };
        Some(Self {
            origin: self.origin.clone(),
            origin_form: path_and_query.parse().ok()?,
            absolute,
            host_header: self.host_header.clone(),
        })
    }

    /// The URL, to resolve redirects and match cookies against (parsed on demand:
    /// most requests never need it).
    pub fn url(&self) -> Result<Url, String> {
        let scheme = if self.origin.https { "https" } else { "http" };
        let host = self.host_header.to_str().map_err(|e| e.to_string())?;
        let text = format!("{scheme}://{host}{}", self.origin_form);
        Url::parse(&text).map_err(|e| format!("`{text}`: {e}"))
    }
}
