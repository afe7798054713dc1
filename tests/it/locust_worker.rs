//! `loaddensity worker` under a real Locust 2.x master (installed by scripts/test):
//! the master's CSV totals are the workers' own summaries added up, exactly; the
//! master's user count reaches what it was asked; a master that quits stops the
//! workers, one that dies makes them fail within `worker_lost_timeout`; a Python
//! Locust worker and a loaddensity worker share one master. Also: the decoder
//! never panics on arbitrary frames, and the refused modes say why.

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::summary::{count, failures};
use common::{Workdir, closed_port};
use loaddensity::locust_worker::protocol::{Command as MasterCommand, Message};
use proptest::prelude::*;
use serde_json::{Value, json};

const HINT: &str = "pip install locust==2.47.0 (scripts/test does)";

/// nginx with `/` (200) and `/missing` (404).
fn nginx() -> (common::nginx::Nginx, u16) {
    let dir = Workdir::new();
    let d = dir.dir.path().display().to_string();
    let port = closed_port();
    let conf = format!(
        r#"worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location / {{ default_type text/plain; return 200 "ok"; }}
    location /missing {{ return 404; }}
  }}
}}"#
    );
    (common::nginx::Nginx::start(dir, &conf, port), port)
}

/// The master's locustfile: user class `WebUser`, the same two requests as the
/// workers' script. The CSV writer runs every 0.1 s instead of every 1 s, so that
/// the file the master leaves holds the workers' last reports, which arrive after
/// `quit` (with the default, Locust's CSV can miss them, whoever the workers are).
fn locustfile(work: &Workdir, port: u16) -> PathBuf {
    work.write(
        "locustfile.py",
        &format!(
            r#"from locust import FastHttpUser, task, constant, stats
stats.CSV_STATS_INTERVAL_SEC = 0.1

class WebUser(FastHttpUser):
    host = "http://127.0.0.1:{port}"
    wait_time = constant(0.01)

    @task
    def index(self):
        self.client.get("/", name="py /")

    @task
    def missing(self):
        with self.client.get("/missing", name="py /missing", catch_response=True) as r:
            r.failure("HTTP 404")
"#
        ),
    )
}

/// The workers' script: `/` then `/missing` (a failure), 10 ms apart.
fn script(work: &Workdir, port: u16, extra: Value) -> PathBuf {
    let mut test = json!({
        "user_detail_dict": {"user": "fast_http_user"},
        "host": format!("http://127.0.0.1:{port}"),
        "wait_time": {"constant": 0.01},
        "tasks": [
            {"method": "get", "url": "/", "name": "/"},
            {"method": "get", "url": "/missing", "name": "/missing"},
        ],
    });
    if let (Some(test), Value::Object(extra)) = (test.as_object_mut(), extra) {
        test.extend(extra);
    }
    work.write(
        "worker.json",
        &json!({"load_density": [["LD_start_test", test]]}).to_string(),
    )
}

/// A child process in its own group, killed (the whole group) when dropped.
struct Proc {
    child: Child,
    name: String,
}

impl Proc {
    fn spawn(mut command: Command, name: &str, log: &Path) -> Self {
        let out = std::fs::File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Self {
            child,
            name: name.to_string(),
        }
    }

    /// Waits at most `limit` for the process to exit.
    fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            eprintln!("killing {}", self.name);
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .status();
            let _ = self.child.wait();
        }
    }
}

/// `locust --master --headless` on a free loopback port, writing `master_*.csv`.
fn master(work: &Workdir, locust: &Path, port: u16, args: &[&str]) -> Proc {
    let mut command = Command::new(locust);
    command
        .args(["--master", "--headless", "--master-bind-host", "127.0.0.1"])
        .args(["--master-bind-port", &port.to_string()])
        .args(["--exit-code-on-error", "0", "--csv"])
        .arg(work.path("master"))
        .arg("-f")
        .arg(work.path("locustfile.py"))
        .args(args)
        .current_dir(work.dir.path());
    Proc::spawn(command, "locust master", &work.path("master.log"))
}

/// `loaddensity worker` of the master on `port`, as user class `WebUser`.
fn worker(work: &Workdir, port: u16, name: &str, extra: &[&str]) -> Proc {
    let mut command = common::bin();
    command
        .arg("worker")
        .arg(work.path("worker.json"))
        .args([
            "--master-host",
            "127.0.0.1",
            "--master-port",
            &port.to_string(),
        ])
        .args(["--user-class", "WebUser", "--quiet", "--summary-json"])
        .arg(work.path(&format!("{name}.json")))
        .args(extra)
        .env("LOADDENSITY_LOG", "info");
    Proc::spawn(command, name, &work.path(&format!("{name}.log")))
}

