//! Errors of action scripts: a whole document that cannot be read, or one action
//! that failed (located by file, index and command).

use crate::json_file::JsonFileError;
use crate::task::TaskError;

/// A document that cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The file could not be read, or its text is not valid JSON.
    #[error(transparent)]
    File(#[from] JsonFileError),
    /// The document is larger than the limit (nothing past it is read).
    #[error("{path}: too large: an action document may be at most {} MiB", limit / (1024 * 1024))]
    TooLarge {
        /// The file.
        path: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The text is not valid YAML or TOML.
    #[error("{path}: line {line}, column {column}: malformed {format}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// `YAML` or `TOML`.
        format: &'static str,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// Valid JSON, but not an action document.
    #[error("{path}: {message}")]
    Shape {
        /// The file.
        path: String,
        /// What was expected.
        message: String,
    },
}

/// Why one action failed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The action is not `["NAME"]`, `["NAME", {kwargs}]` or `["NAME", [args]]`.
    #[error("malformed action: {0}")]
    Malformed(String),
    /// No command has that name.
    #[error("unknown command `{0}`")]
    UnknownCommand(String),
    /// An argument is missing, unknown or of the wrong type.
    #[error("{}", argument_text(field, message))]
    Argument {
        /// The argument's path, e.g. `user_detail_dict.user` (empty for the whole set).
        field: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A placeholder source cannot be read: a CSV file that cannot be opened, a
    /// database that cannot be reached.
    #[error("{}", argument_text(field, message))]
    UnreachableSource {
        /// The argument's path, e.g. `db_sources[0].connection_string`.
        field: String,
        /// What went wrong.
        message: String,
    },
    /// A task in `tasks` is invalid.
    #[error("{0}")]
    Task(#[from] TaskError),
    /// A LoadDensity feature this build does not implement.
    #[error("{what} is not supported yet{}", hint_text(hint))]
    NotSupported {
        /// The feature, e.g. the argument that asks for it.
        what: String,
        /// What to do instead (may be empty).
        hint: String,
    },
    /// The action was skipped because the run was interrupted (Ctrl-C).
    #[error("skipped: the run was interrupted")]
    Interrupted,
    /// The command ran and failed.
    #[error("{0}")]
    Failed(String),
    /// `LD_assert_sla`: at least one gate failed (each named with its actual value).
    #[error("SLA failed: {0}")]
    SlaFailed(String),
    /// A Locust worker could not join or stay with its master.
    #[error(transparent)]
    LocustWorker(#[from] crate::locust_worker::WorkerError),
    /// Nested actions (`LD_execute_action`, `LD_execute_files`) nested too deep.
    #[error("actions nested deeper than {0} levels")]
    TooDeep(usize),
}

fn hint_text(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!("; {hint}")
    }
}

fn argument_text(field: &str, message: &str) -> String {
    if field.is_empty() || field == "." {
        message.to_string()
    } else {
        format!("field `{field}`: {message}")
    }
}

impl ActionError {
    /// A LoadDensity feature that is not implemented, and what to do instead.
    pub fn not_supported(what: impl Into<String>, hint: impl Into<String>) -> Self {
        ActionError::NotSupported {
            what: what.into(),
            hint: hint.into(),
        }
    }

    /// A placeholder source at `field` that cannot be read.
    pub fn unreachable_source(field: impl Into<String>, message: impl Into<String>) -> Self {
        ActionError::UnreachableSource {
            field: field.into(),
            message: message.into(),
        }
    }

    /// An argument error for `field`.
    pub fn argument(field: impl Into<String>, message: impl Into<String>) -> Self {
        ActionError::Argument {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A failed action, with where it stands.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: action[{index}] ({command}): {error}")]
pub struct ActionFailure {
    /// The file (or `<stdin>`, `<LD_execute_action>`).
    pub source_name: String,
    /// 0-based index in the document's action list.
    pub index: usize,
    /// The command name, or `?` when it could not be read.
    pub command: String,
    /// What went wrong.
    pub error: ActionError,
}
