//! Run history and comparison with real runs: two runs against the built-in target
//! (a fast endpoint, then the same name on a slow one) are stored by
//! `LD_persist_records` in SQLite, read back with SQL, and compared with
//! `loaddensity compare`, from the files and from the database.

use crate::common;

use std::path::Path;

use common::{Target, Workdir, read_json, run, stderr, stdout};
use rusqlite::Connection;
use serde_json::{Value, json};

/// Runs a 2-second test of `api` (at `api_path`) and `broken` (always 500), stores
/// it in `db` with `label`, and returns the result document.
fn run_and_persist(target: &Target, work: &Workdir, api_path: &str, label: &str) -> Value {
    let db = work.path("runs.db");
    let script = work.write(
        &format!("{label}.json"),
        &json!({"load_density": [
            ["LD_start_test", {"user_count": 2, "spawn_rate": 100, "test_time": 2,
                "wait_time": {"constant": 0.01},
                "tasks": [
                    {"method": "get", "request_url": target.url(api_path), "name": "api"},
                    {"method": "get", "request_url": target.url("/status/500"), "name": "broken"}
                ]}],
            ["LD_persist_records", {"database_path": db, "label": label,
                "metadata": {"branch": "dev", "commit": "abc1234"}}],
            ["LD_list_runs", {"database_path": db, "limit": 5}]
        ]})
        .to_string(),
    );
    let result = work.path(&format!("{label}-result.json"));
    let output = run(
        &[
            "-q",
            "run",
            script.to_str().expect("utf8"),
            "--summary-json",
            result.to_str().expect("utf8"),
        ],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    read_json(&result)
}

fn compare(args: &[&str]) -> std::process::Output {
    let mut all = vec!["compare"];
    all.extend_from_slice(args);
    run(&all, None)
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf8")
}

#[test]
fn runs_are_stored_read_back_and_compared() {
    let target = Target::start();
    let work = Workdir::new();
    let fast = run_and_persist(&target, &work, "/delay/0", "fast");
    let slow = run_and_persist(&target, &work, "/delay/25", "slow");
    let db = work.path("runs.db");

    // LoadDensity's schema, the summary column and the indexes, read with SQL.
    let connection = Connection::open(&db).expect("open db");
    let columns = |table: &str| -> Vec<String> {
        let mut statement = connection
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .expect("pragma");
        statement
            .query_map([], |row| row.get(0))
            .expect("columns")
            .collect::<Result<_, _>>()
            .expect("names")
    };
    assert_eq!(
        columns("load_density_runs"),
        ["id", "started_at", "label", "metadata_json", "summary_json"]
    );
    assert_eq!(
        columns("load_density_records"),
        [
            "id",
            "run_id",
            "outcome",
            "method",
            "test_url",
            "name",
            "status_code",
            "response_time_ms",
            "response_length",
            "error"
        ]
    );
    let indexes: Vec<String> = connection
        .prepare("SELECT sql FROM sqlite_master WHERE type = 'index' ORDER BY name")
        .expect("indexes")
        .query_map([], |row| row.get(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("sql");
    assert!(indexes.iter().any(|i| i.contains("(name)")), "{indexes:?}");
    assert!(
        indexes.iter().any(|i| i.contains("(run_id)")),
        "{indexes:?}"
    );
    let runs: Vec<(i64, String, String, String)> = connection
        .prepare("SELECT id, label, metadata_json, summary_json FROM load_density_runs ORDER BY id")
        .expect("runs")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("values");
    assert_eq!(runs.len(), 2);
    assert_eq!((runs[0].0, runs[0].1.as_str()), (1, "fast"));
    assert_eq!(runs[1].1, "slow");
    let metadata: Value = serde_json::from_str(&runs[0].2).expect("metadata json");
    assert_eq!(metadata, json!({"branch": "dev", "commit": "abc1234"}));
    // The stored document is the run's: same counts as its --summary-json.
    for ((_, _, _, stored), file) in runs.iter().zip([&fast, &slow]) {
        let stored: Value = serde_json::from_str(stored).expect("summary json");
        assert_eq!(stored["totals"]["requests"], file["totals"]["requests"]);
        assert_eq!(
            stored["per_name"]["api"]["count"],
            file["per_name"]["api"]["count"]
        );
        assert!(stored["histograms"]["per_name"]["api"].is_string());
    }

    // A regression from the files: p95 of `api` grew from ~0 ms to ~25 ms.
    let (base, new) = (work.path("fast-result.json"), work.path("slow-result.json"));
    let output = compare(&[s(&base), s(&new), "--fail-if", "p95>+10%"]);
    assert_eq!(output.status.code(), Some(99), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("FAIL p95>+10%: api: p95"), "{text}");
    assert!(text.contains("failure_rate"), "{text}");
    // The same from the database, by run id.
    let output = compare(&["--db", s(&db), "1", "2", "--fail-if", "api:p95>+10%"]);
    assert_eq!(output.status.code(), Some(99), "{}", stderr(&output));
    assert!(stdout(&output).contains("FAIL api:p95>+10%: api"));
    // No regression: a run against itself, and limits that are not passed.
    let output = compare(&[
        s(&base),
        s(&base),
        "--fail-if",
        "p95>+10%",
        "--fail-if",
        "api:failure_rate>0.01",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).contains("PASS: no limit passed"));
    // Absolute value: `broken` always fails.
    let output = compare(&[s(&base), s(&new), "--fail-if", "failure_rate>0.9"]);
    assert_eq!(output.status.code(), Some(99));
    assert!(stdout(&output).contains("FAIL failure_rate>0.9: broken"));
    // Bad input: a clear error, exit 1 (not 99).
    let output = compare(&["--db", s(&db), "1", "7"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no run with id 7"),
        "{}",
        stderr(&output)
    );
    let output = compare(&[s(&base), s(&new), "--fail-if", "p42>1"]);
    assert_eq!(output.status.code(), Some(2), "clap rejects the limit");
    assert!(
        stderr(&output).contains("unknown metric `p42`"),
        "{}",
        stderr(&output)
    );

    // The HTML report of a stored run.
    let html = work.path("from-db.html");
    let output = run(
        &["report", "--db", s(&db), "--run", "2", "--html", s(&html)],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let page = std::fs::read_to_string(&html).expect("html");
    assert!(page.contains("data-chart=\"latency\"") && page.contains("slow.json"));
}

#[test]
fn list_and_fetch_from_a_script() {
    let work = Workdir::new();
    let db = work.path("h.db");
    let mut executor = common::executor();
    let records = executor.execute_document(
        &json!({"load_density": [
            ["LD_persist_records", {"database_path": db, "label": "empty"}],
            ["LD_persist_records", [db, "second"]],
            ["LD_list_runs", {"database_path": db}],
            ["LD_fetch_run_records", {"database_path": db, "run_id": 1}],
            ["LD_fetch_run_records", {"database_path": db, "run_id": 99}],
            ["LD_list_runs", {"database_path": db, "limit": "x"}]
        ]}),
        "<test>",
    );
    assert_eq!(common::ok(&records[0]), &json!(1));
    assert_eq!(common::ok(&records[1]), &json!(2));
    let runs = common::ok(&records[2]).as_array().expect("list").clone();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["id"], 2, "newest first");
    assert_eq!(runs[0]["label"], "second");
    assert_eq!(runs[1]["metadata_json"], "{}");
    assert_eq!(common::ok(&records[3]), &json!([]));
    let missing = common::error(&records[4]).to_string();
    assert!(missing.contains("no run with id 99"), "{missing}");
    let bad = common::error(&records[5]).to_string();
    assert!(bad.starts_with("field `limit`"), "{bad}");
}
