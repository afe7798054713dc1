//! The `LD_*` commands of the InfluxDB sink: `LD_start_influxdb_sink` and
//! `LD_stop_influxdb_sink`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::args::{CheckArgs, NoArgs, typed};
use super::{ActionError, Executor};
use crate::sinks::influxdb::{
    DEFAULT_BATCH_SIZE, DEFAULT_FLUSH_INTERVAL_MS, DEFAULT_HOST, DEFAULT_MAX_PENDING_POINTS,
    DEFAULT_MEASUREMENT, DEFAULT_PORT, DEFAULT_TIMEOUT_SECS, InfluxError, InfluxOptions, Token,
    Transport, check_options, influxdb_sink_report, start_influxdb_sink, stop_influxdb_sink,
};

/// Registers `LD_start_influxdb_sink` and `LD_stop_influxdb_sink`.
pub(super) fn register_influxdb_commands(executor: &mut Executor) {
    executor.add_command(
        "LD_start_influxdb_sink",
        typed(
            &[
                "transport",
                "host",
                "port",
                "url",
                "token",
                "measurement",
                "timeout",
            ],
            start,
        ),
    );
    executor.add_command(
        "LD_stop_influxdb_sink",
        typed(&[], |executor: &mut Executor, _: NoArgs| {
            Ok(json!({"stopped": stop_influxdb_sink(executor.sinks())}))
        }),
    );
}

/// `LD_start_influxdb_sink {"transport": "udp", "host": "127.0.0.1", "port": 8089,
/// "url": null, "token": null, "measurement": "loaddensity_request", "timeout": 2.0,
/// "flush_interval_ms": 1000, "batch_size": 5000, "udp_payload_bytes": null,
/// "max_pending_points": 500000, "gzip": false}`. Numbers are read wide so that
/// out-of-range values get a clear message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartInflux {
    #[serde(default = "default_transport")]
    transport: String,
    #[serde(default = "default_host")]
    host: String,
    #[serde(default = "default_port")]
    port: i64,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default = "default_measurement")]
    measurement: String,
    #[serde(default = "default_timeout")]
    timeout: f64,
    #[serde(default = "default_flush_interval_ms")]
    flush_interval_ms: i64,
    #[serde(default = "default_batch_size")]
    batch_size: i64,
    /// None: 1400 bytes, or 32768 to a loopback address.
    #[serde(default)]
    udp_payload_bytes: Option<i64>,
    #[serde(default = "default_max_pending_points")]
    max_pending_points: i64,
    #[serde(default)]
    gzip: bool,
}

fn default_transport() -> String {
    Transport::Udp.as_str().into()
}
fn default_host() -> String {
    DEFAULT_HOST.into()
}
fn default_port() -> i64 {
    i64::from(DEFAULT_PORT)
}
fn default_measurement() -> String {
    DEFAULT_MEASUREMENT.into()
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
fn default_max_pending_points() -> i64 {
    i64::try_from(DEFAULT_MAX_PENDING_POINTS).unwrap_or(i64::MAX)
}

/// A positive count argument.
fn count(field: &str, value: i64) -> Result<usize, ActionError> {
    usize::try_from(value)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| ActionError::argument(field, format!("expected at least 1, got {value}")))
}

impl StartInflux {
    fn options(&self) -> Result<InfluxOptions, ActionError> {
        let transport: Transport = self
            .transport
            .parse()
            .map_err(|e: InfluxError| ActionError::argument("transport", e.to_string()))?;
        let port = u16::try_from(self.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                ActionError::argument(
                    "port",
                    format!("expected a port number 1..=65535, got {}", self.port),
                )
            })?;
        if !(self.timeout > 0.0 && self.timeout.is_finite() && self.timeout <= 3600.0) {
            return Err(ActionError::argument(
                "timeout",
                format!("expected seconds in (0, 3600], got {}", self.timeout),
            ));
        }
        let flush_interval_ms = count("flush_interval_ms", self.flush_interval_ms)?;
        let options = InfluxOptions {
            transport,
            host: self.host.clone(),
            port,
            url: self.url.clone(),
            token: self.token.clone().map(Token::new),
            measurement: self.measurement.clone(),
            timeout: Duration::from_secs_f64(self.timeout),
            flush_interval: Duration::from_millis(flush_interval_ms as u64),
            batch_size: count("batch_size", self.batch_size)?,
            udp_payload_bytes: self
                .udp_payload_bytes
                .map(|bytes| count("udp_payload_bytes", bytes))
                .transpose()?,
            max_pending_points: count("max_pending_points", self.max_pending_points)?,
            gzip: self.gzip,
        };
        check_options(&options).map_err(argument_error)?;
        Ok(options)
    }
}

/// Maps a start error onto the argument it is about.
fn argument_error(error: InfluxError) -> ActionError {
    let field = match &error {
        InfluxError::UnknownTransport(_) => "transport",
        InfluxError::MissingUrl
        | InfluxError::UnsupportedScheme(_)
        | InfluxError::InvalidUrl(_) => "url",
        InfluxError::UnknownHost { .. } => "host",
        InfluxError::InvalidSetting { name, .. } => name,
        InfluxError::Start(_) => return ActionError::Failed(error.to_string()),
    };
    ActionError::argument(field, error.to_string())
}

impl CheckArgs for StartInflux {
    fn check(&self) -> Result<(), ActionError> {
        self.options().map(|_| ())
    }
}

fn start(executor: &mut Executor, args: StartInflux) -> Result<Value, ActionError> {
    let options = args.options()?;
    let transport = options.transport;
    let started = start_influxdb_sink(executor.sinks(), options).map_err(argument_error)?;
    executor.set_sink_report("influxdb", Some(Box::new(influxdb_sink_report)));
    Ok(json!({"started": started, "transport": transport.as_str()}))
}
