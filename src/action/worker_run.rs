//! `LD_start_test` as a Locust worker (`runner_mode: worker`, `loaddensity worker`):
//! the test's scenario runs with the users a Locust master asks for
//! ([`crate::locust_worker`]); the statistics, sinks, request log and result document
//! are this process's, as in a local run.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::commands::{StartTestArgs, prepare_test};
use super::{ActionError, Executor};
use crate::engine::{Progress, RunObservers};
use crate::locust_worker::{WorkerOptions, run_worker};
use crate::protocol::Protocol;
use crate::stats::render_table;

/// Runs the test of `args` as a worker of the master in `options`, until the master
/// says quit (or Ctrl-C, or the master is lost: then an error, after the summary of
/// what ran has been recorded).
pub(super) fn run_as_worker<P: Protocol>(
    executor: &mut Executor,
    args: &StartTestArgs,
    options: &WorkerOptions,
) -> Result<Value, ActionError> {
    if let Some(segment) = executor.segment {
        return Err(ActionError::argument(
            "runner_mode",
            format!("a Locust worker takes its users from the master, not from segment {segment}"),
        ));
    }
    let db = args.read_db_sources()?;
    let plan = args.plan_with::<P>(None, executor.context().resolver().snapshot(), &db)?;
    let spawn_rate = plan.spawn_rate;
    let interrupt = prepare_test(executor, args, db)?;
    let observers = RunObservers {
        progress: executor
            .options
            .progress
            .then(|| Progress::new(executor.stats().clone())),
        timeline: Some(executor.stats().clone()),
        // The master sets the users: the web UI's controls do not apply.
        control: None,
    };
    let listeners = executor.listeners().clone();
    let (before, _) = executor.stats().counts();
    let started_at = SystemTime::now();
    tracing::info!(
        "joining the Locust master at {} as user class `{}`",
        options.addr(),
        options.user_class
    );
    let (report, outcome) = executor
        .runtime()
        .block_on(run_worker(plan, listeners, interrupt, observers, options));
    let max_users = outcome.as_ref().map_or(0, |o| o.max_users);
    if let Some(report) = &report {
        executor.record_test(args.load_description(started_at, report, (max_users, spawn_rate)));
        executor.stats().add_duration(report.duration);
        let table = render_table(&executor.stats().snapshot());
        executor.write_output(&table);
    }
    let outcome = outcome?;
    let (after, failures) = executor.stats().counts();
    Ok(json!({
        "runner_mode": "worker",
        "master": options.addr(),
        "user_class": options.user_class,
        "node_id": outcome.node_id,
        "worker_index": outcome.worker_index,
        "end": outcome.end,
        "max_users": outcome.max_users,
        "reports_sent": outcome.reports_sent,
        "bad_frames": outcome.bad_frames,
        "duration_s": report.map(|r| r.duration.as_secs_f64()),
        "requests": after - before,
        "failures_total": failures,
    }))
}
