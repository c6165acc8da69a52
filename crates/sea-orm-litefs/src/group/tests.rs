//! Batches are made deterministic by holding the writer's lock (as a transaction would) while
//! the writes queue one after another, then letting go: the first caller leads them all.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::wire::{Reply, Value};

fn writer(name: &str, group_commit: bool) -> Arc<Writer> {
    Writer::on_temp_file(&format!("group-{name}"), group_commit)
}

fn later(ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(ms)
}

fn sql(text: &str, params: Vec<Value>) -> Sql {
    Sql::Wire(crate::wire::Statement {
        sql: text.into(),
        params,
    })
}

/// One write to queue: what, how, its key and its deadline.
struct Write(Sql, Method, Option<u128>, Instant);

fn insert(x: i64) -> Write {
    Write(
        sql("INSERT INTO t(x) VALUES (?)", vec![Value::Integer(x)]),
        Method::Execute,
        None,
        later(10_000),
    )
}

async fn until(what: &str, condition: impl Fn() -> bool) {
    let deadline = later(10_000);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Queues `writes` in this order behind the held lock, lets go, and returns each answer.
async fn batch(writer: &Arc<Writer>, writes: Vec<Write>) -> Vec<Result<Written, Refusal>> {
    let guard = writer.acquire(later(10_000)).await.unwrap();
    let mut calls = Vec::new();
    for (n, Write(sql, method, key, deadline)) in writes.into_iter().enumerate() {
        let w = writer.clone();
        calls.push(tokio::spawn(async move {
            w.autocommit(sql, method, key, false, deadline).await
        }));
        until("the write to queue", || writer.queued() == n + 1).await;
    }
    drop(guard);
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap());
    }
    answers
}

async fn run(writer: &Arc<Writer>, text: &str) {
    let written = writer
        .autocommit(
            sql(text, vec![]),
            Method::Execute,
            None,
            false,
            later(10_000),
        )
        .await
        .unwrap();
    assert!(matches!(written, Written::Fresh(Ok(_), _)), "{text}");
}

async fn column(writer: &Writer, query: &str) -> Vec<i64> {
    let (mut conn, _) = writer.connection().await.unwrap();
    let found = sqlx::query_scalar(sqlx::AssertSqlSafe(query))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    release(conn).await;
    found
}

/// `(rows_affected, last_insert_rowid)` of a fresh execute, or the error's text.
fn exec(answer: &Result<Written, Refusal>) -> Result<(u64, i64), String> {
    match answer {
        Ok(Written::Fresh(Ok(native), _)) => match native.to_reply().unwrap() {
            Reply::Exec {
                rows_affected,
                last_insert_rowid,
            } => Ok((rows_affected, last_insert_rowid)),
            Reply::Rows(rows) => Err(format!("rows: {rows:?}")),
            Reply::Output(_) => Err("a procedure's output".into()),
        },
        Ok(Written::Fresh(Err(err), _)) => Err(err.to_string()),
        Ok(Written::Stored(..)) => Err("stored".into()),
        Ok(Written::Unconfirmed(why)) => Err(format!("unconfirmed: {why}")),
        Err(refusal) => Err(format!("{refusal:?}")),
    }
}

#[tokio::test]
async fn a_lone_write_is_a_batch_of_one_committed_at_once() {
    let writer = writer("lone", true);
    run(&writer, "CREATE TABLE t(x INTEGER UNIQUE)").await;
    assert_eq!(writer.batch_counts(), (1, 1));
    // Nobody else writes: had the writer waited for company, this would never return.
    let answer = writer
        .autocommit(insert(1).0, Method::Execute, None, false, later(10_000))
        .await;
    assert_eq!(exec(&answer), Ok((1, 1)));
    assert_eq!(
        writer.batch_counts(),
        (2, 2),
        "a batch of one, led by itself"
    );
    assert_eq!(writer.queued(), 0);
    assert_eq!(column(&writer, "SELECT x FROM t").await, [1]);
}

#[tokio::test]
async fn waiting_writes_commit_together_and_a_failing_one_gets_its_own_error() {
    let writer = writer("constraint", true);
    run(&writer, "CREATE TABLE t(x INTEGER UNIQUE)").await;
    let before = writer.batch_counts();
    let answers = batch(&writer, vec![insert(1), insert(1), insert(2)]).await;
    assert_eq!(exec(&answers[0]), Ok((1, 1)));
    let err = exec(&answers[1]).unwrap_err();
    assert!(err.contains("UNIQUE constraint failed"), "{err}");
    assert_eq!(exec(&answers[2]), Ok((1, 2)));
    let after = writer.batch_counts();
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 3),
        "one batch of three"
    );
    assert_eq!(column(&writer, "SELECT x FROM t ORDER BY x").await, [1, 2]);
}

