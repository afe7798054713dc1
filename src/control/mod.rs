//! The control socket server (LoadDensity's `LD_start_socket_server`, CLI `serve`):
//! editors and CI agents send action JSON over TCP and get each action's result
//! back, then `Return_Data_Over_JE\n`.
//!
//! The accept loop and the connections run on a thread of their own; the documents
//! they receive are handed, one at a time, to the thread that called
//! [`ControlServer::serve`], which runs them on its [`DocumentRunner`] (the action executor). So a long test
//! never stops the server from accepting, answering errors or queueing others.
//! Beyond LoadDensity: the token is compared in constant time, binding to anything
//! but loopback without a token is refused, TLS (1.2 or newer) goes through rustls,
//! and bad clients (oversized frames, invalid UTF-8, silence) are answered or
//! dropped without hurting the others.

mod protocol;
mod tls;

pub use protocol::{LEGACY_READ, MAX_FRAME, PREAUTH_READ, SocketToken, TERMINATOR};

use std::cell::Cell;
use std::collections::VecDeque;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use protocol::{Decision, Request, decide, read_request, write_piece};

/// The environment variable a token may come from.
pub const TOKEN_ENV: &str = "LOAD_DENSITY_SOCKET_TOKEN";
/// LoadDensity's default port.
pub const DEFAULT_PORT: u16 = 9940;
/// The most connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// The most connections still reading their request (not yet authorised): a new
/// one past this closes the oldest of them, so the other half of
/// [`MAX_CONNECTIONS`] stays free for clients whose request was accepted, and idle
/// clients cannot lock out one with the right token.
pub const MAX_PENDING: usize = MAX_CONNECTIONS / 2;
/// The most documents waiting for the executor; more are answered `busy`.
pub const MAX_QUEUED: usize = 256;
/// Pending connections the kernel may queue before the accept loop takes them.
const LISTEN_BACKLOG: u32 = 1024;
/// How long open connections may finish after the server is told to quit.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Host name or IP address to bind (LoadDensity's default `localhost`).
    pub host: String,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// Length-prefixed frames instead of one raw read.
    pub framed: bool,
    /// The shared secret every request must carry in its envelope.
    pub token: Option<SocketToken>,
    /// Certificate chain and private key (PEM) to serve TLS with.
    pub tls: Option<TlsFiles>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: DEFAULT_PORT,
            framed: false,
            token: None,
            tls: None,
        }
    }
}

impl ServerOptions {
    /// Fills `token` from `LOAD_DENSITY_SOCKET_TOKEN` when none was given.
    pub fn with_env_token(mut self) -> Self {
        if self.token.is_none() {
            self.token = std::env::var(TOKEN_ENV).ok().and_then(SocketToken::new);
        }
        self
    }
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The host does not resolve.
    #[error("cannot resolve `{host}`: {message}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        message: String,
    },
    /// A non-loopback address without a token.
    #[error(
        "refusing to serve on {addr} without a token: anyone who reaches it could run actions. \
         Set a token (--token, `token`, or {TOKEN_ENV}) or bind a loopback address such as 127.0.0.1"
    )]
    NotLoopback {
        /// The address.
        addr: SocketAddr,
    },
    /// The address cannot be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The certificate or key cannot be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The server thread could not start.
    #[error("cannot start the server thread: {0}")]
    Thread(std::io::Error),
    /// A document run by a control server asked for another one.
    #[error(
        "a control socket server is already running in this process: a document it runs \
         cannot start another one (it would block the first)"
    )]
    AlreadyServing,
}

