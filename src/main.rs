//! The `loaddensity` command line: run action scripts, validate them, run an ad-hoc
//! benchmark, or serve the built-in target.

mod cli;
mod history_cmd;
mod merge_cmd;
mod report_cmd;
mod scale_out;
mod subcommands;

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;
use loaddensity::action::{DocumentError, parse_json};
use loaddensity::{Executor, ExecutorOptions};
use serde_json::json;

use cli::{BenchArgs, Cli, Command, InfluxFlags, PrometheusFlag};
use loaddensity::sinks::influxdb::{
    InfluxOptions, Token, Transport, influxdb_sink_report, start_influxdb_sink, stop_influxdb_sink,
};
use loaddensity::sinks::prometheus::{PrometheusOptions, start_prometheus_exporter};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOADDENSITY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let options = ExecutorOptions {
        threads: cli.threads,
        progress: !cli.quiet && (cli.progress || std::io::stderr().is_terminal()),
    };
    let Some(command) = cli.command else {
        return subcommands::run_legacy(&cli.legacy, options);
    };
    match command {
        Command::Run {
            path,
            summary_json,
            prometheus,
            influxdb,
            otlp,
            otlp_traces,
            scale,
            reports,
        } => {
            scale_out::check_flags(&scale)?;
            let status_line = options.progress;
            let mut executor = executor(options)?;
            // The segment and instance name first: the sinks label their output with them.
            scale_out::configure(&mut executor, &scale)?;
            executor.set_script(&path);
            start_prometheus(&executor, prometheus.as_ref())?;
            start_influxdb(&mut executor, &influxdb)?;
            otel::start(&mut executor, otlp.as_deref())?;
            otel::start_traces(&mut executor, otlp_traces.as_deref())?;
            let documents = load_documents(&path)?;
            if let Some(at) = scale.start_at {
                let parsed: Vec<(String, serde_json::Value)> = documents
                    .iter()
                    .filter_map(|(name, d)| d.as_ref().ok().map(|d| (name.clone(), d.clone())))
                    .collect();
                let invalid = parsed.len() != documents.len();
                if invalid || !scale_out::wait_for_start(&executor, &parsed, at, status_line)? {
                    for (_, document) in &documents {
                        if let Err(error) = document {
                            eprintln!("error: {error}");
                        }
                    }
                    stop_influxdb_sink(executor.sinks());
                    return finish(&executor, summary_json.as_deref(), Some(&reports), true);
                }
            }
            for (name, document) in documents {
                match document {
                    Ok(document) => {
                        executor.execute_document(&document, &name);
                    }
                    Err(error) => {
                        eprintln!("error: {error}");
                        stop_influxdb_sink(executor.sinks());
                        return finish(&executor, summary_json.as_deref(), Some(&reports), true);
                    }
                }
            }
            // Sends what a sink still holds (bounded by its timeout) before the
            // summary reports its counters.
            stop_influxdb_sink(executor.sinks());
            finish(&executor, summary_json.as_deref(), Some(&reports), false)
        }
        Command::Validate { path, segment } => validate(&path, segment.as_ref(), options),
        Command::Report(args) => report_cmd::report(&args),
        Command::Merge(args) => merge_cmd::merge(&args),
        Command::Compare(args) => history_cmd::compare_runs(&args),
        Command::Bench(args) => {
            let mut executor = executor(options)?;
            start_prometheus(&executor, args.prometheus.as_ref())?;
            start_influxdb(&mut executor, &args.influxdb)?;
            otel::start(&mut executor, args.otlp.as_deref())?;
            let document = bench_document(&args)?;
            executor.set_script("<bench>");
            executor.execute_document(&document, "<bench>");
            stop_influxdb_sink(executor.sinks());
            finish(&executor, args.summary_json.as_deref(), None, false)
        }
        Command::Target { addr } => serve_target(&addr, options),
        Command::RunDir { dir, summary_json } => {
            subcommands::run_loaded(options, load_documents(&dir)?, summary_json.as_deref())
        }
        Command::RunStr { json, summary_json } => subcommands::run_loaded(
            options,
            vec![subcommands::parse_run_str(&json)],
            summary_json.as_deref(),
        ),
        Command::Init { path } => subcommands::init_project(&path),
        Command::ImportHar(args) => subcommands::import_har(&args),
        Command::Serve(args) => subcommands::serve(&args, options),
    }
}

