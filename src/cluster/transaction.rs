//! [`ClusterTransaction`]: a local SeaORM transaction on the primary, or on a replica a session on
//! the primary (`BEGIN IMMEDIATE` there) where every statement, reads included, runs. Nesting uses
//! savepoints. A transaction dropped without commit is rolled back.

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, ExecResult, QueryResult, Statement,
    StreamTrait, TransactionError, TransactionOptions, TransactionSession, TransactionTrait,
};

use super::connection::{
    Inner, Node, RowStream, exec_result, query_results, read_all, settle, wire_statement,
};
use super::wire::{Reply, Request};
use super::{ClusterError, consistency, metrics};

/// A remote transaction's session on the primary, shared by its savepoints.
struct Session {
    id: u64,
    /// The primary that holds the session; every call of the transaction goes there.
    addr: String,
    /// Savepoint rollbacks of nested transactions dropped without commit, sent before the next call.
    pending: Mutex<Vec<String>>,
}

enum Kind {
    /// `None` once committed or rolled back.
    Local(Option<DatabaseTransaction>),
    Remote {
        session: Arc<Session>,
        depth: u32,
        open: bool,
    },
}

/// A transaction of a [`super::ClusterConnection`].
pub struct ClusterTransaction {
    kind: Kind,
    cluster: Arc<Inner>,
}

impl ClusterTransaction {
    pub(crate) fn local(txn: DatabaseTransaction, cluster: Arc<Inner>) -> Self {
        ClusterTransaction {
            kind: Kind::Local(Some(txn)),
            cluster,
        }
    }

    pub(crate) async fn begin_remote(cluster: Arc<Inner>) -> Result<Self, DbErr> {
        let node = cluster
            .node
            .as_ref()
            .expect("remote transactions exist only in cluster mode");
        let (id, addr) = node
            .forwarder
            .call(|client, ctx| async move { client.begin(ctx).await })
            .await
            .map_err(ClusterError::into_db_err)?;
        metrics::remote_transaction();
        let session = Arc::new(Session {
            id,
            addr,
            pending: Mutex::new(Vec::new()),
        });
        Ok(ClusterTransaction {
            kind: Kind::Remote {
                session,
                depth: 0,
                open: true,
            },
            cluster,
        })
    }

    fn node(&self) -> &Node {
        self.cluster
            .node
            .as_ref()
            .expect("remote transactions exist only in cluster mode")
    }

    fn local_txn(&self) -> Result<&DatabaseTransaction, DbErr> {
        match &self.kind {
            Kind::Local(Some(txn)) => Ok(txn),
            _ => Err(DbErr::Custom("the transaction is already finished".into())),
        }
    }

    /// Runs one statement in the remote session, after any savepoint rollbacks left by drops.
    async fn run_remote(&self, session: &Session, request: Request) -> Result<Reply, DbErr> {
        let node = self.node();
        let pending: Vec<String> = std::mem::take(&mut *session.pending.lock().unwrap());
        if !pending.is_empty() {
            self.call_session(
                node,
                session,
                Request::ExecuteUnprepared(pending.join("; ")),
            )
            .await?;
        }
        self.call_session(node, session, request).await
    }

    async fn call_session(
        &self,
        node: &Node,
        session: &Session,
        request: Request,
    ) -> Result<Reply, DbErr> {
        let id = session.id;
        let outcome = node
            .forwarder
            .call_pinned(&session.addr, |client, ctx| {
                let request = request.clone();
                async move { client.run_in(ctx, id, request).await }
            })
            .await
            .map_err(ClusterError::into_db_err)?;
        settle(node, outcome).await
    }

    async fn finish_remote(&mut self, commit: bool) -> Result<(), DbErr> {
        let Kind::Remote {
            session,
            depth,
            open,
        } = &mut self.kind
        else {
            unreachable!()
        };
        if !*open {
            return Err(DbErr::Custom("the transaction is already finished".into()));
        }
        *open = false;
        let (session, depth) = (session.clone(), *depth);
        if depth > 0 {
            let sql = if commit {
                format!("RELEASE sp{depth}")
            } else {
                format!("ROLLBACK TO sp{depth}; RELEASE sp{depth}")
            };
            return self
                .run_remote(&session, Request::ExecuteUnprepared(sql))
                .await
                .map(drop);
        }
        let node = self.node();
        let id = session.id;
        if commit {
            let outcome = node
                .forwarder
                .call_pinned_idempotent(&session.addr, |client, ctx| async move {
                    client.commit(ctx, id).await
                })
                .await
                .map_err(ClusterError::into_db_err)?;
            settle(node, outcome).await.map(drop)
        } else {
            node.forwarder
                .call_pinned(&session.addr, |client, ctx| async move {
                    client.rollback(ctx, id).await
                })
                .await
                .map_err(ClusterError::into_db_err)
        }
    }
}

