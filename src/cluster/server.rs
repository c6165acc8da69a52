//! The primary's side of forwarding: runs forwarded statements on the local SQLite connection pool,
//! holds remote transactions as sessions, and rolls back any session left idle past its lease so a
//! vanished replica never keeps SQLite's write lock.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteArguments;
use sqlx::{AssertSqlSafe, Executor as _, Sqlite, SqliteConnection};
use tarpc::context::Context;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tokio::net::TcpListener;
use tokio_util::codec::LengthDelimitedCodec;

use super::litefs::{Follower, Role};
use super::pools::Databases;
use super::rpc::{Forward, MAX_FRAME_BYTES, Refusal};
use super::wire::{self, ErrorPhase, Outcome, Reply, Request, Statement, Value};
use super::{auth, dedup};

/// One open remote transaction.
struct Session {
    conn: tokio::sync::Mutex<PoolConnection<Sqlite>>,
    /// The pools' generation the connection came from (see [`super::pools`]).
    generation: u64,
    /// Last time a call touched the session, for the idle lease.
    last_used: Mutex<Instant>,
}

/// Runs what replicas forward. Shared by every RPC connection.
pub struct Executor {
    databases: Arc<Databases>,
    /// `None` on a standalone node (always primary).
    follower: Option<Arc<Follower>>,
    sessions: Mutex<HashMap<u64, Arc<Session>>>,
    /// Outcomes of the last [`COMMITS_KEPT`] commits, so a commit sent again after a lost reply
    /// gets the first answer instead of "no such session".
    committed: Mutex<std::collections::VecDeque<(u64, Outcome)>>,
    lease: Duration,
    /// Pools generation + 1 for which the idempotency table is known to exist.
    dedup_ready: AtomicU64,
    /// Keyed writes so far, to expire old keys every [`EXPIRE_EVERY`] of them.
    keyed_writes: AtomicU64,
    faults: Arc<Faults>,
}

/// How many commit outcomes are remembered for commits sent again.
const COMMITS_KEPT: usize = 1024;

/// Old idempotency keys are deleted once every this many keyed writes.
const EXPIRE_EVERY: u64 = 100;

/// Failures a test can inject on the primary's side.
#[derive(Debug, Default)]
pub struct Faults {
    /// The next this many forwarded writes or remote commits commit, but their reply is never
    /// sent, as if the network had lost it.
    pub lose_replies: std::sync::atomic::AtomicUsize,
}

impl Faults {
    fn lose_reply(&self) -> bool {
        self.lose_replies
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }
}

impl Executor {
    pub fn new(
        databases: Arc<Databases>,
        follower: Option<Arc<Follower>>,
        lease: Duration,
        faults: Arc<Faults>,
    ) -> Arc<Self> {
        let executor = Arc::new(Executor {
            databases,
            follower,
            sessions: Mutex::new(HashMap::new()),
            committed: Mutex::new(std::collections::VecDeque::new()),
            lease,
            dedup_ready: AtomicU64::new(0),
            keyed_writes: AtomicU64::new(0),
            faults,
        });
        let reaper = Arc::downgrade(&executor);
        tokio::spawn(async move {
            // Checked often, so a session is rolled back soon after its lease ends.
            let mut tick = tokio::time::interval((lease / 10).max(Duration::from_millis(20)));
            while let Some(executor) = reaper.upgrade() {
                executor.reap_idle_sessions().await;
                drop(executor);
                tick.tick().await;
            }
        });
        executor
    }

    fn check_primary(&self) -> Result<(), Refusal> {
        match self.follower.as_ref().map(|f| f.role()) {
            None | Some(Role::Primary) | Some(Role::Standalone) => Ok(()),
            Some(Role::Replica { primary }) => Err(Refusal::NotPrimary {
                primary: Some(primary),
            }),
            Some(Role::NoPrimary) => Err(Refusal::NotPrimary { primary: None }),
        }
    }

