//! Reading JSON files: a file that cannot be read, or whose text is not JSON, is the
//! same error for action documents (`DocumentError`) and HAR recordings (`HarError`),
//! which wrap it.

use std::path::Path;

use serde_json::Value;

/// A JSON file that cannot be read, or whose text is not valid JSON.
#[derive(Debug, thiserror::Error)]
pub enum JsonFileError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not valid JSON.
    #[error("{path}: line {line}, column {column}: malformed JSON: {message}")]
    Json {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
}

/// Reads a whole file as text; errors name it as `path` displays.
pub fn read_text(path: &Path) -> Result<String, JsonFileError> {
    std::fs::read_to_string(path).map_err(|source| JsonFileError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Parses JSON text; a syntax error reports the line and column. `path` names the
/// text in errors.
pub fn parse_json(text: &str, path: &str) -> Result<Value, JsonFileError> {
    serde_json::from_str(text).map_err(|e| JsonFileError::Json {
        path: path.to_string(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}
