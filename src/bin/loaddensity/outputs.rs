//! Output paths checked before a subcommand runs: no output replaces one of its
//! inputs (`run s.json --summary-json s.json` would replace the script with its own
//! summary). Two paths are the same file when their canonical paths are equal, so a
//! symbolic link or `./s.json` does not slip through.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::documents::Loaded;

/// Refuses an output (`(flag, path)`) that is one of `inputs`. An output that does
/// not exist yet cannot be an input.
pub(crate) fn refuse_inputs(outputs: &[(&str, Option<&Path>)], inputs: &[PathBuf]) -> Result<()> {
    let inputs: Vec<(&PathBuf, PathBuf)> = inputs
        .iter()
        .filter_map(|input| std::fs::canonicalize(input).ok().map(|c| (input, c)))
        .collect();
    for (flag, output) in outputs {
        let Some(output) = output else {
            continue;
        };
        let Ok(canonical) = std::fs::canonicalize(output) else {
            continue;
        };
        if let Some((input, _)) = inputs.iter().find(|(_, c)| *c == canonical) {
            bail!(
                "{flag} {}: is the input {}; refusing to overwrite it (give another file)",
                output.display(),
                input.display()
            );
        }
    }
    Ok(())
}

/// The files the loaded documents were read from.
pub(crate) fn document_files(documents: &[Loaded]) -> Vec<PathBuf> {
    documents
        .iter()
        .map(|(name, _)| PathBuf::from(name))
        .collect()
}

/// Writes text to standard output and flushes it.
pub(crate) fn write_stdout(text: &str) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}
