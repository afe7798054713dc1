//! `grpc_user` against a real gRPC server built here (tests/grpc_server: tonic's
//! HTTP/2 server, `DynamicMessage`s of tests/data/grpc/store.proto). The server
//! counts its calls, so the summary's counts are checked against it; plus non-OK
//! statuses, timeouts, refused connections, TLS, server reflection, placeholders,
//! metadata and the errors of bad fields.

use crate::common;
use crate::grpc_server;

use std::collections::HashSet;

use common::summary::{
    assert_action_errors, bytes, count, error_request_types, errors_of, failures, run_script,
    script,
};
use common::{Workdir, closed_port, stderr};
use grpc_server::{GrpcServer, data_dir, entry, proto};
use serde_json::{Value, json};

fn start_test(host: &str, users: u32, seconds: f64, tasks: Value) -> Value {
    json!(["LD_start_test", {
        "user_detail_dict": {"user": "grpc_user"},
        "host": host,
        "user_count": users, "spawn_rate": 100, "test_time": seconds,
        "wait_time": {"constant": 0.002}, "tasks": tasks
    }])
}

#[test]
fn call_counts_match_the_server_and_placeholders_render() {
    let work = Workdir::new();
    let server = GrpcServer::start();
    let mut start = start_test(
        &server.target(),
        4,
        1.5,
        json!([
            {"proto": proto(), "method": "loadtest.store.Store/Put", "name": "put",
             "payload": {"key": "user-${uuid()}", "value": "${var.colour}", "version": "7",
                         "tags": {"labels": ["a", "${var.colour}"], "notes": {"n": "x"}}},
             "metadata": [["x-token", "secret"], ["x-user", "${var.colour}"]]},
            {"proto": proto(), "method": "loadtest.store.Store/Get",
             "payload": {"key": "fixed"}, "metadata": {"x-token": "unused"}},
            {"proto": proto(), "method": "loadtest.store.Store/List", "name": "list",
             "target": format!("http://{}", server.target()), "payload": {"count": 3},
             // store.proto is found there as grpc/store.proto; its import
             // types.proto in the proto's own directory.
             "includes": [data_dir()]},
        ]),
    );
    start[1]["variables"] = json!({"colour": "blue"});
    let summary = run_script(&work, "grpc.json", json!([start]));
    let get_name = "loadtest.store.Store/Get";
    for name in ["put", get_name, "list"] {
        assert!(count(&summary, name) > 10, "too few {name}: {summary}");
        assert_eq!(
            failures(&summary, name),
            0,
            "{name}: {:?}",
            errors_of(&summary, name)
        );
    }
    assert_eq!(count(&summary, "put"), server.count(|s| &s.puts));
    assert_eq!(count(&summary, get_name), server.count(|s| &s.gets));
    assert_eq!(count(&summary, "list"), server.count(|s| &s.lists));
    // A fresh key per put (uuid), each holding the variable's value.
    let store = server.state.store.lock().expect("lock").clone();
    let put_keys: HashSet<&String> = store.keys().filter(|k| k.starts_with("user-")).collect();
    assert_eq!(put_keys.len() as u64, count(&summary, "put"));
    assert!(
        store
            .iter()
            .filter(|(k, _)| k.starts_with("user-"))
            .all(|(_, v)| v == "blue"),
        "values: {store:?}"
    );
    // Response length = encoded reply size (3 entries per List).
    let get_reply = entry(&server.pool, "fixed", "v1").len() as u64;
    assert_eq!(
        bytes(&summary, get_name),
        get_reply * count(&summary, get_name)
    );
    let listed: u64 = (0..3)
        .map(|i| entry(&server.pool, &format!("k{i}"), "listed").len() as u64)
        .sum();
    assert_eq!(bytes(&summary, "list"), listed * count(&summary, "list"));
}

