//! One error type for the whole API. Each variant maps to one `extensions.code` of API.md;
//! internal errors are logged with their cause and answered with a generic message, so no
//! response ever carries SQL, stack traces or secrets.

use async_graphql::ErrorExtensions;
use sea_orm::{DbErr, SqlErr, TransactionError};

/// A refused or failed operation.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No valid token where one is needed, or bad credentials at `logIn`.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Authenticated, but the role does not allow it.
    #[error("{0}")]
    Forbidden(String),
    /// The thing does not exist, or the viewer may not see it.
    #[error("{0}")]
    NotFound(String),
    /// A value breaks a rule; `field` names the input field.
    #[error("{field}: {message}")]
    BadUserInput {
        /// The input field, as the client spelled it (e.g. `username`, `input.first`).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A uniqueness or invariant clash.
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts in a short time.
    #[error("{0}")]
    RateLimited(String),
    /// Anything else. The cause is logged, never sent.
    #[error("internal server error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// The `extensions.code` this error answers with.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => "UNAUTHENTICATED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::BadUserInput { .. } => "BAD_USER_INPUT",
            ApiError::Conflict(_) => "CONFLICT",
            ApiError::RateLimited(_) => "RATE_LIMITED",
            ApiError::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    /// A `BAD_USER_INPUT` error naming `field`.
    pub fn bad_input(field: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadUserInput {
            field,
            message: message.into(),
        }
    }

    /// An internal error from any cause; the cause is logged when the error is answered.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ApiError::Internal(cause.into())
    }

    /// The standard answer when the viewer must be signed in.
    pub fn sign_in_required() -> Self {
        ApiError::Unauthenticated("you must be signed in")
    }
}

/// Database errors: a unique violation is a `CONFLICT` (the message stays generic; call sites
/// that know which name clashed map it themselves with [`conflict_on_unique`]); everything
/// else is internal.
impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                ApiError::Conflict("that already exists".into())
            }
            _ => ApiError::internal(err),
        }
    }
}

impl From<TransactionError<ApiError>> for ApiError {
    fn from(err: TransactionError<ApiError>) -> Self {
        match err {
            TransactionError::Connection(db) => db.into(),
            TransactionError::Transaction(api) => api,
        }
    }
}

/// Maps a unique violation to a `CONFLICT` with `message`, any other database error as usual.
pub fn conflict_on_unique(err: DbErr, message: impl Into<String>) -> ApiError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => ApiError::Conflict(message.into()),
        _ => err.into(),
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        err.extend()
    }
}

impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        if let ApiError::Internal(cause) = self {
            tracing::error!(error = %cause, source = ?cause.source(), "internal error");
        }
        let code = self.code();
        let mut error = async_graphql::Error::new(self.to_string()).extend_with(|_, e| {
            e.set("code", code);
        });
        if let ApiError::BadUserInput { field, .. } = self {
            error = error.extend_with(|_, e| e.set("field", *field));
        }
        error
    }
}

/// The result type of domain functions.
pub type ApiResult<T> = Result<T, ApiError>;
