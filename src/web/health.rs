//! Liveness, readiness and metrics.
//!
//! Readiness says whether this node can serve writes or forward them: a standalone node or primary
//! must have its database file writable and, standalone, still be the very file it opened (a file
//! deleted or replaced under a running node would swallow acknowledged writes); a replica must
//! know a primary to forward to. Details of failures go to the log, never to the response.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use sea_orm::{ConnectionTrait, Statement};

use super::AppState;
use sea_orm_litefs::Role;

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
        // Opening for writing writes nothing, and fails on a read-only file or file system.
        match std::fs::OpenOptions::new().write(true).open(&self.path) {
            Ok(_) => None,
            Err(err) => {
                tracing::warn!(%err, path = %self.path.display(), "database file not writable");
                Some("the database is read-only".into())
            }
        }
    }
}

/// The process is up.
async fn healthz() -> &'static str {
    "ok\n"
}

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
        Role::Replica { primary } => (
            StatusCode::OK,
            format!("ready (replica, forwarding writes to {primary})\n"),
        ),
        Role::NoPrimary => unavailable("no primary to forward writes to"),
    }
}

async fn metrics(State(state): State<AppState>) -> String {
    state.metrics.render()
}
