//! Following LiteFS: who the primary is, and how far this node's copy of the database has got.
//!
//! Both come from LiteFS's `/events` stream (`init`, `primaryChange`, `tx`), read with a small
//! hyper client. The position file (`<db>-pos`) is the ground truth for the position: it is read
//! when the stream starts and when a wait is about to give up.
//!
//! A position is a TXID with its checksum ([`Pos`]), and it can go backwards: after a failover,
//! LiteFS resets a node that was ahead of the new primary with a snapshot. Each such reset starts
//! a new history here; a wait for a position is met only by that very position, or by a later one
//! of a history that did not replace it with another (see [`Follower::wait_for`]).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use serde::Deserialize;
use tokio::sync::watch;

use super::ClusterError;
use super::metrics;
use super::wire::Pos;

/// What this node is, as LiteFS sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// No LiteFS: a single node that writes locally.
    Standalone,
    /// This node holds the lease: writes run here.
    Primary,
    /// Another node is primary; `primary` is its lease hostname (the content of `.primary`).
    Replica { primary: String },
    /// LiteFS knows no primary right now.
    NoPrimary,
}

impl Role {
    /// The role as one lowercase word (`no-primary` for [`Role::NoPrimary`]), for headers, logs
    /// and pages.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Standalone => "standalone",
            Role::Primary => "primary",
            Role::Replica { .. } => "replica",
            Role::NoPrimary => "no-primary",
        }
    }

    /// Whether writes run on this node.
    pub fn writes_locally(&self) -> bool {
        matches!(self, Role::Standalone | Role::Primary)
    }
}

/// A LiteFS mount and the database file in it.
#[derive(Debug, Clone)]
pub struct Mount {
    pub dir: PathBuf,
    pub db_name: String,
}

impl Mount {
    /// The position in `<db>-pos` (`%016x/%016x`). On the primary it includes every returned commit.
    pub fn position(&self) -> std::io::Result<Pos> {
        let text = read_line(&self.dir.join(format!("{}-pos", self.db_name)))?;
        Pos::parse(&text).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unreadable position {text:?}"),
            )
        })
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.join(&self.db_name)
    }

    /// Whether LiteFS says, right now, that another node is primary: it shows the primary's
    /// name in `.primary` on replicas only. Unlike [`Follower::role`], which follows `/events`,
    /// this cannot lag behind a lease that just moved.
    pub fn names_another_primary(&self) -> bool {
        self.named_primary().is_some()
    }

    /// The primary LiteFS names in `.primary` right now (`Some("")` if it names none yet);
    /// `None` when the file is absent, as on the primary itself.
    pub fn named_primary(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.join(".primary")).ok()?;
        Some(text.trim().to_owned())
    }
}

/// How many positions of the current history are remembered, to tell whether a later position
/// includes an earlier one.
const HISTORY: usize = 4096;

/// This node's position, and the recent positions of its current history.
#[derive(Debug, Default)]
struct Track {
    pos: Option<Pos>,
    /// Positions seen since the history began here, oldest first.
    recent: VecDeque<Pos>,
    /// The TXID the current history began at here: 0 until LiteFS is seen to move this node
    /// other than one TXID at a time. What came before it is not known to be this history's.
    floor: u64,
}

/// Whether this node's database includes a position.
#[derive(Debug, PartialEq, Eq)]
enum Reach {
    Yes,
    /// Not yet, and it may come.
    NotYet,
    /// It cannot be told from here, whatever comes next in this history: it is older than what
    /// this node knows of its current history.
    Unknowable,
}

impl Track {
    /// Moves to `pos`. Returns whether anything changed.
    fn move_to(&mut self, pos: Pos) -> bool {
        match self.pos {
            Some(current) if current == pos => return false,
            // Backwards, the same TXID with another checksum, or a jump of more than one TXID:
            // a snapshot may have replaced this node's history (LiteFS sends one after a
            // failover to a primary that was behind), so what came before is no longer known
            // to be in it.
            Some(current) if pos.txid <= current.txid || pos.txid > current.txid + 1 => {
                if pos.txid <= current.txid {
                    tracing::warn!(from = %current, to = %pos, "LiteFS reset this node's database");
                }
                self.recent.clear();
                self.floor = pos.txid;
            }
            _ => {}
        }
        if self.recent.len() == HISTORY {
            self.recent.pop_front();
        }
        self.recent.push_back(pos);
        self.pos = Some(pos);
        true
    }

