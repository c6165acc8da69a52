//! [`ClusterConnection`]: the one handle the app uses. It implements SeaORM's `ConnectionTrait`,
//! `StreamTrait` and `TransactionTrait`; on a replica it sends every write to the primary and
//! returns the primary's result, and never attempts the write locally.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::Stream;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, RuntimeErr, Statement, StreamTrait, TransactionError, TransactionOptions,
    TransactionTrait,
};

use super::client::Forwarder;
use super::litefs::{Follower, Role};
use super::pools::Databases;
use super::sqlite::Scratch;
use super::transaction::ClusterTransaction;
use super::wire::{self, DbFailure, ErrorPhase, Outcome, Reply, Request};
use super::{ClusterError, consistency, metrics};

/// Everything a node in a LiteFS cluster needs to forward.
pub(crate) struct Node {
    pub follower: Arc<Follower>,
    pub forwarder: Forwarder,
    pub scratch: Scratch,
    /// Wait for the commit's TXID before returning a forwarded result.
    pub catch_up: bool,
}

pub(crate) struct Inner {
    /// The local SQLite pools (see [`super::pools`]).
    pub databases: Arc<Databases>,
    /// `None` for a standalone node.
    pub node: Option<Node>,
}

/// A SeaORM connection that forwards writes from LiteFS replicas to the primary. Cheap to clone.
#[derive(Clone)]
pub struct ClusterConnection {
    pub(crate) inner: Arc<Inner>,
}

/// Where a statement runs.
enum Route<'a> {
    /// Standalone, or the primary: SQLite here is the truth.
    Local(DatabaseConnection),
    /// A replica's read-only connection: a write here would be a classification bug.
    ReplicaRead(DatabaseConnection),
    Forward(&'a Node),
}

impl ClusterConnection {
    /// A node without LiteFS: everything runs on `db`.
    pub fn standalone(db: DatabaseConnection) -> Self {
        ClusterConnection {
            inner: Arc::new(Inner {
                databases: Arc::new(Databases::standalone(db)),
                node: None,
            }),
        }
    }

    /// This node's role right now.
    pub fn role(&self) -> Role {
        self.inner
            .node
            .as_ref()
            .map_or(Role::Standalone, |n| n.follower.role())
    }

    /// The local connection that writes (valid on the primary or standalone only).
    pub fn local(&self) -> DatabaseConnection {
        self.inner.databases.current().rw.clone()
    }

    pub fn follower(&self) -> Option<&Arc<Follower>> {
        self.inner.node.as_ref().map(|n| &n.follower)
    }

    /// Waits until this node's database includes `txid` (a write seen elsewhere), at most
    /// `timeout`. A standalone node has everything.
    pub async fn wait_for_txid(&self, txid: u64, timeout: Duration) -> Result<(), ClusterError> {
        match &self.inner.node {
            Some(node) => node.follower.wait_for_txid(txid, timeout).await,
            None => Ok(()),
        }
    }

    /// How long a forwarded call, or a wait for replication, may take.
    pub fn timeout(&self) -> Duration {
        self.inner
            .node
            .as_ref()
            .map_or(Duration::from_secs(5), |n| n.forwarder.timeout)
    }

    /// The SQL to check after running it locally, when its TXID may be needed: in cluster mode,
    /// inside [`consistency::track_writes`]. `None` otherwise, so plain use pays nothing.
    fn tracked_sql(&self, sql: &str) -> Option<String> {
        (self.inner.node.is_some() && consistency::tracking()).then(|| sql.to_owned())
    }

    /// After a local statement: if it was a write, notes the TXID that includes it.
    async fn note_local_write<T>(
        &self,
        result: Result<T, DbErr>,
        sql: Option<String>,
    ) -> Result<T, DbErr> {
        if let (Ok(_), Some(sql), Some(node)) = (&result, sql, &self.inner.node) {
            let pools = self.inner.databases.current();
            if pools.classifier.is_read_only(&sql).await != Some(true)
                && let Ok(txid) = node.follower.mount.position()
            {
                consistency::record(txid);
            }
        }
        result
    }

    async fn route(&self, sql: &str) -> Route<'_> {
        let pools = self.inner.databases.current();
        let Some(node) = &self.inner.node else {
            return Route::Local(pools.rw.clone());
        };
        if node.follower.role().writes_locally() {
            return Route::Local(pools.rw.clone());
        }
        match pools.classifier.is_read_only(sql).await {
            Some(true) => Route::ReplicaRead(pools.ro.clone()),
            // A write, or SQL this replica cannot prepare yet: the primary decides.
            Some(false) | None => Route::Forward(node),
        }
    }

    /// Forwards one autocommit statement and waits until this node has replicated its commit.
    /// The write carries a fresh idempotency key, so it is safely sent again when no reply
    /// comes back: the primary runs it at most once.
    async fn forward(node: &Node, request: Request) -> Result<Reply, DbErr> {
        let started = Instant::now();
        let key = idempotency_key();
        let (outcome, _addr) = node
            .forwarder
            .call_idempotent(|client, ctx| {
                let request = request.clone();
                async move { client.run(ctx, Some(key), request).await }
            })
            .await
            .map_err(ClusterError::into_db_err)?;
        let reply = settle(node, outcome).await;
        metrics::forwarded(started.elapsed());
        reply
    }
}

