//! An OTLP receiver for the OpenTelemetry tests: a tonic server with the test's
//! official `opentelemetry-proto` service (gRPC), or a hyper server decoding the
//! protobuf bodies POSTed to one path (OTLP/HTTP), on a free loopback port with its
//! own runtime; stopped on drop. Each export is kept with its path and headers.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use prost::Message;
use tokio_util::sync::CancellationToken;

/// One export as a receiver got it.
#[derive(Debug, Clone)]
pub struct Received<T> {
    /// The HTTP path (or the name the gRPC service records).
    pub path: String,
    /// The request headers (gRPC metadata), as text.
    pub headers: BTreeMap<String, String>,
    /// The decoded export request.
    pub request: T,
}

/// What a receiver has got so far.
pub type Inbox<T> = Arc<Mutex<Vec<Received<T>>>>;

/// The headers a receiver saw, as text pairs.
pub fn header_pairs<C: FromIterator<(String, String)>>(headers: &http::HeaderMap) -> C {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// An OTLP receiver of export requests `T`.
pub struct Receiver<T> {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    inbox: Inbox<T>,
    shutdown: CancellationToken,
}

/// Serves HTTP/1.1 on `listener` (on `runtime`) until `token` is cancelled,
/// answering each request with `handle`.
pub fn serve<F, Fut>(
    runtime: &tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    token: CancellationToken,
    handle: F,
) where
    F: Fn(hyper::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = hyper::Response<Full<Bytes>>> + Send + 'static,
{
    runtime.spawn(async move {
        // Bounded by the server's life: it ends when the token is cancelled.
        loop {
            let stream = tokio::select! {
                _ = token.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => continue,
                },
            };
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let answer = handle(request);
                    async move { Ok::<_, std::convert::Infallible>(answer.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

impl<T: Message + Default + Clone + Send + 'static> Receiver<T> {
    /// gRPC: the tonic router `router` makes around the inbox (the official service
    /// whose `export` pushes to it).
    pub fn grpc(router: impl FnOnce(Inbox<T>) -> tonic::transport::server::Router) -> Self {
        let (runtime, listener) = super::loopback_server();
        let addr = listener.local_addr().expect("addr");
        let inbox = Inbox::default();
        let shutdown = CancellationToken::new();
        let server = router(inbox.clone()).serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown.clone().cancelled_owned(),
        );
        runtime.spawn(server);
        Self {
            runtime,
            addr,
            inbox,
            shutdown,
        }
    }

    /// OTLP/HTTP: POST `path` with a protobuf `T`.
    pub fn http(path: &'static str) -> Self {
        let (runtime, listener) = super::loopback_server();
        let addr = listener.local_addr().expect("addr");
        let inbox = Inbox::default();
        let shutdown = CancellationToken::new();
        let sink = inbox.clone();
        serve(&runtime, listener, shutdown.clone(), move |request| {
            let sink = sink.clone();
            async move { http_export(request, path, &sink).await }
        });
        Self {
            runtime,
            addr,
            inbox,
            shutdown,
        }
    }

    /// The receiver's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every export received so far.
    pub fn received(&self) -> Vec<Received<T>> {
        self.inbox.lock().expect("inbox").clone()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.runtime
            .block_on(async { tokio::time::sleep(Duration::from_millis(10)).await });
    }
}

/// One OTLP/HTTP export: 404 off `path`, 415 without the protobuf content type,
/// 400 for a body that is not a `T`; else kept, and answered with an empty export
/// response (no `partial_success`, which encodes to no bytes).
async fn http_export<T: Message + Default>(
    request: hyper::Request<Incoming>,
    path: &str,
    inbox: &Inbox<T>,
) -> hyper::Response<Full<Bytes>> {
    let respond = |status: u16| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", "application/x-protobuf")
            .body(Full::new(Bytes::new()))
            .expect("response")
    };
    if request.method() != hyper::Method::POST || request.uri().path() != path {
        return respond(404);
    }
    if request
        .headers()
        .get("content-type")
        .is_none_or(|v| v != "application/x-protobuf")
    {
        return respond(415);
    }
    let headers = header_pairs(request.headers());
    let Ok(body) = request.into_body().collect().await else {
        return respond(400);
    };
    let Ok(decoded) = T::decode(body.to_bytes()) else {
        return respond(400);
    };
    inbox.lock().expect("inbox").push(Received {
        path: path.to_string(),
        headers,
        request: decoded,
    });
    respond(200)
}
