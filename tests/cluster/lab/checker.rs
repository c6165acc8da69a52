//! The checker: a scenario's history against the final database of every node, as one row of the
//! lab's table. It is a pure function of both, so the negative control can feed it a history and
//! databases it made up.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::history::{Event, Kind, Op, Outcome};

/// What one node's database holds of a scenario, read after the cluster has settled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeState {
    pub node: usize,
    /// `PRAGMA integrity_check`: "ok" when sound.
    pub integrity: String,
    /// Rows of the scenario, by key, with how many times each is present.
    pub rows: Rows,
}

/// A scenario's rows on one node; two nodes that agree have equal `Rows`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    /// Post slug → rows.
    pub posts: BTreeMap<String, i64>,
    /// Tag label → rows (the abandoned transactions' tags).
    pub tags: BTreeMap<String, i64>,
    /// `lab_set` key → rows.
    pub keys: BTreeMap<String, i64>,
    /// `lab_counter` id → value.
    pub counters: BTreeMap<i64, i64>,
    /// `lab_account` id → balance.
    pub accounts: BTreeMap<i64, i64>,
    /// `lab_transfer` key → rows.
    pub transfers: BTreeMap<String, i64>,
    /// Each transfer key's `(from, to, amount)`, as logged.
    pub transfer_moves: BTreeMap<String, (i64, i64, i64)>,
}

/// The bank every scenario starts with: this many accounts of this balance each.
pub const ACCOUNTS: i64 = 5;
pub const OPENING_BALANCE: i64 = 100;
pub const COUNTERS: i64 = 3;

/// One row of the table. The columns after `unknown` must be 0 and `identical` true.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub scenario: String,
    pub ok: usize,
    pub failed: usize,
    pub unknown: usize,
    /// Acknowledged writes absent (for counters: acknowledged increments missing from the value).
    pub lost: usize,
    /// Writes present more than once (for counters: increments beyond ok + unknown).
    pub duplicated: usize,
    /// Writes reported failed, yet present.
    pub failed_present: usize,
    /// Writes of unknown outcome present more than once.
    pub unknown_duplicated: usize,
    /// Bank reads whose total was not the opening total, plus final balances that disagree with
    /// the total or with the transfer log.
    pub bank_bad: usize,
    /// Reads after one's own acknowledged write that missed it without `x-blog-stale`.
    pub stale_unflagged: usize,
    /// Heals after which no write succeeded.
    pub no_write_after_heal: usize,
    /// Apps that died on their own (not killed by the lab): each is a crash, e.g. a SIGBUS.
    pub crashed: usize,
    /// Longest time from a fault to a failed or unknown answer, ms.
    pub fault_to_error_ms: Option<u64>,
    /// Longest time from a heal to the next successful write, ms.
    pub heal_to_write_ms: Option<u64>,
    /// Every node passed `PRAGMA integrity_check` and holds the same rows.
    pub identical: bool,
    /// One line per violation, with the history line that shows it.
    pub findings: Vec<String>,
}

impl Report {
    /// Every must-be-0 column is 0 and the nodes agree.
    pub fn passed(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.failed_present == 0
            && self.unknown_duplicated == 0
            && self.bank_bad == 0
            && self.stale_unflagged == 0
            && self.no_write_after_heal == 0
            && self.crashed == 0
            && self.identical
    }
}

fn present(map: &BTreeMap<String, i64>, key: &str) -> i64 {
    map.get(key).copied().unwrap_or(0)
}

fn line(op: &Op) -> String {
    serde_json::to_string(op).unwrap()
}

/// Checks one write that is present `count` times.
fn check_presence(report: &mut Report, op: &Op, count: i64) {
    let finding = match (op.outcome, count) {
        (Outcome::Ok, 0) => {
            report.lost += 1;
            "lost (acknowledged, absent)"
        }
        (Outcome::Ok, 2..) => {
            report.duplicated += 1;
            "duplicated (acknowledged, present more than once)"
        }
        (Outcome::Fail, 1..) => {
            report.failed_present += 1;
            "reported failed, yet present"
        }
        (Outcome::Unknown, 2..) => {
            report.unknown_duplicated += 1;
            "unknown outcome, present more than once"
        }
        _ => return,
    };
    report
        .findings
        .push(format!("{finding} x{count}: {}", line(op)));
}

