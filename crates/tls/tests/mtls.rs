//! Real handshakes on loopback between a broker-side `ClientTls` and a node-side `ServerTls`
//! in front of a real tonic `NodeService`: the right certificates work; no client certificate,
//! an unknown CA, an expired certificate and the wrong identity on either side are refused
//! before any handler runs, and so is a client speaking plain text; renewed files are used by the
//! next handshake without a restart.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Counting, call};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tandem_proto::NodeInfo;
use tandem_proto::node_service_server::NodeServiceServer;
use tandem_tls::mint::{self, Kind, Validity};
use tandem_tls::{ClientTls, ServerTls, TlsFiles};
use tonic::transport::Endpoint;
use tonic::{Code, Status};

const NODE: &str = "ind-assoc.node.tandem";
const BROKER: &str = "broker.tandem";

/// A CA, a node certificate and a broker certificate, and a node serving on loopback.
struct Setup {
    dir: tempfile::TempDir,
    addr: std::net::SocketAddr,
    calls: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Setup {
    async fn start() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        mint::init(dir.path()).expect("ca");
        let node = mint::issue(dir.path(), "node", NODE, Kind::Node, Validity::days(1))
            .expect("node cert");
        mint::issue(
            dir.path(),
            "broker",
            BROKER,
            Kind::Broker,
            Validity::days(1),
        )
        .expect("broker cert");
        let tls = ServerTls::new(node, &[BROKER.to_owned()]).expect("server tls");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let secure = Arc::new(tls).incoming(listener, async {
            let _ = stopped.await;
        });
        let calls = Arc::new(AtomicUsize::new(0));
        let service = NodeServiceServer::new(Counting(Arc::clone(&calls)));
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(secure),
        );
        Setup {
            dir,
            addr,
            calls,
            stop: Some(stop),
        }
    }

    fn files(&self, name: &str) -> TlsFiles {
        TlsFiles::in_dir(self.dir.path(), name)
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint::from_shared(format!("https://{}", self.addr))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(5))
    }

    /// Calls `GetNodeInfo` as a broker with `files`, expecting the node to be `identity`.
    async fn call_as(&self, files: TlsFiles, identity: &str) -> Result<NodeInfo, Status> {
        let client = ClientTls::new(files).expect("client tls");
        let channel = client.channel(&self.endpoint(), identity).expect("channel");
        call(channel).await
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Asserts that the call failed in the transport and that no handler ran.
///
/// A broker that refuses the node fails in its own handshake: tonic reports `Unavailable`. A
/// node that refuses the broker's certificate does so in TLS 1.3 after the client already sent
/// its Finished, so the client learns it from the node's alert on the first read, and tonic
/// reports `Unknown: transport error` with the alert as source. The broker treats both as
/// "node unavailable".
fn assert_refused(result: Result<NodeInfo, Status>, setup: &Setup, case: &str) {
    let status = result.expect_err(case);
    let transport = status.code() == Code::Unavailable
        || (status.code() == Code::Unknown && status.message() == "transport error");
    assert!(transport, "{case}: not a transport error: {status:?}");
    assert_eq!(
        setup.calls.load(Ordering::SeqCst),
        0,
        "{case}: the handler must not run"
    );
}

fn certs(path: &std::path::Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .expect("pem")
        .collect::<Result<_, _>>()
        .expect("certs")
}

fn roots(ca: &std::path::Path) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs(ca) {
        roots.add(cert).expect("root");
    }
    roots
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client that trusts the CA but presents no certificate of its own.
fn anonymous_client(ca: &std::path::Path) -> rustls::ClientConfig {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots(ca))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    config
}

/// Returns the leaf certificate the node serves in a fresh handshake.
async fn served_leaf(setup: &Setup) -> CertificateDer<'static> {
    let files = setup.files("broker");
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots(&files.ca))
        .with_client_auth_cert(
            certs(&files.cert),
            rustls_pki_types::PrivateKeyDer::from_pem_file(&files.key).expect("key"),
        )
        .expect("client config");
    let tcp = tokio::net::TcpStream::connect(setup.addr)
        .await
        .expect("connect");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(NODE).expect("name"), tcp)
        .await
        .expect("handshake");
    tls.get_ref().1.peer_certificates().expect("peer")[0].clone()
}

