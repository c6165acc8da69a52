//! What the crate promises, each on a 2-node cluster: the primary's own result, exactly once,
//! typed errors, read your writes, transactions and procedures from a replica.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, SqlErr, Statement, TransactionSession, TransactionTrait,
};
use sea_orm_litefs::testing::Faults;
use sea_orm_litefs::{
    ClusterConnection, ClusterError, ClusterTransaction, Procedure, Procedures, Role,
};
use test_support::cluster::{Cluster, REMOTE_TX_LEASE_MS, wait_until};

const SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS note (id INTEGER PRIMARY KEY, body TEXT NOT NULL UNIQUE)";

/// A note and its number of words, in one transaction: the crate's own example procedure.
struct AddNote;

impl Procedure for AddNote {
    const NAME: &'static str = "add_note";
    const VERSION: u32 = 1;
    type Args = String;
    type Output = i64;
    type Error = DbErr;

    async fn run(txn: &ClusterTransaction, body: String) -> Result<i64, DbErr> {
        let inserted = txn.execute_raw(insert(&body)).await?;
        txn.execute_raw(insert(&format!("{body} (copy)"))).await?;
        Ok(inserted.last_insert_id() as i64)
    }
}

/// A note, then something slow in the same transaction: a statement that counts to 10^8 (`true`,
/// many seconds of SQLite work) or a wait on something other than the database (`false`).
struct SlowNote;

impl Procedure for SlowNote {
    const NAME: &'static str = "slow_note";
    const VERSION: u32 = 1;
    type Args = (String, bool);
    type Output = ();
    type Error = DbErr;

    async fn run(txn: &ClusterTransaction, (body, statement): (String, bool)) -> Result<(), DbErr> {
        txn.execute_raw(insert(&body)).await?;
        if statement {
            txn.query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000) \
                 SELECT count(*) FROM c",
            ))
            .await?;
        } else {
            tokio::time::sleep(Duration::from_secs(20)).await;
        }
        Ok(())
    }
}

/// Where a [`GatedNote`] body waits, until the test opens it (a permit it gives back).
static GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);
/// [`GatedNote`] bodies that have reached the gate so far.
static AT_GATE: AtomicUsize = AtomicUsize::new(0);

/// A note, a wait at [`GATE`], then its copy: the test moves the lease during the wait.
struct GatedNote;

impl Procedure for GatedNote {
    const NAME: &'static str = "gated_note";
    const VERSION: u32 = 1;
    type Args = String;
    type Output = ();
    type Error = DbErr;

    async fn run(txn: &ClusterTransaction, body: String) -> Result<(), DbErr> {
        txn.execute_raw(insert(&body)).await?;
        AT_GATE.fetch_add(1, Ordering::SeqCst);
        drop(GATE.acquire().await);
        txn.execute_raw(insert(&format!("{body} (copy)"))).await?;
        Ok(())
    }
}

fn insert(body: &str) -> Statement {
    Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "INSERT INTO note (body) VALUES (?)",
        [body.into()],
    )
}

/// Node 1 primary and node 2 replica, opened in this process; the primary with `faults`.
async fn two_nodes(faults: Arc<Faults>) -> (Cluster, ClusterConnection, ClusterConnection) {
    two_nodes_timed(faults, None).await
}

/// The same, both nodes' forward timeout `timeout` if given (else the cluster's), with a
/// remote-transaction lease below it: the cluster's, or half the timeout if that is shorter.
async fn two_nodes_timed(
    faults: Arc<Faults>,
    timeout: Option<Duration>,
) -> (Cluster, ClusterConnection, ClusterConnection) {
    let cluster = Cluster::start_litefs_only(2).await;
    let procedures = || {
        Procedures::new()
            .register::<AddNote>()
            .register::<SlowNote>()
            .register::<GatedNote>()
    };
    let timed = |options: sea_orm_litefs::Builder| match timeout {
        Some(timeout) => options
            .forward_timeout(timeout)
            .remote_transaction_lease((timeout / 2).min(Duration::from_millis(REMOTE_TX_LEASE_MS))),
        None => options,
    };
    let primary = timed(cluster.options(1))
        .faults(faults)
        .procedures(procedures())
        .start()
        .await
        .expect("the primary starts");
    primary.execute_unprepared(SCHEMA).await.unwrap();
    let replica = timed(cluster.options(2))
        .procedures(procedures())
        .start()
        .await
        .expect("the replica starts");
    assert_eq!(primary.role(), Role::Primary);
    assert!(
        matches!(replica.role(), Role::Replica { .. }),
        "{:?}",
        replica.role()
    );
    (cluster, primary, replica)
}

async fn bodies(db: &ClusterConnection) -> Vec<String> {
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT body FROM note ORDER BY id",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get("", "body").unwrap())
        .collect()
}

