//! The primary's one writer. Every write on the primary — its own autocommit statements, forwarded
//! ones, local transactions and remote transaction sessions — first takes one FIFO lock, so writers
//! queue in arrival order instead of spinning in SQLite's busy handler, and a caller whose deadline
//! passes while queued is told "busy" with nothing run. Reads never take it: they use the read pool.
//!
//! An autocommit write runs as `BEGIN IMMEDIATE; <sql>; [store key]; COMMIT`, so a string of several
//! statements commits together or not at all, its idempotency key commits with it, and the write
//! can still be rolled back when the caller's deadline has passed before COMMIT. The connection is
//! checked before it goes back to the pool: it is never returned inside a transaction.
//!
//! With group commit on (the default), autocommit writes waiting together share one such
//! transaction, each in its own savepoint: see `group`. Off, each write is its own transaction.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteArguments, SqliteQueryResult, SqliteRow};
use sqlx::{AssertSqlSafe, Executor as _, Sqlite, SqliteConnection};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::dedup::{self, Stored};
use super::group::Job;
use super::litefs::Follower;
use super::pools::Databases;
use super::rpc::{Refusal, Resolution};
use super::wire::{self, Outcome, Pos, Reply, Value};

/// Old idempotency keys are deleted once every this many keyed writes.
const EXPIRE_EVERY: u64 = 100;

/// SQL to run, in whichever form it came.
#[derive(Clone, Debug)]
pub enum Sql {
    /// From SeaORM on this node: sea-query values, bound as sqlx binds them.
    Sea(sea_orm::Statement),
    /// From a replica: values already reduced to SQLite storage classes.
    Wire(wire::Statement),
    /// `execute_unprepared`: raw SQL, possibly several statements, no parameters.
    Raw(String),
}

impl Sql {
    pub fn text(&self) -> &str {
        match self {
            Sql::Sea(stmt) => &stmt.sql,
            Sql::Wire(stmt) => &stmt.sql,
            Sql::Raw(sql) => sql,
        }
    }
}

/// How the caller wants the answer, as SeaORM's four methods do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Execute,
    QueryOne,
    QueryAll,
}

/// A statement's answer as sqlx gives it, before it becomes SeaORM's or the wire's.
pub enum Native {
    Exec(SqliteQueryResult),
    Row(Option<SqliteRow>),
    Rows(Vec<SqliteRow>),
}

impl Native {
    pub fn to_reply(&self) -> Result<Reply, sqlx::Error> {
        Ok(match self {
            Native::Exec(r) => Reply::Exec {
                rows_affected: r.rows_affected(),
                last_insert_rowid: r.last_insert_rowid(),
            },
            Native::Row(row) => Reply::Rows(wire::rows_from_sqlx(row.as_slice())?),
            Native::Rows(rows) => Reply::Rows(wire::rows_from_sqlx(rows)?),
        })
    }
}

/// Runs `sql` on `conn` the way SeaORM runs it on a pool connection.
pub async fn run_native(
    conn: &mut SqliteConnection,
    sql: &Sql,
    method: Method,
) -> Result<Native, sqlx::Error> {
    if let Sql::Raw(text) = sql {
        return conn
            .execute(AssertSqlSafe(text.clone()))
            .await
            .map(Native::Exec);
    }
    macro_rules! with_query {
        ($query:expr) => {{
            let query = $query;
            match method {
                Method::Execute => query.execute(&mut *conn).await.map(Native::Exec),
                Method::QueryOne => match query.fetch_one(&mut *conn).await {
                    Ok(row) => Ok(Native::Row(Some(row))),
                    Err(sqlx::Error::RowNotFound) => Ok(Native::Row(None)),
                    Err(err) => Err(err),
                },
                Method::QueryAll => query.fetch_all(&mut *conn).await.map(Native::Rows),
            }
        }};
    }
    match sql {
        Sql::Sea(stmt) => {
            let values = stmt.values.clone().unwrap_or(sea_orm::Values(Vec::new()));
            with_query!(sqlx::query_with(
                AssertSqlSafe(stmt.sql.as_str()),
                sea_query_sqlx::SqlxValues(values)
            ))
        }
        Sql::Wire(stmt) => with_query!(bind(stmt)),
        Sql::Raw(_) => unreachable!("handled above"),
    }
}

fn bind(stmt: &wire::Statement) -> sqlx::query::Query<'_, Sqlite, SqliteArguments> {
    let mut query = sqlx::query(AssertSqlSafe(stmt.sql.as_str()));
    for value in &stmt.params {
        query = match value {
            Value::Null => query.bind(None::<i64>),
            Value::Integer(i) => query.bind(*i),
            Value::Real(f) => query.bind(*f),
            Value::Text(s) => query.bind(s.as_str()),
            Value::Blob(b) => query.bind(b.as_slice()),
        };
    }
    query
}

