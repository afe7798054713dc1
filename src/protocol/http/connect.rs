//! Opening a connection's socket, for both HTTP clients: TCP with Nagle off, then
//! for https the TLS handshake (rustls).

use std::io;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{Origin, RequestError};

/// An open socket to an origin.
pub(crate) enum Socket {
    /// Plain TCP (http).
    Plain(TcpStream),
    /// TLS over TCP (https). Boxed: rustls's connection state is large, and most
    /// targets are plain.
    Tls(Box<TlsStream<TcpStream>>),
}

/// Opens a socket to `origin`: TCP, then for https the TLS handshake with the
/// connector `tls` returns (asked for only then, so that plain http never builds
/// one).
pub(crate) async fn open_socket<'a>(
    origin: &Origin,
    tls: impl FnOnce() -> &'a TlsConnector,
) -> Result<Socket, RequestError> {
    let tcp = TcpStream::connect((&*origin.host, origin.port))
        .await
        .map_err(|source| RequestError::Connect {
            host: origin.host.clone(),
            port: origin.port,
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    if !origin.https {
        return Ok(Socket::Plain(tcp));
    }
    let name = ServerName::try_from(origin.host.to_string())
        .map_err(|_| RequestError::ServerName(origin.host.clone()))?;
    let stream = tls()
        .connect(name, tcp)
        .await
        .map_err(|source| RequestError::Tls {
            host: origin.host.clone(),
            source,
        })?;
    Ok(Socket::Tls(Box::new(stream)))
}

impl Socket {
    /// Reads what has arrived into `buf`; 0 at the end of the stream.
    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf).await,
            Self::Tls(s) => match s.read(buf).await {
                // A server that closes without close_notify ends the stream too.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }

    /// Writes all of `bytes` (and flushes them out of TLS).
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.write_all(bytes).await,
            Self::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }
}