/// The checker. `nodes[0]` is the primary, whose rows are the truth the history is held to; the
/// others must equal it.
pub fn check(scenario: &str, ops: &[Op], events: &[Event], nodes: &[NodeState]) -> Report {
    let mut report = Report {
        scenario: scenario.to_owned(),
        ..Report::default()
    };
    let truth = &nodes[0].rows;
    let mut increments: BTreeMap<i64, [usize; 3]> = BTreeMap::new();
    for op in ops {
        match op.outcome {
            Outcome::Ok => report.ok += 1,
            Outcome::Fail => report.failed += 1,
            Outcome::Unknown => report.unknown += 1,
        }
        match &op.kind {
            Kind::InsertPost { slug } => {
                check_presence(&mut report, op, present(&truth.posts, slug))
            }
            Kind::Abandoned { label } => {
                check_presence(&mut report, op, present(&truth.tags, label))
            }
            Kind::InsertKey { key } => check_presence(&mut report, op, present(&truth.keys, key)),
            Kind::Transfer { key, .. } => {
                check_presence(&mut report, op, present(&truth.transfers, key))
            }
            Kind::Increment { counter } => {
                let slot = match op.outcome {
                    Outcome::Ok => 0,
                    Outcome::Fail => 1,
                    Outcome::Unknown => 2,
                };
                increments.entry(*counter).or_default()[slot] += 1;
            }
            Kind::ReadBank { total } => {
                if op.outcome == Outcome::Ok && *total != Some(ACCOUNTS * OPENING_BALANCE) {
                    report.bank_bad += 1;
                    report
                        .findings
                        .push(format!("bank total changed: {}", line(op)));
                }
            }
            Kind::ReadPost { slug, saw, .. } => {
                let written = ops.iter().any(|w| {
                    w.outcome == Outcome::Ok
                        && w.completed <= op.invoked
                        && matches!(&w.kind, Kind::InsertPost { slug: s } if s == slug)
                });
                if written && op.outcome == Outcome::Ok && !saw && !op.stale {
                    report.stale_unflagged += 1;
                    report.findings.push(format!(
                        "missed its own write, not flagged stale: {}",
                        line(op)
                    ));
                }
            }
        }
    }
    check_counters(&mut report, &increments, truth);
    check_bank(&mut report, truth);
    check_nodes(&mut report, nodes);
    check_times(&mut report, ops, events);
    report
}

/// A counter's value must lie between its acknowledged increments and those plus the unknown ones.
fn check_counters(report: &mut Report, increments: &BTreeMap<i64, [usize; 3]>, truth: &Rows) {
    for (counter, [ok, failed, unknown]) in increments {
        let value = truth.counters.get(counter).copied().unwrap_or(0) as usize;
        if value < *ok {
            report.lost += ok - value;
        } else if value > ok + unknown {
            report.duplicated += value - ok - unknown;
        } else {
            continue;
        }
        let why = if value > ok + failed + unknown {
            "some increment ran more than once"
        } else if value > ok + unknown {
            "increments reported failed were applied"
        } else {
            "acknowledged increments are missing"
        };
        report.findings.push(format!(
            "counter {counter} is {value} after {ok} ok, {failed} failed, {unknown} unknown increments: {why}"
        ));
    }
}

/// The final balances sum to the opening total and are the opening balances moved by the logged
/// transfers, each once.
fn check_bank(report: &mut Report, truth: &Rows) {
    if truth.accounts.is_empty() {
        return;
    }
    let total: i64 = truth.accounts.values().sum();
    if total != ACCOUNTS * OPENING_BALANCE {
        report.bank_bad += 1;
        report.findings.push(format!("final bank total is {total}"));
    }
    let mut expected: BTreeMap<i64, i64> = truth
        .accounts
        .keys()
        .map(|id| (*id, OPENING_BALANCE))
        .collect();
    for (key, (from, to, amount)) in &truth.transfer_moves {
        let times = present(&truth.transfers, key);
        *expected.entry(*from).or_default() -= amount * times;
        *expected.entry(*to).or_default() += amount * times;
    }
    if expected != truth.accounts {
        report.bank_bad += 1;
        report.findings.push(format!(
            "balances {:?} are not the transfer log's {expected:?}",
            truth.accounts
        ));
    }
}

