//! A broker served on loopback ports (gRPC, dashboard, health) in plain text over a real
//! database, with a test node, and raw gRPC calls: for the tests of what every call looks like
//! to callers and operators (`tests/rpc.rs`, `tests/spans.rs`).

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::StreamExt;
use sea_orm::DatabaseConnection;
use tandem_broker::keys::Scope;
use tandem_broker::{Broker, Listeners, serve};
use tandem_proto::operator_service_client::OperatorServiceClient;
use tandem_storage::{BrokerMigrator, MigratorTrait};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::codegen::Bytes;
use tonic::codegen::http;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower::{Service, ServiceExt};

use super::{HOME, TestNode, key_of, quiet_config};

/// Long enough for a few looks of the health watcher (every five seconds).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Adds an operator's key to every call.
#[derive(Clone)]
pub struct Operator(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl Interceptor for Operator {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A broker on loopback ports (gRPC, dashboard, health), in plain text, with a test node.
pub struct Served {
    pub db: DatabaseConnection,
    pub channel: Channel,
    pub dashboard: SocketAddr,
    pub health: HealthClient<Channel>,
    pub home: TestNode,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Served {
    pub async fn on(url: &str) -> Served {
        let db = tandem_storage::connect(url).await.expect("connect");
        BrokerMigrator::up(&db, None).await.expect("migrate");
        let broker = Broker::new(db.clone(), quiet_config(url))
            .await
            .expect("broker");
        broker
            .install_key(Scope::Operator, "", "test operator", &key_of("operator"))
            .await
            .expect("operator key");
        let home = TestNode::start(HOME).await;
        broker
            .register_node(HOME, &home.endpoint(), "Home association", "")
            .await
            .expect("register home");
        let bind = || async { TcpListener::bind("127.0.0.1:0").await.expect("bind") };
        let listeners = Listeners {
            grpc: bind().await,
            dashboard: Some(bind().await),
            health: Some(bind().await),
            tls: None,
        };
        let addr = listeners.grpc.local_addr().expect("address");
        let dashboard = listeners
            .dashboard
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .expect("dashboard address");
        let health_addr = listeners
            .health
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .expect("health address");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(broker, listeners, async {
            let _ = stopped.await;
        }));
        let connect = |addr: SocketAddr| async move {
            tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .expect("endpoint")
                .connect()
                .await
                .expect("connect")
        };
        let channel = connect(addr).await;
        let mut health = HealthClient::new(connect(health_addr).await);
        wait_for(&mut health, ServingStatus::Serving).await;
        Served {
            db,
            channel,
            dashboard,
            health,
            home,
            stop,
            server,
        }
    }

    pub async fn sqlite(dir: &tempfile::TempDir) -> Served {
        Self::on(&tandem_storage::sqlite_url(
            &dir.path().join("broker.sqlite"),
        ))
        .await
    }

    pub fn operator(&self) -> OperatorServiceClient<InterceptedService<Channel, Operator>> {
        let value = format!("Bearer {}", key_of("operator"))
            .parse()
            .expect("ascii key");
        OperatorServiceClient::with_interceptor(self.channel.clone(), Operator(value))
    }

    /// Sends `body` as is to `path`, with the operator's key; returns the status the caller gets.
    pub async fn raw(&self, path: &str, body: Vec<u8>) -> tonic::Status {
        let request = http::Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("authorization", format!("Bearer {}", key_of("operator")))
            .body(tonic::body::Body::new(Once(Some(Bytes::from(body)))))
            .expect("request");
        let mut channel = self.channel.clone();
        let response = channel
            .ready()
            .await
            .expect("ready")
            .call(request)
            .await
            .expect("an HTTP answer");
        if let Some(status) = tonic::Status::from_header_map(response.headers()) {
            return status;
        }
        // Not trailers-only: the status is in the trailers, after the messages.
        let mut body = response.into_body();
        loop {
            let frame =
                std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut body), cx))
                    .await
                    .expect("a status before the end")
                    .expect("frame");
            if let Some(trailers) = frame.trailers_ref() {
                return tonic::Status::from_header_map(trailers).expect("grpc-status");
            }
        }
    }

    /// Returns the status and body of the dashboard's `/metrics`, as the operator scrapes it.
    pub async fn scrape(&self) -> (String, String) {
        let mut stream = tokio::net::TcpStream::connect(self.dashboard)
            .await
            .expect("connect to the dashboard");
        let request = format!(
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            key_of("operator")
        );
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
        let status = head.lines().next().unwrap_or_default().to_owned();
        (status, body.to_owned())
    }

    /// Returns the dashboard's `/metrics`.
    pub async fn metrics(&self) -> String {
        let (status, body) = self.scrape().await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}: {body}");
        body
    }

    pub async fn stop(self) {
        self.stop.send(()).expect("server still running");
        self.server
            .await
            .expect("join")
            .expect("server ends cleanly");
        self.home.stop().await;
    }
}

/// A body of one chunk.
pub struct Once(pub Option<Bytes>);

impl http_body::Body for Once {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.take().map(|data| Ok(http_body::Frame::data(data))))
    }
}

/// Returns `message` in a gRPC frame: uncompressed, its length, the bytes.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&u32::try_from(message.len()).expect("short").to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// Waits until the health port reports `want` for the server as a whole.
pub async fn wait_for(client: &mut HealthClient<Channel>, want: ServingStatus) {
    let mut changes = client
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    let seen = tokio::time::timeout(PATIENCE, async {
        while let Some(change) = changes.next().await {
            if change.expect("change").status() == want {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(seen, Ok(true), "never {want:?}");
}
