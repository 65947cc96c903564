//! One trace across the federation: the broker's client span of a call to a node and the node's
//! server span of the same call, over real mutual TLS, are parent and child after W3C trace
//! context, with the kinds and attributes of OpenTelemetry's RPC conventions.
//!
//! Alone in its test binary: tracing caches per call site whether anyone listens, and a call
//! site first reached by a concurrent test without a subscriber would stay silent here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry_sdk::trace::SpanData;
use tandem_proto::SyncNodesRequest;
use tracing_subscriber::layer::SubscriberExt;

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
    /// Waits until a span named `name` of `kind` finished, and returns it.
    async fn span(&self, name: &str, kind: SpanKind) -> SpanData {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let found = self
                    .0
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .iter()
                    .find(|s| s.name == name && s.span_kind == kind)
                    .cloned();
                if let Some(span) = found {
                    return span;
                }
                // A server ends its span once the response's last frame went out, just after
                // the client has it.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {kind:?} span {name} finished"))
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[tokio::test]
async fn a_node_call_is_one_trace_from_the_broker_to_the_node() -> anyhow::Result<()> {
    let finished = Finished::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(finished.clone())
        .build();
    // At `info`, as the binaries run by default.
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    // The test's runtime has one thread: broker and node run on it, under this subscriber.
    let _subscriber = tracing::subscriber::set_default(subscriber);

    let mut f = tandem_e2e::start(&["ind-assoc"]).await?;
    f.operator.sync_nodes(SyncNodesRequest::default()).await?;

    let name = "tandem.v1.NodeService/GetProfileChanges";
    let client = finished.span(name, SpanKind::Client).await;
    let server = finished.span(name, SpanKind::Server).await;
    assert_eq!(
        server.span_context.trace_id(),
        client.span_context.trace_id()
    );
    assert_eq!(server.parent_span_id, client.span_context.span_id());
    assert!(server.parent_span_is_remote);
    for span in [&client, &server] {
        assert_eq!(attribute(span, "rpc.system").as_deref(), Some("grpc"));
        assert_eq!(
            attribute(span, "rpc.service").as_deref(),
            Some("tandem.v1.NodeService")
        );
        assert_eq!(
            attribute(span, "rpc.method").as_deref(),
            Some("GetProfileChanges")
        );
        assert_eq!(
            attribute(span, "rpc.grpc.status_code").as_deref(),
            Some("0")
        );
    }
    let node = &f.federation.nodes[0];
    assert_eq!(
        attribute(&client, "server.port"),
        Some(node.addr.port().to_string())
    );
    f.federation.shutdown().await;
    Ok(())
}
