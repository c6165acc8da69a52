//! Write procedures at real distances: the same write from the replica, at added round-trip times
//! of 0, 20 and 80 ms between replica and primary (Toxiproxy latency on every link between them,
//! half each way: the forwarding RPC, LiteFS replication, and the HTTP link of the replay case).
//!
//! - A post with 5 tags (about fifteen statements): as an interactive remote transaction, as a
//!   write procedure, and as the same HTTP request replayed on the primary through the latency
//!   link (what LiteFS's own proxy does), each against the same operation run on the primary.
//! - A single-row insert forwarded from the replica, with and without the catch-up wait.
//!
//! Cases run interleaved, one sample each per round, so the machine's noise falls on all alike;
//! every value is a median. Run alone with `scripts/bench procedures`.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionSession, TransactionTrait};
use sea_orm_litefs::{Builder, ClusterConnection, Pos};
use serde_json::json;

use super::harness::{self, ADMIN_PASSWORD, Cluster};
use super::toxiproxy::{self, Link, Toxic};
use super::{Row, http, latency_row, percentile, print_table};
use blog::blog::input::{PostDraft, PostInput};
use blog::blog::posts;

/// Added round-trip times, in ms.
const RTTS: [u64; 3] = [0, 20, 80];
/// Samples per case and round-trip time, after one warm-up round.
const SAMPLES: usize = 15;
/// Where the replica's HTTP link to the primary listens (Toxiproxy), and its proxy's name.
const HTTP_LINK_PORT: u16 = 18080;
const HTTP_LINK: &str = "http-2";

/// The cases, in the order of a round.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Case {
    PostOnPrimary,
    PostProcedure,
    PostProcedureNoCatchUp,
    PostInteractive,
    HttpOnPrimary,
    HttpReplay,
    /// The replay, then until the replica has the write (what LiteFS's proxy makes the next
    /// request wait for): the same promise as a procedure with its catch-up.
    HttpReplayCaughtUp,
    InsertOnPrimary,
    InsertForwarded,
    InsertNoCatchUp,
}

const CASES: [Case; 10] = [
    Case::PostOnPrimary,
    Case::PostProcedure,
    Case::PostProcedureNoCatchUp,
    Case::PostInteractive,
    Case::HttpOnPrimary,
    Case::HttpReplay,
    Case::HttpReplayCaughtUp,
    Case::InsertOnPrimary,
    Case::InsertForwarded,
    Case::InsertNoCatchUp,
];

struct Nodes {
    primary: ClusterConnection,
    /// Through the replica's RPC link, waiting for its commits to replicate here.
    replica: ClusterConnection,
    no_catch_up: ClusterConnection,
    client: reqwest::Client,
    /// The primary's HTTP, direct and through the latency link.
    primary_url: String,
    replay_url: String,
    /// The primary's LiteFS position file.
    primary_pos: std::path::PathBuf,
}

fn draft(slug: &str) -> serde_json::Value {
    json!({
        "title": format!("Procedure benchmark {slug}"),
        "slug": slug,
        "body": "A post with **five** tags.",
        "tags": (0..5).map(|t| format!("bench-tag-{t}")).collect::<Vec<_>>(),
        "published": true,
    })
}

fn input(slug: &str) -> PostInput {
    let draft: PostDraft = serde_json::from_value(draft(slug)).expect("a valid draft");
    PostInput::parse(&draft).expect("a valid post")
}

