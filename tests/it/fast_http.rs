//! The `fast_http_user` client (loaddensity::fast_http) against real servers: a
//! scripted raw TCP server for each framing case (keep-alive, `Connection: close`,
//! HTTP/1.0, chunked, 1xx, HEAD, a kept-alive connection the server closed, a
//! server that never answers), the built-in target (redirects, cookies), nginx
//! (keep-alive, HEAD, chunked gzip) and a rustls server with an rcgen certificate.

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use loaddensity::engine::parse_tasks;
use loaddensity::http::FastSession;
use loaddensity::http::{PreparedRequest, RequestError, Response};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// The prepared request of one task (JSON as in a script).
fn prepared(task: Value) -> PreparedRequest {
    let tasks = parse_tasks(&json!([task]), None).expect("valid task");
    match tasks.tasks[0].prepared() {
        Some(request) => request.clone(),
        None => panic!("a static task"),
    }
}

async fn execute(session: &mut FastSession, task: Value) -> Result<Response, RequestError> {
    session.execute(&prepared(task)).await
}

/// What a scripted server answers to one request head: the bytes, and whether to
/// close the connection after them.
type Script = dyn Fn(&str) -> (Vec<u8>, bool) + Send + Sync;

/// A raw TCP server on a free port answering each request by its script; counts
/// the connections it accepted.
struct Scripted {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl Scripted {
    async fn start(script: impl Fn(&str) -> (Vec<u8>, bool) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let script: Arc<Script> = Arc::new(script);
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve_connection(socket, script.clone()));
            }
        });
        Self { addr, accepted }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Reads request heads (these tests send no bodies) and answers each by `script`.
async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(mut socket: S, script: Arc<Script>) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..10_000 {
        let head_end = loop {
            if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
        };
        let head = String::from_utf8_lossy(&pending[..head_end]).to_string();
        pending.drain(..head_end);
        let (answer, close) = script(&head);
        if socket.write_all(&answer).await.is_err() {
            return;
        }
        if close {
            let _ = socket.shutdown().await;
            return;
        }
    }
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

#[tokio::test]
async fn keep_alive_sends_every_request_on_one_connection() {
    let server = Scripted::start(|_| (OK.to_vec(), false)).await;
    let mut session = FastSession::new(Default::default());
    for _ in 0..20 {
        let response = execute(
            &mut session,
            json!({"method": "get", "url": server.url("/")}),
        )
        .await
        .expect("response");
        assert_eq!((response.status.as_u16(), response.body_len), (200, 2));
    }
    assert_eq!(server.accepted(), 1);
}

#[tokio::test]
async fn connection_close_opens_a_new_connection_per_request() {
    let server = Scripted::start(|_| {
        (
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nclose".to_vec(),
            true,
        )
    })
    .await;
    let mut session = FastSession::new(Default::default());
    for _ in 0..5 {
        let response = execute(
            &mut session,
            json!({"method": "get", "url": server.url("/")}),
        )
        .await
        .expect("response");
        assert_eq!(response.body_len, 5);
    }
    assert_eq!(server.accepted(), 5);
}

#[tokio::test]
async fn http_1_0_body_ends_with_the_connection() {
    let server = Scripted::start(|_| (b"HTTP/1.0 200 OK\r\n\r\nhello world".to_vec(), true)).await;
    let mut session = FastSession::new(Default::default());
    for _ in 0..3 {
        // An assertion on the body makes the client keep it.
        let mut request = prepared(json!({"method": "get", "url": server.url("/")}));
        request.capture.body = true;
        let response = session.execute(&request).await.expect("response");
        assert_eq!(response.body_len, 11);
        assert_eq!(&response.body[..], b"hello world");
    }
    assert_eq!(server.accepted(), 3);
}

#[tokio::test]
async fn chunked_bodies_are_decoded_and_the_connection_kept() {
    let server = Scripted::start(|_| {
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nTrailer: t\r\n\r\n".to_vec(),
            false,
        )
    })
    .await;
    let mut session = FastSession::new(Default::default());
    for _ in 0..3 {
        let mut request = prepared(json!({"method": "get", "url": server.url("/")}));
        request.capture.body = true;
        let response = session.execute(&request).await.expect("response");
        assert_eq!(&response.body[..], b"Wikipedia");
        assert_eq!(response.body_len, 9);
    }
    assert_eq!(server.accepted(), 1);
}

#[tokio::test]
async fn informational_responses_are_skipped() {
    let server = Scripted::start(|_| {
        let mut answer =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n".to_vec();
        answer.extend_from_slice(OK);
        (answer, false)
    })
    .await;
    let mut session = FastSession::new(Default::default());
    for _ in 0..2 {
        let response = execute(
            &mut session,
            json!({"method": "get", "url": server.url("/")}),
        )
        .await
        .expect("response");
        assert_eq!((response.status.as_u16(), response.body_len), (200, 2));
    }
    assert_eq!(server.accepted(), 1);
}

