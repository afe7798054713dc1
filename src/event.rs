//! The request event: one [`RequestEvent`] is fired for every completed request.
//!
//! Events name their endpoint through an interned [`Endpoint`], so listeners can keep
//! per-endpoint state in a vector indexed by [`EndpointId`] instead of hashing strings
//! on every request.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime};

/// Dense index of an interned endpoint, unique within the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(pub u32);

/// What a request is reported as: its request type (the HTTP method) and its name.
#[derive(Debug)]
pub struct Endpoint {
    /// Process-wide dense index, usable as a vector slot by listeners.
    pub id: EndpointId,
    /// The request type, e.g. `GET`.
    pub request_type: Arc<str>,
    /// The task's name, or its URL as written when it has none.
    pub name: Arc<str>,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// The request succeeded.
    Success,
    /// The request failed; the text says why (e.g. `HTTP 404 Not Found`, `connection refused`).
    Failure(&'a str),
}

impl Outcome<'_> {
    /// True for [`Outcome::Success`].
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success)
    }

    /// The label used by the metric sinks: `success` or `failure`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure(_) => "failure",
        }
    }
}

/// One completed request, as seen by every attached listener.
#[derive(Debug, Clone, Copy)]
pub struct RequestEvent<'a> {
    /// Which endpoint the request belongs to.
    pub endpoint: &'a Endpoint,
    /// Wall-clock time at which the request started.
    pub start_time: SystemTime,
    /// Time from the start of the request to the end of its response body.
    pub response_time: Duration,
    /// Response body length in bytes (0 when no response arrived).
    pub response_length: u64,
    /// HTTP status code, when a response arrived.
    pub status: Option<u16>,
    /// Success, or failure with a short error text.
    pub outcome: Outcome<'a>,
    /// The URL requested, when the protocol has one (for the request log).
    pub url: Option<&'a str>,
    /// The response's headers and body start, only for responses the request log asked
    /// to sample ([`crate::request_log::sample_wanted`]); `None` for all others.
    pub response: Option<ResponseParts<'a>>,
}

/// Headers and body of a sampled response.
#[derive(Debug, Clone, Copy)]
pub struct ResponseParts<'a> {
    /// The response headers.
    pub headers: &'a http::HeaderMap,
    /// The body as kept (a prefix of it).
    pub body: &'a [u8],
}

impl RequestEvent<'_> {
    /// The response time in milliseconds, with microsecond precision.
    pub fn response_time_ms(&self) -> f64 {
        self.response_time.as_secs_f64() * 1000.0
    }
}

/// (request type, name).
type EndpointKey = (Arc<str>, Arc<str>);

/// Interns (request type, name) pairs into [`Endpoint`]s with dense ids.
///
/// Interning happens when a test is prepared, never on the request path.
#[derive(Debug, Default)]
pub struct EndpointInterner {
    by_key: Mutex<HashMap<EndpointKey, Arc<Endpoint>>>,
}

impl EndpointInterner {
    /// Returns the endpoint for this pair, creating it on first use.
    pub fn intern(&self, request_type: &str, name: &str) -> Arc<Endpoint> {
        let mut map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        let key: EndpointKey = (request_type.into(), name.into());
        if let Some(found) = map.get(&key) {
            return found.clone();
        }
        let id = EndpointId(u32::try_from(map.len()).unwrap_or(u32::MAX));
        let endpoint = Arc::new(Endpoint {
            id,
            request_type: key.0.clone(),
            name: key.1.clone(),
        });
        map.insert(key, endpoint.clone());
        endpoint
    }
}

static ENDPOINTS: LazyLock<EndpointInterner> = LazyLock::new(EndpointInterner::default);

/// Interns an endpoint in the process-wide table shared by every engine and listener.
/// A URL's password in `name` is masked (`http://user:***@host/`): the name reaches
/// every table, report, sink and history row.
pub fn intern_endpoint(request_type: &str, name: &str) -> Arc<Endpoint> {
    ENDPOINTS.intern(request_type, &crate::redact::redact_url_credentials(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_dense() {
        let interner = EndpointInterner::default();
        let a = interner.intern("GET", "/a");
        let b = interner.intern("POST", "/a");
        let a2 = interner.intern("GET", "/a");
        assert_eq!(a.id, a2.id);
        assert_ne!(a.id, b.id);
        assert_eq!(b.id, EndpointId(1));
    }
}
