//! `loaddensity run` (a file, a directory or standard input, with sinks, scale-out
//! flags and reports), and LoadDensity's `run-dir` and `run-str`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use loaddensity::ExecutorOptions;
use loaddensity::locust_worker::WorkerSettings;

use crate::documents::{Loaded, load_documents};
use crate::execute::{execute_documents, executor, finish, validate_documents};
use crate::flags::RunArgs;
use crate::outputs::{document_files, refuse_inputs};
use crate::scale_out;
use crate::sinks::{otel, start_datadog_apm, start_influxdb, start_prometheus, start_statsd};

/// `run PATH`: starts the sinks of the flags, waits for `--start-at`, runs every
/// document, then writes the summary and the reports.
pub(crate) fn run(args: &RunArgs, options: ExecutorOptions) -> Result<ExitCode> {
    run_as(args, options, None)
}

/// [`run`], with every test joining a Locust master when `worker` is given
/// (`loaddensity worker`).
pub(crate) fn run_as(
    args: &RunArgs,
    options: ExecutorOptions,
    worker: Option<WorkerSettings>,
) -> Result<ExitCode> {
    scale_out::check_flags(&args.scale)?;
    let summary_json = args.summary_json.as_deref();
    let documents = load_documents(&args.path)?;
    refuse_inputs(
        &[
            ("--summary-json", summary_json),
            ("--html", args.reports.html.as_deref()),
            ("--junit", args.reports.junit.as_deref()),
            ("--csv", args.reports.csv.as_deref()),
        ],
        &document_files(&documents),
    )?;
    let status_line = options.progress;
    let mut executor = executor(options)?;
    // The segment and instance name first: the sinks label their output with them.
    scale_out::configure(&mut executor, &args.scale)?;
    executor.set_script(&args.path);
    executor.set_locust_worker(worker);
    start_prometheus(&executor, args.prometheus.as_ref())?;
    start_influxdb(&mut executor, &args.influxdb)?;
    start_statsd(&mut executor, args.statsd.as_ref())?;
    start_datadog_apm(&mut executor, args.datadog_apm.as_deref())?;
    otel::start(&mut executor, args.otlp.as_deref())?;
    otel::start_traces(&mut executor, args.otlp_traces.as_deref())?;
    let web = crate::web::start(&executor, args.web.as_ref(), args.web_auth.as_deref())?;
    let reports = Some(&args.reports);
    if let Some(at) = args.scale.start_at {
        let problems = validate_documents(&executor, &documents, None, false)?;
        if problems > 0 {
            eprintln!("error: --start-at: the script has {problems} problem(s); not starting");
            return finish(&executor, summary_json, reports, true);
        }
        if !scale_out::wait_until(&executor, at, status_line) {
            return finish(&executor, summary_json, reports, true);
        }
    }
    let read = execute_documents(&mut executor, documents);
    let code = finish(&executor, summary_json, reports, !read)?;
    if let Some(addr) = web {
        crate::web::serve_until_interrupted(&mut executor, addr);
    }
    Ok(code)
}

/// `run-dir`, `run-str` and the legacy flags: runs already loaded documents on one
/// executor, then writes the summary.
pub(crate) fn run_loaded(
    options: ExecutorOptions,
    documents: Vec<Loaded>,
    summary_json: Option<&Path>,
) -> Result<ExitCode> {
    refuse_inputs(
        &[("--summary-json", summary_json)],
        &document_files(&documents),
    )?;
    let mut executor = executor(options)?;
    let read = execute_documents(&mut executor, documents);
    finish(&executor, summary_json, None, !read)
}
