//! Command-line flags (clap).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  loaddensity run examples/quickstart.json          run an action script
  loaddensity run scripts/ --summary-json out.json  run every .json of a directory
  cat test.json | loaddensity run -                 read the script from stdin
  loaddensity run s.json --html r.html --junit junit.xml --csv requests.csv
  loaddensity report result.json --junit junit.xml  reports from a saved result
  loaddensity compare base.json new.json --fail-if 'p95>+10%'
  loaddensity validate test.json                    check a script, send nothing
  loaddensity run s.json --segment 1/3 --start-at +30s   instance 1 of 3, starting together
  loaddensity merge r0.json r1.json r2.json -o merged.json   one exact result
  loaddensity bench http://127.0.0.1:8080/ -u 32 -d 10s
  loaddensity target --addr 127.0.0.1:8080          serve the built-in target
  loaddensity import-har rec.har -o test.json       turn a browser recording into a script
  loaddensity serve --port 9940 --framed            run scripts sent over TCP
  loaddensity init myproject                        scaffold a project";

/// A fast load tester driven by LoadDensity-compatible JSON action scripts.
#[derive(Debug, Parser)]
#[command(name = "loaddensity", version, after_help = EXAMPLES)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    #[command(flatten)]
    pub(crate) legacy: crate::subcommands::LegacyFlags,
    /// Worker threads (default: every core this process may use).
    #[arg(long, global = true)]
    pub(crate) threads: Option<usize>,
    /// Print the status line even when stderr is not a terminal.
    #[arg(long, global = true)]
    pub(crate) progress: bool,
    /// Never print the status line.
    #[arg(long, short, global = true)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run an action script: a file, every .json of a directory (sorted), or - for stdin.
    Run {
        /// FILE, DIR or -.
        path: String,
        /// Write the summary (LoadDensity's schema) to this file at the end.
        #[arg(long)]
        summary_json: Option<PathBuf>,
        /// Serve Prometheus metrics on [ADDR:]PORT while the script runs (port 0 picks a free one).
        #[arg(long, value_name = "[ADDR:]PORT", value_parser = parse_prometheus)]
        prometheus: Option<PrometheusFlag>,
        #[command(flatten)]
        influxdb: InfluxFlags,
        /// Export metrics over OTLP to this collector URL while the script runs (gRPC,
        /// or the protocol OTEL_EXPORTER_OTLP_PROTOCOL names).
        #[arg(long, value_name = "ENDPOINT")]
        otlp: Option<String>,
        /// Export one span per request over OTLP to this collector URL while the script
        /// runs (gRPC, or the protocol OTEL_EXPORTER_OTLP_TRACES_PROTOCOL names).
        #[arg(long, value_name = "ENDPOINT")]
        otlp_traces: Option<String>,
        #[command(flatten)]
        scale: crate::scale_out::ScaleFlags,
        #[command(flatten)]
        reports: RunReportFlags,
    },
    /// Merge the result documents of several instances into one exact result.
    Merge(crate::merge_cmd::MergeArgs),
    /// Render reports from a saved result document (`--summary-json`), without rerunning.
    Report(ReportArgs),
    /// Compare two runs: per endpoint, the change in rps, p50/p95/p99 and failure
    /// rate; `--fail-if` limits exit with 99 when passed.
    Compare(CompareArgs),
    /// Check a script without sending any request.
    Validate {
        /// FILE, DIR or -.
        path: String,
        /// Also print what execution segment I of N runs of each LD_start_test.
        #[arg(long, value_name = "I/N")]
        segment: Option<loaddensity::Segment>,
    },
    /// Ad-hoc test of one URL with no think time (like oha or wrk).
    Bench(BenchArgs),
    /// Serve the built-in target: /, /json, /bytes/N, /delay/MS, /status/CODE.
    Target {
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
    },
    /// Run every .json of a directory, in sorted order (LoadDensity's `run-dir`).
    RunDir {
        /// The directory.
        dir: String,
        /// Write the summary (LoadDensity's schema) to this file at the end.
        #[arg(long)]
        summary_json: Option<PathBuf>,
    },
    /// Run an action document given as a JSON string (LoadDensity's `run-str`).
    RunStr {
        /// The document, e.g. '{"load_density": [["LD_summary"]]}'.
        json: String,
        /// Write the summary (LoadDensity's schema) to this file at the end.
        #[arg(long)]
        summary_json: Option<PathBuf>,
    },
    /// Scaffold a project in PATH/LoadDensity: an example script with a load shape
    /// and SLA gates, a CSV data file and a README.
    Init {
        /// The folder to create the project in.
        path: PathBuf,
    },
    /// Convert a HAR recording (Chrome/Firefox DevTools, mitmproxy, Charles) into an
    /// action script.
    ImportHar(crate::subcommands::ImportHarArgs),
    /// Serve the control socket: run action JSON sent over TCP (LoadDensity's `serve`).
    Serve(crate::subcommands::ServeArgs),
}

