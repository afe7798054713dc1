//! The built-in `LD_*` commands of the engine: tests, nested actions, sleeping,
//! summaries, records and the built-in target server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::{Value, json};

use super::args::{CheckArgs, NoArgs, typed};
use super::empty_run::{TestCounts, empty_run_warning};
use super::engine_options::{check_http2, check_max_in_flight, protocol_user_type};
use super::live_commands::WebUiDict;
use super::resolver_commands::{CsvSource, DbSource};
use super::{ActionError, Args, Command, Executor, read_document_file};
use crate::engine::{
    ArrivalRate, LoadShape, Progress, RunControl, RunObservers, RunReport, SHAPES, Scenario,
    TestPlan, WaitTime, run_test,
};
use crate::locust_worker::{WorkerOptions, WorkerSettings};
use crate::protocol::{
    ConnectionDefaults, PLANNED_USER_TYPES, Protocol, USER_TYPES, UserTypeVisitor, visit_user_type,
};
use crate::scenario::{CsvData, ParameterResolver, ResolverSnapshot, value_text};
use crate::segment::Segment;
use crate::stats::document::rfc3339_millis;
use crate::stats::{LoadDescription, render_table};
use crate::target::TargetServer;
use crate::task::COMMON_FIELDS;

/// Registers the commands of this module.
pub(super) fn register_commands(executor: &mut Executor) {
    executor.add_command("LD_start_test", StartTest);
    executor.add_command(
        "LD_execute_action",
        typed(&["action_list"], |ex, a: ExecuteAction| {
            ex.nested(|ex| {
                let records = ex.execute_document(&a.action_list, "<LD_execute_action>");
                records_value(&records)
            })
        }),
    );
    executor.add_command(
        "LD_execute_files",
        typed(&["execute_files_list"], |ex, a: ExecuteFiles| {
            ex.nested(|ex| {
                let results: Vec<Value> = a
                    .execute_files_list
                    .iter()
                    .map(|path| records_value(&ex.execute_file(path)))
                    .collect();
                Value::Array(results)
            })
        }),
    );
    executor.add_command("LD_sleep", typed(&["seconds"], sleep));
    executor.add_command(
        "LD_summary",
        typed(&[], |ex, _: NoArgs| {
            serde_json::to_value(ex.summary()).map_err(|e| ActionError::Failed(e.to_string()))
        }),
    );
    executor.add_command(
        "LD_generate_summary_report",
        typed(&["report_name"], generate_summary_report),
    );
    executor.add_command(
        "LD_clear_records",
        typed(&[], |ex, _: NoArgs| {
            ex.clear_records();
            Ok(json!({"status": "cleared"}))
        }),
    );
    executor.add_command(
        "LD_start_target_server",
        typed(&["addr"], start_target_server),
    );
    executor.add_command(
        "LD_stop_target_server",
        typed(&[], |ex, _: NoArgs| {
            let stopped = match ex.target.take() {
                Some(target) => {
                    let addr = target.addr();
                    ex.runtime.block_on(target.stop());
                    Some(addr.to_string())
                }
                None => None,
            };
            Ok(json!({"stopped": stopped}))
        }),
    );
}