/// A fresh idempotency key: time first, so the primary's key table grows at one end (a small
/// change per write for LiteFS to ship), then 64 random bits.
fn idempotency_key() -> u128 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (u128::from(nanos) << 64) | u128::from(rand::random::<u64>())
}

/// Waits for the commit's TXID to reach this node, then returns the primary's result.
pub(crate) async fn settle(node: &Node, outcome: Outcome) -> Result<Reply, DbErr> {
    if let Some(txid) = outcome.txid {
        consistency::record(txid);
    }
    if let Some(txid) = outcome.txid.filter(|_| node.catch_up) {
        node.follower
            .wait_for_txid(txid, node.forwarder.timeout)
            .await
            .map_err(ClusterError::into_db_err)?;
    }
    match outcome.result {
        Ok(reply) => Ok(reply),
        Err(failure) => Err(rebuild_error(node, failure).await),
    }
}

/// The same `DbErr` SeaORM would have returned had the statement failed locally.
pub(crate) async fn rebuild_error(node: &Node, failure: DbFailure) -> DbErr {
    let runtime = match failure.sqlite {
        Some((code, message)) => {
            RuntimeErr::SqlxError(Arc::new(node.scratch.error(code, &message).await))
        }
        None => RuntimeErr::Internal(failure.message),
    };
    match failure.phase {
        ErrorPhase::Exec => DbErr::Exec(runtime),
        ErrorPhase::Query => DbErr::Query(runtime),
        ErrorPhase::Conn => DbErr::Conn(runtime),
    }
}

pub(crate) async fn wire_statement(
    node: &Node,
    stmt: &Statement,
) -> Result<wire::Statement, DbErr> {
    let params = node
        .scratch
        .encode_params(stmt.values.as_ref())
        .await
        .map_err(|e| DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e))))?;
    Ok(wire::Statement {
        sql: stmt.sql.clone(),
        params,
    })
}

pub(crate) async fn exec_result(node: &Node, reply: Reply) -> Result<ExecResult, DbErr> {
    match reply {
        Reply::Exec {
            rows_affected,
            last_insert_rowid,
        } => node
            .scratch
            .exec_result(rows_affected, last_insert_rowid)
            .await
            .map(ExecResult::from)
            .map_err(|e| DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e)))),
        Reply::Rows(_) => Err(DbErr::Exec(RuntimeErr::Internal(
            "the primary answered rows to an execute".into(),
        ))),
    }
}

pub(crate) async fn query_results(node: &Node, reply: Reply) -> Result<Vec<QueryResult>, DbErr> {
    match reply {
        Reply::Rows(rows) => Ok(node
            .scratch
            .rows(&rows)
            .await
            .map_err(|e| DbErr::Query(RuntimeErr::SqlxError(Arc::new(e))))?
            .into_iter()
            .map(QueryResult::from)
            .collect()),
        Reply::Exec { .. } => Err(DbErr::Query(RuntimeErr::Internal(
            "the primary answered a count to a query".into(),
        ))),
    }
}

/// Counts a write that reached a replica's read-only connection (SQLITE_READONLY).
fn backstop<T>(result: Result<T, DbErr>) -> Result<T, DbErr> {
    if let Err(DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) =
        &result
        && let sqlx::Error::Database(db) = e.as_ref()
        && db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| c & 0xff == libsqlite3_sys::SQLITE_READONLY)
    {
        metrics::backstop_hit();
        tracing::error!(error = %db, "a write reached this replica's read-only connection (classification bug)");
    }
    result
}

