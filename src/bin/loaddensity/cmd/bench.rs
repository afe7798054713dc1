//! `loaddensity bench URL`: an ad-hoc test of one URL with no think time (like oha
//! or wrk), run as the equivalent action document.

use std::process::ExitCode;

use anyhow::{Context, Result};
use loaddensity::ExecutorOptions;
use serde_json::json;

use crate::execute::{executor, finish};
use crate::flags::BenchArgs;
use crate::sinks::{otel, start_influxdb, start_prometheus};

/// `bench URL ...`: runs the benchmark, then writes the summary.
pub(crate) fn bench(args: &BenchArgs, options: ExecutorOptions) -> Result<ExitCode> {
    let mut executor = executor(options)?;
    start_prometheus(&executor, args.prometheus.as_ref())?;
    start_influxdb(&mut executor, &args.influxdb)?;
    otel::start(&mut executor, args.otlp.as_deref())?;
    let document = bench_document(args)?;
    executor.set_script("<bench>");
    executor.execute_document(&document, "<bench>");
    finish(&executor, args.summary_json.as_deref(), None, false)
}

/// The action document equivalent to `loaddensity bench`.
fn bench_document(args: &BenchArgs) -> Result<serde_json::Value> {
    let mut headers = serde_json::Map::new();
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .with_context(|| format!("-H `{header}`: expected `Name: value`"))?;
        headers.insert(name.trim().into(), value.trim().into());
    }
    let mut task = json!({
        "method": args.method,
        "url": args.url,
        "headers": headers,
        "timeout": args.timeout.as_secs_f64(),
    });
    if let Some(body) = &args.body {
        task["data"] = body.clone().into();
    }
    // `--http2`: the client that negotiates HTTP/2 by ALPN; else the lean HTTP/1.1 one.
    let user = if args.http2 {
        "http_user"
    } else {
        "fast_http_user"
    };
    // `--max-in-flight`: no more users than requests allowed in flight.
    let users = args
        .max_in_flight
        .map_or(args.users, |cap| cap.min(args.users));
    let mut start = json!({
        "user_detail_dict": {"user": user},
        "user_count": users,
        "spawn_rate": f64::from(users) * 100.0,
        "test_time": args.duration.as_secs_f64(),
        "wait_time": {"constant": 0},
        "tasks": [task],
        // An ad-hoc benchmark writes no per-request report: no request log.
        "max_records": 0,
    });
    if let Some(rate) = args.rate {
        start["arrival_rate"] = json!({"rate": rate, "max_users": users});
    }
    let mut actions = json!([["LD_start_test", start]]);
    if !args.sla.is_empty() {
        let rules = args
            .sla
            .iter()
            .map(|gate| loaddensity::sla::parse_flag(gate, &args.url).map(|rule| rule.to_json()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("--sla {e}"))?;
        if let Some(list) = actions.as_array_mut() {
            list.push(json!(["LD_assert_sla", {"rules": rules}]));
        }
    }
    Ok(actions)
}
