//! The linter (`LD_lint_action`, `LD_lint_action_file`, `loaddensity lint`): every
//! problem of a document in one pass, each with its path in the document
//! (`actions[0].tasks[1].timeout`), as LoadDensity's `LintFinding` records
//! (`rule`, `severity`, `message`, `location`).
//!
//! Three passes per action: its arguments against the shape traced from the
//! command's own argument struct ([`super::shape`]: unknown, missing and mistyped
//! fields, all of them); the command's own validation on what is left (ranges,
//! files, tasks one by one); and every `${...}` of its tasks against the sources
//! registered so far (`unreachable-source`). LoadDensity's warnings (`hardcoded-url`,
//! `oversize-body`) are kept; warnings never fail a lint.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use super::resolver_commands::{CsvSource, DbSource};
use super::shape::{self, Shape, suggestion};
use super::{ActionError, Args, DocumentError, Executor, read_document_file};
use crate::scenario::{ParameterResolver, Template};
use crate::task::TaskErrorKind;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The document will not run as written; `loaddensity lint` exits 1.
    Error,
    /// Worth a look (LoadDensity's `hardcoded-url`, `oversize-body`, an unset `${env.X}`).
    Warning,
}

/// One problem (LoadDensity's `LintFinding`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LintFinding {
    /// What kind: `invalid-shape`, `unknown-command`, `unknown-field`,
    /// `missing-field`, `wrong-type`, `invalid-argument`, `unreachable-source`,
    /// `placeholder`, `hardcoded-url`, `oversize-body`, `unset-env`.
    pub rule: String,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong and what was expected.
    pub message: String,
    /// Where in the document: `actions[I]` is the I-th action of the list, followed
    /// by the argument's path (`actions[0].tasks[1].request_url`); `actions` is the
    /// list, `load_density` its key, `(document)` the document as a whole.
    pub location: String,
}

impl std::fmt::Display for LintFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let severity = match self.severity {
            Severity::Error => "ERROR",
            Severity::Warning => "WARNING",
        };
        write!(
            f,
            "{}: [{severity}] {}: {}",
            self.location, self.rule, self.message
        )
    }
}

