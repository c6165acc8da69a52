//! Starting a node: [`Builder`] collects the settings, [`Builder::start`] opens the database,
//! joins the LiteFS cluster (when a mount is given) and returns the [`ClusterConnection`], or a
//! [`StartError`] that says which step failed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};

use crate::connection::{ClusterConnection, Inner, Node};
use crate::{Procedures, client, litefs, metrics, pools, server, sqlite, writer};

/// How many writes may queue for the primary's writer before new ones are refused as busy.
const MAX_WRITE_QUEUE: usize = 1024;

/// The settings of one node. Every setting has a default; a node in a LiteFS cluster needs at
/// least [`Builder::litefs`] and [`Builder::secret`], and, when its nodes are on different
/// machines, [`Builder::rpc_listen`] on an address the others can reach (the default,
/// `127.0.0.1:7070`, is this machine's only) and [`Builder::primary_rpc`] saying how they reach
/// it. A wrong secret or address is found at the first forwarded write
/// ([`ClusterError::AuthFailed`](crate::ClusterError::AuthFailed),
/// [`ClusterError::PrimaryUnreachable`](crate::ClusterError::PrimaryUnreachable)), not at start.
///
/// [`Builder::start`] refuses, before it does anything, limits that cannot work together: the
/// remote-transaction lease must be shorter than the forward timeout, the maximum lifetime no
/// shorter than the lease, and no duration or count may be 0 (see [`StartError`]).
///
/// ```no_run
/// # async fn run() -> Result<(), sea_orm_litefs::StartError> {
/// use std::time::Duration;
///
/// let db = sea_orm_litefs::Builder::new("/litefs/app.db")
///     .litefs("/litefs", "http://127.0.0.1:20202")
///     .rpc_listen("0.0.0.0:7070")
///     .primary_rpc("{primary}.vm.my-app.internal:7070")
///     .secret(std::env::var("CLUSTER_SECRET").unwrap_or_default())
///     .forward_timeout(Duration::from_secs(5))
///     .start()
///     .await?;
/// # let _ = db;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    database: PathBuf,
    /// The app's own options, if it gave them; else this crate's defaults for `database`.
    sqlite: Option<SqliteConnectOptions>,
    litefs: Option<(PathBuf, String)>,
    rpc_listen: String,
    primary_rpc: String,
    secret: Option<String>,
    forward_timeout: Duration,
    /// Unset: 2 s, or half the forward timeout if that is shorter ([`Builder::lease`]).
    remote_tx_lease: Option<Duration>,
    /// Unset: 30 s, or the lease if that is longer ([`Builder::max_lifetime`]).
    remote_tx_max_lifetime: Option<Duration>,
    max_remote_transactions: usize,
    startup_timeout: Duration,
    metric_prefix: String,
    group_commit: bool,
    /// The write procedures this node runs for replicas when it is primary.
    procedures: Arc<Procedures>,
    /// Only tests and benchmarks change these (the `testing` feature).
    pub(crate) catch_up: bool,
    pub(crate) faults: Arc<server::Faults>,
}

/// The default of [`Builder::remote_transaction_lease`] (unless half the forward timeout is
/// shorter).
const DEFAULT_LEASE: Duration = Duration::from_secs(2);

/// The default of [`Builder::remote_transaction_max_lifetime`] (unless the lease is longer).
const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(30);

/// The longest duration [`Builder::start`] accepts for any of its limits: one hour.
pub(crate) const MAX_LIMIT: Duration = Duration::from_secs(60 * 60);

impl Builder {
    /// A node whose SQLite file is `database`, opened with this crate's defaults: foreign keys on,
    /// `synchronous = NORMAL` (durable in WAL mode once LiteFS has the commit), and a busy timeout
    /// of half the forward timeout (it only matters for other processes writing the file).
    pub fn new(database: impl Into<PathBuf>) -> Self {
        Builder {
            database: database.into(),
            sqlite: None,
            rpc_listen: "127.0.0.1:7070".into(),
            primary_rpc: "{primary}:7070".into(),
            secret: None,
            forward_timeout: Duration::from_secs(5),
            remote_tx_lease: None,
            remote_tx_max_lifetime: None,
            max_remote_transactions: 64,
            startup_timeout: Duration::from_secs(30),
            metric_prefix: metrics::DEFAULT_PREFIX.into(),
            group_commit: true,
            procedures: Arc::default(),
            litefs: None,
            catch_up: true,
            faults: Arc::default(),
        }
    }

    /// A node that opens its database with the app's own SQLite options (file name, pragmas,
    /// busy timeout...). Leave the journal mode alone: the file is created in WAL mode, which
    /// LiteFS replicates, and a replica may not change it.
    pub fn with_sqlite(options: SqliteConnectOptions) -> Self {
        Builder {
            sqlite: Some(options.clone()),
            ..Builder::new(options.get_filename())
        }
    }

