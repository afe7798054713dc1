//! The metric sinks a command line flag starts for the whole run: `--prometheus`,
//! `--influxdb-udp`/`--influxdb-url` and `--otlp` (the same sinks a script starts
//! with its `LD_start_*` actions).

use anyhow::{Context, Result};
use loaddensity::Executor;
use loaddensity::sinks::datadog_apm::{
    DatadogOptions, datadog_apm_report, start_datadog_apm_exporter,
};
use loaddensity::sinks::influxdb::{
    InfluxOptions, Token, Transport, influxdb_sink_report, start_influxdb_sink,
};
use loaddensity::sinks::prometheus::{PrometheusOptions, start_prometheus_exporter};
use loaddensity::sinks::statsd::{StatsdOptions, start_statsd_sink, statsd_sink_report};

use crate::flags::{InfluxFlags, PrometheusFlag};

/// Starts the Prometheus exporter for `--prometheus`; it serves until the process
/// exits (or a script's `LD_stop_prometheus_exporter`).
pub(crate) fn start_prometheus(executor: &Executor, flag: Option<&PrometheusFlag>) -> Result<()> {
    let Some(flag) = flag else {
        return Ok(());
    };
    start_prometheus_exporter(
        executor.sinks(),
        PrometheusOptions {
            port: flag.port,
            addr: flag.addr.clone(),
            ..PrometheusOptions::default()
        },
    )
    .with_context(|| format!("--prometheus {}:{}", flag.addr, flag.port))?;
    Ok(())
}

/// Starts the InfluxDB sink for `--influxdb-udp` or `--influxdb-url` (token from
/// `INFLUX_TOKEN`), with its counters in the summary.
pub(crate) fn start_influxdb(executor: &mut Executor, flags: &InfluxFlags) -> Result<()> {
    let options = match (&flags.influxdb_udp, &flags.influxdb_url) {
        (Some((host, port)), _) => InfluxOptions {
            transport: Transport::Udp,
            host: host.clone(),
            port: *port,
            ..InfluxOptions::default()
        },
        (None, Some(url)) => InfluxOptions {
            transport: Transport::Http,
            url: Some(url.clone()),
            token: std::env::var("INFLUX_TOKEN")
                .ok()
                .filter(|t| !t.is_empty())
                .map(Token::new),
            ..InfluxOptions::default()
        },
        (None, None) => return Ok(()),
    };
    let flag = if flags.influxdb_udp.is_some() {
        "--influxdb-udp"
    } else {
        "--influxdb-url"
    };
    start_influxdb_sink(executor.sinks(), options).with_context(|| flag.to_string())?;
    executor.set_sink_report("influxdb", Some(Box::new(influxdb_sink_report)));
    Ok(())
}

/// Starts the StatsD sink for `--statsd HOST:PORT` (DogStatsD, LoadDensity's prefix),
/// with its counters in the summary.
pub(crate) fn start_statsd(executor: &mut Executor, flag: Option<&(String, u16)>) -> Result<()> {
    let Some((host, port)) = flag else {
        return Ok(());
    };
    let options = StatsdOptions {
        host: host.clone(),
        port: *port,
        ..StatsdOptions::default()
    };
    start_statsd_sink(executor.sinks(), options)
        .with_context(|| format!("--statsd {host}:{port}"))?;
    executor.set_sink_report("statsd", Some(Box::new(statsd_sink_report)));
    Ok(())
}

/// Starts the Datadog APM exporter for `--datadog-apm AGENT_URL`, with its counters in
/// the summary.
pub(crate) fn start_datadog_apm(executor: &mut Executor, agent_url: Option<&str>) -> Result<()> {
    let Some(agent_url) = agent_url else {
        return Ok(());
    };
    let options = DatadogOptions {
        agent_url: Some(agent_url.to_string()),
        ..DatadogOptions::default()
    };
    start_datadog_apm_exporter(executor.sinks(), options)
        .with_context(|| format!("--datadog-apm {agent_url}"))?;
    executor.set_sink_report("datadog_apm", Some(Box::new(datadog_apm_report)));
    Ok(())
}

/// `--otlp ENDPOINT`: the OpenTelemetry exporter, started like its action.
#[cfg(feature = "opentelemetry")]
pub(crate) mod otel {
    use anyhow::{Context, Result};
    use loaddensity::Executor;
    use loaddensity::sinks::opentelemetry::{
        OtelOptions, OtelTracingOptions, opentelemetry_report, opentelemetry_tracing_report,
        start_opentelemetry_exporter, start_opentelemetry_tracing_exporter,
        stop_opentelemetry_exporter, stop_opentelemetry_tracing_exporter,
    };

    /// Starts the exporter when `--otlp` was given, with its counters in the summary.
    pub(crate) fn start(executor: &mut Executor, endpoint: Option<&str>) -> Result<()> {
        let Some(endpoint) = endpoint else {
            return Ok(());
        };
        let options = OtelOptions {
            endpoint: Some(endpoint.to_string()),
            ..OtelOptions::default()
        };
        start_opentelemetry_exporter(executor.sinks(), &options)
            .with_context(|| format!("--otlp {endpoint}"))?;
        executor.set_sink_report(
            "opentelemetry",
            Some(Box::new(|sinks| {
                opentelemetry_report(sinks).unwrap_or(serde_json::Value::Null)
            })),
        );
        Ok(())
    }

    /// `--otlp-traces ENDPOINT`: the traces exporter, started like its action.
    pub(crate) fn start_traces(executor: &mut Executor, endpoint: Option<&str>) -> Result<()> {
        let Some(endpoint) = endpoint else {
            return Ok(());
        };
        let options = OtelTracingOptions {
            endpoint: Some(endpoint.to_string()),
            ..OtelTracingOptions::default()
        };
        start_opentelemetry_tracing_exporter(executor.sinks(), &options)
            .with_context(|| format!("--otlp-traces {endpoint}"))?;
        executor.set_sink_report(
            "opentelemetry_traces",
            Some(Box::new(|sinks| {
                opentelemetry_tracing_report(sinks).unwrap_or(serde_json::Value::Null)
            })),
        );
        Ok(())
    }

    /// Stops the running exporters (their final exports happen here).
    pub(crate) fn stop(executor: &Executor) {
        stop_opentelemetry_exporter(executor.sinks());
        stop_opentelemetry_tracing_exporter(executor.sinks());
    }
}

/// `--otlp` in a build without the `opentelemetry` feature.
#[cfg(not(feature = "opentelemetry"))]
pub(crate) mod otel {
    use anyhow::{Result, bail};
    use loaddensity::Executor;

    /// Refuses `--otlp`.
    pub(crate) fn start(_: &mut Executor, endpoint: Option<&str>) -> Result<()> {
        if endpoint.is_some() {
            bail!("--otlp: this loaddensity was built without the opentelemetry feature");
        }
        Ok(())
    }

    /// `--otlp-traces` in a build without the `opentelemetry` feature.
    pub(crate) fn start_traces(_: &mut Executor, endpoint: Option<&str>) -> Result<()> {
        if endpoint.is_some() {
            bail!("--otlp-traces: this loaddensity was built without the opentelemetry feature");
        }
        Ok(())
    }

    /// Nothing to stop.
    pub(crate) fn stop(_: &Executor) {}
}
