//! A virtual user's connections and the request/response exchange.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cookie_store::CookieStore;
use http::header::{COOKIE, HOST, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

use super::connect::{Socket, open_socket};
use super::http2::Http2;
use super::redirect::{Exchanged, SendHop, follow_redirects};
use super::{Origin, PreparedRequest, Target, TlsConnectors};
use crate::protocol::client_cert::{ClientCert, cert_id};
use crate::protocol::{Failure, FailureKind};
use crate::scenario::MAX_CAPTURED_BODY;

/// Largest HTTP/1.1 read buffer per connection, and so the largest response head
/// `http_user` accepts (the same bound as fast_http_user's). hyper's adaptive buffer
/// starts at 8 KiB and grows only for larger heads; an exact size would reject every
/// head that does not fit in one read.
const MAX_READ_BUFFER: usize = 64 * 1024;

/// What a completed exchange returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Final status, after redirects.
    pub status: StatusCode,
    /// Bytes of response body received (final response).
    pub body_len: u64,
    /// The final response's headers, when the request asked to capture them.
    pub headers: HeaderMap,
    /// The final response's body (up to its limit), when the request asked for it.
    pub body: Bytes,
}

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// TCP connect failed.
    #[error("connect to {host}:{port} failed: {source}")]
    Connect {
        /// Host.
        host: Arc<str>,
        /// Port.
        port: u16,
        /// The socket error.
        source: std::io::Error,
    },
    /// The TLS handshake failed.
    #[error("TLS handshake with {host} failed: {source}")]
    Tls {
        /// Host.
        host: Arc<str>,
        /// The TLS error.
        source: std::io::Error,
    },
    /// The host is not a valid TLS server name.
    #[error("`{0}` is not a valid TLS server name")]
    ServerName(Arc<str>),
    /// The HTTP exchange failed.
    #[error("{0}")]
    Http(String),
    /// The HTTP/2 exchange failed (the connection, or the request's stream).
    #[error("http2 error: {0}")]
    Http2(#[from] h2::Error),
    /// The whole request took longer than the task's timeout.
    #[error("timeout after {0:?}")]
    Timeout(Duration),
    /// A redirect could not be followed.
    #[error("redirect: {0}")]
    Redirect(String),
}

/// httpx's network errors, timeouts and protocol errors are transient (a failed
/// connect counted as such); a bad server name or redirect is not.
impl From<RequestError> for Failure {
    fn from(error: RequestError) -> Self {
        let kind = match error {
            RequestError::Connect { .. } => FailureKind::Connect,
            RequestError::Timeout(_) => FailureKind::Timeout,
            RequestError::Tls { .. } | RequestError::Http(_) | RequestError::Http2(_) => {
                FailureKind::Network
            }
            RequestError::ServerName(_) | RequestError::Redirect(_) => FailureKind::Other,
        };
        Failure::new(kind, error.to_string())
    }
}

fn http_error(error: hyper::Error) -> RequestError {
    use std::error::Error;
    match error.source() {
        Some(source) => RequestError::Http(format!("{error}: {source}")),
        None => RequestError::Http(error.to_string()),
    }
}

/// A connection future, polled by [`drive`] while its user waits on the connection.
pub(crate) type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(Http2),
}

struct Connection {
    origin: Origin,
    verify: bool,
    /// The client certificate it was made with ([`cert_id`]; 0: none).
    cert: u64,
    sender: Sender,
    /// The connection future; `None` once the connection has ended.
    driver: Option<Driver>,
}

impl Connection {
    /// A connection whose handshake gave `sender` and the connection future `driver`.
    fn new(origin: &Origin, verify: bool, sender: Sender, driver: Driver) -> Self {
        Self {
            origin: origin.clone(),
            verify,
            cert: 0,
            sender,
            driver: Some(driver),
        }
    }

    /// Whether a new request may go out on it. The connection future is polled once
    /// first (no waker kept: the request's own polls follow at once), so that a close
    /// or an HTTP/2 GOAWAY that arrived while the user was idle is seen here and the
    /// request goes out on a new connection instead of failing on the old one.
    fn is_usable(&mut self) -> bool {
        if let Some(driver) = self.driver.as_mut()
            && driver
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_ready()
        {
            self.driver = None;
        }
        self.driver.is_some()
            && match &self.sender {
                Sender::H1(s) => !s.is_closed(),
                // Its driver ends with the connection.
                Sender::H2(_) => true,
            }
    }
}

