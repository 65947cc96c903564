//! Who is calling. Every request to a caller-facing API carries an API key
//! (`authorization: Bearer tdm_…`); the key decides the scope and the tenant. A [`Gate`] checks
//! the key against its database's `api_keys`, the scope against what the API needs, and the
//! caller's rate limit, and yields a [`Caller`]. In front of a gRPC service, [`Guarded`] does
//! this for every request and puts the caller into the request's extensions, where the handler
//! reads it with [`caller`]; an HTTP handler calls [`Gate::admit`] itself.
//!
//! Unknown, malformed, revoked, foreign and wrong keys all get the same answer, so a caller
//! learns nothing about which keys exist. The one exception needs the key's secret: a key
//! revoked with a reason its holder must hear ("membership ended") gets PERMISSION_DENIED with
//! that reason.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use sea_orm::{DatabaseConnection, DbErr};
use tonic::codegen::http;
use tonic::server::NamedService;

use crate::api_key as key_format;
use crate::error::{ErrorCode, ServiceError};
use crate::keys;
use crate::rate_limit::RateLimiter;

/// Request metadata (and HTTP header) carrying the API key.
pub const AUTHORIZATION: &str = "authorization";

/// What a key allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A member company at the broker: its own mentees, proposals and tandems.
    Company,
    /// The network operator at the broker: nodes, rounds, statistics, the audit log.
    Operator,
    /// The association's staff at one node: its mentors, introductions and tandems.
    NodeAdmin,
}

impl Scope {
    /// Returns the scope's name as stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            Self::Company => "company",
            Self::Operator => "operator",
            Self::NodeAdmin => "node-admin",
        }
    }

    /// Parses a scope name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Company, Self::Operator, Self::NodeAdmin]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// An authenticated caller. Only a [`Gate`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    key_id: String,
    scope: Scope,
    tenant: String,
}

impl Caller {
    /// Returns the id of the key the caller presented (as lists and audit logs show it).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Returns the key's scope.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// Returns what the key is bound to: the company of a `company` key, the node of a
    /// `node-admin` key; empty for operators.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }
}

/// Why a caller was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The request carried no key.
    #[error("missing api key (authorization: Bearer …)")]
    Missing,
    /// The key is not one this service issued and still honours.
    #[error("invalid api key")]
    Invalid,
    /// The key was revoked for a reason its holder is told, e.g. "membership ended".
    #[error("{0}")]
    Ended(String),
    /// The key is valid but its scope does not allow this API.
    #[error("this key may not call {} services", .0.name())]
    WrongScope(Scope),
    /// The caller sent more requests than its rate allows.
    #[error("rate limit exceeded; retry later")]
    RateLimited,
    /// The key table could not be read.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

impl ServiceError for AuthError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Missing | Self::Invalid => ErrorCode::Unauthenticated,
            Self::WrongScope(_) | Self::Ended(_) => ErrorCode::PermissionDenied,
            Self::RateLimited => ErrorCode::ResourceExhausted,
            Self::Db(e) => crate::error::database_code(e),
        }
    }

    fn public_message(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Self::Db(e) => crate::error::database_message(e),
            other => std::borrow::Cow::Owned(other.to_string()),
        }
    }
}

/// Checks the API keys of one database and the rate limits of their callers.
#[derive(Debug)]
pub struct Gate {
    db: DatabaseConnection,
    /// The scopes this database issues; a stored key of another scope is not honoured.
    issues: &'static [Scope],
    /// The tenant every key must be bound to (a node honours only keys bound to itself).
    bound_to: Option<String>,
    limiter: RateLimiter,
}

impl Gate {
    /// Returns the gate of `db`, which issues keys of the scopes `issues`, with the given
    /// per-caller rate limit (see [`RateLimiter::new`]).
    pub fn new(db: DatabaseConnection, issues: &'static [Scope], limiter: RateLimiter) -> Self {
        Self {
            db,
            issues,
            bound_to: None,
            limiter,
        }
    }

    /// Honours only keys bound to `tenant`.
    pub fn bound_to(mut self, tenant: &str) -> Self {
        self.bound_to = Some(tenant.to_owned());
        self
    }

