//! LoadDensity's report commands (`LD_generate_*_report`, `LD_generate_*`) and the
//! executor's per-request reports.

use std::path::Path;

use super::Executor;
use crate::report::ReportError;

impl Executor {
    /// Writes every recorded request as CSV (`--csv`, `LD_generate_csv_report`).
    pub fn write_csv_report(&self, path: &Path) -> Result<(), ReportError> {
        let _ = path;
        Err(ReportError::NotBuilt("CSV"))
    }
}
