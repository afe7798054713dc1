//! The parameter resolver: registered variables and placeholder sources (CSV files
//! and database queries), shared by every test of one run (LoadDensity's
//! `parameter_resolver`), and the per-request context placeholders are rendered in.
//!
//! A database source (`${db.SOURCE.COLUMN}`) is a table like a CSV file's: its
//! query runs once when it is registered ([`crate::db`]), and its rows are handed
//! out, cycled and split across execution segments exactly as CSV rows are.
//!
//! Registered variables are shared defaults. Variables a user extracts from a
//! response belong to that user alone and are looked up first; so do its session
//! variables (`${session.NAME}`, set by an extractor with `"scope": "session"`),
//! which live in the same per-user map under keys of their own ([`session_key`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::rngs::SmallRng;
use serde_json::Value;

/// Variables shared by every user of a test: the registered ones.
pub type SharedVariables = HashMap<String, String>;

/// Why a CSV source cannot be registered.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The file could not be read.
    #[error("cannot read CSV file `{path}`: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The file has no header row.
    #[error("CSV file `{0}` has no header row")]
    NoHeader(PathBuf),
}

/// Where a placeholder source's rows come from: `${csv.NAME.COLUMN}` or
/// `${db.NAME.COLUMN}` (the two namespaces are separate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    /// A CSV file.
    Csv,
    /// A database query.
    Db,
}

impl SourceKind {
    /// The placeholder prefix: `csv` or `db`.
    pub fn prefix(self) -> &'static str {
        match self {
            SourceKind::Csv => "csv",
            SourceKind::Db => "db",
        }
    }
}

/// A `${csv.SOURCE.COLUMN}` or `${db.SOURCE.COLUMN}` that names a source that is
/// not registered, or a column its rows lack: the source cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// No source of that kind has the name.
    #[error("{} source `{name}` is not registered (registered: {}); use {}", kind_label(*kind), list_or_none(registered), how_to_register(*kind))]
    NotRegistered {
        /// CSV or database.
        kind: SourceKind,
        /// The name the placeholder gives.
        name: String,
        /// The sources of that kind that are registered.
        registered: Vec<String>,
    },
    /// The source has no such column.
    #[error("{}; its columns: {}", no_column_text(*kind, name, origin, column), columns.join(", "))]
    NoColumn {
        /// CSV or database.
        kind: SourceKind,
        /// The source's name.
        name: String,
        /// The CSV file, or the database's label (never its password).
        origin: String,
        /// The column the placeholder names.
        column: String,
        /// The source's columns.
        columns: Vec<String>,
    },
}

fn kind_label(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Csv => "CSV",
        SourceKind::Db => "DB",
    }
}