    /// Joins a LiteFS cluster: `mount` is LiteFS's FUSE directory (the database must be directly
    /// inside it) and `api` its HTTP address (`http://127.0.0.1:20202`). Without this the node
    /// is standalone: one SQLite file, no forwarding.
    pub fn litefs(mut self, mount: impl Into<PathBuf>, api: impl Into<String>) -> Self {
        self.litefs = Some((mount.into(), api.into()));
        self
    }

    /// Where this node's forwarding RPC listens (`host:port`; port 0 picks one, see
    /// [`ClusterConnection::rpc_addr`]). Default `127.0.0.1:7070`.
    pub fn rpc_listen(mut self, addr: impl Into<String>) -> Self {
        self.rpc_listen = addr.into();
        self
    }

    /// How a replica reaches the primary's RPC: `{primary}` is replaced by the hostname the
    /// primary advertises in its LiteFS lease. Default `{primary}:7070`.
    pub fn primary_rpc(mut self, template: impl Into<String>) -> Self {
        self.primary_rpc = template.into();
        self
    }

    /// The cluster's shared secret: every node must prove it before the primary runs its SQL.
    /// Required with [`Builder::litefs`]; [`Builder::start`] refuses to join without one.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// The deadline of a write: waiting for the primary's writer, a forwarded call's answer, and
    /// the wait for this node to replicate the commit after it. Default 5 s; it must be longer
    /// than [`Builder::remote_transaction_lease`]. The primary stops any forwarded call at 60 s,
    /// whatever this says.
    pub fn forward_timeout(mut self, timeout: Duration) -> Self {
        self.forward_timeout = timeout;
        self
    }

    /// A remote transaction idle this long is rolled back by the primary (default 2 s, or half
    /// the forward timeout if that is shorter, so that setting only the timeout works). It must
    /// be shorter than the forward timeout ([`Builder::start`] refuses it otherwise): writes
    /// queued behind a vanished replica's transaction wait this long for the writer, and give up
    /// at the forward timeout. What is left of the timeout is what they have to run, so keep a
    /// margin (the defaults leave 3 s).
    pub fn remote_transaction_lease(mut self, lease: Duration) -> Self {
        self.remote_tx_lease = Some(lease);
        self
    }

    /// A remote transaction open this long is rolled back by the primary, busy or not
    /// (default 30 s, or the lease if that is longer). It may not be shorter than the lease.
    pub fn remote_transaction_max_lifetime(mut self, lifetime: Duration) -> Self {
        self.remote_tx_max_lifetime = Some(lifetime);
        self
    }

    /// Remote transactions open or waiting on the primary at once (default 64, at least 1); more
    /// are refused as busy.
    pub fn max_remote_transactions(mut self, max: usize) -> Self {
        self.max_remote_transactions = max;
        self
    }

