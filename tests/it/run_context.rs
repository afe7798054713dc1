//! A run owns its state (issue #23): two executors in one process, running at the same
//! time, keep their own statistics, variables, request logs and sinks.

use crate::common;

use common::{Target, executor, http_get_text, ok};
use loaddensity::Executor;
use serde_json::{Value, json};

/// One test on `executor`: `requests` GETs of `/json` named `name`, each rendering the
/// registered variable `who` into a header so that an unregistered one fails.
fn run_named(executor: &mut Executor, target: &Target, name: &str, who: &str) -> Vec<Value> {
    let records = executor.execute_document(
        &json!([
            ["LD_register_variable", {"name": "who", "value": who}],
            ["LD_start_prometheus_exporter", {"port": 0}],
            ["LD_start_test", {
                "user_detail_dict": {"user": "fast_http_user"},
                "user_count": 2, "spawn_rate": 100, "test_time": 1.5,
                "wait_time": {"constant": 0.002},
                "max_records": 100000,
                "tasks": [{"method": "get", "request_url": target.url("/json"), "name": name,
                           "headers": {"x-who": "${who}"}}]
            }],
        ]),
        name,
    );
    records.iter().map(|r| ok(r).clone()).collect()
}

#[test]
fn two_executors_running_side_by_side_share_nothing() {
    let target = Target::start();
    let (a, b) = std::thread::scope(|scope| {
        let one = scope.spawn(|| {
            let mut executor = executor();
            let results = run_named(&mut executor, &target, "from-a", "alice");
            (executor, results)
        });
        let two = scope.spawn(|| {
            let mut executor = executor();
            let results = run_named(&mut executor, &target, "from-b", "bob");
            (executor, results)
        });
        (one.join().expect("a"), two.join().expect("b"))
    });
    let ((executor_a, results_a), (executor_b, results_b)) = (a, b);

    // Statistics: each sees its own requests only, all of them.
    for (executor, results, own, other) in [
        (&executor_a, &results_a, "from-a", "from-b"),
        (&executor_b, &results_b, "from-b", "from-a"),
    ] {
        let summary = serde_json::to_value(executor.summary()).expect("summary");
        let per_name = summary["per_name"].as_object().expect("per_name");
        assert!(per_name.contains_key(own), "{summary}");
        assert!(!per_name.contains_key(other), "{summary}");
        let requests = results[2]["requests"].as_u64().expect("requests");
        assert!(requests > 10, "{}", results[2]);
        assert_eq!(per_name[own]["count"].as_u64(), Some(requests), "{summary}");
        assert_eq!(per_name[own]["failures"].as_u64(), Some(0), "{summary}");
        // The request log kept this run's requests, and no other's.
        let log = executor.request_log().expect("request log");
        assert_eq!(log.counts().requests, requests);
    }

    // Sinks: two Prometheus exporters, one per run, each counting its own run.
    let port_a = results_a[1]["port"].as_u64().expect("port");
    let port_b = results_b[1]["port"].as_u64().expect("port");
    assert_ne!(
        port_a, port_b,
        "the second run got the first run's exporter"
    );
    for (port, own, other) in [(port_a, "from-a", "from-b"), (port_b, "from-b", "from-a")] {
        let port = u16::try_from(port).expect("port");
        let metrics = http_get_text(
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            "/metrics",
        );
        assert!(metrics.contains(&format!("name=\"{own}\"")), "{metrics}");
        assert!(!metrics.contains(&format!("name=\"{other}\"")), "{metrics}");
    }

    // Variables: clearing one run's resolver leaves the other's.
    let mut executor_a = executor_a;
    let mut executor_b = executor_b;
    ok(&executor_a.execute_document(&json!([["LD_clear_resolver", {}]]), "clear")[0]);
    let again = executor_b.execute_document(
        &json!([["LD_start_test", {
            "user_count": 1, "spawn_rate": 100, "test_time": 0.5,
            "tasks": [{"method": "get", "request_url": target.url("/json"), "name": "${who}"}]
        }]]),
        "again",
    );
    ok(&again[0]);
    let summary = serde_json::to_value(executor_b.summary()).expect("summary");
    assert!(summary["per_name"].get("bob").is_some(), "{summary}");

    // Dropping a run stops its sinks and frees their ports.
    drop(executor_a);
    let freed = std::net::TcpStream::connect(("127.0.0.1", u16::try_from(port_a).expect("port")));
    assert!(
        freed.is_err(),
        "run A's exporter still serves after the run was dropped"
    );
}
