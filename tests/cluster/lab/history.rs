//! The history of a scenario: every operation as invoked, then ok / failed / unknown, with its
//! node, its times and what came back (TXID cookie or error); and the faults and heals, with their
//! times. The checker reads nothing else about what the clients saw.

use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

/// What the client knows about a write (or a read) once it completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A 2xx, or SeaORM's `Ok`: it happened.
    Ok,
    /// An answer saying it did not happen (4xx, a 503 without `"outcome": "unknown"`, an SQL error,
    /// a refused connection): it must not be in the database.
    Fail,
    /// No definite answer (timeout, reset after sending, `"outcome": "unknown"`): it may be in the
    /// database, at most once.
    Unknown,
}

/// An operation of the workload.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Kind {
    /// `POST /api/posts` with a unique slug (the HTTP set).
    InsertPost { slug: String },
    /// `GET /api/posts/{slug}` on another node, carrying the cookie of that post's write.
    ReadPost {
        slug: String,
        cookie: Option<String>,
        /// The post was in the answer.
        saw: bool,
    },
    /// A unique key into `lab_set` through SeaORM (a prepared statement).
    InsertKey { key: String },
    /// `value = value + 1` of a `lab_counter` through SeaORM's `execute_unprepared`.
    Increment { counter: i64 },
    /// A move between two `lab_account`s, logged in `lab_transfer`, in one SeaORM transaction.
    Transfer {
        key: String,
        from: i64,
        to: i64,
        amount: i64,
    },
    /// The sum of every `lab_account` balance, read through SeaORM.
    ReadBank { total: Option<i64> },
    /// A transaction opened from a replica by a process that is then killed before it commits.
    Abandoned { label: String },
}

impl Kind {
    pub fn is_write(&self) -> bool {
        !matches!(self, Kind::ReadPost { .. } | Kind::ReadBank { .. })
    }
}

/// One completed operation.
#[derive(Debug, Clone, Serialize)]
pub struct Op {
    /// Which client ran it, e.g. `http-n2`.
    pub client: String,
    pub node: usize,
    #[serde(flatten)]
    pub kind: Kind,
    /// Seconds since the scenario started.
    pub invoked: f64,
    pub completed: f64,
    pub outcome: Outcome,
    /// The answer said `x-blog-stale`: committed (or served) before this node caught up.
    pub stale: bool,
    /// What came back: the TXID cookie of a write, or the error.
    pub detail: String,
}

/// A fault injected, or healed.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at: f64,
    pub heal: bool,
    pub what: String,
}

/// A scenario's history, appended to by every client at once.
pub struct History {
    start: Instant,
    ops: Mutex<Vec<Op>>,
    events: Mutex<Vec<Event>>,
}

/// An operation under way: [`History::invoke`] starts it, [`Pending::complete`] records it.
pub struct Pending<'a> {
    history: &'a History,
    client: String,
    node: usize,
    invoked: f64,
}

impl History {
    pub fn new() -> History {
        History {
            start: Instant::now(),
            ops: Mutex::default(),
            events: Mutex::default(),
        }
    }

    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    pub fn invoke(&self, client: &str, node: usize) -> Pending<'_> {
        Pending {
            history: self,
            client: client.to_owned(),
            node,
            invoked: self.now(),
        }
    }

    pub fn event(&self, heal: bool, what: impl Into<String>) {
        let event = Event {
            at: self.now(),
            heal,
            what: what.into(),
        };
        eprintln!(
            "lab: {:>7.3}s {} {}",
            event.at,
            if heal { "heal " } else { "fault" },
            event.what
        );
        self.events.lock().unwrap().push(event);
    }

    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().unwrap().clone()
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Whether a write invoked at `since` or later has succeeded.
    pub fn ok_write_since(&self, since: f64) -> bool {
        self.ops
            .lock()
            .unwrap()
            .iter()
            .any(|o| o.kind.is_write() && o.outcome == Outcome::Ok && o.invoked >= since)
    }

    /// When the last heal happened.
    pub fn last_heal(&self) -> Option<f64> {
        let events = self.events.lock().unwrap();
        events.iter().rev().find(|e| e.heal).map(|e| e.at)
    }

    /// Adds a completed operation as is (the negative control builds histories this way).
    pub fn push(&self, op: Op) {
        self.ops.lock().unwrap().push(op);
    }

    /// The history as JSON lines, events first: kept next to the report for reading by hand.
    pub fn to_json_lines(&self) -> String {
        let mut out = String::new();
        for event in self.events() {
            out.push_str(&serde_json::to_string(&event).unwrap());
            out.push('\n');
        }
        for op in self.ops() {
            out.push_str(&serde_json::to_string(&op).unwrap());
            out.push('\n');
        }
        out
    }
}

impl Pending<'_> {
    pub fn complete(self, kind: Kind, outcome: Outcome, stale: bool, detail: impl Into<String>) {
        let op = Op {
            client: self.client,
            node: self.node,
            kind,
            invoked: self.invoked,
            completed: self.history.now(),
            outcome,
            stale,
            detail: detail.into(),
        };
        self.history.push(op);
    }
}