fn how_to_register(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Csv => "LD_register_csv_source or `csv_sources`",
        SourceKind::Db => "LD_register_db_source or `db_sources`",
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

fn no_column_text(kind: SourceKind, source: &str, origin: &str, column: &str) -> String {
    match kind {
        SourceKind::Csv => {
            format!("CSV file `{origin}` (source `{source}`) has no column `{column}`")
        }
        SourceKind::Db => {
            format!("the query of DB source `{source}` ({origin}) has no column `{column}`")
        }
    }
}

/// The rows of one placeholder source (a CSV file, or a database query's result),
/// read when it is registered.
#[derive(Debug)]
pub struct CsvData {
    /// The file, or the database's label (never its password).
    path: PathBuf,
    kind: SourceKind,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
    cycle: bool,
    shared: bool,
}

impl CsvData {
    /// Reads `path`, which needs a header row. With `cycle: false` each row is used
    /// once per test.
    pub fn read(path: &Path, cycle: bool) -> Result<Self, CsvError> {
        let read_error = |message: String| CsvError::Read {
            path: path.to_path_buf(),
            message,
        };
        let mut reader = csv::ReaderBuilder::new()
            .flexible(false)
            .from_path(path)
            .map_err(|e| read_error(e.to_string()))?;
        let columns: Vec<String> = reader
            .headers()
            .map_err(|e| read_error(e.to_string()))?
            .iter()
            .map(|c| c.trim().to_string())
            .collect();
        if columns.iter().all(String::is_empty) {
            return Err(CsvError::NoHeader(path.to_path_buf()));
        }
        let rows = reader
            .records()
            .map(|r| {
                r.map(|r| r.iter().map(str::to_string).collect())
                    .map_err(|e| read_error(e.to_string()))
            })
            .collect::<Result<Vec<Vec<String>>, _>>()?;
        Ok(Self {
            path: path.to_path_buf(),
            kind: SourceKind::Csv,
            columns,
            rows,
            cycle,
            shared: false,
        })
    }

    /// A database source: `rows` of `columns` read from `label` (a database shown
    /// without its password) by one query.
    pub fn from_query(
        label: &str,
        columns: Vec<String>,
        rows: Vec<Vec<String>>,
        cycle: bool,
    ) -> Self {
        Self {
            path: PathBuf::from(label),
            kind: SourceKind::Db,
            columns,
            rows,
            cycle,
            shared: false,
        }
    }

    /// Whether the rows came from a CSV file or a database.
    pub fn kind(&self) -> SourceKind {
        self.kind
    }

    /// Marks the source as shared (`"shared": true`): every execution segment reads
    /// all its rows instead of its own slice.
    #[must_use]
    pub fn with_shared(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// The rows execution segment `segment` reads: rows I, I+N, I+2N, ... (all of
    /// them for a shared source), so unique data is never reused across instances.
    #[must_use]
    pub fn for_segment(&self, segment: &crate::segment::Segment) -> Self {
        let rows = self
            .rows
            .iter()
            .enumerate()
            .filter(|(i, _)| self.shared || segment.owns_row(*i))
            .map(|(_, row)| row.clone())
            .collect();
        Self {
            path: self.path.clone(),
            kind: self.kind,
            columns: self.columns.clone(),
            rows,
            cycle: self.cycle,
            shared: self.shared,
        }
    }

    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the file has a header and no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[derive(Debug, Default)]
struct Registry {
    variables: BTreeMap<String, String>,
    sources: BTreeMap<(SourceKind, String), Arc<CsvData>>,
}

/// The key a `${session.NAME}` variable is kept under in a user's variable map:
/// `NAME` behind a prefix that starts with a NUL character, so that no `${var.NAME}`
/// (nor a registered variable) reads it, and it never reads them.
pub(crate) fn session_key(name: &str) -> String {
    format!("\0session.{name}")
}

/// The text a registered value renders as: strings as they are, other JSON as JSON.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The registered variables and CSV sources of one run (LoadDensity's
/// `parameter_resolver`). Each test resolves against a [`ResolverSnapshot`] taken
/// when it starts.
#[derive(Debug, Default)]
pub struct ParameterResolver(Mutex<Registry>);

impl ParameterResolver {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers (or replaces) a shared variable (`LD_register_variable`).
    pub fn register_variable(&self, name: &str, value: &Value) {
        self.registry()
            .variables
            .insert(name.to_string(), value_text(value));
    }

    /// Registers (or replaces) a CSV source (`LD_register_csv_source`), reading the
    /// file now.
    pub fn register_csv_source(
        &self,
        name: &str,
        path: &Path,
        cycle: bool,
    ) -> Result<usize, CsvError> {
        let data = CsvData::read(path, cycle)?;
        Ok(self.register_csv_data(name, data))
    }

    /// Registers (or replaces) a CSV or database source already read (`"shared"`
    /// set or not).
    pub fn register_csv_data(&self, name: &str, data: CsvData) -> usize {
        self.register_source(name, Arc::new(data))
    }

    /// Registers (or replaces) a source already read, shared with a test that uses it.
    pub fn register_source(&self, name: &str, data: Arc<CsvData>) -> usize {
        let rows = data.len();
        self.registry()
            .sources
            .insert((data.kind, name.to_string()), data);
        rows
    }

    /// Forgets every registered variable and CSV source (`LD_clear_resolver`).
    pub fn clear(&self) {
        let mut registry = self.registry();
        registry.variables.clear();
        registry.sources.clear();
    }

    /// The registry as it is now, for a test to resolve against.
    pub fn snapshot(&self) -> ResolverSnapshot {
        let registry = self.registry();
        ResolverSnapshot {
            variables: registry
                .variables
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            tables: CsvTables {
                tables: registry
                    .sources
                    .iter()
                    .map(|((_, name), data)| CsvTable {
                        name: name.clone(),
                        data: data.clone(),
                        cursor: AtomicUsize::new(0),
                    })
                    .collect(),
            },
        }
    }
}

/// What a test resolves against: a snapshot of the registry when it starts.
#[derive(Debug, Default)]
pub struct ResolverSnapshot {
    /// The registered variables.
    pub variables: SharedVariables,
    /// The registered CSV sources, each with its own cursor for this test.
    pub tables: CsvTables,
}

#[derive(Debug)]
struct CsvTable {
    name: String,
    data: Arc<CsvData>,
    cursor: AtomicUsize,
}

/// The CSV sources of one test. Rows are handed out in order across all users.
#[derive(Debug, Default)]
pub struct CsvTables {
    tables: Vec<CsvTable>,
}

impl CsvTables {
    /// Number of sources.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// True when no source is registered.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// Adds a source for this test only, replacing a registered one of the same name.
    pub fn insert(&mut self, name: &str, data: CsvData) {
        self.insert_shared(name, Arc::new(data));
    }

    /// [`CsvTables::insert`] for rows already shared (read once, registered too).
    pub fn insert_shared(&mut self, name: &str, data: Arc<CsvData>) {
        let kind = data.kind;
        let table = CsvTable {
            name: name.to_string(),
            data,
            cursor: AtomicUsize::new(0),
        };
        match self
            .tables
            .iter_mut()
            .find(|t| t.name == name && t.data.kind == kind)
        {
            Some(existing) => *existing = table,
            None => self.tables.push(table),
        }
    }

    /// Keeps, in each source that is not shared, only the rows of `segment`.
    pub fn for_segment(&mut self, segment: &crate::segment::Segment) {
        if segment.is_whole() {
            return;
        }
        for table in &mut self.tables {
            if !table.data.shared {
                table.data = Arc::new(table.data.for_segment(segment));
            }
        }
    }

    /// `(source index, column index)` for `${csv.SOURCE.COLUMN}` or
    /// `${db.SOURCE.COLUMN}`.
    pub(crate) fn lookup(
        &self,
        kind: SourceKind,
        source: &str,
        column: &str,
    ) -> Result<(usize, usize), SourceError> {
        let Some(index) = self
            .tables
            .iter()
            .position(|t| t.name == source && t.data.kind == kind)
        else {
            return Err(SourceError::NotRegistered {
                kind,
                name: source.to_string(),
                registered: self
                    .tables
                    .iter()
                    .filter(|t| t.data.kind == kind)
                    .map(|t| t.name.clone())
                    .collect(),
            });
        };
        let data = &self.tables[index].data;
        let column_index = data
            .columns
            .iter()
            .position(|c| c == column)
            .ok_or_else(|| SourceError::NoColumn {
                kind,
                name: source.to_string(),
                origin: data.path.display().to_string(),
                column: column.to_string(),
                columns: data.columns.clone(),
            })?;
        Ok((index, column_index))
    }

    /// The next row of a source for one iteration; `None` when a source that does
    /// not cycle has run out.
    pub(crate) fn next_row(&self, source: usize) -> Option<usize> {
        let table = &self.tables[source];
        let len = table.data.rows.len();
        if len == 0 {
            return None;
        }
        let i = table.cursor.fetch_add(1, Ordering::Relaxed);
        if table.data.cycle {
            Some(i % len)
        } else {
            (i < len).then_some(i)
        }
    }

    fn cell(&self, source: usize, row: usize, column: usize) -> &str {
        self.tables[source]
            .data
            .rows
            .get(row)
            .and_then(|r| r.get(column))
            .map_or("", String::as_str)
    }
}

/// Everything a placeholder may read while one request is prepared.
pub(crate) struct RenderContext<'a> {
    user: &'a HashMap<String, String>,
    shared: &'a SharedVariables,
    /// The CSV tables and this iteration's row of each (`usize::MAX`: none taken).
    csv: Option<(&'a CsvTables, &'a [usize])>,
    pub(crate) rng: &'a mut SmallRng,
}

impl<'a> RenderContext<'a> {
    /// A context with no CSV rows.
    pub(crate) fn new(
        user: &'a HashMap<String, String>,
        shared: &'a SharedVariables,
        rng: &'a mut SmallRng,
    ) -> Self {
        Self {
            user,
            shared,
            csv: None,
            rng,
        }
    }

    /// A context reading this iteration's CSV rows.
    pub(crate) fn with_csv(mut self, tables: &'a CsvTables, rows: &'a [usize]) -> Self {
        self.csv = Some((tables, rows));
        self
    }

    /// A variable: the user's own first, then the shared ones.
    pub(crate) fn variable(&self, name: &str) -> Option<&'a str> {
        self.user
            .get(name)
            .or_else(|| self.shared.get(name))
            .map(String::as_str)
    }

    /// A session variable (`${session.NAME}`): the user's own, never a registered one.
    pub(crate) fn session(&self, key: &str) -> Option<&'a str> {
        self.user.get(key).map(String::as_str)
    }

    /// A cell of this iteration's row of a source.
    pub(crate) fn csv(&self, source: usize, column: usize) -> &'a str {
        match self.csv {
            Some((tables, rows)) => match rows.get(source) {
                Some(&row) if row != usize::MAX => tables.cell(source, row, column),
                _ => "",
            },
            None => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn csv_file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(text.as_bytes()).expect("write");
        file
    }

    fn tables(data: CsvData) -> CsvTables {
        CsvTables {
            tables: vec![CsvTable {
                name: "users".into(),
                data: Arc::new(data),
                cursor: AtomicUsize::new(0),
            }],
        }
    }

    #[test]
    fn rows_cycle_or_run_out() {
        let file = csv_file("name,pass\nann,1\nbob,2\n");
        let cycling = tables(CsvData::read(file.path(), true).expect("reads"));
        let picks: Vec<_> = (0..5).map(|_| cycling.next_row(0)).collect();
        assert_eq!(picks, [Some(0), Some(1), Some(0), Some(1), Some(0)]);
        assert_eq!(cycling.cell(0, 1, 0), "bob");
        let once = tables(CsvData::read(file.path(), false).expect("reads"));
        let picks: Vec<_> = (0..3).map(|_| once.next_row(0)).collect();
        assert_eq!(picks, [Some(0), Some(1), None]);
    }

    #[test]
    fn segments_read_their_own_rows_unless_shared() {
        let file = csv_file("id\n0\n1\n2\n3\n4\n5\n6\n");
        let segment = crate::segment::Segment::new(1, 3).expect("valid");
        let mut t = tables(CsvData::read(file.path(), false).expect("reads"));
        t.for_segment(&segment);
        let ids: Vec<&str> = (0..3)
            .filter_map(|_| t.next_row(0))
            .map(|r| t.cell(0, r, 0))
            .collect();
        assert_eq!(ids, ["1", "4"]);
        let mut shared = tables(
            CsvData::read(file.path(), false)
                .expect("reads")
                .with_shared(true),
        );
        shared.for_segment(&segment);
        assert_eq!(shared.tables[0].data.len(), 7);
    }

    #[test]
    fn lookups_name_the_file_and_column() {
        let file = csv_file("name,pass\nann,1\n");
        let t = tables(CsvData::read(file.path(), true).expect("reads"));
        assert_eq!(t.lookup(SourceKind::Csv, "users", "pass"), Ok((0, 1)));
        assert!(
            t.lookup(SourceKind::Db, "users", "pass")
                .expect_err("another namespace")
                .to_string()
                .contains("DB source `users` is not registered")
        );
        let e = t
            .lookup(SourceKind::Csv, "users", "email")
            .expect_err("no column")
            .to_string();
        assert!(e.contains("no column `email`") && e.contains(&file.path().display().to_string()));
        assert!(
            t.lookup(SourceKind::Csv, "other", "x")
                .expect_err("no source")
                .to_string()
                .contains("not registered")
        );
        let e = CsvData::read(Path::new("/nonexistent/users.csv"), true).expect_err("missing");
        assert!(e.to_string().contains("/nonexistent/users.csv"));
    }
}
