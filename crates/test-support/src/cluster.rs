//! A real LiteFS cluster on one machine, for tests.
//!
//! Node K lives on loopback address 127.A.B.(10+K), A.B chosen per test process (see [`ip`]): its own LiteFS (FUSE mount, data dir, HTTP API
//! on :20202, static lease) and `blog serve` on :8080 with its RPC on :7070. Node 1 is primary
//! unless told otherwise; every node's lease hostname is the primary's address, so a replica's
//! `.primary` reads e.g. `127.A.B.11`. Readiness is waited on (LiteFS `/info`, `.primary`, the
//! app's `/readyz`), never slept for. Dropping the cluster, also while a test panics, kills every
//! process and unmounts every FUSE mount. Tests that use it take a process-wide lock, so they run
//! one after another in one `cargo test`.
//!
//! With [`Cluster::start_with_links`], every node's links to the primary go through Toxiproxy
//! (see [`toxiproxy`](crate::toxiproxy)): its forwarding RPC (`--primary-rpc`) and its LiteFS
//! replication stream (its `lease.advertise-url`), so tests can slow, cut or reset each link.
//! Process faults ([`Cluster::kill_app`], [`Cluster::kill_litefs`], [`Cluster::pause_app`]) act on
//! the real processes with real signals.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const ADMIN_PASSWORD: &str = "cluster-test-password";
pub const SECRET: &str = "cluster-test-secret";
/// Forward deadline given to every app, short so that "primary down" tests answer quickly.
pub const FORWARD_TIMEOUT_MS: u64 = 2000;
/// Idle lease of remote transactions on the primary (below the forward deadline, as it must be).
pub const REMOTE_TX_LEASE_MS: u64 = 1000;
const READY_TIMEOUT: Duration = Duration::from_secs(60);

static SERIAL: Mutex<()> = Mutex::new(());

/// The LiteFS binary, installed by `scripts/install-test-deps` (the README's test command).
fn litefs_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("LITEFS_BIN") {
        return bin.into();
    }
    let out = Command::new(crate::install_test_deps())
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/install-test-deps runs");
    assert!(
        out.status.success(),
        "scripts/install-test-deps failed: LiteFS is needed for the cluster tests"
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .expect("it prints the litefs path")
        .trim()
        .into()
}

pub struct Node {
    pub k: usize,
    pub ip: String,
    pub dir: PathBuf,
    litefs: Option<Child>,
    app: Option<Child>,
}

impl Node {
    pub fn mnt(&self) -> PathBuf {
        self.dir.join("mnt")
    }
    pub fn db_path(&self) -> PathBuf {
        self.mnt().join("blog.db")
    }
    pub fn url(&self) -> String {
        format!("http://{}:8080", self.ip)
    }
    pub fn litefs_api(&self) -> String {
        format!("http://{}:20202", self.ip)
    }
    /// The flags every `blog` command run on this node takes, as `blog serve` gets them: its
    /// database in the mount, LiteFS's API, and where its forwarding RPC listens.
    pub fn blog_flags(&self) -> Vec<std::ffi::OsString> {
        vec![
            "--database".into(),
            self.db_path().into(),
            "--litefs-dir".into(),
            self.mnt().into(),
            "--litefs-api".into(),
            self.litefs_api().into(),
            "--rpc-listen".into(),
            format!("{}:7070", self.ip).into(),
        ]
    }
    /// LiteFS's own HTTP proxy in front of the app, in a cluster started with it.
    pub fn litefs_proxy(&self) -> String {
        format!("http://{}:{LITEFS_PROXY_PORT}", self.ip)
    }
    pub fn app_log(&self) -> PathBuf {
        self.dir.join("app.log")
    }
    /// LiteFS position (TXID) of the node's database, 0 before it exists.
    pub fn txid(&self) -> u64 {
        std::fs::read_to_string(self.mnt().join("blog.db-pos"))
            .ok()
            .and_then(|s| u64::from_str_radix(s.split('/').next()?.trim(), 16).ok())
            .unwrap_or(0)
    }
    pub fn primary_file(&self) -> Option<String> {
        std::fs::read_to_string(self.mnt().join(".primary")).ok()
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    /// 1-based index of the primary.
    pub primary: usize,
    root: PathBuf,
    litefs: PathBuf,
    /// A node whose replication stream from the primary goes through [`lagging_proxy`].
    lagged: Option<usize>,
    /// Toxiproxy between every node and the primary, when started with links.
    pub links: Option<crate::toxiproxy::Toxiproxy>,
    /// Whether every node runs the blog's app (else LiteFS only).
    apps: bool,
    /// Whether every LiteFS runs its HTTP proxy in front of the app.
    litefs_proxy: bool,
    _serial: MutexGuard<'static, ()>,
}

/// Where LiteFS's own HTTP proxy listens, in a cluster started with it.
const LITEFS_PROXY_PORT: u16 = 8081;

/// Where a lagged node's LiteFS connects to reach the primary.
const LAG_PROXY_PORT: u16 = 20299;

/// `BLOG_CLUSTER_TRACE_DIR`, for investigating a failure: every LiteFS writes its trace log
/// (each lock, WAL write and commit) there, and the cluster copies every node's LiteFS and app log
/// there before it removes its directory.
fn trace_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("BLOG_CLUSTER_TRACE_DIR")?);
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir)
}

