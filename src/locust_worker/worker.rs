//! The worker's state machine: connect to the master (`client_ready` until `ack`),
//! then run the test with a user count the master sets (`spawn`, `stop`), send
//! `heartbeat`s and `stats` reports, and end on `quit`, on Ctrl-C, or when the master
//! has been silent for `lost_timeout`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmpv::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zeromq::{DealerSendHalf, Socket, SocketOptions, SocketRecv, SocketSend, ZmqMessage};

use super::protocol::{self, Command, Message, Spawn};
use super::stats::LocustStats;
use super::{WorkerError, WorkerOptions};
use crate::engine::{IMMEDIATE, LiveUsers, LoadShape, RunObservers, RunReport, TestPlan, run_test};
use crate::listener::ListenerRegistry;
use crate::protocol::Protocol;

/// How often Locust workers report statistics (`WORKER_REPORT_INTERVAL`).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(3);
/// How long to wait for an `ack` before sending `client_ready` again.
const ACK_WAIT: Duration = Duration::from_secs(2);
/// The longest a send may wait for the socket (a master that reads nothing).
const SEND_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the worker checks whether its users have reached the master's count.
const SPAWN_CHECK: Duration = Duration::from_millis(20);
/// Frames the reader may queue before it waits.
const INBOX: usize = 1024;

/// How a worker's run ended, and what it did.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerOutcome {
    /// This worker's id at the master (`hostname_uuid`).
    pub node_id: String,
    /// Its index at the master, when the master sent one.
    pub worker_index: Option<i64>,
    /// Why it ended: `quit` (the master's), `interrupted` (Ctrl-C) or `out_of_data`.
    pub end: &'static str,
    /// The most users it ran at once.
    pub max_users: u32,
    /// `stats` reports sent.
    pub reports_sent: u64,
    /// Frames from the master that were not Locust messages.
    pub bad_frames: u64,
}

