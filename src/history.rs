//! Run history in SQLite, with LoadDensity's schema (`load_density_runs`,
//! `load_density_records`, indexes on `run_id` and `name`) plus a `summary_json`
//! column holding each run's result document, so that reports and comparisons can
//! be made later from the database alone. A database written by Python LoadDensity
//! opens as is (the column is added); each run is written in one transaction.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// LoadDensity's tables and indexes (created when missing).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS load_density_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    label TEXT,
    metadata_json TEXT,
    summary_json TEXT
);
CREATE TABLE IF NOT EXISTS load_density_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    method TEXT,
    test_url TEXT,
    name TEXT,
    status_code TEXT,
    response_time_ms REAL,
    response_length INTEGER,
    error TEXT,
    FOREIGN KEY (run_id) REFERENCES load_density_runs(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS idx_records_run_id ON load_density_records(run_id);
CREATE INDEX IF NOT EXISTS idx_records_name ON load_density_records(name);
";

/// `LD_list_runs`' default `limit`, as in LoadDensity.
pub const DEFAULT_LIST_LIMIT: u32 = 20;

/// Why the history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// SQLite failed (cannot open, not a database, disk full...).
    #[error("{path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// No run has that id.
    #[error("{path}: no run with id {id} (see LD_list_runs)")]
    NoSuchRun {
        /// The database file.
        path: PathBuf,
        /// The id asked for.
        id: i64,
    },
    /// The records could not be read (the run is not stored).
    #[error("{path}: cannot read the records to store, nothing written: {message}")]
    Records {
        /// The database file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The run was stored without a result document (e.g. by Python LoadDensity).
    #[error("{path}: run {id} has no result document (summary_json is empty)")]
    NoSummary {
        /// The database file.
        path: PathBuf,
        /// The run.
        id: i64,
    },
}

/// One request, as a row of `load_density_records` (LoadDensity's column names).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordRow {
    /// `success` or `failure`.
    pub outcome: String,
    /// HTTP method.
    pub method: Option<String>,
    /// Request URL.
    pub test_url: Option<String>,
    /// Endpoint name.
    pub name: Option<String>,
    /// Status code as text (LoadDensity stores it as TEXT), `None` without a response.
    pub status_code: Option<String>,
    /// Response time, ms.
    pub response_time_ms: Option<f64>,
    /// Response body length, bytes.
    pub response_length: Option<i64>,
    /// Failure text.
    pub error: Option<String>,
}

/// One row of `load_density_runs`, as `LD_list_runs` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    /// The run id.
    pub id: i64,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// The label given to `LD_persist_records`.
    pub label: Option<String>,
    /// The metadata given, as JSON text.
    pub metadata_json: Option<String>,
}

/// A run to store: its description and result document.
#[derive(Debug, Clone, Default)]
pub struct NewRun<'a> {
    /// When it started (RFC 3339).
    pub started_at: &'a str,
    /// A label, e.g. `checkout-2026-04-28`.
    pub label: Option<&'a str>,
    /// Free metadata (branch, commit...), as JSON text.
    pub metadata_json: &'a str,
    /// The result document, as JSON text.
    pub summary_json: Option<&'a str>,
}

/// An open history database.
#[derive(Debug)]
pub struct RunHistory {
    connection: Connection,
    path: PathBuf,
}

