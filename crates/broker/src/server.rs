//! Serving: the gRPC services on a bound listener plus the background jobs, until shutdown.

use std::future::Future;
use std::sync::Arc;

use tandem_proto::mentee_service_server::MenteeServiceServer;
use tandem_proto::operator_service_server::OperatorServiceServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::server::TcpIncoming;

use crate::grpc::{MenteeGrpc, OperatorGrpc};
use crate::{Broker, workers};

/// Largest request a caller may send; a mentee is a few hundred bytes.
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Serves `MenteeService` and `OperatorService` on `listener` and runs the background workers
/// (periodic sync, outbox delivery, expiry) until `shutdown` completes; then stops the workers
/// and returns once in-flight calls finished.
pub async fn serve(
    broker: Arc<Broker>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let (stop, stopped) = watch::channel(false);
    let mut jobs = workers::spawn(Arc::clone(&broker), stopped);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "broker listening");
    }
    let signal = stop.clone();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("broker shutting down");
        // The receivers may be gone already; nothing to stop then.
        let _ = signal.send(true);
    };
    let served = tonic::transport::Server::builder()
        .trace_fn(tandem_telemetry::grpc_request_span)
        .add_service(
            MenteeServiceServer::new(MenteeGrpc::new(Arc::clone(&broker)))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            OperatorServiceServer::new(OperatorGrpc::new(broker))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .serve_with_incoming_shutdown(
            // Without TCP_NODELAY, small gRPC replies wait for delayed ACKs (about 40 ms each).
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await;
    let _ = stop.send(true);
    while let Some(job) = jobs.join_next().await {
        if let Err(e) = job {
            tracing::error!(error = %e, "background job panicked");
        }
    }
    served
}
