//! The parameter resolver's commands: `LD_register_variable(s)`,
//! `LD_register_csv_source(s)`, `LD_register_db_source(s)` and `LD_clear_resolver`.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::args::{CheckArgs, NoArgs, typed};
use super::{ActionError, Args, Command, Executor};
use crate::db::{Database, DbError};
use crate::scenario::{CsvData, CsvError, ParameterResolver};

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
    executor.add_command("LD_register_csv_source", RegisterSource::<CsvSource>::one());
    executor.add_command(
        "LD_register_csv_sources",
        RegisterSource::<CsvSource>::many(),
    );
    executor.add_command("LD_register_db_source", RegisterSource::<DbSource>::one());
    executor.add_command("LD_register_db_sources", RegisterSource::<DbSource>::many());
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

/// A placeholder source a script registers by name (a CSV file, a database query):
/// what `LD_register_*_source(s)` need of it.
trait NamedSource: DeserializeOwned + 'static {
    /// The fields of one source, positional arguments naming them in this order.
    const FIELDS: &'static [&'static str];

    /// The name its placeholders use (`${csv.NAME.COLUMN}`).
    fn name(&self) -> &str;

    /// Reads its rows; `prefix` locates the source in errors (`sources[1].`).
    fn rows(&self, prefix: &str) -> Result<Arc<CsvData>, ActionError>;
}

/// `LD_register_*_sources {"sources": [...]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound = "S: NamedSource")]
struct Sources<S> {
    sources: Vec<S>,
}

/// `LD_register_*_source` (one source) and `LD_register_*_sources` (many): each
/// source is read now, and validating reads it too, into the validation's scratch
/// resolver, so that the later actions of the same script are validated against the
/// sources' columns (and a missing file, a bad URL or a failing query is an error
/// before the script starts).
struct RegisterSource<S> {
    many: bool,
    _source: PhantomData<fn() -> S>,
}

impl<S: NamedSource> RegisterSource<S> {
    /// The command that registers one source.
    fn one() -> Self {
        Self {
            many: false,
            _source: PhantomData,
        }
    }

    /// The command that registers a list of sources.
    fn many() -> Self {
        Self {
            many: true,
            _source: PhantomData,
        }
    }

    fn register(&self, resolver: &ParameterResolver, args: &Args) -> Result<Value, ActionError> {
        if !self.many {
            let source = args.parse::<S>(S::FIELDS)?;
            let rows = register_source(resolver, &source, "")?;
            return Ok(json!({"name": source.name(), "rows": rows}));
        }
        let sources = args.parse::<Sources<S>>(&["sources"])?.sources;
        let mut rows = serde_json::Map::new();
        for (i, source) in sources.iter().enumerate() {
            let registered = register_source(resolver, source, &format!("sources[{i}]."))?;
            rows.insert(source.name().to_string(), registered.into());
        }
        Ok(json!({"rows": rows}))
    }
}

/// Reads `source` and registers it in `resolver`: its number of rows.
fn register_source<S: NamedSource>(
    resolver: &ParameterResolver,
    source: &S,
    prefix: &str,
) -> Result<usize, ActionError> {
    Ok(resolver.register_source(source.name(), source.rows(prefix)?))
}

impl<S: NamedSource> Command for RegisterSource<S> {
    fn validate(&self, args: &Args, scratch: &ParameterResolver) -> Result<(), ActionError> {
        self.register(scratch, args).map(|_| ())
    }

    fn run(&self, executor: &mut Executor, args: Args) -> Result<Value, ActionError> {
        self.register(executor.context().resolver(), &args)
    }

    fn arguments(&self) -> super::ArgumentSpec {
        if self.many {
            super::ArgumentSpec::of::<Sources<S>>(&["sources"])
        } else {
            super::ArgumentSpec::of::<S>(S::FIELDS)
        }
    }
}

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
        let field = format!("{prefix}file_path");
        CsvData::read(&self.file_path, self.cycle)
            .map(|data| data.with_shared(self.shared))
            .map_err(|e| match e {
                CsvError::Read { .. } => ActionError::unreachable_source(field, e.to_string()),
                CsvError::NoHeader(_) => ActionError::argument(field, e.to_string()),
            })
    }
}

impl NamedSource for CsvSource {
    const FIELDS: &'static [&'static str] = &["name", "file_path", "cycle", "shared"];

    fn name(&self) -> &str {
        &self.name
    }

    fn rows(&self, prefix: &str) -> Result<Arc<CsvData>, ActionError> {
        self.read(prefix).map(Arc::new)
    }
}

/// How long reading a database source may take (connecting and the query).
const DB_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// One database source: `{"name", "connection_string", "query", "cycle": true,
/// "shared": false}` (LoadDensity's, plus `shared` as for CSV sources).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DbSource {
    pub(super) name: String,
    connection_string: String,
    query: String,
    #[serde(default = "default_cycle")]
    cycle: bool,
    #[serde(default)]
    shared: bool,
}

impl DbSource {
    /// Runs the query once and keeps its rows; `prefix` locates the source in errors
    /// (`db_sources[1].`). A bad URL or a failed connection names
    /// `connection_string`, a failed query names `query`.
    pub(super) fn read(&self, prefix: &str) -> Result<Arc<CsvData>, ActionError> {
        let database = Database::parse(&self.connection_string).map_err(|e| {
            ActionError::argument(format!("{prefix}connection_string"), e.to_string())
        })?;
        let rows = database
            .read_rows(&self.query, DB_READ_TIMEOUT)
            .map_err(|e| match e {
                DbError::Connect { .. } => ActionError::unreachable_source(
                    format!("{prefix}connection_string"),
                    e.to_string(),
                ),
                DbError::Url { .. } => {
                    ActionError::argument(format!("{prefix}connection_string"), e.to_string())
                }
                DbError::Lost(_) | DbError::Timeout(_) => ActionError::unreachable_source(
                    format!("{prefix}query"),
                    format!("on {}: {e}", database.label()),
                ),
                other => ActionError::argument(
                    format!("{prefix}query"),
                    format!("on {}: {other}", database.label()),
                ),
            })?;
        if rows.columns.is_empty() {
            return Err(ActionError::argument(
                format!("{prefix}query"),
                format!(
                    "on {}: the statement returns no columns; give a SELECT",
                    database.label()
                ),
            ));
        }
        Ok(Arc::new(
            CsvData::from_query(database.label(), rows.columns, rows.rows, self.cycle)
                .with_shared(self.shared),
        ))
    }
}

impl NamedSource for DbSource {
    /// In the order LoadDensity takes them.
    const FIELDS: &'static [&'static str] =
        &["name", "connection_string", "query", "cycle", "shared"];

    fn name(&self) -> &str {
        &self.name
    }

    fn rows(&self, prefix: &str) -> Result<Arc<CsvData>, ActionError> {
        self.read(prefix)
    }
}
