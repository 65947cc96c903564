//! Real handshakes on loopback with the TLS of the caller-facing APIs: an `ApiTls` server in
//! front of a tonic service and `ApiClientTls` callers. A caller that trusts the CA reaches the
//! service without a certificate of its own; one that trusts another CA, one that dials a name
//! the certificate does not carry, and one speaking plain text never reach a handler; a
//! renewed certificate is served from the next handshake without a restart; missing files are
//! named.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Counting, call};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tandem_proto::NodeInfo;
use tandem_proto::node_service_server::NodeServiceServer;
use tandem_tls::mint::{self, Validity};
use tandem_tls::{Alpn, ApiClientTls, ApiTls, CertFiles, TlsError};
use tonic::transport::Endpoint;
use tonic::{Code, Status};

/// A CA, an API certificate for `localhost` and `127.0.0.1`, and a gRPC server on loopback.
struct Setup {
    dir: tempfile::TempDir,
    addr: std::net::SocketAddr,
    calls: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn api_names() -> Vec<String> {
    vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
}

impl Setup {
    async fn start() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        mint::init(dir.path()).expect("ca");
        let files =
            mint::issue_api(dir.path(), "api", &api_names(), Validity::days(1)).expect("api cert");
        let tls = ApiTls::new(files.cert_files()).expect("api tls");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let incoming = tls.incoming(listener, Alpn::Grpc, async {
            let _ = stopped.await;
        });
        let calls = Arc::new(AtomicUsize::new(0));
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(NodeServiceServer::new(Counting(Arc::clone(&calls))))
                .serve_with_incoming(incoming),
        );
        Setup {
            dir,
            addr,
            calls,
            stop: Some(stop),
        }
    }

    fn ca(&self) -> std::path::PathBuf {
        self.dir.path().join(mint::CA_CERT)
    }

    fn endpoint(&self, scheme: &str, host: &str) -> Endpoint {
        Endpoint::from_shared(format!("{scheme}://{host}:{}", self.addr.port()))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(5))
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn assert_transport_error(result: Result<NodeInfo, Status>, case: &str) {
    let status = result.expect_err(case);
    assert!(
        matches!(status.code(), Code::Unavailable | Code::Unknown),
        "{case}: not a transport error: {status:?}"
    );
}

/// Returns the leaf certificate the server presents in a fresh handshake.
async fn served_leaf(setup: &Setup) -> CertificateDer<'static> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(setup.ca()).expect("pem") {
        roots.add(cert.expect("cert")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(setup.addr)
        .await
        .expect("connect");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("handshake");
    tls.get_ref().1.peer_certificates().expect("peer")[0].clone()
}

#[tokio::test]
async fn a_caller_that_trusts_the_ca_gets_in_without_a_certificate() {
    let setup = Setup::start().await;
    let client = ApiClientTls::new(&setup.ca()).expect("client");
    for host in ["127.0.0.1", "localhost"] {
        let channel = client
            .connect(&setup.endpoint("https", host))
            .await
            .expect("connect");
        let info = call(channel).await.expect(host);
        assert_eq!(info.node_id, "ind-assoc");
    }
    assert_eq!(setup.calls(), 2);
}

#[tokio::test]
async fn a_caller_that_trusts_another_ca_is_refused() {
    let setup = Setup::start().await;
    let other = tempfile::tempdir().expect("tempdir");
    let other_ca = mint::init(other.path()).expect("other ca");
    let client = ApiClientTls::new(&other_ca).expect("client");
    let channel = client.channel(&setup.endpoint("https", "127.0.0.1"));
    assert_transport_error(call(channel).await, "another ca");
    assert_eq!(setup.calls(), 0, "no handler ran");
}

#[tokio::test]
async fn a_name_the_certificate_does_not_carry_is_refused() {
    let setup = Setup::start().await;
    // The server now presents a certificate from the right CA that names another host only.
    mint::issue_api(
        setup.dir.path(),
        "api",
        &["broker.example.org".to_owned()],
        Validity::days(1),
    )
    .expect("reissue");
    let client = ApiClientTls::new(&setup.ca()).expect("client");
    let channel = client.channel(&setup.endpoint("https", "127.0.0.1"));
    assert_transport_error(call(channel).await, "wrong name");
    assert_eq!(setup.calls(), 0, "no handler ran");
}

#[tokio::test]
async fn a_plain_text_caller_never_reaches_a_handler() {
    let setup = Setup::start().await;
    let channel = setup.endpoint("http", "127.0.0.1").connect_lazy();
    assert_transport_error(call(channel).await, "plain text");
    assert_eq!(setup.calls(), 0, "no handler ran");
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let setup = Setup::start().await;
    let before = served_leaf(&setup).await;
    // Renew in place, as `tandem certs issue --kind api` would.
    let files =
        mint::issue_api(setup.dir.path(), "api", &api_names(), Validity::days(2)).expect("renew");
    let after = served_leaf(&setup).await;
    assert_ne!(
        before, after,
        "the next handshake serves the renewed certificate"
    );
    let on_disk = CertificateDer::pem_file_iter(&files.cert)
        .expect("pem")
        .next()
        .expect("one cert")
        .expect("cert");
    assert_eq!(after, on_disk);

    // A broken renewal keeps the working certificate.
    std::fs::write(&files.cert, "not a certificate").expect("break");
    assert_eq!(served_leaf(&setup).await, after);
    let client = ApiClientTls::new(&setup.ca()).expect("client");
    call(client.channel(&setup.endpoint("https", "localhost")))
        .await
        .expect("still serving");
}

#[tokio::test]
async fn missing_or_bad_files_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = CertFiles {
        cert: dir.path().join("api.pem"),
        key: dir.path().join("api-key.pem"),
    };
    let err = ApiTls::new(missing.clone()).expect_err("missing");
    assert!(matches!(err, TlsError::Io { .. }), "{err}");
    assert!(err.to_string().contains("api.pem"), "{err}");

    mint::init(dir.path()).expect("ca");
    mint::issue_api(dir.path(), "api", &api_names(), Validity::days(1)).expect("cert");
    std::fs::write(&missing.key, "garbage").expect("write");
    let err = ApiTls::new(missing).expect_err("bad key");
    assert!(err.to_string().contains("api-key.pem"), "{err}");

    let err = ApiClientTls::new(&dir.path().join("nope.pem")).expect_err("no ca");
    assert!(err.to_string().contains("nope.pem"), "{err}");

    let err = mint::issue_api(
        dir.path(),
        "api",
        &["not a name".to_owned()],
        Validity::days(1),
    )
    .expect_err("bad name");
    assert!(err.to_string().starts_with("names[0]: "), "{err}");
}
