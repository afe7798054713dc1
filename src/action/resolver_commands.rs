//! The parameter resolver's commands: `LD_register_variable(s)`,
//! `LD_register_csv_source(s)` and `LD_clear_resolver`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Value, json};

use super::commands::{CheckArgs, NoArgs, typed};
use super::{ActionError, Executor};
use crate::scenario::{CsvData, clear_resolver, register_csv_source, register_variable};

pub(super) fn register_resolver_commands(executor: &mut Executor) {
    executor.add_command(
        "LD_register_variable",
        typed(&["name", "value"], |_: &mut Executor, a: Variable| {
            register_variable(&a.name, &a.value);
            Ok(json!({"registered": [a.name]}))
        }),
    );
    executor.add_command(
        "LD_register_variables",
        typed(&["variables"], |_: &mut Executor, a: Variables| {
            for (name, value) in &a.variables {
                register_variable(name, value);
            }
            Ok(json!({"registered": a.variables.keys().collect::<Vec<_>>()}))
        }),
    );
    executor.add_command(
        "LD_register_csv_source",
        typed(
            &["name", "file_path", "cycle"],
            |_: &mut Executor, a: CsvSource| a.register(""),
        ),
    );
    executor.add_command(
        "LD_register_csv_sources",
        typed(&["sources"], |_: &mut Executor, a: CsvSources| {
            let mut rows = serde_json::Map::new();
            for (i, source) in a.sources.iter().enumerate() {
                let registered = source.register(&format!("sources[{i}]."))?;
                rows.insert(source.name.clone(), registered["rows"].clone());
            }
            Ok(json!({"rows": rows}))
        }),
    );
    executor.add_command(
        "LD_clear_resolver",
        typed(&[], |_: &mut Executor, _: NoArgs| {
            clear_resolver();
            Ok(json!({"status": "cleared"}))
        }),
    );
}

/// `LD_register_variable {"name", "value"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Variable {
    name: String,
    value: Value,
}
impl CheckArgs for Variable {}

/// `LD_register_variables {"variables": {...}}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Variables {
    variables: BTreeMap<String, Value>,
}
impl CheckArgs for Variables {}

/// One CSV source: `{"name", "file_path", "cycle": true}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CsvSource {
    pub(super) name: String,
    pub(super) file_path: PathBuf,
    #[serde(default = "default_cycle")]
    pub(super) cycle: bool,
}

fn default_cycle() -> bool {
    true
}

impl CsvSource {
    /// Reads the file; `prefix` locates the source in errors (`sources[1].`).
    pub(super) fn read(&self, prefix: &str) -> Result<CsvData, ActionError> {
        CsvData::read(&self.file_path, self.cycle)
            .map_err(|e| ActionError::argument(format!("{prefix}file_path"), e.to_string()))
    }

    fn register(&self, prefix: &str) -> Result<Value, ActionError> {
        let rows = register_csv_source(&self.name, &self.file_path, self.cycle)
            .map_err(|e| ActionError::argument(format!("{prefix}file_path"), e.to_string()))?;
        Ok(json!({"name": self.name, "rows": rows}))
    }
}

impl CheckArgs for CsvSource {
    fn check(&self) -> Result<(), ActionError> {
        self.read("").map(|_| ())
    }
}

/// `LD_register_csv_sources {"sources": [...]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvSources {
    sources: Vec<CsvSource>,
}

impl CheckArgs for CsvSources {
    fn check(&self) -> Result<(), ActionError> {
        for (i, source) in self.sources.iter().enumerate() {
            source.read(&format!("sources[{i}]."))?;
        }
        Ok(())
    }
}