    /// Whether the database here includes the commit at `target`.
    fn reach(&self, target: Pos) -> Reach {
        let Some(pos) = self.pos else {
            return Reach::NotYet;
        };
        if let Some(seen) = self.recent.iter().rev().find(|p| p.txid == target.txid) {
            // Another checksum: another history; LiteFS may still reset this node to target's.
            return if seen.checksum == target.checksum {
                Reach::Yes
            } else {
                Reach::NotYet
            };
        }
        if target.txid > pos.txid {
            Reach::NotYet
        } else if target.txid < self.floor {
            Reach::Unknowable
        } else {
            // Older than the positions remembered, in a history seen to grow one TXID at a time.
            Reach::Yes
        }
    }
}

/// A file's first line, newline included if there is one: with as few calls into LiteFS as can
/// be (every write's commit reads `-pos` once, through FUSE): no size query and, once the
/// newline is in, no read for the end of the file.
fn read_line(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut text = Vec::with_capacity(64);
    let mut buffer = [0u8; 64];
    while !text.ends_with(b"\n") {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buffer[..n]);
    }
    String::from_utf8(text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The live view of LiteFS, shared by the connection and the RPC server.
pub struct Follower {
    pub mount: Mount,
    role: watch::Sender<Role>,
    /// Ticks whenever the position moves; the position itself is in `track`.
    moved: watch::Sender<u64>,
    track: Mutex<Track>,
    /// Counts the `/events` stream's losses and reconnections: each time, LiteFS may have
    /// stopped or remounted the database under the app's SQLite connections.
    reconnections: watch::Sender<u64>,
    /// Whether the stream has connected once already.
    connected_before: AtomicBool,
    /// Whether the stream is connected now.
    streaming: AtomicBool,
    /// Set when the database was missing while the stream was down: LiteFS went away.
    mount_lost: AtomicBool,
    /// Why the last attempt to read `/events` failed, if one did.
    last_error: Mutex<Option<String>>,
}

impl Follower {
    /// Starts following `api` (LiteFS's HTTP address). Waits, up to `startup`, for LiteFS to say
    /// who is primary; if it did not, the error of the last attempt to ask it, if any.
    pub async fn start(
        mount: Mount,
        api: &str,
        startup: Duration,
    ) -> Result<std::sync::Arc<Self>, Option<String>> {
        let authority = api
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let follower = std::sync::Arc::new(Follower::new(mount));
        let task_follower = follower.clone();
        let (ready_tx, mut ready_rx) = watch::channel(false);
        tokio::spawn(async move { task_follower.follow_events(authority, ready_tx).await });
        let ready = tokio::time::timeout(startup, ready_rx.wait_for(|r| *r)).await;
        match ready {
            Ok(_) => Ok(follower),
            Err(_) => Err(follower.last_error.lock().unwrap().clone()),
        }
    }

    pub(crate) fn new(mount: Mount) -> Self {
        let follower = Follower {
            role: watch::Sender::new(Role::NoPrimary),
            moved: watch::Sender::new(0),
            track: Mutex::new(Track::default()),
            mount,
            reconnections: watch::Sender::new(0),
            connected_before: AtomicBool::new(false),
            streaming: AtomicBool::new(false),
            mount_lost: AtomicBool::new(false),
            last_error: Mutex::new(None),
        };
        follower.refresh_position();
        follower
    }

    pub fn role(&self) -> Role {
        self.role.borrow().clone()
    }

    /// Changes each time the `/events` stream is lost or regained (LiteFS may have restarted).
    pub fn subscribe_reconnections(&self) -> watch::Receiver<u64> {
        self.reconnections.subscribe()
    }

    /// Whether the `/events` stream is connected now (LiteFS is there).
    pub fn connected(&self) -> bool {
        self.streaming.load(Ordering::Acquire)
    }

    /// Whether the database went missing since the last call: LiteFS was gone meanwhile.
    pub fn take_mount_lost(&self) -> bool {
        self.mount_lost.swap(false, Ordering::AcqRel)
    }

    /// This node's position, if its database exists yet.
    pub fn position(&self) -> Option<Pos> {
        self.track.lock().unwrap().pos
    }

    /// Waits until this node's database includes the commit at `target`, at most `timeout`. Fails
    /// at once when that cannot be told from here (see [`Track`]): the caller then says it may
    /// read stale, rather than risk reading stale without saying so.
    pub async fn wait_for(&self, target: Pos, timeout: Duration) -> Result<(), ClusterError> {
        let started = Instant::now();
        let mut moved = self.moved.subscribe();
        let reached = tokio::time::timeout(timeout, async {
            loop {
                match self.track.lock().unwrap().reach(target) {
                    Reach::Yes => return true,
                    Reach::Unknowable => return false,
                    Reach::NotYet => {}
                }
                if moved.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
        .await;
        metrics::catch_up(started.elapsed());
        let reached = match reached {
            Ok(reached) => reached,
            Err(_) => {
                self.refresh_position();
                self.track.lock().unwrap().reach(target) == Reach::Yes
            }
        };
        if reached {
            Ok(())
        } else {
            Err(ClusterError::CatchUpTimeout {
                pos: target,
                timeout_ms: timeout.as_millis() as u64,
            })
        }
    }

    /// Waits until the database exists here (replicated from the primary), at most `timeout`.
    pub async fn wait_for_database(&self, timeout: Duration) -> bool {
        let mut moved = self.moved.subscribe();
        let mut poll = tokio::time::interval(Duration::from_millis(50));
        tokio::time::timeout(timeout, async {
            while self.position().is_none() {
                tokio::select! {
                    _ = moved.changed() => {}
                    _ = poll.tick() => self.refresh_position(),
                }
            }
        })
        .await
        .is_ok()
    }

    /// Re-reads the position file, under the lock that orders it with the stream's events.
    fn refresh_position(&self) {
        let mut track = self.track.lock().unwrap();
        if let Ok(pos) = self.mount.position()
            && track.move_to(pos)
        {
            self.moved.send_modify(|n| *n += 1);
        }
    }

    fn advance(&self, pos: Pos) {
        if self.track.lock().unwrap().move_to(pos) {
            self.moved.send_modify(|n| *n += 1);
        }
    }

    pub(crate) fn set_role(&self, is_primary: bool, hostname: &str) {
        let role = if is_primary {
            Role::Primary
        } else if hostname.is_empty() {
            Role::NoPrimary
        } else {
            Role::Replica {
                primary: hostname.to_owned(),
            }
        };
        self.role.send_if_modified(|current| {
            let changed = *current != role;
            if changed {
                tracing::info!(from = ?current, to = ?role, "LiteFS role changed");
                *current = role;
            }
            changed
        });
    }

    /// Reads `/events` for as long as the process lives, reconnecting after a failure.
    async fn follow_events(&self, authority: String, ready: watch::Sender<bool>) {
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.read_events(&authority, &ready).await {
                Ok(()) => tracing::warn!("LiteFS /events stream ended; reconnecting"),
                Err(err) => {
                    tracing::warn!(error = %err, "LiteFS /events unavailable; retrying");
                    *self.last_error.lock().unwrap() = Some(err.to_string());
                }
            }
            if self.mount.position().is_err() && std::fs::metadata(self.mount.db_path()).is_err() {
                self.mount_lost.store(true, Ordering::Release);
            }
            if self.streaming.swap(false, Ordering::AcqRel) {
                // LiteFS went away: its mount may be gone, so stop using connections on it now,
                // and stop claiming a role until it tells us again.
                self.reconnections.send_modify(|n| *n += 1);
                self.set_role(false, "");
                backoff = Duration::from_millis(50);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    async fn read_events(
        &self,
        authority: &str,
        ready: &watch::Sender<bool>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let stream = tokio::net::TcpStream::connect(authority).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let request = hyper::Request::get("/events")
            .header(hyper::header::HOST, authority)
            .body(Empty::<Bytes>::new())?;
        let mut response = sender.send_request(request).await?;
        if !response.status().is_success() {
            return Err(format!("GET /events answered {}", response.status()).into());
        }
        // This try was answered: an earlier try's error is no longer why LiteFS is silent.
        self.last_error.lock().unwrap().take();
        // Connected first, then told: whoever wakes on the tick must see the new state.
        self.streaming.store(true, Ordering::Release);
        if self.connected_before.swap(true, Ordering::AcqRel) {
            self.reconnections.send_modify(|n| *n += 1);
        }
        self.refresh_position();
        let mut buffer = Vec::new();
        while let Some(frame) = response.body_mut().frame().await {
            let Ok(data) = frame?.into_data() else {
                continue;
            };
            buffer.extend_from_slice(&data);
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                if let Ok(event) = serde_json::from_slice::<Event>(&line) {
                    self.apply(event);
                    ready.send_replace(true);
                }
            }
        }
        Ok(())
    }

    fn apply(&self, event: Event) {
        match event.kind.as_str() {
            "init" | "primaryChange" => {
                let data: RoleData = serde_json::from_value(event.data).unwrap_or_default();
                self.set_role(data.is_primary, &data.hostname);
            }
            "tx" if event.db == self.mount.db_name => {
                let field = |name: &str| {
                    event
                        .data
                        .get(name)
                        .and_then(|v| v.as_str())
                        .and_then(|v| u64::from_str_radix(v, 16).ok())
                };
                if let (Some(txid), Some(checksum)) = (field("txID"), field("postApplyChecksum")) {
                    self.advance(Pos { txid, checksum });
                }
            }
            _ => {}
        }
    }
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    db: String,
    #[serde(default)]
    data: serde_json::Value,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RoleData {
    #[serde(default)]
    is_primary: bool,
    #[serde(default)]
    hostname: String,
}

/// Splits a database path inside a LiteFS mount into the mount and the file name (`None` when it
/// is not directly inside the mount).
pub fn mount_for(litefs_dir: &Path, database: &Path) -> Option<Mount> {
    let db_name = database.file_name()?.to_str()?.to_owned();
    let parent = database.parent().unwrap_or(Path::new(""));
    let same = |a: &Path, b: &Path| a.canonicalize().ok() == b.canonicalize().ok() || a == b;
    same(parent, litefs_dir).then(|| Mount {
        dir: litefs_dir.to_path_buf(),
        db_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(txid: u64, checksum: u64) -> Pos {
        Pos { txid, checksum }
    }

    fn follower() -> Follower {
        Follower::new(Mount {
            dir: PathBuf::from("/nonexistent-litefs-mount"),
            db_name: "db".into(),
        })
    }

    fn tx(f: &Follower, txid: u64, checksum: u64) {
        f.apply(Event {
            kind: "tx".into(),
            db: "db".into(),
            data: serde_json::json!({
                "txID": format!("{txid:016x}"),
                "postApplyChecksum": format!("{checksum:016x}"),
            }),
        });
    }

    #[test]
    fn each_role_has_its_own_word() {
        let roles = [
            Role::Standalone,
            Role::Primary,
            Role::Replica {
                primary: "node-1".into(),
            },
            Role::NoPrimary,
        ];
        let words: std::collections::HashSet<_> = roles.iter().map(Role::as_str).collect();
        assert_eq!(words.len(), roles.len(), "{words:?}");
        assert_eq!(Role::NoPrimary.as_str(), "no-primary");
    }

    #[tokio::test]
    async fn a_reset_to_an_earlier_position_is_waited_through() {
        let f = follower();
        for txid in 1..=10 {
            tx(&f, txid, txid * 100);
        }
        assert!(f.wait_for(pos(7, 700), Duration::ZERO).await.is_ok());
        // A snapshot from a new primary that was behind: position 5 of another history.
        tx(&f, 5, 555);
        assert_eq!(f.position(), Some(pos(5, 555)));
        let short = Duration::from_millis(50);
        assert!(
            f.wait_for(pos(7, 777), short).await.is_err(),
            "TXID 7 of the new history is not here yet"
        );
        let f = std::sync::Arc::new(f);
        let waiter = {
            let f = f.clone();
            tokio::spawn(async move { f.wait_for(pos(7, 777), Duration::from_secs(5)).await })
        };
        tx(&f, 6, 666);
        tx(&f, 7, 777);
        assert!(
            waiter.await.unwrap().is_ok(),
            "reached once the new history has it"
        );
    }

    #[tokio::test]
    async fn the_same_txid_of_another_history_is_not_the_write() {
        let f = follower();
        tx(&f, 1, 100);
        tx(&f, 2, 200);
        tx(&f, 3, 300);
        let short = Duration::from_millis(20);
        assert!(f.wait_for(pos(2, 999), short).await.is_err());
        assert!(f.wait_for(pos(2, 200), short).await.is_ok());
        assert!(f.wait_for(pos(1, 100), short).await.is_ok());
        // A jump past positions never seen here may be a snapshot of another history: what it
        // jumped over, and what came before, cannot be told, and is not claimed.
        tx(&f, 9, 900);
        let started = Instant::now();
        assert!(
            f.wait_for(pos(8, 12345), Duration::from_secs(5))
                .await
                .is_err()
        );
        assert!(
            f.wait_for(pos(2, 200), Duration::from_secs(5))
                .await
                .is_err()
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "no wait for the unknowable"
        );
        assert!(f.wait_for(pos(9, 900), short).await.is_ok());
        tx(&f, 10, 1000);
        assert!(
            f.wait_for(pos(9, 900), short).await.is_ok(),
            "one TXID at a time again"
        );
    }

    /// a snapshot of another history that lands *ahead* of this node (TXID 12 after 10) is
    /// taken as a continuation: a position of the replaced history is then "included".
    #[tokio::test]
    async fn a_forward_snapshot_of_another_history_is_not_a_continuation() {
        let f = follower();
        for txid in 1..=10 {
            tx(&f, txid, txid * 100);
        }
        // A new primary that was behind at TXID 5 wrote 6..12 with other checksums; this node,
        // which had 6..10 of the lost history, is reset with its snapshot at 12.
        tx(&f, 12, 12_345);
        let met = f.wait_for(pos(8, 800), Duration::from_millis(50)).await;
        println!("position 8 of the replaced history, after a snapshot to 12 of another: {met:?}");
        assert!(
            met.is_err(),
            "a write of the replaced history counted as included"
        );
    }
}
