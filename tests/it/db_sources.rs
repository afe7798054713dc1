//! `${db.SOURCE.COLUMN}` placeholder sources (`LD_register_db_source(s)`,
//! `db_sources`) against a real SQLite file, PostgreSQL and MariaDB started by the
//! tests: rows read once and handed out like CSV rows (exactly once each without
//! `cycle`, split across execution segments), and every bad URL, failing query or
//! unknown column refused before the script starts, with no password printed.

use crate::common;

use common::mariadb::{MariaDb, PASSWORD};
use common::postgres::Postgres;
use common::summary::{assert_action_errors, count, errors_of, failures, run_script};
use common::{Workdir, closed_port};
use loaddensity::Segment;
use serde_json::{Value, json};

/// An SQLite file with a `users` table of `n` rows (`id` 0.., `name` user-ID) and
/// an empty `seen` table.
fn sqlite_users(work: &Workdir, n: u32) -> String {
    let path = work.path("users.db");
    let db = rusqlite::Connection::open(&path).expect("open");
    db.execute_batch(
        "CREATE TABLE users(id INTEGER, name TEXT, active BOOLEAN); CREATE TABLE seen(id INTEGER, name TEXT, active TEXT);",
    )
    .expect("schema");
    for i in 0..n {
        db.execute(
            "INSERT INTO users VALUES (?1, ?2, ?3)",
            rusqlite::params![i, format!("user-{i}"), i % 2 == 0],
        )
        .expect("insert");
    }
    format!("sqlite:///{}", path.display())
}

/// A `sql_user` test copying each row of DB source `users` into `seen`.
fn copy_rows(url: &str, users: u32) -> Value {
    json!(["LD_start_test", {
        "user_detail_dict": {"user": "sql_user"},
        "connection_string": url,
        "user_count": users, "spawn_rate": 100, "test_time": 20,
        "wait_time": {"constant": 0},
        "tasks": [{"method": "execute", "name": "copy",
                   "sql": "INSERT INTO seen VALUES (:id, :name, :active)",
                   "params": {"id": "${db.users.id}", "name": "${db.users.name}",
                              "active": "${db.users.active}"},
                   "expect_rows": 1}]
    }])
}

fn sqlite_seen(url: &str) -> Vec<(i64, String)> {
    let path = url.trim_start_matches("sqlite:///");
    let db = rusqlite::Connection::open(path).expect("open");
    let mut statement = db
        .prepare("SELECT id, name FROM seen ORDER BY id")
        .expect("prepare");
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn sqlite_rows_are_used_once_each_without_cycle() {
    let work = Workdir::new();
    let url = sqlite_users(&work, 25);
    let summary = run_script(
        &work,
        "db.json",
        json!([
            ["LD_register_db_source", {"name": "users", "connection_string": url,
              "query": "SELECT id, name, active FROM users ORDER BY id", "cycle": false}],
            copy_rows(&url, 3),
        ]),
    );
    assert_eq!(count(&summary, "copy"), 25, "{summary}");
    assert_eq!(
        failures(&summary, "copy"),
        0,
        "{:?}",
        errors_of(&summary, "copy")
    );
    let seen = sqlite_seen(&url);
    let expected: Vec<(i64, String)> = (0..25).map(|i| (i, format!("user-{i}"))).collect();
    assert_eq!(seen, expected);
}

#[test]
fn a_segment_reads_its_own_rows_of_a_db_source() {
    let work = Workdir::new();
    let url = sqlite_users(&work, 10);
    let mut executor = common::executor();
    executor.set_segment(Segment::new(1, 3));
    let mut start = copy_rows(&url, 2);
    start[1]["db_sources"] = json!([{"name": "users", "connection_string": url,
        "query": "SELECT id, name, active FROM users ORDER BY id", "cycle": false}]);
    let records = executor.execute_document(&json!([start]), "<test>");
    let result = common::ok(&records[0]);
    assert_eq!(result["requests"], 3, "{result}");
    let ids: Vec<i64> = sqlite_seen(&url).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, [1, 4, 7]);
}

