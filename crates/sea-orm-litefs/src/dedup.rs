//! Exactly once. A forwarded write carries an idempotency key; the primary stores the key and the
//! reply in the same SQLite transaction as the write, so when a reply is lost (a timeout, a
//! dropped connection) the primary can tell what happened: the stored reply, or, when asked to
//! resolve a key it has not seen, a tombstone stored in its place so that the write, should it
//! still arrive, never runs. Keys are time-ordered (see `connection::idempotency_key`), so keys
//! older than [`KEEP`] are deleted by a range scan of the primary key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::{Executor as _, Row, SqliteConnection};

use super::wire::Reply;

/// How long a key is remembered: far longer than any retry or resolution.
pub const KEEP: Duration = Duration::from_secs(600);

/// `WITHOUT ROWID`, so storing a key leaves `last_insert_rowid()` alone. `reply` is the bincode
/// of the [`Reply`] (bincode keeps every `f64`, infinities included), or NULL for a tombstone.
pub(crate) const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS _litefs_forward_keys (
    key BLOB PRIMARY KEY,
    reply BLOB
) WITHOUT ROWID";

/// What the primary has stored for a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    /// The write committed with this reply.
    Reply(Reply),
    /// The key was resolved as "not committed" before the write arrived: it must never run.
    Tombstone,
}

pub async fn create_table(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    conn.execute(CREATE_TABLE).await.map(drop)
}

/// The key's row; its one column is the reply's bytes, NULL for a tombstone.
pub(crate) const LOOKUP: &str = "SELECT reply FROM _litefs_forward_keys WHERE key = ?";
/// Binds the key and the reply's bytes (NULL: a tombstone).
pub(crate) const STORE: &str = "INSERT INTO _litefs_forward_keys (key, reply) VALUES (?, ?)";
/// Binds [`expiry_bound`].
pub(crate) const EXPIRE: &str = "DELETE FROM _litefs_forward_keys WHERE key < ?";

/// A key as stored: big-endian, so keys sort by time.
pub(crate) fn key_bytes(key: u128) -> Vec<u8> {
    key.to_be_bytes().to_vec()
}

/// A stored reply column as [`Stored`].
pub(crate) fn decode(blob: Option<Vec<u8>>) -> Result<Stored, String> {
    match blob {
        None => Ok(Stored::Tombstone),
        Some(bytes) => bincode::deserialize(&bytes)
            .map(Stored::Reply)
            .map_err(|e| format!("stored reply unreadable: {e}")),
    }
}

/// A reply as the reply column stores it (`None`: a tombstone).
pub(crate) fn encode(reply: Option<&Reply>) -> Result<Option<Vec<u8>>, String> {
    reply
        .map(bincode::serialize)
        .transpose()
        .map_err(|e| format!("cannot encode the reply: {e}"))
}

/// Keys below this are older than [`KEEP`]: keys start with time.
pub(crate) fn expiry_bound() -> Vec<u8> {
    let cutoff = SystemTime::now()
        .checked_sub(KEEP)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    key_bytes(u128::from(cutoff) << 64)
}

/// What is stored for `key`, inside the caller's transaction.
pub async fn lookup(conn: &mut SqliteConnection, key: u128) -> Result<Option<Stored>, sqlx::Error> {
    let row = sqlx::query(LOOKUP)
        .bind(key_bytes(key))
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    decode(row.get(0)).map(Some).map_err(sqlx::Error::Protocol)
}

/// Stores `key` with its reply (`None`: a tombstone), inside the caller's transaction.
pub async fn store(
    conn: &mut SqliteConnection,
    key: u128,
    reply: Option<&Reply>,
) -> Result<(), sqlx::Error> {
    let blob = encode(reply).map_err(sqlx::Error::Protocol)?;
    sqlx::query(STORE)
        .bind(key_bytes(key))
        .bind(blob)
        .execute(&mut *conn)
        .await
        .map(drop)
}

/// Deletes keys older than [`KEEP`]: one range of the primary key, since keys start with time.
pub async fn expire(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::query(EXPIRE)
        .bind(expiry_bound())
        .execute(&mut *conn)
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    #[tokio::test]
    async fn replies_tombstones_and_expiry() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        create_table(&mut conn).await.unwrap();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let fresh = (u128::from(now.as_nanos() as u64) << 64) | 7;
        let old = (u128::from((now - KEEP * 2).as_nanos() as u64) << 64) | 7;
        let reply = Reply::Rows(crate::wire::Rows {
            columns: vec!["x".into()],
            rows: vec![vec![crate::wire::Value::Real(f64::INFINITY)]],
        });
        store(&mut conn, fresh, Some(&reply)).await.unwrap();
        store(&mut conn, old, None).await.unwrap();
        assert_eq!(
            lookup(&mut conn, fresh).await.unwrap(),
            Some(Stored::Reply(reply)),
            "an infinite REAL survives storage"
        );
        assert_eq!(
            lookup(&mut conn, old).await.unwrap(),
            Some(Stored::Tombstone)
        );
        assert_eq!(lookup(&mut conn, 1).await.unwrap(), None);
        expire(&mut conn).await.unwrap();
        assert_eq!(lookup(&mut conn, old).await.unwrap(), None, "expired");
        assert!(lookup(&mut conn, fresh).await.unwrap().is_some(), "kept");
    }
}
