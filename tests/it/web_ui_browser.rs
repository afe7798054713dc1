//! The web UI in headless Chromium (Debian's `chromium`, driven by `playwright-core`
//! from npm, which scripts/test installs into tests/browser/): during a real test
//! against nginx the request count rises and the charts draw, changing the user
//! count moves the active users, Stop stops the test, the page fits a narrow window,
//! and the console stays clean. The screenshots are kept under the target folder.

use crate::common;
use crate::live::{Target, WebRun};

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

/// tests/browser/, where scripts/test installs playwright-core.
fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

#[test]
fn web_ui_in_chromium_shows_the_test_and_drives_it() {
    let hint =
        "scripts/test installs chromium, Node.js and playwright-core (npm, in tests/browser)";
    let (Some(chromium), Some(node)) = (
        common::require_program(&["chromium", "chromium-browser"], hint),
        common::require_program(&["node"], hint),
    ) else {
        return;
    };
    let dir = browser_dir();
    if !dir.join("node_modules/playwright-core").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "playwright-core is missing: {hint}"
        );
        eprintln!("SKIPPED: playwright-core is not installed: {hint}");
        return;
    }
    let target = Target::start();
    let work = common::Workdir::new();
    let script = work.write(
        "t.json",
        &json!({"load_density": [["LD_start_test", {
            "user_count": 2, "spawn_rate": 50, "test_time": 90,
            "wait_time": {"constant": 0.02},
            "tasks": [
                {"method": "get", "url": target.url("/"), "name": "home"},
                {"method": "get", "url": target.url("/fail"), "name": "broken"},
            ],
        }]]})
        .to_string(),
    );
    let run = WebRun::start(&script, &[]);
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-ui");
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let screenshot = shots.join("web-ui.png");
    let _ = std::fs::remove_file(&screenshot);
    let output = Command::new(node)
        .current_dir(&dir)
        .arg("web_ui.mjs")
        .arg(format!("http://{}/", run.addr))
        .arg(&screenshot)
        .env("CHROMIUM", chromium)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let seen: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "no result from the browser: {stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert!(output.status.success() && seen["ok"] == true, "{seen:#}");
    assert!(seen["requests_later"].as_u64() > seen["requests_first"].as_u64());
    assert_eq!(seen["users"], 5);
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
