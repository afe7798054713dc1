//! Every command-line flag (clap): the subcommands, their arguments, and the value
//! parsers. What the flags do lives in `cmd/`, one file per subcommand.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  loaddensity run examples/quickstart.json          run an action script
  loaddensity run scripts/ --summary-json out.json  run every script of a directory
  cat test.json | loaddensity run -                 read the script from stdin
  loaddensity run s.json --html r.html --junit junit.xml --csv requests.csv
  loaddensity report result.json --junit junit.xml  reports from a saved result
  loaddensity compare base.json new.json --fail-if 'p95>+10%'
  loaddensity validate test.json                    check a script, send nothing
  loaddensity lint test.yaml                        every problem of a script, each with its path
  loaddensity fmt --check scripts/                  is every script in canonical layout? (CI)
  loaddensity schema -o action-schema.json          the JSON Schema of the action language
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
    pub(crate) legacy: LegacyFlags,
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
    /// Run an action script: a file (.json, .yaml, .yml, .toml), every script of a
    /// directory (sorted), or - for stdin (JSON).
    Run(RunArgs),
    /// Merge the result documents of several instances into one exact result.
    Merge(MergeArgs),
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
    /// Every problem of a script in one pass (unknown commands and fields, missing or
    /// mistyped ones, unreachable placeholder sources), each with its path; exit 1
    /// when there is an error.
    Lint(LintArgs),
    /// Rewrite scripts in a canonical layout (LoadDensity's formatter); `--check`
    /// only reports the files that would change (exit 1).
    Fmt(FmtArgs),
    /// Print (or write with -o) the JSON Schema of the action language, for editors.
    Schema {
        /// Write it to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Ad-hoc test of one URL with no think time (like oha or wrk).
    Bench(BenchArgs),
    /// Serve the built-in target: /, /json, /bytes/N, /delay/MS, /status/CODE.
    Target {
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
    },
    /// Run every script (.json, .yaml, .yml, .toml) of a directory, in sorted order (LoadDensity's `run-dir`).
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
    ImportHar(ImportHarArgs),
    /// Serve the control socket: run action JSON sent over TCP (LoadDensity's `serve`).
    Serve(ServeArgs),
    /// Join a Locust 2.x master as a worker: run the script's tests with the users the
    /// master asks for, reporting to it (takes the flags of `run`).
    Worker(WorkerArgs),
}

/// Flags of `loaddensity worker`: those of `run`, and where the master is.
#[derive(Debug, clap::Args)]
pub(crate) struct WorkerArgs {
    #[command(flatten)]
    pub(crate) run: RunArgs,
    /// The Locust master's host (default: the script's master_host, else 127.0.0.1).
    #[arg(long, value_name = "HOST")]
    pub(crate) master_host: Option<String>,
    /// The Locust master's port (default: the script's master_port, else 5557).
    #[arg(long, value_name = "PORT")]
    pub(crate) master_port: Option<u16>,
    /// The Locust user class to run, as named in the master's locustfile (default:
    /// the script's user_detail_dict.user).
    #[arg(long, value_name = "NAME")]
    pub(crate) user_class: Option<String>,
    /// Time between heartbeats to the master, e.g. 1s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) heartbeat_interval: Option<Duration>,
    /// Stop the users and exit non-zero when the master is silent this long, e.g. 15s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) lost_timeout: Option<Duration>,
    /// Give up when no master answers within this time, e.g. 60s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) startup_timeout: Option<Duration>,
}

/// Flags of `loaddensity lint`.
#[derive(Debug, clap::Args)]
pub(crate) struct LintArgs {
    /// Scripts: files, directories (every .json, .yaml, .yml, .toml) or - for stdin.
    #[arg(required = true)]
    pub(crate) paths: Vec<String>,
    /// Print the findings as JSON (LoadDensity's records: rule, severity, message,
    /// location, plus file).
    #[arg(long)]
    pub(crate) json: bool,
}

/// Flags of `loaddensity fmt`.
#[derive(Debug, clap::Args)]
pub(crate) struct FmtArgs {
    /// Scripts: files or directories (every .json, .yaml, .yml, .toml); - formats
    /// standard input (JSON) to standard output.
    #[arg(required = true)]
    pub(crate) paths: Vec<String>,
    /// Change nothing: list the files that are not formatted, and exit 1 if any.
    #[arg(long)]
    pub(crate) check: bool,
    /// Spaces per level in JSON files.
    #[arg(long, default_value_t = 2)]
    pub(crate) indent: usize,
}

