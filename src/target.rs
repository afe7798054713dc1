//! The built-in target server, for demos, tests and benchmarks.
//!
//! Routes: `/` (a short text), `/json` (a small JSON document), `/bytes/N` (N bytes),
//! `/delay/MS` (answers after MS milliseconds), `/status/CODE` (that status),
//! `/redirect/N` (N redirects, then 200), `/items/N` (one item as JSON), `/echo` (what the request carried, as
//! JSON), `/login` (a fresh token, bound to the connection that asked for it, and a
//! session cookie) and `/whoami` (200 for a bearer token issued on this same
//! connection, 403 for another connection's, 401 for none).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::json;
use tokio::net::TcpListener;

use crate::serve::{PeerAddr, serve_http1};
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

/// What `/login` handed out: token → the connection it was issued on.
#[derive(Debug, Default)]
struct Sessions {
    issued: AtomicU64,
    tokens: Mutex<HashMap<String, SocketAddr>>,
}

async fn serve(listener: TcpListener, shutdown: CancellationToken) {
    let sessions = Arc::new(Sessions::default());
    serve_http1(listener, shutdown, move |request: Request<Incoming>| {
        let sessions = sessions.clone();
        async move {
            match route(request, &sessions).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    })
    .await;
}

/// Largest request body `/echo` reads.
const MAX_ECHO: usize = 1024 * 1024;

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    respond(
        status,
        "application/json",
        Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
    )
}

async fn echo(request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_ECHO).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return respond(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/plain",
                Bytes::from_static(b"echo: body over 1 MiB"),
            );
        }
    };
    let mut headers = serde_json::Map::new();
    for (name, value) in &parts.headers {
        let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            Some(serde_json::Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&text);
            }
            _ => {
                headers.insert(name.as_str().to_string(), text.into());
            }
        }
    }
    json_response(
        StatusCode::OK,
        &json!({
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "query": parts.uri.query().unwrap_or(""),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        }),
    )
}

fn login(peer: Option<SocketAddr>, sessions: &Sessions) -> Response<Full<Bytes>> {
    let n = sessions.issued.fetch_add(1, Ordering::Relaxed) + 1;
    let token = format!("tok-{n}");
    if let Some(peer) = peer {
        sessions
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.clone(), peer);
    }
    let mut response = json_response(StatusCode::OK, &json!({"data": {"token": token, "n": n}}));
    let headers = response.headers_mut();
    if let Ok(id) = HeaderValue::from_str(&format!("req-{n}")) {
        headers.insert("x-request-id", id);
    }
    if let Ok(cookie) = HeaderValue::from_str(&format!("session=s{n}; Path=/")) {
        headers.insert(SET_COOKIE, cookie);
    }
    response
}

fn whoami(request: &Request<Incoming>, sessions: &Sessions) -> Response<Full<Bytes>> {
    let peer = request.extensions().get::<PeerAddr>().map(|p| p.0);
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "no bearer token"}),
        );
    };
    let issued_to = sessions
        .tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(token)
        .copied();
    let cookie = request
        .headers()
        .get(COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match issued_to {
        Some(owner) if Some(owner) == peer => {
            json_response(StatusCode::OK, &json!({"token": token, "cookie": cookie}))
        }
        Some(_) => json_response(
            StatusCode::FORBIDDEN,
            &json!({"error": "token issued to another connection", "token": token}),
        ),
        None => json_response(StatusCode::UNAUTHORIZED, &json!({"error": "unknown token"})),
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

async fn route(
    request: Request<Incoming>,
    sessions: &Sessions,
) -> Result<Response<Full<Bytes>>, Infallible> {
    match request.uri().path() {
        "/echo" => return Ok(echo(request).await),
        "/login" => {
            let peer = request.extensions().get::<PeerAddr>().map(|p| p.0);
            return Ok(login(peer, sessions));
        }
        "/whoami" => return Ok(whoami(&request, sessions)),
        _ => {}
    }
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
    } else if let Some(id) = path.strip_prefix("/items/") {
        match id.parse::<u64>() {
            Ok(id) => json_response(
                StatusCode::OK,
                &json!({"id": id, "name": format!("item-{id}"), "price": id * 3}),
            ),
            Err(_) => text(StatusCode::NOT_FOUND, "items: expected a numeric id"),
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
