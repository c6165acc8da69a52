//! Review two: a search stopped at `BLOG_SEARCH_TIMEOUT_MS` on a replica of a real LiteFS
//! cluster.

use std::time::{Duration, Instant};

use crate::harness::{ADMIN_PASSWORD, Cluster};
use crate::{http, open_db};

const SLOW_SEARCH: &str = "東京 大阪 京都 札幌 福岡 神戸 横浜 名古屋";

/// Waits until node `k` has reached TXID `txid` (the harness's `wait_until`: a minute at most).
async fn reach(cluster: &Cluster, k: usize, txid: u64) {
    crate::harness::wait_until("a node to reach a TXID", || async move {
        (cluster.node(k).txid() >= txid).then_some(())
    })
    .await
}

/// On a replica, a search past its deadline is a 503 in the API's JSON shape, and the commits
/// made on the primary while it ran reach the replica at once after the stop (a read that runs
/// holds replication back there), not when the search would have ended (seconds).
#[tokio::test]
async fn review_two_a_search_stopped_on_a_replica_is_a_503_and_frees_replication() {
    let mut cluster = Cluster::start(2).await;
    let (primary, replica) = (cluster.primary, 3 - cluster.primary);
    cluster.stop_app(replica);
    cluster
        .start_app_with(replica, &[("BLOG_SEARCH_TIMEOUT_MS", "200")], "/readyz")
        .await;
    let mut db = open_db(cluster.node(primary)).await;
    sqlx::raw_sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 144) \
         INSERT INTO posts (slug, title, body, published, published_at, created_at, updated_at) \
         SELECT 'big-' || i, 'Big ' || i, replace(hex(zeroblob(262144)), '00', 'ab c'), 1, \
                '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM n",
    )
    .execute(&mut db)
    .await
    .unwrap();
    drop(db);
    let big = cluster.node(primary).txid();
    reach(&cluster, replica, big).await;
    let client = http();
    // The same search on the primary (5 s deadline) runs for seconds.
    let started = Instant::now();
    let full = client
        .get(format!("{}/api/posts", cluster.url(primary)))
        .query(&[("q", SLOW_SEARCH)])
        .send()
        .await
        .unwrap();
    let full_time = started.elapsed();
    assert!(
        full_time > Duration::from_millis(1200),
        "precondition: the search took only {full_time:?} ({})",
        full.status()
    );

    for round in 0..3 {
        let search = {
            let client = client.clone();
            let url = format!("{}/api/posts", cluster.url(replica));
            tokio::spawn(async move {
                let response = client.get(url).query(&[("q", SLOW_SEARCH)]).send().await;
                let response = response.unwrap();
                let status = response.status();
                let body: serde_json::Value = response.json().await.unwrap();
                (status, body, Instant::now())
            })
        };
        // Writes through the primary while the search runs on the replica (paced, not waited
        // on: each is checked below by its own TXID).
        let mut writes = Vec::new();
        for i in 0..4 {
            let created = client
                .post(format!("{}/api/tags", cluster.url(primary)))
                .basic_auth("admin", Some(ADMIN_PASSWORD))
                .json(&serde_json::json!({ "label": format!("r{round}-t{i}") }))
                .send()
                .await
                .unwrap();
            assert_eq!(created.status(), 201);
            writes.push((cluster.node(primary).txid(), Instant::now()));
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        let (status, body, answered) = search.await.unwrap();
        assert_eq!(status, 503, "round {round}: {body}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("was stopped")),
            "{body}"
        );
        let last = writes.last().unwrap().0;
        reach(&cluster, replica, last).await;
        let after_stop = answered.elapsed();
        eprintln!(
            "round {round}: the last write reached the replica {:?} after it committed",
            writes.last().unwrap().1.elapsed()
        );
        for (txid, _) in &writes {
            assert!(cluster.node(replica).txid() >= *txid);
        }
        // Idle, for comparison: a write's arrival on the replica with no search there.
        let created = client
            .post(format!("{}/api/tags", cluster.url(primary)))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .json(&serde_json::json!({ "label": format!("r{round}-idle") }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let sent = Instant::now();
        reach(&cluster, replica, cluster.node(primary).txid()).await;
        let idle = sent.elapsed();
        eprintln!(
            "round {round}: idle arrival {idle:?}; the 503 came {:?} after the last write",
            answered.saturating_duration_since(writes.last().unwrap().1)
        );
        eprintln!(
            "round {round}: writes on the replica {after_stop:?} after the 503; search {full_time:?}"
        );
        // Well under the search's own length.
        assert!(
            after_stop < full_time / 2,
            "round {round}: the writes reached the replica {after_stop:?} after the 503 (the \
             search alone takes {full_time:?})"
        );
    }
}