    /// TXID that includes every commit returned so far (LiteFS updates `-pos` before COMMIT returns).
    fn txid(&self) -> Option<u64> {
        self.follower.as_ref().and_then(|f| f.mount.position().ok())
    }

    /// A connection of the current pools, with their generation.
    async fn acquire(&self) -> Result<(PoolConnection<Sqlite>, u64), Refusal> {
        let pools = self.databases.current();
        let conn = pools
            .rw
            .get_sqlite_connection_pool()
            .acquire()
            .await
            .map_err(|e| Refusal::Unavailable(e.to_string()))?;
        Ok((conn, pools.generation))
    }

    /// Whether a session's connection belongs to abandoned pools (it must not be touched).
    fn is_stale(&self, session: &Session) -> bool {
        session.generation != self.databases.current().generation
    }

    async fn run(&self, key: Option<u128>, request: Request) -> Result<Outcome, Refusal> {
        self.check_primary()?;
        let (mut conn, generation) = self.acquire().await?;
        let result = match key {
            // Raw SQL may hold its own BEGIN/COMMIT, so it cannot be wrapped: it runs as sent.
            Some(key) if !matches!(request, Request::ExecuteUnprepared(_)) => {
                let unavailable = |e: sqlx::Error| Refusal::Unavailable(e.to_string());
                if self.dedup_ready.load(Ordering::Acquire) != generation + 1 {
                    conn.execute(dedup::CREATE_TABLE)
                        .await
                        .map_err(unavailable)?;
                    self.dedup_ready.store(generation + 1, Ordering::Release);
                }
                let expire = self
                    .keyed_writes
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(EXPIRE_EVERY);
                dedup::run_once(&mut conn, key, &request, expire)
                    .await
                    .map_err(unavailable)?
            }
            _ => run_on(&mut conn, &request).await,
        };
        drop(conn);
        Ok(Outcome {
            result,
            txid: self.txid(),
        })
    }

    async fn begin(&self) -> Result<u64, Refusal> {
        self.check_primary()?;
        let (mut conn, generation) = self.acquire().await?;
        conn.execute("BEGIN IMMEDIATE")
            .await
            .map_err(|e| Refusal::Unavailable(e.to_string()))?;
        // Random, not sequential: after a restart of the primary, a replica still holding an old
        // id must not land in someone else's new transaction.
        let id = rand::random::<u64>();
        let session = Arc::new(Session {
            conn: tokio::sync::Mutex::new(conn),
            generation,
            last_used: Mutex::new(Instant::now()),
        });
        self.sessions.lock().unwrap().insert(id, session);
        Ok(id)
    }

    fn session(&self, id: u64) -> Result<Arc<Session>, Refusal> {
        let session = self.sessions.lock().unwrap().get(&id).cloned();
        let session = session.ok_or(Refusal::NoSuchSession { session: id })?;
        if self.is_stale(&session) {
            self.abandon(id);
            return Err(Refusal::NoSuchSession { session: id });
        }
        *session.last_used.lock().unwrap() = Instant::now();
        Ok(session)
    }

    async fn run_in(&self, id: u64, request: Request) -> Result<Outcome, Refusal> {
        let session = self.session(id)?;
        let mut conn = session.conn.lock().await;
        let result = run_on(&mut conn, &request).await;
        *session.last_used.lock().unwrap() = Instant::now();
        Ok(Outcome { result, txid: None })
    }

    /// Drops a session of abandoned pools without touching its connection.
    fn abandon(&self, id: u64) {
        if let Some(session) = self.sessions.lock().unwrap().remove(&id) {
            tracing::warn!(session = id, "remote transaction lost to a LiteFS restart");
            std::mem::forget(session);
        }
    }

    /// Removes a live session from the table, for commit or rollback.
    fn take_session(&self, id: u64) -> Result<Arc<Session>, Refusal> {
        let session = self.session(id)?;
        self.sessions.lock().unwrap().remove(&id);
        Ok(session)
    }

