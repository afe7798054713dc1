//! TLS client settings (rustls): verified against the system's roots (and a task's
//! `ca_file`), or, for tasks with `"verify": false`, accepting any certificate; with a
//! client certificate for tasks that give `cert` / `client_cert` (see
//! [`crate::protocol::client_cert`]).

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
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
    /// The client certificate chain and key offered to servers that ask (none: no
    /// client authentication).
    identity: Option<Identity>,
}

/// A client certificate chain and its private key, loaded.
struct Identity(Arc<CertifiedKey>);

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
            identity: None,
        }
    }

    /// Connectors that offer this client certificate chain and key (checked: an
    /// error says why they cannot be used, never what the key holds).
    pub(crate) fn with_identity(
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, String> {
        let key = provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| format!("the key cannot be used for signing: {e}"))?;
        let certified = CertifiedKey::new(certs, key);
        // A key that is not the certificate's is refused now. A certificate webpki
        // cannot parse (an X.509 v1 one, as `openssl x509 -req` makes without
        // extensions) is still offered: the server decides, as with `requests`.
        if let Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) =
            certified.keys_match()
        {
            return Err("the key is not the certificate's key".to_string());
        }
        Ok(Self {
            identity: Some(Identity(Arc::new(certified))),
            ..Self::default()
        })
    }

    /// The connector for `verify` true or false, offering HTTP/2 (unless these
    /// connectors were made without it) and HTTP/1.1.
    pub fn get(&self, verify: bool) -> &TlsConnector {
        let alpn = if self.http2 { H2_AND_HTTP1 } else { HTTP1 };
        if verify {
            self.verified
                .get_or_init(|| with_alpn(self.verified_config(), alpn))
        } else {
            self.unverified
                .get_or_init(|| with_alpn(self.unverified_config(), alpn))
        }
    }

    /// The connector for `verify` true or false, offering only HTTP/1.1.
    pub fn get_http1(&self, verify: bool) -> &TlsConnector {
        if verify {
            self.verified_http1
                .get_or_init(|| with_alpn(self.verified_config(), HTTP1))
        } else {
            self.unverified_http1
                .get_or_init(|| with_alpn(self.unverified_config(), HTTP1))
        }
    }

    fn verified_config(&self) -> ClientConfig {
        let roots = root_store(&self.extra_roots);
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(roots));
        match builder {
            Ok(builder) => self.finish(builder),
            Err(_) => self.unverified_config(),
        }
    }

    fn unverified_config(&self) -> ClientConfig {
        let provider = provider();
        let verifier = Arc::new(AcceptAnyCertificate(provider.clone()));
        match ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
            Ok(builder) => self.finish(
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(verifier),
            ),
            Err(_) => ClientConfig::builder()
                .with_root_certificates(RootCertStore::empty())
                .with_no_client_auth(),
        }
    }

    /// Adds the client certificate, when there is one.
    fn finish(
        &self,
        builder: rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>,
    ) -> ClientConfig {
        match &self.identity {
            None => builder.with_no_client_auth(),
            Some(Identity(certified)) => builder
                .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified.clone()))),
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
