//! [`ClusterTransaction`]: one transaction shape with two places to run. On the primary, a local
//! session: the one writer held and a pooled connection inside `BEGIN IMMEDIATE`. On a replica, a
//! session on the primary (`BEGIN IMMEDIATE` there) where every statement, reads included, runs.
//! Both nest with savepoints, and behave the same way:
//! - a transaction dropped without commit is rolled back, and so is a nested one: its savepoint
//!   rollback is sent before anything else the transaction does next, its commit included;
//! - a statement that ends the transaction itself (a trigger's `RAISE(ROLLBACK)`, `INSERT OR
//!   ROLLBACK`) ends it for good: nothing after it runs outside it, and its commit fails;
//! - the connection goes back to its pool, and the writer is released, only after the rollback.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use std::pin::Pin;

use sea_orm::{DbErr, TransactionError, TransactionOptions, TransactionSession};
use sqlx::pool::PoolConnection;
use sqlx::{Executor as _, Sqlite};

use super::client::CallError;
use super::connection::{
    Answer, Inner, Node, answer_from_reply, connection_traits, idempotency_key, rebuild_error,
    request_for, resolve, settle, sqlx_db_err,
};
use super::statement;
use super::wire::{ErrorPhase, Reply, Request};
use super::writer::{self, Method, Sql, WriterGuard};
use super::{ClusterError, consistency, metrics};

/// The outermost transaction and its savepoints share one session.
struct Session {
    place: Place,
    /// Savepoint rollbacks of nested transactions dropped without commit, run before the next
    /// statement or the commit.
    pending: Mutex<Vec<String>>,
    /// Why the transaction can only be rolled back now (a statement ended it; a remote answer
    /// was lost), if it can.
    broken: Mutex<Option<String>>,
    /// The last statement of this remote transaction, one that may have written, came back
    /// interrupted at its deadline. An interrupted write rolls its whole transaction back on the
    /// primary, which then ends the session (an interrupted read does not); the primary's "no
    /// such session" does not say why, so this does.
    interrupted: std::sync::atomic::AtomicBool,
}

