//! Who is calling. For now a company names itself in request metadata; API keys will replace
//! this, and this module is the one place that has to change.

use crate::BrokerError;

/// Request metadata naming the calling company.
pub const COMPANY_HEADER: &str = "x-tandem-company";

/// Longest company id.
const MAX_COMPANY: usize = 128;

/// Returns the company a request is made on behalf of: 1 to 128 printable ASCII characters in
/// the `x-tandem-company` metadata. Missing or malformed → `Unauthenticated`.
pub fn company<T>(request: &tonic::Request<T>) -> Result<String, BrokerError> {
    let malformed = || {
        BrokerError::Unauthenticated(format!(
            "{COMPANY_HEADER} must be 1 to {MAX_COMPANY} printable ascii characters"
        ))
    };
    let value = request.metadata().get(COMPANY_HEADER).ok_or_else(|| {
        BrokerError::Unauthenticated(format!("missing {COMPANY_HEADER} metadata"))
    })?;
    let company = value.to_str().map_err(|_| malformed())?.trim();
    let printable = company.bytes().all(|b| (0x20..=0x7e).contains(&b));
    if company.is_empty() || company.len() > MAX_COMPANY || !printable {
        return Err(malformed());
    }
    Ok(company.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> tonic::Request<()> {
        let mut request = tonic::Request::new(());
        if let Ok(v) = value.parse() {
            request.metadata_mut().insert(COMPANY_HEADER, v);
        }
        request
    }

    #[test]
    fn takes_the_company_from_metadata() {
        assert_eq!(
            company(&with("acme-gmbh")).ok().as_deref(),
            Some("acme-gmbh")
        );
    }

    #[test]
    fn refuses_missing_or_bad_company() {
        for bad in ["", "   ", &"x".repeat(129)] {
            let err = company(&with(bad)).expect_err(bad);
            assert!(matches!(err, BrokerError::Unauthenticated(_)));
        }
        assert!(company(&tonic::Request::new(())).is_err());
    }
}