    /// Checks a presented key (`tdm_<id>_<secret>`) and returns its caller.
    pub async fn authenticate(&self, presented: &str) -> Result<Caller, AuthError> {
        let (id, secret) = key_format::split(presented).ok_or(AuthError::Invalid)?;
        let key = keys::by_id(&self.db, id).await?.ok_or(AuthError::Invalid)?;
        if !key_format::verify(&key.secret_hash, secret) {
            return Err(AuthError::Invalid);
        }
        if key.revoked_at_ms != 0 {
            // Only the holder of the secret gets here; a reason given at revocation is theirs.
            return Err(match key.revoked_reason.as_str() {
                "" => AuthError::Invalid,
                reason => AuthError::Ended(reason.to_owned()),
            });
        }
        let scope = Scope::parse(&key.scope)
            .filter(|s| self.issues.contains(s))
            .ok_or(AuthError::Invalid)?;
        if self.bound_to.as_ref().is_some_and(|t| *t != key.tenant) {
            return Err(AuthError::Invalid);
        }
        Ok(Caller {
            key_id: key.id,
            scope,
            tenant: key.tenant,
        })
    }

    /// Returns the caller of an `authorization` value (`Bearer <key>`) when its key has
    /// `scope`, after taking one request of the caller's rate limit.
    pub async fn admit(
        &self,
        authorization: Option<&[u8]>,
        scope: Scope,
    ) -> Result<Caller, AuthError> {
        let value = authorization.ok_or(AuthError::Missing)?;
        let presented = std::str::from_utf8(value)
            .ok()
            .and_then(key_format::from_authorization)
            .ok_or(AuthError::Invalid)?;
        let caller = self.authenticate(presented).await?;
        if caller.scope != scope {
            return Err(AuthError::WrongScope(scope));
        }
        self.limiter
            .admit(&caller.key_id)
            .map_err(|_| AuthError::RateLimited)?;
        Ok(caller)
    }
}

/// Returns `service` behind `gate`: every request must carry a key of `scope`.
pub fn guard<S>(gate: &Arc<Gate>, scope: Scope, service: S) -> Guarded<S> {
    Guarded {
        gate: Arc::clone(gate),
        scope,
        inner: service,
    }
}

/// A gRPC service that answers only callers with a key of one scope; see [`guard`].
#[derive(Debug, Clone)]
pub struct Guarded<S> {
    gate: Arc<Gate>,
    scope: Scope,
    inner: S,
}

impl<S: NamedService> NamedService for Guarded<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tonic::codegen::Service<http::Request<B>> for Guarded<S>
where
    S: tonic::codegen::Service<
            http::Request<B>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone that was made ready serves this request; the new one waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gate = Arc::clone(&self.gate);
        let scope = self.scope;
        Box::pin(async move {
            let header = request
                .headers()
                .get(AUTHORIZATION)
                .map(|v| v.as_bytes().to_vec());
            match gate.admit(header.as_deref(), scope).await {
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                    inner.call(request).await
                }
                Err(refused) => Ok(crate::status(&refused).into_http()),
            }
        })
    }
}

/// Returns the caller that the [`Guarded`] service in front of this handler admitted.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Caller, tonic::Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| {
            tracing::error!(
                "a request reached a handler without a caller: the service is not guarded"
            );
            tonic::Status::internal("internal error")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_their_names() {
        for scope in [Scope::Company, Scope::Operator, Scope::NodeAdmin] {
            assert_eq!(Scope::parse(scope.name()), Some(scope));
        }
        assert_eq!(Scope::parse("admin"), None);
    }

    #[test]
    fn refusals_map_to_the_codes_callers_expect() {
        assert_eq!(AuthError::Missing.code(), ErrorCode::Unauthenticated);
        assert_eq!(AuthError::Invalid.code(), ErrorCode::Unauthenticated);
        assert_eq!(
            AuthError::WrongScope(Scope::Operator).to_string(),
            "this key may not call operator services"
        );
        assert_eq!(
            AuthError::WrongScope(Scope::Operator).code(),
            ErrorCode::PermissionDenied
        );
        assert_eq!(AuthError::RateLimited.code(), ErrorCode::ResourceExhausted);
    }
}
