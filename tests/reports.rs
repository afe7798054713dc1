//! The result document and the reports, end to end against the built-in target: a
//! result read back reproduces every printed percentile; `loaddensity report`
//! renders JUnit from a saved result; LoadDensity's report commands write files that
//! real parsers read, with counts equal to the summary's.

mod common;

use common::{Target, Workdir, run, stderr, stdout};
use loaddensity::stats::ResultDocument;
use serde_json::{Value, json};

/// A script with a fast endpoint, a slow one and one that always fails (HTTP 500),
/// followed by one passing and one failing SLA gate.
fn script(target: &Target, start_extra: Value, after: Value) -> String {
    let mut start = json!({"user_count": 4, "spawn_rate": 100, "test_time": 1.5,
    "wait_time": {"constant": 0.005},
    "tasks": [
        {"method": "get", "url": target.url("/"), "name": "home"},
        {"method": "get", "url": target.url("/delay/15"), "name": "slow"},
        {"method": "get", "url": target.url("/status/500"), "name": "broken"}
    ]});
    if let (Some(map), Some(extra)) = (start.as_object_mut(), start_extra.as_object()) {
        map.extend(extra.clone());
    }
    let mut actions = json!([
        ["LD_start_test", start],
        ["LD_evaluate_sla", {"rules": [
            {"type": "latency_p95", "name": "slow", "op": "gte", "value": 15},
            {"type": "failure_rate", "op": "lte", "value": 0.01}
        ]}]
    ]);
    if let (Some(list), Some(more)) = (actions.as_array_mut(), after.as_array()) {
        list.extend(more.iter().cloned());
    }
    json!({"load_density": actions}).to_string()
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn pct(h: &hdrhistogram::Histogram<u64>, q: f64) -> f64 {
    ms(h.value_at_quantile(q))
}

/// The table's cells for one name: (p50, p90, p95, p99) as printed with 2 decimals.
fn printed_row(table: &str, name: &str) -> Vec<String> {
    let line = table
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no row for {name} in\n{table}"));
    let cells: Vec<&str> = line.split('|').collect();
    cells[2].split_whitespace().map(str::to_string).collect()
}

#[test]
fn result_document_reproduces_every_printed_percentile() {
    let target = Target::start();
    let work = Workdir::new();
    let file = work.write("s.json", &script(&target, json!({}), json!([])));
    let result = work.path("result.json");
    let output = run(
        &[
            "run",
            file.to_str().expect("utf8"),
            "--summary-json",
            result.to_str().expect("utf8"),
        ],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let table = stdout(&output);

    let document = ResultDocument::read(&result).expect("result document reads back");
    // The run block.
    let run = &document.run;
    assert_eq!(run.script.as_deref(), file.to_str());
    assert_eq!(run.tool_version, env!("CARGO_PKG_VERSION"));
    let started = run.started_at.as_deref().expect("started_at");
    let ended = run.ended_at.as_deref().expect("ended_at");
    for stamp in [started, ended] {
        assert!(
            stamp.ends_with('Z') && stamp.len() == "2026-01-01T00:00:00.000Z".len(),
            "{stamp}"
        );
        humantime::parse_rfc3339(stamp).expect("RFC 3339");
    }
    assert!(started < ended);
    assert_eq!(run.load.len(), 1);
    assert_eq!(run.load[0].users, 4);
    let sla = run.sla.as_ref().expect("gates ran");
    assert_eq!(sla.len(), 2);
    assert!(sla[0].passed && !sla[1].passed, "{sla:?}");

    // Overall: the serialized numbers come back from the decoded histogram.
    let overall = document.overall_histogram().expect("overall histogram");
    assert_eq!(overall.len(), document.totals.requests);
    let l = &document.latency_overall;
    assert_eq!(pct(&overall, 0.5), l.p50_ms);
    assert_eq!(pct(&overall, 0.9), l.p90_ms);
    assert_eq!(pct(&overall, 0.95), l.p95_ms);
    assert_eq!(pct(&overall, 0.99), l.p99_ms);
    assert_eq!(ms(overall.max()), l.max_ms);

    // Per name: serialized and printed numbers come back.
    assert_eq!(document.per_name.len(), 3);
    for (name, stats) in &document.per_name {
        let h = document
            .name_histogram(name)
            .expect("histogram present")
            .expect("decodes");
        assert_eq!(h.len(), stats.count, "{name}");
        assert_eq!(pct(&h, 0.5), stats.p50_ms, "{name}");
        assert_eq!(pct(&h, 0.9), stats.p90_ms, "{name}");
        assert_eq!(pct(&h, 0.95), stats.p95_ms, "{name}");
        assert_eq!(pct(&h, 0.99), stats.p99_ms, "{name}");
        assert_eq!(ms(h.max()), stats.max_ms, "{name}");
        assert_eq!(ms(h.min()), stats.min_ms, "{name}");
        let printed = printed_row(&table, name);
        let recomputed: Vec<String> = [0.5, 0.9, 0.95, 0.99]
            .iter()
            .map(|q| format!("{:.2}", pct(&h, *q)))
            .collect();
        assert_eq!(printed, recomputed, "{name}: printed {printed:?}");
    }
    assert!(document.per_name["slow"].p50_ms >= 15.0);
    assert_eq!(
        document.per_name["broken"].failures,
        document.per_name["broken"].count
    );
}

#[test]
fn a_bad_result_document_names_the_file_and_the_field() {
    let work = Workdir::new();
    let bad = work.write("bad.json", r#"{"totals": {"requests": "many"}}"#);
    let output = run(
        &[
            "report",
            bad.to_str().expect("utf8"),
            "--junit",
            work.path("j.xml").to_str().expect("utf8"),
        ],
        None,
    );
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("bad.json") && err.contains("totals.requests"),
        "{err}"
    );
    let missing = work.path("missing.json");
    let output = run(
        &[
            "report",
            missing.to_str().expect("utf8"),
            "--junit",
            "x.xml",
        ],
        None,
    );
    assert!(
        stderr(&output).contains("missing.json"),
        "{}",
        stderr(&output)
    );
}
