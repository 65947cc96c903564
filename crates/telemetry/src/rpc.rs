//! Spans of gRPC calls after OpenTelemetry's RPC semantic conventions: a server span
//! ([`server_span`], kind `server`) around every call a server answers and a client span
//! ([`RpcClient`], kind `client`) around every call the broker makes to a node, each named
//! `<package.Service>/<Method>` and carrying `rpc.system = "grpc"`, `rpc.service`,
//! `rpc.method` and, once the call ended, `rpc.grpc.status_code`; client spans also name the
//! peer (`server.address`, `server.port`).
//!
//! `tracing-opentelemetry` turns the `otel.kind` field into the span kind and `otel.status_code`
//! into the span status. A server marks its span as failed only for the codes that mean the
//! server failed (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS); a
//! client marks it for every code but OK, as the conventions say.
//!
//! A call's code is known only at its end: in the response headers of a trailers-only answer
//! (every error before a message), else in the trailers after the last message. [`Watched`]
//! wraps a response body and reports the code once, when it passes by or when the body is
//! dropped unfinished (CANCELLED: the peer went away).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::Code;
use tonic::codegen::http::{self, HeaderMap};
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{HeaderExtractor, HeaderInjector};

/// An error of a service, as tonic passes them on.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Returns the canonical name of a gRPC code (`OK`, `INVALID_ARGUMENT`, …), as metrics label it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Returns the code in the `grpc-status` of `headers` (response headers or trailers), if any.
pub fn status_of(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?;
    Some(Code::from_bytes(value.as_bytes()))
}

/// Which end of a call a span stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Server,
    Client,
}

impl Side {
    /// Returns whether a call that ended with `code` failed, as this side's span reports it.
    pub fn failed(self, code: Code) -> bool {
        match self {
            Self::Client => code != Code::Ok,
            Self::Server => matches!(
                code,
                Code::Unknown
                    | Code::DeadlineExceeded
                    | Code::Unimplemented
                    | Code::Internal
                    | Code::Unavailable
                    | Code::DataLoss
            ),
        }
    }
}

/// Returns the span of one call a server answers, named `name` (`tandem.v1.MenteeService/
/// SubmitMentee`), a child of the caller's W3C trace context when `headers` carry one. The
/// handlers' own spans nest inside it; [`record_status`] completes it.
pub fn server_span(name: &str, service: &str, method: &str, headers: &HeaderMap) -> tracing::Span {
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = name,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
        otel.status_code = Empty,
    );
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    if parent.span().span_context().is_valid() {
        // Without an OpenTelemetry layer there is nothing to attach to.
        let _ = span.set_parent(parent);
    }
    span
}

/// Records how the call of `span` ended: `rpc.grpc.status_code`, and the span status when the
/// code means a failure on `side`.
pub fn record_status(span: &tracing::Span, side: Side, code: Code) {
    span.record("rpc.grpc.status_code", i64::from(code as i32));
    if side.failed(code) {
        span.record("otel.status_code", "error");
    }
}

/// Splits a request path `/package.Service/Method` into the service and the method; a path of
/// another shape is all service.
pub fn split_path(path: &str) -> (&str, &str) {
    let path = path.strip_prefix('/').unwrap_or(path);
    path.rsplit_once('/').unwrap_or((path, ""))
}

/// What happens when a watched call ends.
pub trait Finish: Send + Unpin + 'static {
    /// Takes the call's final code.
    fn finish(self, code: Code);
}

/// A response body that reports the call's code to `F` exactly once: at once when the
/// response headers carry it (a trailers-only answer), else when the trailers pass by, or
/// CANCELLED when the body is dropped before its end.
#[derive(Debug)]
pub struct Watched<B, F: Finish> {
    inner: B,
    finish: Option<F>,
}

impl<B, F: Finish> Watched<B, F> {
    /// Watches `inner`, the body of a response whose headers carry `status` (or none yet).
    pub fn new(inner: B, status: Option<Code>, finish: F) -> Self {
        match status {
            Some(code) => {
                finish.finish(code);
                Self {
                    inner,
                    finish: None,
                }
            }
            None => Self {
                inner,
                finish: Some(finish),
            },
        }
    }

    fn end(&mut self, code: Code) {
        if let Some(finish) = self.finish.take() {
            finish.finish(code);
        }
    }
}

impl<B, F: Finish> Drop for Watched<B, F> {
    fn drop(&mut self) {
        self.end(Code::Cancelled);
    }
}

