//! The cluster layer: SQLite on LiteFS, with writes forwarded from replicas to the primary.
//!
//! It knows nothing of blogs. The app gets one [`ClusterConnection`], which implements SeaORM's
//! `ConnectionTrait`, `StreamTrait` and `TransactionTrait`, so app code is plain SeaORM code and
//! runs unchanged on the primary and on replicas.
//!
//! - [`litefs`]: the role (primary, replica, which primary) and the replication position, followed
//!   live from LiteFS's `/events` stream and the files in its mount.
//! - [`statement`]: what a SQL string does (read, write, transaction control, PRAGMA classes...),
//!   decided before it runs anywhere.
//! - [`writer`]: the primary's one writer: a FIFO lock every write takes, autocommit writes run
//!   atomically with their idempotency key, connections never returned inside a transaction.
//! - [`sqlite`]: the scratch connection that rebuilds forwarded rows, results and errors as
//!   genuine sqlx values. [`wire`]: what crosses the network (storage classes, positions).
//! - [`rpc`], [`server`], [`client`], [`auth`], [`dedup`]: the tarpc service, the primary's
//!   executor with its remote-transaction sessions, the replica's forwarder, the secret
//!   handshake, and the idempotency keys that make a forwarded write run at most once.
//! - [`connection`], [`transaction`]: the SeaORM-facing handle and its transactions.
//!
//! A write on a replica is sent to the primary, the primary's result is returned as it is, and
//! the write is never attempted locally: the replica then waits until LiteFS has brought the
//! commit's position here, so the same node reads its own write. A write's outcome is reported
//! as one of three: done, failed (did not and will not commit), or unknown (said as such, only
//! when the primary cannot be asked).

pub mod auth;
pub mod client;
pub mod connection;
pub mod consistency;
pub mod dedup;
mod error;
#[cfg(test)]
mod hardening;
pub mod litefs;
pub mod metrics;
pub mod pools;
pub mod procedure;
pub mod rpc;
pub mod server;
pub mod sqlite;
pub mod statement;
pub mod transaction;
pub mod wire;
pub mod writer;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};

pub use connection::ClusterConnection;
pub use error::ClusterError;
pub use litefs::Role;
pub use procedure::{Failure, Procedure, ProcedureError, Procedures};
pub use transaction::ClusterTransaction;

/// How to open the database and, in cluster mode, join the cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The SQLite file (inside the LiteFS mount in cluster mode).
    pub database: PathBuf,
    /// The LiteFS mount; `None` for a standalone node.
    pub litefs_dir: Option<PathBuf>,
    /// LiteFS's HTTP API (`http://host:20202`).
    pub litefs_api: String,
    /// Where this node's RPC listens (`host:port`).
    pub rpc_listen: String,
    /// How to reach the primary's RPC; `{primary}` is replaced by its lease hostname.
    pub primary_rpc: String,
    /// Shared secret of the cluster: required with a LiteFS mount.
    pub secret: Option<String>,
    /// Deadline of a forwarded call, and bound of the catch-up wait after it.
    pub forward_timeout: Duration,
    /// A remote transaction idle this long is rolled back by the primary. Keep it below
    /// `forward_timeout`: writes queued behind a vanished replica's session wait that long.
    pub remote_tx_lease: Duration,
    /// A remote transaction open this long is rolled back by the primary, busy or not.
    pub remote_tx_max_lifetime: Duration,
    /// Remote transactions open or waiting on the primary at once.
    pub max_remote_transactions: usize,
    /// How long start-up waits for LiteFS to name a primary and replicate the database.
    pub startup_timeout: Duration,
    /// Whether a forwarded write waits until this node has replicated its commit (read your
    /// writes). Only benchmarks turn it off, to measure what it costs.
    pub catch_up: bool,
    /// Failures to inject on this node's primary side; tests only.
    pub faults: Arc<server::Faults>,
    /// The write procedures this node runs when it is primary (every node registers the same).
    pub procedures: Arc<Procedures>,
}

impl ClusterOptions {
    pub fn standalone(database: PathBuf) -> Self {
        ClusterOptions {
            database,
            litefs_dir: None,
            litefs_api: "http://127.0.0.1:20202".into(),
            rpc_listen: "127.0.0.1:7070".into(),
            primary_rpc: "{primary}:7070".into(),
            secret: None,
            forward_timeout: Duration::from_secs(5),
            remote_tx_lease: Duration::from_secs(2),
            remote_tx_max_lifetime: Duration::from_secs(30),
            max_remote_transactions: 64,
            startup_timeout: Duration::from_secs(30),
            catch_up: true,
            faults: Arc::default(),
            procedures: Arc::default(),
        }
    }
}

/// A running node: the connection, and where its RPC listens (cluster mode only).
pub struct Cluster {
    pub db: ClusterConnection,
    pub rpc_addr: Option<SocketAddr>,
}

