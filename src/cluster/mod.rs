//! The cluster layer: SQLite on LiteFS, with writes forwarded from replicas to the primary.
//!
//! It knows nothing of blogs. The app gets one [`ClusterConnection`], which implements SeaORM's
//! `ConnectionTrait`, `StreamTrait` and `TransactionTrait`, so app code is plain SeaORM code and
//! runs unchanged on the primary and on replicas.
//!
//! - [`litefs`]: the role (primary, replica, which primary) and the replication position, followed
//!   live from LiteFS's `/events` stream and the files in its mount.
//! - [`sqlite`]: classification by `sqlite3_stmt_readonly`, and the scratch connection that
//!   rebuilds forwarded rows, results and errors as genuine sqlx values.
//! - [`wire`]: what crosses the network (SQLite storage classes, extended error codes).
//! - [`rpc`], [`server`], [`client`], [`auth`]: the tarpc service, the primary's executor with its
//!   remote-transaction sessions, the replica's forwarder, and the secret handshake.
//! - [`connection`], [`transaction`]: the SeaORM-facing handle and its transactions.
//!
//! A write on a replica is sent to the primary, the primary's result is returned as it is, and
//! the write is never attempted locally: the replica then waits until LiteFS has brought the
//! commit's TXID here, so the same node reads its own write.

pub mod auth;
pub mod client;
pub mod connection;
pub mod consistency;
pub mod dedup;
mod error;
pub mod litefs;
pub mod metrics;
pub mod pools;
pub mod rpc;
pub mod server;
pub mod sqlite;
pub mod transaction;
pub mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::SqlxSqliteConnector;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use connection::ClusterConnection;
pub use error::ClusterError;
pub use litefs::Role;
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
    /// Shared secret of the cluster; without one the RPC only binds to loopback.
    pub secret: Option<String>,
    /// Deadline of a forwarded call, and bound of the catch-up wait after it.
    pub forward_timeout: Duration,
    /// A remote transaction idle this long is rolled back by the primary.
    pub remote_tx_lease: Duration,
    /// How long start-up waits for LiteFS to name a primary and replicate the database.
    pub startup_timeout: Duration,
    /// Whether a forwarded write waits until this node has replicated its commit (read your
    /// writes). Only benchmarks turn it off, to measure what it costs.
    pub catch_up: bool,
    /// Failures to inject on this node's primary side; tests only.
    pub faults: Arc<server::Faults>,
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
            remote_tx_lease: Duration::from_secs(5),
            startup_timeout: Duration::from_secs(30),
            catch_up: true,
            faults: Arc::default(),
        }
    }
}

/// A running node: the connection, and where its RPC listens (cluster mode only).
pub struct Cluster {
    pub db: ClusterConnection,
    pub rpc_addr: Option<SocketAddr>,
}

/// SQLite waits this long for a lock before it reports "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn sqlite_options(path: &std::path::Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true)
        .synchronous(SqliteSynchronous::Normal)
}

/// Opens the database and, with a LiteFS mount, follows LiteFS and starts the RPC server.
pub async fn start(options: &ClusterOptions) -> Result<Cluster, String> {
    metrics::describe();
    let Some(litefs_dir) = &options.litefs_dir else {
        if let Some(parent) = options
            .database
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(
                sqlite_options(&options.database)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal),
            )
            .await
            .map_err(|e| format!("cannot open {}: {e}", options.database.display()))?;
        let db = ClusterConnection::standalone(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool));
        return Ok(Cluster { db, rpc_addr: None });
    };

    let mount = litefs::mount_for(litefs_dir, &options.database)?;
    let db_path = mount.db_path();
    let follower =
        litefs::Follower::start(mount, &options.litefs_api, options.startup_timeout).await?;
    let role = follower.role();
    tracing::info!(?role, "joined the LiteFS cluster");
    if role.writes_locally() {
        // WAL is a property of the file: the primary sets it once, replicas inherit it.
        let pool = SqlitePool::connect_with(
            sqlite_options(&db_path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal),
        )
        .await
        .map_err(|e| format!("cannot open {}: {e}", db_path.display()))?;
        pool.close().await;
    } else {
        follower
            .wait_for_txid(1, options.startup_timeout)
            .await
            .map_err(|_| {
                format!(
                    "the database {} did not replicate here within {:?}",
                    db_path.display(),
                    options.startup_timeout
                )
            })?;
    }

    let databases = Arc::new(pools::Databases::on_mount(&db_path));
    let mut reconnections = follower.subscribe_reconnections();
    let remounted = databases.clone();
    tokio::spawn(async move {
        while reconnections.changed().await.is_ok() {
            remounted.remount();
        }
    });

    let rpc_addr = server::resolve(&options.rpc_listen)
        .await
        .map_err(|e| format!("BLOG_RPC_LISTEN {}: {e}", options.rpc_listen))?;
    let secret = match &options.secret {
        Some(secret) if !secret.is_empty() => secret.as_bytes().to_vec(),
        _ if rpc_addr.ip().is_loopback() => Vec::new(),
        _ => {
            return Err(format!(
                "refusing to serve the write-forwarding RPC on {rpc_addr} without BLOG_CLUSTER_SECRET: \
                 it runs SQL on the primary. Set the same secret on every node."
            ));
        }
    };
    let secret = Arc::new(secret);
    let listener = tokio::net::TcpListener::bind(rpc_addr)
        .await
        .map_err(|e| format!("cannot listen on {rpc_addr}: {e}"))?;
    let rpc_addr = listener.local_addr().map_err(|e| e.to_string())?;
    let executor = server::Executor::new(
        databases.clone(),
        Some(follower.clone()),
        options.remote_tx_lease,
        options.faults.clone(),
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
        databases,
        node: Some(node),
    };
    Ok(Cluster {
        db: ClusterConnection {
            inner: Arc::new(inner),
        },
        rpc_addr: Some(rpc_addr),
    })
}