impl RunHistory {
    /// Opens (or creates) the database and makes sure the schema is there.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, HistoryError> {
        let path = path.as_ref().to_path_buf();
        let connection = Connection::open(&path).map_err(|source| HistoryError::Sqlite {
            path: path.clone(),
            source,
        })?;
        let history = Self { connection, path };
        history.ensure_schema()?;
        Ok(history)
    }

    fn sqlite(&self, source: rusqlite::Error) -> HistoryError {
        HistoryError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn ensure_schema(&self) -> Result<(), HistoryError> {
        self.connection
            .busy_timeout(std::time::Duration::from_secs(10))
            .and_then(|()| self.connection.execute_batch(SCHEMA))
            .map_err(|e| self.sqlite(e))?;
        // A database created by Python LoadDensity lacks `summary_json`.
        let has_summary: bool = self
            .connection
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('load_density_runs') WHERE name = 'summary_json'",
                [],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(|e| self.sqlite(e))?;
        if !has_summary {
            self.connection
                .execute_batch("ALTER TABLE load_density_runs ADD COLUMN summary_json TEXT")
                .map_err(|e| self.sqlite(e))?;
        }
        Ok(())
    }

    /// Stores a run and its records in one transaction and returns the run id. A
    /// record that cannot be read rolls the whole run back.
    pub fn persist<E: std::fmt::Display>(
        &mut self,
        run: &NewRun<'_>,
        records: impl IntoIterator<Item = Result<RecordRow, E>>,
    ) -> Result<i64, HistoryError> {
        let path = self.path.clone();
        let sqlite = |source| HistoryError::Sqlite {
            path: path.clone(),
            source,
        };
        let transaction = self.connection.transaction().map_err(sqlite)?;
        transaction
            .execute(
                "INSERT INTO load_density_runs (started_at, label, metadata_json, summary_json) VALUES (?1, ?2, ?3, ?4)",
                params![run.started_at, run.label, run.metadata_json, run.summary_json],
            )
            .map_err(sqlite)?;
        let run_id = transaction.last_insert_rowid();
        {
            let mut insert = transaction
                .prepare(
                    "INSERT INTO load_density_records (run_id, outcome, method, test_url, name, status_code, response_time_ms, response_length, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(sqlite)?;
            for r in records {
                let r = r.map_err(|e| HistoryError::Records {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                insert
                    .execute(params![
                        run_id,
                        r.outcome,
                        r.method,
                        r.test_url,
                        r.name,
                        r.status_code,
                        r.response_time_ms,
                        r.response_length,
                        r.error
                    ])
                    .map_err(sqlite)?;
            }
        }
        transaction.commit().map_err(sqlite)?;
        Ok(run_id)
    }

    /// The latest `limit` runs, newest first (`LD_list_runs`).
    pub fn list_runs(&self, limit: u32) -> Result<Vec<RunRow>, HistoryError> {
        let mut statement = self
            .connection
            .prepare(
                "SELECT id, started_at, label, metadata_json FROM load_density_runs ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = statement
            .query_map([limit], |row| {
                Ok(RunRow {
                    id: row.get(0)?,
                    started_at: row.get(1)?,
                    label: row.get(2)?,
                    metadata_json: row.get(3)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(|e| self.sqlite(e));
        #[allow(clippy::let_and_return)] // the rows borrow `statement`, which must outlive them
        rows
    }

    /// Whether a run with this id exists.
    fn check_run(&self, run_id: i64) -> Result<(), HistoryError> {
        let found = self
            .connection
            .query_row(
                "SELECT 1 FROM load_density_runs WHERE id = ?1",
                [run_id],
                |_| Ok(()),
            )
            .optional()
            .map_err(|e| self.sqlite(e))?;
        found.ok_or_else(|| HistoryError::NoSuchRun {
            path: self.path.clone(),
            id: run_id,
        })
    }

    /// Every record of a run, in the order written (`LD_fetch_run_records`).
    pub fn fetch_run_records(&self, run_id: i64) -> Result<Vec<RecordRow>, HistoryError> {
        self.check_run(run_id)?;
        let mut statement = self
            .connection
            .prepare(
                "SELECT outcome, method, test_url, name, status_code, response_time_ms, response_length, error FROM load_density_records WHERE run_id = ?1 ORDER BY id",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = statement
            .query_map([run_id], |row| {
                Ok(RecordRow {
                    outcome: row.get(0)?,
                    method: row.get(1)?,
                    test_url: row.get(2)?,
                    name: row.get(3)?,
                    status_code: row.get(4)?,
                    response_time_ms: row.get(5)?,
                    response_length: row.get(6)?,
                    error: row.get(7)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(|e| self.sqlite(e));
        #[allow(clippy::let_and_return)] // the rows borrow `statement`, which must outlive them
        rows
    }

    /// The result document stored with a run, as JSON text.
    pub fn summary_json(&self, run_id: i64) -> Result<String, HistoryError> {
        self.check_run(run_id)?;
        let text: Option<String> = self
            .connection
            .query_row(
                "SELECT summary_json FROM load_density_runs WHERE id = ?1",
                [run_id],
                |row| row.get(0),
            )
            .map_err(|e| self.sqlite(e))?;
        text.filter(|t| !t.trim().is_empty())
            .ok_or_else(|| HistoryError::NoSummary {
                path: self.path.clone(),
                id: run_id,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: i64) -> RecordRow {
        RecordRow {
            outcome: if i % 2 == 0 { "success" } else { "failure" }.into(),
            method: Some("GET".into()),
            test_url: Some(format!("http://127.0.0.1/{i}")),
            name: Some("n".into()),
            status_code: Some("200".into()),
            response_time_ms: Some(i as f64 / 2.0),
            response_length: Some(i),
            error: (i % 2 == 1).then(|| "boom".into()),
        }
    }

    #[test]
    fn runs_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("runs.db");
        let mut history = RunHistory::open(&path).expect("open");
        let run = NewRun {
            started_at: "2026-11-26T07:00:00.000Z",
            label: Some("first"),
            metadata_json: r#"{"branch":"dev"}"#,
            summary_json: Some("{}"),
        };
        let first = history
            .persist(&run, (0..5).map(|i| Ok::<_, String>(record(i))))
            .expect("persist");
        let failed = history.persist(&run, [Ok(record(1)), Err("disk gone")]);
        assert!(matches!(failed, Err(HistoryError::Records { .. })));
        let second = history
            .persist(
                &NewRun {
                    label: None,
                    summary_json: None,
                    ..run
                },
                Vec::<Result<RecordRow, String>>::new(),
            )
            .expect("persist");
        assert_eq!((first, second), (1, 2));
        let runs = history.list_runs(DEFAULT_LIST_LIMIT).expect("list");
        assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(runs[1].label.as_deref(), Some("first"));
        assert_eq!(history.list_runs(1).expect("list").len(), 1);
        let records = history.fetch_run_records(first).expect("records");
        assert_eq!(records, (0..5).map(record).collect::<Vec<_>>());
        assert!(history.fetch_run_records(second).expect("none").is_empty());
        assert_eq!(history.summary_json(first).expect("summary"), "{}");
        assert!(matches!(
            history.summary_json(second),
            Err(HistoryError::NoSummary { id: 2, .. })
        ));
        let missing = history.fetch_run_records(9).expect_err("missing");
        assert!(
            missing.to_string().contains("no run with id 9"),
            "{missing}"
        );
    }

    #[test]
    fn a_loaddensity_database_gains_the_summary_column() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("python.db");
        let connection = Connection::open(&path).expect("open");
        connection
            .execute_batch(
                "CREATE TABLE load_density_runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, label TEXT, metadata_json TEXT);
                 INSERT INTO load_density_runs (started_at, label, metadata_json) VALUES ('2026-04-28T10:00:00+00:00', 'old', '{}');",
            )
            .expect("python schema");
        drop(connection);
        let history = RunHistory::open(&path).expect("open");
        assert_eq!(
            history.list_runs(5).expect("list")[0].label.as_deref(),
            Some("old")
        );
        assert!(matches!(
            history.summary_json(1),
            Err(HistoryError::NoSummary { .. })
        ));
    }

    #[test]
    fn a_file_that_is_not_a_database_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("text.db");
        std::fs::write(
            &path,
            "this is not sqlite, just text long enough to have a header",
        )
        .expect("write");
        let error = RunHistory::open(&path).expect_err("not a database");
        assert!(error.to_string().contains("text.db"), "{error}");
    }
}
