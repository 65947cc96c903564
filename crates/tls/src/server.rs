//! The node's side: a TLS acceptor that requires a broker's client certificate.

use std::future::Future;
use std::io;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, ServerConfig};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::{TcpListener, TcpStream};

use crate::incoming::{TlsConn, TlsIncoming, accept_loop};
use crate::reload::Reloading;
use crate::{TlsError, TlsFiles, check_identity, provider};

/// A server's TLS: its certificate and key, the CA its clients' certificates must chain to,
/// and the identities of the clients it accepts. The files are re-read when they change.
pub struct ServerTls {
    config: Reloading<ServerConfig>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads the files and accepts clients whose certificate names one of `trusted_clients`
    /// (DNS names such as `broker.tandem`). Fails when the files are unusable now.
    pub fn new(files: TlsFiles, trusted_clients: &[String]) -> Result<Self, TlsError> {
        if trusted_clients.is_empty() {
            return Err(TlsError::Identity(
                "trusted clients: at least one identity is required".to_owned(),
            ));
        }
        let mut allowed = Vec::new();
        for (i, identity) in trusted_clients.iter().enumerate() {
            check_identity(&format!("trusted clients[{i}]"), identity)
                .map_err(TlsError::Identity)?;
            let name = ServerName::try_from(identity.clone())
                .map_err(|e| TlsError::Identity(format!("{identity:?}: {e}")))?;
            allowed.push(name);
        }
        let allowed = Arc::new(allowed);
        let paths = files.paths().map(|p| p.to_path_buf()).to_vec();
        let config = Reloading::new(paths, move || build_config(&files, &allowed))?;
        Ok(ServerTls { config })
    }

    /// Performs the TLS handshake of an accepted connection with the current files.
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<TlsConn> {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.config.current());
        Ok(TlsConn(acceptor.accept(tcp).await?))
    }

    /// Accepts connections on `listener` until `shutdown` completes and hands on those whose
    /// handshake succeeded: a peer without a trusted broker certificate, or one speaking plain
    /// text, is closed and logged, never handed on.
    pub fn incoming(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> TlsIncoming {
        accept_loop(listener, shutdown, move |tcp| {
            let tls = Arc::clone(&self);
            async move { tls.accept(tcp).await }
        })
    }
}

fn build_config(
    files: &TlsFiles,
    allowed: &Arc<Vec<ServerName<'static>>>,
) -> Result<ServerConfig, TlsError> {
    let roots = Arc::new(files.load_roots()?);
    let inner = WebPkiClientVerifier::builder_with_provider(roots, provider()).build()?;
    let verifier = Arc::new(IdentityVerifier {
        inner,
        allowed: Arc::clone(allowed),
    });
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(files.load_chain()?, files.load_key()?)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Checks the client's chain with webpki (CA, validity period, client-auth usage), then that
/// the leaf names one of the allowed identities.
#[derive(Debug)]
struct IdentityVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Arc<Vec<ServerName<'static>>>,
}

impl ClientCertVerifier for IdentityVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if self
            .allowed
            .iter()
            .any(|name| cert.verify_is_valid_for_subject_name(name).is_ok())
        {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
