//! The request log: one record per request (start time, method, URL, name, status,
//! response time, length, error), kept off the request path, behind the per-request
//! reports (CSV, LoadDensity's JSON and XML).
//!
//! `on_request` appends a compact binary record to its thread's buffer (one
//! uncontended lock, no allocation). A full buffer (32 KiB) goes through a bounded
//! queue to a writer thread that appends it to a temporary file; when the queue is
//! full the batch is dropped and counted, so the request loop never waits. Memory
//! stays bounded whatever the run length: 64 buffers, [`QUEUE_BATCHES`] queued
//! batches and at most [`samples::MAX_SAMPLES`] response samples, about 25 MiB in all.
//!
//! Past `max_records`, requests are counted, not kept. Reports read the file back in
//! order ([`RequestLog::records`]) after [`RequestLog::flush`].

mod record;
mod samples;
mod writer;

pub use record::{RecordReader, RequestRecord};
pub use samples::{MAX_SAMPLES, SAMPLE_BODY, SAMPLES_PER_KEY};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use crate::event::{EventDetail, RequestEvent};
use crate::listener::RequestListener;
use crate::shard::{Padded, SHARDS, shard_index};
use crate::stats::ResponseSample;
use record::{EndpointNames, MAX_RECORD, encode};
use samples::{Offer, SampleKey, Samples, key_of};
use writer::{Message, Writer};

/// `max_records` when a script gives none.
pub const DEFAULT_MAX_RECORDS: u64 = 1_000_000;
/// A thread's buffer is handed to the writer when it reaches this size.
const BATCH_BYTES: usize = 32 * 1024;
/// Batches the queue to the writer holds (16 MiB of records).
pub const QUEUE_BATCHES: usize = 512;
/// Record slots a thread reserves from the cap at a time.
const RESERVE: u64 = 256;

/// Errors of the request log.
#[derive(Debug, thiserror::Error)]
pub enum RequestLogError {
    /// The temporary file could not be created, written or read.
    #[error("request log: {0}")]
    Io(#[from] std::io::Error),
    /// The writer thread is gone.
    #[error("request log: the writer thread stopped")]
    WriterGone,
}

/// What the log holds and what it let go, as reported next to the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequestLogCounts {
    /// Requests seen by the log.
    pub requests: u64,
    /// Of those, records kept (readable by the reports).
    pub kept: u64,
    /// Records not kept because `max_records` was reached.
    pub over_cap: u64,
    /// Records lost because the writer fell behind (queue full) or failed.
    pub dropped: u64,
    /// The cap (`None`: no cap).
    pub max_records: Option<u64>,
    /// Response samples kept.
    pub samples: u64,
}

#[derive(Default)]
struct Shard {
    buf: Vec<u8>,
    records: u64,
    budget: u64,
    over_cap: u64,
    seen: Vec<bool>,
    /// Sample groups known full, by endpoint id: (status, success).
    full: Vec<Vec<(u16, bool)>>,
}

impl Shard {
    fn knows_full(&self, key: SampleKey) -> bool {
        self.full
            .get(key.0 as usize)
            .is_some_and(|groups| groups.contains(&(key.1, key.2)))
    }

    fn mark_full(&mut self, key: SampleKey) {
        let index = key.0 as usize;
        if self.full.len() <= index {
            self.full.resize_with(index + 1, Vec::new);
        }
        self.full[index].push((key.1, key.2));
    }
}

/// The request log listener. Attach it to the request event; read it with
/// [`RequestLog::records`].
pub struct RequestLog {
    shards: Box<[Padded<Mutex<Shard>>]>,
    /// Most records kept; `u64::MAX`: no cap.
    cap: AtomicU64,
    /// Record slots handed to threads so far (each thread spends its own).
    reserved: AtomicU64,
    dropped: AtomicU64,
    names: Mutex<EndpointNames>,
    samples: Mutex<Samples>,
    detail: Arc<EventDetail>,
    sender: SyncSender<Message>,
    writer: Writer,
}

