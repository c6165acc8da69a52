//! Write procedures: a whole write transaction from a replica in one round trip.
//!
//! A remote interactive transaction costs one round trip per statement; a procedure costs one.
//! Every node runs the same binary, so a transaction body can run on the primary by name: the app
//! writes it as a [`Procedure`] (serializable arguments and output, an async body over a
//! [`ClusterTransaction`]), registers it at start-up in [`Procedures`], and calls it with
//! [`ClusterConnection::call`](crate::ClusterConnection::call).
//!
//! - On the primary (or standalone), `call` runs the body in a local transaction, under the one
//!   writer, like any local transaction.
//! - On a replica, `call` sends one RPC: the name, a [`fingerprint`] of the procedure's version, the
//!   bincode of the arguments and an idempotency key. The primary runs the body in a local
//!   transaction that also stores the key with the output ([`run`]), so a lost answer is settled by
//!   `resolve(key)` exactly as for a forwarded statement: the stored output, or "not committed".
//!   Then the replica waits for the commit's position (read your writes), as for a statement.
//!   A body's own error comes with the position the body read, and the replica waits for that
//!   too: a read that explains the error (the post that changed, the slug that is taken) sees
//!   what the primary saw.
//! - Errors keep their type ([`ProcedureError`]): the app's own errors travel as the app
//!   serializes them, database errors are rebuilt as the same `DbErr` (SQLite's errors as genuine
//!   sqlx errors, cluster errors as the same [`ClusterError`](crate::ClusterError)).
//! - A body stops at the caller's deadline: a statement still running is interrupted, a body
//!   still waiting is dropped, and the call fails as not committed ([`run`], [`call`]). A call
//!   LiteFS refuses because the lease left its primary mid-call committed nothing, and goes on to
//!   the new primary.
//! - A primary that does not know the procedure, or knows another version of it (a rolling
//!   deploy), refuses it before running anything; the caller then runs the same body as an
//!   interactive remote transaction ([`call`]): slower, never wrong.

mod call;
mod errors;
mod run;

use std::any::type_name;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

use futures::future::BoxFuture;
use sea_orm::DbErr;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::transaction::ClusterTransaction;
use super::wire::Pos;

pub(crate) use call::call;
pub use errors::WireDbErr;
pub(crate) use run::run;

/// A write transaction that can run on the primary by name. Its body is ordinary SeaORM code over
/// the transaction it is given, and must not depend on anything but its arguments and the
/// database: it runs on whichever node is primary.
pub trait Procedure: Send + Sync + 'static {
    /// Unique among the app's procedures.
    const NAME: &'static str;
    /// Bump it whenever the arguments', output's or error's fields change: bincode is not
    /// self-describing, and nodes of two versions must not read each other's bytes (see
    /// [`fingerprint`]).
    const VERSION: u32;
    type Args: Serialize + DeserializeOwned + Send + 'static;
    type Output: Serialize + DeserializeOwned + Send + 'static;
    type Error: ProcedureError;

    /// The body. It returns `Err` to roll back; it never commits or rolls back `txn` itself.
    fn run(
        txn: &ClusterTransaction,
        args: Self::Args,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send;
}

/// A procedure's error split in two: the app's own part, which crosses the network as the app
/// serializes it, and database errors, which cross it the way forwarded statements' errors do.
pub enum Failure<A> {
    App(A),
    Db(DbErr),
}

/// An error a procedure may return. `From<DbErr>` lets the body use `?` on SeaORM calls.
pub trait ProcedureError: From<DbErr> + Send + 'static {
    /// What of the error is the app's own (not found, conflict...).
    type App: Serialize + DeserializeOwned + Send;
    fn into_failure(self) -> Failure<Self::App>;
    fn from_app(app: Self::App) -> Self;
}

/// A procedure that fails only as SeaORM does.
impl ProcedureError for DbErr {
    type App = ();
    fn into_failure(self) -> Failure<()> {
        Failure::Db(self)
    }
    fn from_app((): ()) -> Self {
        DbErr::Custom("a procedure failed".into())
    }
}

