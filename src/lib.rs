//! A reference blog backend for LiteFS: Tags and Posts on SQLite, replicated by LiteFS, with every
//! write on a replica forwarded to the primary at the database layer.
//!
//! - [`config`]: the one configuration struct, from flags and environment.
//! - [`entity`]: SeaORM entities; the schema itself is in the `migration` crate.
//! - [`blog`]: domain operations on tags and posts, generic over any SeaORM connection.
//! - [`web`]: axum routes (pages, admin, JSON API, health), one error type, templates' structs.
//!
//! `main.rs` only parses the command line and calls [`run`]; tests call [`start`].

pub mod blog;
pub mod config;
pub mod entity;
pub mod web;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum_extra::extract::cookie::Key;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use migration::MigratorTrait;
use sea_orm::{ConnectionTrait, Statement, TransactionOptions, TransactionTrait};

use config::{Cli, Command, Config, LogFormat, MigrateAction};
use sea_orm_litefs::{Builder, ClusterConnection};

/// A running blog: where it listens, and its database handle.
pub struct Running {
    pub addr: SocketAddr,
    /// Where `/metrics` is served when `BLOG_METRICS_LISTEN` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub db: ClusterConnection,
    pub rpc_addr: Option<SocketAddr>,
    /// The admin password in force (generated when none was given).
    pub admin_password: String,
    /// The server loop; it ends after [`Running::shutdown`] once requests have drained.
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Starts a graceful shutdown of the server.
    pub shutdown: web::serve::ShutdownHandle,
    /// How long a graceful shutdown waits for requests, and forwarded work, in progress.
    pub shutdown_grace: Duration,
}

