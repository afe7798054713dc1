//! `loaddensity lint`: every problem of each script, one line per finding
//! (`FILE: LOCATION: [ERROR] rule: message`), or JSON with `--json`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use loaddensity::action::lint::has_errors;
use loaddensity::action::{DocumentFormat, read_document};
use loaddensity::{Executor, ExecutorOptions};
use serde_json::{Value, json};

use crate::documents::document_paths;
use crate::flags::LintArgs;
use crate::outputs::write_stdout;

/// `lint PATH...`: exit 1 when a script has an error-level finding or cannot be read.
pub(crate) fn lint(args: &LintArgs) -> Result<ExitCode> {
    let executor = Executor::new(ExecutorOptions {
        threads: Some(1),
        ..ExecutorOptions::default()
    })?;
    let mut failed = false;
    let mut records = Vec::new();
    for path in &args.paths {
        let documents = if path == "-" {
            vec![(
                "<stdin>".to_string(),
                read_document(std::io::stdin().lock(), DocumentFormat::Json, "<stdin>"),
            )]
        } else {
            document_paths(Path::new(path))?
                .into_iter()
                .map(|file| {
                    let document = loaddensity::action::read_document_file(&file);
                    (file.display().to_string(), document)
                })
                .collect()
        };
        for (name, document) in documents {
            let document = match document {
                Ok(document) => document,
                Err(error) => {
                    failed = true;
                    if args.json {
                        records.push(
                            json!({"file": name, "rule": "unreadable", "severity": "error",
                                            "message": error.to_string(), "location": ""}),
                        );
                    } else {
                        eprintln!("{error}");
                    }
                    continue;
                }
            };
            let findings = executor.lint_document(&document, None);
            failed |= has_errors(&findings);
            for finding in &findings {
                if args.json {
                    let mut record = serde_json::to_value(finding)?;
                    if let Value::Object(map) = &mut record {
                        map.insert("file".into(), Value::String(name.clone()));
                    }
                    records.push(record);
                } else {
                    eprintln!("{name}: {finding}");
                }
            }
        }
    }
    if args.json {
        write_stdout(&(serde_json::to_string_pretty(&records)? + "\n"))?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
