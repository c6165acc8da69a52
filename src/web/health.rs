//! Liveness, readiness and metrics.
//!
//! `/metrics` is not public: on the main listener it answers only a client on this machine (a
//! loopback peer: `cargo run`, a sidecar), and not at all once `BLOG_METRICS_LISTEN` gives metrics
//! a listener of their own (on Fly.io, the private 6PN address its scraper reaches, see
//! `fly.toml`), nor behind a proxy (a client-IP header configured, or on Fly.io): a proxy on this
//! machine is a loopback peer for every client it relays. Anyone else gets the 404 of any unknown
//! path.
//!
//! Readiness says whether this node can serve writes or forward them: a standalone node or primary
//! must have its database file writable and, standalone, still be the very file it opened (a file
//! deleted or replaced under a running node would swallow acknowledged writes); a replica must
//! know a primary to forward to. Details of failures go to the log, never to the response.

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use sea_orm::{ConnectionTrait, Statement};

use super::AppState;
use super::error::{Error, PageError};
use sea_orm_litefs::{ClusterError, Role};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The database file this node opened: its path and identity (device, inode) at start.
#[derive(Debug, Clone)]
pub struct DatabaseFile {
    path: PathBuf,
    /// `(dev, ino)` at start; `None` in cluster mode, where LiteFS owns the file.
    identity: Option<(u64, u64)>,
}

impl DatabaseFile {
    /// Records the identity of `path` now (standalone), or only its path (under LiteFS).
    pub fn at_start(path: &Path, standalone: bool) -> Result<Self, String> {
        let identity = if standalone {
            let meta = std::fs::metadata(path)
                .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
            Some((meta.dev(), meta.ino()))
        } else {
            None
        };
        Ok(DatabaseFile {
            path: path.to_owned(),
            identity,
        })
    }

    /// Why this node cannot write its database file, if it cannot.
    pub fn write_problem(&self) -> Option<String> {
        if let Some(identity) = self.identity {
            match std::fs::metadata(&self.path) {
                Ok(meta) if (meta.dev(), meta.ino()) == identity => {}
                Ok(_) => {
                    return Some(
                        "the database file was replaced while the node ran: restart it".into(),
                    );
                }
                Err(_) => {
                    return Some(
                        "the database file was deleted while the node ran: restart it".into(),
                    );
                }
            }
        }
        // access(2), not an open: closing a descriptor of the file would drop every POSIX lock
        // this process holds on it, SQLite's included (another process could then take the
        // database for unused, checkpoint it and delete its WAL under us). It fails on a
        // read-only file system, and on an immutable file even for root.
        match writable(&self.path) {
            Ok(()) => None,
            Err(err) => {
                tracing::warn!(%err, path = %self.path.display(), "database file not writable");
                Some("the database is read-only".into())
            }
        }
    }
}

/// Whether this process may write `path` (`access(path, W_OK)`), without opening it.
fn writable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: a valid NUL-terminated path; access(2) only reads it.
    if unsafe { libc::access(path.as_ptr(), libc::W_OK) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The process is up.
async fn healthz() -> &'static str {
    "ok\n"
}

/// How long `/readyz` on a replica waits to learn whether the primary accepts its secret (only
/// when no connection to it is open; one that is was accepted).
const PRIMARY_CHECK: Duration = Duration::from_secs(1);

async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    let unavailable = |why: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
    };
    let probe =
        Statement::from_string(state.db.get_database_backend(), "SELECT count(*) FROM tags");
    if let Err(err) = state.db.query_one_raw(probe).await {
        tracing::warn!(%err, "readiness probe failed");
        return unavailable("the database does not answer with the blog's schema (see the log)");
    }
    let role = state.db.role();
    match &role {
        Role::Standalone | Role::Primary => {
            if let Some(problem) = state.database_file.write_problem() {
                return unavailable(&problem);
            }
            (StatusCode::OK, format!("ready ({})\n", role.as_str()))
        }
        // Not the primary's name: this port is public, and that name is a private address.
        Role::Replica { .. } => match state.db.check_primary(PRIMARY_CHECK).await {
            // A setting to fix, not a moment to wait out: every write here would fail.
            Err(err @ ClusterError::AuthFailed { .. }) => {
                tracing::error!(%err, "the primary refuses this node's cluster secret");
                unavailable(
                    "the primary refuses this node's cluster secret: BLOG_CLUSTER_SECRET must be \
                     the same on every node",
                )
            }
            // A primary away (or slow to answer) is not this replica's fault: it serves reads,
            // and its writes say why they fail.
            _ => (StatusCode::OK, "ready (replica)\n".to_owned()),
        },
        Role::NoPrimary => unavailable("no primary to forward writes to"),
    }
}

/// `/metrics` on the main listener: for a loopback peer, unless metrics have their own listener
/// or the blog is behind a proxy.
async fn metrics(State(state): State<AppState>, request: Request) -> Response {
    let local = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| peer.ip().is_loopback());
    let behind_proxy = state.security.client_ip_header.is_some();
    if local && !behind_proxy && !state.security.metrics_elsewhere {
        state.metrics.render().into_response()
    } else {
        PageError(Error::NotFound).into_response()
    }
}

/// The router of the metrics listener (`BLOG_METRICS_LISTEN`): `/metrics` for anyone who can
/// reach that address, which is meant to be private.
pub fn metrics_router(handle: PrometheusHandle) -> Router {
    Router::new().route("/metrics", get(move || async move { handle.render() }))
}

#[cfg(test)]
mod tests {

    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
    use sqlx::{ConnectOptions, Executor};

    use super::*;
    use test_support::locks::{READ_LOCK, lock_met};

    /// Where SQLite takes its SHARED lock on a database file (`SHARED_FIRST`): in WAL mode, held
    /// for as long as a connection is open.
    const SHARED_FIRST: i64 = 0x4000_0000 + 2;

    #[tokio::test]
    async fn checking_the_file_keeps_sqlite_s_locks_on_it() {
        let dir = std::env::temp_dir().join(format!("blog-health-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("blog.db");
        let mut conn = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .connect()
            .await
            .unwrap();
        conn.execute("CREATE TABLE t(x)").await.unwrap();
        let probe = std::fs::File::open(&path).unwrap();
        assert_eq!(lock_met(&probe, SHARED_FIRST), READ_LOCK, "SQLite's lock");

        let file = DatabaseFile::at_start(&path, true).unwrap();
        assert_eq!(file.write_problem(), None);

        assert_eq!(
            lock_met(&probe, SHARED_FIRST),
            READ_LOCK,
            "checking the file dropped this process's locks on it"
        );
        drop((conn, probe));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
