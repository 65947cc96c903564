//! The node's side: a TLS acceptor that requires a broker's client certificate, and the
//! listener split that sends TLS connections to one gRPC router and plain ones to another.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, ServerConfig};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::reload::Reloading;
use crate::{TlsError, TlsFiles, check_identity, provider};

/// Longest a peer may take to say what it speaks and finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The first byte of a TLS record carrying a handshake (a ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

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

/// An accepted, authenticated TLS connection, ready for tonic's `serve_with_incoming`.
#[derive(Debug)]
pub struct TlsConn(tokio_rustls::server::TlsStream<TcpStream>);

impl TlsConn {
    /// Returns the peer's end-entity certificate.
    pub fn peer_certificate(&self) -> Option<&CertificateDer<'static>> {
        self.0.get_ref().1.peer_certificates()?.first()
    }
}

impl Connected for TlsConn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.get_ref().0.connect_info()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Connections accepted over TLS (authenticated peers only).
pub type TlsIncoming = ReceiverStream<io::Result<TlsConn>>;
/// Connections that spoke plain text.
pub type PlainIncoming = ReceiverStream<io::Result<TcpStream>>;

/// Accepts connections on `listener` until `shutdown` completes and sorts them by their first
/// byte: a TLS ClientHello goes through the handshake with `tls` (a refused peer is closed and
/// logged, never handed on), anything else is handed on as plain text. Both streams end at
/// shutdown. Each connection is classified in its own task, so a slow peer delays nobody.
pub fn split_incoming(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (TlsIncoming, PlainIncoming) {
    let (tls_tx, tls_rx) = mpsc::channel(64);
    let (plain_tx, plain_rx) = mpsc::channel(64);
    tokio::spawn(async move {
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            // Without TCP_NODELAY, small gRPC replies wait for delayed ACKs (about 40 ms each).
            let _ = tcp.set_nodelay(true);
            let tls = Arc::clone(&tls);
            let tls_tx = tls_tx.clone();
            let plain_tx = plain_tx.clone();
            tokio::spawn(async move {
                let classified = tokio::time::timeout(HANDSHAKE_TIMEOUT, classify(tcp, &tls)).await;
                match classified {
                    Ok(Ok(Kind::Tls(conn))) => {
                        let _ = tls_tx.send(Ok(*conn)).await;
                    }
                    Ok(Ok(Kind::Plain(tcp))) => {
                        let _ = plain_tx.send(Ok(tcp)).await;
                    }
                    Ok(Ok(Kind::Closed)) => {}
                    Ok(Err(err)) => {
                        tracing::warn!(%peer, error = %err, "tls handshake refused");
                    }
                    Err(_) => tracing::warn!(%peer, "tls handshake timed out"),
                }
            });
        }
    });
    (ReceiverStream::new(tls_rx), ReceiverStream::new(plain_rx))
}

enum Kind {
    Tls(Box<TlsConn>),
    Plain(TcpStream),
    Closed,
}

async fn classify(tcp: TcpStream, tls: &ServerTls) -> io::Result<Kind> {
    let mut first = [0u8; 1];
    if tcp.peek(&mut first).await? == 0 {
        return Ok(Kind::Closed);
    }
    if first[0] == TLS_HANDSHAKE_RECORD {
        Ok(Kind::Tls(Box::new(tls.accept(tcp).await?)))
    } else {
        Ok(Kind::Plain(tcp))
    }
}
