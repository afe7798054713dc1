//! TLS client settings (rustls): verified against the system's roots, or, for tasks
//! with `"verify": false`, accepting any certificate.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

/// TLS connectors shared by the users of a test, built on first use.
pub struct TlsConnectors {
    /// Offer HTTP/2 by ALPN besides HTTP/1.1 (true by default).
    http2: bool,
    /// Certificates trusted besides the system's roots (a task's `ca_file`).
    extra_roots: Vec<CertificateDer<'static>>,
    verified: OnceLock<TlsConnector>,
    unverified: OnceLock<TlsConnector>,
    /// The same, offering only HTTP/1.1 (for `fast_http_user`).
    verified_http1: OnceLock<TlsConnector>,
    unverified_http1: OnceLock<TlsConnector>,
}

impl Default for TlsConnectors {
    fn default() -> Self {
        Self::with_options(true, Vec::new())
    }
}

impl std::fmt::Debug for TlsConnectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnectors").finish_non_exhaustive()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn with_alpn(mut config: ClientConfig, protocols: &[&[u8]]) -> TlsConnector {
    config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

const H2_AND_HTTP1: &[&[u8]] = &[b"h2", b"http/1.1"];
const HTTP1: &[&[u8]] = &[b"http/1.1"];

impl TlsConnectors {
    /// Connectors that offer HTTP/2 by ALPN only when `http2` (else HTTP/1.1 alone),
    /// and trust `extra_roots` besides the system's roots.
    pub fn with_options(http2: bool, extra_roots: Vec<CertificateDer<'static>>) -> Self {
        Self {
            http2,
            extra_roots,
            verified: OnceLock::new(),
            unverified: OnceLock::new(),
            verified_http1: OnceLock::new(),
            unverified_http1: OnceLock::new(),
        }
    }

    /// The connector for `verify` true or false, offering HTTP/2 (unless these
    /// connectors were made without it) and HTTP/1.1.
    pub fn get(&self, verify: bool) -> &TlsConnector {
        let alpn = if self.http2 { H2_AND_HTTP1 } else { HTTP1 };
        if verify {
            self.verified
                .get_or_init(|| with_alpn(verified_config(&self.extra_roots), alpn))
        } else {
            self.unverified
                .get_or_init(|| with_alpn(unverified_config(), alpn))
        }
    }

    /// The connector for `verify` true or false, offering only HTTP/1.1.
    pub fn get_http1(&self, verify: bool) -> &TlsConnector {
        if verify {
            self.verified_http1
                .get_or_init(|| with_alpn(verified_config(&self.extra_roots), HTTP1))
        } else {
            self.unverified_http1
                .get_or_init(|| with_alpn(unverified_config(), HTTP1))
        }
    }
}

/// The certificates of a PEM file (a task's `ca_file`), to trust besides the
/// system's roots.
pub fn read_ca_file(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from `{}`: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("`{}` holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// The system's root certificates and `extra` ones.
pub(crate) fn root_store(extra: &[CertificateDer<'static>]) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs.into_iter().chain(extra.iter().cloned()) {
        let _ = roots.add(cert);
    }
    roots
}

fn verified_config(extra_roots: &[CertificateDer<'static>]) -> ClientConfig {
    let roots = root_store(extra_roots);
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .unwrap_or_else(|_| unverified_config())
}

fn unverified_config() -> ClientConfig {
    let provider = provider();
    let verifier = Arc::new(AcceptAnyCertificate(provider.clone()));
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        })
        .unwrap_or_else(|_| {
            ClientConfig::builder()
                .with_root_certificates(RootCertStore::empty())
                .with_no_client_auth()
        })
}

/// The verifier of `"verify": false` (also used by `grpc_user`'s channels).
pub(crate) fn accept_any_certificate() -> Arc<dyn ServerCertVerifier> {
    Arc::new(AcceptAnyCertificate(provider()))
}

/// `"verify": false`: accepts any server certificate, but still checks that the
/// handshake signatures are valid. rustls ships no such verifier on purpose, so it is
/// written here, as small as it can be.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
