//! Write procedures at real distances: the same write from the replica, at added round-trip times
//! of 0, 20 and 80 ms between replica and primary (Toxiproxy latency on every link between them,
//! half each way: the forwarding RPC, LiteFS replication, and the HTTP links of the replay cases).
//!
//! - A post with 5 tags (about fifteen statements): as an interactive remote transaction and as a
//!   write procedure (both from this process, waiting until the replica has the write), each
//!   against the same operation run on the primary.
//! - The same post as `POST /api/posts` from a client: to the replica's app (which runs the
//!   procedure), and to LiteFS's own proxy on the replica, which answers a write with
//!   `fly-replay` naming the primary; the bench then replays it, as Fly.io's edge would, to
//!   LiteFS's proxy on the primary through the latency link, which passes it to the primary's
//!   app. The blog answers once the replica has the write (its catch-up); the proxy's answer does
//!   not wait for that (its TXID cookie makes the client's next read there wait instead), so it is
//!   also measured with that wait, the blog's promise.
//! - Both, then `GET` of the new post on the replica, each with its own read-your-writes: the
//!   blog's position cookie, LiteFS's `__txid` cookie (its proxy on the replica waits until the
//!   replica has that transaction). This is what a user who writes and then reads waits.
//! - A single-row insert forwarded from the replica, with and without the catch-up wait.
//!
//! Cases run interleaved, one sample each per round, so the machine's noise falls on all alike;
//! each round starts one case further on, so that every case follows every other as often (a
//! write that has not yet reached the replica can slow the case after it). Every value is a
//! median. Run alone with `scripts/bench procedures`.

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
/// Samples per case and round-trip time, after one warm-up round, unless
/// `BLOG_BENCH_PROCEDURE_SAMPLES` says otherwise (more samples, steadier medians).
const SAMPLES: usize = 30;

fn samples() -> usize {
    std::env::var("BLOG_BENCH_PROCEDURE_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(SAMPLES)
}
/// Where the replica's HTTP links to the primary listen (Toxiproxy), and their proxies' names:
/// to the primary's app, and to LiteFS's proxy in front of it.
const HTTP_LINK_PORT: u16 = 18080;
const HTTP_LINK: &str = "http-2";
const PROXY_LINK_PORT: u16 = 18081;
const PROXY_LINK: &str = "litefs-proxy-2";

/// The cases, in the order of a round.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Case {
    PostOnPrimary,
    PostProcedure,
    PostProcedureNoCatchUp,
    PostInteractive,
    HttpOnPrimary,
    /// `POST /api/posts` to the replica's app, from a client that keeps cookies (it sends back
    /// the position cookie of its last write, as a browser does).
    HttpOnReplica,
    /// `fly-replay` from LiteFS's proxy on the replica, then the request through the latency
    /// link to LiteFS's proxy on the primary.
    LiteFsProxy,
    /// The same, then until the replica has the write: the blog's promise.
    LiteFsProxyCaughtUp,
    /// `HttpOnReplica`, then `GET` of the new post from the replica's app with the new cookie:
    /// what a user who writes and then looks at what they wrote waits, end to end.
    HttpOnReplicaThenRead,
    /// `LiteFsProxy`, then `GET` of the new post through LiteFS's proxy on the replica with the
    /// `__txid` cookie the primary's proxy set, which makes it wait until the replica has the
    /// write (LiteFS's own read-your-writes).
    LiteFsProxyThenRead,
    /// Straight to the primary's app through the latency link, no proxy on either side.
    HttpReplay,
    InsertOnPrimary,
    InsertForwarded,
    InsertNoCatchUp,
}

const CASES: [Case; 14] = [
    Case::PostOnPrimary,
    Case::PostProcedure,
    Case::PostProcedureNoCatchUp,
    Case::PostInteractive,
    Case::HttpOnPrimary,
    Case::HttpOnReplica,
    Case::LiteFsProxy,
    Case::LiteFsProxyCaughtUp,
    Case::HttpOnReplicaThenRead,
    Case::LiteFsProxyThenRead,
    Case::HttpReplay,
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
    /// The primary's HTTP, direct and through the latency link; the replica's app.
    primary_url: String,
    replay_url: String,
    replica_url: String,
    /// The position cookie the replica's app gave the client that keeps cookies.
    kept_cookie: std::sync::Mutex<Option<String>>,
    /// LiteFS's proxy on the replica, and on the primary through the latency link.
    replica_proxy: String,
    primary_proxy_via_link: String,
    /// The primary's LiteFS position file.
    primary_pos: std::path::PathBuf,
    /// The post's body.
    body: String,
}

