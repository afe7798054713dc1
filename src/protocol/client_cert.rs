//! The `cert` / `client_cert` task field: a client certificate for mutual TLS, as
//! `requests` and `httpx` take it: one PEM file holding the certificate chain and
//! the key, or `[cert, key]`. Read once, at start; used by `http_user`,
//! `fast_http_user`, `websocket_user` (`wss://`) and `grpc_user` (`https://`).
//!
//! Errors name the field and the file, never what a key file holds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Map, Value};

use super::http::TlsConnectors;
use crate::task::{TaskError, err};

/// The task fields that give a client certificate (`client_cert` is LoadDensity's
/// alias of `cert`).
pub const CERT_FIELDS: &[&str] = &["cert", "client_cert"];

/// A client certificate and key, loaded and checked.
pub struct ClientCert {
    /// Tells connections made with this certificate from others.
    id: u64,
    /// The certificate chain, PEM (for gRPC's TLS configuration).
    pub(crate) cert_pem: Vec<u8>,
    /// The key, PEM (for gRPC's TLS configuration).
    pub(crate) key_pem: Vec<u8>,
    /// rustls connectors that offer the certificate.
    pub(crate) connectors: TlsConnectors,
    /// Where the certificate was read from (for messages).
    label: String,
}

impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("ClientCert")
            .field("id", &self.id)
            .field("cert", &self.label)
            .finish_non_exhaustive()
    }
}

impl PartialEq for ClientCert {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl ClientCert {
    /// A number that tells this certificate from every other loaded by this process
    /// (connections made with it are reused only for tasks with the same one).
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// The id of `cert`, 0 for none.
pub(crate) fn cert_id(cert: Option<&Arc<ClientCert>>) -> u64 {
    cert.map_or(0, |c| c.id)
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Parses `cert` (or `client_cert`) of the task at `path`: `None` when absent.
pub(crate) fn parse(
    object: &Map<String, Value>,
    path: &str,
) -> Result<Option<Arc<ClientCert>>, TaskError> {
    let (field, value) = match (object.get("cert"), object.get("client_cert")) {
        (Some(v), _) if !v.is_null() => ("cert", v),
        (_, Some(v)) if !v.is_null() => ("client_cert", v),
        _ => return Ok(None),
    };
    let field = format!("{path}.{field}");
    let expected =
        "expected a PEM file path holding the certificate and key, or [certificate path, key path]";
    let (cert_path, key_path) = match value {
        Value::String(p) if !p.is_empty() => (PathBuf::from(p), None),
        Value::Array(items) => match items.as_slice() {
            [Value::String(c), Value::String(k)] if !c.is_empty() && !k.is_empty() => {
                (PathBuf::from(c), Some(PathBuf::from(k)))
            }
            _ => return Err(err(field, format!("{expected}, got {value}"))),
        },
        other => return Err(err(field, format!("{expected}, got {other}"))),
    };
    load(&cert_path, key_path.as_deref())
        .map(|c| Some(Arc::new(c)))
        .map_err(|m| err(field, m))
}

/// Reads the certificate chain from `cert` and the key from `key` (else from `cert`).
fn load(cert: &Path, key: Option<&Path>) -> Result<ClientCert, String> {
    let cert_pem = std::fs::read(cert)
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert.display()))?;
    let key_file = key.unwrap_or(cert);
    let key_pem = match key {
        Some(key) => {
            std::fs::read(key).map_err(|e| format!("cannot read the key {}: {e}", key.display()))?
        }
        None => cert_pem.clone(),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{}: not a PEM certificate chain", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no PEM certificate (-----BEGIN CERTIFICATE-----) in this file",
            cert.display()
        ));
    }
    // The PEM parser's errors can quote a line of the file: for the key, say only
    // that no key was found.
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        format!(
            "{}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in this file",
            key_file.display()
        )
    })?;
    let connectors = TlsConnectors::with_identity(certs, private_key)
        .map_err(|m| format!("{} and {}: {m}", cert.display(), key_file.display()))?;
    Ok(ClientCert {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        cert_pem,
        key_pem,
        connectors,
        label: cert.display().to_string(),
    })
}
