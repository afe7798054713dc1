//! The report files of a run or a saved result: HTML and JUnit from a result
//! document, the per-request CSV from the executor's request log. Each is written
//! whole or not at all (`loaddensity::output`). Used by `report` and at the end of
//! `run` (`--html`, `--junit`, `--csv`).

use std::path::Path;

use anyhow::{Context, Result};
use loaddensity::Executor;
use loaddensity::output::write_atomically;
use loaddensity::report::{render_html, render_junit};
use loaddensity::stats::ResultDocument;

use crate::flags::RunReportFlags;

/// Writes the HTML and JUnit reports of a result document.
pub(crate) fn write_document_reports(
    document: &ResultDocument,
    html: Option<&Path>,
    junit: Option<&Path>,
) -> Result<()> {
    if let Some(path) = html {
        let text = render_html(document).context("--html")?;
        write(path, &text)?;
    }
    if let Some(path) = junit {
        write(path, &render_junit(document))?;
    }
    Ok(())
}

/// The reports `loaddensity run --html/--junit/--csv` writes at the end.
pub(crate) fn write_run_reports(executor: &Executor, flags: &RunReportFlags) -> Result<()> {
    if flags.html.is_some() || flags.junit.is_some() {
        let document = executor.summary();
        write_document_reports(&document, flags.html.as_deref(), flags.junit.as_deref())?;
    }
    if let Some(path) = &flags.csv {
        executor
            .write_csv_report(path)
            .with_context(|| format!("--csv {}", path.display()))?;
        if let Some(note) = executor.request_log_note() {
            eprintln!("{note}");
        }
    }
    Ok(())
}

/// Writes a report whole or not at all (a previous report stays when writing fails).
fn write(path: &Path, text: &str) -> Result<()> {
    write_atomically(path, text.as_bytes())?;
    Ok(())
}
