//! The action executor: runs LoadDensity action documents against an open registry
//! of `LD_*` commands (library users add their own with [`Executor::add_command`]).

mod args;
mod commands;
mod datadog_commands;
mod document;
mod document_commands;
mod empty_run;
mod engine_options;
mod error;
pub mod format;
mod formats;
mod har_commands;
mod history_commands;
mod influxdb_commands;
pub mod lint;
mod live_commands;
mod otel_commands;
mod otel_tracing_commands;
mod remote_write_commands;
mod report_commands;
mod resolver_commands;
mod schema;
mod segment_plan;
pub mod shape;
mod sink_commands;
mod sla_commands;
mod socket_commands;
mod statsd_commands;
mod task_schema;
mod worker_run;

pub use args::Args;
pub use document::{Action, MAX_DOCUMENT_BYTES, actions, parse_json, read_json, read_json_file};
pub use error::{ActionError, ActionFailure, DocumentError};
pub use formats::{
    DOCUMENT_EXTENSIONS, DocumentFormat, WriteError, is_document_file, parse_document,
    read_document, read_document_file, render_document, write_document_file,
};
pub use lint::{LintFinding, Severity};
pub use schema::SCHEMA_ID;
pub use segment_plan::{SegmentSlice, segment_slices};
pub use shape::{ArgumentSpec, Shape};

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::context::RunContext;
use crate::listener::ListenerRegistry;
use crate::locust_worker::WorkerSettings;
use crate::scenario::ParameterResolver;
use crate::segment::Segment;
use crate::sinks::Sinks;
use crate::stats::{LoadDescription, RunInfo, SlaGateResult, StatsRecorder, Summary};
use crate::target::TargetServer;

/// How deep `LD_execute_action` / `LD_execute_files` may nest.
pub const MAX_DEPTH: usize = 16;

/// A command the executor can run.
pub trait Command: Send + Sync {
    /// Checks the arguments without side effects, for `loaddensity validate`.
    /// `scratch` is the resolver of the document being validated: registering commands
    /// fill it, so that later actions are checked against those variables and sources.
    fn validate(&self, args: &Args, scratch: &ParameterResolver) -> Result<(), ActionError> {
        let _ = (args, scratch);
        Ok(())
    }

    /// Runs the command and returns its result.
    fn run(&self, executor: &mut Executor, args: Args) -> Result<Value, ActionError>;

    /// What its arguments look like, for `LD_export_schema` and the linter. Typed
    /// commands trace it from their argument struct; the default is "any arguments".
    fn arguments(&self) -> ArgumentSpec {
        ArgumentSpec::any()
    }
}

impl<F> Command for F
where
    F: Fn(&mut Executor, Args) -> Result<Value, ActionError> + Send + Sync,
{
    fn run(&self, executor: &mut Executor, args: Args) -> Result<Value, ActionError> {
        self(executor, args)
    }
}

/// Settings of an [`Executor`].
#[derive(Debug, Clone, Default)]
pub struct ExecutorOptions {
    /// Worker threads of the runtime; `None` uses every core this process may run on.
    pub threads: Option<usize>,
    /// Print a status line every 2 s while a test runs.
    pub progress: bool,
}

/// The result of one action.
#[derive(Debug)]
pub struct ActionRecord {
    /// The command, or `?` when unreadable.
    pub command: String,
    /// What it returned, or why it failed.
    pub result: Result<Value, ActionFailure>,
}

/// A sink's counters for the summary's `sinks` section, read from the run's sinks.
pub type SinkReport = Box<dyn Fn(&Sinks) -> Value + Send + Sync>;

/// Runs action documents. Holds the runtime, the run's [`RunContext`] (request
/// event, statistics, resolver, request log, sinks) and the state that actions share
/// (the built-in target server).
pub struct Executor {
    commands: BTreeMap<String, Arc<dyn Command>>,
    runtime: tokio::runtime::Runtime,
    context: RunContext,
    interrupt: CancellationToken,
    options: ExecutorOptions,
    target: Option<TargetServer>,
    sink_reports: BTreeMap<String, SinkReport>,
    output: Box<dyn Write + Send>,
    failures: usize,
    sla_failures: usize,
    depth: usize,
    segment: Option<Segment>,
    /// `loaddensity worker`: every test joins a Locust master, with these settings
    /// over the script's.
    locust_worker: Option<WorkerSettings>,
    run: RunInfo,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("commands", &self.commands.keys().collect::<Vec<_>>())
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

impl Executor {
    /// An executor with the built-in commands and a run context of its own (a new
    /// request event with statistics attached to it, no sink).
    pub fn new(options: ExecutorOptions) -> std::io::Result<Self> {
        // A multi-thread runtime even for one worker: the current-thread scheduler saved
        // 3-4% CPU a nats publish but cost AMQP a quarter of its rate (`bench/protocols.sh`,
        // 2026-12-06), and it would run the users only while the action thread waits.
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if let Some(threads) = options.threads {
            builder.worker_threads(threads.max(1));
        }
        let runtime = builder.enable_all().build()?;
        let mut executor = Self {
            commands: BTreeMap::new(),
            runtime,
            context: RunContext::new(),
            interrupt: CancellationToken::new(),
            options,
            target: None,
            sink_reports: BTreeMap::new(),
            output: Box::new(std::io::stdout()),
            failures: 0,
            sla_failures: 0,
            depth: 0,
            segment: None,
            locust_worker: None,
            run: RunInfo::default(),
        };
        register_builtins(&mut executor);
        Ok(executor)
    }

