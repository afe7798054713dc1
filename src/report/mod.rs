//! Reports rendered from a result document and the request log: one function per
//! format. JUnit and HTML need only the result document, so `loaddensity report
//! RESULT.json` renders them without rerunning anything; the per-request formats
//! (CSV, LoadDensity's JSON and XML) read the request log ([`crate::request_log`]).

mod html;
mod junit;
mod records;

pub use junit::render_junit;
pub use records::{
    CSV_HEADER, RecordCounts, render_json, render_xml, write_csv, write_json, write_xml,
};

use crate::stats::ResultDocument;

/// A report that cannot be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Nothing has been recorded (LoadDensity's behaviour for every report command).
    #[error("no requests recorded yet")]
    NoRecords,
    /// The per-request log is off (`max_records: 0`) or unavailable.
    #[error("{0}")]
    NoRequestLog(String),
    /// The request log could not be read.
    #[error(transparent)]
    Log(#[from] crate::request_log::RequestLogError),
    /// This renderer is not part of this build yet.
    #[error("the {0} report is not built yet")]
    NotBuilt(&'static str),
    /// An output file could not be written (the previous one, if any, is intact).
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    /// A file could not be written or read.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl ReportError {
    pub(crate) fn io(file: &str, source: std::io::Error) -> Self {
        ReportError::Io {
            file: file.to_string(),
            source,
        }
    }
}

/// Renders the self-contained HTML report of a result document (with its response
/// samples in `samples`). The hook the HTML renderer plugs into.
pub fn render_html(document: &ResultDocument) -> Result<String, ReportError> {
    Ok(html::render_html(document))
}

/// Writes a rendered text report to `path`, whole or not at all (the previous file
/// stays when writing fails).
pub fn write_text(path: &str, text: &str) -> Result<(), ReportError> {
    crate::output::write_atomically(std::path::Path::new(path), text.as_bytes())?;
    Ok(())
}

/// Escapes text for XML content and attribute values.
pub(crate) fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab/newline are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}
