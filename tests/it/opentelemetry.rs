//! The OpenTelemetry exporter against real OTLP receivers built on the official
//! protobuf definitions (`opentelemetry-proto`): its tonic `MetricsService` server for
//! gRPC, and a hyper server decoding `ExportMetricsServiceRequest` bodies for
//! OTLP/HTTP. Both run in this process on free loopback ports.
//!
//! Checked: names, units, attributes and `service.name`; every request of a run
//! counted once (cumulative and delta); collectors that are down or never answer do
//! not slow the load and do not hold the process; bad arguments; secrets never shown.
#![cfg(feature = "opentelemetry")]

use crate::common;
use common::otlp::{self, header_pairs};
use common::stalled::Stalled;

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric, number_data_point};
use serde_json::{Value, json};

use common::{Target, Workdir, bin, closed_port, error, executor, ok, stderr};
use loaddensity::ActionError;
use loaddensity::sinks::prometheus::{BYTES_BUCKETS, LATENCY_BUCKETS_MS};

/// The OTEL_* variables the exporter reads; cleared in child processes unless a test
/// sets them.
const OTEL_VARS: &[&str] = &[
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SERVICE_NAME",
];

type Received = otlp::Received<ExportMetricsServiceRequest>;
type Inbox = otlp::Inbox<ExportMetricsServiceRequest>;
type Receiver = otlp::Receiver<ExportMetricsServiceRequest>;

#[derive(Clone)]
struct GrpcSink(Inbox);

#[tonic::async_trait]
impl MetricsService for GrpcSink {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let headers = header_pairs(&request.metadata().clone().into_headers());
        self.0.lock().expect("inbox").push(Received {
            path: "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export".into(),
            headers,
            request: request.into_inner(),
        });
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

/// A receiver with the official tonic `MetricsService` server.
fn grpc_receiver() -> Receiver {
    Receiver::grpc(|inbox| {
        tonic::transport::Server::builder().add_service(MetricsServiceServer::new(GrpcSink(inbox)))
    })
}

/// An OTLP/HTTP receiver: POST /v1/metrics with a protobuf
/// `ExportMetricsServiceRequest`.
fn http_receiver() -> Receiver {
    Receiver::http("/v1/metrics")
}

/// `loaddensity` with no OTEL_* variable inherited.
fn clean_bin() -> Command {
    let mut command = bin();
    for var in OTEL_VARS {
        command.env_remove(var);
    }
    command
}

/// Runs `loaddensity run` on `script`; returns its output, the summary and the wall time.
fn run_script(work: &Workdir, script: &Value, env: &[(&str, &str)]) -> (Output, Value, Duration) {
    let path = work.write("run.json", &script.to_string());
    let summary = work.path("summary.json");
    let _ = std::fs::remove_file(&summary);
    let started = Instant::now();
    let output = clean_bin()
        .env("LOADDENSITY_LOG", "info")
        .envs(env.iter().copied())
        .args([
            "--quiet",
            "run",
            path.to_str().expect("path"),
            "--summary-json",
        ])
        .arg(&summary)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run loaddensity");
    let elapsed = started.elapsed();
    assert!(output.status.success(), "run failed: {}", stderr(&output));
    (output, common::read_json(&summary), elapsed)
}

fn test_start(target: &Target, seconds: f64) -> Value {
    json!(["LD_start_test", {
        "user_count": 2, "spawn_rate": 100, "test_time": seconds,
        "wait_time": {"constant": 0.001},
        "tasks": [
            {"method": "GET", "url": target.url("/bytes/300"), "name": "bytes"},
            {"method": "GET", "url": target.url("/status/500"), "name": "status 500"},
        ],
    }])
}

fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

fn attribute_keys(attributes: &[KeyValue]) -> Vec<&str> {
    let mut keys: Vec<&str> = attributes.iter().map(|kv| kv.key.as_str()).collect();
    keys.sort_unstable();
    keys
}

/// Every metric of one export, by name.
fn metrics(request: &ExportMetricsServiceRequest) -> BTreeMap<String, Metric> {
    request
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .map(|m| (m.name.clone(), m.clone()))
        .collect()
}

/// What one export says: requests by outcome, histogram counts, attribute keys.
#[derive(Debug, Default, PartialEq)]
struct Totals {
    success: u64,
    failure: u64,
    latency_count: u64,
    size_count: u64,
}

fn totals(request: &ExportMetricsServiceRequest, exponential: bool) -> Totals {
    let metrics = metrics(request);
    let mut totals = Totals::default();
    if let Some(Some(metric::Data::Sum(sum))) =
        metrics.get("loaddensity.requests").map(|m| m.data.clone())
    {
        for point in &sum.data_points {
            let value = match point.value {
                Some(number_data_point::Value::AsInt(v)) => u64::try_from(v).expect("count"),
                other => panic!("requests point is not an integer: {other:?}"),
            };
            match attr(&point.attributes, "outcome") {
                Some("success") => totals.success += value,
                Some("failure") => totals.failure += value,
                other => panic!("outcome {other:?}"),
            }
        }
    }
    for (name, slot) in [
        ("loaddensity.request.latency", &mut totals.latency_count),
        ("loaddensity.response.size", &mut totals.size_count),
    ] {
        match metrics.get(name).and_then(|m| m.data.clone()) {
            Some(metric::Data::Histogram(h)) if !exponential => {
                *slot = h.data_points.iter().map(|p| p.count).sum();
            }
            Some(metric::Data::ExponentialHistogram(h)) if exponential => {
                *slot = h.data_points.iter().map(|p| p.count).sum();
            }
            None => {}
            other => panic!("{name}: unexpected data {other:?}"),
        }
    }
    totals
}

fn summary_counts(summary: &Value) -> (u64, u64) {
    let requests = summary["totals"]["requests"].as_u64().expect("requests");
    let failures = summary["totals"]["failures"].as_u64().expect("failures");
    assert!(
        requests > failures && failures > 0,
        "both outcomes: {summary}"
    );
    (requests, failures)
}

#[test]
fn grpc_receiver_gets_names_units_attributes_and_every_request() {
    let target = Target::start();
    let receiver = grpc_receiver();
    let work = Workdir::new();
    let secret = "SECRET-grpc-7f3a9c";
    let script = json!([
        ["LD_start_opentelemetry_exporter", {
            "endpoint": receiver.url(),
            "service_name": "ld-under-test",
            "export_interval_ms": 300,
            "headers": {"x-api-key": secret},
        }],
        test_start(&target, 1.5),
        ["LD_stop_opentelemetry_exporter", {}],
    ]);
    let (output, summary, _) = run_script(
        &work,
        &script,
        &[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=ci,team=perf",
        )],
    );
    let (requests, failures) = summary_counts(&summary);
    let received = receiver.received();
    assert!(received.len() >= 2, "periodic exports: {}", received.len());

