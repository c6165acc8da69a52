//! Group commit: the primary's one writer with group commit on, against the same writer with it
//! off (each write its own transaction: the design before group commit), measured in the same run.
//!
//! Each design is a pair of in-process connections: node 1 (the primary, whose writer runs the
//! writes) and node 2, which forwards to node 1's in-process RPC rather than the app's, so that
//! every write of a design goes through that design's writer. The targets are issue 13's.

use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusHandle;
use sea_orm::{ConnectionTrait, DbErr};
use sea_orm_litefs::{ClusterConnection, ClusterError};

use super::harness::Cluster;
use super::{
    CONCURRENCY, PER_ROUND, ROUNDS, Row, THROUGHPUT_ROWS, WARMUP, clock_ticks_per_second, insert,
    latency_row, percentile, processes, rate_row, settle, summary, with_cpu,
};

/// Writers of the long run, spread over its three nodes.
const SOAK_WRITERS: usize = 64;
/// The long run's length unless `BLOG_BENCH_SOAK_SECS` says otherwise.
const SOAK_SECS: u64 = 60;

/// One design: the primary's connection and a replica's, forwarding to it.
struct Design {
    primary: ClusterConnection,
    replica: ClusterConnection,
}

/// Joins node `k` in this process; `primary_rpc` replaces the template that finds the primary.
async fn join(
    cluster: &Cluster,
    k: usize,
    group_commit: bool,
    primary_rpc: Option<String>,
) -> (ClusterConnection, String) {
    let mut options = cluster.options(k).group_commit(group_commit);
    if let Some(rpc) = primary_rpc {
        options = options.primary_rpc(rpc);
    }
    let db = options.start().await.expect("joins the cluster");
    let rpc = db.rpc_addr().expect("a cluster node serves RPC");
    (db, rpc.to_string())
}

async fn design(cluster: &Cluster, group_commit: bool) -> Design {
    let (primary, rpc) = join(cluster, 1, group_commit, None).await;
    assert_eq!(primary.role().as_str(), "primary");
    let (replica, _) = join(cluster, 2, group_commit, Some(rpc)).await;
    assert_eq!(replica.role().as_str(), "replica");
    Design { primary, replica }
}

/// What a run of concurrent writers came to.
#[derive(Default)]
struct Tally {
    rows: usize,
    latencies: Vec<Duration>,
    /// Refused or unsettled at a deadline: busy, not committed, outcome unknown, no catch-up.
    deadline: usize,
    /// SQLite's busy error reached a caller.
    locked: usize,
    other: usize,
    first_other: Option<String>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.rows += other.rows;
        self.latencies.extend(other.latencies);
        self.deadline += other.deadline;
        self.locked += other.locked;
        self.other += other.other;
        if self.first_other.is_none() {
            self.first_other = other.first_other;
        }
    }

    fn failed(&mut self, err: &DbErr) {
        let text = err.to_string();
        if text.contains("database is locked") {
            self.locked += 1;
            return;
        }
        match ClusterError::find(err) {
            Some(
                ClusterError::Busy { .. }
                | ClusterError::NotCommitted { .. }
                | ClusterError::OutcomeUnknown { .. }
                | ClusterError::CatchUpTimeout { .. },
            ) => self.deadline += 1,
            _ => {
                self.other += 1;
                self.first_other.get_or_insert(text);
            }
        }
    }
}

/// When concurrent writers stop.
#[derive(Clone, Copy)]
enum Stop {
    /// After this many rows in all (writer `w` writes rows `w`, `w + writers`, ...).
    Rows(usize),
    /// When this much time has passed.
    After(Duration),
}

/// `writers` concurrent writers, writer `w` on `dbs[w % dbs.len()]`; returns the tally and the
/// elapsed time. Errors are counted, not fatal: the targets say how many of which are allowed.
async fn hammer(
    dbs: &[ClusterConnection],
    writers: usize,
    tag: &'static str,
    first: usize,
    stop: Stop,
) -> (Tally, Duration) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let db = dbs[w % dbs.len()].clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut i = first + w;
                loop {
                    match stop {
                        Stop::Rows(rows) if i >= first + rows => break,
                        Stop::After(time) if started.elapsed() >= time => break,
                        _ => {}
                    }
                    let begun = Instant::now();
                    match db.execute_raw(insert(tag, i)).await {
                        Ok(_) => tally.rows += 1,
                        Err(err) => tally.failed(&err),
                    }
                    tally.latencies.push(begun.elapsed());
                    i += writers;
                }
                tally
            })
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        tally.add(task.await.expect("a writer"));
    }
    (tally, started.elapsed())
}