    /// How long start-up waits for LiteFS to name a primary and, on a replica, to replicate the
    /// database (default 30 s).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// The prefix of the Prometheus metrics this crate records (default `litefs`, giving
    /// `litefs_forwarded_writes_total` and so on). Metrics are process-wide: every node started
    /// in one process must use the same prefix.
    pub fn metric_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.metric_prefix = prefix.into();
        self
    }

    /// Whether the primary's autocommit writes that wait together share one transaction, each in
    /// its own savepoint (group commit, on by default): one commit, one LiteFS LTX file, for many
    /// writes, with each caller's result exactly what it would be alone. Off, every write commits
    /// alone.
    pub fn group_commit(mut self, on: bool) -> Self {
        self.group_commit = on;
        self
    }

    /// The write procedures this node runs for replicas while it is primary (see
    /// [`Procedure`](crate::Procedure)). Register the same ones on every node: any may become
    /// primary. A replica calls a procedure the primary does not have as an interactive
    /// transaction instead.
    pub fn procedures(mut self, procedures: Procedures) -> Self {
        self.procedures = Arc::new(procedures);
        self
    }

    /// The SQLite file this node opens.
    pub fn database(&self) -> &Path {
        &self.database
    }

    fn sqlite_options(&self) -> SqliteConnectOptions {
        self.sqlite.clone().unwrap_or_else(|| {
            SqliteConnectOptions::new()
                .filename(&self.database)
                .busy_timeout(self.forward_timeout / 2)
                .foreign_keys(true)
                .synchronous(SqliteSynchronous::Normal)
        })
    }

    /// The remote-transaction lease: as set, else 2 s, or half the forward timeout if that is
    /// shorter (a timeout set alone at or below 2 s is not refused for a default the app never
    /// chose).
    fn lease(&self) -> Duration {
        self.remote_tx_lease.unwrap_or_else(|| {
            let lease = DEFAULT_LEASE.min(self.forward_timeout / 2);
            // A maximum lifetime set below it lowers it too: no default the app never chose is
            // refused against a setting it did choose.
            self.remote_tx_max_lifetime
                .map_or(lease, |lifetime| lease.min(lifetime))
        })
    }

    /// The longest remote transaction: as set, else 30 s, or the lease if that is longer (a
    /// lease set past 30 s is not undone by a default the app never chose).
    fn max_lifetime(&self) -> Duration {
        self.remote_tx_max_lifetime
            .unwrap_or_else(|| DEFAULT_MAX_LIFETIME.max(self.lease()))
    }

    /// Refuses limits that cannot work, or contradict each other (see [`StartError`]).
    fn check_limits(&self) -> Result<(), StartError> {
        if let Some((_, api)) = &self.litefs {
            litefs_authority(api)?;
        }
        if self.remote_tx_lease.is_none()
            && (self.forward_timeout / 2).is_zero()
            && !self.forward_timeout.is_zero()
        {
            return Err(StartError::TooShort {
                setting: "forward_timeout",
                value: self.forward_timeout,
                why: "the remote-transaction lease, half of it by default, would be 0",
            });
        }
        for (setting, value) in [
            ("forward_timeout", self.forward_timeout),
            ("remote_transaction_lease", self.lease()),
            ("remote_transaction_max_lifetime", self.max_lifetime()),
            ("startup_timeout", self.startup_timeout),
        ] {
            if value > MAX_LIMIT {
                return Err(StartError::TooLong { setting, value });
            }
        }
        let zero = |setting, why| Err(StartError::Zero { setting, why });
        if self.forward_timeout.is_zero() {
            return zero(
                "forward_timeout",
                "every write would give up before it starts",
            );
        }
        if self.max_lifetime().is_zero() {
            return zero(
                "remote_transaction_max_lifetime",
                "every transaction from a replica would be rolled back at once",
            );
        }
        if self.lease().is_zero() {
            return zero(
                "remote_transaction_lease",
                "a transaction from a replica would be rolled back at its first pause between two \
                 statements",
            );
        }
        if self.startup_timeout.is_zero() {
            return zero(
                "startup_timeout",
                "start-up would give up before LiteFS could answer",
            );
        }
        if self.max_remote_transactions == 0 {
            return zero(
                "max_remote_transactions",
                "every transaction from a replica would be refused as busy",
            );
        }
        if self.lease() >= self.forward_timeout {
            return Err(StartError::LeaseNotBelowForwardTimeout {
                lease: self.lease(),
                forward_timeout: self.forward_timeout,
            });
        }
        if self.max_lifetime() < self.lease() {
            return Err(StartError::LifetimeBelowLease {
                max_lifetime: self.max_lifetime(),
                lease: self.lease(),
            });
        }
        Ok(())
    }

    /// Opens the database and, with a LiteFS mount, follows LiteFS and starts the RPC server.
    /// Limits that cannot work are refused first, before anything is opened or claimed.
    pub async fn start(self) -> Result<ClusterConnection, StartError> {
        self.check_limits()?;
        metrics::use_prefix(&self.metric_prefix)?;
        metrics::describe();
        let timeout = self.forward_timeout;
        let database = self.database.clone();
        let Some((mount_dir, api)) = &self.litefs else {
            if let Some(parent) = database.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|source| StartError::CreateDir {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            let sqlite = self.sqlite_options();
            create_wal(&sqlite).await?;
            let databases = Arc::new(pools::Databases::open(&database, sqlite));
            let writer = Arc::new(writer::Writer::new(
                databases,
                None,
                MAX_WRITE_QUEUE,
                self.group_commit,
            ));
            return Ok(ClusterConnection::new(Inner {
                writer,
                node: None,
                timeout,
                rpc_addr: None,
            }));
        };

        let secret = match &self.secret {
            Some(secret) if !secret.is_empty() => Arc::new(secret.as_bytes().to_vec()),
            _ => return Err(StartError::NoSecret),
        };
        let mount =
            litefs::mount_for(mount_dir, &database).ok_or_else(|| StartError::NotInMount {
                database: database.clone(),
                mount: mount_dir.clone(),
            })?;
        let db_path = mount.db_path();
        let authority = litefs_authority(api)?;
        let follower = litefs::Follower::start(mount, authority, self.startup_timeout)
            .await
            .map_err(|last_error| StartError::LiteFsSilent {
                api: api.clone(),
                waited: self.startup_timeout,
                cause: last_error.map_or_else(
                    || "it answered, but named no primary".to_owned(),
                    |e| format!("the last try said: {e}"),
                ),
            })?;
        let role = follower.role();
        tracing::info!(?role, "joined the LiteFS cluster");
        let sqlite = self.sqlite_options().filename(&db_path);
        if role.writes_locally() {
            create_wal(&sqlite).await?;
        } else if !follower.wait_for_database(self.startup_timeout).await {
            return Err(StartError::NotReplicated {
                database: db_path,
                waited: self.startup_timeout,
            });
        }

        let databases = Arc::new(pools::Databases::open(&db_path, sqlite));
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

        let rpc = |source| StartError::Rpc {
            addr: self.rpc_listen.clone(),
            source,
        };
        let rpc_addr = server::resolve(&self.rpc_listen).await.map_err(rpc)?;
        let listener = tokio::net::TcpListener::bind(rpc_addr).await.map_err(rpc)?;
        let rpc_addr = listener.local_addr().map_err(rpc)?;
        let writer = Arc::new(writer::Writer::new(
            databases,
            Some(follower.clone()),
            MAX_WRITE_QUEUE,
            self.group_commit,
        ));
        let executor = server::Executor::new(
            writer.clone(),
            Some(follower.clone()),
            server::SessionLimits {
                lease: self.lease(),
                max_lifetime: self.max_lifetime(),
                max_sessions: self.max_remote_transactions,
            },
            self.faults.clone(),
            self.procedures.clone(),
        );
        let drain = executor.drain.clone();
        tokio::spawn(server::serve(listener, executor, secret.clone()));

        let scratch = sqlite::Scratch::open().await.map_err(StartError::Scratch)?;
        let node = Node {
            forwarder: client::Forwarder::new(
                follower.clone(),
                self.primary_rpc.clone(),
                secret,
                self.forward_timeout,
            ),
            scratch,
            follower,
            catch_up: self.catch_up,
            drain,
        };
        Ok(ClusterConnection::new(Inner {
            writer,
            node: Some(node),
            timeout,
            rpc_addr: Some(rpc_addr),
        }))
    }
}

