//! The background task: takes records off the queue, encodes them as spans into a
//! payload, and sends the payload when it holds `batch_size` spans or `flush_interval`
//! has passed.
//!
//! A refused payload (4xx other than 429) is given up at once; a server error, a 429,
//! a timeout or a connection error is retried with backoff, up to [`MAX_ATTEMPTS`],
//! while the queue's budget has room. Drops and errors are counted and warned about at
//! most once every [`WARN_EVERY`](crate::sinks::queue::WARN_EVERY).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use super::agent::AgentClient;
use super::queue::{Counters, Queue, Record};
use super::span::{ApiVersion, Payload, SpanFields, error_type};
use crate::sinks::influxdb::transport::WriteError;
use crate::sinks::queue::{DrainBuffers, NewEndpoint, RateLimitedWarning, last_error_suffix};

/// How often the queue is emptied, at most.
const TICK: Duration = Duration::from_millis(10);
/// First and longest wait before a retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Attempts of one payload before it is given up.
const MAX_ATTEMPTS: u32 = 4;

/// Settings the flusher needs.
#[derive(Debug, Clone)]
pub(crate) struct FlushSettings {
    pub(crate) service: String,
    pub(crate) env: Option<String>,
    pub(crate) flush_interval: Duration,
    pub(crate) batch_size: usize,
    pub(crate) timeout: Duration,
    pub(crate) api_version: ApiVersion,
}

/// An empty payload of the settings' format, service and env.
fn new_payload(settings: &FlushSettings) -> Payload {
    Payload::new(
        settings.api_version,
        settings.batch_size,
        &settings.service,
        settings.env.as_deref(),
    )
}

/// A span name and the endpoint's strings, built once per endpoint.
#[derive(Debug)]
struct Names {
    name: String,
    request_type: Arc<str>,
    resource: Arc<str>,
}

#[derive(Debug)]
struct Batch {
    body: Bytes,
    spans: usize,
    attempts: u32,
}

#[derive(Debug)]
pub(crate) struct Flusher {
    queue: Arc<Queue>,
    counters: Arc<Counters>,
    client: AgentClient,
    settings: FlushSettings,
    names: Vec<Option<Names>>,
    /// What a drain takes off the shards.
    drained: DrainBuffers<Record>,
    current: Payload,
    ready: VecDeque<Batch>,
    retry_at: Option<Instant>,
    backoff: Duration,
    rng: SmallRng,
    logged_rejection: bool,
    warning: RateLimitedWarning,
    /// Set when the stop comes: the time by which every send must be done.
    stop_deadline: Option<Instant>,
}

impl Flusher {
    pub(crate) fn new(queue: Arc<Queue>, client: AgentClient, settings: FlushSettings) -> Self {
        Self {
            counters: queue.counters.clone(),
            queue,
            client,
            names: Vec::new(),
            drained: DrainBuffers::default(),
            current: new_payload(&settings),
            ready: VecDeque::new(),
            retry_at: None,
            backoff: FIRST_BACKOFF,
            rng: SmallRng::from_entropy(),
            logged_rejection: false,
            warning: RateLimitedWarning::default(),
            stop_deadline: None,
            settings,
        }
    }

