//! What a test run does: how many users, how fast they start, for how long, and
//! which tasks each runs: the [`Scenario`] of a protocol's tasks, parsed from the
//! script's `tasks` argument, and how each iteration picks among them.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::distributions::WeightedIndex;
use serde_json::{Map, Value};
use url::Url;

use super::{ArrivalRate, LoadShape, WaitTime};
use crate::protocol::http::Http;
use crate::protocol::{ConnectionDefaults, ParseContext, Protocol};
use crate::scenario::{Condition, ResolverSnapshot};
use crate::task::{COMMON_FIELDS, RetryPolicy, Task, TaskError, ThinkTime, err};

/// A closed-model test (Locust's): `users` users loop over `tasks` of protocol `P`.
#[derive(Debug)]
pub struct TestPlan<P: Protocol> {
    /// Number of virtual users.
    pub users: u32,
    /// Users started per second.
    pub spawn_rate: f64,
    /// How long the test runs; `None` runs until interrupted.
    pub test_time: Option<Duration>,
    /// Pause after each pass over the tasks.
    pub wait: WaitTime,
    /// A load shape (`load_shape`); when set it decides the user count over time
    /// and ends the test, and `users` / `spawn_rate` are not used.
    pub shape: Option<LoadShape>,
    /// The open model (`arrival_rate`); when set, iterations start on its schedule and
    /// `users`, `spawn_rate`, `shape` and `wait` are not used.
    pub arrival: Option<ArrivalRate>,
    /// The scenario every user runs.
    pub scenario: Arc<Scenario<P>>,
}

impl<P: Protocol> TestPlan<P> {
    /// The user count over time: the load shape, or `users` at `spawn_rate`.
    pub fn shape(&self) -> LoadShape {
        self.shape.clone().unwrap_or(LoadShape::Constant {
            users: self.users,
            spawn_rate: self.spawn_rate,
        })
    }
}

/// How a scenario's tasks are run each iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every task, in order (conditions may skip some).
    Sequence,
    /// One task per iteration, picked in proportion to its `weight` among the tasks
    /// whose `run_if`/`skip_if` allow them (so a login task that skips once a token
    /// is set runs first, then never again).
    Weighted,
    /// Every task in order, each run only when its conditions hold (the same as
    /// `sequence`, which honours conditions too; LoadDensity has both names).
    Conditional,
}

/// The scenario modes, as written in scripts.
pub const MODES: &[&str] = &["sequence", "weighted", "conditional"];

/// What every user of a test runs: the tasks of protocol `P`, how they are picked,
/// and what their placeholders resolve against.
#[derive(Debug)]
pub struct Scenario<P: Protocol> {
    /// How tasks are picked.
    pub mode: Mode,
    /// The tasks, in the order written.
    pub tasks: Vec<Task<P::Spec>>,
    weights: Option<WeightedIndex<u32>>,
    /// Registered variables and CSV sources, as they were when the test started.
    pub resolver: ResolverSnapshot,
    /// The CSV sources any task reads: one row of each is taken per iteration.
    pub csv_sources: Vec<usize>,
    /// Weighted mode with `run_if`/`skip_if` on some task: the pick is made among
    /// the tasks whose conditions hold.
    pub(crate) conditional_weights: bool,
}

impl<P: Protocol> Scenario<P> {
    /// Parses LoadDensity's `tasks` argument: a list of tasks, the legacy map
    /// `{"get": {...}, "post": {...}}`, or `{"mode": ..., "tasks": [...]}`.
    ///
    /// `host` is the base for relative URLs (LoadDensity's `host` argument);
    /// `resolver` is what placeholders resolve against.
    pub fn parse(
        value: &Value,
        host: Option<&Url>,
        resolver: ResolverSnapshot,
    ) -> Result<Self, TaskError> {
        Self::parse_with_host(value, host.map(Url::as_str), resolver)
    }

    /// [`Scenario::parse`] with LoadDensity's `host` argument as written: a URL for
    /// HTTP and WebSocket, `host:port` for raw sockets (each protocol reads it).
    pub fn parse_with_host(
        value: &Value,
        host: Option<&str>,
        resolver: ResolverSnapshot,
    ) -> Result<Self, TaskError> {
        Self::parse_with_defaults(value, host, ConnectionDefaults::default(), resolver)
    }

