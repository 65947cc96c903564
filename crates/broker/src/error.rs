//! The broker's one error type. Each variant names what went wrong; [`ServiceError::code`]
//! says which answer a peer gets for it, and `tandem-service` turns that into the gRPC status
//! (here) or the HTTP status (the dashboard) in one place.

use std::borrow::Cow;

use tandem_domain::{FieldViolation, Violations};
use tandem_service::auth::AuthError;
use tandem_service::keys::KeyError;
use tandem_service::{ErrorCode, ServiceError};

/// Everything that can go wrong in the broker, by cause.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Bad input: every wrong field of the request, each named.
    #[error(transparent)]
    Invalid(#[from] Violations),
    /// The caller was refused: no key, a wrong key, a revoked key, a key of another scope, or
    /// over its rate (an enrolment: over its peer address's rate).
    #[error(transparent)]
    Refused(#[from] AuthError),
    /// An enrolment code that is wrong, used, expired or of a removed membership: one answer
    /// for all, so that a caller learns nothing about which codes exist.
    #[error(
        "enrolment code not accepted: it is unknown, already used or expired; \
         ask your association for a new one"
    )]
    CodeNotAccepted,
    /// A company key bound to no membership (installed by hand, not enrolled).
    #[error("no membership: company keys come from enrolment with a code from your association")]
    NoMembership,
    /// The company's node removed its membership.
    #[error(
        "membership ended: the company's association removed it; \
         ask the association to admit the company again"
    )]
    MembershipEnded,
    /// The object does not exist, or belongs to another company.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The idempotency key was used before for a different mentee.
    #[error("idempotency_key: already used for a different mentee")]
    IdempotencyKeyReused,
    /// The object is not in a state that allows the request (a proposal no longer open, a
    /// tandem step out of order, a contact card before the double opt-in).
    #[error("{0}")]
    WrongState(String),
    /// Someone else changed the object between our read and our write.
    #[error("{0}")]
    ChangedConcurrently(&'static str),
    /// Another broker replica on the same database is running a matching round.
    #[error(
        "a matching round is already running on another broker replica; \
         try again when it has finished"
    )]
    RoundRunningElsewhere,
    /// A node could not be reached or did not answer properly.
    #[error("node {node} unavailable: {detail}")]
    NodeUnavailable { node: String, detail: String },
    /// The broker's certificate or the nodes' CA could not be loaded.
    #[error("tls: {0}")]
    Tls(String),
    /// The matching round's planner did not finish (it panicked).
    #[error("matching round planner failed: {0}")]
    Planner(#[from] tokio::task::JoinError),
    /// Stored data the broker cannot read back; a bug or a hand-edited database.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sea_orm::DbErr),
}

impl ServiceError for BrokerError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) => ErrorCode::InvalidArgument,
            Self::Refused(refused) => refused.code(),
            Self::CodeNotAccepted | Self::NoMembership | Self::MembershipEnded => {
                ErrorCode::PermissionDenied
            }
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::IdempotencyKeyReused => ErrorCode::AlreadyExists,
            Self::WrongState(_) | Self::ChangedConcurrently(_) => ErrorCode::FailedPrecondition,
            Self::NodeUnavailable { .. } | Self::RoundRunningElsewhere => ErrorCode::Unavailable,
            Self::Db(e) => tandem_service::error::database_code(e),
            Self::Tls(_) | Self::Planner(_) | Self::Corrupt(_) => ErrorCode::Internal,
        }
    }

    fn public_message(&self) -> Cow<'_, str> {
        match self {
            // Which node failed is the caller's business; how it failed is the operator's.
            Self::NodeUnavailable { node, .. } => Cow::Owned(format!("node {node} is unavailable")),
            Self::Refused(refused) => refused.public_message(),
            Self::Db(e) => tandem_service::error::database_message(e),
            other if other.code() == ErrorCode::Internal => Cow::Borrowed("internal error"),
            other => Cow::Owned(other.to_string()),
        }
    }

    fn violations(&self) -> Option<&Violations> {
        match self {
            Self::Invalid(violations) => Some(violations),
            _ => None,
        }
    }
}

impl From<FieldViolation> for BrokerError {
    fn from(violation: FieldViolation) -> Self {
        Self::Invalid(violation.into())
    }
}

impl From<KeyError> for BrokerError {
    fn from(err: KeyError) -> Self {
        match err {
            KeyError::Invalid(e) => Self::Invalid(e),
            KeyError::NotFound => Self::NotFound("key"),
            KeyError::Db(e) => Self::Db(e),
        }
    }
}

impl From<BrokerError> for tonic::Status {
    fn from(err: BrokerError) -> Self {
        tandem_service::status(&err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_names_the_field_and_internals_stay_hidden() {
        let status: tonic::Status = BrokerError::Invalid(Violations::one(
            "mentee.goals",
            "at least one goal is required",
        ))
        .into();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "mentee.goals: at least one goal is required"
        );
        let details = tonic_types::StatusExt::get_error_details(&status);
        let violations = &details.bad_request().expect("details").field_violations;
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "mentee.goals");
        assert_eq!(violations[0].description, "at least one goal is required");

        let status: tonic::Status =
            BrokerError::Db(sea_orm::DbErr::Custom("table mentees is locked".into())).into();
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("mentees"));
    }

    #[test]
    fn a_database_out_of_reach_is_unavailable_without_its_details() {
        let status: tonic::Status = BrokerError::Db(sea_orm::DbErr::ConnectionAcquire(
            sea_orm::ConnAcquireErr::Timeout,
        ))
        .into();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(
            status.message(),
            tandem_service::error::DATABASE_UNAVAILABLE
        );
        let status: tonic::Status = BrokerError::Refused(AuthError::Db(
            sea_orm::DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::ConnectionClosed),
        ))
        .into();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(
            status.message(),
            tandem_service::error::DATABASE_UNAVAILABLE
        );
    }

    #[test]
    fn a_refused_company_is_told_why() {
        for err in [
            BrokerError::CodeNotAccepted,
            BrokerError::NoMembership,
            BrokerError::MembershipEnded,
        ] {
            let message = err.to_string();
            let status: tonic::Status = err.into();
            assert_eq!(status.code(), tonic::Code::PermissionDenied);
            assert_eq!(status.message(), message);
        }
    }

    #[test]
    fn a_round_on_another_replica_says_to_try_again() {
        let status: tonic::Status = BrokerError::RoundRunningElsewhere.into();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(
            status.message(),
            "a matching round is already running on another broker replica; \
             try again when it has finished"
        );
    }

    #[test]
    fn a_node_failure_names_the_node_but_not_the_failure() {
        let status: tonic::Status = BrokerError::NodeUnavailable {
            node: "chamber".into(),
            detail: "connection refused at 10.0.0.7".into(),
        }
        .into();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(status.message(), "node chamber is unavailable");
    }
}
