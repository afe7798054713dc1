//! A task's `throttle` field: `{rps, key, burst}`, a token bucket shared by every
//! user and task of a test with the same `key` (LoadDensity's `RpsThrottle`).
//!
//! The bucket is a GCRA (the token bucket written as one "theoretical arrival time"),
//! kept in one atomic: taking a token is a compare-and-swap, never a lock, and a
//! user that must wait sleeps on the runtime's timer. The engine waits before the
//! request's clock starts, so waiting is not latency.
//!
//! The registry of buckets belongs to the test being parsed ([`ThrottleRegistry`]),
//! not to the process: two runs never share a bucket.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::{TaskError, err};

/// The fields of `throttle`.
pub const THROTTLE_FIELDS: &[&str] = &["rps", "key", "burst"];

/// A token bucket: `rps` tokens per second, at most `burst` at once.
#[derive(Debug)]
pub struct Throttle {
    key: String,
    rps: f64,
    burst: u32,
    /// Nanoseconds per token.
    interval: u64,
    /// How far ahead of the schedule a burst may run, nanoseconds.
    tolerance: u64,
    /// The theoretical arrival time of the next token, nanoseconds since `origin`.
    next: AtomicU64,
    origin: Instant,
}

impl Throttle {
    /// A bucket of `rps` tokens per second holding at most `burst`, full at first.
    pub fn new(key: String, rps: f64, burst: u32) -> Self {
        let interval = (1e9 / rps).clamp(1.0, 1e18) as u64;
        let burst = burst.max(1);
        Self {
            key,
            rps,
            burst,
            interval,
            tolerance: interval.saturating_mul(u64::from(burst - 1)),
            next: AtomicU64::new(0),
            origin: Instant::now(),
        }
    }

    /// The bucket's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Takes a token: `None` when one is free now, else the instant at which the
    /// caller's token is due (it is reserved: sleep until then).
    pub fn reserve(&self) -> Option<Instant> {
        let now = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut current = self.next.load(Ordering::Relaxed);
        loop {
            let next = current.max(now).saturating_add(self.interval);
            match self.next.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    let due = current.saturating_sub(self.tolerance);
                    return (due > now).then(|| self.origin + Duration::from_nanos(due));
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        if let Some(due) = self.reserve() {
            tokio::time::sleep_until(due.into()).await;
        }
    }
}

/// The buckets of one test, by key: tasks naming the same key share one.
#[derive(Debug, Default)]
pub struct ThrottleRegistry(HashMap<String, Arc<Throttle>>);

impl ThrottleRegistry {
    /// Parses `throttle` of the task at `path`; `name` is the task's name, the default
    /// key. Two tasks with one key and different settings are an error.
    pub(crate) fn parse(
        &mut self,
        object: &Map<String, Value>,
        path: &str,
        name: &str,
    ) -> Result<Option<Arc<Throttle>>, TaskError> {
        let map = match object.get("throttle") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(map)) => map,
            Some(other) => {
                return Err(err(
                    format!("{path}.throttle"),
                    format!("expected {{\"rps\": ..., \"key\": ..., \"burst\": ...}}, got {other}"),
                ));
            }
        };
        if let Some(key) = map.keys().find(|k| !THROTTLE_FIELDS.contains(&k.as_str())) {
            return Err(err(
                format!("{path}.throttle.{key}"),
                format!(
                    "unknown field; expected one of: {}",
                    THROTTLE_FIELDS.join(", ")
                ),
            ));
        }
        let rps = match map.get("rps") {
            Some(Value::Number(n)) => {
                n.as_f64()
                    .filter(|r| *r > 0.0 && *r <= 1e9)
                    .ok_or_else(|| {
                        err(
                            format!("{path}.throttle.rps"),
                            format!("expected a positive number of requests per second, got {n}"),
                        )
                    })?
            }
            None | Some(Value::Null) => {
                return Err(err(
                    format!("{path}.throttle.rps"),
                    "missing field: the requests per second to allow",
                ));
            }
            Some(other) => {
                return Err(err(
                    format!("{path}.throttle.rps"),
                    format!("expected a positive number of requests per second, got {other}"),
                ));
            }
        };
        let burst = match map.get("burst") {
            None | Some(Value::Null) => (rps as u32).max(1),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|b| u32::try_from(b).ok())
                .filter(|b| *b >= 1)
                .ok_or_else(|| {
                    err(
                        format!("{path}.throttle.burst"),
                        format!("expected a positive integer, got {n}"),
                    )
                })?,
            Some(other) => {
                return Err(err(
                    format!("{path}.throttle.burst"),
                    format!("expected a positive integer, got {other}"),
                ));
            }
        };
        let key = match map.get("key") {
            None | Some(Value::Null) => name.to_string(),
            Some(Value::String(k)) if !k.is_empty() => k.clone(),
            Some(other) => {
                return Err(err(
                    format!("{path}.throttle.key"),
                    format!("expected a non-empty string, got {other}"),
                ));
            }
        };
        if let Some(existing) = self.0.get(&key) {
            if existing.rps != rps || existing.burst != burst {
                return Err(err(
                    format!("{path}.throttle"),
                    format!(
                        "key `{key}` is already throttled at rps {} and burst {}; tasks sharing a key must give the same settings",
                        existing.rps, existing.burst
                    ),
                ));
            }
            return Ok(Some(existing.clone()));
        }
        let throttle = Arc::new(Throttle::new(key.clone(), rps, burst));
        self.0.insert(key, throttle.clone());
        Ok(Some(throttle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn burst_then_rate() {
        let bucket = Throttle::new("k".into(), 10.0, 3);
        let free = (0..3).filter(|_| bucket.reserve().is_none()).count();
        assert_eq!(free, 3, "a full bucket gives its burst at once");
        let due = bucket.reserve().expect("the fourth waits");
        let wait = due.saturating_duration_since(Instant::now());
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        let later = bucket.reserve().expect("the fifth waits longer");
        assert!(later > due);
    }

    #[test]
    fn shared_by_key_and_checked() {
        let mut registry = ThrottleRegistry::default();
        let a = json!({"throttle": {"rps": 5}});
        let b = json!({"throttle": {"rps": 5, "key": "login"}});
        let first = registry
            .parse(a.as_object().expect("object"), "tasks[0]", "login")
            .expect("valid")
            .expect("some");
        let second = registry
            .parse(b.as_object().expect("object"), "tasks[1]", "other")
            .expect("valid")
            .expect("some");
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(first.burst, 5);
        let conflict = json!({"throttle": {"rps": 6, "key": "login"}});
        let e = registry
            .parse(conflict.as_object().expect("object"), "tasks[2]", "x")
            .expect_err("conflict");
        assert_eq!(e.path, "tasks[2].throttle");
        for (bad, path) in [
            (json!({"throttle": {"rps": 0}}), "tasks[0].throttle.rps"),
            (json!({"throttle": {"burst": 2}}), "tasks[0].throttle.rps"),
            (
                json!({"throttle": {"rps": 1, "burst": 0}}),
                "tasks[0].throttle.burst",
            ),
            (
                json!({"throttle": {"rps": 1, "keys": "a"}}),
                "tasks[0].throttle.keys",
            ),
        ] {
            let e = ThrottleRegistry::default()
                .parse(bad.as_object().expect("object"), "tasks[0]", "n")
                .expect_err("invalid");
            assert_eq!(e.path, path, "{bad}");
        }
    }
}
