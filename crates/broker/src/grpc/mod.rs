//! The gRPC adapters: thin handlers that read the caller, call the [`Broker`] and map its
//! errors to statuses. Each service but `EnrolmentService` is served behind the broker's gate
//! ([`tandem_service::Guarded`]), which admits only keys of the service's scope and puts the
//! [`Caller`] into the request; the handlers read the tenant from there, never from the
//! request's fields. `EnrolmentService` is how a company without a key gets one: its callers
//! present an enrolment code instead.
//!
//! [`Broker`]: crate::Broker

mod enrolment;
mod mentee;
mod operator;

pub use enrolment::EnrolmentGrpc;
pub use mentee::MenteeGrpc;
pub use operator::OperatorGrpc;
pub use tandem_service::AUTHORIZATION;
use tandem_service::{Caller, Scope};

/// Returns the caller that the gate admitted for a service of `scope`.
fn caller_of<T>(request: &tonic::Request<T>, scope: Scope) -> Result<Caller, tonic::Status> {
    let caller = tandem_service::caller(request)?;
    if caller.scope() != scope {
        // The gate checks the scope; a mismatch means a service was served behind the wrong
        // gate, which must not open it.
        tracing::error!(
            scope = scope.name(),
            "a request reached a service of another scope"
        );
        return Err(tonic::Status::internal("internal error"));
    }
    Ok(caller)
}

/// Returns the company a `MenteeService` request acts for, from its API key.
fn company<T>(request: &tonic::Request<T>) -> Result<String, tonic::Status> {
    let company = caller_of(request, Scope::Company)?.tenant().to_owned();
    tracing::Span::current().record("company", company.as_str());
    Ok(company)
}

/// Checks that an `OperatorService` request carries an operator key.
fn operator<T>(request: &tonic::Request<T>) -> Result<(), tonic::Status> {
    caller_of(request, Scope::Operator).map(|_| ())
}
