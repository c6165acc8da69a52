//! Regression tests for what an adversarial review of the rewritten forwarding layer found, on
//! a standalone node in-process (the same code paths as the primary). Each failed before its fix.

use std::path::PathBuf;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionSession, TransactionTrait};
use sqlx::Connection;

use super::statement::{Classifier, Kind};
use super::{Builder, ClusterConnection};

fn temp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "review-{name}-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("t.db")
}

async fn standalone(name: &str) -> (ClusterConnection, PathBuf) {
    let path = temp_db(name);
    let db = Builder::new(path.clone()).start().await.unwrap();
    (db, path)
}

/// What a fresh connection (not one of the app's pools) sees.
async fn fresh_ints(path: &std::path::Path, sql: &str) -> Vec<i64> {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let rows: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut conn)
        .await
        .unwrap();
    rows
}

async fn classifier() -> (Classifier, sqlx::SqlitePool) {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    sqlx::query("CREATE TABLE t(x); PRAGMA query_only=ON")
        .execute(&pool)
        .await
        .unwrap();
    (Classifier::new(pool.clone()), pool)
}

/// PRAGMA's function-call form `PRAGMA name(value)` sets a value, but the lexer only looks for
/// `=`, so it comes out as a read (and EXPLAIN hides any PRAGMA from the lexer).
#[tokio::test]
async fn pragma_call_form_and_explain_are_classified_as_settings() {
    let (c, pool) = classifier().await;
    let mut wrong = Vec::new();
    for sql in [
        "PRAGMA query_only(0)",
        "PRAGMA main.query_only(OFF)",
        "PRAGMA foreign_keys(OFF)",
        "PRAGMA ignore_check_constraints(1)",
        "PRAGMA synchronous(OFF)",
        "PRAGMA journal_mode(DELETE)",
        "PRAGMA locking_mode(EXCLUSIVE)",
        "PRAGMA schema_version(1)",
        "PRAGMA user_version(7)",
        "PRAGMA busy_timeout(0)",
        "EXPLAIN PRAGMA ignore_check_constraints = 1",
    ] {
        let kind = c.classify(sql).await;
        println!("{sql:45} -> {kind:?}");
        let expected_write = sql.contains("user_version");
        let ok = if expected_write {
            kind == Kind::Write
        } else {
            matches!(kind, Kind::Refused(_))
        };
        if !ok {
            wrong.push(format!("{sql} -> {kind:?}"));
        }
    }
    let mut conn = pool.acquire().await.unwrap();
    let query_only: i64 = sqlx::query_scalar("PRAGMA query_only")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    println!("classifier connection query_only after classifying: {query_only}");
    assert!(
        wrong.is_empty() && query_only == 1,
        "misclassified: {wrong:#?}; query_only on the classifier's read connection = {query_only}"
    );
}

/// through the connection: a PRAGMA in call form inside a transaction, or in a string with a
/// write, changes one pooled read-write connection of the primary for good.
#[tokio::test]
async fn a_pragma_in_call_form_cannot_change_a_pooled_writer_connection() {
    let (db, _path) = standalone("r1b").await;
    db.execute_unprepared("CREATE TABLE c(x INTEGER CHECK (x > 0))")
        .await
        .unwrap();
    let txn = db.begin().await.unwrap();
    let set = txn
        .execute_unprepared("PRAGMA ignore_check_constraints(1)")
        .await;
    println!("PRAGMA ignore_check_constraints(1) in a transaction: {set:?}");
    txn.commit().await.unwrap();
    let set = db
        .execute_unprepared("INSERT INTO c VALUES (1); PRAGMA ignore_check_constraints(1)")
        .await;
    println!("INSERT ...; PRAGMA ignore_check_constraints(1) outside: {set:?}");
    let mut accepted = 0;
    for _ in 0..6 {
        if db
            .execute_unprepared("INSERT INTO c VALUES (-1)")
            .await
            .is_ok()
        {
            accepted += 1;
        }
    }
    println!("CHECK (x > 0) violated and accepted {accepted} of 6 times");
    assert_eq!(
        accepted, 0,
        "a CHECK constraint stopped applying on the writer's connections"
    );
}

/// `CREATE TABLE temp.x` is a TEMP table the lexer does not see: it is created on one pooled
/// writer connection and shadows the real table there; writes to it answer Ok and never persist.
#[tokio::test]
async fn the_temp_schema_prefix_is_refused_like_create_temp() {
    let (db, path) = standalone("r2").await;
    db.execute_unprepared("CREATE TABLE s(x)").await.unwrap();
    let created = db.execute_unprepared("CREATE TABLE temp.s(x)").await;
    println!("CREATE TABLE temp.s(x): {created:?}");
    let mut ok = 0;
    for i in 0..6 {
        db.execute_unprepared(&format!("INSERT INTO s VALUES ({i})"))
            .await
            .unwrap();
        ok += 1;
    }
    let stored = fresh_ints(&path, "SELECT x FROM s ORDER BY x").await;
    println!("{ok} inserts answered Ok; the database file has {stored:?}");
    assert!(
        created.is_err(),
        "CREATE TABLE temp.s must be refused like CREATE TEMP TABLE"
    );
    assert_eq!(stored.len(), ok);
}

