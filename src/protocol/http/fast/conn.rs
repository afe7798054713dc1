//! One HTTP/1.1 connection of a virtual user: the socket (plain or rustls), a read
//! buffer that starts small and grows only for large heads, a write buffer used
//! only for requests that are not serialized in advance, and the request/response
//! round trip over them.

use std::io;

use bytes::{Bytes, BytesMut};

use super::chunked::ChunkedDecoder;
use super::head::{self, Framing, Head, Parsed};
use crate::protocol::http::connect::{Socket, open_socket};
use crate::protocol::http::{Capture, Origin, RequestError, TlsConnectors};
use crate::scenario::MAX_CAPTURED_BODY;

/// First size of a read buffer: a typical response head fits.
const INITIAL_READ_BUFFER: usize = 1024;
/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// A read buffer that grew past this (a large head) is dropped after the response,
/// so that an idle user does not keep it.
const KEEP_READ_BUFFER: usize = 8 * 1024;

/// Received bytes not consumed yet: `data[start..end]`.
struct ReadBuf {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    fn filled(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Room to read into: moves unconsumed bytes to the front, and grows the buffer
    /// (doubling) when they fill it.
    fn spare(&mut self) -> Result<&mut [u8], RequestError> {
        if self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.data.len() {
            if self.data.len() >= MAX_HEAD {
                return Err(RequestError::Http(format!(
                    "response head too large: header block or chunk line longer than {MAX_HEAD} bytes"
                )));
            }
            let size = (self.data.len() * 2).max(INITIAL_READ_BUFFER);
            self.data.resize(size, 0);
        }
        Ok(&mut self.data[self.end..])
    }
}

/// Which bytes a round trip sends.
pub(crate) enum Outgoing<'a> {
    /// Bytes serialized in advance (a task's static request).
    Shared(&'a [u8]),
    /// The bytes rendered into the connection's write buffer ([`Conn::out`]).
    Rendered,
}

/// How a round trip failed.
pub(crate) enum Failure {
    /// A reused connection was closed by the server before any byte of the response
    /// came: the request can be sent again on a new connection.
    Stale,
    /// Anything else.
    Error(RequestError),
}

impl From<RequestError> for Failure {
    fn from(error: RequestError) -> Self {
        Self::Error(error)
    }
}

fn io_error(context: &str, error: &io::Error) -> RequestError {
    RequestError::Http(format!("{context}: {error}"))
}

/// What a round trip received.
pub(crate) struct Received {
    pub(crate) head: Head,
    pub(crate) body_len: u64,
    pub(crate) body: Bytes,
}

/// An open connection to one origin.
pub(crate) struct Conn {
    pub(crate) origin: Origin,
    pub(crate) verify: bool,
    /// The client certificate it was made with (its id; 0: none).
    pub(crate) cert: u64,
    stream: Socket,
    buf: ReadBuf,
    /// Requests rendered per send (templated ones, or with cookies) go here.
    pub(crate) out: Vec<u8>,
    /// A response was read on it: a failure before the next one's first byte may
    /// just mean the server closed it while idle.
    used: bool,
}

impl Conn {
    /// Opens a connection: TCP, then TLS (offering only HTTP/1.1) for https.
    pub(crate) async fn open(
        tls: &TlsConnectors,
        origin: &Origin,
        verify: bool,
    ) -> Result<Self, RequestError> {
        let stream = open_socket(origin, || tls.get_http1(verify)).await?;
        Ok(Self {
            origin: origin.clone(),
            verify,
            cert: 0,
            stream,
            buf: ReadBuf {
                data: Vec::new(),
                start: 0,
                end: 0,
            },
            out: Vec::new(),
            used: false,
        })
    }

    /// Reads more bytes into the buffer; 0 at the end of the stream.
    async fn read_more(&mut self) -> Result<usize, RequestError> {
        let spare = self.buf.spare()?;
        let n = self
            .stream
            .read(spare)
            .await
            .map_err(|e| io_error("read", &e))?;
        self.buf.end += n;
        Ok(n)
    }