fn log(work: &Workdir, name: &str) -> String {
    std::fs::read_to_string(work.path(name)).unwrap_or_default()
}

/// The master's `master_stats.csv`: (requests, failures) by name, with `Aggregated`.
fn master_counts(work: &Workdir) -> BTreeMap<String, (u64, u64)> {
    let mut reader = csv::Reader::from_path(work.path("master_stats.csv")).expect("master CSV");
    let headers = reader.headers().expect("header").clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} column in {headers:?}"))
    };
    let (name, requests, fails) = (
        column("Name"),
        column("Request Count"),
        column("Failure Count"),
    );
    reader
        .records()
        .map(|r| {
            let r = r.expect("CSV row");
            (
                r[name].to_string(),
                (
                    r[requests].parse().expect("count"),
                    r[fails].parse().expect("count"),
                ),
            )
        })
        .collect()
}

/// The highest `User Count` in the master's history CSV.
fn master_max_users(work: &Workdir) -> u64 {
    let mut reader =
        csv::Reader::from_path(work.path("master_stats_history.csv")).expect("history CSV");
    let headers = reader.headers().expect("header").clone();
    let users = headers
        .iter()
        .position(|h| h == "User Count")
        .expect("User Count column");
    reader
        .records()
        .filter_map(|r| r.ok()?.get(users)?.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

fn total_requests(summary: &Value) -> u64 {
    summary["totals"]["requests"]
        .as_u64()
        .expect("totals.requests")
}

/// A test with a master: the target, the locustfile and the workers' script (with
/// `extra`), and the master started with `args` on a free port.
struct Setup {
    locust: PathBuf,
    _nginx: common::nginx::Nginx,
    work: Workdir,
    master_port: u16,
    master: Proc,
}

impl Setup {
    /// `None` (outside CI only) when Locust is not installed.
    fn start(extra: Value, args: &[&str]) -> Option<Self> {
        let locust = common::require_program(&["locust"], HINT)?;
        let (server, port) = nginx();
        let work = Workdir::new();
        locustfile(&work, port);
        script(&work, port, extra);
        let master_port = closed_port();
        let master = master(&work, &locust, master_port, args);
        Some(Self {
            locust,
            _nginx: server,
            work,
            master_port,
            master,
        })
    }

    /// A worker of ours named `name` (its log `name.log`, its summary `name.json`)
    /// joining the master, with `args`.
    fn worker(&self, name: &str, args: &[&str]) -> Proc {
        worker(&self.work, self.master_port, name, args)
    }

    /// The text of the log `name` in the test's folder.
    fn log(&self, name: &str) -> String {
        log(&self.work, name)
    }

    /// Waits (20 s at most) until the master says all its users are spawned.
    fn wait_until_all_users_spawned(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.log("master.log").contains("All users spawned") {
            assert!(Instant::now() < deadline, "{}", self.log("master.log"));
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn two_workers_add_up_to_the_masters_csv_exactly() {
    let Some(mut setup) = Setup::start(
        json!({}),
        &["--expect-workers", "2", "-u", "20", "-r", "10", "-t", "10s"],
    ) else {
        return;
    };
    let mut workers = [setup.worker("w1", &[]), setup.worker("w2", &[])];
    let status = setup.master.wait(Duration::from_secs(40));
    assert!(
        status.is_some_and(|s| s.success()),
        "master: {status:?}\n{}",
        setup.log("master.log")
    );
    let mut summaries = Vec::new();
    for (worker, name) in workers.iter_mut().zip(["w1", "w2"]) {
        let status = worker.wait(Duration::from_secs(10));
        let text = setup.log(&format!("{name}.log"));
        assert!(
            status.is_some_and(|s| s.success()),
            "{name}: {status:?}\n{text}"
        );
        assert!(text.contains("the Locust master said quit"), "{text}");
        summaries.push(setup.work.read_json(&format!("{name}.json")));
    }
    let csv = master_counts(&setup.work);
    let mut total = (0, 0);
    for name in ["/", "/missing"] {
        let ours: (u64, u64) = summaries
            .iter()
            .map(|s| (count(s, name), failures(s, name)))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        assert!(ours.0 > 100, "{name}: only {ours:?} requests");
        assert_eq!(csv.get(name), Some(&ours), "{name}: master {csv:?}");
        total = (total.0 + ours.0, total.1 + ours.1);
    }
    // Every /missing is a failure, every / a success.
    assert_eq!(csv["/missing"].0, csv["/missing"].1);
    assert_eq!(csv["/"].1, 0);
    assert_eq!(csv.get("Aggregated"), Some(&total), "{csv:?}");
    let ours: u64 = summaries.iter().map(total_requests).sum();
    assert_eq!(ours, total.0);
    assert_eq!(
        master_max_users(&setup.work),
        20,
        "{}",
        setup.log("master.log")
    );
    // Each worker ran its half.
    for summary in &summaries {
        assert_eq!(summary["run"]["load"][0]["users"], 10, "{summary}");
    }
}

#[test]
fn a_master_that_quits_early_stops_its_worker() {
    let Some(mut setup) = Setup::start(
        json!({"test_time": 600}),
        &["--expect-workers", "1", "-u", "4", "-r", "10", "-t", "60s"],
    ) else {
        return;
    };
    let mut w = setup.worker("w1", &[]);
    // Wait (bounded) until the worker has users, then stop the master.
    setup.wait_until_all_users_spawned();
    std::thread::sleep(Duration::from_secs(1));
    setup.master.signal("-TERM");
    let stopped = Instant::now();
    assert!(
        setup.master.wait(Duration::from_secs(15)).is_some(),
        "master did not stop"
    );
    let status = w.wait(Duration::from_secs(10));
    let text = setup.log("w1.log");
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{text}");
    assert!(stopped.elapsed() < Duration::from_secs(12), "{text}");
    let summary = setup.work.read_json("w1.json");
    let csv = master_counts(&setup.work);
    assert!(total_requests(&summary) > 0);
    assert_eq!(csv["Aggregated"].0, total_requests(&summary), "{csv:?}");
}

#[test]
fn a_dead_master_makes_the_worker_fail_within_the_lost_timeout() {
    let Some(mut setup) = Setup::start(
        json!({}),
        &["--expect-workers", "1", "-u", "2", "-r", "10", "-t", "60s"],
    ) else {
        return;
    };
    let mut w = setup.worker("w1", &["--lost-timeout", "3s"]);
    setup.wait_until_all_users_spawned();
    setup.master.signal("-KILL");
    let killed = Instant::now();
    assert!(setup.master.wait(Duration::from_secs(5)).is_some());
    let status = w.wait(Duration::from_secs(10));
    let waited = killed.elapsed();
    let text = setup.log("w1.log");
    let status = status.unwrap_or_else(|| panic!("worker still running:\n{text}"));
    assert!(!status.success(), "{text}");
    assert!(
        waited >= Duration::from_secs(2),
        "exited too soon ({waited:?}):\n{text}"
    );
    assert!(waited < Duration::from_secs(7), "took {waited:?}:\n{text}");
    assert!(text.contains("lost the Locust master"), "{text}");
    // Its own summary still holds what its users did.
    assert!(total_requests(&setup.work.read_json("w1.json")) > 0);
}

#[test]
fn a_python_worker_and_a_loaddensity_worker_share_a_master() {
    let Some(mut setup) = Setup::start(
        json!({}),
        &["--expect-workers", "2", "-u", "10", "-r", "10", "-t", "5s"],
    ) else {
        return;
    };
    let mut python = {
        let mut command = Command::new(&setup.locust);
        command
            .args(["--worker", "--master-host", "127.0.0.1"])
            .args(["--master-port", &setup.master_port.to_string(), "-f"])
            .arg(setup.work.path("locustfile.py"))
            .current_dir(setup.work.dir.path());
        Proc::spawn(command, "python worker", &setup.work.path("python.log"))
    };
    let mut w = setup.worker("w1", &[]);
    let status = setup.master.wait(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        setup.log("master.log")
    );
    let status = w.wait(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "{}",
        setup.log("w1.log")
    );
    assert!(
        python.wait(Duration::from_secs(10)).is_some(),
        "{}",
        setup.log("python.log")
    );
    let summary = setup.work.read_json("w1.json");
    let ours = total_requests(&summary);
    let csv = master_counts(&setup.work);
    assert!(ours > 50, "{ours}");
    // The master holds both workers' requests, told apart by name: the Python
    // worker's are named `py /...`. Ours may lack our last report, which the master
    // waits for only 0.5 s after its `quit` (Locust's `MasterRunner.quit`).
    let named = |names: [&str; 2]| {
        names
            .iter()
            .map(|n| csv.get(*n).map_or(0, |c| c.0))
            .sum::<u64>()
    };
    let python_requests = named(["py /", "py /missing"]);
    let our_requests = named(["/", "/missing"]);
    assert!(python_requests > 50, "{csv:?}");
    assert!(
        our_requests > 50 && our_requests <= ours,
        "{csv:?} vs ours {ours}"
    );
    assert_eq!(
        csv["Aggregated"].0,
        python_requests + our_requests,
        "{csv:?}"
    );
    assert_eq!(master_max_users(&setup.work), 10);
    assert_eq!(summary["run"]["load"][0]["users"], 5, "{summary}");
}

#[test]
fn no_master_is_a_clear_error() {
    let work = Workdir::new();
    script(&work, closed_port(), json!({}));
    let output = common::run(
        &[
            "worker",
            work.path("worker.json").to_str().expect("utf8"),
            "--master-port",
            &closed_port().to_string(),
            "--startup-timeout",
            "1s",
        ],
        None,
    );
    let text = common::stderr(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("no Locust master answered") || text.contains("cannot connect"),
        "{text}"
    );
}

#[test]
fn master_mode_and_unknown_modes_are_refused() {
    let work = Workdir::new();
    let port = closed_port();
    for (extra, field, words) in [
        (
            json!({"runner_mode": "master"}),
            "runner_mode",
            "locust --master",
        ),
        (
            json!({"runner_mode": "boss"}),
            "runner_mode",
            "expected local or worker",
        ),
        (
            json!({"expected_workers": 2}),
            "expected_workers",
            "locust --master",
        ),
        (
            json!({"master_host": "127.0.0.1"}),
            "runner_mode",
            "runner_mode worker",
        ),
        (
            json!({"runner_mode": "worker", "worker_lost_timeout": 1, "worker_heartbeat_interval": 2}),
            "worker_lost_timeout",
            "longer than",
        ),
        (
            json!({"runner_mode": "worker", "load_shape": "soak"}),
            "load_shape",
            "master",
        ),
    ] {
        let path = script(&work, port, extra.clone());
        let output = common::run(&["validate", path.to_str().expect("utf8")], None);
        let text = format!("{}{}", common::stdout(&output), common::stderr(&output));
        assert!(!output.status.success(), "{extra}: {text}");
        assert!(
            text.contains(field) && text.contains(words),
            "{extra}: {text}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary frames decode to a message or an error, never a panic.
    #[test]
    fn arbitrary_frames_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(message) = Message::decode(&frame) {
            let _ = MasterCommand::from_message(&message);
            prop_assert_eq!(Message::decode(&message.encode()), Ok(message));
        }
    }

    /// Well-formed arrays with arbitrary data in known message types never panic.
    #[test]
    fn known_types_with_arbitrary_data_never_panic(
        kind in prop::sample::select(vec!["ack", "spawn", "stop", "quit", "heartbeat", "reconnect", "spawning_complete", "other"]),
        data in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        // The data is whatever msgpack value the bytes start with, if any.
        let data = rmpv::decode::read_value(&mut data.as_slice()).unwrap_or(rmpv::Value::Nil);
        let message = Message::new(kind, data, "node");
        let decoded = Message::decode(&message.encode());
        prop_assert!(decoded.is_ok());
        let _ = MasterCommand::from_message(&message);
    }
}

/// A master of our own (a ZeroMQ ROUTER) that sends what a Locust master never
/// would: frames that are not msgpack or not Locust messages, and `reconnect`. The
/// worker ignores the frames, joins again under the same id, and the `stats`
/// reports add up to its own summary exactly.
#[test]
fn a_worker_survives_bad_frames_and_reconnects() {
    use bytes::Bytes;
    use loaddensity::locust_worker::protocol::{get, map};
    use rmpv::Value as Mp;
    use zeromq::{Socket, SocketRecv, SocketSend, ZmqMessage};

    let target = common::Target::start();
    let work = Workdir::new();
    let url = target.url("");
    let port_of_target: u16 = url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("target port");
    script(
        &work,
        port_of_target,
        json!({"tasks": [{"method": "get", "url": "/", "name": "/"}]}),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut router = zeromq::RouterSocket::new();
        let endpoint = router.bind("tcp://127.0.0.1:0").await.expect("bind");
        let zeromq::Endpoint::Tcp(_, master_port) = endpoint else {
            panic!("not tcp: {endpoint}");
        };
        let mut w = worker(&work, master_port, "w1", &["--lost-timeout", "5s"]);
        let send = |id: &Bytes, payload: Vec<u8>| {
            let mut message = ZmqMessage::from(payload);
            message.push_front(id.clone());
            message
        };
        // Reads messages for at most `limit` until `want` says stop; returns them.
        async fn read_until(
            router: &mut zeromq::RouterSocket,
            limit: Duration,
            mut want: impl FnMut(&Message) -> bool,
        ) -> Vec<(Bytes, Message)> {
            let mut seen = Vec::new();
            let deadline = tokio::time::Instant::now() + limit;
            while let Ok(Ok(message)) = tokio::time::timeout_at(deadline, router.recv()).await {
                let frames = message.into_vec();
                let decoded =
                    Message::decode(&frames[1]).expect("the worker sends Locust messages");
                let done = want(&decoded);
                seen.push((frames[0].clone(), decoded));
                if done {
                    break;
                }
            }
            seen
        }
        let ready = read_until(&mut router, Duration::from_secs(20), |m| {
            m.kind == "client_ready"
        })
        .await;
        let (id, hello) = ready.last().expect("client_ready").clone();
        assert_eq!(hello.kind, "client_ready", "{ready:?}");
        assert_eq!(hello.data, Mp::from("2.47.0"));
        assert_eq!(id.as_ref(), hello.node_id.as_bytes());
        let node = hello.node_id.clone();
        for garbage in [
            b"\xff\x00 not msgpack".to_vec(),
            vec![0x01],
            Message::new("spawn", map([("timestamp", Mp::from("soon"))]), &node).encode(),
        ] {
            router.send(send(&id, garbage)).await.expect("send");
        }
        router
            .send(send(
                &id,
                Message::new("ack", map([("index", Mp::from(3))]), &node).encode(),
            ))
            .await
            .expect("send");
        let spawn = |users: u64, at: f64| {
            Message::new(
                "spawn",
                map([
                    ("timestamp", Mp::F64(at)),
                    ("user_classes_count", map([("WebUser", Mp::from(users))])),
                    ("host", Mp::Nil),
                    ("stop_timeout", Mp::Nil),
                    ("parsed_options", map([])),
                ]),
                &node,
            )
            .encode()
        };
        router.send(send(&id, spawn(3, 1.0))).await.expect("send");
        let mut seen = read_until(&mut router, Duration::from_secs(10), |m| {
            m.kind == "spawning_complete"
        })
        .await;
        let complete = &seen.last().expect("spawning_complete").1;
        assert_eq!(complete.kind, "spawning_complete", "{seen:?}");
        assert_eq!(get(&complete.data, "user_count"), Some(&Mp::from(3)));
        router
            .send(send(
                &id,
                Message::new("reconnect", Mp::Nil, &node).encode(),
            ))
            .await
            .expect("send");
        // After the reconnect, reports keep coming (a stats message within 5 s).
        seen.extend(read_until(&mut router, Duration::from_secs(8), |m| m.kind == "stats").await);
        assert_eq!(
            seen.last().map(|(_, m)| m.kind.as_str()),
            Some("stats"),
            "{seen:?}"
        );
        let (id, _) = seen.last().expect("a message").clone();
        router
            .send(send(&id, Message::new("quit", Mp::Nil, &node).encode()))
            .await
            .expect("send");
        seen.extend(
            read_until(&mut router, Duration::from_secs(5), |m| {
                m.kind == "stats" && get(&m.data, "user_count") == Some(&Mp::from(0))
            })
            .await,
        );
        let status = w.wait(Duration::from_secs(10));
        let text = log(&work, "w1.log");
        assert!(status.is_some_and(|s| s.success()), "{status:?}\n{text}");
        assert!(text.contains("ignoring a frame"), "{text}");
        let reported: u64 = seen
            .iter()
            .filter(|(_, m)| m.kind == "stats")
            .filter_map(|(_, m)| get(get(&m.data, "stats_total")?, "num_requests")?.as_u64())
            .sum();
        let summary = work.read_json("w1.json");
        assert!(reported > 0, "{seen:?}");
        assert_eq!(reported, total_requests(&summary), "{text}");
    });
}