/// Flags of `loaddensity run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// FILE, DIR or -.
    pub(crate) path: String,
    /// Write the summary (LoadDensity's schema) to this file at the end.
    #[arg(long)]
    pub(crate) summary_json: Option<PathBuf>,
    /// Serve Prometheus metrics on [ADDR:]PORT while the script runs (port 0 picks a free one).
    #[arg(long, value_name = "[ADDR:]PORT", value_parser = parse_prometheus)]
    pub(crate) prometheus: Option<PrometheusFlag>,
    #[command(flatten)]
    pub(crate) influxdb: InfluxFlags,
    /// Send every request as a span to this Datadog agent's trace intake while the
    /// script runs, e.g. http://localhost:8126.
    #[arg(long, value_name = "AGENT_URL")]
    pub(crate) datadog_apm: Option<String>,
    /// Export metrics over OTLP to this collector URL while the script runs (gRPC,
    /// or the protocol OTEL_EXPORTER_OTLP_PROTOCOL names).
    #[arg(long, value_name = "ENDPOINT")]
    pub(crate) otlp: Option<String>,
    /// Export one span per request over OTLP to this collector URL while the script
    /// runs (gRPC, or the protocol OTEL_EXPORTER_OTLP_TRACES_PROTOCOL names).
    #[arg(long, value_name = "ENDPOINT")]
    pub(crate) otlp_traces: Option<String>,
    /// Send DogStatsD metrics over UDP to HOST:PORT while the script runs.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_host_port)]
    pub(crate) statsd: Option<(String, u16)>,
    /// Serve the web UI (live charts, statistics, controls, Locust's web API) on
    /// [ADDR:]PORT for the whole script, and after it until Ctrl-C (port 0 picks a
    /// free one; default address 127.0.0.1).
    #[arg(long, value_name = "[ADDR:]PORT", value_parser = parse_web)]
    pub(crate) web: Option<PrometheusFlag>,
    /// HTTP basic auth for --web, USER:PASSWORD (needed on any address but loopback;
    /// LOADDENSITY_WEB_AUTH when not given, which keeps it out of the process list).
    #[arg(long, value_name = "USER:PASSWORD", requires = "web")]
    pub(crate) web_auth: Option<String>,
    #[command(flatten)]
    pub(crate) scale: ScaleFlags,
    #[command(flatten)]
    pub(crate) reports: RunReportFlags,
}

/// Flags of `loaddensity bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// The URL to load.
    pub(crate) url: String,
    /// Concurrent users (connections); with `--rate`, the most iterations in flight.
    #[arg(short = 'u', long, default_value_t = 32)]
    pub(crate) users: u32,
    /// Open model: start this many requests per second whatever the target's speed
    /// (latency counts from each request's scheduled start). `-q` is `--quiet`.
    #[arg(short = 'r', long)]
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
    /// Offer HTTP/2 (negotiated by ALPN over https; plain http stays HTTP/1.1, as with
    /// LoadDensity's httpx client). Without it, HTTP/1.1 only.
    #[arg(long)]
    pub(crate) http2: bool,
    /// At most this many requests in flight at once (LoadDensity's `--max-in-flight`;
    /// default: `--users`). Users beyond it would only queue, unmeasured, so this
    /// caps the users started.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_in_flight: Option<u32>,
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

/// LoadDensity's hidden single-flag forms.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct LegacyFlags {
    /// Run an action file (legacy form of `run`).
    #[arg(short = 'e', long = "execute_file", hide = true, value_name = "FILE")]
    pub(crate) execute_file: Option<String>,
    /// Run every script of a directory (legacy form of `run-dir`).
    #[arg(short = 'd', long = "execute_dir", hide = true, value_name = "DIR")]
    pub(crate) execute_dir: Option<String>,
    /// Run a JSON string (legacy form of `run-str`).
    #[arg(long = "execute_str", hide = true, value_name = "JSON")]
    pub(crate) execute_str: Option<String>,
    /// Scaffold a project (legacy form of `init`).
    #[arg(short = 'c', long = "create_project", hide = true, value_name = "PATH")]
    pub(crate) create_project: Option<PathBuf>,
}

