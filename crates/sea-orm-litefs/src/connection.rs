//! [`ClusterConnection`]: the one handle the app uses. It implements SeaORM's `ConnectionTrait`,
//! `StreamTrait` and `TransactionTrait`; on a replica it sends every write to the primary and
//! returns the primary's result, and never attempts the write locally.
//!
//! Every SQL string goes through [`ClusterConnection::dispatch`]: classified once (see
//! [`super::statement`]), refused if it is of a kind the wrapper never runs, read on this node's
//! read pool, written through the primary's one writer, or forwarded.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::Stream;
use sea_orm::{DatabaseConnection, DbErr, ExecResult, QueryResult, RuntimeErr, TransactionOptions};

use super::client::{CallError, Forwarder};
use super::litefs::{Follower, Role};
use super::rpc::Resolution;
use super::sqlite::Scratch;
use super::statement::{self, Kind};
use super::transaction::ClusterTransaction;
use super::wire::{self, DbFailure, ErrorPhase, Outcome, Pos, Reply, Request};
use super::writer::{self, Method, Native, Sql, Writer, Written};
use super::{ClusterError, consistency, metrics};

/// Everything a node in a LiteFS cluster needs to forward.
pub(crate) struct Node {
    pub follower: Arc<Follower>,
    pub forwarder: Forwarder,
    pub scratch: Scratch,
    /// Wait for the commit's position before returning a forwarded result.
    pub catch_up: bool,
    /// The forwarded work this node runs as primary, for a graceful stop.
    pub drain: Arc<crate::drain::Drain>,
}

pub(crate) struct Inner {
    /// The primary's one writer, and the local pools (see [`super::pools`]).
    pub writer: Arc<Writer>,
    /// `None` for a standalone node.
    pub node: Option<Node>,
    /// How long a write may wait for the writer, a forwarded call for its answer, and a forwarded
    /// write for this node to catch up.
    pub timeout: Duration,
    /// Where this node's RPC listens (cluster mode only).
    pub rpc_addr: Option<std::net::SocketAddr>,
}

