//! loaddensity: a load-testing engine driven by LoadDensity-compatible JSON action
//! scripts.
//!
//! The data flow reads from the module names:
//! [`action`] script → [`action::Executor`] → [`engine`] (users running a
//! [`scenario`] of [`task`]s over [`http`]) → one [`event::RequestEvent`] per
//! request → [`listener`]s such as [`stats`].

pub mod action;
pub mod engine;
pub mod event;
pub mod fast_http;
pub mod http;
pub mod listener;
pub mod scenario;
pub mod sinks;
pub mod sla;
pub mod stats;
pub mod target;
pub mod task;

mod serve;
mod shard;

pub use action::{ActionError, Executor, ExecutorOptions};
pub use event::{Endpoint, EndpointId, Outcome, RequestEvent};
pub use listener::{ListenerId, ListenerRegistry, RequestListener, request_event};
pub use stats::{StatsRecorder, Summary};
