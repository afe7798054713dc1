//! Raw TCP and UDP (`socket_user`). As in LoadDensity, a TCP step opens a new
//! connection, sends the payload and reads up to `expect_bytes` bytes; a UDP step
//! sends one datagram and, when `expect_bytes` > 0, waits for one back. The
//! response length is the bytes sent plus the bytes received. Events have request
//! type `TCP` or `UDP`.
//!
//! `keep_alive: true` reuses one TCP connection per user. Reading stops at
//! `expect_bytes`, at the end of the stream, or as soon as `expect_substring` has
//! arrived (so a line protocol works on a kept connection).

mod task;

pub use task::{DEFAULT_TIMEOUT, FIELDS, MAX_EXPECT_BYTES, PROTOCOLS, SocketTask, Transport};

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use self::task::Destination;
use crate::protocol::payload::check_contains;
use crate::protocol::step_timer::StepTimer;
use crate::protocol::{Failure, ParseContext, ParsedSpec, Protocol, StepContext, StepOutcome};
use crate::task::{Task, TaskError};

/// Raw sockets, LoadDensity's `socket_user`.
#[derive(Debug, Clone)]
pub struct Socket;

/// One user's socket client.
pub struct SocketClient {
    /// `keep_alive`: the open connection and where it goes.
    kept: Option<(SocketAddr, TcpStream)>,
    /// Read buffer, reused.
    buffer: Vec<u8>,
    /// The steps' deadline.
    timer: StepTimer,
}

impl Protocol for Socket {
    type Spec = SocketTask;
    type Shared = ();
    type Client = SocketClient;

    const FIELDS: &'static [&'static str] = task::FIELDS;

    fn parse(
        object: &Map<String, Value>,
        method_key: Option<&str>,
        path: &str,
        ctx: &ParseContext<'_>,
    ) -> Result<ParsedSpec<SocketTask>, TaskError> {
        task::parse(object, method_key, path, ctx)
    }

    fn csv_sources(spec: &SocketTask, into: &mut Vec<usize>) {
        spec.csv_sources(into);
    }

    fn client(_shared: &Arc<()>) -> SocketClient {
        SocketClient {
            kept: None,
            buffer: Vec::new(),
            timer: StepTimer::new(),
        }
    }

    async fn step(
        client: &mut SocketClient,
        task: &Task<SocketTask>,
        ctx: &mut StepContext<'_>,
    ) -> StepOutcome {
        let spec = &task.spec;
        let (target, name, expect, payload) = {
            let mut render = ctx.render();
            let target = match &spec.destination {
                Destination::Address(address) => Target::Address(*address),
                Destination::Resolve(template) => Target::Resolve(template.render(&mut render)),
            };
            let name = spec.name.as_ref().map(|n| n.render(&mut render));
            let expect = spec
                .expect_substring
                .as_ref()
                .map(|e| e.render(&mut render));
            let payload = spec
                .payload
                .as_ref()
                .map_or(Cow::Borrowed(&[][..]), |p| p.render_borrowed(&mut render));
            (target, name, expect, payload)
        };
        if let Some(url) = ctx.log_url() {
            url.clear();
            url.push_str(match spec.transport {
                Transport::Tcp => "tcp://",
                Transport::Udp => "udp://",
            });
            match &target {
                Target::Address(address) => {
                    let _ = write!(url, "{address}");
                }
                Target::Resolve(text) => url.push_str(text),
            }
        }
        let mut timer = std::mem::take(&mut client.timer);
        let deadline = ctx.began + spec.timeout;
        let timed = timer
            .within(
                deadline,
                pin!(exchange(client, spec, target, &payload, expect.as_deref())),
            )
            .await;
        client.timer = timer;
        let result = match timed {
            Some(result) => result,
            None => {
                client.kept = None;
                Err(Failure::timed_out(spec.timeout))
            }
        };
        let end = Instant::now();
        let result = result.map(|received| (payload.len() + received) as u64);
        StepOutcome::finished(end, name, result)
    }
}

/// Where this step goes.
enum Target {
    Address(SocketAddr),
    Resolve(String),
}

impl Target {
    async fn address(self) -> Result<SocketAddr, String> {
        match self {
            Self::Address(address) => Ok(address),
            Self::Resolve(text) => tokio::net::lookup_host(text.as_str())
                .await
                .map_err(|e| format!("cannot resolve `{text}`: {e}"))?
                .next()
                .ok_or_else(|| format!("`{text}` resolves to no address")),
        }
    }
}

/// Sends and receives; the number of bytes received, or why it failed.
async fn exchange(
    client: &mut SocketClient,
    spec: &SocketTask,
    target: Target,
    payload: &[u8],
    expect: Option<&str>,
) -> Result<usize, Failure> {
    let address = target.address().await?;
    client.buffer.clear();
    let received = match spec.transport {
        Transport::Tcp => tcp(client, spec, address, payload, expect).await?,
        Transport::Udp => udp(&mut client.buffer, spec, address, payload).await?,
    };
    if let Some(expect) = expect {
        check_contains(&client.buffer[..received], expect).map_err(Failure::expectation)?;
    }
    Ok(received)
}

async fn tcp(
    client: &mut SocketClient,
    spec: &SocketTask,
    address: SocketAddr,
    payload: &[u8],
    expect: Option<&str>,
) -> Result<usize, Failure> {
    let kept = match client.kept.take() {
        Some((to, stream)) if spec.keep_alive && to == address => Some(stream),
        _ => None,
    };
    let mut stream = match kept {
        Some(stream) => stream,
        None => {
            let stream = TcpStream::connect(address)
                .await
                .map_err(|e| Failure::connect(format!("connect to {address} failed: {e}")))?;
            let _ = stream.set_nodelay(true);
            stream
        }
    };
    stream
        .write_all(payload)
        .await
        .map_err(|e| Failure::network(format!("send to {address} failed: {e}")))?;
    let buffer = &mut client.buffer;
    let mut ended = false;
    while buffer.len() < spec.expect_bytes {
        let start = buffer.len();
        buffer.resize(spec.expect_bytes, 0);
        let read = stream
            .read(&mut buffer[start..])
            .await
            .map_err(|e| Failure::network(format!("receive from {address} failed: {e}")));
        let read = match read {
            Ok(read) => read,
            Err(e) => {
                buffer.truncate(start);
                return Err(e);
            }
        };
        buffer.truncate(start + read);
        if read == 0 {
            ended = true;
            break;
        }
        if let Some(expect) = expect
            && contains(&buffer[..], expect.as_bytes())
        {
            break;
        }
    }
    if spec.keep_alive && !ended {
        client.kept = Some((address, stream));
    }
    Ok(client.buffer.len())
}

async fn udp(
    buffer: &mut Vec<u8>,
    spec: &SocketTask,
    address: SocketAddr,
    payload: &[u8],
) -> Result<usize, Failure> {
    let local: SocketAddr = if address.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    socket
        .connect(address)
        .await
        .map_err(|e| format!("UDP to {address} failed: {e}"))?;
    socket
        .send(payload)
        .await
        .map_err(|e| Failure::network(format!("send to {address} failed: {e}")))?;
    if spec.expect_bytes == 0 {
        return Ok(0);
    }
    buffer.resize(spec.expect_bytes, 0);
    let read = socket
        .recv(buffer)
        .await
        .map_err(|e| Failure::network(format!("receive from {address} failed: {e}")))?;
    buffer.truncate(read);
    Ok(read)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}