    /// Sends one request and reads its response: the head (after any 1xx), then the
    /// body, counted, and kept (up to its limit) only when `capture.body`.
    pub(crate) async fn round_trip(
        &mut self,
        outgoing: Outgoing<'_>,
        head_request: bool,
        capture: Capture,
    ) -> Result<Received, Failure> {
        let reused = self.used;
        let stale = |error: RequestError| {
            if reused {
                Failure::Stale
            } else {
                Failure::Error(error)
            }
        };
        let bytes = match outgoing {
            Outgoing::Shared(bytes) => bytes,
            Outgoing::Rendered => &self.out[..],
        };
        if let Err(e) = self.stream.write_all(bytes).await {
            return Err(stale(io_error("write", &e)));
        }
        let mut received_any = false;
        let head = loop {
            match head::parse(self.buf.filled(), head_request, capture.headers)
                .map_err(RequestError::Http)?
            {
                Parsed::Final(head) => {
                    self.buf.consume(head.len);
                    break head;
                }
                Parsed::Informational(len) => self.buf.consume(len),
                Parsed::Partial => match self.read_more().await {
                    Ok(0) if !received_any => {
                        return Err(stale(RequestError::Http(
                            "connection closed before the response".into(),
                        )));
                    }
                    Ok(0) => {
                        return Err(Failure::Error(RequestError::Http(
                            "connection closed in the response head".into(),
                        )));
                    }
                    Ok(_) => received_any = true,
                    Err(e) if !received_any => return Err(stale(e)),
                    Err(e) => return Err(Failure::Error(e)),
                },
            }
        };
        let (body_len, body) = self.read_body(head.framing, capture.body).await?;
        self.used = true;
        if self.buf.data.len() > KEEP_READ_BUFFER && self.buf.end == 0 {
            self.buf.data = Vec::new();
        }
        Ok(Received {
            head,
            body_len,
            body,
        })
    }

    /// Reads a body as framed, counting its bytes; keeps up to
    /// [`MAX_CAPTURED_BODY`] of them when `keep`.
    async fn read_body(
        &mut self,
        framing: Framing,
        keep: bool,
    ) -> Result<(u64, Bytes), RequestError> {
        let mut total = 0u64;
        let mut kept = BytesMut::new();
        let mut sink = |data: &[u8]| {
            total += data.len() as u64;
            if keep && kept.len() < MAX_CAPTURED_BODY {
                let room = MAX_CAPTURED_BODY - kept.len();
                kept.extend_from_slice(&data[..data.len().min(room)]);
            }
        };
        match framing {
            Framing::Empty => {}
            Framing::Length(mut left) => loop {
                let filled = self.buf.filled();
                let take = filled
                    .len()
                    .min(usize::try_from(left).unwrap_or(usize::MAX));
                sink(&filled[..take]);
                self.buf.consume(take);
                left -= take as u64;
                if left == 0 {
                    break;
                }
                if self.read_more().await? == 0 {
                    return Err(RequestError::Http(format!(
                        "connection closed with {left} bytes of the body missing"
                    )));
                }
            },
            Framing::Chunked => {
                let mut decoder = ChunkedDecoder::new();
                loop {
                    let used = decoder
                        .decode(self.buf.filled(), &mut sink)
                        .map_err(RequestError::Http)?;
                    self.buf.consume(used);
                    if decoder.is_done() {
                        break;
                    }
                    if self.read_more().await? == 0 {
                        return Err(RequestError::Http(
                            "connection closed in a chunked body".into(),
                        ));
                    }
                }
            }
            Framing::UntilClose => loop {
                let filled = self.buf.filled();
                let n = filled.len();
                sink(filled);
                self.buf.consume(n);
                if self.read_more().await? == 0 {
                    break;
                }
            },
        }
        Ok((total, kept.freeze()))
    }
}
