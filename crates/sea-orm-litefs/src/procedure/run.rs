//! The primary's side: [`run`] runs a replica's procedure call in one local transaction (the one
//! writer held, as for any local transaction) that also stores the call's idempotency key with
//! its output, so the call commits at most once and a lost answer can be asked for.
//!
//! The body stops at the caller's deadline: a statement still running then is interrupted
//! ([`crate::writer::Alarm`]) and a body still awaiting anything is dropped, the transaction is
//! rolled back, and the caller is told [`Refusal::Expired`] (nothing committed), so a slow body
//! never holds the one writer past its caller's deadline. A call that fails because LiteFS moved
//! the lease away meanwhile (LiteFS refused its BEGIN, a statement or its COMMIT) committed
//! nothing: it is refused as [`Refusal::NotPrimary`], and the caller sends it, same key, to the
//! new primary.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, TransactionSession, Value};

use super::{ProcedureCall, ProcedureOutcome, Procedures, WireDbErr, WireFailure};
use crate::ClusterError;
use crate::connection::{Inner, litefs_refusal};
use crate::dedup::{self, Stored};
use crate::procedure::mount_lost;
use crate::rpc::Refusal;
use crate::transaction::ClusterTransaction;
use crate::wire::{DbFailure, Reply};
use crate::writer::Writer;

/// Old idempotency keys are deleted once every this many procedure calls.
const EXPIRE_EVERY: u64 = 100;

/// Runs `call` for a replica, at most once for `key`, stopping the body at `deadline`. A
/// [`Refusal`] means nothing committed; a failed body is an `Ok` outcome with its error.
/// `moved_away` says whether the lease has left this node, and where to (the refusal to answer).
pub(crate) async fn run(
    writer: &Arc<Writer>,
    procedures: &Procedures,
    key: u128,
    call: ProcedureCall,
    deadline: Instant,
    moved_away: impl Fn() -> Option<Refusal>,
) -> Result<ProcedureOutcome, Refusal> {
    let failed = |failure| ProcedureOutcome {
        result: Err(failure),
        pos: None,
    };
    let entry = match procedures.entries.get(call.name.as_str()) {
        None => {
            return Ok(failed(WireFailure::Unknown(format!(
                "the primary has no procedure named {:?} (it runs {:?})",
                call.name,
                procedures.names()
            ))));
        }
        Some(entry) if entry.fingerprint != call.fingerprint => {
            return Ok(failed(WireFailure::Unknown(format!(
                "the primary runs another version of {:?} (fingerprint {:016x}, the caller's {:016x})",
                call.name, entry.fingerprint, call.fingerprint
            ))));
        }
        Some(entry) => entry,
    };
    let cluster = Arc::new(Inner {
        writer: writer.clone(),
        node: None,
        timeout: deadline.saturating_duration_since(Instant::now()),
        rpc_addr: None,
    });
    // The key table is created once per generation of pools, not at every call.
    let generation = writer.databases.generation();
    let create = !writer.key_table_ready(generation);
    // Nothing ran if it cannot begin: on a node that is no longer primary, the caller goes on.
    let txn = ClusterTransaction::begin_local(cluster)
        .await
        .map_err(|err| moved_away().unwrap_or_else(|| refusal(err)))?;
    let expire = procedures
        .runs
        .fetch_add(1, Ordering::Relaxed)
        .is_multiple_of(EXPIRE_EVERY);
    match stored(&txn, key, expire, create).await {
        Ok(None) => {}
        Ok(Some(Stored::Reply(Reply::Output(output)))) => {
            end(txn).await;
            tracing::info!(procedure = %call.name, "a procedure call arrived again: answering its stored output");
            return Ok(ProcedureOutcome {
                result: Ok(output),
                pos: writer.pos(),
            });
        }
        Ok(Some(Stored::Reply(_))) => {
            end(txn).await;
            return Err(Refusal::Unavailable(
                "the call's key is stored with a statement's reply".into(),
            ));
        }
        Ok(Some(Stored::Tombstone)) => {
            end(txn).await;
            return Err(Refusal::Expired);
        }
        Err(err) => {
            end(txn).await;
            return Err(Refusal::Unavailable(format!(
                "cannot read the key table: {err}"
            )));
        }
    }
    txn.interrupt_at(deadline).await;
    let ran = tokio::time::timeout_at(deadline.into(), (entry.body)(&txn, call.args)).await;
    let output = match ran {
        Ok(Ok(output)) => output,
        Ok(Err(failure)) => {
            end(txn).await;
            return match failure {
                // Interrupted at the deadline (or failing past it): say so, not SQLite's words.
                WireFailure::Db(_) if Instant::now() >= deadline => {
                    tracing::warn!(procedure = %call.name, "a procedure ran past its deadline: interrupted and rolled back");
                    Err(Refusal::Expired)
                }
                failure => match moved(&failure, &moved_away) {
                    Some(refusal) => Err(refusal),
                    // The body decided on what this node had: the caller catches up to it
                    // before it answers, so a read that explains the error sees its cause.
                    None => Ok(ProcedureOutcome {
                        result: Err(failure),
                        pos: writer.pos(),
                    }),
                },
            };
        }
        Err(_elapsed) => {
            // The body is dropped where it waited; a statement it left running is interrupted
            // before the rollback, which SQLite runs after it.
            tracing::warn!(procedure = %call.name, "a procedure ran past its deadline: stopped and rolled back");
            txn.interrupt_now();
            end(txn).await;
            return Err(Refusal::Expired);
        }
    };
    txn.disarm();
    if let Err(err) = store(&txn, key, Reply::Output(output.clone())).await {
        end(txn).await;
        return Err(Refusal::Unavailable(format!(
            "cannot store the idempotency key: {err}"
        )));
    }
    // The last moment to give up: after COMMIT the call stands.
    if Instant::now() >= deadline {
        end(txn).await;
        return Err(Refusal::Expired);
    }
    // The position LiteFS confirmed right after this COMMIT (read once, by the commit itself).
    let (committed, written) = crate::track_writes(txn.commit()).await;
    Ok(match committed {
        Ok(()) => {
            if create {
                writer.mark_key_table_ready(generation);
            }
            ProcedureOutcome {
                result: Ok(output),
                pos: written.pos,
            }
        }
        // LiteFS did not confirm the COMMIT: it may stand or not. Answered "unknown" from here,
        // the caller would stop there; unanswered, it asks about the key once a primary can say,
        // as for a forwarded statement or a remote COMMIT.
        Err(err) if ClusterError::find(&err).is_some_and(ClusterError::outcome_unknown) => {
            return crate::server::withheld(&err.to_string());
        }
        Err(err) => {
            let failure = WireFailure::Db(WireDbErr::from_db_err(&err));
            return moved(&failure, &moved_away).map_or(Ok(failed(failure)), Err);
        }
    })
}