/// Polls `fut` while also driving the connection, in the calling task.
///
/// The connection is polled first, so that a wake-up from the socket reads the
/// response and completes `fut` in the same poll.
pub(crate) async fn drive<F: Future>(driver: &mut Option<Driver>, fut: F) -> F::Output {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        if let Some(conn) = driver.as_mut()
            && conn.as_mut().poll(cx).is_ready()
        {
            *driver = None;
        }
        fut.as_mut().poll(cx)
    })
    .await
}

/// One virtual user's HTTP client: a keep-alive connection per origin, and a cookie
/// jar kept across its requests, as a browser session keeps one.
pub struct Session {
    tls: Arc<TlsConnectors>,
    connections: Vec<Connection>,
    /// Created on the first `Set-Cookie`.
    cookies: Option<Box<CookieStore>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("connections", &self.connections.len())
            .finish()
    }
}

impl Session {
    /// A session with no connection yet.
    pub fn new(tls: Arc<TlsConnectors>) -> Self {
        Self {
            tls,
            connections: Vec::new(),
            cookies: None,
        }
    }

    /// The `name=value` pairs the jar would send to `url`.
    pub fn cookies_for(&self, url: &url::Url) -> Vec<(String, String)> {
        self.cookies.as_ref().map_or_else(Vec::new, |jar| {
            jar.get_request_values(url)
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        })
    }

    /// Sends a request, following redirects if it allows, and reads the whole
    /// response body (counting it; keeping it only when the request captures it).
    /// Bounded by the request's timeout.
    pub async fn execute(&mut self, request: &PreparedRequest) -> Result<Response, RequestError> {
        self.execute_from(request, Instant::now()).await
    }

    /// [`Session::execute`], with the timeout counted from `began`.
    pub async fn execute_from(
        &mut self,
        request: &PreparedRequest,
        began: Instant,
    ) -> Result<Response, RequestError> {
        let deadline = began + request.timeout;
        match tokio::time::timeout_at(deadline.into(), self.exchange(request)).await {
            Ok(result) => result,
            Err(_) => {
                // The connection is in an unknown state: drop it.
                self.connections
                    .retain(|c| c.origin != request.target.origin);
                Err(RequestError::Timeout(request.timeout))
            }
        }
    }

    async fn exchange(&mut self, request: &PreparedRequest) -> Result<Response, RequestError> {
        let response = self
            .send(
                &request.target,
                request.method.clone(),
                request.body.clone(),
                request,
            )
            .await?;
        if !request.allow_redirects || !response.status.is_redirection() {
            return Ok(response.into_response());
        }
        // Boxed: rare, and it would double the size of every user's task.
        Box::pin(follow_redirects(self, request, response)).await
    }

    /// One request/response on a pooled connection.
    async fn send(
        &mut self,
        target: &Target,
        method: Method,
        body: Bytes,
        prepared: &PreparedRequest,
    ) -> Result<Exchanged, RequestError> {
        let mut request = Request::new(());
        *request.method_mut() = method;
        *request.headers_mut() = prepared.headers.clone();
        if let Some(jar) = &self.cookies
            && let Ok(url) = target.url()
        {
            add_cookies(request.headers_mut(), jar, &url);
        }
        let capture = prepared.capture;
        let conn = self
            .connection(
                &target.origin,
                prepared.verify,
                prepared.client_cert.as_ref(),
            )
            .await?;
        let (parts, body_len, body) = match &mut conn.sender {
            Sender::H1(sender) => {
                *request.uri_mut() = target.origin_form.clone();
                request
                    .headers_mut()
                    .insert(HOST, target.host_header.clone());
                drive(&mut conn.driver, sender.ready())
                    .await
                    .map_err(http_error)?;
                let request = request.map(|()| Full::new(body));
                let response = match drive(&mut conn.driver, sender.send_request(request)).await {
                    Ok(response) => response,
                    Err(error) => {
                        conn.driver = None;
                        return Err(http_error(error));
                    }
                };
                let (parts, body) = response.into_parts();
                let (body_len, body) = drive(&mut conn.driver, read_body(body, capture.body))
                    .await
                    .map_err(|e| {
                        conn.driver = None;
                        http_error(e)
                    })?;
                (parts, body_len, body)
            }
            Sender::H2(sender) => {
                // HTTP/2 runs over TLS only, whose targets carry the absolute form.
                debug_assert!(
                    target.absolute.is_some(),
                    "an HTTP/2 target without its URI"
                );
                *request.uri_mut() = target
                    .absolute
                    .clone()
                    .unwrap_or_else(|| target.origin_form.clone());
                // Boxed: h2's futures would grow every user's task, HTTP/1.1 ones too.
                let exchange = Box::pin(sender.exchange(request, body, capture.body));
                match drive(&mut conn.driver, exchange).await {
                    Ok(exchanged) => exchanged,
                    Err(error) => {
                        // The next request reconnects.
                        conn.driver = None;
                        return Err(error.into());
                    }
                }
            }
        };
        let status = parts.status;
        let location = if status.is_redirection() {
            parts
                .headers
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        } else {
            None
        };
        if parts.headers.contains_key(SET_COOKIE)
            && let Ok(url) = target.url()
        {
            self.store_cookies(&parts.headers, &url);
        }
        Ok(Exchanged {
            status,
            body_len,
            location,
            headers: if capture.headers {
                parts.headers
            } else {
                HeaderMap::new()
            },
            body,
        })
    }