#[tokio::test]
async fn a_head_response_has_no_body_whatever_its_length() {
    let server = Scripted::start(|head| {
        if head.starts_with("HEAD ") {
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec(),
                false,
            )
        } else {
            (OK.to_vec(), false)
        }
    })
    .await;
    let mut session = FastSession::new(Default::default());
    let head = execute(
        &mut session,
        json!({"method": "head", "url": server.url("/")}),
    )
    .await
    .expect("HEAD");
    assert_eq!((head.status.as_u16(), head.body_len), (200, 0));
    let get = execute(
        &mut session,
        json!({"method": "get", "url": server.url("/")}),
    )
    .await
    .expect("GET after HEAD on the same connection");
    assert_eq!(get.body_len, 2);
    assert_eq!(server.accepted(), 1);
}

#[tokio::test]
async fn a_kept_alive_connection_closed_by_the_server_is_replaced() {
    // Answers as if keeping the connection, then closes it (an idle timeout).
    let server = Scripted::start(|_| (OK.to_vec(), true)).await;
    let mut session = FastSession::new(Default::default());
    for _ in 0..3 {
        let response = execute(
            &mut session,
            json!({"method": "get", "url": server.url("/")}),
        )
        .await
        .expect("resent on a new connection");
        assert_eq!(response.body_len, 2);
    }
    assert_eq!(server.accepted(), 3);
}

#[tokio::test]
async fn a_response_cut_short_is_an_error() {
    let server = Scripted::start(|_| {
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec(),
            true,
        )
    })
    .await;
    let mut session = FastSession::new(Default::default());
    let error = execute(
        &mut session,
        json!({"method": "get", "url": server.url("/")}),
    )
    .await
    .expect_err("cut short");
    assert!(
        error.to_string().contains("7 bytes of the body missing"),
        "{error}"
    );
}

#[tokio::test]
async fn the_timeout_bounds_a_request_and_the_timer_is_reused() {
    let silent = Scripted::start(|head| {
        if head.starts_with("GET /slow") {
            (Vec::new(), false)
        } else {
            (OK.to_vec(), false)
        }
    })
    .await;
    let mut session = FastSession::new(Default::default());
    // A long deadline first: the timer is armed for it, and must still fire in
    // time for the shorter one after.
    execute(
        &mut session,
        json!({"method": "get", "url": silent.url("/"), "timeout": 30}),
    )
    .await
    .expect("fast answer");
    let started = std::time::Instant::now();
    let error = execute(
        &mut session,
        json!({"method": "get", "url": silent.url("/slow"), "timeout": 0.3}),
    )
    .await
    .expect_err("no answer");
    assert!(matches!(error, RequestError::Timeout(_)), "{error}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // The timed-out connection was dropped; the next request opens another.
    execute(
        &mut session,
        json!({"method": "get", "url": silent.url("/"), "timeout": 0.3}),
    )
    .await
    .expect("a new connection");
    assert_eq!(silent.accepted(), 2);
}

#[test]
fn redirects_and_cookies_against_the_built_in_target() {
    let target = common::Target::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut session = FastSession::new(Default::default());
        let followed = execute(
            &mut session,
            json!({"method": "get", "url": target.url("/redirect/3")}),
        )
        .await
        .expect("followed");
        assert_eq!(followed.status.as_u16(), 200);
        let not_followed = execute(
            &mut session,
            json!({"method": "get", "url": target.url("/redirect/3"), "allow_redirects": false}),
        )
        .await
        .expect("not followed");
        assert!(not_followed.status.is_redirection());
        let too_many = execute(
            &mut session,
            json!({"method": "get", "url": target.url("/redirect/20")}),
        )
        .await
        .expect_err("too many");
        assert!(
            too_many.to_string().contains("more than 10 redirects"),
            "{too_many}"
        );

        let url = url::Url::parse(&target.url("/")).expect("url");
        assert!(session.cookies_for(&url).is_empty());
        let login = execute(
            &mut session,
            json!({"method": "post", "url": target.url("/login")}),
        )
        .await
        .expect("login");
        assert_eq!(login.status.as_u16(), 200);
        assert!(
            !session.cookies_for(&url).is_empty(),
            "the session cookie is kept"
        );
        // The jar's cookie joins the request's own Cookie header on the wire.
        let mut echo = prepared(json!({
            "method": "get", "url": target.url("/echo"), "headers": {"Cookie": "own=1"}
        }));
        echo.capture.body = true;
        let echoed = session.execute(&echo).await.expect("echo");
        let text = String::from_utf8_lossy(&echoed.body).to_lowercase();
        assert!(text.contains("own=1; "), "{text}");
    });
}

