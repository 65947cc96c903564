//! Who is calling: every request carries an API key (`authorization: Bearer tdm_…`), the key
//! decides the scope and, for companies, the tenant. This is the one place the broker's gRPC
//! handlers learn who the caller is, and where per-caller rate limits apply.

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
        self.limiter
            .admit(&caller.key_id)
            .map_err(|e| BrokerError::ResourceExhausted(e.to_string()))?;
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
    fn company_ids_are_checked() {
        assert!(check_company_id("acme-gmbh").is_ok());
        for bad in ["", "a b", &"x".repeat(129)] {
            assert!(check_company_id(bad).is_err(), "{bad:?}");
        }
    }
}
