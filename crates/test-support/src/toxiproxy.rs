//! Toxiproxy, a real TCP fault proxy, between each node and the primary.
//!
//! `scripts/install-test-deps` installs its server (v2.5.0, binary `server`); the harness starts one
//! per cluster and drives it through its HTTP API. Each node K has two links, both listening on
//! its own address and forwarding to the primary:
//! - `rpc-K` on 127.A.B.(10+K):17070 → the primary's RPC (:7070); the node's app gets it as
//!   `--primary-rpc`;
//! - `replication-K` on 127.A.B.(10+K):20302 → the primary's LiteFS (:20202); the node's
//!   `litefs.yml` gets it as `lease.advertise-url`, which is where a static-lease replica streams
//!   from.
//!
//! The primary's own links carry nothing; they are there so any node can become primary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

/// Where Toxiproxy's API listens: an address of the cluster's loopback range no node uses.
pub fn api() -> String {
    format!("{}:8474", crate::cluster::ip(0))
}
pub const RPC_PROXY_PORT: u16 = 17070;
pub const REPLICATION_PROXY_PORT: u16 = 20302;

/// A link between a node and the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// The forwarding RPC.
    Rpc,
    /// LiteFS replication.
    Replication,
}

impl Link {
    fn proxy(self, k: usize) -> String {
        match self {
            Link::Rpc => format!("rpc-{k}"),
            Link::Replication => format!("replication-{k}"),
        }
    }
}

/// A fault on a link, as a Toxiproxy toxic.
#[derive(Debug, Clone, Copy)]
pub enum Toxic {
    /// Every chunk is delayed `ms` ± `jitter_ms`, both ways.
    Latency { ms: u64, jitter_ms: u64 },
    /// At most `kb_per_s` kilobytes a second, both ways.
    Bandwidth { kb_per_s: u64 },
    /// A black hole: data from the node is swallowed, nothing comes back, the connection stays
    /// open (Toxiproxy's `timeout` toxic with timeout 0).
    BlackHole,
    /// A partition: both directions swallowed.
    Partition,
    /// Every connection is reset (TCP RST) `after_ms` after it carries data.
    ResetPeer { after_ms: u64 },
}

impl Toxic {
    /// `(name suffix, type, stream, attributes)` of each toxic this fault adds.
    fn toxics(self) -> Vec<(&'static str, &'static str, &'static str, Value)> {
        match self {
            Toxic::Latency { ms, jitter_ms } => ["upstream", "downstream"]
                .map(|s| {
                    (
                        s,
                        "latency",
                        s,
                        json!({ "latency": ms, "jitter": jitter_ms }),
                    )
                })
                .to_vec(),
            Toxic::Bandwidth { kb_per_s } => ["upstream", "downstream"]
                .map(|s| (s, "bandwidth", s, json!({ "rate": kb_per_s })))
                .to_vec(),
            Toxic::BlackHole => vec![("up", "timeout", "upstream", json!({ "timeout": 0 }))],
            Toxic::Partition => ["upstream", "downstream"]
                .map(|s| (s, "timeout", s, json!({ "timeout": 0 })))
                .to_vec(),
            Toxic::ResetPeer { after_ms } => vec![(
                "up",
                "reset_peer",
                "upstream",
                json!({ "timeout": after_ms }),
            )],
        }
    }
}

/// `--primary-rpc` of node `k`: its RPC link.
pub fn rpc_listen(k: usize) -> String {
    format!("{}:{RPC_PROXY_PORT}", crate::cluster::ip(k))
}

/// Where node `k`'s LiteFS streams from the primary: its replication link.
pub fn replication_listen(k: usize) -> String {
    format!("{}:{REPLICATION_PROXY_PORT}", crate::cluster::ip(k))
}

/// The Toxiproxy server of a cluster; killed on drop.
pub struct Toxiproxy {
    child: Child,
    http: reqwest::Client,
}

