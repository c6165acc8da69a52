//! Following LiteFS: who the primary is, and how far this node's copy of the database has got.
//!
//! Both come from LiteFS's `/events` stream (`init`, `primaryChange`, `tx`), read with a small
//! hyper client; the files in the mount (`.primary`, `<db>-pos`) are the ground truth that the
//! stream is checked against when it starts and when a wait is about to give up.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use serde::Deserialize;
use tokio::sync::watch;

use super::ClusterError;
use super::metrics;

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
    /// The word used in the `x-blog-role` header and on pages.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Standalone => "standalone",
            Role::Primary => "primary",
            Role::Replica { .. } => "replica",
            Role::NoPrimary => "replica",
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
    /// The content of `.primary`: present only on a replica connected to a primary.
    pub fn primary_hostname(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.join(".primary")).ok()?;
        let host = text.trim();
        (!host.is_empty()).then(|| host.to_owned())
    }

    /// The TXID in `<db>-pos` (`%016x/%016x`). On the primary it includes every returned commit.
    pub fn position(&self) -> std::io::Result<u64> {
        let text = std::fs::read_to_string(self.dir.join(format!("{}-pos", self.db_name)))?;
        let txid = text.split('/').next().unwrap_or_default().trim();
        u64::from_str_radix(txid, 16)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.join(&self.db_name)
    }
}

/// The live view of LiteFS, shared by the connection and the RPC server.
pub struct Follower {
    pub mount: Mount,
    role: watch::Sender<Role>,
    position: watch::Sender<u64>,
    /// Counts the `/events` stream's losses and reconnections: each time, LiteFS may have
    /// stopped or remounted the database under the app's SQLite connections.
    reconnections: watch::Sender<u64>,
    /// Whether the stream has connected once already.
    connected_before: std::sync::atomic::AtomicBool,
    /// Whether the stream is connected now.
    streaming: std::sync::atomic::AtomicBool,
}

impl Follower {
    /// Starts following `api` (LiteFS's HTTP address). Waits, up to `startup`, for LiteFS to say
    /// who is primary.
    pub async fn start(
        mount: Mount,
        api: &str,
        startup: Duration,
    ) -> Result<std::sync::Arc<Self>, String> {
        let authority = api
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let follower = std::sync::Arc::new(Follower {
            role: watch::Sender::new(Role::NoPrimary),
            position: watch::Sender::new(mount.position().unwrap_or(0)),
            mount,
            reconnections: watch::Sender::new(0),
            connected_before: std::sync::atomic::AtomicBool::new(false),
            streaming: std::sync::atomic::AtomicBool::new(false),
        });
        let task_follower = follower.clone();
        let (ready_tx, mut ready_rx) = watch::channel(false);
        tokio::spawn(async move { task_follower.follow_events(authority, ready_tx).await });
        let ready = tokio::time::timeout(startup, ready_rx.wait_for(|r| *r)).await;
        if ready.is_err() {
            return Err(format!(
                "LiteFS at {api} did not answer /events within {startup:?}"
            ));
        }
        Ok(follower)
    }

    pub fn role(&self) -> Role {
        self.role.borrow().clone()
    }

    pub fn subscribe_role(&self) -> watch::Receiver<Role> {
        self.role.subscribe()
    }

    /// Changes each time the `/events` stream is lost or regained (LiteFS may have restarted).
    pub fn subscribe_reconnections(&self) -> watch::Receiver<u64> {
        self.reconnections.subscribe()
    }

    /// The highest TXID this node is known to have.
    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }

    /// Waits until this node's database includes `txid`, at most `timeout`.
    pub async fn wait_for_txid(&self, txid: u64, timeout: Duration) -> Result<(), ClusterError> {
        if self.position() >= txid || self.refresh_position() >= txid {
            return Ok(());
        }
        let started = Instant::now();
        let mut rx = self.position.subscribe();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|p| *p >= txid))
            .await
            .is_ok();
        metrics::catch_up(started.elapsed());
        if reached || self.refresh_position() >= txid {
            Ok(())
        } else {
            Err(ClusterError::CatchUpTimeout {
                txid,
                timeout_ms: timeout.as_millis() as u64,
            })
        }
    }

    fn refresh_position(&self) -> u64 {
        if let Ok(pos) = self.mount.position() {
            self.advance(pos);
        }
        self.position()
    }

    fn advance(&self, txid: u64) {
        self.position.send_if_modified(|p| {
            let newer = txid > *p;
            if newer {
                *p = txid;
            }
            newer
        });
    }

    fn set_role(&self, is_primary: bool, hostname: &str) {
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
                Err(err) => tracing::warn!(error = %err, "LiteFS /events unavailable; retrying"),
            }
            if self
                .streaming
                .swap(false, std::sync::atomic::Ordering::AcqRel)
            {
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
        if self
            .connected_before
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            self.reconnections.send_modify(|n| *n += 1);
        }
        self.streaming
            .store(true, std::sync::atomic::Ordering::Release);
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
                if let Some(txid) = event.data.get("txID").and_then(|v| v.as_str())
                    && let Ok(txid) = u64::from_str_radix(txid, 16)
                {
                    self.advance(txid);
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

/// Splits a database path inside a LiteFS mount into the mount and the file name.
pub fn mount_for(litefs_dir: &Path, database: &Path) -> Result<Mount, String> {
    let db_name = database
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{} has no file name", database.display()))?
        .to_owned();
    let parent = database.parent().unwrap_or(Path::new(""));
    let same = |a: &Path, b: &Path| a.canonicalize().ok() == b.canonicalize().ok() || a == b;
    if !same(parent, litefs_dir) {
        return Err(format!(
            "the database {} must be directly inside the LiteFS mount {}",
            database.display(),
            litefs_dir.display()
        ));
    }
    Ok(Mount {
        dir: litefs_dir.to_path_buf(),
        db_name,
    })
}