/// A SeaORM connection that forwards writes from LiteFS replicas to the primary. Cheap to clone.
#[derive(Clone)]
pub struct ClusterConnection {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for ClusterConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConnection")
            .field("role", &self.role().as_str())
            .field("rpc_addr", &self.inner.rpc_addr)
            .field("forward_timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// A statement's answer, in the shape SeaORM's method asked for.
pub enum Answer {
    Exec(ExecResult),
    Row(Option<QueryResult>),
    Rows(Vec<QueryResult>),
}

impl Answer {
    pub(crate) fn from_native(native: Native) -> Answer {
        match native {
            Native::Exec(result) => Answer::Exec(result.into()),
            Native::Row(row) => Answer::Row(row.map(QueryResult::from)),
            Native::Rows(rows) => Answer::Rows(rows.into_iter().map(QueryResult::from).collect()),
        }
    }

    pub fn exec(self) -> Result<ExecResult, DbErr> {
        match self {
            Answer::Exec(result) => Ok(result),
            _ => Err(DbErr::Exec(RuntimeErr::Internal(
                "rows where a count was expected".into(),
            ))),
        }
    }

    pub fn row(self) -> Result<Option<QueryResult>, DbErr> {
        match self {
            Answer::Row(row) => Ok(row),
            Answer::Rows(rows) => Ok(rows.into_iter().next()),
            Answer::Exec(_) => Err(DbErr::Query(RuntimeErr::Internal(
                "a count where rows were expected".into(),
            ))),
        }
    }

    pub fn rows(self) -> Result<Vec<QueryResult>, DbErr> {
        match self {
            Answer::Rows(rows) => Ok(rows),
            Answer::Row(row) => Ok(row.into_iter().collect()),
            Answer::Exec(_) => Err(DbErr::Query(RuntimeErr::Internal(
                "a count where rows were expected".into(),
            ))),
        }
    }
}

impl ClusterConnection {
    pub(crate) fn new(inner: Inner) -> Self {
        ClusterConnection {
            inner: Arc::new(inner),
        }
    }

    /// This node's role right now.
    pub fn role(&self) -> Role {
        self.inner
            .node
            .as_ref()
            .map_or(Role::Standalone, |n| n.follower.role())
    }

    /// This node's own database, as a plain SeaORM connection: for migrations at start-up on the
    /// primary or standalone (`Migrator::up(&db.local(), None)`: SeaORM's migrator takes a
    /// `DatabaseConnection`, not this handle). It bypasses the writer and forwarding, so use the
    /// handle itself for everything else.
    ///
    /// On a node that does not write locally right now (a replica, or one that knows no
    /// primary) it is read-only (`PRAGMA query_only`): a write through it fails at once with
    /// SQLite's `SQLITE_READONLY` ("attempt to write a readonly database"), before it reaches
    /// the replica's file, and is not forwarded. A connection taken on the primary that loses the
    /// lease later has its writes refused by LiteFS: nothing commits either way.
    pub fn local(&self) -> DatabaseConnection {
        let databases = self.inner.writer.databases.current();
        if self.role().writes_locally() {
            databases.rw.clone()
        } else {
            databases.ro.clone()
        }
    }

    /// Whether this node can forward writes now, asked within `timeout` without writing
    /// anything: on a replica, an authenticated RPC connection to the primary is opened (and
    /// kept for the next write) or found open. A wrong secret is
    /// [`ClusterError::AuthFailed`]: a setting to fix, not a moment to wait out, which a
    /// readiness check can tell apart from a primary that is away
    /// ([`ClusterError::PrimaryUnreachable`], [`ClusterError::NoPrimary`]). The primary and a
    /// standalone node write locally: `Ok`. A refusal of the secret is remembered for 10 s:
    /// checks meanwhile answer it again without connecting, so a readiness probe is never a
    /// connection to the primary each time.
    pub async fn check_primary(&self, timeout: Duration) -> Result<(), ClusterError> {
        match &self.inner.node {
            Some(node) if !self.role().writes_locally() => {
                // A timeout meaning "no limit" (Duration::MAX) waits an hour, not past the clock.
                let now = Instant::now();
                let deadline = now
                    .checked_add(timeout)
                    .unwrap_or(now + Duration::from_secs(3600));
                node.forwarder.check(deadline).await
            }
            _ => Ok(()),
        }
    }

    /// Waits until this node's database includes `pos` (a write seen elsewhere), at most
    /// `timeout`. A standalone node has everything.
    pub async fn wait_for(&self, pos: Pos, timeout: Duration) -> Result<(), ClusterError> {
        match &self.inner.node {
            Some(node) => node.follower.wait_for(pos, timeout).await,
            None => Ok(()),
        }
    }

    /// This node's replication position (`None` standalone, or before the database exists).
    pub fn position(&self) -> Option<Pos> {
        self.inner.node.as_ref()?.follower.position()
    }

    /// Runs the write procedure `P` in one transaction: here on the primary; from a replica in
    /// one round trip to the primary, which must have `P` registered (see [`crate::Procedure`]).
    pub async fn call<P: crate::Procedure>(&self, args: P::Args) -> Result<P::Output, P::Error> {
        crate::procedure::call::<P>(self, args).await
    }

    /// How many times this node replaced its SQLite pools because LiteFS mounted anew: SQLite
    /// maps the WAL index from the mount, so connections to an old mount are abandoned, never
    /// touched again.
    pub fn pool_generation(&self) -> u64 {
        self.inner.writer.databases.generation()
    }

    /// Writes waiting for this node's writer right now (0 on a replica: its writes wait on the
    /// primary).
    pub fn writer_queue_depth(&self) -> usize {
        self.inner.writer.queue_depth()
    }

    /// Stops this node's side of forwarding gracefully, for a process about to exit (a deploy, a
    /// stop): forwarded work that arrives from this call on is refused as not committed (a 503
    /// on the replica that sent it); the work already begun here (forwarded writes and
    /// procedures running, remote transactions open) runs to its end; then, once no call has
    /// arrived for a moment (replicas told "shutting down" stop sending), the RPC connections
    /// close with their answers sent. So no replica is left not knowing whether its write
    /// committed. At most `grace`; the future resolves to whether everything ended in time.
    /// Start it with the HTTP server's own graceful shutdown, and let the process exit once both
    /// are done.
    pub fn drain(
        &self,
        grace: Duration,
    ) -> impl std::future::Future<Output = bool> + Send + 'static {
        let draining = self.inner.node.as_ref().map(|n| n.drain.drain(grace));
        async move {
            match draining {
                Some(draining) => draining.await,
                None => true,
            }
        }
    }

    /// How long a write may wait, and a forwarded call take.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    fn writes_locally(&self) -> bool {
        self.role().writes_locally()
    }