/// The worker's own connection to the master: the send half, and the task that
/// reads frames into the inbox.
struct Connection {
    /// `None` once closed.
    send: Option<DealerSendHalf>,
    reader: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

async fn connect(
    options: &WorkerOptions,
    node_id: &str,
    timeout: Duration,
) -> Result<(Connection, mpsc::Receiver<Vec<u8>>), WorkerError> {
    let mut socket_options = SocketOptions::default();
    let identity =
        zeromq::util::PeerIdentity::try_from(node_id.as_bytes().to_vec()).map_err(|e| {
            WorkerError::Connect {
                addr: options.addr(),
                reason: format!("node id `{node_id}`: {e}"),
            }
        })?;
    socket_options
        .peer_identity(identity)
        .connect_timeout(timeout.max(Duration::from_millis(100)));
    let mut socket = zeromq::DealerSocket::with_options(socket_options);
    socket
        .connect(&options.endpoint())
        .await
        .map_err(|e| WorkerError::Connect {
            addr: options.addr(),
            reason: e.to_string(),
        })?;
    let (send, mut recv) = socket.split();
    let (tx, rx) = mpsc::channel(INBOX);
    let reader = tokio::spawn(async move {
        loop {
            match recv.recv().await {
                Ok(message) => {
                    for frame in message.into_vec() {
                        if tx.send(frame.to_vec()).await.is_err() {
                            return;
                        }
                    }
                }
                Err(error) => {
                    tracing::debug!("locust worker: receive: {error}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    Ok((
        Connection {
            send: Some(send),
            reader,
        },
        rx,
    ))
}

impl Connection {
    /// Sends a message; a failure is logged, not fatal (the master's silence is).
    async fn send(&mut self, message: &Message) -> bool {
        let Some(send) = self.send.as_mut() else {
            return false;
        };
        let frame = ZmqMessage::from(message.encode());
        match tokio::time::timeout(SEND_TIMEOUT, send.send(frame)).await {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::debug!("locust worker: sending `{}`: {error}", message.kind);
                false
            }
            Err(_) => {
                tracing::debug!("locust worker: sending `{}` timed out", message.kind);
                false
            }
        }
    }

    /// Closes the socket (both halves), so that a new one may use the same identity.
    async fn close(&mut self) {
        self.send = None;
        self.reader.abort();
        // The aborted reader drops the receive half, and with it the socket.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The worker's state as its heartbeats tell the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ready,
    Spawning,
    Running,
    Stopping,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::Spawning => "spawning",
            State::Running => "running",
            // Locust workers stay `running` until they say `client_stopped`.
            State::Stopping => "running",
        }
    }
}

/// Joins the master, runs `plan`'s scenario with the users it asks for until it says
/// `quit` (or `interrupt` is cancelled, or it goes silent), and sends its last report.
/// `plan`'s user count, shape and test time are replaced by the master's.
/// Returns the engine's report (`None` when the master never answered) and how the
/// worker ended.
pub async fn run_worker<P: Protocol>(
    mut plan: TestPlan<P>,
    listeners: Arc<ListenerRegistry>,
    interrupt: CancellationToken,
    observers: RunObservers,
    options: &WorkerOptions,
) -> (Option<RunReport>, Result<WorkerOutcome, WorkerError>) {
    let node_id = format!(
        "{}_{}",
        crate::instance::host_name(),
        uuid::Uuid::new_v4().simple()
    );
    // Join the master before any user starts.
    let joined = tokio::select! {
        joined = join(options, &node_id) => joined,
        _ = interrupt.cancelled() => return (None, Err(WorkerError::Interrupted)),
    };
    let (mut connection, mut inbox, worker_index) = match joined {
        Ok(joined) => joined,
        Err(error) => return (None, Err(error)),
    };
    tracing::info!(
        "joined the Locust master at {} as {node_id} (index {})",
        options.addr(),
        worker_index.map_or("?".to_string(), |i| i.to_string())
    );

    let live = LiveUsers::new(0, IMMEDIATE);
    plan.shape = Some(LoadShape::Live(live.clone()));
    plan.test_time = None;
    plan.arrival = None;
    let stats = Arc::new(LocustStats::default());
    let listener = listeners.add(stats.clone());
    let stop_run = CancellationToken::new();
    let mut run = tokio::spawn(run_test(
        plan,
        listeners.clone(),
        stop_run.clone(),
        observers,
    ));

    let mut worker = Worker {
        options,
        node_id: &node_id,
        live: &live,
        stats: &stats,
        state: State::Ready,
        last_spawn: f64::NEG_INFINITY,
        spawn_target: None,
        max_users: 0,
        reports_sent: 0,
        bad_frames: 0,
        warned_class: false,
        cpu: CpuMeter::default(),
    };
    let mut heartbeat = tokio::time::interval(options.heartbeat_interval);
    let mut report = tokio::time::interval_at(
        tokio::time::Instant::now() + REPORT_INTERVAL,
        REPORT_INTERVAL,
    );
    let mut spawn_check = tokio::time::interval(SPAWN_CHECK);
    let mut last_heard = Instant::now();
    let mut run_report = None;
    let end: Result<&'static str, WorkerError> = loop {
        let lost_in = options.lost_timeout.saturating_sub(last_heard.elapsed());
        tokio::select! {
            Some(frame) = inbox.recv() => {
                last_heard = Instant::now();
                match worker.handle(&frame, &mut connection).await {
                    Flow::Continue => {}
                    Flow::Quit => break Ok("quit"),
                    Flow::Reconnect => {
                        tracing::warn!("the Locust master asked for a new connection");
                        connection.close().await;
                        match connect(options, &node_id, options.startup_timeout).await {
                            Ok((c, i)) => { connection = c; inbox = i; }
                            Err(error) => break Err(error),
                        }
                    }
                }
            }
            _ = heartbeat.tick() => {
                let message = protocol::heartbeat(
                    &node_id,
                    worker.state.as_str(),
                    worker.cpu.percent(),
                    resident_bytes(),
                );
                connection.send(&message).await;
            }
            _ = report.tick() => worker.send_report(&mut connection).await,
            _ = spawn_check.tick(), if worker.spawn_target.is_some() || worker.state == State::Stopping => {
                worker.check_progress(&mut connection).await;
            }
            _ = tokio::time::sleep(lost_in) => {
                break Err(WorkerError::MasterLost {
                    addr: options.addr(),
                    after: options.lost_timeout,
                });
            }
            _ = interrupt.cancelled() => break Ok("interrupted"),
            finished = &mut run => {
                // Only a CSV source that does not cycle ends a run by itself.
                run_report = finished.ok();
                break Ok("out_of_data");
            }
        }
    };

    // Stop the users (their last requests are counted), then send what they did.
    live.set(0, IMMEDIATE);
    stop_run.cancel();
    if run_report.is_none() {
        run_report = run.await.ok();
    }
    if !matches!(end, Err(WorkerError::MasterLost { .. })) {
        worker.send_report(&mut connection).await;
        tracing::info!("sent the last statistics report to the master");
        if !matches!(end, Ok("quit")) {
            // Tell the master this worker is gone, as a Python worker does on exit.
            connection
                .send(&Message::new("quit", Value::Nil, &node_id))
                .await;
        }
    }
    // A sent message waits in the socket's queue for its writer task: closing lets
    // that task write it out before this returns (and the process may exit): nothing
    // else waits for it, and the master missed the last report without it.
    connection.close().await;
    listeners.remove(listener);
    let outcome = end.map(|end| WorkerOutcome {
        node_id: node_id.clone(),
        worker_index,
        end,
        max_users: worker.max_users,
        reports_sent: worker.reports_sent,
        bad_frames: worker.bad_frames,
    });
    (run_report, outcome)
}

/// Connects and sends `client_ready` until the master acknowledges it.
async fn join(
    options: &WorkerOptions,
    node_id: &str,
) -> Result<(Connection, mpsc::Receiver<Vec<u8>>, Option<i64>), WorkerError> {
    let deadline = Instant::now() + options.startup_timeout;
    let (mut connection, mut inbox) = connect(options, node_id, options.startup_timeout).await?;
    let mut bad = None;
    while Instant::now() < deadline {
        connection.send(&protocol::client_ready(node_id)).await;
        let wait = ACK_WAIT.min(deadline.saturating_duration_since(Instant::now()));
        let until = tokio::time::Instant::now() + wait;
        while let Ok(Some(frame)) = tokio::time::timeout_at(until, inbox.recv()).await {
            match Message::decode(&frame).map(|m| Command::from_message(&m)) {
                Ok(Ok(Command::Ack { index })) => return Ok((connection, inbox, index)),
                Ok(Ok(other)) => tracing::debug!("before the ack: {other:?}"),
                Ok(Err(error)) | Err(error) => {
                    tracing::warn!("ignoring a frame from the Locust master: {error}");
                    bad = Some(error.to_string());
                }
            }
        }
    }
    Err(match bad {
        Some(problem) => WorkerError::Incompatible {
            addr: options.addr(),
            problem,
        },
        None => WorkerError::NoAck {
            addr: options.addr(),
            after: options.startup_timeout,
        },
    })
}

enum Flow {
    Continue,
    Quit,
    Reconnect,
}

struct Worker<'a> {
    options: &'a WorkerOptions,
    node_id: &'a str,
    live: &'a LiveUsers,
    stats: &'a LocustStats,
    state: State,
    /// The newest `spawn`'s timestamp; older or equal ones are dropped, as Locust does.
    last_spawn: f64,
    /// Users the last `spawn` asked for, until they run.
    spawn_target: Option<u32>,
    max_users: u32,
    reports_sent: u64,
    bad_frames: u64,
    warned_class: bool,
    cpu: CpuMeter,
}

impl Worker<'_> {
    async fn handle(&mut self, frame: &[u8], connection: &mut Connection) -> Flow {
        let command = match Message::decode(frame).and_then(|m| Command::from_message(&m)) {
            Ok(command) => command,
            Err(error) => {
                self.bad_frames += 1;
                tracing::warn!("ignoring a frame from the Locust master: {error}");
                return Flow::Continue;
            }
        };
        match command {
            Command::Spawn(spawn) => self.spawn(spawn, connection).await,
            Command::Stop => {
                tracing::info!("the Locust master stopped the test");
                self.live.set(0, IMMEDIATE);
                self.spawn_target = None;
                self.state = State::Stopping;
            }
            Command::Quit => {
                tracing::info!("the Locust master said quit");
                return Flow::Quit;
            }
            Command::Reconnect => return Flow::Reconnect,
            Command::Ack { .. }
            | Command::Heartbeat
            | Command::SpawningComplete { .. }
            | Command::Other(_) => {}
        }
        Flow::Continue
    }

