//! The fault lab: network faults (Toxiproxy) and process faults (kill -9, SIGSTOP, a failover)
//! against a real 3-node cluster under a recorded workload, and a checker that holds the history
//! to what every node's database ends up holding.
//!
//! - [`history`]: operations as invoked and completed (ok / failed / unknown), faults and heals.
//! - [`workload`]: the clients (HTTP posts and reads, SeaORM keys, counters, bank transfers) and
//!   the reading of each node's final rows.
//! - [`checker`]: the must-be-0 columns, and the table.
//! - [`scenarios`]: the faults, and the lab that runs them on one cluster.
//!
//! `scripts/test` runs every scenario in a short form (one fault cycle each); `scripts/soak`
//! runs them longer through the environment variables read by [`every_scenario_keeps_every_write`]:
//! `FAULTLAB_LOAD_SECS` (seconds of load in all, shared by the scenarios that run), `FAULTLAB_SCENARIO` (one scenario by name) and
//! `FAULTLAB_OUT` (where the histories and the table go).

mod checker;
mod history;
mod scenarios;
mod workload;

use std::time::Duration;

use checker::{NodeState, Report, Rows};
use history::{Event, History, Kind, Op, Outcome};

fn op(client: &str, kind: Kind, outcome: Outcome, (invoked, completed): (f64, f64)) -> Op {
    Op {
        client: client.into(),
        node: 1,
        kind,
        invoked,
        completed,
        outcome,
        stale: false,
        detail: String::new(),
    }
}

/// The negative control: a history with one lost write, one duplicated write and one read that
/// missed its own write without saying stale, beside writes that are fine. The checker must
/// report each of the three, and nothing else.
#[test]
fn the_checker_reports_a_lost_a_duplicated_and_a_stale_unflagged_write() {
    let history = History::new();
    let post = |slug: &str| Kind::InsertPost { slug: slug.into() };
    let key = |key: &str| Kind::InsertKey { key: key.into() };
    history.push(op("http-n1", post("lab-x-n1-1"), Outcome::Ok, (0.0, 0.1)));
    history.push(op("http-n1", post("lab-x-n1-2"), Outcome::Ok, (0.2, 0.3))); // lost
    history.push(op("http-n1", post("lab-x-n1-3"), Outcome::Fail, (0.4, 0.5)));
    history.push(op("orm-n1", key("x-n1-1"), Outcome::Ok, (0.0, 0.1))); // duplicated
    history.push(op("orm-n1", key("x-n1-2"), Outcome::Unknown, (0.2, 0.3)));
    let read = |saw| Kind::ReadPost {
        slug: "lab-x-n1-1".into(),
        cookie: Some("blog_txid=1".into()),
        saw,
    };
    history.push(op("http-n1", read(true), Outcome::Ok, (0.2, 0.25)));
    history.push(op("http-n1", read(false), Outcome::Ok, (0.3, 0.35))); // stale, unflagged
    history.push(Op {
        stale: true,
        ..op("http-n1", read(false), Outcome::Ok, (0.4, 0.45)) // stale, but says so
    });
    let rows = Rows {
        posts: [("lab-x-n1-1".to_owned(), 1)].into(),
        keys: [("x-n1-1".to_owned(), 2), ("x-n1-2".to_owned(), 1)].into(),
        ..Rows::default()
    };
    let nodes: Vec<NodeState> = (1..=3)
        .map(|node| NodeState {
            node,
            integrity: "ok".into(),
            rows: rows.clone(),
        })
        .collect();
    let events: Vec<Event> = Vec::new();

    let report = checker::check("x", &history.ops(), &events, &nodes);

    println!("{}", checker::table(std::slice::from_ref(&report)));
    let columns = |r: &Report| {
        (
            r.lost,
            r.duplicated,
            r.stale_unflagged,
            r.failed_present,
            r.unknown_duplicated,
            r.bank_bad,
        )
    };
    assert_eq!(
        columns(&report),
        (1, 1, 1, 0, 0, 0),
        "{:#?}",
        report.findings
    );
    assert_eq!((report.ok, report.failed, report.unknown), (6, 1, 1));
    assert!(report.identical);
    assert!(!report.passed());
    assert_eq!(report.findings.len(), 3, "{:#?}", report.findings);
}

