//! The guarantees beyond forwarding itself: exactly once, and a dead replica never holding the
//! primary's write lock.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sea_orm::{ActiveModelTrait, ConnectionTrait, TransactionSession, TransactionTrait};

use crate::harness::{Cluster, REMOTE_TX_LEASE_MS, SECRET};
use crate::{create_tag, http, new_tag, primary_i64, rows_on_primary};
use sea_orm_litefs::ClusterConnection;
use sea_orm_litefs::testing::Faults;

/// A primary, in this process, whose replies can be lost on purpose, and a replica (also in this
/// process) that forwards to it. The primary's handle is returned so it stays alive.
pub(crate) async fn faulty_primary_and_replica(
    cluster: &Cluster,
) -> (Arc<Faults>, ClusterConnection, ClusterConnection) {
    let faults = Arc::new(Faults::default());
    let (primary, replica) = cluster
        .primary_and_replica(|o| o.faults(faults.clone()))
        .await;
    (faults, primary, replica)
}

#[tokio::test]
async fn a_lost_reply_is_sent_again_and_the_write_happens_once() {
    let cluster = Cluster::start(2).await;
    let (faults, _primary, replica) = faulty_primary_and_replica(&cluster).await;

    faults.lose_replies.store(1, Ordering::SeqCst);
    let model = new_tag("exactly-once")
        .insert(&replica)
        .await
        .expect("the retry gets the stored reply, not a unique violation");

    assert_eq!(
        faults.lose_replies.load(Ordering::SeqCst),
        0,
        "the fault fired"
    );
    assert_eq!(rows_on_primary(&cluster, "exactly-once").await, 1);
    let id: i64 = primary_i64(
        &cluster,
        "SELECT id FROM tags WHERE label = ?",
        "exactly-once",
    )
    .await;
    assert_eq!(id, model.id as i64, "the reply is the first attempt's");
    let keys = primary_i64(
        &cluster,
        "SELECT count(*) FROM _litefs_forward_keys WHERE ? IS NOT NULL",
        "x",
    )
    .await;
    assert!(keys >= 1, "the key was stored with the write");
}

/// A lost answer, and then a primary that cannot say what became of the write at first (it is
/// restarting, or the lease is moving): the replica asks again until it can, and the caller gets
/// the write's real outcome rather than "unknown".
#[tokio::test]
async fn a_lost_answer_is_settled_once_the_primary_can_be_asked_again() {
    let cluster = Cluster::start(2).await;
    let (faults, _primary, replica) = faulty_primary_and_replica(&cluster).await;

    faults.lose_replies.store(1, Ordering::SeqCst);
    faults.refuse_resolves.store(2, Ordering::SeqCst);
    let model = new_tag("settled-later")
        .insert(&replica)
        .await
        .expect("committed, once the primary answers the question");

    assert_eq!(
        faults.refuse_resolves.load(Ordering::SeqCst),
        0,
        "asked three times"
    );
    assert_eq!(rows_on_primary(&cluster, "settled-later").await, 1);
    let id = primary_i64(
        &cluster,
        "SELECT id FROM tags WHERE label = ?",
        "settled-later",
    )
    .await;
    assert_eq!(id, model.id as i64, "the answer is the write's own");
}

/// A `VACUUM` runs outside any transaction, so the primary stores no key with it: when its answer
/// is lost, asking about the key would find none and answer "not committed", though it ran. The
/// caller is told the truth instead: the outcome is unknown (found by a fresh-context review).
#[tokio::test]
async fn a_lost_answer_to_a_vacuum_is_unknown_not_failed() {
    let cluster = Cluster::start(2).await;
    let (faults, _primary, replica) = faulty_primary_and_replica(&cluster).await;

    faults.lose_replies.store(1, Ordering::SeqCst);
    let err = replica
        .execute_unprepared("VACUUM")
        .await
        .expect_err("its answer was lost");

    assert_eq!(
        faults.lose_replies.load(Ordering::SeqCst),
        0,
        "the fault fired"
    );
    let cluster_err = sea_orm_litefs::ClusterError::find(&err);
    assert!(
        cluster_err.is_some_and(|e| e.outcome_unknown()),
        "a VACUUM that may have run is not reported failed: {err}"
    );
}

#[tokio::test]
async fn a_lost_commit_reply_is_sent_again_and_the_transaction_commits_once() {
    let cluster = Cluster::start(2).await;
    let (faults, _primary, replica) = faulty_primary_and_replica(&cluster).await;
    let txn = replica.begin().await.unwrap();
    new_tag("committed-once").insert(&txn).await.unwrap();
    faults.lose_replies.store(1, Ordering::SeqCst);
    txn.commit()
        .await
        .expect("the commit sent again gets the first commit's answer");
    assert_eq!(
        faults.lose_replies.load(Ordering::SeqCst),
        0,
        "the fault fired"
    );
    assert_eq!(rows_on_primary(&cluster, "committed-once").await, 1);
}