    /// Runs one SQL string from outside any transaction (see the module docs).
    async fn dispatch(&self, sql: Sql, method: Method) -> Result<Answer, DbErr> {
        let pools = self
            .inner
            .writer
            .databases
            .pools()
            .map_err(ClusterError::into_db_err)?;
        let kind = pools.classifier.classify(sql.text()).await;
        if let Some(why) = statement::refusal(&kind, false) {
            return Err(ClusterError::Refused(why).into_db_err());
        }
        match (&self.inner.node, kind) {
            (node, Kind::Read) => {
                let mut conn = pools
                    .ro
                    .get_sqlite_connection_pool()
                    .acquire()
                    .await
                    .map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))))?;
                let result = if crate::interruptible::active() {
                    let mut watched = writer::WatchedRead::new(conn).await;
                    let result = writer::run_native(watched.conn(), &sql, method).await;
                    watched.done();
                    result
                } else {
                    writer::run_native(&mut conn, &sql, method).await
                };
                let result = result.map_err(|e| sqlx_db_err(method, e));
                if node.is_some() && !self.writes_locally() {
                    backstop(&result);
                }
                result.map(Answer::from_native)
            }
            (Some(node), kind) if !self.writes_locally() => {
                self.forward(node, sql, method, kind == Kind::WriteAlone)
                    .await
            }
            (_, kind) => self.write_here(sql, method, kind == Kind::WriteAlone).await,
        }
    }

    /// A write on the primary (or standalone), through the one writer.
    async fn write_here(&self, sql: Sql, method: Method, alone: bool) -> Result<Answer, DbErr> {
        let deadline = Instant::now() + self.inner.timeout;
        let written = self
            .inner
            .writer
            .autocommit(sql.clone(), method, None, alone, deadline)
            .await
            .map_err(|r| ClusterError::from_refusal("this node", r).into_db_err())?;
        match written {
            Written::Fresh(Ok(native), pos) => {
                if let Some(pos) = pos {
                    consistency::record(pos);
                }
                Ok(Answer::from_native(native))
            }
            Written::Fresh(Err(err), _) => match &self.inner.node {
                // The lease moved away while this node was writing: LiteFS refused the write, so
                // nothing committed here; the new primary runs it instead.
                Some(node) if refused_by_litefs(&err) && !self.writes_locally() => {
                    tracing::warn!(error = %err, "this node stopped being primary mid-write: forwarding it");
                    self.forward(node, sql, method, alone).await
                }
                _ => Err(sqlx_db_err(method, err)),
            },
            Written::Stored(..) => unreachable!("local writes carry no key"),
            Written::Unconfirmed(reason) => Err(ClusterError::OutcomeUnknown {
                addr: "this node, LiteFS".into(),
                reason,
            }
            .into_db_err()),
        }
    }

    /// Forwards one autocommit write with a fresh idempotency key, and waits until this node has
    /// replicated its commit. When the answer is lost, the primary is asked what became of the
    /// key, so the result is definite whenever the primary can be reached at all.
    ///
    /// A statement that runs alone (`VACUUM`, `PRAGMA optimize`: outside any transaction, so its
    /// key is never stored with it) cannot be asked about: a lost answer is unknown.
    async fn forward(
        &self,
        node: &Node,
        sql: Sql,
        method: Method,
        alone: bool,
    ) -> Result<Answer, DbErr> {
        let started = Instant::now();
        let request = request_for(node, sql, method).await?;
        let key = idempotency_key();
        let deadline = Instant::now() + node.forwarder.timeout;
        let sent = node
            .forwarder
            .call_new(deadline, |client, ctx| {
                let request = request.clone();
                async move { client.run(ctx, key, request).await }
            })
            .await;
        let outcome = match sent {
            Ok((outcome, _)) => outcome,
            Err(CallError::Failed(err)) => return Err(err.into_db_err()),
            Err(CallError::Lost { addr, reason }) if alone => {
                return Err(ClusterError::OutcomeUnknown {
                    addr,
                    reason: format!(
                        "{reason}; it runs outside any transaction, so the primary keeps no record \
                         of it to ask about"
                    ),
                }
                .into_db_err());
            }
            Err(CallError::Lost { addr, reason }) => {
                resolve(&self.inner.writer, node, key, addr, reason).await?
            }
        };
        let answer = settle(node, outcome, phase_of(method)).await;
        metrics::forwarded(started.elapsed());
        answer_from_reply(node, answer?, method).await
    }
}

