//! The parameter resolver's commands: `LD_register_variable(s)`,
//! `LD_register_csv_source(s)` and `LD_clear_resolver`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Value, json};

use super::args::{CheckArgs, NoArgs, typed};
use super::{ActionError, Args, Command, Executor};
use crate::scenario::{CsvData, ParameterResolver};

pub(super) fn register_resolver_commands(executor: &mut Executor) {
    executor.add_command(
        "LD_register_variable",
        typed(
            &["name", "value"],
            |executor: &mut Executor, a: Variable| {
                let resolver = executor.context().resolver();
                resolver.register_variable(&a.name, &a.value);
                Ok(json!({"registered": [a.name]}))
            },
        ),
    );
    executor.add_command(
        "LD_register_variables",
        typed(&["variables"], |executor: &mut Executor, a: Variables| {
            for (name, value) in &a.variables {
                executor.context().resolver().register_variable(name, value);
            }
            Ok(json!({"registered": a.variables.keys().collect::<Vec<_>>()}))
        }),
    );
    executor.add_command("LD_register_csv_source", RegisterCsv { many: false });
    executor.add_command("LD_register_csv_sources", RegisterCsv { many: true });
    executor.add_command(
        "LD_clear_resolver",
        typed(&[], |executor: &mut Executor, _: NoArgs| {
            executor.context().resolver().clear();
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

/// One CSV source: `{"name", "file_path", "cycle": true, "shared": false}`. With
/// `--segment I/N`, instance I reads rows I, I+N, ... unless `shared` is true.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CsvSource {
    pub(super) name: String,
    pub(super) file_path: PathBuf,
    #[serde(default = "default_cycle")]
    pub(super) cycle: bool,
    #[serde(default)]
    pub(super) shared: bool,
}

fn default_cycle() -> bool {
    true
}

impl CsvSource {
    /// Reads the file; `prefix` locates the source in errors (`sources[1].`).
    pub(super) fn read(&self, prefix: &str) -> Result<CsvData, ActionError> {
        CsvData::read(&self.file_path, self.cycle)
            .map(|data| data.with_shared(self.shared))
            .map_err(|e| ActionError::argument(format!("{prefix}file_path"), e.to_string()))
    }

    fn register(&self, resolver: &ParameterResolver, prefix: &str) -> Result<Value, ActionError> {
        let rows = resolver.register_csv_data(&self.name, self.read(prefix)?);
        Ok(json!({"name": self.name, "rows": rows}))
    }
}

/// `LD_register_csv_sources {"sources": [...]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvSources {
    sources: Vec<CsvSource>,
}

/// `LD_register_csv_source` (one) and `LD_register_csv_sources` (many). Validating
/// registers into the validation's scratch resolver, so that the later actions of the
/// same script are validated against the sources' columns.
struct RegisterCsv {
    many: bool,
}

impl RegisterCsv {
    fn register(&self, resolver: &ParameterResolver, args: &Args) -> Result<Value, ActionError> {
        if !self.many {
            return args
                .parse::<CsvSource>(&["name", "file_path", "cycle", "shared"])?
                .register(resolver, "");
        }
        let sources = args.parse::<CsvSources>(&["sources"])?.sources;
        let mut rows = serde_json::Map::new();
        for (i, source) in sources.iter().enumerate() {
            let registered = source.register(resolver, &format!("sources[{i}]."))?;
            rows.insert(source.name.clone(), registered["rows"].clone());
        }
        Ok(json!({"rows": rows}))
    }
}

impl Command for RegisterCsv {
    fn validate(&self, args: &Args, scratch: &ParameterResolver) -> Result<(), ActionError> {
        self.register(scratch, args).map(|_| ())
    }

    fn run(&self, executor: &mut Executor, args: Args) -> Result<Value, ActionError> {
        self.register(executor.context().resolver(), &args)
    }

    fn arguments(&self) -> super::ArgumentSpec {
        if self.many {
            super::ArgumentSpec::of::<CsvSources>(&["sources"])
        } else {
            super::ArgumentSpec::of::<CsvSource>(&["name", "file_path", "cycle", "shared"])
        }
    }
}
