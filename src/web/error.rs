//! The web layer's one error type. API handlers answer it as JSON `{"error": ...}`; page handlers
//! wrap it in [`PageError`], which the error-page middleware renders as HTML with the site chrome.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sea_orm::{DbErr, RuntimeErr};
use serde_json::json;

use crate::blog::{BlogError, FieldErrors};
use sea_orm_litefs::ClusterError;

/// What a 503 asks clients to wait before they retry, in seconds.
const RETRY_AFTER_SECS: u64 = 2;

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
    /// 429: too many password checks; retry after the duration.
    #[error("too many login attempts: try again in {} seconds", retry_secs(*.0))]
    TooManyRequests(Duration),
    /// 503 with Retry-After: writes cannot reach the primary, the database is busy or read-only.
    /// Nothing was saved.
    #[error("{0}")]
    Unavailable(String),
    /// 503 whose JSON says `"outcome": "unknown"`: the write may or may not have been saved (its
    /// answer was lost and the primary could not be asked). No Retry-After: look before retrying.
    #[error("{0}")]
    OutcomeUnknown(String),
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
            BlogError::Changed(_) => Error::Conflict(
                "the post was changed by someone else since it was read: nothing was saved".into(),
            ),
            BlogError::Db(db) => database_error(db),
        }
    }
}

/// SQLite's primary result codes that mean "not now" rather than "never": BUSY, LOCKED, READONLY.
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_READONLY: i64 = 8;
const SQLITE_INTERRUPT: i64 = 9;
/// LiteFS answers a write on a node that is not (or no longer) the primary with an I/O error.
const SQLITE_IOERR: i64 = 10;

/// The SQLite result code inside a SeaORM error, local or forwarded (forwarded errors are rebuilt
/// as genuine sqlx database errors).
fn sqlite_code(err: &DbErr) -> Option<i64> {
    match err {
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            let code = e.as_database_error()?.code()?;
            code.parse::<i64>().ok().map(|extended| extended & 0xff)
        }
        _ => None,
    }
}

/// A database failure: 503 with a message, but 500 for a statement the cluster layer refuses (a
/// bug in the app); counted.
fn database_error(err: DbErr) -> Error {
    if let Some(cluster) = ClusterError::find(&err) {
        metrics::counter!("blog_db_errors_total", "kind" => "cluster").increment(1);
        // The details, for the operator; the answer's own line (`Error::log`) has what the
        // client is told.
        let refused = matches!(cluster, ClusterError::Refused(_));
        if !refused {
            tracing::warn!(error = %cluster, "cluster write failed");
        }
        return if cluster.outcome_unknown() {
            Error::OutcomeUnknown(
                "the outcome of the write is unknown: the primary did not answer in time, and \
                 it may or may not have been saved. Check whether it was saved before trying \
                 again."
                    .into(),
            )
        } else if refused {
            // A statement the cluster layer refuses: a bug in the app, not the request.
            Error::Internal(cluster.to_string())
        } else {
            // Transient, or a setting of this node's (a cluster secret the primary refuses):
            // nothing was saved either way, and the client can do nothing but wait.
            Error::Unavailable(format!(
                "writes are unavailable: {}",
                public_reason(cluster)
            ))
        };
    }
    // Each of these stops a write before it commits: SQLite rolls the transaction back.
    let (kind, message) = match sqlite_code(&err) {
        Some(SQLITE_BUSY | SQLITE_LOCKED) => ("busy", "the database is busy"),
        Some(SQLITE_READONLY) => ("readonly", "the database is read-only"),
        Some(SQLITE_INTERRUPT) => ("interrupted", "the write took too long and was stopped"),
        // LiteFS refuses the write itself (the WAL write), before anything commits.
        Some(SQLITE_IOERR) => (
            "io",
            "the database cannot be written here right now (LiteFS may be moving the primary)",
        ),
        _ => {
            metrics::counter!("blog_db_errors_total", "kind" => "other").increment(1);
            return Error::Internal(err.to_string());
        }
    };
    metrics::counter!("blog_db_errors_total", "kind" => kind).increment(1);
    tracing::warn!(%err, "database unavailable");
    Error::Unavailable(format!("{message}: nothing was saved, try again shortly"))
}

/// What a client is told of a cluster failure: what happened and what to do, without the details
/// the log has (the primary's address on the private network, the transport's errors).
fn public_reason(cluster: &ClusterError) -> &'static str {
    match cluster {
        ClusterError::NoPrimary => {
            "the cluster has no primary right now; nothing was saved, try again shortly"
        }
        ClusterError::PrimaryUnreachable { .. } => {
            "the primary is unreachable; nothing was saved, try again shortly"
        }
        ClusterError::Busy { .. } | ClusterError::TooManyTransactions { .. } => {
            "the primary is busy; nothing was saved, try again shortly"
        }
        ClusterError::PrimaryMoving { .. } => {
            "the primary is moving to another node; nothing was saved, try again shortly"
        }
        ClusterError::AuthFailed { .. } => {
            "this node cannot reach the primary (the operator's log says why); nothing was saved"
        }
        ClusterError::NotCommitted { .. }
        | ClusterError::SessionLost(_)
        | ClusterError::Unavailable(_) => {
            "the primary could not complete the write; nothing was saved, try again shortly"
        }
        ClusterError::CatchUpTimeout { .. } => "this node is behind the primary; try again shortly",
        ClusterError::OutcomeUnknown { .. } | ClusterError::Refused(_) => {
            "the write could not be done"
        }
    }
}

