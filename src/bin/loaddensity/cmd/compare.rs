//! `loaddensity compare`: two runs, read from result documents or from the SQLite
//! run history, side by side per endpoint, with `--fail-if` limits.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use loaddensity::compare::{check, compare, render_comparison};
use loaddensity::stats::ResultDocument;

use crate::documents::document_from_db;
use crate::flags::CompareArgs;

/// The exit code of a comparison that passed a `--fail-if` limit (as for SLA gates).
const LIMIT_PASSED: u8 = 99;

/// One run of `compare`: a result document, or with `--db` a run id.
fn load(arg: &str, db: Option<&PathBuf>, which: &str) -> Result<ResultDocument> {
    match db {
        Some(db) => {
            let id: i64 = arg.parse().with_context(|| {
                format!("{which} `{arg}`: with --db, expected a run id (see LD_list_runs)")
            })?;
            document_from_db(db, id)
        }
        None => Ok(ResultDocument::read(Path::new(arg))?),
    }
}

/// `loaddensity compare BASE NEW [--db FILE] [--fail-if LIMIT]...`.
pub(crate) fn compare_runs(args: &CompareArgs) -> Result<ExitCode> {
    let base = load(&args.base, args.db.as_ref(), "BASE")?;
    let new = load(&args.new, args.db.as_ref(), "NEW")?;
    let comparisons = compare(&base, &new);
    let mut out = format!("Base: {}\nNew:  {}\n\n", args.base, args.new);
    out.push_str(&render_comparison(&comparisons));
    let violations = check(&args.fail_if, &comparisons);
    if !args.fail_if.is_empty() {
        out.push('\n');
        if violations.is_empty() {
            out.push_str(&format!(
                "PASS: no limit passed ({})\n",
                args.fail_if
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for v in &violations {
            out.push_str(&format!("FAIL {}: {}: {}\n", v.limit, v.name, v.reason));
        }
    }
    write_stdout(&out)?;
    Ok(if violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(LIMIT_PASSED)
    })
}

fn write_stdout(text: &str) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}