impl Nodes {
    /// Runs `case` once with the unique name `n`; its time.
    async fn once(&self, case: Case, n: &str) -> Duration {
        let started = Instant::now();
        match case {
            Case::PostOnPrimary => drop(posts::create(&self.primary, &input(n)).await.unwrap()),
            Case::PostProcedure => drop(posts::create(&self.replica, &input(n)).await.unwrap()),
            Case::PostProcedureNoCatchUp => {
                drop(posts::create(&self.no_catch_up, &input(n)).await.unwrap())
            }
            Case::PostInteractive => {
                let txn = self.replica.begin().await.unwrap();
                posts::create_in(&txn, &input(n)).await.unwrap();
                txn.commit().await.unwrap();
            }
            Case::HttpOnPrimary | Case::HttpReplay | Case::HttpReplayCaughtUp => {
                let base = match case {
                    Case::HttpOnPrimary => &self.primary_url,
                    _ => &self.replay_url,
                };
                let response = self
                    .client
                    .post(format!("{base}/api/posts"))
                    .basic_auth("admin", Some(ADMIN_PASSWORD))
                    .json(&draft(n))
                    .send()
                    .await
                    .expect("the primary answers");
                assert_eq!(response.status(), 201, "POST /api/posts");
                if case == Case::HttpReplayCaughtUp {
                    // The primary's own `-pos`, which LiteFS updates before COMMIT returns.
                    let text = std::fs::read_to_string(&self.primary_pos).expect("-pos");
                    let pos = Pos::parse(&text).expect("a LiteFS position");
                    let caught_up = self.replica.wait_for(pos, Duration::from_secs(5)).await;
                    caught_up.expect("the replica catches up");
                }
            }
            Case::InsertOnPrimary => insert(&self.primary, n).await,
            Case::InsertForwarded => insert(&self.replica, n).await,
            Case::InsertNoCatchUp => insert(&self.no_catch_up, n).await,
        }
        started.elapsed()
    }
}

async fn insert(db: &ClusterConnection, n: &str) {
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "INSERT INTO bench_procedures(v) VALUES (?)",
        [n.into()],
    ))
    .await
    .expect("the insert commits");
}

/// Toxiproxy's API, for the HTTP link (the harness makes the RPC and replication links).
async fn toxiproxy(method: reqwest::Method, path: &str, body: serde_json::Value) {
    let response = reqwest::Client::new()
        .request(
            method.clone(),
            format!("http://{}{path}", crate::toxiproxy::api()),
        )
        .json(&body)
        .send()
        .await
        .expect("Toxiproxy answers");
    assert!(
        response.status().is_success(),
        "Toxiproxy {method} {path}: {}",
        response.status()
    );
}

/// Sets the added round-trip time of every link between node 2 and the primary.
async fn set_rtt(cluster: &Cluster, rtt_ms: u64) {
    let links = cluster.links.as_ref().expect("a cluster with links");
    for link in [Link::Rpc, Link::Replication] {
        links.heal(2, link).await;
        if rtt_ms > 0 {
            let toxic = Toxic::Latency {
                ms: rtt_ms / 2,
                jitter_ms: 0,
            };
            links.inject(2, link, toxic).await;
        }
    }
    let path = format!("/proxies/{HTTP_LINK}/toxics");
    for stream in ["upstream", "downstream"] {
        let name = format!("latency-{stream}");
        let _ = reqwest::Client::new()
            .delete(format!("http://{}{path}/{name}", crate::toxiproxy::api()))
            .send()
            .await;
        if rtt_ms > 0 {
            let body = json!({ "name": name, "type": "latency", "stream": stream,
                "toxicity": 1.0, "attributes": { "latency": rtt_ms / 2, "jitter": 0 } });
            toxiproxy(reqwest::Method::POST, &path, body).await;
        }
    }
}

