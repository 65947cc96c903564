//! The spans of gRPC calls after OpenTelemetry's RPC conventions, as an OpenTelemetry exporter
//! receives them: a server span per call the broker answers and a client span per call it makes
//! to a node, with their kinds, names, attributes and statuses.
//!
//! Alone in its test binary: tracing caches per call site whether anyone listens, and a call
//! site first reached by a concurrent test without a subscriber would stay silent here.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::trace::SpanData;
use tandem_proto::{ListNodesRequest, SyncNodesRequest};

use support::served::{PATIENCE, Served, frame};

/// The spans the OpenTelemetry SDK finished, as an exporter receives them.
#[derive(Debug, Clone, Default)]
struct Finished(Arc<Mutex<Vec<SpanData>>>);

impl opentelemetry_sdk::trace::SpanExporter for Finished {
    async fn export(&self, batch: Vec<SpanData>) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(batch);
        Ok(())
    }
}

impl Finished {
    /// Returns a finished span that `wanted` picks, if any.
    fn find(&self, wanted: impl Fn(&SpanData) -> bool) -> Option<SpanData> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|s| wanted(s))
            .cloned()
    }

    /// Waits until a span that `wanted` picks finished, and returns it.
    async fn wait(&self, what: &str, wanted: impl Fn(&SpanData) -> bool) -> SpanData {
        let found = tokio::time::timeout(PATIENCE, async {
            loop {
                if let Some(span) = self.find(&wanted) {
                    return span;
                }
                // The server ends its span once the response's last frame went out, just after
                // the client has it.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        found.unwrap_or_else(|_| {
            let names: Vec<_> = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .filter(|s| s.span_kind != SpanKind::Internal)
                .map(|s| format!("{:?} {}", s.span_kind, s.name))
                .collect();
            panic!("no {what} finished; finished: {names:?}")
        })
    }

    /// Waits until a span named `name` of `kind` finished, and returns it.
    async fn span(&self, name: &str, kind: SpanKind) -> SpanData {
        self.wait(&format!("{kind:?} span {name}"), |s| {
            s.name == name && s.span_kind == kind
        })
        .await
    }
}

/// The W3C trace context an operator's tool sends, its trace and its span.
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[tokio::test]
async fn calls_get_server_and_client_spans_after_the_rpc_conventions() {
    use opentelemetry::trace::{Status, TracerProvider as _};
    use tracing_subscriber::layer::SubscriberExt;

    let finished = Finished::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(finished.clone())
        .build();
    // At `info`, as the binaries run by default: the database driver keeps its trace-level
    // spans open between statements, which would keep their parents open too.
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    // The test's runtime has one thread: the servers' tasks run on it, under this subscriber.
    let _subscriber = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().expect("tempdir");
    let served = Served::sqlite(&dir).await;
    let mut operator = served.operator();
    // The operator's own tool traces its calls: the broker's span continues that trace.
    let mut listing = tonic::Request::new(ListNodesRequest::default());
    listing
        .metadata_mut()
        .insert("traceparent", TRACEPARENT.parse().expect("ascii"));
    operator.list_nodes(listing).await.expect("list nodes");
    let listed = finished
        .span("tandem.v1.OperatorService/ListNodes", SpanKind::Server)
        .await;
    assert_eq!(attribute(&listed, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(
        attribute(&listed, "rpc.service").as_deref(),
        Some("tandem.v1.OperatorService")
    );
    assert_eq!(
        attribute(&listed, "rpc.method").as_deref(),
        Some("ListNodes")
    );
    assert_eq!(
        attribute(&listed, "rpc.grpc.status_code").as_deref(),
        Some("0")
    );
    assert_eq!(listed.status, Status::Unset);
    assert_eq!(listed.span_context.trace_id().to_string(), TRACE_ID);
    assert_eq!(listed.parent_span_id.to_string(), CALLER_SPAN_ID);
    assert!(listed.parent_span_is_remote);

    // The broker's calls to the node: client spans in the operator's trace. (The server span
    // of SyncNodes itself may end later: SQLite's connection thread holds the span of its
    // last command until the next one.)
    let mut syncing = tonic::Request::new(SyncNodesRequest::default());
    syncing
        .metadata_mut()
        .insert("traceparent", TRACEPARENT.parse().expect("ascii"));
    operator.sync_nodes(syncing).await.expect("sync");
    let call = finished
        .span("tandem.v1.NodeService/GetProfileChanges", SpanKind::Client)
        .await;
    assert_eq!(attribute(&call, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(
        attribute(&call, "rpc.service").as_deref(),
        Some("tandem.v1.NodeService")
    );
    assert_eq!(
        attribute(&call, "rpc.method").as_deref(),
        Some("GetProfileChanges")
    );
    assert_eq!(
        attribute(&call, "rpc.grpc.status_code").as_deref(),
        Some("0")
    );
    assert_eq!(
        attribute(&call, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    let port = served.home.endpoint().rsplit(':').next().map(str::to_owned);
    assert_eq!(attribute(&call, "server.port"), port);
    assert_eq!(call.status, Status::Unset);
    assert_eq!(
        call.span_context.trace_id().to_string(),
        TRACE_ID,
        "the node call belongs to the operator's trace"
    );

    // A refused call: its code, and no error status (the caller's fault, not the server's).
    let refused = served
        .raw("/tandem.v1.OperatorService/RegisterNode", frame(&[0xff]))
        .await;
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let span = finished
        .span("tandem.v1.OperatorService/RegisterNode", SpanKind::Server)
        .await;
    assert_eq!(
        attribute(&span, "rpc.grpc.status_code").as_deref(),
        Some("3")
    );
    assert_eq!(span.status, Status::Unset);

    // A call to a node that is down: a client span with an error status.
    served.home.stop().await;
    operator
        .sync_nodes(SyncNodesRequest::default())
        .await
        .expect("a sync reports a node's failure, it does not fail");
    let failed = finished
        .wait("a client span of the failed call", |s| {
            s.span_kind == SpanKind::Client
                && attribute(s, "rpc.grpc.status_code").as_deref() == Some("14")
        })
        .await;
    assert!(
        matches!(failed.status, Status::Error { .. }),
        "{:?}",
        failed.status
    );
    served.home.restart().await;
    served.stop().await;
}
