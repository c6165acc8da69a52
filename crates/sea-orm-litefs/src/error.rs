//! Errors of the cluster layer, and how they travel inside SeaORM's `DbErr`.
//!
//! SeaORM's `DbErr` has no variant for "the primary is unreachable", so a [`ClusterError`] rides in
//! `DbErr::Conn(RuntimeErr::SqlxError(sqlx::Error::AnyDriverError(..)))`, where
//! [`ClusterError::find`] gets it back out.
//!
//! Every variant but [`ClusterError::OutcomeUnknown`] means the write did not commit and will not
//! commit: the caller may say "failed" and try again. A write that committed is never an error
//! here, even when this node has not caught up with it yet (that is a success that may read stale).

use std::sync::Arc;

use sea_orm::{DbErr, RuntimeErr};

use super::rpc::Refusal;
use super::wire::Pos;

/// Why a write was not done. Each says what happened in words an operator can act on. Serializable:
/// a write procedure that fails with one on the primary returns it to the caller as it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ClusterError {
    /// LiteFS knows no primary (it is starting, or the lease is vacant).
    #[error(
        "no primary is known: the cluster has no primary right now, so writes cannot be accepted"
    )]
    NoPrimary,
    /// The primary's RPC could not be reached: nothing was sent.
    #[error("the primary ({addr}) is unreachable: {reason}")]
    PrimaryUnreachable { addr: String, reason: String },
    /// The writer was busy until the deadline: the write never started.
    #[error("the primary is busy: the write did not start within {waited_ms} ms; try again")]
    Busy { waited_ms: u64 },
    /// The write definitely did not commit and never will (its deadline passed before COMMIT, or
    /// it was resolved as not committed after a lost answer).
    #[error("the write was not committed: {reason}")]
    NotCommitted { reason: String },
    /// The answer was lost and the primary could not be asked what became of the write: it may
    /// or may not have committed.
    #[error(
        "the outcome of the write is unknown: the primary ({addr}) did not answer ({reason}); \
         it may or may not have committed"
    )]
    OutcomeUnknown { addr: String, reason: String },
    /// Too many remote transactions are open or waiting on the primary.
    #[error("the primary has too many open remote transactions (limit {limit}); try again")]
    TooManyTransactions { limit: usize },
    /// The peer refused our credentials, or we refused its.
    #[error(
        "the primary ({addr}) refused authentication: check that the cluster secret is the same on every node"
    )]
    AuthFailed { addr: String },
    /// Nodes kept naming someone else as primary (the primary is moving).
    #[error("the primary moved while forwarding (last named: {last})")]
    PrimaryMoving { last: String },
    /// A remote transaction's session is gone on the primary (idle past its lease, open past its
    /// lifetime, rolled back by a statement, a LiteFS remount, a restart): it was rolled back.
    #[error("the remote transaction was lost on the primary and rolled back: {0}")]
    SessionLost(String),
    /// A statement of a kind the wrapper never runs (see the crate README's "What runs where").
    #[error("{0}")]
    Refused(String),
    /// The primary could not start the work: nothing committed.
    #[error("the primary could not run the write: {0}")]
    Unavailable(String),
    /// This node did not reach a position within the bound (a wait for another request's write;
    /// never the outcome of a write).
    #[error("this node did not catch up to position {pos} within {timeout_ms} ms")]
    CatchUpTimeout { pos: Pos, timeout_ms: u64 },
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

    /// Whether the write may have committed (the only error that does not mean "failed").
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, ClusterError::OutcomeUnknown { .. })
    }

    /// Whether the same call may succeed later (a 503 rather than a bug in the caller). Not
    /// whether retrying is safe: an [`outcome_unknown`](Self::outcome_unknown) write is
    /// transient, and may have committed.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            ClusterError::Refused(_) | ClusterError::AuthFailed { .. }
        )
    }

    /// The error for a refusal from `addr`.
    pub(crate) fn from_refusal(addr: &str, refusal: Refusal) -> ClusterError {
        match refusal {
            Refusal::NotPrimary { primary } => ClusterError::PrimaryMoving {
                last: primary.unwrap_or_else(|| addr.to_owned()),
            },
            Refusal::NoSuchSession { session } => ClusterError::SessionLost(format!(
                "session {session} is gone on {addr} (the primary ended it: idle past its lease, \
                 open past its maximum lifetime, rolled back by one of its statements, abandoned \
                 as LiteFS remounted, or lost as the primary restarted)"
            )),
            Refusal::Busy { waited_ms } => ClusterError::Busy { waited_ms },
            Refusal::TooManyTransactions { limit } => ClusterError::TooManyTransactions { limit },
            Refusal::Expired => ClusterError::NotCommitted {
                reason: "its deadline passed before it could commit".into(),
            },
            Refusal::Refused(why) => ClusterError::Refused(why),
            Refusal::Unavailable(reason) => ClusterError::Unavailable(reason),
        }
    }
}