    async fn spawn(&mut self, spawn: Spawn, connection: &mut Connection) {
        connection
            .send(&Message::new("spawning", Value::Nil, self.node_id))
            .await;
        if spawn.timestamp <= self.last_spawn {
            tracing::info!("dropping a spawn message older than the previous one");
            return;
        }
        self.last_spawn = spawn.timestamp;
        let class = self.options.user_class.as_str();
        let mut users = None;
        let mut others = Vec::new();
        for (name, count) in &spawn.user_classes_count {
            if name == class {
                users = Some(u32::try_from(*count).unwrap_or(u32::MAX));
            } else if *count > 0 {
                others.push(name.as_str());
            }
        }
        if !others.is_empty() && !self.warned_class {
            self.warned_class = true;
            let text = format!(
                "loaddensity worker {} runs user class `{class}` only; it was also asked for {} (set the class with --user-class or user_detail_dict.user)",
                self.node_id,
                others.join(", ")
            );
            tracing::error!("{text}");
            connection
                .send(&protocol::exception(self.node_id, &text))
                .await;
        }
        let users = users.unwrap_or(0);
        self.live.set(users, IMMEDIATE);
        self.spawn_target = Some(users);
        self.state = State::Spawning;
    }

    /// Sends `spawning_complete` once the users run, and `client_stopped` then
    /// `client_ready` once a stop has retired them all.
    async fn check_progress(&mut self, connection: &mut Connection) {
        let running = self.live.running();
        self.max_users = self.max_users.max(running);
        if let Some(target) = self.spawn_target
            && running == target
        {
            self.spawn_target = None;
            self.state = State::Running;
            connection
                .send(&protocol::spawning_complete(
                    self.node_id,
                    &self.options.user_class,
                    running,
                ))
                .await;
        } else if self.state == State::Stopping && running == 0 {
            self.state = State::Ready;
            connection
                .send(&Message::new("client_stopped", Value::Nil, self.node_id))
                .await;
            connection.send(&protocol::client_ready(self.node_id)).await;
        }
    }

