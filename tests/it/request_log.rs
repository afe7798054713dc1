//! The request log keeps memory bounded whatever the number of requests: records
//! spill to a temporary file through a bounded queue (alone in this test binary, so
//! that the process's peak memory is this test's).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use loaddensity::event::{Outcome, RequestEvent, intern_endpoint};
use loaddensity::listener::RequestListener;
use loaddensity::request_log::RequestLog;

/// Peak resident memory of this process, KiB (VmHWM).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM")
}

#[test]
fn a_long_uncapped_log_spills_to_disk_with_bounded_memory() {
    let log = Arc::new(RequestLog::new(None, Default::default()).expect("request log"));
    let before = peak_rss_kib();
    let threads = 4;
    let per_thread = 200_000u64;
    // 100-byte URLs: 800,000 records are about 110 MB on disk.
    let url = format!("http://127.0.0.1:8080/{}", "x".repeat(78));
    std::thread::scope(|scope| {
        for t in 0..threads {
            let log = log.clone();
            let url = url.clone();
            scope.spawn(move || {
                let ok = intern_endpoint("GET", "/memory-ok");
                let bad = intern_endpoint("GET", "/memory-bad");
                for i in 0..per_thread {
                    let failed = (i + t) % 10 == 0;
                    log.on_request(&RequestEvent {
                        endpoint: if failed { &bad } else { &ok },
                        start_time: SystemTime::now(),
                        response_time: Duration::from_micros(100 + i % 1000),
                        response_length: 512,
                        status: Some(if failed { 500 } else { 200 }),
                        outcome: if failed {
                            Outcome::Failure("HTTP 500 Internal Server Error")
                        } else {
                            Outcome::Success
                        },
                        url: Some(&url),
                        response: None,
                        retry: false,
                    });
                    // Every loop is bounded; let the writer keep up now and then.
                    if i % 50_000 == 0 {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            });
        }
    });
    log.flush().expect("flush");
    let counts = log.counts();
    let fired = threads * per_thread;
    assert_eq!(counts.requests, fired);
    assert_eq!(counts.kept + counts.dropped, fired);
    assert!(counts.kept > fired / 2, "{counts:?}");
    let grown_mib = (peak_rss_kib().saturating_sub(before)) / 1024;
    assert!(grown_mib <= 64, "peak memory grew by {grown_mib} MiB");
    // Every kept record reads back, in full.
    let mut read = 0u64;
    let mut failures = 0u64;
    for record in log.records().expect("records") {
        let record = record.expect("record");
        assert_eq!(record.url, url);
        failures += u64::from(!record.is_success());
        read += 1;
    }
    assert_eq!(read, counts.kept);
    assert!(failures > 0);
    eprintln!(
        "kept {} dropped {} peak +{grown_mib} MiB",
        counts.kept, counts.dropped
    );
}

#[test]
fn a_capped_log_counts_what_it_does_not_keep() {
    let log = RequestLog::new(Some(1000), Default::default()).expect("request log");
    let endpoint = intern_endpoint("GET", "/capped");
    for _ in 0..5000 {
        log.on_request(&RequestEvent {
            endpoint: &endpoint,
            start_time: SystemTime::now(),
            response_time: Duration::from_micros(10),
            response_length: 1,
            status: Some(200),
            outcome: Outcome::Success,
            url: Some("http://127.0.0.1/"),
            response: None,
            retry: false,
        });
    }
    assert_eq!(log.records().expect("records").count(), 1000);
    let counts = log.counts();
    assert_eq!(
        (counts.kept, counts.over_cap, counts.requests),
        (1000, 4000, 5000)
    );
    log.clear().expect("clear");
    assert_eq!(log.records().expect("records").count(), 0);
    assert_eq!(log.counts().requests, 0);
}
