//! The baseline of bench/protocols.sh: a minimal tokio client that keeps
//! CONNECTIONS connections busy with request/response exchanges for SECONDS and
//! prints the exchanges per second. `ws`: a WebSocket text frame and its echo
//! (tokio-tungstenite); `tcp`: `PING\n` and its 5-byte echo.
//!
//! ```text
//! cargo run --release --example protocol_client -- ws ws://127.0.0.1:9001/ 32 10
//! cargo run --release --example protocol_client -- tcp 127.0.0.1:9002 32 10
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, target, connections, seconds] = args.as_slice() else {
        return Err("usage: protocol_client ws|tcp TARGET CONNECTIONS SECONDS".into());
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
            tasks.push(tokio::spawn(async move {
                match kind.as_str() {
                    "ws" => ws_loop(&target, deadline, &done).await,
                    "tcp" => tcp_loop(&target, deadline, &done).await,
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
