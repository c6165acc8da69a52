//! What a SQL string does, decided before it runs anywhere.
//!
//! SQLite's `sqlite3_stmt_readonly` is the authority for ordinary statements (it sees through
//! `WITH ... INSERT`, `RETURNING`, triggers), but it calls `BEGIN`, `COMMIT`, `SAVEPOINT`,
//! `ATTACH` and many PRAGMAs "read-only", and preparing some PRAGMAs already changes the connection
//! (`PRAGMA query_only=OFF` takes effect at prepare time). So every statement is first read by a
//! small lexer that knows those kinds by their first keyword; only the rest is prepared, and
//! preparing them changes nothing. A string with several statements is judged as a whole.
//!
//! The table of what happens to each kind is in the crate README ("What runs where").

use std::collections::HashMap;
use std::ffi::{c_char, c_int};
use std::ptr;
use std::sync::Mutex;

use libsqlite3_sys as ffi;
use sqlx::SqlitePool;

/// What a SQL string is, for routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Only reads: runs on a read connection of the node it was sent to.
    Read,
    /// Writes: one atomic unit on the primary (several statements commit together or not at all).
    Write,
    /// Writes, but cannot run inside a transaction (`VACUUM`, `PRAGMA optimize`): runs alone.
    WriteAlone,
    /// Meaningful only on the connection of a transaction (`SAVEPOINT`, `RELEASE`, `ROLLBACK TO`,
    /// `last_insert_rowid()`, `changes()`, `PRAGMA defer_foreign_keys`).
    InTransaction,
    /// Transaction control (`BEGIN`, `COMMIT`, `END`, `ROLLBACK`): use `TransactionTrait`.
    TransactionControl,
    /// Never run through the wrapper; the text says why and what to do instead.
    Refused(&'static str),
    /// This node cannot prepare it (a table that has not replicated here yet): the primary,
    /// which has the schema, decides.
    Unknown,
}

/// Why a statement was refused: the error a caller sees, the same on every node.
pub fn refusal(kind: &Kind, in_transaction: bool) -> Option<String> {
    let why = match kind {
        Kind::Refused(why) => *why,
        Kind::TransactionControl => {
            if in_transaction {
                "transaction control inside a transaction: end it with commit() or rollback(), \
                 nest with begin() (a savepoint)"
            } else {
                "raw transaction control (BEGIN/COMMIT/ROLLBACK/END) is refused: a pooled \
                 connection must never be left inside a transaction. Use TransactionTrait::begin() \
                 or transaction(); a string of several statements already runs atomically"
            }
        }
        Kind::InTransaction if !in_transaction => {
            "this statement only means something on one connection (SAVEPOINT/RELEASE/ROLLBACK \
             TO, last_insert_rowid(), changes(), total_changes(), PRAGMA defer_foreign_keys): run \
             it inside a transaction, or use RETURNING"
        }
        Kind::WriteAlone if in_transaction => {
            "VACUUM and PRAGMA optimize cannot run inside a transaction: run them on the connection"
        }
        _ => return None,
    };
    Some(format!("statement refused: {why}"))
}

/// Classifies SQL strings, asking SQLite (on a read-only connection) about ordinary statements.
/// Answers are cached by SQL text.
pub struct Classifier {
    pool: SqlitePool,
    cache: Mutex<HashMap<String, Kind>>,
}

/// How many distinct SQL texts the classifier remembers before it starts over.
const CACHE_LIMIT: usize = 4096;

