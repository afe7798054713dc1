//! What a `grpc_user` task learns from its `.proto` file at start: the file is
//! compiled in pure Rust (protox, no `protoc`), the method named
//! `package.Service/Method` is looked up, and the `payload` is checked against
//! the method's input type: every field name must exist (the error names the
//! field and the message type), and a payload without placeholders is converted
//! by protobuf's JSON mapping and encoded once.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use miette::Diagnostic;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MessageDescriptor, MethodDescriptor};
use serde_json::Value;

/// Compiles `proto` into a descriptor pool, its imports found under `includes`,
/// then in the proto's own directory.
pub(super) fn compile(proto: &Path, includes: &[PathBuf]) -> Result<DescriptorPool, String> {
    if !proto.is_file() {
        return Err(format!("cannot read `{}`: no such file", proto.display()));
    }
    let dir = proto
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut includes = includes.to_vec();
    if !includes.contains(&dir) {
        includes.push(dir);
    }
    let mut compiler =
        protox::Compiler::new(&includes).map_err(|e| format!("`{}`: {e}", proto.display()))?;
    compiler.include_imports(true);
    compiler
        .open_file(proto)
        .map_err(|e| format!("cannot compile `{}`: {}", proto.display(), describe(&e)))?;
    Ok(compiler.descriptor_pool())
}

/// A protox error with its place (`file:line:column`) when it has one.
fn describe(error: &protox::Error) -> String {
    let place = error
        .labels()
        .and_then(|mut labels| labels.next())
        .and_then(|label| {
            let source = error.source_code()?;
            let contents = source.read_span(label.inner(), 0, 0).ok()?;
            let name = contents.name().or(error.file()).unwrap_or("");
            Some(format!(
                "{name}:{}:{}",
                contents.line() + 1,
                contents.column() + 1
            ))
        })
        .or_else(|| error.file().map(str::to_string));
    match place {
        Some(place) => format!("{place}: {error}"),
        None => error.to_string(),
    }
}

/// `package.Service/Method` (a leading `/` allowed) split into service and method.
pub(super) fn split_method(method: &str) -> Result<(&str, &str), String> {
    match method.trim_start_matches('/').rsplit_once('/') {
        Some((service, name)) if !service.is_empty() && !name.is_empty() => Ok((service, name)),
        _ => Err(format!(
            "`{method}` is not `package.Service/Method` (for example `helloworld.Greeter/SayHello`)"
        )),
    }
}

/// Looks up `package.Service/Method` in `pool`; `source` names where the pool
/// came from in errors (the proto file).
pub(super) fn find_method(
    pool: &DescriptorPool,
    method: &str,
    source: &str,
) -> Result<MethodDescriptor, String> {
    let (service_name, method_name) = split_method(method)?;
    let Some(service) = pool.get_service_by_name(service_name) else {
        let known: Vec<String> = pool.services().map(|s| s.full_name().to_string()).collect();
        return Err(format!(
            "service `{service_name}` is not defined in {source}; it defines: {}",
            list(&known)
        ));
    };
    service
        .methods()
        .find(|m| m.name() == method_name)
        .ok_or_else(|| {
            let known: Vec<String> = service.methods().map(|m| m.name().to_string()).collect();
            format!(
                "method `{method_name}` is not in service `{service_name}`; it has: {}",
                list(&known)
            )
        })
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Checks that every field named in `payload` exists in `message` (and in the
/// messages below it), by its JSON name or its proto name. Values are not
/// checked here: they may hold placeholders.
pub(super) fn check_field_names(
    payload: &Value,
    message: &MessageDescriptor,
) -> Result<(), String> {
    let Value::Object(fields) = payload else {
        return Err(format!(
            "expected a JSON object for message type `{}`, got {payload}",
            message.full_name()
        ));
    };
    if is_well_known(message) {
        return Ok(());
    }
    for (name, value) in fields {
        let Some(field) = message
            .get_field_by_json_name(name)
            .or_else(|| message.get_field_by_name(name))
        else {
            let known: Vec<String> = message
                .fields()
                .map(|f| f.json_name().to_string())
                .collect();
            return Err(format!(
                "unknown field `{name}` in message type `{}`; its fields: {}",
                message.full_name(),
                list(&known)
            ));
        };
        if value.is_null() {
            continue;
        }
        let nested = |value: &Value, kind: &Kind| match kind {
            Kind::Message(inner) => {
                check_field_names(value, inner).map_err(|e| format!("{name}: {e}"))
            }
            _ => Ok(()),
        };
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                continue;
            };
            let value_kind = entry.map_entry_value_field().kind();
            if let Value::Object(entries) = value {
                for item in entries.values() {
                    nested(item, &value_kind)?;
                }
            }
        } else if field.is_list() {
            if let Value::Array(items) = value {
                for item in items {
                    nested(item, &field.kind())?;
                }
            }
        } else {
            nested(value, &field.kind())?;
        }
    }
    Ok(())
}

/// Types with their own JSON form (`Timestamp` as a string, `Struct` as any
/// object, ...), whose field names are not checked.
fn is_well_known(message: &MessageDescriptor) -> bool {
    message.full_name().starts_with("google.protobuf.")
}

/// Converts a JSON payload to a message of type `message` (protobuf's JSON
/// mapping; unknown fields refused) and encodes it.
pub(crate) fn encode_payload(
    payload: &Value,
    message: &MessageDescriptor,
) -> Result<Bytes, String> {
    let mut track = serde_path_to_error::Track::new();
    let deserializer = serde_path_to_error::Deserializer::new(payload, &mut track);
    let dynamic = DynamicMessage::deserialize(message.clone(), deserializer).map_err(|e| {
        let at = track.path().to_string();
        if at.is_empty() || at == "." {
            format!("not a valid `{}`: {e}", message.full_name())
        } else {
            format!("not a valid `{}`: field `{at}`: {e}", message.full_name())
        }
    })?;
    Ok(Bytes::from(dynamic.encode_to_vec()))
}
