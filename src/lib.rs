//! A reference blog backend for LiteFS: Tags and Posts on SQLite, replicated by LiteFS, with every
//! write on a replica forwarded to the primary at the database layer.
//!
//! - [`config`]: the one configuration struct, from flags and environment.
//! - [`cluster`]: knows nothing of blogs. [`cluster::ClusterConnection`] implements SeaORM's
//!   connection traits; on a replica it sends writes to the primary over tarpc, returns the
//!   primary's result, and never attempts the write locally.
//! - [`entity`]: SeaORM entities; the schema itself is in the `migration` crate.
//! - [`blog`]: domain operations on tags and posts, generic over any SeaORM connection.
//! - [`web`]: axum routes (pages, admin, JSON API, health), one error type, templates' structs.
//!
//! `main.rs` only parses the command line and calls [`run`]; tests call [`start`].

pub mod blog;
pub mod cluster;
pub mod config;
pub mod entity;
pub mod web;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum_extra::extract::cookie::Key;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use migration::MigratorTrait;
use sha2::{Digest, Sha512};

use cluster::{ClusterConnection, ClusterOptions};
use config::{Cli, Command, Config, MigrateAction};

/// A running blog: where it listens, and its database handle.
pub struct Running {
    pub addr: SocketAddr,
    pub db: ClusterConnection,
    pub rpc_addr: Option<SocketAddr>,
    /// The admin password in force (generated when none was given).
    pub admin_password: String,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Runs the command line.
pub async fn run(cli: Cli) -> Result<(), String> {
    init_tracing(&cli.config.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate { action } => {
            let cluster = cluster::start(&cluster_options(&cli.config)).await?;
            migrate_command(&cluster.db, action.unwrap_or(MigrateAction::Up)).await?;
            println!("database: {}", cli.config.database.display());
            Ok(())
        }
        Command::Serve => {
            let generated = cli.config.admin_password.is_none();
            let running = start(cli.config).await?;
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
            tokio::select! {
                result = running.server => result.map_err(|e| e.to_string())?.map_err(|e| e.to_string()),
                _ = shutdown_signal() => {
                    tracing::info!("shutting down");
                    Ok(())
                }
            }
        }
    }
}

/// Ctrl-C, or SIGTERM (what `litefs mount` and Fly send to stop the app).
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM can be handled");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn cluster_options(config: &Config) -> ClusterOptions {
    ClusterOptions {
        litefs_dir: config.litefs_dir.clone(),
        litefs_api: config.litefs_api.clone(),
        rpc_listen: config.rpc_listen.clone(),
        primary_rpc: config.primary_rpc.clone(),
        secret: config.cluster_secret.clone(),
        forward_timeout: config.forward_timeout(),
        remote_tx_lease: std::time::Duration::from_millis(config.remote_tx_lease_ms),
        ..ClusterOptions::standalone(config.database.clone())
    }
}

/// Applies pending migrations, on a node that writes locally (replicas get the schema from LiteFS).
async fn migrate(db: &ClusterConnection) -> Result<(), String> {
    if !db.role().writes_locally() {
        tracing::info!("replica: migrations are applied by the primary");
        return Ok(());
    }
    migration::Migrator::up(&db.local(), None)
        .await
        .map_err(|e| format!("migration failed: {e}"))
}

/// `blog migrate [up|status|down]`, with sea-orm-migration's own implementations (which print
/// the status, and log each migration applied or rolled back).
async fn migrate_command(db: &ClusterConnection, action: MigrateAction) -> Result<(), String> {
    if !db.role().writes_locally() {
        return Err("this node is a replica: run migrations on the primary".into());
    }
    let local = db.local();
    let result = match action {
        MigrateAction::Up => migration::Migrator::up(&local, None).await,
        MigrateAction::Status => migration::Migrator::status(&local).await,
        MigrateAction::Down { steps } => migration::Migrator::down(&local, Some(steps)).await,
    };
    result.map_err(|e| format!("migration failed: {e}"))
}

/// Opens the database, migrates it, and serves HTTP on `config.listen` (port 0 picks one).
pub async fn start(config: Config) -> Result<Running, String> {
    let cluster = cluster::start(&cluster_options(&config)).await?;
    migrate(&cluster.db).await?;
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
        db: cluster.db.clone(),
        node_name: config.node_name().into(),
        credentials: Arc::new(web::auth::Credentials::new(admin_password.clone()).await),
        cookie_key: cookie_key(&config, &admin_password),
        metrics: metrics_handle(),
        site: Arc::new(web::site::Site {
            title: config.site_title.clone(),
            description: config.site_description.clone(),
            url: config.site_url.clone(),
        }),
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = web::app(state);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    tracing::info!(%addr, role = cluster.db.role().as_str(), "serving");
    Ok(Running {
        addr,
        db: cluster.db,
        rpc_addr: cluster.rpc_addr,
        admin_password,
        server,
    })
}

/// The cookie-signing key: from `BLOG_SESSION_SECRET`, else derived from the cluster secret and
/// the admin password, so every node of a cluster configured alike signs alike.
fn cookie_key(config: &Config, admin_password: &str) -> Key {
    let mut hasher = Sha512::new();
    hasher.update(b"blog cookie key v1\0");
    match &config.session_secret {
        Some(secret) => hasher.update(secret.as_bytes()),
        None => {
            hasher.update(
                config
                    .cluster_secret
                    .as_deref()
                    .unwrap_or_default()
                    .as_bytes(),
            );
            hasher.update(b"\0");
            hasher.update(admin_password.as_bytes());
        }
    }
    Key::from(&hasher.finalize())
}

/// The process-wide Prometheus recorder (installed once, shared by every app in the process).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            cluster::metrics::describe();
            handle
        })
        .clone()
}

/// Logs to stdout at `info` (or as `RUST_LOG` says). Colours only on a terminal (and not with
/// `NO_COLOR`), so a log file or Fly's log stream gets no escape codes. sea-orm-migration's
/// lines ("Applying migration ...") stay visible though the rest of SeaORM is quieted.
fn init_tracing(format: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn,sea_orm_migration=info,tarpc=warn".into());
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