#[test]
fn statuses_timeouts_and_refused_connections_are_failures() {
    let work = Workdir::new();
    let server = GrpcServer::start();
    let refused = format!("127.0.0.1:{}", closed_port());
    let summary = run_script(
        &work,
        "grpc.json",
        json!([
            start_test(
                &server.target(),
                2,
                1.2,
                json!([
                    {"proto": proto(), "method": "loadtest.store.Store/Get", "name": "missing",
                     "payload": {"key": "nope"}},
                    {"proto": proto(), "method": "loadtest.store.Store/Put", "name": "no token",
                     "payload": {"key": "k", "value": "v", "version": 7, "tags": {}}},
                    {"proto": proto(), "method": "loadtest.store.Store/Slow", "name": "slow",
                     "payload": {"key": "k"}, "timeout": 0.2},
                    {"proto": proto(), "method": "loadtest.store.Store/Get", "name": "after",
                     "payload": {"key": "fixed"}},
                ])
            ),
            start_test(
                &refused,
                1,
                0.5,
                json!([{"proto": proto(), "method": "loadtest.store.Store/Get", "name": "refused"}])
            ),
        ]),
    );
    let missing = count(&summary, "missing");
    assert!(missing > 0, "{summary}");
    assert_eq!(failures(&summary, "missing"), missing);
    assert!(
        errors_of(&summary, "missing")
            .iter()
            .any(|e| e == "status NOT_FOUND: no such key"),
        "{:?}",
        errors_of(&summary, "missing")
    );
    assert_eq!(
        server.count(|s| &s.gets),
        missing + count(&summary, "after")
    );
    let denied = count(&summary, "no token");
    assert_eq!(failures(&summary, "no token"), denied);
    assert_eq!(server.count(|s| &s.denied), denied);
    assert!(
        errors_of(&summary, "no token")
            .iter()
            .any(|e| e == "status UNAUTHENTICATED: missing or bad x-token"),
        "{:?}",
        errors_of(&summary, "no token")
    );
    let slow = count(&summary, "slow");
    assert!(slow > 0, "{summary}");
    assert_eq!(failures(&summary, "slow"), slow);
    assert_eq!(server.count(|s| &s.slows), slow);
    assert!(
        errors_of(&summary, "slow")
            .iter()
            .any(|e| e.contains("loadtest.store.Store/Slow timed out after 200ms")),
        "{:?}",
        errors_of(&summary, "slow")
    );
    // After a timeout the user's channel still works.
    assert!(count(&summary, "after") > 0, "{summary}");
    assert_eq!(
        failures(&summary, "after"),
        0,
        "{:?}",
        errors_of(&summary, "after")
    );
    let refused_count = count(&summary, "refused");
    assert!(refused_count > 0, "{summary}");
    assert_eq!(failures(&summary, "refused"), refused_count);
    assert!(
        errors_of(&summary, "refused")
            .iter()
            .any(|e| e.starts_with(&format!("connect {refused}")) && e.contains("refused")),
        "{:?}",
        errors_of(&summary, "refused")
    );
    let types = error_request_types(&summary);
    assert!(
        !types.is_empty() && types.iter().all(|t| *t == "GRPC"),
        "{types:?}"
    );
}

#[test]
fn bad_fields_are_clear_errors() {
    let work = Workdir::new();
    let host = format!("127.0.0.1:{}", closed_port());
    let get = "loadtest.store.Store/Get";
    let cases = [
        (
            json!([{"proto": proto(), "method": get, "payload": {"kye": "x"}}]),
            "tasks[0].payload",
            "unknown field `kye` in message type `loadtest.store.GetRequest`",
        ),
        (
            json!([{"proto": proto(), "method": "loadtest.store.Store/Put",
                    "payload": {"tags": {"colour": "red"}}}]),
            "tasks[0].payload",
            "tags: unknown field `colour` in message type `loadtest.types.Tags`",
        ),
        (
            json!([{"proto": proto(), "method": "loadtest.store.Store/Put",
                    "payload": {"version": "many"}}]),
            "tasks[0].payload",
            "not a valid `loadtest.store.Entry`",
        ),
        (
            json!([{"stub_path": "pkg.greeter_pb2_grpc.GreeterStub",
                    "request_path": "pkg.greeter_pb2.HelloRequest", "method": "SayHello"}]),
            "tasks[0].stub_path",
            "give `proto`",
        ),
        (
            json!([{"proto": proto(), "method": "loadtest.store.Nope/Get"}]),
            "tasks[0].method",
            "service `loadtest.store.Nope` is not defined",
        ),
        (
            json!([{"proto": proto(), "method": "loadtest.store.Store/Delete"}]),
            "tasks[0].method",
            "method `Delete` is not in service `loadtest.store.Store`",
        ),
        (
            json!([{"proto": proto(), "method": "Get"}]),
            "tasks[0].method",
            "`package.Service/Method`",
        ),
        (
            json!([{"proto": proto(), "method": "loadtest.store.Store/Upload", "rpc": "unary"}]),
            "tasks[0].rpc",
            "`loadtest.store.Store/Upload` is a client_stream method, not unary",
        ),
        (
            json!([{"proto": "/nonexistent/store.proto", "method": get}]),
            "tasks[0].proto",
            "no such file",
        ),
        (
            json!([{"reflection": true, "proto": proto(), "method": get}]),
            "tasks[0].reflection",
            "not both",
        ),
        (
            json!([{"proto": proto(), "method": get, "metadata": "x-token: secret"}]),
            "tasks[0].metadata",
            "list of [key, value] pairs",
        ),
        (
            json!([{"proto": proto(), "method": get, "target": "ftp://h:1"}]),
            "tasks[0].target",
            "expected `host:port`",
        ),
    ];
    let actions: Vec<Value> = cases
        .iter()
        .map(|(tasks, _, _)| start_test(&host, 1, 0.2, tasks.clone()))
        .collect();
    let expected: Vec<(&str, &str)> = cases.iter().map(|(_, f, n)| (*f, *n)).collect();
    assert_action_errors(&work, actions, &expected);
}