    /// [`Scenario::parse_with_host`] with LD_start_test's `connection` and
    /// `connection_string` too.
    pub fn parse_with_defaults(
        value: &Value,
        host: Option<&str>,
        defaults: ConnectionDefaults<'_>,
        resolver: ResolverSnapshot,
    ) -> Result<Self, TaskError> {
        let url = host.and_then(|text| Url::parse(text).ok());
        let ctx = ParseContext::new(url.as_ref(), host, &resolver.tables).with_defaults(defaults);
        let (mode, tasks) = match value {
            Value::Object(map) if map.contains_key("tasks") || map.contains_key("mode") => {
                let mode = parse_mode(map)?;
                let inner = map
                    .get("tasks")
                    .ok_or_else(|| err("tasks.tasks", "missing field"))?;
                (mode, parse_list::<P>(inner, "tasks.tasks", &ctx)?)
            }
            other => (Mode::Sequence, parse_list::<P>(other, "tasks", &ctx)?),
        };
        let weights = match mode {
            Mode::Weighted => Some(
                WeightedIndex::new(tasks.iter().map(|t| t.weight))
                    .map_err(|e| err("tasks.tasks", format!("weights: {e}")))?,
            ),
            Mode::Sequence | Mode::Conditional => None,
        };
        let mut csv_sources = Vec::new();
        for task in &tasks {
            P::csv_sources(&task.spec, &mut csv_sources);
        }
        let conditional_weights = mode == Mode::Weighted
            && tasks
                .iter()
                .any(|t| t.run_if.is_some() || t.skip_if.is_some());
        Ok(Self {
            mode,
            tasks,
            weights,
            resolver,
            csv_sources,
            conditional_weights,
        })
    }

    /// The tasks one iteration runs, in order.
    pub(crate) fn pick(&self, rng: &mut impl Rng) -> &[Task<P::Spec>] {
        match &self.weights {
            Some(weights) => std::slice::from_ref(&self.tasks[rng.sample(weights)]),
            None => &self.tasks,
        }
    }

    /// Weighted mode with conditions: one task picked by weight among the `eligible`
    /// ones (none when no task is eligible).
    pub(crate) fn pick_eligible(&self, eligible: &[bool], rng: &mut impl Rng) -> &[Task<P::Spec>] {
        let total: u64 = self
            .tasks
            .iter()
            .zip(eligible)
            .filter(|(_, ok)| **ok)
            .map(|(t, _)| u64::from(t.weight))
            .sum();
        if total == 0 {
            return &[];
        }
        let mut ticket = rng.gen_range(0..total);
        for (task, _) in self.tasks.iter().zip(eligible).filter(|(_, ok)| **ok) {
            match ticket.checked_sub(u64::from(task.weight)) {
                Some(rest) => ticket = rest,
                None => return std::slice::from_ref(task),
            }
        }
        &[]
    }
}

fn parse_mode(map: &Map<String, Value>) -> Result<Mode, TaskError> {
    for key in map.keys() {
        if key != "mode" && key != "tasks" {
            return Err(err(
                format!("tasks.{key}"),
                "unknown field; a scenario has `mode` and `tasks`",
            ));
        }
    }
    match map.get("mode") {
        None | Some(Value::Null) => Ok(Mode::Sequence),
        Some(Value::String(mode)) => match mode.to_ascii_lowercase().as_str() {
            "sequence" => Ok(Mode::Sequence),
            "weighted" => Ok(Mode::Weighted),
            "conditional" => Ok(Mode::Conditional),
            _ => Err(err(
                "tasks.mode",
                format!(
                    "unknown mode `{mode}`; expected one of: {}",
                    MODES.join(", ")
                ),
            )),
        },
        Some(other) => Err(err("tasks.mode", format!("expected a string, got {other}"))),
    }
}

/// A list of tasks or the legacy map of method to task.
fn parse_list<P: Protocol>(
    value: &Value,
    path: &str,
    ctx: &ParseContext<'_>,
) -> Result<Vec<Task<P::Spec>>, TaskError> {
    let tasks = match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let path = format!("{path}[{i}]");
                let object = item
                    .as_object()
                    .ok_or_else(|| err(&path, format!("expected a task object, got {item}")))?;
                parse_task::<P>(object, None, &path, ctx)
            })
            .collect::<Result<Vec<_>, _>>()?,
        Value::Object(map) => map
            .iter()
            .map(|(method, item)| {
                let path = format!("{path}.{method}");
                let object = item
                    .as_object()
                    .ok_or_else(|| err(&path, format!("expected a task object, got {item}")))?;
                parse_task::<P>(object, Some(method), &path, ctx)
            })
            .collect::<Result<Vec<_>, _>>()?,
        other => {
            return Err(err(
                path,
                format!("expected a list of tasks or a map of method to task, got {other}"),
            ));
        }
    };
    if tasks.is_empty() {
        return Err(err(path, "expected at least one task"));
    }
    Ok(tasks)
}