/// True when any finding is an error.
pub fn has_errors(findings: &[LintFinding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

/// The location of a problem with the document as a whole.
pub const DOCUMENT: &str = "(document)";

/// A task body larger than this is LoadDensity's `oversize-body` warning.
const MAX_BODY_BYTES: usize = 1024 * 1024;

fn finding(rule: &str, severity: Severity, message: String, location: String) -> LintFinding {
    LintFinding {
        rule: rule.to_string(),
        severity,
        message,
        location,
    }
}

fn join(base: &str, path: &str) -> String {
    match path {
        "" | "." => base.to_string(),
        p if p.starts_with('[') => format!("{base}{p}"),
        p => format!("{base}.{p}"),
    }
}

impl Executor {
    /// Lints a document: every problem, in document order. `known_commands`, when
    /// given, replaces the registry as the list of known command names
    /// (LoadDensity's argument of the same name).
    pub fn lint_document(
        &self,
        document: &Value,
        known_commands: Option<&BTreeSet<String>>,
    ) -> Vec<LintFinding> {
        let mut out = Vec::new();
        let shape_error = |location: &str, message: String| {
            finding(
                "invalid-shape",
                Severity::Error,
                message,
                location.to_string(),
            )
        };
        let list = match document {
            Value::Array(list) => list,
            Value::Object(map) => match map.get("load_density") {
                Some(Value::Array(list)) => list,
                Some(other) => {
                    out.push(shape_error(
                        "load_density",
                        format!(
                            "`load_density` must be a list of actions, got {}",
                            shape::describe(other)
                        ),
                    ));
                    return out;
                }
                None => {
                    out.push(shape_error(
                        DOCUMENT,
                        "expected {\"load_density\": [...]} or a list of actions; the key `load_density` is missing".into(),
                    ));
                    return out;
                }
            },
            other => {
                out.push(shape_error(
                    DOCUMENT,
                    format!(
                        "top-level action document must be a list or {{\"load_density\": [...]}}, got {}",
                        shape::describe(other)
                    ),
                ));
                return out;
            }
        };
        if list.is_empty() {
            out.push(shape_error("actions", "the action list is empty".into()));
        }
        let scratch = ParameterResolver::default();
        for (index, action) in list.iter().enumerate() {
            let before = out.len();
            self.lint_action(index, action, &scratch, known_commands, &mut out);
            dedupe(&mut out, before);
        }
        out
    }

    /// Reads a document (JSON, YAML or TOML by its extension) and lints it.
    pub fn lint_file(
        &self,
        path: &Path,
        known_commands: Option<&BTreeSet<String>>,
    ) -> Result<Vec<LintFinding>, DocumentError> {
        Ok(self.lint_document(&read_document_file(path)?, known_commands))
    }

    fn lint_action(
        &self,
        index: usize,
        action: &Value,
        scratch: &ParameterResolver,
        known_commands: Option<&BTreeSet<String>>,
        out: &mut Vec<LintFinding>,
    ) {
        let at = format!("actions[{index}]");
        let shape_error =
            |message: String| finding("invalid-shape", Severity::Error, message, at.clone());
        let Some(items) = action.as_array().filter(|a| (1..=2).contains(&a.len())) else {
            out.push(shape_error(format!(
                "expected [\"NAME\"], [\"NAME\", {{kwargs}}] or [\"NAME\", [args]], got {}",
                shape::describe(action)
            )));
            return;
        };
        let Some(name) = items[0].as_str() else {
            out.push(shape_error(format!(
                "the command name must be a string, got {}",
                shape::describe(&items[0])
            )));
            return;
        };
        let known = match known_commands {
            Some(known) => known.contains(name),
            None => self.command(name).is_some(),
        };
        if !known {
            let names: Vec<&str> = match known_commands {
                Some(known) => known.iter().map(String::as_str).collect(),
                None => self.command_names().collect(),
            };
            out.push(finding(
                "unknown-command",
                Severity::Error,
                format!(
                    "unknown command `{name}`{}; check the spelling, or register it with Executor::add_command",
                    suggestion(name, names.into_iter())
                ),
                at,
            ));
            return;
        }
        let Some(command) = self.command(name).cloned() else {
            return;
        };
        let spec = command.arguments();
        // Everything by name: positional arguments take their parameters' names.
        let named: Map<String, Value> = match items.get(1) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(Value::Array(values)) => {
                if values.len() > spec.params.len() && !matches!(spec.shape, Shape::Any) {
                    out.push(finding(
                        "invalid-argument",
                        Severity::Error,
                        format!(
                            "takes at most {} positional arguments ({}), got {}",
                            spec.params.len(),
                            spec.params.join(", "),
                            values.len()
                        ),
                        at,
                    ));
                    return;
                }
                spec.params
                    .iter()
                    .cloned()
                    .zip(values.iter().cloned())
                    .collect()
            }
            Some(other) => {
                out.push(shape_error(format!(
                    "the arguments of `{name}` must be an object or a list, got {}",
                    shape::describe(other)
                )));
                return;
            }
        };
        // 1. The shape: every unknown, missing and mistyped field.
        let mut mismatches = Vec::new();
        if let Shape::Struct(shape) = &spec.shape {
            shape::check_struct(shape, &named, "", &mut mismatches);
        }
        let flagged: BTreeSet<String> = mismatches
            .iter()
            .map(|m| top_key(&m.path).to_string())
            .collect();
        // A required argument flagged above would only be reported again, as missing.
        let required_flagged = match &spec.shape {
            Shape::Struct(shape) => flagged.iter().any(|k| shape.required.contains(k)),
            _ => false,
        };
        for m in mismatches {
            out.push(finding(
                m.rule,
                Severity::Error,
                m.message,
                join(&at, &m.path),
            ));
        }
        // 2. The command's own checks, on the arguments the shape did not flag.
        let mut cleaned = named.clone();
        cleaned.retain(|k, _| !flagged.contains(k));
        let args = if items.get(1).is_none() && cleaned.is_empty() {
            Args::None
        } else {
            Args::Named(cleaned.clone())
        };
        let checked = if required_flagged {
            Ok(())
        } else {
            command.validate(&args, scratch)
        };
        // The sources whose reading failed above (reported there, not read again).
        let failed_sources: BTreeSet<String> = match &checked {
            Err(error) => error_path(error)
                .map(|p| top_key(p).to_string())
                .into_iter()
                .collect(),
            Ok(()) => BTreeSet::new(),
        };
        if let Err(error) = checked {
            let per_task = split_tasks(&cleaned)
                .filter(|_| error_path(&error).is_some_and(|p| p.starts_with("tasks")));
            match per_task {
                Some(variants) => {
                    for (variant, from, to) in variants {
                        if let Err(error) = command.validate(&Args::Named(variant), scratch) {
                            out.push(semantic(&at, &error, Some((&from, &to))));
                        }
                    }
                }
                None => out.push(semantic(&at, &error, None)),
            }
        }
        // 3. Placeholders and LoadDensity's warnings, in the tasks.
        if let Some(tasks) = named.get("tasks") {
            let mut snapshot = scratch.snapshot();
            if let Some(Value::Array(sources)) = named.get("csv_sources") {
                for source in sources {
                    if let Ok(source) = serde_json::from_value::<CsvSource>(source.clone())
                        && let Ok(data) = source.read("")
                    {
                        snapshot.tables.insert(&source.name, data);
                    }
                }
            }
            if let Some(Value::Array(sources)) = named.get("db_sources")
                && !failed_sources.contains("db_sources")
            {
                for source in sources {
                    if let Ok(source) = serde_json::from_value::<DbSource>(source.clone())
                        && let Ok(data) = source.read("")
                    {
                        snapshot.tables.insert_shared(&source.name, data);
                    }
                }
            }
            let tasks_at = join(&at, "tasks");
            scan_placeholders(tasks, &tasks_at, &snapshot.tables, out);
            for (task, task_at) in task_list(tasks, &tasks_at) {
                task_warnings(task, &task_at, out);
            }
        }
    }
}

/// The top-level argument a path is under: `tasks` for `tasks[1].url`.
fn top_key(path: &str) -> &str {
    let end = path.find(['.', '[']).unwrap_or(path.len());
    &path[..end]
}

/// The argument path an error names, if any.
fn error_path(error: &ActionError) -> Option<&str> {
    match error {
        ActionError::Argument { field, .. } | ActionError::UnreachableSource { field, .. } => {
            Some(field)
        }
        ActionError::Task(task) => Some(&task.path),
        _ => None,
    }
}

/// A finding from a command's own validation; `rename` maps the single task a
/// variant holds (`tasks[0]`) back to its place in the document (`tasks[3]`).
fn semantic(at: &str, error: &ActionError, rename: Option<(&str, &str)>) -> LintFinding {
    let (path, message, unreachable) = match error {
        ActionError::Argument { field, message } => (field.clone(), message.clone(), false),
        ActionError::UnreachableSource { field, message } => (field.clone(), message.clone(), true),
        ActionError::Task(task) => (
            task.path.clone(),
            task.message.clone(),
            task.kind == TaskErrorKind::UnreachableSource,
        ),
        other => (String::new(), other.to_string(), false),
    };
    let path = match rename {
        Some((from, to)) if path.starts_with(from) => format!("{to}{}", &path[from.len()..]),
        _ => path,
    };
    let rule = if unreachable {
        "unreachable-source"
    } else {
        "invalid-argument"
    };
    finding(rule, Severity::Error, message, join(at, &path))
}

/// Arguments holding one task, the task's path in them, and its path in the document.
type TaskVariant = (Map<String, Value>, String, String);

/// `LD_start_test`'s arguments with one task each (when there are two or more), so
/// that a problem in every task is found, not only in the first: `(arguments, the
/// task's path in them, its path in the document)`.
fn split_tasks(named: &Map<String, Value>) -> Option<Vec<TaskVariant>> {
    let with = |tasks: Value| {
        let mut variant = named.clone();
        variant.insert("tasks".into(), tasks);
        variant
    };
    match named.get("tasks")? {
        Value::Array(list) if list.len() > 1 => Some(
            list.iter()
                .enumerate()
                .map(|(i, task)| {
                    (
                        with(Value::Array(vec![task.clone()])),
                        "tasks[0]".to_string(),
                        format!("tasks[{i}]"),
                    )
                })
                .collect(),
        ),
        Value::Object(map) if map.contains_key("tasks") || map.contains_key("mode") => {
            match map.get("tasks") {
                Some(Value::Array(list)) if list.len() > 1 => Some(
                    list.iter()
                        .enumerate()
                        .map(|(i, task)| {
                            let mut inner = map.clone();
                            inner.insert("tasks".into(), Value::Array(vec![task.clone()]));
                            (
                                with(Value::Object(inner)),
                                "tasks.tasks[0]".to_string(),
                                format!("tasks.tasks[{i}]"),
                            )
                        })
                        .collect(),
                ),
                _ => None,
            }
        }
        Value::Object(map) if map.len() > 1 => Some(
            map.iter()
                .map(|(key, task)| {
                    let mut one = Map::new();
                    one.insert(key.clone(), task.clone());
                    (with(Value::Object(one)), String::new(), String::new())
                })
                .collect(),
        ),
        _ => None,
    }
}

/// The tasks of a `tasks` argument with their locations (list, legacy map, mode form).
fn task_list<'v>(tasks: &'v Value, at: &str) -> Vec<(&'v Map<String, Value>, String)> {
    match tasks {
        Value::Array(list) => list
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.as_object().map(|t| (t, format!("{at}[{i}]"))))
            .collect(),
        Value::Object(map) if map.contains_key("tasks") || map.contains_key("mode") => map
            .get("tasks")
            .map(|inner| task_list(inner, &format!("{at}.tasks")))
            .unwrap_or_default(),
        Value::Object(map) => map
            .iter()
            .filter_map(|(k, t)| t.as_object().map(|t| (t, format!("{at}.{k}"))))
            .collect(),
        _ => Vec::new(),
    }
}

