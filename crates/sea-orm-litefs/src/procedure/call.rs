//! The caller's side: [`call`] runs a procedure here on the primary, or sends it there in one RPC
//! from a replica, and falls back to an interactive remote transaction when the primary does not
//! know this version of it.

use std::time::Instant;

use sea_orm::{DbErr, TransactionSession, TransactionTrait};

use super::{Procedure, ProcedureCall, ProcedureError, ProcedureOutcome, WireFailure, fingerprint};
use crate::client::CallError;
use crate::connection::{Node, idempotency_key, resolve, settle};
use crate::wire::{ErrorPhase, Outcome, Reply};
use crate::{ClusterConnection, metrics};

/// Runs `P` with `args` in one transaction, wherever this node stands (see the module docs).
pub(crate) async fn call<P: Procedure>(
    db: &ClusterConnection,
    args: P::Args,
) -> Result<P::Output, P::Error> {
    match &db.inner.node {
        Some(node) if !db.role().writes_locally() => forward::<P>(db, node, args).await,
        _ => in_transaction::<P>(db, args).await,
    }
}

/// The body in a transaction of `db`: local on the primary, a remote session on a replica.
async fn in_transaction<P: Procedure>(
    db: &ClusterConnection,
    args: P::Args,
) -> Result<P::Output, P::Error> {
    let txn = db.begin().await?;
    match P::run(&txn, args).await {
        Ok(output) => {
            txn.commit().await?;
            Ok(output)
        }
        Err(err) => {
            // The body's error is the answer; a rollback that fails still commits nothing.
            if let Err(rollback) = txn.rollback().await {
                tracing::warn!(procedure = P::NAME, %rollback, "rolling back a failed procedure failed");
            }
            Err(err)
        }
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
        .call(deadline, None, |client, ctx| {
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
                return in_transaction::<P>(db, args).await;
            }
            Err(WireFailure::App(bytes)) => {
                let app = bincode::deserialize(&bytes).map_err(|e| encoding::<P>("error", e))?;
                return Err(P::Error::from_app(app));
            }
            Err(WireFailure::Db(err)) => return Err(err.rebuild(node).await.into()),
        },
        Err(CallError::Failed(err)) => return Err(err.into_db_err().into()),
        Err(CallError::Lost { addr, reason }) => resolve(node, key, addr, reason).await?,
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

fn encoding<P: Procedure>(what: &str, err: bincode::Error) -> DbErr {
    DbErr::Custom(format!("the {what} of {} do not encode: {err}", P::NAME))
}