#[async_trait::async_trait]
impl ConnectionTrait for ClusterConnection {
    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Sqlite
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        match self.route(&stmt.sql).await {
            Route::Local(db) => {
                let tracked = self.tracked_sql(&stmt.sql);
                self.note_local_write(db.execute_raw(stmt).await, tracked)
                    .await
            }
            Route::ReplicaRead(db) => backstop(db.execute_raw(stmt).await),
            Route::Forward(node) => {
                let request = Request::Execute(wire_statement(node, &stmt).await?);
                exec_result(node, Self::forward(node, request).await?).await
            }
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        match self.route(sql).await {
            Route::Local(db) => {
                let tracked = self.tracked_sql(sql);
                self.note_local_write(db.execute_unprepared(sql).await, tracked)
                    .await
            }
            Route::ReplicaRead(db) => backstop(db.execute_unprepared(sql).await),
            Route::Forward(node) => {
                exec_result(
                    node,
                    Self::forward(node, Request::ExecuteUnprepared(sql.to_owned())).await?,
                )
                .await
            }
        }
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match self.route(&stmt.sql).await {
            Route::Local(db) => {
                let tracked = self.tracked_sql(&stmt.sql);
                self.note_local_write(db.query_one_raw(stmt).await, tracked)
                    .await
            }
            Route::ReplicaRead(db) => backstop(db.query_one_raw(stmt).await),
            Route::Forward(node) => {
                let request = Request::QueryOne(wire_statement(node, &stmt).await?);
                Ok(query_results(node, Self::forward(node, request).await?)
                    .await?
                    .into_iter()
                    .next())
            }
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match self.route(&stmt.sql).await {
            Route::Local(db) => {
                let tracked = self.tracked_sql(&stmt.sql);
                self.note_local_write(db.query_all_raw(stmt).await, tracked)
                    .await
            }
            Route::ReplicaRead(db) => backstop(db.query_all_raw(stmt).await),
            Route::Forward(node) => {
                let request = Request::QueryAll(wire_statement(node, &stmt).await?);
                query_results(node, Self::forward(node, request).await?).await
            }
        }
    }
}

/// Rows as a stream. Forwarded and local results alike are read in full first: the wrapper keeps
/// no statement open across awaits of the caller.
pub type RowStream<'a> = Pin<Box<dyn Stream<Item = Result<QueryResult, DbErr>> + Send + 'a>>;

impl StreamTrait for ClusterConnection {
    type Stream<'a> = RowStream<'a>;

    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Sqlite
    }

    fn stream_raw<'a>(
        &'a self,
        stmt: Statement,
    ) -> Pin<Box<dyn Future<Output = Result<Self::Stream<'a>, DbErr>> + 'a + Send>> {
        read_all(self, stmt)
    }
}

/// `StreamTrait::stream_raw` for both handles: the rows, read in full, as a stream.
pub(crate) fn read_all<'a, C: ConnectionTrait + Send>(
    conn: &'a C,
    stmt: Statement,
) -> Pin<Box<dyn Future<Output = Result<RowStream<'a>, DbErr>> + 'a + Send>> {
    Box::pin(async move {
        let rows = conn.query_all_raw(stmt).await?;
        Ok(Box::pin(futures::stream::iter(rows.into_iter().map(Ok))) as RowStream<'a>)
    })
}

/// Options for transactions on the primary: SQLite's `BEGIN IMMEDIATE`, the same as a replica's
/// remote transaction gets, so a transaction never fails to upgrade its read lock to a write lock.
fn immediate(mut options: TransactionOptions) -> TransactionOptions {
    options
        .sqlite_transaction_mode
        .get_or_insert(sea_orm::SqliteTransactionMode::Immediate);
    options
}

impl ClusterConnection {
    async fn begin_local(&self, options: TransactionOptions) -> Result<DatabaseTransaction, DbErr> {
        self.inner
            .databases
            .current()
            .rw
            .begin_with_options(immediate(options))
            .await
    }
}

#[async_trait::async_trait]
impl TransactionTrait for ClusterConnection {
    type Transaction = ClusterTransaction;

    async fn begin(&self) -> Result<ClusterTransaction, DbErr> {
        self.begin_with_options(TransactionOptions::default()).await
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<sea_orm::IsolationLevel>,
        access_mode: Option<sea_orm::AccessMode>,
    ) -> Result<ClusterTransaction, DbErr> {
        self.begin_with_options(TransactionOptions {
            isolation_level,
            access_mode,
            ..Default::default()
        })
        .await
    }

    async fn begin_with_options(
        &self,
        options: TransactionOptions,
    ) -> Result<ClusterTransaction, DbErr> {
        match &self.inner.node {
            Some(node) if !node.follower.role().writes_locally() => {
                ClusterTransaction::begin_remote(self.inner.clone()).await
            }
            _ => Ok(ClusterTransaction::local(
                self.begin_local(options).await?,
                self.inner.clone(),
            )),
        }
    }

    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c ClusterTransaction,
            ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        let txn = self.begin().await.map_err(TransactionError::Connection)?;
        super::transaction::run(txn, callback).await
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        isolation_level: Option<sea_orm::IsolationLevel>,
        access_mode: Option<sea_orm::AccessMode>,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c ClusterTransaction,
            ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        let txn = self
            .begin_with_config(isolation_level, access_mode)
            .await
            .map_err(TransactionError::Connection)?;
        super::transaction::run(txn, callback).await
    }
}
