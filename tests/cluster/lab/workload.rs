//! The workload: concurrent clients on every node, each recording into the [`History`].
//!
//! Per node K, three clients:
//! - `http-nK`: creates posts with unique slugs through node K's HTTP API (the set), then reads
//!   each one back on the next node with the `blog_txid` cookie the write returned;
//! - `orm-nK`: through a SeaORM [`ClusterConnection`] on node K, opened in this process: unique
//!   keys into `lab_set` (prepared statements), increments of `lab_counter` rows (raw SQL through
//!   `execute_unprepared`), and reads of the bank's total;
//! - `bank-nK`: transfers between `lab_account` rows, each a multi-statement SeaORM transaction
//!   that reads a balance, moves an amount and logs the move in `lab_transfer`.
//!
//! The lab's schema lives in its own `lab_*` tables, created through the primary.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, Statement, TransactionSession, TransactionTrait, Value,
};
use sqlx::Row;

use super::checker::{ACCOUNTS, COUNTERS, NodeState, OPENING_BALANCE, Rows};
use super::history::{History, Kind, Outcome};
use crate::harness::{ADMIN_PASSWORD, Cluster, Node};
use sea_orm_litefs::ClusterConnection;

/// A client that has no answer after this long records the operation as unknown.
pub const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// Each client's pace: at most one operation per tick. Load, not a wait for a condition.
const PACE: Duration = Duration::from_millis(20);

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS lab_set (key TEXT NOT NULL, node INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS lab_counter (scenario TEXT NOT NULL, id INTEGER NOT NULL, \
     value INTEGER NOT NULL, PRIMARY KEY (scenario, id))",
    "CREATE TABLE IF NOT EXISTS lab_account (scenario TEXT NOT NULL, id INTEGER NOT NULL, \
     balance INTEGER NOT NULL, PRIMARY KEY (scenario, id))",
    "CREATE TABLE IF NOT EXISTS lab_transfer (key TEXT NOT NULL, scenario TEXT NOT NULL, \
     src INTEGER NOT NULL, dst INTEGER NOT NULL, amount INTEGER NOT NULL)",
];

fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

/// A SeaORM connection on node `k`, forwarding through the node's RPC link as its app does.
pub async fn connect(cluster: &Cluster, k: usize) -> ClusterConnection {
    let db = cluster
        .options(k)
        .primary_rpc(crate::toxiproxy::rpc_listen(k))
        .start()
        .await
        .expect("joins the cluster");
    // Never closed, whatever is dropped first: closing a SQLite connection touches its `-shm`
    // mapping in the LiteFS mount, and once the cluster has unmounted it that kills this process
    // with SIGBUS (as `sea_orm_litefs::pools` explains).
    std::mem::forget(db.clone());
    db
}

/// Creates the lab's tables, and the scenario's counters and bank, on the primary.
pub async fn set_up(primary: &ClusterConnection, scenario: &str) {
    for sql in SCHEMA {
        primary.execute_unprepared(sql).await.expect("lab schema");
    }
    for id in 1..=COUNTERS {
        let sql = "INSERT INTO lab_counter (scenario, id, value) VALUES (?, ?, 0)";
        let values = vec![scenario.into(), id.into()];
        primary
            .execute_raw(stmt(sql, values))
            .await
            .expect("a counter");
    }
    for id in 1..=ACCOUNTS {
        let sql = "INSERT INTO lab_account (scenario, id, balance) VALUES (?, ?, ?)";
        let values = vec![scenario.into(), id.into(), OPENING_BALANCE.into()];
        primary
            .execute_raw(stmt(sql, values))
            .await
            .expect("an account");
    }
}

/// What the clients share: the scenario, the history and the stop flag.
#[derive(Clone)]
pub struct Load {
    pub scenario: String,
    pub history: Arc<History>,
    pub stop: Arc<AtomicBool>,
    /// Held shared by each SeaORM operation; a failover holds it alone to quiesce this process's
    /// writers before it switches primaries (the lab's coordination, not a fault).
    pub gate: Arc<tokio::sync::RwLock<()>>,
}

