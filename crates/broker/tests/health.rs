//! The broker's health service follows its database: SERVING while the database answers,
//! NOT_SERVING once it is gone, and it needs no API key.

use std::time::Duration;

use futures_util::StreamExt;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tandem_broker::{Broker, BrokerConfig, serve};
use tandem_storage::{BrokerMigrator, MigratorTrait};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
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

/// A broker served on a loopback port over a migrated database, and a health client of it.
struct Served {
    db: DatabaseConnection,
    health: HealthClient<Channel>,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Served {
    async fn on(url: &str) -> Served {
        let db = tandem_storage::connect(url).await.expect("connect");
        BrokerMigrator::up(&db, None).await.expect("migrate");
        let mut config = BrokerConfig::new(url);
        config.sync_interval_secs = 0;
        config.outbox_interval_secs = 0;
        let broker = Broker::new(db.clone(), config).await.expect("broker");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(broker, listener, async {
            let _ = stopped.await;
        }));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        let mut health = HealthClient::new(channel);
        wait_for(&mut health, "", ServingStatus::Serving).await;
        Served {
            db,
            health,
            stop,
            server,
        }
    }

    async fn status(&mut self, service: &str) -> ServingStatus {
        self.health
            .check(asking(service))
            .await
            .expect("check")
            .into_inner()
            .status()
    }

    async fn stop(self) {
        self.stop.send(()).expect("server still running");
        self.server
            .await
            .expect("join")
            .expect("server ends cleanly");
    }
}

#[tokio::test]
async fn the_broker_stops_serving_when_its_database_goes_away() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = tandem_storage::sqlite_url(&dir.path().join("broker.sqlite"));
    let mut served = Served::on(&url).await;
    for service in [
        "tandem.v1.MenteeService",
        "tandem.v1.OperatorService",
        "tandem.v1.EnrolmentService",
    ] {
        assert_eq!(
            served.status(service).await,
            ServingStatus::Serving,
            "{service}"
        );
    }

    served.db.close_by_ref().await.expect("close the database");
    wait_for(&mut served.health, "", ServingStatus::NotServing).await;
    assert_eq!(
        served.status("tandem.v1.MenteeService").await,
        ServingStatus::NotServing
    );
    served.stop().await;
}

#[tokio::test]
async fn the_broker_stops_serving_when_its_postgres_database_is_dropped() {
    let Ok(server) = std::env::var("TANDEM_TEST_POSTGRES_URL") else {
        eprintln!("TANDEM_TEST_POSTGRES_URL not set; skipping the PostgreSQL variant");
        return;
    };
    let url = tandem_storage::create_scratch_database(&server, "tandem_health")
        .await
        .expect("scratch database");
    let mut served = Served::on(&url).await;
    let name = url.rsplit('/').next().expect("database name");
    let admin = tandem_storage::connect(&server).await.expect("connect");
    admin
        .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .expect("drop the database under the broker");
    wait_for(&mut served.health, "", ServingStatus::NotServing).await;
    assert_eq!(
        served.status("tandem.v1.OperatorService").await,
        ServingStatus::NotServing
    );
    served.stop().await;
}
