//! The scratch in-memory connection that turns storage-class values back into real sqlx rows,
//! results and errors, so forwarded results decode exactly like local ones.

use std::ffi::{c_char, c_int};
use std::ptr;
use std::str::FromStr;

use libsqlite3_sys as ffi;
use sea_orm::sea_query::Values;
use sea_query_sqlx::SqlxValues;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteQueryResult, SqliteRow};
use sqlx::{AssertSqlSafe, ConnectOptions};

use super::wire::{self, Rows, Value};

/// The storage classes of values whose encoding by sqlx is plain (integers, reals, text, blobs,
/// booleans as 0/1, NULLs), without a trip through the scratch connection. `None` when any value
/// needs sqlx's own encoding (dates and times, say): then they all go through SQLite.
fn encode_plain(values: &Values) -> Option<Vec<Value>> {
    use sea_orm::sea_query::Value as V;
    fn or_null<T>(v: &Option<T>, f: impl FnOnce(&T) -> Value) -> Value {
        v.as_ref().map_or(Value::Null, f)
    }
    values
        .0
        .iter()
        .map(|value| {
            Some(match value {
                V::Bool(v) => or_null(v, |b| Value::Integer(i64::from(*b))),
                V::TinyInt(v) => or_null(v, |i| Value::Integer(i64::from(*i))),
                V::SmallInt(v) => or_null(v, |i| Value::Integer(i64::from(*i))),
                V::Int(v) => or_null(v, |i| Value::Integer(i64::from(*i))),
                V::BigInt(v) => or_null(v, |i| Value::Integer(*i)),
                V::TinyUnsigned(v) => or_null(v, |i| Value::Integer(i64::from(*i))),
                V::SmallUnsigned(v) => or_null(v, |i| Value::Integer(i64::from(*i))),
                V::Unsigned(v) => or_null(v, |i| Value::Integer(i64::from(*i))),
                V::Double(v) => or_null(v, |f| Value::Real(*f)),
                V::String(v) => or_null(v, |s| Value::Text(s.clone())),
                V::Bytes(v) => or_null(v, |b| Value::Blob(b.clone())),
                _ => return None,
            })
        })
        .collect()
}

/// Rows kept in the scratch table that `exec_result` updates to produce a `changes` count.
const COUNTER_ROWS: u64 = 1024;
/// Parameters per scratch statement (SQLite allows 32766).
const PARAMS_PER_STATEMENT: usize = 30_000;

/// A private in-memory SQLite connection used to rebuild forwarded results as genuine sqlx values.
pub struct Scratch {
    conn: tokio::sync::Mutex<SqliteConnection>,
}

