//! The broker's side: a connector for tonic channels that presents the broker's certificate
//! and accepts a node only when its certificate chains to the CA and names the identity
//! registered for that node.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::reload::Reloading;
use crate::{TlsError, TlsFiles, check_identity, provider};

/// A client's TLS: the certificate and key it presents and the CA its servers' certificates
/// must chain to. The files are re-read when they change.
pub struct ClientTls {
    config: Reloading<ClientConfig>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls").finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Loads the files; fails when they are unusable now.
    pub fn new(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let paths = files.paths().map(|p| p.to_path_buf()).to_vec();
        let config = Reloading::new(paths, move || build_config(&files))?;
        Ok(Arc::new(ClientTls { config }))
    }

    /// Returns a connector to servers whose certificate names `identity`.
    pub fn connector(self: &Arc<Self>, identity: &str) -> Result<TlsConnector, TlsError> {
        check_identity("identity", identity).map_err(TlsError::Identity)?;
        let identity = ServerName::try_from(identity.to_owned())
            .map_err(|e| TlsError::Identity(format!("identity: {identity:?}: {e}")))?;
        Ok(TlsConnector {
            tls: Arc::clone(self),
            identity,
        })
    }

    /// Returns a lazily connecting channel to `endpoint` whose server must be `identity`.
    pub fn channel(
        self: &Arc<Self>,
        endpoint: &Endpoint,
        identity: &str,
    ) -> Result<Channel, TlsError> {
        Ok(endpoint.connect_with_connector_lazy(self.connector(identity)?))
    }
}

fn build_config(files: &TlsFiles) -> Result<ClientConfig, TlsError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(files.load_roots()?)
        .with_client_auth_cert(files.load_chain()?, files.load_key()?)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Dials the endpoint's host and port over TCP and runs the TLS handshake with the current
/// files, verifying the server against the expected identity (not the host name in the URL).
#[derive(Debug, Clone)]
pub struct TlsConnector {
    tls: Arc<ClientTls>,
    identity: ServerName<'static>,
}

impl tower::Service<Uri> for TlsConnector {
    type Response = ClientStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(dial(
            uri,
            self.tls.config.current(),
            Some(self.identity.clone()),
        ))
    }
}

/// A client's TLS stream, as tonic's connectors hand it over.
pub(crate) type ClientStream = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;

/// Dials the URI's host and port over TCP and runs the TLS handshake with `config`, verifying
/// the server's certificate against `identity`, or against the URI's host (a DNS name or an IP
/// address) when `identity` is none.
pub(crate) async fn dial(
    uri: Uri,
    config: Arc<ClientConfig>,
    identity: Option<ServerName<'static>>,
) -> io::Result<ClientStream> {
    let host = uri
        .host()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "endpoint has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let identity = match identity {
        Some(identity) => identity,
        None => ServerName::try_from(host.clone()).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("host {host:?}: {e}"))
        })?,
    };
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    // Without TCP_NODELAY, small gRPC calls wait for delayed ACKs (about 40 ms each).
    tcp.set_nodelay(true)?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(identity, tcp)
        .await?;
    Ok(TokioIo::new(tls))
}
