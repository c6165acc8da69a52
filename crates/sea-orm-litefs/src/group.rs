//! Group commit: the primary's autocommit writes share transactions, so that many writes cost one
//! commit (on LiteFS, one LTX file: the expensive part of a write).
//!
//! A write joins the writer's queue, then waits for its answer or for the writer's lock, whichever
//! comes first. The caller that gets the lock leads: it takes every write waiting (up to
//! [`MAX_BATCH_WRITES`] and [`MAX_BATCH_BYTES`]), runs them in one `BEGIN IMMEDIATE` transaction,
//! each in its own `SAVEPOINT`, COMMITs once, and answers each caller with its own result and the
//! shared position. Nothing waits for company: a lone write is a batch of one, run at once exactly
//! as without group commit. Transactions take the same lock, so they keep their place in the queue.
//!
//! Each member's result is what it would be alone:
//! - its answer (`rows_affected`, `last_insert_rowid`, RETURNING rows) is read by sqlx right after
//!   its statement, on the one connection, before the next member runs;
//! - a member that fails is rolled back to its savepoint and gets its own error; the others go on;
//! - a member that ends the whole transaction (`RAISE(ROLLBACK)`, `INSERT OR ROLLBACK`, an
//!   interrupt at its deadline: SQLite then leaves the transaction) gets its error, and the members
//!   that were rolled back with it run again in a new transaction: none is lost or run twice;
//! - a member whose deadline passes before COMMIT is answered [`Refusal::Expired`] and never
//!   commits (the transaction is rolled back and the others run again);
//! - when BEGIN or COMMIT itself fails, nothing committed (as for a write alone), and each member
//!   runs again alone, so that each gets its own answer;
//! - a member that leaves a deferred foreign key violation, or SQLite's count of them below zero
//!   (which SQLite checks at COMMIT only, so a later neighbour could cancel it), is rolled back to
//!   its savepoint and runs in a transaction of its own, after the members before it commit and
//!   before those after it.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Instant;

use sqlx::{Executor as _, SqliteConnection};
use tokio::sync::oneshot;

use super::rpc::Refusal;
use super::writer::{
    Alarm, Commit, Method, Native, Sql, WriterGuard, Written, in_transaction, rollback,
};
use super::writer::{Writer, release, run_native};
use super::{dedup, metrics};

/// Most writes in one transaction. Past 64 single-row inserts per commit the gain flattens (the
/// commit is no longer the cost) while a failure's rerun grows.
pub const MAX_BATCH_WRITES: usize = 128;
/// Most SQL and parameter bytes in one transaction, so that one batch stays a small LTX file.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// One autocommit write waiting in the queue, with the way back to its caller.
pub struct Job {
    pub id: u64,
    pub sql: Sql,
    pub method: Method,
    pub key: Option<u128>,
    pub deadline: Instant,
    pub enqueued: Instant,
    /// Bytes of SQL and parameters, for [`MAX_BATCH_BYTES`].
    pub weight: usize,
    /// It ended a transaction after neighbours' writes: it runs next at the head of a
    /// transaction, once they have committed, so that it is answered against committed state.
    pub lead: bool,
    /// It left a deferred foreign key unresolved in a batch: it runs in a transaction of its own,
    /// so that COMMIT judges it alone, as it would without group commit.
    pub alone: bool,
    pub reply: oneshot::Sender<Result<Written, Refusal>>,
}

impl Job {
    fn answer(self, result: Result<Written, Refusal>) {
        // The caller never goes away first: it runs in its own task and withdraws only a job
        // still queued.
        let _ = self.reply.send(result);
    }

    fn expired(&self, now: Instant) -> bool {
        now >= self.deadline
    }
}

/// Bytes of SQL text and parameter values of a write (fixed-size values count 8).
pub fn weight(sql: &Sql) -> usize {
    let params = match sql {
        Sql::Sea(stmt) => stmt.values.as_ref().map_or(0, |values| {
            values
                .0
                .iter()
                .map(|v| match v {
                    sea_orm::Value::String(Some(s)) => s.len(),
                    sea_orm::Value::Bytes(Some(b)) => b.len(),
                    _ => 8,
                })
                .sum()
        }),
        Sql::Wire(stmt) => stmt
            .params
            .iter()
            .map(|v| match v {
                super::wire::Value::Text(s) => s.len(),
                super::wire::Value::Blob(b) => b.len(),
                _ => 8,
            })
            .sum(),
        Sql::Raw(_) => 0,
    };
    sql.text().len() + params
}

