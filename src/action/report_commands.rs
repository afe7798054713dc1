//! LoadDensity's report commands (`LD_generate_*_report`, and `LD_generate_html`,
//! `LD_generate_json`, `LD_generate_xml` that return the content), and the executor's
//! request log behind the per-request ones.
//!
//! The request log is attached when a test starts with `max_records` other than 0
//! (default [`DEFAULT_MAX_RECORDS`]; `null`: no cap) and detached by `max_records: 0`.
//! Records accumulate across tests until `LD_clear_records`, like the statistics.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::args::{CheckArgs, NoArgs, typed};
use super::{ActionError, Executor};
use crate::output::StagedFiles;
use crate::report::{
    RecordCounts, ReportError, render_html, render_json, render_junit, render_xml, write_csv,
    write_json, write_text, write_xml,
};
use crate::request_log::{RecordReader, RequestLog, RequestLogCounts};
use crate::stats::{ResponseSample, Summary};

pub(super) use crate::request_log::DEFAULT_MAX_RECORDS;

/// Writes the success and failure files of a per-request report.
type PairWriter = fn(
    RecordReader,
    &[ResponseSample],
    BufWriter<File>,
    BufWriter<File>,
) -> Result<RecordCounts, ReportError>;

impl Executor {
    /// Sets the request log up for the next test: `Some(0)` detaches it (what it holds
    /// stays readable), anything else attaches it with that cap (`None`: no cap).
    pub fn configure_request_log(&mut self, max_records: Option<u64>) -> Result<(), ActionError> {
        self.context()
            .configure_request_log(max_records)
            .map_err(|e| ActionError::Failed(format!("cannot start the request log: {e}")))
    }

    /// The request log, once a test has started with it on.
    pub fn request_log(&self) -> Option<Arc<RequestLog>> {
        self.context().request_log()
    }

    /// Forgets the log's records and samples (part of `LD_clear_records`).
    pub(super) fn clear_request_log(&mut self) {
        if let Some(log) = self.request_log() {
            let _ = log.clear();
        }
    }

    /// Adds the log's samples and counters to a summary.
    pub(super) fn add_request_log_to(&self, summary: &mut Summary) {
        if let Some(log) = self.request_log() {
            summary.samples = log.samples();
            if let Ok(counts) = serde_json::to_value(log.counts()) {
                summary.sinks.insert("request_log".into(), counts);
            }
        }
    }

    /// The records and samples for a per-request report; errors when nothing was
    /// recorded, or when the log kept nothing.
    fn records_for_report(
        &self,
    ) -> Result<(RecordReader, Vec<ResponseSample>, RequestLogCounts), ReportError> {
        let (requests, _) = self.stats().counts();
        if requests == 0 {
            return Err(ReportError::NoRecords);
        }
        let Some(log) = self.request_log() else {
            return Err(ReportError::NoRequestLog(format!(
                "{requests} requests ran with the request log off (`max_records: 0`): \
                 per-request reports have nothing to show"
            )));
        };
        let reader = log.records()?;
        let counts = log.counts();
        if counts.kept == 0 {
            return Err(ReportError::NoRequestLog(format!(
                "the request log kept none of the {requests} requests (`max_records: 0`?)"
            )));
        }
        Ok((reader, log.samples(), counts))
    }

    /// "N of M requests kept", when the log did not keep every request.
    pub fn request_log_note(&self) -> Option<String> {
        let (requests, _) = self.stats().counts();
        let counts = self.request_log()?.counts();
        (counts.kept < requests).then(|| {
            let why = match counts.max_records {
                Some(cap) if counts.over_cap > 0 => format!("max_records: {cap}"),
                _ if counts.dropped > 0 => format!("{} dropped: writer too slow", counts.dropped),
                _ => "the log was off for part of the run".into(),
            };
            format!(
                "request log: {} of {requests} requests kept ({why}); statistics, HTML and JUnit cover all of them",
                counts.kept
            )
        })
    }

    /// Writes every recorded request as CSV (`--csv`, `LD_generate_csv_report`),
    /// whole or not at all.
    pub fn write_csv_report(&self, path: &Path) -> Result<RecordCounts, ReportError> {
        let (records, _, _) = self.records_for_report()?;
        let file = path.display().to_string();
        let mut staged = StagedFiles::new();
        let counts = write_csv(records, BufWriter::new(staged.create(path)?), &file)?;
        staged.commit()?;
        Ok(counts)
    }