/// on the primary (local transaction), a statement that ends the transaction itself (INSERT OR
/// ROLLBACK, RAISE(ROLLBACK)) leaves the transaction's later statements in autocommit mode: they
/// commit at once, and the final commit then reports an error.
#[tokio::test]
async fn a_statement_that_ends_a_local_transaction_ends_it_for_good() {
    let (db, path) = standalone("r3").await;
    db.execute_unprepared("CREATE TABLE r(x INTEGER PRIMARY KEY)")
        .await
        .unwrap();
    db.execute_unprepared("INSERT INTO r VALUES (1)")
        .await
        .unwrap();
    let txn = db.begin().await.unwrap();
    let conflict = txn
        .execute_unprepared("INSERT OR ROLLBACK INTO r VALUES (1)")
        .await;
    println!("INSERT OR ROLLBACK (conflict): {conflict:?}");
    let after = txn.execute_unprepared("INSERT INTO r VALUES (2)").await;
    println!("next statement in the same transaction: {after:?}");
    let commit = txn.commit().await;
    println!("commit: {commit:?}");
    let stored = fresh_ints(&path, "SELECT x FROM r ORDER BY x").await;
    println!("database file: {stored:?}");
    // Next transactions on the pool: do they still begin with BEGIN IMMEDIATE?
    for i in 0..4 {
        let t = db.begin().await;
        match t {
            Ok(t) => {
                let r = t
                    .execute_unprepared(&format!("INSERT INTO r VALUES ({})", 10 + i))
                    .await;
                let rb = t.rollback().await;
                println!(
                    "later txn {i}: insert {:?}, rollback {:?}",
                    r.map(|r| r.rows_affected()),
                    rb
                );
            }
            Err(e) => println!("later txn {i}: begin failed {e}"),
        }
    }
    let stored2 = fresh_ints(&path, "SELECT x FROM r ORDER BY x").await;
    println!("database file after rolled-back transactions: {stored2:?}");
    assert!(
        !(commit.is_err() && stored.contains(&2)),
        "commit reported failure, yet row 2 of that transaction committed"
    );
    assert!(after.is_err(), "a statement ran outside its transaction");
    assert_eq!(stored2, stored, "rolled-back transactions left rows");
}

/// quoted function names are still calls of the connection-local functions.
#[tokio::test]
async fn quoted_connection_local_functions_are_recognised() {
    let (c, _pool) = classifier().await;
    for sql in ["SELECT \"changes\"()", "SELECT [last_insert_rowid]()"] {
        let kind = c.classify(sql).await;
        println!("{sql} -> {kind:?}");
    }
    assert_eq!(
        c.classify("SELECT \"changes\"()").await,
        Kind::InTransaction
    );
}

/// after a raw string with a NUL byte, is the writer still usable?
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_byte_never_holds_the_writer() {
    let (db, path) = standalone("r5b").await;
    db.execute_unprepared("CREATE TABLE n(x)").await.unwrap();
    let hung = tokio::time::timeout(
        Duration::from_secs(3),
        db.execute_unprepared("INSERT INTO n VALUES (1)\0"),
    )
    .await;
    println!("INSERT ...\\0: {hung:?}");
    let next = db.execute_unprepared("INSERT INTO n VALUES (2)").await;
    println!("a plain write afterwards: {next:?}");
    println!("file: {:?}", fresh_ints(&path, "SELECT x FROM n").await);
    assert!(
        next.is_ok(),
        "one string with a NUL byte took the writer for good"
    );
}

/// the call form turns the read pool's backstop off, and a "read" string then writes through
/// the read pool, outside the one writer.
#[tokio::test]
async fn a_read_string_cannot_write_through_the_read_pool() {
    let (db, path) = standalone("r1c").await;
    db.execute_unprepared("CREATE TABLE w(x)").await.unwrap();
    let r = db
        .execute_unprepared("PRAGMA query_only(0); PRAGMA user_version(7)")
        .await;
    println!("PRAGMA query_only(0); PRAGMA user_version(7): {r:?}");
    let ro = db.inner.writer.databases.current().ro.clone();
    let mut off = 0;
    for _ in 0..8 {
        let v = ro
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA query_only",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i64>(0)
            .unwrap();
        if v == 0 {
            off += 1;
        }
    }
    let version = fresh_ints(&path, "PRAGMA user_version").await;
    println!(
        "read connections seen with query_only=0: {off}; user_version in the file: {version:?}; writer queue never used"
    );
    assert_eq!(off, 0, "the read pool's backstop was switched off");
    assert_eq!(
        version,
        [0],
        "a write ran on the read pool, outside the writer"
    );
}