/// The example that holds a transaction open from a replica (built by `cargo test`).
pub(crate) fn remote_transaction_example() -> std::path::PathBuf {
    let deps = std::env::current_exe().unwrap();
    let path = deps
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/remote_transaction");
    assert!(
        path.exists(),
        "{} is missing: `cargo test --workspace` (the README's test command) builds it",
        path.display()
    );
    path
}

#[tokio::test]
async fn a_replica_killed_mid_transaction_never_holds_the_write_lock() {
    let cluster = Cluster::start(2).await;
    let replica = cluster.node(2);
    let mut holder = Command::new(remote_transaction_example())
        .arg(replica.mnt())
        .arg(replica.litefs_api())
        .arg("held-by-a-dead-replica")
        .env("BLOG_CLUSTER_SECRET", SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("inserted held-by-a-dead-replica"),
        "{line}"
    );
    assert!(line.contains("role: replica"), "{line}");

    // kill -9: no rollback is ever sent. The primary holds BEGIN IMMEDIATE for it.
    holder.kill().unwrap();
    holder.wait().unwrap();
    let killed = Instant::now();

    // Another writer gets through within the lease plus a second.
    let (status, body) = create_tag(&http(), &cluster.url(1), "after-the-dead-replica").await;
    let waited = killed.elapsed();
    assert_eq!(status, 201, "{body}");
    assert!(
        waited < Duration::from_millis(REMOTE_TX_LEASE_MS + 1000),
        "the write waited {waited:?}"
    );
    assert_eq!(rows_on_primary(&cluster, "held-by-a-dead-replica").await, 0);
    let log = std::fs::read_to_string(cluster.node(1).app_log()).unwrap();
    assert!(
        log.contains("idle past its lease: rolled back"),
        "the primary says what it did"
    );
}

