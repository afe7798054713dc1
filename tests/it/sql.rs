//! `sql_user` against real SQLite, PostgreSQL and MariaDB: LoadDensity's documented
//! steps (`execute` with `sql`, `params`, `expect_rows`), counts the server
//! confirms (a counter table: every step commits), server errors with their text,
//! timeouts that reconnect, refused connections without the password, and the
//! errors of bad fields.

use crate::common;

use common::mariadb::{MariaDb, PASSWORD};
use common::postgres::Postgres;
use common::summary::{
    assert_action_errors, bytes, count, error_request_types, errors_of, failures, run_script,
};
use common::{Workdir, closed_port};
use serde_json::{Value, json};

fn start_test(url: &str, users: u32, seconds: f64, tasks: Value) -> Value {
    json!(["LD_start_test", {
        "user_detail_dict": {"user": "sql_user"},
        "connection_string": url,
        "user_count": users, "spawn_rate": 100, "test_time": seconds,
        "wait_time": {"constant": 0.005}, "tasks": tasks
    }])
}

/// LoadDensity's steps, on a `hits` table that already exists.
fn steps(failing: &str) -> Value {
    json!([
        {"method": "execute", "name": "insert", "expect_rows": 1,
         "sql": "INSERT INTO hits(user_name, n) VALUES (:user, :n)",
         "params": {"user": "u-${randint(1, 3)}", "n": 7}},
        {"method": "execute", "name": "select one", "expect_rows": 1,
         "sql": "SELECT :n AS n"  , "params": {"n": 1}},
        {"sql": "SELECT n FROM hits WHERE n = :n LIMIT 1", "params": {"n": 7}, "name": "select"},
        {"sql": "SELECT 1", "expect_rows": 2, "name": "mismatch"},
        {"sql": failing, "name": "broken"},
    ])
}

/// Checks a run of [`steps`]: the counter table holds one row per `insert`.
fn check(summary: &Value, rows_in_table: u64, error_text: &str) {
    let inserts = count(summary, "insert");
    assert!(inserts > 10, "{summary}");
    for name in ["insert", "select one", "select"] {
        assert_eq!(
            failures(summary, name),
            0,
            "{name}: {:?}",
            errors_of(summary, name)
        );
    }
    assert_eq!(rows_in_table, inserts, "every step commits");
    // The response length is the row count (LoadDensity's).
    assert_eq!(bytes(summary, "insert"), inserts);
    assert_eq!(bytes(summary, "select one"), count(summary, "select one"));
    assert_eq!(failures(summary, "mismatch"), count(summary, "mismatch"));
    assert!(
        errors_of(summary, "mismatch")
            .iter()
            .any(|e| e.contains("expected 2 rows, got 1")),
        "{:?}",
        errors_of(summary, "mismatch")
    );
    assert_eq!(failures(summary, "broken"), count(summary, "broken"));
    assert!(count(summary, "broken") > 0);
    assert!(
        errors_of(summary, "broken")
            .iter()
            .any(|e| e.contains(error_text)),
        "{:?}",
        errors_of(summary, "broken")
    );
    let types = error_request_types(summary);
    assert!(types.iter().all(|t| *t == "SQL"), "{types:?}");
}

#[test]
fn sqlite_file_counts_match_and_errors_carry_the_text() {
    let work = Workdir::new();
    let path = work.path("shop.db");
    let db = rusqlite::Connection::open(&path).expect("open");
    db.execute_batch("CREATE TABLE hits(user_name TEXT, n INTEGER)")
        .expect("schema");
    let url = format!("sqlite:///{}", path.display());
    let summary = run_script(
        &work,
        "sql.json",
        json!([start_test(
            &url,
            3,
            1.0,
            steps("SELECT * FROM no_such_table")
        )]),
    );
    let rows: i64 = db
        .query_row("SELECT count(*) FROM hits", [], |r| r.get(0))
        .expect("count");
    check(&summary, rows as u64, "no such table: no_such_table");
}

#[test]
fn sqlite_in_memory_is_per_user_by_default() {
    let work = Workdir::new();
    let mut start = start_test(
        "unused",
        2,
        0.5,
        json!([
            {"sql": "CREATE TABLE IF NOT EXISTS t(x INTEGER)", "name": "create"},
            {"sql": "INSERT INTO t VALUES (1)", "name": "insert"},
            {"sql": "SELECT x FROM t", "name": "select"},
        ]),
    );
    start[1]
        .as_object_mut()
        .expect("object")
        .remove("connection_string");
    let summary = run_script(&work, "sql.json", json!([start]));
    assert!(count(&summary, "select") > 2, "{summary}");
    assert_eq!(
        failures(&summary, "create") + failures(&summary, "insert"),
        0
    );
    // `sqlite:///:memory:` (LoadDensity's default): each user's connection has its
    // own database, which lives as long as the connection: the table stays.
    assert_eq!(failures(&summary, "select"), 0);
    assert!(
        bytes(&summary, "select") > count(&summary, "select"),
        "{summary}"
    );
}

