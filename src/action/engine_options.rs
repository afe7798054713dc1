//! `LD_start_test`'s options of LoadDensity's asyncio engine (`engine: "asyncio"`),
//! `http2` and `max_in_flight`: honoured where this engine can, refused with the
//! reason where it cannot.
//!
//! LoadDensity 0.0.79 runs every HTTP user type (`http_user`, `fast_http_user`,
//! `async_http_user`) on one httpx client in that engine: `http2: true` makes it
//! offer HTTP/2 (by ALPN over TLS), and `max_in_flight` is a semaphore on requests
//! in flight across all users (default: the peak users).

use serde_json::Value;

use super::ActionError;
use crate::engine::{ArrivalRate, LoadShape};

/// The user type whose protocol runs the tasks: `user`, except that
/// `fast_http_user` (HTTP/1.1 only) with `http2: true` runs as `http_user`, which
/// offers HTTP/2 by ALPN.
pub(super) fn protocol_user_type(user: &str, http2: Option<bool>) -> &str {
    match user {
        "fast_http_user" if http2 == Some(true) => "http_user",
        user => user,
    }
}

/// `http2` where user type `user` cannot honour it: an error saying why.
pub(super) fn check_http2(user: &str, http2: Option<bool>) -> Result<(), ActionError> {
    let refuse = |why: String| Err(ActionError::argument("http2", why));
    match (http2, user) {
        (None, _)
        | (Some(_), "async_http_user")
        | (Some(false), "fast_http_user")
        | (Some(true), "http_user" | "fast_http_user") => Ok(()),
        (Some(false), "http_user") => refuse(
            "http_user always offers HTTP/2 by ALPN (and uses it when the server agrees); for HTTP/1.1 only, use fast_http_user".into(),
        ),
        (Some(_), user) => refuse(format!(
            "`http2` is an option of the HTTP users (fast_http_user, http_user, async_http_user), as in LoadDensity's asyncio engine; {user} does not read it"
        )),
    }
}

/// `max_in_flight`: a positive integer at least the most users the test starts
/// (`user_count`, the shape's peak or `arrival_rate.max_users`). Below that it is
/// refused: each user here has one request in flight at a time, so a lower cap could
/// only hold users in a queue, unmeasured.
pub(super) fn check_max_in_flight(
    max_in_flight: Option<&Value>,
    user_count: u32,
    shape: Option<&LoadShape>,
    arrival: Option<&ArrivalRate>,
) -> Result<(), ActionError> {
    let invalid = |got: &Value| {
        ActionError::argument(
            "max_in_flight",
            format!("expected a positive integer, got {got}"),
        )
    };
    let cap = match max_in_flight {
        None | Some(Value::Null) => return Ok(()),
        Some(value @ Value::Number(n)) => n
            .as_u64()
            .filter(|c| *c >= 1)
            .ok_or_else(|| invalid(value))?,
        Some(other) => return Err(invalid(other)),
    };
    let peak = match (shape, arrival) {
        (_, Some(arrival)) => Some(arrival.max_users),
        (Some(shape), None) => shape.peak_users(),
        (None, None) => Some(user_count),
    };
    match peak {
        Some(peak) if cap >= u64::from(peak) => Ok(()),
        Some(peak) => Err(ActionError::argument(
            "max_in_flight",
            format!(
                "{cap} is below the {peak} users this test starts: each loaddensity user has one request in flight at a time, so the cap could only hold users in a queue, unmeasured; start {cap} users instead (user_count, the shape's users or arrival_rate.max_users)"
            ),
        )),
        None => Err(ActionError::argument(
            "max_in_flight",
            "the users of a live shape are set from outside: cap them there",
        )),
    }
}