/// Node `k`'s address: 127.A.B.(10+k), where 127.A.B.0/24 is this process's own part of the
/// loopback network (Linux routes all of 127.0.0.0/8 to `lo`), chosen from the process id. So two
/// test runs on one machine use different addresses and never meet, though every node keeps
/// the same well-known ports (LiteFS 20202, app 8080, RPC 7070). Node 0 is Toxiproxy's API.
pub fn ip(k: usize) -> String {
    static NETWORK: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let network = NETWORK.get_or_init(|| {
        let pid = std::process::id() as usize;
        format!("127.{}.{}", 1 + (pid / 250) % 250, 1 + pid % 250)
    });
    format!("{network}.{}", 10 + k)
}

impl Cluster {
    /// Starts `n` nodes with node 1 primary, each running LiteFS and the blog, and waits until all
    /// are ready.
    pub async fn start(n: usize) -> Cluster {
        Self::start_lagged(n, None).await
    }

    /// Like [`Cluster::start`], but node `lagged.0` (a replica) receives everything from the
    /// primary `lagged.1` late, like a replica far away.
    pub async fn start_with_lag(n: usize, node: usize, lag: Duration) -> Cluster {
        Self::start_lagged(n, Some((node, lag))).await
    }

    /// Like [`Cluster::start`], but every node reaches the primary (RPC and replication) through
    /// its own Toxiproxy links, healthy until a test adds toxics.
    pub async fn start_with_links(n: usize) -> Cluster {
        Self::start_inner(n, None, true, true).await
    }

    /// Like [`Cluster::start_with_links`], and every LiteFS also runs its own HTTP proxy in front
    /// of the app ([`Node::litefs_proxy`]): on a replica it answers a write with `fly-replay`
    /// naming the primary, on the primary it passes requests to the app and sets its TXID cookie.
    pub async fn start_with_links_and_litefs_proxy(n: usize) -> Cluster {
        Self::start_inner_with(n, None, true, true, true).await
    }

    /// `n` nodes running LiteFS only, node 1 primary: for apps opened in this process with
    /// [`Cluster::connect`] (the primary's first, which creates the database).
    pub async fn start_litefs_only(n: usize) -> Cluster {
        Self::start_inner(n, None, false, false).await
    }

    async fn start_lagged(n: usize, lag: Option<(usize, Duration)>) -> Cluster {
        Self::start_inner(n, lag, false, true).await
    }

    async fn start_inner(
        n: usize,
        lag: Option<(usize, Duration)>,
        links: bool,
        apps: bool,
    ) -> Cluster {
        Self::start_inner_with(n, lag, links, apps, false).await
    }

