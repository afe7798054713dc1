//! Action documents in JSON, YAML and TOML: picking the format by the file's
//! extension, reading it into the one JSON value the executor runs, and writing a
//! document back (`LD_read_action_yaml`, `LD_write_action_toml`, ...). Every syntax
//! error names the file, the line and the column.

use std::io::Read;
use std::path::Path;

use serde_json::Value;

use super::DocumentError;
use super::document::{MAX_DOCUMENT_BYTES, parse_json};
use crate::json_file::JsonFileError;

/// The text format of an action document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentFormat {
    /// `.json` (and anything without a known extension, as LoadDensity reads it).
    Json,
    /// `.yaml` or `.yml`.
    Yaml,
    /// `.toml`: the root is a table, so the document is `load_density = [...]`.
    Toml,
}

/// The extensions of the files `run DIR` and `validate DIR` pick up.
pub const DOCUMENT_EXTENSIONS: &[&str] = &["json", "yaml", "yml", "toml"];

impl DocumentFormat {
    /// The format a file's extension names (case-insensitive); JSON for any other.
    pub fn from_path(path: &Path) -> Self {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("yaml" | "yml") => DocumentFormat::Yaml,
            Some("toml") => DocumentFormat::Toml,
            _ => DocumentFormat::Json,
        }
    }

    /// The format's name in messages: `JSON`, `YAML`, `TOML`.
    pub fn name(self) -> &'static str {
        match self {
            DocumentFormat::Json => "JSON",
            DocumentFormat::Yaml => "YAML",
            DocumentFormat::Toml => "TOML",
        }
    }
}

/// True for the files a directory run picks up: `.json`, `.yaml`, `.yml`, `.toml`.
pub fn is_document_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| DOCUMENT_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Parses document text in `format`; `path` names it in errors, which carry the
/// line and column of the problem.
pub fn parse_document(
    text: &str,
    format: DocumentFormat,
    path: &str,
) -> Result<Value, DocumentError> {
    match format {
        DocumentFormat::Json => parse_json(text, path),
        DocumentFormat::Yaml => parse_yaml(text, path),
        DocumentFormat::Toml => parse_toml(text, path),
    }
}

/// Reads an action document of at most [`MAX_DOCUMENT_BYTES`], in the format its
/// extension names ([`DocumentFormat::from_path`]).
pub fn read_document_file(path: &Path) -> Result<Value, DocumentError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| JsonFileError::Io {
        path: name.clone(),
        source,
    })?;
    read_document(file, DocumentFormat::from_path(path), &name)
}

