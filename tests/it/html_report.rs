//! The HTML report in a real browser: a run against the built-in target (with a
//! failing endpoint) writes `--html`; headless Chromium renders it to a PNG and
//! dumps its DOM, and the test checks that the charts drew.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Target, Workdir, run, stderr};

/// Chromium's flags: headless, no network of its own, a throwaway profile.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,2000",
];

fn chromium() -> Option<PathBuf> {
    common::require_program(
        &["chromium", "chromium-browser", "google-chrome"],
        "install the Debian package `chromium` (scripts/test does)",
    )
}

/// Runs chromium with `extra` flags on `page`, killed after 90 s; returns stdout.
fn chromium_run(browser: &Path, work: &Workdir, extra: &[String], page: &Path) -> String {
    let mut child = Command::new(browser)
        .args(FLAGS)
        .arg(format!(
            "--user-data-dir={}",
            work.path("profile").display()
        ))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().expect("chromium output");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Pixels of the PNG close to `rgb`, in rows `rows`.
fn pixels_near(png_path: &Path, rgb: [u8; 3], rows: std::ops::Range<u32>) -> (usize, u32, u32) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_path).expect("open png"),
    ));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("png size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let channels = info.color_type.samples();
    let mut near = 0;
    for y in rows.start..rows.end.min(info.height) {
        for x in 0..info.width {
            let at = (y * info.width + x) as usize * channels;
            let px = &buf[at..at + 3];
            if px.iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 40) {
                near += 1;
            }
        }
    }
    (near, info.width, info.height)
}

#[test]
fn chromium_draws_the_charts() {
    let Some(browser) = chromium() else {
        return;
    };
    let target = Target::start();
    let work = Workdir::new();
    let script = work.write(
        "s.json",
        &serde_json::json!({"load_density": [
            ["LD_start_test", {"user_count": 4, "spawn_rate": 100, "test_time": 3,
                "wait_time": {"constant": 0.005},
                "tasks": [
                    {"method": "get", "request_url": target.url("/delay/2"), "name": "api"},
                    {"method": "get", "request_url": target.url("/status/500"), "name": "broken"}
                ]}],
            ["LD_evaluate_sla", {"rules": [{"type": "failure_rate", "op": "lt", "value": 0.1}]}]
        ]})
        .to_string(),
    );
    let html = work.path("report.html");
    let result = work.path("result.json");
    let output = run(
        &[
            "-q",
            "run",
            script.to_str().expect("utf8"),
            "--summary-json",
            result.to_str().expect("utf8"),
            "--html",
            html.to_str().expect("utf8"),
        ],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = std::fs::read_to_string(&html).expect("report written");
    assert!(text.contains("SLA FAILED: 1 of 1 gates failed"));

    // The DOM as the browser built it: every chart is an SVG with points.
    let dom = chromium_run(&browser, &work, &["--dump-dom".into()], &html);
    for chart in [
        "rps",
        "latency",
        "users",
        "distribution-0",
        "distribution-1",
    ] {
        assert!(
            dom.contains(&format!("data-chart=\"{chart}\"")),
            "no {chart} chart in the DOM"
        );
    }
    let lines: Vec<usize> = dom
        .match_indices("<path d=\"M")
        .map(|(at, _)| {
            let d = &dom[at + 9..];
            d[..d.find('"').expect("end of d")]
                .matches(['M', 'L'])
                .count()
        })
        .collect();
    assert_eq!(lines.len(), 6, "6 timeline lines");
    assert!(
        lines.iter().all(|n| *n >= 3),
        "each line has a point a second: {lines:?}"
    );
    assert!(dom.contains("HTTP 500 Internal Server Error"));

    // The picture: the requests/s line (green), the failures line (red) and the
    // distribution bars (blue) are there in colour, not a blank page.
    let png = work.path("report.png");
    chromium_run(
        &browser,
        &work,
        &[format!("--screenshot={}", png.display())],
        &html,
    );
    let (green, width, height) = pixels_near(&png, [0x2f, 0x8f, 0x4e], 0..2000);
    assert_eq!((width, height), (1280, 2000));
    let (red, ..) = pixels_near(&png, [0xd3, 0x3a, 0x3a], 0..2000);
    let (blue, ..) = pixels_near(&png, [0x4a, 0x7f, 0xd6], 0..2000);
    assert!(green > 300, "requests/s line: {green} green pixels");
    assert!(red > 300, "failures/s line: {red} red pixels");
    assert!(
        blue > 2000,
        "p50 line and distribution bars: {blue} blue pixels"
    );
}
