//! The document commands: `LD_read_action_yaml` / `_toml`, `LD_write_action_yaml` /
//! `_toml`, `LD_lint_action(_file)`, `LD_format_action_document` / `_file` /
//! `_string` and `LD_export_schema`, with LoadDensity's names and defaults.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::args::{CheckArgs, typed};
use super::format::{format_action_document, format_action_file, format_action_string};
use super::{ActionError, DocumentFormat, Executor, read_document_file, write_document_file};

/// Registers the commands of this module.
pub(super) fn register_document_commands(executor: &mut Executor) {
    executor.add_command(
        "LD_read_action_yaml",
        typed(&["yaml_file_path"], |_, a: ReadYaml| {
            read_as(DocumentFormat::Yaml, &a.yaml_file_path)
        }),
    );
    executor.add_command(
        "LD_read_action_toml",
        typed(&["toml_file_path"], |_, a: ReadToml| {
            read_as(DocumentFormat::Toml, &a.toml_file_path)
        }),
    );
    executor.add_command(
        "LD_write_action_yaml",
        typed(&["yaml_save_path", "action_doc"], |_, a: WriteYaml| {
            write_as(DocumentFormat::Yaml, &a.yaml_save_path, &a.action_doc)
        }),
    );
    executor.add_command(
        "LD_write_action_toml",
        typed(&["toml_save_path", "action_doc"], |_, a: WriteToml| {
            write_as(DocumentFormat::Toml, &a.toml_save_path, &a.action_doc)
        }),
    );
    executor.add_command(
        "LD_lint_action",
        typed(&["actions", "known_commands"], |ex, a: LintArgs| {
            to_value(&ex.lint_document(&a.actions, a.known_commands.as_ref()))
        }),
    );
    executor.add_command(
        "LD_lint_action_file",
        typed(&["path", "known_commands"], |ex, a: LintFileArgs| {
            let findings = ex
                .lint_file(&a.path, a.known_commands.as_ref())
                .map_err(|e| ActionError::Failed(e.to_string()))?;
            to_value(&findings)
        }),
    );
    executor.add_command(
        "LD_export_schema",
        typed(&["path", "known_commands"], |ex, a: SchemaArgs| {
            ex.export_schema(&a.path, a.known_commands.as_ref())
                .map(|p| Value::String(p.display().to_string()))
                .map_err(|e| ActionError::Failed(e.to_string()))
        }),
    );
    executor.add_command(
        "LD_format_action_document",
        typed(&["doc"], |_, a: FormatDocArgs| {
            Ok(format_action_document(&a.doc))
        }),
    );
    executor.add_command(
        "LD_format_action_file",
        typed(&["file_path", "indent"], |_, a: FormatFileArgs| {
            format_action_file(&a.file_path, a.indent)
                .map(Value::String)
                .map_err(|e| ActionError::Failed(e.to_string()))
        }),
    );
    executor.add_command(
        "LD_format_action_string",
        typed(&["text", "indent"], |_, a: FormatStringArgs| {
            format_action_string(&a.text, a.indent, "<LD_format_action_string>")
                .map(Value::String)
                .map_err(|e| ActionError::Failed(e.to_string()))
        }),
    );
}

fn read_as(format: DocumentFormat, path: &Path) -> Result<Value, ActionError> {
    let found = DocumentFormat::from_path(path);
    let document = if found == format {
        read_document_file(path)
    } else {
        let name = path.display().to_string();
        std::fs::File::open(path)
            .map_err(|source| {
                crate::json_file::JsonFileError::Io {
                    path: name.clone(),
                    source,
                }
                .into()
            })
            .and_then(|file| super::read_document(file, format, &name))
    };
    document.map_err(|e| ActionError::Failed(e.to_string()))
}

fn write_as(format: DocumentFormat, path: &Path, document: &Value) -> Result<Value, ActionError> {
    write_document_file(path, document, format)
        .map(|()| Value::Null)
        .map_err(|e| ActionError::Failed(e.to_string()))
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, ActionError> {
    serde_json::to_value(value).map_err(|e| ActionError::Failed(e.to_string()))
}

/// `LD_read_action_yaml(yaml_file_path)`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadYaml {
    yaml_file_path: PathBuf,
}
impl CheckArgs for ReadYaml {}

/// `LD_read_action_toml(toml_file_path)`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadToml {
    toml_file_path: PathBuf,
}
impl CheckArgs for ReadToml {}

/// `LD_write_action_yaml(yaml_save_path, action_doc)`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteYaml {
    yaml_save_path: PathBuf,
    action_doc: Value,
}
impl CheckArgs for WriteYaml {}

/// `LD_write_action_toml(toml_save_path, action_doc)`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteToml {
    toml_save_path: PathBuf,
    action_doc: Value,
}
impl CheckArgs for WriteToml {}

/// `LD_lint_action(actions, known_commands=None)`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LintArgs {
    actions: Value,
    #[serde(default)]
    known_commands: Option<BTreeSet<String>>,
}
impl CheckArgs for LintArgs {}

/// `LD_lint_action_file(path, known_commands=None)`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LintFileArgs {
    path: PathBuf,
    #[serde(default)]
    known_commands: Option<BTreeSet<String>>,
}
impl CheckArgs for LintFileArgs {}

/// `LD_export_schema(path, known_commands=None)`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaArgs {
    path: PathBuf,
    #[serde(default)]
    known_commands: Option<BTreeSet<String>>,
}
impl CheckArgs for SchemaArgs {}

/// `LD_format_action_document(doc)`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FormatDocArgs {
    doc: Value,
}
impl CheckArgs for FormatDocArgs {}

fn default_indent() -> usize {
    2
}

/// `LD_format_action_file(file_path, indent=2)`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FormatFileArgs {
    file_path: PathBuf,
    #[serde(default = "default_indent")]
    indent: usize,
}
impl CheckArgs for FormatFileArgs {}

/// `LD_format_action_string(text, indent=2)`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FormatStringArgs {
    text: String,
    #[serde(default = "default_indent")]
    indent: usize,
}
impl CheckArgs for FormatStringArgs {}