#[test]
fn tls_targets_verify_the_certificate_unless_told_not_to() {
    let work = Workdir::new();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("certificate");
    let cert = certified.cert.pem();
    let server = GrpcServer::start_with(
        Some((cert.clone(), certified.signing_key.serialize_pem())),
        false,
    );
    let target = format!("https://{}", server.target());
    let get = |name: &str, verify: bool| {
        json!({"proto": proto(), "method": "loadtest.store.Store/Get", "name": name,
               "payload": {"key": "fixed"}, "verify": verify})
    };
    let actions = json!([
        start_test(&target, 2, 0.6, json!([get("unverified", false)])),
        start_test(&target, 1, 0.4, json!([get("verified", true)])),
    ]);
    // Without the certificate among the trusted roots: verification fails.
    let summary = run_script(&work, "grpc.json", actions.clone());
    let unverified = count(&summary, "unverified");
    assert!(unverified > 0, "{summary}");
    assert_eq!(
        failures(&summary, "unverified"),
        0,
        "{:?}",
        errors_of(&summary, "unverified")
    );
    let verified = count(&summary, "verified");
    assert!(verified > 0, "{summary}");
    assert_eq!(failures(&summary, "verified"), verified);
    assert!(
        errors_of(&summary, "verified")
            .iter()
            .any(|e| e.starts_with(&format!("connect {target}")) && e.contains("certificate")),
        "{:?}",
        errors_of(&summary, "verified")
    );
    assert_eq!(server.count(|s| &s.gets), unverified);
    // Trusted through SSL_CERT_FILE (read by the system roots' loader): it succeeds.
    let ca = work.write("ca.pem", &cert);
    let file = work.write("tls.json", &script(actions));
    let summary_path = work.path("tls-summary.json");
    let output = common::bin()
        .env("SSL_CERT_FILE", &ca)
        .args(["run", file.to_str().expect("utf8"), "--summary-json"])
        .arg(&summary_path)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run loaddensity");
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = common::read_json(&summary_path);
    assert!(count(&summary, "verified") > 0, "{summary}");
    assert_eq!(
        failures(&summary, "verified"),
        0,
        "{:?}",
        errors_of(&summary, "verified")
    );
}