    /// Adds or replaces a command (LoadDensity's `add_command_to_executor`).
    pub fn add_command(&mut self, name: impl Into<String>, command: impl Command + 'static) {
        self.commands.insert(name.into(), Arc::new(command));
    }

    /// Runs every later test as execution segment `segment` (`--segment I/N`): its
    /// slice of the users, rates and CSV rows. `None` runs the whole load.
    pub fn set_segment(&mut self, segment: Option<Segment>) {
        self.segment = segment.filter(|s| !s.is_whole());
    }

    /// Runs every later test as a worker of a Locust master (`loaddensity worker`),
    /// whatever the script's `runner_mode`; `settings` win over the script's
    /// `master_host`, `master_port` and worker timings. `None`: as the script says.
    pub fn set_locust_worker(&mut self, settings: Option<WorkerSettings>) {
        self.locust_worker = settings;
    }

    /// The execution segment tests run as, if any.
    pub fn segment(&self) -> Option<Segment> {
        self.segment
    }

    /// A registered command.
    pub fn command(&self, name: &str) -> Option<&Arc<dyn Command>> {
        self.commands.get(name)
    }

    /// The registered command names.
    pub fn command_names(&self) -> impl Iterator<Item = &str> {
        self.commands.keys().map(String::as_str)
    }

    /// Where human-readable output (the statistics table) goes; stdout by default.
    pub fn set_output(&mut self, output: Box<dyn Write + Send>) {
        self.output = output;
    }

    /// Cancelling this token stops a running test gracefully and skips later long
    /// actions (tests, sleeps); reports are still written. Wire it to Ctrl-C.
    pub fn interrupt_token(&self) -> CancellationToken {
        self.interrupt.clone()
    }

    /// The runtime the executor runs tests on.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// The state this executor's run owns: request event, statistics, resolver,
    /// request log and sinks.
    pub fn context(&self) -> &RunContext {
        &self.context
    }

    /// The request event this executor's tests fire.
    pub fn listeners(&self) -> &Arc<ListenerRegistry> {
        self.context.listeners()
    }

    /// The statistics of every request since start or `LD_clear_records`.
    pub fn stats(&self) -> &Arc<StatsRecorder> {
        self.context.stats()
    }

    /// The metric sinks of this executor's run.
    pub fn sinks(&self) -> &Sinks {
        self.context.sinks()
    }

    /// Registers a sink's counters for the summary's `sinks` section.
    pub fn set_sink_report(&mut self, name: &str, report: Option<SinkReport>) {
        match report {
            Some(report) => self.sink_reports.insert(name.to_string(), report),
            None => self.sink_reports.remove(name),
        };
    }

    /// The summary of every request recorded so far: the result document, with its
    /// `run` block.
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::from_snapshot(&self.stats().snapshot());
        for (name, report) in &self.sink_reports {
            summary.sinks.insert(name.clone(), report(self.sinks()));
        }
        summary.run = self.run.clone();
        summary.run.started_at = self.run.load.first().map(|l| l.started_at.clone());
        summary.run.ended_at = self.run.load.last().map(|l| l.ended_at.clone());
        // One of several instances: which segment, under which name.
        if let Some(segment) = self.segment {
            summary.run.segment = Some(Value::String(segment.to_string()));
        }
        if self.segment.is_some() || crate::instance::instance_name().is_some() {
            summary.run.instances = Some(serde_json::json!([{
                "instance": crate::instance::instance_name(),
                "segment": self.segment.map(|s| s.to_string()),
            }]));
        }
        self.add_request_log_to(&mut summary);
        summary
    }

    /// Names the script in the result document (`run.script`), as given by the user.
    pub fn set_script(&mut self, script: &str) {
        self.run.script = Some(script.to_string());
        self.publish_run_info();
    }

    /// Adds a test's load description to the result document (`run.load`).
    pub fn record_test(&mut self, load: LoadDescription) {
        self.run.load.push(load);
        self.publish_run_info();
    }

    /// Adds SLA gate results to the result document (`run.sla`).
    pub fn record_sla(&mut self, results: impl IntoIterator<Item = SlaGateResult>) {
        self.run.sla.get_or_insert_with(Vec::new).extend(results);
        self.publish_run_info();
    }

    /// Tells the live dashboard and web UI the run block as it is now.
    fn publish_run_info(&self) {
        self.context.live().run().set_info(self.run.clone());
    }

    /// The run block as recorded so far (script, tests, SLA results).
    pub fn run_info(&self) -> &RunInfo {
        &self.run
    }

    /// Forgets every recorded request, test and SLA result (`LD_clear_records`).
    pub fn clear_records(&mut self) {
        self.stats().clear();
        self.clear_request_log();
        self.run.load.clear();
        self.run.sla = None;
        self.publish_run_info();
    }