/// Asks the primary what became of the write `key` whose answer from `addr` was lost; a primary
/// that cannot be asked yet (restarting after a deploy or a crash, the lease moving) is asked
/// again, whoever it is by then, until the forward timeout.
pub(crate) async fn resolve(
    writer: &Arc<Writer>,
    node: &Node,
    key: u128,
    addr: String,
    reason: String,
) -> Result<Outcome, DbErr> {
    tracing::warn!(primary = %addr, %reason, "a forwarded answer was lost: asking the primary what became of the write");
    let asked_since = Instant::now();
    let deadline = asked_since + node.forwarder.timeout;
    let mut pause = RESOLVE_FIRST_PAUSE;
    let mut asking = futures::stream::FuturesUnordered::new();
    loop {
        let asked = if node.follower.role().writes_locally() {
            // The lease came here meanwhile: this node's writer can say, as any primary would.
            let here = "this node".to_owned();
            match writer.resolve(key, deadline).await {
                Ok(resolution) => Ok((resolution, here)),
                Err(refusal) => Err(CallError::Failed(ClusterError::from_refusal(
                    &here, refusal,
                ))),
            }
        } else {
            ask_primary(node, key, deadline, &mut asking).await
        };
        let (transient, failed) = match asked {
            Ok((Resolution::Committed(outcome), _)) => return Ok(outcome),
            Ok((Resolution::NotCommitted, _)) => {
                return Err(ClusterError::NotCommitted {
                    reason: format!(
                        "its answer was lost ({reason}), and the primary confirmed it did not commit"
                    ),
                }
                .into_db_err());
            }
            Err(CallError::Failed(err)) => {
                (err.is_transient(), format!("asking again failed: {err}"))
            }
            Err(CallError::Lost { reason: again, .. }) => {
                (true, format!("the last question: {again}"))
            }
        };
        // The primary may be restarting (a deploy, a crash) or the lease moving: asking is safe
        // to repeat, and whoever is primary next can answer.
        let remaining = deadline.saturating_duration_since(Instant::now());
        if transient && !remaining.is_zero() {
            tracing::info!(%failed, ?pause, "the primary cannot say yet what became of the write: asking again");
            tokio::time::sleep(pause.min(remaining)).await;
            pause = (pause * 2).min(RESOLVE_MAX_PAUSE);
            continue;
        }
        // The whole time asked, not only the last question's (one asked at the end of the window
        // had none).
        let asked_ms = asked_since.elapsed().as_millis();
        return Err(ClusterError::OutcomeUnknown {
            addr,
            reason: format!("{reason}; asked for {asked_ms} ms without an answer ({failed})"),
        }
        .into_db_err());
    }
}

