//! The node's SQLite pools, replaced as a whole when LiteFS comes back after a restart.
//!
//! SQLite maps the WAL index (`<db>-shm`) from the LiteFS mount. When LiteFS restarts under a
//! running app (to change a static lease's primary, say), the old mount is gone and touching one
//! of its mappings, which closing a connection does, kills the process with SIGBUS. So when the
//! `/events` stream reconnects, fresh pools are opened on the new mount and the old ones are
//! abandoned: never closed, never used again. That leaks their idle connections, once per LiteFS
//! restart, which is the price of surviving it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use sea_orm::{DatabaseConnection, SqlxSqliteConnector};
use sqlx::sqlite::SqlitePoolOptions;

use super::sqlite::Classifier;

/// Connections per pool.
const POOL_SIZE: u32 = 8;

/// One generation of pools, all on the same mount.
pub struct Pools {
    /// Writes on the primary, and everything there.
    pub rw: DatabaseConnection,
    /// Reads on a replica, with `PRAGMA query_only=ON`: a write that gets here is refused by
    /// SQLite and counted, never applied.
    pub ro: DatabaseConnection,
    /// Asks SQLite (on a read-only connection) whether a statement writes.
    pub classifier: Classifier,
    /// Counts LiteFS (re)connections; a session opened in an older generation is abandoned.
    pub generation: u64,
}

/// The current generation of pools.
pub struct Databases {
    current: RwLock<Arc<Pools>>,
    /// The database file, for opening the next generation; `None` when standalone.
    path: Option<PathBuf>,
}

impl Databases {
    /// A standalone node: one pool that is never replaced.
    pub fn standalone(db: DatabaseConnection) -> Self {
        let classifier = Classifier::new(db.get_sqlite_connection_pool().clone());
        let pools = Pools {
            ro: db.clone(),
            rw: db,
            classifier,
            generation: 0,
        };
        Databases {
            current: RwLock::new(Arc::new(pools)),
            path: None,
        }
    }

    /// Pools on a database inside a LiteFS mount. Connections open lazily.
    pub fn on_mount(path: &Path) -> Self {
        Databases {
            current: RwLock::new(Arc::new(open(path, 0))),
            path: Some(path.to_path_buf()),
        }
    }

    pub fn current(&self) -> Arc<Pools> {
        self.current.read().unwrap().clone()
    }

    /// Opens the next generation of pools and abandons the current one (see the module docs).
    pub fn remount(&self) {
        let Some(path) = &self.path else { return };
        let mut current = self.current.write().unwrap();
        let next = Arc::new(open(path, current.generation + 1));
        let abandoned = std::mem::replace(&mut *current, next);
        tracing::warn!(
            generation = current.generation,
            "LiteFS reconnected: new SQLite pools opened, old ones abandoned"
        );
        std::mem::forget(abandoned);
    }
}

fn open(path: &Path, generation: u64) -> Pools {
    let options = super::sqlite_options(path);
    let rw = SqlitePoolOptions::new()
        .max_connections(POOL_SIZE)
        .connect_lazy_with(options.clone());
    let ro = SqlitePoolOptions::new()
        .max_connections(POOL_SIZE)
        .connect_lazy_with(options.pragma("query_only", "ON"));
    Pools {
        classifier: Classifier::new(ro.clone()),
        rw: SqlxSqliteConnector::from_sqlx_sqlite_pool(rw),
        ro: SqlxSqliteConnector::from_sqlx_sqlite_pool(ro),
        generation,
    }
}
