//! One tower layer in front of every gRPC server of the broker and the nodes ([`RpcLayer`]):
//!
//! - a server span per call after OpenTelemetry's RPC conventions (`tandem_telemetry::rpc`),
//!   a child of the caller's trace context;
//! - per-call metrics ([`RpcMetrics`]), by service, method and code;
//! - the answers to request bodies tonic cannot decode made actionable ([`codec`]): an
//!   undecodable body gets INVALID_ARGUMENT naming the message, an oversized one
//!   RESOURCE_EXHAUSTED naming the limit, where tonic says INTERNAL and OUT_OF_RANGE.
//!
//! The layer sits outside the routes, so it sees every call a server answers, health and
//! reflection included, and the code the caller finally gets: from the response headers of a
//! trailers-only answer (every refusal, every error before a message), else from the trailers.
//! Per call it looks the path up in the server's [`Methods`] table (names are shared, not
//! formatted), makes one span and one boxed future; recording takes no allocation once a
//! series exists.

pub mod codec;
pub mod methods;
pub mod metrics;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::Body;
use tandem_telemetry::rpc::{Finish, Side, Watched, record_status, server_span, status_of};
use tonic::Code;
use tonic::codegen::http::{self, HeaderMap};
use tracing::Instrument;

pub use methods::{Method, Methods};
pub use metrics::RpcMetrics;

/// Builds the [`Rpc`] service in front of a server's routes: `Server::builder().layer(…)`.
#[derive(Debug, Clone)]
pub struct RpcLayer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    methods: Methods,
    /// Where calls are counted; none counts nothing.
    metrics: Option<RpcMetrics>,
}

impl RpcLayer {
    /// Returns the layer of a server that knows `methods` and counts its calls in `metrics`
    /// when given.
    pub fn new(methods: Methods, metrics: Option<RpcMetrics>) -> Self {
        Self {
            shared: Arc::new(Shared { methods, metrics }),
        }
    }
}

impl<S> tower::Layer<S> for RpcLayer {
    type Service = Rpc<S>;

    fn layer(&self, inner: S) -> Rpc<S> {
        Rpc {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// A server's routes behind [`RpcLayer`].
#[derive(Debug, Clone)]
pub struct Rpc<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// Completes the span and the metrics of one call.
#[derive(Debug)]
pub struct ServerFinish {
    span: tracing::Span,
    method: Arc<Method>,
    started: Instant,
    shared: Arc<Shared>,
}

impl Finish for ServerFinish {
    fn finish(self, code: Code) {
        record_status(&self.span, Side::Server, code);
        if let Some(metrics) = &self.shared.metrics {
            metrics.observe(&self.method, code, self.started.elapsed().as_secs_f64());
        }
    }
}

impl<S, B, R> tonic::codegen::Service<http::Request<B>> for Rpc<S>
where
    S: tonic::codegen::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Body + Unpin + Send + 'static,
{
    type Response = http::Response<Watched<R, ServerFinish>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let started = Instant::now();
        let method = Arc::clone(self.shared.methods.get(request.uri().path()));
        let span = server_span(
            &method.name,
            &method.service,
            &method.method,
            request.headers(),
        );
        let call = span
            .in_scope(|| self.inner.call(request))
            .instrument(span.clone());
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let response = call.await?;
            let (mut parts, body) = response.into_parts();
            let status = answer(&mut parts.headers, &method);
            let finish = ServerFinish {
                span,
                method,
                started,
                shared,
            };
            Ok(http::Response::from_parts(
                parts,
                Watched::new(body, status, finish),
            ))
        })
    }
}

/// Returns the code in the response headers, after turning tonic's answer to an undecodable
/// request into the caller's ([`codec::refusal`]).
fn answer(headers: &mut HeaderMap, method: &Method) -> Option<Code> {
    let code = status_of(headers)?;
    if !matches!(code, Code::Internal | Code::OutOfRange) {
        return Some(code);
    }
    let Some(refusal) =
        tonic::Status::from_header_map(headers).and_then(|s| codec::refusal(&s, &method.input))
    else {
        return Some(code);
    };
    tracing::debug!(code = ?refusal.code(), reason = refusal.message(), "request body refused");
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        headers.remove(name);
    }
    match refusal.add_header(headers) {
        Ok(()) => Some(refusal.code()),
        Err(_) => {
            // The message always encodes; should it not, the caller still learns the code.
            headers.insert(
                "grpc-status",
                http::HeaderValue::from(refusal.code() as i32),
            );
            Some(refusal.code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tonic_refusals_are_rewritten_in_the_headers() {
        let methods = Methods::new(&[]).expect("decode");
        let check = methods.get("/grpc.health.v1.Health/Check");
        let mut headers = HeaderMap::new();
        tonic::Status::internal("failed to decode Protobuf message: invalid varint")
            .add_header(&mut headers)
            .expect("headers");
        assert_eq!(answer(&mut headers, check), Some(Code::InvalidArgument));
        let status = tonic::Status::from_header_map(&headers).expect("status");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "request body is not a valid grpc.health.v1.HealthCheckRequest: invalid varint"
        );

        let mut headers = HeaderMap::new();
        tonic::Status::internal("internal error")
            .add_header(&mut headers)
            .expect("headers");
        assert_eq!(answer(&mut headers, check), Some(Code::Internal));
        assert_eq!(
            tonic::Status::from_header_map(&headers)
                .expect("status")
                .message(),
            "internal error"
        );
        assert_eq!(answer(&mut HeaderMap::new(), check), None);
    }
}