    async fn commit(&self, id: u64) -> Result<Outcome, Refusal> {
        let session = match self.take_session(id) {
            Ok(session) => session,
            Err(refusal) => {
                let committed = self.committed.lock().unwrap();
                return match committed.iter().find(|(done, _)| *done == id) {
                    Some((_, outcome)) => Ok(outcome.clone()),
                    None => Err(refusal),
                };
            }
        };
        let mut conn = session.conn.lock().await;
        let result = match conn.execute("COMMIT").await {
            Ok(_) => Ok(Reply::Exec {
                rows_affected: 0,
                last_insert_rowid: 0,
            }),
            Err(err) => {
                // A failed COMMIT can leave the transaction open; never hand such a connection back.
                let _ = conn.execute("ROLLBACK").await;
                Err(wire::failure_from_sqlx(ErrorPhase::Exec, &err))
            }
        };
        let outcome = Outcome {
            result,
            txid: self.txid(),
        };
        let mut committed = self.committed.lock().unwrap();
        if committed.len() == COMMITS_KEPT {
            committed.pop_front();
        }
        committed.push_back((id, outcome.clone()));
        Ok(outcome)
    }

    async fn rollback(&self, id: u64) -> Result<(), Refusal> {
        let session = self.take_session(id)?;
        let mut conn = session.conn.lock().await;
        conn.execute("ROLLBACK")
            .await
            .map_err(|e| Refusal::Unavailable(e.to_string()))?;
        Ok(())
    }

    async fn reap_idle_sessions(&self) {
        let expired: Vec<(u64, Arc<Session>)> = {
            let mut sessions = self.sessions.lock().unwrap();
            let idle: Vec<u64> = sessions
                .iter()
                .filter(|(_, s)| {
                    s.last_used.lock().unwrap().elapsed() > self.lease && s.conn.try_lock().is_ok()
                })
                .map(|(id, _)| *id)
                .collect();
            idle.into_iter()
                .filter_map(|id| sessions.remove(&id).map(|s| (id, s)))
                .collect()
        };
        for (id, session) in expired {
            if self.is_stale(&session) {
                tracing::warn!(session = id, "remote transaction lost to a LiteFS restart");
                std::mem::forget(session);
                continue;
            }
            let mut conn = session.conn.lock().await;
            let rolled_back = conn.execute("ROLLBACK").await.is_ok();
            tracing::warn!(session = id, rolled_back, lease = ?self.lease, "remote transaction idle past its lease: rolled back");
        }
    }

    pub fn open_sessions(&self) -> usize {
        self.sessions.lock().unwrap().len()
    }
}

/// Runs a forwarded request on one connection, the way SeaORM would have run it locally.
pub(crate) async fn run_on(
    conn: &mut SqliteConnection,
    request: &Request,
) -> Result<Reply, wire::DbFailure> {
    match request {
        Request::Execute(stmt) => bind(stmt)
            .execute(&mut *conn)
            .await
            .map(|r| Reply::Exec {
                rows_affected: r.rows_affected(),
                last_insert_rowid: r.last_insert_rowid(),
            })
            .map_err(|e| wire::failure_from_sqlx(ErrorPhase::Exec, &e)),
        Request::ExecuteUnprepared(sql) => conn
            .execute(AssertSqlSafe(sql.clone()))
            .await
            .map(|r| Reply::Exec {
                rows_affected: r.rows_affected(),
                last_insert_rowid: r.last_insert_rowid(),
            })
            .map_err(|e| wire::failure_from_sqlx(ErrorPhase::Exec, &e)),
        Request::QueryOne(stmt) => {
            let row = bind(stmt)
                .fetch_optional(&mut *conn)
                .await
                .map_err(|e| wire::failure_from_sqlx(ErrorPhase::Query, &e))?;
            let rows: Vec<_> = row.into_iter().collect();
            wire::rows_from_sqlx(&rows)
                .map(Reply::Rows)
                .map_err(|e| wire::failure_from_sqlx(ErrorPhase::Query, &e))
        }
        Request::QueryAll(stmt) => {
            let rows = bind(stmt)
                .fetch_all(&mut *conn)
                .await
                .map_err(|e| wire::failure_from_sqlx(ErrorPhase::Query, &e))?;
            wire::rows_from_sqlx(&rows)
                .map(Reply::Rows)
                .map_err(|e| wire::failure_from_sqlx(ErrorPhase::Query, &e))
        }
    }
}

