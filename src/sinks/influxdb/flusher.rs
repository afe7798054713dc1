//! The background task: takes records off the queue, encodes them into batches, and
//! sends each batch when it reaches `batch_size` lines or `flush_interval` has passed.
//!
//! Failed HTTP writes are handled by kind. A 4xx is logged once with its status and
//! the start of the body, and the batch is given up (sending it again cannot help). A
//! 5xx, a timeout or a connection error is retried with exponential backoff, as long
//! as the queue's budget has room: when the budget is spent, the oldest waiting batch
//! is given up so that fresh points get in. Drops and errors are counted and warned
//! about at most once every [`WARN_EVERY`](crate::sinks::queue::WARN_EVERY).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::line_protocol::{PointFields, SeriesPrefix, encode_line};
use super::queue::{Counters, Queue, Record};
use super::transport::{HttpTransport, UdpSent, UdpTransport, WriteError};
use crate::sinks::queue::{DrainBuffers, NewEndpoint, RateLimitedWarning, last_error_suffix};

/// How often the queue is emptied into batches, at most.
const TICK: Duration = Duration::from_millis(10);
/// First and longest wait before a retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Attempts of one batch before it is given up.
const MAX_ATTEMPTS: u32 = 8;
/// Start times of one endpoint closer than this are spread apart by a nanosecond.
const SAME_TIME_NS: i64 = 1_000;

/// Where batches go.
#[derive(Debug)]
pub(crate) enum Sender {
    Udp(UdpTransport),
    Http(Box<HttpTransport>),
}

/// Settings the flusher needs.
#[derive(Debug, Clone)]
pub(crate) struct FlushSettings {
    pub(crate) measurement: String,
    pub(crate) flush_interval: Duration,
    pub(crate) batch_size: usize,
    pub(crate) timeout: Duration,
}

#[derive(Debug)]
struct Batch {
    body: Vec<u8>,
    lines: usize,
    attempts: u32,
}

pub(crate) struct Flusher {
    queue: Arc<Queue>,
    counters: Arc<Counters>,
    sender: Sender,
    settings: FlushSettings,
    /// Line prefix and last timestamp, by endpoint id.
    prefixes: Vec<Option<SeriesPrefix>>,
    last_time: Vec<i64>,
    /// What a drain takes off the shards.
    drained: DrainBuffers<Record>,
    current: Vec<u8>,
    current_lines: usize,
    ready: VecDeque<Batch>,
    retry_at: Option<Instant>,
    backoff: Duration,
    logged_rejection: bool,
    warning: RateLimitedWarning,
    /// Set when the stop comes: the time by which every write must be done.
    stop_deadline: Option<Instant>,
    /// The `instance` tag, when this process is one of several ([`crate::instance`]).
    instance: Option<String>,
}

