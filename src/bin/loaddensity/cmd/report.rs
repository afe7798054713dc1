//! `loaddensity report`: HTML and JUnit reports rendered from a saved result document
//! (a file or a run of the SQLite history), without rerunning anything.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::documents::report_document;
use crate::flags::ReportArgs;
use crate::outputs::refuse_inputs;
use crate::reports::write_document_reports;

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
