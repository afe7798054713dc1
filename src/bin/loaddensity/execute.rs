//! What every subcommand that runs scripts shares: an executor wired to Ctrl-C and
//! SIGTERM, the one loop that validates documents, the one loop that executes them,
//! and the end of a run (sinks flushed, summary and reports written, exit code).

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};

use anyhow::{Context, Result};
use loaddensity::output::write_atomically;
use loaddensity::sinks::influxdb::stop_influxdb_sink;
use loaddensity::sinks::statsd::stop_statsd_sink;
use loaddensity::{Executor, ExecutorOptions, Segment};

use crate::documents::Loaded;
use crate::flags::RunReportFlags;
use crate::sinks::otel;

/// SIGINT's number: Ctrl-C.
const SIGINT: u8 = 2;
/// SIGTERM's number: `kill`, a CI job's timeout, Kubernetes stopping a pod.
const SIGTERM: u8 = 15;

/// The signal that interrupted this process, 0 while none has. Signals are
/// process-wide, and so is this: [`finish`] turns it into the exit code.
static INTERRUPTED_BY: AtomicU8 = AtomicU8::new(0);

/// An executor whose interrupt token is wired to Ctrl-C and SIGTERM: the run stops
/// gracefully, its reports are written, and it exits 128 + the signal's number (130
/// after SIGINT, 143 after SIGTERM, as a shell reports). A second signal exits at once.
pub(crate) fn executor(options: ExecutorOptions) -> Result<Executor> {
    let executor = Executor::new(options).context("cannot start the runtime")?;
    let interrupt = executor.interrupt_token();
    // On a thread of its own, so that Ctrl-C is seen however busy the executor's
    // workers are (`--threads 1` gives it one), and while the binary writes reports.
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal handler's runtime")?;
    // Registered before the thread starts, so that no signal is missed in between.
    let mut watcher = {
        let _inside = signals.enter();
        SignalWatcher::new()
    };
    std::thread::Builder::new()
        .name("loaddensity-signals".into())
        .spawn(move || {
            signals.block_on(async move {
                for attempt in 0.. {
                    let signal = watcher.next().await;
                    if attempt == 0 {
                        eprintln!(
                            "\nstopping: finishing in-flight requests (Ctrl-C again to quit now)"
                        );
                        INTERRUPTED_BY.store(signal, Ordering::SeqCst);
                        interrupt.cancel();
                    } else {
                        std::process::exit(128 + i32::from(signal));
                    }
                }
            });
        })
        .context("cannot start the signal handler's thread")?;
    Ok(executor)
}

/// Ctrl-C and SIGTERM, listened for from its creation on.
struct SignalWatcher {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl SignalWatcher {
    /// Registers the handlers; call it inside the runtime that will wait on them.
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Waits for the next Ctrl-C or SIGTERM; returns the signal's number.
    async fn next(&mut self) -> u8 {
        #[cfg(unix)]
        {
            async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                () = recv(&mut self.interrupt) => SIGINT,
                () = recv(&mut self.terminate) => SIGTERM,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            SIGINT
        }
    }
}

/// Runs the documents in order on one executor. Returns false when a document could
/// not be read (printed; the documents after it do not run).
pub(crate) fn execute_documents(executor: &mut Executor, documents: Vec<Loaded>) -> bool {
    for (name, document) in documents {
        match document {
            Ok(document) => {
                executor.execute_document(&document, &name);
            }
            Err(error) => {
                eprintln!("error: {error}");
                return false;
            }
        }
    }
    true
}

/// Checks every document without sending anything and prints each problem (and
/// `NAME: ok` for a clean one when `print_ok`); with `segment`, also what that
/// execution segment runs. Returns the number of problems.
pub(crate) fn validate_documents(
    executor: &Executor,
    documents: &[Loaded],
    segment: Option<&Segment>,
    print_ok: bool,
) -> Result<usize> {
    let mut problems = 0;
    for (name, document) in documents {
        let document = match document {
            Ok(document) => document,
            Err(error) => {
                eprintln!("error: {error}");
                problems += 1;
                continue;
            }
        };
        match executor.validate_document(document, name) {
            Ok(failures) if failures.is_empty() => {
                if print_ok {
                    eprintln!("{name}: ok");
                }
            }
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
            problems += crate::scale_out::print_segment_slices(document, name, segment)?;
        }
    }
    Ok(problems)
}

/// Ends a run: stops the sinks that still hold data (InfluxDB, OpenTelemetry,
/// remote write: their final sends happen and are counted), writes `--summary-json`
/// and the reports (each whole or not at all), and picks the exit code: 128 + the
/// signal's number after an interruption, 1 when `failed`, else the executor's.
pub(crate) fn finish(
    executor: &Executor,
    summary_json: Option<&Path>,
    reports: Option<&RunReportFlags>,
    failed: bool,
) -> Result<ExitCode> {
    // Sends what a sink still holds (bounded by its timeout) before the summary
    // reports its counters.
    stop_influxdb_sink(executor.sinks());
    stop_statsd_sink(executor.sinks());
    // The last spans, so that the summary counts them.
    loaddensity::sinks::datadog_apm::stop_datadog_apm_exporter(executor.sinks());
    otel::stop(executor);
    // The final push, so that the backend holds every request.
    loaddensity::sinks::prometheus_remote_write::stop_prometheus_remote_write(executor.sinks());
    if let Some(path) = summary_json {
        let text = serde_json::to_string_pretty(&executor.summary())?;
        write_atomically(path, (text + "\n").as_bytes())?;
    }
    if let Some(reports) = reports {
        crate::reports::write_run_reports(executor, reports)?;
    }
    let signal = INTERRUPTED_BY.load(Ordering::SeqCst);
    Ok(if signal != 0 {
        let name = if signal == SIGTERM {
            "SIGTERM"
        } else {
            "SIGINT"
        };
        eprintln!("interrupted by {name}: exit code {}", 128 + signal);
        ExitCode::from(128 + signal)
    } else if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::from(executor.exit_code())
    })
}
