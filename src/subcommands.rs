//! LoadDensity's CLI subcommands beside ours: `run-dir`, `run-str`, `init`,
//! `import-har`, `serve`, and the hidden legacy flags `-e FILE`, `-d DIR`,
//! `-c PATH` and `--execute_str JSON` that older integrations still pass.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use loaddensity::ExecutorOptions;
use loaddensity::action::parse_json;
use loaddensity::control::{ControlServer, ServerOptions, SocketToken, TlsFiles};
use loaddensity::har::{HarFilter, TestSettings, har_to_tasks, load_har};

use super::{Loaded, executor, finish, load_documents};

/// LoadDensity's hidden single-flag forms.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct LegacyFlags {
    /// Run an action file (legacy form of `run`).
    #[arg(short = 'e', long = "execute_file", hide = true, value_name = "FILE")]
    execute_file: Option<String>,
    /// Run every .json of a directory (legacy form of `run-dir`).
    #[arg(short = 'd', long = "execute_dir", hide = true, value_name = "DIR")]
    execute_dir: Option<String>,
    /// Run a JSON string (legacy form of `run-str`).
    #[arg(long = "execute_str", hide = true, value_name = "JSON")]
    execute_str: Option<String>,
    /// Scaffold a project (legacy form of `init`).
    #[arg(short = 'c', long = "create_project", hide = true, value_name = "PATH")]
    create_project: Option<PathBuf>,
}

/// Flags of `loaddensity import-har`.
#[derive(Debug, clap::Args)]
pub(crate) struct ImportHarArgs {
    /// The HAR file.
    pub(crate) har: PathBuf,
    /// Where to write the action script (default: standard output).
    #[arg(short = 'o', long)]
    pub(crate) output: Option<PathBuf>,
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
    #[arg(long)]
    pub(crate) token: Option<String>,
    /// PEM certificate chain: serve TLS 1.2+.
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    pub(crate) tls_key: Option<PathBuf>,
}

/// Runs already loaded documents on one executor, then writes the summary.
pub(crate) fn run_loaded(
    options: ExecutorOptions,
    documents: Vec<Loaded>,
    summary_json: Option<&Path>,
) -> Result<ExitCode> {
    let mut executor = executor(options)?;
    for (name, document) in documents {
        match document {
            Ok(document) => {
                executor.execute_document(&document, &name);
            }
            Err(error) => {
                eprintln!("error: {error}");
                return finish(&executor, summary_json, None, true);
            }
        }
    }
    finish(&executor, summary_json, None, false)
}

/// `run-str JSON`: the document, also when it arrives JSON-encoded twice (as
/// Windows shells tend to pass it).
pub(crate) fn parse_run_str(text: &str) -> Loaded {
    let name = "<run-str>".to_string();
    let document = match parse_json(text, &name) {
        Ok(serde_json::Value::String(inner)) => parse_json(&inner, &name),
        other => other,
    };
    (name, document)
}

/// The legacy flags, in LoadDensity's order; an error when none is given.
pub(crate) fn run_legacy(flags: &LegacyFlags, options: ExecutorOptions) -> Result<ExitCode> {
    let mut documents = Vec::new();
    if let Some(file) = &flags.execute_file {
        documents.extend(load_documents(file)?);
    }
    if let Some(dir) = &flags.execute_dir {
        if !Path::new(dir).is_dir() {
            bail!("-d {dir}: not a directory");
        }
        documents.extend(load_documents(dir)?);
    }
    if let Some(text) = &flags.execute_str {
        documents.push(parse_run_str(text));
    }
    let mut code = ExitCode::SUCCESS;
    if !documents.is_empty() {
        code = run_loaded(options, documents, None)?;
    }
    if let Some(path) = &flags.create_project {
        init_project(path)?;
    }
    if flags.execute_file.is_none()
        && flags.execute_dir.is_none()
        && flags.execute_str.is_none()
        && flags.create_project.is_none()
    {
        bail!("no command given; see `loaddensity --help`");
    }
    Ok(code)
}