/// Starts the Prometheus exporter for `--prometheus`; it serves until the process
/// exits (or a script's `LD_stop_prometheus_exporter`).
fn start_prometheus(executor: &Executor, flag: Option<&PrometheusFlag>) -> Result<()> {
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
fn start_influxdb(executor: &mut Executor, flags: &InfluxFlags) -> Result<()> {
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

/// `--otlp ENDPOINT`: the OpenTelemetry exporter, started like its action.
#[cfg(feature = "opentelemetry")]
mod otel {
    use anyhow::{Context, Result};
    use loaddensity::Executor;
    use loaddensity::sinks::opentelemetry::{
        OtelOptions, OtelTracingOptions, opentelemetry_report, opentelemetry_tracing_report,
        start_opentelemetry_exporter, start_opentelemetry_tracing_exporter,
        stop_opentelemetry_exporter, stop_opentelemetry_tracing_exporter,
    };

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

    pub(crate) fn stop(executor: &Executor) {
        stop_opentelemetry_exporter(executor.sinks());
        stop_opentelemetry_tracing_exporter(executor.sinks());
    }
}

/// `--otlp` in a build without the `opentelemetry` feature.
#[cfg(not(feature = "opentelemetry"))]
mod otel {
    use anyhow::{Result, bail};
    use loaddensity::Executor;

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

    pub(crate) fn stop(_: &Executor) {}
}

/// An executor whose interrupt token is wired to Ctrl-C and SIGTERM. A second
/// signal exits at once.
fn executor(options: ExecutorOptions) -> Result<Executor> {
    let executor = Executor::new(options).context("cannot start the runtime")?;
    let interrupt = executor.interrupt_token();
    executor.runtime().spawn(async move {
        for attempt in 0.. {
            wait_for_signal().await;
            if attempt == 0 {
                eprintln!("\nstopping: finishing in-flight requests (Ctrl-C again to quit now)");
                interrupt.cancel();
            } else {
                std::process::exit(130);
            }
        }
    });
    Ok(executor)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Writes `--summary-json` and the reports, and picks the exit code. A running
/// OpenTelemetry exporter is stopped first, so that its final export happens and is
/// counted.
fn finish(
    executor: &Executor,
    summary_json: Option<&Path>,
    reports: Option<&cli::RunReportFlags>,
    failed: bool,
) -> Result<ExitCode> {
    otel::stop(executor);
    // The final push, so that the backend holds every request.
    loaddensity::sinks::prometheus_remote_write::stop_prometheus_remote_write(executor.sinks());
    if let Some(path) = summary_json {
        let text = serde_json::to_string_pretty(&executor.summary())?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(reports) = reports {
        report_cmd::write_run_reports(executor, reports)?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::from(executor.exit_code())
    })
}

type Loaded = (String, Result<serde_json::Value, DocumentError>);

/// The documents named by `path`: a file, every `.json` of a directory in sorted
/// order, or standard input for `-`.
fn load_documents(path: &str) -> Result<Vec<Loaded>> {
    if path == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
        return Ok(vec![("<stdin>".into(), parse_json(&text, "<stdin>"))]);
    }
    let path = PathBuf::from(path);
    let files = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
            .with_context(|| format!("cannot read directory {}", path.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!("{}: no .json files in this directory", path.display());
        }
        files
    } else {
        vec![path]
    };
    Ok(files
        .into_iter()
        .map(|file| {
            (
                file.display().to_string(),
                loaddensity::action::read_json_file(&file),
            )
        })
        .collect())
}

fn validate(
    path: &str,
    segment: Option<&loaddensity::Segment>,
    options: ExecutorOptions,
) -> Result<ExitCode> {
    let executor = Executor::new(ExecutorOptions {
        threads: Some(1),
        ..options
    })?;
    let mut problems = 0;
    for (name, document) in load_documents(path)? {
        let document = match document {
            Ok(document) => document,
            Err(error) => {
                eprintln!("error: {error}");
                problems += 1;
                continue;
            }
        };
        match executor.validate_document(&document, &name) {
            Ok(failures) if failures.is_empty() => eprintln!("{name}: ok"),
            Ok(failures) => {
                for failure in &failures {
                    eprintln!("error: {failure}");
                }
                problems += failures.len();
            }
            Err(error) => {
                eprintln!("error: {error}");
                problems += 1;
            }
        }
        if let Some(segment) = segment {
            problems += scale_out::print_segment_slices(&document, &name, segment)?;
        }
    }
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The action document equivalent to `loaddensity bench`.
fn bench_document(args: &BenchArgs) -> Result<serde_json::Value> {
    let mut headers = serde_json::Map::new();
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .with_context(|| format!("-H `{header}`: expected `Name: value`"))?;
        headers.insert(name.trim().into(), value.trim().into());
    }
    let mut task = json!({
        "method": args.method,
        "url": args.url,
        "headers": headers,
        "timeout": args.timeout.as_secs_f64(),
    });
    if let Some(body) = &args.body {
        task["data"] = body.clone().into();
    }
    let mut start = json!({
        "user_detail_dict": {"user": "fast_http_user"},
        "user_count": args.users,
        "spawn_rate": f64::from(args.users) * 100.0,
        "test_time": args.duration.as_secs_f64(),
        "wait_time": {"constant": 0},
        "tasks": [task],
        // An ad-hoc benchmark writes no per-request report: no request log.
        "max_records": 0,
    });
    if let Some(rate) = args.rate {
        start["arrival_rate"] = json!({"rate": rate, "max_users": args.users});
    }
    let mut actions = json!([["LD_start_test", start]]);
    if !args.sla.is_empty() {
        let rules = args
            .sla
            .iter()
            .map(|gate| loaddensity::sla::parse_flag(gate, &args.url).map(|rule| rule.to_json()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("--sla {e}"))?;
        if let Some(list) = actions.as_array_mut() {
            list.push(json!(["LD_assert_sla", {"rules": rules}]));
        }
    }
    Ok(actions)
}

fn serve_target(addr: &str, options: ExecutorOptions) -> Result<ExitCode> {
    let addr: std::net::SocketAddr = addr
        .parse()
        .with_context(|| format!("--addr `{addr}`: expected IP:PORT"))?;
    let executor = executor(options)?;
    let interrupt = executor.interrupt_token();
    executor.runtime().block_on(async {
        let server = loaddensity::target::TargetServer::start(addr)
            .await
            .with_context(|| format!("cannot bind {addr}"))?;
        eprintln!("target listening on http://{}", server.addr());
        interrupt.cancelled().await;
        server.stop().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