    /// Number of actions that failed so far.
    pub fn failures(&self) -> usize {
        self.failures
    }

    /// Of those, the failed SLA gates (`LD_assert_sla`).
    pub fn sla_failures(&self) -> usize {
        self.sla_failures
    }

    /// The process exit code: 0 when every action passed, 99 when the only failures
    /// were SLA gates (k6's convention), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match (self.failures, self.sla_failures) {
            (0, _) => 0,
            (all, sla) if all == sla => 99,
            _ => 1,
        }
    }

    /// Writes human-readable output; errors writing it are ignored.
    pub fn write_output(&mut self, text: &str) {
        let _ = self.output.write_all(text.as_bytes());
        let _ = self.output.flush();
    }

    /// Runs every action of a document in order. A failing action is reported (on
    /// stderr) and the next ones still run.
    pub fn execute_document(&mut self, document: &Value, source_name: &str) -> Vec<ActionRecord> {
        let actions = match actions(document, source_name) {
            Ok(actions) => actions,
            Err(error) => {
                self.report_document_error(&error);
                return Vec::new();
            }
        };
        let mut records = Vec::with_capacity(actions.len());
        for (index, action) in actions.into_iter().enumerate() {
            let (command, result) = match action {
                Ok(action) => {
                    let result = self.run_action(&action);
                    (action.command, result)
                }
                Err(error) => ("?".to_string(), Err(error)),
            };
            let result = result.map_err(|error| ActionFailure {
                source_name: source_name.to_string(),
                index,
                command: command.clone(),
                error,
            });
            if let Err(failure) = &result {
                self.failures += 1;
                if matches!(failure.error, ActionError::SlaFailed(_)) {
                    self.sla_failures += 1;
                }
                eprintln_failure(failure);
            }
            records.push(ActionRecord { command, result });
        }
        records
    }

    /// Reads a file (JSON, YAML or TOML, by its extension) and runs it (see
    /// [`Executor::execute_document`]).
    pub fn execute_file(&mut self, path: &Path) -> Vec<ActionRecord> {
        match read_document_file(path) {
            Ok(document) => self.execute_document(&document, &path.display().to_string()),
            Err(error) => {
                self.report_document_error(&error);
                Vec::new()
            }
        }
    }

    /// Checks a document without running anything: the document's shape, each
    /// command's name and its arguments.
    pub fn validate_document(
        &self,
        document: &Value,
        source_name: &str,
    ) -> Result<Vec<ActionFailure>, DocumentError> {
        let mut failures = Vec::new();
        let scratch = ParameterResolver::default();
        for (index, action) in actions(document, source_name)?.into_iter().enumerate() {
            let (command, result) = match action {
                Ok(action) => {
                    let result = match self.commands.get(&action.command) {
                        Some(command) => command.validate(&action.args, &scratch),
                        None => Err(ActionError::UnknownCommand(action.command.clone())),
                    };
                    (action.command, result)
                }
                Err(error) => ("?".to_string(), Err(error)),
            };
            if let Err(error) = result {
                failures.push(ActionFailure {
                    source_name: source_name.to_string(),
                    index,
                    command,
                    error,
                });
            }
        }
        Ok(failures)
    }

    fn report_document_error(&mut self, error: &DocumentError) {
        self.failures += 1;
        eprintln_text(&format!("error: {error}"));
    }

    fn run_action(&mut self, action: &Action) -> Result<Value, ActionError> {
        let command = self
            .commands
            .get(&action.command)
            .cloned()
            .ok_or_else(|| ActionError::UnknownCommand(action.command.clone()))?;
        command.run(self, action.args.clone())
    }

    /// Runs nested actions one level deeper (`LD_execute_action`, `LD_execute_files`).
    pub(crate) fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Executor) -> T,
    ) -> Result<T, ActionError> {
        if self.depth >= MAX_DEPTH {
            return Err(ActionError::TooDeep(MAX_DEPTH));
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        Ok(result)
    }
}

/// Registers the built-in `LD_*` commands, module by module.
fn register_builtins(executor: &mut Executor) {
    commands::register_commands(executor);
    sink_commands::register_sink_commands(executor);
    influxdb_commands::register_influxdb_commands(executor);
    otel_commands::register_otel_commands(executor);
    sla_commands::register_sla_commands(executor);
    resolver_commands::register_resolver_commands(executor);
    har_commands::register_har_commands(executor);
    socket_commands::register_socket_commands(executor);
    remote_write_commands::register_remote_write_commands(executor);
    report_commands::register_report_commands(executor);
    history_commands::register_history_commands(executor);
    statsd_commands::register_statsd_commands(executor);
    datadog_commands::register_datadog_commands(executor);
    live_commands::register_live_commands(executor);
    document_commands::register_document_commands(executor);
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.context.detach_request_log();
        if let Some(target) = self.target.take() {
            self.runtime.block_on(target.stop());
        }
    }
}

fn eprintln_failure(failure: &ActionFailure) {
    eprintln_text(&format!("error: {failure}"));
}

fn eprintln_text(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{text}");
}
