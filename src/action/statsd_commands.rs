//! The `LD_*` commands of the StatsD sink: `LD_start_statsd_sink` and
//! `LD_stop_statsd_sink`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::args::{CheckArgs, NoArgs, typed};
use super::{ActionError, Executor};
use crate::sinks::statsd::{
    DEFAULT_FLUSH_INTERVAL_MS, DEFAULT_HOST, DEFAULT_MAX_PACKET_BYTES, DEFAULT_MAX_QUEUED_REQUESTS,
    DEFAULT_PORT, DEFAULT_PREFIX, Dialect, StatsdError, StatsdOptions, check_options,
    start_statsd_sink, statsd_sink_report, stop_statsd_sink,
};

/// Registers `LD_start_statsd_sink` and `LD_stop_statsd_sink`.
pub(super) fn register_statsd_commands(executor: &mut Executor) {
    executor.add_command(
        "LD_start_statsd_sink",
        typed(&["host", "port", "prefix"], start),
    );
    executor.add_command(
        "LD_stop_statsd_sink",
        typed(&[], |executor: &mut Executor, _: NoArgs| {
            Ok(json!({"stopped": stop_statsd_sink(executor.sinks())}))
        }),
    );
}

/// `LD_start_statsd_sink {"host": "127.0.0.1", "port": 8125, "prefix": "loaddensity",
/// "dialect": "dogstatsd", "max_packet_bytes": 1432, "aggregate_counters": false,
/// "flush_interval_ms": 100, "max_queued_requests": 100000}`. The first three, as in
/// LoadDensity, may be positional. Numbers are read wide so that out-of-range values
/// get a clear message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartStatsd {
    #[serde(default = "default_host")]
    host: String,
    #[serde(default = "default_port")]
    port: i64,
    #[serde(default = "default_prefix")]
    prefix: String,
    #[serde(default = "default_dialect")]
    dialect: String,
    #[serde(default = "default_max_packet_bytes")]
    max_packet_bytes: i64,
    #[serde(default)]
    aggregate_counters: bool,
    #[serde(default = "default_flush_interval_ms")]
    flush_interval_ms: i64,
    #[serde(default = "default_max_queued_requests")]
    max_queued_requests: i64,
}

fn default_host() -> String {
    DEFAULT_HOST.into()
}
fn default_port() -> i64 {
    i64::from(DEFAULT_PORT)
}
fn default_prefix() -> String {
    DEFAULT_PREFIX.into()
}
fn default_dialect() -> String {
    Dialect::DogStatsd.as_str().into()
}
fn default_max_packet_bytes() -> i64 {
    i64::try_from(DEFAULT_MAX_PACKET_BYTES).unwrap_or(i64::MAX)
}
fn default_flush_interval_ms() -> i64 {
    i64::try_from(DEFAULT_FLUSH_INTERVAL_MS).unwrap_or(i64::MAX)
}
fn default_max_queued_requests() -> i64 {
    i64::try_from(DEFAULT_MAX_QUEUED_REQUESTS).unwrap_or(i64::MAX)
}

/// A positive count argument.
fn count(field: &str, value: i64) -> Result<usize, ActionError> {
    usize::try_from(value)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| ActionError::argument(field, format!("expected at least 1, got {value}")))
}

impl StartStatsd {
    fn options(&self) -> Result<StatsdOptions, ActionError> {
        let dialect: Dialect = self
            .dialect
            .parse()
            .map_err(|e: StatsdError| ActionError::argument("dialect", e.to_string()))?;
        let port = u16::try_from(self.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                ActionError::argument(
                    "port",
                    format!("expected a port number 1..=65535, got {}", self.port),
                )
            })?;
        let flush_interval_ms = count("flush_interval_ms", self.flush_interval_ms)?;
        let options = StatsdOptions {
            host: self.host.clone(),
            port,
            prefix: self.prefix.clone(),
            dialect,
            max_packet_bytes: count("max_packet_bytes", self.max_packet_bytes)?,
            aggregate_counters: self.aggregate_counters,
            flush_interval: Duration::from_millis(flush_interval_ms as u64),
            max_queued_requests: count("max_queued_requests", self.max_queued_requests)?,
        };
        check_options(&options).map_err(argument_error)?;
        Ok(options)
    }
}

/// Maps a start error onto the argument it is about.
fn argument_error(error: StatsdError) -> ActionError {
    let field = match &error {
        StatsdError::UnknownDialect(_) => "dialect",
        StatsdError::UnknownHost { .. } => "host",
        StatsdError::InvalidSetting { name, .. } => name,
        StatsdError::Start(_) => return ActionError::Failed(error.to_string()),
    };
    ActionError::argument(field, error.to_string())
}

impl CheckArgs for StartStatsd {
    fn check(&self) -> Result<(), ActionError> {
        self.options().map(|_| ())
    }
}

fn start(executor: &mut Executor, args: StartStatsd) -> Result<Value, ActionError> {
    let options = args.options()?;
    let dialect = options.dialect;
    let started = start_statsd_sink(executor.sinks(), options).map_err(argument_error)?;
    executor.set_sink_report("statsd", Some(Box::new(statsd_sink_report)));
    Ok(json!({
        "started": true,
        "replaced": started.replaced,
        "target": started.target.to_string(),
        "dialect": dialect.as_str(),
    }))
}