fn draft(slug: &str, body: &str) -> serde_json::Value {
    json!({
        "title": format!("Procedure benchmark {slug}"),
        "slug": slug,
        "body": body,
        "tags": (0..5).map(|t| format!("bench-tag-{t}")).collect::<Vec<_>>(),
        "published": true,
    })
}

fn input(slug: &str, body: &str) -> PostInput {
    let draft: PostDraft = serde_json::from_value(draft(slug, body)).expect("a valid draft");
    PostInput::parse(&draft).expect("a valid post")
}

impl Nodes {
    /// Runs `case` once with the unique name `n`; its time.
    async fn once(&self, case: Case, n: &str) -> Duration {
        let started = Instant::now();
        match case {
            Case::PostOnPrimary => drop(
                posts::create(&self.primary, &input(n, &self.body))
                    .await
                    .unwrap(),
            ),
            Case::PostProcedure => drop(
                posts::create(&self.replica, &input(n, &self.body))
                    .await
                    .unwrap(),
            ),
            Case::PostProcedureNoCatchUp => drop(
                posts::create(&self.no_catch_up, &input(n, &self.body))
                    .await
                    .unwrap(),
            ),
            Case::PostInteractive => {
                let txn = self.replica.begin().await.unwrap();
                posts::create_in(&txn, &input(n, &self.body)).await.unwrap();
                txn.commit().await.unwrap();
            }
            Case::HttpOnPrimary => drop(self.post(&self.primary_url, n, None).await),
            Case::HttpOnReplica => drop(self.post_on_replica(n).await),
            Case::HttpOnReplicaThenRead => {
                let cookie = self.post_on_replica(n).await;
                self.read(&self.replica_url, n, &cookie).await;
            }
            Case::HttpReplay => drop(self.post(&self.replay_url, n, None).await),
            Case::LiteFsProxy | Case::LiteFsProxyCaughtUp | Case::LiteFsProxyThenRead => {
                let redirect = self.send(&self.replica_proxy, n, None).await;
                let replay = redirect.headers().get("fly-replay");
                let replay = replay.and_then(|v| v.to_str().ok()).unwrap_or_default();
                assert!(replay.starts_with("instance="), "fly-replay: {replay:?}");
                let response = self.post(&self.primary_proxy_via_link, n, None).await;
                if case == Case::LiteFsProxyThenRead {
                    let cookie = set_cookie(&response, "__txid=");
                    self.read(&self.replica_proxy, n, &cookie).await;
                }
                if case == Case::LiteFsProxyCaughtUp {
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

impl Nodes {
    async fn send(&self, base: &str, n: &str, cookie: Option<&str>) -> reqwest::Response {
        let request = self
            .client
            .post(format!("{base}/api/posts"))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .json(&draft(n, &self.body));
        let request = match cookie {
            Some(cookie) => request.header(reqwest::header::COOKIE, cookie),
            None => request,
        };
        request.send().await.expect("an answer")
    }

    /// `POST /api/posts` to the replica's app from the client that keeps cookies; the position
    /// cookie it answers with, kept for the next write.
    async fn post_on_replica(&self, n: &str) -> String {
        let kept = self.kept_cookie.lock().unwrap().clone();
        let response = self.post(&self.replica_url, n, kept.as_deref()).await;
        let cookie = set_cookie(&response, "blog_txid=");
        *self.kept_cookie.lock().unwrap() = Some(cookie.clone());
        cookie
    }

    /// `GET /api/posts/{n}` from `base` with `cookie`, which must find the post just written.
    async fn read(&self, base: &str, n: &str, cookie: &str) {
        let response = self.client.get(format!("{base}/api/posts/{n}"));
        let response = response
            .header(reqwest::header::COOKIE, cookie)
            .send()
            .await;
        let response = response.expect("an answer");
        assert_eq!(response.status(), 200, "GET {base}/api/posts/{n}");
        let post: serde_json::Value = response.json().await.expect("a post");
        assert_eq!(post["slug"], n, "GET {base}/api/posts/{n}");
    }

    /// `POST /api/posts` to `base`, which must create the post.
    async fn post(&self, base: &str, n: &str, cookie: Option<&str>) -> reqwest::Response {
        let response = self.send(base, n, cookie).await;
        assert_eq!(response.status(), 201, "POST {base}/api/posts");
        response
    }
}

/// The `name=value` of the cookie `response` sets whose text starts with `prefix`.
fn set_cookie(response: &reqwest::Response, prefix: &str) -> String {
    let cookies = response.headers().get_all(reqwest::header::SET_COOKIE);
    let mut values = cookies.iter().filter_map(|v| v.to_str().ok());
    let cookie = values.find(|v| v.starts_with(prefix));
    let cookie = cookie.and_then(|v| v.split(';').next());
    cookie
        .unwrap_or_else(|| panic!("no {prefix} cookie set"))
        .to_owned()
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
    for link in [HTTP_LINK, PROXY_LINK] {
        let path = format!("/proxies/{link}/toxics");
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
}

/// Starts a 2-node cluster with latency links, measures, prints the table.
pub async fn run() -> Cluster {
    eprintln!("bench: write procedures: a 2-node LiteFS cluster with Toxiproxy links");
    let cluster = Cluster::start_with_links_and_litefs_proxy(2).await;
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
    let proxy_listen = format!("{}:{PROXY_LINK_PORT}", harness::ip(2));
    let proxy_upstream = cluster.node(1).litefs_proxy().replace("http://", "");
    let body = json!({ "name": PROXY_LINK, "listen": proxy_listen,
        "upstream": proxy_upstream, "enabled": true });
    toxiproxy(reqwest::Method::POST, "/proxies", body).await;
    let mut nodes = Nodes {
        primary,
        replica,
        no_catch_up,
        client: http(),
        replay_url: format!("http://{listen}"),
        replica_url: cluster.url(2),
        kept_cookie: std::sync::Mutex::new(None),
        replica_proxy: cluster.node(2).litefs_proxy(),
        primary_proxy_via_link: format!("http://{proxy_listen}"),
        primary_pos: cluster.node(1).mnt().join("blog.db-pos"),
        primary_url,
        body: SMALL_BODY.to_owned(),
    };

    let rounds = samples();
    let settings = settings();
    // Packet mode: Toxiproxy adds nothing; the kernel holds the links' packets instead.
    let packets = match settings.iter().any(|s| s.packets) {
        true => Some(packet_delay()),
        false => None,
    };
    let mut rows = Vec::new();
    for setting in &settings {
        let rtt = Duration::from_millis(setting.rtt_ms);
        match &packets {
            Some(delay) => {
                set_rtt(&cluster, 0).await;
                delay.set(rtt / 2);
            }
            None => set_rtt(&cluster, setting.rtt_ms).await,
        }
        nodes.body = setting.body.clone();
        eprintln!("bench: {}, {rounds} samples per case", setting.label);
        let mut samples = vec![Vec::new(); CASES.len()];
        for round in 0..=rounds {
            for k in 0..CASES.len() {
                let c = (k + round) % CASES.len();
                let case = CASES[c];
                tokio::time::sleep(setting.idle).await;
                let elapsed = nodes
                    .once(case, &format!("p{}-{round}-{c}", rows.len()))
                    .await;
                if round > 0 {
                    samples[c].push(elapsed);
                }
            }
        }
        let median = |case: Case| {
            let c = CASES.iter().position(|x| *x == case).unwrap();
            percentile(&samples[c], 0.5)
        };
        rows.extend(rows_for(setting, median));
    }
    println!("\nWrite procedures at added round-trip times (medians of {rounds}):");
    print_table(&rows);
    cluster
}

/// One part of the measurement: how far apart replica and primary are, and how.
struct Setting {
    label: String,
    rtt_ms: u64,
    /// Delayed by the kernel, packet by packet ([`test_support::packets`]), not by Toxiproxy.
    packets: bool,
    body: String,
    /// Quiet time before each sample.
    idle: Duration,
    /// Whether the targets apply (80 ms, the post of the issue).
    targets: bool,
}

/// The post's body, but for the large-post rows of packet mode.
const SMALL_BODY: &str = "A post with **five** tags.";

/// What to measure: the round-trip times through Toxiproxy; with `BLOG_BENCH_PACKETS=1`, 80 ms
/// delayed packet by packet instead, with the post of the issue and with a 100 KB body, each
/// write after `BLOG_BENCH_IDLE_MS` (1500 by default) of quiet, as on a blog, where writes are
/// seconds apart: after an idle time Linux starts each connection's congestion window small
/// again, which only a real round trip makes cost anything.
fn settings() -> Vec<Setting> {
    if std::env::var_os("BLOG_BENCH_PACKETS").is_none_or(|v| v.is_empty() || v == "0") {
        return RTTS
            .iter()
            .map(|&rtt_ms| Setting {
                label: format!("{rtt_ms:>2} ms"),
                rtt_ms,
                packets: false,
                body: SMALL_BODY.to_owned(),
                idle: Duration::ZERO,
                targets: rtt_ms == 80,
            })
            .collect();
    }
    let idle = std::env::var("BLOG_BENCH_IDLE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_millis(1500), Duration::from_millis);
    vec![
        Setting {
            label: "80 ms, packets".into(),
            rtt_ms: 80,
            packets: true,
            body: SMALL_BODY.to_owned(),
            idle,
            targets: true,
        },
        Setting {
            label: "80 ms, packets, 100 KB body".into(),
            rtt_ms: 80,
            packets: true,
            body: large_body(100 * 1024),
            idle,
            targets: false,
        },
    ]
}

/// About `bytes` of words that compress about as well as prose does not (numbers from a fixed
/// xorshift sequence): LiteFS compresses its transactions, so a body of repeated text would
/// cross the link in a few packets whatever its length.
fn large_body(bytes: usize) -> String {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut body = String::with_capacity(bytes + 8);
    while body.len() < bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        body.push_str(&(x % 100_000).to_string());
        body.push(' ');
    }
    body
}

/// Every packet of the links between node 2 and the primary (the RPC, LiteFS replication, and the
/// HTTP links), held by the kernel.
fn packet_delay() -> test_support::packets::PacketDelay {
    let ip = harness::ip(2);
    let net = format!("{}.0/24", ip.rsplit_once('.').expect("an IPv4 address").0);
    let ports = [
        toxiproxy::RPC_PROXY_PORT,
        toxiproxy::REPLICATION_PROXY_PORT,
        HTTP_LINK_PORT,
        PROXY_LINK_PORT,
    ];
    eprintln!("bench: packets to and from {net} ports {ports:?} are delayed by the kernel");
    test_support::packets::PacketDelay::start(7, &net, &ports, Duration::ZERO)
        .unwrap_or_else(|e| panic!("packet mode (BLOG_BENCH_PACKETS) needs root and iptables: {e}"))
}

/// The table's rows for one round-trip time, with the targets at 80 ms.
fn rows_for(setting: &Setting, median: impl Fn(Case) -> Duration) -> Vec<Row> {
    let rtt = Duration::from_millis(setting.rtt_ms);
    let at_80 = setting.targets;
    let procedure = median(Case::PostProcedure);
    let on_primary = median(Case::PostOnPrimary);
    let interactive = median(Case::PostInteractive);
    let litefs_proxy = median(Case::LiteFsProxy);
    let case = |what: &str| format!("{}: {what}", setting.label);
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
            &case("POST /api/posts, LiteFS proxy vs on primary"),
            litefs_proxy,
            median(Case::HttpOnPrimary),
            None,
        ),
        // The target. The blog's answer waits until the replica has the write, the proxy's not.
        latency_row(
            &case("POST /api/posts, replica app vs LiteFS proxy"),
            median(Case::HttpOnReplica),
            litefs_proxy,
            at_80.then_some(1.0),
        ),
        // The same promise: the proxy's answer, then until the replica has the write.
        latency_row(
            &case("... replica app vs proxy + catch-up"),
            median(Case::HttpOnReplica),
            median(Case::LiteFsProxyCaughtUp),
            None,
        ),
        // The same promise, end to end: write, then read the write back on the replica, each
        // with its own read-your-writes (the blog's catch-up; LiteFS's `__txid` cookie).
        latency_row(
            &case("POST, then GET it: replica app vs LiteFS proxy"),
            median(Case::HttpOnReplicaThenRead),
            median(Case::LiteFsProxyThenRead),
            None,
        ),
        // What LiteFS's two proxy hops add to a replay straight to the primary's app.
        latency_row(
            &case("... LiteFS proxy vs replay to the app"),
            litefs_proxy,
            median(Case::HttpReplay),
            None,
        ),
        latency_row(
            &case("... procedure, no catch-up vs with"),
            median(Case::PostProcedureNoCatchUp),
            procedure,
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