/// The refusal that sends the caller to the new primary, if `failure` is how a lease that left
/// this node ends a local transaction, with nothing committed: LiteFS refusing a write (SQLite's
/// I/O or read-only error), or LiteFS restarting under it (a static lease moves so), which
/// suspends the pools and then replaces them.
fn moved(failure: &WireFailure, moved_away: impl Fn() -> Option<Refusal>) -> Option<Refusal> {
    let lease_moved = match failure {
        WireFailure::Db(WireDbErr::Sql(DbFailure {
            sqlite: Some((code, _)),
            ..
        })) => litefs_refusal(*code),
        WireFailure::Db(WireDbErr::Cluster(err)) => mount_lost(err),
        _ => false,
    };
    let refusal = lease_moved.then(moved_away).flatten()?;
    tracing::warn!(
        ?refusal,
        "the lease left this node during a procedure: nothing committed, the caller goes on"
    );
    Some(refusal)
}

/// What is stored for `key`, in `txn` (with `create`, creating the key table first); with
/// `expire`, old keys are deleted first.
async fn stored(
    txn: &ClusterTransaction,
    key: u128,
    expire: bool,
    create: bool,
) -> Result<Option<Stored>, DbErr> {
    if create {
        txn.execute_unprepared(dedup::CREATE_TABLE).await?;
    }
    if expire {
        txn.execute_raw(statement(dedup::EXPIRE, [dedup::expiry_bound().into()]))
            .await?;
    }
    let row = txn
        .query_one_raw(statement(dedup::LOOKUP, [dedup::key_bytes(key).into()]))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let blob: Option<Vec<u8>> = row.try_get_by_index(0)?;
    dedup::decode(blob).map(Some).map_err(DbErr::Custom)
}

/// Stores `key` with `reply`, in `txn`.
async fn store(txn: &ClusterTransaction, key: u128, reply: Reply) -> Result<(), DbErr> {
    let blob = dedup::encode(Some(&reply)).map_err(DbErr::Custom)?;
    txn.execute_raw(statement(
        dedup::STORE,
        [dedup::key_bytes(key).into(), blob.into()],
    ))
    .await
    .map(drop)
}