impl Load {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::SeqCst)
    }
}

/// Starts every client of every node; they run until `load.stop` is set.
pub fn spawn_clients(
    load: &Load,
    cluster: &Cluster,
    dbs: &[ClusterConnection],
) -> Vec<tokio::task::JoinHandle<()>> {
    let n = cluster.nodes.len();
    let mut tasks = Vec::new();
    for k in 1..=n {
        let reader = cluster.url(k % n + 1);
        tasks.push(tokio::spawn(http_client(
            load.clone(),
            k,
            cluster.url(k),
            reader,
        )));
        tasks.push(tokio::spawn(orm_client(
            load.clone(),
            k,
            dbs[k - 1].clone(),
        )));
        tasks.push(tokio::spawn(bank_client(
            load.clone(),
            k,
            dbs[k - 1].clone(),
        )));
    }
    tasks
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(OP_TIMEOUT)
        .build()
        .unwrap()
}

/// A write's outcome from its HTTP answer, as the API promises it: 2xx ok; a 503 whose body says
/// `"outcome": "unknown"` unknown; any other answer failed.
async fn http_outcome(response: reqwest::Response) -> (Outcome, bool, String) {
    let status = response.status();
    let stale = response.headers().contains_key("x-blog-stale");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("blog_txid="))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned());
    let body = response.text().await.unwrap_or_default();
    if status.is_success() {
        return (Outcome::Ok, stale, cookie.unwrap_or_default());
    }
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let outcome = if status == 503 && json["outcome"] == "unknown" {
        Outcome::Unknown
    } else {
        Outcome::Fail
    };
    (outcome, stale, format!("{status} {body}"))
}

/// A request that got no answer: refused before sending means failed, anything later unknown.
fn http_error(err: &reqwest::Error) -> Outcome {
    if err.is_connect() {
        Outcome::Fail
    } else {
        Outcome::Unknown
    }
}

async fn http_client(load: Load, k: usize, writer: String, reader: String) {
    let client = http();
    let name = format!("http-n{k}");
    let mut pace = tokio::time::interval(PACE);
    let mut seq = 0;
    // The position cookie of the client's last write: every other write brings it back, as a
    // browser does (the node then waits for that write before it runs this one), the others come
    // without it, as from an API client that keeps no cookies.
    let mut kept: Option<String> = None;
    while load.running() {
        pace.tick().await;
        seq += 1;
        let slug = format!("lab-{}-n{k}-{seq}", load.scenario);
        let pending = load.history.invoke(&name, k);
        let mut request = client
            .post(format!("{writer}/api/posts"))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .json(&serde_json::json!({ "title": slug, "slug": slug, "body": "lab", "published": true }));
        if let Some(cookie) = kept.as_ref().filter(|_| seq % 2 == 0) {
            request = request.header("cookie", cookie);
        }
        let sent = request.send().await;
        let (outcome, stale, detail) = match sent {
            Ok(response) => http_outcome(response).await,
            Err(err) => (http_error(&err), false, err.to_string()),
        };
        let kind = Kind::InsertPost { slug: slug.clone() };
        let cookie = (outcome == Outcome::Ok && !detail.is_empty()).then(|| detail.clone());
        pending.complete(kind, outcome, stale, detail);
        if outcome != Outcome::Ok {
            continue;
        }
        if cookie.is_some() {
            kept.clone_from(&cookie);
        }
        let pending = load.history.invoke(&name, k);
        let mut request = client.get(format!("{reader}/api/posts/{slug}"));
        if let Some(cookie) = &cookie {
            request = request.header("cookie", cookie);
        }
        let (outcome, saw, stale, detail) = match request.send().await {
            Ok(r) => {
                let stale = r.headers().contains_key("x-blog-stale");
                match r.status().as_u16() {
                    200 => (Outcome::Ok, true, stale, "200".to_owned()),
                    404 => (Outcome::Ok, false, stale, "404".to_owned()),
                    other => (Outcome::Fail, false, stale, other.to_string()),
                }
            }
            Err(err) => (Outcome::Fail, false, false, err.to_string()),
        };
        let kind = Kind::ReadPost { slug, cookie, saw };
        pending.complete(kind, outcome, stale, detail);
    }
}

