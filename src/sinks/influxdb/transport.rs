//! How batches of lines leave the process: UDP datagrams, or HTTP(S) POSTs.
//!
//! UDP packs whole lines into datagrams of at most `udp_payload_bytes` and never
//! splits a line. HTTP keeps one keep-alive HTTP/1.1 connection (rustls for https),
//! posts `text/plain; charset=utf-8`, optionally gzip-compressed, with
//! `Authorization: Token <token>` when a token is given. The token is a [`Token`],
//! whose `Debug` and `Display` print `<redacted>`, and its header is marked sensitive.

use std::io::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};

use crate::sinks::http_post::{HttpPoster, PostError};

/// The largest UDP payload IPv4 can carry.
const MAX_DATAGRAM: usize = 65_507;

/// An API token. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, for the `Authorization` header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    /// The server refused the batch (4xx): sending it again would not help.
    #[error("HTTP {status}: {body}")]
    Rejected {
        /// The status.
        status: StatusCode,
        /// The start of the response body.
        body: String,
    },
    /// The server failed (5xx): worth retrying.
    #[error("HTTP {status}: {body}")]
    ServerError {
        /// The status.
        status: StatusCode,
        /// The start of the response body.
        body: String,
    },
    /// No answer in time: worth retrying.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// Connecting, TLS, or the exchange failed: worth retrying.
    #[error("{0}")]
    Io(String),
}

impl WriteError {
    /// True when sending the same batch again may succeed.
    pub(crate) fn retryable(&self) -> bool {
        !matches!(self, WriteError::Rejected { .. })
    }
}

/// Sends the lines of a batch as UDP datagrams.
#[derive(Debug)]
pub(crate) struct UdpTransport {
    socket: UdpSocket,
    payload: usize,
}

impl UdpTransport {
    /// A socket bound to an ephemeral port of the right family, connected to `target`.
    pub(crate) fn connect(target: SocketAddr, payload: usize) -> std::io::Result<Self> {
        let bind: SocketAddr = if target.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(bind)?;
        socket.connect(target)?;
        Ok(Self {
            socket,
            payload: payload.clamp(1, MAX_DATAGRAM),
        })
    }

    /// The largest datagram payload.
    pub(crate) fn payload(&self) -> usize {
        self.payload
    }

    /// Sends `body` (whole lines, each ending with a newline) in datagrams; with
    /// `keep_partial`, a last datagram that is not full stays unsent. Returns what was
    /// done with it.
    pub(crate) fn send(&self, body: &[u8], keep_partial: bool) -> UdpSent {
        let mut done = UdpSent::default();
        for datagram in Datagrams::new(body, self.payload) {
            if keep_partial
                && done.consumed + datagram.len() == body.len()
                && datagram.len() < self.payload
            {
                break;
            }
            done.consumed += datagram.len();
            let lines = memchr::memchr_iter(b'\n', datagram).count();
            if datagram.len() > MAX_DATAGRAM {
                done.lost += lines;
                done.oversized = true;
                continue;
            }
            match self.socket.send(datagram) {
                Ok(_) => done.sent += lines,
                Err(error) => {
                    done.lost += lines;
                    done.error.get_or_insert(error);
                }
            }
        }
        done
    }
}

/// What [`UdpTransport::send`] did.
#[derive(Debug, Default)]
pub(crate) struct UdpSent {
    /// Bytes of the body sent or given up.
    pub(crate) consumed: usize,
    /// Lines sent.
    pub(crate) sent: usize,
    /// Lines lost: a send error, or a line longer than a datagram can be.
    pub(crate) lost: usize,
    /// A line was longer than a datagram can be.
    pub(crate) oversized: bool,
    /// The first send error.
    pub(crate) error: Option<std::io::Error>,
}

/// Splits whole lines into chunks of at most `limit` bytes. A line longer than `limit`
/// is a chunk of its own.
#[derive(Debug)]
pub(crate) struct Datagrams<'a> {
    rest: &'a [u8],
    limit: usize,
}