#[tokio::test]
async fn a_write_that_ends_the_transaction_does_not_take_its_neighbours_with_it() {
    let writer = writer("rollback", true);
    run(&writer, "CREATE TABLE t(x INTEGER UNIQUE)").await;
    run(
        &writer,
        "CREATE TRIGGER no666 BEFORE INSERT ON t WHEN NEW.x = 666 \
         BEGIN SELECT RAISE(ROLLBACK, 'no 666 here'); END",
    )
    .await;
    let or_rollback = Write(
        sql(
            "INSERT OR ROLLBACK INTO t(x) VALUES (?)",
            vec![Value::Integer(4)],
        ),
        Method::Execute,
        None,
        later(10_000),
    );
    let answers = batch(
        &writer,
        vec![
            insert(1),
            insert(666),
            insert(3),
            insert(4),
            or_rollback,
            insert(5),
        ],
    )
    .await;
    assert_eq!(exec(&answers[0]), Ok((1, 1)));
    let err = exec(&answers[1]).unwrap_err();
    assert!(err.contains("no 666 here"), "{err}");
    assert!(exec(&answers[2]).is_ok());
    assert!(exec(&answers[3]).is_ok());
    let err = exec(&answers[4]).unwrap_err();
    assert!(err.contains("UNIQUE constraint failed"), "{err}");
    assert!(exec(&answers[5]).is_ok());
    assert_eq!(
        column(&writer, "SELECT x FROM t ORDER BY x").await,
        [1, 3, 4, 5],
        "every neighbour committed exactly once"
    );
    // What each reported is what committed: the row ids answered are the rows' ids.
    for (answer, x) in [
        (&answers[0], 1),
        (&answers[2], 3),
        (&answers[3], 4),
        (&answers[5], 5),
    ] {
        let (_, id) = exec(answer).unwrap();
        let query = format!("SELECT x FROM t WHERE rowid = {id}");
        assert_eq!(column(&writer, &query).await, [x]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_passing_mid_batch_rolls_that_write_back_and_only_it() {
    let writer = writer("deadline", true);
    run(&writer, "CREATE TABLE t(x INTEGER UNIQUE)").await;
    // Runs until interrupted at its deadline: whatever the machine's speed, the first write's
    // deadline has passed before COMMIT.
    let endless = Write(
        sql(
            "INSERT INTO t(x) SELECT x FROM (WITH RECURSIVE c(x) AS \
             (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c) WHERE x < 0",
            vec![],
        ),
        Method::Execute,
        None,
        later(1500),
    );
    let short = Write(insert(1).0, Method::Execute, None, later(500));
    let answers = batch(&writer, vec![short, endless, insert(3)]).await;
    assert!(
        matches!(answers[0], Err(Refusal::Expired)),
        "{:?}",
        exec(&answers[0])
    );
    let err = exec(&answers[1]).unwrap_err();
    assert!(err.contains("interrupt"), "{err}");
    assert_eq!(exec(&answers[2]).map(|(n, _)| n), Ok(1));
    assert_eq!(column(&writer, "SELECT x FROM t").await, [3]);
}

#[tokio::test]
async fn each_member_gets_its_own_ids_counts_and_returning_rows() {
    let writer = writer("results", true);
    run(&writer, "CREATE TABLE t(id INTEGER PRIMARY KEY, x INTEGER)").await;
    run(&writer, "INSERT INTO t(x) VALUES (10), (10)").await;
    let returning = Write(
        sql(
            "INSERT INTO t(x) VALUES (?) RETURNING id, x",
            vec![Value::Integer(7)],
        ),
        Method::QueryAll,
        None,
        later(10_000),
    );
    let update = Write(
        sql("UPDATE t SET x = 11 WHERE x = 10", vec![]),
        Method::Execute,
        None,
        later(10_000),
    );
    let answers = batch(&writer, vec![insert(5), returning, update, insert(6)]).await;
    assert_eq!(exec(&answers[0]), Ok((1, 3)));
    match &answers[1] {
        Ok(Written::Fresh(Ok(native), _)) => match native.to_reply().unwrap() {
            Reply::Rows(rows) => {
                assert_eq!(rows.rows, [vec![Value::Integer(4), Value::Integer(7)]])
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{:?}", exec(other)),
    }
    // An UPDATE leaves last_insert_rowid as the connection had it: the previous member's.
    assert_eq!(exec(&answers[2]), Ok((2, 4)));
    assert_eq!(exec(&answers[3]), Ok((1, 5)));
}

#[tokio::test]
async fn a_key_twice_in_one_batch_runs_once_and_answers_the_stored_reply() {
    let writer = writer("keys", true);
    run(&writer, "CREATE TABLE t(x INTEGER)").await;
    let keyed = |key| Write(insert(1).0, Method::Execute, Some(key), later(10_000));
    let (first, second) = (
        crate::connection::idempotency_key(),
        crate::connection::idempotency_key(),
    );
    let answers = batch(&writer, vec![keyed(first), keyed(first), keyed(second)]).await;
    assert_eq!(exec(&answers[0]), Ok((1, 1)));
    match &answers[1] {
        Ok(Written::Stored(reply, _)) => assert_eq!(
            reply,
            &Reply::Exec {
                rows_affected: 1,
                last_insert_rowid: 1
            }
        ),
        other => panic!("{:?}", exec(other)),
    }
    assert_eq!(exec(&answers[2]), Ok((1, 2)));
    assert_eq!(column(&writer, "SELECT count(*) FROM t").await, [2]);
}

#[tokio::test]
async fn with_group_commit_off_each_write_is_its_own_transaction() {
    let writer = writer("off", false);
    run(&writer, "CREATE TABLE t(x INTEGER)").await;
    let guard = writer.acquire(later(10_000)).await.unwrap();
    let calls: Vec<_> = (0..3)
        .map(|x| {
            let w = writer.clone();
            tokio::spawn(async move {
                w.autocommit(insert(x).0, Method::Execute, None, false, later(10_000))
                    .await
            })
        })
        .collect();
    writer.queue_reaches(3).await;
    drop(guard);
    for call in calls {
        assert!(exec(&call.await.unwrap()).is_ok());
    }
    assert_eq!(writer.batch_counts(), (0, 0), "no batch ever ran");
    assert_eq!(writer.queued(), 0);
}

// ---- Review tests (adversarial) ----

fn write(text: &str, method: Method) -> Write {
    Write(sql(text, vec![]), method, None, later(10_000))
}

fn rows(answer: &Result<Written, Refusal>) -> Result<Vec<Vec<Value>>, String> {
    match answer {
        Ok(Written::Fresh(Ok(native), _)) => match native.to_reply().unwrap() {
            Reply::Rows(rows) => Ok(rows.rows),
            other => Err(format!("{other:?}")),
        },
        other => Err(format!("{:?}", exec(other))),
    }
}

/// A UNIQUE constraint declared `ON CONFLICT ROLLBACK` in the table ends the shared
/// transaction from a plain INSERT: neighbours run once each, ids match.
#[tokio::test]
async fn review_on_conflict_rollback_in_table_definition() {
    let writer = writer("rv-occ", true);
    run(
        &writer,
        "CREATE TABLE t(x INTEGER UNIQUE ON CONFLICT ROLLBACK)",
    )
    .await;
    let answers = batch(&writer, vec![insert(1), insert(2), insert(1), insert(3)]).await;
    assert_eq!(exec(&answers[0]), Ok((1, 1)));
    assert_eq!(exec(&answers[1]), Ok((1, 2)));
    let err = exec(&answers[2]).unwrap_err();
    assert!(err.contains("UNIQUE"), "{err}");
    assert_eq!(exec(&answers[3]), Ok((1, 3)));
    assert_eq!(
        column(&writer, "SELECT x FROM t ORDER BY x").await,
        [1, 2, 3]
    );
    assert_eq!(
        column(&writer, "SELECT rowid FROM t ORDER BY x").await,
        [1, 2, 3]
    );
}

/// A string of two statements whose second fails leaves nothing of the first.
#[tokio::test]
async fn review_two_statements_second_fails() {
    let writer = writer("rv-two", true);
    run(&writer, "CREATE TABLE t(x INTEGER UNIQUE)").await;
    let two = Write(
        Sql::Raw("INSERT INTO t(x) VALUES (10); INSERT INTO t(x) VALUES (1)".into()),
        Method::Execute,
        None,
        later(10_000),
    );
    let answers = batch(&writer, vec![insert(1), two, insert(2)]).await;
    assert_eq!(exec(&answers[0]), Ok((1, 1)));
    assert!(exec(&answers[1]).unwrap_err().contains("UNIQUE"));
    assert_eq!(exec(&answers[2]).map(|r| r.0), Ok(1));
    assert_eq!(column(&writer, "SELECT x FROM t ORDER BY x").await, [1, 2]);
}

/// RAISE(FAIL) keeps a multi-row statement's earlier rows in SQLite; the member must not.
#[tokio::test]
async fn review_raise_fail_and_abort_in_multi_row_insert() {
    let writer = writer("rv-fail", true);
    run(&writer, "CREATE TABLE t(x INTEGER)").await;
    run(
        &writer,
        "CREATE TRIGGER f BEFORE INSERT ON t WHEN NEW.x = 99 BEGIN SELECT RAISE(FAIL, 'f99'); END",
    )
    .await;
    run(
        &writer,
        "CREATE TRIGGER a BEFORE INSERT ON t WHEN NEW.x = 98 BEGIN SELECT RAISE(ABORT, 'a98'); END",
    )
    .await;
    let answers = batch(
        &writer,
        vec![
            insert(1),
            write("INSERT INTO t(x) VALUES (7), (99)", Method::Execute),
            write("INSERT INTO t(x) VALUES (8), (98)", Method::Execute),
            insert(2),
        ],
    )
    .await;
    assert!(exec(&answers[1]).unwrap_err().contains("f99"));
    assert!(exec(&answers[2]).unwrap_err().contains("a98"));
    assert!(exec(&answers[0]).is_ok() && exec(&answers[3]).is_ok());
    assert_eq!(column(&writer, "SELECT x FROM t ORDER BY x").await, [1, 2]);
}

/// RETURNING that matches nothing; QueryOne on a multi-row RETURNING still writes every row.
#[tokio::test]
async fn review_returning_zero_rows_and_query_one_multi_row() {
    let writer = writer("rv-ret", true);
    run(&writer, "CREATE TABLE t(id INTEGER PRIMARY KEY, x INTEGER)").await;
    let answers = batch(
        &writer,
        vec![
            write(
                "UPDATE t SET x = 1 WHERE x = 42 RETURNING id",
                Method::QueryOne,
            ),
            write(
                "UPDATE t SET x = 1 WHERE x = 42 RETURNING id",
                Method::QueryAll,
            ),
            write("UPDATE t SET x = 1 WHERE x = 42", Method::Execute),
            write(
                "INSERT INTO t(x) VALUES (5), (6) RETURNING x",
                Method::QueryOne,
            ),
            insert(7),
        ],
    )
    .await;
    match &answers[0] {
        Ok(Written::Fresh(Ok(Native::Row(None)), _)) => {}
        other => panic!("{:?}", exec(other)),
    }
    assert_eq!(rows(&answers[1]), Ok(vec![]));
    assert_eq!(exec(&answers[2]).map(|r| r.0), Ok(0));
    assert_eq!(rows(&answers[3]), Ok(vec![vec![Value::Integer(5)]]));
    assert_eq!(exec(&answers[4]), Ok((1, 3)));
    assert_eq!(
        column(&writer, "SELECT x FROM t ORDER BY id").await,
        [5, 6, 7]
    );
}

/// A write that fails alone (a deferred foreign key with no parent) must fail in a batch too,
/// whatever a later neighbour does.
#[tokio::test]
async fn review_deferred_foreign_key_violation_is_not_masked_by_a_neighbour() {
    let schema = [
        "CREATE TABLE p(id INTEGER PRIMARY KEY)",
        "CREATE TABLE c(pid INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)",
    ];
    let child = || write("INSERT INTO c(pid) VALUES (1)", Method::Execute);
    let insert_p = |id: i64| {
        Write(
            sql("INSERT INTO p(id) VALUES (?)", vec![Value::Integer(id)]),
            Method::Execute,
            None,
            later(5000),
        )
    };
    let parent = || write("INSERT INTO p(id) VALUES (1)", Method::Execute);
    // Alone: refused at COMMIT.
    let alone = writer("rv-fk-alone", true);
    for s in schema {
        run(&alone, s).await;
    }
    let answers = batch(&alone, vec![child()]).await;
    let err = exec(&answers[0]).unwrap_err();
    assert!(err.contains("FOREIGN KEY"), "alone: {err}");
    // In a batch, followed by a neighbour that inserts the parent.
    let writer = writer("rv-fk", true);
    for s in schema {
        run(&writer, s).await;
    }
    let answers = batch(&writer, vec![insert_p(7), child(), parent()]).await;
    assert!(exec(&answers[0]).is_ok());
    assert!(exec(&answers[2]).is_ok());
    let err = exec(&answers[1]).expect_err("the child write failed alone but succeeded in a batch");
    assert!(err.contains("FOREIGN KEY"), "in a batch: {err}");
    assert_eq!(column(&writer, "SELECT count(*) FROM c").await, [0]);
    assert_eq!(
        column(&writer, "SELECT id FROM p ORDER BY id").await,
        [1, 7]
    );
}

/// When LiteFS does not confirm a batch's COMMIT, every write in it is of unknown outcome;
/// a write that failed against a neighbour's write (which may not stand) did not commit, and
/// must not be answered with that error as if it were settled.
#[tokio::test]
async fn an_unconfirmed_commit_leaves_every_member_unknown_or_failed_without_a_false_reason() {
    let writer = Writer::on_temp_file_litefs_gone("unconfirmed", true);
    let (mut conn, _) = writer.connection().await.unwrap();
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, x INTEGER UNIQUE)")
        .await
        .unwrap();
    release(conn).await;
    let answers = batch(&writer, vec![insert(1), insert(1), insert(2)]).await;
    for n in [0, 2] {
        assert!(
            matches!(answers[n], Ok(Written::Unconfirmed(_))),
            "member {n}: {:?}",
            exec(&answers[n])
        );
    }
    match &answers[1] {
        Err(Refusal::Unavailable(why)) => assert!(why.contains("did not commit"), "{why}"),
        other => panic!(
            "the held unique violation against an unconfirmed neighbour: {:?}",
            exec(other)
        ),
    }
    // A lone write, and a statement that runs alone, are unconfirmed the same way.
    let lone = batch(&writer, vec![insert(3)]).await;
    assert!(matches!(lone[0], Ok(Written::Unconfirmed(_))));
    let vacuum = writer
        .autocommit(
            sql("VACUUM", vec![]),
            Method::Execute,
            None,
            true,
            later(5000),
        )
        .await;
    assert!(
        matches!(vacuum, Ok(Written::Unconfirmed(_))),
        "VACUUM: {:?}",
        exec(&vacuum)
    );
}

/// A member settled with an error is answered before COMMIT; if the neighbour whose work
/// caused that error is then rolled back (expired), the error describes state that never
/// committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_a_settled_error_must_not_depend_on_a_neighbour_that_never_commits() {
    let writer = writer("rv-phantom", true);
    run(&writer, "CREATE TABLE t(x INTEGER UNIQUE)").await;
    let endless = Write(
        sql(
            "INSERT INTO t(x) SELECT x FROM (WITH RECURSIVE c(x) AS \
             (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c) WHERE x < 0",
            vec![],
        ),
        Method::Execute,
        None,
        later(1500),
    );
    let short = Write(insert(1).0, Method::Execute, None, later(500));
    let answers = batch(&writer, vec![short, insert(1), endless]).await;
    assert!(
        matches!(answers[0], Err(Refusal::Expired)),
        "{:?}",
        exec(&answers[0])
    );
    let committed = column(&writer, "SELECT x FROM t").await;
    assert!(
        exec(&answers[1]).is_ok() || committed == [1],
        "the second insert(1) was answered {:?}, yet the table holds {committed:?}: \
         the conflicting row never committed",
        exec(&answers[1])
    );
}

/// The same, deterministic: the neighbour fails at COMMIT (a deferred foreign key), runs
/// again alone and fails; the member it conflicted with was already told "UNIQUE".
#[tokio::test]
async fn review_a_settled_error_survives_a_failed_commit_of_its_cause() {
    let writer = writer("rv-phantom-fk", true);
    run(&writer, "CREATE TABLE p(id INTEGER PRIMARY KEY)").await;
    run(
        &writer,
        "CREATE TABLE c(pid INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED, \
         x INTEGER UNIQUE)",
    )
    .await;
    let answers = batch(
        &writer,
        vec![
            write("INSERT INTO c(pid, x) VALUES (1, 1)", Method::Execute),
            write("INSERT INTO c(pid, x) VALUES (NULL, 1)", Method::Execute),
        ],
    )
    .await;
    let first = exec(&answers[0]);
    assert!(
        first.as_ref().unwrap_err().contains("FOREIGN KEY"),
        "{first:?}"
    );
    let committed = column(&writer, "SELECT x FROM c").await;
    assert!(
        exec(&answers[1]).is_ok(),
        "the second write was answered {:?}, yet the table holds {committed:?}",
        exec(&answers[1])
    );
}

/// The ending member's own error may also describe a neighbour that then fails on its rerun.
#[tokio::test]
async fn review_an_ending_members_error_from_a_neighbour_that_never_commits() {
    let writer = writer("rv-phantom-end", true);
    run(&writer, "CREATE TABLE p(id INTEGER PRIMARY KEY)").await;
    run(
        &writer,
        "CREATE TABLE c(pid INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED, \
         x INTEGER UNIQUE)",
    )
    .await;
    let answers = batch(
        &writer,
        vec![
            write("INSERT INTO c(pid, x) VALUES (1, 1)", Method::Execute),
            write(
                "INSERT OR ROLLBACK INTO c(pid, x) VALUES (NULL, 1)",
                Method::Execute,
            ),
        ],
    )
    .await;
    assert!(exec(&answers[0]).unwrap_err().contains("FOREIGN KEY"));
    let committed = column(&writer, "SELECT x FROM c").await;
    assert!(
        exec(&answers[1]).is_ok(),
        "the OR ROLLBACK write was answered {:?}, yet the table holds {committed:?}",
        exec(&answers[1])
    );
}

/// A keyed write rolled back with an ending neighbour and run again: its key commits once,
/// with the reply it was answered.
#[tokio::test]
async fn review_keyed_write_rerun_after_an_ending_neighbour() {
    let writer = writer("rv-keys-end", true);
    run(&writer, "CREATE TABLE t(x INTEGER UNIQUE)").await;
    let key = crate::connection::idempotency_key();
    let keyed = Write(insert(1).0, Method::Execute, Some(key), later(10_000));
    let ender = write("INSERT OR ROLLBACK INTO t(x) VALUES (1)", Method::Execute);
    let answers = batch(&writer, vec![insert(5), keyed, ender, insert(6)]).await;
    let (_, id) = exec(&answers[1]).unwrap();
    assert_eq!(
        column(&writer, &format!("SELECT x FROM t WHERE rowid = {id}")).await,
        [1]
    );
    assert!(exec(&answers[2]).unwrap_err().contains("UNIQUE"));
    let again = writer
        .autocommit(
            insert(1).0,
            Method::Execute,
            Some(key),
            false,
            later(10_000),
        )
        .await;
    match again {
        Ok(Written::Stored(
            Reply::Exec {
                rows_affected: 1,
                last_insert_rowid,
            },
            _,
        )) => {
            assert_eq!(last_insert_rowid, id)
        }
        other => panic!("{:?}", exec(&other)),
    }
    assert_eq!(
        column(&writer, "SELECT x FROM t ORDER BY x").await,
        [1, 5, 6]
    );
}

/// Review 2: a lead job re-queued in front of members that are then rolled back again (a
/// neighbour expired) must still run after them. Here A (insert 1) is first in the queue, the
/// ender E (INSERT OR ROLLBACK 1) last: alone in order, A succeeds and E fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review2_lead_job_keeps_its_place_when_its_predecessors_roll_back_again() {
    let writer = writer("rv2-lead-order", true);
    run(&writer, "CREATE TABLE t(x INTEGER UNIQUE)").await;
    run(&writer, "CREATE TABLE u(y INTEGER)").await;
    let slow_sql = "INSERT INTO u(y) SELECT count(*) FROM (WITH RECURSIVE c(x) AS \
             (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT x FROM c)";
    let t0 = Instant::now();
    run(&writer, slow_sql).await;
    let s = t0.elapsed().as_millis() as u64;
    eprintln!("slow statement alone: {s} ms");
    // B ran whole in the first transaction, but not in the second (after its deadline).
    let slow = Write(
        sql(slow_sql, vec![]),
        Method::Execute,
        None,
        later(s * 3 / 2 + 50),
    );
    let ender = write("INSERT OR ROLLBACK INTO t(x) VALUES (1)", Method::Execute);
    let answers = batch(&writer, vec![insert(1), slow, ender]).await;
    eprintln!(
        "A {:?}\nB {:?}\nE {:?}",
        exec(&answers[0]),
        exec(&answers[1]),
        exec(&answers[2])
    );
    assert!(
        exec(&answers[0]).is_ok(),
        "A, first in the queue, was answered {:?}",
        exec(&answers[0])
    );
    assert!(
        exec(&answers[2]).is_err(),
        "E, after A, succeeded: {:?}",
        exec(&answers[2])
    );
}

/// Review 2: a repeated key set aside before the members must not commit before earlier
/// writes when the transaction is rolled back and run again.
#[tokio::test]
async fn review2_duplicate_key_rerun_keeps_queue_order_after_an_ender() {
    let writer = writer("rv2-dupkey-order", true);
    run(&writer, "CREATE TABLE t(x INTEGER UNIQUE)").await;
    let key = crate::connection::idempotency_key();
    let keyed = || Write(insert(1).0, Method::Execute, Some(key), later(10_000));
    let ender = write("INSERT OR ROLLBACK INTO t(x) VALUES (1)", Method::Execute);
    let answers = batch(&writer, vec![insert(5), keyed(), keyed(), ender]).await;
    for a in &answers {
        eprintln!("{:?}", exec(a));
    }
    assert_eq!(
        column(&writer, "SELECT x FROM t ORDER BY rowid").await,
        [5, 1],
        "the keyed insert (queued after insert 5) committed before it"
    );
}

/// Review 2: an ending member past its own deadline is answered at once; its error must not
/// come from a neighbour's write that then never commits (Expired would be true).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review2_expired_ender_answered_with_a_neighbours_uncommitted_conflict() {
    let writer = writer("rv2-expired-ender", true);
    run(&writer, "CREATE TABLE t(x INTEGER UNIQUE)").await;
    run(&writer, "CREATE TABLE u(y INTEGER)").await;
    let count = "SELECT count(*) FROM (WITH RECURSIVE c(x) AS \
             (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT x FROM c)";
    let t0 = Instant::now();
    run(&writer, &format!("INSERT INTO u(y) {count}")).await;
    let s = t0.elapsed().as_millis() as u64;
    eprintln!("slow statement alone: {s} ms");
    let slow_one = format!("INSERT INTO t(x) SELECT 1 FROM ({count})");
    let a = Write(
        sql(&slow_one, vec![]),
        Method::Execute,
        None,
        later(s * 3 / 2 + 50),
    );
    let e = Write(
        sql("INSERT OR ROLLBACK INTO t(x) VALUES (1)", vec![]),
        Method::Execute,
        None,
        later(s / 2),
    );
    let answers = batch(&writer, vec![a, e]).await;
    eprintln!("A {:?}\nE {:?}", exec(&answers[0]), exec(&answers[1]));
    let committed = column(&writer, "SELECT x FROM t").await;
    let e_err = exec(&answers[1]).err().unwrap_or_default();
    assert!(
        !(e_err.contains("UNIQUE") && committed.is_empty()),
        "E was answered {e_err}, yet t holds {committed:?}: the conflicting row never committed"
    );
}

/// Review 3: a committed row without its parent (SQLite enforces foreign keys only on
/// connections that turn them on, so any other tool can leave one) makes SQLite's deferred
/// foreign key count go below zero when a write resolves it along with a violation of its
/// own. `SQLITE_DBSTATUS_DEFERRED_FKS` says only whether the count is above zero, so that
/// write passes the check, and a later neighbour's violation brings the count back to zero:
/// the neighbour commits in a batch, though alone COMMIT refuses it.
#[tokio::test]
async fn review3_a_deferred_fk_count_below_zero_masks_a_neighbours_violation() {
    async fn with_orphans(name: &str) -> Arc<Writer> {
        let writer = writer(name, true);
        run(&writer, "CREATE TABLE p(id INTEGER PRIMARY KEY)").await;
        run(
            &writer,
            "CREATE TABLE c(pid INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)",
        )
        .await;
        let (mut conn, _) = writer.connection().await.unwrap();
        for s in [
            "PRAGMA foreign_keys = OFF",
            "INSERT INTO c(pid) VALUES (5), (5)",
            "PRAGMA foreign_keys = ON",
        ] {
            conn.execute(s).await.unwrap();
        }
        release(conn).await;
        writer
    }
    // One violation of its own (9), two orphans resolved (5): the count ends at -1.
    let resolver = || {
        Write(
            Sql::Raw("INSERT INTO c(pid) VALUES (9); INSERT INTO p(id) VALUES (5)".into()),
            Method::Execute,
            None,
            later(10_000),
        )
    };
    let violator = || write("INSERT INTO c(pid) VALUES (7)", Method::Execute);
    let alone = with_orphans("rv3-neg-alone").await;
    let resolver_alone = exec(&batch(&alone, vec![resolver()]).await[0]);
    let violator_alone = exec(&batch(&alone, vec![violator()]).await[0]);
    let err = violator_alone.clone().unwrap_err();
    assert!(err.contains("FOREIGN KEY"), "alone: {err}");
    let writer = with_orphans("rv3-neg").await;
    let answers = batch(&writer, vec![resolver(), violator()]).await;
    eprintln!(
        "in a batch: {:?}, {:?}",
        exec(&answers[0]),
        exec(&answers[1])
    );
    assert_eq!(
        exec(&answers[0]).is_ok(),
        resolver_alone.is_ok(),
        "the resolving write: alone {resolver_alone:?}, in a batch {:?}",
        exec(&answers[0])
    );
    let err =
        exec(&answers[1]).expect_err("the violating write failed alone but committed in a batch");
    assert!(err.contains("FOREIGN KEY"), "in a batch: {err}");
    assert_eq!(
        column(&writer, "SELECT count(*) FROM c WHERE pid = 7").await,
        [0]
    );
}

/// Review 3: the same with foreign keys always on, no orphan committed: in a self-referencing
/// table whose key is `ON DELETE SET NULL`, these three inserts leave SQLite's deferred count
/// at -1 (`INSERT OR REPLACE` there does not count its missing parent, the last insert
/// resolves it anyway). Alone that write is refused at COMMIT (the count is not zero), and so
/// is the neighbour's orphan; in a batch the two counts cancel and both commit.
#[tokio::test]
async fn review3_a_self_referencing_write_leaves_the_count_below_zero() {
    let schema = "CREATE TABLE c(id INTEGER PRIMARY KEY, \
                  pid INTEGER REFERENCES c(id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED)";
    let tree = || {
        Write(
            Sql::Raw(
                "INSERT INTO c(id, pid) VALUES (2, 1); \
                 INSERT OR REPLACE INTO c(id, pid) VALUES (3, 1); \
                 INSERT INTO c(id, pid) VALUES (1, 1)"
                    .into(),
            ),
            Method::Execute,
            None,
            later(10_000),
        )
    };
    let orphan = || write("INSERT INTO c(id, pid) VALUES (10, 99)", Method::Execute);
    let alone = writer("rv3-self-alone", true);
    run(&alone, schema).await;
    let tree_alone = exec(&batch(&alone, vec![tree()]).await[0]);
    let orphan_alone = exec(&batch(&alone, vec![orphan()]).await[0]);
    assert!(
        orphan_alone.as_ref().unwrap_err().contains("FOREIGN KEY"),
        "alone: {orphan_alone:?}"
    );
    let writer = writer("rv3-self", true);
    run(&writer, schema).await;
    let answers = batch(&writer, vec![tree(), orphan()]).await;
    eprintln!(
        "alone: {tree_alone:?}, {orphan_alone:?}; in a batch: {:?}, {:?}",
        exec(&answers[0]),
        exec(&answers[1])
    );
    assert_eq!(
        exec(&answers[0]).is_ok(),
        tree_alone.is_ok(),
        "the tree write: alone {tree_alone:?}, in a batch {:?}",
        exec(&answers[0])
    );
    let err = exec(&answers[1]).expect_err("the orphan failed alone but committed in a batch");
    assert!(err.contains("FOREIGN KEY"), "in a batch: {err}");
    assert_eq!(
        column(&writer, "SELECT id FROM c ORDER BY id").await,
        column(&alone, "SELECT id FROM c ORDER BY id").await
    );
}

/// The deferred foreign key check costs statements per write, so it runs only where the
/// count can move: never on a schema without deferred keys, but from the write that creates
/// one onwards, in the same batch.
#[tokio::test]
async fn the_deferred_key_check_runs_only_where_a_key_can_be_deferred() {
    let writer = writer("defer-gate", true);
    run(&writer, "CREATE TABLE t(x INTEGER UNIQUE)").await;
    let answers = batch(&writer, vec![insert(1), insert(2), insert(3)]).await;
    assert!(answers.iter().all(|a| exec(a).is_ok()));
    let pool = writer.databases.current().rw_pool().clone();
    let mut conns = Vec::new();
    for _ in 0..pool.size() {
        conns.push(pool.acquire().await.unwrap());
    }
    for conn in &mut conns {
        let probes: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM temp.sqlite_schema WHERE name LIKE '_litefs_group_probe%'",
        )
        .fetch_one(&mut **conn)
        .await
        .unwrap();
        assert_eq!(probes, 0, "a batch without deferred keys was probed");
    }
    drop(conns);
    let create = write(
        "CREATE TABLE c(pid INTEGER REFERENCES t(x) DEFERRABLE INITIALLY DEFERRED)",
        Method::Execute,
    );
    let orphan = write("INSERT INTO c(pid) VALUES (99)", Method::Execute);
    // The orphan's parent comes next: in one unchecked transaction it would pass.
    let answers = batch(&writer, vec![create, orphan, insert(99)]).await;
    assert!(exec(&answers[0]).is_ok());
    let err = exec(&answers[1]).expect_err("an orphan of a key created in the same batch");
    assert!(err.contains("FOREIGN KEY"), "{err}");
    assert!(exec(&answers[2]).is_ok());
    assert_eq!(column(&writer, "SELECT count(*) FROM c").await, [0]);
}

