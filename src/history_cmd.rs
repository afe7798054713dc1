//! `loaddensity compare` and `loaddensity report --db FILE --run ID`: result
//! documents read from files or from the SQLite run history.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use loaddensity::compare::{check, compare, render_comparison};
use loaddensity::history::RunHistory;
use loaddensity::stats::ResultDocument;

use crate::cli::CompareArgs;

/// The exit code of a comparison that passed a `--fail-if` limit (as for SLA gates).
const LIMIT_PASSED: u8 = 99;

/// The result document of a stored run.
pub(crate) fn document_from_db(db: &Path, run: i64) -> Result<ResultDocument> {
    let history = RunHistory::open(db)?;
    let text = history.summary_json(run)?;
    ResultDocument::from_json_text(&text)
        .map_err(|e| e.in_file(&format!("{} (run {run})", db.display())))
        .map_err(Into::into)
}

/// The result document of `report RESULT.json` or `report --db FILE --run ID`.
pub(crate) fn report_document(
    result: Option<&Path>,
    db: Option<&Path>,
    run: Option<i64>,
) -> Result<(ResultDocument, String)> {
    match (result, db, run) {
        (Some(path), _, _) => Ok((ResultDocument::read(path)?, path.display().to_string())),
        (None, Some(db), Some(run)) => Ok((
            document_from_db(db, run)?,
            format!("run {run} of {}", db.display()),
        )),
        _ => anyhow::bail!("give a result document, or --db FILE --run ID"),
    }
}

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