/// Why the blog could not start or run, one variant per step.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting that would make the blog unsafe or cannot work (the message says which).
    #[error("{0}")]
    Settings(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot listen for metrics on {addr}: {source}")]
    MetricsListen {
        addr: String,
        source: std::io::Error,
    },
    /// The database or the LiteFS cluster (see `sea_orm_litefs::StartError`).
    #[error(transparent)]
    Database(#[from] sea_orm_litefs::StartError),
    #[error("migration failed: {0}")]
    Migration(sea_orm::DbErr),
    #[error("this node is a replica: run migrations on the primary")]
    MigrateOnReplica,
    /// The key that signs cookies could not be read.
    #[error("{0}")]
    CookieKey(String),
    #[error("{0}")]
    DatabaseFile(String),
    /// The HTTP server stopped with an error.
    #[error("the server failed: {0}")]
    Serve(std::io::Error),
}

/// Runs the command line.
pub async fn run(cli: Cli) -> Result<(), StartError> {
    // `blog serve`'s options are its own (given before it too: see `Cli`); `migrate` reads the
    // global ones, which are the top level's.
    let (config, migrate) = match cli.command {
        None => (cli.config, None),
        Some(Command::Serve(config)) => (*config, None),
        Some(Command::Migrate { action }) => (cli.config, Some(action)),
    };
    init_tracing(config.log_format);
    match migrate {
        Some(action) => {
            // The cluster layer always serves forwarded writes; this command must not take the
            // address `blog serve` listens on: an operator runs it beside a serving app (which
            // holds that address), and writes forwarded to a process that exits once migrations
            // are done could be cut mid-commit. A free loopback port reaches no replica.
            // Nor does it forward writes (it refuses to run on a replica), so it takes no
            // forwarding settings: `migrate --help` lists only what it reads.
            let db = node_builder(&config)
                .rpc_listen(MIGRATE_RPC_LISTEN)
                .start()
                .await?;
            migrate_command(&db, action.unwrap_or(MigrateAction::Up)).await?;
            println!("database: {}", config.database.display());
            Ok(())
        }
        None => {
            let generated = config.admin_password.is_none();
            let running = start(config).await?;
            println!("Blog listening on http://{}/", running.addr);
            if generated {
                println!(
                    "Log in at http://{}/admin/login with the generated admin password: {}",
                    running.addr, running.admin_password
                );
                println!("(set BLOG_ADMIN_PASSWORD to choose it)");
            } else {
                println!(
                    "Log in at http://{}/admin/login with BLOG_ADMIN_PASSWORD.",
                    running.addr
                );
            }
            let mut server = running.server;
            tokio::select! {
                result = &mut server => return server_ended(result),
                _ = shutdown_signal() => {}
            }
            // Stop accepting, let in-flight requests finish, and the writes replicas forwarded
            // here too (their answers sent: no replica is left not knowing whether its write
            // committed), both bounded by the grace period.
            let drained = running.db.drain(running.shutdown_grace);
            running.shutdown.shutdown();
            let (served, drained) = tokio::join!(&mut server, drained);
            if !drained {
                tracing::warn!(
                    grace = ?running.shutdown_grace,
                    "forwarded writes still in progress after the grace period; exiting anyway"
                );
            }
            server_ended(served)?;
            tracing::info!("shut down");
            Ok(())
        }
    }
}

/// The server task's end: its own error, or a panic turned into one.
fn server_ended(
    ended: Result<std::io::Result<()>, tokio::task::JoinError>,
) -> Result<(), StartError> {
    ended
        .map_err(|e| StartError::Serve(std::io::Error::other(e)))?
        .map_err(StartError::Serve)
}

/// Where `blog migrate` listens for forwarded writes: nowhere a replica sends them.
const MIGRATE_RPC_LISTEN: &str = "127.0.0.1:0";

/// SIGINT (Ctrl-C, and what Fly sends per `fly.toml`, passed on by `litefs mount`) or SIGTERM
/// (what most process managers send).
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM can be handled");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// The cluster crate's settings from the blog's configuration; its metrics keep the `blog_`
/// prefix.
fn cluster_builder(config: &Config) -> Builder {
    node_builder(config)
        .rpc_listen(config.rpc_listen.clone())
        .primary_rpc(config.primary_rpc.clone())
        .forward_timeout(config.forward_timeout)
        .remote_transaction_lease(config.remote_tx_lease())
}

/// The database of this node and its cluster (LiteFS, the secret), without the settings of
/// forwarding writes: what `blog migrate` reads.
fn node_builder(config: &Config) -> Builder {
    let mut builder = Builder::new(config.database.clone())
        .procedures(blog::procedures::registry())
        .metric_prefix("blog");
    if let Some(mount) = &config.litefs_dir {
        builder = builder.litefs(mount.clone(), config.litefs_api.clone());
    }
    if let Some(secret) = &config.cluster_secret {
        builder = builder.secret(secret.clone());
    }
    builder
}

/// Applies pending migrations, on a node that writes locally (replicas get the schema from LiteFS).
/// They run in one `BEGIN IMMEDIATE` transaction: a second process migrating the same file waits
/// for the first, then finds nothing left to do.
///
/// A primary restarted under load finds the write lock taken most of the time (replicas' writes
/// reach its RPC server as soon as it listens; other processes write the same file), and LiteFS's
/// locks are try-locks, so SQLite's busy handler can give up: a busy database is tried again
/// until [`MIGRATION_BUSY_LIMIT`], not a failed start.
async fn migrate(db: &ClusterConnection) -> Result<(), StartError> {
    if !db.role().writes_locally() {
        tracing::info!("replica: migrations are applied by the primary");
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + MIGRATION_BUSY_LIMIT;
    loop {
        match migrate_once(db).await {
            Err(e) if is_busy(&e) && tokio::time::Instant::now() < deadline => {
                tracing::info!(%e, "migrations: the database is busy, trying again");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            result => return result.map_err(StartError::Migration),
        }
    }
}

/// How long start-up keeps trying migrations while the database is busy.
const MIGRATION_BUSY_LIMIT: Duration = Duration::from_secs(30);

async fn migrate_once(db: &ClusterConnection) -> Result<(), sea_orm::DbErr> {
    let txn = db
        .local()
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?;
    if let Err(e) = migration::Migrator::up(&txn, None).await {
        let _ = txn.rollback().await;
        return Err(e);
    }
    txn.commit().await
}

/// SQLITE_BUSY or SQLITE_LOCKED (extended codes included) from sqlx, under any SeaORM wrapper.
fn is_busy(err: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    let (DbErr::Conn(RuntimeErr::SqlxError(e))
    | DbErr::Exec(RuntimeErr::SqlxError(e))
    | DbErr::Query(RuntimeErr::SqlxError(e))) = err
    else {
        return false;
    };
    let code = e.as_database_error().and_then(|d| d.code());
    matches!(
        code.and_then(|c| c.parse::<i64>().ok()).map(|c| c & 0xff),
        Some(5 | 6)
    )
}

/// The key that signs cookies: from `BLOG_SESSION_SECRET` (expanded with HKDF), else the random
/// key the primary wrote into the `settings` table at migration. A replica whose copy of the
/// database does not have it yet waits for it to replicate, up to the forward timeout x 6.
async fn cookie_key(config: &Config, db: &ClusterConnection) -> Result<Key, StartError> {
    if let Some(secret) = &config.session_secret {
        return Ok(Key::derive_from(secret.as_bytes()));
    }
    let query = Statement::from_string(
        db.get_database_backend(),
        "SELECT value FROM settings WHERE name = 'cookie_key'",
    );
    let deadline = tokio::time::Instant::now() + config.forward_timeout * 6;
    let bad = |e: String| StartError::CookieKey(format!("bad cookie key: {e}"));
    loop {
        let row = db.query_one_raw(query.clone()).await;
        if let Ok(Some(row)) = &row {
            let hex_key: String = row.try_get("", "value").map_err(|e| bad(e.to_string()))?;
            let bytes = hex::decode(hex_key).map_err(|e| bad(e.to_string()))?;
            return Key::try_from(bytes.as_slice()).map_err(|e| bad(e.to_string()));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StartError::CookieKey(match row {
                Err(err) => format!("cannot read the cookie key: {err}"),
                Ok(_) => "no cookie key in the database: run the primary's migrations".into(),
            }));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `blog migrate [up|status|down]`, with sea-orm-migration's own implementations (which print
/// the status, and log each migration applied or rolled back).
async fn migrate_command(db: &ClusterConnection, action: MigrateAction) -> Result<(), StartError> {
    if !db.role().writes_locally() {
        return Err(StartError::MigrateOnReplica);
    }
    let local = db.local();
    let result = match action {
        MigrateAction::Up => migration::Migrator::up(&local, None).await,
        MigrateAction::Status => migration::Migrator::status(&local).await,
        MigrateAction::Down { steps } => migration::Migrator::down(&local, Some(steps)).await,
    };
    result.map_err(StartError::Migration)
}

/// Binds `config.listen` (port 0 picks one), opens and migrates the database, and serves HTTP.
/// The bind comes first, so a taken port fails before the database is created or touched.
pub async fn start(config: Config) -> Result<Running, StartError> {
    config.check().map_err(StartError::Settings)?;
    let listen = |source| StartError::Listen {
        addr: config.listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(listen)?;
    let addr = listener.local_addr().map_err(listen)?;
    let metrics_listener = match &config.metrics_listen {
        Some(at) => {
            let failed = |source| StartError::MetricsListen {
                addr: at.clone(),
                source,
            };
            let listener = tokio::net::TcpListener::bind(at.as_str())
                .await
                .map_err(failed)?;
            Some(listener)
        }
        None => None,
    };
    let db = cluster_builder(&config).start().await?;
    migrate(&db).await?;
    if config.admin_password.is_none() && config.litefs_dir.is_some() {
        tracing::warn!(
            "BLOG_ADMIN_PASSWORD is unset: this node generated its own; set the same one on every node"
        );
    }
    let admin_password = config
        .admin_password
        .clone()
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 9]>()));
    let state = web::AppState {
        db: db.clone(),
        node_name: config.node_name().into(),
        passwords: Arc::new(web::auth::PasswordGate::new(admin_password.clone()).await),
        cookie_key: cookie_key(&config, &db).await?,
        security: Arc::new(web::Security {
            secure_cookies: config.secure_cookies(),
            public_origin: config.public_origin(),
            client_ip_header: config
                .client_ip_header()
                .and_then(|h| axum::http::HeaderName::try_from(h).ok()),
            metrics_elsewhere: metrics_listener.is_some(),
        }),
        database_file: Arc::new(
            web::health::DatabaseFile::at_start(&config.database, config.litefs_dir.is_none())
                .map_err(StartError::DatabaseFile)?,
        ),
        metrics: metrics_handle(),
        renders: Arc::new(blog::rendered::RenderCache::new(
            config.render_cache_mb.saturating_mul(1024 * 1024),
        )),
        search_timeout: config.search_timeout,
        request_timeout: config.request_timeout,
        // The handlers' bound, then the session's save (SQLite's busy timeout, half the forward
        // timeout) and the read-your-writes wait (the forward timeout), with room to spare.
        backstop_timeout: config.request_timeout + config.forward_timeout * 2,
        site: Arc::new(web::site::Site {
            title: config.site_title.clone(),
            description: config.site_description.clone(),
            url: config.public_url.clone(),
            https: config.secure_cookies(),
        }),
    };
    let app = web::app(state);
    let options = web::serve::ServeOptions {
        header_read_timeout: config.header_read_timeout,
        max_connections: config.max_connections,
        max_connections_per_client: config.connection_cap_per_client(),
        shutdown_grace: config.shutdown_grace,
    };
    let mut metrics_addr = None;
    if let Some(listener) = metrics_listener {
        metrics_addr = listener.local_addr().ok();
        // Ends with the process: a scrape has nothing to drain.
        let _ = web::serve::spawn(
            listener,
            web::health::metrics_router(metrics_handle()),
            options,
        );
    }
    let (server, shutdown) = web::serve::spawn(listener, app, options);
    tracing::info!(%addr, role = db.role().as_str(), "serving");
    Ok(Running {
        addr,
        metrics_addr,
        rpc_addr: db.rpc_addr(),
        db,
        admin_password,
        server,
        shutdown,
        shutdown_grace: config.shutdown_grace,
    })
}

/// The process-wide Prometheus recorder (installed once, shared by every app in the process).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    &[
                        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    ],
                )
                .expect("non-empty buckets")
                .build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            sea_orm_litefs::describe_metrics();
            web::register_metrics();
            handle
        })
        .clone()
}

/// Logs to stdout at `info` (or as `RUST_LOG` says). Colours only on a terminal (and not with
/// `NO_COLOR`), so a log file or Fly's log stream gets no escape codes. sea-orm-migration's
/// lines ("Applying migration ...") stay visible though the rest of SeaORM is quieted.
fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn,sea_orm_migration=info,tarpc=warn".into());
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour);
    let _ = if format == LogFormat::Json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
