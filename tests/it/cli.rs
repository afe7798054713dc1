//! LoadDensity's CLI subcommands and hidden legacy flags, run from a fresh
//! temporary directory.

use crate::common;

use std::path::Path;
use std::process::{Output, Stdio};

use common::{Target, Workdir, bin, read_json, stderr, stdout};
use serde_json::json;

fn run_in(dir: &Path, args: &[&str]) -> Output {
    bin()
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run loaddensity")
}

/// An action document: a one-second test against `target`, then a summary report.
fn short_test(target: &Target, report: &str) -> String {
    json!({"load_density": [
        ["LD_start_test", {"user_count": 1, "spawn_rate": 10, "test_time": 1,
                           "wait_time": {"constant": 0.02},
                           "tasks": [{"method": "get", "request_url": target.url("/json")}]}],
        ["LD_generate_summary_report", {"report_name": report}]
    ]})
    .to_string()
}

fn report_requests(dir: &Path, report: &str) -> u64 {
    let summary = read_json(&dir.join(format!("{report}.json")));
    summary["totals"]["requests"].as_u64().expect("requests")
}

#[test]
fn init_scaffolds_a_project_that_validates() {
    let work = Workdir::new();
    let output = run_in(work.dir.path(), &["init", "shop"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let project = work.path("shop/LoadDensity");
    let script = std::fs::read_to_string(project.join("keyword/keyword1.json")).expect("script");
    assert!(script.contains("\"load_shape\": \"stages\""), "{script}");
    assert!(script.contains("LD_assert_sla"), "{script}");
    let csv = std::fs::read_to_string(project.join("keyword/users.csv")).expect("csv");
    assert!(csv.starts_with("username,email\n"), "{csv}");
    let readme = std::fs::read_to_string(project.join("README.md")).expect("readme");
    assert!(readme.contains("loaddensity validate"), "{readme}");

    let output = run_in(&project, &["validate", "keyword/keyword1.json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("keyword/keyword1.json: ok"));

    let again = run_in(work.dir.path(), &["init", "shop"]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );

    // The legacy flag -c does the same.
    let output = run_in(work.dir.path(), &["-c", "legacy"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        work.path("legacy/LoadDensity/keyword/keyword1.json")
            .is_file()
    );
}

#[test]
fn run_dir_and_run_str() {
    let target = Target::start();
    let work = Workdir::new();
    let dir = work.path("scripts");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("a.json"), short_test(&target, "after-a")).expect("write");
    std::fs::write(
        dir.join("b.json"),
        r#"[["LD_generate_summary_report", {"report_name": "after-b"}]]"#,
    )
    .expect("write");
    std::fs::write(dir.join("notes.txt"), "not a script").expect("write");
    let output = run_in(
        work.dir.path(),
        &["run-dir", "scripts", "--summary-json", "s.json"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let requests = report_requests(work.dir.path(), "after-a");
    assert!(requests > 0);
    // b.json ran after a.json, on the same statistics.
    assert_eq!(report_requests(work.dir.path(), "after-b"), requests);
    assert_eq!(work.read_json("s.json")["totals"]["requests"], requests);

    let document = short_test(&target, "from-str");
    let output = run_in(work.dir.path(), &["run-str", &document]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(report_requests(work.dir.path(), "from-str") > 0);
    assert!(
        stdout(&output).contains("Aggregated"),
        "{}",
        stdout(&output)
    );
    // The same document JSON-encoded once more, as Windows shells pass it.
    let encoded = serde_json::to_string(&short_test(&target, "double")).expect("encode");
    let output = run_in(work.dir.path(), &["run-str", &encoded]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(report_requests(work.dir.path(), "double") > 0);

    let output = run_in(work.dir.path(), &["run-str", "{\"load_density\": ["]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("<run-str>: line 1"),
        "{}",
        stderr(&output)
    );
    let output = run_in(work.dir.path(), &["run-dir", "missing-dir"]);
    assert!(!output.status.success());
}

#[test]
fn legacy_flags() {
    let target = Target::start();
    let work = Workdir::new();
    work.write("one.json", &short_test(&target, "legacy-e"));
    let output = run_in(work.dir.path(), &["-e", "one.json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(report_requests(work.dir.path(), "legacy-e") > 0);

    let dir = work.path("many");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("x.json"), short_test(&target, "legacy-d")).expect("write");
    let output = run_in(work.dir.path(), &["-d", "many"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(report_requests(work.dir.path(), "legacy-d") > 0);

    let output = run_in(
        work.dir.path(),
        &["--execute_str", &short_test(&target, "legacy-str")],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(report_requests(work.dir.path(), "legacy-str") > 0);

    let output = run_in(work.dir.path(), &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no command given"),
        "{}",
        stderr(&output)
    );

    let help = run_in(work.dir.path(), &["--help"]);
    let text = stdout(&help);
    for listed in ["run-dir", "run-str", "init", "import-har", "serve"] {
        assert!(text.contains(listed), "{listed} not in help: {text}");
    }
    assert!(
        !text.contains("execute_file"),
        "legacy flags are hidden: {text}"
    );
}

#[test]
fn add_package_to_executor_explains_why_not() {
    let work = Workdir::new();
    let script = work.write("pkg.json", r#"[["LD_add_package_to_executor", ["os"]]]"#);
    let output = run_in(
        work.dir.path(),
        &["validate", script.to_str().expect("utf8")],
    );
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("action[0] (LD_add_package_to_executor)"),
        "{err}"
    );
    assert!(err.contains("Executor::add_command"), "{err}");
}
