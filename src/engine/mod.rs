//! The load engine (closed model, like Locust): starts users at the spawn rate, runs
//! them for the test time or until interrupted, then stops them gracefully.
//!
//! The engine fires one [`crate::RequestEvent`] per request into the
//! [`ListenerRegistry`] it is given; it does not know which listeners are attached.

mod arrival;
mod control;
mod live;
mod plan;
mod progress;
mod segment;
mod shape;
mod timeline;
mod user;
mod wait;

pub use arrival::{ArrivalRate, RateStage};
pub use control::{RunControl, RunState, SwarmError};
pub use live::{IMMEDIATE, LiveUsers};
pub use plan::{MODES, Mode, Scenario, TestPlan, parse_tasks};
pub use progress::Progress;
pub use shape::{LoadShape, SHAPES, Stage};
pub use wait::WaitTime;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::user::UserStop;
use crate::listener::ListenerRegistry;
use crate::protocol::Protocol;
use crate::stats::StatsRecorder;

/// How long stopped users may take to finish their in-flight request.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// State shared by the users of one run.
pub(crate) struct RunShared<P: Protocol> {
    pub(crate) plan: TestPlan<P>,
    pub(crate) listeners: Arc<ListenerRegistry>,
    /// What the protocol's clients share (TLS configuration, ...).
    pub(crate) protocol: Arc<P::Shared>,
    pub(crate) active_users: Arc<AtomicUsize>,
    /// The web UI's controls, when it watches this run.
    pub(crate) control: Option<Arc<RunControl>>,
    /// Open model: iterations that found no free user.
    pub(crate) dropped_iterations: AtomicU64,
    /// Cancelled when a CSV source that does not cycle runs out of rows: no user
    /// starts another iteration, and the test ends once they have all stopped.
    pub(crate) out_of_data: CancellationToken,
    /// Why a run may have sent nothing: tasks skipped by their condition (`run_if`,
    /// `skip_if`) and requests whose connection could not be made.
    pub(crate) idle_causes: IdleCauses,
    /// Set once, when the run stops: what users check before each task (written
    /// once, so reading it per request shares no cache line that changes).
    pub(crate) stopping: AtomicBool,
    wall_base: SystemTime,
    instant_base: Instant,
}