impl Drop for ClusterTransaction {
    fn drop(&mut self) {
        let Kind::Remote {
            session,
            depth,
            open: true,
        } = &self.kind
        else {
            return;
        };
        if *depth > 0 {
            session
                .pending
                .lock()
                .unwrap()
                .push(format!("ROLLBACK TO sp{depth}; RELEASE sp{depth}"));
            return;
        }
        // Outermost: roll back on the primary now. If this cannot run, the primary's idle lease will.
        let (cluster, session) = (self.cluster.clone(), session.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let Some(node) = cluster.node.as_ref() else {
                    return;
                };
                let id = session.id;
                let result = node
                    .forwarder
                    .call_pinned(&session.addr, |client, ctx| async move {
                        client.rollback(ctx, id).await
                    })
                    .await;
                tracing::debug!(
                    session = id,
                    ?result,
                    "dropped remote transaction rolled back"
                );
            });
        }
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for ClusterTransaction {
    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Sqlite
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        match &self.kind {
            Kind::Local(_) => self.local_txn()?.execute_raw(stmt).await,
            Kind::Remote { session, .. } => {
                let request = Request::Execute(wire_statement(self.node(), &stmt).await?);
                exec_result(self.node(), self.run_remote(session, request).await?).await
            }
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        match &self.kind {
            Kind::Local(_) => self.local_txn()?.execute_unprepared(sql).await,
            Kind::Remote { session, .. } => {
                let reply = self
                    .run_remote(session, Request::ExecuteUnprepared(sql.to_owned()))
                    .await?;
                exec_result(self.node(), reply).await
            }
        }
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match &self.kind {
            Kind::Local(_) => self.local_txn()?.query_one_raw(stmt).await,
            Kind::Remote { session, .. } => {
                let request = Request::QueryOne(wire_statement(self.node(), &stmt).await?);
                let reply = self.run_remote(session, request).await?;
                Ok(query_results(self.node(), reply).await?.into_iter().next())
            }
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match &self.kind {
            Kind::Local(_) => self.local_txn()?.query_all_raw(stmt).await,
            Kind::Remote { session, .. } => {
                let request = Request::QueryAll(wire_statement(self.node(), &stmt).await?);
                query_results(self.node(), self.run_remote(session, request).await?).await
            }
        }
    }
}

impl StreamTrait for ClusterTransaction {
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

#[async_trait::async_trait]
impl TransactionSession for ClusterTransaction {
    async fn commit(mut self) -> Result<(), DbErr> {
        match &mut self.kind {
            Kind::Local(txn) => {
                txn.take()
                    .ok_or_else(|| DbErr::Custom("already finished".into()))?
                    .commit()
                    .await?;
                if let Some(node) = &self.cluster.node
                    && consistency::tracking()
                    && let Ok(txid) = node.follower.mount.position()
                {
                    consistency::record(txid);
                }
                Ok(())
            }
            Kind::Remote { .. } => self.finish_remote(true).await,
        }
    }

    async fn rollback(mut self) -> Result<(), DbErr> {
        match &mut self.kind {
            Kind::Local(txn) => {
                txn.take()
                    .ok_or_else(|| DbErr::Custom("already finished".into()))?
                    .rollback()
                    .await
            }
            Kind::Remote { .. } => self.finish_remote(false).await,
        }
    }
}

#[async_trait::async_trait]
impl TransactionTrait for ClusterTransaction {
    type Transaction = ClusterTransaction;

    async fn begin(&self) -> Result<ClusterTransaction, DbErr> {
        match &self.kind {
            Kind::Local(_) => Ok(ClusterTransaction::local(
                self.local_txn()?.begin().await?,
                self.cluster.clone(),
            )),
            Kind::Remote { session, depth, .. } => {
                let depth = depth + 1;
                self.run_remote(
                    session,
                    Request::ExecuteUnprepared(format!("SAVEPOINT sp{depth}")),
                )
                .await?;
                Ok(ClusterTransaction {
                    kind: Kind::Remote {
                        session: session.clone(),
                        depth,
                        open: true,
                    },
                    cluster: self.cluster.clone(),
                })
            }
        }
    }

    async fn begin_with_config(
        &self,
        _isolation_level: Option<sea_orm::IsolationLevel>,
        _access_mode: Option<sea_orm::AccessMode>,
    ) -> Result<ClusterTransaction, DbErr> {
        self.begin().await
    }

    async fn begin_with_options(
        &self,
        _options: TransactionOptions,
    ) -> Result<ClusterTransaction, DbErr> {
        self.begin().await
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
        run(txn, callback).await
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        _isolation_level: Option<sea_orm::IsolationLevel>,
        _access_mode: Option<sea_orm::AccessMode>,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c ClusterTransaction,
            ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        self.transaction(callback).await
    }
}

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