/// A TLS server (rustls, a fresh rcgen certificate for `localhost`) that would pick
/// HTTP/2 if offered, answering every request with [`OK`] and `alpn=<protocol>`.
async fn start_tls_server() -> SocketAddr {
    let acceptor = common::tls_acceptor(&[b"h2", b"http/1.1"]);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(socket).await else {
                    return;
                };
                let alpn = tls
                    .get_ref()
                    .1
                    .alpn_protocol()
                    .map(|p| String::from_utf8_lossy(p).to_string())
                    .unwrap_or_default();
                let answer =
                    format!("HTTP/1.1 200 OK\r\nX-Alpn: {alpn}\r\nContent-Length: 2\r\n\r\nok");
                let script: Arc<Script> = Arc::new(move |_| (answer.clone().into_bytes(), false));
                serve_connection(tls, script).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn tls_through_rustls_offers_http_1_1_only() {
    let addr = start_tls_server().await;
    let url = format!("https://localhost:{}/", addr.port());
    let mut session = FastSession::new(Default::default());
    for _ in 0..3 {
        let mut request = prepared(json!({"method": "get", "url": url, "verify": false}));
        request.capture.headers = true;
        let response = session.execute(&request).await.expect("response over TLS");
        assert_eq!((response.status.as_u16(), response.body_len), (200, 2));
        assert_eq!(response.headers["x-alpn"], "http/1.1");
    }
    // The self-signed certificate fails verification.
    let error = execute(&mut session, json!({"method": "get", "url": url}))
        .await
        .expect_err("unverifiable certificate");
    assert!(matches!(error, RequestError::Tls { .. }), "{error}");
}

/// nginx on free ports, serving a fixed body, and gzip (so chunked) for `/gz`.
struct Nginx {
    port: u16,
    _server: common::nginx::Nginx,
}

impl Nginx {
    fn start() -> Self {
        let port = common::closed_port();
        let conf = format!(
            "worker_processes 1; daemon off; pid {{d}}/nginx.pid; error_log {{d}}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off; client_body_temp_path {{d}}/body; proxy_temp_path {{d}}/proxy;
  fastcgi_temp_path {{d}}/fastcgi; uwsgi_temp_path {{d}}/uwsgi; scgi_temp_path {{d}}/scgi;
  gzip on; gzip_min_length 1; gzip_types text/plain;
  server {{
    listen 127.0.0.1:{port};
    location / {{ default_type text/plain; return 200 \"ok\"; }}
    location /gz {{ default_type text/plain; return 200 \"{}\"; }}
  }}
}}
",
            "z".repeat(3000)
        );
        Self {
            port,
            _server: common::nginx::Nginx::start(common::Workdir::new(), &conf, port),
        }
    }
}

#[tokio::test]
async fn nginx_keep_alive_head_and_chunked_gzip() {
    let nginx = Nginx::start();
    let base = format!("http://127.0.0.1:{}", nginx.port);
    let mut session = FastSession::new(Default::default());
    for _ in 0..50 {
        let response = execute(
            &mut session,
            json!({"method": "get", "url": format!("{base}/")}),
        )
        .await
        .expect("response");
        assert_eq!((response.status.as_u16(), response.body_len), (200, 2));
    }
    let head = execute(
        &mut session,
        json!({"method": "head", "url": format!("{base}/gz")}),
    )
    .await
    .expect("HEAD");
    assert_eq!((head.status.as_u16(), head.body_len), (200, 0));
    let mut gz = prepared(json!({
        "method": "get", "url": format!("{base}/gz"), "headers": {"Accept-Encoding": "gzip"}
    }));
    gz.capture.headers = true;
    gz.capture.body = true;
    let response = session.execute(&gz).await.expect("gzip");
    assert_eq!(response.headers["transfer-encoding"], "chunked");
    assert_eq!(response.headers["content-encoding"], "gzip");
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&response.body[..]),
        &mut text,
    )
    .expect("a whole gzip stream");
    assert_eq!(text, "z".repeat(3000));
    assert_eq!(response.body_len, response.body.len() as u64);
}

/// Every user's task holds this future: keep it small (bench/memory.sh).
#[test]
fn the_request_future_stays_small() {
    let request = prepared(json!({"method": "get", "url": "http://127.0.0.1:1/"}));
    let mut session = FastSession::new(Default::default());
    let size = std::mem::size_of_val(&session.execute(&request));
    assert!(size <= 1280, "FastSession::execute future is {size} bytes");
    assert!(std::mem::size_of::<FastSession>() <= 64);
}
