//! The result document and the reports, end to end against the built-in target: a
//! result read back reproduces every printed percentile; `loaddensity report`
//! renders JUnit from a saved result; LoadDensity's report commands write files that
//! real parsers read, with counts equal to the summary's.

use crate::common;

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

/// Parses an XML file with a real parser.
fn read_xml(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn report_commands_write_files_real_parsers_read_with_the_summarys_counts() {
    let target = Target::start();
    let work = Workdir::new();
    let prefix = |name: &str| work.path(name).to_str().expect("utf8").to_string();
    let after = json!([
        ["LD_generate_csv_report", {"csv_name": prefix("cmd")}],
        ["LD_generate_json_report", {"json_file_name": prefix("cmd")}],
        ["LD_generate_xml_report", {"xml_file_name": prefix("cmd")}],
        ["LD_generate_junit_report", {"report_name": prefix("junit-cmd")}]
    ]);
    let file = work.write("s.json", &script(&target, json!({}), after));
    let result = work.path("result.json");
    let output = run(
        &[
            "run",
            file.to_str().expect("utf8"),
            "--summary-json",
            result.to_str().expect("utf8"),
            "--csv",
            &prefix("flag.csv"),
            "--junit",
            &prefix("flag-junit.xml"),
        ],
        None,
    );
    // LD_evaluate_sla reports without failing: every action passes.
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: Value = common::read_json(&result);
    let requests = summary["totals"]["requests"].as_u64().expect("requests");
    let failures = summary["totals"]["failures"].as_u64().expect("failures");
    assert!(requests > 20 && failures > 0, "{summary}");
    assert_eq!(summary["sinks"]["request_log"]["kept"], requests);
    let per_name = |name: &str, key: &str| summary["per_name"][name][key].as_u64().expect("count");

    // CSV, both from the command and from --csv: one row per request.
    for csv_file in [work.path("cmd.csv"), work.path("flag.csv")] {
        let mut reader = csv::Reader::from_path(&csv_file).expect("csv");
        let header: Vec<String> = reader
            .headers()
            .expect("header")
            .iter()
            .map(str::to_string)
            .collect();
        assert_eq!(
            header.join(","),
            "outcome,Method,test_url,name,status_code,response_time_ms,response_length,error"
        );
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
        assert_eq!(rows.len() as u64, requests);
        let failed = rows.iter().filter(|r| &r[0] == "failure").count() as u64;
        assert_eq!(failed, failures);
        for name in ["home", "slow", "broken"] {
            let n = rows.iter().filter(|r| &r[3] == name).count() as u64;
            assert_eq!(n, per_name(name, "count"), "{name}");
        }
        let broken = rows.iter().find(|r| &r[3] == "broken").expect("broken row");
        assert_eq!(&broken[1], "GET");
        assert_eq!(&broken[2], target.url("/status/500"));
        assert_eq!(&broken[4], "500");
        assert!(broken[7].contains("500"), "{:?}", broken);
        assert!(broken[5].parse::<f64>().expect("ms") > 0.0);
    }

    // JSON: Success_TestN / Failure_TestN, every value a string.
    let success = common::read_json(&work.path("cmd_success.json"));
    let failure = common::read_json(&work.path("cmd_failure.json"));
    let success = success.as_object().expect("object");
    let failure = failure.as_object().expect("object");
    assert_eq!(success.len() as u64 + failure.len() as u64, requests);
    assert_eq!(failure.len() as u64, failures);
    assert!(success.contains_key("Success_Test1") && failure.contains_key("Failure_Test1"));
    for (key, record) in success {
        let record = record.as_object().expect("record");
        let keys: Vec<&str> = record.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "Method",
                "test_url",
                "name",
                "status_code",
                "text",
                "content",
                "headers"
            ],
            "{key}"
        );
        assert!(record.values().all(Value::is_string), "{key}");
    }
    for record in failure.values() {
        let keys: Vec<&str> = record
            .as_object()
            .expect("record")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["Method", "test_url", "name", "status_code", "error"]);
    }
    // Samples: the first responses of each name carry their body and headers.
    let sampled = success
        .values()
        .filter(|r| r["name"] == "home" && !r["text"].as_str().unwrap_or("").is_empty())
        .count();
    assert!((1..=3).contains(&sampled), "{sampled} sampled home records");
    let with_headers = success
        .values()
        .find(|r| !r["headers"].as_str().unwrap_or("").is_empty())
        .expect("a sampled record");
    let headers: Value =
        serde_json::from_str(with_headers["headers"].as_str().expect("text")).expect("headers");
    assert!(headers.get("content-length").is_some(), "{headers}");
    let empty = success
        .values()
        .filter(|r| r["text"] == "" && r["headers"] == "")
        .count();
    assert!(empty > 0, "records beyond the samples carry empty text");

    // XML: the same records under <xml_data>.
    for (path, prefix, n) in [
        (work.path("cmd_success.xml"), "Success_Test", success.len()),
        (work.path("cmd_failure.xml"), "Failure_Test", failure.len()),
    ] {
        let text = read_xml(&path);
        let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "xml_data");
        let records: Vec<_> = root.children().filter(|n| n.is_element()).collect();
        assert_eq!(records.len(), n);
        assert_eq!(records[0].tag_name().name(), format!("{prefix}1"));
        let method = records[0]
            .children()
            .find(|c| c.tag_name().name() == "Method")
            .and_then(|c| c.text());
        assert_eq!(method, Some("GET"));
    }

    // JUnit: one test case per endpoint and per SLA gate.
    for path in [work.path("junit-cmd.xml"), work.path("flag-junit.xml")] {
        let text = read_xml(&path);
        let doc = roxmltree::Document::parse(&text).expect("well-formed JUnit");
        let cases: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        assert_eq!(cases.len(), 3 + 2, "{text}");
        let failed: Vec<&str> = cases
            .iter()
            .filter(|c| c.children().any(|f| f.has_tag_name("failure")))
            .filter_map(|c| c.attribute("name"))
            .collect();
        assert_eq!(failed.len(), 2, "{failed:?}");
        assert!(failed.contains(&"broken"), "{failed:?}");
        assert!(
            failed.iter().any(|n| n.starts_with("failure_rate")),
            "{failed:?}"
        );
        let broken = cases
            .iter()
            .find(|c| c.attribute("name") == Some("broken"))
            .expect("broken case");
        let message = broken
            .children()
            .find(|f| f.has_tag_name("failure"))
            .and_then(|f| f.attribute("message"))
            .expect("message");
        let n = per_name("broken", "count");
        assert!(
            message.starts_with(&format!("{n} of {n} requests failed")),
            "{message}"
        );
        let suites = doc.root_element();
        assert_eq!(suites.attribute("tests"), Some("5"));
        assert_eq!(suites.attribute("failures"), Some("2"));
    }

    // `loaddensity report` renders JUnit again from the saved result.
    let again = work.path("again.xml");
    let output = run(
        &[
            "report",
            result.to_str().expect("utf8"),
            "--junit",
            again.to_str().expect("utf8"),
        ],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(read_xml(&again), read_xml(&work.path("flag-junit.xml")));
    let output = run(
        &["report", result.to_str().expect("utf8"), "--csv", "x.csv"],
        None,
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("not one record per request"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn every_report_command_fails_with_nothing_recorded() {
    let mut executor = common::executor();
    let work = Workdir::new();
    let name = work.path("r").to_str().expect("utf8").to_string();
    for command in [
        json!(["LD_generate_csv_report", {"csv_name": name}]),
        json!(["LD_generate_json_report", {"json_file_name": name}]),
        json!(["LD_generate_xml_report", {"xml_file_name": name}]),
        json!(["LD_generate_junit_report", {"report_name": name}]),
        json!(["LD_generate_html_report", {"html_name": name}]),
        json!(["LD_generate_json"]),
        json!(["LD_generate_xml"]),
        json!(["LD_generate_html"]),
    ] {
        let records = executor.execute_document(&json!([command.clone()]), "t");
        let error = common::error(&records[0]).to_string();
        assert!(
            error.contains("no requests recorded yet"),
            "{command}: {error}"
        );
    }
    assert_eq!(std::fs::read_dir(work.dir.path()).expect("dir").count(), 0);
}

#[test]
fn content_commands_return_the_records_and_clear_forgets_them() {
    let target = Target::start();
    let mut executor = common::executor();
    let document = json!([
        ["LD_start_test", {"user_count": 1, "spawn_rate": 10, "test_time": 0.5,
            "wait_time": {"constant": 0.02},
            "tasks": [
                {"method": "get", "url": target.url("/"), "name": "ok"},
                {"method": "get", "url": target.url("/status/404"), "name": "missing"}
            ]}],
        ["LD_generate_json"],
        ["LD_generate_xml"],
        ["LD_summary"],
        ["LD_clear_records"],
        ["LD_generate_json"]
    ]);
    let records = executor.execute_document(&document, "t");
    let json_pair = common::ok(&records[1]);
    let summary = common::ok(&records[3]);
    let successes = json_pair[0].as_object().expect("success").len() as u64;
    let failures = json_pair[1].as_object().expect("failure").len() as u64;
    assert_eq!(
        successes,
        summary["per_name"]["ok"]["count"].as_u64().expect("n")
    );
    assert_eq!(
        failures,
        summary["per_name"]["missing"]["count"].as_u64().expect("n")
    );
    assert_eq!(json_pair[1]["Failure_Test1"]["status_code"], "404");
    assert_eq!(json_pair[1]["Failure_Test1"]["error"], "HTTP 404 Not Found");
    let xml = common::ok(&records[2]);
    let doc = roxmltree::Document::parse(xml[1].as_str().expect("text")).expect("xml");
    let count = doc
        .root_element()
        .children()
        .filter(|n| n.is_element())
        .count() as u64;
    assert_eq!(count, failures);
    // Samples reach the result document, with credentials never kept.
    let samples = summary["samples"].as_array().expect("samples");
    assert!(!samples.is_empty() && samples.len() <= 6, "{samples:?}");
    let error = common::error(&records[5]).to_string();
    assert!(error.contains("no requests recorded yet"), "{error}");
}

#[test]
fn max_records_caps_the_log_and_the_reports_say_so() {
    let target = Target::start();
    let work = Workdir::new();
    let csv_name = work.path("capped").to_str().expect("utf8").to_string();
    let script = json!({"load_density": [
        ["LD_start_test", {"user_count": 4, "spawn_rate": 100, "test_time": 1,
            "wait_time": {"constant": 0}, "max_records": 100,
            "tasks": [{"method": "get", "url": target.url("/"), "name": "home"}]}],
        ["LD_generate_csv_report", {"csv_name": csv_name}]
    ]})
    .to_string();
    let file = work.write("capped.json", &script);
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
    let summary = common::read_json(&result);
    let requests = summary["totals"]["requests"].as_u64().expect("requests");
    assert!(requests > 100, "{requests}");
    let log = &summary["sinks"]["request_log"];
    assert_eq!(log["kept"], 100);
    assert_eq!(log["over_cap"].as_u64(), Some(requests - 100));
    assert_eq!(log["max_records"], 100);
    let rows = csv::Reader::from_path(work.path("capped.csv"))
        .expect("csv")
        .records()
        .count();
    assert_eq!(rows, 100);
    assert!(
        stdout(&output).contains(&format!(
            "100 of {requests} requests kept (max_records: 100)"
        )),
        "{}",
        stdout(&output)
    );

    // max_records: 0 turns the log off: nothing to report per request.
    let script = json!({"load_density": [
        ["LD_start_test", {"user_count": 1, "spawn_rate": 100, "test_time": 0.3,
            "max_records": 0,
            "tasks": [{"method": "get", "url": target.url("/"), "name": "home"}]}],
        ["LD_generate_csv_report", {"csv_name": csv_name}]
    ]})
    .to_string();
    let file = work.write("off.json", &script);
    let output = run(&["run", file.to_str().expect("utf8")], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("request log off"),
        "{}",
        stderr(&output)
    );
}
