//! Serving: the gRPC services on a bound listener, the operators' dashboard on its own
//! listener when there is one, both over TLS when configured, plus the background jobs, until
//! shutdown. The gRPC port also serves health and reflection, without a key; a plain-text
//! health port for probes is served when configured. One RPC layer (`tandem_service::rpc`)
//! gives every call a server span and counts it in the metrics the dashboard's `/metrics`
//! serves.

use std::future::Future;
use std::sync::Arc;

use tandem_proto::enrolment_service_server::EnrolmentServiceServer;
use tandem_proto::mentee_service_server::MenteeServiceServer;
use tandem_proto::operator_service_server::OperatorServiceServer;
use tandem_service::Scope;
use tandem_service::auth::guard;
use tandem_service::health::{self, ServerHealth};
use tandem_service::reflection::reflection;
use tandem_service::rpc::{Methods, RpcLayer, RpcMetrics};
use tandem_service::shutdown::{CancellationToken, run_until};
use tandem_tls::{Alpn, ApiTls};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::grpc::{EnrolmentGrpc, MenteeGrpc, OperatorGrpc};
use crate::{Broker, BrokerConfig, dashboard, workers};

/// Largest request a caller may send; a mentee is a few hundred bytes.
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// The services of the gRPC port, as health and reflection name them.
const SERVICES: [&str; 3] = [
    tandem_proto::mentee_service_server::SERVICE_NAME,
    tandem_proto::operator_service_server::SERVICE_NAME,
    tandem_proto::enrolment_service_server::SERVICE_NAME,
];

/// The bound sockets the broker serves on, and their TLS.
#[derive(Debug)]
pub struct Listeners {
    /// `MenteeService`, `EnrolmentService` and `OperatorService` (gRPC).
    pub grpc: TcpListener,
    /// The operators' dashboard (HTTP); none serves no dashboard.
    pub dashboard: Option<TcpListener>,
    /// The plain-text health port (`grpc.health.v1.Health` only); none serves none.
    pub health: Option<TcpListener>,
    /// The TLS both listeners serve (a server certificate; callers present API keys, not
    /// certificates). None serves plain text: development and tests only.
    pub tls: Option<Arc<ApiTls>>,
}

impl Listeners {
    /// Loads `api_tls` when configured, then binds `listen` and, when configured,
    /// `dashboard_listen` and `health_listen`; the error names the file or the address.
    pub async fn bind(config: &BrokerConfig) -> std::io::Result<Self> {
        let tls = match &config.api_tls {
            Some(files) => Some(
                ApiTls::new(files.clone())
                    .map_err(|e| std::io::Error::other(format!("api_tls: {e}")))?,
            ),
            None => None,
        };
        let bind = |addr: String| async move {
            TcpListener::bind(&addr)
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
        };
        let grpc = bind(config.listen.clone()).await?;
        let dashboard = match &config.dashboard_listen {
            Some(addr) => Some(bind(addr.clone()).await?),
            None => None,
        };
        let health = match &config.health_listen {
            Some(addr) => Some(bind(addr.clone()).await?),
            None => None,
        };
        Ok(Self {
            grpc,
            dashboard,
            health,
            tls,
        })
    }
}

impl From<TcpListener> for Listeners {
    /// Serves gRPC only, in plain text.
    fn from(grpc: TcpListener) -> Self {
        Self {
            grpc,
            dashboard: None,
            health: None,
            tls: None,
        }
    }
}

