//! The baseline of bench/protocols.sh: a minimal tokio client that keeps
//! CONNECTIONS connections busy with the exchanges of a benchmarked scenario for
//! SECONDS and prints the exchanges per second, with the crates the user type uses.
//! Each step of the scenario counts one, as loaddensity counts one request per step.
//!
//! - `ws`: a WebSocket text frame and its echo (tokio-tungstenite);
//! - `tcp`: `PING\n` and its 5-byte echo;
//! - `sse`: open (a GET with `Accept: text/event-stream`, hyper), wait for the event
//!   whose data holds `ready`, close;
//! - `graphql-ws`: connect (handshake, `connection_init`, `connection_ack`), subscribe
//!   to `subscription { count(target: 1) }` reading its `next` and `complete`, close
//!   (the close handshake), over tokio-tungstenite;
//! - `h3`: a GET on a kept QUIC connection (quinn, h3), reading the whole body;
//!   CA_FILE is the CA to trust.
//!
//! ```text
//! cargo run --release --example protocol_client -- ws ws://127.0.0.1:9001/ 32 10
//! cargo run --release --example protocol_client -- tcp 127.0.0.1:9002 32 10
//! cargo run --release --example protocol_client -- sse http://127.0.0.1:9003/events?count=0 32 10
//! cargo run --release --example protocol_client -- graphql-ws ws://127.0.0.1:9004/graphql 32 10
//! cargo run --release --example protocol_client -- h3 https://localhost:9005/ok 32 10 ca.pem
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (kind, target, connections, seconds, ca_file) = match args.as_slice() {
        [kind, target, connections, seconds] => (kind, target, connections, seconds, None),
        [kind, target, connections, seconds, ca] => {
            (kind, target, connections, seconds, Some(ca.clone()))
        }
        _ => {
            return Err(
                "usage: protocol_client ws|tcp|sse|graphql-ws|h3 TARGET CONNECTIONS SECONDS [CA_FILE]"
                    .into(),
            );
        }
    };
    let connections: usize = connections.parse()?;
    let duration = Duration::from_secs_f64(seconds.parse()?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (kind, target, done) = (kind.clone(), target.clone(), done.clone());
            let ca_file = ca_file.clone();
            tasks.push(tokio::spawn(async move {
                match kind.as_str() {
                    "ws" => ws_loop(&target, deadline, &done).await,
                    "tcp" => tcp_loop(&target, deadline, &done).await,
                    "sse" => sse_loop(&target, deadline, &done).await,
                    "graphql-ws" => graphql_ws_loop(&target, deadline, &done).await,
                    "h3" => h3_loop(&target, ca_file.as_deref(), deadline, &done).await,
                    other => Err(format!("unknown kind `{other}`").into()),
                }
            }));
        }
        for task in tasks {
            task.await??;
        }
        Ok::<(), Error>(())
    })?;
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    #[allow(clippy::print_stdout)] // the figure bench/protocols.sh reads
    {
        println!("{rate:.1}");
    }
    Ok(())
}

async fn ws_loop(url: &str, deadline: Instant, done: &AtomicU64) -> Result<(), Error> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    while Instant::now() < deadline {
        ws.send(Message::text("ping")).await?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(_) | Message::Binary(_))) => break,
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => return Err("closed".into()),
            }
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