    fn store_cookies(&mut self, headers: &HeaderMap, url: &url::Url) {
        let jar = self.cookies.get_or_insert_with(Default::default);
        for value in headers.get_all(SET_COOKIE) {
            if let Ok(text) = value.to_str() {
                // A cookie the jar refuses (bad domain, bad syntax) is skipped, as a
                // browser would.
                let _ = jar.parse(text, url);
            }
        }
    }

    /// The pooled connection for an origin, (re)connecting when needed.
    async fn connection(
        &mut self,
        origin: &Origin,
        verify: bool,
        cert: Option<&Arc<ClientCert>>,
    ) -> Result<&mut Connection, RequestError> {
        let id = cert_id(cert);
        let found = self.connections.iter().position(|c| {
            &c.origin == origin && (!origin.https || (c.verify == verify && c.cert == id))
        });
        if let Some(index) = found {
            if self.connections[index].is_usable() {
                return Ok(&mut self.connections[index]);
            }
            self.connections.swap_remove(index);
        }
        let tls = self.tls.clone();
        let connectors = cert.map_or(&*tls, |c| &c.connectors);
        // Boxed: the handshake futures are large and rare; keep them off every
        // user's task.
        let mut connection = Box::pin(connect(connectors, origin, verify)).await?;
        connection.cert = id;
        self.connections.push(connection);
        let last = self.connections.len() - 1;
        Ok(&mut self.connections[last])
    }
}

impl SendHop for Session {
    fn send_hop(
        &mut self,
        target: &Target,
        method: &Method,
        body: &Bytes,
        request: &PreparedRequest,
    ) -> impl Future<Output = Result<Exchanged, RequestError>> + Send {
        self.send(target, method.clone(), body.clone(), request)
    }
}

/// Opens a connection: TCP, then TLS with ALPN for https, then the HTTP handshake.
async fn connect(
    tls: &TlsConnectors,
    origin: &Origin,
    verify: bool,
) -> Result<Connection, RequestError> {
    let tls = match open_socket(origin, || tls.get(verify)).await? {
        Socket::Plain(tcp) => return handshake_h1(TokioIo::new(tcp), origin, verify).await,
        Socket::Tls(tls) => *tls,
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    if h2 {
        let (sender, driver) = Http2::handshake(tls).await?;
        Ok(Connection::new(origin, verify, Sender::H2(sender), driver))
    } else {
        handshake_h1(TokioIo::new(tls), origin, verify).await
    }
}

async fn handshake_h1<IO>(io: IO, origin: &Origin, verify: bool) -> Result<Connection, RequestError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = http1::Builder::new()
        .max_buf_size(MAX_READ_BUFFER)
        .handshake(io)
        .await
        .map_err(http_error)?;
    let driver: Driver = Box::pin(async move {
        let _ = conn.await;
    });
    Ok(Connection::new(origin, verify, Sender::H1(sender), driver))
}

/// Adds the jar's cookies for `url` to the `Cookie` header (after the task's own).
fn add_cookies(headers: &mut HeaderMap, jar: &CookieStore, url: &url::Url) {
    let mut line = headers
        .get(COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_default();
    let before = line.len();
    for (name, value) in jar.get_request_values(url) {
        if !line.is_empty() {
            line.push_str("; ");
        }
        line.push_str(name);
        line.push('=');
        line.push_str(value);
    }
    if line.len() != before
        && let Ok(value) = HeaderValue::from_str(&line)
    {
        headers.insert(COOKIE, value);
    }
}

/// Reads an HTTP/1.1 body to its end, counting its bytes; keeps up to
/// [`MAX_CAPTURED_BODY`] of them when `keep`, and drops them otherwise.
async fn read_body(mut body: Incoming, keep: bool) -> Result<(u64, Bytes), hyper::Error> {
    let mut total = 0u64;
    let mut kept = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            total += data.len() as u64;
            if keep && kept.len() < MAX_CAPTURED_BODY {
                let room = MAX_CAPTURED_BODY - kept.len();
                kept.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
    }
    Ok((total, kept.freeze()))
}