/// Scale-out flags of `loaddensity run`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct ScaleFlags {
    /// Run execution segment I of N (0-based): this instance's share of the users,
    /// 1/N of the rates, and CSV rows I, I+N, ... (also LOADDENSITY_SEGMENT=I/N).
    #[arg(long, value_name = "I/N")]
    pub(crate) segment: Option<loaddensity::Segment>,
    /// Parse and validate the script and open the sinks, then wait until this
    /// wall-clock time before the first test: RFC 3339 (2026-01-31T12:00:00Z) or
    /// relative (+30s, +2m).
    #[arg(long, value_name = "TIME", value_parser = parse_start_at)]
    pub(crate) start_at: Option<SystemTime>,
    /// This instance's name in the metric sinks (InfluxDB `instance` tag,
    /// OpenTelemetry `service.instance.id`, remote-write `instance` label). Default
    /// with --segment: the host name (the pod name on Kubernetes).
    #[arg(long, value_name = "NAME")]
    pub(crate) instance: Option<String>,
    /// Push metrics to this Prometheus remote-write URL every 5 s and at the end,
    /// e.g. http://prometheus:9090/api/v1/write.
    #[arg(long, value_name = "URL")]
    pub(crate) prometheus_remote_write: Option<String>,
}

/// Flags of `loaddensity merge`.
#[derive(Debug, clap::Args)]
pub(crate) struct MergeArgs {
    /// Result documents (`--summary-json`); `-` reads one or more concatenated
    /// documents from standard input (e.g. `kubectl logs`).
    #[arg(required = true)]
    pub(crate) results: Vec<String>,
    /// Where to write the merged result.
    #[arg(short = 'o', long)]
    pub(crate) output: PathBuf,
    /// Evaluate these SLA rules (a JSON list, as LD_assert_sla's `rules`) on the merged
    /// result; exit code 99 when one fails.
    #[arg(long, value_name = "RULES.json")]
    pub(crate) sla: Option<PathBuf>,
    /// Merge even when a segment appears twice (its requests then count twice).
    #[arg(long)]
    pub(crate) force: bool,
}

/// Flags of `loaddensity import-har`.
#[derive(Debug, clap::Args)]
pub(crate) struct ImportHarArgs {
    /// The HAR file.
    pub(crate) har: PathBuf,
    /// Where to write the action script (default: standard output); an existing
    /// file is refused without --force.
    #[arg(short = 'o', long)]
    pub(crate) output: Option<PathBuf>,
    /// Replace the file of -o when it exists.
    #[arg(long, requires = "output")]
    pub(crate) force: bool,
    /// Keep only entries whose URL matches this regex (repeatable).
    #[arg(long)]
    pub(crate) include: Vec<String>,
    /// Drop entries whose URL matches this regex (repeatable).
    #[arg(long)]
    pub(crate) exclude: Vec<String>,
    /// The user type.
    #[arg(long, default_value = "fast_http_user")]
    pub(crate) user: String,
    /// `user_count` of the generated test.
    #[arg(long, default_value_t = 10)]
    pub(crate) users: u32,
    /// `spawn_rate` (users per second).
    #[arg(long, default_value_t = 5.0)]
    pub(crate) spawn_rate: f64,
    /// `test_time` in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub(crate) test_time: f64,
    /// Keep the recorded pause before each request as the task's `wait`.
    #[arg(long)]
    pub(crate) keep_think_time: bool,
}

/// Flags of `loaddensity serve` (LoadDensity's names and defaults).
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Host or IP address to bind; anything but loopback needs a token.
    #[arg(long, default_value = "localhost")]
    pub(crate) host: String,
    /// Port to bind (0 picks a free one).
    #[arg(long, default_value_t = loaddensity::control::DEFAULT_PORT)]
    pub(crate) port: u16,
    /// A 4-byte big-endian length before each JSON payload and reply piece.
    #[arg(long)]
    pub(crate) framed: bool,
    /// The shared secret each request's envelope must carry (default: the
    /// LOAD_DENSITY_SOCKET_TOKEN environment variable, which keeps it out of `ps`).
    #[arg(long, value_parser = parse_token)]
    pub(crate) token: Option<String>,
    /// PEM certificate chain: serve TLS 1.2+.
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    pub(crate) tls_key: Option<PathBuf>,
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

/// `--web [ADDR:]PORT`: as `--prometheus`.
fn parse_web(text: &str) -> Result<PrometheusFlag, String> {
    parse_prometheus(text)
}

/// `--token`: an empty one would silently mean "no token".
fn parse_token(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err(
            "empty: an empty token would mean no token at all; give the shared secret, \
             or leave --token out"
                .into(),
        );
    }
    Ok(text.to_string())
}

/// The longest duration a flag takes, in seconds (about 31 years), as for the
/// script's durations.
const MAX_DURATION_SECS: f64 = 1e9;

