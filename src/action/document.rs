//! Reading action documents: `{"load_density": [...]}` or a bare list of actions.

use std::io::Read;
use std::path::Path;

use serde_json::Value;

use super::{ActionError, Args, DocumentError};
use crate::json_file::{self, JsonFileError};

/// One action of a document, not yet run.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// The command name, e.g. `LD_start_test`.
    pub command: String,
    /// Its arguments.
    pub args: Args,
}

/// Parses JSON text; a syntax error reports the line and column.
pub fn parse_json(text: &str, path: &str) -> Result<Value, DocumentError> {
    Ok(json_file::parse_json(text, path)?)
}

/// The largest action document read ([`read_json_file`], [`read_json`]): 64 MiB.
pub const MAX_DOCUMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Reads and parses a JSON file of at most [`MAX_DOCUMENT_BYTES`].
pub fn read_json_file(path: &Path) -> Result<Value, DocumentError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| JsonFileError::Io {
        path: name.clone(),
        source,
    })?;
    read_json(file, &name)
}

/// Reads and parses JSON from `reader` (standard input, a file) named `path` in
/// errors; more than [`MAX_DOCUMENT_BYTES`] is an error, and no more is read.
pub fn read_json(reader: impl Read, path: &str) -> Result<Value, DocumentError> {
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
    parse_json(&text, path)
}

/// Splits a document into its actions. A malformed action is an error in its own
/// slot, so the others can still run.
pub fn actions(
    document: &Value,
    path: &str,
) -> Result<Vec<Result<Action, ActionError>>, DocumentError> {
    let list = match document {
        Value::Array(list) => list,
        Value::Object(map) => match map.get("load_density") {
            Some(Value::Array(list)) => list,
            Some(other) => {
                return Err(DocumentError::Shape {
                    path: path.to_string(),
                    message: format!("`load_density` must be a list of actions, got {other}"),
                });
            }
            None => {
                return Err(DocumentError::Shape {
                    path: path.to_string(),
                    message: "expected {\"load_density\": [...]} or a list of actions; the key `load_density` is missing".into(),
                });
            }
        },
        other => {
            return Err(DocumentError::Shape {
                path: path.to_string(),
                message: format!(
                    "expected {{\"load_density\": [...]}} or a list of actions, got {other}"
                ),
            });
        }
    };
    if list.is_empty() {
        return Err(DocumentError::Shape {
            path: path.to_string(),
            message: "the action list is empty".into(),
        });
    }
    Ok(list.iter().map(parse_action).collect())
}

fn parse_action(value: &Value) -> Result<Action, ActionError> {
    const SHAPE: &str = "expected [\"NAME\"], [\"NAME\", {kwargs}] or [\"NAME\", [args]]";
    let items = value
        .as_array()
        .filter(|a| (1..=2).contains(&a.len()))
        .ok_or_else(|| ActionError::Malformed(format!("{SHAPE}, got {value}")))?;
    let command = items[0]
        .as_str()
        .ok_or_else(|| ActionError::Malformed(format!("{SHAPE}, got {value}")))?
        .to_string();
    let args = match items.get(1) {
        None | Some(Value::Null) => Args::None,
        Some(Value::Object(map)) => Args::Named(map.clone()),
        Some(Value::Array(list)) => Args::Positional(list.clone()),
        Some(other) => {
            return Err(ActionError::Malformed(format!(
                "arguments of `{command}` must be a dict or a list, got {other}"
            )));
        }
    };
    Ok(Action { command, args })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn document_shapes() {
        let doc = json!({"load_density": [["LD_summary"], ["LD_sleep", {"seconds": 1}], ["LD_sleep", [1]], [5], "x"]});
        let actions = actions(&doc, "f.json").expect("document");
        assert_eq!(actions.len(), 5);
        assert_eq!(
            actions[0].as_ref().ok().map(|a| a.args.clone()),
            Some(Args::None)
        );
        assert!(matches!(
            actions[2].as_ref().map(|a| &a.args),
            Ok(Args::Positional(_))
        ));
        assert!(actions[3].is_err() && actions[4].is_err());
        assert!(super::actions(&json!([["LD_summary"]]), "f").is_ok());
        let e = super::actions(&json!({"other": []}), "f.json").expect_err("shape");
        assert!(e.to_string().contains("load_density"));
        let e = parse_json("{\n  \"load_density\": [,]\n}", "bad.json").expect_err("json");
        assert!(e.to_string().starts_with("bad.json: line 2, column"), "{e}");
    }
}