/// Serves `MenteeService`, `EnrolmentService` and `OperatorService`, and the dashboard when
/// `listeners` has one, and runs the background workers (periodic sync, outbox delivery,
/// expiry) until `shutdown` completes; then stops the workers and the dashboard and returns
/// once in-flight calls finished.
///
/// The gRPC port also serves `grpc.health.v1.Health` (SERVING while the database answers and
/// has no pending migration, see `tandem_service::health`) and server reflection, both
/// without an API key; the health port, when `listeners` has one, serves the same health in
/// plain text and nothing else.
pub async fn serve(
    broker: Arc<Broker>,
    listeners: impl Into<Listeners>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let Listeners {
        grpc: listener,
        dashboard,
        health: health_port,
        tls,
    } = listeners.into();
    let stop = CancellationToken::new();
    let mut jobs = workers::spawn(Arc::clone(&broker), stop.clone());
    let methods = Methods::new(&[tandem_proto::FILE_DESCRIPTOR_SET])
        .expect("the descriptor sets built into the binary decode");
    let metrics = RpcMetrics::default();
    let layer = RpcLayer::new(methods, Some(metrics.clone()));
    if let Some(listener) = dashboard {
        let broker = Arc::clone(&broker);
        let tls = tls.clone();
        let stopped = stop.clone().cancelled_owned();
        jobs.spawn(async move {
            if let Err(err) = dashboard::serve(broker, listener, tls, metrics, stopped).await {
                tracing::error!(%err, "dashboard server failed");
            }
        });
    }
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, tls = tls.is_some(), "broker listening");
    }
    let (health, health_service) = ServerHealth::new(&SERVICES).await;
    if let Some(port) = health_port {
        let health = health.clone();
        let layer = layer.clone();
        let stopped = stop.clone().cancelled_owned();
        jobs.spawn(async move {
            if let Err(err) = health::serve_port(&health, port, layer, stopped).await {
                tracing::error!(%err, "health port failed");
            }
        });
    }
    jobs.spawn(health::watch::<tandem_storage::BrokerMigrator>(
        broker.db().clone(),
        vec![health],
        health::CHECK_INTERVAL,
        stop.clone(),
    ));
    let (reflection_v1, reflection_v1alpha) =
        reflection(&[tandem_proto::FILE_DESCRIPTOR_SET], &SERVICES)
            .expect("the descriptor sets built into the binary decode");
    let gate = broker.gate();
    let router = tonic::transport::Server::builder()
        .layer(layer)
        // No gate: probes and tools carry no key.
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(guard(
            gate,
            Scope::Company,
            MenteeServiceServer::new(MenteeGrpc::new(Arc::clone(&broker)))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        ))
        .add_service(guard(
            gate,
            Scope::Operator,
            OperatorServiceServer::new(OperatorGrpc::new(Arc::clone(&broker)))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        ))
        // No gate: enrolment is how a company gets its key. The broker limits it per peer.
        .add_service(
            EnrolmentServiceServer::new(EnrolmentGrpc::new(Arc::clone(&broker)))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        );
    let stopped = stop.clone().cancelled_owned();
    let serving = async {
        match tls {
            Some(tls) => {
                let incoming = tls.incoming(listener, Alpn::Grpc, stop.clone().cancelled_owned());
                router.serve_with_incoming_shutdown(incoming, stopped).await
            }
            None => {
                router
                    .serve_with_incoming_shutdown(
                        // Without TCP_NODELAY, small gRPC replies wait for delayed ACKs (about
                        // 40 ms each).
                        TcpIncoming::from(listener).with_nodelay(Some(true)),
                        stopped,
                    )
                    .await
            }
        }
    };
    let signal = async {
        shutdown.await;
        tracing::info!("broker shutting down");
    };
    let served = run_until(signal, &stop, serving).await;
    stop.cancel();
    while let Some(job) = jobs.join_next().await {
        if let Err(e) = job {
            tracing::error!(error = %e, "background job panicked");
        }
    }
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_api_certificate_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = BrokerConfig::new("sqlite://b.db");
        config.listen = "127.0.0.1:0".into();
        config.api_tls = Some(tandem_tls::CertFiles {
            cert: dir.path().join("broker-api.pem"),
            key: dir.path().join("broker-api-key.pem"),
        });
        let err = Listeners::bind(&config).await.expect_err("no certificate");
        let message = err.to_string();
        assert!(message.starts_with("api_tls: "), "{message}");
        assert!(message.contains("broker-api.pem"), "{message}");
    }
}
