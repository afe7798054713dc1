//! TLS client settings (rustls): verified against the system's roots, or, for tasks
//! with `"verify": false`, accepting any certificate.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

/// TLS connectors shared by the users of a test, built on first use.
#[derive(Default)]
pub struct TlsConnectors {
    verified: OnceLock<TlsConnector>,
    unverified: OnceLock<TlsConnector>,
    /// The same, offering only HTTP/1.1 (for `fast_http_user`).
    verified_http1: OnceLock<TlsConnector>,
    unverified_http1: OnceLock<TlsConnector>,
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
    /// The connector for `verify` true or false, offering HTTP/2 and HTTP/1.1.
    pub fn get(&self, verify: bool) -> &TlsConnector {
        if verify {
            self.verified
                .get_or_init(|| with_alpn(verified_config(), H2_AND_HTTP1))
        } else {
            self.unverified
                .get_or_init(|| with_alpn(unverified_config(), H2_AND_HTTP1))
        }
    }

    /// The connector for `verify` true or false, offering only HTTP/1.1.
    pub fn get_http1(&self, verify: bool) -> &TlsConnector {
        if verify {
            self.verified_http1
                .get_or_init(|| with_alpn(verified_config(), HTTP1))
        } else {
            self.unverified_http1
                .get_or_init(|| with_alpn(unverified_config(), HTTP1))
        }
    }
}

fn verified_config() -> ClientConfig {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
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