    async fn start_inner_with(
        n: usize,
        lag: Option<(usize, Duration)>,
        links: bool,
        apps: bool,
        litefs_proxy: bool,
    ) -> Cluster {
        let serial = SERIAL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let root = std::env::temp_dir().join(format!("blog-cluster-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let nodes = (1..=n)
            .map(|k| {
                let dir = root.join(format!("node{k}"));
                std::fs::create_dir_all(dir.join("mnt")).unwrap();
                std::fs::create_dir_all(dir.join("data")).unwrap();
                Node {
                    k,
                    ip: ip(k),
                    dir,
                    litefs: None,
                    app: None,
                }
            })
            .collect();
        let mut cluster = Cluster {
            nodes,
            primary: 1,
            root,
            litefs: litefs_bin(),
            lagged: lag.map(|(k, _)| k),
            links: None,
            apps,
            litefs_proxy,
            _serial: serial,
        };
        if links {
            let proxies = crate::toxiproxy::Toxiproxy::start(&cluster.root).await;
            for k in 1..=n {
                proxies.add_links(k, &ip(cluster.primary)).await;
            }
            cluster.links = Some(proxies);
        }
        if let Some((k, delay)) = lag {
            let listen = format!("{}:{LAG_PROXY_PORT}", ip(k));
            // The previous cluster's proxy may hold the port still: its test's runtime, which
            // owns the proxy's task, shuts down after that cluster (and the serial lock) is
            // dropped.
            let listener = wait_until("the lag proxy's port to be free", || {
                let listen = listen.clone();
                async move { tokio::net::TcpListener::bind(&listen).await.ok() }
            })
            .await;
            tokio::spawn(lagging_proxy(listener, format!("{}:20202", ip(1)), delay));
        }
        cluster.start_all().await;
        cluster
    }

    pub fn node(&self, k: usize) -> &Node {
        &self.nodes[k - 1]
    }

    pub fn url(&self, k: usize) -> String {
        self.node(k).url()
    }

    /// Options for joining node `k` from this process, as another app would. Its RPC listens on
    /// a free port of the node's address beside a node app, or, in a LiteFS-only cluster, on the
    /// node's RPC port (7070), where the other nodes' connections forward to. Its forward
    /// timeout and remote-transaction lease are the apps' ([`FORWARD_TIMEOUT_MS`],
    /// [`REMOTE_TX_LEASE_MS`]).
    pub fn options(&self, k: usize) -> sea_orm_litefs::Builder {
        let node = self.node(k);
        let port = if self.apps { 0 } else { 7070 };
        sea_orm_litefs::Builder::new(node.db_path())
            .litefs(node.mnt(), node.litefs_api())
            .rpc_listen(format!("{}:{port}", node.ip))
            .primary_rpc("{primary}:7070")
            .secret(SECRET)
            .forward_timeout(Duration::from_millis(FORWARD_TIMEOUT_MS))
            .remote_transaction_lease(Duration::from_millis(REMOTE_TX_LEASE_MS))
    }

    /// A primary on node 1 and a replica on node 2, both opened in this process, the replica
    /// forwarding to the primary's own RPC; `change` adjusts the primary's settings (faults,
    /// limits, procedures). Keep the primary's handle: it is the primary.
    pub async fn primary_and_replica(
        &self,
        change: impl FnOnce(sea_orm_litefs::Builder) -> sea_orm_litefs::Builder,
    ) -> (
        sea_orm_litefs::ClusterConnection,
        sea_orm_litefs::ClusterConnection,
    ) {
        let primary = change(self.options(1))
            .start()
            .await
            .expect("the primary starts");
        let port = primary
            .rpc_addr()
            .expect("a cluster node serves RPC")
            .port();
        let replica = self
            .options(2)
            .primary_rpc(format!("{{primary}}:{port}"))
            .start()
            .await
            .expect("the replica starts");
        (primary, replica)
    }

    /// A SeaORM connection on node `k`, opened in this process.
    pub async fn connect(&self, k: usize) -> sea_orm_litefs::ClusterConnection {
        self.options(k).start().await.expect("joins the cluster")
    }

    /// The replicas' indexes.
    pub fn replicas(&self) -> Vec<usize> {
        (1..=self.nodes.len())
            .filter(|k| *k != self.primary)
            .collect()
    }

    async fn start_all(&mut self) {
        let order: Vec<usize> = std::iter::once(self.primary)
            .chain(self.replicas())
            .collect();
        for &k in &order {
            self.start_litefs(k).await;
        }
        if self.apps {
            for &k in &order {
                self.start_app(k).await;
            }
        }
    }

    fn write_litefs_config(&self, k: usize) -> PathBuf {
        let node = self.node(k);
        let primary_ip = ip(self.primary);
        let advertise = match (self.lagged, &self.links) {
            (Some(lagged), _) if lagged == k => format!("{}:{LAG_PROXY_PORT}", ip(k)),
            (_, Some(_)) if k != self.primary => crate::toxiproxy::replication_listen(k),
            _ => format!("{primary_ip}:20202"),
        };
        let config = format!(
            "data:\n  dir: \"{data}\"\nfuse:\n  dir: \"{mnt}\"\nhttp:\n  addr: \"{ip}:20202\"\nlease:\n  type: \"static\"\n  hostname: \"{primary_ip}\"\n  advertise-url: \"http://{advertise}\"\n  candidate: {candidate}\n",
            data = node.dir.join("data").display(),
            mnt = node.mnt().display(),
            ip = node.ip,
            candidate = k == self.primary,
        );
        let config = if self.litefs_proxy {
            format!(
                "{config}proxy:\n  addr: \"{ip}:{LITEFS_PROXY_PORT}\"\n  target: \"{ip}:8080\"\n  db: \"blog.db\"\n",
                ip = node.ip,
            )
        } else {
            config
        };
        let config = match trace_dir() {
            Some(dir) => format!(
                "{config}tracing:\n  enabled: true\n  path: \"{}\"\n  max-size: 512\n  compress: false\n",
                dir.join(format!("node{k}-litefs-trace.log")).display()
            ),
            None => config,
        };
        let path = node.dir.join("litefs.yml");
        std::fs::write(&path, config).unwrap();
        path
    }

    /// Starts node `k`'s LiteFS and waits until it is primary or connected to the primary.
    pub async fn start_litefs(&mut self, k: usize) {
        let config = self.write_litefs_config(k);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.node(k).dir.join("litefs.log"))
            .unwrap();
        let child = tied_to_this_process(&self.litefs)
            .args(["mount", "-config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("litefs starts");
        self.nodes[k - 1].litefs = Some(child);
        let is_primary = k == self.primary;
        let node = self.node(k);
        let api = node.litefs_api();
        wait_until(&format!("node {k} LiteFS ready"), || async {
            let info = reqwest::get(format!("{api}/info"))
                .await
                .ok()?
                .json::<serde_json::Value>()
                .await
                .ok()?;
            let ready = if is_primary {
                info["isPrimary"] == true
            } else {
                node.primary_file().is_some()
            };
            ready.then_some(())
        })
        .await;
    }

    /// Stops node `k`'s LiteFS gracefully (it unmounts), killing it if it does not stop. A mount
    /// still in use (an app left running) is then detached lazily.
    pub fn stop_litefs(&mut self, k: usize) {
        if let Some(child) = self.nodes[k - 1].litefs.take() {
            terminate(child);
        }
        unmount(&self.node(k).mnt());
    }

    /// Starts node `k`'s app and waits for its `/readyz`.
    pub async fn start_app(&mut self, k: usize) {
        self.start_app_with(k, &[], "/readyz").await;
    }

    /// Starts node `k`'s app with `env` set on top of the cluster's (a wrong setting, say), and
    /// waits until `path` answers a success (`/healthz` for an app that may not be ready).
    pub async fn start_app_with(&mut self, k: usize, env: &[(&str, &str)], path: &str) {
        let node = self.node(k);
        let primary_rpc = match self.links {
            Some(_) => crate::toxiproxy::rpc_listen(k),
            None => "{primary}:7070".to_owned(),
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.app_log())
            .unwrap();
        let child = tied_to_this_process(crate::blog_binary())
            .arg("serve")
            .args(["--listen", &format!("{}:8080", node.ip)])
            .args(node.blog_flags())
            .args(["--primary-rpc", &primary_rpc])
            .args(["--node-name", &format!("node{k}")])
            .env("BLOG_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("BLOG_CLUSTER_SECRET", SECRET)
            .env("BLOG_FORWARD_TIMEOUT_MS", FORWARD_TIMEOUT_MS.to_string())
            .env("BLOG_REMOTE_TX_LEASE_MS", REMOTE_TX_LEASE_MS.to_string())
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("blog starts");
        self.nodes[k - 1].app = Some(child);
        let url = format!("{}{path}", self.url(k));
        let log = self.node(k).app_log();
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            if reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            if let Some(status) = self.nodes[k - 1].app.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "node {k}'s app exited ({status}) before it was ready: see {}",
                    log.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "node {k}'s app was not ready within {READY_TIMEOUT:?}"
            );
        }
    }

    /// Stops node `k`'s app (its LiteFS keeps running).
    pub fn stop_app(&mut self, k: usize) {
        if let Some(mut child) = self.nodes[k - 1].app.take() {
            if let Ok(Some(status)) = child.try_wait() {
                eprintln!("node {k}'s app had already exited: {status}");
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops node `k`'s app as `litefs mount` stops its `exec` command: SIGTERM, then a wait for
    /// it to exit (it drains its requests); killed if it takes longer than 10 s.
    /// Returns how it exited (`None` if it was not running).
    pub fn terminate_app(&mut self, k: usize) -> Option<std::process::ExitStatus> {
        let child = self.nodes[k - 1].app.take()?;
        terminate(child)
    }

    /// How node `k`'s app exited, if it did (it is then forgotten, so it can be started again).
    pub fn app_exit(&mut self, k: usize) -> Option<std::process::ExitStatus> {
        let app = self.nodes[k - 1].app.as_mut()?;
        let status = app.try_wait().ok()??;
        self.nodes[k - 1].app = None;
        Some(status)
    }

    /// kill -9 of node `k`'s app: no shutdown, requests in flight are cut. [`Cluster::start_app`]
    /// brings it back.
    pub fn kill_app(&mut self, k: usize) {
        self.stop_app(k);
    }

    /// kill -9 of node `k`'s LiteFS, then its FUSE mount is detached (lazily: the app may still
    /// hold files in it). [`Cluster::start_litefs`] mounts a fresh LiteFS at the same place.
    pub fn kill_litefs(&mut self, k: usize) {
        if let Some(mut child) = self.nodes[k - 1].litefs.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let mnt = self.node(k).mnt();
        if is_mounted(&mnt) {
            let _ = Command::new("fusermount3").arg("-uz").arg(&mnt).status();
        }
    }

    /// SIGSTOP (`paused`) or SIGCONT (`!paused`) to node `k`'s app.
    pub fn pause_app(&self, k: usize, paused: bool) {
        let child = self.nodes[k - 1].app.as_ref().expect("the app is running");
        let signal = if paused { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} of node {k}'s app");
    }

    /// Restarts every LiteFS with node `k` as primary, keeping every data dir. The apps keep
    /// running, untouched: they follow the new primary through LiteFS. Returns once every app
    /// reports its new role.
    pub async fn restart_with_primary(&mut self, k: usize) {
        self.restart_litefs_with_primary(k).await;
        self.wait_for_roles().await;
    }

    /// The first half of [`Cluster::restart_with_primary`]: every LiteFS restarted with node `k`
    /// as primary (and every Toxiproxy link pointed at it), the apps not waited for.
    pub async fn restart_litefs_with_primary(&mut self, k: usize) {
        for i in 1..=self.nodes.len() {
            self.stop_litefs(i);
        }
        self.primary = k;
        if let Some(links) = &self.links {
            for i in 1..=self.nodes.len() {
                links.point_links_at(i, &ip(k)).await;
            }
        }
        let order: Vec<usize> = std::iter::once(k).chain(self.replicas()).collect();
        for &i in &order {
            self.start_litefs(i).await;
        }
    }

    /// Waits until every app reports the role LiteFS gives its node.
    pub async fn wait_for_roles(&self) {
        for i in 1..=self.nodes.len() {
            let expected = if i == self.primary {
                "primary"
            } else {
                "replica"
            };
            let url = format!("{}/readyz", self.url(i));
            wait_until(&format!("node {i}'s app reporting {expected}"), || async {
                let response = reqwest::get(&url).await.ok()?;
                (response.status().is_success() && response.headers()["x-blog-role"] == expected)
                    .then_some(())
            })
            .await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for node in &self.nodes {
                for log in ["litefs.log", "app.log"] {
                    let text = std::fs::read_to_string(node.dir.join(log)).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(30).collect();
                    eprintln!("--- node{} {log} (last lines) ---", node.k);
                    for line in tail.iter().rev() {
                        eprintln!("{line}");
                    }
                }
            }
        }
        // The apps go first, as `litefs mount` stops its `exec` command before it unmounts.
        for k in 1..=self.nodes.len() {
            self.stop_app(k);
        }
        // Then each LiteFS. A mount still in use now is this process's own: the nodes a test
        // opened in it (`Cluster::connect`, `primary_and_replica`) keep their SQLite files open
        // until the test's runtime drops their tasks, which is after the cluster. LiteFS would
        // try to unmount it on SIGTERM and fail ("Device or resource busy"), so such a LiteFS is
        // stopped as `kill_litefs` does, its mount detached lazily; an unused mount is left to
        // LiteFS to unmount as it stops.
        for k in 1..=self.nodes.len() {
            if in_use(&self.node(k).mnt()) {
                self.kill_litefs(k);
            } else {
                self.stop_litefs(k);
            }
        }
        if let Some(dir) = trace_dir() {
            for node in &self.nodes {
                for log in ["litefs.log", "app.log"] {
                    let kept = dir.join(format!("node{}-{log}", node.k));
                    let _ = std::fs::copy(node.dir.join(log), kept);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A command for `program` that gets SIGTERM if this test process dies first (`setpriv
/// --pdeathsig`, which then execs it, so the child's pid is the program's): a test killed by a
/// signal, which runs no `Drop`, leaves no LiteFS, app or proxy holding the cluster's addresses.
pub fn tied_to_this_process(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("setpriv");
    command.args(["--pdeathsig", "TERM", "--"]).arg(program);
    command
}

/// SIGTERM, then waits up to 10 s for the exit (SIGKILL past that); returns how it exited.
fn terminate(mut child: Child) -> Option<std::process::ExitStatus> {
    let pid = child.id().to_string();
    let _ = Command::new("kill").arg("-TERM").arg(&pid).status();
    let (exited, exit) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = exited.send(child.wait());
    });
    match exit.recv_timeout(Duration::from_secs(10)) {
        Ok(status) => status.ok(),
        Err(_) => {
            let _ = Command::new("kill").arg("-KILL").arg(&pid).status();
            exit.recv().ok().and_then(Result::ok)
        }
    }
}

fn is_mounted(path: &Path) -> bool {
    let target = path.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(&target))
}

/// Whether any process has a file open in the mount `mnt` (a database, its WAL or its shared
/// memory index): an unmount then fails with "Device or resource busy".
fn in_use(mnt: &Path) -> bool {
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return false;
    };
    processes
        .flatten()
        .filter(|p| {
            p.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|p| std::fs::read_dir(p.path().join("fd")).ok())
        .flat_map(|fds| fds.flatten())
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|file| file.starts_with(mnt)))
}

/// Removes the mount LiteFS left behind (it could not unmount, or did not stop in time). One
/// still in use (apps left running across a LiteFS restart hold their files by design) cannot be
/// unmounted at once: it is detached lazily, and goes once its last file is closed.
fn unmount(path: &Path) {
    if !is_mounted(path) {
        return;
    }
    if !in_use(path) {
        let _ = Command::new("fusermount3").arg("-u").arg(path).status();
    }
    if is_mounted(path) {
        let _ = Command::new("fusermount3").arg("-uz").arg(path).status();
    }
}

/// A TCP proxy that passes bytes to `target` at once and brings its answers back `delay` late.
async fn lagging_proxy(listener: tokio::net::TcpListener, target: String, delay: Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    while let Ok((client, _)) = listener.accept().await {
        let Ok(server) = tokio::net::TcpStream::connect(&target).await else {
            continue;
        };
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        tokio::spawn(async move { tokio::io::copy(&mut client_read, &mut server_write).await });
        let (tx, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n @ 1..) = server_read.read(&mut buf).await {
                if tx
                    .send((tokio::time::Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            while let Some((due, bytes)) = rx.recv().await {
                tokio::time::sleep_until(due).await;
                if client_write.write_all(&bytes).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// Polls `probe` until it returns `Some`, for at most a minute; panics with `what` otherwise.
pub async fn wait_until<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
    }
}
