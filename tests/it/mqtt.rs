//! `mqtt_user` against a real `mosquitto` (Debian's) started on a free port with a
//! temporary configuration: counts a `mosquitto_sub` subscriber confirms, `recv:`
//! events with end-to-end latency, refused connections and bad fields.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::summary::{assert_action_errors, count, errors_of, failures};
use common::{Workdir, closed_port, run_ok_with_summary};
use serde_json::{Value, json};

/// A mosquitto broker on a free loopback port, killed on drop.
struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    fn start(work: &Workdir) -> Self {
        let port = closed_port();
        let config = work.write(
            "mosquitto.conf",
            &format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        );
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto (install mosquitto)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_test(users: u32, seconds: f64, tasks: Value) -> Value {
    json!(["LD_start_test", {
        "user_detail_dict": {"user": "mqtt_user"},
        "user_count": users, "spawn_rate": 100, "test_time": seconds,
        "wait_time": {"constant": 0.005}, "tasks": tasks
    }])
}

#[test]
fn the_broker_delivers_every_acknowledged_publish() {
    let work = Workdir::new();
    let broker = Broker::start(&work);
    let mut subscriber = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port.to_string(),
            "-q",
            "1",
            "-t",
            "load/#",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto_sub (install mosquitto-clients)");
    std::thread::sleep(Duration::from_millis(500));
    let tasks = json!([
        {"method": "subscribe", "broker": broker.addr(), "topic": "echo/${var.room}", "qos": 1, "name": "sub"},
        {"method": "publish", "broker": broker.addr(), "topic": "load/${var.room}", "payload": "n=${randint(1, 9)}",
         "qos": 1, "name": "pub1"},
        {"method": "publish", "broker": broker.addr(), "topic": "load/q2", "payload": "hex:6869", "qos": 2, "name": "pub2"},
        {"method": "publish", "broker": broker.addr(), "topic": "echo/${var.room}", "payload": "x", "qos": 1,
         "timestamp": true, "name": "echo"},
    ]);
    let mut start = start_test(1, 1.5, tasks);
    start[1]["variables"] = json!({"room": "r1"});
    let file = work.write("mqtt.json", &json!({"load_density": [start]}).to_string());
    let (_, summary) = run_ok_with_summary(&file, &work);
    for name in ["sub", "pub1", "pub2", "echo"] {
        assert_eq!(
            failures(&summary, name),
            0,
            "{name}: {:?}",
            errors_of(&summary, name)
        );
    }
    let published = count(&summary, "pub1") + count(&summary, "pub2");
    assert!(count(&summary, "pub1") > 5, "{summary}");
    std::thread::sleep(Duration::from_millis(1000));
    let _ = subscriber.kill();
    let output = subscriber.wait_with_output().expect("mosquitto_sub output");
    let lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        lines.len() as u64,
        published,
        "the subscriber got {} messages",
        lines.len()
    );
    assert!(lines.iter().any(|l| l == "hi"), "hex payload");
    assert!(
        lines.iter().any(|l| l.starts_with("n=")),
        "placeholder payload"
    );
    // Our own subscription receives the echo messages as `recv:` events.
    let received = count(&summary, "recv:echo/r1");
    let echoed = count(&summary, "echo");
    assert!(
        received + 1 >= echoed && received <= echoed,
        "received {received} of {echoed}"
    );
    assert!(
        summary["per_name"]["recv:echo/r1"]["max_ms"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0,
        "{summary}"
    );
}

#[test]
fn refused_connections_and_bad_fields_fail_clearly() {
    let work = Workdir::new();
    let refused = format!("127.0.0.1:{}", closed_port());
    let file = work.write(
        "refused.json",
        &json!({"load_density": [start_test(1, 0.5, json!([
            {"method": "publish", "broker": refused, "topic": "t", "payload": "x", "name": "refused"}
        ]))]})
        .to_string(),
    );
    let (_, summary) = run_ok_with_summary(&file, &work);
    let n = count(&summary, "refused");
    assert!(n > 0, "{summary}");
    assert_eq!(failures(&summary, "refused"), n);
    assert!(
        errors_of(&summary, "refused")
            .iter()
            .any(|e| e.contains("connect 127.0.0.1")),
        "{:?}",
        errors_of(&summary, "refused")
    );

    let cases = [
        (
            json!({"method": "fly", "topic": "t"}),
            "tasks[0].method",
            "unknown method",
        ),
        (
            json!({"method": "publish", "topic": "t", "qos": 3}),
            "tasks[0].qos",
            "from 0 to 2",
        ),
        (
            json!({"method": "publish"}),
            "tasks[0].topic",
            "needs a topic",
        ),
        (
            json!({"method": "publish", "topic": "t", "payload": "hex:zz"}),
            "tasks[0].payload",
            "hex",
        ),
        (
            json!({"method": "publish", "topic": "t", "broker": "h:port"}),
            "tasks[0].broker",
            "host:port",
        ),
        (
            json!({"method": "publish", "topic": "t", "url": "x"}),
            "tasks[0].url",
            "unknown field",
        ),
    ];
    let actions: Vec<Value> = cases
        .iter()
        .map(|(task, _, _)| start_test(1, 0.2, json!([task])))
        .collect();
    let expected: Vec<(&str, &str)> = cases.iter().map(|(_, f, n)| (*f, *n)).collect();
    assert_action_errors(&work, actions, &expected);
}

/// LD_start_test's `host` is the broker of steps that name none (LoadDensity's
/// `default_host`): `host:port`, a bare `mqtt://` URL; and a non-MQTT URL is an error
/// naming `host`.
#[test]
fn host_is_the_default_broker() {
    let work = Workdir::new();
    let broker = Broker::start(&work);
    let with_host = |host: String, name: &str| {
        let mut start = start_test(
            1,
            0.5,
            json!([
                {"method": "publish", "topic": "load/host", "payload": "x", "qos": 1, "name": name}
            ]),
        );
        start[1]["host"] = json!(host);
        start
    };
    let file = work.write(
        "host.json",
        &json!({"load_density": [
            with_host(broker.addr(), "host:port"),
            with_host(format!("mqtt://{}", broker.addr()), "mqtt-url"),
        ]})
        .to_string(),
    );
    let (_, summary) = run_ok_with_summary(&file, &work);
    for name in ["host:port", "mqtt-url"] {
        assert!(count(&summary, name) > 5, "{name}: {summary}");
        assert_eq!(
            failures(&summary, name),
            0,
            "{name}: {:?}",
            errors_of(&summary, name)
        );
    }
    assert_action_errors(
        &work,
        vec![with_host("http://127.0.0.1:8080".into(), "http")],
        &[("host", "is not an MQTT broker")],
    );
}