/// Review 3: the probe needs foreign keys enforced. With them off (a builder's own connect
/// options may say so) no count ever moves, and no member may be set aside for it, or group
/// commit would quietly run every write twice and alone.
#[tokio::test]
async fn review3_with_foreign_keys_off_no_member_is_set_aside() {
    use sqlx::Connection as _;
    let path = std::env::temp_dir().join(format!(
        "group-rv3-nofk-{}-{}.db",
        std::process::id(),
        rand::random::<u32>()
    ));
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .foreign_keys(false)
        .create_if_missing(true);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    for table in PROBE_TABLES {
        conn.execute(table).await.unwrap();
    }
    conn.execute("BEGIN IMMEDIATE").await.unwrap();
    conn.execute("CREATE TABLE t(x INTEGER)").await.unwrap();
    assert!(
        !unresolved_deferred_foreign_keys(&mut conn).await,
        "a write with foreign keys off was set aside to run alone"
    );
}

/// Review 3 (held): an ending member, a keyed member that runs alone (its deferred foreign
/// key fails at its own COMMIT) and a keyed member that resolves its own violation, in one
/// batch: each answered as alone in queue order, each key stored once, and only for the
/// write that committed.
#[tokio::test]
async fn review3_keyed_alone_member_after_an_ender_stores_its_key_once() {
    let writer = writer("rv3-keyed-alone", true);
    run(&writer, "CREATE TABLE t(x INTEGER UNIQUE)").await;
    run(&writer, "CREATE TABLE p(id INTEGER PRIMARY KEY)").await;
    run(
        &writer,
        "CREATE TABLE c(pid INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)",
    )
    .await;
    let (k1, k2) = (
        crate::connection::idempotency_key(),
        crate::connection::idempotency_key(),
    );
    let keyed = |text: &str, key| {
        Write(
            Sql::Raw(text.into()),
            Method::Execute,
            Some(key),
            later(10_000),
        )
    };
    let orphan = "INSERT INTO c(pid) VALUES (1)";
    let resolved = "INSERT INTO c(pid) VALUES (2); INSERT INTO p(id) VALUES (2)";
    let answers = batch(
        &writer,
        vec![
            insert(1),
            write("INSERT OR ROLLBACK INTO t(x) VALUES (1)", Method::Execute),
            keyed(orphan, k1),
            keyed(resolved, k2),
            write("INSERT INTO p(id) VALUES (1)", Method::Execute),
        ],
    )
    .await;
    assert!(exec(&answers[0]).is_ok(), "{:?}", exec(&answers[0]));
    assert!(exec(&answers[1]).unwrap_err().contains("UNIQUE"));
    assert!(exec(&answers[2]).unwrap_err().contains("FOREIGN KEY"));
    let (_, resolved_id) = exec(&answers[3]).unwrap();
    assert!(exec(&answers[4]).is_ok(), "{:?}", exec(&answers[4]));
    assert_eq!(column(&writer, "SELECT pid FROM c").await, [2]);
    assert_eq!(
        column(&writer, "SELECT id FROM p ORDER BY id").await,
        [1, 2]
    );
    assert_eq!(
        column(&writer, "SELECT count(*) FROM _litefs_forward_keys").await,
        [1]
    );
    // The failed keyed write runs again (nothing of it stood); the other is answered from
    // its stored reply. The parent now exists, so the first commits this time.
    let again = |text: &str, key| {
        writer.autocommit(
            Sql::Raw(text.into()),
            Method::Execute,
            Some(key),
            false,
            later(10_000),
        )
    };
    assert!(exec(&again(orphan, k1).await).is_ok());
    match again(resolved, k2).await {
        Ok(Written::Stored(
            Reply::Exec {
                last_insert_rowid, ..
            },
            _,
        )) => {
            assert_eq!(last_insert_rowid, resolved_id)
        }
        other => panic!("{:?}", exec(&other)),
    }
    assert_eq!(
        column(&writer, "SELECT pid FROM c ORDER BY pid").await,
        [1, 2]
    );
}

