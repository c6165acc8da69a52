//! The caller's side: [`call`] runs a procedure here on the primary, or sends it there in one RPC
//! from a replica, and falls back to an interactive remote transaction when the primary does not
//! know this version of it.
//!
//! Here on the primary, the body stops at the connection's timeout, as a local write does: a
//! statement still running is interrupted, a body still waiting is dropped, and the call fails as
//! not committed. If LiteFS moves the lease away during the call, so that it refuses the
//! transaction's BEGIN, a statement or its COMMIT (nothing committed), the call is sent to the
//! new primary instead, as a local write is.

use std::time::Instant;

use sea_orm::{DbErr, RuntimeErr, TransactionSession, TransactionTrait};

use super::{
    Failure, Procedure, ProcedureCall, ProcedureError, ProcedureOutcome, WireFailure, fingerprint,
    mount_lost,
};
use crate::client::CallError;
use crate::connection::{Node, idempotency_key, refused_by_litefs, resolve, settle};
use crate::rpc::Refusal;
use crate::wire::{ErrorPhase, Outcome, Pos, Reply};
use crate::{ClusterConnection, ClusterError, metrics};

/// Runs `P` with `args` in one transaction, wherever this node stands (see the module docs).
pub(crate) async fn call<P: Procedure>(
    db: &ClusterConnection,
    args: P::Args,
) -> Result<P::Output, P::Error> {
    let node = match &db.inner.node {
        Some(node) if !db.role().writes_locally() => return forward::<P>(db, node, args).await,
        Some(node) => node,
        None => {
            return in_transaction::<P>(db, args)
                .await
                .map_err(Failed::into_error);
        }
    };
    // Kept to send the call on if the lease leaves this node meanwhile.
    let encoded = bincode::serialize(&args).map_err(|e| encoding::<P>("arguments", e))?;
    match in_transaction::<P>(db, args).await {
        Err(Failed::NotRun(err)) if !db.role().writes_locally() => {
            tracing::warn!(procedure = P::NAME, error = %err, "this node stopped being primary mid-call: sending the procedure to the new primary");
            let args = bincode::deserialize(&encoded).map_err(|e| encoding::<P>("arguments", e))?;
            forward::<P>(db, node, args).await
        }
        result => result.map_err(Failed::into_error),
    }
}

/// How a procedure run here failed.
enum Failed<E> {
    /// The body's answer, or a failure that may have committed.
    Error(E),
    /// It did not begin, or LiteFS refused a write of it (the lease may have moved): nothing of
    /// it committed or will, so it may run elsewhere.
    NotRun(DbErr),
}

impl<E: ProcedureError> Failed<E> {
    fn into_error(self) -> E {
        match self {
            Failed::Error(err) => err,
            Failed::NotRun(err) => err.into(),
        }
    }
}

/// The body in a transaction of `db`: local on the primary (stopped at the connection's
/// timeout), a remote session on a replica.
async fn in_transaction<P: Procedure>(
    db: &ClusterConnection,
    args: P::Args,
) -> Result<P::Output, Failed<P::Error>> {
    let deadline = Instant::now() + db.timeout();
    let txn = db.begin().await.map_err(Failed::NotRun)?;
    let local = txn.interrupt_at(deadline).await;
    let ran = if local {
        match tokio::time::timeout_at(deadline.into(), P::run(&txn, args)).await {
            Ok(ran) => ran,
            Err(_elapsed) => {
                // Dropped where it waited; a statement it left running is interrupted first.
                txn.interrupt_now();
                return Err(Failed::Error(expired::<P>(txn).await.into()));
            }
        }
    } else {
        P::run(&txn, args).await
    };
    txn.disarm();
    let past_deadline = local && Instant::now() >= deadline;
    let err = match ran {
        Ok(_) if past_deadline => return Err(Failed::Error(expired::<P>(txn).await.into())),
        Ok(output) => {
            return match txn.commit().await {
                Ok(()) => Ok(output),
                Err(err) if refused(&err) => Err(Failed::NotRun(err)),
                Err(err) => Err(Failed::Error(err.into())),
            };
        }
        Err(err) => err,
    };
    // The body's error is the answer; a rollback that fails still commits nothing.
    if let Err(rollback) = txn.rollback().await {
        tracing::warn!(procedure = P::NAME, %rollback, "rolling back a failed procedure failed");
    }
    // Only a database error needs a second look: one past the deadline (the interrupted
    // statement's) is said as such, and LiteFS's refusal lets the call go on to a new primary.
    if !(past_deadline || (local && !db.role().writes_locally())) {
        return Err(Failed::Error(err));
    }
    Err(match err.into_failure() {
        Failure::Db(_) if past_deadline => Failed::Error(expired_error::<P>().into()),
        Failure::Db(err) if refused(&err) => Failed::NotRun(err),
        Failure::Db(err) => Failed::Error(err.into()),
        Failure::App(app) => Failed::Error(P::Error::from_app(app)),
    })
}

