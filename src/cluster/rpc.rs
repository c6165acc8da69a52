//! The tarpc service every node runs. Only the primary executes; any other node answers
//! [`Refusal::NotPrimary`] with the primary it knows, and the caller goes there.

use serde::{Deserialize, Serialize};

use super::wire::{Outcome, Request};

/// Largest RPC frame, either way (a forwarded statement or a result set).
pub const MAX_FRAME_BYTES: usize = 32 * 1024 * 1024;

/// Why the receiving node did not run a call. SQL errors are not refusals: they are in [`Outcome`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Refusal {
    /// This node is not the primary; `primary` is the one it knows, if any.
    NotPrimary { primary: Option<String> },
    /// The remote transaction is gone (rolled back after its idle lease, or never existed).
    NoSuchSession { session: u64 },
    /// The primary could not start a transaction or get a connection.
    Unavailable(String),
}

#[tarpc::service]
pub trait Forward {
    /// Runs one statement on its own and returns its result and commit TXID. With a `key`, the
    /// primary runs it at most once: a second call with the same key gets the first reply.
    async fn run(key: Option<u128>, request: Request) -> Result<Outcome, Refusal>;
    /// Opens a remote transaction (`BEGIN IMMEDIATE`) and returns its session id.
    async fn begin() -> Result<u64, Refusal>;
    /// Runs one statement inside a remote transaction.
    async fn run_in(session: u64, request: Request) -> Result<Outcome, Refusal>;
    /// Commits a remote transaction; the outcome carries the commit's TXID or the COMMIT's error.
    async fn commit(session: u64) -> Result<Outcome, Refusal>;
    /// Rolls a remote transaction back.
    async fn rollback(session: u64) -> Result<(), Refusal>;
}