/// What an autocommit write came to.
pub enum Written {
    /// It ran now: its answer (an `Err` committed nothing) and, when it committed, the position.
    Fresh(Result<Native, sqlx::Error>, Option<Pos>),
    /// Its key had committed before: the stored reply.
    Stored(Reply, Option<Pos>),
    /// SQLite's COMMIT returned, but LiteFS stopped before it said it recorded the transaction
    /// (see [`Commit::Unconfirmed`]): it may or may not stand.
    Unconfirmed(String),
}

/// What a COMMIT came to on this node (see [`Writer::commit`]).
pub enum Commit {
    /// Committed; with LiteFS, recorded at this position (it includes the commit).
    Done(Option<Pos>),
    /// SQLite refused it: nothing committed.
    Failed(sqlx::Error),
    /// SQLite says committed, LiteFS did not confirm it: the outcome is unknown until LiteFS is
    /// back (a keyed write can then be resolved by its key).
    Unconfirmed(String),
}

/// The one writer of a primary (see the module docs). Shared by the connection and the RPC server.
pub struct Writer {
    pub(crate) lock: Arc<Mutex<()>>,
    /// Callers queued for the lock or in the group-commit queue, bounded by `max_waiting`.
    pub(crate) waiting: AtomicUsize,
    /// `waiting` as last published (see [`Writer::publish_queue_depth`]), to wait on.
    depth: tokio::sync::watch::Sender<usize>,
    pub(crate) max_waiting: usize,
    /// Whether autocommit writes waiting together share a transaction (see `group`).
    group_commit: bool,
    /// Autocommit writes waiting for a batch, oldest first.
    pub(crate) queue: std::sync::Mutex<VecDeque<Job>>,
    pub(crate) next_job: AtomicU64,
    /// Batches run so far, and the writes in them: what a batch holds, for tests and metrics.
    pub(crate) batches: AtomicU64,
    pub(crate) batched_writes: AtomicU64,
    pub databases: Arc<Databases>,
    /// `None` on a standalone node: no positions.
    follower: Option<Arc<Follower>>,
    /// Pools generation + 1 for which the key table is known to exist.
    keys_ready: AtomicU64,
    /// Keyed writes so far, to expire old keys every [`EXPIRE_EVERY`].
    keyed_writes: AtomicU64,
}

/// The writer's lock, held by a write, a local transaction or a remote session.
pub type WriterGuard = OwnedMutexGuard<()>;

impl Writer {
    pub fn new(
        databases: Arc<Databases>,
        follower: Option<Arc<Follower>>,
        max_waiting: usize,
        group_commit: bool,
    ) -> Self {
        Writer {
            lock: Arc::new(Mutex::new(())),
            waiting: AtomicUsize::new(0),
            depth: tokio::sync::watch::Sender::new(0),
            max_waiting,
            group_commit,
            queue: std::sync::Mutex::new(VecDeque::new()),
            next_job: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            batched_writes: AtomicU64::new(0),
            databases,
            follower,
            keys_ready: AtomicU64::new(0),
            keyed_writes: AtomicU64::new(0),
        }
    }

    /// A standalone writer on a fresh SQLite file in the temporary directory (unit tests).
    #[cfg(test)]
    pub fn on_temp_file(name: &str, group_commit: bool) -> Arc<Writer> {
        Self::on_temp_dir(name, group_commit, false)
    }

    /// The same, as if in a LiteFS mount whose LiteFS has stopped: it never answers for a
    /// position (there is no `-pos` file), so no commit is confirmed (unit tests).
    #[cfg(test)]
    pub fn on_temp_file_litefs_gone(name: &str, group_commit: bool) -> Arc<Writer> {
        Self::on_temp_dir(name, group_commit, true)
    }

    #[cfg(test)]
    fn on_temp_dir(name: &str, group_commit: bool, litefs_gone: bool) -> Arc<Writer> {
        let (dir, options) = temp_database(name);
        let databases = Arc::new(Databases::open(&dir.join("t.db"), options));
        let follower = litefs_gone.then(|| {
            Arc::new(Follower::new(crate::litefs::Mount {
                dir,
                db_name: "t.db".into(),
            }))
        });
        Arc::new(Writer::new(databases, follower, 1024, group_commit))
    }