/// Questions about `key` still waiting for an answer (see [`ask_primary`]).
type Asking<'a> = futures::stream::FuturesUnordered<
    futures::future::BoxFuture<'a, Result<(Resolution, super::client::Addr), CallError>>,
>;

/// Asks the primary about `key` once more, and returns the first answer to this question or to
/// one asked before that is still waiting. Every question has the whole window: one waiting in a
/// busy primary's queue keeps its place there. While none is answered, every share of the window
/// (1/[`RESOLVE_SHARES`]) the same question goes on a new connection as well, without dropping
/// the others: a connection or handshake gone silent (half-open) does not take the window with it.
async fn ask_primary<'a>(
    node: &'a Node,
    key: u128,
    deadline: Instant,
    asking: &mut Asking<'a>,
) -> Result<(Resolution, super::client::Addr), CallError> {
    use futures::StreamExt;
    let ask = || -> futures::future::BoxFuture<'a, _> {
        Box::pin(
            node.forwarder
                .call(deadline, None, move |client, ctx| async move {
                    client.resolve(ctx, key).await
                }),
        )
    };
    asking.push(ask());
    let share = node.forwarder.timeout / RESOLVE_SHARES;
    loop {
        tokio::select! {
            Some(answer) = asking.next() => return answer,
            () = tokio::time::sleep(share) => {
                // Only a connection that has had a good part of a share to answer is suspect: one
                // opened just now (by another question waiting on the same silence) is shared,
                // so that questions asked together open one connection per share, not one each.
                let now = Instant::now();
                node.forwarder
                    .forget_primary_older_than(now.checked_sub(share / 2).unwrap_or(now));
                asking.push(ask());
            }
        }
    }
}

/// How long [`resolve`] waits before asking again a primary that could not be asked, at first
/// and at most (doubling in between).
const RESOLVE_FIRST_PAUSE: Duration = Duration::from_millis(20);
const RESOLVE_MAX_PAUSE: Duration = Duration::from_millis(500);
/// After this share of the forward timeout (1/N) with no answer, [`ask_primary`] asks on a new
/// connection too.
const RESOLVE_SHARES: u32 = 4;

/// Whether a write failed because LiteFS refused it (this node is no longer primary): SQLite's
/// I/O error or read-only database. Such a write did not commit.
pub(crate) fn refused_by_litefs(err: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = err else {
        return false;
    };
    db.code()
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(litefs_refusal)
}

/// Whether SQLite's (extended) result `code` is how LiteFS refuses a write on a node that is not
/// primary (see [`refused_by_litefs`]).
pub(crate) fn litefs_refusal(code: i32) -> bool {
    matches!(
        code & 0xff,
        libsqlite3_sys::SQLITE_IOERR | libsqlite3_sys::SQLITE_READONLY
    )
}

/// A fresh idempotency key: time first, so the primary's key table grows at one end (a small
/// change per write for LiteFS to ship, and old keys expire as one range), then 64 random bits.
pub(crate) fn idempotency_key() -> u128 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (u128::from(nanos) << 64) | u128::from(rand::random::<u64>())
}