#[tokio::test]
async fn the_registered_broker_reaches_the_node() {
    let setup = Setup::start().await;
    let info = setup
        .call_as(setup.files("broker"), NODE)
        .await
        .expect("call");
    assert_eq!(info.node_id, "ind-assoc");
    assert_eq!(setup.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let setup = Setup::start().await;
    let config = Arc::new(anonymous_client(&setup.files("broker").ca));
    let connector = tower::service_fn(move |uri: tonic::transport::Uri| {
        let config = Arc::clone(&config);
        async move {
            let host = uri.host().unwrap_or_default().to_owned();
            let port = uri.port_u16().unwrap_or(443);
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(ServerName::try_from(NODE).expect("name"), tcp)
                .await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    let channel = setup.endpoint().connect_with_connector_lazy(connector);
    assert_refused(call(channel).await, &setup, "no client certificate");
}

#[tokio::test]
async fn a_plain_text_client_is_refused() {
    let setup = Setup::start().await;
    let channel = Endpoint::from_shared(format!("http://{}", setup.addr))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect_lazy();
    assert_refused(call(channel).await, &setup, "plain text");
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    let setup = Setup::start().await;
    let other = tempfile::tempdir().expect("tempdir");
    mint::init(other.path()).expect("other ca");
    let rogue = mint::issue(
        other.path(),
        "broker",
        BROKER,
        Kind::Broker,
        Validity::days(1),
    )
    .expect("rogue cert");
    let files = TlsFiles {
        ca: setup.files("broker").ca,
        ..rogue
    };
    assert_refused(setup.call_as(files, NODE).await, &setup, "unknown ca");
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let setup = Setup::start().await;
    let now = time::OffsetDateTime::now_utc();
    let expired = Validity {
        not_before: now - time::Duration::days(10),
        not_after: now - time::Duration::days(1),
    };
    let files =
        mint::issue(setup.dir.path(), "old", BROKER, Kind::Broker, expired).expect("expired cert");
    assert_refused(setup.call_as(files, NODE).await, &setup, "expired");
}

#[tokio::test]
async fn a_valid_certificate_with_the_wrong_identity_is_refused() {
    let setup = Setup::start().await;
    let files = mint::issue(
        setup.dir.path(),
        "rogue",
        "rogue.tandem",
        Kind::Broker,
        Validity::days(1),
    )
    .expect("rogue cert");
    assert_refused(
        setup.call_as(files, NODE).await,
        &setup,
        "wrong broker identity",
    );
}

#[tokio::test]
async fn a_node_with_the_wrong_identity_is_refused_by_the_broker() {
    let setup = Setup::start().await;
    // The node's certificate is valid, but the broker registered another identity for it.
    let result = setup
        .call_as(setup.files("broker"), "other.node.tandem")
        .await;
    assert_refused(result, &setup, "wrong node identity");
}

#[tokio::test]
async fn a_node_certificate_cannot_call_as_a_broker() {
    let setup = Setup::start().await;
    // Right CA, but issued for serving: no client-auth usage, and not a trusted identity.
    assert_refused(
        setup.call_as(setup.files("node"), NODE).await,
        &setup,
        "node cert as client",
    );
}

#[tokio::test]
async fn renewed_files_are_used_by_the_next_handshake() {
    let setup = Setup::start().await;
    let before = served_leaf(&setup).await;
    assert_eq!(before, certs(&setup.files("node").cert)[0]);

    // Renew the node's certificate in place, as `tandem certs issue` would.
    mint::issue(
        setup.dir.path(),
        "node",
        NODE,
        Kind::Node,
        Validity::days(2),
    )
    .expect("renew");
    let after = served_leaf(&setup).await;
    assert_ne!(
        before, after,
        "the new handshake must serve the renewed certificate"
    );
    assert_eq!(after, certs(&setup.files("node").cert)[0]);

    // The broker renews too; its next connection presents the new certificate and works.
    mint::issue(
        setup.dir.path(),
        "broker",
        BROKER,
        Kind::Broker,
        Validity::days(2),
    )
    .expect("renew broker");
    setup
        .call_as(setup.files("broker"), NODE)
        .await
        .expect("call after renewal");
}

#[tokio::test]
async fn a_broker_whose_certificate_was_replaced_badly_is_refused_next_time() {
    let setup = Setup::start().await;
    let files = setup.files("broker");
    let client = ClientTls::new(files.clone()).expect("client tls");
    call(client.channel(&setup.endpoint(), NODE).expect("channel"))
        .await
        .expect("first call");
    // Replace the broker's certificate with one for an identity the node does not trust: the
    // same ClientTls picks it up at its next handshake, which the node refuses.
    mint::issue(
        setup.dir.path(),
        "broker",
        "rogue.tandem",
        Kind::Broker,
        Validity::days(1),
    )
    .expect("replace");
    let status = call(client.channel(&setup.endpoint(), NODE).expect("channel"))
        .await
        .expect_err("refused after replacement");
    assert!(
        matches!(status.code(), Code::Unavailable | Code::Unknown),
        "{status:?}"
    );
    assert_eq!(setup.calls.load(Ordering::SeqCst), 1);
}
