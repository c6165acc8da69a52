//! The scenarios, and the lab that runs them one after another on one 3-node cluster.
//!
//! A scenario is a load phase with one fault in it, repeated in cycles while the load lasts:
//! steady load, the fault (injected, held, healed), steady load again. Then the load stops, the
//! links heal, the lab waits until every app is ready and every node has the primary's TXID, and
//! the checker reads every node's database.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::checker::{self, Report};
use super::history::{History, Kind, Outcome};
use super::workload::{self, Load};
use crate::harness::{Cluster, SECRET, wait_until};
use crate::toxiproxy::{Link, Toxic};
use sea_orm_litefs::ClusterConnection;

/// Which of a node's links a network fault acts on.
#[derive(Debug, Clone, Copy)]
pub enum Links {
    Rpc,
    Replication,
    Both,
}

impl Links {
    fn each(self) -> &'static [Link] {
        match self {
            Links::Rpc => &[Link::Rpc],
            Links::Replication => &[Link::Replication],
            Links::Both => &[Link::Rpc, Link::Replication],
        }
    }
}

/// The fault of a scenario.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// A toxic on every replica's links to the primary.
    Network(Links, Toxic),
    /// kill -9 of the primary's app, then a restart.
    KillPrimaryApp,
    /// kill -9 of the primary's LiteFS, then a restart.
    KillPrimaryLitefs,
    /// kill -9 of a process holding a transaction open from one replica, and of the other
    /// replica's app with requests in flight; the app is restarted.
    KillReplicaMidTransaction,
    /// SIGSTOP of the primary's app, SIGCONT after the hold.
    PausePrimaryApp,
    /// Every LiteFS restarted with the next node as primary (static lease), once the others have
    /// everything the old primary acknowledged.
    Failover,
}

pub struct Scenario {
    pub name: &'static str,
    pub fault: Fault,
    /// How long a held fault lasts.
    pub hold: Duration,
}

/// Every scenario of the lab, in the order they run (the failover last: it moves the primary).
pub fn all() -> Vec<Scenario> {
    let s3 = Duration::from_secs(3);
    let scenario = |name, fault| Scenario {
        name,
        fault,
        hold: s3,
    };
    vec![
        scenario(
            "latency",
            Fault::Network(
                Links::Both,
                Toxic::Latency {
                    ms: 50,
                    jitter_ms: 10,
                },
            ),
        ),
        scenario(
            "bandwidth",
            Fault::Network(Links::Both, Toxic::Bandwidth { kb_per_s: 64 }),
        ),
        scenario(
            "rpc-black-hole",
            Fault::Network(Links::Rpc, Toxic::BlackHole),
        ),
        scenario(
            "replication-partition",
            Fault::Network(Links::Replication, Toxic::Partition),
        ),
        scenario(
            "rpc-reset-peer",
            Fault::Network(Links::Rpc, Toxic::ResetPeer { after_ms: 200 }),
        ),
        scenario("kill-primary-app", Fault::KillPrimaryApp),
        scenario("kill-primary-litefs", Fault::KillPrimaryLitefs),
        scenario("kill-replica-mid-tx", Fault::KillReplicaMidTransaction),
        scenario("pause-primary-app", Fault::PausePrimaryApp),
        scenario("failover", Fault::Failover),
    ]
}

/// Steady load before each fault, and after the first write that succeeds after a heal.
const STEADY: Duration = Duration::from_secs(1);
const AFTER_HEAL: Duration = Duration::from_secs(1);
/// How long the load goes on after a heal waiting for a write to succeed; past it, the checker
/// counts the heal in `noheal`.
const RECOVERY_LIMIT: Duration = Duration::from_secs(30);

/// Keeps the load running until a write invoked after the last heal succeeds, or the limit.
async fn wait_for_recovery(history: &History) {
    let healed = history.last_heal().unwrap_or(0.0);
    let deadline = tokio::time::Instant::now() + RECOVERY_LIMIT;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while tokio::time::Instant::now() < deadline && !history.ok_write_since(healed) {
        tick.tick().await;
    }
}

/// A 3-node cluster with Toxiproxy links, and a SeaORM connection on every node.
pub struct Lab {
    pub cluster: Cluster,
    dbs: Vec<ClusterConnection>,
    /// Where each scenario's history (`<scenario>.jsonl`) and findings (`<scenario>.findings.txt`)
    /// are written.
    pub out: PathBuf,
    /// Apps found dead that the lab did not kill, in the scenario under way.
    crashes: Vec<String>,
}