/// What became of one member inside the shared transaction.
enum Step {
    /// It ran and its work is in the transaction, waiting for COMMIT.
    Ran(Native),
    /// It is settled without anything of it in the transaction (failed and rolled back to its
    /// savepoint, or its key had committed before): answer it now.
    Settled(Result<Written, Refusal>),
    /// It ended the whole transaction: answer it with this, and run the others again.
    Ended(Result<Written, Refusal>),
    /// It left SQLite's deferred foreign key count other than zero (a violation, or a count below
    /// zero; SQLite checks it at COMMIT only, so in a batch a later neighbour could cancel it):
    /// it was rolled back to its savepoint and runs again in a transaction of its own, after the
    /// members before it commit.
    Alone,
}

/// Whether `result` is SQLite's interrupt, which a statement gets at its own deadline.
fn is_interrupt(result: &Result<Written, Refusal>) -> bool {
    let Ok(Written::Fresh(Err(err), _)) = result else {
        return false;
    };
    err.as_database_error()
        .and_then(|e| e.code())
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| c & 0xff == libsqlite3_sys::SQLITE_INTERRUPT)
}

/// Whether `result` is a statement's own error, which may depend on what ran before it.
fn is_statement_error(result: &Result<Written, Refusal>) -> bool {
    matches!(result, Ok(Written::Fresh(Err(_), _)))
}

/// Whether SQLite's deferred foreign key count of the open transaction is above zero
/// (`SQLITE_DBSTATUS_DEFERRED_FKS`, which says no more than that). When SQLite cannot say: yes.
async fn deferred_foreign_keys_above_zero(conn: &mut SqliteConnection) -> bool {
    let Ok(mut handle) = conn.lock_handle().await else {
        return true;
    };
    let (mut current, mut highest) = (0, 0);
    // SAFETY: the handle is locked for this call; both out-pointers are valid.
    let rc = unsafe {
        libsqlite3_sys::sqlite3_db_status(
            handle.as_raw_handle().as_ptr(),
            libsqlite3_sys::SQLITE_DBSTATUS_DEFERRED_FKS,
            &mut current,
            &mut highest,
            0,
        )
    };
    rc != libsqlite3_sys::SQLITE_OK || current != 0
}

/// Whether the open transaction's deferred foreign key count is anything but zero: COMMIT
/// refuses a transaction unless it is exactly zero. Each member starts at zero (every member
/// before it was checked), so a count found after a member is its own. The count can also end
/// below zero (a write that resolves rows left without a parent before it began, and SQLite
/// counts some self-referencing `ON DELETE SET NULL` writes so): the status does not show that,
/// so one violation is added on a probe table and rolled back at once; the count is zero if and
/// only if it is then above zero. When SQLite cannot say: yes (the member then runs alone,
/// which is always correct).
async fn unresolved_deferred_foreign_keys(conn: &mut SqliteConnection) -> bool {
    if !foreign_keys_enforced(conn).await {
        // No count moves (and the setting cannot change inside the transaction).
        return false;
    }
    if deferred_foreign_keys_above_zero(conn).await {
        return true;
    }
    // The probe's insert must not become the connection's last_insert_rowid, which the next
    // member's UPDATE reports as it would alone.
    let rowid = last_insert_rowid(conn, None).await;
    let probe = async {
        for table in PROBE_TABLES {
            conn.execute(table).await?;
        }
        conn.execute(PROBE_SAVEPOINT).await?;
        conn.execute(PROBE_VIOLATION).await?;
        let zero_before = deferred_foreign_keys_above_zero(conn).await;
        conn.execute(PROBE_ROLLBACK_TO).await?;
        conn.execute(PROBE_RELEASE).await?;
        Ok::<_, sqlx::Error>(zero_before)
    };
    // After an error the member's own ROLLBACK TO takes the probe's savepoint with it.
    let unresolved = !probe.await.unwrap_or(false);
    last_insert_rowid(conn, rowid).await;
    unresolved
}