/// The version of a procedure that two nodes must agree on: its name, its `VERSION`, and the
/// Rust type names of its arguments, output and app error, hashed (SHA-256, first 8 bytes).
///
/// The type names catch a type replaced or renamed; they cannot see a field added to the same
/// type, which is what `VERSION` is for. A shape hash of the types (through serde reflection)
/// would catch that too, but needs every type to be traceable; a forgotten bump is caught
/// downstream only when the bytes fail to decode, which is refused like an unknown version.
pub fn fingerprint<P: Procedure>() -> u64 {
    let mut hash = Sha256::new();
    let version = P::VERSION.to_string();
    for part in [
        P::NAME,
        version.as_str(),
        type_name::<P::Args>(),
        type_name::<P::Output>(),
        type_name::<<P::Error as ProcedureError>::App>(),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    u64::from_be_bytes(
        digest[..8]
            .try_into()
            .expect("a SHA-256 digest has 8 bytes"),
    )
}

/// Whether a local transaction failed with `err` because LiteFS went away under it (restarted, as
/// when a static lease moves): its connection is abandoned with the old mount, nothing of it
/// committed.
fn mount_lost(err: &crate::ClusterError) -> bool {
    matches!(
        err,
        crate::ClusterError::SessionLost(_) | crate::ClusterError::Unavailable(_)
    )
}

/// A body with its types erased: bincode in, bincode out.
type Body = fn(&ClusterTransaction, Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, WireFailure>>;

struct Entry {
    fingerprint: u64,
    body: Body,
}

/// The procedures this node runs for replicas, registered at start-up (every node registers the
/// same ones: any of them may become primary).
#[derive(Default)]
pub struct Procedures {
    entries: HashMap<&'static str, Entry>,
    /// Procedures run for replicas so far, to expire old idempotency keys now and then.
    runs: AtomicU64,
}

impl Procedures {
    pub fn new() -> Self {
        Procedures::default()
    }

    /// Adds `P`. Two procedures of one name are a bug of the app: it panics at start-up.
    pub fn register<P: Procedure>(mut self) -> Self {
        let previous = self.entries.insert(
            P::NAME,
            Entry {
                fingerprint: fingerprint::<P>(),
                body: erased::<P>,
            },
        );
        assert!(
            previous.is_none(),
            "two write procedures are named {}",
            P::NAME
        );
        self
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.entries.keys().copied().collect();
        names.sort_unstable();
        names
    }
}

impl std::fmt::Debug for Procedures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

/// Runs `P`'s body on bincode arguments; its output or error as they cross the network.
fn erased<P: Procedure>(
    txn: &ClusterTransaction,
    args: Vec<u8>,
) -> BoxFuture<'_, Result<Vec<u8>, WireFailure>> {
    Box::pin(async move {
        let args: P::Args = bincode::deserialize(&args).map_err(|e| {
            WireFailure::Unknown(format!("the arguments of {} do not decode: {e}", P::NAME))
        })?;
        let encoding = |e: bincode::Error| {
            WireFailure::Db(WireDbErr::Custom(format!(
                "cannot encode the result of {}: {e}",
                P::NAME
            )))
        };
        match P::run(txn, args).await {
            Ok(output) => bincode::serialize(&output).map_err(encoding),
            Err(err) => Err(match err.into_failure() {
                Failure::App(app) => WireFailure::App(bincode::serialize(&app).map_err(encoding)?),
                Failure::Db(err) => WireFailure::Db(WireDbErr::from_db_err(&err)),
            }),
        }
    })
}

/// A procedure call, as a replica sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcedureCall {
    pub name: String,
    /// See [`fingerprint`].
    pub fingerprint: u64,
    /// The bincode of the arguments.
    pub args: Vec<u8>,
}

/// What the primary answers a procedure call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcedureOutcome {
    /// The bincode of the output, or why it failed (nothing committed).
    pub result: Result<Vec<u8>, WireFailure>,
    /// The commit's position, when it committed; when the body failed, the position it read
    /// (the caller catches up to it before answering the error). A primary of before this sends
    /// none with a failure, and a caller of before this ignores it.
    pub pos: Option<Pos>,
}

/// Why a procedure failed on the primary. Nothing of it committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WireFailure {
    /// The body's own error, the bincode of its [`ProcedureError::App`].
    App(Vec<u8>),
    /// A database error, rebuilt on the caller as the same `DbErr`.
    Db(WireDbErr),
    /// The primary does not run this procedure in this version: nothing ran, the caller may
    /// run the body itself as an interactive transaction.
    Unknown(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;
    impl Procedure for Echo {
        const NAME: &'static str = "echo";
        const VERSION: u32 = 1;
        type Args = String;
        type Output = String;
        type Error = DbErr;
        async fn run(_: &ClusterTransaction, args: String) -> Result<String, DbErr> {
            Ok(args)
        }
    }

    /// The same name in a later version.
    struct EchoV2;
    impl Procedure for EchoV2 {
        const NAME: &'static str = "echo";
        const VERSION: u32 = 2;
        type Args = String;
        type Output = String;
        type Error = DbErr;
        async fn run(_: &ClusterTransaction, args: String) -> Result<String, DbErr> {
            Ok(args)
        }
    }

    /// The same name and version, another argument type.
    struct EchoBytes;
    impl Procedure for EchoBytes {
        const NAME: &'static str = "echo";
        const VERSION: u32 = 1;
        type Args = Vec<u8>;
        type Output = String;
        type Error = DbErr;
        async fn run(_: &ClusterTransaction, _: Vec<u8>) -> Result<String, DbErr> {
            Ok(String::new())
        }
    }

    #[test]
    fn a_fingerprint_changes_with_the_version_and_the_types() {
        assert_eq!(fingerprint::<Echo>(), fingerprint::<Echo>());
        assert_ne!(fingerprint::<Echo>(), fingerprint::<EchoV2>());
        assert_ne!(fingerprint::<Echo>(), fingerprint::<EchoBytes>());
    }

    #[test]
    #[should_panic(expected = "two write procedures are named echo")]
    fn two_procedures_of_one_name_are_refused_at_start_up() {
        let _ = Procedures::new().register::<Echo>().register::<EchoV2>();
    }

    #[test]
    fn database_errors_keep_their_kind_on_the_wire() {
        let busy = crate::ClusterError::Busy { waited_ms: 7 };
        assert_eq!(
            WireDbErr::from_db_err(&busy.clone().into_db_err()),
            WireDbErr::Cluster(busy)
        );
        assert_eq!(
            WireDbErr::from_db_err(&DbErr::RecordNotUpdated),
            WireDbErr::RecordNotUpdated
        );
        let WireDbErr::Sql(failure) =
            WireDbErr::from_db_err(&DbErr::Query(sea_orm::RuntimeErr::Internal("odd".into())))
        else {
            panic!("a statement's error")
        };
        assert_eq!(failure.phase, crate::wire::ErrorPhase::Query);
        assert_eq!(failure.message, "odd");
    }
}
