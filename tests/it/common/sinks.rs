//! Checking that a protocol's requests reach the Prometheus and InfluxDB sinks with
//! their request type: both sinks started in-process, the test run, then the
//! exposition and the UDP line protocol read back.

use std::net::UdpSocket;
use std::time::Duration;

use loaddensity::Executor;
use serde_json::{Value, json};

use super::ok;

/// Runs `start_test` with the Prometheus exporter and a UDP InfluxDB sink attached
/// and asserts that each `(request_type, name)` shows in both.
pub fn assert_request_types_in_sinks(
    executor: &mut Executor,
    start_test: Value,
    source: &str,
    expected: &[(&str, &str)],
) {
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    udp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let udp_port = udp.local_addr().expect("addr").port();
    let records = executor.execute_document(
        &json!([
            ["LD_start_prometheus_exporter", {"port": 0}],
            ["LD_start_influxdb_sink", {"transport": "udp", "host": "127.0.0.1", "port": udp_port}],
            start_test,
        ]),
        source,
    );
    for record in &records {
        ok(record);
    }
    let addr = loaddensity::sinks::prometheus::prometheus_exporter_addr(executor.sinks())
        .expect("exporter");
    let metrics = super::http_get_text(addr, "/metrics");
    for (request_type, name) in expected {
        assert!(
            metrics
                .lines()
                .any(|line| line.starts_with("loaddensity_requests_total")
                    && line.contains(&format!("request_type=\"{request_type}\""))
                    && line.contains(&format!("name=\"{name}\""))),
            "{metrics}"
        );
    }
    executor.execute_document(
        &json!([
            ["LD_stop_influxdb_sink", {}],
            ["LD_stop_prometheus_exporter", {}]
        ]),
        source,
    );
    // Tags in key order, spaces escaped; the sink is process-wide, so other tests'
    // points may show too.
    let wanted: Vec<String> = expected
        .iter()
        .map(|(request_type, name)| {
            format!(
                ",name={},request_type={request_type} ",
                name.replace(' ', "\\ ")
            )
        })
        .collect();
    let mut lines = String::new();
    let mut datagram = vec![0u8; 65536];
    // Bounded: a few datagrams, 5 s each at most.
    for _ in 0..50 {
        if wanted.iter().all(|w| lines.contains(w.as_str())) {
            break;
        }
        let Ok(read) = udp.recv(&mut datagram) else {
            break;
        };
        lines.push_str(&String::from_utf8_lossy(&datagram[..read]));
    }
    for w in &wanted {
        assert!(lines.contains(w.as_str()), "{lines}");
    }
}