/// The `host:port` of LiteFS's API address `http://host:port` (the scheme in any case, a final
/// `/` allowed); anything else is refused at once rather than tried for the whole start-up.
fn litefs_authority(api: &str) -> Result<&str, StartError> {
    let refused = || {
        // Credentials never belong there, and never in a log either.
        let api = match api.rsplit_once('@') {
            Some((_, host)) => format!("http://***@{host}"),
            None => api.to_owned(),
        };
        StartError::LiteFsApi { api }
    };
    let scheme = api.get(..7).filter(|s| s.eq_ignore_ascii_case("http://"));
    let rest = scheme.map(|_| &api[7..]).ok_or_else(refused)?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', '@']) {
        return Err(refused());
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(authority),
        _ => Err(refused()),
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A LiteFS mount was given without a secret (or with an empty one).
    #[error(
        "refusing to join a LiteFS cluster without a cluster secret: the write-forwarding RPC \
         runs SQL on the primary, so every node must prove it knows the secret. Set the same \
         secret on every node (on Fly: fly secrets set)"
    )]
    NoSecret,
    /// LiteFS replicates the files directly inside its mount only.
    #[error("the database {database} must be directly inside the LiteFS mount {mount}")]
    NotInMount { database: PathBuf, mount: PathBuf },
    /// LiteFS's `/events` stream did not name a primary in time.
    #[error("LiteFS at {api} did not answer /events within {waited:?} ({cause})")]
    LiteFsSilent {
        api: String,
        waited: Duration,
        /// The error of the last attempt to connect, or what LiteFS said instead.
        cause: String,
    },
    /// LiteFS's API address is not plain `http://host:port`.
    #[error(
        "LiteFS's API address {api:?} must be http://host:port, with no path, query or \
         credentials (LiteFS serves its API over plain HTTP, e.g. http://127.0.0.1:20202)"
    )]
    LiteFsApi {
        /// As given, with any credentials in it hidden.
        api: String,
    },
    /// A duration is too short to work.
    #[error("{setting} ({value:?}) is too short: {why}")]
    TooShort {
        setting: &'static str,
        value: Duration,
        why: &'static str,
    },
    /// A replica's copy of the database did not appear in time.
    #[error("the database {database} did not replicate here within {waited:?}")]
    NotReplicated { database: PathBuf, waited: Duration },
    /// The standalone database's folder could not be created.
    #[error("cannot create {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// SQLite could not open or create the database.
    #[error("cannot open {database}: {source}")]
    Open {
        database: PathBuf,
        source: sqlx::Error,
    },
    /// The RPC address does not resolve, or cannot be bound.
    #[error("cannot listen for forwarded writes on {addr}: {source}")]
    Rpc {
        addr: String,
        source: std::io::Error,
    },
    /// The in-memory SQLite connection that rebuilds forwarded results could not open.
    #[error("cannot open the scratch database: {0}")]
    Scratch(sqlx::Error),
    /// The metric prefix is not a Prometheus name, or differs from the one already in use in
    /// this process.
    #[error("metric prefix {wanted:?}: {why}")]
    MetricPrefix { wanted: String, why: String },
    /// A duration or count that must be more than 0 is 0.
    #[error(
        "{setting} is 0, which cannot work: {why}. Give it a positive value, or leave the default"
    )]
    Zero {
        setting: &'static str,
        why: &'static str,
    },
    /// A duration is longer than an hour.
    #[error(
        "{setting} ({value:?}) is longer than an hour, the most any of this layer's durations may \
         be: no write, transaction or start-up needs to wait longer, and much longer ones overflow \
         what SQLite and the clock can hold"
    )]
    TooLong {
        setting: &'static str,
        value: Duration,
    },
    /// The remote-transaction lease is not shorter than the forward timeout.
    #[error(
        "remote_transaction_lease ({lease:?}) must be shorter than forward_timeout \
         ({forward_timeout:?}): on the primary, a write queued behind the open transaction of a \
         replica that vanished waits for the lease to roll it back, and gives up at the forward \
         timeout, so it would fail. Lower the lease or raise the forward timeout, leaving the \
         write time to run (the defaults are 2s and 5s)"
    )]
    LeaseNotBelowForwardTimeout {
        lease: Duration,
        forward_timeout: Duration,
    },
    /// The maximum lifetime of a remote transaction is shorter than its lease.
    #[error(
        "remote_transaction_max_lifetime ({max_lifetime:?}) must not be shorter than \
         remote_transaction_lease ({lease:?}): the lifetime ends any transaction from a replica, \
         the lease one left idle, so a lease beyond the lifetime never applies. Raise the \
         lifetime or lower the lease (the defaults are 30s and 2s)"
    )]
    LifetimeBelowLease {
        max_lifetime: Duration,
        lease: Duration,
    },
}