/// The primary's answer, after waiting for its commit to reach this node. A failed write is
/// returned at once: it committed nothing to wait for. A committed write whose position does not
/// arrive within the bound is still a success: the request is marked stale instead.
pub(crate) async fn settle(
    node: &Node,
    outcome: Outcome,
    phase: ErrorPhase,
) -> Result<Reply, DbErr> {
    let reply = match outcome.result {
        Ok(reply) => reply,
        Err(failure) => return Err(rebuild_error(node, failure, phase).await),
    };
    if let Some(pos) = outcome.pos {
        consistency::record(pos);
        if node.catch_up
            && let Err(err) = node.follower.wait_for(pos, node.forwarder.timeout).await
        {
            tracing::warn!(%err, "a forwarded write committed but has not reached this node yet");
            metrics::stale_answer();
            consistency::record_stale();
        }
    }
    Ok(reply)
}

/// The same `DbErr` SeaORM would have returned had the statement failed locally.
pub(crate) async fn rebuild_error(node: &Node, failure: DbFailure, phase: ErrorPhase) -> DbErr {
    let runtime = match failure.sqlite {
        Some((code, message)) => {
            RuntimeErr::SqlxError(Arc::new(node.scratch.error(code, &message).await))
        }
        None => RuntimeErr::Internal(failure.message),
    };
    match phase {
        ErrorPhase::Exec => DbErr::Exec(runtime),
        ErrorPhase::Query => DbErr::Query(runtime),
        ErrorPhase::Conn => DbErr::Conn(runtime),
    }
}

pub(crate) fn phase_of(method: Method) -> ErrorPhase {
    match method {
        Method::Execute => ErrorPhase::Exec,
        Method::QueryOne | Method::QueryAll => ErrorPhase::Query,
    }
}

/// SeaORM's `DbErr` for a failed statement, as its sqlx driver makes it.
pub(crate) fn sqlx_db_err(method: Method, err: sqlx::Error) -> DbErr {
    match method {
        Method::Execute => DbErr::Exec(RuntimeErr::SqlxError(Arc::new(err))),
        Method::QueryOne | Method::QueryAll => DbErr::Query(RuntimeErr::SqlxError(Arc::new(err))),
    }
}

/// The wire request for `sql`, with parameters encoded as sqlx would bind them here.
pub(crate) async fn request_for(node: &Node, sql: Sql, method: Method) -> Result<Request, DbErr> {
    let stmt = match sql {
        Sql::Raw(text) => return Ok(Request::ExecuteUnprepared(text)),
        Sql::Wire(stmt) => stmt,
        Sql::Sea(stmt) => {
            let params = node
                .scratch
                .encode_params(stmt.values.as_ref())
                .await
                .map_err(|e| DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e))))?;
            wire::Statement {
                sql: stmt.sql,
                params,
            }
        }
    };
    Ok(match method {
        Method::Execute => Request::Execute(stmt),
        Method::QueryOne => Request::QueryOne(stmt),
        Method::QueryAll => Request::QueryAll(stmt),
    })
}

/// Rebuilds the primary's reply as genuine sqlx values, in the shape `method` asked for.
pub(crate) async fn answer_from_reply(
    node: &Node,
    reply: Reply,
    method: Method,
) -> Result<Answer, DbErr> {
    match (reply, method) {
        (
            Reply::Exec {
                rows_affected,
                last_insert_rowid,
            },
            Method::Execute,
        ) => node
            .scratch
            .exec_result(rows_affected, last_insert_rowid)
            .await
            .map(|r| Answer::Exec(r.into()))
            .map_err(|e| DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e)))),
        (Reply::Rows(rows), Method::QueryOne | Method::QueryAll) => {
            let rows = node
                .scratch
                .rows(&rows)
                .await
                .map_err(|e| DbErr::Query(RuntimeErr::SqlxError(Arc::new(e))))?;
            let mut rows: Vec<QueryResult> = rows.into_iter().map(QueryResult::from).collect();
            Ok(if method == Method::QueryOne {
                rows.truncate(1);
                Answer::Row(rows.pop())
            } else {
                Answer::Rows(rows)
            })
        }
        _ => Err(DbErr::Exec(RuntimeErr::Internal(
            "the primary's answer does not match the request".into(),
        ))),
    }
}

