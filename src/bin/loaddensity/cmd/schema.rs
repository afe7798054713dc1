//! `loaddensity schema`: the JSON Schema of the action language, from the registry.

use std::path::Path;
use std::process::ExitCode;

use crate::outputs::write_stdout;
use anyhow::Result;
use loaddensity::{Executor, ExecutorOptions};

/// `schema [-o FILE]`: standard output, or the file (written whole or not at all).
pub(crate) fn schema(output: Option<&Path>) -> Result<ExitCode> {
    let executor = Executor::new(ExecutorOptions {
        threads: Some(1),
        ..ExecutorOptions::default()
    })?;
    match output {
        Some(path) => {
            let written = executor.export_schema(path, None)?;
            eprintln!("wrote {}", written.display());
        }
        None => {
            write_stdout(&(serde_json::to_string_pretty(&executor.action_schema(None))? + "\n"))?
        }
    }
    Ok(ExitCode::SUCCESS)
}
