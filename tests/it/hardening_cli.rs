//! The command line under careless and hostile input (issue #26): outputs written
//! whole or not at all, no silent overwrite of an input or an existing file, clear
//! errors instead of panics for huge durations, a size cap on scripts, no empty
//! token, and the exit code of an interrupted run. Each test runs the real binary.

use crate::common;

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Target, Workdir, bin, read_json, stderr};
use serde_json::json;

fn run_in(dir: &Path, args: &[&str]) -> Output {
    bin()
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run loaddensity")
}

/// A short closed-model test against `target`, then `after`'s actions.
fn short_script(target: &Target, after: serde_json::Value) -> String {
    let mut actions = vec![json!(["LD_start_test", {
        "user_count": 1, "spawn_rate": 10, "test_time": 0.3,
        "wait_time": {"constant": 0.02},
        "tasks": [{"method": "get", "request_url": target.url("/json")}]
    }])];
    if let Some(list) = after.as_array() {
        actions.extend(list.iter().cloned());
    }
    json!({ "load_density": actions }).to_string()
}

/// Waits for `child` at most `limit`; kills it (and fails) when it is still running.
fn wait_bounded(child: &mut Child, limit: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The binary under a shell that first runs `setup` (e.g. a `ulimit`), then `args`.
fn under_shell(setup: &str, dir: &Path, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("{setup}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_loaddensity"))
        .args(args)
        .current_dir(dir)
        .env("LOADDENSITY_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run sh")
}

#[test]
fn a_failing_second_report_file_leaves_the_first_intact() {
    let target = Target::start();
    let work = Workdir::new();
    // A previous good pair; the failure file's path is now a directory.
    work.write("r_success.json", "GOOD\n");
    std::fs::create_dir(work.path("r_failure.json")).expect("mkdir");
    work.write(
        "s.json",
        &short_script(
            &target,
            json!([["LD_generate_json_report", {"json_file_name": "r"}]]),
        ),
    );
    let output = run_in(work.dir.path(), &["run", "s.json"]);
    assert!(!output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("r_failure.json"),
        "{}",
        stderr(&output)
    );
    let first = std::fs::read_to_string(work.path("r_success.json")).expect("read");
    assert_eq!(first, "GOOD\n", "the previous success file was replaced");
    // No temporary file is left in the folder.
    let names: Vec<String> = std::fs::read_dir(work.dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.ends_with(".tmp")),
        "left behind: {names:?}"
    );
}