/// A SeaORM error's outcome: the cluster layer's typed "outcome unknown" makes it unknown,
/// anything else is a definite failure.
fn orm_outcome(
    result: Result<Result<(), DbErr>, tokio::time::error::Elapsed>,
) -> (Outcome, String) {
    match result {
        Ok(Ok(())) => (Outcome::Ok, String::new()),
        Ok(Err(err)) => {
            let unknown = sea_orm_litefs::ClusterError::find(&err)
                .is_some_and(sea_orm_litefs::ClusterError::outcome_unknown);
            let outcome = if unknown {
                Outcome::Unknown
            } else {
                Outcome::Fail
            };
            (outcome, err.to_string())
        }
        Err(_) => (Outcome::Unknown, format!("no answer within {OP_TIMEOUT:?}")),
    }
}

async fn orm_client(load: Load, k: usize, db: ClusterConnection) {
    let name = format!("orm-n{k}");
    let mut pace = tokio::time::interval(PACE);
    let mut seq: i64 = 0;
    while load.running() {
        pace.tick().await;
        seq += 1;
        let _pass = load.gate.read().await;
        let pending = load.history.invoke(&name, k);
        match seq % 3 {
            0 => {
                let key = format!("{}-n{k}-{seq}", load.scenario);
                let sql = "INSERT INTO lab_set (key, node) VALUES (?, ?)";
                let run = db.execute_raw(stmt(sql, vec![key.clone().into(), (k as i64).into()]));
                let (outcome, detail) = orm_outcome(
                    tokio::time::timeout(OP_TIMEOUT, async { run.await.map(drop) }).await,
                );
                pending.complete(Kind::InsertKey { key }, outcome, false, detail);
            }
            1 => {
                let counter = seq / 3 % COUNTERS + 1;
                let sql = format!(
                    "UPDATE lab_counter SET value = value + 1 WHERE scenario = '{}' AND id = {counter}",
                    load.scenario
                );
                let run = db.execute_unprepared(&sql);
                let (outcome, detail) = orm_outcome(
                    tokio::time::timeout(OP_TIMEOUT, async { run.await.map(drop) }).await,
                );
                pending.complete(Kind::Increment { counter }, outcome, false, detail);
            }
            _ => {
                let sql = "SELECT sum(balance) FROM lab_account WHERE scenario = ?";
                let read = db.query_one_raw(stmt(sql, vec![load.scenario.clone().into()]));
                let (kind, outcome, detail) = match tokio::time::timeout(OP_TIMEOUT, read).await {
                    Ok(Ok(row)) => {
                        let total = row.and_then(|r| r.try_get_by_index::<i64>(0).ok());
                        (Kind::ReadBank { total }, Outcome::Ok, String::new())
                    }
                    Ok(Err(err)) => (
                        Kind::ReadBank { total: None },
                        Outcome::Fail,
                        err.to_string(),
                    ),
                    Err(_) => (
                        Kind::ReadBank { total: None },
                        Outcome::Unknown,
                        "timeout".into(),
                    ),
                };
                pending.complete(kind, outcome, false, detail);
            }
        }
    }
}