#[test]
fn postgres_counts_match_timeouts_reconnect_and_errors_carry_the_text() {
    let Some(pg) = Postgres::start() else { return };
    pg.psql("CREATE TABLE hits(user_name text, n int)");
    let work = Workdir::new();
    let url = pg.url("postgresql");
    let summary = run_script(
        &work,
        "sql.json",
        json!([
            start_test(&url, 4, 1.5, steps("SELECT nope FROM hits")),
            start_test(
                &url,
                1,
                1.0,
                json!([
                    {"sql": "SELECT pg_sleep(5)", "timeout": 0.2, "name": "slow"},
                    {"sql": "SELECT 1", "name": "after", "expect_rows": 1},
                ])
            ),
        ]),
    );
    let rows: u64 = pg.psql("SELECT count(*) FROM hits").parse().expect("count");
    check(&summary, rows, "column \"nope\" does not exist");
    assert_eq!(failures(&summary, "slow"), count(&summary, "slow"));
    assert!(count(&summary, "slow") > 0, "{summary}");
    assert!(
        errors_of(&summary, "slow")
            .iter()
            .all(|e| e.contains("timed out after 200ms"))
    );
    assert!(count(&summary, "after") > 0);
    assert_eq!(
        failures(&summary, "after"),
        0,
        "{:?}",
        errors_of(&summary, "after")
    );
    // Typed parameters: text sent for int, numeric, date and jsonb columns (the
    // server reads it as it reads a literal), null, and text it cannot read.
    pg.psql("CREATE TABLE typed(i int, d numeric, day date, j jsonb)");
    let summary = run_script(
        &work,
        "typed.json",
        json!([start_test(
            &url,
            1,
            0.3,
            json!([
                {"sql": "INSERT INTO typed VALUES (:i, :d, :day, :j)", "name": "typed", "expect_rows": 1,
                 "params": {"i": "${randint(1, 9)}", "d": 1.25, "day": "2024-02-29", "j": {"a": [1]}}},
                {"sql": "INSERT INTO typed VALUES (:i, :d, :day, :j)", "name": "null", "expect_rows": 1,
                 "params": {"i": 0, "d": null, "day": null, "j": null}},
                {"sql": "SELECT :a AS a", "name": "untyped", "expect_rows": 1, "params": {"a": "x"}},
                {"sql": "INSERT INTO typed(i) VALUES (:i)", "name": "bad", "params": {"i": "one"}},
            ])
        )]),
    );
    assert_eq!(
        failures(&summary, "typed"),
        0,
        "{:?}",
        errors_of(&summary, "typed")
    );
    for name in ["null", "untyped"] {
        assert!(count(&summary, name) > 0, "{summary}");
        assert_eq!(
            failures(&summary, name),
            0,
            "{:?}",
            errors_of(&summary, name)
        );
    }
    assert_eq!(failures(&summary, "bad"), count(&summary, "bad"));
    assert!(
        errors_of(&summary, "bad")
            .iter()
            .all(|e| e.contains("invalid input syntax for type integer: \"one\"")),
        "{:?}",
        errors_of(&summary, "bad")
    );
    assert_eq!(
        pg.psql("SELECT DISTINCT d || ' ' || day || ' ' || (j->'a'->>0) FROM typed WHERE i > 0"),
        "1.25 2024-02-29 1"
    );
    assert_eq!(
        pg.psql(
            "SELECT count(*) > 0 FROM typed WHERE i = 0 AND d IS NULL AND day IS NULL AND j IS NULL"
        ),
        "t"
    );
}

#[test]
fn mariadb_counts_match_and_refused_connections_hide_the_password() {
    let Some(db) = MariaDb::start() else { return };
    db.sql("CREATE TABLE hits(user_name varchar(20), n int)");
    let work = Workdir::new();
    let refused = format!("mysql://ld:{PASSWORD}@127.0.0.1:{}/shop", closed_port());
    let summary = run_script(
        &work,
        "sql.json",
        json!([
            start_test(
                &db.url("mysql+pymysql"),
                4,
                1.5,
                steps("SELECT nope FROM hits")
            ),
            start_test(
                &refused,
                1,
                0.3,
                json!([{"sql": "SELECT 1", "name": "refused"}])
            ),
        ]),
    );
    let rows: u64 = db.sql("SELECT count(*) FROM hits").parse().expect("count");
    check(&summary, rows, "Unknown column 'nope'");
    assert_eq!(failures(&summary, "refused"), count(&summary, "refused"));
    let errors = errors_of(&summary, "refused");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("connect mysql://ld@127.0.0.1")),
        "{errors:?}"
    );
    assert!(!summary.to_string().contains(PASSWORD));
}

#[test]
fn bad_fields_are_errors_naming_the_field() {
    let work = Workdir::new();
    let tasks = |task: Value| start_test("sqlite://", 1, 1.0, json!([task]));
    let mut bad_url = tasks(json!({"sql": "SELECT 1"}));
    bad_url[1]["connection_string"] = json!("mssql://sa:pw@h/db");
    assert_action_errors(
        &work,
        vec![
            tasks(json!({"method": "query", "sql": "SELECT 1"})),
            tasks(json!({"sql": "SELECT 1", "rows": 1})),
            tasks(json!({"method": "execute"})),
            tasks(json!({"sql": "SELECT :id"})),
            tasks(json!({"sql": "SELECT 1", "expect_rows": "one"})),
            bad_url,
        ],
        &[
            ("tasks[0].method", "`query` is not a sql_user method"),
            ("tasks[0].rows", "unknown field"),
            ("tasks[0].sql", "missing field"),
            ("tasks[0].params", "parameter `:id` has no value"),
            ("tasks[0].expect_rows", "expected a number of rows"),
            ("connection_string", "unsupported database `mssql`"),
        ],
    );
}