impl std::fmt::Debug for Flusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flusher")
            .field("sender", &self.sender)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Flusher {
    pub(crate) fn new(queue: Arc<Queue>, sender: Sender, settings: FlushSettings) -> Self {
        Self {
            counters: queue.counters.clone(),
            queue,
            sender,
            prefixes: Vec::new(),
            last_time: Vec::new(),
            drained: DrainBuffers::default(),
            current: Vec::with_capacity(settings.batch_size.min(1 << 16) * 128),
            current_lines: 0,
            ready: VecDeque::new(),
            retry_at: None,
            backoff: FIRST_BACKOFF,
            logged_rejection: false,
            warning: RateLimitedWarning::default(),
            stop_deadline: None,
            instance: crate::instance::instance_name(),
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
            self.send_full_datagrams();
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
        let left: usize = self.ready.drain(..).map(|b| b.lines).sum();
        if left > 0 {
            Counters::add(&self.counters.points_dropped, left);
            self.queue.release(left);
        }
        self.final_warning();
    }

    /// Empties every shard into batches.
    fn drain(&mut self) {
        let mut drained = std::mem::take(&mut self.drained);
        let queue = self.queue.clone();
        queue.drain(&mut drained, |new_endpoints, records| {
            self.learn_endpoints(new_endpoints);
            Counters::add(&self.counters.points_queued, records.len());
            for record in records {
                self.encode(record);
            }
        });
        self.drained = drained;
    }

    fn learn_endpoints(&mut self, new_endpoints: &[NewEndpoint]) {
        for endpoint in new_endpoints {
            let index = endpoint.id.0 as usize;
            if self.prefixes.len() <= index {
                self.prefixes.resize(index + 1, None);
                self.last_time.resize(index + 1, i64::MIN);
            }
            if self.prefixes[index].is_none() {
                self.prefixes[index] = Some(SeriesPrefix::with_instance(
                    &self.settings.measurement,
                    &endpoint.request_type,
                    &endpoint.name,
                    self.instance.as_deref(),
                ));
            }
        }
    }

    #[inline]
    fn encode(&mut self, record: &Record) {
        let index = record.endpoint.0 as usize;
        let Some(Some(prefix)) = self.prefixes.get(index) else {
            // Cannot happen: a shard announces an endpoint before its first record.
            Counters::add(&self.counters.points_dropped, 1);
            self.queue.release(1);
            return;
        };
        // InfluxDB keeps one point per series and timestamp: spread points of one
        // endpoint that started within the same microsecond.
        let last = self.last_time[index];
        let mut timestamp = record.timestamp_ns;
        if timestamp <= last && last - timestamp < SAME_TIME_NS {
            timestamp = last + 1;
        }
        self.last_time[index] = timestamp;
        encode_line(
            prefix,
            &PointFields {
                latency_ns: record.latency_ns,
                response_bytes: record.response_bytes,
                success: record.success,
                error: record.error.as_deref(),
                timestamp_ns: timestamp,
            },
            &mut self.current,
        );
        self.current_lines += 1;
        if self.current_lines >= self.settings.batch_size {
            self.seal();
        }
    }

    /// UDP: sends the full datagrams of the batch being filled at once, keeping only
    /// the last, partial one for the flush. A receiver's socket buffer then sees a
    /// steady stream instead of bursts of `batch_size` lines, which it would drop.
    fn send_full_datagrams(&mut self) {
        let Sender::Udp(udp) = &self.sender else {
            return;
        };
        if self.current.len() < udp.payload() || !self.ready.is_empty() {
            return;
        }
        let done = send_udp(udp, &self.current, true, &self.counters);
        let lines = done.sent + done.lost;
        self.queue.release(lines);
        self.current.drain(..done.consumed);
        self.current_lines -= lines;
    }

    /// Closes the batch being filled, if it has lines.
    fn seal(&mut self) {
        if self.current_lines == 0 {
            return;
        }
        let capacity = self.current.capacity();
        let body = std::mem::replace(&mut self.current, Vec::with_capacity(capacity));
        self.ready.push_back(Batch {
            body,
            lines: self.current_lines,
            attempts: 0,
        });
        self.current_lines = 0;
    }

    /// Sends ready batches in order until one fails or must wait for its retry.
    async fn send_ready(&mut self, shutdown: &CancellationToken) {
        while let Some(batch) = self.ready.front() {
            if self.retry_at.is_some_and(|at| Instant::now() < at) {
                break;
            }
            let result = match &mut self.sender {
                Sender::Udp(udp) => {
                    send_udp(udp, &batch.body, false, &self.counters);
                    None
                }
                Sender::Http(http) => {
                    let result = {
                        let send = http.send(&batch.body, self.settings.timeout);
                        tokio::pin!(send);
                        tokio::select! {
                            result = &mut send => Some(result),
                            _ = shutdown.cancelled() => {
                                // Stopping: let the write in flight finish within the stop's
                                // time (sending it again could store its points twice).
                                let deadline = *self
                                    .stop_deadline
                                    .get_or_insert_with(|| Instant::now() + self.settings.timeout);
                                tokio::time::timeout_at(deadline.into(), &mut send).await.ok()
                            }
                        }
                    };
                    if result.is_none() {
                        // No answer in time: the final flush (if time is left) sends
                        // it again, on a fresh connection.
                        http.reset();
                        return;
                    }
                    result
                }
            };
            match result {
                None => self.finish_front(),
                Some(result) => {
                    if !self.after_http(result) {
                        break;
                    }
                }
            }
        }
        // The budget is spent while batches wait for a retry: give up the oldest so
        // that fresh points get in.
        if self.queue.is_full() && self.retry_at.is_some() {
            self.give_up_front();
        }
    }

    /// The final flush: every batch once more, retries included, until `deadline`.
    async fn send_remaining(&mut self, deadline: Instant) {
        while let Some(batch) = self.ready.front() {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            let result = match &mut self.sender {
                Sender::Udp(udp) => {
                    send_udp(udp, &batch.body, false, &self.counters);
                    None
                }
                Sender::Http(http) => Some(http.send(&batch.body, deadline - now).await),
            };
            match result {
                None => self.finish_front(),
                Some(result) => {
                    if !self.after_http(result) {
                        // Retry while time is left, after a short pause.
                        let left = deadline.saturating_duration_since(Instant::now());
                        tokio::time::sleep(FIRST_BACKOFF.min(left)).await;
                        self.retry_at = None;
                    }
                }
            }
        }
    }

    /// Handles the result of an HTTP send of the front batch. Returns true when the
    /// next batch may be sent now.
    fn after_http(&mut self, result: Result<(), WriteError>) -> bool {
        let Some(batch) = self.ready.front_mut() else {
            return true;
        };
        match result {
            Ok(()) => {
                let lines = batch.lines;
                Counters::add(&self.counters.points_sent, lines);
                Counters::add(&self.counters.batches_sent, 1);
                Counters::add(&self.counters.bytes_sent, batch.body.len());
                self.ready.pop_front();
                self.queue.release(lines);
                self.retry_at = None;
                self.backoff = FIRST_BACKOFF;
                true
            }
            Err(error) => {
                Counters::add(&self.counters.write_errors, 1);
                self.counters.set_last_error(error.to_string());
                if !error.retryable() {
                    if !self.logged_rejection {
                        self.logged_rejection = true;
                        tracing::error!(
                            "influxdb sink: the server rejected a batch of {} points: {error} \
                             (further rejections are counted, not logged)",
                            batch.lines
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

    /// The front batch went out (UDP): count it and free its slots.
    fn finish_front(&mut self) {
        if let Some(batch) = self.ready.pop_front() {
            self.queue.release(batch.lines);
        }
    }

    fn give_up_front(&mut self) {
        if let Some(batch) = self.ready.pop_front() {
            Counters::add(&self.counters.points_dropped, batch.lines);
            self.queue.release(batch.lines);
        }
    }

    fn problems(&self) -> (u64, u64) {
        (
            Counters::get(&self.counters.points_dropped),
            Counters::get(&self.counters.write_errors),
        )
    }

    fn warn_if_due(&mut self) {
        let (dropped, errors) = self.problems();
        let Some(due) = self.warning.due(dropped, errors) else {
            return;
        };
        tracing::warn!(
            "influxdb sink: {} points dropped and {} write errors in the last {}s \
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
                "influxdb sink stopped: {} points sent, {dropped} dropped, {errors} write errors{}",
                Counters::get(&self.counters.points_sent),
                last_error_suffix(&self.counters.last_error),
            );
        }
    }
}

/// Sends lines as datagrams and counts what went out or was lost.
fn send_udp(udp: &UdpTransport, body: &[u8], keep_partial: bool, counters: &Counters) -> UdpSent {
    let done = udp.send(body, keep_partial);
    Counters::add(&counters.points_sent, done.sent);
    Counters::add(&counters.points_dropped, done.lost);
    if done.sent > 0 {
        Counters::add(&counters.batches_sent, 1);
        Counters::add(&counters.bytes_sent, done.consumed);
    }
    if let Some(error) = &done.error {
        Counters::add(&counters.write_errors, 1);
        counters.set_last_error(format!("UDP send: {error}"));
    } else if done.oversized {
        Counters::add(&counters.write_errors, 1);
        counters.set_last_error("a line longer than a UDP datagram can carry".into());
    }
    done
}
