//! `etcd_user` against a real `etcd` (Debian's `etcd-server`): LoadDensity's steps
//! (`connect`, `put`, `get`, `delete`, `close`) with counts that the store's
//! revision confirms, LoadDensity's response lengths, `host` as the default
//! target, "not connected" and refused connections, and the errors of bad fields.

use crate::common;

use common::Workdir;
use common::etcd::Etcd;
use common::summary::{
    assert_action_errors, bytes, count, error_request_types, errors_of, failures, run_script,
};
use serde_json::{Value, json};

fn start_test(host: &str, users: u32, seconds: f64, tasks: Value) -> Value {
    json!(["LD_start_test", {
        "user_detail_dict": {"user": "etcd_user"},
        "host": host,
        "user_count": users, "spawn_rate": 100, "test_time": seconds,
        "wait_time": {"constant": 0.002}, "tasks": tasks
    }])
}

#[test]
fn revisions_match_the_puts_and_deletes() {
    let Some(server) = Etcd::start() else { return };
    let before = server.revision().expect("revision");
    let work = Workdir::new();
    let host = format!("127.0.0.1:{}", server.port());
    let summary = run_script(
        &work,
        "etcd.json",
        json!([
            // One user: every delete finds the key its put wrote.
            start_test(
                &host,
                1,
                1.0,
                json!([
                    {"method": "connect"},
                    {"method": "put", "key": "k", "value": "hello"},
                    {"method": "get", "key": "k"},
                    {"method": "delete", "key": "k"},
                    {"method": "get", "key": "k", "name": "absent"},
                    {"method": "close"},
                ])
            ),
            start_test(
                &format!("http://{host}"),
                3,
                1.0,
                json!([
                    {"method": "connect"},
                    {"method": "put", "key": "shared-${randint(1, 3)}", "value": "v-${randint(10, 99)}", "name": "put many"},
                ])
            ),
        ]),
    );
    let after = server.revision().expect("revision");
    let puts = count(&summary, "put");
    assert!(puts > 10, "{summary}");
    for name in [
        "connect", "put", "get", "delete", "absent", "close", "put many",
    ] {
        assert_eq!(
            failures(&summary, name),
            0,
            "{name}: {:?}",
            errors_of(&summary, name)
        );
    }
    assert_eq!(
        (after - before) as u64,
        puts + count(&summary, "delete") + count(&summary, "put many")
    );
    assert_eq!(bytes(&summary, "put"), 5 * puts);
    assert_eq!(bytes(&summary, "get"), 5 * count(&summary, "get"));
    assert_eq!(bytes(&summary, "absent"), 0);
    assert_eq!(bytes(&summary, "put many"), 4 * count(&summary, "put many"));
    assert!(server.get("shared-1").is_some_and(|v| v.starts_with("v-")));
}

#[test]
fn not_connected_and_refused_are_failures() {
    let Some(server) = Etcd::start() else { return };
    let work = Workdir::new();
    let closed = common::closed_port();
    let summary = run_script(
        &work,
        "etcd.json",
        json!([
            start_test(
                &format!("127.0.0.1:{}", server.port()),
                1,
                0.3,
                json!([
                    {"method": "put", "key": "k", "value": "v", "name": "early"},
                    {"method": "connect"},
                    {"method": "close"},
                    {"method": "get", "key": "k", "name": "closed"},
                ])
            ),
            start_test(
                "127.0.0.1",
                1,
                0.3,
                json!([
                    {"method": "connect", "port": closed, "name": "refused", "timeout": 1},
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
                .all(|e| e.contains("etcd not connected"))
        );
    }
    assert_eq!(failures(&summary, "refused"), count(&summary, "refused"));
    assert!(
        errors_of(&summary, "refused")
            .iter()
            .any(|e| e.contains(&format!("connect 127.0.0.1:{closed}"))),
        "{:?}",
        errors_of(&summary, "refused")
    );
    assert_eq!(server.get("k"), None);
    let types = error_request_types(&summary);
    assert!(types.iter().all(|t| *t == "ETCD"), "{types:?}");
}

#[test]
fn bad_fields_are_errors_naming_the_field() {
    let work = Workdir::new();
    let tasks = |task: Value| start_test("127.0.0.1", 1, 1.0, json!([task]));
    assert_action_errors(
        &work,
        vec![
            tasks(json!({"method": "set", "key": "k"})),
            tasks(json!({"method": "delete"})),
            tasks(json!({"method": "put", "key": "k", "lease": 5})),
        ],
        &[
            ("tasks[0].method", "unknown method `set`"),
            ("tasks[0].key", "missing field"),
            ("tasks[0].lease", "unknown field"),
        ],
    );
}
