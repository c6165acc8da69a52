//! Errors of the cluster layer, and how they travel inside SeaORM's `DbErr`.
//!
//! SeaORM's `DbErr` has no variant for "the primary is unreachable", so a [`ClusterError`] rides in
//! `DbErr::Conn(RuntimeErr::SqlxError(sqlx::Error::AnyDriverError(..)))`, where
//! [`ClusterError::find`] gets it back out: the web layer turns it into a 503.

use std::sync::Arc;

use sea_orm::{DbErr, RuntimeErr};

/// Why a write could not be forwarded. Each says what happened in words an operator can act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// LiteFS knows no primary (it is starting, or the lease is vacant).
    #[error(
        "no primary is known: the cluster has no primary right now, so writes cannot be accepted"
    )]
    NoPrimary,
    /// The primary's RPC could not be reached.
    #[error("the primary ({addr}) is unreachable: {reason}")]
    PrimaryUnreachable { addr: String, reason: String },
    /// The primary did not answer within the deadline.
    #[error("the primary ({addr}) did not answer within {timeout_ms} ms")]
    DeadlineExceeded { addr: String, timeout_ms: u64 },
    /// The peer refused our credentials, or we refused its.
    #[error(
        "the primary ({addr}) refused authentication: check that BLOG_CLUSTER_SECRET is the same on every node"
    )]
    AuthFailed { addr: String },
    /// Nodes kept naming someone else as primary (the primary is moving).
    #[error("the primary moved while forwarding (last named: {last})")]
    PrimaryMoving { last: String },
    /// A remote transaction's session is gone on the primary (idle lease expired, or primary restarted).
    #[error("the remote transaction was lost on the primary: {0}")]
    SessionLost(String),
    /// Our node's LiteFS did not replicate the write within the catch-up bound.
    #[error("this node did not catch up to TXID {txid:#x} within {timeout_ms} ms")]
    CatchUpTimeout { txid: u64, timeout_ms: u64 },
}

impl ClusterError {
    /// Wraps this error in a `DbErr` that SeaORM code can propagate.
    pub fn into_db_err(self) -> DbErr {
        DbErr::Conn(RuntimeErr::SqlxError(Arc::new(
            sqlx::Error::AnyDriverError(Box::new(self)),
        )))
    }

    /// Finds a `ClusterError` inside a `DbErr`, if the `DbErr` is one.
    pub fn find(err: &DbErr) -> Option<&ClusterError> {
        match err {
            DbErr::Conn(RuntimeErr::SqlxError(e))
            | DbErr::Exec(RuntimeErr::SqlxError(e))
            | DbErr::Query(RuntimeErr::SqlxError(e)) => match e.as_ref() {
                sqlx::Error::AnyDriverError(inner) => inner.downcast_ref::<ClusterError>(),
                _ => None,
            },
            _ => None,
        }
    }
}