    /// Takes the writer's lock in arrival order, or says "busy" when `deadline` passes first.
    pub async fn acquire(&self, deadline: Instant) -> Result<WriterGuard, Refusal> {
        let started = Instant::now();
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            // Another caller may have published the count with this one in it meanwhile.
            self.publish_queue_depth();
            return Err(Refusal::Busy { waited_ms: 0 });
        }
        self.publish_queue_depth();
        let guard = tokio::time::timeout_at(deadline.into(), self.lock.clone().lock_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        self.publish_queue_depth();
        super::metrics::writer_wait(started.elapsed());
        guard.map_err(|_| Refusal::Busy {
            waited_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// Callers waiting for the writer right now.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Publishes the queue's depth after it changed: the metric, and the watch tests wait on.
    /// Read under the watch's lock, so the last value published is the latest.
    pub(crate) fn publish_queue_depth(&self) {
        self.depth.send_modify(|depth| *depth = self.queue_depth());
        // Under the watch's read lock (the borrow lives to the end of the statement): the gauge
        // is set in the order the watch was.
        super::metrics::writer_queue_depth(*self.depth.borrow());
    }

    /// Waits until at least `n` callers wait for the writer (tests).
    #[cfg(test)]
    pub async fn queue_reaches(&self, n: usize) {
        let mut depth = self.depth.subscribe();
        depth
            .wait_for(|d| *d >= n)
            .await
            .expect("the writer is alive");
    }

    /// Group-commit batches run so far, and the writes they held.
    #[cfg(test)]
    pub fn batch_counts(&self) -> (u64, u64) {
        (
            self.batches.load(Ordering::Relaxed),
            self.batched_writes.load(Ordering::Relaxed),
        )
    }

    /// The position that includes every commit returned so far (LiteFS updates `-pos` before
    /// COMMIT returns).
    pub fn pos(&self) -> Option<Pos> {
        self.follower.as_ref().and_then(|f| f.mount.position().ok())
    }

    /// Runs COMMIT on `conn`, inside a transaction that holds SQLite's write lock, and says
    /// whether the commit stands.
    ///
    /// In WAL mode LiteFS records a transaction (its LTX file) when SQLite releases the WAL write
    /// lock, inside that unlock call (`DB.Unlock` → `DB.CommitWAL` in LiteFS's `db.go`), and
    /// SQLite ignores a failed unlock (`walUnlockExclusive` discards the result). If LiteFS dies
    /// then, COMMIT still returns OK, and the restarted LiteFS truncates the WAL back to its last
    /// LTX file (`DB.syncWALToLTX`): the transaction is gone. So a commit stands only once the
    /// same LiteFS answers for its position afterwards: CommitWAL runs before the unlock's reply,
    /// and LiteFS exits on a CommitWAL error, so a LiteFS that still answers has recorded it. A
    /// dead mount answers ENOTCONN (or ENOENT once unmounted); a restarted LiteFS takes far longer
    /// to mount than this read takes to follow COMMIT.
    pub async fn commit(&self, conn: &mut SqliteConnection) -> Commit {
        if let Err(err) = conn.execute("COMMIT").await {
            self.repair_after(conn, &err).await;
            return Commit::Failed(err);
        }
        match self.confirm() {
            Ok(pos) => Commit::Done(pos),
            Err(why) => Commit::Unconfirmed(why),
        }
    }

    /// Whether what SQLite just committed stands (see [`Writer::commit`]): the position LiteFS
    /// answers afterwards, or why the outcome is unknown.
    fn confirm(&self) -> Result<Option<Pos>, String> {
        let Some(follower) = &self.follower else {
            return Ok(None);
        };
        follower.mount.position().map(Some).map_err(|e| {
            tracing::error!(error = %e, "LiteFS did not confirm a commit: its outcome is unknown");
            format!(
                "SQLite committed, but LiteFS did not confirm that it recorded the transaction \
                 ({e}); it may have stopped before it did"
            )
        })
    }

    /// A connection of the current read-write pool, and the pools' generation.
    pub async fn connection(&self) -> Result<(PoolConnection<Sqlite>, u64), Refusal> {
        let pools = self
            .databases
            .pools()
            .map_err(|e| Refusal::Unavailable(e.to_string()))?;
        let conn = pools
            .rw_pool()
            .acquire()
            .await
            .map_err(|e| Refusal::Unavailable(format!("no database connection: {e}")))?;
        Ok((conn, pools.generation))
    }

    /// Creates the key table on `conn` (outside a transaction: it commits at once) unless it is
    /// known to exist in the pools' `generation`.
    pub async fn ensure_key_table(
        &self,
        conn: &mut SqliteConnection,
        generation: u64,
    ) -> Result<(), Refusal> {
        if self.create_key_table_in(conn, generation).await? {
            self.mark_key_table_ready(generation);
        }
        Ok(())
    }

    /// Creates the key table inside the transaction `conn` is in, unless it is known to exist;
    /// says whether it did. The table exists only once that transaction commits, so the caller
    /// marks it ready ([`Writer::mark_key_table_ready`]) then, and not before: rolled back, it
    /// is gone, and a table marked ready that is not there fails every keyed write after.
    pub(crate) async fn create_key_table_in(
        &self,
        conn: &mut SqliteConnection,
        generation: u64,
    ) -> Result<bool, Refusal> {
        if self.key_table_ready(generation) {
            return Ok(false);
        }
        dedup::create_table(conn)
            .await
            .map_err(|e| Refusal::Unavailable(format!("cannot create the key table: {e}")))?;
        Ok(true)
    }

    /// Whether the key table is known to exist in the pools' `generation` (its CREATE ran).
    pub(crate) fn key_table_ready(&self, generation: u64) -> bool {
        self.keys_ready.load(Ordering::Acquire) == generation + 1
    }

    /// The key table's CREATE committed in `generation`.
    pub(crate) fn mark_key_table_ready(&self, generation: u64) {
        self.keys_ready.store(generation + 1, Ordering::Release);
    }

    /// Runs one autocommit write (see the module docs). `alone`: a statement that cannot run
    /// inside a transaction (VACUUM), run as it is. With a `key`, at most once.
    ///
    /// The work runs in its own task: a caller that goes away (a dropped HTTP request, an RPC
    /// past its deadline) must not drop it halfway, with a pooled connection inside a transaction.
    pub async fn autocommit(
        self: &Arc<Self>,
        sql: Sql,
        method: Method,
        key: Option<u128>,
        alone: bool,
        deadline: Instant,
    ) -> Result<Written, Refusal> {
        let writer = self.clone();
        tokio::spawn(async move {
            if writer.group_commit && !alone {
                return writer.group_write(sql, method, key, deadline).await;
            }
            writer
                .autocommit_here(&sql, method, key, alone, deadline)
                .await
        })
        .await
        .unwrap_or_else(|e| {
            Err(Refusal::Unavailable(format!(
                "the write's task failed: {e}"
            )))
        })
    }

    async fn autocommit_here(
        &self,
        sql: &Sql,
        method: Method,
        key: Option<u128>,
        alone: bool,
        deadline: Instant,
    ) -> Result<Written, Refusal> {
        let _guard = self.acquire(deadline).await?;
        if Instant::now() >= deadline {
            return Err(Refusal::Expired);
        }
        let (mut conn, generation) = self.connection().await?;
        if alone {
            let result = run_native(&mut conn, sql, method).await;
            release(conn).await;
            if result.is_err() {
                return Ok(Written::Fresh(result, None));
            }
            // As after a COMMIT: it stands once LiteFS answers after it.
            return Ok(match self.confirm() {
                Ok(pos) => Written::Fresh(result, pos),
                Err(why) => Written::Unconfirmed(why),
            });
        }
        if key.is_some() {
            self.ensure_key_table(&mut conn, generation).await?;
        }
        let written = self
            .in_transaction(&mut conn, sql, method, key, deadline)
            .await;
        release(conn).await;
        written
    }

    pub(crate) async fn in_transaction(
        &self,
        conn: &mut SqliteConnection,
        sql: &Sql,
        method: Method,
        key: Option<u128>,
        deadline: Instant,
    ) -> Result<Written, Refusal> {
        if let Err(err) = conn.execute("BEGIN IMMEDIATE").await {
            return Ok(Written::Fresh(Err(err), None));
        }
        let unavailable = |what: &str, e: sqlx::Error| Refusal::Unavailable(format!("{what}: {e}"));
        if let Some(key) = key {
            match dedup::lookup(conn, key).await {
                Ok(None) => {}
                Ok(Some(Stored::Reply(reply))) => {
                    rollback(conn).await;
                    tracing::info!("a keyed write arrived again: answering its stored reply");
                    return Ok(Written::Stored(reply, self.pos()));
                }
                Ok(Some(Stored::Tombstone)) => {
                    rollback(conn).await;
                    return Err(Refusal::Expired);
                }
                Err(e) => {
                    rollback(conn).await;
                    return Err(unavailable("cannot read the key table", e));
                }
            }
        }
        let alarm = Alarm::set(conn, deadline).await;
        let native = run_native(conn, sql, method).await;
        alarm.unset();
        let native = match native {
            Ok(native) => native,
            Err(err) => {
                self.repair_after(conn, &err).await;
                rollback(conn).await;
                return Ok(Written::Fresh(Err(err), None));
            }
        };
        if let Some(key) = key
            && let Err(e) = self.store_key(conn, key, &native).await
        {
            rollback(conn).await;
            return Err(unavailable("cannot store the idempotency key", e));
        }
        // The last moment to give up: after COMMIT the write stands.
        if Instant::now() >= deadline {
            rollback(conn).await;
            return Err(Refusal::Expired);
        }
        match self.commit(conn).await {
            Commit::Done(pos) => Ok(Written::Fresh(Ok(native), pos)),
            Commit::Failed(err) => {
                rollback(conn).await;
                Ok(Written::Fresh(Err(err), None))
            }
            Commit::Unconfirmed(why) => Ok(Written::Unconfirmed(why)),
        }
    }

    /// After a write that failed with SQLITE_IOERR_WRITE on the primary, while the writer's lock
    /// is held (no other write of this process runs; SQLite itself has usually rolled the
    /// transaction back and released its own write lock by then): makes SQLite rebuild its WAL
    /// index, so the next write appends where LiteFS expects it. The write itself has failed and
    /// committed nothing. Not on a node LiteFS already calls a replica (its `.primary` file, read
    /// now): there the same error means the lease moved, and LiteFS keeps that node's index.
    ///
    /// Why: a process killed after it wrote a transaction's commit frame to the WAL, but before it
    /// published the frame in the WAL index (`-shm`), leaves a transaction that SQLite's other
    /// connections do not see, yet LiteFS recorded and replicated it: LiteFS commits whatever the
    /// WAL holds when the dead process's WAL write lock is released (`SHMHandle.Flush` →
    /// `DB.UnlockSHM` → `DB.CommitWAL` in LiteFS). Any process that still has the database open
    /// keeps the stale index (no SQLite recovery runs while one does), writes its next frames over
    /// those, and LiteFS refuses every such write ("cannot write wal frame header @N before current
    /// WAL position", an EIO): no write succeeds on the primary again, and this node's reads lack
    /// a transaction the replicas have. An invalid index header (`isInit` 0 in both copies) makes
    /// the next transaction run SQLite's own recovery, which reads the index back from the WAL:
    /// the dead process's transaction included, as LiteFS has it.
    pub(super) async fn repair_after(&self, conn: &mut SqliteConnection, err: &sqlx::Error) {
        const SQLITE_IOERR_WRITE: i32 = 778;
        let Some(follower) = &self.follower else {
            return;
        };
        let code = err
            .as_database_error()
            .and_then(|e| e.code())
            .and_then(|c| c.parse::<i32>().ok());
        if code != Some(SQLITE_IOERR_WRITE)
            || follower.role() != super::Role::Primary
            || follower.mount.names_another_primary()
        {
            return;
        }
        match invalidate_wal_index(conn).await {
            Ok(()) => tracing::warn!(
                error = %err,
                "LiteFS refused a WAL write on the primary: SQLite's WAL index is reset, so it \
                 is rebuilt from the WAL (a process may have died inside a commit)"
            ),
            Err(e) => tracing::error!(error = %e, "cannot reset the WAL index"),
        }
    }

    /// Stores `key` with `native`'s reply inside the open transaction, and expires old keys
    /// every [`EXPIRE_EVERY`] keyed writes.
    pub(crate) async fn store_key(
        &self,
        conn: &mut SqliteConnection,
        key: u128,
        native: &Native,
    ) -> Result<(), sqlx::Error> {
        let reply = native.to_reply()?;
        dedup::store(conn, key, Some(&reply)).await?;
        if self
            .keyed_writes
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(EXPIRE_EVERY)
        {
            dedup::expire(conn).await?;
        }
        Ok(())
    }

    /// What became of the keyed write `key`: its stored outcome, or — if it has not committed —
    /// a tombstone in its place, committed, so that it never will.
    pub async fn resolve(
        self: &Arc<Self>,
        key: u128,
        deadline: Instant,
    ) -> Result<Resolution, Refusal> {
        let writer = self.clone();
        tokio::spawn(async move {
            let _guard = writer.acquire(deadline).await?;
            let (mut conn, generation) = writer.connection().await?;
            writer.ensure_key_table(&mut conn, generation).await?;
            let result = writer.resolve_on(&mut conn, key).await;
            release(conn).await;
            result
        })
        .await
        .unwrap_or_else(|e| Err(Refusal::Unavailable(format!("the task failed: {e}"))))
    }

    async fn resolve_on(
        &self,
        conn: &mut SqliteConnection,
        key: u128,
    ) -> Result<Resolution, Refusal> {
        let failed = |e: sqlx::Error| Refusal::Unavailable(format!("cannot resolve: {e}"));
        conn.execute("BEGIN IMMEDIATE").await.map_err(failed)?;
        let stored = match dedup::lookup(conn, key).await {
            Ok(stored) => stored,
            Err(e) => {
                rollback(conn).await;
                return Err(failed(e));
            }
        };
        let resolution = match stored {
            Some(Stored::Reply(reply)) => Resolution::Committed(Outcome {
                result: Ok(reply),
                pos: self.pos(),
            }),
            Some(Stored::Tombstone) => Resolution::NotCommitted,
            None => {
                if let Err(e) = dedup::store(conn, key, None).await {
                    rollback(conn).await;
                    return Err(failed(e));
                }
                return match self.commit(conn).await {
                    Commit::Done(_) => Ok(Resolution::NotCommitted),
                    Commit::Failed(e) => {
                        rollback(conn).await;
                        Err(failed(e))
                    }
                    // The tombstone may be lost with the restarted LiteFS: ask again later.
                    Commit::Unconfirmed(why) => Err(Refusal::Unavailable(why)),
                };
            }
        };
        rollback(conn).await;
        Ok(resolution)
    }
}

/// Ends whatever transaction `conn` may be in, ignoring "no transaction is active".
pub async fn rollback(conn: &mut SqliteConnection) {
    if !in_transaction(conn).await {
        return;
    }
    let Err(err) = conn.execute("ROLLBACK").await else {
        return;
    };
    // An interrupt still pending (a deadline's alarm) while another statement of the connection
    // is still active (its caller went away mid-row) fails even ROLLBACK, and would keep failing:
    // SQLite clears the interrupt only when a statement starts with none active. So the active
    // statements are reset, and ROLLBACK tried once more.
    tracing::warn!(error = %err, "ROLLBACK failed: resetting the connection's statements, then again");
    reset_active_statements(conn).await;
    if in_transaction(conn).await
        && let Err(err) = conn.execute("ROLLBACK").await
    {
        tracing::error!(error = %err, "ROLLBACK failed again");
    }
}

/// Resets every statement of `conn` that is still active (stepped, not yet reset or finalized).
async fn reset_active_statements(conn: &mut SqliteConnection) {
    let Ok(mut handle) = conn.lock_handle().await else {
        return;
    };
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: the handle is locked for this call, so no statement of the connection runs; each
    // pointer comes from sqlite3_next_stmt on this connection, and sqlite3_reset leaves a
    // statement valid for its owner (sqlx resets its statements before each use anyway).
    unsafe {
        let mut stmt = libsqlite3_sys::sqlite3_next_stmt(db, std::ptr::null_mut());
        while !stmt.is_null() {
            if libsqlite3_sys::sqlite3_stmt_busy(stmt) != 0 {
                libsqlite3_sys::sqlite3_reset(stmt);
            }
            stmt = libsqlite3_sys::sqlite3_next_stmt(db, stmt);
        }
    }
}

/// A fresh directory in the temporary directory, and options for a database `t.db` in it (unit
/// tests).
#[cfg(test)]
pub(crate) fn temp_database(
    name: &str,
) -> (std::path::PathBuf, sqlx::sqlite::SqliteConnectOptions) {
    let dir = std::env::temp_dir().join(format!(
        "{name}-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.join("t.db"))
        .busy_timeout(std::time::Duration::from_millis(2500))
        .foreign_keys(true)
        .create_if_missing(true);
    (dir, options)
}

/// Makes SQLite rebuild the WAL index of `conn`'s database from the WAL at its next transaction:
/// both copies of the index header (the first 96 bytes of `-shm`) are zeroed, so `isInit` is 0.
///
/// The write goes through the mapping SQLite itself uses (its VFS's `xShmMap`), never through a
/// file descriptor of our own: closing any descriptor of `-shm` drops every POSIX lock this
/// process holds on it (LiteFS releases them on the FUSE flush), SQLite's read locks and its
/// "dead man switch" included. The next process to open the database would then think itself
/// alone, truncate `-shm`, and every process still mapping it would die of SIGBUS.
pub(crate) async fn invalidate_wal_index(conn: &mut SqliteConnection) -> Result<(), String> {
    const WAL_INDEX_HEADERS: usize = 96;
    const SHM_REGION: std::ffi::c_int = 32 * 1024;
    let mut handle = conn.lock_handle().await.map_err(|e| e.to_string())?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: the handle is locked for this call. SQLITE_FCNTL_FILE_POINTER gives the open
    // `sqlite3_file` of the main database, whose methods outlive the call; `xShmMap` exists only
    // from version 2 of the methods. With bExtend=0 it never grows `-shm`: it returns region 0
    // (mapping it if the file already holds it, as SQLite itself does) or null. The connection
    // has its WAL index open already (the repair follows a write, which read the index); were it
    // not, xShmMap would open it as SQLite's WAL does, through SQLite's own per-process `-shm`
    // handle. A returned region is SHM_REGION bytes, writable (`readonly_shm` is never set).
    unsafe {
        let mut file: *mut libsqlite3_sys::sqlite3_file = std::ptr::null_mut();
        let rc = libsqlite3_sys::sqlite3_file_control(
            db,
            c"main".as_ptr(),
            libsqlite3_sys::SQLITE_FCNTL_FILE_POINTER,
            (&mut file as *mut *mut libsqlite3_sys::sqlite3_file).cast(),
        );
        if rc != libsqlite3_sys::SQLITE_OK || file.is_null() || (*file).pMethods.is_null() {
            return Err(format!(
                "no database file to reach its WAL index (code {rc})"
            ));
        }
        let methods = (*file).pMethods;
        // A version 1 method table ends before xShmMap: not even read then.
        let shm_map = if (*methods).iVersion >= 2 {
            (*methods).xShmMap
        } else {
            None
        };
        let Some(shm_map) = shm_map else {
            return Err("the VFS has no shared memory".into());
        };
        let mut region: *mut std::ffi::c_void = std::ptr::null_mut();
        let rc = shm_map(file, 0, SHM_REGION, 0, &mut region);
        if rc != libsqlite3_sys::SQLITE_OK || region.is_null() {
            return Err(format!("the WAL index is not mapped (code {rc})"));
        }
        std::ptr::write_bytes(region.cast::<u8>(), 0, WAL_INDEX_HEADERS);
    }
    Ok(())
}

/// Whether SQLite says the connection is inside a transaction.
pub async fn in_transaction(conn: &mut SqliteConnection) -> bool {
    match conn.lock_handle().await {
        // SAFETY: the handle is locked for this call.
        Ok(mut handle) => unsafe {
            libsqlite3_sys::sqlite3_get_autocommit(handle.as_raw_handle().as_ptr()) == 0
        },
        Err(err) => {
            tracing::warn!(error = %err, "cannot reach the connection's handle");
            true
        }
    }
}

/// Gives a connection back to its pool, never inside a transaction: it is rolled back, and taken
/// out of the pool for good if even that fails (leaked rather than closed: its mount may be gone,
/// see `pools`).
pub async fn release(mut conn: PoolConnection<Sqlite>) {
    rollback(&mut conn).await;
    // Nor with a statement still active (its caller went away mid-row): an interrupt left
    // pending by a deadline's alarm would then fail the next caller's statement.
    reset_active_statements(&mut conn).await;
    if in_transaction(&mut conn).await {
        tracing::error!("a connection stayed inside a transaction after ROLLBACK: retiring it");
        std::mem::forget(conn.detach());
    }
}

/// Interrupts the statement running on a connection when a deadline passes (`sqlite3_interrupt`,
/// which SQLite allows from any thread): a runaway statement must not hold the writer past its
/// caller's deadline. The statement then fails with SQLITE_INTERRUPT and is rolled back.
///
/// Once gone off, it interrupts again every [`RING_AGAIN`] until unset: SQLite forgets an
/// interrupt that comes while no statement runs (it clears it as the next one starts), so one
/// that came just before the statement started (a deadline already past, a statement sqlx had
/// prepared before) would let it run on unbounded.
pub struct Alarm {
    /// Whether the alarm may still go off; the connection stays open while it is set.
    armed: Arc<std::sync::Mutex<bool>>,
    /// The connection's `sqlite3*`, if its handle could be had.
    handle: Option<usize>,
    timer: tokio::task::JoinHandle<()>,
}

impl Alarm {
    pub async fn set(conn: &mut SqliteConnection, at: Instant) -> Alarm {
        let handle = raw_handle(conn).await;
        let armed = Arc::new(std::sync::Mutex::new(handle.is_some()));
        let ringing = armed.clone();
        let timer = tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            if interrupt(&ringing, handle) {
                tracing::warn!("a statement ran past its deadline: interrupting it");
            }
            loop {
                tokio::time::sleep(RING_AGAIN).await;
                interrupt(&ringing, handle);
            }
        });
        Alarm {
            armed,
            handle,
            timer,
        }
    }

    /// Goes off now, if still armed: for a caller that gives up at the deadline itself and must
    /// not depend on which of it and the timer runs first.
    pub fn ring(&self) {
        if interrupt(&self.armed, self.handle) {
            tracing::warn!("a statement ran past its deadline: interrupting it");
        }
    }

    /// Disarms the alarm: once this returns, it never goes off.
    pub fn unset(self) {
        *self.armed.lock().unwrap() = false;
        self.timer.abort();
    }
}

// A note on `lock_handle`, which this file calls before most statements: sqlx 0.9 hands the
// handle over through the connection's command channel (50 deep) without waiting for its thread,
// so calls made back to back with no statement between pile up there, and once it is full the
// thread and the caller wait on each other for good (a loop of `lock_handle` alone hung within
// 10,000 calls here; with a statement every 8 calls, 240,000 passed). The calls in this crate
// come a few at a time between statements, far below the channel's depth: keep it so.

/// A pooled connection running one read for a caller that may go away (a request's timeout, a
/// client that left): dropped before [`WatchedRead::done`], it stops the read instead of letting
/// it run on, holding the connection and a core. The connection then stays out of the pool, in
/// a task of its own, until its thread has finished the statement: it is interrupted at once
/// and again every [`RING_AGAIN`] until then, since SQLite forgets an interrupt that comes before
/// the statement has begun (the thread may not have picked it up yet, or be preparing it).
pub struct WatchedRead {
    /// `None` once done or given to the task that stops the read.
    conn: Option<PoolConnection<Sqlite>>,
    /// The connection's `sqlite3*`; `None` if it could not be had (the read runs unwatched).
    handle: Option<usize>,
}

impl WatchedRead {
    pub async fn new(mut conn: PoolConnection<Sqlite>) -> Self {
        let handle = raw_handle(&mut conn).await;
        Self {
            conn: Some(conn),
            handle,
        }
    }

    pub fn conn(&mut self) -> &mut SqliteConnection {
        self.conn
            .as_mut()
            .expect("a watched read's connection until it is done")
    }

    /// The read ended and its answer was taken: the connection goes back to the pool.
    pub fn done(mut self) {
        self.handle = None;
    }
}

impl Drop for WatchedRead {
    fn drop(&mut self) {
        let (Some(handle), Some(mut conn)) = (self.handle.take(), self.conn.take()) else {
            return;
        };
        super::metrics::read_abandoned();
        // SAFETY (each call below): `conn` is alive, so its database is open; sqlite3_interrupt
        // may be called from any thread, and one that comes while no statement runs is cleared
        // when the next statement starts (sqlx resets every statement it ran).
        let ring = move || unsafe {
            libsqlite3_sys::sqlite3_interrupt(handle as *mut libsqlite3_sys::sqlite3)
        };
        ring();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to wait in (nor for the pool, whose return of a connection is a task):
            // the connection is closed instead, its thread ending once the statement has,
            // after the one interrupt this drop can make.
            drop(conn.detach());
            return;
        };
        tracing::debug!("a read was abandoned by its caller: interrupting it");
        runtime.spawn(async move {
            {
                // A ping is answered once the thread has finished the statement before it.
                let mut ended = std::pin::pin!(sqlx::Connection::ping(&mut *conn));
                let mut again = tokio::time::interval(RING_AGAIN);
                loop {
                    tokio::select! {
                        _ = &mut ended => break,
                        _ = again.tick() => ring(),
                    }
                }
            }
            drop(conn); // Back to the pool, with no statement running and no ring to come.
        });
    }
}

/// The connection's `sqlite3*`, for `sqlite3_interrupt` from another thread; `None` if its
/// thread is gone.
async fn raw_handle(conn: &mut SqliteConnection) -> Option<usize> {
    let mut handle = conn.lock_handle().await.ok()?;
    Some(handle.as_raw_handle().as_ptr() as usize)
}

/// How often an [`Alarm`] that went off, or an abandoned [`WatchedRead`], interrupts again: a
/// statement that started after the interrupt before runs at most this much longer.
const RING_AGAIN: Duration = Duration::from_millis(10);

/// Interrupts the statement running on `handle`, if `armed`; whether it did.
fn interrupt(armed: &std::sync::Mutex<bool>, handle: Option<usize>) -> bool {
    let armed = armed.lock().unwrap();
    let (true, Some(handle)) = (*armed, handle) else {
        return false;
    };
    // SAFETY: the connection is open while the alarm is armed (`unset` takes this lock before
    // the connection can be released), and sqlite3_interrupt may be called from any thread
    // while a statement runs on it.
    unsafe { libsqlite3_sys::sqlite3_interrupt(handle as *mut libsqlite3_sys::sqlite3) };
    true
}

impl Drop for Alarm {
    fn drop(&mut self) {
        *self.armed.lock().unwrap() = false;
        self.timer.abort();
    }
}

#[cfg(test)]
mod tests;