/// The server, installed by `scripts/install-test-deps` (or named by `TOXIPROXY_BIN`).
fn server_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("TOXIPROXY_BIN") {
        return bin.into();
    }
    let out = Command::new(crate::install_test_deps())
        .arg("--toxiproxy")
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/install-test-deps runs");
    assert!(
        out.status.success(),
        "scripts/install-test-deps --toxiproxy failed"
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .expect("it prints the toxiproxy server path")
        .trim()
        .into()
}

impl Toxiproxy {
    /// Starts the server (its log in `dir/toxiproxy.log`) and waits for its API.
    pub async fn start(dir: &Path) -> Toxiproxy {
        let log = std::fs::File::create(dir.join("toxiproxy.log")).unwrap();
        let api = api();
        let (host, port) = api.split_once(':').unwrap();
        let child = crate::cluster::tied_to_this_process(server_bin())
            .args(["-host", host, "-port", port])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("toxiproxy starts");
        let proxy = Toxiproxy {
            child,
            http: reqwest::Client::new(),
        };
        crate::cluster::wait_until("Toxiproxy's API", || async {
            let r = proxy.http.get(format!("http://{api}/version")).send().await;
            r.ok()?.status().is_success().then_some(())
        })
        .await;
        proxy
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("http://{}{path}", api()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("Toxiproxy answers");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "Toxiproxy {method} {path}: {status} {text}"
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Creates node `k`'s two links, forwarding to the primary at `primary_ip`.
    pub async fn add_links(&self, k: usize, primary_ip: &str) {
        for (link, listen, port) in [
            (Link::Rpc, rpc_listen(k), 7070),
            (Link::Replication, replication_listen(k), 20202),
        ] {
            let body = json!({
                "name": link.proxy(k),
                "listen": listen,
                "upstream": format!("{primary_ip}:{port}"),
                "enabled": true,
            });
            self.call(reqwest::Method::POST, "/proxies", Some(body))
                .await;
        }
    }

    /// Points node `k`'s links at a new primary (existing connections are cut).
    pub async fn point_links_at(&self, k: usize, primary_ip: &str) {
        for (link, port) in [(Link::Rpc, 7070), (Link::Replication, 20202)] {
            let path = format!("/proxies/{}", link.proxy(k));
            let body = json!({ "upstream": format!("{primary_ip}:{port}") });
            self.call(reqwest::Method::POST, &path, Some(body)).await;
        }
    }

    /// Cuts node `k` off the primary, as if the primary's machine were lost: both links are
    /// disabled, which closes their connections and drops what they still held (a toxic such as
    /// [`Toxic::Partition`] would not: adding one makes a latency toxic let its data through).
    pub async fn cut(&self, k: usize) {
        for link in [Link::Rpc, Link::Replication] {
            let path = format!("/proxies/{}", link.proxy(k));
            let body = json!({ "enabled": false });
            self.call(reqwest::Method::POST, &path, Some(body)).await;
        }
    }

    /// Adds `toxic` to node `k`'s `link`, until [`Toxiproxy::heal`].
    pub async fn inject(&self, k: usize, link: Link, toxic: Toxic) {
        for (suffix, kind, stream, attributes) in toxic.toxics() {
            let body = json!({
                "name": format!("{kind}-{suffix}"),
                "type": kind,
                "stream": stream,
                "toxicity": 1.0,
                "attributes": attributes,
            });
            let path = format!("/proxies/{}/toxics", link.proxy(k));
            self.call(reqwest::Method::POST, &path, Some(body)).await;
        }
    }

    /// Removes every toxic of node `k`'s `link`.
    pub async fn heal(&self, k: usize, link: Link) {
        let path = format!("/proxies/{}/toxics", link.proxy(k));
        let toxics = self.call(reqwest::Method::GET, &path, None).await;
        for toxic in toxics.as_array().into_iter().flatten() {
            let name = toxic["name"].as_str().unwrap_or_default();
            let path = format!("/proxies/{}/toxics/{name}", link.proxy(k));
            self.call(reqwest::Method::DELETE, &path, None).await;
        }
    }
}

impl Drop for Toxiproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
