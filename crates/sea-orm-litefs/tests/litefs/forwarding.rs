//! What the crate promises, each on a 2-node cluster: the primary's own result, exactly once,
//! typed errors, read your writes, transactions and procedures from a replica.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, SqlErr, Statement, TransactionSession, TransactionTrait,
};
use sea_orm_litefs::testing::Faults;
use sea_orm_litefs::{
    ClusterConnection, ClusterError, ClusterTransaction, Procedure, Procedures, Role,
};
use test_support::cluster::Cluster;

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

fn insert(body: &str) -> Statement {
    Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "INSERT INTO note (body) VALUES (?)",
        [body.into()],
    )
}

/// Node 1 primary and node 2 replica, opened in this process; the primary with `faults`.
async fn two_nodes(faults: Arc<Faults>) -> (Cluster, ClusterConnection, ClusterConnection) {
    let cluster = Cluster::start_litefs_only(2).await;
    let procedures = || Procedures::new().register::<AddNote>();
    let primary = cluster
        .options(1)
        .faults(faults)
        .procedures(procedures())
        .start()
        .await
        .expect("the primary starts");
    primary.execute_unprepared(SCHEMA).await.unwrap();
    let replica = cluster
        .options(2)
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
