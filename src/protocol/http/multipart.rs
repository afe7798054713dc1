//! `files`: a `multipart/form-data` body (RFC 7578) built once when the test starts
//! from the files named in the task. Written by hand: the format is a few lines, and
//! the multipart crates either parse only or stream from async readers per request.

use std::path::Path;

use bytes::Bytes;
use http::HeaderValue;
use serde_json::Value;

use crate::task::{TaskError, err};

/// One file part: `{"field": "path"}` or `{"field": {"path", "filename", "content_type"}}`.
struct FilePart {
    field: String,
    filename: String,
    content_type: String,
    bytes: Vec<u8>,
}

fn file_part(field: &str, spec: &Value, path: &str) -> Result<FilePart, TaskError> {
    let here = format!("{path}.{field}");
    let (file, filename, content_type) = match spec {
        Value::String(file) => (file.clone(), None, None),
        Value::Object(map) => {
            if let Some(key) = map
                .keys()
                .find(|k| !["path", "filename", "content_type"].contains(&k.as_str()))
            {
                return Err(err(
                    format!("{here}.{key}"),
                    "unknown field; expected one of: path, filename, content_type",
                ));
            }
            let text = |key: &str| match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(err(
                    format!("{here}.{key}"),
                    format!("expected a string, got {other}"),
                )),
            };
            let file = text("path")?.ok_or_else(|| err(format!("{here}.path"), "missing field"))?;
            (file, text("filename")?, text("content_type")?)
        }
        other => {
            return Err(err(
                here,
                format!(
                    "expected a file path or {{\"path\", \"filename\", \"content_type\"}}, got {other}"
                ),
            ));
        }
    };
    let bytes = read_upload(Path::new(&file), &here)?;
    let filename = filename.unwrap_or_else(|| {
        Path::new(&file)
            .file_name()
            .map_or_else(|| field.to_string(), |n| n.to_string_lossy().into_owned())
    });
    Ok(FilePart {
        field: field.to_string(),
        filename,
        content_type: content_type.unwrap_or_else(|| "application/octet-stream".into()),
        bytes,
    })
}

/// Quotes a name for a `Content-Disposition` parameter.
fn quoted(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace(['\r', '\n'], " ")
}

/// The body and `Content-Type` of a multipart form with text `fields` and the
/// `files` of a task (`path` names the `files` field in errors).
pub(crate) fn multipart(
    fields: &[(String, String)],
    files: &Value,
    path: &str,
) -> Result<(Bytes, HeaderValue), TaskError> {
    let parts = match files {
        Value::Object(map) => map
            .iter()
            .map(|(field, spec)| file_part(field, spec, path))
            .collect::<Result<Vec<_>, _>>()?,
        other => {
            return Err(err(
                path,
                format!("expected a map of form field to file path, got {other}"),
            ));
        }
    };
    let boundary = format!("loaddensity-{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{value}\r\n",
                quoted(name)
            )
            .as_bytes(),
        );
    }
    for part in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
                quoted(&part.field),
                quoted(&part.filename),
                part.content_type.replace(['\r', '\n'], "")
            )
            .as_bytes(),
        );
        body.extend_from_slice(&part.bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let content_type = HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}"))
        .map_err(|e| err(path, e.to_string()))?;
    Ok((Bytes::from(body), content_type))
}

/// Reads a file for a multipart upload, naming the task field on failure.
fn read_upload(path: &Path, field: &str) -> Result<Vec<u8>, TaskError> {
    std::fs::read(path).map_err(|e| err(field, format!("cannot read `{}`: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;

    #[test]
    fn form_fields_and_files() {
        let mut file = tempfile::NamedTempFile::new().expect("temp");
        file.write_all(b"hello file").expect("write");
        let files = json!({"upload": file.path().to_str().expect("utf8")});
        let (body, content_type) =
            multipart(&[("title".into(), "a b".into())], &files, "tasks[0].files").expect("builds");
        let boundary = content_type
            .to_str()
            .expect("ascii")
            .split_once("boundary=")
            .map(|(_, b)| b.to_string())
            .expect("boundary");
        let text = String::from_utf8(body.to_vec()).expect("utf8");
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.contains("name=\"title\"\r\n\r\na b\r\n"));
        assert!(text.contains("name=\"upload\"; filename=\""));
        assert!(text.contains("\r\n\r\nhello file\r\n"));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
        let e = multipart(&[], &json!({"f": "/nonexistent/x.bin"}), "tasks[0].files")
            .expect_err("missing");
        assert_eq!(e.path, "tasks[0].files.f");
        assert!(e.message.contains("/nonexistent/x.bin"));
    }
}