/// Creates the database file in WAL mode if it does not exist (WAL is a property of the file: the
/// primary sets it once, replicas inherit it).
///
/// Switching to WAL needs an exclusive lock. When two processes open one fresh file at once (two
/// starts on one volume), both read it and then want that lock: SQLite answers one of them
/// "database is locked" at once rather than wait (waiting could deadlock), so that one tries
/// again shortly, and by then finds the file in WAL mode already.
async fn create_wal(options: &SqliteConnectOptions) -> Result<(), StartError> {
    let open = |source| StartError::Open {
        database: options.get_filename().to_path_buf(),
        source,
    };
    let give_up = std::time::Instant::now() + CREATE_WAL_PATIENCE;
    let mut pause = Duration::from_millis(5);
    loop {
        let opened = options
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .connect()
            .await;
        match opened {
            Ok(conn) => return conn.close().await.map_err(open),
            Err(err) if busy(&err) && std::time::Instant::now() < give_up => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(err) => return Err(open(err)),
        }
    }
}

/// How long [`create_wal`] keeps trying while another process holds the file's lock.
const CREATE_WAL_PATIENCE: Duration = Duration::from_secs(5);

/// Whether SQLite said the database is locked by another connection (`SQLITE_BUSY`).
fn busy(err: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = err else {
        return false;
    };
    db.code()
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|code| code & 0xff == libsqlite3_sys::SQLITE_BUSY)
}

