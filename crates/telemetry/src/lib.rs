//! Tracing and OpenTelemetry set-up shared by Tandem's binaries, the spans of gRPC calls after
//! OpenTelemetry's RPC conventions ([`rpc`]), and W3C trace-context propagation across gRPC calls
//! from the broker to nodes.
//!
//! Logs go to stderr through `tracing-subscriber` (filter from `RUST_LOG`, default `info`), as
//! text for people or as one JSON object per line for log collectors ([`LogFormat`]).
//! Spans are exported over OTLP only when the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) variable is set; the exporter itself reads the other
//! `OTEL_*` variables. The resource names the service (`service.name`), the process
//! (`service.instance.id`, see [`Identity`]) and, for a node, its id (`tandem.node.id`).
//!
//! In the workspace: used by `tandem-node`, `tandem-broker` and `tandem-cli`; depends on no
//! other Tandem crate.

pub mod rpc;

use opentelemetry::KeyValue;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Flushes and shuts down the span exporter when dropped.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("telemetry shutdown failed: {err}");
        }
    }
}

fn otlp_requested() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields` with `message`, `span`,
    /// `spans`), for log collectors.
    Json,
}

/// Who is sending telemetry: the OpenTelemetry resource of the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `service.name`, e.g. `tandem-broker`.
    pub service: String,
    /// `service.instance.id`: one per process; see [`Identity::new`].
    pub instance: String,
    /// `tandem.node.id`: the node's id, for a node.
    pub node: Option<String>,
}

/// The resource attribute that names a node.
pub const NODE_ID: &str = "tandem.node.id";

impl Identity {
    /// Returns the identity of `service` whose instance is `instance` when given (e.g. from
    /// `TANDEM_INSTANCE_ID`), else the host name (`HOSTNAME`: a Kubernetes pod's name, a
    /// container's id), else a random UUID.
    pub fn new(service: &str, instance: Option<&str>) -> Self {
        let given = |s: Option<&str>| {
            s.map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let instance = given(instance)
            .or_else(|| given(std::env::var("HOSTNAME").ok().as_deref()))
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        Self {
            service: service.to_owned(),
            instance,
            node: None,
        }
    }

    /// Names the node this process runs.
    pub fn with_node(mut self, node: &str) -> Self {
        self.node = Some(node.to_owned());
        self
    }

    /// Returns the OpenTelemetry resource: the SDK's and `OTEL_RESOURCE_ATTRIBUTES`'s
    /// attributes, `service.name`, `service.instance.id` unless `OTEL_RESOURCE_ATTRIBUTES` sets
    /// it, and the node's id.
    pub fn resource(&self) -> opentelemetry_sdk::Resource {
        let detected = opentelemetry_sdk::Resource::builder().build();
        let instance_key = opentelemetry::Key::from_static_str("service.instance.id");
        let mut builder =
            opentelemetry_sdk::Resource::builder().with_service_name(self.service.clone());
        if detected.get(&instance_key).is_none() {
            builder = builder.with_attribute(KeyValue::new(instance_key, self.instance.clone()));
        }
        if let Some(node) = &self.node {
            builder = builder.with_attribute(KeyValue::new(NODE_ID, node.clone()));
        }
        builder.build()
    }
}

/// Installs the global subscriber for `service` with text logs; see [`init_telemetry_as`].
pub fn init_telemetry(service: &str, default_filter: &str) -> anyhow::Result<TelemetryGuard> {
    init_telemetry_as(service, default_filter, LogFormat::Text)
}

/// Installs the global subscriber for `service` (of a random or host-named instance), writing
/// logs in `format`; see [`init_telemetry_for`].
pub fn init_telemetry_as(
    service: &str,
    default_filter: &str,
    format: LogFormat,
) -> anyhow::Result<TelemetryGuard> {
    init_telemetry_for(&Identity::new(service, None), default_filter, format)
}

/// Installs the global subscriber for `identity`, writing logs in `format`. `default_filter`
/// applies when `RUST_LOG` is unset (e.g. `"warn"` for the demo, whose output is its own
/// summary). Call once per process.
pub fn init_telemetry_for(
    identity: &Identity,
    default_filter: &str,
    format: LogFormat,
) -> anyhow::Result<TelemetryGuard> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let text = (format == LogFormat::Text).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
    });
    let json = (format == LogFormat::Json).then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_target(false)
    });
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let mut guard = TelemetryGuard::default();
    let otel = if otlp_requested() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(identity.resource())
            .build();
        let tracer = provider.tracer(identity.service.clone());
        opentelemetry::global::set_tracer_provider(provider.clone());
        guard.provider = Some(provider);
        Some(tracing_opentelemetry::layer().with_tracer(tracer))
    } else {
        None
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .with(otel)
        .try_init()?;
    Ok(guard)
}

/// Writes propagated fields into HTTP headers.
pub(crate) struct HeaderInjector<'a>(pub(crate) &'a mut tonic::codegen::http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::codegen::http::HeaderName::from_bytes(key.as_bytes()),
            tonic::codegen::http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(key, value);
        }
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Writes the current span's W3C trace context (`traceparent`) into outgoing request metadata.
pub fn inject_trace_context(metadata: &mut tonic::metadata::MetadataMap) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut MetadataInjector(metadata));
}

/// A tonic client interceptor that propagates the trace context on every call, for clients
/// without [`rpc::RpcClient`] (which does this itself, from its client span).
pub fn propagate_trace_context(
    mut request: tonic::Request<()>,
) -> Result<tonic::Request<()>, tonic::Status> {
    inject_trace_context(request.metadata_mut());
    Ok(request)
}

/// Reads propagated fields from HTTP headers.
pub(crate) struct HeaderExtractor<'a>(pub(crate) &'a tonic::codegen::http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The type of [`propagate_trace_context`], for naming intercepted clients.
pub type TraceInterceptor = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TraceContextExt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn the_trace_context_crosses_a_grpc_call() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let caller = tracing::info_span!("broker.sync");
            let _entered = caller.enter();
            let mut request = tonic::Request::new(());
            inject_trace_context(request.metadata_mut());
            let header = request
                .metadata()
                .get("traceparent")
                .expect("traceparent sent");
            let caller_trace = caller.context().span().span_context().trace_id();
            assert!(
                header
                    .to_str()
                    .unwrap_or_default()
                    .contains(&caller_trace.to_string())
            );

            let mut headers = tonic::codegen::http::HeaderMap::new();
            headers.insert(
                "traceparent",
                header.to_str().expect("ascii").parse().expect("value"),
            );
            let served = rpc::server_span(
                "tandem.v1.NodeService/GetProfileChanges",
                "tandem.v1.NodeService",
                "GetProfileChanges",
                &headers,
            );
            assert_eq!(
                served.context().span().span_context().trace_id(),
                caller_trace
            );
        });
    }

    #[test]
    fn the_resource_names_the_service_the_instance_and_the_node() {
        let identity = Identity::new("tandem-node", Some("pod-7")).with_node("ind-assoc");
        let resource = identity.resource();
        let get = |key: &'static str| {
            resource
                .get(&opentelemetry::Key::from_static_str(key))
                .map(|v| v.to_string())
        };
        assert_eq!(get("service.name").as_deref(), Some("tandem-node"));
        assert_eq!(get(NODE_ID).as_deref(), Some("ind-assoc"));
        if std::env::var_os("OTEL_RESOURCE_ATTRIBUTES").is_none() {
            assert_eq!(get("service.instance.id").as_deref(), Some("pod-7"));
        }
        let anonymous = Identity::new("tandem-broker", Some(" "));
        assert!(!anonymous.instance.trim().is_empty());
    }
}