impl Session {
    fn new(place: Place) -> Self {
        Session {
            place,
            pending: Mutex::new(Vec::new()),
            broken: Mutex::new(None),
            interrupted: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Disarms a local transaction's alarm: it never goes off once this returns.
    fn disarm(&self) {
        if let Place::Local { alarm, .. } = &self.place
            && let Some(alarm) = alarm.lock().unwrap().take()
        {
            alarm.unset();
        }
    }

    /// The error for a remote call of this transaction that failed: a session the primary no
    /// longer has, after a statement of it was interrupted, is gone because of that (and is
    /// marked so: nothing of it can run any more).
    fn remote_error(&self, err: ClusterError) -> ClusterError {
        use std::sync::atomic::Ordering;
        match err {
            ClusterError::SessionLost(_) if self.interrupted.load(Ordering::Acquire) => {
                let why = match &self.place {
                    Place::Remote { id, addr } => {
                        format!("session {id} is gone on {addr}: {INTERRUPTED_SESSION}")
                    }
                    Place::Local { .. } => INTERRUPTED_SESSION.to_owned(),
                };
                *self.broken.lock().unwrap() = Some(why.clone());
                ClusterError::SessionLost(why)
            }
            err => err,
        }
    }
}

/// Why a remote transaction is gone after one of its statements was interrupted.
const INTERRUPTED_SESSION: &str = "its statement before was interrupted (at its caller's \
    deadline, or the session's maximum lifetime), and an interrupted write rolls its whole \
    transaction back";

/// Whether a failure is SQLite's "interrupted" (a statement stopped at its deadline).
fn is_interrupt(failure: &crate::wire::DbFailure) -> bool {
    failure
        .sqlite
        .as_ref()
        .is_some_and(|(code, _)| code & 0xff == libsqlite3_sys::SQLITE_INTERRUPT)
}

enum Place {
    /// On this node, the primary.
    Local {
        /// Interrupts a statement still running at a write procedure's deadline (see
        /// [`ClusterTransaction::interrupt_at`]); disarmed before the connection leaves the
        /// transaction or commits. Declared before `conn`, so it is dropped first.
        alarm: Mutex<Option<writer::Alarm>>,
        /// `None` once the transaction has ended.
        conn: tokio::sync::Mutex<Option<PoolConnection<Sqlite>>>,
        /// The pools' generation the connection came from (see [`super::pools`]).
        generation: u64,
        /// Released once the transaction has ended, and not before.
        writer: Mutex<Option<WriterGuard>>,
    },
    /// On the primary `addr`, session `id`.
    Remote { id: u64, addr: String },
}

/// A transaction of a [`super::ClusterConnection`].
pub struct ClusterTransaction {
    session: Arc<Session>,
    /// 0 for the outermost; savepoint `sp{depth}` for a nested one.
    depth: u32,
    /// Whether it has not been committed or rolled back yet.
    open: bool,
    cluster: Arc<Inner>,
}

impl std::fmt::Debug for ClusterTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = match &self.session.place {
            Place::Local { .. } => "local".to_owned(),
            Place::Remote { id, addr } => format!("session {id} on {addr}"),
        };
        f.debug_struct("ClusterTransaction")
            .field("place", &place)
            .field("depth", &self.depth)
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

fn finished() -> DbErr {
    DbErr::Custom("the transaction is already finished".into())
}

/// The refusal of a statement inside a transaction, the same locally and remotely.
fn refused(sql: &str) -> Result<(), DbErr> {
    match statement::refusal(&statement::classify_lexically(sql), true) {
        Some(why) => Err(ClusterError::Refused(why).into_db_err()),
        None => Ok(()),
    }
}

impl ClusterTransaction {
    fn outermost(session: Session, cluster: Arc<Inner>) -> Self {
        ClusterTransaction {
            session: Arc::new(session),
            depth: 0,
            open: true,
            cluster,
        }
    }

    pub(crate) async fn begin_local(cluster: Arc<Inner>) -> Result<Self, DbErr> {
        let deadline = Instant::now() + cluster.timeout;
        let refusal = |r| ClusterError::from_refusal("this node", r).into_db_err();
        let guard = cluster.writer.acquire(deadline).await.map_err(refusal)?;
        let (mut conn, generation) = cluster.writer.connection().await.map_err(refusal)?;
        if let Err(err) = conn.execute("BEGIN IMMEDIATE").await {
            writer::release(conn).await;
            return Err(sqlx_db_err(Method::Execute, err));
        }
        let session = Session::new(Place::Local {
            alarm: Mutex::new(None),
            conn: tokio::sync::Mutex::new(Some(conn)),
            generation,
            writer: Mutex::new(Some(guard)),
        });
        Ok(Self::outermost(session, cluster))
    }

    pub(crate) async fn begin_remote(cluster: Arc<Inner>) -> Result<Self, DbErr> {
        let node = cluster
            .node
            .as_ref()
            .expect("remote transactions exist only in cluster mode");
        let deadline = Instant::now() + node.forwarder.timeout;
        let (id, addr) = node
            .forwarder
            .call_new(
                deadline,
                |client, ctx| async move { client.begin(ctx).await },
            )
            .await
            .map_err(|err| match err {
                CallError::Failed(err) => err.into_db_err(),
                // A session may have opened there; nothing in it can commit, and the primary
                // rolls it back when its lease ends.
                CallError::Lost { addr, reason } => ClusterError::NotCommitted {
                    reason: format!("the transaction could not begin on {addr}: {reason}"),
                }
                .into_db_err(),
            })?;
        metrics::remote_transaction();
        let session = Session::new(Place::Remote { id, addr });
        Ok(Self::outermost(session, cluster))
    }

    /// Interrupts the statement running in this transaction when `at` passes (see
    /// [`writer::Alarm`]), until it commits or ends: a write procedure's body must not hold the
    /// writer past its caller's deadline. Says whether it is set: a remote transaction has none
    /// (the primary bounds its session's lifetime).
    pub(crate) async fn interrupt_at(&self, at: Instant) -> bool {
        let Place::Local { conn, alarm, .. } = &self.session.place else {
            return false;
        };
        let mut conn = conn.lock().await;
        let Some(conn) = conn.as_mut() else {
            return false;
        };
        let set = writer::Alarm::set(conn, at).await;
        if let Some(previous) = alarm.lock().unwrap().replace(set) {
            previous.unset();
        }
        true
    }

    /// The alarm of [`ClusterTransaction::interrupt_at`] goes off now, if still armed: for a
    /// caller that gives up at the deadline.
    pub(crate) fn interrupt_now(&self) {
        if let Place::Local { alarm, .. } = &self.session.place
            && let Some(alarm) = alarm.lock().unwrap().as_ref()
        {
            alarm.ring();
        }
    }

    /// Disarms the alarm of [`ClusterTransaction::interrupt_at`].
    pub(crate) fn disarm(&self) {
        self.session.disarm();
    }

    fn node(&self) -> &Node {
        self.cluster
            .node
            .as_ref()
            .expect("remote transactions exist only in cluster mode")
    }

    /// Runs one SQL string in this transaction.
    async fn dispatch(&self, sql: Sql, method: Method) -> Result<Answer, DbErr> {
        if !self.open {
            return Err(finished());
        }
        refused(sql.text())?;
        self.flush_pending().await?;
        self.run(sql, method).await
    }

    /// Runs one SQL string in the session, as it is.
    async fn run(&self, sql: Sql, method: Method) -> Result<Answer, DbErr> {
        let broken = self.session.broken.lock().unwrap().clone();
        if let Some(why) = broken {
            return Err(ClusterError::SessionLost(why).into_db_err());
        }
        match &self.session.place {
            Place::Local {
                conn, generation, ..
            } => {
                let mut guard = conn.lock().await;
                let conn = guard.as_mut().ok_or_else(finished)?;
                self.usable(*generation)?;
                let result = writer::run_native(conn, &sql, method).await;
                if !writer::in_transaction(conn).await {
                    // The statement ended the transaction itself: it was rolled back.
                    let why = "a statement rolled the transaction back (RAISE(ROLLBACK), INSERT OR ROLLBACK)";
                    *self.session.broken.lock().unwrap() = Some(why.into());
                    self.session.disarm();
                    if let Some(conn) = guard.take() {
                        writer::release(conn).await;
                    }
                    self.release_writer();
                }
                result
                    .map(Answer::from_native)
                    .map_err(|e| sqlx_db_err(method, e))
            }
            Place::Remote { id, addr } => {
                let request = request_for(self.node(), sql, method).await?;
                let reply = self.call_remote(*id, addr, request).await?;
                answer_from_reply(self.node(), reply, method).await
            }
        }
    }

    /// Whether this node's pools can be touched, and the connection is of the current ones.
    fn usable(&self, generation: u64) -> Result<(), DbErr> {
        let databases = &self.cluster.writer.databases;
        databases.pools().map_err(ClusterError::into_db_err)?;
        if generation != databases.generation() {
            return Err(
                ClusterError::SessionLost("LiteFS remounted the database".into()).into_db_err(),
            );
        }
        Ok(())
    }

    fn release_writer(&self) {
        if let Place::Local { writer, .. } = &self.session.place {
            writer.lock().unwrap().take();
        }
    }

    /// Runs the savepoint rollbacks left by dropped nested transactions; kept if they fail.
    async fn flush_pending(&self) -> Result<(), DbErr> {
        let pending: Vec<String> = std::mem::take(&mut *self.session.pending.lock().unwrap());
        if pending.is_empty() {
            return Ok(());
        }
        let sql = Sql::Raw(pending.join("; "));
        match self.run(sql, Method::Execute).await {
            Ok(_) => Ok(()),
            Err(err) => {
                self.session.pending.lock().unwrap().splice(0..0, pending);
                Err(err)
            }
        }
    }

    async fn call_remote(&self, id: u64, addr: &str, request: Request) -> Result<Reply, DbErr> {
        let node = self.node();
        let phase = request.phase();
        let deadline = Instant::now() + node.forwarder.timeout;
        let answer = node
            .forwarder
            .call(deadline, Some(addr), |client, ctx| {
                let request = request.clone();
                async move { client.run_in(ctx, id, request).await }
            })
            .await;
        match answer {
            Ok((outcome, _)) => {
                // Only the last statement counts: one that ran after an interrupted read shows
                // that the session outlived it. An interrupted read leaves the transaction open
                // (SQLite rolls back only for an interrupted write), so it is not counted: a
                // later loss of the session has another reason.
                let interrupted = matches!(&outcome.result, Err(failure) if is_interrupt(failure))
                    && self.may_write(&request).await;
                let hint = &self.session.interrupted;
                hint.store(interrupted, std::sync::atomic::Ordering::Release);
                match outcome.result {
                    Ok(reply) => Ok(reply),
                    Err(failure) => Err(rebuild_error(node, failure, phase).await),
                }
            }
            Err(CallError::Failed(err)) => Err(self.session.remote_error(err).into_db_err()),
            Err(CallError::Lost { addr, reason }) => {
                let why = format!(
                    "a statement's answer from {addr} was lost ({reason}): the transaction can only be rolled back"
                );
                *self.session.broken.lock().unwrap() = Some(why.clone());
                Err(ClusterError::SessionLost(why).into_db_err())
            }
        }
    }

    /// Whether `request` may have written: what this node's schema cannot tell apart from a
    /// write (a table created in this very transaction, LiteFS away here) counts as one.
    async fn may_write(&self, request: &Request) -> bool {
        let sql = match request {
            Request::Execute(stmt) | Request::QueryOne(stmt) | Request::QueryAll(stmt) => &stmt.sql,
            Request::ExecuteUnprepared(sql) => sql,
        };
        match self.cluster.writer.databases.pools() {
            Ok(pools) => pools.classifier.classify(sql).await != statement::Kind::Read,
            Err(_) => true,
        }
    }

    /// Commits (`commit`) or rolls back this transaction or savepoint.
    async fn finish(&mut self, commit: bool) -> Result<(), DbErr> {
        if !self.open {
            return Err(finished());
        }
        let depth = self.depth;
        let result = if depth > 0 {
            let sql = if commit {
                format!("RELEASE sp{depth}")
            } else {
                format!("ROLLBACK TO sp{depth}; RELEASE sp{depth}")
            };
            // Pending rollbacks first; if this fails, Drop queues the savepoint's rollback.
            match self.flush_pending().await {
                Ok(()) => self
                    .run(Sql::Raw(sql), Method::Execute)
                    .await
                    .map(drop)
                    .map_err(as_query_err),
                Err(err) => Err(err),
            }
        } else if commit {
            self.commit_outermost().await
        } else {
            self.rollback_outermost().await;
            Ok(())
        };
        if result.is_ok() || depth == 0 {
            self.open = false;
        }
        result
    }

    async fn commit_outermost(&self) -> Result<(), DbErr> {
        // What nested transactions dropped must be undone before the commit, not after.
        let flushed = self.flush_pending().await;
        let broken = self.session.broken.lock().unwrap().clone();
        if let Some(err) = flushed
            .err()
            .or_else(|| broken.map(|why| ClusterError::SessionLost(why).into_db_err()))
        {
            self.rollback_outermost().await;
            return Err(err);
        }
        match &self.session.place {
            Place::Local {
                conn, generation, ..
            } => {
                let mut guard = conn.lock().await;
                if let Err(err) = self.usable(*generation) {
                    drop(guard);
                    self.rollback_outermost().await;
                    return Err(err);
                }
                self.session.disarm();
                let mut conn = guard.take().ok_or_else(finished)?;
                let committed = self.cluster.writer.commit(&mut conn).await;
                writer::release(conn).await;
                self.release_writer();
                match committed {
                    writer::Commit::Done(pos) => {
                        if let Some(pos) = pos {
                            consistency::record(pos);
                        }
                        Ok(())
                    }
                    writer::Commit::Failed(e) => Err(as_query_err(sqlx_db_err(Method::Execute, e))),
                    writer::Commit::Unconfirmed(reason) => Err(ClusterError::OutcomeUnknown {
                        addr: "this node, LiteFS".into(),
                        reason,
                    }
                    .into_db_err()),
                }
            }
            Place::Remote { id, addr } => {
                let node = self.node();
                let (id, key) = (*id, idempotency_key());
                let deadline = Instant::now() + node.forwarder.timeout;
                let sent = node
                    .forwarder
                    .call(deadline, Some(addr), |client, ctx| async move {
                        client.commit(ctx, id, key).await
                    })
                    .await;
                let outcome = match sent {
                    Ok((outcome, _)) => outcome,
                    Err(CallError::Failed(err)) => {
                        return Err(self.session.remote_error(err).into_db_err());
                    }
                    Err(CallError::Lost { addr, reason }) => {
                        // The session holds the primary's writer until it ends, and the question
                        // about the key waits for the writer: were the COMMIT lost on the way
                        // (a half-open connection), the question would wait out the session's
                        // lease. So the session is rolled back as well (on a new connection): a
                        // COMMIT that ran is kept and the question finds it; one that did not
                        // run never will. Both at once, so that an unreachable primary costs
                        // one window, not two.
                        let rolled_back = rollback_session(&self.session, &self.cluster);
                        let asked = resolve(&self.cluster.writer, node, key, addr, reason);
                        tokio::join!(rolled_back, asked).1?
                    }
                };
                settle(node, outcome, ErrorPhase::Query).await.map(drop)
            }
        }
    }

    /// Rolls the whole transaction back. Whatever happens, nothing of it commits: if a remote
    /// rollback is not confirmed, the primary rolls the session back when its lease ends.
    async fn rollback_outermost(&self) {
        rollback_session(&self.session, &self.cluster).await;
    }
}

async fn rollback_session(session: &Session, cluster: &Inner) {
    match &session.place {
        Place::Local {
            conn,
            generation,
            writer,
            ..
        } => {
            let mut conn = conn.lock().await;
            let databases = &cluster.writer.databases;
            let retired = databases.suspended() || databases.generation() != *generation;
            if let Some(conn) = conn.as_mut()
                && !retired
            {
                // A body dropped at its deadline may have left a statement queued on the
                // connection's worker, not yet started. Disarmed first, the alarm could no longer
                // stop it once it starts (SQLite forgets an interrupt that came before): so the
                // worker is drained first (its lock is taken after every queued command), while
                // the alarm, if it went off, keeps interrupting what runs.
                drop(conn.lock_handle().await);
            }
            session.disarm();
            if let Some(conn) = conn.take() {
                if retired {
                    // Its mount may be gone: touching the connection could kill the process
                    // (see `pools`). Retired unclosed; SQLite's lock went with the old mount.
                    std::mem::forget(conn.detach());
                } else {
                    writer::release(conn).await;
                }
            }
            writer.lock().unwrap().take();
        }
        Place::Remote { id, addr } => {
            let Some(node) = cluster.node.as_ref() else {
                return;
            };
            let id = *id;
            let deadline = Instant::now() + node.forwarder.timeout;
            // The primary answers a rollback of a session it no longer has with `Ok` too.
            if let Err(err) = node
                .forwarder
                .call(deadline, Some(addr), |client, ctx| async move {
                    client.rollback(ctx, id).await
                })
                .await
            {
                tracing::warn!(
                    session = id,
                    ?err,
                    "rollback not confirmed: the primary's lease will end the transaction"
                );
            }
        }
    }
}

impl Drop for ClusterTransaction {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        if self.depth > 0 {
            let depth = self.depth;
            self.session
                .pending
                .lock()
                .unwrap()
                .push(format!("ROLLBACK TO sp{depth}; RELEASE sp{depth}"));
            return;
        }
        // Outermost: roll back now, in a task (Drop cannot wait).
        let (cluster, session) = (self.cluster.clone(), self.session.clone());
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { rollback_session(&session, &cluster).await });
            }
            Err(_) => {
                // No runtime to roll back on: the connection must never go back to its pool
                // inside a transaction, so it is retired.
                if let Place::Local { conn, .. } = &session.place
                    && let Ok(mut conn) = conn.try_lock()
                    && let Some(conn) = conn.take()
                {
                    std::mem::forget(conn.detach());
                }
            }
        }
    }
}