fn records_value(records: &[super::ActionRecord]) -> Value {
    Value::Array(
        records
            .iter()
            .map(|r| match &r.result {
                Ok(value) => json!({"command": r.command, "result": value}),
                Err(failure) => json!({"command": r.command, "error": failure.error.to_string()}),
            })
            .collect(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecuteAction {
    action_list: Value,
}
impl CheckArgs for ExecuteAction {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecuteFiles {
    execute_files_list: Vec<PathBuf>,
}
impl CheckArgs for ExecuteFiles {
    fn check(&self) -> Result<(), ActionError> {
        for (i, path) in self.execute_files_list.iter().enumerate() {
            read_document_file(path).map_err(|e| {
                ActionError::argument(format!("execute_files_list[{i}]"), e.to_string())
            })?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Sleep {
    seconds: f64,
}
impl CheckArgs for Sleep {
    fn check(&self) -> Result<(), ActionError> {
        if self.seconds >= 0.0 && self.seconds.is_finite() && self.seconds < 1e9 {
            Ok(())
        } else {
            Err(ActionError::argument(
                "seconds",
                format!("expected a number of seconds >= 0, got {}", self.seconds),
            ))
        }
    }
}

fn sleep(executor: &mut Executor, args: Sleep) -> Result<Value, ActionError> {
    let interrupt = executor.interrupt_token();
    if interrupt.is_cancelled() {
        return Err(ActionError::Interrupted);
    }
    let slept = executor.runtime().block_on(async {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(args.seconds)) => true,
            _ = interrupt.cancelled() => false,
        }
    });
    if slept {
        Ok(json!({"slept_s": args.seconds}))
    } else {
        Err(ActionError::Interrupted)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SummaryReport {
    #[serde(default = "default_report_name")]
    report_name: String,
}
impl CheckArgs for SummaryReport {}

fn default_report_name() -> String {
    "loaddensity-summary".into()
}

fn generate_summary_report(
    executor: &mut Executor,
    args: SummaryReport,
) -> Result<Value, ActionError> {
    let path = format!("{}.json", args.report_name);
    let text = serde_json::to_string_pretty(&executor.summary())
        .map_err(|e| ActionError::Failed(e.to_string()))?;
    crate::output::write_atomically(std::path::Path::new(&path), (text + "\n").as_bytes())
        .map_err(|e| ActionError::Failed(e.to_string()))?;
    Ok(Value::String(path))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartTarget {
    #[serde(default = "default_target_addr")]
    addr: String,
}

fn default_target_addr() -> String {
    "127.0.0.1:8080".into()
}

impl StartTarget {
    fn socket_addr(&self) -> Result<SocketAddr, ActionError> {
        self.addr.parse().map_err(|_| {
            ActionError::argument("addr", format!("`{}` is not an IP:PORT address", self.addr))
        })
    }
}
impl CheckArgs for StartTarget {
    fn check(&self) -> Result<(), ActionError> {
        self.socket_addr().map(|_| ())
    }
}

fn start_target_server(executor: &mut Executor, args: StartTarget) -> Result<Value, ActionError> {
    if let Some(running) = &executor.target {
        return Ok(json!({"addr": running.addr().to_string(), "already_running": true}));
    }
    let addr = args.socket_addr()?;
    let server = executor
        .runtime()
        .block_on(TargetServer::start(addr))
        .map_err(|e| ActionError::Failed(format!("cannot bind {addr}: {e}")))?;
    let bound = server.addr().to_string();
    executor.target = Some(server);
    Ok(json!({"addr": bound}))
}

/// `LD_start_test`, with LoadDensity's argument names.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StartTestArgs {
    #[serde(default)]
    user_detail_dict: Option<UserDetail>,
    #[serde(default = "default_user_count")]
    user_count: u32,
    #[serde(default = "default_spawn_rate")]
    spawn_rate: f64,
    #[serde(default = "default_test_time")]
    test_time: Option<f64>,
    tasks: Value,
    #[serde(default)]
    wait_time: Option<Value>,
    #[serde(default)]
    host: Option<String>,
    /// LoadDensity's `connection` dict: default fields of every task (a task's own
    /// keys win); its `url` stands for `host` (`redis_user`, `amqp_user`, ...).
    #[serde(default)]
    connection: Option<serde_json::Map<String, Value>>,
    /// `sql_user`: the database, a SQLAlchemy URL.
    #[serde(default)]
    connection_string: Option<String>,
    /// Offer HTTP/2 (LoadDensity's `http2=True`, its asyncio engine's option):
    /// `async_http_user` and `http_user` offer it by ALPN; `fast_http_user` runs as
    /// `http_user` to honour it.
    #[serde(default)]
    http2: Option<bool>,
    /// LoadDensity's asyncio engine's cap on requests in flight across all users
    /// (default: the peak users). Each user here has one request in flight at a
    /// time, so a cap at or above the peak users holds; a lower one is refused.
    #[serde(default)]
    max_in_flight: Option<Value>,
    #[serde(default)]
    web_ui_dict: Option<WebUiDict>,
    #[serde(default)]
    runner_mode: Option<String>,
    #[serde(default)]
    master_bind_host: Option<Value>,
    #[serde(default)]
    master_bind_port: Option<Value>,
    /// `runner_mode: worker`: the Locust master's host and port, and the worker's timings.
    #[serde(default)]
    master_host: Option<String>,
    #[serde(default)]
    master_port: Option<u16>,
    #[serde(default)]
    worker_heartbeat_interval: Option<f64>,
    #[serde(default)]
    worker_lost_timeout: Option<f64>,
    #[serde(default)]
    worker_startup_timeout: Option<f64>,
    #[serde(default)]
    expected_workers: Option<Value>,
    #[serde(default)]
    variables: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    csv_sources: Option<Vec<CsvSource>>,
    /// Database placeholder sources (`${db.NAME.COLUMN}`), read once at start.
    #[serde(default)]
    db_sources: Option<Vec<DbSource>>,
    #[serde(default)]
    load_shape: Option<Value>,
    #[serde(default)]
    shape_config: Option<Value>,
    #[serde(default)]
    arrival_rate: Option<Value>,
    /// Records the request log keeps (`0`: off; `null`: no cap).
    #[serde(default = "default_max_records")]
    max_records: Option<u64>,
    /// LoadDensity's scheduler choice: `locust` (its default) or `asyncio`. Both run
    /// on this engine, which is asynchronous already.
    #[serde(default)]
    engine: Option<Value>,
}

/// The `engine` values LoadDensity accepts.
pub(super) const ENGINES: &[&str] = &["locust", "asyncio"];

pub(super) const START_TEST_PARAMS: &[&str] = &[
    "user_detail_dict",
    "user_count",
    "spawn_rate",
    "test_time",
    "web_ui_dict",
    "runner_mode",
    "master_bind_host",
    "master_bind_port",
    "master_host",
    "master_port",
    "expected_workers",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserDetail {
    #[serde(default = "default_user")]
    user: String,
}

fn default_user() -> String {
    "fast_http_user".into()
}
fn default_user_count() -> u32 {
    50
}
fn default_spawn_rate() -> f64 {
    10.0
}
#[allow(clippy::unnecessary_wraps)]
fn default_max_records() -> Option<u64> {
    Some(super::report_commands::DEFAULT_MAX_RECORDS)
}
#[allow(clippy::unnecessary_wraps)]
fn default_test_time() -> Option<f64> {
    Some(60.0)
}

/// What `runner_mode: master` and the master's options are answered with.
const MASTER_HINT: &str = "loaddensity does not run a Locust master: run one with `locust --master --headless --expect-workers N -f locustfile.py` and join it with `loaddensity worker SCRIPT --master-host HOST` (runner_mode worker), or split the load with `--segment I/N` and merge the results";

impl StartTestArgs {
    /// The user type, `user_detail_dict.user` (also the Locust user class name a
    /// worker runs unless told another).
    fn user_type(&self) -> &str {
        self.user_detail_dict
            .as_ref()
            .map_or("fast_http_user", |u| u.user.as_str())
    }

    /// True for `runner_mode: worker`; an error for `master` and unknown modes.
    fn is_worker(&self) -> Result<bool, ActionError> {
        match self.runner_mode.as_deref() {
            None | Some("local") => Ok(false),
            Some("worker") => Ok(true),
            Some("master") => Err(ActionError::argument("runner_mode", MASTER_HINT)),
            Some(other) => Err(ActionError::argument(
                "runner_mode",
                format!("unknown mode `{other}`; expected local or worker"),
            )),
        }
    }

    /// Load settings a worker cannot honour: its master sets the users.
    fn refuse_with_master(&self) -> Result<(), ActionError> {
        for (field, given) in [
            (
                "load_shape",
                self.load_shape.as_ref().is_some_and(|v| !v.is_null()),
            ),
            (
                "arrival_rate",
                self.arrival_rate.as_ref().is_some_and(|v| !v.is_null()),
            ),
        ] {
            if given {
                return Err(ActionError::argument(
                    field,
                    "a Locust worker runs the users its master asks for; give the shape to the master (a LoadTestShape in its locustfile)",
                ));
            }
        }
        Ok(())
    }

    /// The worker options of this test when it runs as a Locust worker: with
    /// `runner_mode: worker`, or when `cli` (from `loaddensity worker`) is given, whose
    /// settings win over the script's. `None` for a local test.
    pub(super) fn worker_options(
        &self,
        cli: Option<&WorkerSettings>,
    ) -> Result<Option<WorkerOptions>, ActionError> {
        let seconds = |field: &'static str, value: Option<f64>| match value {
            None => Ok(None),
            Some(s) if s > 0.0 && s.is_finite() && s < 1e9 => Ok(Some(Duration::from_secs_f64(s))),
            Some(s) => Err(ActionError::argument(
                field,
                format!("expected a positive number of seconds, got {s}"),
            )),
        };
        let script = WorkerSettings {
            master_host: self.master_host.clone(),
            master_port: self.master_port,
            user_class: None,
            heartbeat_interval: seconds(
                "worker_heartbeat_interval",
                self.worker_heartbeat_interval,
            )?,
            lost_timeout: seconds("worker_lost_timeout", self.worker_lost_timeout)?,
            startup_timeout: seconds("worker_startup_timeout", self.worker_startup_timeout)?,
        };
        let Some(settings) = (match (self.is_worker()?, cli) {
            (_, Some(cli)) => Some(cli.over(&script)),
            (true, None) => Some(script.clone()),
            (false, None) => None,
        }) else {
            if script != WorkerSettings::default() {
                return Err(ActionError::argument(
                    "runner_mode",
                    "master_host, master_port and the worker_* timings are for runner_mode worker (or `loaddensity worker`)",
                ));
            }
            return Ok(None);
        };
        self.refuse_with_master()?;
        let options = settings.options(self.user_type());
        options
            .check()
            .map_err(|(field, message)| ActionError::argument(field, message))?;
        Ok(Some(options))
    }

    /// The user type whose protocol runs the tasks (see [`protocol_user_type`]).
    fn protocol_user_type(&self) -> &str {
        protocol_user_type(self.user_type(), self.http2)
    }

    fn check_http2(&self) -> Result<(), ActionError> {
        check_http2(self.user_type(), self.http2)
    }

    /// Runs `visitor` with the protocol of `user_detail_dict.user`.
    fn with_user_type<V: UserTypeVisitor>(&self, visitor: V) -> Result<V::Output, ActionError> {
        self.check_http2()?;
        let user = self.protocol_user_type();
        visit_user_type(user, visitor).ok_or_else(|| {
            if PLANNED_USER_TYPES.contains(&user) {
                ActionError::not_supported(
                    format!("user type `{user}` (user_detail_dict.user)"),
                    format!("use one of: {}", USER_TYPES.join(", ")),
                )
            } else {
                ActionError::argument(
                    "user_detail_dict.user",
                    format!(
                        "unknown user type `{user}`; expected one of: {}",
                        USER_TYPES.join(", ")
                    ),
                )
            }
        })
    }

    /// The plan these arguments describe; with a segment, that instance's slice of it
    /// (users, rates and the rows of CSV sources that are not shared). `registered`
    /// is the run's resolver as it is now; the test's own variables and sources are
    /// added to it.
    pub(super) fn plan<P: Protocol>(
        &self,
        segment: Option<&Segment>,
        registered: ResolverSnapshot,
    ) -> Result<TestPlan<P>, ActionError> {
        let db = self.read_db_sources()?;
        self.plan_with(segment, registered, &db)
    }

    /// Runs the queries of `db_sources`, once each.
    pub(super) fn read_db_sources(&self) -> Result<Vec<(String, Arc<CsvData>)>, ActionError> {
        self.db_sources
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, source)| {
                Ok((
                    source.name.clone(),
                    source.read(&format!("db_sources[{i}]."))?,
                ))
            })
            .collect()
    }

    /// [`StartTestArgs::plan`] with the rows of `db_sources` already read.
    pub(super) fn plan_with<P: Protocol>(
        &self,
        segment: Option<&Segment>,
        registered: ResolverSnapshot,
        db: &[(String, Arc<CsvData>)],
    ) -> Result<TestPlan<P>, ActionError> {
        if let Some(web_ui) = &self.web_ui_dict {
            web_ui.options()?;
        }
        match &self.engine {
            None | Some(Value::Null) => {}
            Some(Value::String(engine)) if ENGINES.contains(&engine.as_str()) => {}
            Some(other) => {
                return Err(ActionError::argument(
                    "engine",
                    format!(
                        "unsupported engine {other}; expected one of: {} (both run on this engine)",
                        ENGINES.join(", ")
                    ),
                ));
            }
        }
        let worker = self.is_worker()?;
        for (field, value) in [
            ("master_bind_host", &self.master_bind_host),
            ("master_bind_port", &self.master_bind_port),
            ("expected_workers", &self.expected_workers),
        ] {
            if value.is_some() {
                return Err(ActionError::argument(field, MASTER_HINT));
            }
        }
        if worker {
            // The master decides the users and the test's end.
            self.refuse_with_master()?;
        }
        if self.user_count == 0 {
            return Err(ActionError::argument(
                "user_count",
                "expected at least 1 user",
            ));
        }
        if !(self.spawn_rate > 0.0 && self.spawn_rate.is_finite()) {
            return Err(ActionError::argument(
                "spawn_rate",
                format!(
                    "expected a positive number of users per second, got {}",
                    self.spawn_rate
                ),
            ));
        }
        let test_time = match self.test_time {
            None => None,
            Some(t) if t > 0.0 && t.is_finite() && t < 1e9 => Some(Duration::from_secs_f64(t)),
            Some(t) => {
                return Err(ActionError::argument(
                    "test_time",
                    format!("expected a positive number of seconds or null, got {t}"),
                ));
            }
        };
        let wait = match &self.wait_time {
            None | Some(Value::Null) => WaitTime::default(),
            Some(value) => {
                WaitTime::from_json(value).map_err(|m| ActionError::argument("wait_time", m))?
            }
        };
        let shape = match (&self.load_shape, &self.shape_config) {
            (None | Some(Value::Null), None | Some(Value::Null)) => None,
            (None | Some(Value::Null), Some(_)) => {
                return Err(ActionError::argument(
                    "shape_config",
                    format!("given without `load_shape` (one of: {})", SHAPES.join(", ")),
                ));
            }
            (Some(Value::String(name)), config) => Some(
                LoadShape::from_json(name, config.as_ref().unwrap_or(&Value::Null))
                    .map_err(|(field, message)| ActionError::argument(field, message))?,
            ),
            (Some(other), _) => {
                return Err(ActionError::argument(
                    "load_shape",
                    format!("expected one of {}, got {other}", SHAPES.join(", ")),
                ));
            }
        };
        let arrival = match &self.arrival_rate {
            None | Some(Value::Null) => None,
            Some(value) => {
                if shape.is_some() {
                    return Err(ActionError::argument(
                        "arrival_rate",
                        "give either `load_shape` (closed model) or `arrival_rate` (open model), not both",
                    ));
                }
                Some(
                    ArrivalRate::from_json(value)
                        .map_err(|(field, message)| ActionError::argument(field, message))?,
                )
            }
        };
        check_max_in_flight(
            self.max_in_flight.as_ref(),
            self.user_count,
            shape.as_ref(),
            arrival.as_ref(),
        )?;
        let mut resolver = registered;
        for (name, value) in self.variables.iter().flatten() {
            resolver.variables.insert(name.clone(), value_text(value));
        }
        for (i, source) in self.csv_sources.iter().flatten().enumerate() {
            let data = source.read(&format!("csv_sources[{i}]."))?;
            resolver.tables.insert(&source.name, data);
        }
        for (name, data) in db {
            resolver.tables.insert_shared(name, data.clone());
        }
        if let Some(segment) = segment {
            resolver.tables.for_segment(segment);
        }
        let (host, connection) = self.connection_defaults::<P>()?;
        let defaults = ConnectionDefaults {
            connection: connection.as_ref(),
            connection_string: self.connection_string.as_deref(),
        };
        let scenario = Arc::new(Scenario::<P>::parse_with_defaults(
            &self.tasks,
            host,
            defaults,
            resolver,
        )?);
        let plan = TestPlan {
            users: self.user_count,
            spawn_rate: self.spawn_rate,
            test_time,
            wait,
            shape,
            arrival,
            scenario,
        };
        let Some(segment) = segment else {
            return Ok(plan);
        };
        let plan = plan.for_segment(segment);
        if plan.arrival.as_ref().is_some_and(|a| a.max_users == 0) {
            return Err(ActionError::argument(
                "arrival_rate.max_users",
                format!(
                    "segment {segment} gets no user: give max_users of at least {}, the number of instances",
                    segment.count()
                ),
            ));
        }
        Ok(plan)
    }
}

/// Default fields of every task (LD_start_test's `connection`, less its `url`, and
/// `http2`).
type TaskDefaults = serde_json::Map<String, Value>;

impl StartTestArgs {
    /// LoadDensity's `connection` dict, split: its `url` stands for `host` (the
    /// server, as `redis_user` reads it), and its other keys (and `http2`) are default
    /// fields of every task, each of which must be a field of user type `P`.
    fn connection_defaults<P: Protocol>(
        &self,
    ) -> Result<(Option<&str>, Option<TaskDefaults>), ActionError> {
        self.check_http2()?;
        let mut defaults = serde_json::Map::new();
        let mut host = self.host.as_deref();
        for (key, value) in self.connection.iter().flatten() {
            if key == "url" {
                match value {
                    Value::Null => {}
                    Value::String(url) => host = Some(url.as_str()),
                    other => {
                        return Err(ActionError::argument(
                            "connection.url",
                            format!("expected a URL, got {other}"),
                        ));
                    }
                }
                continue;
            }
            if !P::FIELDS.contains(&key.as_str()) && !COMMON_FIELDS.contains(&key.as_str()) {
                return Err(ActionError::argument(
                    format!("connection.{key}"),
                    format!(
                        "unknown field; the keys of `connection` are default task fields: url, {}",
                        P::FIELDS.join(", ")
                    ),
                ));
            }
            defaults.insert(key.clone(), value.clone());
        }
        // async_http_user reads `http2` per task; the others honour it by their
        // client (see `protocol_user_type`).
        if let Some(http2) = self.http2.filter(|_| P::FIELDS.contains(&"http2")) {
            defaults.entry("http2").or_insert(Value::Bool(http2));
        }
        Ok((host, (!defaults.is_empty()).then_some(defaults)))
    }

    /// The `run.load` entry of this test in the result document. `users` and
    /// `spawn_rate` are what this process ran: a segment's slice of the script's.
    pub(super) fn load_description(
        &self,
        started_at: SystemTime,
        report: &RunReport,
        (users, spawn_rate): (u32, f64),
    ) -> LoadDescription {
        let shape = match &self.load_shape {
            None | Some(Value::Null) => None,
            Some(name) => Some(json!({
                "load_shape": name,
                "shape_config": self.shape_config.clone().unwrap_or(Value::Null),
            })),
        };
        LoadDescription {
            started_at: rfc3339_millis(started_at),
            ended_at: rfc3339_millis(SystemTime::now()),
            duration_s: report.duration.as_secs_f64(),
            users,
            spawn_rate,
            test_time: self.test_time,
            shape,
            arrival_rate: self.arrival_rate.clone().filter(|v| !v.is_null()),
            users_started: report.users_started,
            interrupted: report.interrupted,
        }
    }
}

struct StartTest;

impl Command for StartTest {
    fn validate(&self, args: &Args, scratch: &ParameterResolver) -> Result<(), ActionError> {
        let args = args.parse::<StartTestArgs>(START_TEST_PARAMS)?;
        args.worker_options(None)?;
        args.with_user_type(ValidateTest(&args, scratch))?
    }

    fn run(&self, executor: &mut Executor, args: Args) -> Result<Value, ActionError> {
        let named = args.named(START_TEST_PARAMS)?;
        let args = args.parse::<StartTestArgs>(START_TEST_PARAMS)?;
        // What the web UI's /swarm starts again after the script (a Locust worker's
        // test belongs to its master).
        if matches!(
            args.worker_options(executor.locust_worker.as_ref()),
            Ok(None)
        ) {
            executor
                .context()
                .live()
                .run()
                .reruns()
                .set_last_test(named);
        }
        args.with_user_type(RunTest {
            args: &args,
            executor,
        })?
    }

    fn arguments(&self) -> super::ArgumentSpec {
        super::ArgumentSpec::of::<StartTestArgs>(START_TEST_PARAMS)
    }
}

/// Checks a test's arguments with its user type's protocol.
struct ValidateTest<'a>(&'a StartTestArgs, &'a ParameterResolver);

impl UserTypeVisitor for ValidateTest<'_> {
    type Output = Result<(), ActionError>;

    fn visit<P: Protocol>(self) -> Self::Output {
        self.0.plan::<P>(None, self.1.snapshot()).map(|_| ())
    }
}

/// Describes one segment's slice of a test, with its user type's protocol.
struct DescribeSegment<'a>(&'a StartTestArgs, &'a Segment);

impl UserTypeVisitor for DescribeSegment<'_> {
    type Output = Result<String, ActionError>;

    fn visit<P: Protocol>(self) -> Self::Output {
        self.0
            .plan::<P>(Some(self.1), ResolverSnapshot::default())
            .map(|plan| plan.describe())
    }
}

impl StartTestArgs {
    /// What instance `segment` of this test runs, in one line.
    pub(super) fn describe_segment(&self, segment: &Segment) -> Result<String, ActionError> {
        self.with_user_type(DescribeSegment(self, segment))?
    }
}

/// Runs a test with its user type's protocol.
struct RunTest<'a> {
    args: &'a StartTestArgs,
    executor: &'a mut Executor,
}

impl UserTypeVisitor for RunTest<'_> {
    type Output = Result<Value, ActionError>;

    fn visit<P: Protocol>(self) -> Self::Output {
        run_test_with::<P>(self.executor, self.args)
    }
}

/// What every test does before it starts: registers its `variables` and
/// `csv_sources` (as in LoadDensity, they stay registered for later tests) and sets the
/// request log up. Returns the interrupt token; an error when already interrupted.
pub(super) fn prepare_test(
    executor: &mut Executor,
    args: &StartTestArgs,
    db: Vec<(String, Arc<CsvData>)>,
) -> Result<tokio_util::sync::CancellationToken, ActionError> {
    let resolver = executor.context().resolver();
    for (name, value) in args.variables.iter().flatten() {
        resolver.register_variable(name, value);
    }
    for (i, source) in args.csv_sources.iter().flatten().enumerate() {
        resolver.register_csv_data(&source.name, source.read(&format!("csv_sources[{i}]."))?);
    }
    for (name, data) in db {
        resolver.register_source(&name, data);
    }
    let interrupt = executor.interrupt_token();
    if interrupt.is_cancelled() {
        return Err(ActionError::Interrupted);
    }
    executor.configure_request_log(args.max_records)?;
    // The web UI last before the load: a busy port is an error before anything is sent.
    if let Some(web_ui) = &args.web_ui_dict {
        let addr = executor
            .context()
            .live()
            .start_web_ui(executor.stats(), web_ui.options()?, true)
            .map_err(|e| ActionError::Failed(format!("web_ui_dict: {e}")))?;
        tracing::info!("web UI on http://{addr}/");
    }
    Ok(interrupt)
}

fn run_test_with<P: Protocol>(
    executor: &mut Executor,
    args: &StartTestArgs,
) -> Result<Value, ActionError> {
    if let Some(options) = args.worker_options(executor.locust_worker.as_ref())? {
        return super::worker_run::run_as_worker::<P>(executor, args, &options);
    }
    let segment = executor.segment;
    // Each database source's query runs once: its rows serve this test and stay
    // registered for later ones.
    let db = args.read_db_sources()?;
    let plan = args.plan_with::<P>(
        segment.as_ref(),
        executor.context().resolver().snapshot(),
        &db,
    )?;
    if let Some(segment) = &segment {
        tracing::info!("segment {segment}: {}", plan.describe());
    }
    let interrupt = prepare_test(executor, args, db)?;
    let (users, spawn_rate, test_time) = (plan.users, plan.spawn_rate, plan.test_time);
    let control = Arc::new(match (&plan.shape, &plan.arrival) {
        (_, Some(_)) => RunControl::fixed("arrival rate", users, spawn_rate),
        (Some(_), None) => RunControl::fixed("load shape", users, spawn_rate),
        (None, None) => RunControl::adjustable(users, spawn_rate),
    });
    let observers = RunObservers {
        progress: executor
            .options
            .progress
            .then(|| Progress::new(executor.stats().clone())),
        timeline: Some(executor.stats().clone()),
        control: Some(control.clone()),
    };
    let listeners = executor.listeners().clone();
    let (before, failures_before) = executor.stats().counts();
    let started_at = SystemTime::now();
    let live = executor.context().live().run().clone();
    live.begin_test(control);
    let report = executor
        .runtime()
        .block_on(run_test(plan, listeners, interrupt, observers));
    executor.record_test(args.load_description(started_at, &report, (users, spawn_rate)));
    executor.stats().add_duration(report.duration);
    live.end_test();
    executor.context().live().end_test_web_ui();
    executor
        .stats()
        .add_dropped_iterations(report.dropped_iterations);
    let snapshot = executor.stats().snapshot();
    let mut table = render_table(&snapshot);
    if let Some(segment) = &segment {
        let instance = crate::instance::instance_name().unwrap_or_default();
        table = format!("segment {segment} {instance}\n{table}");
    }
    executor.write_output(&table);
    let (after, failures) = executor.stats().counts();
    // A web UI's reset may have cleared the counts during the test.
    let counts = TestCounts {
        requests: after.saturating_sub(before),
        failures: failures.saturating_sub(failures_before),
    };
    let warning = empty_run_warning(&report, counts);
    if let Some(warning) = &warning {
        tracing::warn!("{warning}");
    }
    Ok(json!({
        "user_count": users,
        "spawn_rate": spawn_rate,
        "test_time": test_time.map(|t| t.as_secs_f64()),
        "users_started": report.users_started,
        "duration_s": report.duration.as_secs_f64(),
        "requests": counts.requests,
        "failures_total": failures,
        "interrupted": report.interrupted,
        "dropped_iterations": report.dropped_iterations,
        "segment": segment.map(|s| s.to_string()),
        "warning": warning,
    }))
}