impl Scratch {
    pub async fn open() -> Result<Self, sqlx::Error> {
        let mut conn = SqliteConnectOptions::from_str("sqlite::memory:")?
            .connect()
            .await?;
        {
            let mut handle = conn.lock_handle().await?;
            // SAFETY: registers a plain scalar function on a connection we own.
            let rc = unsafe {
                ffi::sqlite3_create_function_v2(
                    handle.as_raw_handle().as_ptr(),
                    c"litefs_raise".as_ptr(),
                    2,
                    ffi::SQLITE_UTF8,
                    ptr::null_mut(),
                    Some(raise),
                    None,
                    None,
                    None,
                )
            };
            if rc != ffi::SQLITE_OK {
                return Err(sqlx::Error::Protocol(format!(
                    "cannot register litefs_raise: code {rc}"
                )));
            }
        }
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE counter(x); CREATE TABLE rowid_setter(x);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {COUNTER_ROWS})
             INSERT INTO counter SELECT i FROM n;"
        )))
        .execute(&mut conn)
        .await?;
        Ok(Scratch {
            conn: tokio::sync::Mutex::new(conn),
        })
    }

    /// Encodes SeaORM parameters exactly as sqlx would bind them locally, by binding them here and
    /// reading back what SQLite stored.
    pub async fn encode_params(&self, values: Option<&Values>) -> Result<Vec<Value>, sqlx::Error> {
        let Some(values) = values.filter(|v| !v.0.is_empty()) else {
            return Ok(Vec::new());
        };
        if let Some(plain) = encode_plain(values) {
            return Ok(plain);
        }
        self.encode_through_sqlite(values).await
    }

    /// The general case: bind the values here and read back what SQLite stored.
    async fn encode_through_sqlite(&self, values: &Values) -> Result<Vec<Value>, sqlx::Error> {
        let mut conn = self.conn.lock().await;
        let mut out = Vec::with_capacity(values.0.len());
        for chunk in values.0.chunks(PARAMS_PER_STATEMENT) {
            let sql = format!(
                "SELECT column1 FROM (VALUES {})",
                vec!["(?)"; chunk.len()].join(",")
            );
            let rows = sqlx::query_with(AssertSqlSafe(sql), SqlxValues(Values(chunk.to_vec())))
                .fetch_all(&mut *conn)
                .await?;
            for row in &rows {
                out.extend(wire::row_values(row)?);
            }
        }
        Ok(out)
    }

    /// Rebuilds rows with the same column names and storage classes.
    pub async fn rows(&self, rows: &Rows) -> Result<Vec<SqliteRow>, sqlx::Error> {
        if rows.rows.is_empty() || rows.columns.is_empty() {
            return Ok(Vec::new());
        }
        let width = rows.columns.len();
        let select: Vec<String> = rows
            .columns
            .iter()
            .enumerate()
            .map(|(i, name)| format!("column{} AS \"{}\"", i + 1, name.replace('"', "\"\"")))
            .collect();
        let placeholders = format!("({})", vec!["?"; width].join(","));
        let per_chunk = (PARAMS_PER_STATEMENT / width).max(1);
        let mut conn = self.conn.lock().await;
        let mut out = Vec::with_capacity(rows.rows.len());
        for chunk in rows.rows.chunks(per_chunk) {
            let sql = format!(
                "SELECT {} FROM (VALUES {})",
                select.join(", "),
                vec![placeholders.as_str(); chunk.len()].join(",")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for value in chunk.iter().flatten() {
                query = match value.clone() {
                    Value::Null => query.bind(None::<i64>),
                    Value::Integer(i) => query.bind(i),
                    Value::Real(f) => query.bind(f),
                    Value::Text(s) => query.bind(s),
                    Value::Blob(b) => query.bind(b),
                };
            }
            out.extend(query.fetch_all(&mut *conn).await?);
        }
        Ok(out)
    }

    /// An `SqliteQueryResult` with exactly these `rows_affected` and `last_insert_rowid`, made by
    /// statements whose `changes()` and `last_insert_rowid()` are those numbers.
    pub async fn exec_result(
        &self,
        rows_affected: u64,
        last_insert_rowid: i64,
    ) -> Result<SqliteQueryResult, sqlx::Error> {
        let mut conn = self.conn.lock().await;
        // Emptied first, so the table never holds more than one row; a DELETE leaves
        // last_insert_rowid alone, and the INSERT's own result is the one returned.
        sqlx::query("DELETE FROM rowid_setter")
            .execute(&mut *conn)
            .await?;
        let set_rowid = sqlx::query("INSERT INTO rowid_setter(rowid) VALUES (?)")
            .bind(last_insert_rowid)
            .execute(&mut *conn)
            .await?;
        if rows_affected == 1 {
            // That one statement already changed one row and set the rowid: the common case.
            return Ok(set_rowid);
        }
        // UPDATEs leave last_insert_rowid alone and count their rows in changes().
        let mut result = sqlx::query("UPDATE counter SET x = x WHERE rowid <= ?")
            .bind((rows_affected % COUNTER_ROWS) as i64)
            .execute(&mut *conn)
            .await?;
        for _ in 0..rows_affected / COUNTER_ROWS {
            let all = sqlx::query("UPDATE counter SET x = x")
                .execute(&mut *conn)
                .await?;
            result.extend([all]);
        }
        Ok(result)
    }

    /// A genuine `sqlx::Error::Database` carrying SQLite's extended `code` and `message`.
    pub async fn error(&self, code: i32, message: &str) -> sqlx::Error {
        let mut conn = self.conn.lock().await;
        match sqlx::query("SELECT litefs_raise(?, ?)")
            .bind(code)
            .bind(message)
            .fetch_all(&mut *conn)
            .await
        {
            Err(err) => err,
            Ok(_) => sqlx::Error::Protocol(format!("(code: {code}) {message}")),
        }
    }
}

