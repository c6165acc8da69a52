//! The tarpc service every node runs. Only the primary executes; any other node answers
//! [`Refusal::NotPrimary`] with the primary it knows, and the caller goes there.
//!
//! Every [`Refusal`] means the call committed nothing and never will: the caller may report it
//! as a failure, or try elsewhere. A call that gets no answer at all has an unknown outcome, which
//! [`Forward::resolve`] settles for keyed writes.

use serde::{Deserialize, Serialize};

use super::procedure::{ProcedureCall, ProcedureOutcome};
use super::wire::{Outcome, Request};

/// Largest RPC frame, either way (a forwarded statement or a result set).
pub const MAX_FRAME_BYTES: usize = 32 * 1024 * 1024;

/// Why the receiving node did not run a call. SQL errors are not refusals: they are in [`Outcome`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Refusal {
    /// This node is not the primary; `primary` is the one it knows, if any.
    NotPrimary { primary: Option<String> },
    /// The remote transaction is gone (rolled back after its lease, or never existed).
    NoSuchSession { session: u64 },
    /// The writer was not free before the caller's deadline: nothing ran.
    Busy { waited_ms: u64 },
    /// Too many remote transactions are open or waiting on the primary.
    TooManyTransactions { limit: usize },
    /// The caller's deadline passed before the write could commit: it was rolled back, or never
    /// started, and its key is now marked so that it never runs.
    Expired,
    /// The statement is of a kind the wrapper never runs (see `statement::Kind`).
    Refused(String),
    /// The primary could not start the work (no connection, bookkeeping failed): nothing committed.
    Unavailable(String),
}

/// What the primary knows of a keyed write when asked after a lost answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Resolution {
    /// It committed; this is its answer.
    Committed(Outcome),
    /// It did not commit, and its key is now marked so that it never will.
    NotCommitted,
}

#[tarpc::service]
pub trait Forward {
    /// Runs one SQL string. A write runs at most once for `key`: a second call with the same key
    /// gets the first reply. The primary classifies the SQL again with its own schema.
    async fn run(key: u128, request: Request) -> Result<Outcome, Refusal>;
    /// Settles a keyed write (or remote commit) whose answer was lost.
    async fn resolve(key: u128) -> Result<Resolution, Refusal>;
    /// Opens a remote transaction (`BEGIN IMMEDIATE`) and returns its session id.
    async fn begin() -> Result<u64, Refusal>;
    /// Runs one statement inside a remote transaction.
    async fn run_in(session: u64, request: Request) -> Result<Outcome, Refusal>;
    /// Commits a remote transaction, storing `key` with it so that a lost answer can be resolved;
    /// the outcome carries the commit's position or the COMMIT's error.
    async fn commit(session: u64, key: u128) -> Result<Outcome, Refusal>;
    /// Rolls a remote transaction back.
    async fn rollback(session: u64) -> Result<(), Refusal>;
    /// Runs a registered write procedure in one transaction, at most once for `key` (stored with
    /// its output, and settled by `resolve` like a statement's). See `crate::procedure`.
    async fn call(key: u128, call: ProcedureCall) -> Result<ProcedureOutcome, Refusal>;
}