impl Classifier {
    pub fn new(pool: SqlitePool) -> Self {
        Classifier {
            pool,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The connection it prepares on.
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// What `sql` is. Statements this node cannot prepare make the whole string [`Kind::Unknown`],
    /// and that answer is not cached: the schema may arrive any moment.
    pub async fn classify(&self, sql: &str) -> Kind {
        if let Some(known) = self.cache.lock().unwrap().get(sql) {
            return known.clone();
        }
        let kind = match self.pool.acquire().await {
            Ok(mut conn) => match conn.lock_handle().await {
                // SAFETY: the handle is locked for this call; statements are finalized inside.
                Ok(mut handle) => unsafe { classify_on(handle.as_raw_handle().as_ptr(), sql) },
                Err(_) => Kind::Unknown,
            },
            Err(_) => Kind::Unknown,
        };
        if kind != Kind::Unknown {
            let mut cache = self.cache.lock().unwrap();
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(sql.to_owned(), kind.clone());
        }
        kind
    }
}

/// The kind of each statement's leading keyword, when the keyword alone decides.
enum Lead {
    Decided(Kind),
    /// An ordinary statement: prepare it and ask SQLite.
    Prepare,
}

/// Classifies `sql` by keywords alone: ordinary statements come out as [`Kind::Unknown`]. What the
/// primary uses to refuse transaction control inside a remote transaction, where the statements
/// may name tables that only exist inside that transaction.
pub fn classify_lexically(sql: &str) -> Kind {
    // SAFETY: a null connection is never prepared on.
    unsafe { classify_on(ptr::null_mut(), sql) }
}

/// Classifies every statement of `sql`, preparing only ordinary ones on `db` (none when `db` is
/// null: they are then [`Kind::Unknown`]).
///
/// # Safety
/// `db` must be null, or a valid connection that nobody else uses during the call.
pub unsafe fn classify_on(db: *mut ffi::sqlite3, sql: &str) -> Kind {
    if sql.contains('\0') {
        // sqlx's statement loop never gets past a NUL (SQLite prepares nothing and does not
        // advance): it would spin forever, holding whatever it holds.
        return Kind::Refused("the SQL contains a NUL character");
    }
    let bytes = sql.as_bytes();
    let mut kinds = Vec::new();
    let mut offset = skip_space(bytes, 0);
    while offset < bytes.len() {
        if bytes[offset] == b';' {
            offset = skip_space(bytes, offset + 1);
            continue;
        }
        let end = match lead(bytes, offset) {
            Lead::Decided(kind) => {
                kinds.push(kind);
                statement_end(bytes, offset)
            }
            Lead::Prepare => {
                let end = statement_end(bytes, offset);
                let kind = if db.is_null() {
                    Kind::Unknown
                } else {
                    // SAFETY: forwarded from the caller; the range is within `bytes`.
                    unsafe { prepare_one(db, &bytes[offset..end]) }
                };
                // After a write of the same string (which runs on one connection, atomically),
                // last_insert_rowid() and changes() answer for that write: well defined.
                let wrote_before = kinds
                    .iter()
                    .any(|k| matches!(k, Kind::Write | Kind::Unknown));
                let kind = match kind {
                    Kind::Read | Kind::Write
                        if !wrote_before && calls_connection_local(&bytes[offset..end]) =>
                    {
                        Kind::InTransaction
                    }
                    Kind::Read if wrote_before => Kind::Write,
                    kind => kind,
                };
                kinds.push(kind);
                end
            }
        };
        offset = skip_space(bytes, end);
    }
    combine(kinds)
}

/// One kind for a whole string of statements.
fn combine(kinds: Vec<Kind>) -> Kind {
    if kinds.len() > 1 && kinds.contains(&Kind::WriteAlone) {
        return Kind::Refused(
            "VACUUM and PRAGMA optimize must be sent on their own, not with other statements",
        );
    }
    let rank = |k: &Kind| match k {
        Kind::Refused(_) => 6,
        Kind::TransactionControl => 5,
        Kind::InTransaction => 4,
        Kind::WriteAlone => 3,
        Kind::Unknown => 2,
        Kind::Write => 1,
        Kind::Read => 0,
    };
    kinds.into_iter().max_by_key(rank).unwrap_or(Kind::Read)
}

/// Decides by the leading keyword(s) where that is enough.
fn lead(bytes: &[u8], offset: usize) -> Lead {
    let (first, after) = word(bytes, offset);
    let (second, after_second) = word(bytes, skip_space(bytes, after));
    match first.as_str() {
        "BEGIN" | "COMMIT" | "END" => Lead::Decided(Kind::TransactionControl),
        "ROLLBACK" => {
            // ROLLBACK [TRANSACTION] TO [SAVEPOINT] name
            let next = if second == "TRANSACTION" {
                word(bytes, skip_space(bytes, after_second)).0
            } else {
                second
            };
            Lead::Decided(if next == "TO" {
                Kind::InTransaction
            } else {
                Kind::TransactionControl
            })
        }
        "SAVEPOINT" | "RELEASE" => Lead::Decided(Kind::InTransaction),
        "ATTACH" | "DETACH" => Lead::Decided(Kind::Refused(
            "ATTACH and DETACH change one pooled connection only; attach in the connection options",
        )),
        "VACUUM" => Lead::Decided(Kind::WriteAlone),
        // sqlite3_stmt_readonly calls REINDEX read-only, yet it rewrites indexes.
        "REINDEX" => Lead::Decided(Kind::Write),
        "CREATE"
            if second == "TEMP" || second == "TEMPORARY" || names_temp_schema(bytes, offset) =>
        {
            Lead::Decided(Kind::Refused(
                "temporary tables, views and triggers live on one pooled connection only",
            ))
        }
        "EXPLAIN" => {
            // EXPLAIN [QUERY PLAN] <statement>: a read, for ordinary statements only; the
            // keyword-decided kinds (PRAGMAs act when prepared) are not explained here.
            let inner = if second == "QUERY" {
                let (plan, after_plan) = word(bytes, skip_space(bytes, after_second));
                (plan == "PLAN").then(|| word(bytes, skip_space(bytes, after_plan)).0)
            } else {
                Some(second)
            };
            match inner.as_deref() {
                // It shows the program and runs nothing (SQLite calls EXPLAIN INSERT a write).
                Some("SELECT" | "WITH" | "VALUES" | "INSERT" | "UPDATE" | "DELETE" | "REPLACE") => {
                    Lead::Decided(Kind::Read)
                }
                _ => Lead::Decided(Kind::Refused(
                    "EXPLAIN is answered for SELECT, WITH, VALUES, INSERT, UPDATE, DELETE and REPLACE only",
                )),
            }
        }
        "PRAGMA" => Lead::Decided(pragma(bytes, after)),
        _ => Lead::Prepare,
    }
}

/// PRAGMAs by name: reads, persistent settings of the database file, and the rest.
fn pragma(bytes: &[u8], after_keyword: usize) -> Kind {
    let (mut name, mut after) = word(bytes, skip_space(bytes, after_keyword));
    // `schema.name`
    let dot = skip_space(bytes, after);
    if bytes.get(dot) == Some(&b'.') {
        (name, after) = word(bytes, skip_space(bytes, dot + 1));
    }
    let rest = skip_space(bytes, after);
    let name = name.to_ascii_lowercase();
    // `PRAGMA x = v` and `PRAGMA x(v)` both set x, except for the PRAGMAs whose argument says what
    // to read (a table, an index, a row limit).
    let takes_argument = matches!(
        name.as_str(),
        "table_info"
            | "table_xinfo"
            | "index_info"
            | "index_xinfo"
            | "index_list"
            | "foreign_key_list"
            | "foreign_key_check"
            | "integrity_check"
            | "quick_check"
    );
    let assigns = match bytes.get(rest) {
        Some(b'=') => true,
        Some(b'(') => !takes_argument,
        _ => false,
    };
    match (name.as_str(), assigns) {
        // Persistent settings stored in the database file: a write like any other.
        ("user_version" | "application_id", true) => Kind::Write,
        ("incremental_vacuum", _) => Kind::Write,
        ("optimize", _) => Kind::WriteAlone,
        ("defer_foreign_keys", true) => Kind::InTransaction,
        (
            "journal_mode" | "locking_mode" | "page_size" | "auto_vacuum" | "schema_version"
            | "wal_checkpoint" | "writable_schema" | "wal_autocheckpoint" | "journal_size_limit",
            _,
        ) if assigns || matches!(name.as_str(), "wal_checkpoint" | "writable_schema") => {
            Kind::Refused(
                "this PRAGMA changes how the database file is stored, which LiteFS manages \
                 (WAL journal, its own checkpoints); set it when the database is created",
            )
        }
        (_, true) => Kind::Refused(
            "a PRAGMA that changes a setting applies to one pooled connection only: set it in \
             the connection options so every connection has it",
        ),
        // Query forms (with or without an argument in parentheses): reads.
        (
            "table_info"
            | "table_xinfo"
            | "table_list"
            | "index_info"
            | "index_xinfo"
            | "index_list"
            | "foreign_key_list"
            | "foreign_key_check"
            | "integrity_check"
            | "quick_check"
            | "page_count"
            | "page_size"
            | "freelist_count"
            | "user_version"
            | "application_id"
            | "schema_version"
            | "data_version"
            | "database_list"
            | "collation_list"
            | "function_list"
            | "module_list"
            | "pragma_list"
            | "compile_options"
            | "encoding"
            | "journal_mode"
            | "auto_vacuum"
            | "max_page_count"
            | "foreign_keys"
            | "query_only"
            | "busy_timeout"
            | "synchronous"
            | "cache_size"
            | "recursive_triggers"
            | "case_sensitive_like"
            | "temp_store"
            | "secure_delete"
            | "locking_mode"
            | "mmap_size"
            | "cell_size_check"
            | "automatic_index"
            | "ignore_check_constraints"
            | "defer_foreign_keys"
            | "trusted_schema"
            | "legacy_alter_table"
            | "reverse_unordered_selects"
            | "wal_autocheckpoint"
            | "journal_size_limit"
            | "soft_heap_limit"
            | "hard_heap_limit"
            | "threads"
            | "analysis_limit"
            | "stats",
            false,
        ) => Kind::Read,
        _ => Kind::Refused(
            "this PRAGMA is not known to the wrapper (it may change the connection or the file); \
             run it through the connection options or a migration",
        ),
    }
}

/// Prepares one statement and asks SQLite whether it writes.
unsafe fn prepare_one(db: *mut ffi::sqlite3, statement: &[u8]) -> Kind {
    let mut stmt: *mut ffi::sqlite3_stmt = ptr::null_mut();
    let mut tail: *const c_char = ptr::null();
    // SAFETY: the pointer and length describe `statement`.
    let rc = unsafe {
        ffi::sqlite3_prepare_v2(
            db,
            statement.as_ptr() as *const c_char,
            statement.len() as c_int,
            &mut stmt,
            &mut tail,
        )
    };
    if rc != ffi::SQLITE_OK || stmt.is_null() {
        // SAFETY: finalizing NULL is a no-op.
        unsafe { ffi::sqlite3_finalize(stmt) };
        return Kind::Unknown;
    }
    // SAFETY: `stmt` is a valid prepared statement until finalized below.
    let read_only = unsafe { ffi::sqlite3_stmt_readonly(stmt) } != 0;
    unsafe { ffi::sqlite3_finalize(stmt) };
    if read_only { Kind::Read } else { Kind::Write }
}

/// The names in a statement, bare or quoted (`"x"`, `[x]`, `` `x` ``), upper-cased, each with
/// where it ends; string literals and comments are skipped.
fn names(bytes: &[u8]) -> impl Iterator<Item = (String, usize)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let c = bytes[i];
            if matches!(c, b'"' | b'[' | b'`') {
                let end = skip_quoted_or_comment(bytes, i).unwrap_or(bytes.len());
                let inner = &bytes[i + 1..end.saturating_sub(1).max(i + 1)];
                i = end;
                return Some((String::from_utf8_lossy(inner).to_ascii_uppercase(), end));
            } else if let Some(end) = skip_quoted_or_comment(bytes, i) {
                i = end;
            } else if c.is_ascii_alphabetic() || c == b'_' {
                let (name, end) = word(bytes, i);
                i = end;
                return Some((name, end));
            } else {
                i += 1;
            }
        }
        None
    })
}

