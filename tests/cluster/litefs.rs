//! The LiteFS facts the project rests on, checked on the real cluster.

use sqlx::Row;

use crate::harness::{Cluster, ip, wait_until};
use crate::open_db;

#[tokio::test]
async fn the_cluster_is_real_litefs() {
    let cluster = Cluster::start(3).await;
    let primary = cluster.node(1);

    // `.primary` names the primary on replicas; the primary has none.
    assert_eq!(primary.primary_file(), None);
    for k in cluster.replicas() {
        assert_eq!(
            cluster.node(k).primary_file().as_deref(),
            Some(format!("{}\n", ip(1)).as_str())
        );
    }

    // Each commit on the primary advances its TXID, and replicas reach it.
    let mut db = open_db(primary).await;
    sqlx::query("CREATE TABLE IF NOT EXISTS litefs_probe(id INTEGER PRIMARY KEY, note TEXT)")
        .execute(&mut db)
        .await
        .unwrap();
    let mut last = primary.txid();
    for i in 0..3 {
        sqlx::query("INSERT INTO litefs_probe(note) VALUES (?)")
            .bind(format!("row {i}"))
            .execute(&mut db)
            .await
            .unwrap();
        let now = primary.txid();
        assert!(
            now > last,
            "TXID did not grow after commit {i}: {last:#x} -> {now:#x}"
        );
        last = now;
    }
    for k in cluster.replicas() {
        let replica = cluster.node(k);
        wait_until(&format!("node {k} reaching TXID {last:#x}"), || async {
            (replica.txid() >= last).then_some(())
        })
        .await;
        // The rows written on the primary are in the replica's own database file.
        let mut rdb = open_db(replica).await;
        let rows: Vec<String> = sqlx::query("SELECT note FROM litefs_probe ORDER BY id")
            .fetch_all(&mut rdb)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(rows, ["row 0", "row 1", "row 2"], "node {k}");

        // Writing to a replica's database directly is refused by LiteFS: the failure the
        // original Elixir middleware ran into when it also ran the write locally.
        let err = sqlx::query("INSERT INTO litefs_probe(note) VALUES ('local write')")
            .execute(&mut rdb)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("disk I/O error"),
            "node {k}: {err}"
        );
    }
}

#[tokio::test]
async fn the_primary_moves_to_node_2_and_the_running_apps_follow() {
    let mut cluster = Cluster::start(3).await;
    let client = crate::http();
    let (status, _) = crate::create_tag(&client, &cluster.url(1), "before-failover").await;
    assert_eq!(status, 201);

    cluster.restart_with_primary(2).await;

    assert_eq!(
        cluster.node(2).primary_file(),
        None,
        "node 2 is primary now"
    );
    assert_eq!(
        cluster.node(1).primary_file().as_deref(),
        Some(format!("{}\n", ip(2)).as_str())
    );
    let role = client
        .get(format!("{}/healthz", cluster.url(2)))
        .send()
        .await
        .unwrap();
    assert_eq!(role.headers()["x-blog-role"], "primary");

    // Node 2 accepts writes itself (nothing forwarded), and node 1 follows it.
    let (status, tag) = crate::create_tag(&client, &cluster.url(2), "after-failover").await;
    assert_eq!(status, 201, "{tag}");
    assert_eq!(
        crate::counter(&cluster.url(2), "blog_forwarded_writes_total").await,
        0.0
    );
    let txid = cluster.node(2).txid();
    let node1 = cluster.node(1);
    wait_until("node 1 following node 2", || async {
        (node1.txid() >= txid).then_some(())
    })
    .await;
    let labels: Vec<String> = sqlx::query("SELECT label FROM tags ORDER BY id")
        .fetch_all(&mut open_db(node1).await)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(labels, ["before-failover", "after-failover"]);

    // A replica forwards to the new primary, with no change to the apps' configuration.
    let (status, _) = crate::create_tag(&client, &cluster.url(3), "forwarded-to-node-2").await;
    assert_eq!(status, 201);
    assert_eq!(
        crate::counter(&cluster.url(3), "blog_forwarded_writes_total").await,
        1.0
    );
}

/// An operator's `blog migrate status` on a running machine (`fly ssh console`), with the same
/// environment as `blog serve` (docs/reference.md lists the command): it must answer, not fail
/// because the running app holds the forwarding RPC's address. On Fly.io the settings are
/// environment variables; `migrate` takes the ones it reads as flags too, and refuses serving's
/// flags, so serving's RPC address comes as the machine has it, in `BLOG_RPC_LISTEN`.
#[tokio::test]
async fn review4_blog_migrate_status_runs_beside_the_serving_primary() {
    let cluster = Cluster::start(2).await;
    let node = cluster.node(1);
    let mut flags = node.blog_flags().into_iter();
    let mut migrate_flags = Vec::new();
    let mut rpc_listen = None;
    while let Some(flag) = flags.next() {
        let value = flags.next().expect("every flag has a value");
        match flag.to_str() {
            Some("--rpc-listen") => rpc_listen = Some(value),
            _ => migrate_flags.extend([flag, value]),
        }
    }
    let rpc_listen = rpc_listen.expect("serve is given an RPC address");
    let output = std::process::Command::new(test_support::blog_binary())
        .args(["migrate", "status"])
        .args(migrate_flags)
        .env("BLOG_RPC_LISTEN", rpc_listen)
        .env("BLOG_CLUSTER_SECRET", crate::harness::SECRET)
        .env("NO_COLOR", "1")
        .output()
        .expect("blog runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "blog migrate status: {text}");
    assert!(
        text.contains("m20261126_000001_create_tags_posts"),
        "{text}"
    );
    // The serving app still answers.
    let ready = reqwest::get(format!("{}/readyz", cluster.url(1)))
        .await
        .unwrap();
    assert!(ready.status().is_success());
}