    // Cumulative: the last export holds every request of the run.
    let last = &received.last().expect("export").request;
    assert_eq!(
        totals(last, false),
        Totals {
            success: requests - failures,
            failure: failures,
            latency_count: requests,
            size_count: requests,
        }
    );
    let resource = last.resource_metrics[0]
        .resource
        .as_ref()
        .expect("resource");
    assert_eq!(
        attr(&resource.attributes, "service.name"),
        Some("ld-under-test")
    );
    assert_eq!(
        attr(&resource.attributes, "deployment.environment"),
        Some("ci")
    );
    assert_eq!(attr(&resource.attributes, "team"), Some("perf"));
    assert_eq!(
        last.resource_metrics[0].scope_metrics[0]
            .scope
            .as_ref()
            .expect("scope")
            .name,
        "loaddensity"
    );

    let metrics = metrics(last);
    let names: Vec<&str> = metrics.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "loaddensity.request.latency",
            "loaddensity.requests",
            "loaddensity.response.size"
        ]
    );
    assert_eq!(metrics["loaddensity.requests"].unit, "1");
    assert_eq!(metrics["loaddensity.request.latency"].unit, "ms");
    assert_eq!(metrics["loaddensity.response.size"].unit, "By");
    let Some(metric::Data::Sum(sum)) = &metrics["loaddensity.requests"].data else {
        panic!("requests is not a sum");
    };
    assert!(sum.is_monotonic);
    assert_eq!(sum.aggregation_temporality, 2, "cumulative");
    let mut series: Vec<(String, String, String)> = sum
        .data_points
        .iter()
        .map(|p| {
            assert_eq!(
                attribute_keys(&p.attributes),
                ["name", "outcome", "request_type"]
            );
            (
                attr(&p.attributes, "request_type")
                    .unwrap_or("?")
                    .to_string(),
                attr(&p.attributes, "name").unwrap_or("?").to_string(),
                attr(&p.attributes, "outcome").unwrap_or("?").to_string(),
            )
        })
        .collect();
    series.sort();
    assert_eq!(
        series,
        [
            ("GET".into(), "bytes".into(), "success".into()),
            ("GET".into(), "status 500".into(), "failure".into()),
        ]
    );
    let Some(metric::Data::Histogram(latency)) = &metrics["loaddensity.request.latency"].data
    else {
        panic!("latency is not an explicit histogram");
    };
    for point in &latency.data_points {
        assert_eq!(point.explicit_bounds, LATENCY_BUCKETS_MS);
        assert_eq!(
            attribute_keys(&point.attributes),
            ["name", "outcome", "request_type"]
        );
    }
    let Some(metric::Data::Histogram(size)) = &metrics["loaddensity.response.size"].data else {
        panic!("size is not an explicit histogram");
    };
    let bytes_point = size
        .data_points
        .iter()
        .find(|p| attr(&p.attributes, "name") == Some("bytes"))
        .expect("bytes series");
    assert_eq!(bytes_point.explicit_bounds, BYTES_BUCKETS);
    // Every /bytes/300 response is 300 bytes: in the (256, 1024] bucket.
    assert_eq!(
        bytes_point.bucket_counts[2], bytes_point.count,
        "{bytes_point:?}"
    );
    assert_eq!(bytes_point.sum, Some(300.0 * bytes_point.count as f64));

    // The header reached the collector, and was never shown.
    assert!(
        received
            .iter()
            .all(|r| r.headers.get("x-api-key").map(String::as_str) == Some(secret))
    );
    let report = &summary["sinks"]["opentelemetry"];
    assert_eq!(report["export_errors"], 0, "{report}");
    assert!(report["exports"].as_u64().unwrap_or(0) >= 2, "{report}");
    assert_eq!(report["running"], false);
    assert!(!stderr(&output).contains(secret), "{}", stderr(&output));
    assert!(!summary.to_string().contains(secret));
}