/// Whether the statement calls a function whose answer belongs to the connection, not the
/// statement: on a pooled connection it answers for whatever ran there last.
fn calls_connection_local(bytes: &[u8]) -> bool {
    names(bytes).any(|(name, end)| {
        matches!(
            name.as_str(),
            "LAST_INSERT_ROWID" | "CHANGES" | "TOTAL_CHANGES"
        ) && bytes.get(skip_space(bytes, end)) == Some(&b'(')
    })
}

/// Whether a CREATE statement names the `temp` schema (`CREATE TABLE temp.x`, `"temp".x`).
fn names_temp_schema(bytes: &[u8], offset: usize) -> bool {
    let end = statement_end(bytes, offset);
    let statement = &bytes[offset..end];
    names(statement).any(|(name, end)| {
        matches!(name.as_str(), "TEMP" | "TEMPORARY")
            && statement.get(skip_space(statement, end)) == Some(&b'.')
    })
}

/// The identifier or keyword at `offset`, upper-cased, and where it ends.
fn word(bytes: &[u8], offset: usize) -> (String, usize) {
    let end = bytes[offset.min(bytes.len())..]
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_' || *b == b'$'))
        .map_or(bytes.len(), |n| offset + n);
    let text = String::from_utf8_lossy(&bytes[offset.min(end)..end]).to_ascii_uppercase();
    (text, end)
}