impl std::fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLog")
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl RequestLog {
    /// A log keeping at most `max_records` records (`None`: no cap), spilling to a new
    /// temporary file written by its own thread. `detail` is the request event it
    /// will listen to ([`crate::ListenerRegistry::detail`]): the log asks it for URLs
    /// and response samples.
    pub fn new(
        max_records: Option<u64>,
        detail: Arc<EventDetail>,
    ) -> Result<Self, RequestLogError> {
        let (sender, writer) = Writer::start(QUEUE_BATCHES)?;
        Ok(Self {
            shards: (0..SHARDS).map(|_| Padded::default()).collect(),
            cap: AtomicU64::new(max_records.unwrap_or(u64::MAX)),
            reserved: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            names: Mutex::default(),
            samples: Mutex::new(Samples::new(detail.clone())),
            detail,
            sender,
            writer,
        })
    }

    /// Changes the cap for the requests to come (`None`: no cap).
    pub fn set_max_records(&self, max_records: Option<u64>) {
        self.cap
            .store(max_records.unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Marks the log as attached: its request event reports URLs (and samples)
    /// while any log is active. Pair with [`RequestLog::deactivate`].
    pub fn activate(&self) {
        self.detail.want_urls();
    }

    /// Undoes [`RequestLog::activate`].
    pub fn deactivate(&self) {
        self.detail.release_urls();
    }

    /// Takes record slots for a thread: up to [`RESERVE`], never past the cap.
    fn reserve(&self) -> u64 {
        let cap = self.cap.load(Ordering::Relaxed);
        let mut granted = 0;
        let _ = self
            .reserved
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |taken| {
                granted = cap.saturating_sub(taken).min(RESERVE);
                (granted > 0).then_some(taken + granted)
            });
        granted
    }

    /// Hands a thread's buffer to the writer without waiting; drops it when the queue
    /// is full.
    fn send_batch(&self, shard: &mut Shard) {
        let batch = std::mem::replace(&mut shard.buf, Vec::with_capacity(BATCH_BYTES + MAX_RECORD));
        let records = std::mem::take(&mut shard.records);
        match self.sender.try_send(Message::Batch(batch, records)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(records, Ordering::Relaxed);
            }
        }
    }

    fn offer_sample(&self, event: &RequestEvent<'_>, shard: &mut Shard) -> Option<u32> {
        let key = key_of(event);
        let mut samples = lock(&self.samples);
        match samples.offer(event) {
            Offer::Kept(index) => {
                if samples.is_full(event) {
                    shard.mark_full(key);
                }
                Some(index)
            }
            Offer::Full => {
                shard.mark_full(key);
                None
            }
            Offer::Missed => None,
        }
    }

    /// Sends every thread's buffer to the writer and waits until the file holds them.
    pub fn flush(&self) -> Result<(), RequestLogError> {
        for shard in self.shards.iter() {
            let mut shard = lock(&shard.0);
            if shard.records > 0 {
                let batch = std::mem::take(&mut shard.buf);
                let records = std::mem::take(&mut shard.records);
                // Off the request path: wait for room rather than drop.
                self.sender
                    .send(Message::Batch(batch, records))
                    .map_err(|_| RequestLogError::WriterGone)?;
            }
        }
        self.writer.sync(&self.sender)
    }

    /// The kept records, in the order their batches were written. Flushes first.
    pub fn records(&self) -> Result<RecordReader, RequestLogError> {
        self.flush()?;
        let file = self.writer.reopen()?;
        Ok(RecordReader::new(file, lock(&self.names).clone()))
    }

    /// The response samples kept so far.
    pub fn samples(&self) -> Vec<ResponseSample> {
        lock(&self.samples).list.clone()
    }

    /// Counters: requests seen, kept, over the cap, dropped.
    pub fn counts(&self) -> RequestLogCounts {
        let mut pending = 0;
        let mut over_cap = 0;
        for shard in self.shards.iter() {
            let shard = lock(&shard.0);
            pending += shard.records;
            over_cap += shard.over_cap;
        }
        let dropped = self.dropped.load(Ordering::Relaxed) + self.writer.lost();
        let kept = self.writer.written() + pending;
        let cap = self.cap.load(Ordering::Relaxed);
        RequestLogCounts {
            requests: kept + over_cap + dropped,
            kept,
            over_cap,
            dropped,
            max_records: (cap != u64::MAX).then_some(cap),
            samples: lock(&self.samples).list.len() as u64,
        }
    }

    /// Forgets every record and sample (`LD_clear_records`).
    pub fn clear(&self) -> Result<(), RequestLogError> {
        for shard in self.shards.iter() {
            let mut shard = lock(&shard.0);
            shard.buf.clear();
            shard.records = 0;
            shard.budget = 0;
            shard.over_cap = 0;
            shard.full.clear();
        }
        self.reserved.store(0, Ordering::Relaxed);
        self.dropped.store(0, Ordering::Relaxed);
        lock(&self.samples).clear();
        self.writer.truncate(&self.sender)
    }
}

impl RequestListener for RequestLog {
    #[inline]
    fn on_request(&self, event: &RequestEvent<'_>) {
        let mut guard = lock(&self.shards[shard_index()].0);
        let shard = &mut *guard;
        let key = key_of(event);
        let sample = if shard.knows_full(key) {
            None
        } else {
            self.offer_sample(event, shard)
        };
        if shard.budget == 0 {
            shard.budget = self.reserve();
            if shard.budget == 0 {
                shard.over_cap += 1;
                return;
            }
        }
        shard.budget -= 1;
        let id = event.endpoint.id.0 as usize;
        if !shard.seen.get(id).copied().unwrap_or(false) {
            if shard.seen.len() <= id {
                shard.seen.resize(id + 1, false);
            }
            shard.seen[id] = true;
            lock(&self.names).insert(
                event.endpoint.id.0,
                (
                    event.endpoint.request_type.clone(),
                    event.endpoint.name.clone(),
                ),
            );
        }
        if shard.buf.capacity() == 0 {
            shard.buf.reserve(BATCH_BYTES + MAX_RECORD);
        }
        encode(&mut shard.buf, event, sample);
        shard.records += 1;
        if shard.buf.len() >= BATCH_BYTES {
            self.send_batch(shard);
        }
    }
}
