//! One virtual user: a task that loops over the scenario with its own connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio_util::sync::CancellationToken;

use super::RunShared;
use crate::event::{Outcome, RequestEvent};
use crate::http::Session;

/// Runs one user (closed model) until `stop` is cancelled. A request in flight when
/// the stop comes is finished and reported.
pub(super) async fn run_user(shared: Arc<RunShared>, stop: CancellationToken) {
    shared.active_users.fetch_add(1, Ordering::Relaxed);
    let mut session = Session::new(shared.tls.clone());
    let mut rng = SmallRng::from_entropy();
    while !stop.is_cancelled() {
        let iteration_start = Instant::now();
        if !run_iteration(&shared, &mut session, None, &stop).await {
            break;
        }
        let pause = shared.plan.wait.delay(&mut rng, iteration_start.elapsed());
        if !pause.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.cancelled() => break,
            }
        }
    }
    shared.active_users.fetch_sub(1, Ordering::Relaxed);
}

/// Runs the scenario once and fires one event per request. The first request's
/// latency counts from `scheduled` when given (the open model's scheduled start), so
/// a stalled target shows in the percentiles. Returns false when stopped midway.
pub(super) async fn run_iteration(
    shared: &RunShared,
    session: &mut Session,
    scheduled: Option<Instant>,
    stop: &CancellationToken,
) -> bool {
    let mut scheduled = scheduled;
    for task in &shared.plan.tasks {
        if stop.is_cancelled() {
            return false;
        }
        let start = scheduled.take().unwrap_or_else(Instant::now);
        let result = session.execute(task).await;
        let response_time = start.elapsed();
        let start_time: SystemTime = shared.wall_clock_at(start);
        let failure_text;
        let (status, response_length, outcome) = match &result {
            Ok(response) if response.status.as_u16() < 400 => (
                Some(response.status.as_u16()),
                response.body_len,
                Outcome::Success,
            ),
            Ok(response) => {
                failure_text = format!(
                    "HTTP {} {}",
                    response.status.as_u16(),
                    response.status.canonical_reason().unwrap_or("")
                );
                (
                    Some(response.status.as_u16()),
                    response.body_len,
                    Outcome::Failure(failure_text.trim_end()),
                )
            }
            Err(error) => {
                failure_text = error.to_string();
                (None, 0, Outcome::Failure(&failure_text))
            }
        };
        shared.listeners.fire(&RequestEvent {
            endpoint: &task.endpoint,
            start_time,
            response_time,
            response_length,
            status,
            outcome,
        });
    }
    true
}

#[cfg(test)]
mod tests {
    /// Every user's task holds this future: keep it small (10,000 users must fit in
    /// 20 KiB each; see bench/memory.sh). Rare, large futures (connect, redirects)
    /// are boxed.
    #[test]
    fn user_future_stays_small() {
        let shared = std::sync::Arc::new(super::RunShared::for_tests());
        let fut = super::run_user(shared, tokio_util::sync::CancellationToken::new());
        let size = std::mem::size_of_val(&fut);
        assert!(size <= 2048, "run_user future is {size} bytes");
    }
}