/// Whether SQLite's deferred foreign key count can move in the open transaction: only if a table
/// of the database declares a key `INITIALLY DEFERRED` (its SQL names deferral, which may also be
/// a comment: then the check merely runs), or `PRAGMA defer_foreign_keys` defers them all (a
/// caller's connect options may set it; SQLite clears it at each transaction's end). Otherwise
/// the count stays zero and no member needs checking. When SQLite cannot say: yes.
async fn may_defer_foreign_keys(conn: &mut SqliteConnection) -> bool {
    sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM main.sqlite_schema WHERE sql LIKE '%deferred%') \
         OR (SELECT defer_foreign_keys FROM pragma_defer_foreign_keys())",
    )
    .fetch_one(conn)
    .await
    .unwrap_or(true)
}

/// Whether `sql` names deferral (case-insensitive): it may create a deferred key.
fn names_deferral(sql: &str) -> bool {
    sql.to_ascii_lowercase().contains("deferred")
}

/// Whether the connection enforces foreign keys (`PRAGMA foreign_keys`; the builder turns them
/// on, a caller's own connect options may not). When SQLite cannot say: yes.
async fn foreign_keys_enforced(conn: &mut SqliteConnection) -> bool {
    let Ok(mut handle) = conn.lock_handle().await else {
        return true;
    };
    // SQLITE_DBCONFIG_ENABLE_FKEY takes an int (-1: leave the setting as it is) and a pointer
    // to an int for the current setting.
    let (keep, mut enforced): (std::ffi::c_int, std::ffi::c_int) = (-1, 1);
    // SAFETY: the handle is locked for this call; the arguments are as described above.
    let rc = unsafe {
        libsqlite3_sys::sqlite3_db_config(
            handle.as_raw_handle().as_ptr(),
            libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_FKEY,
            keep,
            &raw mut enforced,
        )
    };
    rc != libsqlite3_sys::SQLITE_OK || enforced != 0
}

/// The connection's `last_insert_rowid`, after setting it to `set` if given.
async fn last_insert_rowid(conn: &mut SqliteConnection, set: Option<i64>) -> Option<i64> {
    let mut handle = conn.lock_handle().await.ok()?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: the handle is locked for this call.
    unsafe {
        if let Some(rowid) = set {
            libsqlite3_sys::sqlite3_set_last_insert_rowid(db, rowid);
        }
        Some(libsqlite3_sys::sqlite3_last_insert_rowid(db))
    }
}

/// Tables of the connection's own temporary schema (never in the database file, never
/// replicated) that make one deferred foreign key violation on demand: the probe's row has no
/// parent, and both stay empty outside the probe.
const PROBE_TABLES: [&str; 2] = [
    "CREATE TEMP TABLE IF NOT EXISTS _litefs_group_probe_parent(id INTEGER PRIMARY KEY)",
    "CREATE TEMP TABLE IF NOT EXISTS _litefs_group_probe(parent INTEGER \
     REFERENCES _litefs_group_probe_parent(id) DEFERRABLE INITIALLY DEFERRED)",
];
const PROBE_SAVEPOINT: &str = "SAVEPOINT litefs_group_probe";
const PROBE_VIOLATION: &str = "INSERT INTO temp._litefs_group_probe(parent) VALUES (1)";
const PROBE_ROLLBACK_TO: &str = "ROLLBACK TO litefs_group_probe";
const PROBE_RELEASE: &str = "RELEASE litefs_group_probe";

const SAVEPOINT: &str = "SAVEPOINT litefs_group_write";
const ROLLBACK_TO: &str = "ROLLBACK TO litefs_group_write";
const RELEASE: &str = "RELEASE litefs_group_write";

impl Writer {
    /// Queues an autocommit write and waits for its answer, leading a batch whenever this caller
    /// gets the writer's lock first (see the module docs).
    pub(crate) async fn group_write(
        &self,
        sql: Sql,
        method: Method,
        key: Option<u128>,
        deadline: Instant,
    ) -> Result<Written, Refusal> {
        let started = Instant::now();
        let (reply, mut answer) = oneshot::channel();
        let id = self.enqueue(Job {
            id: 0,
            weight: weight(&sql),
            sql,
            method,
            key,
            deadline,
            enqueued: started,
            lead: false,
            alone: false,
            reply,
        })?;
        let lost = |_| {
            Err(Refusal::Unavailable(
                "the writer failed before answering".into(),
            ))
        };
        loop {
            tokio::select! {
                biased;
                result = &mut answer => return result.unwrap_or_else(lost),
                guard = tokio::time::timeout_at(deadline.into(), self.lock.clone().lock_owned()) => {
                    match guard {
                        Ok(guard) => self.lead(guard).await,
                        Err(_) if self.withdraw(id) => {
                            metrics::writer_wait(started.elapsed());
                            return Err(Refusal::Busy {
                                waited_ms: started.elapsed().as_millis() as u64,
                            });
                        }
                        // Taken into a batch already: its leader answers, whatever the deadline.
                        Err(_) => return answer.await.unwrap_or_else(lost),
                    }
                }
            }
        }
    }

