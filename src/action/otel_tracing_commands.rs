//! The `LD_*` commands of the OpenTelemetry traces exporter:
//! `LD_start_opentelemetry_tracing_exporter` and `LD_stop_opentelemetry_tracing_exporter`.
//!
//! In a build without the `opentelemetry` cargo feature both commands exist and
//! answer with a clear error, so scripts fail loudly rather than as unknown commands.

use super::Executor;

/// The parameters of `LD_start_opentelemetry_tracing_exporter`, in positional order
/// (LoadDensity's two first).
const START_PARAMS: &[&str] = &[
    "endpoint",
    "service_name",
    "protocol",
    "headers",
    "timeout_ms",
    "sample_ratio",
    "propagate",
    "max_queue_size",
    "max_export_batch_size",
    "export_interval_ms",
];

pub(super) fn register_otel_tracing_commands(executor: &mut Executor) {
    imp::register(executor);
}

#[cfg(feature = "opentelemetry")]
mod imp {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::{Value, json};

    use super::START_PARAMS;
    use crate::action::args::{CheckArgs, NoArgs, typed};
    use crate::action::{ActionError, Executor};
    use crate::sinks::opentelemetry::{
        DEFAULT_SERVICE_NAME, OtelConfigError, OtelTracingConfigError, OtelTracingError,
        OtelTracingOptions, OtlpProtocol, opentelemetry_tracing_report,
        start_opentelemetry_tracing_exporter, stop_opentelemetry_tracing_exporter,
    };

    const ACTION: &str = "LD_start_opentelemetry_tracing_exporter";

    pub(super) fn register(executor: &mut Executor) {
        executor.add_command(ACTION, typed(START_PARAMS, start));
        executor.add_command(
            "LD_stop_opentelemetry_tracing_exporter",
            typed(&[], |executor: &mut Executor, _: NoArgs| {
                Ok(json!({"stopped": stop_opentelemetry_tracing_exporter(executor.sinks())}))
            }),
        );
    }

    /// `LD_start_opentelemetry_tracing_exporter {"endpoint": "http://collector:4317",
    /// "service_name": "loaddensity", "sample_ratio": 0.01, ...}`. Numbers are read
    /// wide so that out-of-range values get a clear message.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct StartTracing {
        #[serde(default)]
        endpoint: Option<String>,
        #[serde(default = "default_service_name")]
        service_name: String,
        #[serde(default)]
        protocol: Option<String>,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default)]
        timeout_ms: Option<i64>,
        #[serde(default)]
        sample_ratio: Option<f64>,
        #[serde(default)]
        propagate: bool,
        #[serde(default)]
        max_queue_size: Option<i64>,
        #[serde(default)]
        max_export_batch_size: Option<i64>,
        #[serde(default)]
        export_interval_ms: Option<i64>,
    }

    fn default_service_name() -> String {
        DEFAULT_SERVICE_NAME.into()
    }

    /// A positive count or number of milliseconds, or a clear error naming `field`.
    fn positive(field: &str, what: &str, value: Option<i64>) -> Result<Option<u64>, ActionError> {
        value
            .map(|n| {
                u64::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
                    ActionError::argument(
                        field,
                        format!("{ACTION}: expected a positive {what}, got {n}"),
                    )
                })
            })
            .transpose()
    }

    /// The field an invalid setting belongs to.
    fn field_of(error: &OtelTracingConfigError) -> &'static str {
        match error {
            OtelTracingConfigError::Otlp(error) => match error {
                OtelConfigError::Endpoint { .. } => "endpoint",
                OtelConfigError::Timeout(_) => "timeout_ms",
                OtelConfigError::Protocol(_) => "protocol",
                OtelConfigError::Header { .. } => "headers",
                OtelConfigError::ServiceName => "service_name",
                OtelConfigError::Interval(_)
                | OtelConfigError::Temporality(_)
                | OtelConfigError::Histogram(_)
                | OtelConfigError::Environment { .. } => "",
            },
            OtelTracingConfigError::SampleRatio(_) => "sample_ratio",
            OtelTracingConfigError::QueueSize => "max_queue_size",
            OtelTracingConfigError::BatchSize => "max_export_batch_size",
            OtelTracingConfigError::Interval => "export_interval_ms",
        }
    }

    fn config_error(error: OtelTracingConfigError) -> ActionError {
        ActionError::argument(field_of(&error), format!("{ACTION}: {error}"))
    }

    impl StartTracing {
        fn options(&self) -> Result<OtelTracingOptions, ActionError> {
            let usize_of = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
            let options = OtelTracingOptions {
                endpoint: self.endpoint.clone(),
                service_name: self.service_name.clone(),
                protocol: self
                    .protocol
                    .as_deref()
                    .map(OtlpProtocol::parse)
                    .transpose()
                    .map_err(|e| config_error(e.into()))?,
                headers: self.headers.clone(),
                timeout_ms: positive("timeout_ms", "number of milliseconds", self.timeout_ms)?,
                sample_ratio: self.sample_ratio,
                propagate: self.propagate,
                max_queue_size: positive("max_queue_size", "number of spans", self.max_queue_size)?
                    .map(usize_of),
                max_export_batch_size: positive(
                    "max_export_batch_size",
                    "number of spans",
                    self.max_export_batch_size,
                )?
                .map(usize_of),
                export_interval_ms: positive(
                    "export_interval_ms",
                    "number of milliseconds",
                    self.export_interval_ms,
                )?,
            };
            options.resolve().map_err(config_error)?;
            Ok(options)
        }
    }

    impl CheckArgs for StartTracing {
        fn check(&self) -> Result<(), ActionError> {
            self.options().map(|_| ())
        }
    }

    fn start(executor: &mut Executor, args: StartTracing) -> Result<Value, ActionError> {
        let started = start_opentelemetry_tracing_exporter(executor.sinks(), &args.options()?)
            .map_err(|e| match e {
                OtelTracingError::Config(e) => config_error(e),
                OtelTracingError::Start(_) => ActionError::Failed(e.to_string()),
            })?;
        executor.set_sink_report(
            "opentelemetry_traces",
            Some(Box::new(|sinks| {
                opentelemetry_tracing_report(sinks).unwrap_or(Value::Null)
            })),
        );
        Ok(started.to_json())
    }
}

#[cfg(not(feature = "opentelemetry"))]
mod imp {
    use super::START_PARAMS;
    use crate::action::Executor;
    use crate::action::otel_commands::NotBuilt;

    pub(super) fn register(executor: &mut Executor) {
        let _ = START_PARAMS;
        for name in [
            "LD_start_opentelemetry_tracing_exporter",
            "LD_stop_opentelemetry_tracing_exporter",
        ] {
            executor.add_command(name, NotBuilt(name));
        }
    }
}