/// `ROUNDS` times: write on `writer`, then read on `reader` with the cookie the write set (the
/// nodes have different addresses here, so the test carries the cookie across, as one domain in
/// front of every node would). Returns the rounds whose read missed the write.
async fn write_then_read_elsewhere(writer: &str, reader: &str, prefix: &str) -> Vec<usize> {
    const ROUNDS: usize = 500;
    let browser = http();
    let mut stale = Vec::new();
    for i in 0..ROUNDS {
        let label = format!("{prefix}-{i}");
        let created = browser
            .post(format!("{writer}/api/tags"))
            .basic_auth("admin", Some(crate::harness::ADMIN_PASSWORD))
            .json(&serde_json::json!({ "label": label }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let set_cookie = created.headers()["set-cookie"].to_str().unwrap();
        assert!(set_cookie.starts_with("blog_txid="), "{set_cookie}");
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let read = browser
            .get(format!("{reader}/api/tags"))
            .basic_auth("admin", Some(crate::harness::ADMIN_PASSWORD))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert!(
            read.headers().get("x-blog-stale").is_none(),
            "round {i}: the reader gave up waiting"
        );
        let tags: Vec<serde_json::Value> = read.json().await.unwrap();
        if !tags.iter().any(|t| t["label"] == label.as_str()) {
            stale.push(i);
        }
    }
    stale
}

#[tokio::test]
async fn reading_your_writes_on_another_node_is_never_stale() {
    // Node 3 gets the primary's changes 20 ms late, like a replica in another region: without
    // waiting for the cookie's TXID, its reads would miss writes just made elsewhere.
    let cluster = Cluster::start_with_lag(3, 3, Duration::from_millis(20)).await;
    // A forwarded write on one replica, read on the other; then a write on the primary, which
    // returns before any replica has it, read on a replica.
    let from_replica =
        write_then_read_elsewhere(&cluster.url(2), &cluster.url(3), "via-replica").await;
    let from_primary =
        write_then_read_elsewhere(&cluster.url(1), &cluster.url(3), "via-primary").await;
    assert_eq!(
        (from_replica, from_primary),
        (vec![], vec![]),
        "rounds whose read missed the write"
    );
}

#[tokio::test]
async fn a_tampered_consistency_cookie_is_ignored() {
    let cluster = Cluster::start(2).await;
    let started = Instant::now();
    let response = http()
        .get(format!("{}/api/tags", cluster.url(2)))
        .header("cookie", "blog_txid=ffffffffffffffff")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-blog-stale").is_none());
    assert!(
        started.elapsed() < Duration::from_millis(crate::harness::FORWARD_TIMEOUT_MS),
        "a forged TXID made the node wait"
    );
}

#[tokio::test]
async fn a_peer_without_the_secret_gets_nothing_executed() {
    let cluster = Cluster::start(2).await;
    let intruder = cluster
        .options(2)
        .secret("not-the-cluster-secret")
        .start()
        .await
        .unwrap();
    let err = new_tag("intrusion").insert(&intruder).await.unwrap_err();
    let cluster_err = sea_orm_litefs::ClusterError::find(&err).expect("a cluster error, not SQL");
    assert!(
        matches!(cluster_err, sea_orm_litefs::ClusterError::AuthFailed { .. }),
        "{cluster_err}"
    );
    assert!(err.to_string().contains("cluster secret"), "{err}");
    assert_eq!(rows_on_primary(&cluster, "intrusion").await, 0);
    let log = std::fs::read_to_string(cluster.node(1).app_log()).unwrap();
    assert!(
        log.contains("does not know the cluster secret"),
        "the primary logs the refusal"
    );
}

/// A client that sends a cookie of its own but keeps none of the app's (`curl -b theme=dark`, a
/// script with a fixed header, a jar that refuses the position cookie) reads its write on the
/// same replica, even one that gets the primary's changes late: the write answers only once the
/// replica has it. (A version that answered before the replica had it, for clients sending any
/// cookie, failed this, missing the write without `x-blog-stale`.)
#[tokio::test]
async fn a_client_that_sends_a_fixed_cookie_reads_its_write_on_the_same_replica() {
    const LAG: Duration = Duration::from_millis(800);
    let cluster = crate::harness::Cluster::start_with_lag(2, 2, LAG).await;
    let replica = cluster.url(2);
    let client = http();
    let created = client
        .post(format!("{replica}/api/tags"))
        .basic_auth("admin", Some(crate::harness::ADMIN_PASSWORD))
        .header("cookie", "theme=dark")
        .json(&serde_json::json!({ "label": "fixed-cookie" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // The client keeps no cookie: its next request sends the same fixed one.
    let read = client
        .get(format!("{replica}/api/tags"))
        .basic_auth("admin", Some(crate::harness::ADMIN_PASSWORD))
        .header("cookie", "theme=dark")
        .send()
        .await
        .unwrap();
    let stale = read.headers().get("x-blog-stale").is_some();
    let tags: Vec<serde_json::Value> = read.json().await.unwrap();
    assert!(
        stale || tags.iter().any(|t| t["label"] == "fixed-cookie"),
        "the next read on the same replica missed the write, without x-blog-stale: {tags:?}"
    );
}

/// The primary's `blog_writer_queue_depth` gauge: writes waiting there for its one writer.
async fn writer_queue_depth(metrics_url: &str) -> usize {
    let text = crate::get_text(&http(), metrics_url).await;
    let line = text
        .lines()
        .find(|l| l.starts_with("blog_writer_queue_depth "));
    line.and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as usize)
}

/// A deploy or stop of the primary (SIGTERM, as `litefs mount` and Fly.io send it) while
/// replicas' writes are in progress there: the app answers every forwarded write it has begun
/// and lets an open remote transaction commit before it exits, and refuses new ones as not
/// committed meanwhile, so no replica is left not knowing whether its write committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopping_the_primary_answers_the_forwarded_writes_it_has_begun() {
    const QUEUED: usize = 4;
    let mut cluster = Cluster::start(2).await;
    let replica = cluster.connect(2).await;
    // A remote transaction holds the primary's one writer, so these forwarded writes begin on
    // the primary and wait there for it.
    let txn = replica.begin().await.unwrap();
    new_tag("drain-held").insert(&txn).await.unwrap();
    let queued: Vec<_> = (0..QUEUED)
        .map(|i| {
            let replica = replica.clone();
            tokio::spawn(
                async move { new_tag(&format!("drain-queued-{i}")).insert(&replica).await },
            )
        })
        .collect();
    let metrics = format!("{}/metrics", cluster.url(1));
    crate::harness::wait_until("the forwarded writes wait on the primary", || async {
        (writer_queue_depth(&metrics).await >= QUEUED).then_some(())
    })
    .await;

    // While the app stops (below), once it has stopped taking requests: a new forwarded write,
    // then the transaction's COMMIT.
    let ready = format!("{}/readyz", cluster.url(1));
    let during_the_stop = {
        let replica = replica.clone();
        tokio::spawn(async move {
            crate::harness::wait_until("the app stops taking requests", || async {
                http().get(&ready).send().await.is_err().then_some(())
            })
            .await;
            let refused = new_tag("drain-refused").insert(&replica).await;
            (refused, txn.commit().await)
        })
    };
    let status = tokio::task::block_in_place(|| cluster.terminate_app(1));
    assert!(
        status.is_some_and(|s| s.success()),
        "the app exits cleanly: {status:?}"
    );

    let (refused, committed) = during_the_stop.await.unwrap();
    committed.expect("the open transaction commits during the stop");
    let err = refused.expect_err("a write that arrives during the stop is refused");
    let refusal = sea_orm_litefs::ClusterError::find(&err);
    assert!(
        matches!(refusal, Some(sea_orm_litefs::ClusterError::Unavailable(why)) if why.contains("shutting down")),
        "refused by the stopping primary as not committed, not left unknown: {err}"
    );
    for (i, write) in queued.into_iter().enumerate() {
        write
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("queued write {i} is answered, committed: {e}"));
    }
    let mut db = crate::open_db(cluster.node(cluster.primary)).await;
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT label FROM tags WHERE label LIKE 'drain-%' ORDER BY label")
            .fetch_all(&mut db)
            .await
            .unwrap();
    let expected: Vec<String> = std::iter::once("drain-held".to_owned())
        .chain((0..QUEUED).map(|i| format!("drain-queued-{i}")))
        .collect();
    assert_eq!(
        stored, expected,
        "every write answered committed is there, the refused one not"
    );
}