async fn tcp_loop(addr: &str, deadline: Instant, done: &AtomicU64) -> Result<(), Error> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut reply = [0u8; 5];
    while Instant::now() < deadline {
        stream.write_all(b"PING\n").await?;
        stream.read_exact(&mut reply).await?;
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

async fn sse_loop(url: &str, deadline: Instant, done: &AtomicU64) -> Result<(), Error> {
    let uri: http::Uri = url.parse()?;
    let authority = uri.authority().ok_or("no host in the URL")?.clone();
    while Instant::now() < deadline {
        // open: the connection, the request and its response's head.
        let tcp = tokio::net::TcpStream::connect(authority.as_str()).await?;
        tcp.set_nodelay(true)?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        let driver = tokio::spawn(connection);
        let request = http::Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(http::header::HOST, authority.as_str())
            .header(http::header::ACCEPT, "text/event-stream")
            .body(Empty::<Bytes>::new())?;
        let mut body = sender.send_request(request).await?.into_body();
        done.fetch_add(1, Ordering::Relaxed);
        // wait: the body's frames until the event whose data holds `ready`.
        let mut seen = Vec::new();
        loop {
            let frame = body
                .frame()
                .await
                .ok_or("the stream ended before `ready`")??;
            if let Some(data) = frame.data_ref() {
                seen.extend_from_slice(data);
                if seen.windows(13).any(|w| w == b"data: ready\n\n") {
                    break;
                }
            }
        }
        done.fetch_add(1, Ordering::Relaxed);
        // close.
        drop(body);
        drop(sender);
        driver.abort();
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

async fn graphql_ws_loop(url: &str, deadline: Instant, done: &AtomicU64) -> Result<(), Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    const SUBSCRIBE: &str = r#"{"id":"1","type":"subscribe","payload":{"query":"subscription { count(target: 1) }","variables":{},"operationName":null}}"#;
    while Instant::now() < deadline {
        // connect: the handshake, connection_init and the server's connection_ack.
        let mut request = url.into_client_request()?;
        request.headers_mut().insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            http::HeaderValue::from_static("graphql-transport-ws"),
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
        ws.send(Message::text(r#"{"type":"connection_init","payload":{}}"#))
            .await?;
        let ack = next_text(&mut ws).await?;
        if !ack.contains("connection_ack") {
            return Err(format!("expected connection_ack, got {ack}").into());
        }
        done.fetch_add(1, Ordering::Relaxed);
        // subscribe: its `next` and its `complete`.
        ws.send(Message::text(SUBSCRIBE)).await?;
        for _ in 0..2 {
            let text = next_text(&mut ws).await?;
            let value: serde_json::Value = serde_json::from_str(&text)?;
            if value["type"] == "complete" {
                break;
            }
        }
        done.fetch_add(1, Ordering::Relaxed);
        // close: ours, then read until the server's.
        let _ = ws.close(None).await;
        while let Some(Ok(_)) = ws.next().await {}
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// The next text message of a WebSocket.
async fn next_text<S>(ws: &mut S) -> Result<String, Error>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => return Err(format!("unexpected {other:?}").into()),
            Some(Err(e)) => return Err(e.into()),
            None => return Err("closed".into()),
        }
    }
}

async fn h3_loop(
    url: &str,
    ca_file: Option<&str>,
    deadline: Instant,
    done: &AtomicU64,
) -> Result<(), Error> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let uri: http::Uri = url.parse()?;
    let host = uri.host().ok_or("no host in the URL")?;
    let port = uri.port_u16().unwrap_or(443);
    let addr = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or("cannot resolve the host")?;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(file) = ca_file {
        for cert in CertificateDer::pem_file_iter(file)? {
            roots.add(cert?)?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
    let mut endpoint = quinn::Endpoint::client("0.0.0.0:0".parse()?)?;
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
    let connection = endpoint.connect(addr, host)?.await?;
    let (mut driver, mut sender): (_, h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>) =
        h3::client::new(h3_quinn::Connection::new(connection.clone())).await?;
    let driver = tokio::spawn(async move {
        let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
    });
    while Instant::now() < deadline {
        let mut stream = sender
            .send_request(http::Request::get(&uri).body(())?)
            .await?;
        stream.finish().await?;
        let response = stream.recv_response().await?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()).into());
        }
        while let Some(mut chunk) = stream.recv_data().await? {
            chunk.advance(chunk.remaining());
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    connection.close(0u32.into(), b"");
    driver.abort();
    Ok(())
}
