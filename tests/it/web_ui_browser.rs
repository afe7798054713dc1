//! The web UI in headless Chromium (Debian's `chromium`, driven by `playwright-core`
//! from npm, which scripts/test installs into tests/browser/): during a real test
//! against nginx the request count rises and the charts draw, changing the user
//! count moves the active users, Stop stops the test, Start again (after the script)
//! runs it again, the page fits a narrow window, and the console stays clean. The screenshots are kept under the target folder.

use crate::common;
use crate::live::{Target, WebRun};

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

/// What the browser tests drive: Chromium, Node.js, and tests/browser/ where
/// scripts/test installs playwright-core.
struct Browser {
    chromium: PathBuf,
    node: PathBuf,
    dir: PathBuf,
}

impl Browser {
    /// Chromium, Node.js and tests/browser/ holding each of `needed`; `None` (outside
    /// CI only) when one is missing: `hint` says how to install them.
    fn find(hint: &str, needed: &[&str]) -> Option<Self> {
        let (Some(chromium), Some(node)) = (
            common::require_program(&["chromium", "chromium-browser"], hint),
            common::require_program(&["node"], hint),
        ) else {
            return None;
        };
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
        for needed in needed {
            if !dir.join(needed).exists() {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "{needed} is missing: {hint}"
                );
                eprintln!("SKIPPED: {needed} is missing: {hint}");
                return None;
            }
        }
        Some(Self {
            chromium,
            node,
            dir,
        })
    }

    /// Runs the page script `script` (in tests/browser/) with `args`: whether it
    /// succeeded, and what it saw (the last JSON line it printed).
    fn run(&self, script: &str, args: &[&str]) -> (bool, Value) {
        let output = Command::new(&self.node)
            .current_dir(&self.dir)
            .arg(script)
            .args(args)
            .env("CHROMIUM", &self.chromium)
            .output()
            .expect("run node");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let seen = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| {
                panic!(
                    "no result from the browser: {stdout}\n{}",
                    String::from_utf8_lossy(&output.stderr)
                )
            });
        (output.status.success(), seen)
    }
}

/// A script of one test against `target` lasting `seconds`: two users getting `/`
/// (`home`) and `/fail` (`broken`).
fn home_and_broken_script(work: &common::Workdir, target: &Target, seconds: u32) -> PathBuf {
    work.write(
        "t.json",
        &json!({"load_density": [["LD_start_test", {
            "user_count": 2, "spawn_rate": 50, "test_time": seconds,
            "wait_time": {"constant": 0.02},
            "tasks": [
                {"method": "get", "url": target.url("/"), "name": "home"},
                {"method": "get", "url": target.url("/fail"), "name": "broken"},
            ],
        }]]})
        .to_string(),
    )
}

#[test]
fn web_ui_in_chromium_shows_the_test_and_drives_it() {
    let hint =
        "scripts/test installs chromium, Node.js and playwright-core (npm, in tests/browser)";
    let Some(browser) = Browser::find(hint, &["node_modules/playwright-core"]) else {
        return;
    };
    let target = Target::start();
    let work = common::Workdir::new();
    let script = home_and_broken_script(&work, &target, 90);
    let run = WebRun::start(&script, &[]);
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-ui");
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let screenshot = shots.join("web-ui.png");
    let _ = std::fs::remove_file(&screenshot);
    let (succeeded, seen) = browser.run(
        "web_ui.mjs",
        &[
            &format!("http://{}/", run.addr),
            screenshot.to_str().expect("utf8"),
        ],
    );
    assert!(succeeded && seen["ok"] == true, "{seen:#}");
    assert!(seen["requests_later"].as_u64() > seen["requests_first"].as_u64());
    assert_eq!(seen["users"], 5);
    assert_eq!(seen["restarted_users"], 3, "{seen:#}");
    assert_eq!(seen["state"], "stopped");
    assert_eq!(seen["console_errors"], json!([]));
    let png = std::fs::File::open(&screenshot).expect("the screenshot");
    let info = png::Decoder::new(std::io::BufReader::new(png))
        .read_info()
        .expect("a PNG");
    assert!(info.info().width >= 1280 && info.info().height > 600);
    eprintln!("screenshot: {}", screenshot.display());
    // Stop ended the test well before its 90 s; the UI stays until Ctrl-C.
    run.wait_line("the script has ended", Duration::from_secs(20));
    assert_eq!(run.interrupt(), Some(0));
}

/// Locust's own web UI (its built page from the locust 2.47.0 wheel, which
/// scripts/test unpacks into tests/browser/locust-webui), pointed at our web API in
/// Chromium: the statistics table it renders from our `/stats/requests` holds the
/// summary's numbers.
#[test]
fn locusts_own_web_ui_reads_our_stats() {
    let hint = "scripts/test installs chromium, Node.js, playwright-core and Locust's web UI (tests/browser)";
    let needed = [
        "node_modules/playwright-core",
        "locust-webui/locust/webui/dist/index.html",
    ];
    let Some(browser) = Browser::find(hint, &needed) else {
        return;
    };
    let target = Target::start();
    let work = common::Workdir::new();
    let script = home_and_broken_script(&work, &target, 2);
    let summary_path = work.path("summary.json");
    let run = WebRun::start(
        &script,
        &["--summary-json", summary_path.to_str().expect("utf8")],
    );
    run.wait_line("the script has ended", Duration::from_secs(20));
    let summary = common::read_json(&summary_path);
    let (succeeded, seen) = browser.run("locust_ui.mjs", &[&format!("http://{}", run.addr)]);
    assert!(succeeded && seen["ok"] == true, "{seen:#}");
    assert_eq!(seen["console_errors"], json!([]), "{seen:#}");
    let headers: Vec<&str> = seen["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let column = |title: &str| {
        headers
            .iter()
            .position(|h| *h == title)
            .unwrap_or_else(|| panic!("no `{title}` column in {headers:?}"))
    };
    let rows = seen["rows"].as_array().expect("rows");
    let row = |name: &str| {
        rows.iter()
            .find(|r| r[1] == name)
            .unwrap_or_else(|| panic!("no `{name}` row in {rows:?}"))
    };
    let number = |cell: &Value| -> f64 {
        cell.as_str()
            .and_then(|t| t.replace(',', "").parse().ok())
            .unwrap_or_else(|| panic!("not a number: {cell}"))
    };
    let total = row("Aggregated");
    let requests = summary["totals"]["requests"].as_f64().expect("requests");
    assert!(requests > 10.0);
    assert_eq!(number(&total[column("# Requests")]), requests);
    assert_eq!(
        number(&total[column("# Fails")]),
        summary["totals"]["failures"].as_f64().expect("failures")
    );
    assert_eq!(
        number(&row("broken")[column("# Fails")]),
        summary["per_name"]["broken"]["count"]
            .as_f64()
            .expect("broken")
    );
    let p95 = summary["latency_overall"]["p95_ms"].as_f64().expect("p95");
    let shown = number(&total[column("95%ile (ms)")]);
    assert!(
        (shown - p95).abs() <= 0.01 * p95.max(0.01),
        "p95 {shown} shown, {p95} in the summary"
    );
    assert_eq!(run.interrupt(), Some(0));
}