impl Lab {
    pub async fn start(out: PathBuf) -> Lab {
        std::fs::create_dir_all(&out).unwrap();
        let cluster = Cluster::start_with_links(3).await;
        let mut dbs = Vec::new();
        for k in 1..=3 {
            dbs.push(workload::connect(&cluster, k).await);
        }
        Lab {
            cluster,
            dbs,
            out,
            crashes: Vec::new(),
        }
    }

    /// Runs `scenario` with load for at least `load` (one fault cycle at least), and checks it.
    pub async fn run(&mut self, scenario: &Scenario, load: Duration) -> Report {
        let primary = self.cluster.primary;
        workload::set_up(&self.dbs[primary - 1], scenario.name).await;
        self.wait_until_replicated().await;
        let load_state = Load {
            scenario: scenario.name.to_owned(),
            history: Arc::new(History::new()),
            stop: Arc::new(AtomicBool::new(false)),
            gate: Arc::default(),
        };
        let clients = workload::spawn_clients(&load_state, &self.cluster, &self.dbs);
        let history = load_state.history.clone();
        loop {
            tokio::time::sleep(STEADY).await;
            self.fault_cycle(scenario, &load_state).await;
            wait_for_recovery(&history).await;
            tokio::time::sleep(AFTER_HEAL).await;
            if history.now() >= load.as_secs_f64() {
                break;
            }
        }
        load_state.stop.store(true, Ordering::SeqCst);
        for client in clients {
            client.await.expect("a client panicked");
        }
        self.settle().await;
        let mut nodes = Vec::new();
        let primary = self.cluster.primary;
        for k in std::iter::once(primary).chain(self.cluster.replicas()) {
            nodes.push(workload::read_node(self.cluster.node(k), scenario.name).await);
        }
        std::fs::write(
            self.out.join(format!("{}.jsonl", scenario.name)),
            history.to_json_lines(),
        )
        .unwrap();
        let mut report = checker::check(scenario.name, &history.ops(), &history.events(), &nodes);
        report.crashed = self.crashes.len();
        report.findings.append(&mut self.crashes);
        let findings = self.out.join(format!("{}.findings.txt", scenario.name));
        std::fs::write(findings, report.findings.join("\n")).unwrap();
        report
    }

    /// Restarts every app that died on its own, and records each death as a crash.
    async fn revive_crashed_apps(&mut self) {
        for k in 1..=self.cluster.nodes.len() {
            if let Some(status) = self.cluster.app_exit(k) {
                self.record_crash(k, format!("died ({status})"));
                self.cluster.start_app(k).await;
            }
        }
    }

    /// Stops node `k`'s app with SIGTERM and waits for it, as `litefs mount` does before it
    /// unmounts; an exit other than success is a crash.
    fn stop_app_as_litefs_does(&mut self, k: usize) {
        if let Some(status) = self.cluster.terminate_app(k)
            && !status.success()
        {
            self.record_crash(k, format!("stopped with SIGTERM, exited with {status}"));
        }
    }

    /// Records a crash of node `k`'s app, keeping its log.
    fn record_crash(&mut self, k: usize, what: String) {
        let kept = self
            .out
            .join(format!("crash-{}-node{k}-app.log", self.crashes.len()));
        let _ = std::fs::copy(self.cluster.node(k).app_log(), &kept);
        self.crashes.push(format!(
            "node {k}'s app {what}: its log is {}",
            kept.display()
        ));
    }

