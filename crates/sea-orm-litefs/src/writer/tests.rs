use std::os::unix::fs::FileExt;

use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteJournalMode;

use super::*;
use test_support::locks::{READ_LOCK, lock_met};

/// SQLite's "dead man switch" in `-shm`: read-locked by every process that uses the index; a
/// process that finds it unlocked thinks itself alone and truncates `-shm`.
const DMS: i64 = 128;

/// A connection given back while a statement of it is still active (a caller dropped mid-row)
/// and an interrupt is pending (a deadline's alarm) must still end its transaction: SQLite
/// refuses to even parse ROLLBACK while both hold, and a connection kept inside its
/// transaction holds the write lock for good (the fault lab saw no write succeed again).
#[tokio::test]
async fn a_connection_left_mid_statement_and_interrupted_still_releases_the_write_lock() {
    let writer = Writer::on_temp_file("release-interrupted", false);
    let pool = writer.databases.current().rw_pool().clone();
    let mut conn = pool.acquire().await.unwrap();
    conn.execute("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3)")
        .await
        .unwrap();
    conn.execute("BEGIN IMMEDIATE").await.unwrap();
    conn.execute("INSERT INTO t VALUES (4)").await.unwrap();
    {
        let mut handle = conn.lock_handle().await.unwrap();
        let db = handle.as_raw_handle().as_ptr();
        // SAFETY: the handle is locked for this block. The statement is stepped to its first
        // row and left active, as a caller that went away mid-row leaves one; it is never
        // finalized (the connection is never closed: pools leak rather than close).
        unsafe {
            let mut stmt = std::ptr::null_mut();
            let rc = libsqlite3_sys::sqlite3_prepare_v2(
                db,
                c"SELECT x FROM t".as_ptr(),
                -1,
                &mut stmt,
                std::ptr::null_mut(),
            );
            assert_eq!(rc, libsqlite3_sys::SQLITE_OK);
            assert_eq!(
                libsqlite3_sys::sqlite3_step(stmt),
                libsqlite3_sys::SQLITE_ROW
            );
            libsqlite3_sys::sqlite3_interrupt(db);
        }
    }
    release(conn).await;
    let written = writer
        .autocommit(
            Sql::Raw("INSERT INTO t VALUES (5)".into()),
            Method::Execute,
            None,
            false,
            Instant::now() + std::time::Duration::from_secs(3),
        )
        .await;
    assert!(
        matches!(written, Ok(Written::Fresh(Ok(_), _))),
        "a write after the release: {:?}",
        written.as_ref().err()
    );
    let mut other = pool.acquire().await.unwrap();
    let rows: Vec<i64> = sqlx::query_scalar("SELECT x FROM t ORDER BY x")
        .fetch_all(&mut *other)
        .await
        .unwrap();
    assert_eq!(rows, [1, 2, 3, 5], "the released transaction's row is gone");
}

#[tokio::test]
async fn resetting_the_wal_index_keeps_this_process_s_locks_and_loses_nothing() {
    let (dir, options) = temp_database("wal-index");
    let options = options.journal_mode(SqliteJournalMode::Wal);
    let mut conn = options.connect().await.unwrap();
    conn.execute("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2)")
        .await
        .unwrap();
    let probe = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("t.db-shm"))
        .unwrap();
    assert_eq!(
        lock_met(&probe, DMS),
        READ_LOCK,
        "SQLite holds its DMS lock"
    );

    invalidate_wal_index(&mut conn).await.unwrap();

    assert_eq!(
        lock_met(&probe, DMS),
        READ_LOCK,
        "the reset dropped this process's locks on -shm"
    );
    let mut headers = [0xffu8; 96];
    probe.read_exact_at(&mut headers, 0).unwrap();
    assert_eq!(headers, [0u8; 96], "both copies of the header are zeroed");
    // The next transaction rebuilds the index from the WAL: every row is still there.
    let count = || sqlx::query_scalar::<_, i64>("SELECT count(*) FROM t");
    assert_eq!(count().fetch_one(&mut conn).await.unwrap(), 2);
    conn.execute("INSERT INTO t VALUES (3)").await.unwrap();
    let mut other = options.connect().await.unwrap();
    assert_eq!(count().fetch_one(&mut other).await.unwrap(), 3);
    drop((conn, other, probe));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The repair's purpose: a transaction whose commit frame is in the WAL but not in the WAL
/// index (its writer died before publishing it) is seen again once the index is reset, and
/// the next write lands after it instead of over it.
#[tokio::test]
async fn review4_resetting_the_wal_index_reveals_a_commit_the_index_missed() {
    let (dir, options) = temp_database("review4-wal");
    let options = options.journal_mode(SqliteJournalMode::Wal);
    let mut writer = options.connect().await.unwrap();
    let mut reader = options.connect().await.unwrap();
    writer
        .execute("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    // Kept open to the end: closing it would drop this process's locks on -shm.
    let shm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("t.db-shm"))
        .unwrap();
    let mut published = [0u8; 96];
    shm.read_exact_at(&mut published, 0).unwrap();
    writer.execute("INSERT INTO t VALUES (2)").await.unwrap();
    // As if the writer had died after its commit frame, before publishing it.
    shm.write_all_at(&published, 0).unwrap();
    let count = || sqlx::query_scalar::<_, i64>("SELECT count(*) FROM t");
    assert_eq!(
        count().fetch_one(&mut reader).await.unwrap(),
        1,
        "the stale index hides the last commit"
    );

    invalidate_wal_index(&mut writer).await.unwrap();

    assert_eq!(count().fetch_one(&mut reader).await.unwrap(), 2);
    writer.execute("INSERT INTO t VALUES (3)").await.unwrap();
    let rows: Vec<i64> = sqlx::query_scalar("SELECT x FROM t ORDER BY x")
        .fetch_all(&mut reader)
        .await
        .unwrap();
    assert_eq!(rows, [1, 2, 3]);
    drop((writer, reader, shm));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A read transaction open in the same process while the index is reset, rebuilt by the next
/// write and extended keeps its snapshot, and sees the new commit once it ends.
#[tokio::test]
async fn review4_a_read_transaction_across_the_reset_keeps_its_snapshot() {
    let (dir, options) = temp_database("review4-snap");
    let options = options.journal_mode(SqliteJournalMode::Wal);
    let mut writer = options.connect().await.unwrap();
    let mut reader = options.connect().await.unwrap();
    writer
        .execute("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2)")
        .await
        .unwrap();
    let count = || sqlx::query_scalar::<_, i64>("SELECT count(*) FROM t");
    reader.execute("BEGIN").await.unwrap();
    assert_eq!(count().fetch_one(&mut reader).await.unwrap(), 2);

    invalidate_wal_index(&mut writer).await.unwrap();
    writer.execute("INSERT INTO t VALUES (3)").await.unwrap();

    assert_eq!(
        count().fetch_one(&mut reader).await.unwrap(),
        2,
        "its snapshot"
    );
    reader.execute("COMMIT").await.unwrap();
    assert_eq!(count().fetch_one(&mut reader).await.unwrap(), 3);
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut reader)
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    drop((writer, reader));
    let _ = std::fs::remove_dir_all(&dir);
}