/// `litefs_raise(code, message)`: fails with the given extended result code and message.
unsafe extern "C" fn raise(
    ctx: *mut ffi::sqlite3_context,
    _argc: c_int,
    argv: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: SQLite passes exactly two arguments, as registered.
    unsafe {
        let code = ffi::sqlite3_value_int(*argv);
        let text = ffi::sqlite3_value_text(*argv.add(1));
        let message = if text.is_null() {
            c"".as_ptr()
        } else {
            text as *const c_char
        };
        ffi::sqlite3_result_error(ctx, message, -1);
        // Must come after sqlite3_result_error, which resets the code to SQLITE_ERROR.
        ffi::sqlite3_result_error_code(ctx, code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Row;

    #[tokio::test]
    async fn plain_values_encode_as_sqlx_would() {
        use sea_orm::sea_query::Value as V;
        let scratch = Scratch::open().await.unwrap();
        let values = Values(vec![
            V::Bool(Some(true)),
            V::Bool(Some(false)),
            V::TinyInt(Some(-8)),
            V::SmallInt(Some(300)),
            V::Int(Some(i32::MIN)),
            V::BigInt(Some(i64::MAX)),
            V::TinyUnsigned(Some(255)),
            V::SmallUnsigned(Some(65535)),
            V::Unsigned(Some(u32::MAX)),
            V::Double(Some(-1.25)),
            V::String(Some("ünïcode \"quoted\"".into())),
            V::Bytes(Some(vec![0, 1, 255])),
            V::Int(None),
            V::String(None),
        ]);
        let plain = encode_plain(&values).expect("all plain");
        assert_eq!(plain, scratch.encode_through_sqlite(&values).await.unwrap());
        let dated = Values(vec![
            V::Int(Some(1)),
            V::ChronoDateTimeUtc(Some(chrono::Utc::now())),
        ]);
        assert!(
            encode_plain(&dated).is_none(),
            "dates go through sqlx's own encoding"
        );
    }

    #[tokio::test]
    async fn exec_results_are_exact() {
        let scratch = Scratch::open().await.unwrap();
        for (changes, rowid) in [
            (1, 42),
            (1, 42),
            (0, 7),
            (5, 123_456_789_012),
            (2500, 3),
            (0, 0),
            (1, -5),
        ] {
            let r = scratch.exec_result(changes, rowid).await.unwrap();
            assert_eq!((r.rows_affected(), r.last_insert_rowid()), (changes, rowid));
        }
    }

    #[tokio::test]
    async fn errors_keep_code_and_message() {
        let scratch = Scratch::open().await.unwrap();
        let err = scratch
            .error(2067, "UNIQUE constraint failed: tags.label")
            .await;
        let sqlx::Error::Database(db) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(db.code().as_deref(), Some("2067"));
        assert_eq!(db.message(), "UNIQUE constraint failed: tags.label");
        assert!(db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some());
    }

    #[tokio::test]
    async fn rows_keep_names_and_storage_classes() {
        let scratch = Scratch::open().await.unwrap();
        let rows = Rows {
            columns: vec![
                "id".into(),
                "say \"hi\"".into(),
                "n".into(),
                "b".into(),
                "f".into(),
            ],
            rows: vec![
                vec![
                    Value::Integer(i64::MAX),
                    Value::Text("x".into()),
                    Value::Null,
                    Value::Blob(vec![0, 1]),
                    Value::Real(1.5),
                ],
                vec![
                    Value::Integer(-1),
                    Value::Text("".into()),
                    Value::Integer(3),
                    Value::Blob(vec![]),
                    Value::Real(-0.25),
                ],
            ],
        };
        let rebuilt = scratch.rows(&rows).await.unwrap();
        assert_eq!(wire::rows_from_sqlx(&rebuilt).unwrap(), rows);
        assert_eq!(rebuilt[0].try_get::<i64, _>("id").unwrap(), i64::MAX);
    }

    #[tokio::test]
    async fn the_rowid_table_never_grows() {
        let scratch = Scratch::open().await.unwrap();
        for rowid in 0..50 {
            scratch.exec_result(1, rowid).await.unwrap();
        }
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM rowid_setter")
            .fetch_one(&mut *scratch.conn.lock().await)
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
}
