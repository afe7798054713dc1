//! The `LD_*` commands of the Prometheus remote-write sink:
//! `LD_start_prometheus_remote_write` and `LD_stop_prometheus_remote_write`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::args::{CheckArgs, NoArgs, typed};
use super::{ActionError, Executor};
use crate::sinks::prometheus::DEFAULT_MAX_SERIES;
use crate::sinks::prometheus_remote_write::{
    DEFAULT_INTERVAL_MS, DEFAULT_TIMEOUT_MS, RemoteWriteError, RemoteWriteOptions,
    check_remote_write_options, prometheus_remote_write_report, start_prometheus_remote_write,
    stop_prometheus_remote_write,
};

/// Registers `LD_start_prometheus_remote_write` and `LD_stop_prometheus_remote_write`.
pub(super) fn register_remote_write_commands(executor: &mut Executor) {
    executor.add_command(
        "LD_start_prometheus_remote_write",
        typed(&["url", "interval_ms", "headers", "timeout_ms"], start),
    );
    executor.add_command(
        "LD_stop_prometheus_remote_write",
        typed(&[], |executor: &mut Executor, _: NoArgs| {
            let stopped = stop_prometheus_remote_write(executor.sinks());
            Ok(json!({"stopped": stopped, "report": prometheus_remote_write_report(executor.sinks())}))
        }),
    );
}

/// `LD_start_prometheus_remote_write {"url": "http://prometheus:9090/api/v1/write",
/// "interval_ms": 5000, "headers": {}, "timeout_ms": 10000, "max_series": 1000}`.
/// Numbers are read wide so that out-of-range values get a clear message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRemoteWrite {
    url: String,
    #[serde(default = "default_interval")]
    interval_ms: i64,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default = "default_timeout")]
    timeout_ms: i64,
    #[serde(default = "default_max_series")]
    max_series: i64,
}

fn default_interval() -> i64 {
    i64::try_from(DEFAULT_INTERVAL_MS).unwrap_or(i64::MAX)
}
fn default_timeout() -> i64 {
    i64::try_from(DEFAULT_TIMEOUT_MS).unwrap_or(i64::MAX)
}
fn default_max_series() -> i64 {
    i64::try_from(DEFAULT_MAX_SERIES).unwrap_or(i64::MAX)
}

impl StartRemoteWrite {
    fn options(&self) -> Result<RemoteWriteOptions, ActionError> {
        let millis = |field: &str, value: i64| {
            u64::try_from(value)
                .ok()
                .filter(|ms| (1..=86_400_000).contains(ms))
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    ActionError::argument(
                        field,
                        format!("expected milliseconds 1..=86400000, got {value}"),
                    )
                })
        };
        let options = RemoteWriteOptions {
            url: self.url.clone(),
            interval: millis("interval_ms", self.interval_ms)?,
            headers: self
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
            timeout: millis("timeout_ms", self.timeout_ms)?,
            max_series: usize::try_from(self.max_series)
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    ActionError::argument(
                        "max_series",
                        format!("expected at least 1, got {}", self.max_series),
                    )
                })?,
        };
        check_remote_write_options(&options).map_err(argument_error)?;
        Ok(options)
    }
}

/// The argument a start error is about.
fn argument_error(error: RemoteWriteError) -> ActionError {
    let field = match &error {
        RemoteWriteError::InvalidUrl(_) => "url".to_string(),
        RemoteWriteError::InvalidHeader(name) => format!("headers.{name}"),
        RemoteWriteError::InvalidDuration(field) => (*field).to_string(),
        RemoteWriteError::InvalidMaxSeries => "max_series".to_string(),
        RemoteWriteError::Thread(_) => return ActionError::Failed(error.to_string()),
    };
    ActionError::argument(field, error.to_string())
}

impl CheckArgs for StartRemoteWrite {
    fn check(&self) -> Result<(), ActionError> {
        self.options().map(|_| ())
    }
}

fn start(executor: &mut Executor, args: StartRemoteWrite) -> Result<Value, ActionError> {
    let options = args.options()?;
    start_prometheus_remote_write(executor.sinks(), &options).map_err(argument_error)?;
    executor.set_sink_report(
        "prometheus_remote_write",
        Some(Box::new(prometheus_remote_write_report)),
    );
    Ok(json!({"started": true, "interval_ms": options.interval.as_millis()}))
}
