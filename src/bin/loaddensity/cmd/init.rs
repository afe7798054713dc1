//! `loaddensity init PATH` (and the legacy `-c PATH`): scaffolds a project with an
//! example script, a CSV data file and a README.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use loaddensity::output::write_new;

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
/// and `README.md`. Existing files are left alone (an error names them), and so is
/// anything else already at those paths, a dangling symbolic link included: each file
/// is created new, never written through a link.
pub(crate) fn init_project(path: &Path) -> Result<ExitCode> {
    let root = path.join("LoadDensity");
    let keyword = root.join("keyword");
    let files = [
        (keyword.join("keyword1.json"), EXAMPLE_SCRIPT),
        (keyword.join("users.csv"), EXAMPLE_CSV),
        (root.join("README.md"), EXAMPLE_README),
    ];
    // `symlink_metadata`, not `exists`: a dangling link exists too.
    for (file, _) in &files {
        if file.symlink_metadata().is_ok() {
            bail!("{} already exists; not overwriting it", file.display());
        }
    }
    std::fs::create_dir_all(&keyword)
        .with_context(|| format!("cannot create {}", keyword.display()))?;
    for (file, text) in &files {
        write_new(file, text.as_bytes())?;
    }
    eprintln!(
        "created {} (see its README.md: cd {} && loaddensity run-dir keyword)",
        root.display(),
        root.display()
    );
    Ok(ExitCode::SUCCESS)
}