connection_traits!(ClusterTransaction);

#[async_trait::async_trait]
impl TransactionSession for ClusterTransaction {
    async fn commit(mut self) -> Result<(), DbErr> {
        self.finish(true).await
    }

    async fn rollback(mut self) -> Result<(), DbErr> {
        self.finish(false).await
    }
}

impl ClusterTransaction {
    /// A nested transaction: a savepoint (SQLite has no other kind, so options are ignored).
    async fn open(&self, _options: TransactionOptions) -> Result<ClusterTransaction, DbErr> {
        let depth = self.depth + 1;
        self.dispatch(Sql::Raw(format!("SAVEPOINT sp{depth}")), Method::Execute)
            .await?;
        Ok(ClusterTransaction {
            session: self.session.clone(),
            depth,
            open: true,
            cluster: self.cluster.clone(),
        })
    }
}

/// SeaORM's `TransactionTrait` for a handle with an `open(options)` that begins a transaction:
/// the connection and its transactions begin, run callbacks and nest the same way.
macro_rules! transaction_trait {
    ($handle:ty) => {
        #[async_trait::async_trait]
        impl sea_orm::TransactionTrait for $handle {
            type Transaction = ClusterTransaction;

            async fn begin(&self) -> Result<ClusterTransaction, sea_orm::DbErr> {
                self.open(sea_orm::TransactionOptions::default()).await
            }

            async fn begin_with_config(
                &self,
                isolation_level: Option<sea_orm::IsolationLevel>,
                access_mode: Option<sea_orm::AccessMode>,
            ) -> Result<ClusterTransaction, sea_orm::DbErr> {
                self.open(sea_orm::TransactionOptions {
                    isolation_level,
                    access_mode,
                    ..Default::default()
                })
                .await
            }

            async fn begin_with_options(
                &self,
                options: sea_orm::TransactionOptions,
            ) -> Result<ClusterTransaction, sea_orm::DbErr> {
                self.open(options).await
            }

            async fn transaction<F, T, E>(
                &self,
                callback: F,
            ) -> Result<T, sea_orm::TransactionError<E>>
            where
                F: for<'c> FnOnce(
                        &'c ClusterTransaction,
                    ) -> std::pin::Pin<
                        Box<dyn Future<Output = Result<T, E>> + Send + 'c>,
                    > + Send,
                T: Send,
                E: std::fmt::Display + std::fmt::Debug + Send,
            {
                self.transaction_with_config(callback, None, None).await
            }

            async fn transaction_with_config<F, T, E>(
                &self,
                callback: F,
                isolation_level: Option<sea_orm::IsolationLevel>,
                access_mode: Option<sea_orm::AccessMode>,
            ) -> Result<T, sea_orm::TransactionError<E>>
            where
                F: for<'c> FnOnce(
                        &'c ClusterTransaction,
                    ) -> std::pin::Pin<
                        Box<dyn Future<Output = Result<T, E>> + Send + 'c>,
                    > + Send,
                T: Send,
                E: std::fmt::Display + std::fmt::Debug + Send,
            {
                let txn = self
                    .begin_with_config(isolation_level, access_mode)
                    .await
                    .map_err(sea_orm::TransactionError::Connection)?;
                $crate::transaction::run(txn, callback).await
            }
        }
    };
}
pub(crate) use transaction_trait;

transaction_trait!(ClusterTransaction);

/// Runs `callback` in `txn`: commit on `Ok`, roll back on `Err`.
pub(crate) async fn run<F, T, E>(
    txn: ClusterTransaction,
    callback: F,
) -> Result<T, TransactionError<E>>
where
    F: for<'c> FnOnce(
            &'c ClusterTransaction,
        ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
        + Send,
    T: Send,
    E: std::fmt::Display + std::fmt::Debug + Send,
{
    let result = callback(&txn).await;
    match result {
        Ok(value) => {
            txn.commit().await.map_err(TransactionError::Connection)?;
            Ok(value)
        }
        Err(err) => {
            txn.rollback().await.map_err(TransactionError::Connection)?;
            Err(TransactionError::Transaction(err))
        }
    }
}

/// SeaORM reports a failed commit or savepoint release as `DbErr::Query` (sqlx's transaction
/// manager runs it), not `Exec`: the same error must arrive the same way.
fn as_query_err(err: DbErr) -> DbErr {
    match err {
        DbErr::Exec(runtime) => DbErr::Query(runtime),
        other => other,
    }
}
