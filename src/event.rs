//! The request event: one [`RequestEvent`] is fired for every completed request.
//!
//! Events name their endpoint through an interned [`Endpoint`], so listeners can keep
//! per-endpoint state in a vector indexed by [`EndpointId`] instead of hashing strings
//! on every request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
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
    /// The response's headers and body start, only for responses a listener asked to
    /// sample ([`EventDetail::take_sample`]); `None` for all others.
    pub response: Option<ResponseParts<'a>>,
    /// True when this request retries a failed one of the same task (`retry`):
    /// every attempt is an event, and the statistics count the retries per name.
    pub retry: bool,
}

/// The W3C trace context the engine chose for one request, before sending it
/// ([`EventDetail::trace_ratio`]): an HTTP step sends it as a `traceparent` header,
/// and the traces exporter makes the request's span with these ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceIds {
    /// The trace id (never 0).
    pub trace_id: u128,
    /// The request span's id (never 0).
    pub span_id: u64,
    /// True when the request's span is exported (the `01` flag).
    pub sampled: bool,
}

impl TraceIds {
    /// Draws new ids from `rng`; the request is sampled with probability `ratio`.
    pub fn draw<R: rand::Rng + ?Sized>(rng: &mut R, ratio: f64) -> Self {
        let sampled = ratio >= 1.0 || (ratio > 0.0 && rng.r#gen::<f64>() < ratio);
        Self {
            trace_id: rng.r#gen::<u128>().max(1),
            span_id: rng.r#gen::<u64>().max(1),
            sampled,
        }
    }

    /// The `traceparent` header's value: `00-{trace id}-{span id}-{01|00}`.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{:032x}-{:016x}-{}",
            self.trace_id,
            self.span_id,
            if self.sampled { "01" } else { "00" }
        )
    }
}

/// Body bytes a sampled response keeps ([`ResponseParts::body`]).
pub const SAMPLE_BODY: usize = 4096;

/// Sample captures granted at a time (see [`EventDetail::rearm_samples`]).
const SAMPLE_REARM: u32 = 64;

/// What the listeners of one request event want in it beyond the basics: the URL of
/// each request, and the response of a few. The engine asks before each request, so
/// that a run with no such listener does neither.
///
/// A listener that wants URLs holds a claim ([`EventDetail::want_urls`]) while it is
/// attached. Samples are paid from a budget of captures that the sampling listener
/// re-arms when a response it still wanted went by without one.
#[derive(Debug)]
pub struct EventDetail {
    url_claims: AtomicUsize,
    sample_budget: AtomicU32,
    /// Claims of trace context ([`EventDetail::want_trace`]).
    trace_claims: AtomicUsize,
    /// The sample ratio of the last trace claim, as `f64` bits.
    trace_ratio: AtomicU64,
}

impl Default for EventDetail {
    fn default() -> Self {
        Self {
            url_claims: AtomicUsize::new(0),
            sample_budget: AtomicU32::new(SAMPLE_REARM),
            trace_claims: AtomicUsize::new(0),
            trace_ratio: AtomicU64::new(1.0f64.to_bits()),
        }
    }
}

impl EventDetail {
    /// True while some listener wants each request's URL (and so samples too).
    #[inline]
    pub fn urls_wanted(&self) -> bool {
        self.url_claims.load(Ordering::Relaxed) > 0
    }

    /// Claims URLs for a listener being attached. Pair with [`EventDetail::release_urls`].
    pub fn want_urls(&self) {
        self.url_claims.fetch_add(1, Ordering::Relaxed);
    }

    /// Drops a claim of [`EventDetail::want_urls`].
    pub fn release_urls(&self) {
        let _ = self
            .url_claims
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// The sample ratio to decide each request's trace context with, while some
    /// listener claims it ([`EventDetail::want_trace`]); `None` otherwise (nothing to do).
    #[inline]
    pub fn trace_ratio(&self) -> Option<f64> {
        (self.trace_claims.load(Ordering::Relaxed) > 0)
            .then(|| f64::from_bits(self.trace_ratio.load(Ordering::Relaxed)))
    }

    /// Claims trace context for a listener being attached: the engine then chooses
    /// each request's [`TraceIds`] before sending it, sampled at `ratio` (0 to 1).
    /// Pair with [`EventDetail::release_trace`].
    pub fn want_trace(&self, ratio: f64) {
        self.trace_ratio
            .store(ratio.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
        self.trace_claims.fetch_add(1, Ordering::Relaxed);
    }

    /// Drops a claim of [`EventDetail::want_trace`].
    pub fn release_trace(&self) {
        let _ = self
            .trace_claims
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// True when the engine should keep this request's response headers and body
    /// start: spends one capture of the budget.
    #[inline]
    pub fn take_sample(&self) -> bool {
        if self.sample_budget.load(Ordering::Relaxed) == 0 {
            return false;
        }
        self.sample_budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Grants more captures: a response that a listener wanted went by without one.
    pub fn rearm_samples(&self) {
        self.sample_budget
            .fetch_max(SAMPLE_REARM, Ordering::Relaxed);
    }
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

    #[test]
    fn trace_claims_and_traceparent() {
        let detail = EventDetail::default();
        assert_eq!(detail.trace_ratio(), None);
        detail.want_trace(0.25);
        assert_eq!(detail.trace_ratio(), Some(0.25));
        detail.release_trace();
        detail.release_trace();
        assert_eq!(detail.trace_ratio(), None);
        let ids = TraceIds {
            trace_id: 0xab,
            span_id: 0xcd,
            sampled: true,
        };
        assert_eq!(
            ids.traceparent(),
            "00-000000000000000000000000000000ab-00000000000000cd-01"
        );
        let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(7);
        assert!(!TraceIds::draw(&mut rng, 0.0).sampled);
        assert!(TraceIds::draw(&mut rng, 1.0).sampled);
    }
}