thread_local! {
    /// Set while this thread runs the documents of a control server
    /// ([`ControlServer::serve`]): every server starts through
    /// [`ControlServer::start`], which refuses then. A dynamic scope, not a registry:
    /// servers started side by side on other threads are not affected.
    static SERVING: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as serving until dropped (restoring what it found).
struct ServingScope(bool);

impl ServingScope {
    fn enter() -> Self {
        Self(SERVING.with(|serving| serving.replace(true)))
    }
}

impl Drop for ServingScope {
    fn drop(&mut self) {
        SERVING.with(|serving| serving.set(self.0));
    }
}

/// A document received from a client, and where its result lines go.
struct Job {
    document: Value,
    reply: oneshot::Sender<Vec<String>>,
}

/// What runs the documents a control server receives: the action executor
/// implements it (`crate::action`), so that this module does not depend on it.
pub trait DocumentRunner {
    /// The runtime the server waits for documents on.
    fn runtime(&self) -> &tokio::runtime::Runtime;
    /// Runs one document (`null`: nothing) and returns one reply line per action,
    /// each ending with a newline.
    fn run_document(&mut self, document: &Value) -> Vec<String>;
}

/// A bound control server. Call [`ControlServer::serve`] to run the documents it
/// receives until a client quits it or `interrupt` is cancelled.
pub struct ControlServer {
    addr: SocketAddr,
    shutdown: CancellationToken,
    jobs: mpsc::Receiver<Job>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for ControlServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// What [`ControlServer::serve`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeReport {
    /// The address served.
    pub addr: SocketAddr,
    /// Documents run.
    pub documents: usize,
    /// True when a client asked the server to quit (false: interrupted).
    pub quit_by_client: bool,
}

impl ControlServer {
    /// Checks the options, binds, and starts accepting on a thread of its own.
    /// Refused ([`ControlError::AlreadyServing`]) from a document a control server
    /// runs: the `serve` command and `LD_start_socket_server` both start here.
    pub fn start(options: ServerOptions) -> Result<Self, ControlError> {
        if SERVING.with(Cell::get) {
            return Err(ControlError::AlreadyServing);
        }
        let addr = resolve(&options.host, options.port)?;
        if !addr.ip().is_loopback() && options.token.is_none() {
            return Err(ControlError::NotLoopback { addr });
        }
        if !addr.ip().is_loopback() && options.tls.is_none() {
            tracing::warn!(
                "the control socket on {addr} has no TLS: the token and the scripts travel in clear"
            );
        }
        let acceptor = options.tls.as_ref().map(tls::acceptor).transpose()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ControlError::Thread)?;
        let listener = {
            let _context = runtime.enter();
            listen(addr).map_err(|source| ControlError::Bind { addr, source })?
        };
        let addr = listener
            .local_addr()
            .map_err(|source| ControlError::Bind { addr, source })?;
        let (sender, jobs) = mpsc::channel(MAX_QUEUED);
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared {
            framed: options.framed,
            token: options.token,
            acceptor,
            jobs: sender,
            shutdown: shutdown.clone(),
        });
        let thread = std::thread::Builder::new()
            .name("loaddensity-control".into())
            .spawn(move || {
                runtime.block_on(accept_loop(listener, shared));
            })
            .map_err(ControlError::Thread)?;
        Ok(Self {
            addr,
            shutdown,
            jobs,
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs received documents on `runner` (an action executor), one at a time, until
    /// a client quits the server or `interrupt` is cancelled. Then stops accepting and
    /// frees the port.
    pub fn serve(
        mut self,
        runner: &mut impl DocumentRunner,
        interrupt: &CancellationToken,
    ) -> ServeReport {
        let _serving = ServingScope::enter();
        let mut documents = 0;
        loop {
            let next = runner.runtime().block_on(async {
                tokio::select! {
                    job = self.jobs.recv() => job,
                    _ = self.shutdown.cancelled() => None,
                    _ = interrupt.cancelled() => None,
                }
            });
            let Some(job) = next else { break };
            documents += 1;
            let lines = runner.run_document(&job.document);
            let _ = job.reply.send(lines);
        }
        let quit_by_client = self.shutdown.is_cancelled();
        self.stop();
        ServeReport {
            addr: self.addr,
            documents,
            quit_by_client,
        }
    }

    fn stop(&mut self) {
        self.shutdown.cancel();
        self.jobs.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A listener with room for many clients connecting at once.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The address to bind: the first IPv4 address `host` resolves to, else the first.
fn resolve(host: &str, port: u16) -> Result<SocketAddr, ControlError> {
    let host_text = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = (host_text, port)
        .to_socket_addrs()
        .map_err(|e| ControlError::Resolve {
            host: host.to_string(),
            message: e.to_string(),
        })?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| ControlError::Resolve {
            host: host.to_string(),
            message: "no address".into(),
        })
}

/// What every connection task needs.
struct Shared {
    framed: bool,
    token: Option<SocketToken>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    jobs: mpsc::Sender<Job>,
    shutdown: CancellationToken,
}

/// A connection still reading its request: the accept loop may evict it.
struct Pending {
    evict: CancellationToken,
    /// Alive while the connection reads its request.
    _reading: Arc<()>,
}

/// The connections still reading their request, oldest first.
#[derive(Default)]
struct PendingQueue(VecDeque<(CancellationToken, Weak<()>)>);

impl PendingQueue {
    /// Registers a new connection, first closing the oldest pending one when
    /// [`MAX_PENDING`] are pending.
    fn admit(&mut self) -> Pending {
        if self.0.len() >= MAX_PENDING {
            self.0.retain(|(_, reading)| reading.strong_count() > 0);
        }
        while self.0.len() >= MAX_PENDING {
            match self.0.pop_front() {
                Some((evict, _)) => evict.cancel(),
                None => break,
            }
        }
        let (evict, reading) = (CancellationToken::new(), Arc::new(()));
        self.0.push_back((evict.clone(), Arc::downgrade(&reading)));
        Pending {
            evict,
            _reading: reading,
        }
    }
}

/// How long a new connection waits for a slot that an evicted one is freeing.
const SLOT_WAIT: Duration = Duration::from_millis(100);

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    let mut pending = PendingQueue::default();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shared.shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let Ok((stream, _peer)) = accepted else {
            // Out of file descriptors or similar: back off briefly.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let reading = pending.admit();
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // Full: an evicted connection frees its slot as soon as it runs.
                match tokio::time::timeout(SLOT_WAIT, slots.clone().acquire_owned()).await {
                    Ok(Ok(permit)) => permit,
                    _ => {
                        drop(stream);
                        continue;
                    }
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        connections.spawn(async move {
            handle(stream, &shared, reading).await;
            drop(permit);
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.shutdown().await;
    }
}

async fn handle(stream: TcpStream, shared: &Shared, reading: Pending) {
    match &shared.acceptor {
        None => converse(stream, shared, reading).await,
        Some(acceptor) => {
            let handshake =
                tokio::time::timeout(protocol::PREAUTH_TIMEOUT, acceptor.accept(stream));
            let accepted = tokio::select! {
                accepted = handshake => accepted,
                _ = reading.evict.cancelled() => return,
            };
            match accepted {
                Ok(Ok(stream)) => converse(stream, shared, reading).await,
                Ok(Err(error)) => tracing::debug!("control socket: TLS handshake failed: {error}"),
                Err(_) => tracing::debug!("control socket: TLS handshake timed out"),
            }
        }
    }
}

/// One request and its reply, then a clean close (TLS: close_notify).
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    shared: &Shared,
    reading: Pending,
) {
    exchange(&mut stream, shared, reading).await;
    let _ = tokio::time::timeout(protocol::IO_TIMEOUT, stream.shutdown()).await;
}

/// Reads one request and answers it; errors of a single client only end that client.
/// The connection stays evictable (`reading`) until its request is read.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    shared: &Shared,
    reading: Pending,
) {
    let framed = shared.framed;
    let request = tokio::select! {
        request = read_request(&mut stream, framed, shared.token.as_ref()) => request,
        _ = reading.evict.cancelled() => return,
    };
    drop(reading);
    let payload = match request {
        Ok(Request::Payload(payload)) => payload,
        Ok(Request::Refused(line)) => {
            let _ = write_piece(&mut stream, framed, line).await;
            return;
        }
        Ok(Request::Nothing) | Err(_) => return,
        Ok(Request::TooLarge(length)) => {
            let line =
                format!("Error: a frame of {length} bytes is over the {MAX_FRAME}-byte limit\n");
            let _ = write_piece(&mut stream, framed, line.as_bytes()).await;
            return;
        }
    };
    tracing::info!("control socket: command received: {} bytes", payload.len());
    let lines = match decide(&payload, shared.token.as_ref()) {
        Decision::Quit(line) => {
            let _ = write_piece(&mut stream, framed, line).await;
            shared.shutdown.cancel();
            return;
        }
        Decision::Refuse(line) => {
            let _ = write_piece(&mut stream, framed, line).await;
            return;
        }
        Decision::Error(line) => vec![line],
        Decision::Run(Value::Null) => Vec::new(),
        Decision::Run(document) => submit(shared, document).await,
    };
    for line in &lines {
        if write_piece(&mut stream, framed, line.as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
    let _ = write_piece(&mut stream, framed, TERMINATOR).await;
}

/// Queues a document for the executor and waits for its result lines.
async fn submit(shared: &Shared, document: Value) -> Vec<String> {
    let (reply, result) = oneshot::channel();
    match shared.jobs.try_send(Job { document, reply }) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            return vec![format!(
                "Error: busy: {MAX_QUEUED} documents are already waiting; retry later\n"
            )];
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            return vec!["Error: the server is shutting down\n".into()];
        }
    }
    tokio::select! {
        lines = result => lines.unwrap_or_else(|_| vec!["Error: the server is shutting down\n".into()]),
        _ = shared.shutdown.cancelled() => vec!["Error: the server is shutting down\n".into()],
    }
}