#[test]
fn http_receiver_from_environment_delta_exponential() {
    let target = Target::start();
    let receiver = http_receiver();
    let work = Workdir::new();
    let secret = "SECRET-env-51be02";
    let script = json!([
        ["LD_start_opentelemetry_exporter", {
            "export_interval_ms": 250,
            "temporality": "delta",
            "histogram": "exponential",
        }],
        test_start(&target, 1.5),
        ["LD_stop_opentelemetry_exporter", {}],
    ]);
    let headers = format!("x-env-key={secret}");
    let (output, summary, _) = run_script(
        &work,
        &script,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url().as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_HEADERS", headers.as_str()),
        ],
    );
    let (requests, failures) = summary_counts(&summary);
    let received = receiver.received();
    assert!(received.len() >= 2, "periodic exports: {}", received.len());
    // Delta: the exports add up to the run.
    let mut sum = Totals::default();
    for export in &received {
        assert_eq!(export.path, "/v1/metrics");
        assert_eq!(
            export.headers.get("x-env-key").map(String::as_str),
            Some(secret)
        );
        let resource = export.request.resource_metrics[0]
            .resource
            .as_ref()
            .expect("resource");
        assert_eq!(
            attr(&resource.attributes, "service.name"),
            Some("loaddensity")
        );
        let t = totals(&export.request, true);
        sum.success += t.success;
        sum.failure += t.failure;
        sum.latency_count += t.latency_count;
        sum.size_count += t.size_count;
        for metric in metrics(&export.request).values() {
            match &metric.data {
                Some(metric::Data::Sum(s)) => assert_eq!(s.aggregation_temporality, 1, "delta"),
                Some(metric::Data::ExponentialHistogram(h)) => {
                    assert_eq!(h.aggregation_temporality, 1, "delta");
                }
                other => panic!("{}: {other:?}", metric.name),
            }
        }
    }
    assert_eq!(
        sum,
        Totals {
            success: requests - failures,
            failure: failures,
            latency_count: requests,
            size_count: requests,
        }
    );
    let report = &summary["sinks"]["opentelemetry"];
    assert_eq!(report["protocol"], "http/protobuf");
    assert_eq!(report["endpoint"], format!("{}/v1/metrics", receiver.url()));
    assert_eq!(report["export_errors"], 0, "{report}");
    assert!(!stderr(&output).contains(secret), "{}", stderr(&output));
}

/// `loaddensity bench` requests/s against the built-in target, with extra flags and
/// environment; returns (rps, wall time, summary).
fn bench_rps(
    target: &Target,
    work: &Workdir,
    flags: &[&str],
    env: &[(&str, &str)],
) -> (f64, Duration, Value) {
    let summary = work.path("bench.json");
    let _ = std::fs::remove_file(&summary);
    let url = target.url("/");
    let started = Instant::now();
    let output = clean_bin()
        .envs(env.iter().copied())
        .args([
            "--quiet",
            "--threads",
            "1",
            "bench",
            &url,
            "-u",
            "4",
            "-d",
            "2s",
            "--summary-json",
        ])
        .arg(&summary)
        .args(flags)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("bench");
    let elapsed = started.elapsed();
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = common::read_json(&summary);
    (
        summary["totals"]["rps"].as_f64().expect("rps"),
        elapsed,
        summary,
    )
}