#[test]
fn bad_sources_are_refused_before_the_script_starts() {
    let work = Workdir::new();
    let url = sqlite_users(&work, 3);
    let refused = format!(
        "postgresql://ld:{PASSWORD}@127.0.0.1:{}/postgres",
        closed_port()
    );
    let source = |url: &str, query: &str| json!(["LD_register_db_source", {"name": "users", "connection_string": url, "query": query}]);
    let stderr = assert_action_errors(
        &work,
        vec![
            source("oracle://scott:tiger@h/db", "SELECT 1"),
            source(&refused, "SELECT 1"),
            source(&url, "SELECT nope FROM users"),
            source("sqlite:////nonexistent/dir/users.db", "SELECT 1"),
        ],
        &[
            ("connection_string", "unsupported database `oracle`"),
            ("connection_string", "connect postgresql://ld@127.0.0.1"),
            ("query", "no such column: nope"),
            ("connection_string", "/nonexistent/dir/users.db"),
        ],
    );
    assert!(
        !stderr.contains(PASSWORD) && !stderr.contains("tiger"),
        "{stderr}"
    );
    // A placeholder naming a column the query lacks.
    let file = work.write(
        "column.json",
        &common::summary::script(json!([
            source(&url, "SELECT id FROM users"),
            ["LD_start_test", {"user_detail_dict": {"user": "sql_user"},
                "connection_string": url, "test_time": 1,
                "tasks": [{"sql": "SELECT :v", "params": {"v": "${db.users.email}"}}]}],
        ])),
    );
    let output = common::run(&["run", file.to_str().expect("utf8")], None);
    assert_eq!(output.status.code(), Some(1));
    let text = common::stderr(&output);
    assert!(
        text.contains("tasks[0].params.v")
            && text.contains("has no column `email`; its columns: id"),
        "{text}"
    );
}

#[test]
fn postgres_rows_cycle_and_feed_every_request() {
    let Some(pg) = Postgres::start() else { return };
    pg.psql(
        "CREATE TABLE users(id int, name text, active bool); \
         INSERT INTO users SELECT i, 'user-' || i, i % 2 = 0 FROM generate_series(0, 4) i; \
         CREATE TABLE seen(id int, name text, active text)",
    );
    let work = Workdir::new();
    let url = pg.url("postgresql+psycopg2");
    let mut start = copy_rows(&url, 2);
    start[1]["test_time"] = json!(1.5);
    start[1]["wait_time"] = json!({"constant": 0.01});
    let summary = run_script(
        &work,
        "db.json",
        json!([
            ["LD_register_db_sources", {"sources": [{"name": "users", "connection_string": url,
              "query": "SELECT id, name, active FROM users ORDER BY id"}]}],
            start,
        ]),
    );
    let copies = count(&summary, "copy");
    assert!(copies > 10, "{summary}");
    assert_eq!(
        failures(&summary, "copy"),
        0,
        "{:?}",
        errors_of(&summary, "copy")
    );
    // Every step committed: the server holds one row per request.
    assert_eq!(pg.psql("SELECT count(*) FROM seen"), copies.to_string());
    // Rows cycled in order, so ids 0..4 are each used copies/5 times, give or take one.
    let per_id =
        pg.psql("SELECT min(c) || ' ' || max(c) FROM (SELECT count(*) c FROM seen GROUP BY id) t");
    let (low, high) = per_id.split_once(' ').expect("two counts");
    let (low, high): (u64, u64) = (low.parse().expect("n"), high.parse().expect("n"));
    assert!(
        high - low <= 1 && low + high >= 2 * (copies / 5) - 1,
        "{per_id} of {copies}"
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM seen WHERE name <> 'user-' || id OR active <> (CASE WHEN id % 2 = 0 THEN 'true' ELSE 'false' END)"),
        "0"
    );
}