/// One transfer: read the source balance, move `amount`, log the move; all or nothing.
async fn transfer(
    db: &ClusterConnection,
    scenario: &str,
    key: &str,
    (from, to, amount): (i64, i64, i64),
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    let balance = "SELECT balance FROM lab_account WHERE scenario = ? AND id = ?";
    txn.query_one_raw(stmt(balance, vec![scenario.into(), from.into()]))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("account {from}")))?;
    let update = "UPDATE lab_account SET balance = balance + ? WHERE scenario = ? AND id = ?";
    txn.execute_raw(stmt(
        update,
        vec![(-amount).into(), scenario.into(), from.into()],
    ))
    .await?;
    txn.execute_raw(stmt(
        update,
        vec![amount.into(), scenario.into(), to.into()],
    ))
    .await?;
    let log = "INSERT INTO lab_transfer (key, scenario, src, dst, amount) VALUES (?, ?, ?, ?, ?)";
    let values = vec![
        key.into(),
        scenario.into(),
        from.into(),
        to.into(),
        amount.into(),
    ];
    txn.execute_raw(stmt(log, values)).await?;
    txn.commit().await
}

async fn bank_client(load: Load, k: usize, db: ClusterConnection) {
    let name = format!("bank-n{k}");
    let mut pace = tokio::time::interval(PACE);
    let mut seq: i64 = 0;
    while load.running() {
        pace.tick().await;
        seq += 1;
        let from = seq % ACCOUNTS + 1;
        let to = (seq + k as i64) % ACCOUNTS + 1;
        let to = if to == from { to % ACCOUNTS + 1 } else { to };
        let amount = seq % 7 + 1;
        let key = format!("{}-n{k}-t{seq}", load.scenario);
        let _pass = load.gate.read().await;
        let pending = load.history.invoke(&name, k);
        let run = transfer(&db, &load.scenario, &key, (from, to, amount));
        let (outcome, detail) = orm_outcome(tokio::time::timeout(OP_TIMEOUT, run).await);
        let kind = Kind::Transfer {
            key,
            from,
            to,
            amount,
        };
        pending.complete(kind, outcome, false, detail);
    }
}

/// Reads what node `k`'s database holds of `scenario`, straight from its file.
pub async fn read_node(node: &Node, scenario: &str) -> NodeState {
    let mut db = crate::open_db(node).await;
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let lab = format!("lab-{scenario}-n%");
    let ours = format!("{scenario}-n%");
    let mut rows = Rows::default();
    let query = |sql: &'static str, bind: String| sqlx::query(sql).bind(bind);
    for row in query(
        "SELECT slug, count(*) FROM posts WHERE slug LIKE ? GROUP BY slug",
        lab.clone(),
    )
    .fetch_all(&mut db)
    .await
    .unwrap()
    {
        rows.posts.insert(row.get(0), row.get(1));
    }
    for row in query(
        "SELECT label, count(*) FROM tags WHERE label LIKE ? GROUP BY label",
        lab,
    )
    .fetch_all(&mut db)
    .await
    .unwrap()
    {
        rows.tags.insert(row.get(0), row.get(1));
    }
    for row in query(
        "SELECT key, count(*) FROM lab_set WHERE key LIKE ? GROUP BY key",
        ours,
    )
    .fetch_all(&mut db)
    .await
    .unwrap()
    {
        rows.keys.insert(row.get(0), row.get(1));
    }
    for row in query(
        "SELECT id, value FROM lab_counter WHERE scenario = ?",
        scenario.into(),
    )
    .fetch_all(&mut db)
    .await
    .unwrap()
    {
        rows.counters.insert(row.get(0), row.get(1));
    }
    for row in query(
        "SELECT id, balance FROM lab_account WHERE scenario = ?",
        scenario.into(),
    )
    .fetch_all(&mut db)
    .await
    .unwrap()
    {
        rows.accounts.insert(row.get(0), row.get(1));
    }
    let transfers = "SELECT key, count(*), min(src), min(dst), min(amount) FROM lab_transfer \
                     WHERE scenario = ? GROUP BY key";
    for row in query(transfers, scenario.into())
        .fetch_all(&mut db)
        .await
        .unwrap()
    {
        let key: String = row.get(0);
        rows.transfers.insert(key.clone(), row.get(1));
        rows.transfer_moves
            .insert(key, (row.get(2), row.get(3), row.get(4)));
    }
    NodeState {
        node: node.k,
        integrity,
        rows,
    }
}