/// Reads an action document in `format` from `reader`, named `path` in errors; more
/// than [`MAX_DOCUMENT_BYTES`] is an error, and no more is read.
pub fn read_document(
    reader: impl Read,
    format: DocumentFormat,
    path: &str,
) -> Result<Value, DocumentError> {
    let mut text = String::new();
    reader
        .take(MAX_DOCUMENT_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|source| JsonFileError::Io {
            path: path.to_string(),
            source,
        })?;
    if text.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(DocumentError::TooLarge {
            path: path.to_string(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    parse_document(&text, format, path)
}

fn parse_yaml(text: &str, path: &str) -> Result<Value, DocumentError> {
    serde_norway::from_str::<Value>(text).map_err(|error| {
        let (line, column) = error.location().map_or((1, 1), |l| (l.line(), l.column()));
        DocumentError::Syntax {
            path: path.to_string(),
            format: "YAML",
            line,
            column,
            message: strip_position(&error.to_string()),
        }
    })
}

fn parse_toml(text: &str, path: &str) -> Result<Value, DocumentError> {
    toml::from_str::<Value>(text).map_err(|error| {
        let offset = error.span().map_or(0, |span| span.start);
        let (line, column) = line_and_column(text, offset);
        DocumentError::Syntax {
            path: path.to_string(),
            format: "TOML",
            line,
            column,
            message: error.message().trim().to_string(),
        }
    })
}

/// The 1-based line and column (in characters) of byte `offset` of `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A parser's message without the position it appends (`at line 3 column 5`), which
/// the error shows in front already.
fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(at) => {
            let rest = &message[at + " at line ".len()..];
            // "N column M" then maybe ", while parsing ..."
            let tail = rest.find(',').map_or("", |comma| &rest[comma..]);
            format!("{}{tail}", &message[..at])
        }
        None => message.to_string(),
    }
}

/// Why a document cannot be written in a format.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot write the document as {format}: {message}")]
pub struct WriteError {
    /// The file.
    pub path: String,
    /// `YAML`, `TOML` or `JSON`.
    pub format: &'static str,
    /// What went wrong (TOML has no null, and its root must be a table; the disk).
    pub message: String,
}

/// The text of `document` in `format`: pretty JSON (2 spaces), block YAML, or TOML.
/// `path` names the destination in errors.
pub fn render_document(
    document: &Value,
    format: DocumentFormat,
    path: &str,
) -> Result<String, WriteError> {
    let error = |message: String| WriteError {
        path: path.to_string(),
        format: format.name(),
        message,
    };
    match format {
        DocumentFormat::Json => serde_json::to_string_pretty(document)
            .map(|text| text + "\n")
            .map_err(|e| error(e.to_string())),
        DocumentFormat::Yaml => serde_norway::to_string(document).map_err(|e| error(e.to_string())),
        DocumentFormat::Toml => {
            if !document.is_object() {
                return Err(error(
                    "a TOML document is a table: write {\"load_density\": [...]}, not a bare list"
                        .into(),
                ));
            }
            if let Some(at) = find_null(document, String::new()) {
                return Err(error(format!("TOML has no null; `{at}` is null")));
            }
            toml::to_string(document).map_err(|e| error(e.to_string()))
        }
    }
}

/// Writes `document` to `path` in `format`, whole or not at all (a temporary file
/// renamed into place).
pub fn write_document_file(
    path: &Path,
    document: &Value,
    format: DocumentFormat,
) -> Result<(), WriteError> {
    let name = path.display().to_string();
    let text = render_document(document, format, &name)?;
    crate::output::write_atomically(path, text.as_bytes()).map_err(|e| WriteError {
        path: name,
        format: format.name(),
        message: e.to_string(),
    })
}

/// The path of the first null in `value`, if any.
fn find_null(value: &Value, at: String) -> Option<String> {
    match value {
        Value::Null => Some(if at.is_empty() { "(root)".into() } else { at }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_null(v, format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            find_null(
                v,
                if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                },
            )
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_and_toml_read_as_the_same_document() {
        let yaml = "load_density:\n  - [LD_sleep, {seconds: 1}]\n  - [LD_summary]\n";
        let toml = "load_density = [[\"LD_sleep\", {seconds = 1}], [\"LD_summary\"]]\n";
        let expected = json!({"load_density": [["LD_sleep", {"seconds": 1}], ["LD_summary"]]});
        assert_eq!(
            parse_document(yaml, DocumentFormat::Yaml, "a.yaml").expect("yaml"),
            expected
        );
        assert_eq!(
            parse_document(toml, DocumentFormat::Toml, "a.toml").expect("toml"),
            expected
        );
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = parse_document(
            "load_density:\n  - [LD_sleep, {seconds: 1}\n",
            DocumentFormat::Yaml,
            "t.yaml",
        )
        .expect_err("unclosed");
        let text = e.to_string();
        assert!(text.starts_with("t.yaml: line "), "{text}");
        assert!(text.contains("malformed YAML"), "{text}");
        let e = parse_document(
            "load_density = [\n  [\"LD_sleep\" {seconds = 1}],\n]\n",
            DocumentFormat::Toml,
            "t.toml",
        )
        .expect_err("missing comma");
        assert!(
            e.to_string()
                .starts_with("t.toml: line 2, column 15: malformed TOML"),
            "{e}"
        );
    }

    #[test]
    fn position_of_a_byte_offset() {
        assert_eq!(line_and_column("ab\ncdé\nx", 0), (1, 1));
        assert_eq!(line_and_column("ab\ncdé\nx", 3), (2, 1));
        assert_eq!(line_and_column("ab\ncdé\nx", 7), (2, 4));
        assert_eq!(line_and_column("ab\ncdé\nx", 6), (2, 3));
        assert_eq!(line_and_column("ab\ncdé\nx", 8), (3, 1));
        assert_eq!(line_and_column("ab", 99), (1, 3));
    }

    #[test]
    fn writing_round_trips_and_refuses_what_toml_cannot_hold() {
        let doc = json!({"load_density": [["LD_start_test", {"user_count": 2, "tasks": [{"method": "get", "request_url": "http://127.0.0.1/"}]}]]});
        for format in [
            DocumentFormat::Json,
            DocumentFormat::Yaml,
            DocumentFormat::Toml,
        ] {
            let text = render_document(&doc, format, "x").expect("renders");
            assert_eq!(
                parse_document(&text, format, "x").expect("reads back"),
                doc,
                "{text}"
            );
        }
        let e = render_document(
            &json!({"load_density": [["LD_summary", null]]}),
            DocumentFormat::Toml,
            "x.toml",
        )
        .expect_err("null");
        assert!(
            e.to_string().contains("`load_density[0][1]` is null"),
            "{e}"
        );
        assert!(render_document(&json!([["LD_summary"]]), DocumentFormat::Toml, "x").is_err());
    }

    #[test]
    fn formats_by_extension() {
        assert_eq!(
            DocumentFormat::from_path(Path::new("a.YML")),
            DocumentFormat::Yaml
        );
        assert_eq!(
            DocumentFormat::from_path(Path::new("a.toml")),
            DocumentFormat::Toml
        );
        assert_eq!(
            DocumentFormat::from_path(Path::new("a")),
            DocumentFormat::Json
        );
        assert!(is_document_file(Path::new("x.yaml")) && !is_document_file(Path::new("x.csv")));
    }
}