/// The same checker on the other must-be-0 columns: a write reported failed yet present, an
/// unknown write present twice, a counter beyond its increments, a bank that leaks, and a node
/// whose rows differ.
#[test]
fn the_checker_reports_misreported_writes_a_leaking_bank_and_diverged_nodes() {
    let history = History::new();
    let post = |slug: &str| Kind::InsertPost { slug: slug.into() };
    history.push(op("http-n1", post("lab-x-n1-1"), Outcome::Fail, (0.0, 0.1)));
    let key = Kind::InsertKey {
        key: "x-n1-1".into(),
    };
    history.push(op("orm-n1", key, Outcome::Unknown, (0.0, 0.1)));
    let increment = Kind::Increment { counter: 1 };
    history.push(op("orm-n1", increment.clone(), Outcome::Ok, (0.0, 0.1)));
    history.push(op("orm-n1", increment, Outcome::Unknown, (0.2, 0.3)));
    let total = checker::ACCOUNTS * checker::OPENING_BALANCE;
    let bank = |total| Kind::ReadBank { total: Some(total) };
    history.push(op("orm-n1", bank(total), Outcome::Ok, (0.0, 0.1)));
    history.push(op("orm-n1", bank(total - 1), Outcome::Ok, (0.2, 0.3)));
    let mut accounts: std::collections::BTreeMap<i64, i64> = (1..=checker::ACCOUNTS)
        .map(|id| (id, checker::OPENING_BALANCE))
        .collect();
    accounts.insert(1, checker::OPENING_BALANCE - 5);
    let rows = Rows {
        posts: [("lab-x-n1-1".to_owned(), 1)].into(),
        keys: [("x-n1-1".to_owned(), 2)].into(),
        counters: [(1, 3)].into(),
        accounts,
        ..Rows::default()
    };
    let mut nodes: Vec<NodeState> = (1..=2)
        .map(|node| NodeState {
            node,
            integrity: "ok".into(),
            rows: rows.clone(),
        })
        .collect();
    nodes[1].rows.counters.insert(1, 2);

    let report = checker::check("x", &history.ops(), &[], &nodes);

    assert_eq!(report.failed_present, 1, "{:#?}", report.findings);
    assert_eq!(report.unknown_duplicated, 1, "{:#?}", report.findings);
    assert_eq!(
        report.duplicated, 1,
        "counter 1 is 3 after 1 ok + 1 unknown"
    );
    // One read saw 499; the final balances sum to 495 and disagree with the (empty) log.
    assert_eq!(report.bank_bad, 3, "{:#?}", report.findings);
    assert!(!report.identical, "node 2's counter differs");
    assert!(!report.passed());
}

/// Scenario settings from the environment (see the module docs).
struct Settings {
    /// Load of all the scenarios together; each runs at least one fault cycle.
    load: Duration,
    only: Option<String>,
    out: std::path::PathBuf,
}

impl Settings {
    fn from_env() -> Settings {
        let load = std::env::var("FAULTLAB_LOAD_SECS")
            .ok()
            .map(|s| {
                s.parse()
                    .expect("FAULTLAB_LOAD_SECS is a number of seconds")
            })
            .unwrap_or(0);
        let out = std::env::var("FAULTLAB_OUT")
            .map(Into::into)
            .unwrap_or_else(|_| std::env::temp_dir().join("blog-faultlab"));
        Settings {
            load: Duration::from_secs(load),
            only: std::env::var("FAULTLAB_SCENARIO")
                .ok()
                .filter(|s| !s.is_empty()),
            out,
        }
    }
}

/// Scenarios whose must-be-0 columns are not always 0 yet, left out of the short form that gates
/// CI until they are fixed (never their checks); docs/testing.md keeps the history. None today.
const OPEN_FINDINGS: &[&str] = &[];

/// Every scenario on one cluster under load; every must-be-0 column of the table must be 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_scenario_keeps_every_write() {
    let settings = Settings::from_env();
    let short_form = settings.only.is_none() && settings.load.is_zero();
    let chosen: Vec<_> = scenarios::all()
        .into_iter()
        .filter(|s| settings.only.as_deref().is_none_or(|only| only == s.name))
        .filter(|s| {
            let open = short_form && OPEN_FINDINGS.contains(&s.name);
            if open {
                eprintln!(
                    "lab: {} left out of the short form: an open finding (see docs/testing.md); \
                     scripts/soak and FAULTLAB_SCENARIO run it",
                    s.name
                );
            }
            !open
        })
        .collect();
    assert!(
        !chosen.is_empty(),
        "no scenario is named {:?}",
        settings.only
    );
    let load = settings.load / chosen.len() as u32;
    let mut lab = scenarios::Lab::start(settings.out.clone()).await;
    let mut reports = Vec::new();
    for scenario in &chosen {
        eprintln!("lab: scenario {}", scenario.name);
        let report = lab.run(scenario, load).await;
        eprint!("{}", checker::table(std::slice::from_ref(&report)));
        reports.push(report);
    }
    let table = checker::table(&reports);
    std::fs::write(settings.out.join("table.txt"), &table).unwrap();
    println!("{table}");
    let failures: Vec<String> = reports
        .iter()
        .filter(|r| !r.passed())
        .flat_map(|r| {
            std::iter::once(format!("{}:", r.scenario))
                .chain(r.findings.iter().take(20).map(|f| format!("  {f}")))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "the lab found violations (histories in {}):\n{table}\n{}",
        settings.out.display(),
        failures.join("\n")
    );
}