#[tokio::test]
async fn a_replica_returns_the_primary_result_and_reads_its_own_write() {
    let (_cluster, primary, replica) = two_nodes(Arc::default()).await;
    primary.execute_raw(insert("first")).await.unwrap();

    let forwarded = replica.execute_raw(insert("second")).await.unwrap();

    assert_eq!(forwarded.rows_affected(), 1);
    assert_eq!(forwarded.last_insert_id(), 2, "the primary's rowid");
    assert_eq!(
        bodies(&replica).await,
        ["first", "second"],
        "read at once on the replica"
    );
    assert_eq!(bodies(&primary).await, ["first", "second"]);
    let returning = replica
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "INSERT INTO note (body) VALUES ('third') RETURNING id",
        ))
        .await
        .unwrap()
        .expect("a row");
    assert_eq!(returning.try_get::<i64>("", "id").unwrap(), 3);
}

#[tokio::test]
async fn a_write_through_a_replicas_local_connection_is_refused_before_the_file() {
    let (_cluster, primary, replica) = two_nodes(Arc::default()).await;
    primary.execute_raw(insert("first")).await.unwrap();

    let err = replica
        .local()
        .execute_unprepared("INSERT INTO note (body) VALUES ('local')")
        .await
        .unwrap_err();

    // SQLite's own refusal on a read-only connection (SQLITE_READONLY, 8), not LiteFS refusing a
    // write that reached the replica's file (a disk I/O error).
    let code = match &err {
        DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e)) => e
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned()),
        _ => None,
    };
    assert_eq!(code.as_deref(), Some("8"), "{err:?}");
    assert_eq!(bodies(&primary).await, ["first"]);
    assert_eq!(
        replica
            .local()
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT body FROM note",
            ))
            .await
            .unwrap()
            .len(),
        1,
        "reads through it still work"
    );
    primary
        .local()
        .execute_unprepared("INSERT INTO note (body) VALUES ('on the primary')")
        .await
        .expect("the primary's local connection writes");
}

/// A replica can learn, before any write, whether the primary accepts it: a wrong secret is
/// a wrong setting, found by asking, not by the first write that fails.
#[tokio::test]
async fn a_replica_checks_that_the_primary_accepts_its_secret() {
    let (cluster, primary, replica) = two_nodes(Arc::default()).await;
    let wait = Duration::from_secs(2);
    primary
        .check_primary(wait)
        .await
        .expect("the primary has itself");
    replica.check_primary(wait).await.expect("the same secret");

    let stranger = cluster
        .options(2)
        .secret("not the cluster's secret")
        .rpc_listen("127.0.0.1:0")
        .start()
        .await
        .expect("a wrong secret is not known at start");
    let err = stranger.check_primary(wait).await.unwrap_err();
    assert!(matches!(err, ClusterError::AuthFailed { .. }), "{err:?}");
    assert_eq!(
        bodies(&primary).await,
        Vec::<String>::new(),
        "nothing written"
    );
}

#[tokio::test]
async fn a_constraint_violation_on_the_primary_is_the_same_error_on_the_replica() {
    let (_cluster, primary, replica) = two_nodes(Arc::default()).await;
    primary.execute_raw(insert("taken")).await.unwrap();

    let err = replica.execute_raw(insert("taken")).await.unwrap_err();

    assert!(
        matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))),
        "{err:?}"
    );
    assert_eq!(bodies(&primary).await, ["taken"]);
}

#[tokio::test]
async fn a_lost_answer_is_settled_and_the_write_happens_once() {
    let faults = Arc::new(Faults::default());
    let (_cluster, primary, replica) = two_nodes(faults.clone()).await;
    faults.lose_replies.store(1, Ordering::SeqCst);

    let result = replica.execute_raw(insert("once")).await;

    assert_eq!(
        faults.lose_replies.load(Ordering::SeqCst),
        0,
        "the reply was lost"
    );
    assert_eq!(result.unwrap().rows_affected(), 1, "the stored reply");
    assert_eq!(bodies(&primary).await, ["once"]);
}

#[tokio::test]
async fn transaction_control_in_sql_is_refused_with_what_to_use() {
    let (_cluster, _primary, replica) = two_nodes(Arc::default()).await;
    let err = replica.execute_unprepared("BEGIN").await.unwrap_err();
    let refused = ClusterError::find(&err).expect("a cluster error");
    assert!(matches!(refused, ClusterError::Refused(_)), "{refused}");
    assert!(err.to_string().contains("TransactionTrait"), "{err}");
}

#[tokio::test]
async fn a_replica_transaction_commits_its_savepoints_as_the_primary_would() {
    let (_cluster, primary, replica) = two_nodes(Arc::default()).await;

    let txn = replica.begin().await.unwrap();
    txn.execute_raw(insert("kept")).await.unwrap();
    let nested = txn.begin().await.unwrap();
    nested.execute_raw(insert("dropped")).await.unwrap();
    drop(nested);
    let nested = txn.begin().await.unwrap();
    nested.execute_raw(insert("released")).await.unwrap();
    nested.commit().await.unwrap();
    txn.commit().await.unwrap();

    assert_eq!(bodies(&replica).await, ["kept", "released"]);
    assert_eq!(bodies(&primary).await, ["kept", "released"]);
}

