//! The `LD_*` commands of the metric sinks: `LD_start_prometheus_exporter` and
//! `LD_stop_prometheus_exporter`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::args::{CheckArgs, NoArgs, typed};
use super::{ActionError, Executor};
use crate::sinks::prometheus::{
    DEFAULT_ADDR, DEFAULT_MAX_SERIES, DEFAULT_PORT, PrometheusError, PrometheusOptions, parse_addr,
    start_prometheus_exporter, stop_prometheus_exporter,
};

pub(super) fn register_sink_commands(executor: &mut Executor) {
    executor.add_command(
        "LD_start_prometheus_exporter",
        typed(&["port", "addr", "max_series"], start_prometheus),
    );
    executor.add_command(
        "LD_stop_prometheus_exporter",
        typed(&[], |executor: &mut Executor, _: NoArgs| {
            Ok(json!({"stopped": stop_prometheus_exporter(executor.sinks())}))
        }),
    );
}

/// `LD_start_prometheus_exporter {"port": 9646, "addr": "127.0.0.1", "max_series": 1000}`.
/// Numbers are read wide so that out-of-range values get a clear message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartPrometheus {
    #[serde(default = "default_port")]
    port: i64,
    #[serde(default = "default_addr")]
    addr: String,
    #[serde(default = "default_max_series")]
    max_series: i64,
}

fn default_port() -> i64 {
    i64::from(DEFAULT_PORT)
}
fn default_addr() -> String {
    DEFAULT_ADDR.into()
}
fn default_max_series() -> i64 {
    i64::try_from(DEFAULT_MAX_SERIES).unwrap_or(i64::MAX)
}

impl StartPrometheus {
    fn options(&self) -> Result<PrometheusOptions, ActionError> {
        let port = u16::try_from(self.port).map_err(|_| {
            ActionError::argument(
                "port",
                format!(
                    "expected a port number 0..=65535 (0 picks a free one), got {}",
                    self.port
                ),
            )
        })?;
        parse_addr(&self.addr).map_err(|e| ActionError::argument("addr", e.to_string()))?;
        let max_series = usize::try_from(self.max_series)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                ActionError::argument(
                    "max_series",
                    format!("expected at least 1, got {}", self.max_series),
                )
            })?;
        Ok(PrometheusOptions {
            port,
            addr: self.addr.clone(),
            max_series,
        })
    }
}

impl CheckArgs for StartPrometheus {
    fn check(&self) -> Result<(), ActionError> {
        self.options().map(|_| ())
    }
}

fn start_prometheus(executor: &mut Executor, args: StartPrometheus) -> Result<Value, ActionError> {
    let port =
        start_prometheus_exporter(executor.sinks(), args.options()?).map_err(|e| match e {
            PrometheusError::InvalidAddr(_) => ActionError::argument("addr", e.to_string()),
            PrometheusError::InvalidMaxSeries => ActionError::argument("max_series", e.to_string()),
            PrometheusError::Bind { .. } | PrometheusError::Server(_) => {
                ActionError::Failed(e.to_string())
            }
        })?;
    Ok(json!({"port": port}))
}