#[cfg(unix)]
#[test]
fn a_report_that_cannot_be_written_whole_leaves_the_previous_one() {
    let target = Target::start();
    let work = Workdir::new();
    work.write("s.json", &short_script(&target, json!([])));
    let output = run_in(
        work.dir.path(),
        &["run", "s.json", "--summary-json", "result.json"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    work.write("report.html", "GOOD\n");
    work.write("summary.json", "GOOD\n");
    // Files may not grow past 2 blocks (at most 2 KiB): the HTML report and the
    // summary cannot be written whole. SIGXFSZ is ignored, so the write fails.
    let limit = "trap '' XFSZ; ulimit -f 2";
    let output = under_shell(
        limit,
        work.dir.path(),
        &["report", "result.json", "--html", "report.html"],
    );
    assert!(!output.status.success(), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(work.path("report.html")).expect("read"),
        "GOOD\n",
        "the previous report was truncated"
    );
    let output = under_shell(
        limit,
        work.dir.path(),
        &["run", "s.json", "--summary-json", "summary.json"],
    );
    assert!(!output.status.success(), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(work.path("summary.json")).expect("read"),
        "GOOD\n",
        "the previous summary was truncated"
    );
}

#[test]
fn an_output_onto_an_input_is_refused() {
    let target = Target::start();
    let work = Workdir::new();
    let script = short_script(&target, json!([]));
    work.write("s.json", &script);
    for flag in ["--summary-json", "--html", "--csv"] {
        // `./s.json` is the same file under another name.
        let output = run_in(work.dir.path(), &["run", "s.json", flag, "./s.json"]);
        assert!(!output.status.success(), "{flag}: {}", stderr(&output));
        assert!(
            stderr(&output).contains("refusing to overwrite"),
            "{flag}: {}",
            stderr(&output)
        );
        assert_eq!(
            std::fs::read_to_string(work.path("s.json")).expect("read"),
            script,
            "{flag} replaced the script"
        );
    }
    let output = run_in(
        work.dir.path(),
        &["run-dir", ".", "--summary-json", "s.json"],
    );
    assert!(!output.status.success(), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(work.path("s.json")).expect("read"),
        script
    );
}

/// A one-entry HAR recording.
fn har(target: &Target) -> String {
    json!({"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": [{
        "startedDateTime": "2024-03-01T10:00:00.000Z", "time": 1.0,
        "request": {"method": "GET", "url": target.url("/json"), "httpVersion": "HTTP/1.1",
                    "headers": [], "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
        "response": {"status": 200, "statusText": "", "httpVersion": "HTTP/1.1", "headers": [],
                     "cookies": [], "content": {"size": 0, "mimeType": "text/plain"},
                     "redirectURL": "", "headersSize": -1, "bodySize": 0},
        "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0}
    }]}})
    .to_string()
}

#[test]
fn import_har_refuses_an_existing_output_without_force() {
    let target = Target::start();
    let work = Workdir::new();
    work.write("rec.har", &har(&target));
    work.write("existing.json", "KEEP\n");
    let output = run_in(
        work.dir.path(),
        &["import-har", "rec.har", "-o", "existing.json"],
    );
    assert!(!output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("--force"), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(work.path("existing.json")).expect("read"),
        "KEEP\n"
    );
    let output = run_in(
        work.dir.path(),
        &["import-har", "rec.har", "-o", "existing.json", "--force"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let script = read_json(&work.path("existing.json"));
    assert_eq!(script["load_density"][0][0], "LD_start_test");
    // The recording itself is never an output, --force or not.
    let output = run_in(
        work.dir.path(),
        &["import-har", "rec.har", "-o", "rec.har", "--force"],
    );
    assert!(!output.status.success(), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(work.path("rec.har")).expect("read"),
        har(&target)
    );
}

#[cfg(unix)]
#[test]
fn init_does_not_follow_a_dangling_symlink() {
    let work = Workdir::new();
    let keyword = work.path("p/LoadDensity/keyword");
    std::fs::create_dir_all(&keyword).expect("mkdir");
    let elsewhere = work.path("elsewhere.json");
    std::os::unix::fs::symlink(&elsewhere, keyword.join("keyword1.json")).expect("symlink");
    let output = run_in(work.dir.path(), &["init", "p"]);
    assert!(!output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("already exists"),
        "{}",
        stderr(&output)
    );
    assert!(!elsewhere.exists(), "init wrote through the symlink");
}

#[test]
fn huge_durations_are_errors_not_panics() {
    let target = Target::start();
    let url = target.url("/");
    let work = Workdir::new();
    work.write("s.json", &short_script(&target, json!([])));
    for args in [
        vec!["bench", &url, "-d", "1e23h"],
        vec!["bench", &url, "-d", "100000000000000000000000h"],
        vec!["bench", &url, "--timeout", "18446744073709551616s"],
        vec!["run", "s.json", "--start-at", "+18446744073709551615s"],
    ] {
        let output = run_in(work.dir.path(), &args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("too"),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
    }
}

#[test]
fn a_script_over_64_mib_is_refused() {
    let work = Workdir::new();
    // Valid JSON, 64 MiB of spaces then `[]`: too large, whatever it holds.
    let path = work.path("big.json");
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        let spaces = vec![b' '; 1024 * 1024];
        for _ in 0..64 {
            file.write_all(&spaces).expect("write");
        }
        file.write_all(b"[]").expect("write");
    }
    let output = run_in(work.dir.path(), &["run", "big.json"]);
    assert!(!output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("too large") && stderr(&output).contains("64 MiB"),
        "{}",
        stderr(&output)
    );
}

#[cfg(unix)]
#[test]
fn run_dev_zero_stops_at_the_cap() {
    let work = Workdir::new();
    // Address space bounded (1 GiB), so a reader without a cap fails fast instead of
    // taking the machine's memory.
    let started = Instant::now();
    let output = under_shell("ulimit -v 1048576", work.dir.path(), &["run", "/dev/zero"]);
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("too large"), "{}", stderr(&output));
}

#[test]
fn bench_rate_is_r_and_q_is_quiet() {
    let target = Target::start();
    let url = target.url("/");
    let work = Workdir::new();
    let output = run_in(
        work.dir.path(),
        &[
            "bench",
            &url,
            "-r",
            "50",
            "-u",
            "2",
            "-d",
            "0.5s",
            "--summary-json",
            "out.json",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = read_json(&work.path("out.json"));
    assert_eq!(
        summary["run"]["load"][0]["arrival_rate"]["rate"],
        json!(50.0)
    );
    let output = run_in(
        work.dir.path(),
        &[
            "bench",
            &url,
            "-q",
            "-u",
            "1",
            "-d",
            "0.3s",
            "--summary-json",
            "q.json",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = read_json(&work.path("q.json"));
    assert!(summary["run"]["load"][0].get("arrival_rate").is_none());
    assert!(summary["totals"]["requests"].as_u64().expect("requests") > 0);
}

#[test]
fn an_empty_token_is_refused() {
    let mut child = bin()
        .args(["serve", "--host", "127.0.0.1", "--port", "0", "--token", ""])
        .env_remove("LOAD_DENSITY_SOCKET_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let status = wait_bounded(&mut child, Duration::from_secs(10));
    let output = child.wait_with_output().expect("output");
    assert_eq!(status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("--token"), "{}", stderr(&output));
}

/// Starts a 20-second run (with the global flags `flags`), sends `signal` after a
/// second, and returns the exit status and the summary.
#[cfg(unix)]
fn interrupted_run(signal: &str, flags: &[&str]) -> (ExitStatus, serde_json::Value) {
    let target = Target::start();
    let work = Workdir::new();
    let script = json!({"load_density": [["LD_start_test", {
        "user_count": 2, "spawn_rate": 10, "test_time": 20,
        "wait_time": {"constant": 0.05},
        "tasks": [{"method": "get", "request_url": target.url("/json")}]
    }]]});
    let path = work.write("s.json", &script.to_string());
    let summary = work.path("summary.json");
    let mut child = bin()
        .args(flags)
        .args([
            "run",
            path.to_str().expect("utf8"),
            "--summary-json",
            summary.to_str().expect("utf8"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = wait_bounded(&mut child, Duration::from_secs(15));
    (status, read_json(&summary))
}

#[cfg(unix)]
#[test]
fn sigterm_exits_143_and_the_summary_says_interrupted() {
    // One worker thread for the users; the signal is watched on a thread of its own.
    let (status, summary) = interrupted_run("TERM", &["--threads", "1"]);
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert_eq!(summary["run"]["load"][0]["interrupted"], json!(true));
    assert!(summary["totals"]["requests"].as_u64().expect("requests") > 0);
}

#[cfg(unix)]
#[test]
fn sigint_exits_130_and_the_summary_says_interrupted() {
    let (status, summary) = interrupted_run("INT", &[]);
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert_eq!(summary["run"]["load"][0]["interrupted"], json!(true));
}

#[cfg(unix)]
#[test]
fn a_summary_to_a_special_file_is_written_in_place() {
    let target = Target::start();
    let work = Workdir::new();
    work.write("s.json", &short_script(&target, json!([])));
    let output = run_in(
        work.dir.path(),
        &["run", "s.json", "--summary-json", "/dev/stdout"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        common::stdout(&output).contains("\"totals\""),
        "{}",
        common::stdout(&output)
    );
    let output = run_in(
        work.dir.path(),
        &["run", "s.json", "--summary-json", "/dev/null"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!std::fs::metadata("/dev/null").expect("meta").is_file());
}