impl<'a> Datagrams<'a> {
    /// The datagrams of `body`.
    pub(crate) fn new(body: &'a [u8], limit: usize) -> Self {
        Self {
            rest: body,
            limit: limit.max(1),
        }
    }
}

impl<'a> Iterator for Datagrams<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let end = if self.rest.len() <= self.limit {
            self.rest.len()
        } else {
            match memchr::memrchr(b'\n', &self.rest[..self.limit]) {
                Some(newline) => newline + 1,
                // One line longer than a datagram: on its own.
                None => memchr::memchr(b'\n', &self.rest[self.limit..])
                    .map_or(self.rest.len(), |i| self.limit + i + 1),
            }
        };
        let (chunk, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(chunk)
    }
}

/// Where and how to POST batches.
#[derive(Clone)]
pub(crate) struct HttpTarget {
    /// The full URL (the `Debug` of the sink never prints it: it may carry a password).
    pub(crate) uri: Uri,
    /// Host name or IP literal, without brackets.
    pub(crate) host: String,
    /// Port.
    pub(crate) port: u16,
    /// https.
    pub(crate) https: bool,
    /// The token, if any.
    pub(crate) token: Option<Token>,
    /// Compress bodies with gzip.
    pub(crate) gzip: bool,
}

impl std::fmt::Debug for HttpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTarget")
            .field("url", &self.display())
            .field("token", &self.token)
            .field("gzip", &self.gzip)
            .finish()
    }
}

impl HttpTarget {
    /// Scheme, host, port and path, without the query (which may hold credentials).
    pub(crate) fn display(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}{}", self.port, self.uri.path())
    }
}

/// A keep-alive HTTP/1.1 client for one [`HttpTarget`].
pub(crate) struct HttpTransport {
    target: HttpTarget,
    poster: HttpPoster,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("target", &self.target.display())
            .field("token", &self.target.token.as_ref().map(|_| "<redacted>"))
            .field("gzip", &self.target.gzip)
            .finish_non_exhaustive()
    }
}