impl<P: Protocol> RunShared<P> {
    /// Wall-clock time of a monotonic instant (one clock read per request, not two).
    pub(crate) fn wall_clock_at(&self, at: Instant) -> SystemTime {
        self.wall_base + at.saturating_duration_since(self.instant_base)
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunReport {
    /// Wall time from the first user's start to the last user's end.
    pub duration: Duration,
    /// Users started.
    pub users_started: u32,
    /// True when the run was stopped by `interrupt` rather than by its test time.
    pub interrupted: bool,
    /// Open model: iterations not started because `max_users` were all busy.
    pub dropped_iterations: u64,
    /// Tasks skipped because their condition did not hold.
    pub tasks_skipped: u64,
    /// Requests that failed because the connection could not be made.
    pub connect_failures: u64,
    /// True when a CSV source that does not cycle ran out of rows.
    pub out_of_data: bool,
}

/// Counters that explain a run that sent no (successful) requests.
#[derive(Debug, Default)]
pub(crate) struct IdleCauses {
    /// Tasks skipped because their condition did not hold.
    pub(crate) tasks_skipped: AtomicU64,
    /// Requests that failed to connect.
    pub(crate) connect_failures: AtomicU64,
}

/// What watches a run besides the listeners.
#[derive(Debug, Clone, Default)]
pub struct RunObservers {
    /// Print a status line every 2 s.
    pub progress: Option<Progress>,
    /// Append one timeline entry per second to these statistics.
    pub timeline: Option<Arc<StatsRecorder>>,
    /// Controls a web UI may use while the test runs (stop, change users).
    pub control: Option<Arc<RunControl>>,
}

/// Runs a test plan to its end: its test time, the end of its load shape, or
/// `interrupt` (Ctrl-C), whichever comes first.
pub async fn run_test<P: Protocol>(
    plan: TestPlan<P>,
    listeners: Arc<ListenerRegistry>,
    interrupt: CancellationToken,
    observers: RunObservers,
) -> RunReport {
    let started = Instant::now();
    let shared = Arc::new(RunShared {
        plan,
        listeners,
        protocol: Arc::default(),
        active_users: observers
            .control
            .as_ref()
            .map_or_else(Arc::default, |c| c.active_users_counter()),
        control: observers.control.clone(),
        dropped_iterations: AtomicU64::new(0),
        out_of_data: CancellationToken::new(),
        idle_causes: IdleCauses::default(),
        stopping: AtomicBool::new(false),
        wall_base: SystemTime::now(),
        instant_base: started,
    });
    if let Some(control) = &shared.control
        && shared.plan.arrival.is_some()
    {
        control.set_state(RunState::Running);
    }
    let stop_users = CancellationToken::new();
    let shape_ended = CancellationToken::new();
    let progress_task = observers
        .progress
        .map(|p| tokio::spawn(p.run(shared.clone(), stop_users.clone())));
    let timeline_task = observers.timeline.map(|stats| {
        tokio::spawn(timeline::sample_every_second(
            stats,
            shared.clone(),
            stop_users.clone(),
        ))
    });

    let supervisor = match shared.plan.arrival.clone() {
        Some(arrival) => tokio::spawn(arrival::run_open_model(
            shared.clone(),
            arrival,
            stop_users.clone(),
            shape_ended.clone(),
        )),
        None => tokio::spawn(spawn_and_supervise(
            shared.clone(),
            stop_users.clone(),
            shape_ended.clone(),
        )),
    };
    let deadline = async {
        match shared.plan.test_time {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    let stopped_by_control = async {
        match &shared.control {
            Some(control) => control.stopped().cancelled().await,
            None => std::future::pending().await,
        }
    };
    let interrupted = tokio::select! {
        _ = deadline => false,
        _ = shape_ended.cancelled() => false,
        _ = interrupt.cancelled() => true,
        _ = stopped_by_control => true,
    };
    if let Some(control) = &shared.control {
        control.set_state(RunState::Stopping);
    }
    shared.stopping.store(true, Ordering::Relaxed);
    stop_users.cancel();
    let users_started = supervisor.await.unwrap_or(0);
    let duration = started.elapsed();
    if let Some(task) = progress_task {
        let _ = task.await;
    }
    if let Some(task) = timeline_task {
        let _ = task.await;
    }
    if let Some(control) = &shared.control {
        control.set_state(RunState::Stopped);
    }
    RunReport {
        duration,
        users_started,
        interrupted,
        dropped_iterations: shared.dropped_iterations.load(Ordering::Relaxed),
        tasks_skipped: shared.idle_causes.tasks_skipped.load(Ordering::Relaxed),
        connect_failures: shared.idle_causes.connect_failures.load(Ordering::Relaxed),
        out_of_data: shared.out_of_data.is_cancelled(),
    }
}

/// How often the spawner looks at the shape.
const SPAWN_TICK: Duration = Duration::from_millis(10);

/// Keeps the number of running users on the shape's target, starting or stopping
/// (most recent first) at most `spawn_rate` users per second. Then waits for the stop
/// and for the users to end. Cancels `shape_ended` when the shape has no more stages.
async fn spawn_and_supervise<P: Protocol>(
    shared: Arc<RunShared<P>>,
    stop: CancellationToken,
    shape_ended: CancellationToken,
) -> u32 {
    let mut users = JoinSet::new();
    let mut running: Vec<UserStop> = Vec::new();
    // A test a web UI may resize follows the control's target instead of a constant.
    let shape = match shared.control.as_ref().and_then(|c| c.live_users()) {
        Some(live) if shared.plan.shape.is_none() => LoadShape::Live(live.clone()),
        _ => shared.plan.shape(),
    };
    let start = Instant::now();
    let mut last = start;
    // The first user starts at once, as in Locust.
    let mut allowance = 1.0f64;
    let mut spawned: u32 = 0;
    while !stop.is_cancelled() && !shared.out_of_data.is_cancelled() {
        let now = Instant::now();
        let Some((target, rate)) = shape.at(now - start) else {
            shape_ended.cancel();
            break;
        };
        allowance = (allowance + rate * (now - last).as_secs_f64()).min(rate.max(1.0));
        last = now;
        let current = running.len() as u32;
        let changes = (current.abs_diff(target) as f64).min(allowance.floor()) as u32;
        allowance -= f64::from(changes);
        for _ in 0..changes {
            if current < target {
                let user_stop = UserStop::retirable(stop.child_token());
                users.spawn(user::run_user(shared.clone(), user_stop.clone()));
                running.push(user_stop);
                spawned += 1;
            } else if let Some(user_stop) = running.pop() {
                // Finishes its in-flight request, which is counted.
                user_stop.retire();
            }
        }
        while users.try_join_next().is_some() {}
        if let Some(control) = &shared.control {
            let state = if running.len() as u32 == target {
                RunState::Running
            } else {
                RunState::Spawning
            };
            if control.state() != RunState::Stopping {
                control.set_state(state);
            }
        }
        if let LoadShape::Live(live) = &shape {
            live.set_running(running.len() as u32);
        }
        let resizable = matches!(shape, LoadShape::Live(_));
        if shared.plan.shape.is_none() && spawned >= shared.plan.users && !resizable {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(SPAWN_TICK) => {}
            _ = stop.cancelled() => {}
            _ = shared.out_of_data.cancelled() => {}
        }
    }
    // Users only end on their own when their data runs out: then the test ends
    // when the last one has.
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = async { while users.join_next().await.is_some() {} } => shape_ended.cancel(),
    }
    stop.cancelled().await;
    let drained = tokio::time::timeout(STOP_GRACE, async {
        while users.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "{} users did not finish within {STOP_GRACE:?}; aborting them",
            shared.active_users.load(Ordering::Relaxed)
        );
        users.shutdown().await;
    }
    if let LoadShape::Live(live) = &shape {
        live.set_running(0);
    }
    spawned
}

#[cfg(test)]
impl<P: Protocol> RunShared<P> {
    /// One user running `scenario` once, with no listeners.
    pub(crate) fn for_tests(scenario: Scenario<P>) -> Self {
        Self {
            plan: TestPlan {
                users: 1,
                spawn_rate: 1.0,
                test_time: None,
                wait: WaitTime::default(),
                shape: None,
                arrival: None,
                scenario: Arc::new(scenario),
            },
            listeners: Default::default(),
            protocol: Default::default(),
            active_users: Default::default(),
            control: None,
            dropped_iterations: AtomicU64::new(0),
            out_of_data: CancellationToken::new(),
            idle_causes: IdleCauses::default(),
            stopping: AtomicBool::new(false),
            wall_base: SystemTime::now(),
            instant_base: Instant::now(),
        }
    }
}
