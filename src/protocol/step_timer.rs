//! A user's step deadline: one tokio timer per user, kept from step to step.
//!
//! `tokio::time::timeout` gives each step a timer of its own: the runtime's timer
//! wheel takes its lock to register it when the step first waits and again to
//! remove it when the step ends, twice a step. A [`StepTimer`] stays armed for an
//! earlier step's deadline, which is never later than the current one's while steps
//! share a timeout: it is moved earlier only for a step with an earlier deadline,
//! and re-armed only when it fires before the current deadline. So a user whose
//! steps finish in time touches the wheel about once per timeout period, and the
//! rate of the lightest steps (a kept TCP exchange, an HTTP/1.1 request, a NATS
//! publish) is not the wheel's.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

use tokio::time::{Instant, Sleep};

/// One user's deadline timer, created on its first step (see the module's doc).
#[derive(Debug, Default)]
pub(crate) struct StepTimer {
    timer: Option<Pin<Box<Sleep>>>,
}

impl StepTimer {
    /// A timer not armed yet.
    pub(crate) const fn new() -> Self {
        Self { timer: None }
    }

    /// Runs `operation` until `deadline`: its output, or `None` when the deadline
    /// came first (as `tokio::time::timeout_at`). The operation comes pinned by the
    /// caller, so that the caller's future holds it once (an `async fn` that pinned
    /// an operation passed by value would hold it twice).
    pub(crate) async fn within<F: Future>(
        &mut self,
        deadline: std::time::Instant,
        mut operation: Pin<&mut F>,
    ) -> Option<F::Output> {
        let deadline = Instant::from_std(deadline);
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() > deadline {
            timer.as_mut().reset(deadline);
        }
        poll_fn(|cx| {
            if let Poll::Ready(output) = operation.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            // Bounded: after a reset to a deadline in the future the timer is pending.
            for _ in 0..2 {
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                if Instant::now() >= deadline {
                    return Poll::Ready(None);
                }
                timer.as_mut().reset(deadline);
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn an_operation_in_time_gives_its_output() {
        let mut timer = StepTimer::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        assert_eq!(timer.within(deadline, pin!(async { 7 })).await, Some(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_operation_is_cut_at_its_deadline() {
        let mut timer = StepTimer::new();
        let began = tokio::time::Instant::now();
        let deadline = began.into_std() + Duration::from_millis(300);
        let never = std::future::pending::<()>();
        assert_eq!(timer.within(deadline, pin!(never)).await, None);
        assert_eq!(began.elapsed(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_armed_for_an_earlier_step_is_moved_on() {
        let mut timer = StepTimer::new();
        let began = tokio::time::Instant::now();
        // The first step arms the timer for 100 ms from now and finishes at once.
        let first = began.into_std() + Duration::from_millis(100);
        assert_eq!(timer.within(first, pin!(async { 1 })).await, Some(1));
        // The second, due at 500 ms, outlives the first deadline: it is not cut there.
        let second = began.into_std() + Duration::from_millis(500);
        let slow = tokio::time::sleep(Duration::from_millis(300));
        assert_eq!(timer.within(second, pin!(slow)).await, Some(()));
        // A third step with an earlier deadline than the armed one is cut at its own.
        let third = tokio::time::Instant::now().into_std() + Duration::from_millis(50);
        let stalled = std::future::pending::<()>();
        let at = tokio::time::Instant::now();
        assert_eq!(timer.within(third, pin!(stalled)).await, None);
        assert_eq!(at.elapsed(), Duration::from_millis(50));
    }
}
