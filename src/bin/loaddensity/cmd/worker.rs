//! `loaddensity worker SCRIPT --master-host H --master-port P`: runs the script as
//! `run` does, with every test joining a Locust master as a worker.

use std::process::ExitCode;

use anyhow::{Result, bail};
use loaddensity::ExecutorOptions;
use loaddensity::locust_worker::WorkerSettings;

use crate::flags::WorkerArgs;

/// Runs the script's tests as a worker of the master the flags name.
pub(crate) fn worker(args: &WorkerArgs, options: ExecutorOptions) -> Result<ExitCode> {
    if args.run.scale.segment.is_some() {
        bail!("--segment: a Locust worker takes its share of the users from the master");
    }
    let settings = WorkerSettings {
        master_host: args.master_host.clone(),
        master_port: args.master_port,
        user_class: args.user_class.clone(),
        heartbeat_interval: args.heartbeat_interval,
        lost_timeout: args.lost_timeout,
        startup_timeout: args.startup_timeout,
    };
    crate::cmd::run::run_as(&args.run, options, Some(settings))
}