/// How many writes may queue for the primary's writer before new ones are refused as busy.
const MAX_WRITE_QUEUE: usize = 1024;

/// Connection options for the app's database. SQLite's busy timeout only matters for lockers
/// outside the writer (another process); it stays well inside the forward deadline.
pub(crate) fn sqlite_options(path: &std::path::Path, timeout: Duration) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(timeout / 2)
        .foreign_keys(true)
        .synchronous(SqliteSynchronous::Normal)
}

/// Creates the database file in WAL mode if it does not exist (WAL is a property of the file: the
/// primary sets it once, replicas inherit it).
async fn create_wal(path: &std::path::Path, timeout: Duration) -> Result<(), String> {
    sqlite_options(path, timeout)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .connect()
        .await
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?
        .close()
        .await
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// Opens the database and, with a LiteFS mount, follows LiteFS and starts the RPC server.
pub async fn start(options: &ClusterOptions) -> Result<Cluster, String> {
    metrics::describe();
    let timeout = options.forward_timeout;
    let Some(litefs_dir) = &options.litefs_dir else {
        if let Some(parent) = options
            .database
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        create_wal(&options.database, timeout).await?;
        let databases = Arc::new(pools::Databases::open(
            &options.database,
            sqlite_options(&options.database, timeout),
        ));
        let inner = connection::Inner {
            writer: Arc::new(writer::Writer::new(databases, None, MAX_WRITE_QUEUE)),
            node: None,
            timeout,
        };
        return Ok(Cluster {
            db: ClusterConnection {
                inner: Arc::new(inner),
            },
            rpc_addr: None,
        });
    };

    let secret = match &options.secret {
        Some(secret) if !secret.is_empty() => Arc::new(secret.as_bytes().to_vec()),
        _ => {
            return Err(
                "refusing to join a LiteFS cluster without a cluster secret: the \
                 write-forwarding RPC runs SQL on the primary, so every node must prove it knows \
                 the secret. Set the same secret on every node (on Fly: fly secrets set)."
                    .into(),
            );
        }
    };
    let mount = litefs::mount_for(litefs_dir, &options.database)?;
    let db_path = mount.db_path();
    let follower =
        litefs::Follower::start(mount, &options.litefs_api, options.startup_timeout).await?;
    let role = follower.role();
    tracing::info!(?role, "joined the LiteFS cluster");
    if role.writes_locally() {
        create_wal(&db_path, timeout).await?;
    } else {
        if !follower.wait_for_database(options.startup_timeout).await {
            return Err(format!(
                "the database {} did not replicate here within {:?}",
                db_path.display(),
                options.startup_timeout
            ));
        }
    }

    let databases = Arc::new(pools::Databases::open(
        &db_path,
        sqlite_options(&db_path, timeout),
    ));
    let mut reconnections = follower.subscribe_reconnections();
    let (remounted, watched) = (databases.clone(), follower.clone());
    tokio::spawn(async move {
        while reconnections.changed().await.is_ok() {
            if watched.connected() {
                remounted.resume(watched.take_mount_lost());
            } else {
                remounted.suspend();
            }
        }
    });

    let rpc_addr = server::resolve(&options.rpc_listen)
        .await
        .map_err(|e| format!("the RPC address {}: {e}", options.rpc_listen))?;
    let listener = tokio::net::TcpListener::bind(rpc_addr)
        .await
        .map_err(|e| format!("cannot listen on {rpc_addr}: {e}"))?;
    let rpc_addr = listener.local_addr().map_err(|e| e.to_string())?;
    let writer = Arc::new(writer::Writer::new(
        databases,
        Some(follower.clone()),
        MAX_WRITE_QUEUE,
    ));
    let executor = server::Executor::new(
        writer.clone(),
        Some(follower.clone()),
        server::SessionLimits {
            lease: options.remote_tx_lease,
            max_lifetime: options.remote_tx_max_lifetime,
            max_sessions: options.max_remote_transactions,
        },
        options.faults.clone(),
        options.procedures.clone(),
    );
    tokio::spawn(server::serve(listener, executor, secret.clone()));

    let scratch = sqlite::Scratch::open()
        .await
        .map_err(|e| format!("cannot open the scratch database: {e}"))?;
    let node = connection::Node {
        forwarder: client::Forwarder::new(
            follower.clone(),
            options.primary_rpc.clone(),
            secret,
            options.forward_timeout,
        ),
        scratch,
        follower,
        catch_up: options.catch_up,
    };
    let inner = connection::Inner {
        writer,
        node: Some(node),
        timeout,
    };
    Ok(Cluster {
        db: ClusterConnection {
            inner: Arc::new(inner),
        },
        rpc_addr: Some(rpc_addr),
    })
}
