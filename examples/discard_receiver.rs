//! The cheapest receiver of what the push sinks send, for benchmarks (bench/compare.sh,
//! bench/sink_cpu.sh): on a 2-core machine the receivers share a core with the target,
//! so what they cost is taken from the target's requests/s, not from the sink's.
//!
//! - `--http PORT`: HTTP/1.1 keep-alive; every request's body is read and dropped and
//!   answered `200` with an empty body (the Datadog agent's `PUT /v0.4/traces`, OTLP/HTTP
//!   `POST /v1/traces`: an empty body is an empty `Export…Response`).
//! - `--udp PORT`: binds a UDP socket with a small buffer and never reads it: datagrams
//!   beyond the buffer are dropped by the kernel, as a real StatsD or InfluxDB server's
//!   would be when it falls behind; the sender's cost is all in its own `send`.
//!
//! ```text
//! cargo run --release --example discard_receiver -- --http 18126 --udp 18125 --udp 18089
//! ```
//!
//! Prints the HTTP request and byte counts on stderr when it ends (SIGTERM or Ctrl-C).

use std::convert::Infallible;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    bytes: AtomicU64,
}

async fn discard(
    request: Request<Incoming>,
    counts: Arc<Counts>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    let mut body = request.into_body();
    let mut length = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            length += data.len() as u64;
        }
    }
    counts.requests.fetch_add(1, Ordering::Relaxed);
    counts.bytes.fetch_add(length, Ordering::Relaxed);
    Ok(Response::new(Empty::new()))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut http_ports = Vec::new();
    let mut udp_sockets = Vec::new();
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let port: u16 = iter
            .next()
            .ok_or("expected a port after the flag")?
            .parse()?;
        match flag.as_str() {
            "--http" => http_ports.push(port),
            // Kept open (never read) until the process ends.
            "--udp" => udp_sockets.push(UdpSocket::bind(("127.0.0.1", port))?),
            other => return Err(format!("unknown flag `{other}`: --http PORT, --udp PORT").into()),
        }
    }
    let counts = Arc::new(Counts::default());
    for port in http_ports {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        let counts = counts.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let counts = counts.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| discard(request, counts.clone()));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    }
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    eprintln!(
        "{} HTTP requests, {} bytes; {} UDP socket(s) never read",
        counts.requests.load(Ordering::Relaxed),
        counts.bytes.load(Ordering::Relaxed),
        udp_sockets.len()
    );
    Ok(())
}