/// Review 3 (held): deleting a parent that a deferred child still references fails at its
/// own COMMIT even when the next write puts the parent back; a cascading delete of a deferred
/// child's parent, which leaves nothing unresolved, commits in the batch.
#[tokio::test]
async fn review3_deleting_a_deferred_childs_parent_is_judged_alone() {
    let writer = writer("rv3-delete-parent", true);
    for s in [
        "CREATE TABLE p(id INTEGER PRIMARY KEY)",
        "CREATE TABLE c(pid INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)",
        "CREATE TABLE q(id INTEGER PRIMARY KEY)",
        "CREATE TABLE d(qid INTEGER REFERENCES q(id) ON DELETE CASCADE \
         DEFERRABLE INITIALLY DEFERRED)",
        "INSERT INTO p(id) VALUES (1)",
        "INSERT INTO c(pid) VALUES (1)",
        "INSERT INTO q(id) VALUES (1)",
        "INSERT INTO d(qid) VALUES (1)",
    ] {
        run(&writer, s).await;
    }
    let before = writer.batch_counts();
    let answers = batch(
        &writer,
        vec![
            write("DELETE FROM q WHERE id = 1", Method::Execute),
            write("DELETE FROM p WHERE id = 1", Method::Execute),
            write("INSERT OR IGNORE INTO p(id) VALUES (1)", Method::Execute),
        ],
    )
    .await;
    assert_eq!(exec(&answers[0]).map(|r| r.0), Ok(1));
    assert!(exec(&answers[1]).unwrap_err().contains("FOREIGN KEY"));
    // The parent was never deleted: the insert finds it there and ignores itself.
    assert_eq!(exec(&answers[2]).map(|r| r.0), Ok(0));
    assert_eq!(column(&writer, "SELECT count(*) FROM d").await, [0]);
    assert_eq!(column(&writer, "SELECT pid FROM c").await, [1]);
    let after = writer.batch_counts();
    assert_eq!((after.0 - before.0, after.1 - before.1), (1, 3));
}
