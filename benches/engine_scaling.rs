//! Does the request path share anything between worker threads? Requests/s of the
//! engine on one worker thread and on two, with a protocol that does no I/O, with no
//! sink and with all three sinks attached.
//!
//! A target on another machine cannot be measured here (2 cores), but with no I/O the
//! engine can use both: if every request touched a lock or an atomic shared by the
//! threads, its cache line would bounce between the cores and two threads would do
//! little more than one. With per-thread state only they do about twice as much.
//!
//! `cargo bench --bench engine_scaling` (`ROUNDS`, `SECONDS`: 3 and 2 by default).
//! Under `cargo test` it runs each configuration for a moment and checks that the
//! requests were counted, as a smoke test.

// A benchmark's output is its table.
#![allow(clippy::print_stdout)]

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};

use loaddensity::RunContext;
use loaddensity::engine::{RunObservers, Scenario, TestPlan, WaitTime, run_test};
use loaddensity::event::intern_endpoint;
use loaddensity::protocol::{ParseContext, ParsedSpec, Protocol, StepContext, StepOutcome};
use loaddensity::scenario::ResolverSnapshot;
use loaddensity::sinks::influxdb::{InfluxOptions, start_influxdb_sink, stop_influxdb_sink};
use loaddensity::sinks::opentelemetry::{
    OtelOptions, start_opentelemetry_exporter, stop_opentelemetry_exporter,
};
use loaddensity::sinks::prometheus::{
    PrometheusOptions, start_prometheus_exporter, stop_prometheus_exporter,
};
use loaddensity::task::{Task, TaskError};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

/// Steps between two yields to the scheduler.
const YIELD_EVERY: u32 = 8;

/// A protocol whose step sends nothing: a success, and now and then a yield.
#[derive(Debug, Clone)]
struct Null;

impl Protocol for Null {
    type Spec = ();
    type Shared = ();
    /// Steps taken.
    type Client = u32;

    const FIELDS: &'static [&'static str] = &["name"];

    fn parse(
        object: &Map<String, Value>,
        _method_key: Option<&str>,
        _path: &str,
        _ctx: &ParseContext<'_>,
    ) -> Result<ParsedSpec<()>, TaskError> {
        let name = object.get("name").and_then(Value::as_str).unwrap_or("null");
        Ok(ParsedSpec {
            endpoint: intern_endpoint("NULL", name),
            spec: (),
        })
    }

    fn client(_shared: &Arc<()>) -> u32 {
        0
    }

    async fn step(client: &mut u32, _task: &Task<()>, _ctx: &mut StepContext<'_>) -> StepOutcome {
        // A yield every few steps, as a user waiting on its socket would (and so that
        // the run's timer gets a turn), without making the scheduler all the work.
        *client = client.wrapping_add(1);
        if client.is_multiple_of(YIELD_EVERY) {
            tokio::task::yield_now().await;
        }
        StepOutcome {
            end: Instant::now(),
            name: None,
            status: Some(200),
            response_length: 612,
            failure: None,
            connect_failure: false,
            class: loaddensity::task::ErrorClass::Permanent,
            sample: None,
        }
    }
}

/// Requests/s of one run of `seconds` on `threads` worker threads.
fn run(context: &RunContext, threads: usize, seconds: f64) -> f64 {
    let scenario = Scenario::<Null>::parse(
        &json!([{"name": "a"}, {"name": "b"}]),
        None,
        ResolverSnapshot::default(),
    )
    .expect("valid tasks");
    let plan = TestPlan {
        users: 64,
        spawn_rate: 64_000.0,
        test_time: Some(Duration::from_secs_f64(seconds)),
        wait: WaitTime::Constant(Duration::ZERO),
        shape: None,
        arrival: None,
        scenario: Arc::new(scenario),
    };
    // The context's own statistics count the requests, as an executor's do.
    let listeners = context.listeners().clone();
    let before = context.stats().counts().0;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime");
    let report = runtime.block_on(run_test(
        plan,
        listeners.clone(),
        CancellationToken::new(),
        RunObservers::default(),
    ));
    (context.stats().counts().0 - before) as f64 / report.duration.as_secs_f64()
}

/// Attaches the three sinks: Prometheus (not scraped), InfluxDB over UDP to a socket
/// nobody reads, OpenTelemetry exporting every second to a port nobody listens on.
/// Their request-path cost is the same as with real backends.
/// `SINKS` (a comma-separated list) picks some of them instead.
fn start_sinks(context: &RunContext, udp: &UdpSocket) {
    let sinks = context.sinks();
    let wanted =
        std::env::var("SINKS").unwrap_or_else(|_| "prometheus,influxdb,opentelemetry".into());
    if wanted.contains("prometheus") {
        start_prometheus_exporter(
            sinks,
            PrometheusOptions {
                port: 0,
                ..PrometheusOptions::default()
            },
        )
        .expect("prometheus");
    }
    if wanted.contains("influxdb") {
        let target = udp.local_addr().expect("udp address");
        start_influxdb_sink(
            sinks,
            InfluxOptions {
                host: target.ip().to_string(),
                port: target.port(),
                ..InfluxOptions::default()
            },
        )
        .expect("influxdb");
    }
    if wanted.contains("opentelemetry") {
        start_opentelemetry_exporter(
            sinks,
            &OtelOptions {
                endpoint: Some("http://127.0.0.1:9".into()),
                export_interval_ms: Some(1000),
                timeout_ms: Some(200),
                ..OtelOptions::default()
            },
        )
        .expect("opentelemetry");
    }
}

fn stop_sinks(context: &RunContext) {
    let sinks = context.sinks();
    stop_prometheus_exporter(sinks);
    stop_influxdb_sink(sinks);
    stop_opentelemetry_exporter(sinks);
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn env_number(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let (rounds, seconds) = if benching {
        (
            env_number("ROUNDS", 3.0) as usize,
            env_number("SECONDS", 2.0),
        )
    } else {
        (1, 0.2)
    };
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let context = RunContext::new();
    let mut table = Vec::new();
    for sinks in [false, true] {
        if sinks {
            start_sinks(&context, &udp);
        }
        let (mut one, mut two) = (Vec::new(), Vec::new());
        // Interleaved, so that a slow moment of the machine hits both.
        for _ in 0..rounds {
            one.push(run(&context, 1, seconds));
            two.push(run(&context, 2, seconds));
        }
        if sinks {
            stop_sinks(&context);
        }
        let (one, two) = (median(one), median(two));
        assert!(one > 0.0 && two > 0.0, "no request counted");
        table.push((sinks, one, two));
    }
    if !benching {
        return;
    }
    println!("| sinks | 1 thread req/s | 2 threads req/s | 2 threads / 1 thread |");
    println!("|---|---:|---:|---:|");
    for (sinks, one, two) in table {
        let label = if sinks { "all three" } else { "none" };
        println!("| {label} | {one:.0} | {two:.0} | {:.2} |", two / one);
    }
}