/// Skips white space and comments.
fn skip_space(bytes: &[u8], mut i: usize) -> usize {
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        match bytes.get(i..i + 2) {
            Some(b"--") | Some(b"/*") => i = skip_quoted_or_comment(bytes, i).unwrap_or(i + 2),
            _ => return i,
        }
    }
}

/// If a string literal, quoted identifier or comment starts at `i`, where it ends.
fn skip_quoted_or_comment(bytes: &[u8], i: usize) -> Option<usize> {
    let find = |from: usize, pat: &[u8]| {
        bytes[from.min(bytes.len())..]
            .windows(pat.len())
            .position(|w| w == pat)
            .map_or(bytes.len(), |n| from + n + pat.len())
    };
    match bytes[i] {
        b'-' if bytes.get(i + 1) == Some(&b'-') => Some(find(i + 2, b"\n")),
        b'/' if bytes.get(i + 1) == Some(&b'*') => Some(find(i + 2, b"*/")),
        b'[' => Some(find(i + 1, b"]")),
        quote @ (b'\'' | b'"' | b'`') => {
            // A doubled quote inside is an escaped quote: scanning on past it works the same.
            let mut j = i + 1;
            while j < bytes.len() {
                if bytes[j] == quote {
                    if bytes.get(j + 1) == Some(&quote) {
                        j += 2;
                        continue;
                    }
                    return Some(j + 1);
                }
                j += 1;
            }
            Some(bytes.len())
        }
        _ => None,
    }
}

