//! LoadDensity's persistence commands: `LD_persist_records` (store the recorded
//! requests and the result document as one run in SQLite, return its id),
//! `LD_list_runs` and `LD_fetch_run_records`. See [`crate::history`].

use std::path::PathBuf;
use std::time::SystemTime;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::args::{CheckArgs, typed};
use super::{ActionError, Executor};
use crate::history::{DEFAULT_LIST_LIMIT, NewRun, RecordRow, RunHistory};
use crate::stats::document::rfc3339_millis;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersistArgs {
    database_path: PathBuf,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}
impl CheckArgs for PersistArgs {
    fn check(&self) -> Result<(), ActionError> {
        check_path(&self.database_path)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    database_path: PathBuf,
    #[serde(default = "default_limit")]
    limit: u32,
}
impl CheckArgs for ListArgs {
    fn check(&self) -> Result<(), ActionError> {
        check_path(&self.database_path)
    }
}

fn default_limit() -> u32 {
    DEFAULT_LIST_LIMIT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FetchArgs {
    database_path: PathBuf,
    run_id: i64,
}
impl CheckArgs for FetchArgs {
    fn check(&self) -> Result<(), ActionError> {
        check_path(&self.database_path)
    }
}

fn check_path(path: &std::path::Path) -> Result<(), ActionError> {
    if path.as_os_str().is_empty() {
        return Err(ActionError::argument(
            "database_path",
            "expected the path of an SQLite file",
        ));
    }
    Ok(())
}

fn open(path: &std::path::Path) -> Result<RunHistory, ActionError> {
    RunHistory::open(path).map_err(|e| ActionError::Failed(e.to_string()))
}

/// The recorded requests as `load_density_records` rows.
///
/// The request log's records as `load_density_records` rows (none when the log is
/// off); a record that cannot be read back fails the whole run's insert.
fn record_rows(
    executor: &Executor,
) -> Result<Box<dyn Iterator<Item = std::io::Result<RecordRow>>>, ActionError> {
    let Some(log) = executor.request_log() else {
        return Ok(Box::new(std::iter::empty()));
    };
    let reader = log
        .records()
        .map_err(|e| ActionError::Failed(e.to_string()))?;
    Ok(Box::new(reader.map(|record| record.map(record_row))))
}

fn record_row(record: crate::request_log::RequestRecord) -> RecordRow {
    RecordRow {
        outcome: if record.error.is_none() {
            "success"
        } else {
            "failure"
        }
        .into(),
        method: Some(record.request_type.to_string()),
        test_url: Some(record.url),
        name: Some(record.name.to_string()),
        status_code: record.status.map(|s| s.to_string()),
        response_time_ms: Some(record.response_time.as_secs_f64() * 1000.0),
        response_length: Some(i64::try_from(record.response_length).unwrap_or(i64::MAX)),
        error: record.error,
    }
}

fn persist(executor: &mut Executor, args: PersistArgs) -> Result<Value, ActionError> {
    let summary = executor.summary();
    let started_at = summary
        .run
        .started_at
        .clone()
        .unwrap_or_else(|| rfc3339_millis(SystemTime::now()));
    let summary_json =
        serde_json::to_string(&summary).map_err(|e| ActionError::Failed(e.to_string()))?;
    let metadata_json = serde_json::to_string(&args.metadata.unwrap_or_default())
        .map_err(|e| ActionError::Failed(e.to_string()))?;
    let rows = record_rows(executor)?;
    let mut history = open(&args.database_path)?;
    let id = history
        .persist(
            &NewRun {
                started_at: &started_at,
                label: args.label.as_deref(),
                metadata_json: &metadata_json,
                summary_json: Some(&summary_json),
            },
            rows,
        )
        .map_err(|e| ActionError::Failed(e.to_string()))?;
    Ok(json!(id))
}

pub(super) fn register_history_commands(executor: &mut Executor) {
    executor.add_command(
        "LD_persist_records",
        typed(&["database_path", "label", "metadata"], persist),
    );
    executor.add_command(
        "LD_list_runs",
        typed(&["database_path", "limit"], |_, args: ListArgs| {
            let runs = open(&args.database_path)?
                .list_runs(args.limit)
                .map_err(|e| ActionError::Failed(e.to_string()))?;
            serde_json::to_value(runs).map_err(|e| ActionError::Failed(e.to_string()))
        }),
    );
    executor.add_command(
        "LD_fetch_run_records",
        typed(&["database_path", "run_id"], |_, args: FetchArgs| {
            let records = open(&args.database_path)?
                .fetch_run_records(args.run_id)
                .map_err(|e| ActionError::Failed(e.to_string()))?;
            serde_json::to_value(records).map_err(|e| ActionError::Failed(e.to_string()))
        }),
    );
}