fn statement<const N: usize>(sql: &str, values: [Value; N]) -> Statement {
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

/// Rolls `txn` back; nothing of it commits whatever happens (its connection is never returned
/// to the pool inside the transaction).
async fn end(txn: ClusterTransaction) {
    if let Err(err) = txn.rollback().await {
        tracing::warn!(%err, "rolling back a procedure failed");
    }
}

/// Why the transaction could not begin, as a refusal: nothing ran.
fn refusal(err: DbErr) -> Refusal {
    match ClusterError::find(&err) {
        Some(ClusterError::Busy { waited_ms }) => Refusal::Busy {
            waited_ms: *waited_ms,
        },
        _ => Refusal::Unavailable(format!("cannot begin: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use sea_orm::{ConnectionTrait, DbErr, RuntimeErr};

    use super::run;
    use crate::procedure::{
        Procedure, ProcedureCall, Procedures, WireDbErr, WireFailure, fingerprint,
    };
    use crate::rpc::Refusal;
    use crate::transaction::ClusterTransaction;
    use crate::writer::Writer;

    /// Inserts a row, then, if told that LiteFS refuses writes here, fails as a write does that
    /// LiteFS refused because the lease left the node: SQLite's I/O error (SQLITE_IOERR_WRITE),
    /// a genuine sqlx error as SeaORM carries it.
    struct InsertRow;

    impl Procedure for InsertRow {
        const NAME: &'static str = "insert_row";
        const VERSION: u32 = 1;
        type Args = bool;
        type Output = ();
        type Error = DbErr;

        async fn run(txn: &ClusterTransaction, refused: bool) -> Result<(), DbErr> {
            txn.execute_unprepared("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
                .await?;
            txn.execute_unprepared("INSERT INTO t VALUES (1)").await?;
            if refused {
                let scratch = crate::sqlite::Scratch::open().await.unwrap();
                let err = scratch.error(778, "disk I/O error").await;
                return Err(DbErr::Exec(RuntimeErr::SqlxError(Arc::new(err))));
            }
            Ok(())
        }
    }

    /// Inserts `n` rows one statement at a time: long enough for a deadline to fall inside it.
    struct ManyRows;

    impl Procedure for ManyRows {
        const NAME: &'static str = "many_rows";
        const VERSION: u32 = 1;
        type Args = u32;
        type Output = ();
        type Error = DbErr;

        async fn run(txn: &ClusterTransaction, n: u32) -> Result<(), DbErr> {
            txn.execute_unprepared("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
                .await?;
            for i in 0..n {
                txn.execute_unprepared(&format!("INSERT INTO t VALUES ({i})"))
                    .await?;
            }
            Ok(())
        }
    }

    /// A call stopped at its deadline wherever it is (between statements, inside one, before
    /// the first) is rolled back and leaves the writer usable: in the fault lab, a stop that
    /// raced its own interrupt left a connection inside its transaction, holding SQLite's write
    /// lock for good, and no write succeeded on the primary again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_stopped_at_its_deadline_never_leaves_the_database_locked() {
        let writer = Writer::on_temp_file("procedure-deadline", true);
        let procedures = Procedures::new().register::<ManyRows>();
        let many = ProcedureCall {
            name: ManyRows::NAME.into(),
            fingerprint: fingerprint::<ManyRows>(),
            args: bincode::serialize(&200u32).unwrap(),
        };
        for attempt in 0..60u64 {
            let deadline = Instant::now() + Duration::from_micros(attempt * 300);
            let outcome = run(
                &writer,
                &procedures,
                u128::from(attempt),
                many.clone(),
                deadline,
                || None,
            )
            .await;
            assert!(
                matches!(outcome, Err(Refusal::Expired) | Ok(_)),
                "attempt {attempt}: {outcome:?}"
            );
            let after = writer
                .autocommit(
                    crate::writer::Sql::Raw("CREATE TABLE IF NOT EXISTS u (x INTEGER)".into()),
                    crate::writer::Method::Execute,
                    None,
                    false,
                    Instant::now() + Duration::from_secs(3),
                )
                .await;
            assert!(
                matches!(after, Ok(crate::writer::Written::Fresh(Ok(_), _))),
                "attempt {attempt}: a write after a call stopped at its deadline: {:?}",
                after
                    .as_ref()
                    .map(|_| "not a fresh success")
                    .map_err(|e| e.clone())
            );
        }
    }

    fn call(refused: bool) -> ProcedureCall {
        ProcedureCall {
            name: InsertRow::NAME.into(),
            fingerprint: fingerprint::<InsertRow>(),
            args: bincode::serialize(&refused).unwrap(),
        }
    }

    /// A call that LiteFS refuses because the lease moved away meanwhile committed nothing: it is
    /// answered "not primary, ask node2" (which the caller's forwarder follows, same key), not as
    /// a failure; its key is not spent, so on the new primary it runs, and commits once. The same
    /// error while this node is still primary is the body's failure, as before.
    #[tokio::test]
    async fn a_call_refused_by_litefs_after_the_lease_moved_is_sent_on() {
        let writer = Writer::on_temp_file("procedure-moved", false);
        let procedures = Procedures::new().register::<InsertRow>();
        let deadline = || Instant::now() + Duration::from_secs(5);
        let node2 = || Refusal::NotPrimary {
            primary: Some("node2".into()),
        };
        let key = 7;

        let moved = run(&writer, &procedures, key, call(true), deadline(), || {
            Some(node2())
        })
        .await;
        assert_eq!(moved, Err(node2()));

        let here = run(&writer, &procedures, 8, call(true), deadline(), || None).await;
        let failure = here
            .expect("an answer")
            .result
            .expect_err("the body failed");
        assert!(
            matches!(failure, WireFailure::Db(WireDbErr::Sql(_))),
            "{failure:?}"
        );

        let resent = run(&writer, &procedures, key, call(false), deadline(), || None).await;
        assert!(resent.expect("an answer").result.is_ok());
        let (mut conn, _) = writer.connection().await.unwrap();
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(
            rows, 1,
            "only the call that ran where LiteFS took it committed"
        );
    }
}
