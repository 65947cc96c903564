//! What an error becomes for a peer. Each crate's error enum names the cause; its
//! [`ServiceError::code`] picks one [`ErrorCode`], and this module alone says which gRPC status
//! and which HTTP status that code is. Bad input carries every wrong field
//! ([`ServiceError::violations`]), which the status lists as `google.rpc.BadRequest` details.
//! Internal details (database errors, corrupt rows) are logged here and never reach a peer.
//!
//! A database failure is one of two causes ([`database_code`]): the database cannot be reached
//! now (connection refused or closed, the pool timed out or was closed, an I/O error, the server
//! shutting down or gone, a busy SQLite file), which is UNAVAILABLE with a message that says to
//! retry ([`DATABASE_UNAVAILABLE`]); or anything else (a violated constraint, a bad query,
//! corrupt data), which is INTERNAL.

use std::borrow::Cow;
use std::ops::Deref;

use sea_orm::{DbErr, RuntimeErr};

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

/// What a peer reads when the database cannot be reached now.
pub const DATABASE_UNAVAILABLE: &str = "database unavailable; retry later";

/// Returns the code of a database failure: [`ErrorCode::Unavailable`] when the database cannot
/// be reached now and a retry may work, [`ErrorCode::Internal`] for everything else.
pub fn database_code(err: &DbErr) -> ErrorCode {
    let unreachable = match err {
        // No connection from the pool: it timed out, or it is closed.
        DbErr::ConnectionAcquire(_) => true,
        // Opening a connection failed (refused, the database does not exist any more, …).
        DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            sqlx_unreachable(e)
        }
        _ => false,
    };
    if unreachable {
        ErrorCode::Unavailable
    } else {
        ErrorCode::Internal
    }
}

/// Returns what a peer reads of a database failure: [`DATABASE_UNAVAILABLE`] or "internal
/// error".
pub fn database_message(err: &DbErr) -> Cow<'static, str> {
    match database_code(err) {
        ErrorCode::Unavailable => Cow::Borrowed(DATABASE_UNAVAILABLE),
        _ => Cow::Borrowed("internal error"),
    }
}

/// PostgreSQL's SQLSTATEs of a server that is going away or cannot take the connection now.
const PG_UNREACHABLE: [&str; 5] = [
    "57P01", // admin_shutdown: the connection was terminated (also DROP DATABASE … FORCE)
    "57P02", // crash_shutdown
    "57P03", // cannot_connect_now: starting up or shutting down
    "3D000", // invalid_catalog_name: the database is gone
    "25P03", // idle_in_transaction_session_timeout
];

/// SQLite's (extended) result codes of a file another connection holds: SQLITE_BUSY and
/// SQLITE_LOCKED with their variants.
const SQLITE_BUSY: [&str; 6] = ["5", "261", "517", "773", "6", "262"];

fn sqlx_unreachable(err: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match err {
        Error::Io(_)
        | Error::Tls(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed => true,
        Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            let code = code.deref();
            if db
                .try_downcast_ref::<sea_orm::sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                // Class 08: connection exception; class 53: insufficient resources (too many
                // connections, out of memory or disk).
                code.starts_with("08") || code.starts_with("53") || PG_UNREACHABLE.contains(&code)
            } else {
                SQLITE_BUSY.contains(&code)
            }
        }
        _ => false,
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
    fn a_lost_connection_is_unavailable_and_a_bug_is_internal() {
        use sea_orm::ConnAcquireErr;
        use sea_orm::sqlx::Error;
        let sqlx = |e: Error| DbErr::Query(RuntimeErr::SqlxError(std::sync::Arc::new(e)));
        for unreachable in [
            DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
            DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
            DbErr::Conn(RuntimeErr::Internal("connection refused".into())),
            sqlx(Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset,
            ))),
            sqlx(Error::PoolClosed),
            sqlx(Error::PoolTimedOut),
        ] {
            assert_eq!(
                database_code(&unreachable),
                ErrorCode::Unavailable,
                "{unreachable}"
            );
            assert_eq!(database_message(&unreachable), DATABASE_UNAVAILABLE);
        }
        for bug in [
            DbErr::Custom("table mentees is locked".into()),
            DbErr::RecordNotInserted,
            sqlx(Error::RowNotFound),
            sqlx(Error::Protocol("unexpected message".into())),
            DbErr::Exec(RuntimeErr::Internal("syntax error".into())),
        ] {
            assert_eq!(database_code(&bug), ErrorCode::Internal, "{bug}");
            assert_eq!(database_message(&bug), "internal error");
        }
    }

    #[tokio::test]
    async fn a_closed_sqlite_pool_is_unavailable_and_a_constraint_is_internal() {
        use sea_orm::ConnectionTrait;
        let dir = tempfile::tempdir().expect("tempdir");
        let url = tandem_storage::sqlite_url(&dir.path().join("t.db"));
        let db = tandem_storage::connect(&url).await.expect("connect");
        db.execute_unprepared("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            .await
            .expect("create");
        db.execute_unprepared("INSERT INTO t VALUES (1)")
            .await
            .expect("insert");
        let duplicate = db
            .execute_unprepared("INSERT INTO t VALUES (1)")
            .await
            .expect_err("duplicate key");
        assert_eq!(
            database_code(&duplicate),
            ErrorCode::Internal,
            "{duplicate}"
        );
        db.close_by_ref().await.expect("close");
        let closed = db
            .execute_unprepared("SELECT 1")
            .await
            .expect_err("closed pool");
        assert_eq!(database_code(&closed), ErrorCode::Unavailable, "{closed}");
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
