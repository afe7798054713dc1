//! The `loaddensity` command line: parses the flags (`flags`) and hands each
//! subcommand to its file in `cmd/`. What several subcommands share lives beside
//! this file: `execute` (the executor, the validate and execute loops, the end of a
//! run), `documents` (loading scripts and result documents), `outputs`, `reports`,
//! `sinks`, `scale_out` and `web`.

mod cmd;
mod documents;
mod execute;
mod flags;
mod outputs;
mod reports;
mod scale_out;
mod sinks;
mod web;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use loaddensity::ExecutorOptions;

use flags::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOADDENSITY_LOG")
                // The NATS and AMQP clients log every connection (and every failed
                // one, as an error): a line per user and iteration. Each failure is
                // counted, with its message, in the run's statistics instead.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("info,async_nats=off,lapin=off")
                }),
        )
        .init();
    match dispatch(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the subcommand (or the legacy flags when none is given).
fn dispatch(cli: Cli) -> Result<ExitCode> {
    let options = ExecutorOptions {
        threads: cli.threads,
        progress: !cli.quiet && (cli.progress || std::io::stderr().is_terminal()),
    };
    let Some(command) = cli.command else {
        return cmd::legacy::run(&cli.legacy, options);
    };
    match command {
        Command::Run(args) => cmd::run::run(&args, options),
        Command::RunDir { dir, summary_json } => cmd::run::run_loaded(
            options,
            documents::load_documents(&dir)?,
            summary_json.as_deref(),
        ),
        Command::RunStr { json, summary_json } => cmd::run::run_loaded(
            options,
            vec![documents::parse_run_str(&json)],
            summary_json.as_deref(),
        ),
        Command::Validate { path, segment } => {
            cmd::validate::validate(&path, segment.as_ref(), options)
        }
        Command::Lint(args) => cmd::lint::lint(&args),
        Command::Fmt(args) => cmd::fmt::fmt(&args),
        Command::Schema { output } => cmd::schema::schema(output.as_deref()),
        Command::Bench(args) => cmd::bench::bench(&args, options),
        Command::Report(args) => cmd::report::report(&args),
        Command::Merge(args) => cmd::merge::merge(&args),
        Command::Compare(args) => cmd::compare::compare_runs(&args),
        Command::Target { addr } => cmd::target::serve_target(&addr, options),
        Command::Init { path } => cmd::init::init_project(&path),
        Command::ImportHar(args) => cmd::import_har::import_har(&args),
        Command::Serve(args) => cmd::serve::serve(&args, options),
        Command::Worker(args) => cmd::worker::worker(&args, options),
    }
}
