//! The dashboard's HTTP server: the page (a static shell whose script fetches the figures),
//! the figures as JSON, the Prometheus metrics and a health check, over HTTPS when the broker
//! has `[api_tls]`.
//!
//! `/api/*` and `/metrics` need an operator key (`Authorization: Bearer tdm_…`); the page and
//! its assets carry no data and need none. Every answer carries a strict Content-Security-Policy,
//! so the page can load nothing but its own script and style from the broker.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use tandem_tls::{Alpn, ApiTls, TlsConn, TlsIncoming};
use tokio::net::TcpListener;
use tonic::transport::server::Connected;

use tandem_service::rpc::RpcMetrics;
use tandem_service::shutdown::{CancellationToken, run_until};
use tandem_service::{ErrorCode, Scope, ServiceError};

use super::metrics;
use crate::Broker;

const INDEX_HTML: &str = include_str!("assets/index.html");
const DASHBOARD_CSS: &str = include_str!("assets/dashboard.css");
const DASHBOARD_JS: &str = include_str!("assets/dashboard.js");

/// The page may load its own script, style and data, nothing else, and run no inline code.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Returns the dashboard's routes over `broker`.
pub fn router(broker: Arc<Broker>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/dashboard.css",
            get(|| async { asset("text/css; charset=utf-8", DASHBOARD_CSS) }),
        )
        .route(
            "/dashboard.js",
            get(|| async { asset("text/javascript; charset=utf-8", DASHBOARD_JS) }),
        )
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/healthz", get(healthz))
        .route("/api/dashboard", get(api_dashboard))
        .route("/metrics", get(prometheus))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such page") })
        .layer(axum::middleware::map_response(secure))
        .with_state(broker)
}

/// Serves the dashboard on `listener`, over `tls` when given (HTTP/1.1 inside TLS), until
/// `shutdown` completes, then lets open requests finish. `/metrics` adds the gRPC server's
/// call metrics `rpc` to the figures.
pub async fn serve(
    broker: Arc<Broker>,
    listener: TcpListener,
    tls: Option<Arc<ApiTls>>,
    rpc: RpcMetrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let routes = router(broker).layer(axum::Extension(rpc));
    tracing::info!(%addr, tls = tls.is_some(), "dashboard listening");
    match tls {
        Some(tls) => {
            // The accept loop and the server stop together, on one token.
            let stop = CancellationToken::new();
            let listener = TlsListener {
                incoming: tls.incoming(listener, Alpn::Http1, stop.clone().cancelled_owned()),
                addr,
            };
            let serving = axum::serve(listener, routes)
                .with_graceful_shutdown(stop.clone().cancelled_owned())
                .into_future();
            run_until(shutdown, &stop, serving).await
        }
        None => {
            axum::serve(listener, routes)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

/// The dashboard's connections after their TLS handshake, as axum takes them.
struct TlsListener {
    incoming: TlsIncoming,
    addr: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsConn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TlsConn, SocketAddr) {
        loop {
            match self.incoming.next().await {
                Some(Ok(conn)) => {
                    let peer = conn.connect_info().remote_addr().unwrap_or(self.addr);
                    return (conn, peer);
                }
                // Failed handshakes are logged and dropped before they get here.
                Some(Err(_)) => continue,
                // The accept loop stopped at shutdown; the server stops on the same signal.
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// Adds the security headers to every answer.
async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// A JSON error answer `{"error": "…"}`.
fn error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"tandem dashboard\""),
        );
    }
    response
}

/// An error as an HTTP answer: the status of its code (the same mapping the gRPC answers
/// use), and what a peer may read of it; internals are logged, not shown.
fn failure(err: &impl ServiceError) -> Response {
    let code = err.code();
    if code == ErrorCode::Internal {
        tracing::error!(error = %err, "dashboard request failed");
    }
    let mut message = err.public_message().into_owned();
    if code == ErrorCode::PermissionDenied {
        message.push_str(": the dashboard needs an operator key");
    }
    error(code.http(), &message)
}

/// Checks that the request carries an operator key.
async fn operator(broker: &Broker, headers: &HeaderMap) -> Result<(), Response> {
    let header = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    broker
        .gate()
        .admit(header, Scope::Operator)
        .await
        .map(|_| ())
        .map_err(|refused| failure(&refused))
}

async fn api_dashboard(State(broker): State<Arc<Broker>>, headers: HeaderMap) -> Response {
    if let Err(refused) = operator(&broker, &headers).await {
        return refused;
    }
    let figures = match broker.dashboard(broker.now()).await {
        Ok(figures) => figures,
        Err(err) => return failure(&err),
    };
    match serde_json::to_string(&figures) {
        Ok(body) => (
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "cannot encode dashboard figures");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

async fn prometheus(
    State(broker): State<Arc<Broker>>,
    rpc: Option<axum::Extension<RpcMetrics>>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = operator(&broker, &headers).await {
        return refused;
    }
    match broker.dashboard(broker.now()).await {
        Ok(figures) => (
            [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
            metrics::render_with(&figures, rpc.as_ref().map(|r| &r.0)),
        )
            .into_response(),
        Err(err) => failure(&err),
    }
}

async fn healthz(State(broker): State<Arc<Broker>>) -> Response {
    match broker.db().ping().await {
        Ok(()) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            Body::from("ok\n"),
        )
            .into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "health check: database unreachable");
            error(StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}
