//! Who is calling: every request carries an API key (`authorization: Bearer tdm_…`), the key
//! decides the scope and, for companies, the tenant. This is the one place the broker's gRPC
//! handlers learn who the caller is, and where per-caller rate limits apply.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::keys::Scope;
use crate::{Broker, BrokerError};

/// Request metadata carrying the API key.
pub const AUTHORIZATION: &str = "authorization";

/// Longest company id.
const MAX_COMPANY: usize = 128;

/// Checks a company id: 1 to 128 printable ASCII characters without spaces.
pub fn check_company_id(company: &str) -> Result<(), BrokerError> {
    let printable = company.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if company.is_empty() || company.len() > MAX_COMPANY || !printable {
        return Err(tandem_domain::ValidationError::new(
            "company",
            format!("must be 1 to {MAX_COMPANY} printable ascii characters without spaces"),
        )
        .into());
    }
    Ok(())
}

/// Returns the key of an `authorization` header value `Bearer <key>`; the gRPC metadata and
/// the dashboard's HTTP header both carry it so.
pub(crate) fn bearer_key(header: Option<&[u8]>) -> Result<&str, BrokerError> {
    let value = header.ok_or_else(|| {
        BrokerError::Unauthenticated("missing api key (authorization: Bearer …)".to_owned())
    })?;
    std::str::from_utf8(value)
        .ok()
        .and_then(tandem_domain::api_key::from_authorization)
        .ok_or_else(|| BrokerError::Unauthenticated("invalid api key".to_owned()))
}

/// Per-caller token buckets: each key may send `rate` requests per second on average, with
/// bursts up to `burst`. One caller running out does not slow any other.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// Returns a limiter; a `rate` of 0 disables limiting.
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token of `caller`'s bucket, or refuses.
    pub(crate) fn admit(&self, caller: &str) -> Result<(), BrokerError> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, last) = buckets
            .entry(caller.to_owned())
            .or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens < 1.0 {
            return Err(BrokerError::ResourceExhausted(
                "rate limit exceeded; retry later".to_owned(),
            ));
        }
        *tokens -= 1.0;
        Ok(())
    }
}

impl Broker {
    /// Returns the caller of an `authorization` header value when its key has `scope`, after
    /// taking one token of the caller's rate limit.
    pub(crate) async fn caller_with(
        &self,
        header: Option<&[u8]>,
        scope: Scope,
    ) -> Result<crate::keys::Caller, BrokerError> {
        let caller = self.authenticate(bearer_key(header)?).await?;
        if caller.scope != scope {
            return Err(BrokerError::PermissionDenied(format!(
                "this key may not call {} services",
                scope.name()
            )));
        }
        self.limiter.admit(&caller.key_id)?;
        Ok(caller)
    }

    async fn caller_in<T>(
        &self,
        request: &tonic::Request<T>,
        scope: Scope,
    ) -> Result<crate::keys::Caller, BrokerError> {
        let header = request.metadata().get(AUTHORIZATION).map(|v| v.as_bytes());
        self.caller_with(header, scope).await
    }

    /// Returns the company a `MenteeService` request acts for, from its API key.
    pub async fn company_of<T>(&self, request: &tonic::Request<T>) -> Result<String, BrokerError> {
        Ok(self.caller_in(request, Scope::Company).await?.tenant)
    }

    /// Checks that an `OperatorService` request carries an operator key.
    pub async fn require_operator<T>(
        &self,
        request: &tonic::Request<T>,
    ) -> Result<(), BrokerError> {
        self.caller_in(request, Scope::Operator).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_over_its_rate_is_refused_and_others_are_not() {
        let limiter = RateLimiter::new(1, 3);
        for _ in 0..3 {
            assert!(limiter.admit("k1").is_ok());
        }
        assert!(matches!(
            limiter.admit("k1"),
            Err(BrokerError::ResourceExhausted(_))
        ));
        assert!(limiter.admit("k2").is_ok());
    }

    #[test]
    fn company_ids_are_checked() {
        assert!(check_company_id("acme-gmbh").is_ok());
        for bad in ["", "a b", &"x".repeat(129)] {
            assert!(check_company_id(bad).is_err(), "{bad:?}");
        }
    }
}
