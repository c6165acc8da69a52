//! The node's SQLite pools: one for writes, one for reads, replaced as a whole when LiteFS comes
//! back after a restart.
//!
//! SQLite maps the WAL index (`<db>-shm`) from the LiteFS mount. When LiteFS restarts under a
//! running app (to change a static lease's primary, say), the old mount is gone and touching one
//! of its mappings, which closing a connection does, kills the process with SIGBUS. So:
//! - no connection is ever closed by a timer: the pools have no idle timeout and no maximum
//!   lifetime (sqlx then runs no maintenance task at all);
//! - when the mount really changed (its device or the database's inode differ, or the database
//!   was seen missing while LiteFS was away), fresh pools are opened on the new mount and the old
//!   ones are abandoned: their idle connections are taken out and leaked, never closed, and
//!   connections still in use return to a pool that nothing will ever close.
//!
//! While LiteFS is away (its `/events` stream is down), the pools are suspended: every use fails
//! at once with a clear error instead of touching a mount that may be dying. When it is back, the
//! pools resume if the mount is the same one, or are replaced if it is new. The old pools' open
//! files pin the old mount, so a new mount cannot reuse its device number: the comparison is sound.
//!
//! That leaks a few connections once per LiteFS restart, which is the price of surviving it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use sea_orm::{DatabaseConnection, SqlxSqliteConnector};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use super::ClusterError;
use super::statement::Classifier;

/// Connections of the write pool: the one writer uses one at a time; a dropped transaction may
/// still be rolling back on another.
const WRITE_POOL_SIZE: u32 = 3;
/// Connections of the read pool.
pub(crate) const READ_POOL_SIZE: u32 = 8;

/// One generation of pools, all on the same file.
pub struct Pools {
    /// Writes (the writer's connection), on the primary or standalone only.
    pub rw: DatabaseConnection,
    /// Reads, on every node, with `PRAGMA query_only=ON`: a write that gets here is refused by
    /// SQLite (and counted on a replica), never applied.
    pub ro: DatabaseConnection,
    /// Asks SQLite (on a read-only connection of its own) what a statement does.
    pub classifier: Classifier,
    /// Counts remounts; a remote session opened in an older generation is abandoned.
    pub generation: u64,
    /// The mount this generation was opened on.
    identity: Option<(u64, u64)>,
}

impl Pools {
    pub fn rw_pool(&self) -> &SqlitePool {
        self.rw.get_sqlite_connection_pool()
    }
}

/// The current generation of pools.
pub struct Databases {
    current: RwLock<Arc<Pools>>,
    path: PathBuf,
    options: SqliteConnectOptions,
    /// Set while LiteFS is away: nothing may touch the pools.
    suspended: AtomicBool,
}

impl Databases {
    /// Pools on `path`; connections open lazily with `options`.
    pub fn open(path: &Path, options: SqliteConnectOptions) -> Self {
        Databases {
            current: RwLock::new(Arc::new(open(path, &options, 0))),
            path: path.to_path_buf(),
            options,
            suspended: AtomicBool::new(false),
        }
    }

    /// The current pools, whether or not LiteFS is there (start-up and migrations only).
    pub fn current(&self) -> Arc<Pools> {
        self.current.read().unwrap().clone()
    }

    /// The current pools, unless LiteFS is away.
    pub fn pools(&self) -> Result<Arc<Pools>, ClusterError> {
        if self.suspended() {
            return Err(ClusterError::Unavailable(
                "LiteFS is not running on this node right now (restarting?): the database is \
                 unavailable until it is back"
                    .into(),
            ));
        }
        Ok(self.current())
    }

    pub fn generation(&self) -> u64 {
        self.current.read().unwrap().generation
    }

    pub fn suspended(&self) -> bool {
        self.suspended.load(Ordering::Acquire)
    }

    /// LiteFS went away: stop using the pools.
    pub fn suspend(&self) {
        if !self.suspended.swap(true, Ordering::AcqRel) {
            tracing::warn!("LiteFS is away: database access suspended");
        }
    }

    /// LiteFS is back: replace the pools if its mount is new (or `lost` says the database
    /// vanished meanwhile), and resume.
    pub fn resume(&self, lost: bool) {
        if lost || self.mount_changed() {
            self.remount();
        }
        if self.suspended.swap(false, Ordering::AcqRel) {
            tracing::info!("LiteFS is back: database access resumed");
        }
    }

    /// Whether the file is no longer the one the current pools were opened on.
    fn mount_changed(&self) -> bool {
        let current = self.current();
        current.identity.is_some() && identity(&self.path) != current.identity
    }

    /// Opens the next generation of pools and abandons the current one (see the module docs).
    fn remount(&self) {
        let mut current = self.current.write().unwrap();
        let next = Arc::new(open(&self.path, &self.options, current.generation + 1));
        let abandoned = std::mem::replace(&mut *current, next);
        tracing::warn!(
            generation = current.generation,
            "LiteFS remounted: new SQLite pools opened, old ones abandoned"
        );
        for pool in [
            abandoned.rw_pool(),
            abandoned.ro.get_sqlite_connection_pool(),
            abandoned.classifier.pool(),
        ] {
            while let Some(conn) = pool.try_acquire() {
                std::mem::forget(conn.detach());
            }
        }
        std::mem::forget(abandoned);
    }
}

/// The mount's device and the database's inode: both change when LiteFS mounts anew.
fn identity(path: &Path) -> Option<(u64, u64)> {
    let dir = path.parent()?.metadata().ok()?;
    let file = path.metadata().ok()?;
    Some((dir.dev(), file.ino()))
}

fn open(path: &Path, options: &SqliteConnectOptions, generation: u64) -> Pools {
    let pool = |size: u32, options: SqliteConnectOptions| {
        SqlitePoolOptions::new()
            .max_connections(size)
            .min_connections(0)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(options)
    };
    let rw = pool(WRITE_POOL_SIZE, options.clone());
    let ro = pool(READ_POOL_SIZE, options.clone().pragma("query_only", "ON"));
    // The classifier's own connection: a write being classified never waits behind long reads.
    let classifying = pool(1, options.clone().pragma("query_only", "ON"));
    Pools {
        classifier: Classifier::new(classifying),
        rw: SqlxSqliteConnector::from_sqlx_sqlite_pool(rw),
        ro: SqlxSqliteConnector::from_sqlx_sqlite_pool(ro),
        generation,
        identity: identity(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_connection_is_ever_closed_by_a_timer() {
        let dir = std::env::temp_dir().join(format!("pools-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        let databases = Databases::open(
            &path,
            SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true),
        );
        for pool in [
            databases.current().rw_pool().clone(),
            databases.current().ro.get_sqlite_connection_pool().clone(),
        ] {
            assert_eq!(pool.options().get_idle_timeout(), None);
            assert_eq!(pool.options().get_max_lifetime(), None);
            assert_eq!(pool.options().get_min_connections(), 0);
        }
        databases.suspend();
        assert!(
            databases.pools().is_err(),
            "nothing touches a suspended mount"
        );
        databases.resume(false);
        assert_eq!(databases.generation(), 0, "same file, same pools");
        assert!(databases.pools().is_ok());
        databases.suspend();
        databases.resume(true);
        assert_eq!(
            databases.generation(),
            1,
            "the database vanished: new pools"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
