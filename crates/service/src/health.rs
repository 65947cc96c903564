//! Health for probes and load balancers: the standard `grpc.health.v1.Health` service of each
//! gRPC server ([`ServerHealth`]), answering for the server as a whole (`""`) and for each
//! service it serves, and the one watcher that keeps it true ([`watch`]).
//!
//! A server is SERVING while its database answers and has no pending migration, NOT_SERVING
//! otherwise and once it shuts down. The watcher looks at once, then every [`CHECK_INTERVAL`],
//! and stops with the server's shutdown token. The health service sits outside the API-key
//! gate: probes carry no key.
//!
//! The API ports speak TLS (a node's NodeService port even mutual TLS), which the kubelet's
//! native gRPC probe cannot. A server may therefore also answer health on a plain-text port
//! of its own ([`serve_port`], `health_listen`): the same reporter, and nothing but the health
//! service, so the port tells a prober no more than SERVING or NOT_SERVING.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{DatabaseConnection, DbErr};
use tandem_storage::MigratorTrait;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

pub use tonic_health::ServingStatus;
/// The name of the health service, as reflection lists it.
pub use tonic_health::pb::health_server::SERVICE_NAME;

/// How often the watcher looks at the database; a look that takes longer counts as a failure.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Why a server is not serving.
#[derive(Debug, thiserror::Error)]
pub enum Unhealthy {
    #[error("database unreachable: {0}")]
    Unreachable(#[source] DbErr),
    #[error("database did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("cannot read the migration status: {0}")]
    MigrationStatus(#[source] DbErr),
    #[error("the database has {0} pending migration(s)")]
    PendingMigrations(usize),
}

/// The health one gRPC server reports: the server as a whole and each of its services.
#[derive(Debug, Clone)]
pub struct ServerHealth {
    reporter: HealthReporter,
    services: Arc<[&'static str]>,
}

impl ServerHealth {
    /// Returns the health of a server that serves `services` (full names, such as
    /// `tandem.v1.MenteeService`) and the health service that answers from it. Everything is
    /// NOT_SERVING until the first look at the database.
    pub async fn new(services: &[&'static str]) -> (Self, HealthServer<HealthService>) {
        let reporter = HealthReporter::new();
        let server = HealthServer::new(HealthService::from_health_reporter(reporter.clone()));
        let health = Self {
            reporter,
            services: services.into(),
        };
        health.set(ServingStatus::NotServing).await;
        (health, server)
    }

    /// Returns another health service that answers from the same reporter, e.g. for the
    /// server's plain-text health port.
    pub fn service(&self) -> HealthServer<HealthService> {
        HealthServer::new(HealthService::from_health_reporter(self.reporter.clone()))
    }

    /// Sets the status of the server and of every service it serves.
    pub async fn set(&self, status: ServingStatus) {
        self.reporter.set_service_status("", status).await;
        for service in self.services.iter() {
            self.reporter.set_service_status(service, status).await;
        }
    }
}

/// Serves only the health service of `health`, in plain text, on `listener` until `shutdown`
/// completes: the port for probes that cannot speak TLS. `layer` is the server's RPC layer
/// (spans and metrics of the probes' calls).
pub async fn serve_port(
    health: &ServerHealth,
    listener: tokio::net::TcpListener,
    layer: crate::rpc::RpcLayer,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "health port listening (plain text, grpc.health.v1 only)");
    }
    tonic::transport::Server::builder()
        .layer(layer)
        .add_service(health.service())
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}

/// Looks at the database once: it must answer within `timeout` and have no migration of `M`
/// pending. Reads only: it never creates the migrations table.
pub async fn check<M: MigratorTrait>(
    db: &DatabaseConnection,
    timeout: Duration,
) -> Result<(), Unhealthy> {
    let look = async {
        db.ping().await.map_err(Unhealthy::Unreachable)?;
        let pending = M::get_pending_migrations_read_only(db)
            .await
            .map_err(Unhealthy::MigrationStatus)?
            .len();
        match pending {
            0 => Ok(()),
            n => Err(Unhealthy::PendingMigrations(n)),
        }
    };
    tokio::time::timeout(timeout, look)
        .await
        .map_err(|_| Unhealthy::TimedOut(timeout))?
}

/// Looks at `db` at once and then every `every` ([`check`]), and sets every server in
/// `servers` SERVING or NOT_SERVING accordingly, logging each change. When `stop` is
/// cancelled, sets them NOT_SERVING and returns.
pub async fn watch<M: MigratorTrait>(
    db: DatabaseConnection,
    servers: Vec<ServerHealth>,
    every: Duration,
    stop: CancellationToken,
) {
    let set = |status| {
        let servers = &servers;
        async move {
            for server in servers {
                server.set(status).await;
            }
        }
    };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = None;
    loop {
        let checked = tokio::select! {
            () = stop.cancelled() => break,
            checked = async {
                ticks.tick().await;
                check::<M>(&db, every).await
            } => checked,
        };
        let status = match &checked {
            Ok(()) => ServingStatus::Serving,
            Err(_) => ServingStatus::NotServing,
        };
        if last != Some(status) {
            match &checked {
                Ok(()) => tracing::info!(status = "serving", "health changed"),
                Err(reason) => tracing::warn!(status = "not serving", %reason, "health changed"),
            }
            set(status).await;
            last = Some(status);
        }
    }
    set(ServingStatus::NotServing).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_storage::NodeMigrator;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus as Wire;
    use tonic_health::pb::health_server::Health;

    const SERVICE: &str = "tandem.v1.NodeAdminService";

    async fn ask(service: &HealthService, name: &str) -> Result<Wire, tonic::Status> {
        let answer = service
            .check(tonic::Request::new(HealthCheckRequest {
                service: name.to_owned(),
            }))
            .await?;
        Ok(answer.into_inner().status())
    }

    async fn database(dir: &tempfile::TempDir) -> DatabaseConnection {
        let url = tandem_storage::sqlite_url(&dir.path().join("node.db"));
        tandem_storage::connect(&url).await.expect("connect")
    }

    #[tokio::test]
    async fn a_migrated_database_answers_and_a_fresh_one_has_pending_migrations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = database(&dir).await;
        let fresh = check::<NodeMigrator>(&db, CHECK_INTERVAL).await;
        assert!(
            matches!(fresh, Err(Unhealthy::PendingMigrations(n)) if n > 0),
            "{fresh:?}"
        );
        NodeMigrator::up(&db, None).await.expect("migrate");
        check::<NodeMigrator>(&db, CHECK_INTERVAL)
            .await
            .expect("healthy");
        db.close_by_ref().await.expect("close");
        let closed = check::<NodeMigrator>(&db, CHECK_INTERVAL).await;
        assert!(
            matches!(closed, Err(Unhealthy::Unreachable(_))),
            "{closed:?}"
        );
    }

    #[tokio::test]
    async fn the_watcher_follows_the_database_and_stops_with_the_server() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = database(&dir).await;
        NodeMigrator::up(&db, None).await.expect("migrate");
        let (health, _server) = ServerHealth::new(&[SERVICE]).await;
        let service = HealthService::from_health_reporter(health.reporter.clone());
        assert_eq!(ask(&service, "").await.expect("overall"), Wire::NotServing);

        let stop = CancellationToken::new();
        let watcher = tokio::spawn(watch::<NodeMigrator>(
            db.clone(),
            vec![health.clone()],
            Duration::from_millis(20),
            stop.clone(),
        ));
        let mut changes = health_changes(&service, SERVICE).await;
        wait_for(&mut changes, Wire::Serving).await;
        assert_eq!(ask(&service, "").await.expect("overall"), Wire::Serving);
        assert!(ask(&service, "tandem.v1.Other").await.is_err());

        db.close_by_ref().await.expect("close");
        wait_for(&mut changes, Wire::NotServing).await;
        assert_eq!(ask(&service, "").await.expect("overall"), Wire::NotServing);

        stop.cancel();
        watcher.await.expect("watcher ends");
    }

    type Changes = <HealthService as Health>::WatchStream;

    async fn health_changes(service: &HealthService, name: &str) -> Changes {
        service
            .watch(tonic::Request::new(HealthCheckRequest {
                service: name.to_owned(),
            }))
            .await
            .expect("watch")
            .into_inner()
    }

    async fn wait_for(changes: &mut Changes, want: Wire) {
        use futures_util::StreamExt;
        let seen = tokio::time::timeout(Duration::from_secs(10), async {
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
}
