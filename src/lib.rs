//! loaddensity: a load-testing engine driven by LoadDensity-compatible JSON action
//! scripts.
//!
//! The data flow reads from the module names:
//! [`action`] script → [`action::Executor`] → [`engine`] (users running a
//! [`scenario`] of [`task`]s over a [`protocol`]: [`http`], ...) → one
//! [`event::RequestEvent`] per request → [`listener`]s such as [`stats`].

pub mod action;
pub mod compare;
pub mod context;
pub mod control;
pub mod db;
pub mod engine;
pub mod event;
pub mod har;
pub mod history;
pub mod instance;
pub mod json_file;
pub mod listener;
pub mod live;
pub mod locust_worker;
pub mod output;
pub mod protocol;
pub mod redact;
pub mod report;
pub mod request_log;
pub mod scenario;
pub mod segment;
pub mod sinks;
pub mod sla;
pub mod stats;
pub mod target;
pub mod task;

pub use protocol::http;

mod serve;
mod shard;

pub use action::{ActionError, Executor, ExecutorOptions};
pub use context::RunContext;
pub use event::{Endpoint, EndpointId, Outcome, RequestEvent, TraceIds};
pub use listener::{ListenerId, ListenerRegistry, RequestListener};
pub use segment::Segment;
pub use stats::{StatsRecorder, Summary};
