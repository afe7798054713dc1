//! LoadDensity's hidden single-flag forms that older integrations still pass:
//! `-e FILE`, `-d DIR`, `--execute_str JSON` and `-c PATH`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use loaddensity::ExecutorOptions;

use crate::documents::{load_documents, parse_run_str};
use crate::flags::LegacyFlags;

/// The legacy flags, in LoadDensity's order; an error when none is given.
pub(crate) fn run(flags: &LegacyFlags, options: ExecutorOptions) -> Result<ExitCode> {
    let mut documents = Vec::new();
    if let Some(file) = &flags.execute_file {
        documents.extend(load_documents(file)?);
    }
    if let Some(dir) = &flags.execute_dir {
        if !Path::new(dir).is_dir() {
            bail!("-d {dir}: not a directory");
        }
        documents.extend(load_documents(dir)?);
    }
    if let Some(text) = &flags.execute_str {
        documents.push(parse_run_str(text));
    }
    let mut code = ExitCode::SUCCESS;
    if !documents.is_empty() {
        code = super::run::run_loaded(options, documents, None)?;
    }
    if let Some(path) = &flags.create_project {
        super::init::init_project(path)?;
    }
    if flags.execute_file.is_none()
        && flags.execute_dir.is_none()
        && flags.execute_str.is_none()
        && flags.create_project.is_none()
    {
        bail!("no command given; see `loaddensity --help`");
    }
    Ok(code)
}
