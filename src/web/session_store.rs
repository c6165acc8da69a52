//! A `tower-sessions` store over the app's own SeaORM connection. On a LiteFS replica the
//! connection forwards writes to the primary, so creating and deleting a session (login, logout)
//! are writes that reach every node, and loading one (every admin page view) is a local read.
//! A store with its own sqlx pool would try to write on replicas.
//!
//! Each write is a round trip to the primary from a replica, so the store writes no more than a
//! change needs: a new session is one `INSERT`; a save that would store what the row already
//! holds (the session layer saves again after a handler saved) is a local read and no write;
//! a delete also drops expired rows in the same statement.

use async_trait::async_trait;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};
use tower_sessions::cookie::time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

/// Sessions in the `sessions` table: id, JSON data, expiry (Unix seconds), enforced on load.
#[derive(Clone)]
pub struct SeaOrmSessionStore<C> {
    /// The app's connection (a `ClusterConnection` in the app).
    db: C,
}

impl<C> SeaOrmSessionStore<C> {
    pub fn new(db: C) -> Self {
        SeaOrmSessionStore { db }
    }
}

impl<C> std::fmt::Debug for SeaOrmSessionStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SeaOrmSessionStore")
    }
}

/// A save that moves the expiry by less than this (and changes no data) is not written.
const UNCHANGED_EXPIRY_SECS: i64 = 60;

fn backend(err: DbErr) -> session_store::Error {
    session_store::Error::Backend(err.to_string())
}

fn statement(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

fn row_values(record: &Record) -> session_store::Result<Vec<Value>> {
    let data = serde_json::to_string(&record.data)
        .map_err(|e| session_store::Error::Encode(e.to_string()))?;
    Ok(vec![
        record.id.to_string().into(),
        data.into(),
        record.expiry_date.unix_timestamp().into(),
    ])
}

#[async_trait]
impl<C> SessionStore for SeaOrmSessionStore<C>
where
    C: ConnectionTrait + Clone + Send + Sync + 'static,
{
    /// A new session (a login): one `INSERT`, which never overwrites an existing id (a collision
    /// of 128-bit random ids gets a new id).
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        loop {
            let inserted = self
                .db
                .execute_raw(statement(
                    "INSERT INTO sessions (id, data, expires_at) VALUES (?, ?, ?) \
                     ON CONFLICT (id) DO NOTHING",
                    row_values(record)?,
                ))
                .await
                .map_err(backend)?;
            if inserted.rows_affected() == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    /// Writes the record unless the row already holds its data with an expiry less than
    /// [`UNCHANGED_EXPIRY_SECS`] away: the session layer saves a modified session after the
    /// response even when the handler saved it already (a login), and on a replica that second
    /// write would be a second round trip to the primary for nothing.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        if let Some(stored) = self.load(&record.id).await?
            && stored.data == record.data
            && (stored.expiry_date - record.expiry_date)
                .whole_seconds()
                .abs()
                < UNCHANGED_EXPIRY_SECS
        {
            return Ok(());
        }
        self.db
            .execute_raw(statement(
                "INSERT INTO sessions (id, data, expires_at) VALUES (?, ?, ?) \
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data, \
                 expires_at = excluded.expires_at",
                row_values(record)?,
            ))
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let row = self
            .db
            .query_one_raw(statement(
                "SELECT data, expires_at FROM sessions WHERE id = ? AND expires_at > ?",
                vec![id.to_string().into(), now.into()],
            ))
            .await
            .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        let data: String = row.try_get("", "data").map_err(backend)?;
        let expires_at: i64 = row.try_get("", "expires_at").map_err(backend)?;
        Ok(Some(Record {
            id: *id,
            data: serde_json::from_str(&data)
                .map_err(|e| session_store::Error::Decode(e.to_string()))?,
            expiry_date: OffsetDateTime::from_unix_timestamp(expires_at)
                .map_err(|e| session_store::Error::Decode(e.to_string()))?,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        delete(&self.db, id).await.map_err(backend)
    }
}

/// Deletes the session `id` (a logout), and expired sessions with it, in one statement; the
/// database error is kept whole, so the caller can tell "not saved" from "outcome unknown".
pub async fn delete<C: ConnectionTrait>(db: &C, id: &Id) -> Result<(), DbErr> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    db.execute_raw(statement(
        "DELETE FROM sessions WHERE id = ? OR expires_at <= ?",
        vec![id.to_string().into(), now.into()],
    ))
    .await?;
    Ok(())
}
