//! TLS of the caller-facing APIs: the broker's `MenteeService`, `OperatorService` and dashboard,
//! and a node's `NodeAdminService`.
//!
//! Their callers (member companies, operators, association staff) authenticate with an API key
//! in the request, so the server presents a certificate and asks for none: [`ApiTls`] is the
//! server's side, [`ApiClientTls`] a caller that trusts a CA file (the development CA of
//! `tandem certs init`, or the CA a production certificate chains to).

use std::future::Future;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::{ClientConfig, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::{Channel, Endpoint, Uri};

use crate::client::{ClientStream, dial};
use crate::files::load_roots;
use crate::incoming::{TlsConn, TlsIncoming, accept_loop};
use crate::reload::Reloading;
use crate::{CertFiles, TlsError, provider};

/// The application protocol a listener speaks, announced through ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// gRPC (HTTP/2 only).
    Grpc,
    /// HTTP/1.1: the dashboard, its JSON and the metrics.
    Http1,
}

/// The server configurations built from one certificate and key, one per protocol.
struct Configs {
    grpc: Arc<ServerConfig>,
    http1: Arc<ServerConfig>,
}

/// A server's TLS without client certificates: its certificate chain and key, re-read when the
/// files change, so a renewed certificate is served from the next handshake without a restart.
pub struct ApiTls {
    configs: Reloading<Configs>,
}

impl std::fmt::Debug for ApiTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiTls").finish_non_exhaustive()
    }
}

impl ApiTls {
    /// Loads the files; fails, naming the file, when they are unusable now.
    pub fn new(files: CertFiles) -> Result<Arc<Self>, TlsError> {
        let paths = files.paths().map(|p| p.to_path_buf()).to_vec();
        let configs = Reloading::new(paths, move || build_configs(&files))?;
        Ok(Arc::new(ApiTls { configs }))
    }

    /// Performs the TLS handshake of an accepted connection with the current files, offering
    /// `alpn`.
    pub async fn accept(&self, tcp: TcpStream, alpn: Alpn) -> io::Result<TlsConn> {
        let configs = self.configs.current();
        let config = match alpn {
            Alpn::Grpc => Arc::clone(&configs.grpc),
            Alpn::Http1 => Arc::clone(&configs.http1),
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        Ok(TlsConn(acceptor.accept(tcp).await?))
    }

    /// Accepts connections on `listener` until `shutdown` completes and hands on those whose
    /// handshake succeeded; plain text and failed handshakes are closed and logged.
    pub fn incoming(
        self: &Arc<Self>,
        listener: TcpListener,
        alpn: Alpn,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> TlsIncoming {
        let tls = Arc::clone(self);
        accept_loop(listener, shutdown, move |tcp| {
            let tls = Arc::clone(&tls);
            async move { tls.accept(tcp, alpn).await }
        })
    }
}

fn build_configs(files: &CertFiles) -> Result<Configs, TlsError> {
    let mut grpc = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(files.load_chain()?, files.load_key()?)?;
    let mut http1 = grpc.clone();
    grpc.alpn_protocols = vec![b"h2".to_vec()];
    http1.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Configs {
        grpc: Arc::new(grpc),
        http1: Arc::new(http1),
    })
}

/// A caller's TLS for the APIs: trusts the CA certificate(s) of a file and presents no
/// certificate of its own. The server must be named by the host of the URL it is dialled at
/// (`https://localhost:7000`, `https://127.0.0.1:7000`, `https://broker.example.org:7000`).
pub struct ApiClientTls {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for ApiClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClientTls").finish_non_exhaustive()
    }
}

impl ApiClientTls {
    /// Trusts the CA certificate(s) in `ca` (PEM); fails, naming the file, when it holds none.
    pub fn new(ca: &Path) -> Result<Arc<Self>, TlsError> {
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(load_roots(ca)?)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(ApiClientTls {
            config: Arc::new(config),
        }))
    }

    /// Returns a lazily connecting gRPC channel to `endpoint`.
    pub fn channel(self: &Arc<Self>, endpoint: &Endpoint) -> Channel {
        endpoint.connect_with_connector_lazy(ApiConnector(Arc::clone(&self.config)))
    }

    /// Opens a TLS connection for HTTP/1.1 (the dashboard, `/metrics`) to `addr`, verifying
    /// the server's certificate against `host`.
    pub async fn connect_http1(
        &self,
        addr: std::net::SocketAddr,
        host: &str,
    ) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let mut config = ClientConfig::clone(&self.config);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let name = rustls_pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: {e}")))?;
        let tcp = TcpStream::connect(addr).await?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
    }

    /// Connects a gRPC channel to `endpoint`; fails when the handshake does.
    pub async fn connect(
        self: &Arc<Self>,
        endpoint: &Endpoint,
    ) -> Result<Channel, tonic::transport::Error> {
        endpoint
            .connect_with_connector(ApiConnector(Arc::clone(&self.config)))
            .await
    }
}

/// Dials an API over TLS, verifying the server against the URL's host.
#[derive(Clone)]
struct ApiConnector(Arc<ClientConfig>);

impl tower::Service<Uri> for ApiConnector {
    type Response = ClientStream;
    type Error = io::Error;
    type Future = std::pin::Pin<Box<dyn Future<Output = io::Result<ClientStream>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(dial(uri, Arc::clone(&self.0), None))
    }
}
