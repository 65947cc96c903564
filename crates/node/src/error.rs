//! The node's one error type. Each variant names what went wrong; [`ServiceError::code`] says
//! which answer a peer gets for it, and `tandem-service` turns that into the gRPC status.

use tandem_domain::{FieldViolation, Violations};
use tandem_service::auth::AuthError;
use tandem_service::keys::KeyError;
use tandem_service::{ErrorCode, ServiceError};

/// Everything a node operation can fail with, by cause.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Bad input: every wrong field of the request, each named.
    #[error(transparent)]
    Invalid(#[from] Violations),
    /// The caller presented no valid staff key, or is over its rate. The message never says
    /// which check failed.
    #[error(transparent)]
    Refused(#[from] AuthError),
    /// The mentor, introduction, tandem or key does not exist (or no longer does).
    #[error("{0}")]
    NotFound(String),
    /// The request is well-formed but the object is in the wrong state for it.
    #[error("{0}")]
    WrongState(String),
    /// The request would make a second object where one with the same key exists (e.g. a
    /// mentor with a member number already in use and a different record).
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sea_orm::DbErr),
    /// A stored record cannot be read back (e.g. a list column that is not the JSON we wrote).
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl NodeError {
    /// Returns an `Invalid` error for `field`.
    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Self::Invalid(Violations::one(field, reason))
    }
}

impl From<FieldViolation> for NodeError {
    fn from(violation: FieldViolation) -> Self {
        Self::Invalid(violation.into())
    }
}

impl ServiceError for NodeError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) => ErrorCode::InvalidArgument,
            Self::Refused(refused) => refused.code(),
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::WrongState(_) => ErrorCode::FailedPrecondition,
            Self::Conflict(_) => ErrorCode::AlreadyExists,
            Self::Db(e) => tandem_service::error::database_code(e),
            Self::Corrupt(_) => ErrorCode::Internal,
        }
    }

    fn public_message(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Self::Refused(refused) => refused.public_message(),
            Self::Db(e) => tandem_service::error::database_message(e),
            Self::Corrupt(_) => std::borrow::Cow::Borrowed("internal error"),
            other => std::borrow::Cow::Owned(other.to_string()),
        }
    }

    fn violations(&self) -> Option<&Violations> {
        match self {
            Self::Invalid(violations) => Some(violations),
            _ => None,
        }
    }
}

impl From<KeyError> for NodeError {
    fn from(err: KeyError) -> Self {
        match err {
            KeyError::Invalid(e) => Self::Invalid(e),
            KeyError::NotFound => Self::NotFound("key not found".to_owned()),
            KeyError::Db(e) => Self::Db(e),
        }
    }
}

impl From<NodeError> for tonic::Status {
    fn from(err: NodeError) -> Self {
        tandem_service::status(&err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn maps_each_variant_to_its_code() {
        let status = tonic::Status::from(NodeError::invalid("mentor.capacity", "must be 1 to 10"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "mentor.capacity: must be 1 to 10");
        let status = tonic::Status::from(NodeError::NotFound("mentor not found".into()));
        assert_eq!(status.code(), Code::NotFound);
        let status = tonic::Status::from(NodeError::WrongState("closed".into()));
        assert_eq!(status.code(), Code::FailedPrecondition);
    }

    #[test]
    fn bad_input_lists_each_field_in_the_details() {
        use tonic_types::StatusExt;

        let mut found = Violations::new();
        found.add("mentor.region", "unknown region \"XX-YY\"");
        found.add("mentor.capacity", "must be 1 to 10, got 0");
        let status = tonic::Status::from(NodeError::Invalid(found));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "mentor.region: unknown region \"XX-YY\"; mentor.capacity: must be 1 to 10, got 0"
        );
        let details = status.get_error_details();
        let fields: Vec<&str> = details
            .bad_request()
            .expect("bad request details")
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["mentor.region", "mentor.capacity"]);
    }

    #[test]
    fn a_database_out_of_reach_is_unavailable() {
        let status = tonic::Status::from(NodeError::Db(sea_orm::DbErr::ConnectionAcquire(
            sea_orm::ConnAcquireErr::ConnectionClosed,
        )));
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.message(),
            tandem_service::error::DATABASE_UNAVAILABLE
        );
    }

    #[test]
    fn database_errors_do_not_leak() {
        let status = tonic::Status::from(NodeError::Db(sea_orm::DbErr::Custom(
            "table mentors at /var/lib/secret.db is locked".into(),
        )));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret"), "{}", status.message());
    }
}
