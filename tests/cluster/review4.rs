//! A fourth review of case-insensitive tags, on a real cluster: a replica's rename is a
//! transaction on the primary (a temporary key `/<id>`, then label and key); a replica that
//! vanishes in the middle of it leaves nothing of it.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

use blog::blog::input::TagLabel;
use blog::blog::{procedures, tags};

use crate::harness::Cluster;
use crate::primary_i64;

/// A replica's rename stopped after its first statement (the temporary key), and another after
/// its second (label and key), both never committed nor rolled back (the replica vanished): the
/// primary never shows the temporary key or the new label, rolls each back at its lease, and the
/// blog's own rename of the tag from the primary then waits for the writer and works.
#[tokio::test]
async fn a_replica_vanishing_mid_rename_leaves_nothing_of_it() {
    let cluster = Cluster::start(2).await;
    let (primary, replica) = cluster
        .primary_and_replica(|o| {
            o.procedures(procedures::registry())
                .remote_transaction_lease(Duration::from_millis(300))
        })
        .await;
    let label = |l: &str| TagLabel::parse(l).unwrap();
    let uber = tags::create(&primary, &label("über")).await.unwrap();
    let step = |sql: String| Statement::from_string(DbBackend::Sqlite, sql);

    // Stopped after the temporary key.
    let txn = replica.begin().await.unwrap();
    txn.execute_raw(step(format!(
        "UPDATE tags SET label_key = '/{0}' WHERE id = {0}",
        uber.id
    )))
    .await
    .unwrap();
    std::mem::forget(txn);
    assert_eq!(
        primary_i64(
            &cluster,
            "SELECT count(*) FROM tags WHERE label_key = ?",
            "über"
        )
        .await,
        1,
        "the temporary key is not seen outside its transaction"
    );
    let renamed = tags::rename(&primary, uber.id, &label("Über"))
        .await
        .expect("the primary's rename waits for the lease to end the vanished transaction");
    assert_eq!(
        (renamed.label.as_str(), renamed.label_key.as_str()),
        ("Über", "über")
    );

    // Stopped after label and key.
    let txn = replica.begin().await.unwrap();
    for sql in [
        format!("UPDATE tags SET label_key = '/{0}' WHERE id = {0}", uber.id),
        format!(
            "UPDATE tags SET label = 'ÜBER', label_key = 'über' WHERE id = {}",
            uber.id
        ),
    ] {
        txn.execute_raw(step(sql)).await.unwrap();
    }
    std::mem::forget(txn);
    let created = tags::create(&primary, &label("Zorn")).await.unwrap();
    assert_eq!(created.label_key, "zorn");
    assert_eq!(
        tags::find_by_id(&primary, uber.id).await.unwrap().label,
        "Über"
    );
    assert_eq!(
        primary_i64(
            &cluster,
            "SELECT count(*) FROM tags WHERE label_key LIKE ?",
            "/%"
        )
        .await,
        0
    );
    // And from the replica, once more, whole.
    let renamed = tags::rename(&replica, uber.id, &label("ÜBER"))
        .await
        .unwrap();
    assert_eq!(
        (renamed.label.as_str(), renamed.label_key.as_str()),
        ("ÜBER", "über")
    );
}

/// A replica's rename, then at once a read on that replica (what its Tags page shows after the
/// redirect): the new label, never the old one or the temporary key, many times over.
#[tokio::test]
async fn a_replica_reads_its_own_rename_at_once() {
    let cluster = Cluster::start(2).await;
    let (primary, replica) = cluster
        .primary_and_replica(|o| o.procedures(procedures::registry()))
        .await;
    let label = |l: &str| TagLabel::parse(l).unwrap();
    let tag = tags::create(&primary, &label("über")).await.unwrap();
    for to in ["Über", "ÜBER", "über", "Ärger", "ärger"].repeat(4) {
        let renamed = tags::rename(&replica, tag.id, &label(to)).await.unwrap();
        assert_eq!(renamed.label, to);
        let read = tags::find_by_id(&replica, tag.id).await.unwrap();
        assert_eq!(
            (read.label.as_str(), read.label_key.as_str()),
            (to, blog::blog::input::label_key(to).as_str())
        );
        let listed = tags::list_with_counts(&replica, blog::blog::posts::Visibility::All)
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].label, to);
    }
}