    async fn send_report(&mut self, connection: &mut Connection) {
        let report = self.stats.take_report();
        let users = self.live.running();
        self.max_users = self.max_users.max(users);
        let mut fields = report.fields();
        fields.push((
            Value::from("user_classes_count"),
            protocol::user_classes_count(&self.options.user_class, users),
        ));
        fields.push((Value::from("user_count"), Value::from(users)));
        if connection
            .send(&Message::new("stats", Value::Map(fields), self.node_id))
            .await
        {
            self.reports_sent += 1;
        } else {
            tracing::warn!(
                "a statistics report ({} requests) could not be sent to the master",
                report.total.num_requests
            );
        }
    }
}

/// This process's CPU use between two readings, in percent of one core (what
/// Locust's heartbeat reports); 0 where `/proc` cannot be read.
#[derive(Debug, Default)]
struct CpuMeter {
    last: Option<(Instant, f64)>,
}

impl CpuMeter {
    fn percent(&mut self) -> f64 {
        let Some(cpu) = cpu_seconds() else {
            return 0.0;
        };
        let now = Instant::now();
        let percent = match self.last {
            Some((then, before)) => {
                let wall = now.duration_since(then).as_secs_f64();
                if wall > 0.0 {
                    100.0 * (cpu - before) / wall
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        self.last = Some((now, cpu));
        percent
    }
}

/// User plus system CPU seconds of this process (`/proc/self/stat`, at 100 ticks/s).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Resident memory of this process in bytes (`/proc/self/statm`); 0 when unknown.
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}