/// Parses one task object for protocol `P`. `method_key` is the method given by
/// the legacy map's key; `path` names the task in errors (`tasks[0]`).
fn parse_task<P: Protocol>(
    object: &Map<String, Value>,
    method_key: Option<&str>,
    path: &str,
    ctx: &ParseContext<'_>,
) -> Result<Task<P::Spec>, TaskError> {
    let merged;
    let object = match ctx.defaults.connection {
        Some(defaults) if !defaults.is_empty() => {
            let mut all = defaults.clone();
            for (key, value) in object {
                all.insert(key.clone(), value.clone());
            }
            merged = all;
            &merged
        }
        _ => object,
    };
    if let Some(key) = object
        .keys()
        .find(|k| !P::FIELDS.contains(&k.as_str()) && !COMMON_FIELDS.contains(&k.as_str()))
    {
        return Err(err(
            format!("{path}.{key}"),
            format!(
                "unknown field; expected one of: {}, {}",
                P::FIELDS.join(", "),
                COMMON_FIELDS.join(", ")
            ),
        ));
    }
    let parsed = P::parse(object, method_key, path, ctx)?;
    let weight = match object.get("weight") {
        None | Some(Value::Null) => 1,
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|w| u32::try_from(w).ok())
            .filter(|w| *w >= 1)
            .ok_or_else(|| {
                err(
                    format!("{path}.weight"),
                    format!("expected a positive integer, got {n}"),
                )
            })?,
        Some(other) => {
            return Err(err(
                format!("{path}.weight"),
                format!("expected a positive integer, got {other}"),
            ));
        }
    };
    let condition = |field: &str| -> Result<Option<Condition>, TaskError> {
        object
            .get(field)
            .map(|v| Condition::parse(v, ctx.csv).map_err(|e| err(format!("{path}.{field}"), e)))
            .transpose()
    };
    // The throttle's default key: the task's `name`, else the name it is reported under.
    let name = match object.get("name") {
        Some(Value::String(name)) => name.as_str(),
        _ => &parsed.endpoint.name,
    };
    let throttle = ctx.throttles.borrow_mut().parse(object, path, name)?;
    Ok(Task {
        endpoint: parsed.endpoint,
        spec: parsed.spec,
        weight,
        run_if: condition("run_if")?,
        skip_if: condition("skip_if")?,
        wait: parse_wait(object, path)?,
        retry: RetryPolicy::parse(object, path)?,
        throttle,
        think_time: ThinkTime::parse(object, path)?,
    })
}

/// `wait`: seconds to pause before the request (0 to 3600).
fn parse_wait(object: &Map<String, Value>, path: &str) -> Result<Option<Duration>, TaskError> {
    match object.get("wait") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(s) if (0.0..=3600.0).contains(&s) => {
                Ok(Some(Duration::from_secs_f64(s)).filter(|d| !d.is_zero()))
            }
            _ => Err(err(
                format!("{path}.wait"),
                format!("expected a number of seconds from 0 to 3600, got {n}"),
            )),
        },
        Some(other) => Err(err(
            format!("{path}.wait"),
            format!("expected a number of seconds, got {other}"),
        )),
    }
}

/// Parses HTTP `tasks` with no registered variables or CSV sources (for tests and
/// simple library use).
pub fn parse_tasks(value: &Value, host: Option<&Url>) -> Result<Scenario<Http>, TaskError> {
    Scenario::parse(value, host, ResolverSnapshot::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;
    use serde_json::json;

    #[test]
    fn modes_and_weights() {
        let tasks = json!([
            {"method": "get", "url": "http://h/a", "weight": 3},
            {"method": "get", "url": "http://h/b"}
        ]);
        let weighted =
            parse_tasks(&json!({"mode": "weighted", "tasks": tasks}), None).expect("valid");
        assert_eq!(weighted.mode, Mode::Weighted);
        let mut rng = SmallRng::seed_from_u64(7);
        let picks_a = (0..4000)
            .filter(|_| {
                let picked = weighted.pick(&mut rng);
                picked.len() == 1 && &*picked[0].endpoint.name == "http://h/a"
            })
            .count();
        assert!((2800..3200).contains(&picks_a), "{picks_a} of 4000");
        let sequence = parse_tasks(&tasks, None).expect("valid");
        assert_eq!(sequence.pick(&mut rng).len(), 2);
        let conditional =
            parse_tasks(&json!({"mode": "Conditional", "tasks": tasks}), None).expect("valid");
        assert_eq!(conditional.mode, Mode::Conditional);
    }

    #[test]
    fn scenario_errors_name_the_field() {
        let cases = [
            (
                json!({"mode": "random", "tasks": [{"method": "get", "url": "http://h/"}]}),
                "tasks.mode",
                "unknown mode",
            ),
            (
                json!({"mode": "weighted", "tasks": [{"method": "get", "url": "http://h/", "weight": 0}]}),
                "tasks.tasks[0].weight",
                "positive integer",
            ),
            (
                json!([{"method": "get", "url": "http://h/", "run_if": {"matches": [1, 2]}}]),
                "tasks[0].run_if",
                "unknown predicate",
            ),
            (
                json!([{"method": "get", "url": "http://h/", "extract": [{"var": "t", "from": "regex", "pattern": "("}]}]),
                "tasks[0].extract[0].pattern",
                "not a valid regex",
            ),
            (
                json!([{"method": "get", "url": "http://h/${csv.users.name}"}]),
                "tasks[0].url",
                "not registered",
            ),
            (
                json!({"mode": "sequence", "tasks": [], "extra": 1}),
                "tasks.extra",
                "unknown field",
            ),
        ];
        for (tasks, path, needle) in cases {
            let e = parse_tasks(&tasks, None).expect_err("must fail");
            assert_eq!(e.path, path, "{tasks}");
            assert!(e.message.contains(needle), "{tasks}: {}", e.message);
        }
    }
}
