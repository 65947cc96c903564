//! A node's health service on each of its ports: it answers for that port's service only,
//! needs no key, and is NOT_SERVING while the database has pending migrations.

mod common;

use std::time::Duration;

use futures_util::StreamExt;
use tandem_node::{Listeners, NodeState, serve_on};
use tandem_storage::{MigratorTrait, NodeMigrator};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Long enough for a few looks of the watcher (every five seconds).
const PATIENCE: Duration = Duration::from_secs(30);

fn asking(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
    }
}

async fn health_client(addr: std::net::SocketAddr) -> HealthClient<Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    HealthClient::new(channel)
}

async fn status(client: &mut HealthClient<Channel>, service: &str) -> ServingStatus {
    client
        .check(asking(service))
        .await
        .expect("check")
        .into_inner()
        .status()
}

/// Waits until the health of `service` becomes `want`, following the Watch stream.
async fn wait_for(client: &mut HealthClient<Channel>, service: &str, want: ServingStatus) {
    let mut changes = client
        .watch(asking(service))
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
    assert_eq!(seen, Ok(true), "{service:?} never became {want:?}");
}

#[tokio::test]
async fn a_node_serves_once_its_database_is_migrated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = tandem_storage::sqlite_url(&dir.path().join("node.sqlite"));
    let db = tandem_storage::connect(&url).await.expect("connect");
    let state = NodeState::new(db.clone(), &common::config(&url));
    let listeners = Listeners {
        node: tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind"),
        node_tls: None,
        admin: tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind"),
        admin_tls: None,
        health: None,
    };
    let node_addr = listeners.node.local_addr().expect("address");
    let admin_addr = listeners.admin.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_on(state, listeners, async {
        let _ = stopped.await;
    }));
    let mut admin = health_client(admin_addr).await;
    let mut node = health_client(node_addr).await;

    // Every migration is pending: the node answers, but does not serve.
    for service in ["", "tandem.v1.NodeAdminService"] {
        assert_eq!(status(&mut admin, service).await, ServingStatus::NotServing);
    }
    NodeMigrator::up(&db, None).await.expect("migrate");
    wait_for(&mut admin, "", ServingStatus::Serving).await;
    assert_eq!(
        status(&mut admin, "tandem.v1.NodeAdminService").await,
        ServingStatus::Serving
    );
    wait_for(&mut node, "tandem.v1.NodeService", ServingStatus::Serving).await;
    assert_eq!(status(&mut node, "").await, ServingStatus::Serving);

    // Each port answers for its own service only.
    let elsewhere = admin
        .check(asking("tandem.v1.NodeService"))
        .await
        .expect_err("not served on the admin port");
    assert_eq!(elsewhere.code(), tonic::Code::NotFound, "{elsewhere:?}");
    let elsewhere = node
        .check(asking("tandem.v1.NodeAdminService"))
        .await
        .expect_err("not served on the NodeService port");
    assert_eq!(elsewhere.code(), tonic::Code::NotFound, "{elsewhere:?}");

    db.close_by_ref().await.expect("close the database");
    wait_for(&mut admin, "", ServingStatus::NotServing).await;
    assert_eq!(
        status(&mut node, "tandem.v1.NodeService").await,
        ServingStatus::NotServing
    );

    stop.send(()).expect("server still running");
    server.await.expect("join").expect("server ends cleanly");
}
