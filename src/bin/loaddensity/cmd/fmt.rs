//! `loaddensity fmt`: rewrites scripts in the canonical layout, or with `--check`
//! lists those that are not (for CI).

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use loaddensity::action::format::{format_action_file, format_action_string, formatted_file_text};

use crate::documents::document_paths;
use crate::flags::FmtArgs;
use crate::outputs::write_stdout;

/// `fmt PATH... [--check] [--indent N]`: exit 1 when `--check` finds a file to
/// reformat, or a file cannot be read or formatted.
pub(crate) fn fmt(args: &FmtArgs) -> Result<ExitCode> {
    let mut failed = false;
    for path in &args.paths {
        if path == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
            let formatted = format_action_string(&text, args.indent, "<stdin>")?;
            if args.check {
                if formatted != text {
                    eprintln!("<stdin>: not formatted");
                    failed = true;
                }
            } else {
                write_stdout(&formatted)?;
            }
            continue;
        }
        for file in document_paths(Path::new(path))? {
            let result = if args.check {
                formatted_file_text(&file, args.indent).map(|(_, changed)| {
                    if changed {
                        failed = true;
                        let _ = write_stdout(&format!("{}: would reformat\n", file.display()));
                    }
                })
            } else {
                format_action_file(&file, args.indent).map(|_| ())
            };
            if let Err(error) = result {
                eprintln!("error: {error}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
