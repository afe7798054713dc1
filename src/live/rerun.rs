//! `POST /swarm` when no test runs. Locust starts a new test from its ready or stopped
//! state; here the script's tests are what runs, so once the script has ended and
//! `loaddensity run --web` keeps the web UI up, `/swarm` re-runs the script's last
//! `LD_start_test` with the posted user count and spawn rate, and the posted
//! `run_time` as its `test_time` when given (its other arguments as the script gave
//! them). While the script still runs, a test
//! starts only when the script starts it.
//!
//! The web UI queues the request ([`Reruns::request`]); whoever holds the executor
//! waits for it ([`Reruns::next`]) and runs it.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use super::lock;

/// Why `/swarm` cannot start a test now.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RerunError {
    /// The script is still running (or nothing keeps the web UI up after it).
    #[error(
        "No test running: the script starts its tests; /swarm changes the users of the running one, \
         and starts the script's last test again once the script has ended (loaddensity run --web)"
    )]
    NotAccepting,
    /// The script ran no `LD_start_test`.
    #[error("No test to start: the script ran no LD_start_test")]
    NoTest,
}

/// The last test's arguments and the `/swarm` request waiting to re-run it.
#[derive(Debug, Default)]
pub struct Reruns {
    inner: Mutex<RerunsInner>,
    wake: Notify,
}

#[derive(Debug, Default)]
struct RerunsInner {
    last_test: Option<Map<String, Value>>,
    accepting: bool,
    pending: Option<Map<String, Value>>,
}

impl Reruns {
    /// Remembers the arguments of the `LD_start_test` that starts now.
    pub fn set_last_test(&self, args: Map<String, Value>) {
        lock(&self.inner).last_test = Some(args);
    }

    /// Whether `/swarm` may start a test: from the script's end while the web UI stays.
    pub fn accept(&self, accepting: bool) {
        let mut inner = lock(&self.inner);
        inner.accepting = accepting;
        if !accepting {
            inner.pending = None;
        }
    }

    /// True when `/swarm` would start a test.
    pub fn accepting(&self) -> bool {
        let inner = lock(&self.inner);
        inner.accepting && inner.last_test.is_some()
    }

    /// Queues the last test with `users`, `spawn_rate` and, when given, `run_time` as
    /// its test time (a newer request replaces one not taken yet).
    pub fn request(
        &self,
        users: u32,
        spawn_rate: f64,
        run_time: Option<Duration>,
    ) -> Result<(), RerunError> {
        let mut inner = lock(&self.inner);
        if !inner.accepting {
            return Err(RerunError::NotAccepting);
        }
        let mut args = inner.last_test.clone().ok_or(RerunError::NoTest)?;
        args.insert("user_count".into(), json!(users));
        args.insert("spawn_rate".into(), json!(spawn_rate));
        if let Some(run_time) = run_time {
            args.insert("test_time".into(), json!(run_time.as_secs_f64()));
        }
        // The web UI that takes the request runs already.
        args.remove("web_ui_dict");
        inner.pending = Some(args);
        drop(inner);
        self.wake.notify_one();
        Ok(())
    }

    /// Waits for a request; returns the `LD_start_test` arguments to run.
    pub async fn next(&self) -> Map<String, Value> {
        loop {
            if let Some(args) = lock(&self.inner).pending.take() {
                return args;
            }
            self.wake.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_wait_for_the_scripts_end_and_replace_the_user_count() {
        let reruns = Reruns::default();
        assert_eq!(reruns.request(3, 1.0, None), Err(RerunError::NotAccepting));
        reruns.accept(true);
        assert_eq!(reruns.request(3, 1.0, None), Err(RerunError::NoTest));
        let mut args = Map::new();
        args.insert("user_count".into(), json!(50));
        args.insert("test_time".into(), json!(4));
        args.insert("web_ui_dict".into(), json!({}));
        reruns.set_last_test(args);
        assert!(reruns.accepting());
        reruns.request(3, 1.0, None).expect("accepted");
        reruns
            .request(7, 2.5, Some(Duration::from_secs(9)))
            .expect("replaces");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let next = runtime.block_on(reruns.next());
        assert_eq!(
            Value::Object(next),
            json!({"user_count": 7, "spawn_rate": 2.5, "test_time": 9.0})
        );
        reruns.accept(false);
        assert!(!reruns.accepting());
    }
}