impl<B, F> Body for Watched<B, F>
where
    B: Body + Unpin,
    F: Finish,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.end(status_of(trailers).unwrap_or(Code::Unknown));
                }
            }
            // A body that breaks or ends without trailers never said how the call ended.
            Poll::Ready(Some(Err(_)) | None) => this.end(Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The node a client calls, as its spans name it.
#[derive(Debug)]
struct Peer {
    address: String,
    port: Option<u16>,
}

/// A gRPC channel whose every call gets a client span (see the module documentation) and
/// carries that span's W3C trace context (`traceparent`) to the server.
#[derive(Debug, Clone)]
pub struct RpcClient<S> {
    inner: S,
    peer: Arc<Peer>,
}

/// A traced channel, as the broker calls nodes over it.
pub type TracedChannel = RpcClient<tonic::transport::Channel>;

impl<S> RpcClient<S> {
    /// Traces the calls over `inner`, a channel to `endpoint` (`https://host:port`).
    pub fn new(inner: S, endpoint: &str) -> Self {
        let uri = endpoint.parse::<http::Uri>().ok();
        let address = uri
            .as_ref()
            .and_then(|u| u.host())
            .unwrap_or(endpoint)
            .to_owned();
        let port = uri.as_ref().and_then(|u| {
            u.port_u16().or(match u.scheme_str() {
                Some("https") => Some(443),
                Some("http") => Some(80),
                _ => None,
            })
        });
        Self {
            inner,
            peer: Arc::new(Peer { address, port }),
        }
    }
}

/// Completes a client span.
#[derive(Debug)]
pub struct ClientFinish(tracing::Span);

impl Finish for ClientFinish {
    fn finish(self, code: Code) {
        record_status(&self.0, Side::Client, code);
    }
}

impl<S, B, R> tonic::codegen::Service<http::Request<B>> for RpcClient<S>
where
    S: tonic::codegen::Service<http::Request<B>, Response = http::Response<R>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    R: Body + Unpin + Send + 'static,
{
    type Response = http::Response<Watched<R, ClientFinish>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let (service, method) = split_path(path);
        let span = tracing::info_span!(
            "grpc.client",
            otel.name = path.strip_prefix('/').unwrap_or(path),
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            server.address = self.peer.address.as_str(),
            server.port = Empty,
            rpc.grpc.status_code = Empty,
            otel.status_code = Empty,
        );
        if let Some(port) = self.peer.port {
            span.record("server.port", i64::from(port));
        }
        TraceContextPropagator::new()
            .inject_context(&span.context(), &mut HeaderInjector(request.headers_mut()));
        // With no span current: a channel hands each request to its worker task with the span
        // current at `call`, and the worker opens connections inside it, whose spans (h2's, at
        // debug level) then live as long as the connection and keep that span and every parent
        // (the caller's server span) from ever closing. The call is polled inside the client
        // span all the same.
        let call = tracing::dispatcher::with_default(&tracing::Dispatch::none(), || {
            self.inner.call(request)
        });
        Box::pin(async move {
            match call.instrument(span.clone()).await {
                Ok(response) => {
                    let status = status_of(response.headers());
                    Ok(response.map(|body| Watched::new(body, status, ClientFinish(span))))
                }
                Err(err) => {
                    // The status the generated client would make of it (it keeps a status as is).
                    let status = tonic::Status::from_error(err.into());
                    record_status(&span, Side::Client, status.code());
                    Err(Box::new(status) as BoxError)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            split_path("/tandem.v1.NodeService/GetProfileChanges"),
            ("tandem.v1.NodeService", "GetProfileChanges")
        );
        assert_eq!(split_path("/odd"), ("odd", ""));
    }

    #[test]
    fn servers_fail_only_for_their_own_faults() {
        assert!(!Side::Server.failed(Code::InvalidArgument));
        assert!(!Side::Server.failed(Code::NotFound));
        assert!(Side::Server.failed(Code::Internal));
        assert!(Side::Server.failed(Code::Unavailable));
        assert!(Side::Client.failed(Code::NotFound));
        assert!(!Side::Client.failed(Code::Ok));
    }

    #[test]
    fn codes_have_their_canonical_names() {
        assert_eq!(code_name(Code::Ok), "OK");
        assert_eq!(code_name(Code::ResourceExhausted), "RESOURCE_EXHAUSTED");
        let mut headers = HeaderMap::new();
        assert_eq!(status_of(&headers), None);
        headers.insert("grpc-status", http::HeaderValue::from_static("3"));
        assert_eq!(status_of(&headers), Some(Code::InvalidArgument));
    }
}