/// The end (after its `;`) of the statement that starts at `start`. SQLite's own
/// `sqlite3_complete` decides which `;` ends it, so a trigger body's `;`s do not.
fn statement_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < bytes.len() {
        if let Some(end) = skip_quoted_or_comment(bytes, i) {
            i = end;
        } else if bytes[i] == b';' {
            let candidate = &bytes[start..=i];
            let complete = std::ffi::CString::new(candidate)
                // SAFETY: a NUL-terminated string that lives across the call.
                .map(|text| unsafe { ffi::sqlite3_complete(text.as_ptr()) } != 0)
                .unwrap_or(true);
            if complete {
                return i + 1;
            }
            i += 1;
        } else {
            i += 1;
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn classifier() -> Classifier {
        // One connection: each in-memory connection is a database of its own.
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query(
            "CREATE TABLE t(x); CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END; \
             PRAGMA query_only=ON",
        )
        .execute(&pool)
        .await
        .unwrap();
        Classifier::new(pool)
    }

    #[tokio::test]
    async fn every_kind_of_statement() {
        let c = classifier().await;
        let cases: &[(&str, Kind)] = &[
            ("SELECT * FROM t", Kind::Read),
            ("  -- c\n SELECT 1; ", Kind::Read),
            ("EXPLAIN QUERY PLAN SELECT * FROM t", Kind::Read),
            ("INSERT INTO t VALUES (1) RETURNING x", Kind::Write),
            (
                "WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a",
                Kind::Write,
            ),
            ("UPDATE t SET x = 2", Kind::Write),
            ("DELETE FROM t", Kind::Write),
            ("CREATE TABLE u(y)", Kind::Write),
            (
                "CREATE TRIGGER tr2 AFTER DELETE ON t BEGIN DELETE FROM t; END",
                Kind::Write,
            ),
            ("DROP TABLE t", Kind::Write),
            ("ALTER TABLE t ADD COLUMN z", Kind::Write),
            ("ANALYZE", Kind::Write),
            ("REINDEX", Kind::Write),
            ("SELECT 1; DELETE FROM t", Kind::Write),
            ("INSERT INTO t VALUES (';'); SELECT 'BEGIN'", Kind::Write),
            ("BEGIN", Kind::TransactionControl),
            ("begin immediate", Kind::TransactionControl),
            ("COMMIT", Kind::TransactionControl),
            ("END TRANSACTION", Kind::TransactionControl),
            ("ROLLBACK", Kind::TransactionControl),
            (
                "BEGIN; INSERT INTO t VALUES (1); COMMIT",
                Kind::TransactionControl,
            ),
            ("ROLLBACK TO sp1", Kind::InTransaction),
            ("ROLLBACK TRANSACTION TO SAVEPOINT sp1", Kind::InTransaction),
            ("SAVEPOINT sp1", Kind::InTransaction),
            ("RELEASE sp1", Kind::InTransaction),
            ("SELECT last_insert_rowid()", Kind::InTransaction),
            ("SELECT changes ( )", Kind::InTransaction),
            ("SELECT 'last_insert_rowid()'", Kind::Read),
            (
                "INSERT INTO t VALUES (1); INSERT INTO t VALUES (last_insert_rowid())",
                Kind::Write,
            ),
            ("INSERT INTO t VALUES (1); SELECT changes()", Kind::Write),
            ("SELECT 1; SELECT changes()", Kind::InTransaction),
            (
                "INSERT INTO t VALUES (total_changes())",
                Kind::InTransaction,
            ),
            ("VACUUM", Kind::WriteAlone),
            ("PRAGMA optimize", Kind::WriteAlone),
            ("PRAGMA table_info(t)", Kind::Read),
            ("PRAGMA main.user_version", Kind::Read),
            ("PRAGMA foreign_keys", Kind::Read),
            ("PRAGMA integrity_check", Kind::Read),
            ("PRAGMA user_version = 7", Kind::Write),
            ("PRAGMA user_version(7)", Kind::Write),
            ("PRAGMA table_info('t')", Kind::Read),
            ("PRAGMA integrity_check(10)", Kind::Read),
            ("PRAGMA hard_heap_limit", Kind::Read),
            ("SELECT \"changes\"()", Kind::InTransaction),
            ("SELECT [last_insert_rowid]()", Kind::InTransaction),
            ("SELECT x AS \"changes\" FROM t", Kind::Read),
            ("SELECT temp FROM (SELECT 1 AS temp)", Kind::Read),
            ("EXPLAIN INSERT INTO t VALUES (1)", Kind::Read),
            ("PRAGMA defer_foreign_keys = ON", Kind::InTransaction),
            ("SELECT * FROM missing", Kind::Unknown),
            ("SELECT 1; SELECT * FROM missing", Kind::Unknown),
            (
                "CREATE TRIGGER tr3 AFTER INSERT ON missing BEGIN DELETE FROM t; END; SELECT 1",
                Kind::Unknown,
            ),
        ];
        for (sql, expected) in cases {
            assert_eq!(&c.classify(sql).await, expected, "{sql}");
        }
        let refused = [
            "ATTACH 'x.db' AS x",
            "DETACH x",
            "PRAGMA query_only = OFF",
            "PRAGMA query_only=0",
            "PRAGMA foreign_keys = OFF",
            "PRAGMA journal_mode = DELETE",
            "PRAGMA journal_mode=WAL",
            "PRAGMA writable_schema",
            "PRAGMA writable_schema = ON",
            "PRAGMA wal_checkpoint(TRUNCATE)",
            "PRAGMA no_such_pragma",
            "CREATE TEMP TABLE x(y)",
            "CREATE TABLE temp.x(y)",
            "CREATE TABLE \"temp\" . x(y)",
            "CREATE VIEW [TEMP].v AS SELECT 1",
            "CREATE TRIGGER temp.tr AFTER INSERT ON main.t BEGIN SELECT 1; END",
            "VACUUM; SELECT 1",
            "SELECT 1\0",
            "INSERT INTO t VALUES (1);\0 INSERT INTO t VALUES (2)",
            "PRAGMA query_only(0)",
            "PRAGMA main.query_only(OFF)",
            "PRAGMA foreign_keys(OFF)",
            "PRAGMA ignore_check_constraints(1)",
            "PRAGMA journal_mode(DELETE)",
            "PRAGMA hard_heap_limit(1)",
            "EXPLAIN PRAGMA ignore_check_constraints = 1",
            "EXPLAIN BEGIN",
            "EXPLAIN QUERY PLAN PRAGMA foreign_keys = OFF",
        ];
        for sql in refused {
            assert!(
                matches!(c.classify(sql).await, Kind::Refused(_)),
                "{sql}: {:?}",
                c.classify(sql).await
            );
        }
    }

    #[tokio::test]
    async fn classifying_changes_nothing_on_the_connection() {
        let c = classifier().await;
        for sql in ["PRAGMA query_only=OFF", "PRAGMA foreign_keys=OFF", "BEGIN"] {
            c.classify(sql).await;
        }
        let mut conn = c.pool.acquire().await.unwrap();
        let on: i64 = sqlx::query_scalar("PRAGMA query_only")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(on, 1, "the read-only backstop is still on");
        let err = sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut *conn)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("readonly"), "{err}");
    }

    #[test]
    fn keywords_alone() {
        assert_eq!(classify_lexically("SELECT 1"), Kind::Unknown);
        assert_eq!(
            classify_lexically("INSERT INTO t VALUES (1); COMMIT"),
            Kind::TransactionControl
        );
        assert_eq!(
            classify_lexically("CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1; END"),
            Kind::Unknown,
            "a trigger's END is not transaction control"
        );
        assert_eq!(classify_lexically("SAVEPOINT a"), Kind::InTransaction);
    }

    #[test]
    fn refusals_say_what_to_do() {
        let text = refusal(&Kind::TransactionControl, false).unwrap();
        assert!(text.contains("TransactionTrait"), "{text}");
        assert!(refusal(&Kind::InTransaction, true).is_none());
        assert!(refusal(&Kind::InTransaction, false).is_some());
        assert!(refusal(&Kind::WriteAlone, true).is_some());
        assert!(refusal(&Kind::Write, false).is_none());
    }

    #[test]
    fn review_transaction_control_hidden_in_a_string() {
        for sql in [
            "INSERT INTO t VALUES (1); COMMIT",
            "INSERT INTO t VALUES (1);COMMIT;BEGIN",
            "INSERT INTO t VALUES (1) /* ; */ ; COMMIT",
            "INSERT INTO t VALUES ('a;b'); END",
            "INSERT INTO \"t;\" VALUES (1); ROLLBACK",
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END; COMMIT",
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT CASE WHEN 1 THEN 2 END; END; COMMIT",
            "-- c\nINSERT INTO t VALUES (1); -- x\nCOMMIT",
            "INSERT INTO t VALUES (1); commit transaction",
            "INSERT INTO [t;x] VALUES (1); END",
            "INSERT INTO `t;x` VALUES (1); END",
        ] {
            assert_eq!(classify_lexically(sql), Kind::TransactionControl, "{sql}");
        }
        for sql in [
            "INSERT INTO t VALUES (1); RELEASE litefs_group_write",
            "INSERT INTO t VALUES (1); SAVEPOINT a",
            "INSERT INTO t VALUES (1); ROLLBACK TO litefs_group_write",
        ] {
            assert_eq!(classify_lexically(sql), Kind::InTransaction, "{sql}");
        }
    }
}