#[tokio::test]
async fn a_procedure_from_a_replica_is_one_round_trip() {
    let faults = Arc::new(Faults::default());
    let (_cluster, primary, replica) = two_nodes(faults.clone()).await;
    let before = faults.calls_received.load(Ordering::SeqCst);

    let id = replica.call::<AddNote>("proc".into()).await.unwrap();

    assert_eq!(faults.calls_received.load(Ordering::SeqCst) - before, 1);
    assert_eq!(id, 1);
    assert_eq!(bodies(&replica).await, ["proc", "proc (copy)"]);
    let err = replica.call::<AddNote>("proc".into()).await.unwrap_err();
    assert!(
        matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))),
        "{err:?}"
    );
    assert_eq!(
        bodies(&primary).await,
        ["proc", "proc (copy)"],
        "rolled back whole"
    );
}

/// A procedure whose body runs past the caller's deadline, on `caller` (a replica, or the primary
/// itself) with forward timeout `timeout`: a slow statement is interrupted and a body waiting on
/// something else is abandoned, so the call fails promptly as not committed, nothing of it is
/// written, and the primary's one writer is free for the next write at once.
async fn a_slow_body_stops_at_its_deadline(
    primary: &ClusterConnection,
    caller: &ClusterConnection,
    timeout: Duration,
) {
    for (body, statement) in [("slow statement", true), ("slow wait", false)] {
        let started = Instant::now();
        let result = caller.call::<SlowNote>((body.into(), statement)).await;
        let failed_after = started.elapsed();
        let started = Instant::now();
        let next = caller
            .execute_raw(insert(&format!("after the {body}")))
            .await;
        let next_after = started.elapsed();
        println!(
            "{body}, timeout {timeout:?}: the call answered after {failed_after:?} ({result:?}); \
             the next write took {next_after:?}"
        );
        let err = result.expect_err("the body ran past the deadline");
        assert!(
            matches!(
                ClusterError::find(&err),
                Some(ClusterError::NotCommitted { .. })
            ),
            "a clear \"not committed\": {err}"
        );
        assert!(
            failed_after < timeout * 3 / 2,
            "answered {failed_after:?} after the call, the timeout is {timeout:?}"
        );
        next.expect("the next write commits");
        assert!(
            next_after < timeout / 2,
            "the writer was held {next_after:?} after the call failed"
        );
        let notes = bodies(primary).await;
        assert!(!notes.contains(&body.to_owned()), "{notes:?}");
    }
}

#[tokio::test]
async fn a_procedure_from_a_replica_stops_at_its_deadline() {
    let timeout = Duration::from_millis(1000);
    let (_cluster, primary, replica) = two_nodes_timed(Arc::default(), Some(timeout)).await;
    a_slow_body_stops_at_its_deadline(&primary, &replica, timeout).await;
}

#[tokio::test]
async fn a_procedure_on_the_primary_stops_at_its_deadline() {
    let (_cluster, primary, _replica) = two_nodes(Arc::default()).await;
    a_slow_body_stops_at_its_deadline(&primary, &primary, primary.timeout()).await;
}

/// The lease moves while a procedure runs on the primary (LiteFS restarted with another static
/// primary, as the harness moves a lease): the primary's transaction is lost with its mount,
/// nothing of it committed, and the call goes on to the new primary, where it commits once. First
/// called from the replica (node 1 answers "not primary, ask node 2" and the call follows, same
/// key), then on the primary itself (node 2 sends it to node 1, as it would a local write).
#[tokio::test]
async fn a_procedure_whose_primary_loses_the_lease_mid_call_commits_once_on_the_new_one() {
    let timeout = Some(Duration::from_secs(30));
    let (mut cluster, node1, node2) = two_nodes_timed(Arc::default(), timeout).await;
    for (body, to) in [("from a replica", 2), ("on the primary", 1)] {
        let arrived = AT_GATE.load(Ordering::SeqCst);
        let call = tokio::spawn({
            let caller = node2.clone();
            async move { caller.call::<GatedNote>(body.into()).await }
        });
        wait_until("the body at the gate", || async {
            (AT_GATE.load(Ordering::SeqCst) > arrived).then_some(())
        })
        .await;

        cluster.restart_litefs_with_primary(to).await;
        let (new, old) = if to == 1 {
            (&node1, &node2)
        } else {
            (&node2, &node1)
        };
        wait_until("the nodes following the moved lease", || async {
            (new.role() == Role::Primary && matches!(old.role(), Role::Replica { .. }))
                .then_some(())
        })
        .await;
        GATE.add_permits(1);
        let result = tokio::time::timeout(Duration::from_secs(40), call)
            .await
            .expect("the call ends")
            .unwrap();
        GATE.acquire().await.unwrap().forget();

        println!("a call {body} whose primary lost the lease: {result:?}");
        result.expect("sent on to the new primary, it commits there");
        let notes = bodies(new).await;
        let copy = format!("{body} (copy)");
        assert_eq!(
            notes.iter().filter(|n| **n == body || **n == copy).count(),
            2,
            "committed once: {notes:?}"
        );
    }
}
