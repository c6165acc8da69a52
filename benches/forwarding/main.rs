//! What write forwarding costs, on a real two-node LiteFS cluster (node 1 primary, node 2 replica).
//!
//! Run with `scripts/bench`. Every number is a ratio against a baseline measured in the same run,
//! cases interleaved in rounds so that the machine's noise falls on all of them alike. Nothing here
//! asserts on timings: the table says which targets were met, and the exit status is 0 whatever
//! the numbers. Group commit's cases (on against off, and a long run of 64 writers on 3 nodes,
//! `BLOG_BENCH_SOAK_SECS` seconds, 60 by default) are in `group_commit.rs`. The one assertion is about the Option 1 baseline itself: its local attempt on the
//! replica must really fail, or that baseline would not be what it claims to be.

mod group_commit;
mod procedures;
mod render;
mod search;

use test_support::{cluster as harness, toxiproxy};

use std::time::{Duration, Instant};

use harness::{ADMIN_PASSWORD, Cluster};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionSession, TransactionTrait};
use sea_orm_litefs::ClusterConnection;

/// Single-row inserts: warm-up per case, then `ROUNDS` rounds of `PER_ROUND` samples per case.
const WARMUP: usize = 30;
const ROUNDS: usize = 10;
const PER_ROUND: usize = 30;
/// 5-statement transactions: rounds of samples per case.
const TX_ROUNDS: usize = 5;
const TX_PER_ROUND: usize = 20;
const TX_INSERTS: usize = 5;
/// Concurrent writers and readers.
const CONCURRENCY: usize = 16;
/// Rows per throughput run; two runs per case, alternated.
const THROUGHPUT_ROWS: usize = 1000;
/// Home page GETs per run; `READ_ROUNDS` runs per node, alternated.
const READS: usize = 750;
const READ_ROUNDS: usize = 4;
const POSTS: usize = 10;

/// A SeaORM connection on node `k` in this process, with or without the catch-up wait.
async fn connect(cluster: &Cluster, k: usize, catch_up: bool) -> ClusterConnection {
    cluster
        .options(k)
        .catch_up(catch_up)
        .start()
        .await
        .expect("joins the cluster")
}

fn insert(tag: &str, i: usize) -> Statement {
    Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "INSERT INTO bench(v) VALUES (?)",
        [format!("{tag}-{i}").into()],
    )
}

/// Waits until node 2 has every commit node 1 has, so each block starts from a quiet cluster.
async fn settle(cluster: &Cluster) {
    let target = cluster.node(1).txid();
    harness::wait_until("node 2 catching up with node 1", || async {
        (cluster.node(2).txid() >= target).then_some(())
    })
    .await;
}

/// The process-wide recorder: in-process connections record their forward and catch-up times here.
fn recorder() -> PrometheusHandle {
    let recorder = PrometheusBuilder::new()
        .set_bucket_duration(Duration::from_secs(3600))
        .expect("a valid bucket duration")
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder");
    handle
}

/// `_sum` and `_count` of a summary in a Prometheus text rendering.
fn summary(text: &str, name: &str) -> (f64, f64) {
    let value = |suffix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}{suffix} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    (value("_sum"), value("_count"))
}

/// What the in-process recorder saw during one block: forwarded calls and catch-up waits (the
/// in-process connections keep the crate's default metric prefix, `litefs`).
#[derive(Default, Clone, Copy)]
struct Seen {
    forward_sum: f64,
    forward_count: f64,
    catchup_sum: f64,
    catchup_count: f64,
}

impl Seen {
    fn now(handle: &PrometheusHandle) -> Seen {
        let text = handle.render();
        let (forward_sum, forward_count) = summary(&text, "litefs_forward_duration_seconds");
        let (catchup_sum, catchup_count) = summary(&text, "litefs_catchup_duration_seconds");
        Seen {
            forward_sum,
            forward_count,
            catchup_sum,
            catchup_count,
        }
    }
    fn add_since(&mut self, before: Seen, after: Seen) {
        self.forward_sum += after.forward_sum - before.forward_sum;
        self.forward_count += after.forward_count - before.forward_count;
        self.catchup_sum += after.catchup_sum - before.catchup_sum;
        self.catchup_count += after.catchup_count - before.catchup_count;
    }
}

fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One line of the table.
struct Row {
    case: String,
    value: String,
    baseline: String,
    ratio: f64,
    /// `(text, met)`, or `None` for an informative line.
    target: Option<(String, bool)>,
}

fn latency_row(case: &str, value: Duration, baseline: Duration, max: Option<f64>) -> Row {
    let ratio = value.as_secs_f64() / baseline.as_secs_f64();
    Row {
        case: case.into(),
        value: format!("{:.3} ms", ms(value)),
        baseline: format!("{:.3} ms", ms(baseline)),
        ratio,
        target: max.map(|m| (format!("<= {m:.2}x"), ratio <= m)),
    }
}

fn rate_row(case: &str, unit: &str, value: f64, baseline: f64, min: Option<f64>) -> Row {
    let ratio = value / baseline;
    Row {
        case: case.into(),
        value: format!("{value:.0} {unit}"),
        baseline: format!("{baseline:.0} {unit}"),
        ratio,
        target: min.map(|m| (format!(">= {m:.2}x"), ratio >= m)),
    }
}

fn print_table(rows: &[Row]) {
    let header = ["case", "value", "baseline", "ratio", "target", "result"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let (target, result) = match &r.target {
                Some((t, met)) => (t.clone(), if *met { "met" } else { "missed" }.to_owned()),
                None => ("-".to_owned(), "info".to_owned()),
            };
            [
                r.case.clone(),
                r.value.clone(),
                r.baseline.clone(),
                format!("{:.2}x", r.ratio),
                target,
                result,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cols: [&str; 6]| {
        let mut out = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i == 0 {
                out.push_str(&format!("{c:<w$}"));
            } else {
                out.push_str(&format!(" | {c:>w$}"));
            }
        }
        println!("{out}");
    };
    line(header);
    println!(
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-")
    );
    for row in &cells {
        line(row.each_ref().map(String::as_str));
    }
}

/// The single-row insert cases, measured in interleaved rounds.
#[derive(Clone, Copy, PartialEq)]
enum Case {
    Local,
    Forwarded,
    NoCatchUp,
    OptionOne,
}

const CASES: [Case; 4] = [
    Case::Local,
    Case::Forwarded,
    Case::NoCatchUp,
    Case::OptionOne,
];

struct Conns {
    local: ClusterConnection,
    forwarded: ClusterConnection,
    no_catch_up: ClusterConnection,
    /// A plain SQLite connection on node 2's own database file, for Option 1's local attempt.
    replica_file: sqlx::SqliteConnection,
    /// The first local attempt's error was checked.
    option_one_checked: bool,
}

impl Conns {
    async fn insert_once(&mut self, case: Case, i: usize) {
        match case {
            Case::Local => {
                self.local
                    .execute_raw(insert("local", i))
                    .await
                    .expect("local insert");
            }
            Case::Forwarded => {
                self.forwarded
                    .execute_raw(insert("fwd", i))
                    .await
                    .expect("forwarded insert");
            }
            Case::NoCatchUp => {
                self.no_catch_up
                    .execute_raw(insert("nocatchup", i))
                    .await
                    .expect("forwarded insert without catch-up");
            }
            Case::OptionOne => {
                // The original middleware: forward, then also run the write on the replica.
                let value = format!("opt1-{i}");
                self.forwarded
                    .execute_raw(Statement::from_sql_and_values(
                        DbBackend::Sqlite,
                        "INSERT INTO bench(v) VALUES (?)",
                        [value.clone().into()],
                    ))
                    .await
                    .expect("forwarded insert");
                let local = sqlx::query("INSERT INTO bench(v) VALUES (?)")
                    .bind(&value)
                    .execute(&mut self.replica_file)
                    .await;
                match local {
                    Ok(_) => panic!(
                        "the local insert on the replica succeeded: LiteFS should refuse it, \
                         so the Option 1 baseline is not what it claims to be"
                    ),
                    Err(e) if !self.option_one_checked => {
                        assert!(
                            e.to_string().contains("disk I/O error"),
                            "the local attempt on the replica failed, but not as LiteFS refuses: {e}"
                        );
                        self.option_one_checked = true;
                    }
                    Err(_) => {}
                }
            }
        }
    }
}

async fn transaction_once(db: &ClusterConnection, tag: &str, i: usize) {
    let txn = db.begin().await.expect("begin");
    for j in 0..TX_INSERTS {
        txn.execute_raw(insert(tag, i * TX_INSERTS + j))
            .await
            .expect("insert in a transaction");
    }
    txn.commit().await.expect("commit");
}

/// `CONCURRENCY` writers share `rows` single-row inserts; returns the elapsed time.
async fn write_concurrently(
    db: &ClusterConnection,
    tag: &'static str,
    first: usize,
    rows: usize,
) -> Duration {
    let started = Instant::now();
    let writers: Vec<_> = (0..CONCURRENCY)
        .map(|w| {
            let db = db.clone();
            tokio::spawn(async move {
                for i in (first + w..first + rows).step_by(CONCURRENCY) {
                    db.execute_raw(insert(tag, i))
                        .await
                        .expect("concurrent insert");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("a writer");
    }
    started.elapsed()
}

/// `CONCURRENCY` clients share `count` GETs of `url`; returns the elapsed time.
async fn read_concurrently(url: &str, count: usize) -> Duration {
    let clients: Vec<reqwest::Client> = (0..CONCURRENCY).map(|_| http()).collect();
    let started = Instant::now();
    let readers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(c, client)| {
            let url = url.to_owned();
            tokio::spawn(async move {
                for _ in (c..count).step_by(CONCURRENCY) {
                    let response = client.get(&url).send().await.expect("the app answers");
                    assert_eq!(response.status(), 200, "GET {url}");
                    response.bytes().await.expect("the page");
                }
            })
        })
        .collect();
    for reader in readers {
        reader.await.expect("a reader");
    }
    started.elapsed()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The processes of the run, by label: this one (the in-process connections) and every node's
/// LiteFS and app, found by their node directory on the command line.
fn processes(cluster: &Cluster) -> Vec<(String, u32)> {
    let mut found = vec![("bench (in-process conns)".to_owned(), std::process::id())];
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort();
    for node in &cluster.nodes {
        let dir = node.dir.to_string_lossy().into_owned();
        for &pid in &pids {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if !args.iter().any(|a| a.starts_with(&dir)) {
                continue;
            }
            let what = if args[0].ends_with("litefs") {
                "litefs"
            } else if args.iter().any(|a| a == "serve") {
                "app"
            } else {
                continue;
            };
            found.push((format!("node{} {what}", node.k), pid));
        }
    }
    found
}

/// User + system CPU time of a process so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // Numbered as in proc(5): the state, right after the command name, is field 3.
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(14) + field(15)
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Runs `work` and adds the CPU ticks each process spent meanwhile to `cpu`; returns its time.
async fn with_cpu(
    procs: &[(String, u32)],
    cpu: &mut [u64],
    work: impl std::future::Future<Output = Duration>,
) -> Duration {
    let before: Vec<u64> = procs.iter().map(|(_, pid)| cpu_ticks(*pid)).collect();
    let elapsed = work.await;
    for (i, (_, pid)) in procs.iter().enumerate() {
        cpu[i] += cpu_ticks(*pid).saturating_sub(before[i]);
    }
    elapsed
}

/// Waits (at most 5 s) until no descriptor of this process points into a LiteFS mount, so the
/// harness can unmount cleanly: sqlx closes SQLite connections on its own threads.
fn wait_for_mount_files_closed(cluster: &Cluster) {
    let mounts: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| n.mnt().to_string_lossy().into_owned())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let open = std::fs::read_dir("/proc/self/fd")
            .map(|d| {
                d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                    .any(|t| {
                        let t = t.to_string_lossy();
                        mounts.iter().any(|m| t.starts_with(m.as_str()))
                    })
            })
            .unwrap_or(false);
        if !open {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// LiteFS's LTX files under a node's data directory, with their sizes: one per commit.
fn ltx_files(node: &harness::Node) -> std::collections::HashMap<std::path::PathBuf, u64> {
    let mut found = std::collections::HashMap::new();
    let mut dirs = vec![node.dir.join("data")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.metadata() {
                Ok(m) if m.is_dir() => dirs.push(path),
                Ok(m) if path.extension().is_some_and(|e| e == "ltx") => {
                    found.insert(path, m.len());
                }
                _ => {}
            }
        }
    }
    found
}

/// LTX files (count, bytes) that appeared on node 1 since `before`.
fn new_ltx(
    node: &harness::Node,
    before: &std::collections::HashMap<std::path::PathBuf, u64>,
) -> (u64, u64) {
    ltx_files(node)
        .into_iter()
        .filter(|(path, _)| !before.contains_key(path))
        .fold((0, 0), |(n, bytes), (_, len)| (n + 1, bytes + len))
}

/// Latency of reading a node's `<db>-pos` through its FUSE mount (what `wait_for_txid` and the
/// primary's executor do on every forwarded write).
fn pos_read_latency(node: &harness::Node, reads: usize) -> Vec<Duration> {
    (0..reads)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(node.txid());
            started.elapsed()
        })
        .collect()
}

fn mean_ms(sum: f64, count: f64) -> f64 {
    if count > 0.0 { sum / count * 1e3 } else { 0.0 }
}

async fn run() -> Cluster {
    let handle = recorder();
    eprintln!("bench: starting a 2-node LiteFS cluster");
    let cluster = Cluster::start(2).await;
    let local = connect(&cluster, 1, true).await;
    let forwarded = connect(&cluster, 2, true).await;
    let no_catch_up = connect(&cluster, 2, false).await;
    assert_eq!(local.role().as_str(), "primary");
    assert_eq!(forwarded.role().as_str(), "replica");
    assert_eq!(no_catch_up.role().as_str(), "replica");

    local
        .execute_unprepared("CREATE TABLE bench(id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .await
        .expect("the scratch table");
    settle(&cluster).await;
    let replica_file = {
        use sqlx::ConnectOptions;
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(cluster.node(2).db_path())
            .connect()
            .await
            .expect("node 2's database opens")
    };
    let mut conns = Conns {
        local,
        forwarded,
        no_catch_up,
        replica_file,
        option_one_checked: false,
    };

    // 1. Single-row insert latency, the cases interleaved in rounds.
    eprintln!(
        "bench: single-row inserts ({WARMUP} warm-up + {} samples per case)",
        ROUNDS * PER_ROUND
    );
    let mut i = 0;
    for case in CASES {
        settle(&cluster).await;
        for _ in 0..WARMUP {
            conns.insert_once(case, i).await;
            i += 1;
        }
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); CASES.len()];
    let mut seen = [Seen::default(); CASES.len()];
    for _ in 0..ROUNDS {
        for (c, case) in CASES.into_iter().enumerate() {
            settle(&cluster).await;
            let before = Seen::now(&handle);
            for _ in 0..PER_ROUND {
                let started = Instant::now();
                conns.insert_once(case, i).await;
                samples[c].push(started.elapsed());
                i += 1;
            }
            seen[c].add_since(before, Seen::now(&handle));
        }
    }
    assert!(conns.option_one_checked);
    let latency_quantiles: Vec<String> = handle
        .render()
        .lines()
        .filter(|l| {
            l.starts_with("litefs_catchup_duration_seconds{")
                || l.starts_with("litefs_forward_duration_seconds{")
        })
        .map(str::to_owned)
        .collect();
    let p = |case: Case, q: f64| {
        let c = CASES.iter().position(|x| *x == case).unwrap();
        percentile(&samples[c], q)
    };

    // 2. A 5-statement transaction.
    eprintln!(
        "bench: {TX_INSERTS}-insert transactions ({} per case)",
        TX_ROUNDS * TX_PER_ROUND
    );
    let (mut tx_local, mut tx_forwarded) = (Vec::new(), Vec::new());
    for w in 0..5 {
        transaction_once(&conns.local, "txwarm-local", w).await;
        transaction_once(&conns.forwarded, "txwarm-fwd", w).await;
    }
    let mut t = 0;
    for _ in 0..TX_ROUNDS {
        settle(&cluster).await;
        for _ in 0..TX_PER_ROUND {
            let started = Instant::now();
            transaction_once(&conns.local, "tx-local", t).await;
            tx_local.push(started.elapsed());
            t += 1;
        }
        settle(&cluster).await;
        for _ in 0..TX_PER_ROUND {
            let started = Instant::now();
            transaction_once(&conns.forwarded, "tx-fwd", t).await;
            tx_forwarded.push(started.elapsed());
            t += 1;
        }
    }

    // 3. Throughput with concurrent writers, and the CPU each process spends meanwhile.
    eprintln!(
        "bench: {CONCURRENCY} concurrent writers, {} rows per case",
        2 * THROUGHPUT_ROWS
    );
    let procs = processes(&cluster);
    let tp_cases: [(&str, &ClusterConnection, &'static str); 3] = [
        ("local", &conns.local, "tp-local"),
        ("forwarded", &conns.forwarded, "tp-fwd"),
        ("forwarded, no catch-up", &conns.no_catch_up, "tp-nocatchup"),
    ];
    let mut tp_time = [Duration::ZERO; 3];
    let mut tp_cpu = vec![vec![0u64; procs.len()]; 3];
    let mut tp_seen = [Seen::default(); 3];
    let mut tp_ltx = [(0u64, 0u64); 3];
    for round in 0..2 {
        for (c, &(_, db, tag)) in tp_cases.iter().enumerate() {
            settle(&cluster).await;
            let ltx_before = ltx_files(cluster.node(1));
            let before = Seen::now(&handle);
            tp_time[c] += with_cpu(
                &procs,
                &mut tp_cpu[c],
                write_concurrently(db, tag, round * THROUGHPUT_ROWS, THROUGHPUT_ROWS),
            )
            .await;
            tp_seen[c].add_since(before, Seen::now(&handle));
            let (files, bytes) = new_ltx(cluster.node(1), &ltx_before);
            tp_ltx[c] = (tp_ltx[c].0 + files, tp_ltx[c].1 + bytes);
        }
    }
    settle(&cluster).await;
    let pos_node2 = pos_read_latency(cluster.node(2), 300);
    let pos_node1 = pos_read_latency(cluster.node(1), 300);
    let tp_rows = (2 * THROUGHPUT_ROWS) as f64;
    let tp_rate = tp_time.map(|t| tp_rows / t.as_secs_f64());

    // 4. Group commit on against off, same cluster.
    let group_rows = group_commit::run(&cluster, &handle).await;

    // 5. Page reads: the home page with a few posts, on the replica and on the primary.
    eprintln!(
        "bench: {POSTS} posts, then {CONCURRENCY} readers of /, {} GETs per node",
        READ_ROUNDS * READS
    );
    let client = http();
    for n in 0..POSTS {
        let response = client
            .post(format!("{}/api/posts", cluster.url(1)))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .json(&serde_json::json!({
                "title": format!("Benchmark post {n}"),
                "body": format!("Post number **{n}**, with *some* Markdown.\n\n- one\n- two\n\n`code`"),
                "tags": ["bench", format!("tag-{}", n % 3)],
                "published": true,
            }))
            .send()
            .await
            .expect("the primary answers");
        assert_eq!(response.status(), 201, "POST /api/posts");
    }
    settle(&cluster).await;
    for (k, role) in [(1, "primary"), (2, "replica")] {
        let response = client
            .get(format!("{}/", cluster.url(k)))
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["x-blog-role"], role, "node {k}");
        let page = response.text().await.unwrap();
        assert!(
            page.contains("Benchmark post"),
            "node {k}'s home page lists the posts"
        );
        read_concurrently(&format!("{}/", cluster.url(k)), 200).await; // warm-up
    }
    let (mut primary_time, mut replica_time) = (Duration::ZERO, Duration::ZERO);
    let mut read_cpu = vec![vec![0u64; procs.len()]; 2];
    for _ in 0..READ_ROUNDS {
        let url = format!("{}/", cluster.url(1));
        primary_time += with_cpu(&procs, &mut read_cpu[0], read_concurrently(&url, READS)).await;
        let url = format!("{}/", cluster.url(2));
        replica_time += with_cpu(&procs, &mut read_cpu[1], read_concurrently(&url, READS)).await;
    }
    let reads = (READ_ROUNDS * READS) as f64;
    let (primary_rate, replica_rate) = (
        reads / primary_time.as_secs_f64(),
        reads / replica_time.as_secs_f64(),
    );

    // The table.
    let local50 = p(Case::Local, 0.5);
    let local99 = p(Case::Local, 0.99);
    let rows = vec![
        latency_row(
            "insert p50: forwarded, no catch-up / local",
            p(Case::NoCatchUp, 0.5),
            local50,
            Some(1.5),
        ),
        latency_row(
            "insert p50: forwarded, catch-up / local",
            p(Case::Forwarded, 0.5),
            local50,
            Some(2.5),
        ),
        latency_row(
            "insert p99: forwarded, no catch-up / local",
            p(Case::NoCatchUp, 0.99),
            local99,
            None,
        ),
        latency_row(
            "insert p99: forwarded, catch-up / local",
            p(Case::Forwarded, 0.99),
            local99,
            None,
        ),
        latency_row(
            "insert p50: Option 1 (forward + local attempt) / local",
            p(Case::OptionOne, 0.5),
            local50,
            None,
        ),
        latency_row(
            "insert p99: Option 1 (forward + local attempt) / local",
            p(Case::OptionOne, 0.99),
            local99,
            None,
        ),
        latency_row(
            "insert p50: forwarded, catch-up / Option 1",
            p(Case::Forwarded, 0.5),
            p(Case::OptionOne, 0.5),
            None,
        ),
        latency_row(
            "5-insert transaction p50: replica / primary",
            percentile(&tx_forwarded, 0.5),
            percentile(&tx_local, 0.5),
            None,
        ),
        rate_row(
            &format!("{CONCURRENCY} writers: forwarded / local"),
            "rows/s",
            tp_rate[1],
            tp_rate[0],
            Some(0.7),
        ),
        rate_row(
            &format!("{CONCURRENCY} writers: forwarded, no catch-up / local"),
            "rows/s",
            tp_rate[2],
            tp_rate[0],
            None,
        ),
        rate_row(
            &format!("GET / x{CONCURRENCY}: replica / primary"),
            "req/s",
            replica_rate,
            primary_rate,
            Some(0.95),
        ),
    ];
    let rows: Vec<Row> = rows.into_iter().chain(group_rows).collect();
    println!();
    println!(
        "write forwarding on LiteFS: 2 nodes, {} single-row samples per case, {} transactions per case",
        ROUNDS * PER_ROUND,
        TX_ROUNDS * TX_PER_ROUND
    );
    println!();
    print_table(&rows);

    println!();
    println!("single-row cases, as the in-process recorder saw them:");
    for (c, case) in CASES.into_iter().enumerate().skip(1) {
        let name = match case {
            Case::Forwarded => "forwarded, catch-up",
            Case::NoCatchUp => "forwarded, no catch-up",
            _ => "Option 1",
        };
        let s = seen[c];
        println!(
            "  {name:<23} forward call mean {:.3} ms ({:.0} calls); catch-up waited on {:.0} of {} writes, mean wait {:.3} ms",
            mean_ms(s.forward_sum, s.forward_count),
            s.forward_count,
            s.catchup_count,
            samples[c].len(),
            mean_ms(s.catchup_sum, s.catchup_count),
        );
    }
    println!("  quantiles over the single-row section (warm-ups included, all forwarded cases):");
    for line in &latency_quantiles {
        println!("    {line}");
    }

    println!();
    let ticks = clock_ticks_per_second();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    println!(
        "{CONCURRENCY} concurrent writers, CPU ms per 1000 rows ({tp_rows:.0} rows per case, {cores:.0} cores):"
    );
    let per_1000 = |t: u64| t as f64 / ticks * 1e3 / tp_rows * 1000.0;
    let mut header = format!("  {:<26}", "process");
    for (name, _, _) in &tp_cases {
        header.push_str(&format!(" | {name:>22}"));
    }
    println!("{header}");
    for (i, (label, _)) in procs.iter().enumerate() {
        let mut line = format!("  {label:<26}");
        for cpu in &tp_cpu {
            line.push_str(&format!(" | {:>22.1}", per_1000(cpu[i])));
        }
        println!("{line}");
    }
    let mut total = format!("  {:<26}", "total CPU");
    let mut wall = format!("  {:<26}", "wall");
    let mut busy = format!("  {:<26}", "CPU busy (of all cores)");
    for (c, cpu) in tp_cpu.iter().enumerate() {
        let sum: u64 = cpu.iter().sum();
        total.push_str(&format!(" | {:>22.1}", per_1000(sum)));
        wall.push_str(&format!(
            " | {:>22.1}",
            tp_time[c].as_secs_f64() * 1e3 / tp_rows * 1000.0
        ));
        let share = sum as f64 / ticks / tp_time[c].as_secs_f64() / cores;
        busy.push_str(&format!(" | {:>21.0}%", share * 100.0));
    }
    let mut ltx_count = format!("  {:<26}", "node1 LTX files (commits)");
    let mut ltx_size = format!("  {:<26}", "node1 bytes per LTX file");
    for (files, bytes) in tp_ltx {
        ltx_count.push_str(&format!(" | {files:>22}"));
        ltx_size.push_str(&format!(" | {:>22.0}", bytes as f64 / files.max(1) as f64));
    }
    println!("{total}\n{wall}\n{busy}\n{ltx_count}\n{ltx_size}");
    for (c, (name, _, _)) in tp_cases.iter().enumerate().skip(1) {
        let s = tp_seen[c];
        println!(
            "  {name}: forward call mean {:.3} ms; catch-up waited on {:.0} of {tp_rows:.0} writes, mean wait {:.3} ms",
            mean_ms(s.forward_sum, s.forward_count),
            s.catchup_count,
            mean_ms(s.catchup_sum, s.catchup_count),
        );
    }
    println!(
        "  reading <db>-pos through FUSE, idle: node 2 p50 {:.3} ms p99 {:.3} ms; node 1 p50 {:.3} ms p99 {:.3} ms",
        ms(percentile(&pos_node2, 0.5)),
        ms(percentile(&pos_node2, 0.99)),
        ms(percentile(&pos_node1, 0.5)),
        ms(percentile(&pos_node1, 0.99)),
    );

    println!();
    println!("GET / with {CONCURRENCY} readers, CPU ms per 1000 requests ({reads:.0} per node):");
    println!(
        "  {:<26} | {:>10} | {:>10}",
        "process", "primary", "replica"
    );
    let per_1000_reads = |t: u64| t as f64 / ticks * 1e3 / reads * 1000.0;
    for (i, (label, _)) in procs.iter().enumerate() {
        println!(
            "  {label:<26} | {:>10.1} | {:>10.1}",
            per_1000_reads(read_cpu[0][i]),
            per_1000_reads(read_cpu[1][i])
        );
    }
    println!(
        "  {:<26} | {:>10.1} | {:>10.1}",
        "wall",
        primary_time.as_secs_f64() * 1e3 / reads * 1000.0,
        replica_time.as_secs_f64() * 1e3 / reads * 1000.0
    );
    cluster
}

fn main() {
    // `scripts/bench procedures`: the write procedures' section alone; `scripts/bench render`:
    // the render cache's; `scripts/bench search`: the most expensive searches'.
    let only = |section: &str| std::env::args().any(|a| a == section);
    if only("render") {
        runtime().block_on(render::run());
        return;
    }
    if only("search") {
        runtime().block_on(search::run());
        return;
    }
    let only_procedures = only("procedures");
    if !only_procedures {
        measure(run());
    }
    measure(procedures::run());
    if !only_procedures {
        measure(group_commit::soak());
        runtime().block_on(render::run());
        runtime().block_on(search::run());
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs one section on its own runtime and cluster.
fn measure(section: impl Future<Output = Cluster>) {
    let runtime = runtime();
    let cluster = runtime.block_on(section);
    // The runtime's tasks (RPC servers, followers) hold the in-process pools: end them and let
    // sqlx close its files in the mounts before the harness unmounts them.
    drop(runtime);
    wait_for_mount_files_closed(&cluster);
    drop(cluster);
}