#[test]
fn collectors_that_are_down_or_silent_do_not_slow_the_load() {
    let target = Target::start();
    let work = Workdir::new();
    let silent = Stalled::start();
    let down = format!("http://127.0.0.1:{}", closed_port());
    let hung = format!("http://{}", silent.addr);
    // Frequent exports with a short timeout, set the OpenTelemetry way.
    let env = [
        ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1500"),
    ];
    let timeout = Duration::from_millis(1500);
    // Interleaved, best of three, so that a noisy neighbour does not decide.
    let mut best = [0.0f64; 3];
    for _ in 0..3 {
        let (rps, _, _) = bench_rps(&target, &work, &[], &[]);
        best[0] = best[0].max(rps);
        for (slot, endpoint) in [(1, &down), (2, &hung)] {
            let (rps, elapsed, summary) = bench_rps(&target, &work, &["--otlp", endpoint], &env);
            best[slot] = best[slot].max(rps);
            // 2 s of load, then a stop bounded by the timeout, plus start-up slack.
            assert!(
                elapsed < Duration::from_secs(2) + timeout + Duration::from_secs(3),
                "{endpoint}: the process took {elapsed:?}"
            );
            let report = &summary["sinks"]["opentelemetry"];
            if slot == 1 {
                assert!(
                    report["export_errors"].as_u64().unwrap_or(0) >= 1,
                    "{report}"
                );
            }
            assert_eq!(report["exports"], 0, "{report}");
        }
    }
    let [base, down_rps, hung_rps] = best;
    eprintln!(
        "no sink {base:.0} req/s, collector down {down_rps:.0}, collector silent {hung_rps:.0}"
    );
    // Not blocked: a loop that waited on the collector (1.5 s timeouts, exports every
    // 200 ms) would run at a small fraction of its speed. The sink's cost is measured
    // in bench/compare.sh; a timed ratio in a test fails on a noisy machine.
    assert!(
        down_rps >= 0.5 * base,
        "collector down: {down_rps:.0} vs {base:.0} req/s"
    );
    assert!(
        hung_rps >= 0.5 * base,
        "collector silent: {hung_rps:.0} vs {base:.0} req/s"
    );
}

#[test]
fn bad_arguments_give_clear_errors_and_start_is_idempotent() {
    let mut executor = executor();
    let down = format!("http://127.0.0.1:{}", closed_port());
    let actions = json!([
        ["LD_start_opentelemetry_exporter", {"endpoint": "not a url"}],
        ["LD_start_opentelemetry_exporter", {"endpoint": "collector:4317"}],
        ["LD_start_opentelemetry_exporter", {"endpoint": down, "export_interval_ms": 0}],
        ["LD_start_opentelemetry_exporter", {"endpoint": down, "protocol": "http/json"}],
        ["LD_start_opentelemetry_exporter", {"endpoint": down, "temporality": "sideways"}],
        ["LD_start_opentelemetry_exporter", {"endpoint": down, "histogram": "hdr"}],
        ["LD_start_opentelemetry_exporter", {"endpoint": down, "headers": {"x-api-key": "SECRET-bad\nvalue"}}],
        ["LD_start_opentelemetry_exporter", {"endpoint": down, "timeout_ms": -5}],
        ["LD_start_opentelemetry_exporter", {"endpont": down}],
        ["LD_start_opentelemetry_exporter", [down, "svc", 60000]],
        ["LD_start_opentelemetry_exporter", {"endpoint": "http://127.0.0.1:9"}],
        ["LD_stop_opentelemetry_exporter", {}],
        ["LD_stop_opentelemetry_exporter", {}],
    ]);
    let failures = executor
        .validate_document(&actions, "<test>")
        .expect("document");
    let invalid: Vec<usize> = failures.iter().map(|f| f.index).collect();
    assert_eq!(
        invalid,
        [0, 1, 2, 3, 4, 5, 6, 7, 8],
        "validate: {failures:?}"
    );

    let records = executor.execute_document(&actions, "<test>");
    let text = |i: usize| error(&records[i]).to_string();
    let field = |i: usize| match error(&records[i]) {
        ActionError::Argument { field, .. } => field.clone(),
        other => panic!("not an argument error: {other}"),
    };
    assert_eq!(field(0), "endpoint");
    assert!(
        text(0).contains("`not a url` is not an http:// or https:// URL"),
        "{}",
        text(0)
    );
    assert!(text(1).contains("scheme `collector`"), "{}", text(1));
    assert_eq!(field(2), "export_interval_ms");
    assert!(text(2).contains("got 0"), "{}", text(2));
    assert_eq!(field(3), "protocol");
    assert!(text(3).contains("`grpc` or `http/protobuf`"), "{}", text(3));
    assert_eq!(field(4), "temporality");
    assert!(text(4).contains("`cumulative` or `delta`"), "{}", text(4));
    assert_eq!(field(5), "histogram");
    assert!(
        text(5).contains("`explicit` or `exponential`"),
        "{}",
        text(5)
    );
    assert_eq!(field(6), "headers");
    assert!(
        text(6).contains("x-api-key") && !text(6).contains("SECRET"),
        "{}",
        text(6)
    );
    assert_eq!(field(7), "timeout_ms");
    assert!(text(8).contains("unknown field `endpont`"), "{}", text(8));

    // Positional arguments (LoadDensity's order), then a second start: no change.
    let first = ok(&records[9]);
    assert_eq!(first["endpoint"], down.as_str());
    assert_eq!(first["export_interval_ms"], 60000);
    assert_eq!(first["already_running"], false);
    let second = ok(&records[10]);
    assert_eq!(second["endpoint"], down.as_str(), "{second}");
    assert_eq!(second["already_running"], true);
    assert_eq!(ok(&records[11]), &json!({"stopped": true}));
    assert_eq!(ok(&records[12]), &json!({"stopped": false}));
    // Reported after the stop, too.
    let report = &executor.summary().sinks["opentelemetry"];
    assert_eq!(report["running"], false, "{report}");
    assert_eq!(report["endpoint"], down.as_str());
    assert_eq!(executor.failures(), 9);
}