fn bind(stmt: &Statement) -> sqlx::query::Query<'_, Sqlite, SqliteArguments> {
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

#[derive(Clone)]
struct ForwardServer(Arc<Executor>);

/// Runs a call's database work in its own task. tarpc drops a call's future when its deadline
/// passes; dropped halfway, the work could leave a pooled connection inside a transaction that
/// holds SQLite's write lock. Detached, it always finishes: commits, or rolls back.
async fn detached<T: Send + 'static>(
    work: impl Future<Output = Result<T, Refusal>> + Send + 'static,
) -> Result<T, Refusal> {
    tokio::spawn(work).await.unwrap_or_else(|e| {
        Err(Refusal::Unavailable(format!(
            "the primary's task failed: {e}"
        )))
    })
}

impl Forward for ForwardServer {
    async fn run(
        self,
        _: Context,
        key: Option<u128>,
        request: Request,
    ) -> Result<Outcome, Refusal> {
        let executor = self.0.clone();
        let outcome = detached(async move { executor.run(key, request).await }).await;
        if self.0.faults.lose_reply() {
            tracing::warn!("fault injected: the reply to a committed write is lost");
            std::future::pending::<()>().await;
        }
        outcome
    }
    async fn begin(self, _: Context) -> Result<u64, Refusal> {
        detached(async move { self.0.begin().await }).await
    }
    async fn run_in(self, _: Context, session: u64, request: Request) -> Result<Outcome, Refusal> {
        detached(async move { self.0.run_in(session, request).await }).await
    }
    async fn commit(self, _: Context, session: u64) -> Result<Outcome, Refusal> {
        let executor = self.0.clone();
        let outcome = detached(async move { executor.commit(session).await }).await;
        if self.0.faults.lose_reply() {
            tracing::warn!("fault injected: the reply to a commit is lost");
            std::future::pending::<()>().await;
        }
        outcome
    }
    async fn rollback(self, _: Context, session: u64) -> Result<(), Refusal> {
        detached(async move { self.0.rollback(session).await }).await
    }
}

/// Accepts RPC connections until the process ends. Each must pass the secret handshake first.
pub async fn serve(listener: TcpListener, executor: Arc<Executor>, secret: Arc<Vec<u8>>) {
    loop {
        let (mut stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "RPC accept failed");
                continue;
            }
        };
        let executor = executor.clone();
        let secret = secret.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            match tokio::time::timeout(auth::HANDSHAKE_TIMEOUT, auth::server(&mut stream, &secret))
                .await
            {
                Ok(Ok(true)) => {}
                outcome => {
                    tracing::warn!(%peer, ?outcome, "RPC peer failed authentication: connection closed, nothing executed");
                    return;
                }
            }
            let framed = LengthDelimitedCodec::builder()
                .max_frame_length(MAX_FRAME_BYTES)
                .new_framed(stream);
            let transport = tarpc::serde_transport::new(framed, Bincode::default());
            BaseChannel::with_defaults(transport)
                .execute(ForwardServer(executor).serve())
                .for_each(|call| async move {
                    tokio::spawn(call);
                })
                .await;
        });
    }
}

/// Resolves `host:port` (a name such as `fly-local-6pn` is looked up) to one address.
pub async fn resolve(addr: &str) -> std::io::Result<SocketAddr> {
    tokio::net::lookup_host(addr).await?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{addr} resolves to nothing"),
        )
    })
}