    fn write_pair(
        &self,
        name: &str,
        extension: &str,
        write: PairWriter,
    ) -> Result<(String, String), ReportError> {
        let (records, samples, _) = self.records_for_report()?;
        let success = format!("{name}_success.{extension}");
        let failure = format!("{name}_failure.{extension}");
        // Both files are written before either replaces its previous version: the
        // pair appears whole or not at all.
        let mut staged = StagedFiles::new();
        let mut create = |path: &str| -> Result<BufWriter<File>, ReportError> {
            let file = staged.create(Path::new(path))?;
            let handle = file.try_clone().map_err(|e| ReportError::io(path, e))?;
            Ok(BufWriter::new(handle))
        };
        let (success_file, failure_file) = (create(&success)?, create(&failure)?);
        write(records, &samples, success_file, failure_file)?;
        staged.commit()?;
        Ok((success, failure))
    }

    fn html_report(&self) -> Result<String, ReportError> {
        if self.stats().counts().0 == 0 {
            return Err(ReportError::NoRecords);
        }
        render_html(&self.summary())
    }
}

fn report_error(error: ReportError) -> ActionError {
    ActionError::Failed(error.to_string())
}

/// Writes the "N of M kept" note on the executor's output, when some were not kept.
fn note(executor: &mut Executor) {
    if let Some(text) = executor.request_log_note() {
        executor.write_output(&format!("{text}\n"));
    }
}

fn default_name() -> String {
    "default_name".into()
}

fn default_junit_name() -> String {
    "loaddensity-junit".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HtmlArgs {
    #[serde(default = "default_name")]
    html_name: String,
}
impl CheckArgs for HtmlArgs {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonArgs {
    #[serde(default = "default_name")]
    json_file_name: String,
}
impl CheckArgs for JsonArgs {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct XmlArgs {
    #[serde(default = "default_name")]
    xml_file_name: String,
}
impl CheckArgs for XmlArgs {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvArgs {
    #[serde(default = "default_name")]
    csv_name: String,
}
impl CheckArgs for CsvArgs {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JunitArgs {
    #[serde(default = "default_junit_name")]
    report_name: String,
}
impl CheckArgs for JunitArgs {}

pub(super) fn register_report_commands(executor: &mut Executor) {
    executor.add_command(
        "LD_generate_html_report",
        typed(&["html_name"], |ex, a: HtmlArgs| {
            let text = ex.html_report().map_err(report_error)?;
            let path = format!("{}.html", a.html_name);
            write_text(&path, &text).map_err(report_error)?;
            Ok(Value::String(path))
        }),
    );
    executor.add_command(
        "LD_generate_html",
        typed(&[], |ex, _: NoArgs| {
            ex.html_report().map(Value::String).map_err(report_error)
        }),
    );
    executor.add_command(
        "LD_generate_json_report",
        typed(&["json_file_name"], |ex, a: JsonArgs| {
            let (success, failure) = ex
                .write_pair(&a.json_file_name, "json", |r, s, o1, o2| {
                    write_json(r, s, o1, o2)
                })
                .map_err(report_error)?;
            note(ex);
            Ok(json!([success, failure]))
        }),
    );
    executor.add_command(
        "LD_generate_json",
        typed(&[], |ex, _: NoArgs| {
            let (records, samples, _) = ex.records_for_report().map_err(report_error)?;
            let (success, failure) = render_json(records, &samples).map_err(report_error)?;
            Ok(json!([success, failure]))
        }),
    );
    executor.add_command(
        "LD_generate_xml_report",
        typed(&["xml_file_name"], |ex, a: XmlArgs| {
            let (success, failure) = ex
                .write_pair(&a.xml_file_name, "xml", |r, s, o1, o2| {
                    write_xml(r, s, o1, o2)
                })
                .map_err(report_error)?;
            note(ex);
            Ok(json!([success, failure]))
        }),
    );
    executor.add_command(
        "LD_generate_xml",
        typed(&[], |ex, _: NoArgs| {
            let (records, samples, _) = ex.records_for_report().map_err(report_error)?;
            let (success, failure) = render_xml(records, &samples).map_err(report_error)?;
            Ok(json!([success, failure]))
        }),
    );
    executor.add_command(
        "LD_generate_csv_report",
        typed(&["csv_name"], |ex, a: CsvArgs| {
            let path = format!("{}.csv", a.csv_name);
            ex.write_csv_report(Path::new(&path))
                .map_err(report_error)?;
            note(ex);
            Ok(Value::String(path))
        }),
    );
    executor.add_command(
        "LD_generate_junit_report",
        typed(&["report_name"], |ex, a: JunitArgs| {
            if ex.stats().counts().0 == 0 {
                return Err(report_error(ReportError::NoRecords));
            }
            let path = format!("{}.xml", a.report_name);
            write_text(&path, &render_junit(&ex.summary())).map_err(report_error)?;
            Ok(Value::String(path))
        }),
    );
}
