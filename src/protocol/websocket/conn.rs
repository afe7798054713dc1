//! The WebSocket connection code `websocket_user` and `graphql_ws_user` share:
//! opening a connection (headers, subprotocol, rustls for `wss://`), reading the
//! next data message, and the close handshake. Failures name the URL without its
//! credentials.

use futures_util::StreamExt;
use http::{HeaderName, HeaderValue};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::protocol::Failure;
use crate::protocol::http::TlsConnectors;
use crate::redact::redact_url_credentials;

/// An open WebSocket connection.
pub(crate) type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A data message.
pub(crate) enum Data {
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

/// Opens a connection to `url` with `headers` and, when given, the
/// `Sec-WebSocket-Protocol` header `protocol`; `wss://` uses `tls`.
pub(crate) async fn open(
    url: &str,
    headers: &[(HeaderName, HeaderValue)],
    protocol: Option<&HeaderValue>,
    tls: &TlsConnectors,
    verify: bool,
) -> Result<Stream, Failure> {
    let shown = redact_url_credentials(url);
    let mut request = url
        .into_client_request()
        .map_err(|e| format!("`{shown}` is not a WebSocket URL: {e}"))?;
    for (name, value) in headers {
        request.headers_mut().insert(name.clone(), value.clone());
    }
    if let Some(protocol) = protocol {
        request
            .headers_mut()
            .insert(SEC_WEBSOCKET_PROTOCOL, protocol.clone());
    }
    let connector = if url.len() >= 6 && url[..6].eq_ignore_ascii_case("wss://") {
        Connector::Rustls(tls.get_http1(verify).config().clone())
    } else {
        Connector::Plain
    };
    let (stream, _response) =
        tokio_tungstenite::connect_async_tls_with_config(request, None, true, Some(connector))
            .await
            .map_err(|e| Failure::connect(format!("connect to `{shown}` failed: {e}")))?;
    Ok(stream)
}

/// The close handshake: sends ours and reads until the peer's.
pub(crate) async fn close(stream: &mut Stream) {
    let _ = WebSocketStream::close(stream, None).await;
    // Bounded by the peer's close (or the connection's end).
    while let Some(Ok(_)) = stream.next().await {}
}

/// The next data message; pings are answered by the library. A closed or failed
/// connection is a network failure.
pub(crate) async fn receive(stream: &mut Stream) -> Result<Data, Failure> {
    // Bounded by the step's timeout; control frames only in between.
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => return Ok(Data::Text(text)),
            Some(Ok(Message::Binary(bytes))) => return Ok(Data::Binary(bytes)),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Close(frame))) => {
                return Err(Failure::network(match frame {
                    Some(f) => format!(
                        "the server closed the connection (code {}{}{})",
                        u16::from(f.code),
                        if f.reason.is_empty() { "" } else { ": " },
                        f.reason
                    ),
                    None => "the server closed the connection".into(),
                }));
            }
            Some(Err(e)) => return Err(Failure::network(format!("receive failed: {e}"))),
            None => return Err(Failure::network("the connection is closed")),
        }
    }
}