    /// One fault: injected (recorded), held, healed (recorded once the heal is complete).
    async fn fault_cycle(&mut self, scenario: &Scenario, load: &Load) {
        let history = &load.history;
        let primary = self.cluster.primary;
        match scenario.fault {
            Fault::Network(links, toxic) => {
                let proxies = self.cluster.links.as_ref().unwrap();
                for k in self.cluster.replicas() {
                    for link in links.each() {
                        proxies.inject(k, *link, toxic).await;
                    }
                }
                history.event(false, format!("{toxic:?} on {links:?} of every replica"));
                tokio::time::sleep(scenario.hold).await;
                self.heal_links().await;
                history.event(true, format!("{links:?} healed"));
            }
            Fault::KillPrimaryApp => {
                self.cluster.kill_app(primary);
                history.event(false, format!("kill -9 node {primary}'s app"));
                self.cluster.start_app(primary).await;
                history.event(true, format!("node {primary}'s app restarted and ready"));
            }
            Fault::KillPrimaryLitefs => {
                self.cluster.kill_litefs(primary);
                history.event(false, format!("kill -9 node {primary}'s LiteFS"));
                self.cluster.start_litefs(primary).await;
                self.wait_until_ready().await;
                history.event(
                    true,
                    format!("node {primary}'s LiteFS restarted, apps ready"),
                );
            }
            Fault::KillReplicaMidTransaction => {
                let replicas = self.cluster.replicas();
                let (holder_node, killed) = (replicas[0], replicas[1]);
                let label = format!(
                    "lab-{}-n{holder_node}-held-{}",
                    scenario.name,
                    history.ops().len()
                );
                let pending = history.invoke("remote-transaction", holder_node);
                let (mut holder, said) = self.hold_transaction(holder_node, &label);
                self.cluster.kill_app(killed);
                let _ = holder.kill();
                let _ = holder.wait();
                history.event(
                    false,
                    format!(
                        "kill -9 of a transaction holder on node {holder_node} ({}) and of node {killed}'s app",
                        said.trim()
                    ),
                );
                // It never sent COMMIT: the write must never appear.
                pending.complete(Kind::Abandoned { label }, Outcome::Fail, false, said.trim());
                tokio::time::sleep(scenario.hold).await;
                self.cluster.start_app(killed).await;
                history.event(true, format!("node {killed}'s app restarted and ready"));
            }
            Fault::PausePrimaryApp => {
                self.cluster.pause_app(primary, true);
                history.event(false, format!("SIGSTOP node {primary}'s app"));
                tokio::time::sleep(scenario.hold).await;
                self.cluster.pause_app(primary, false);
                history.event(true, format!("SIGCONT node {primary}'s app"));
            }
            Fault::Failover => {
                let next = primary % self.cluster.nodes.len() + 1;
                // A static lease moves by restarting every node, and `litefs mount` stops its
                // `exec` command (the app: SIGTERM, then a wait for it to exit) before it
                // unmounts: an app that outlives its mount dies of SIGBUS at its next touch of
                // SQLite's `-shm` mapping (docs/testing.md). So each node restarts whole. This
                // process's writers are quiesced by the gate; the primary's app stops first, so
                // the new primary has every acknowledged write.
                let gate = load.gate.clone();
                let closed = gate.write().await;
                self.stop_app_as_litefs_does(primary);
                self.wait_until_replicated().await;
                for k in self.cluster.replicas() {
                    self.stop_app_as_litefs_does(k);
                }
                history.event(false, format!("restart with node {next} as primary"));
                self.cluster.restart_litefs_with_primary(next).await;
                for k in 1..=self.cluster.nodes.len() {
                    self.cluster.start_app(k).await;
                }
                drop(closed);
                self.wait_until_ready().await;
                history.event(true, format!("node {next} is primary, every app follows"));
            }
        }
    }

    /// Starts the example that opens a transaction on node `k`, inserts `label` and waits; returns
    /// it with the line it printed once its insert was done (or the error it stopped with, when
    /// the cluster could not take the insert).
    fn hold_transaction(&self, k: usize, label: &str) -> (std::process::Child, String) {
        let node = self.cluster.node(k);
        let mut holder = Command::new(crate::guarantees::remote_transaction_example())
            .arg(node.mnt())
            .arg(node.litefs_api())
            .arg(label)
            .env("BLOG_CLUSTER_SECRET", SECRET)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.is_empty() {
            let _ = std::io::Read::read_to_string(&mut holder.stderr.take().unwrap(), &mut line);
        }
        (holder, line)
    }

    async fn heal_links(&self) {
        let proxies = self.cluster.links.as_ref().unwrap();
        for k in 1..=self.cluster.nodes.len() {
            for link in [Link::Rpc, Link::Replication] {
                proxies.heal(k, link).await;
            }
        }
    }

    /// Every app answers `/readyz` with its node's role; an app that dies meanwhile is recorded
    /// as a crash and started again.
    async fn wait_until_ready(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tick.tick().await;
            self.revive_crashed_apps().await;
            if self.every_app_reports_its_role().await {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the apps did not all report their roles within 60 s"
            );
        }
    }

    async fn every_app_reports_its_role(&self) -> bool {
        for k in 1..=self.cluster.nodes.len() {
            let expected = if k == self.cluster.primary {
                "primary"
            } else {
                "replica"
            };
            let ready = reqwest::get(format!("{}/readyz", self.cluster.url(k)))
                .await
                .is_ok_and(|r| r.status().is_success() && r.headers()["x-blog-role"] == expected);
            if !ready {
                return false;
            }
        }
        true
    }

    /// Every node has the primary's TXID.
    async fn wait_until_replicated(&self) {
        let cluster = &self.cluster;
        wait_until("every node at the primary's TXID", || async {
            let target = cluster.node(cluster.primary).txid();
            cluster
                .nodes
                .iter()
                .all(|n| n.txid() == target)
                .then_some(())
        })
        .await;
    }

    /// After the load: links healed, every app ready, every node replicated.
    async fn settle(&mut self) {
        self.heal_links().await;
        self.revive_crashed_apps().await;
        self.wait_until_ready().await;
        self.wait_until_replicated().await;
    }
}
