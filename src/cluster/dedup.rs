//! Exactly once. A forwarded write carries an idempotency key; the primary stores the key and the
//! reply in the same SQLite transaction as the write, so when a reply is lost (a timeout, a
//! dropped connection) and the replica sends the write again, the primary answers the stored
//! reply instead of writing twice. Keys older than [`KEEP`] are deleted as new ones arrive.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::{Executor as _, Row, SqliteConnection};

use super::server::run_on;
use super::wire::{DbFailure, Reply, Request};

/// The table the cluster layer keeps in the app's database.
pub const TABLE: &str = "_litefs_forwarded_writes";
/// How long a key is remembered: far longer than any retry.
pub const KEEP: Duration = Duration::from_secs(600);

/// `WITHOUT ROWID`, so storing a key leaves `last_insert_rowid()` alone: the next statement on
/// the connection sees the same value it would without the bookkeeping.
pub const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS _litefs_forwarded_writes (
    key BLOB PRIMARY KEY,
    reply TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID";

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs `request` once for `key`: the stored reply if the key was seen, else the write and the
/// key together in one transaction. SQL errors of the write are returned (and nothing is kept);
/// an `Err` is a failure of the bookkeeping itself.
pub async fn run_once(
    conn: &mut SqliteConnection,
    key: u128,
    request: &Request,
    expire: bool,
) -> Result<Result<Reply, DbFailure>, sqlx::Error> {
    conn.execute("BEGIN IMMEDIATE").await?;
    let outcome = run_in_transaction(conn, key, request, expire).await;
    let finish = match &outcome {
        Ok(Ok(_)) => "COMMIT",
        _ => "ROLLBACK",
    };
    match conn.execute(finish).await {
        Ok(_) => outcome,
        Err(err) => {
            let _ = conn.execute("ROLLBACK").await;
            Err(err)
        }
    }
}

async fn run_in_transaction(
    conn: &mut SqliteConnection,
    key: u128,
    request: &Request,
    expire: bool,
) -> Result<Result<Reply, DbFailure>, sqlx::Error> {
    let key = key.to_be_bytes().to_vec();
    let stored = sqlx::query("SELECT reply FROM _litefs_forwarded_writes WHERE key = ?")
        .bind(&key)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(row) = stored {
        let json: String = row.get(0);
        tracing::info!("a forwarded write was sent again: answering the stored reply");
        return serde_json::from_str(&json)
            .map(Ok)
            .map_err(|e| sqlx::Error::Protocol(format!("stored reply unreadable: {e}")));
    }
    let reply = match run_on(conn, request).await {
        Ok(reply) => reply,
        Err(failure) => return Ok(Err(failure)),
    };
    let json = serde_json::to_string(&reply).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    sqlx::query("INSERT INTO _litefs_forwarded_writes (key, reply, created_at) VALUES (?, ?, ?)")
        .bind(&key)
        .bind(json)
        .bind(now_secs())
        .execute(&mut *conn)
        .await?;
    if expire {
        sqlx::query("DELETE FROM _litefs_forwarded_writes WHERE created_at < ?")
            .bind(now_secs() - KEEP.as_secs() as i64)
            .execute(&mut *conn)
            .await?;
    }
    Ok(Ok(reply))
}
