//! The web layer's one error type. API handlers answer it as JSON `{"error": ...}`; page handlers
//! wrap it in [`PageError`], which the error-page middleware renders as HTML with the site chrome.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::blog::{BlogError, FieldErrors};
use crate::cluster::ClusterError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 401 with a Basic challenge.
    #[error("authentication required: use HTTP Basic auth as user \"admin\"")]
    Unauthorized,
    /// 403: a form without a valid CSRF token.
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 422 with per-field messages.
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// 400/413/415 and friends, from request parsing.
    #[error("{1}")]
    Request(StatusCode, String),
    /// 503: writes cannot reach the primary. Reads keep working.
    #[error("{0}")]
    Unavailable(String),
    /// 500: details are logged, never shown.
    #[error("internal error")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<BlogError> for Error {
    fn from(err: BlogError) -> Self {
        match err {
            BlogError::Validation(fields) => Error::Invalid(fields),
            BlogError::NotFound => Error::NotFound,
            BlogError::Conflict(msg) => Error::Conflict(msg),
            BlogError::Db(db) => match ClusterError::find(&db) {
                Some(cluster) => Error::Unavailable(format!("writes are unavailable: {cluster}")),
                None => Error::Internal(db.to_string()),
            },
        }
    }
}

impl From<sea_orm::DbErr> for Error {
    fn from(err: sea_orm::DbErr) -> Self {
        BlogError::from(err).into()
    }
}

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Request(status, _) => *status,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What a person may see: never the details of a 500.
    pub fn public_message(&self) -> String {
        self.to_string()
    }

    fn log(&self) {
        match self {
            Error::Internal(details) => tracing::error!(%details, "request failed"),
            Error::Unavailable(msg) => tracing::warn!(%msg, "write unavailable"),
            _ => {}
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let body = match &self {
            Error::Invalid(fields) => json!({ "error": "invalid input", "fields": fields }),
            other => json!({ "error": other.public_message() }),
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Basic realm=\"blog\"".parse().unwrap(),
            );
        }
        response
    }
}

/// Marks a response as an error page for the middleware to render with the site chrome.
#[derive(Debug, Clone)]
pub struct ErrorPage {
    pub status: StatusCode,
    pub message: String,
}

/// An error from a page handler: rendered as HTML.
#[derive(Debug)]
pub struct PageError(pub Error);

impl<E: Into<Error>> From<E> for PageError {
    fn from(err: E) -> Self {
        PageError(err.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.0.log();
        let status = self.0.status();
        let message = match &self.0 {
            Error::NotFound => "There is nothing here.".to_owned(),
            Error::Internal(_) => {
                "Something went wrong on our side. It has been logged.".to_owned()
            }
            other => other.public_message(),
        };
        let mut response = status.into_response();
        response
            .extensions_mut()
            .insert(ErrorPage { status, message });
        response
    }
}