#[test]
fn reflection_finds_the_service_and_its_imports() {
    let work = Workdir::new();
    let server = GrpcServer::start();
    let summary = run_script(
        &work,
        "grpc.json",
        json!([start_test(
            &server.target(),
            2,
            0.8,
            json!([
                {"reflection": true, "method": "loadtest.store.Store/Get", "name": "get",
                 "payload": {"key": "fixed"}},
                // Entry's `tags` is defined in the imported types.proto.
                {"reflection": true, "method": "loadtest.store.Store/Put", "name": "put",
                 "payload": {"key": "r-${uuid()}", "value": "v", "version": 7,
                             "tags": {"labels": ["x"]}},
                 "metadata": {"x-token": "secret"}},
            ])
        )]),
    );
    for name in ["get", "put"] {
        assert!(count(&summary, name) > 0, "{summary}");
        assert_eq!(
            failures(&summary, name),
            0,
            "{name}: {:?}",
            errors_of(&summary, name)
        );
    }
    assert_eq!(count(&summary, "get"), server.count(|s| &s.gets));
    assert_eq!(count(&summary, "put"), server.count(|s| &s.puts));
    // Errors: a service the server does not know; a server without reflection;
    // an unknown payload field, checked against the reflected types.
    let bare = GrpcServer::start_with(None, false);
    let cases = [
        (
            server.target(),
            json!([{"reflection": true, "method": "loadtest.store.Nope/Get"}]),
            "does not know service `loadtest.store.Nope`: symbol not found",
        ),
        (
            bare.target(),
            json!([{"reflection": true, "method": "loadtest.store.Store/Get"}]),
            "status UNIMPLEMENTED",
        ),
        (
            server.target(),
            json!([{"reflection": true, "method": "loadtest.store.Store/Get", "payload": {"kye": 1}}]),
            "unknown field `kye` in message type `loadtest.store.GetRequest`",
        ),
    ];
    let actions: Vec<Value> = cases
        .iter()
        .map(|(target, tasks, _)| start_test(target, 1, 0.2, tasks.clone()))
        .collect();
    let expected: Vec<(&str, &str)> = cases.iter().map(|(_, _, n)| ("", *n)).collect();
    assert_action_errors(&work, actions, &expected);
}

/// LoadDensity's `rpc: "client_stream"` and `"bidi"`: a list `payload` is a stream of
/// messages (one object, a stream of one); a bidirectional call is timed to its last
/// reply.
#[test]
fn client_streaming_and_bidirectional_calls() {
    let work = Workdir::new();
    let server = GrpcServer::start();
    let entries = json!([
        {"key": "s1", "value": "${var.v}"},
        {"key": "s2", "value": "two"},
        {"key": "s3", "value": "three"}
    ]);
    let summary = run_script(
        &work,
        "streams.json",
        json!([["LD_register_variable", {"name": "v", "value": "one"}],
        start_test(
            &server.target(),
            1,
            0.8,
            json!([
                {"proto": proto(), "method": "loadtest.store.Store/Upload", "rpc": "client_stream",
                 "payload": entries, "name": "upload"},
                {"proto": proto(), "method": "loadtest.store.Store/Upload",
                 "payload": {"key": "single", "value": "1"}, "name": "upload-one"},
                {"proto": proto(), "method": "loadtest.store.Store/Chat", "rpc": "bidi",
                 "payload": entries, "name": "chat"},
            ]),
        )]),
    );
    let uploads = count(&summary, "upload");
    assert!(uploads > 2, "{summary}");
    assert_eq!(
        failures(&summary, "upload"),
        0,
        "{:?}",
        errors_of(&summary, "upload")
    );
    assert_eq!(
        failures(&summary, "upload-one"),
        0,
        "{:?}",
        errors_of(&summary, "upload-one")
    );
    assert_eq!(
        server.count(|s| &s.uploads),
        uploads + count(&summary, "upload-one")
    );
    assert_eq!(
        server.count(|s| &s.uploaded),
        3 * uploads + count(&summary, "upload-one")
    );
    let store = server.state.store.lock().expect("lock").clone();
    assert_eq!(store.get("s1").map(String::as_str), Some("one"));
    assert_eq!(store.get("single").map(String::as_str), Some("1"));
    let chats = count(&summary, "chat");
    assert!(chats > 2);
    assert_eq!(
        failures(&summary, "chat"),
        0,
        "{:?}",
        errors_of(&summary, "chat")
    );
    assert_eq!(server.count(|s| &s.chats), chats);
    assert_eq!(server.count(|s| &s.chatted), 3 * chats);
    // The three echoed entries, counted as the response.
    let echoed: u64 = ["s1", "s2", "s3"]
        .iter()
        .zip(["one", "two", "three"])
        .map(|(k, v)| entry(&server.pool, k, v).len() as u64)
        .sum();
    assert_eq!(bytes(&summary, "chat"), echoed * chats);
}