/// Rolls `txn` back: the body ran past its deadline.
async fn expired<P: Procedure>(txn: crate::ClusterTransaction) -> DbErr {
    if let Err(err) = txn.rollback().await {
        tracing::warn!(procedure = P::NAME, %err, "rolling back a procedure past its deadline failed");
    }
    expired_error::<P>()
}

fn expired_error<P: Procedure>() -> DbErr {
    tracing::warn!(
        procedure = P::NAME,
        "a procedure ran past its deadline: stopped and rolled back"
    );
    ClusterError::from_refusal("this node", Refusal::Expired).into_db_err()
}

/// Whether LiteFS refused a write of the transaction (see [`refused_by_litefs`]), or went away
/// under it ([`mount_lost`]): either way nothing of it committed.
fn refused(err: &DbErr) -> bool {
    if ClusterError::find(err).is_some_and(mount_lost) {
        return true;
    }
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => refused_by_litefs(e),
        _ => false,
    }
}

/// One RPC to the primary; a lost answer is settled by asking what became of the key, and a
/// committed one is waited for here (read your writes).
async fn forward<P: Procedure>(
    db: &ClusterConnection,
    node: &Node,
    args: P::Args,
) -> Result<P::Output, P::Error> {
    let started = Instant::now();
    let request = ProcedureCall {
        name: P::NAME.into(),
        fingerprint: fingerprint::<P>(),
        args: bincode::serialize(&args).map_err(|e| encoding::<P>("arguments", e))?,
    };
    let key = idempotency_key();
    let deadline = Instant::now() + node.forwarder.timeout;
    let sent = node
        .forwarder
        .call_new(deadline, |client, ctx| {
            let request = request.clone();
            async move { client.call(ctx, key, request).await }
        })
        .await;
    let outcome = match sent {
        Ok((ProcedureOutcome { result, pos }, addr)) => match result {
            Ok(output) => Outcome {
                result: Ok(Reply::Output(output)),
                pos,
            },
            Err(WireFailure::Unknown(why)) => {
                tracing::warn!(procedure = P::NAME, primary = %addr, %why, "the primary does not run this version of the procedure: running it as an interactive transaction");
                metrics::procedure_fallback();
                return in_transaction::<P>(db, args)
                    .await
                    .map_err(Failed::into_error);
            }
            Err(WireFailure::App(bytes)) => {
                let app = bincode::deserialize(&bytes).map_err(|e| encoding::<P>("error", e))?;
                catch_up_to_failure(node, pos, deadline).await;
                return Err(P::Error::from_app(app));
            }
            Err(WireFailure::Db(err)) => {
                catch_up_to_failure(node, pos, deadline).await;
                return Err(err.rebuild(node).await.into());
            }
        },
        Err(CallError::Failed(err)) => return Err(err.into_db_err().into()),
        Err(CallError::Lost { addr, reason }) => {
            resolve(&db.inner.writer, node, key, addr, reason).await?
        }
    };
    let reply = settle(node, outcome, ErrorPhase::Exec).await?;
    metrics::procedure_call(started.elapsed());
    match reply {
        // It committed: say so, so that this is never taken for a failed write.
        Reply::Output(bytes) => bincode::deserialize(&bytes).map_err(|e| {
            DbErr::Custom(format!(
                "{} committed on the primary, but its output does not decode here ({e}): the \
                 nodes run different versions of it (bump its VERSION when its types change)",
                P::NAME
            ))
            .into()
        }),
        _ => Err(DbErr::Custom(format!(
            "the primary's answer to {} is not a procedure's output",
            P::NAME
        ))
        .into()),
    }
}

/// Waits, until the call's deadline, for this node to have what the primary's failed body read,
/// so that the caller's next reads see why it failed. Nothing committed: a wait that ends first
/// changes nothing of the answer (the reads may then be older, as any read on a lagging node).
async fn catch_up_to_failure(node: &Node, pos: Option<Pos>, deadline: Instant) {
    let Some(pos) = pos else { return };
    if let Err(err) = node
        .follower
        .wait_for(pos, deadline.saturating_duration_since(Instant::now()))
        .await
    {
        tracing::debug!(%err, "a failed procedure's position did not reach this node in time");
    }
}

fn encoding<P: Procedure>(what: &str, err: bincode::Error) -> DbErr {
    DbErr::Custom(format!("the {what} of {} do not encode: {err}", P::NAME))
}