fn check_nodes(report: &mut Report, nodes: &[NodeState]) {
    report.identical = true;
    for node in nodes {
        if node.integrity != "ok" {
            report.identical = false;
            report.findings.push(format!(
                "node {}: integrity_check says {}",
                node.node, node.integrity
            ));
        }
        if node.rows != nodes[0].rows {
            report.identical = false;
            report.findings.push(format!(
                "node {} differs from node {}: {}",
                node.node,
                nodes[0].node,
                diff(&nodes[0].rows, &node.rows)
            ));
        }
    }
}

/// A short account of how two nodes' rows differ.
fn diff(a: &Rows, b: &Rows) -> String {
    fn missing<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
        name: &str,
        a: &BTreeMap<K, V>,
        b: &BTreeMap<K, V>,
        out: &mut String,
    ) {
        let differing: Vec<_> = a
            .iter()
            .filter(|(k, v)| b.get(k) != Some(v))
            .map(|(k, _)| k)
            .chain(b.keys().filter(|k| !a.contains_key(k)))
            .take(5)
            .collect();
        if !differing.is_empty() {
            let _ = write!(out, "{name} {differing:?} ");
        }
    }
    let mut out = String::new();
    missing("posts", &a.posts, &b.posts, &mut out);
    missing("tags", &a.tags, &b.tags, &mut out);
    missing("keys", &a.keys, &b.keys, &mut out);
    missing("counters", &a.counters, &b.counters, &mut out);
    missing("accounts", &a.accounts, &b.accounts, &mut out);
    missing("transfers", &a.transfers, &b.transfers, &mut out);
    out
}

/// From each fault to the slowest failed or unknown answer while it lasted, and from each heal to
/// the first write that succeeded after it.
fn check_times(report: &mut Report, ops: &[Op], events: &[Event]) {
    let ms = |s: f64| (s * 1000.0).round() as u64;
    for (i, event) in events.iter().enumerate() {
        if event.heal {
            let next_ok = ops
                .iter()
                .filter(|o| o.kind.is_write() && o.outcome == Outcome::Ok && o.invoked >= event.at)
                .map(|o| o.completed - event.at)
                .min_by(f64::total_cmp);
            match next_ok {
                Some(after) => {
                    report.heal_to_write_ms = report.heal_to_write_ms.max(Some(ms(after)));
                }
                None => {
                    report.no_write_after_heal += 1;
                    report.findings.push(format!(
                        "no write succeeded after the heal at {:.3}s ({})",
                        event.at, event.what
                    ));
                }
            }
        } else {
            let until = events[i + 1..]
                .iter()
                .find(|e| e.heal)
                .map_or(f64::INFINITY, |e| e.at);
            let slowest = ops
                .iter()
                .filter(|o| {
                    o.outcome != Outcome::Ok && o.completed >= event.at && o.invoked < until
                })
                .map(|o| o.completed - o.invoked.max(event.at))
                .max_by(f64::total_cmp);
            if let Some(slowest) = slowest {
                report.fault_to_error_ms = report.fault_to_error_ms.max(Some(ms(slowest)));
            }
        }
    }
}

/// The table: a header, then one row per report.
pub fn table(reports: &[Report]) -> String {
    let mut out = format!(
        "{:<22} {:>5} {:>5} {:>5} | {:>4} {:>4} {:>6} {:>6} {:>4} {:>5} {:>6} {:>5} | {:>9} {:>9} {:>9}\n",
        "scenario",
        "ok",
        "fail",
        "unkn",
        "lost",
        "dup",
        "failpr",
        "unkdup",
        "bank",
        "stale",
        "noheal",
        "crash",
        "fault→err",
        "heal→ok",
        "identical"
    );
    let opt = |v: Option<u64>| v.map_or("-".to_owned(), |v| format!("{v} ms"));
    for r in reports {
        let _ = writeln!(
            out,
            "{:<22} {:>5} {:>5} {:>5} | {:>4} {:>4} {:>6} {:>6} {:>4} {:>5} {:>6} {:>5} | {:>9} {:>9} {:>9}",
            r.scenario,
            r.ok,
            r.failed,
            r.unknown,
            r.lost,
            r.duplicated,
            r.failed_present,
            r.unknown_duplicated,
            r.bank_bad,
            r.stale_unflagged,
            r.no_write_after_heal,
            r.crashed,
            opt(r.fault_to_error_ms),
            opt(r.heal_to_write_ms),
            if r.identical { "yes" } else { "NO" },
        );
    }
    out
}
