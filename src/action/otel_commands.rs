//! The `LD_*` commands of the OpenTelemetry exporter:
//! `LD_start_opentelemetry_exporter` and `LD_stop_opentelemetry_exporter`.
//!
//! In a build without the `opentelemetry` cargo feature both commands exist and
//! answer with a clear error, so scripts fail loudly rather than as unknown commands.

use super::Executor;

/// The parameters of `LD_start_opentelemetry_exporter`, in positional order
/// (LoadDensity's three first).
const START_PARAMS: &[&str] = &[
    "endpoint",
    "service_name",
    "export_interval_ms",
    "protocol",
    "headers",
    "temporality",
    "histogram",
    "timeout_ms",
];

#[cfg(not(feature = "opentelemetry"))]
pub(super) use imp::NotBuilt;

pub(super) fn register_otel_commands(executor: &mut Executor) {
    imp::register(executor);
    super::otel_tracing_commands::register_otel_tracing_commands(executor);
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
        DEFAULT_SERVICE_NAME, HistogramKind, OtelConfigError, OtelError, OtelOptions,
        OtelTemporality, OtlpProtocol, opentelemetry_report, start_opentelemetry_exporter,
        stop_opentelemetry_exporter,
    };

    pub(super) fn register(executor: &mut Executor) {
        executor.add_command(
            "LD_start_opentelemetry_exporter",
            typed(START_PARAMS, start),
        );
        executor.add_command(
            "LD_stop_opentelemetry_exporter",
            typed(&[], |executor: &mut Executor, _: NoArgs| {
                Ok(json!({"stopped": stop_opentelemetry_exporter(executor.sinks())}))
            }),
        );
    }

    /// `LD_start_opentelemetry_exporter {"endpoint": "http://collector:4317",
    /// "service_name": "loaddensity", "export_interval_ms": 5000, ...}`. Numbers are
    /// read wide so that out-of-range values get a clear message.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct StartOtel {
        #[serde(default)]
        endpoint: Option<String>,
        #[serde(default = "default_service_name")]
        service_name: String,
        #[serde(default)]
        export_interval_ms: Option<i64>,
        #[serde(default)]
        protocol: Option<String>,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default)]
        temporality: Option<String>,
        #[serde(default)]
        histogram: Option<String>,
        #[serde(default)]
        timeout_ms: Option<i64>,
    }

    fn default_service_name() -> String {
        DEFAULT_SERVICE_NAME.into()
    }

    fn millis(field: &str, value: Option<i64>) -> Result<Option<u64>, ActionError> {
        value
            .map(|ms| {
                u64::try_from(ms).ok().filter(|ms| *ms >= 1).ok_or_else(|| {
                    ActionError::argument(
                        field,
                        format!("expected a positive number of milliseconds, got {ms}"),
                    )
                })
            })
            .transpose()
    }

    /// The field an invalid setting belongs to.
    fn field_of(error: &OtelConfigError) -> &'static str {
        match error {
            OtelConfigError::Endpoint { .. } => "endpoint",
            OtelConfigError::Interval(_) => "export_interval_ms",
            OtelConfigError::Timeout(_) => "timeout_ms",
            OtelConfigError::Protocol(_) => "protocol",
            OtelConfigError::Temporality(_) => "temporality",
            OtelConfigError::Histogram(_) => "histogram",
            OtelConfigError::Header { .. } => "headers",
            OtelConfigError::ServiceName => "service_name",
            OtelConfigError::Environment { .. } => "",
        }
    }

    fn config_error(error: OtelConfigError) -> ActionError {
        ActionError::argument(field_of(&error), error.to_string())
    }

    impl StartOtel {
        fn options(&self) -> Result<OtelOptions, ActionError> {
            let options = OtelOptions {
                endpoint: self.endpoint.clone(),
                service_name: self.service_name.clone(),
                export_interval_ms: millis("export_interval_ms", self.export_interval_ms)?,
                protocol: self
                    .protocol
                    .as_deref()
                    .map(OtlpProtocol::parse)
                    .transpose()
                    .map_err(config_error)?,
                headers: self.headers.clone(),
                temporality: self
                    .temporality
                    .as_deref()
                    .map(OtelTemporality::parse)
                    .transpose()
                    .map_err(config_error)?
                    .unwrap_or_default(),
                histogram: self
                    .histogram
                    .as_deref()
                    .map(HistogramKind::parse)
                    .transpose()
                    .map_err(config_error)?
                    .unwrap_or_default(),
                timeout_ms: millis("timeout_ms", self.timeout_ms)?,
            };
            options.resolve().map_err(config_error)?;
            Ok(options)
        }
    }

    impl CheckArgs for StartOtel {
        fn check(&self) -> Result<(), ActionError> {
            self.options().map(|_| ())
        }
    }

    fn start(executor: &mut Executor, args: StartOtel) -> Result<Value, ActionError> {
        let started = start_opentelemetry_exporter(executor.sinks(), &args.options()?).map_err(
            |e| match e {
                OtelError::Config(e) => config_error(e),
                OtelError::Build(_) | OtelError::Runtime(_) => ActionError::Failed(e.to_string()),
            },
        )?;
        executor.set_sink_report(
            "opentelemetry",
            Some(Box::new(|sinks| {
                opentelemetry_report(sinks).unwrap_or(Value::Null)
            })),
        );
        Ok(started.to_json())
    }
}

