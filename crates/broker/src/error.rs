//! The broker's one error type and the one place it becomes a gRPC status.

use tandem_domain::ValidationError;

/// Everything that can go wrong in the broker, by the answer a caller gets.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Bad input, naming the field.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The object does not exist, or belongs to another company.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The object exists and the request conflicts with it.
    #[error("{0}")]
    AlreadyExists(String),
    /// The object is not in a state that allows the request.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller did not say who it is.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller's key does not allow this service.
    #[error("{0}")]
    PermissionDenied(String),
    /// The caller sent more requests than its rate allows.
    #[error("{0}")]
    ResourceExhausted(String),
    /// A node could not be reached or did not answer properly.
    #[error("node {node} unavailable: {detail}")]
    Unavailable { node: String, detail: String },
    /// Stored data the broker cannot read back; a bug or a hand-edited database.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sea_orm::DbErr),
}

impl From<BrokerError> for tonic::Status {
    fn from(err: BrokerError) -> Self {
        match err {
            BrokerError::Invalid(e) => {
                tonic::Status::invalid_argument(format!("{}: {}", e.field, e.reason))
            }
            BrokerError::NotFound(what) => tonic::Status::not_found(format!("{what} not found")),
            BrokerError::AlreadyExists(msg) => tonic::Status::already_exists(msg),
            BrokerError::FailedPrecondition(msg) => tonic::Status::failed_precondition(msg),
            BrokerError::Unauthenticated(msg) => tonic::Status::unauthenticated(msg),
            BrokerError::PermissionDenied(msg) => tonic::Status::permission_denied(msg),
            BrokerError::ResourceExhausted(msg) => tonic::Status::resource_exhausted(msg),
            BrokerError::Unavailable { node, detail } => {
                tracing::warn!(node = %node, error = %detail, "node unavailable");
                tonic::Status::unavailable(format!("node {node} is unavailable"))
            }
            BrokerError::Corrupt(detail) => {
                tracing::error!(error = %detail, "corrupt stored data");
                tonic::Status::internal("internal error")
            }
            BrokerError::Db(e) => {
                tracing::error!(error = %e, "database error");
                tonic::Status::internal("internal error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_names_the_field_and_internals_stay_hidden() {
        let status: tonic::Status = BrokerError::Invalid(ValidationError::new(
            "mentee.goals",
            "at least one goal is required",
        ))
        .into();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "mentee.goals: at least one goal is required"
        );

        let status: tonic::Status =
            BrokerError::Db(sea_orm::DbErr::Custom("table mentees is locked".into())).into();
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("mentees"));
    }
}
