//! The state one run owns: its request event with the listeners attached to it, the
//! statistics, the parameter resolver, the request log, the sinks and the live
//! dashboard and web UI.
//!
//! An [`crate::Executor`] holds one [`RunContext`] and passes it down to every test and
//! command it runs, so two executors in one process never share counts, variables or
//! sinks. Statistics accumulate across the tests of one context until
//! `LD_clear_records`, as in LoadDensity.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::listener::{ListenerId, ListenerRegistry};
use crate::live::LiveServers;
use crate::request_log::{RequestLog, RequestLogError};
use crate::scenario::ParameterResolver;
use crate::sinks::Sinks;
use crate::stats::StatsRecorder;

/// Everything a run owns besides its runtime: see the [module docs](self).
#[derive(Debug)]
pub struct RunContext {
    listeners: Arc<ListenerRegistry>,
    stats: Arc<StatsRecorder>,
    resolver: ParameterResolver,
    request_log: Mutex<Option<AttachedLog>>,
    sinks: Sinks,
    live: LiveServers,
}

/// The request log and whether it listens now.
#[derive(Debug)]
struct AttachedLog {
    log: Arc<RequestLog>,
    listener: Option<ListenerId>,
}

impl Default for RunContext {
    fn default() -> Self {
        Self::new()
    }
}

impl RunContext {
    /// A new request event with the statistics attached to it, an empty resolver, no
    /// request log and no sink.
    pub fn new() -> Self {
        let listeners = Arc::new(ListenerRegistry::default());
        let stats = Arc::new(StatsRecorder::default());
        listeners.add(stats.clone());
        Self {
            sinks: Sinks::new(listeners.clone()),
            listeners,
            stats,
            resolver: ParameterResolver::default(),
            request_log: Mutex::new(None),
            live: LiveServers::default(),
        }
    }

    /// The live dashboard and web UI of this run.
    pub fn live(&self) -> &LiveServers {
        &self.live
    }

    /// The request event this run's tests fire (Locust's `events.request`).
    pub fn listeners(&self) -> &Arc<ListenerRegistry> {
        &self.listeners
    }

    /// The statistics of every request since the start or the last clear.
    pub fn stats(&self) -> &Arc<StatsRecorder> {
        &self.stats
    }

    /// The registered variables and CSV sources.
    pub fn resolver(&self) -> &ParameterResolver {
        &self.resolver
    }

    /// The metric sinks this run starts and stops.
    pub fn sinks(&self) -> &Sinks {
        &self.sinks
    }

    fn attached_log(&self) -> MutexGuard<'_, Option<AttachedLog>> {
        self.request_log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sets the request log up for the next test: `Some(0)` detaches it (what it holds
    /// stays readable), anything else attaches it with that cap (`None`: no cap).
    pub fn configure_request_log(&self, max_records: Option<u64>) -> Result<(), RequestLogError> {
        if max_records == Some(0) {
            self.detach_request_log();
            return Ok(());
        }
        let mut attached = self.attached_log();
        if attached.is_none() {
            let log = RequestLog::new(max_records, self.listeners.detail().clone())?;
            *attached = Some(AttachedLog {
                log: Arc::new(log),
                listener: None,
            });
        }
        if let Some(attached) = attached.as_mut() {
            attached.log.set_max_records(max_records);
            if attached.listener.is_none() {
                attached.log.activate();
                attached.listener = Some(self.listeners.add(attached.log.clone()));
            }
        }
        Ok(())
    }

    /// Stops feeding the request log (it stays readable).
    pub fn detach_request_log(&self) {
        if let Some(attached) = self.attached_log().as_mut()
            && let Some(id) = attached.listener.take()
        {
            self.listeners.remove(id);
            attached.log.deactivate();
        }
    }

    /// The request log, once a test has started with it on.
    pub fn request_log(&self) -> Option<Arc<RequestLog>> {
        self.attached_log().as_ref().map(|a| a.log.clone())
    }
}

impl Drop for RunContext {
    fn drop(&mut self) {
        self.detach_request_log();
        self.live.stop_all();
        self.sinks.stop_all();
    }
}
