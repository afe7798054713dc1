//! The `LD_*` commands of the Datadog APM exporter: `LD_start_datadog_apm_exporter`
//! and `LD_stop_datadog_apm_exporter`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::args::{CheckArgs, NoArgs, typed};
use super::{ActionError, Executor};
use crate::sinks::datadog_apm::{
    DEFAULT_BATCH_SIZE, DEFAULT_FLUSH_INTERVAL_MS, DEFAULT_MAX_PENDING_SPANS, DEFAULT_SERVICE,
    DEFAULT_TIMEOUT_SECS, DatadogError, DatadogOptions, check_options, datadog_apm_report,
    start_datadog_apm_exporter, stop_datadog_apm_exporter,
};

/// Registers `LD_start_datadog_apm_exporter` and `LD_stop_datadog_apm_exporter`.
pub(super) fn register_datadog_commands(executor: &mut Executor) {
    executor.add_command(
        "LD_start_datadog_apm_exporter",
        typed(&["service", "env", "agent_url"], start),
    );
    executor.add_command(
        "LD_stop_datadog_apm_exporter",
        typed(&[], |executor: &mut Executor, _: NoArgs| {
            Ok(json!({"stopped": stop_datadog_apm_exporter(executor.sinks())}))
        }),
    );
}

/// `LD_start_datadog_apm_exporter {"service": "loaddensity", "env": null,
/// "agent_url": null, "timeout": 2.0, "flush_interval_ms": 1000, "batch_size": 5000,
/// "max_pending_spans": 200000}`. Numbers are read wide so that out-of-range values
/// get a clear message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartDatadog {
    #[serde(default = "default_service")]
    service: String,
    #[serde(default)]
    env: Option<String>,
    #[serde(default)]
    agent_url: Option<String>,
    #[serde(default = "default_timeout")]
    timeout: f64,
    #[serde(default = "default_flush_interval_ms")]
    flush_interval_ms: i64,
    #[serde(default = "default_batch_size")]
    batch_size: i64,
    #[serde(default = "default_max_pending_spans")]
    max_pending_spans: i64,
}

fn default_service() -> String {
    DEFAULT_SERVICE.into()
}
fn default_timeout() -> f64 {
    DEFAULT_TIMEOUT_SECS
}
fn default_flush_interval_ms() -> i64 {
    i64::try_from(DEFAULT_FLUSH_INTERVAL_MS).unwrap_or(i64::MAX)
}
fn default_batch_size() -> i64 {
    i64::try_from(DEFAULT_BATCH_SIZE).unwrap_or(i64::MAX)
}
fn default_max_pending_spans() -> i64 {
    i64::try_from(DEFAULT_MAX_PENDING_SPANS).unwrap_or(i64::MAX)
}

/// A positive count argument.
fn count(field: &str, value: i64) -> Result<usize, ActionError> {
    usize::try_from(value)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| ActionError::argument(field, format!("expected at least 1, got {value}")))
}

impl StartDatadog {
    fn options(&self) -> Result<DatadogOptions, ActionError> {
        if !(self.timeout > 0.0 && self.timeout.is_finite() && self.timeout <= 3600.0) {
            return Err(ActionError::argument(
                "timeout",
                format!("expected seconds in (0, 3600], got {}", self.timeout),
            ));
        }
        let flush_interval_ms = count("flush_interval_ms", self.flush_interval_ms)?;
        let options = DatadogOptions {
            service: self.service.clone(),
            env: self.env.clone(),
            agent_url: self.agent_url.clone(),
            timeout: Duration::from_secs_f64(self.timeout),
            flush_interval: Duration::from_millis(flush_interval_ms as u64),
            batch_size: count("batch_size", self.batch_size)?,
            max_pending_spans: count("max_pending_spans", self.max_pending_spans)?,
            api_version: None,
        };
        check_options(&options).map_err(|e| argument_error(e, self.agent_url.is_some()))?;
        Ok(options)
    }
}

/// Maps a start error onto the argument it is about. An agent URL that came from
/// `DD_TRACE_AGENT_URL` is named as such.
fn argument_error(error: DatadogError, url_given: bool) -> ActionError {
    match &error {
        DatadogError::UnsupportedScheme(_) | DatadogError::InvalidUrl(_) => {
            if url_given {
                ActionError::argument("agent_url", error.to_string())
            } else {
                ActionError::argument(
                    "agent_url",
                    format!(
                        "{error} (from the environment variable {})",
                        crate::sinks::datadog_apm::AGENT_URL_ENV
                    ),
                )
            }
        }
        DatadogError::InvalidSetting { name, message } => {
            ActionError::argument(*name, message.clone())
        }
        DatadogError::Start(_) => ActionError::Failed(error.to_string()),
    }
}

impl CheckArgs for StartDatadog {
    fn check(&self) -> Result<(), ActionError> {
        self.options().map(|_| ())
    }
}

fn start(executor: &mut Executor, args: StartDatadog) -> Result<Value, ActionError> {
    let options = args.options()?;
    let started = start_datadog_apm_exporter(executor.sinks(), options)
        .map_err(|e| argument_error(e, args.agent_url.is_some()))?;
    executor.set_sink_report("datadog_apm", Some(Box::new(datadog_apm_report)));
    Ok(json!({"started": started}))
}
