//! The built-in target server, for demos, tests and benchmarks.
//!
//! Routes: `/` (a short text), `/json` (a small JSON document), `/bytes/N` (N bytes),
//! `/delay/MS` (answers after MS milliseconds), `/status/CODE` (that status) and
//! `/redirect/N` (N redirects, then 200).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::net::TcpListener;

use crate::serve::serve_http1;
use tokio_util::sync::CancellationToken;

/// Largest body `/bytes/N` serves.
pub const MAX_BYTES: usize = 16 * 1024 * 1024;
/// Longest delay `/delay/MS` waits.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

static JSON_BODY: &[u8] =
    br#"{"status":"ok","items":[{"id":1,"name":"alpha"},{"id":2,"name":"beta"}]}"#;

/// A running target server.
#[derive(Debug)]
pub struct TargetServer {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl TargetServer {
    /// Binds `addr` (port 0 picks a free port) and starts serving in the background.
    pub async fn start(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(listener, shutdown.clone()));
        Ok(Self {
            addr,
            shutdown,
            task,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes every connection and frees the port.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

async fn serve(listener: TcpListener, shutdown: CancellationToken) {
    serve_http1(
        listener,
        shutdown,
        |request: Request<Incoming>| async move {
            match route(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        },
    )
    .await;
}

fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

async fn route(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path();
    let text = |status: StatusCode, body: &'static str| {
        respond(status, "text/plain", Bytes::from_static(body.as_bytes()))
    };
    let response = if path == "/" {
        text(StatusCode::OK, "ok")
    } else if path == "/json" {
        respond(
            StatusCode::OK,
            "application/json",
            Bytes::from_static(JSON_BODY),
        )
    } else if let Some(n) = path.strip_prefix("/bytes/") {
        match n.parse::<usize>() {
            Ok(n) if n <= MAX_BYTES => respond(
                StatusCode::OK,
                "application/octet-stream",
                Bytes::from(vec![b'x'; n]),
            ),
            _ => text(StatusCode::BAD_REQUEST, "bytes: expected 0..=16777216"),
        }
    } else if let Some(ms) = path.strip_prefix("/delay/") {
        match ms.parse::<u64>().map(Duration::from_millis) {
            Ok(delay) if delay <= MAX_DELAY => {
                tokio::time::sleep(delay).await;
                text(StatusCode::OK, "ok")
            }
            _ => text(StatusCode::BAD_REQUEST, "delay: expected 0..=60000 ms"),
        }
    } else if let Some(hops) = path.strip_prefix("/redirect/") {
        match hops.parse::<u32>() {
            Ok(0) => text(StatusCode::OK, "ok"),
            Ok(n) => {
                let mut response = text(StatusCode::FOUND, "");
                if let Ok(location) = HeaderValue::from_str(&format!("/redirect/{}", n - 1)) {
                    response.headers_mut().insert(LOCATION, location);
                }
                response
            }
            Err(_) => text(StatusCode::BAD_REQUEST, "redirect: expected a hop count"),
        }
    } else if let Some(code) = path.strip_prefix("/status/") {
        match code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
        {
            Some(status) => text(status, "status"),
            None => text(StatusCode::BAD_REQUEST, "status: expected 100..=999"),
        }
    } else {
        text(StatusCode::NOT_FOUND, "not found")
    };
    Ok(response)
}