/// Flags of `loaddensity bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// The URL to load.
    pub(crate) url: String,
    /// Concurrent users (connections); with `-q`, the most iterations in flight.
    #[arg(short = 'u', long, default_value_t = 32)]
    pub(crate) users: u32,
    /// Open model: start this many requests per second whatever the target's speed
    /// (latency counts from each request's scheduled start).
    #[arg(short = 'q', long)]
    pub(crate) rate: Option<f64>,
    /// Duration, e.g. 10s, 1m, 500ms.
    #[arg(short = 'd', long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// HTTP method.
    #[arg(short = 'm', long, default_value = "GET")]
    pub(crate) method: String,
    /// A header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    pub(crate) headers: Vec<String>,
    /// Request body.
    #[arg(short = 'b', long)]
    pub(crate) body: Option<String>,
    /// Per-request timeout.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    /// Write the summary to this file at the end.
    #[arg(long)]
    pub(crate) summary_json: Option<PathBuf>,
    /// An SLA gate, e.g. `p95<800`, `failure_rate<0.01`, `requests>=1000`
    /// (repeatable). Exit code 99 when a gate fails.
    #[arg(long)]
    pub(crate) sla: Vec<String>,
    /// Serve Prometheus metrics on [ADDR:]PORT during the test (port 0 picks a free one).
    #[arg(long, value_name = "[ADDR:]PORT", value_parser = parse_prometheus)]
    pub(crate) prometheus: Option<PrometheusFlag>,
    /// Export metrics over OTLP to this collector URL during the test (gRPC, or the
    /// protocol OTEL_EXPORTER_OTLP_PROTOCOL names).
    #[arg(long, value_name = "ENDPOINT")]
    pub(crate) otlp: Option<String>,
    #[command(flatten)]
    pub(crate) influxdb: InfluxFlags,
}

/// `--html`, `--junit`, `--csv` of `loaddensity run`: reports written at the end.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct RunReportFlags {
    /// Write the HTML report to this file at the end.
    #[arg(long, value_name = "FILE")]
    pub(crate) html: Option<PathBuf>,
    /// Write a JUnit XML report (one test case per endpoint and per SLA gate).
    #[arg(long, value_name = "FILE")]
    pub(crate) junit: Option<PathBuf>,
    /// Write every recorded request as CSV.
    #[arg(long, value_name = "FILE")]
    pub(crate) csv: Option<PathBuf>,
}

/// Flags of `loaddensity report`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// The result document (`--summary-json`, `LD_generate_summary_report`); or
    /// `--db FILE --run ID`.
    #[arg(required_unless_present = "db", conflicts_with = "db")]
    pub(crate) result: Option<PathBuf>,
    /// Read the result document of a stored run from this SQLite history (with `--run`).
    #[arg(long, value_name = "FILE", requires = "run")]
    pub(crate) db: Option<PathBuf>,
    /// The id of the stored run (`LD_persist_records`, `LD_list_runs`).
    #[arg(long, value_name = "ID", requires = "db")]
    pub(crate) run: Option<i64>,
    /// Write the HTML report to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) html: Option<PathBuf>,
    /// Write a JUnit XML report to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) junit: Option<PathBuf>,
    /// Write the per-request CSV (needs per-request records, which a result document
    /// does not hold).
    #[arg(long, value_name = "FILE")]
    pub(crate) csv: Option<PathBuf>,
    /// Write LoadDensity's NAME_success.json and NAME_failure.json (per-request).
    #[arg(long, value_name = "NAME")]
    pub(crate) json: Option<String>,
    /// Write LoadDensity's NAME_success.xml and NAME_failure.xml (per-request).
    #[arg(long, value_name = "NAME")]
    pub(crate) xml: Option<String>,
}

/// Flags of `loaddensity compare`.
#[derive(Debug, clap::Args)]
pub(crate) struct CompareArgs {
    /// The base run: a result document, or a run id with `--db`.
    pub(crate) base: String,
    /// The new run: a result document, or a run id with `--db`.
    pub(crate) new: String,
    /// Read both runs from this SQLite history (`LD_persist_records`).
    #[arg(long, value_name = "FILE")]
    pub(crate) db: Option<PathBuf>,
    /// A limit that fails the comparison (exit code 99), `[NAME:]METRIC OP VALUE`:
    /// `p95>+10%` (grew more than 10 %), `rps<-20%`, `p99>+50` (grew more than 50 ms),
    /// `failure_rate>0.01` (new value above 0.01). Repeatable.
    #[arg(long = "fail-if", value_name = "LIMIT", value_parser = parse_fail_if)]
    pub(crate) fail_if: Vec<loaddensity::compare::Limit>,
}

