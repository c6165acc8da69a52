//! What crosses the wire between a replica and the primary: SQLite storage classes, never Rust
//! types, so the replica can rebuild results that decode exactly like local ones.

use serde::{Deserialize, Serialize};
use sqlx::sqlite::SqliteRow;
use sqlx::{Column, Row, TypeInfo, ValueRef};

/// One SQLite value, by storage class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// A statement as SQLite will run it: SQL text and already-encoded parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Value>,
}

/// The four ways SeaORM runs SQL; the primary runs a forwarded one the same way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    Execute(Statement),
    /// `execute_unprepared`: raw SQL, possibly several statements, no parameters.
    ExecuteUnprepared(String),
    QueryOne(Statement),
    QueryAll(Statement),
}

impl Request {
    /// Which `DbErr` variant a failure of this request is, as SeaORM does it locally.
    pub fn phase(&self) -> ErrorPhase {
        match self {
            Request::Execute(_) | Request::ExecuteUnprepared(_) => ErrorPhase::Exec,
            Request::QueryOne(_) | Request::QueryAll(_) => ErrorPhase::Query,
        }
    }
}

/// A LiteFS replication position: the TXID and the database checksum after it. A TXID alone does
/// not name a state of the database: after a failover, LiteFS resets a node that was ahead of the
/// new primary with a snapshot, and the same TXID then follows another history. The checksum
/// tells the two apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pos {
    pub txid: u64,
    pub checksum: u64,
}

impl Pos {
    /// Parses LiteFS's `%016x/%016x` (the `-pos` file, and the read-your-writes cookie).
    pub fn parse(text: &str) -> Option<Pos> {
        let (txid, checksum) = text.trim().split_once('/')?;
        Some(Pos {
            txid: u64::from_str_radix(txid, 16).ok()?,
            checksum: u64::from_str_radix(checksum, 16).ok()?,
        })
    }
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}/{:016x}", self.txid, self.checksum)
    }
}

/// Rows with their ordered column names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// A successful result, the shape matching the [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    Exec {
        rows_affected: u64,
        last_insert_rowid: i64,
    },
    Rows(Rows),
    /// A write procedure's output, encoded by the procedure (see [`crate::procedure`]). Last, so
    /// replies stored before it existed still decode.
    Output(Vec<u8>),
}

/// Which `DbErr` variant SeaORM would have produced locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorPhase {
    Exec,
    Query,
    Conn,
}

/// A failed statement on the primary, with enough to rebuild the very same `DbErr` on the replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbFailure {
    pub phase: ErrorPhase,
    /// SQLite's extended result code and message, when SQLite said no.
    pub sqlite: Option<(i32, String)>,
    /// Otherwise, the error as text.
    pub message: String,
}

/// What the primary answers for a statement or a commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub result: Result<Reply, DbFailure>,
    /// The LiteFS position that includes this write, when it committed one; the replica waits
    /// for it. `None` for reads, failures, and statements inside a remote transaction.
    pub pos: Option<Pos>,
}

/// Reads one sqlx row into storage-class values.
pub fn row_values(row: &SqliteRow) -> Result<Vec<Value>, sqlx::Error> {
    (0..row.columns().len())
        .map(|i| {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                return Ok(Value::Null);
            }
            let class = raw.type_info().name().to_owned();
            Ok(match class.as_str() {
                "INTEGER" => Value::Integer(row.try_get(i)?),
                "REAL" => Value::Real(row.try_get(i)?),
                "BLOB" => Value::Blob(row.try_get(i)?),
                _ => match row.try_get::<String, _>(i) {
                    Ok(text) => Value::Text(text),
                    Err(_) => Value::Blob(row.try_get(i)?),
                },
            })
        })
        .collect()
}

/// Reads sqlx rows into [`Rows`]; `columns` is empty when there are no rows.
pub fn rows_from_sqlx(rows: &[SqliteRow]) -> Result<Rows, sqlx::Error> {
    let columns = rows
        .first()
        .map(|r| r.columns().iter().map(|c| c.name().to_owned()).collect())
        .unwrap_or_default();
    let rows = rows.iter().map(row_values).collect::<Result<_, _>>()?;
    Ok(Rows { columns, rows })
}

/// Turns an sqlx error from a statement into a [`DbFailure`].
pub fn failure_from_sqlx(phase: ErrorPhase, err: &sqlx::Error) -> DbFailure {
    let sqlite = match err {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .map(|code| (code, db.message().to_owned())),
        _ => None,
    };
    DbFailure {
        phase,
        sqlite,
        message: err.to_string(),
    }
}
