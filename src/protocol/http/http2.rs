//! HTTP/2 connections of a [`Session`](super::Session), with the `h2` crate directly.
//!
//! The handshake gives a [`SendRequest`] and the connection future; the session
//! polls that future in the user's own task while the user waits on it
//! ([`drive`](super::drive)), as it does its HTTP/1.1 connections. Each request is
//! sent, and its response read, in that same task: no task is spawned and no channel
//! crossed per request (hyper's HTTP/2 client spawns a task per request and hands it
//! over a channel).

use std::future::poll_fn;

use bytes::{Bytes, BytesMut};
use h2::RecvStream;
use h2::client::{self, SendRequest};
use http::header::{CONNECTION, CONTENT_LENGTH, HeaderName, TE, TRANSFER_ENCODING, UPGRADE};
use http::response::Parts;
use http::{HeaderMap, HeaderValue, Method, Request};
use tokio::io::{AsyncRead, AsyncWrite};

use super::session::Driver;
use crate::scenario::MAX_CAPTURED_BODY;

// The settings of hyper's HTTP/2 client, which this client replaced: the same
// windows, frame size, header list size and buffers.
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;
const MAX_FRAME_SIZE: u32 = 16 * 1024;
const MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;
const MAX_SEND_BUFFER_SIZE: usize = 1024 * 1024;
const INITIAL_MAX_SEND_STREAMS: usize = 100;
const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;

/// The headers HTTP/2 forbids in a request (RFC 9113 §8.2.2), besides `Connection`
/// and the headers it names, and a `TE` other than `trailers`.
static CONNECTION_HEADERS: [HeaderName; 4] = [
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    TRANSFER_ENCODING,
    UPGRADE,
];

/// The sending half of an HTTP/2 connection.
pub(crate) struct Http2 {
    sender: SendRequest<Bytes>,
}

impl Http2 {
    /// The HTTP/2 handshake over `io` (TLS that negotiated `h2`): the connection's
    /// sending half, and the connection future to [`drive`](super::drive).
    pub(crate) async fn handshake<IO>(io: IO) -> Result<(Self, Driver), h2::Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_frame_size(MAX_FRAME_SIZE)
            .max_header_list_size(MAX_HEADER_LIST_SIZE)
            .max_send_buffer_size(MAX_SEND_BUFFER_SIZE)
            .initial_max_send_streams(INITIAL_MAX_SEND_STREAMS)
            .max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESET_STREAMS))
            .enable_push(false)
            .handshake::<_, Bytes>(io)
            .await?;
        let driver: Driver = Box::pin(async move {
            let _ = connection.await;
        });
        Ok((Self { sender }, driver))
    }

    /// Sends `request` (its URI in absolute form) with `body`, and reads the whole
    /// response: its head, its body's length, and its body when `keep_body`.
    pub(crate) async fn exchange(
        &mut self,
        mut request: Request<()>,
        body: Bytes,
        keep_body: bool,
    ) -> Result<(Parts, u64, Bytes), h2::Error> {
        strip_connection_headers(request.headers_mut());
        if !body.is_empty() || has_payload_semantics(request.method()) {
            request
                .headers_mut()
                .entry(CONTENT_LENGTH)
                .or_insert_with(|| HeaderValue::from(body.len()));
        }
        poll_fn(|cx| self.sender.poll_ready(cx)).await?;
        let (response, mut stream) = self.sender.send_request(request, body.is_empty())?;
        if !body.is_empty() {
            // Buffered by h2 and sent as the peer's flow-control window allows.
            stream.send_data(body, true)?;
        }
        let (parts, mut body) = response.await?.into_parts();
        let (body_len, body) = read_body(&mut body, keep_body).await?;
        Ok((parts, body_len, body))
    }
}

/// Reads a body to its end (and its trailers, if any), giving its bytes back to the
/// flow-control window as they arrive; counts them, and keeps up to
/// [`MAX_CAPTURED_BODY`] of them when `keep`.
async fn read_body(body: &mut RecvStream, keep: bool) -> Result<(u64, Bytes), h2::Error> {
    let mut total = 0u64;
    let mut kept = BytesMut::new();
    while let Some(data) = body.data().await {
        let data = data?;
        body.flow_control().release_capacity(data.len())?;
        total += data.len() as u64;
        if keep && kept.len() < MAX_CAPTURED_BODY {
            let room = MAX_CAPTURED_BODY - kept.len();
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    body.trailers().await?;
    Ok((total, kept.freeze()))
}

/// Removes the connection-specific headers HTTP/2 forbids (h2 refuses a request
/// with any of them), as hyper's HTTP/2 client did: a task written for HTTP/1.1
/// (`Connection: keep-alive`) still runs.
fn strip_connection_headers(headers: &mut HeaderMap) {
    for name in &CONNECTION_HEADERS {
        headers.remove(name);
    }
    if headers.get(TE).is_some_and(|te| te != "trailers") {
        headers.remove(TE);
    }
    if let Some(connection) = headers.remove(CONNECTION)
        && let Ok(names) = connection.to_str()
    {
        for name in names.split(',') {
            headers.remove(name.trim());
        }
    }
}

/// Whether a request of `method` has a body by definition, and so a
/// `Content-Length: 0` when it sends none (as hyper sent).
fn has_payload_semantics(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::DELETE | Method::CONNECT
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_headers_and_the_headers_they_name_are_stripped() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive, x-hop"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-hop", HeaderValue::from_static("1"));
        headers.insert(TE, HeaderValue::from_static("gzip"));
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_connection_headers(&mut headers);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert!(headers.contains_key("x-kept"));

        let mut trailers = HeaderMap::new();
        trailers.insert(TE, HeaderValue::from_static("trailers"));
        strip_connection_headers(&mut trailers);
        assert_eq!(
            trailers.get(TE).map(|v| v.as_bytes()),
            Some(&b"trailers"[..])
        );
    }

    #[test]
    fn only_methods_with_a_body_get_a_zero_length() {
        assert!(has_payload_semantics(&Method::POST));
        assert!(has_payload_semantics(&Method::PUT));
        assert!(!has_payload_semantics(&Method::GET));
        assert!(!has_payload_semantics(&Method::DELETE));
    }
}
