//! Tracing and OpenTelemetry set-up shared by Tandem's binaries, and W3C trace-context
//! propagation across gRPC calls from the broker to nodes.
//!
//! Logs go to stderr through `tracing-subscriber` (filter from `RUST_LOG`, default `info`), as
//! text for people or as one JSON object per line for log collectors ([`LogFormat`]).
//! Spans are exported over OTLP only when the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) variable is set; the exporter itself reads the other
//! `OTEL_*` variables.
//!
//! In the workspace: used by `tandem-node`, `tandem-broker` and `tandem-cli`; depends on no
//! other Tandem crate.

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

/// Installs the global subscriber for `service` with text logs; see [`init_telemetry_as`].
pub fn init_telemetry(service: &str, default_filter: &str) -> anyhow::Result<TelemetryGuard> {
    init_telemetry_as(service, default_filter, LogFormat::Text)
}

/// Installs the global subscriber for `service`, writing logs in `format`. `default_filter`
/// applies when `RUST_LOG` is unset (e.g. `"warn"` for the demo, whose output is its own
/// summary). Call once per process.
pub fn init_telemetry_as(
    service: &str,
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
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(service.to_owned())
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer(service.to_owned());
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

/// A tonic client interceptor that propagates the trace context on every call.
pub fn propagate_trace_context(
    mut request: tonic::Request<()>,
) -> Result<tonic::Request<()>, tonic::Status> {
    inject_trace_context(request.metadata_mut());
    Ok(request)
}

struct HeaderExtractor<'a>(&'a tonic::codegen::http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Returns the span of one incoming gRPC request, a child of the caller's W3C trace context when
/// the request carries one. Pass it to tonic's `Server::trace_fn`; the handlers' own spans nest
/// inside it.
pub fn grpc_request_span(request: &tonic::codegen::http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!("grpc", path = %request.uri().path());
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
    // Without an OpenTelemetry layer there is nothing to attach to.
    let _ = span.set_parent(parent);
    span
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

            let http = tonic::codegen::http::Request::builder()
                .uri("/tandem.v1.NodeService/GetProfileChanges")
                .header("traceparent", header.to_str().unwrap_or_default())
                .body(())
                .expect("request");
            let served = grpc_request_span(&http);
            assert_eq!(
                served.context().span().span_context().trace_id(),
                caller_trace
            );
        });
    }
}