    /// Adds `job` to the queue, or refuses it as busy when the queue is full; returns its id.
    fn enqueue(&self, mut job: Job) -> Result<u64, Refusal> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            // Another caller may have published the count with this one in it meanwhile.
            self.publish_queue_depth();
            return Err(Refusal::Busy { waited_ms: 0 });
        }
        job.id = self.next_job.fetch_add(1, Ordering::Relaxed);
        let id = job.id;
        let mut queue = self.queue.lock().unwrap();
        queue.push_back(job);
        self.publish_queue_depth();
        drop(queue);
        Ok(id)
    }

    /// Takes job `id` out of the queue if it is still there (nothing of it ran).
    fn withdraw(&self, id: u64) -> bool {
        let mut queue = self.queue.lock().unwrap();
        let Some(at) = queue.iter().position(|job| job.id == id) else {
            return false;
        };
        queue.remove(at);
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        self.publish_queue_depth();
        true
    }

    /// Writes queued right now (not yet taken into a batch).
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.queue.lock().unwrap().len()
    }

    /// The writes waiting, oldest first, up to the batch bounds.
    fn take_batch(&self) -> Vec<Job> {
        let mut queue = self.queue.lock().unwrap();
        let (mut batch, mut bytes) = (Vec::new(), 0);
        while let Some(job) = queue.front() {
            let full = batch.len() >= MAX_BATCH_WRITES || bytes + job.weight > MAX_BATCH_BYTES;
            if full && !batch.is_empty() {
                break;
            }
            bytes += job.weight;
            batch.extend(queue.pop_front());
        }
        self.waiting.fetch_sub(batch.len(), Ordering::AcqRel);
        self.publish_queue_depth();
        batch
    }

    /// Runs one batch of whatever is waiting, holding the writer's lock.
    async fn lead(&self, guard: WriterGuard) {
        let batch = self.take_batch();
        if batch.is_empty() {
            return;
        }
        for job in &batch {
            metrics::writer_wait(job.enqueued.elapsed());
        }
        metrics::writer_batch(batch.len());
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batched_writes
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.run_batch(batch).await;
        drop(guard);
    }

    async fn run_batch(&self, jobs: Vec<Job>) {
        let (mut conn, generation) = match self.connection().await {
            Ok(found) => found,
            Err(refusal) => {
                return jobs
                    .into_iter()
                    .for_each(|j| j.answer(Err(refusal.clone())));
            }
        };
        if jobs.iter().any(|job| job.key.is_some())
            && let Err(refusal) = self.ensure_key_table(&mut conn, generation).await
        {
            release(conn).await;
            return jobs
                .into_iter()
                .for_each(|j| j.answer(Err(refusal.clone())));
        }
        let mut pending = jobs;
        while !pending.is_empty() {
            let mut rerun = self.one_transaction(&mut conn, pending).await;
            // Writes run again in queue order, whichever path set them aside.
            rerun.sort_by_key(|job| job.id);
            if !rerun.is_empty() {
                metrics::writer_batch_rerun(rerun.len());
            }
            pending = rerun;
        }
        release(conn).await;
    }

    /// Runs `jobs` in one transaction and answers them; returns those to run again.
    async fn one_transaction(&self, conn: &mut SqliteConnection, jobs: Vec<Job>) -> Vec<Job> {
        let now = Instant::now();
        let (mut members, mut rerun, mut keys) = (Vec::new(), Vec::new(), HashSet::new());
        let mut jobs = jobs.into_iter();
        while let Some(job) = jobs.next() {
            if job.expired(now) {
                job.answer(Err(Refusal::Expired));
            } else if job.alone && members.is_empty() {
                let result = self
                    .in_transaction(conn, &job.sql, job.method, job.key, job.deadline)
                    .await;
                job.answer(result);
            } else if (job.lead || job.alone) && !members.is_empty() {
                // It waits for the members before it to commit: the next transaction.
                rerun.push(job);
                rerun.extend(jobs);
                break;
            } else if job.key.is_some_and(|key| !keys.insert(key)) {
                // The same key twice (a retry racing its first attempt): the second must see the
                // first committed, not merely stored in this open transaction.
                rerun.push(job);
            } else {
                members.push(job);
            }
        }
        if members.len() == 1 {
            let job = members.pop().expect("one member");
            let result = self
                .in_transaction(conn, &job.sql, job.method, job.key, job.deadline)
                .await;
            job.answer(result);
            return rerun;
        }
        if members.is_empty() {
            return rerun;
        }
        if conn.execute("BEGIN IMMEDIATE").await.is_err() {
            self.each_alone(conn, members).await;
            return rerun;
        }
        // Whether SQLite's deferred foreign key count can move in this batch (see
        // [`may_defer_foreign_keys`]); a member whose SQL names deferral turns it on for itself and
        // those after it (it may create such a key).
        let mut may_defer = may_defer_foreign_keys(conn).await;
        let mut ran = Vec::with_capacity(members.len());
        // Statement errors met after a neighbour's write: they may depend on that write, so they
        // are answered only once it has committed (else the member runs again).
        let mut held: Vec<(Job, Result<Written, Refusal>)> = Vec::new();
        let mut members = members.into_iter();
        while let Some(job) = members.next() {
            may_defer = may_defer || names_deferral(job.sql.text());
            match self.member(conn, &job, may_defer).await {
                Step::Ran(native) => ran.push((job, native)),
                Step::Settled(result) if !ran.is_empty() && is_statement_error(&result) => {
                    held.push((job, result));
                }
                Step::Settled(result) => job.answer(result),
                Step::Alone => {
                    // It runs next, alone; the members after it wait for it (queue order).
                    rerun.push(Job { alone: true, ..job });
                    rerun.extend(members.by_ref());
                    break;
                }
                Step::Ended(result) => {
                    rollback(conn).await;
                    let mut again: Vec<Job> = ran.into_iter().map(|(job, _)| job).collect();
                    again.extend(held.into_iter().map(|(job, _)| job));
                    again.sort_by_key(|job| job.id);
                    if again.is_empty() {
                        // It saw only committed state: its error is the one it gets alone.
                        job.answer(result);
                        rerun.extend(members);
                    } else if job.expired(Instant::now()) {
                        // Past its deadline it never commits. Stopped there, the interrupt is
                        // its own error; any other may have come from a neighbour's write.
                        if is_interrupt(&result) {
                            job.answer(result);
                        } else {
                            job.answer(Err(Refusal::Expired));
                        }
                        rerun.extend(again);
                        rerun.extend(members);
                    } else {
                        // It may have ended on a neighbour's write: the neighbours before it
                        // run again and commit, then it runs, still after them in queue order.
                        rerun.extend(again);
                        rerun.push(Job { lead: true, ..job });
                        rerun.extend(members);
                    }
                    return rerun;
                }
            }
        }
        if ran.is_empty() {
            // Nothing of the batch is in the transaction (held errors need a write before them).
            rollback(conn).await;
            return rerun;
        }
        let held_jobs = |held: Vec<(Job, _)>| held.into_iter().map(|(job, _)| job);
        // The last moment to give up on a member: after COMMIT it stands.
        let now = Instant::now();
        if ran.iter().any(|(job, _)| job.expired(now)) {
            rollback(conn).await;
            let mut again = Vec::new();
            for (job, _) in ran {
                if job.expired(now) {
                    job.answer(Err(Refusal::Expired));
                } else {
                    again.push(job);
                }
            }
            again.extend(held_jobs(held));
            again.sort_by_key(|job| job.id);
            rerun.extend(again);
            return rerun;
        }
        match self.commit(conn).await {
            Commit::Done(pos) => {
                for (job, native) in ran {
                    job.answer(Ok(Written::Fresh(Ok(native), pos)));
                }
                for (job, result) in held {
                    job.answer(result);
                }
            }
            Commit::Failed(_) => {
                rollback(conn).await;
                let mut alone: Vec<Job> = ran.into_iter().map(|(job, _)| job).collect();
                alone.extend(held_jobs(held));
                alone.sort_by_key(|job| job.id);
                self.each_alone(conn, alone).await;
            }
            // The whole batch stands or falls with the one commit LiteFS did not confirm. The
            // held writes did not commit either way, but their errors may come from neighbours'
            // writes that may not stand: they fail as unavailable, without a reason that may be
            // false.
            Commit::Unconfirmed(why) => {
                for (job, _) in ran {
                    job.answer(Ok(Written::Unconfirmed(why.clone())));
                }
                for (job, _) in held {
                    job.answer(Err(Refusal::Unavailable(format!(
                        "this write did not commit, but its error came from writes whose outcome \
                         is unknown ({why}): try it again"
                    ))));
                }
            }
        }
        rerun
    }

    /// Runs one member inside the open transaction, in its own savepoint.
    async fn member(&self, conn: &mut SqliteConnection, job: &Job, may_defer: bool) -> Step {
        let unavailable = |what: &str, e: sqlx::Error| Refusal::Unavailable(format!("{what}: {e}"));
        if let Err(e) = conn.execute(SAVEPOINT).await {
            return Step::Ended(Err(unavailable("cannot open a savepoint", e)));
        }
        if let Some(key) = job.key {
            let settled = match dedup::lookup(conn, key).await {
                Ok(None) => None,
                Ok(Some(dedup::Stored::Reply(reply))) => {
                    tracing::info!("a keyed write arrived again: answering its stored reply");
                    Some(Ok(Written::Stored(reply, self.pos())))
                }
                Ok(Some(dedup::Stored::Tombstone)) => Some(Err(Refusal::Expired)),
                Err(e) => Some(Err(unavailable("cannot read the key table", e))),
            };
            if let Some(result) = settled {
                return self.undo_member(conn, result).await;
            }
        }
        let alarm = Alarm::set(conn, job.deadline).await;
        let native = run_native(conn, &job.sql, job.method).await;
        alarm.unset();
        let native = match native {
            Ok(native) => native,
            Err(err) => {
                self.repair_after(conn, &err).await;
                return self
                    .undo_member(conn, Ok(Written::Fresh(Err(err), None)))
                    .await;
            }
        };
        if may_defer && unresolved_deferred_foreign_keys(conn).await {
            let refusal = Refusal::Unavailable(
                "a write left a deferred foreign key unresolved and could not be set aside".into(),
            );
            return match self.undo_member(conn, Err(refusal)).await {
                Step::Settled(_) => Step::Alone,
                // The transaction is gone with it: the others run again, and so does it.
                ended => ended,
            };
        }
        if let Some(key) = job.key
            && let Err(e) = self.store_key(conn, key, &native).await
        {
            let refusal = unavailable("cannot store the idempotency key", e);
            return self.undo_member(conn, Err(refusal)).await;
        }
        if !in_transaction(conn).await {
            // Cannot happen for what the classifier lets through (transaction control is
            // refused); if it did, what the member did is unknown to us: say so.
            return Step::Ended(Err(Refusal::Unavailable(
                "a write ended the shared transaction while succeeding".into(),
            )));
        }
        match conn.execute(RELEASE).await {
            Ok(_) => Step::Ran(native),
            Err(e) => Step::Ended(Err(unavailable("cannot release a savepoint", e))),
        }
    }

    /// Undoes a member that is settled with `result`: back to its savepoint, which is released.
    /// When the transaction is gone (the member ended it), the others must run again.
    async fn undo_member(
        &self,
        conn: &mut SqliteConnection,
        result: Result<Written, Refusal>,
    ) -> Step {
        if !in_transaction(conn).await {
            return Step::Ended(result);
        }
        let undone = match conn.execute(ROLLBACK_TO).await {
            Ok(_) => conn.execute(RELEASE).await,
            Err(e) => Err(e),
        };
        match undone {
            Ok(_) => Step::Settled(result),
            Err(_) => Step::Ended(result),
        }
    }

    /// Runs each job in its own transaction, as without group commit.
    async fn each_alone(&self, conn: &mut SqliteConnection, jobs: Vec<Job>) {
        for job in jobs {
            let result = if job.expired(Instant::now()) {
                Err(Refusal::Expired)
            } else {
                self.in_transaction(conn, &job.sql, job.method, job.key, job.deadline)
                    .await
            };
            job.answer(result);
        }
    }
}

#[cfg(test)]
mod tests;
