//! Loading what the subcommands read: action scripts (a file, a directory, standard
//! input or a `run-str` string) and result documents (a file or a run of the SQLite
//! history).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use loaddensity::action::{DocumentError, parse_json, read_json};
use loaddensity::history::RunHistory;
use loaddensity::stats::ResultDocument;

/// A script's name and its parsed document, or why it could not be read.
pub(crate) type Loaded = (String, Result<serde_json::Value, DocumentError>);

/// The documents named by `path`: a file (JSON, YAML or TOML by its extension),
/// every `.json`, `.yaml`, `.yml` and `.toml` of a directory in sorted order, or
/// standard input (JSON) for `-`.
pub(crate) fn load_documents(path: &str) -> Result<Vec<Loaded>> {
    if path == "-" {
        let document = read_json(std::io::stdin().lock(), "<stdin>");
        return Ok(vec![("<stdin>".into(), document)]);
    }
    let files = document_paths(Path::new(path))?;
    Ok(files
        .into_iter()
        .map(|file| {
            (
                file.display().to_string(),
                loaddensity::action::read_document_file(&file),
            )
        })
        .collect())
}

/// The script files named by `path`: the file itself, or every `.json`, `.yaml`,
/// `.yml` and `.toml` of a directory in sorted order.
pub(crate) fn document_paths(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot read directory {}", path.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && loaddensity::action::is_document_file(p))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!(
            "{}: no action documents (.json, .yaml, .yml, .toml) in this directory",
            path.display()
        );
    }
    Ok(files)
}

/// `run-str JSON`: the document, also when it arrives JSON-encoded twice (as
/// Windows shells tend to pass it).
pub(crate) fn parse_run_str(text: &str) -> Loaded {
    let name = "<run-str>".to_string();
    let document = match parse_json(text, &name) {
        Ok(serde_json::Value::String(inner)) => parse_json(&inner, &name),
        other => other,
    };
    (name, document)
}

/// The result document of a stored run.
pub(crate) fn document_from_db(db: &Path, run: i64) -> Result<ResultDocument> {
    let history = RunHistory::open(db)?;
    let text = history.summary_json(run)?;
    ResultDocument::from_json_text(&text)
        .map_err(|e| e.in_file(&format!("{} (run {run})", db.display())))
        .map_err(Into::into)
}

/// The result document of `report RESULT.json` or `report --db FILE --run ID`, and
/// where it came from.
pub(crate) fn report_document(
    result: Option<&Path>,
    db: Option<&Path>,
    run: Option<i64>,
) -> Result<(ResultDocument, String)> {
    match (result, db, run) {
        (Some(path), _, _) => Ok((ResultDocument::read(path)?, path.display().to_string())),
        (None, Some(db), Some(run)) => Ok((
            document_from_db(db, run)?,
            format!("run {run} of {}", db.display()),
        )),
        _ => bail!("give a result document, or --db FILE --run ID"),
    }
}