    /// Runs until `shutdown`, then sends what is left, for at most the timeout.
    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        let tick = self
            .settings
            .flush_interval
            .min(TICK)
            .max(Duration::from_millis(1));
        let mut last_flush = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(tick) => {}
            }
            self.drain();
            if last_flush.elapsed() >= self.settings.flush_interval {
                self.seal();
                last_flush = Instant::now();
            }
            self.send_ready(&shutdown).await;
            self.warn_if_due();
        }
        let deadline = self
            .stop_deadline
            .unwrap_or_else(|| Instant::now() + self.settings.timeout);
        self.drain();
        self.seal();
        self.send_remaining(deadline).await;
        let left: usize = self.ready.drain(..).map(|b| b.spans).sum();
        if left > 0 {
            Counters::add(&self.counters.spans_dropped, left);
            self.queue.release(left);
        }
        self.final_warning();
    }

    /// Empties every shard into the payload.
    fn drain(&mut self) {
        let mut drained = std::mem::take(&mut self.drained);
        let queue = self.queue.clone();
        queue.drain(&mut drained, |new_endpoints, records| {
            self.learn_endpoints(new_endpoints);
            for record in records {
                self.encode(record);
            }
        });
        self.drained = drained;
    }

    fn learn_endpoints(&mut self, new_endpoints: &[NewEndpoint]) {
        for endpoint in new_endpoints {
            let index = endpoint.id.0 as usize;
            if self.names.len() <= index {
                self.names.resize_with(index + 1, || None);
            }
            if self.names[index].is_none() {
                self.names[index] = Some(Names {
                    name: format!("{}.{}", endpoint.request_type, endpoint.name),
                    request_type: endpoint.request_type.clone(),
                    resource: endpoint.name.clone(),
                });
            }
        }
    }

    fn encode(&mut self, record: &Record) {
        let trace_id = self.rng.gen_range(1..=u64::MAX);
        let span_id = self.rng.gen_range(1..=u64::MAX);
        let Some(Some(names)) = self.names.get(record.endpoint.0 as usize) else {
            // Cannot happen: a shard announces an endpoint before its first record.
            Counters::add(&self.counters.spans_dropped, 1);
            self.queue.release(1);
            return;
        };
        let error = record
            .error
            .as_deref()
            .map(|message| (error_type(record.status, message), message));
        let fields = SpanFields {
            trace_id,
            span_id,
            name: &names.name,
            request_type: &names.request_type,
            resource: &names.resource,
            start_ns: record.start_ns,
            duration_ns: record.duration_ns,
            response_length: record.response_length,
            error,
        };
        self.current.push(record.endpoint.0 as usize, &fields);
        if self.current.traces() >= self.settings.batch_size {
            self.seal();
        }
    }

    /// Closes the payload being filled, if it has spans.
    fn seal(&mut self) {
        if self.current.traces() == 0 {
            return;
        }
        let payload = std::mem::replace(&mut self.current, new_payload(&self.settings));
        let spans = payload.traces();
        self.ready.push_back(Batch {
            body: Bytes::from(payload.finish()),
            spans,
            attempts: 0,
        });
    }

    /// Sends ready payloads in order until one fails or must wait for its retry.
    async fn send_ready(&mut self, shutdown: &CancellationToken) {
        while let Some(batch) = self.ready.front() {
            if self.retry_at.is_some_and(|at| Instant::now() < at) {
                break;
            }
            let timeout = self.settings.timeout;
            let result = {
                let send = self.client.send(batch.body.clone(), batch.spans, timeout);
                tokio::pin!(send);
                tokio::select! {
                    result = &mut send => Some(result),
                    _ = shutdown.cancelled() => {
                        // Stopping: let the send in flight finish within the stop's time.
                        let deadline = *self
                            .stop_deadline
                            .get_or_insert_with(|| Instant::now() + timeout);
                        tokio::time::timeout_at(deadline.into(), &mut send).await.ok()
                    }
                }
            };
            let Some(result) = result else {
                // No answer in time: the final flush (if time is left) sends it again.
                self.client.reset();
                return;
            };
            if !self.after_send(result) {
                break;
            }
        }
        // The budget is spent while payloads wait for a retry: give up the oldest so
        // that fresh spans get in.
        if self.queue.is_full() && self.retry_at.is_some() {
            self.give_up_front();
        }
    }

    /// The final flush: every payload once more, retries included, until `deadline`.
    async fn send_remaining(&mut self, deadline: Instant) {
        while let Some(batch) = self.ready.front() {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            let result = self
                .client
                .send(batch.body.clone(), batch.spans, deadline - now)
                .await;
            if !self.after_send(result) {
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep(FIRST_BACKOFF.min(left)).await;
                self.retry_at = None;
            }
        }
    }

    /// Handles the result of sending the front payload. Returns true when the next
    /// one may be sent now.
    fn after_send(&mut self, result: Result<(), WriteError>) -> bool {
        let Some(batch) = self.ready.front_mut() else {
            return true;
        };
        match result {
            Ok(()) => {
                let spans = batch.spans;
                Counters::add(&self.counters.spans_sent, spans);
                Counters::add(&self.counters.payloads_sent, 1);
                Counters::add(&self.counters.bytes_sent, batch.body.len());
                self.ready.pop_front();
                self.queue.release(spans);
                self.retry_at = None;
                self.backoff = FIRST_BACKOFF;
                true
            }
            Err(error) => {
                Counters::add(&self.counters.errors, 1);
                self.counters.set_last_error(error.to_string());
                if !error.retryable() {
                    if !self.logged_rejection {
                        self.logged_rejection = true;
                        tracing::error!(
                            "datadog apm exporter: the agent refused a payload of {} spans: \
                             {error} (further refusals are counted, not logged)",
                            batch.spans
                        );
                    }
                    self.give_up_front();
                    return true;
                }
                batch.attempts += 1;
                if batch.attempts >= MAX_ATTEMPTS {
                    self.give_up_front();
                } else {
                    Counters::add(&self.counters.retries, 1);
                }
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                false
            }
        }
    }

    fn give_up_front(&mut self) {
        if let Some(batch) = self.ready.pop_front() {
            Counters::add(&self.counters.spans_dropped, batch.spans);
            self.queue.release(batch.spans);
        }
    }

    fn problems(&self) -> (u64, u64) {
        (
            Counters::get(&self.counters.spans_dropped),
            Counters::get(&self.counters.errors),
        )
    }

    fn warn_if_due(&mut self) {
        let (dropped, errors) = self.problems();
        let Some(due) = self.warning.due(dropped, errors) else {
            return;
        };
        tracing::warn!(
            "datadog apm exporter: {} spans dropped and {} send errors in the last {}s \
             ({dropped} and {errors} in all){}",
            due.dropped,
            due.errors,
            due.seconds,
            last_error_suffix(&self.counters.last_error),
        );
    }

    fn final_warning(&self) {
        let (dropped, errors) = self.problems();
        if dropped > 0 || errors > 0 {
            tracing::warn!(
                "datadog apm exporter stopped: {} spans sent, {dropped} spans dropped, \
                 {errors} send errors{}",
                Counters::get(&self.counters.spans_sent),
                last_error_suffix(&self.counters.last_error),
            );
        }
    }
}
