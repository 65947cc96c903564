//! What an error becomes for a peer. Each crate's error enum names the cause; its
//! [`ServiceError::code`] picks one [`ErrorCode`], and this module alone says which gRPC status
//! and which HTTP status that code is. Bad input carries every wrong field
//! ([`ServiceError::violations`]), which the status lists as `google.rpc.BadRequest` details.
//! Internal details (database errors, corrupt rows) are logged here and never reach a peer.

use std::borrow::Cow;

use tandem_domain::Violations;
use tonic::codegen::http::StatusCode;
use tonic_types::{ErrorDetails, StatusExt};

/// The small, deliberate set of answers a caller can get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request is wrong; the message and the details name every wrong field.
    InvalidArgument,
    /// The object does not exist, or belongs to someone else.
    NotFound,
    /// The request conflicts with an object that exists.
    AlreadyExists,
    /// The object is not in a state that allows the request.
    FailedPrecondition,
    /// The caller did not say who it is, or said it wrongly.
    Unauthenticated,
    /// The caller is known but may not do this.
    PermissionDenied,
    /// The caller sent more than its limit allows.
    ResourceExhausted,
    /// Something the service depends on cannot be reached now; retrying later may work.
    Unavailable,
    /// A bug, a broken database or corrupt data: nothing the caller can fix.
    Internal,
}

impl ErrorCode {
    /// Returns the gRPC status code.
    pub fn grpc(self) -> tonic::Code {
        match self {
            Self::InvalidArgument => tonic::Code::InvalidArgument,
            Self::NotFound => tonic::Code::NotFound,
            Self::AlreadyExists => tonic::Code::AlreadyExists,
            Self::FailedPrecondition => tonic::Code::FailedPrecondition,
            Self::Unauthenticated => tonic::Code::Unauthenticated,
            Self::PermissionDenied => tonic::Code::PermissionDenied,
            Self::ResourceExhausted => tonic::Code::ResourceExhausted,
            Self::Unavailable => tonic::Code::Unavailable,
            Self::Internal => tonic::Code::Internal,
        }
    }

    /// Returns the HTTP status, as Google's HTTP mapping of `google.rpc.Code` gives it.
    pub fn http(self) -> StatusCode {
        match self {
            Self::InvalidArgument | Self::FailedPrecondition => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::AlreadyExists => StatusCode::CONFLICT,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::PermissionDenied => StatusCode::FORBIDDEN,
            Self::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error a service can answer a peer with.
pub trait ServiceError: std::error::Error {
    /// Returns the code of this error's cause.
    fn code(&self) -> ErrorCode;

    /// Returns what the peer may read: the error's text, except for internal errors, which
    /// say only "internal error".
    fn public_message(&self) -> Cow<'_, str> {
        match self.code() {
            ErrorCode::Internal => Cow::Borrowed("internal error"),
            _ => Cow::Owned(self.to_string()),
        }
    }

    /// Returns the wrong fields of bad input, one violation per field; `None` for errors of
    /// other causes.
    fn violations(&self) -> Option<&Violations> {
        None
    }
}

/// Returns the gRPC status a peer gets for `err`, logging what the peer does not see. Bad
/// input gets a `google.rpc.BadRequest` with one field violation per wrong field in the
/// status's details, besides the message that lists them too.
pub fn status(err: &(impl ServiceError + ?Sized)) -> tonic::Status {
    let code = err.code();
    match code {
        ErrorCode::Internal => tracing::error!(error = %err, "internal error"),
        ErrorCode::Unavailable => tracing::warn!(error = %err, "dependency unavailable"),
        _ => {}
    }
    match err.violations() {
        Some(violations) if code == ErrorCode::InvalidArgument && !violations.is_empty() => {
            tonic::Status::with_error_details(
                code.grpc(),
                err.public_message(),
                bad_request(violations),
            )
        }
        _ => tonic::Status::new(code.grpc(), err.public_message()),
    }
}

/// Returns the `google.rpc.BadRequest` details of `violations`, in their order.
fn bad_request(violations: &Violations) -> ErrorDetails {
    ErrorDetails::with_bad_request(
        violations
            .iter()
            .map(|v| tonic_types::FieldViolation::new(&v.field, &v.description))
            .collect::<Vec<_>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("table secrets is locked")]
    struct Broken;

    impl ServiceError for Broken {
        fn code(&self) -> ErrorCode {
            ErrorCode::Internal
        }
    }

    #[test]
    fn internal_details_stay_in_the_log() {
        let status = status(&Broken);
        assert_eq!(status.code(), tonic::Code::Internal);
        assert_eq!(status.message(), "internal error");
    }

    #[derive(Debug, thiserror::Error)]
    #[error(transparent)]
    struct Invalid(Violations);

    impl ServiceError for Invalid {
        fn code(&self) -> ErrorCode {
            ErrorCode::InvalidArgument
        }

        fn violations(&self) -> Option<&Violations> {
            Some(&self.0)
        }
    }

    #[test]
    fn bad_input_lists_every_field_in_the_message_and_the_details() {
        let mut found = Violations::new();
        found.add("mentee.region", "unknown region \"XX-YY\"");
        found.add("mentee.goals", "at least one goal is required");
        let status = status(&Invalid(found));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "mentee.region: unknown region \"XX-YY\"; mentee.goals: at least one goal is required"
        );
        let details = status.get_error_details();
        let bad_request = details.bad_request().expect("bad request details");
        let fields: Vec<(&str, &str)> = bad_request
            .field_violations
            .iter()
            .map(|v| (v.field.as_str(), v.description.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("mentee.region", "unknown region \"XX-YY\""),
                ("mentee.goals", "at least one goal is required"),
            ]
        );
    }

    #[test]
    fn other_errors_carry_no_details() {
        let status = status(&Broken);
        assert!(status.details().is_empty());
        assert!(status.get_error_details().bad_request().is_none());
    }

    #[test]
    fn each_code_has_its_grpc_and_http_status() {
        assert_eq!(ErrorCode::NotFound.grpc(), tonic::Code::NotFound);
        assert_eq!(ErrorCode::NotFound.http(), StatusCode::NOT_FOUND);
        assert_eq!(ErrorCode::Unauthenticated.http(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            ErrorCode::ResourceExhausted.http(),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            ErrorCode::FailedPrecondition.http(),
            StatusCode::BAD_REQUEST
        );
    }
}