fn retry_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
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
            Error::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable(_) | Error::OutcomeUnknown(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What a person may see: never the details of a 500.
    pub fn public_message(&self) -> String {
        self.to_string()
    }

    /// The public message as a sentence, for a page that shows it in its own words (a form
    /// re-rendered with it): capitalised, with a full stop.
    pub fn sentence(&self) -> String {
        let message = self.public_message();
        let mut chars = message.chars();
        let mut sentence: String = match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => return message,
        };
        if !sentence.ends_with(['.', '!', '?']) {
            sentence.push('.');
        }
        sentence
    }

    /// For a page that shows this error itself rather than as the error page (a form re-rendered
    /// with it): logs it and adds the headers that go with its status, as the error page does.
    pub fn attach_to(&self, response: &mut Response) {
        self.log();
        self.decorate(response);
    }

    /// Headers that go with the status: the Basic challenge, Retry-After.
    fn decorate(&self, response: &mut Response) {
        let headers = response.headers_mut();
        match self {
            Error::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"blog\", charset=\"UTF-8\""),
                );
            }
            Error::TooManyRequests(wait) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_secs(*wait).max(1)),
                );
            }
            Error::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            }
            _ => {}
        }
    }

    fn log(&self) {
        match self {
            Error::Internal(details) => tracing::error!(%details, "request failed"),
            Error::Unavailable(msg) => tracing::warn!(%msg, "write unavailable"),
            Error::OutcomeUnknown(msg) => tracing::error!(%msg, "write outcome unknown"),
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
            Error::OutcomeUnknown(msg) => json!({ "error": msg, "outcome": "unknown" }),
            other => json!({ "error": other.public_message() }),
        };
        let mut response = (status, Json(body)).into_response();
        self.decorate(&mut response);
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
        self.0.decorate(&mut response);
        response
            .extensions_mut()
            .insert(ErrorPage { status, message });
        response
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, SqlxSqliteConnector};
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

    use super::*;

    async fn pool(path: &std::path::Path, read_only: bool) -> sea_orm::DatabaseConnection {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .read_only(read_only)
            .busy_timeout(Duration::ZERO);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)
    }

    fn assert_503_with_retry_after(err: DbErr, expected: &str) {
        let error = Error::from(err);
        assert!(matches!(error, Error::Unavailable(_)), "{error:?}");
        assert!(error.to_string().contains(expected), "{error}");
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }

    /// Real SQLite errors: a write while another connection holds the write lock (BUSY), and a
    /// write on a read-only connection (READONLY).
    #[tokio::test]
    async fn busy_and_read_only_databases_are_503_with_retry_after() {
        let dir = std::env::temp_dir().join(format!("blog-error-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        let writer = pool(&path, false).await;
        writer
            .execute_unprepared("CREATE TABLE t (x)")
            .await
            .unwrap();
        let holder = pool(&path, false).await;
        holder.execute_unprepared("BEGIN IMMEDIATE").await.unwrap();
        let busy = writer
            .execute_unprepared("INSERT INTO t VALUES (1)")
            .await
            .unwrap_err();
        assert_503_with_retry_after(busy, "busy");
        holder.execute_unprepared("ROLLBACK").await.unwrap();

        let reader = pool(&path, true).await;
        let read_only = reader
            .execute_unprepared("INSERT INTO t VALUES (2)")
            .await
            .unwrap_err();
        assert_503_with_retry_after(read_only, "read-only");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The cluster layer's three outcomes, as HTTP: failed and transient is a 503 that invites a
    /// retry; unknown is a 503 that says so and does not; a refused statement is the app's bug.
    #[tokio::test]
    async fn cluster_errors_say_failed_or_unknown() {
        let failed = ClusterError::Busy { waited_ms: 5000 }.into_db_err();
        assert_503_with_retry_after(failed, "busy");

        let unknown = Error::from(
            ClusterError::OutcomeUnknown {
                addr: "primary:7070".into(),
                reason: "no answer".into(),
            }
            .into_db_err(),
        );
        let response = unknown.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["outcome"], "unknown", "{body}");

        assert!(!body.to_string().contains("7070"), "{body}");

        let refused =
            Error::from(ClusterError::Refused("statement refused: BEGIN".into()).into_db_err());
        assert!(matches!(refused, Error::Internal(_)), "{refused:?}");
    }

    /// A client is told what happened and what to do, not the primary's address on the private
    /// network nor the transport's error (those go to the log).
    #[tokio::test]
    async fn a_cluster_failure_does_not_show_the_private_network() {
        let unreachable = ClusterError::PrimaryUnreachable {
            addr: "e784079b.vm.blog.internal:7070".into(),
            reason: "connect to [fdaa:0:1::3]:7070: connection refused".into(),
        };
        let response = Error::from(unreachable.into_db_err()).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("the primary is unreachable"), "{body}");
        for private in ["internal", "7070", "fdaa", "refused"] {
            assert!(!body.contains(private), "{private} in {body}");
        }
    }

    /// A form shows a 503's message in its own words, once: as a sentence.
    #[test]
    fn a_message_reads_as_one_sentence() {
        let busy =
            Error::Unavailable("the database is busy: nothing was saved, try again shortly".into());
        assert_eq!(
            busy.sentence(),
            "The database is busy: nothing was saved, try again shortly."
        );
        let logout = Error::Unavailable("You are still logged in (why).".into());
        assert_eq!(logout.sentence(), "You are still logged in (why).");
        assert_eq!(Error::Unavailable(String::new()).sentence(), "");
    }

    /// LiteFS refusing a write (the primary moved mid-request) is a 503, not a 500: seen by the
    /// fault lab as a 500 during a failover.
    #[tokio::test]
    async fn an_io_error_from_litefs_is_503() {
        let io = sea_orm_litefs::testing::sqlite_error(778, "disk I/O error").await;
        let err = DbErr::Exec(RuntimeErr::SqlxError(std::sync::Arc::new(io)));
        assert_503_with_retry_after(err, "LiteFS may be moving the primary");
    }
}
