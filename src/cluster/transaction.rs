//! [`ClusterTransaction`]: a local SeaORM transaction on the primary (holding the one writer), or
//! on a replica a session on the primary (`BEGIN IMMEDIATE` there) where every statement, reads
//! included, runs. Nesting uses savepoints. A transaction dropped without commit is rolled back,
//! and so is a nested one: its savepoint rollback is sent before anything else the transaction
//! does next, its commit included.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbErr, TransactionError, TransactionOptions,
    TransactionSession, TransactionTrait,
};

use super::client::CallError;
use super::connection::{
    Inner, Node, answer_from_reply, connection_traits, idempotency_key, rebuild_error, request_for,
    resolve, settle,
};
use super::statement;
use super::wire::{Reply, Request};
use super::writer::{Method, Sql, WriterGuard};
use super::{ClusterError, consistency, metrics};

/// A remote transaction's session on the primary, shared by its savepoints.
struct Session {
    id: u64,
    /// The primary that holds the session; every call of the transaction goes there.
    addr: String,
    /// Savepoint rollbacks of nested transactions dropped without commit, sent before the next call.
    pending: Mutex<Vec<String>>,
    /// Set when a call's answer was lost: what ran on the primary is unknown, so the transaction
    /// can only be rolled back.
    broken: Mutex<Option<String>>,
}

