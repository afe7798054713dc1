//! Line-protocol encoding speed, in lines per second on one core (bar: 2 million).
//!
//! `cargo bench --bench line_protocol`; criterion reports the throughput in elements
//! (lines) per second.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
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
                        latency_ms: 0.137 + i as f64 * 0.001,
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
                        latency_ms: 12.5 + i as f64 * 0.01,
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
criterion_main!(benches);