impl ClusterConnection {
    /// Where this node's forwarding RPC listens (`None` standalone).
    pub fn rpc_addr(&self) -> Option<SocketAddr> {
        self.inner.rpc_addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two processes (or two nodes' first starts on one volume) creating the same fresh file at
    /// once: each must end with a WAL database, not "database is locked" (switching to WAL needs
    /// an exclusive lock, and SQLite refuses the second of two readers wanting it at once without
    /// waiting, since waiting could deadlock).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_starts_creating_one_fresh_file_both_get_wal() {
        let dir = std::env::temp_dir().join(format!("create-wal-race-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..100 {
            let options = SqliteConnectOptions::new()
                .filename(dir.join(format!("{i}.db")))
                .busy_timeout(Duration::from_secs(2));
            let (a, b) = tokio::join!(create_wal(&options), create_wal(&options));
            a.unwrap_or_else(|e| panic!("file {i}, first: {e}"));
            b.unwrap_or_else(|e| panic!("file {i}, second: {e}"));
            let mut conn = options.connect().await.unwrap();
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut conn)
                .await
                .unwrap();
            assert_eq!(mode, "wal", "file {i}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// LiteFS's API where nothing listens: start-up waits its time, then says why it heard
    /// nothing (the connection's own error), not only that it did not.
    #[tokio::test]
    async fn a_silent_litefs_is_reported_with_its_cause() {
        let dir = std::env::temp_dir().join(format!("builder-silent-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let api = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let err = Builder::new(dir.join("app.db"))
            .litefs(&dir, &api)
            .secret("s")
            .startup_timeout(Duration::from_millis(300))
            .start()
            .await
            .expect_err("nothing answers there");
        let text = err.to_string();
        assert!(matches!(err, StartError::LiteFsSilent { .. }), "{text}");
        assert!(text.to_lowercase().contains("refused"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// LiteFS's API speaks plain HTTP: an `https://` address could never be reached.
    #[tokio::test]
    async fn an_https_litefs_api_is_refused_before_anything() {
        let dir = absent_dir("https-api");
        let builder = Builder::new(dir.join("app.db"))
            .litefs(&dir, "https://127.0.0.1:20202")
            .secret("s");
        refused(
            "https API",
            builder,
            &["https://127.0.0.1:20202".into(), "http://".into()],
        )
        .await;
    }

    /// A scratch folder for one test, absent: a start refused at its settings must not create it.
    fn absent_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("builder-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Starts `builder`, expecting a refusal that mentions every one of `words`; and nothing was
    /// done: the database's folder was not created, nor any LiteFS step tried (the mount given
    /// does not exist, and no secret is set, which would be refused otherwise).
    async fn refused(what: &str, builder: Builder, words: &[String]) {
        let folder = builder.database().parent().unwrap().to_path_buf();
        let err = match builder.clone().start().await {
            Ok(_) => panic!("{what}: started with {builder:?}"),
            Err(err) => err,
        };
        let text = err.to_string();
        for word in words {
            assert!(
                text.contains(word.as_str()),
                "{what}: {text:?} lacks {word:?}"
            );
        }
        assert!(!folder.exists(), "{what}: {} was created", folder.display());
    }

    /// The lease of a remote transaction at or above the forward timeout: a write queued on the
    /// primary behind the transaction of a replica that vanished gives up before the lease frees
    /// the writer. Refused at start, saying both values and what to change.
    #[tokio::test]
    async fn a_lease_not_below_the_forward_timeout_is_refused_before_anything_starts() {
        let dir = absent_dir("lease");
        let standalone = Builder::new(dir.join("blog.db"));
        let cluster = standalone.clone().litefs(&dir, "http://127.0.0.1:1");
        for (lease, timeout) in [(2000, 2000), (3000, 2000), (5000, 5000)] {
            let (lease, timeout) = (Duration::from_millis(lease), Duration::from_millis(timeout));
            for builder in [&standalone, &cluster] {
                let builder = builder
                    .clone()
                    .forward_timeout(timeout)
                    .remote_transaction_lease(lease);
                let words = [
                    "remote_transaction_lease".to_owned(),
                    "forward_timeout".to_owned(),
                    format!("{lease:?}"),
                    format!("{timeout:?}"),
                ];
                refused(
                    &format!("lease {lease:?}, timeout {timeout:?}"),
                    builder,
                    &words,
                )
                .await;
            }
        }
    }

    /// A forward timeout set alone, at or below the default lease (2 s): the lease not set
    /// follows it (half of it), so the node starts; a lease set explicitly at or above the same
    /// timeout is still refused (above).
    #[tokio::test]
    async fn a_forward_timeout_set_alone_at_or_below_the_default_lease_starts() {
        let dir = absent_dir("timeout-alone");
        let ms = Duration::from_millis;
        for (i, timeout) in [ms(2000), ms(1500), ms(1), Duration::from_nanos(2)]
            .into_iter()
            .enumerate()
        {
            let builder = Builder::new(dir.join(format!("{i}.db"))).forward_timeout(timeout);
            let db = builder
                .start()
                .await
                .unwrap_or_else(|e| panic!("timeout {timeout:?} alone: {e}"));
            drop(db);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Other limits that cannot work, or contradict each other, are refused the same way.
    #[tokio::test]
    async fn zero_limits_and_a_lifetime_below_the_lease_are_refused_before_anything_starts() {
        let dir = absent_dir("limits");
        let base = Builder::new(dir.join("blog.db")).litefs(&dir, "http://127.0.0.1:1");
        let zero = Duration::ZERO;
        let cases: [(&str, Builder); 6] = [
            ("forward_timeout", base.clone().forward_timeout(zero)),
            (
                "remote_transaction_lease",
                base.clone().remote_transaction_lease(zero),
            ),
            (
                "remote_transaction_max_lifetime",
                base.clone().remote_transaction_max_lifetime(zero),
            ),
            ("startup_timeout", base.clone().startup_timeout(zero)),
            (
                "max_remote_transactions",
                base.clone().max_remote_transactions(0),
            ),
            (
                "remote_transaction_max_lifetime",
                base.clone()
                    .remote_transaction_lease(Duration::from_secs(2))
                    .remote_transaction_max_lifetime(Duration::from_secs(1)),
            ),
        ];
        for (setting, builder) in cases {
            refused(setting, builder, &[setting.to_owned()]).await;
        }
    }

    /// The limits the rules allow start: the defaults, a lease just below the timeout, a
    /// lifetime equal to the lease.
    #[tokio::test]
    async fn consistent_limits_start() {
        let dir = absent_dir("consistent");
        let ms = Duration::from_millis;
        for (i, builder) in [
            Builder::new(dir.join("0.db")),
            Builder::new(dir.join("1.db"))
                .forward_timeout(ms(2000))
                .remote_transaction_lease(ms(1999)),
            Builder::new(dir.join("2.db"))
                .remote_transaction_lease(ms(1000))
                .remote_transaction_max_lifetime(ms(1000)),
            // A lease past the default lifetime (30 s), the lifetime not set: it follows the lease.
            Builder::new(dir.join("3.db"))
                .forward_timeout(ms(60_000))
                .remote_transaction_lease(ms(40_000)),
            // An hour is the most a duration may be.
            Builder::new(dir.join("4.db"))
                .forward_timeout(MAX_LIMIT)
                .startup_timeout(MAX_LIMIT),
        ]
        .into_iter()
        .enumerate()
        {
            let db = builder.start().await.unwrap_or_else(|e| panic!("{i}: {e}"));
            drop(db);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Any duration past an hour is refused, naming it: none is needed, and far longer ones
    /// overflow SQLite's busy timeout (half the forward timeout, in i32 milliseconds) or the
    /// clock's deadlines.
    #[tokio::test]
    async fn durations_over_an_hour_are_refused_before_anything_starts() {
        let dir = absent_dir("too-long");
        let base = Builder::new(dir.join("blog.db")).litefs(&dir, "http://127.0.0.1:1");
        let over = MAX_LIMIT + Duration::from_millis(1);
        let cases: [(&str, Builder); 5] = [
            ("forward_timeout", base.clone().forward_timeout(over)),
            (
                "remote_transaction_lease",
                base.clone()
                    .forward_timeout(MAX_LIMIT)
                    .remote_transaction_lease(over),
            ),
            (
                "remote_transaction_max_lifetime",
                base.clone().remote_transaction_max_lifetime(Duration::MAX),
            ),
            ("startup_timeout", base.clone().startup_timeout(over)),
            (
                "forward_timeout",
                base.clone().forward_timeout(Duration::MAX),
            ),
        ];
        for (setting, builder) in cases {
            refused(
                setting,
                builder,
                &[setting.to_owned(), "an hour".to_owned()],
            )
            .await;
        }
    }

    /// Review: a forward timeout beyond what the layer can use (half of it is SQLite's busy
    /// timeout, which sqlx takes in i32 milliseconds: from 2^32 ms on), or `Duration::MAX`: start
    /// is refused as the other limits are (naming forward_timeout, nothing created, no panic in a
    /// worker), or it starts and writes.
    #[tokio::test]
    async fn review_a_huge_forward_timeout_is_refused_before_anything_starts_or_works() {
        for (i, timeout) in [Duration::from_millis(1 << 32), Duration::MAX]
            .into_iter()
            .enumerate()
        {
            let dir = absent_dir(&format!("huge-timeout-{i}"));
            let builder = Builder::new(dir.join("blog.db")).forward_timeout(timeout);
            match builder.start().await {
                Err(err) => {
                    let text = err.to_string();
                    assert!(
                        text.contains("forward_timeout"),
                        "{timeout:?}: not refused as a limit: {text}"
                    );
                    assert!(!dir.exists(), "{timeout:?}: {} was created", dir.display());
                }
                Ok(db) => {
                    use sea_orm::ConnectionTrait;
                    db.execute_unprepared("CREATE TABLE t (x INTEGER)")
                        .await
                        .unwrap_or_else(|e| panic!("{timeout:?}: {e}"));
                    drop(db);
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    // Review B of the lease default and the LiteFS API address.

    /// An API address with credentials is refused without showing them.
    #[test]
    fn a_litefs_api_address_with_credentials_is_refused_without_them() {
        let err = litefs_authority("http://user:secret-pw@127.0.0.1:20202").unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("secret-pw"), "{text}");
        assert!(text.contains("127.0.0.1:20202"), "{text}");
        assert_eq!(
            litefs_authority("HTTP://[::1]:20202/").unwrap(),
            "[::1]:20202"
        );
    }

    fn revb_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("revb-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// The forward timeout set alone is promised to work ("so that setting only the timeout works";
    /// "a timeout set alone at or below 2 s is not refused for a default the app never chose").
    /// A 1 ns timeout gives a default lease of 0 (1 ns / 2), and start-up refuses the lease the app
    /// never set: "remote_transaction_lease is 0".
    #[tokio::test]
    async fn revb_a_forward_timeout_of_one_nanosecond_alone_is_not_refused_for_the_default_lease() {
        let dir = revb_dir("one-ns");
        let result = Builder::new(dir.join("app.db"))
            .forward_timeout(Duration::from_nanos(1))
            .start()
            .await;
        if let Err(e) = &result {
            let text = e.to_string();
            assert!(
                !text.contains("remote_transaction_lease"),
                "refused for a lease the app never set: {text}"
            );
        }
        drop(result);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The maximum lifetime set alone below 2 s is refused for the default lease (2 s) the app never
    /// chose, as the forward timeout set alone was before this change: "max lifetime 1s below lease
    /// 2s". The default lease follows the timeout now, but not the lifetime.
    #[tokio::test]
    async fn revb_a_max_lifetime_set_alone_is_not_refused_for_the_default_lease() {
        let dir = revb_dir("lifetime-alone");
        let result = Builder::new(dir.join("app.db"))
            .remote_transaction_max_lifetime(Duration::from_secs(1))
            .start()
            .await;
        let err = result.as_ref().err().map(ToString::to_string);
        drop(result);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(err, None, "refused for a default lease the app never chose");
    }

    /// "refuses a non-http:// LiteFS API address at once": an address with a path, credentials, an
    /// upper-case scheme or no port is not `http://host:port` either, and is either refused by name
    /// (StartError::LiteFsApi) or, for the upper-case scheme, accepted as the same address. Here
    /// each start is given 1 s; a `LiteFsSilent` answer means it was tried for the whole start-up
    /// timeout instead.
    #[tokio::test]
    async fn revb_litefs_api_addresses_that_are_not_host_port_are_refused_at_once() {
        let dir = revb_dir("api-forms");
        std::fs::create_dir_all(&dir).unwrap();
        let mut silent = Vec::new();
        for api in [
            "http://127.0.0.1:20202/litefs",
            "http://user:pw@127.0.0.1:20202",
            "http://127.0.0.1",
            "http://127.0.0.1:20202?x=1",
        ] {
            let started = std::time::Instant::now();
            let result = Builder::new(dir.join("app.db"))
                .litefs(&dir, api)
                .secret("s")
                .startup_timeout(Duration::from_secs(1))
                .start()
                .await;
            match result {
                Err(StartError::LiteFsApi { .. }) => {}
                Err(e) => silent.push(format!("{api}: after {:?}: {e}", started.elapsed())),
                Ok(_) => silent.push(format!("{api}: started")),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert!(silent.is_empty(), "{silent:#?}");
    }

    /// URL schemes are case-insensitive: `HTTP://127.0.0.1:20202` is refused as "not http://".
    #[tokio::test]
    async fn revb_an_upper_case_http_scheme_is_not_refused_as_not_http() {
        let dir = revb_dir("api-upper");
        std::fs::create_dir_all(&dir).unwrap();
        let result = Builder::new(dir.join("app.db"))
            .litefs(&dir, "HTTP://127.0.0.1:9")
            .secret("s")
            .startup_timeout(Duration::from_millis(300))
            .start()
            .await;
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            !matches!(result, Err(StartError::LiteFsApi { .. })),
            "{:?}",
            result.err().map(|e| e.to_string())
        );
    }

    /// "Start-up names why LiteFS was silent (the last connection error)": LiteFS refuses the first
    /// tries (not up yet), then answers `/events` with a 200 and no event. The cause given is the
    /// first refusal ("the last try said: Connection refused"), though the last try connected and
    /// was answered; the error of an attempt is never cleared by a later one that succeeded.
    #[tokio::test]
    async fn revb_the_cause_of_a_silent_litefs_is_the_last_try_not_an_old_one() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = revb_dir("stale-cause");
        std::fs::create_dir_all(&dir).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let server = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
            let mut held = Vec::new();
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .await;
                held.push(stream);
            }
        });
        let err = Builder::new(dir.join("app.db"))
            .litefs(&dir, format!("http://{addr}"))
            .secret("s")
            .startup_timeout(Duration::from_millis(2500))
            .start()
            .await
            .err()
            .map(|e| e.to_string());
        server.abort();
        let _ = std::fs::remove_dir_all(&dir);
        let err = err.expect("no event: start-up fails");
        assert!(
            !err.to_lowercase().contains("refused"),
            "the last try was answered (200, no event), not refused: {err}"
        );
    }
}