/// Mean batch size the in-process writers recorded between two renderings.
fn mean_batch(before: &str, after: &str) -> f64 {
    let (sum0, count0) = summary(before, "litefs_writer_batch_size");
    let (sum1, count1) = summary(after, "litefs_writer_batch_size");
    if count1 > count0 {
        (sum1 - sum0) / (count1 - count0)
    } else {
        0.0
    }
}

fn errors(tally: &Tally) -> String {
    let mut text = format!(
        "{} deadline, {} locked, {} other",
        tally.deadline, tally.locked, tally.other
    );
    if let Some(first) = &tally.first_other {
        text.push_str(&format!(" (first: {first})"));
    }
    text
}

/// Group commit on the 2-node cluster of the main run: its table rows, and its report printed.
pub async fn run(cluster: &Cluster, handle: &PrometheusHandle) -> Vec<Row> {
    let off = design(cluster, false).await;
    let on = design(cluster, true).await;

    // One writer at a time: the latency a lone write pays for group commit.
    eprintln!(
        "bench: group commit, one writer ({WARMUP} warm-up + {} samples per design)",
        ROUNDS * PER_ROUND
    );
    let mut i = 0;
    for db in [&off.primary, &on.primary] {
        for _ in 0..WARMUP {
            db.execute_raw(insert("gc-warm", i)).await.expect("insert");
            i += 1;
        }
    }
    let mut lone: [Vec<Duration>; 2] = Default::default();
    for _ in 0..ROUNDS {
        for (d, db) in [&off.primary, &on.primary].into_iter().enumerate() {
            settle(cluster).await;
            for _ in 0..PER_ROUND {
                let started = Instant::now();
                db.execute_raw(insert("gc-lone", i)).await.expect("insert");
                lone[d].push(started.elapsed());
                i += 1;
            }
        }
    }

    // Concurrent writers, local and forwarded, each design; CPU per process meanwhile.
    eprintln!(
        "bench: group commit, {CONCURRENCY} concurrent writers, {} rows per case",
        2 * THROUGHPUT_ROWS
    );
    let procs = processes(cluster);
    let cases: [(&str, &ClusterConnection, &'static str); 4] = [
        ("local, off", &off.primary, "gc-local-off"),
        ("local, group commit", &on.primary, "gc-local-on"),
        ("forwarded, off", &off.replica, "gc-fwd-off"),
        ("forwarded, group commit", &on.replica, "gc-fwd-on"),
    ];
    let mut tallies: Vec<Tally> = (0..cases.len()).map(|_| Tally::default()).collect();
    let mut time = [Duration::ZERO; 4];
    let mut cpu = vec![vec![0u64; procs.len()]; cases.len()];
    let mut batch = [0.0; 4];
    for round in 0..2 {
        for (c, &(_, db, tag)) in cases.iter().enumerate() {
            settle(cluster).await;
            let before = handle.render();
            let mut tally = Tally::default();
            time[c] += with_cpu(&procs, &mut cpu[c], async {
                let dbs = [db.clone()];
                let stop = Stop::Rows(THROUGHPUT_ROWS);
                let (t, elapsed) =
                    hammer(&dbs, CONCURRENCY, tag, round * THROUGHPUT_ROWS, stop).await;
                tally = t;
                elapsed
            })
            .await;
            batch[c] += mean_batch(&before, &handle.render()) / 2.0;
            tallies[c].add(tally);
        }
    }
    let rate: Vec<f64> = (0..cases.len())
        .map(|c| tallies[c].rows as f64 / time[c].as_secs_f64())
        .collect();
    let p99 = |c: usize| percentile(&tallies[c].latencies, 0.99);

    println!();
    println!(
        "group commit: {CONCURRENCY} concurrent writers, {} rows per case; CPU ms per 1000 rows",
        2 * THROUGHPUT_ROWS
    );
    let ticks = clock_ticks_per_second();
    let per_1000 = |c: usize, t: u64| t as f64 / ticks * 1e3 / tallies[c].rows.max(1) as f64 * 1e3;
    let mut header = format!("  {:<26}", "");
    for (name, _, _) in &cases {
        header.push_str(&format!(" | {name:>23}"));
    }
    println!("{header}");
    let line = |label: &str, cell: &dyn Fn(usize) -> String| {
        let mut text = format!("  {label:<26}");
        for c in 0..cases.len() {
            text.push_str(&format!(" | {:>23}", cell(c)));
        }
        println!("{text}");
    };
    for (p, (label, _)) in procs.iter().enumerate() {
        line(label, &|c| format!("{:.1}", per_1000(c, cpu[c][p])));
    }
    let litefs = |c: usize| -> u64 {
        procs
            .iter()
            .zip(&cpu[c])
            .filter(|((label, _), _)| label.ends_with("litefs"))
            .map(|(_, t)| t)
            .sum()
    };
    line("LiteFS CPU (all nodes)", &|c| {
        format!("{:.1}", per_1000(c, litefs(c)))
    });
    line("app CPU (in-process conns)", &|c| {
        format!("{:.1}", per_1000(c, cpu[c][0]))
    });
    line("rows/s", &|c| format!("{:.0}", rate[c]));
    line("p50 ms", &|c| {
        format!(
            "{:.2}",
            percentile(&tallies[c].latencies, 0.5).as_secs_f64() * 1e3
        )
    });
    line("p99 ms", &|c| format!("{:.2}", p99(c).as_secs_f64() * 1e3));
    line("mean batch size", &|c| format!("{:.1}", batch[c]));
    line("errors", &|c| {
        let t = &tallies[c];
        format!("{}/{}/{}", t.deadline, t.locked, t.other)
    });
    println!("  errors: deadline / database is locked / other");
    for (c, (name, _, _)) in cases.iter().enumerate() {
        if tallies[c].first_other.is_some() {
            println!("  {name}: {}", errors(&tallies[c]));
        }
    }

    vec![
        rate_row(
            &format!("{CONCURRENCY} writers: forwarded, group commit / local, off"),
            "rows/s",
            rate[3],
            rate[0],
            Some(3.0),
        ),
        rate_row(
            &format!("{CONCURRENCY} writers: local, group commit / local, off"),
            "rows/s",
            rate[1],
            rate[0],
            Some(4.0),
        ),
        rate_row(
            &format!("{CONCURRENCY} writers: forwarded, group commit / forwarded, off"),
            "rows/s",
            rate[3],
            rate[2],
            None,
        ),
        latency_row(
            "insert p50, one writer: group commit / off",
            percentile(&lone[1], 0.5),
            percentile(&lone[0], 0.5),
            Some(1.05),
        ),
        latency_row(
            &format!("insert p99, {CONCURRENCY} forwarded writers: group commit / off"),
            p99(3),
            p99(2),
            Some(0.5),
        ),
    ]
}

/// The long run: `SOAK_WRITERS` writers on 3 nodes with group commit, for `BLOG_BENCH_SOAK_SECS`
/// (default 60) seconds. Target: no deadline error and no "database is locked". Returns the
/// cluster, to be dropped once the runtime (holding the in-process pools) is gone.
pub async fn soak() -> Cluster {
    let seconds = std::env::var("BLOG_BENCH_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SOAK_SECS);
    eprintln!("bench: {SOAK_WRITERS} writers on a 3-node cluster for {seconds} s");
    let cluster = Cluster::start(3).await;
    let (primary, rpc) = join(&cluster, 1, true, None).await;
    primary
        .execute_unprepared("CREATE TABLE bench(id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .await
        .expect("the scratch table");
    let mut dbs = vec![primary];
    for k in [2, 3] {
        dbs.push(join(&cluster, k, true, Some(rpc.clone())).await.0);
    }
    let stop = Stop::After(Duration::from_secs(seconds));
    let (tally, elapsed) = hammer(&dbs, SOAK_WRITERS, "soak", 0, stop).await;
    let met = tally.deadline == 0 && tally.locked == 0;
    println!();
    println!(
        "group commit, {SOAK_WRITERS} writers on 3 nodes for {:.0} s: {} rows, {:.0} rows/s, \
         p50 {:.1} ms, p99 {:.1} ms; errors: {}; target 0 deadline and 0 locked: {}",
        elapsed.as_secs_f64(),
        tally.rows,
        tally.rows as f64 / elapsed.as_secs_f64(),
        percentile(&tally.latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&tally.latencies, 0.99).as_secs_f64() * 1e3,
        errors(&tally),
        if met { "met" } else { "missed" },
    );
    cluster
}
