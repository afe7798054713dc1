//! `loaddensity validate`: checks scripts without sending any request.

use std::process::ExitCode;

use anyhow::Result;
use loaddensity::{Executor, ExecutorOptions, Segment};

use crate::documents::load_documents;
use crate::execute::validate_documents;

/// `validate PATH [--segment I/N]`: exit code 1 when any document has a problem.
pub(crate) fn validate(
    path: &str,
    segment: Option<&Segment>,
    options: ExecutorOptions,
) -> Result<ExitCode> {
    let executor = Executor::new(ExecutorOptions {
        threads: Some(1),
        ..options
    })?;
    let problems = validate_documents(&executor, &load_documents(path)?, segment, true)?;
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
