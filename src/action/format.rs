//! The formatter (`LD_format_action_document`, `LD_format_action_file`,
//! `LD_format_action_string`, `loaddensity fmt`): one canonical layout per document,
//! so that diffs show changes, not whitespace.
//!
//! As LoadDensity's formatter: the tasks of each action's `tasks` list put `method`,
//! `request_url`, `url`, `name`, `weight` and `timeout` first, the other keys
//! following in their order; JSON is written with `indent` spaces (2) and non-ASCII
//! text as is, so the output is LoadDensity's byte for byte. YAML and TOML files are
//! written back in their own format (comments would be lost, so a file with any is
//! refused).

use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{
    DocumentError, DocumentFormat, WriteError, parse_document, read_document_file, render_document,
};

/// The task keys that come first, in this order (LoadDensity's).
const PRIMARY_TASK_KEYS: &[&str] = &["method", "request_url", "url", "name", "weight", "timeout"];

/// Why a file cannot be formatted.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// It cannot be read or parsed.
    #[error(transparent)]
    Read(#[from] DocumentError),
    /// It cannot be written.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A YAML or TOML file with comments, which rewriting would drop.
    #[error(
        "{path}: line {line} is a comment; formatting would drop it, so this {format} file is left as it is"
    )]
    Comments {
        /// The file.
        path: String,
        /// `YAML` or `TOML`.
        format: &'static str,
        /// The first comment's line (1-based).
        line: usize,
    },
}

/// A normalised copy of a document (LoadDensity's `format_action_document`).
pub fn format_action_document(document: &Value) -> Value {
    match document {
        Value::Object(map) => match map.get("load_density") {
            Some(Value::Array(list)) => {
                let mut out = Map::new();
                out.insert("load_density".into(), Value::Array(normalise(list)));
                Value::Object(out)
            }
            _ => document.clone(),
        },
        Value::Array(list) => Value::Array(normalise(list)),
        other => other.clone(),
    }
}

fn normalise(actions: &[Value]) -> Vec<Value> {
    actions
        .iter()
        .map(|entry| match entry.as_array().map(Vec::as_slice) {
            Some([name, Value::Object(kwargs)]) => {
                let mut kwargs = kwargs.clone();
                if let Some(Value::Array(tasks)) = kwargs.get_mut("tasks") {
                    for task in tasks.iter_mut() {
                        if let Value::Object(map) = task {
                            *map = sort_task_keys(map);
                        }
                    }
                }
                Value::Array(vec![name.clone(), Value::Object(kwargs)])
            }
            _ => entry.clone(),
        })
        .collect()
}

fn sort_task_keys(task: &Map<String, Value>) -> Map<String, Value> {
    let mut ordered = Map::new();
    for key in PRIMARY_TASK_KEYS {
        if let Some(value) = task.get(*key) {
            ordered.insert((*key).to_string(), value.clone());
        }
    }
    for (key, value) in task {
        if !ordered.contains_key(key) {
            ordered.insert(key.clone(), value.clone());
        }
    }
    ordered
}

/// JSON with `indent` spaces and a final newline, as Python's
/// `json.dumps(doc, indent=indent, ensure_ascii=False) + "\n"`.
pub fn to_json_text(document: &Value, indent: usize) -> String {
    let indent = " ".repeat(indent);
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serializing a Value into memory cannot fail.
    let _ = document.serialize(&mut serializer);
    String::from_utf8_lossy(&out).into_owned() + "\n"
}

/// Formats JSON text (LoadDensity's `format_action_string`); `name` names it in errors.
pub fn format_action_string(
    text: &str,
    indent: usize,
    name: &str,
) -> Result<String, DocumentError> {
    let document = parse_document(text, DocumentFormat::Json, name)?;
    Ok(to_json_text(&format_action_document(&document), indent))
}

/// The canonical text of a file's document, in its own format, and whether it
/// differs from what the file holds now.
pub fn formatted_file_text(path: &Path, indent: usize) -> Result<(String, bool), FormatError> {
    let name = path.display().to_string();
    let format = DocumentFormat::from_path(path);
    let current = crate::json_file::read_text(path).map_err(DocumentError::from)?;
    let document = read_document_file(path)?;
    let formatted = format_action_document(&document);
    let text = match format {
        DocumentFormat::Json => to_json_text(&formatted, indent),
        DocumentFormat::Yaml | DocumentFormat::Toml => {
            if let Some(line) = current
                .lines()
                .position(|l| l.trim_start().starts_with('#'))
            {
                return Err(FormatError::Comments {
                    path: name,
                    format: format.name(),
                    line: line + 1,
                });
            }
            render_document(&formatted, format, &name)?
        }
    };
    let changed = text != current;
    Ok((text, changed))
}

/// Formats a file in place (whole or not at all) and returns the text written
/// (LoadDensity's `format_action_file`). A file already formatted is not rewritten.
pub fn format_action_file(path: &Path, indent: usize) -> Result<String, FormatError> {
    let (text, changed) = formatted_file_text(path, indent)?;
    if changed {
        crate::output::write_atomically(path, text.as_bytes()).map_err(|e| WriteError {
            path: path.display().to_string(),
            format: DocumentFormat::from_path(path).name(),
            message: e.to_string(),
        })?;
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn task_keys_come_first_and_formatting_is_stable() {
        let doc = json!({"load_density": [["LD_start_test", {"tasks": [{"headers": {}, "name": "n", "method": "get"}], "user_count": 1}], ["LD_summary"]]});
        let formatted = format_action_document(&doc);
        let keys: Vec<&String> = formatted["load_density"][0][1]["tasks"][0]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys, ["method", "name", "headers"]);
        let text = to_json_text(&formatted, 2);
        assert!(
            text.starts_with("{\n  \"load_density\": [\n    [\n      \"LD_start_test\",\n"),
            "{text}"
        );
        let again = format_action_string(&text, 2, "x").expect("parses");
        assert_eq!(again, text);
        assert_eq!(
            to_json_text(&json!({"a": [], "b": {}, "c": "é"}), 2),
            "{\n  \"a\": [],\n  \"b\": {},\n  \"c\": \"é\"\n}\n"
        );
    }
}
