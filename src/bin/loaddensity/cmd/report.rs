//! `loaddensity report` and the `--html/--junit/--csv` flags of `loaddensity run`:
//! reports rendered from a result document (saved, or the executor's own).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use loaddensity::Executor;
use loaddensity::output::write_atomically;
use loaddensity::report::{render_html, render_junit};
use loaddensity::stats::ResultDocument;

use crate::documents::report_document;
use crate::flags::{ReportArgs, RunReportFlags};
use crate::outputs::refuse_inputs;

/// `loaddensity report RESULT.json ...`.
pub(crate) fn report(args: &ReportArgs) -> Result<ExitCode> {
    let (document, source) = report_document(args.result.as_deref(), args.db.as_deref(), args.run)?;
    let per_request = [
        ("--csv", args.csv.is_some()),
        ("--json", args.json.is_some()),
        ("--xml", args.xml.is_some()),
    ];
    if let Some((flag, _)) = per_request.iter().find(|(_, given)| *given) {
        bail!(
            "{flag}: {} is a result document, which holds the statistics but not one record per \
             request; write per-request reports during the run (`loaddensity run --csv FILE`, \
             LD_generate_csv_report, LD_generate_json_report, LD_generate_xml_report)",
            source
        );
    }
    if args.html.is_none() && args.junit.is_none() {
        bail!("nothing to render: give --html FILE and/or --junit FILE");
    }
    let inputs: Vec<PathBuf> = args.result.iter().chain(&args.db).cloned().collect();
    refuse_inputs(
        &[
            ("--html", args.html.as_deref()),
            ("--junit", args.junit.as_deref()),
        ],
        &inputs,
    )?;
    write_document_reports(&document, args.html.as_deref(), args.junit.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the HTML and JUnit reports of a result document.
fn write_document_reports(
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
