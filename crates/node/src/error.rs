//! The node's one error type and its one mapping onto gRPC status codes.

use tandem_domain::ValidationError;

/// Everything a node operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Bad input; names the field.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The mentor or introduction does not exist (or no longer does).
    #[error("{0}")]
    NotFound(String),
    /// The request is well-formed but the object is in the wrong state for it.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller presented no valid staff key. The message never says which check failed.
    #[error("{0}")]
    Unauthenticated(String),
    /// The staff key sent more requests than its rate allows.
    #[error("{0}")]
    ResourceExhausted(String),
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
        Self::Invalid(ValidationError::new(field, reason))
    }
}

impl From<NodeError> for tonic::Status {
    fn from(err: NodeError) -> Self {
        match err {
            NodeError::Invalid(e) => tonic::Status::invalid_argument(e.to_string()),
            NodeError::NotFound(message) => tonic::Status::not_found(message),
            NodeError::FailedPrecondition(message) => tonic::Status::failed_precondition(message),
            NodeError::ResourceExhausted(message) => tonic::Status::resource_exhausted(message),
            NodeError::Unauthenticated(message) => tonic::Status::unauthenticated(message),
            // Internals stay in the node's log; the peer learns only that something broke.
            NodeError::Db(e) => {
                tracing::error!(error = %e, "database error");
                tonic::Status::internal("internal error")
            }
            NodeError::Corrupt(detail) => {
                tracing::error!(detail = %detail, "corrupt record");
                tonic::Status::internal("internal error")
            }
        }
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
        let status = tonic::Status::from(NodeError::FailedPrecondition("closed".into()));
        assert_eq!(status.code(), Code::FailedPrecondition);
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