impl HttpTransport {
    /// A client for `target`; connects on the first send.
    pub(crate) fn new(target: HttpTarget) -> Result<Self, String> {
        let host_header = if target.port == if target.https { 443 } else { 80 } {
            target.uri.host().unwrap_or(&target.host).to_string()
        } else {
            format!(
                "{}:{}",
                target.uri.host().unwrap_or(&target.host),
                target.port
            )
        };
        let host_header = HeaderValue::from_str(&host_header)
            .map_err(|_| "the URL's host is not a valid Host header".to_string())?;
        let authorization = match &target.token {
            Some(token) => {
                let mut value = HeaderValue::from_str(&format!("Token {}", token.expose()))
                    .map_err(|_| {
                        "the token holds characters an HTTP header cannot carry".to_string()
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let mut headers = HeaderMap::new();
        headers.insert(HOST, host_header);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(USER_AGENT, HeaderValue::from_static("loaddensity"));
        if target.gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        if let Some(authorization) = authorization {
            headers.insert(AUTHORIZATION, authorization);
        }
        let poster = HttpPoster::new(
            &target.uri,
            target.host.clone(),
            target.port,
            target.https,
            headers,
            target.display(),
        );
        Ok(Self { target, poster })
    }

    /// Drops the connection; the next send opens a new one.
    pub(crate) fn reset(&mut self) {
        self.poster.reset();
    }

    /// POSTs one batch and waits at most `timeout` for the whole exchange.
    pub(crate) async fn send(&mut self, body: &[u8], timeout: Duration) -> Result<(), WriteError> {
        let result = match self.body(body) {
            Ok(body) => self.poster.post(body, timeout).await.map_err(write_error),
            Err(error) => Err(error),
        };
        if result.as_ref().is_err_and(WriteError::retryable) {
            // The connection may be in any state: start afresh.
            self.poster.reset();
        }
        result
    }

    /// The body as sent: the lines, gzip-compressed when the target asks for it.
    fn body(&self, body: &[u8]) -> Result<Bytes, WriteError> {
        if !self.target.gzip {
            return Ok(Bytes::copy_from_slice(body));
        }
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4 + 64),
            flate2::Compression::fast(),
        );
        encoder
            .write_all(body)
            .map_err(|e| WriteError::Io(format!("gzip: {e}")))?;
        let compressed = encoder
            .finish()
            .map_err(|e| WriteError::Io(format!("gzip: {e}")))?;
        Ok(Bytes::from(compressed))
    }
}

/// A failed POST as the flusher sees it: a 4xx is rejected (not retried), any other
/// status a server error.
fn write_error(error: PostError) -> WriteError {
    match error {
        PostError::Status { status, body } if status.is_client_error() => {
            WriteError::Rejected { status, body }
        }
        PostError::Status { status, body } => WriteError::ServerError { status, body },
        PostError::Timeout(timeout) => WriteError::Timeout(timeout),
        error @ (PostError::TlsName(_) | PostError::Io(_)) => WriteError::Io(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(body: &str, limit: usize) -> Vec<&str> {
        Datagrams::new(body.as_bytes(), limit)
            .map(|c| std::str::from_utf8(c).expect("utf8"))
            .collect()
    }

    #[test]
    fn datagrams_never_split_a_line() {
        let body = "aaaa\nbbbb\ncc\nddddddddddddd\ne\n";
        assert_eq!(
            chunks(body, 10),
            ["aaaa\nbbbb\n", "cc\n", "ddddddddddddd\n", "e\n"]
        );
        assert_eq!(chunks(body, 1000), [body]);
        assert_eq!(chunks("", 10), Vec::<&str>::new());
        for limit in 1..40 {
            let all: Vec<&str> = chunks(body, limit);
            assert_eq!(all.concat(), body);
            for chunk in all {
                assert!(chunk.ends_with('\n'));
                assert!(chunk.len() <= limit || chunk.matches('\n').count() == 1);
            }
        }
    }

    #[test]
    fn udp_sends_whole_lines_and_keeps_the_partial_datagram() {
        let receiver = UdpSocket::bind("127.0.0.1:0").expect("bind");
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let udp = UdpTransport::connect(receiver.local_addr().expect("addr"), 64).expect("udp");
        let line = "m,name=a\\ b latency_ms=1.5,response_bytes=3i,success=true 1\n";
        assert!(line.len() < 64 && 2 * line.len() > 64);
        let body = line.repeat(5);
        let done = udp.send(body.as_bytes(), true);
        // Five lines of more than 32 bytes: one a datagram; the last stays.
        assert_eq!(
            (done.sent, done.lost, done.consumed),
            (4, 0, 4 * line.len())
        );
        let mut buffer = [0u8; 2048];
        for _ in 0..4 {
            let n = receiver.recv(&mut buffer).expect("datagram");
            assert_eq!(&buffer[..n], line.as_bytes());
        }
        let done = udp.send(&body.as_bytes()[done.consumed..], false);
        assert_eq!((done.sent, done.consumed), (1, line.len()));
        let n = receiver.recv(&mut buffer).expect("datagram");
        assert_eq!(&buffer[..n], line.as_bytes());
    }

    #[test]
    fn token_is_redacted() {
        let token = Token::new("s3cr3t");
        assert_eq!(format!("{token:?} {token}"), "<redacted> <redacted>");
        let target = HttpTarget {
            uri: "http://127.0.0.1:8086/write?db=x&p=pw"
                .parse()
                .expect("uri"),
            host: "127.0.0.1".into(),
            port: 8086,
            https: false,
            token: Some(token),
            gzip: false,
        };
        assert_eq!(target.display(), "http://127.0.0.1:8086/write");
        let debug = format!("{target:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        let transport = HttpTransport::new(target).expect("transport");
        let debug = format!("{transport:?}");
        assert!(
            !debug.contains("s3cr3t") && !debug.contains("pw"),
            "{debug}"
        );
    }
}
