//! `memcached_user` against a real `memcached` (Debian's): LoadDensity's steps
//! (`connect`, `set`, `get`, `delete`, `close`) with counts that the server's
//! `stats` confirm, LoadDensity's response lengths, `connection` defaults and
//! `host`, "not connected" and refused connections, and the errors of bad fields.

use crate::common;

use common::Workdir;
use common::memcached::Memcached;
use common::summary::{
    assert_action_errors, bytes, count, error_request_types, errors_of, failures, run_script,
};
use serde_json::{Value, json};

fn start_test(host: &str, connection: Value, users: u32, seconds: f64, tasks: Value) -> Value {
    json!(["LD_start_test", {
        "user_detail_dict": {"user": "memcached_user"},
        "host": host, "connection": connection,
        "user_count": users, "spawn_rate": 100, "test_time": seconds,
        "wait_time": {"constant": 0.002}, "tasks": tasks
    }])
}

#[test]
fn counts_match_the_servers_stats() {
    let Some(server) = Memcached::start() else {
        return;
    };
    let before = server.stats();
    let work = Workdir::new();
    let summary = run_script(
        &work,
        "memcached.json",
        json!([start_test(
            "127.0.0.1",
            json!({"port": server.port()}),
            3,
            1.0,
            json!([
                {"method": "connect"},
                {"method": "set", "key": "user:${randint(1, 5)}", "value": "hello"},
                {"method": "get", "key": "user:1", "name": "get"},
                {"method": "get", "key": "never-set", "name": "miss"},
                {"method": "delete", "key": "user:${randint(1, 5)}"},
                {"method": "close"},
            ]),
        )]),
    );
    let after = server.stats();
    let delta = |stat: &str| after[stat] - before[stat];
    let sets = count(&summary, "set");
    assert!(sets > 10, "{summary}");
    for name in ["connect", "set", "get", "miss", "delete", "close"] {
        assert_eq!(
            failures(&summary, name),
            0,
            "{name}: {:?}",
            errors_of(&summary, name)
        );
    }
    assert_eq!(delta("cmd_set"), sets);
    assert_eq!(
        delta("cmd_get"),
        count(&summary, "get") + count(&summary, "miss")
    );
    assert!(delta("get_misses") >= count(&summary, "miss"));
    assert_eq!(
        delta("delete_hits") + delta("delete_misses"),
        count(&summary, "delete")
    );
    // One connection per connect step (and one for the second `stats`).
    assert_eq!(delta("total_connections"), count(&summary, "connect") + 1);
    // LoadDensity's lengths: the value set, the value read (0 for a miss).
    assert_eq!(bytes(&summary, "set"), 5 * sets);
    assert_eq!(bytes(&summary, "miss"), 0);
    assert_eq!(bytes(&summary, "get") % 5, 0);
}

#[test]
fn not_connected_and_refused_are_failures() {
    let Some(server) = Memcached::start() else {
        return;
    };
    let work = Workdir::new();
    let closed = common::closed_port();
    let summary = run_script(
        &work,
        "memcached.json",
        json!([
            start_test(
                "127.0.0.1",
                json!({"port": server.port()}),
                1,
                0.3,
                json!([
                    {"method": "get", "key": "k", "name": "early"},
                    {"method": "connect"},
                    {"method": "get", "key": "k", "name": "connected"},
                    {"method": "close"},
                    {"method": "get", "key": "k", "name": "closed"},
                ])
            ),
            start_test(
                &format!("127.0.0.1:{closed}"),
                json!({}),
                1,
                0.3,
                json!([
                    {"method": "connect", "name": "refused"},
                ])
            ),
        ]),
    );
    for name in ["early", "closed"] {
        assert!(count(&summary, name) > 0, "{summary}");
        assert_eq!(failures(&summary, name), count(&summary, name));
        assert!(
            errors_of(&summary, name)
                .iter()
                .all(|e| e.contains("memcached not connected"))
        );
    }
    assert_eq!(failures(&summary, "connected"), 0);
    assert_eq!(failures(&summary, "refused"), count(&summary, "refused"));
    assert!(
        errors_of(&summary, "refused")
            .iter()
            .any(|e| e.contains(&format!("connect 127.0.0.1:{closed}")) && e.contains("refused")),
        "{:?}",
        errors_of(&summary, "refused")
    );
    let types = error_request_types(&summary);
    assert!(types.iter().all(|t| *t == "MEMCACHED"), "{types:?}");
}

#[test]
fn bad_fields_are_errors_naming_the_field() {
    let work = Workdir::new();
    let tasks =
        |connection: Value, task: Value| start_test("127.0.0.1", connection, 1, 1.0, json!([task]));
    assert_action_errors(
        &work,
        vec![
            tasks(json!({}), json!({"method": "incr", "key": "k"})),
            tasks(json!({}), json!({"method": "set", "value": "v"})),
            tasks(
                json!({}),
                json!({"method": "get", "key": "k", "expect": "v"}),
            ),
            tasks(json!({"bogus": 1}), json!({"method": "connect"})),
            tasks(json!({}), json!({"method": "connect", "port": 70000})),
        ],
        &[
            ("tasks[0].method", "unknown method `incr`"),
            ("tasks[0].key", "missing field"),
            ("tasks[0].expect", "unknown field"),
            ("connection.bogus", "unknown field"),
            ("tasks[0].port", "expected a port"),
        ],
    );
}