#[test]
fn cli_otlp_flag_checks_its_endpoint() {
    let target = Target::start();
    let output = clean_bin()
        .args([
            "bench",
            &target.url("/"),
            "-d",
            "1s",
            "--otlp",
            "localhost:4317",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("bench");
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(text.contains("--otlp localhost:4317"), "{text}");
    assert!(text.contains("is not an http:// or https:// URL"), "{text}");

    // A bad endpoint from the environment is named with its variable.
    let work = Workdir::new();
    let path = work.write(
        "env.json",
        &json!([["LD_start_opentelemetry_exporter", {}]]).to_string(),
    );
    let output = clean_bin()
        .env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "collector:4317")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
        .args(["run", path.to_str().expect("path")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run");
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(
        text.contains(
            "`collector:4317` (from OTEL_EXPORTER_OTLP_METRICS_ENDPOINT) is not an http://"
        ),
        "{text}"
    );
}

#[test]
fn stop_with_a_silent_collector_is_bounded_in_process() {
    use loaddensity::sinks::opentelemetry::{
        OtelOptions, OtlpProtocol, start_opentelemetry_exporter, stop_opentelemetry_exporter,
    };
    let silent = Stalled::start();
    let context = loaddensity::RunContext::new();
    let sinks = context.sinks();
    for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
        let options = OtelOptions {
            endpoint: Some(format!("http://{}", silent.addr)),
            export_interval_ms: Some(100),
            protocol: Some(protocol),
            timeout_ms: Some(800),
            ..OtelOptions::default()
        };
        start_opentelemetry_exporter(sinks, &options).expect("start");
        // Something to export (an SDK with nothing recorded does not export).
        let endpoint = loaddensity::event::intern_endpoint("GET", "/in-process");
        let event = loaddensity::RequestEvent {
            endpoint: &endpoint,
            start_time: std::time::SystemTime::now(),
            response_time: Duration::from_millis(3),
            response_length: 10,
            status: Some(200),
            outcome: loaddensity::Outcome::Success,
            url: None,
            response: None,
            retry: false,
        };
        for _ in 0..10 {
            context.listeners().fire(&event);
        }
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        assert!(stop_opentelemetry_exporter(sinks));
        let took = started.elapsed();
        eprintln!("{protocol:?}: stop with a silent collector took {took:?}");
        // The export in flight holds the flush back: the stop waits for the timeout,
        // and no longer.
        assert!(
            took >= Duration::from_millis(700),
            "{protocol:?}: stop took {took:?}"
        );
        assert!(
            took < Duration::from_millis(800 + 500),
            "{protocol:?}: stop took {took:?}"
        );
    }
}
