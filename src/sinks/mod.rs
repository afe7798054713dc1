//! Metric sinks: listeners of the request event that publish what the load test does
//! to an outside monitoring system, while it runs.
//!
//! Each sink is started and stopped by a pair of functions (and the matching `LD_*`
//! actions) and keeps process-wide state, as LoadDensity's `start_*` helpers do.

pub mod influxdb;
#[cfg(feature = "opentelemetry")]
pub mod opentelemetry;
pub mod prometheus;
