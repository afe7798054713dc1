//! A fast local echo server for bench/protocols.sh and for trying `websocket_user`
//! and `socket_user`: a WebSocket server that echoes every frame, and a TCP server
//! that echoes every byte it reads, on one thread.
//!
//! ```text
//! cargo run --release --example protocol_echo -- 127.0.0.1:9001 127.0.0.1:9002
//! ```
//!
//! Runs until killed.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: protocol_echo WS_ADDR TCP_ADDR";
    let ws: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let tcp: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let ws = TcpListener::bind(ws).await?;
        let tcp = TcpListener::bind(tcp).await?;
        tokio::spawn(async move {
            while let Ok((stream, _)) = tcp.accept().await {
                tokio::spawn(echo_tcp(stream));
            }
        });
        while let Ok((stream, _)) = ws.accept().await {
            tokio::spawn(echo_ws(stream));
        }
        Ok(())
    })
}

async fn echo_tcp(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buffer = [0u8; 4096];
    while let Ok(read) = stream.read(&mut buffer).await {
        if read == 0 || stream.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
}

async fn echo_ws(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        if message.is_close() {
            break;
        }
        if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
            break;
        }
    }
}
