//! The load engine (closed model, like Locust): starts users at the spawn rate, runs
//! them for the test time or until interrupted, then stops them gracefully.
//!
//! The engine fires one [`crate::RequestEvent`] per request into the
//! [`ListenerRegistry`] it is given; it does not know which listeners are attached.

mod plan;
mod progress;
mod user;
mod wait;

pub use plan::TestPlan;
pub use progress::Progress;
pub use wait::WaitTime;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::http::TlsConnectors;
use crate::listener::ListenerRegistry;

/// How long stopped users may take to finish their in-flight request.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// State shared by the users of one run.
pub(crate) struct RunShared {
    pub(crate) plan: TestPlan,
    pub(crate) listeners: Arc<ListenerRegistry>,
    pub(crate) tls: Arc<TlsConnectors>,
    pub(crate) active_users: AtomicUsize,
    wall_base: SystemTime,
    instant_base: Instant,
}

impl RunShared {
    /// Wall-clock time of a monotonic instant (one clock read per request, not two).
    pub(crate) fn wall_clock_at(&self, at: Instant) -> SystemTime {
        self.wall_base + at.saturating_duration_since(self.instant_base)
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunReport {
    /// Wall time from the first user's start to the last user's end.
    pub duration: Duration,
    /// Users started.
    pub users_started: u32,
    /// True when the run was stopped by `interrupt` rather than by its test time.
    pub interrupted: bool,
}

/// Runs a test plan to its end. `interrupt` (Ctrl-C) stops it early; `progress`
/// prints a status line while it runs.
pub async fn run_test(
    plan: TestPlan,
    listeners: Arc<ListenerRegistry>,
    interrupt: CancellationToken,
    progress: Option<Progress>,
) -> RunReport {
    let started = Instant::now();
    let shared = Arc::new(RunShared {
        plan,
        listeners,
        tls: Arc::new(TlsConnectors::default()),
        active_users: AtomicUsize::new(0),
        wall_base: SystemTime::now(),
        instant_base: started,
    });
    let stop_users = CancellationToken::new();
    let progress_task = progress.map(|p| tokio::spawn(p.run(shared.clone(), stop_users.clone())));

    let supervisor = tokio::spawn(spawn_and_supervise(shared.clone(), stop_users.clone()));
    let deadline = async {
        match shared.plan.test_time {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    let interrupted = tokio::select! {
        _ = deadline => false,
        _ = interrupt.cancelled() => true,
    };
    stop_users.cancel();
    let users_started = supervisor.await.unwrap_or(0);
    let duration = started.elapsed();
    if let Some(task) = progress_task {
        let _ = task.await;
    }
    RunReport {
        duration,
        users_started,
        interrupted,
    }
}

/// Starts users at the spawn rate, then waits for the stop and for the users to end.
async fn spawn_and_supervise(shared: Arc<RunShared>, stop: CancellationToken) -> u32 {
    let mut users = JoinSet::new();
    let target = shared.plan.users;
    let rate = shared.plan.spawn_rate;
    let tick = if rate > 0.0 {
        Duration::from_secs_f64((1.0 / rate).max(0.01))
    } else {
        Duration::from_millis(10)
    };
    let ramp_start = Instant::now();
    let mut spawned: u32 = 0;
    while spawned < target && !stop.is_cancelled() {
        let due = if rate > 0.0 {
            let by_now = (ramp_start.elapsed().as_secs_f64() * rate).floor() as u64 + 1;
            by_now.min(u64::from(target)) as u32
        } else {
            target
        };
        while spawned < due {
            users.spawn(user::run_user(shared.clone(), stop.clone()));
            spawned += 1;
        }
        if spawned < target {
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = stop.cancelled() => {}
            }
        }
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
    spawned
}
#[cfg(test)]
impl RunShared {
    pub(crate) fn for_tests() -> Self {
        Self {
            plan: TestPlan {
                users: 1,
                spawn_rate: 1.0,
                test_time: None,
                wait: WaitTime::default(),
                tasks: vec![],
            },
            listeners: Default::default(),
            tls: Default::default(),
            active_users: AtomicUsize::new(0),
            wall_base: SystemTime::now(),
            instant_base: Instant::now(),
        }
    }
}