fn parse_fail_if(text: &str) -> Result<loaddensity::compare::Limit, String> {
    loaddensity::compare::parse_limit(text).map_err(|e| e.message)
}

/// `--influxdb-udp` and `--influxdb-url`: the InfluxDB sink for the whole run.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct InfluxFlags {
    /// Send every request as a line-protocol point over UDP to HOST:PORT
    /// (InfluxDB's UDP listener, Telegraf's socket_listener...).
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_host_port, conflicts_with = "influxdb_url")]
    pub(crate) influxdb_udp: Option<(String, u16)>,
    /// Send every request as a line-protocol point by HTTP(S) POST to URL, e.g.
    /// http://127.0.0.1:8086/write?db=loaddensity or .../api/v2/write?org=O&bucket=B.
    /// The token, if any, comes from the INFLUX_TOKEN environment variable.
    #[arg(long, value_name = "URL")]
    pub(crate) influxdb_url: Option<String>,
}

/// `HOST:PORT`, `127.0.0.1:8089` or `[::1]:8089`.
fn parse_host_port(text: &str) -> Result<(String, u16), String> {
    let text = text.trim();
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("`{text}`: expected HOST:PORT, e.g. 127.0.0.1:8089"))?;
    if host.is_empty() || (host.contains(':') && !host.starts_with('[')) {
        return Err(format!(
            "`{text}`: expected HOST:PORT (an IPv6 address in brackets, e.g. [::1]:8089)"
        ));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("`{text}`: expected a port 1..=65535"))?;
    Ok((host.to_string(), port))
}

/// `--prometheus [ADDR:]PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrometheusFlag {
    /// IP address to bind (default 127.0.0.1).
    pub(crate) addr: String,
    /// Port to bind; 0 picks a free one.
    pub(crate) port: u16,
}

/// `9646`, `127.0.0.1:9646`, `0.0.0.0:0` or `[::1]:9646`.
fn parse_prometheus(text: &str) -> Result<PrometheusFlag, String> {
    let text = text.trim();
    let (addr, port) = match text.rsplit_once(':') {
        Some((addr, port)) => (addr, port),
        None => (loaddensity::sinks::prometheus::DEFAULT_ADDR, text),
    };
    if addr.contains(':') && !addr.starts_with('[') {
        return Err(format!(
            "`{text}`: write an IPv6 address in brackets, e.g. [::1]:9646"
        ));
    }
    let port: u16 = port.parse().map_err(|_| {
        format!("`{text}`: expected [ADDR:]PORT with a port 0..=65535 (0 picks a free one)")
    })?;
    loaddensity::sinks::prometheus::parse_addr(addr).map_err(|e| format!("`{text}`: {e}"))?;
    Ok(PrometheusFlag {
        addr: addr.to_string(),
        port,
    })
}

/// `10s`, `1m`, `500ms`, `1h` or a plain number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a duration such as 10s, 1m or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}`; use ms, s, m or h"
            ));
        }
    };
    if !(seconds > 0.0 && seconds.is_finite()) {
        return Err(format!("`{text}`: expected a positive duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::{PrometheusFlag, parse_duration, parse_host_port, parse_prometheus};
    use std::time::Duration;

    #[test]
    fn prometheus_flags() {
        let flag = |addr: &str, port| {
            Ok(PrometheusFlag {
                addr: addr.into(),
                port,
            })
        };
        assert_eq!(parse_prometheus("9646"), flag("127.0.0.1", 9646));
        assert_eq!(parse_prometheus("0.0.0.0:0"), flag("0.0.0.0", 0));
        assert_eq!(parse_prometheus("[::1]:9000"), flag("[::1]", 9000));
        assert!(parse_prometheus("70000").is_err());
        assert!(parse_prometheus("nohost:80").is_err());
        assert!(parse_prometheus("::1:80").is_err());
    }

    #[test]
    fn influxdb_udp_flags() {
        assert_eq!(
            parse_host_port("127.0.0.1:8089"),
            Ok(("127.0.0.1".into(), 8089))
        );
        assert_eq!(parse_host_port("[::1]:9"), Ok(("[::1]".into(), 9)));
        assert_eq!(parse_host_port("influx:8089"), Ok(("influx".into(), 8089)));
        assert!(parse_host_port("8089").is_err());
        assert!(parse_host_port("h:0").is_err());
        assert!(parse_host_port("::1:80").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("abc").is_err());
    }
}