/// `import-har`: writes the action script and reports what was left out.
pub(crate) fn import_har(args: &ImportHarArgs) -> Result<ExitCode> {
    let har = load_har(&args.har)?;
    let filter = HarFilter::new(&args.include, &args.exclude, args.keep_think_time)?;
    let conversion = har_to_tasks(&har, &filter).with_context(|| args.har.display().to_string())?;
    for skipped in &conversion.skipped {
        eprintln!("skipped entry {}: {}", skipped.entry, skipped.reason);
    }
    for warning in &conversion.warnings {
        eprintln!("warning: {warning}");
    }
    let settings = TestSettings {
        user: args.user.clone(),
        user_count: args.users,
        spawn_rate: args.spawn_rate,
        test_time: args.test_time,
    };
    let script = conversion
        .action_json(&settings)
        .with_context(|| args.har.display().to_string())?;
    let text = serde_json::to_string_pretty(&script)? + "\n";
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .context("cannot write to standard output")?,
    }
    eprintln!(
        "{} tasks{} ({} excluded by --include/--exclude, {} skipped)",
        conversion.tasks.len(),
        args.output
            .as_ref()
            .map(|p| format!(" written to {}", p.display()))
            .unwrap_or_default(),
        conversion.filtered,
        conversion.skipped.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// `serve`: binds, then runs received documents until a client quits the server
/// or Ctrl-C.
pub(crate) fn serve(args: &ServeArgs, options: ExecutorOptions) -> Result<ExitCode> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    let server_options = ServerOptions {
        host: args.host.clone(),
        port: args.port,
        framed: args.framed,
        token: args.token.clone().and_then(SocketToken::new),
        tls,
    }
    .with_env_token();
    let mode = format!(
        "{}{}{}",
        if args.framed { "framed" } else { "legacy" },
        if server_options.tls.is_some() {
            ", TLS"
        } else {
            ""
        },
        if server_options.token.is_some() {
            ", token required"
        } else {
            ""
        }
    );
    let server = ControlServer::start(server_options)?;
    let mut executor = executor(options)?;
    let interrupt = executor.interrupt_token();
    let mut stdout = std::io::stdout();
    writeln!(stdout, "Server started on {} ({mode})", server.addr())?;
    let report = server.serve(&mut executor, &interrupt);
    writeln!(
        stdout,
        "Server shutdown complete ({} documents run)",
        report.documents
    )?;
    Ok(ExitCode::SUCCESS)
}

const EXAMPLE_SCRIPT: &str = r#"{"load_density": [
  ["LD_start_target_server", {"addr": "127.0.0.1:18090"}],
  ["LD_start_test", {
    "user_detail_dict": {"user": "fast_http_user"},
    "host": "http://127.0.0.1:18090",
    "wait_time": {"between": [0.1, 0.2]},
    "csv_sources": [{"name": "users", "file_path": "keyword/users.csv", "cycle": true}],
    "load_shape": "stages",
    "shape_config": {"stages": [
      {"duration": 5, "users": 5, "spawn_rate": 5},
      {"duration": 5, "users": 10, "spawn_rate": 5}
    ]},
    "tasks": {"mode": "sequence", "tasks": [
      {"method": "get", "url": "/", "name": "home",
       "assertions": [{"type": "status_code", "value": 200}]},
      {"method": "post", "url": "/echo", "name": "sign-up",
       "json": {"user": "${csv.users.username}", "email": "${csv.users.email}"},
       "assertions": [{"type": "contains", "value": "${csv.users.username}"}]}
    ]}
  }],
  ["LD_assert_sla", {"rules": [
    {"type": "failure_rate", "op": "lte", "value": 0.01},
    {"type": "latency_p95", "op": "lt", "value": 500},
    {"type": "requests", "op": "gte", "value": 10}
  ]}],
  ["LD_stop_target_server", {}],
  ["LD_generate_summary_report", {"report_name": "summary"}]
]}
"#;

const EXAMPLE_CSV: &str =
    "username,email\nalice,alice@example.com\nbob,bob@example.com\ncarol,carol@example.com\n";

const EXAMPLE_README: &str = "\
# A loaddensity project

`keyword/keyword1.json` starts the built-in target on 127.0.0.1:18090, ramps 5 then 10
users over two 5 s stages (a `stages` load shape), reads sign-up data from
`keyword/users.csv`, then checks SLA gates (failure rate, p95, request count).

    cd LoadDensity
    loaddensity validate keyword/keyword1.json   # check it, send nothing
    loaddensity run-dir keyword                  # run it; exit code 99 when a gate fails

Point `host` at your service and remove the target server actions to test it.
";

/// `init PATH`: `PATH/LoadDensity/` with `keyword/keyword1.json`, `keyword/users.csv`
/// and `README.md`. Existing files are left alone (an error names them).
pub(crate) fn init_project(path: &Path) -> Result<ExitCode> {
    let root = path.join("LoadDensity");
    let keyword = root.join("keyword");
    let files = [
        (keyword.join("keyword1.json"), EXAMPLE_SCRIPT),
        (keyword.join("users.csv"), EXAMPLE_CSV),
        (root.join("README.md"), EXAMPLE_README),
    ];
    for (file, _) in &files {
        if file.exists() {
            bail!("{} already exists; not overwriting it", file.display());
        }
    }
    std::fs::create_dir_all(&keyword)
        .with_context(|| format!("cannot create {}", keyword.display()))?;
    for (file, text) in &files {
        std::fs::write(file, text).with_context(|| format!("cannot write {}", file.display()))?;
    }
    eprintln!(
        "created {} (see its README.md: cd {} && loaddensity run-dir keyword)",
        root.display(),
        root.display()
    );
    Ok(ExitCode::SUCCESS)
}
