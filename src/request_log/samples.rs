//! Response samples: the first [`SAMPLES_PER_KEY`] responses of each (name, status,
//! outcome) keep their headers and the first [`SAMPLE_BODY`] bytes of their body.
//! Requests that got no response are grouped under status "none" per name.
//!
//! The engine keeps a response's body only when asked
//! ([`EventDetail::take_sample`]): a budget of captures of the run's request event,
//! spent one per captured request and re-armed whenever a response arrives for a group
//! that still has a free slot but was not captured. Once every group seen is full, no
//! more bodies are captured.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

pub use crate::event::SAMPLE_BODY;
use crate::event::{EventDetail, RequestEvent};
use crate::stats::ResponseSample;
use crate::stats::document::rfc3339_millis;

/// Responses kept per (name, status, outcome).
pub const SAMPLES_PER_KEY: usize = 3;
/// Most samples kept in all (bounds memory with many names: about 5 MiB).
pub const MAX_SAMPLES: usize = 1000;

/// Headers whose values carry credentials: kept as `<redacted>`.
const REDACTED_HEADERS: &[&str] = &[
    "set-cookie",
    "cookie",
    "authorization",
    "proxy-authorization",
    "www-authenticate",
];

/// The group a response is sampled in, compact enough for per-thread caches.
pub(crate) type SampleKey = (u32, u16, bool);

/// The key of an event: (endpoint id, status or 0, success).
pub(crate) fn key_of(event: &RequestEvent<'_>) -> SampleKey {
    (
        event.endpoint.id.0,
        event.status.unwrap_or(0),
        event.outcome.is_success(),
    )
}

/// What became of an offered event.
pub(crate) enum Offer {
    /// Kept as sample number `n`.
    Kept(u32),
    /// The group is full: never offer it again.
    Full,
    /// The group has room but this event had no body: offer later ones.
    Missed,
}

/// The samples kept so far.
#[derive(Debug)]
pub(crate) struct Samples {
    counts: HashMap<(Arc<str>, u16, bool), usize>,
    pub(crate) list: Vec<ResponseSample>,
    /// The request event whose capture budget a missed response re-arms.
    pub(crate) detail: Arc<EventDetail>,
}

impl Samples {
    /// No samples yet, re-arming the captures of `detail`.
    pub(crate) fn new(detail: Arc<EventDetail>) -> Self {
        Self {
            counts: HashMap::new(),
            list: Vec::new(),
            detail,
        }
    }

    /// Offers an event whose group is not known to be full.
    pub(crate) fn offer(&mut self, event: &RequestEvent<'_>) -> Offer {
        if self.list.len() >= MAX_SAMPLES {
            return Offer::Full;
        }
        let (_, status, success) = key_of(event);
        let count = self
            .counts
            .entry((event.endpoint.name.clone(), status, success))
            .or_default();
        if *count >= SAMPLES_PER_KEY {
            return Offer::Full;
        }
        // A request with no response is complete without a body.
        if event.response.is_none() && event.status.is_some() {
            self.detail.rearm_samples();
            return Offer::Missed;
        }
        *count += 1;
        let index = u32::try_from(self.list.len()).unwrap_or(u32::MAX);
        self.list.push(sample_of(event));
        Offer::Kept(index)
    }

    /// True when the group of this event holds its last sample.
    pub(crate) fn is_full(&self, event: &RequestEvent<'_>) -> bool {
        let (_, status, success) = key_of(event);
        self.list.len() >= MAX_SAMPLES
            || self
                .counts
                .get(&(event.endpoint.name.clone(), status, success))
                .is_some_and(|n| *n >= SAMPLES_PER_KEY)
    }

    /// Forgets every sample and grants captures again.
    pub(crate) fn clear(&mut self) {
        self.counts.clear();
        self.list.clear();
        self.detail.rearm_samples();
    }
}

fn sample_of(event: &RequestEvent<'_>) -> ResponseSample {
    let (headers, body) = match event.response {
        Some(parts) => {
            let headers = parts
                .headers
                .iter()
                .map(|(name, value)| {
                    let value = if REDACTED_HEADERS.contains(&name.as_str()) {
                        "<redacted>".to_string()
                    } else {
                        String::from_utf8_lossy(value.as_bytes()).into_owned()
                    };
                    (name.as_str().to_string(), value)
                })
                .collect();
            let body = &parts.body[..parts.body.len().min(SAMPLE_BODY)];
            (headers, body)
        }
        None => (Vec::new(), &[][..]),
    };
    ResponseSample {
        request_type: event.endpoint.request_type.to_string(),
        name: event.endpoint.name.to_string(),
        url: event.url.unwrap_or("").to_string(),
        status_code: event.status,
        error: match event.outcome {
            crate::event::Outcome::Success => None,
            crate::event::Outcome::Failure(text) => Some(text.to_string()),
        },
        start_time: rfc3339_millis(event.start_time.max(UNIX_EPOCH)),
        response_time_ms: event.response_time_ms(),
        response_length: event.response_length,
        headers,
        body: String::from_utf8_lossy(body).into_owned(),
        body_truncated: event.response_length > body.len() as u64,
    }
}