#[cfg(not(feature = "opentelemetry"))]
mod imp {
    use serde_json::Value;

    use super::START_PARAMS;
    use crate::action::{ActionError, Args, Command, Executor};

    /// A command of the OpenTelemetry sinks in a build without them: it names what
    /// is missing, in validation as in a run.
    pub(in crate::action) struct NotBuilt(pub(in crate::action) &'static str);

    impl NotBuilt {
        fn error(&self) -> ActionError {
            ActionError::Failed(format!(
                "this loaddensity was built without the opentelemetry feature, so {} is \
                 not available; rebuild with `cargo build --features opentelemetry` (it is \
                 on by default)",
                self.0
            ))
        }
    }

    impl Command for NotBuilt {
        fn validate(
            &self,
            _args: &Args,
            _: &crate::scenario::ParameterResolver,
        ) -> Result<(), ActionError> {
            Err(self.error())
        }

        fn run(&self, _executor: &mut Executor, _args: Args) -> Result<Value, ActionError> {
            Err(self.error())
        }
    }

    pub(super) fn register(executor: &mut Executor) {
        let _ = START_PARAMS;
        for name in [
            "LD_start_opentelemetry_exporter",
            "LD_stop_opentelemetry_exporter",
        ] {
            executor.add_command(name, NotBuilt(name));
        }
    }
}

#[cfg(all(test, not(feature = "opentelemetry")))]
mod tests {
    use serde_json::json;

    use crate::{Executor, ExecutorOptions};

    #[test]
    fn without_the_feature_the_actions_say_so() {
        let mut executor = Executor::new(ExecutorOptions {
            threads: Some(1),
            progress: false,
        })
        .expect("executor");
        executor.set_output(Box::new(std::io::sink()));
        let actions = json!([
            ["LD_start_opentelemetry_exporter", {"endpoint": "http://127.0.0.1:4317"}],
            ["LD_stop_opentelemetry_exporter", {}],
        ]);
        let failures = executor
            .validate_document(&actions, "<test>")
            .expect("document");
        assert_eq!(failures.len(), 2);
        let records = executor.execute_document(&actions, "<test>");
        for record in &records {
            let error = record.result.as_ref().expect_err("must fail");
            assert!(
                error
                    .to_string()
                    .contains("built without the opentelemetry feature"),
                "{error}"
            );
        }
    }
}