#[test]
fn mariadb_rows_feed_requests_and_the_password_stays_hidden() {
    let Some(db) = MariaDb::start() else { return };
    db.sql(
        "CREATE TABLE users(id int, name varchar(20), active bool); \
         INSERT INTO users VALUES (0, 'user-0', true), (1, 'user-1', false), (2, 'user-2', true); \
         CREATE TABLE seen(id int, name varchar(20), active varchar(10))",
    );
    let work = Workdir::new();
    let url = format!("{}?charset=utf8mb4", db.url("mysql+pymysql"));
    let mut start = copy_rows(&url, 2);
    start[1]["db_sources"] = json!([{"name": "users", "connection_string": url,
        "query": "SELECT id, name, active FROM users ORDER BY id", "cycle": false}]);
    let summary = run_script(&work, "db.json", json!([start]));
    assert_eq!(count(&summary, "copy"), 3, "{summary}");
    assert_eq!(
        failures(&summary, "copy"),
        0,
        "{:?}",
        errors_of(&summary, "copy")
    );
    assert_eq!(
        db.sql("SELECT id, name, active FROM seen ORDER BY id"),
        "0\tuser-0\t1\n1\tuser-1\t0\n2\tuser-2\t1"
    );
    let stderr = assert_action_errors(
        &work,
        vec![
            json!(["LD_register_db_source", {"name": "u", "connection_string": url,
            "query": "SELECT * FROM no_such_table"}]),
        ],
        &[("query", "ERROR 1146")],
    );
    assert!(stderr.contains("mysql+pymysql://ld@127.0.0.1"), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
}

#[test]
fn lint_reaches_db_sources_and_flags_the_unreachable_ones_by_kind() {
    let work = Workdir::new();
    let url = sqlite_users(&work, 3);
    let down = format!(
        "postgresql://load:secret-pw@127.0.0.1:{}/shop",
        closed_port()
    );
    let document = json!([
        ["LD_register_db_source", {"name": "users", "connection_string": url,
                                    "query": "SELECT id, name FROM users"}],
        ["LD_register_db_source", {"name": "down", "connection_string": down,
                                    "query": "SELECT 1 AS x"}],
        ["LD_start_test", {
            "host": "http://127.0.0.1:1", "user_count": 1, "test_time": 1,
            "db_sources": [{"name": "more", "connection_string": url,
                            "query": "SELECT name AS nick FROM users"}],
            "tasks": [
                {"method": "get", "url": "/a/${db.users.name}/${db.more.nick}"},
                {"method": "get", "url": "/b/${db.users.email}"},
                {"method": "get", "url": "/c/${db.orders.id}"},
                {"method": "get", "url": "/d/${db.down.x}"},
                {"method": "get", "url": "/e", "headers": {"X-Nick": "${db.more.name}"}},
                // A malformed placeholder whose message reads like a source problem:
                // the rule comes from the error's kind, not its text.
                {"method": "get", "url": "/f/${faker.is not registered}"}
            ]}]
    ]);
    let findings = common::executor().lint_document(&document, None);
    let rule_at = |location: &str| -> Vec<&str> {
        findings
            .iter()
            .filter(|f| f.location == location)
            .map(|f| f.rule.as_str())
            .collect()
    };
    for location in [
        "actions[1].connection_string",
        "actions[2].tasks[1].url",
        "actions[2].tasks[2].url",
        "actions[2].tasks[3].url",
        "actions[2].tasks[4].headers.X-Nick",
    ] {
        assert_eq!(
            rule_at(location),
            ["unreachable-source"],
            "{location}: {findings:#?}"
        );
    }
    let malformed = rule_at("actions[2].tasks[5].url");
    assert!(
        !malformed.is_empty() && !malformed.contains(&"unreachable-source"),
        "{findings:#?}"
    );
    // The sources registered before, and the test's own, are reachable.
    assert!(
        findings
            .iter()
            .all(|f| !f.location.starts_with("actions[0]")
                && !f.location.starts_with("actions[2].tasks[0]")
                && !f.location.starts_with("actions[2].db_sources")),
        "{findings:#?}"
    );
    assert!(
        findings.iter().all(|f| !f.message.contains("secret-pw")),
        "{findings:#?}"
    );
}