enum Kind {
    Local {
        /// `None` once committed or rolled back.
        txn: Option<DatabaseTransaction>,
        /// The writer, held by the outermost transaction and shared with its savepoints.
        _writer: Arc<WriterGuard>,
    },
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

/// Options for transactions on the primary: SQLite's `BEGIN IMMEDIATE`, the same as a replica's
/// remote transaction gets, so a transaction never fails to upgrade its read lock to a write lock.
fn immediate(mut options: TransactionOptions) -> TransactionOptions {
    options
        .sqlite_transaction_mode
        .get_or_insert(sea_orm::SqliteTransactionMode::Immediate);
    options
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
    pub(crate) async fn begin_local(
        cluster: Arc<Inner>,
        options: TransactionOptions,
    ) -> Result<Self, DbErr> {
        let deadline = Instant::now() + cluster.timeout;
        let guard = cluster
            .writer
            .acquire(deadline)
            .await
            .map_err(|r| ClusterError::from_refusal("this node", r).into_db_err())?;
        let txn = cluster
            .writer
            .databases
            .pools()
            .map_err(ClusterError::into_db_err)?
            .rw
            .begin_with_options(immediate(options))
            .await?;
        Ok(ClusterTransaction {
            kind: Kind::Local {
                txn: Some(txn),
                _writer: Arc::new(guard),
            },
            cluster,
        })
    }

    pub(crate) async fn begin_remote(cluster: Arc<Inner>) -> Result<Self, DbErr> {
        let node = cluster
            .node
            .as_ref()
            .expect("remote transactions exist only in cluster mode");
        let deadline = Instant::now() + node.forwarder.timeout;
        let (id, addr) = node
            .forwarder
            .call(deadline, None, |client, ctx| async move {
                client.begin(ctx).await
            })
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
        let session = Arc::new(Session {
            id,
            addr,
            pending: Mutex::new(Vec::new()),
            broken: Mutex::new(None),
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
            Kind::Local { txn: Some(txn), .. } => Ok(txn),
            _ => Err(finished()),
        }
    }

    /// Runs one SQL string in this transaction.
    async fn dispatch(&self, sql: Sql, method: Method) -> Result<super::connection::Answer, DbErr> {
        use super::connection::Answer;
        refused(sql.text())?;
        match &self.kind {
            Kind::Local { .. } => {
                let txn = self.local_txn()?;
                self.cluster
                    .writer
                    .databases
                    .pools()
                    .map_err(ClusterError::into_db_err)?;
                Ok(match (sql, method) {
                    (Sql::Raw(text), _) => Answer::Exec(txn.execute_unprepared(&text).await?),
                    (Sql::Sea(stmt), Method::Execute) => Answer::Exec(txn.execute_raw(stmt).await?),
                    (Sql::Sea(stmt), Method::QueryOne) => {
                        Answer::Row(txn.query_one_raw(stmt).await?)
                    }
                    (Sql::Sea(stmt), Method::QueryAll) => {
                        Answer::Rows(txn.query_all_raw(stmt).await?)
                    }
                    (Sql::Wire(_), _) => unreachable!("wire statements come from replicas"),
                })
            }
            Kind::Remote { session, .. } => {
                let request = request_for(self.node(), sql, method).await?;
                let reply = self.run_remote(session, request).await?;
                answer_from_reply(self.node(), reply, method).await
            }
        }
    }

    /// Sends the savepoint rollbacks left by dropped nested transactions.
    async fn flush_pending(&self, session: &Session) -> Result<(), DbErr> {
        let pending: Vec<String> = std::mem::take(&mut *session.pending.lock().unwrap());
        if pending.is_empty() {
            return Ok(());
        }
        self.call_session(session, Request::ExecuteUnprepared(pending.join("; ")))
            .await
            .map(drop)
    }

    /// Runs one statement in the remote session, after any savepoint rollbacks left by drops.
    async fn run_remote(&self, session: &Session, request: Request) -> Result<Reply, DbErr> {
        self.flush_pending(session).await?;
        self.call_session(session, request).await
    }

    async fn call_session(&self, session: &Session, request: Request) -> Result<Reply, DbErr> {
        if let Some(why) = session.broken.lock().unwrap().clone() {
            return Err(ClusterError::SessionLost(why).into_db_err());
        }
        let node = self.node();
        let id = session.id;
        let phase = request.phase();
        let deadline = Instant::now() + node.forwarder.timeout;
        let answer = node
            .forwarder
            .call(deadline, Some(&session.addr), |client, ctx| {
                let request = request.clone();
                async move { client.run_in(ctx, id, request).await }
            })
            .await;
        match answer {
            Ok((outcome, _)) => match outcome.result {
                Ok(reply) => Ok(reply),
                Err(failure) => Err(rebuild_error(node, failure, phase).await),
            },
            Err(CallError::Failed(err)) => Err(err.into_db_err()),
            Err(CallError::Lost { addr, reason }) => {
                let why = format!(
                    "a statement's answer from {addr} was lost ({reason}): the transaction can only be rolled back"
                );
                *session.broken.lock().unwrap() = Some(why.clone());
                Err(ClusterError::SessionLost(why).into_db_err())
            }
        }
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
            return Err(finished());
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
        if commit {
            self.commit_remote(&session).await
        } else {
            self.rollback_remote(&session).await;
            Ok(())
        }
    }

    async fn commit_remote(&self, session: &Session) -> Result<(), DbErr> {
        // What nested transactions dropped must be undone before the commit, not after.
        if let Err(err) = self.flush_pending(session).await {
            self.rollback_remote(session).await;
            return Err(err);
        }
        let broken = session.broken.lock().unwrap().clone();
        if let Some(why) = broken {
            self.rollback_remote(session).await;
            return Err(ClusterError::SessionLost(why).into_db_err());
        }
        let node = self.node();
        let (id, key) = (session.id, idempotency_key());
        let deadline = Instant::now() + node.forwarder.timeout;
        let sent = node
            .forwarder
            .call(deadline, Some(&session.addr), |client, ctx| async move {
                client.commit(ctx, id, key).await
            })
            .await;
        let outcome = match sent {
            Ok((outcome, _)) => outcome,
            Err(CallError::Failed(err)) => return Err(err.into_db_err()),
            Err(CallError::Lost { addr, reason }) => resolve(node, key, addr, reason).await?,
        };
        settle(node, outcome, super::wire::ErrorPhase::Exec)
            .await
            .map(drop)
    }

    /// Rolls the session back on the primary. Whatever happens, nothing of it commits: if this
    /// call fails, the primary rolls the session back when its lease ends.
    async fn rollback_remote(&self, session: &Session) {
        let node = self.node();
        let id = session.id;
        let deadline = Instant::now() + node.forwarder.timeout;
        if let Err(err) = node
            .forwarder
            .call(deadline, Some(&session.addr), |client, ctx| async move {
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
        // Outermost: roll back on the primary now. If this cannot run, the primary's lease will.
        let (cluster, session) = (self.cluster.clone(), session.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let txn = ClusterTransaction {
                    kind: Kind::Remote {
                        session: session.clone(),
                        depth: 0,
                        open: false,
                    },
                    cluster,
                };
                txn.rollback_remote(&session).await;
            });
        }
    }
}

connection_traits!(ClusterTransaction);

#[async_trait::async_trait]
impl TransactionSession for ClusterTransaction {
    async fn commit(mut self) -> Result<(), DbErr> {
        match &mut self.kind {
            Kind::Local { txn, .. } => {
                txn.take().ok_or_else(finished)?.commit().await?;
                if let Some(pos) = self.cluster.writer.pos() {
                    consistency::record(pos);
                }
                Ok(())
            }
            Kind::Remote { .. } => self.finish_remote(true).await,
        }
    }

    async fn rollback(mut self) -> Result<(), DbErr> {
        match &mut self.kind {
            Kind::Local { txn, .. } => txn.take().ok_or_else(finished)?.rollback().await,
            Kind::Remote { .. } => self.finish_remote(false).await,
        }
    }
}

impl ClusterTransaction {
    /// A nested transaction: a savepoint (SQLite has no other kind, so options are ignored).
    async fn open(&self, _options: TransactionOptions) -> Result<ClusterTransaction, DbErr> {
        match &self.kind {
            Kind::Local { _writer, .. } => Ok(ClusterTransaction {
                kind: Kind::Local {
                    txn: Some(self.local_txn()?.begin().await?),
                    _writer: _writer.clone(),
                },
                cluster: self.cluster.clone(),
            }),
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
                $crate::cluster::transaction::run(txn, callback).await
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