/// LoadDensity's task warnings: a URL written out in full, an oversized body.
fn task_warnings(task: &Map<String, Value>, at: &str, out: &mut Vec<LintFinding>) {
    for field in ["request_url", "url"] {
        if let Some(Value::String(url)) = task.get(field) {
            let lower = url.to_ascii_lowercase();
            if (lower.starts_with("http://") || lower.starts_with("https://"))
                && !url.contains("${")
            {
                out.push(finding(
                    "hardcoded-url",
                    Severity::Warning,
                    format!(
                        "hard-coded URL '{url}'; consider a ${{var.base}} placeholder or `host`"
                    ),
                    format!("{at}.{field}"),
                ));
            }
        }
    }
    for field in ["data", "json"] {
        if let Some(Value::String(body)) = task.get(field)
            && body.len() > MAX_BODY_BYTES
        {
            out.push(finding(
                "oversize-body",
                Severity::Warning,
                format!(
                    "task body is {} bytes; consider streaming or a smaller fixture",
                    body.len()
                ),
                format!("{at}.{field}"),
            ));
        }
    }
}

/// Every `${...}` in the strings below `value`, parsed against the sources registered
/// so far: one finding per string that holds a bad one, and a warning per unset
/// `${env.NAME}`.
fn scan_placeholders(
    value: &Value,
    at: &str,
    tables: &crate::scenario::CsvTables,
    out: &mut Vec<LintFinding>,
) {
    match value {
        Value::String(text) if text.contains("${") => {
            if let Err(error) = Template::parse(text, tables) {
                let rule = if error.is_source() {
                    "unreachable-source"
                } else {
                    "placeholder"
                };
                out.push(finding(
                    rule,
                    Severity::Error,
                    error.to_string(),
                    at.to_string(),
                ));
            }
            for name in env_placeholders(text) {
                if std::env::var_os(name).is_none() {
                    out.push(finding(
                        "unset-env",
                        Severity::Warning,
                        format!("`${{env.{name}}}`: the environment variable is not set here; it stays as written"),
                        at.to_string(),
                    ));
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                scan_placeholders(item, &format!("{at}[{i}]"), tables, out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                scan_placeholders(item, &format!("{at}.{key}"), tables, out);
            }
        }
        _ => {}
    }
}

/// The names of the `${env.NAME}` placeholders of a string.
fn env_placeholders(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let token = after[..end].trim();
        if let Some((prefix, name)) = token.split_once('.')
            && prefix.eq_ignore_ascii_case("env")
            && !name.is_empty()
        {
            names.push(name);
        }
        rest = &after[end + 1..];
    }
    names
}

/// Drops, among the findings from `from` on, those at a location (and of a severity)
/// already reported: the same problem seen by two passes.
fn dedupe(out: &mut Vec<LintFinding>, from: usize) {
    let mut seen = BTreeSet::new();
    let mut index = 0;
    out.retain(|f| {
        let keep = index < from || seen.insert((f.location.clone(), f.severity == Severity::Error));
        index += 1;
        keep
    });
    // The same problem seen at a coarser place (a task's `json` and its `json.sku`).
    let finer: Vec<(String, String)> = out[from.min(out.len())..]
        .iter()
        .map(|f| (f.rule.clone(), f.location.clone()))
        .collect();
    let mut index = 0;
    out.retain(|f| {
        let keep = index < from
            || !finer.iter().any(|(rule, location)| {
                *rule == f.rule
                    && location.len() > f.location.len()
                    && location.starts_with(&f.location)
                    && matches!(location.as_bytes()[f.location.len()], b'.' | b'[')
            });
        index += 1;
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_placeholder_names() {
        assert_eq!(
            env_placeholders("${env.A}/x/${ ENV.B }${var.c}${env.}"),
            ["A", "B"]
        );
        assert!(env_placeholders("${env.A").is_empty());
    }

    #[test]
    fn top_keys_and_joins() {
        assert_eq!(top_key("tasks[1].url"), "tasks");
        assert_eq!(top_key("user_count"), "user_count");
        assert_eq!(join("actions[0]", "tasks[1]"), "actions[0].tasks[1]");
        assert_eq!(join("actions[0]", ""), "actions[0]");
    }
}