/// `10s`, `1m`, `500ms`, `1h` or a plain number of seconds, at most
/// [`MAX_DURATION_SECS`].
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    // The unit is the trailing letters, so that `1e3s` reads as 1000 seconds.
    let number = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = match &text[number.len()..] {
        "" => "s",
        unit => unit,
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
    if seconds > MAX_DURATION_SECS {
        return Err(format!(
            "`{text}`: too long; at most {MAX_DURATION_SECS:e} s (about 31 years)"
        ));
    }
    match Duration::try_from_secs_f64(seconds) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err(format!(
            "`{text}`: expected a positive duration (at least 1 ns)"
        )),
        Err(e) => Err(format!("`{text}`: {e}")),
    }
}

/// `--start-at`: RFC 3339 (`2026-01-31T12:00:00Z`, `...+02:00`) or `+DURATION`
/// relative to now (`+30s`, `+2m`, `+500ms`).
fn parse_start_at(text: &str) -> Result<SystemTime, String> {
    let text = text.trim();
    if let Some(relative) = text.strip_prefix('+') {
        let delay = humantime::parse_duration(relative)
            .map_err(|e| format!("`{text}`: expected +DURATION such as +30s or +2m ({e})"))?;
        let too_far = || format!("`{text}`: too far; at most {MAX_DURATION_SECS:e} s from now");
        if delay.as_secs_f64() > MAX_DURATION_SECS {
            return Err(too_far());
        }
        return SystemTime::now().checked_add(delay).ok_or_else(too_far);
    }
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            format!(
                "`{text}`: expected an RFC 3339 time such as 2026-01-31T12:00:00Z, or +30s ({e})"
            )
        })?;
    Ok(SystemTime::from(parsed))
}

#[cfg(test)]
mod tests {
    use super::{
        PrometheusFlag, parse_duration, parse_host_port, parse_prometheus, parse_start_at,
    };
    use std::time::{Duration, SystemTime};

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
        assert!(parse_duration("1e-12s").is_err(), "rounds to zero");
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("abc").is_err());
        // Too large for a Duration: an error, not a panic.
        assert_eq!(parse_duration("1.5e3ms"), Ok(Duration::from_millis(1500)));
        for huge in [
            "1e23h",
            "100000000000000000000000h",
            "18446744073709551616s",
            "1e300",
            "2e9s",
        ] {
            let error = parse_duration(huge).expect_err(huge);
            assert!(error.contains("too long"), "{huge}: {error}");
        }
        assert_eq!(
            parse_duration("1e9"),
            Ok(Duration::from_secs(1_000_000_000))
        );
    }

    /// Any number with any unit: a duration of at most 1e9 s or an error, never a panic.
    #[test]
    fn durations_never_panic() {
        use proptest::prelude::*;
        use proptest::test_runner::{
            Config, FileFailurePersistence, RngAlgorithm, TestRng, TestRunner,
        };
        let config = Config {
            cases: 4000,
            failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[26; 32]));
        let number = prop_oneof![
            "[0-9.eE+-]{0,30}",
            any::<f64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|n| format!("{n:e}")),
            any::<u64>().prop_map(|n| format!("{n}000000")),
        ];
        let unit = prop::sample::select(vec!["", "ms", "s", "m", "h", "x", "e"]);
        runner
            .run(&(number, unit), |(number, unit)| {
                let text = format!("{number}{unit}");
                if let Ok(duration) = parse_duration(&text) {
                    prop_assert!(duration <= Duration::from_secs(1_000_000_000), "{text}");
                    prop_assert!(!duration.is_zero(), "{text}");
                }
                let _ = parse_start_at(&format!("+{number}{unit}"));
                Ok(())
            })
            .expect("durations");
    }

    #[test]
    fn start_times() {
        let at = parse_start_at("2026-01-31T12:00:00Z").expect("parses");
        assert_eq!(
            at.duration_since(SystemTime::UNIX_EPOCH).expect("after"),
            Duration::from_secs(1_769_860_800)
        );
        let offset = parse_start_at("2026-01-31T14:00:00.500+02:00").expect("parses");
        assert_eq!(
            offset.duration_since(at).expect("after"),
            Duration::from_millis(500)
        );
        let soon = parse_start_at("+30s").expect("parses");
        let left = soon.duration_since(SystemTime::now()).expect("future");
        assert!(left > Duration::from_secs(29) && left <= Duration::from_secs(30));
        for bad in [
            "tomorrow",
            "+abc",
            "2026-01-31 12:00",
            "12:00:00Z",
            "+18446744073709551615s",
            "+2000000000s",
        ] {
            assert!(parse_start_at(bad).is_err(), "{bad}");
        }
    }
}