/// Starts a 2-node cluster with latency links, measures, prints the table.
pub async fn run() -> Cluster {
    eprintln!("bench: write procedures: a 2-node LiteFS cluster with Toxiproxy links");
    let cluster = Cluster::start_with_links(2).await;
    let start = |builder: Builder| async move {
        let builder = builder.procedures(blog::blog::procedures::registry());
        builder.start().await.expect("joins the cluster")
    };
    let primary = start(cluster.options(1)).await;
    let replica_builder = cluster.options(2).primary_rpc(toxiproxy::rpc_listen(2));
    let no_catch_up = start(replica_builder.clone().catch_up(false)).await;
    let replica = start(replica_builder).await;
    assert_eq!(primary.role().as_str(), "primary");
    assert_eq!(replica.role().as_str(), "replica");
    primary
        .execute_unprepared("CREATE TABLE bench_procedures(id INTEGER PRIMARY KEY, v TEXT)")
        .await
        .expect("the scratch table");
    let primary_url = cluster.url(1);
    let upstream = primary_url.trim_start_matches("http://").to_owned();
    let listen = format!("{}:{HTTP_LINK_PORT}", harness::ip(2));
    let body =
        json!({ "name": HTTP_LINK, "listen": listen, "upstream": upstream, "enabled": true });
    toxiproxy(reqwest::Method::POST, "/proxies", body).await;
    let nodes = Nodes {
        primary,
        replica,
        no_catch_up,
        client: http(),
        replay_url: format!("http://{listen}"),
        primary_pos: cluster.node(1).mnt().join("blog.db-pos"),
        primary_url,
    };

    let mut rows = Vec::new();
    for rtt in RTTS {
        set_rtt(&cluster, rtt).await;
        eprintln!("bench: added round trip {rtt} ms, {SAMPLES} samples per case");
        let mut samples = vec![Vec::new(); CASES.len()];
        for round in 0..=SAMPLES {
            for (c, case) in CASES.into_iter().enumerate() {
                let elapsed = nodes.once(case, &format!("p{rtt}-{round}-{c}")).await;
                if round > 0 {
                    samples[c].push(elapsed);
                }
            }
        }
        let median = |case: Case| {
            let c = CASES.iter().position(|x| *x == case).unwrap();
            percentile(&samples[c], 0.5)
        };
        rows.extend(rows_for(rtt, median));
    }
    println!("\nWrite procedures at added round-trip times (medians of {SAMPLES}):");
    print_table(&rows);
    cluster
}

/// The table's rows for one round-trip time, with the targets at 80 ms.
fn rows_for(rtt_ms: u64, median: impl Fn(Case) -> Duration) -> Vec<Row> {
    let rtt = Duration::from_millis(rtt_ms);
    let at_80 = rtt_ms == 80;
    let procedure = median(Case::PostProcedure);
    let on_primary = median(Case::PostOnPrimary);
    let interactive = median(Case::PostInteractive);
    let replay = median(Case::HttpReplay);
    let case = |what: &str| format!("{rtt_ms:>2} ms: {what}");
    let mut rows = vec![
        latency_row(
            &case("post+5 tags, procedure vs RTT + primary"),
            procedure,
            rtt + on_primary,
            at_80.then_some(1.2),
        ),
        latency_row(
            &case("post+5 tags, procedure vs on primary"),
            procedure,
            on_primary,
            None,
        ),
        latency_row(
            &case("post+5 tags, interactive vs on primary"),
            interactive,
            on_primary,
            None,
        ),
        latency_row(
            &case("post+5 tags, procedure vs interactive"),
            procedure,
            interactive,
            at_80.then_some(0.2),
        ),
        latency_row(
            &case("POST /api/posts, replay vs on primary"),
            replay,
            median(Case::HttpOnPrimary),
            None,
        ),
        latency_row(
            &case("post+5 tags, procedure vs HTTP replay"),
            procedure,
            replay,
            at_80.then_some(1.0),
        ),
        // The replay's answer does not wait for the write to reach the replica: this is the same
        // promise.
        latency_row(
            &case("... procedure vs HTTP replay + catch-up"),
            procedure,
            median(Case::HttpReplayCaughtUp),
            None,
        ),
        latency_row(
            &case("... procedure, no catch-up vs HTTP replay"),
            median(Case::PostProcedureNoCatchUp),
            replay,
            None,
        ),
    ];
    let insert_on_primary = median(Case::InsertOnPrimary);
    rows.push(latency_row(
        &case("1-row insert, forwarded vs on primary"),
        median(Case::InsertForwarded),
        insert_on_primary,
        None,
    ));
    rows.push(latency_row(
        &case("1-row insert, no catch-up vs on primary"),
        median(Case::InsertNoCatchUp),
        insert_on_primary,
        None,
    ));
    rows
}
