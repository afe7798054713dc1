//! Line-protocol encoding speed, in lines per second on one core (bar: 2 million).
//!
//! `cargo bench --bench line_protocol`; criterion reports the throughput in elements
//! (lines) per second. Under `cargo test` (no `--bench` argument, and test-harness
//! flags such as `--test-threads` that criterion would refuse) it encodes one round
//! and checks it, as a smoke test.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group};
use loaddensity::sinks::influxdb::line_protocol::{PointFields, SeriesPrefix, encode_line};

const LINES: usize = 10_000;

fn encode(c: &mut Criterion) {
    let prefixes: Vec<SeriesPrefix> = (0..16)
        .map(|i| {
            SeriesPrefix::new(
                "loaddensity_request",
                "GET",
                &format!("/api/v1/items/{i}?page=2 with space,comma=eq"),
            )
        })
        .collect();
    let mut group = c.benchmark_group("line_protocol");
    group.throughput(Throughput::Elements(LINES as u64));
    let mut out = Vec::with_capacity(LINES * 160);
    group.bench_function("encode_success", |b| {
        b.iter(|| {
            out.clear();
            for i in 0..LINES {
                encode_line(
                    &prefixes[i % prefixes.len()],
                    &PointFields {
                        latency_ns: 137_000 + i as u64 * 1_000,
                        response_bytes: 612 + (i as u64 & 1023),
                        success: true,
                        error: None,
                        timestamp_ns: 1_764_000_000_000_000_000 + i as i64 * 7919,
                    },
                    &mut out,
                );
            }
            black_box(out.len())
        })
    });
    group.bench_function("encode_failure_with_error", |b| {
        b.iter(|| {
            out.clear();
            for i in 0..LINES {
                encode_line(
                    &prefixes[i % prefixes.len()],
                    &PointFields {
                        latency_ns: 12_500_000 + i as u64 * 10_000,
                        response_bytes: 0,
                        success: false,
                        error: Some("HTTP 503 Service \"Unavailable\""),
                        timestamp_ns: 1_764_000_000_000_000_000 + i as i64 * 7919,
                    },
                    &mut out,
                );
            }
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, encode);

fn main() {
    if std::env::args().any(|arg| arg == "--bench") {
        benches();
        Criterion::default().configure_from_args().final_summary();
        return;
    }
    let prefix = SeriesPrefix::new("loaddensity_request", "GET", "/a b");
    let mut out = Vec::new();
    for i in 0..LINES {
        encode_line(
            &prefix,
            &PointFields {
                latency_ns: 500_000,
                response_bytes: 2,
                success: i % 2 == 0,
                error: (i % 2 == 1).then_some("HTTP 500"),
                timestamp_ns: i as i64,
            },
            &mut out,
        );
    }
    let text = String::from_utf8(out).expect("utf8");
    assert_eq!(text.lines().count(), LINES);
    assert!(text.starts_with("loaddensity_request,name=/a\\ b,request_type=GET latency_ms=0.5,"));
    eprintln!("line_protocol: {LINES} lines encoded (run `cargo bench` to measure)");
}