/// Counts a write that reached a replica's read-only connection (SQLITE_READONLY).
fn backstop<T>(result: &Result<T, DbErr>) {
    if let Err(DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) =
        result
        && let sqlx::Error::Database(db) = e.as_ref()
        && db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| c & 0xff == libsqlite3_sys::SQLITE_READONLY)
    {
        metrics::backstop_hit();
        tracing::error!(error = %db, "a write reached this replica's read-only connection (classification bug)");
    }
}

/// SeaORM's `ConnectionTrait` and `StreamTrait` for a handle with a `dispatch(sql, method)`: the
/// connection and its transactions route every method the same way.
macro_rules! connection_traits {
    ($handle:ty) => {
        #[async_trait::async_trait]
        impl sea_orm::ConnectionTrait for $handle {
            fn get_database_backend(&self) -> sea_orm::DbBackend {
                sea_orm::DbBackend::Sqlite
            }

            async fn execute_raw(
                &self,
                stmt: sea_orm::Statement,
            ) -> Result<sea_orm::ExecResult, sea_orm::DbErr> {
                self.dispatch(Sql::Sea(stmt), Method::Execute).await?.exec()
            }

            async fn execute_unprepared(
                &self,
                sql: &str,
            ) -> Result<sea_orm::ExecResult, sea_orm::DbErr> {
                self.dispatch(Sql::Raw(sql.to_owned()), Method::Execute)
                    .await?
                    .exec()
            }

            async fn query_one_raw(
                &self,
                stmt: sea_orm::Statement,
            ) -> Result<Option<sea_orm::QueryResult>, sea_orm::DbErr> {
                self.dispatch(Sql::Sea(stmt), Method::QueryOne).await?.row()
            }

            async fn query_all_raw(
                &self,
                stmt: sea_orm::Statement,
            ) -> Result<Vec<sea_orm::QueryResult>, sea_orm::DbErr> {
                self.dispatch(Sql::Sea(stmt), Method::QueryAll)
                    .await?
                    .rows()
            }
        }

        /// Rows as a stream, read in full first: the wrapper keeps no statement open across
        /// awaits of the caller.
        impl sea_orm::StreamTrait for $handle {
            type Stream<'a> = $crate::connection::RowStream<'a>;

            fn get_database_backend(&self) -> sea_orm::DbBackend {
                sea_orm::DbBackend::Sqlite
            }

            fn stream_raw<'a>(
                &'a self,
                stmt: sea_orm::Statement,
            ) -> std::pin::Pin<
                Box<dyn Future<Output = Result<Self::Stream<'a>, sea_orm::DbErr>> + 'a + Send>,
            > {
                Box::pin(async move {
                    use sea_orm::ConnectionTrait;
                    let rows = self.query_all_raw(stmt).await?;
                    Ok(Box::pin(futures::stream::iter(rows.into_iter().map(Ok)))
                        as $crate::connection::RowStream<'a>)
                })
            }
        }
    };
}
pub(crate) use connection_traits;

connection_traits!(ClusterConnection);

/// Rows as a stream.
pub type RowStream<'a> = Pin<Box<dyn Stream<Item = Result<QueryResult, DbErr>> + Send + 'a>>;

impl ClusterConnection {
    /// Begins a transaction: a session on the primary from a replica, a local one (holding the
    /// writer) on the primary.
    async fn open(&self, _options: TransactionOptions) -> Result<ClusterTransaction, DbErr> {
        match &self.inner.node {
            Some(_) if !self.writes_locally() => {
                ClusterTransaction::begin_remote(self.inner.clone()).await
            }
            _ => ClusterTransaction::begin_local(self.inner.clone()).await,
        }
    }
}

super::transaction::transaction_trait!(ClusterConnection);

#[cfg(test)]
mod tests;
