//! One struct for the whole configuration, from flags with environment fallbacks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The blog: Tags and Posts on SQLite, replicated by LiteFS, writes forwarded to the primary.
///
/// With no command it serves the blog. Every option can also be set by the environment variable
/// shown under it; a flag wins over its variable. `blog migrate --help` lists what migrating reads.
//
// The options `migrate` reads too (the database, the cluster's, the log format) are global: they
// go before or after the subcommand. The others are serving's: `blog --listen ...` or
// `blog serve --listen ...`; `serve`'s are made global within it, so that clap gives the values
// written before `serve` to it as well (a global option's value is shared along the command
// line, the one given explicitly winning), and `migrate --help` lists none of them.
#[derive(Debug, Parser)]
#[command(name = "blog", version, about)]
#[command(mut_subcommand("serve", |serve| serve.mut_args(|arg| arg.global(true))))]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the blog over HTTP (the default).
    Serve(Box<Config>),
    /// Apply, list or roll back migrations, and exit (default: apply pending ones).
    Migrate {
        #[command(subcommand)]
        action: Option<MigrateAction>,
    },
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// List each migration and whether it is applied.
    Status,
    /// Roll back the last `steps` applied migrations.
    Down {
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address the HTTP server listens on.
    #[arg(long, env = "BLOG_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// The SQLite database file. In cluster mode it lives inside the LiteFS mount. Without it,
    /// the path in `DATABASE_URL` (`sqlite://path`, as SeaORM's tools use), else data/blog.db.
    #[arg(
        long,
        env = "BLOG_DATABASE",
        default_value_os_t = default_database(),
        global = true
    )]
    pub database: PathBuf,

    /// The site's name: page titles, the header, the feed.
    #[arg(long, env = "BLOG_SITE_TITLE", default_value = "LiteFS Blog")]
    pub site_title: String,

    /// One sentence about the site, for search engines and link previews.
    #[arg(
        long,
        env = "BLOG_SITE_DESCRIPTION",
        default_value = "A blog on SQLite, replicated by LiteFS."
    )]
    pub site_description: String,

    /// Name shown on pages and in the `x-blog-node` header. Defaults to the host name.
    #[arg(long, env = "BLOG_NODE_NAME")]
    pub node_name: Option<String>,

    /// The admin password (user `admin`), at least 15 characters and at most 1024 bytes
    /// (`MIN_PASSWORD_CHARS`, `MAX_PASSWORD_BYTES`). Generated
    /// and printed at start when unset.
    #[arg(long, env = "BLOG_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// Key that signs session, CSRF and consistency cookies (at least 32 characters). Defaults to
    /// a random key generated once at migration and kept in the replicated database, so every node
    /// of a cluster agrees on it.
    #[arg(long, env = "BLOG_SESSION_SECRET", hide_env_values = true)]
    pub session_secret: Option<String>,

    /// The URL people use to reach the blog (`https://blog.example`): the origin of canonical
    /// links, the feed and the sitemap (without it, the request's `Host`, over https on Fly.io,
    /// http elsewhere). When it is https (or,
    /// unset, on Fly.io), cookies are `Secure`; forms are accepted only from its origin (without
    /// it, from the request's host). Kept as browsers write it:
    /// `https://Blog.Example:443/` is `https://blog.example`.
    #[arg(long, env = "BLOG_PUBLIC_URL", value_parser = public_url)]
    pub public_url: Option<String>,

    /// The header that carries the client's IP when a trusted proxy is in front (default on Fly:
    /// `fly-client-ip`). Used to throttle password guesses per client. Set it only behind a proxy
    /// that always sets it: otherwise clients choose their own IP.
    #[arg(long, env = "BLOG_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<String>,

    /// Serve `/metrics` on this address (host:port; host may be a name, such as Fly's
    /// `fly-local-6pn`) and nowhere else. Unset, the main listener serves it to clients on this
    /// machine (loopback) only, and not at all behind a proxy (a client-IP header set, or on Fly),
    /// which is a loopback peer for every client. Put it on a private address: metrics are not
    /// public.
    #[arg(long, env = "BLOG_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,

    /// A client that has not sent a request's headers within this time is disconnected. The same
    /// bound applies to a keep-alive connection waiting idle for its next request.
    #[arg(
        long = "header-read-timeout-ms",
        env = "BLOG_HEADER_READ_TIMEOUT_MS",
        value_name = "MS",
        default_value = "10000",
        value_parser = millis
    )]
    pub header_read_timeout: Duration,

    /// After SIGTERM, in-flight requests get this long to finish before the process exits.
    #[arg(
        long = "shutdown-grace-ms",
        env = "BLOG_SHUTDOWN_GRACE_MS",
        value_name = "MS",
        default_value = "5000",
        value_parser = millis
    )]
    pub shutdown_grace: Duration,

    /// Open HTTP connections served at once; beyond it a connection gets a 503 and is closed.
    #[arg(long, env = "BLOG_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Open HTTP connections one client address (an IPv6 /64) may hold; beyond it, a 503. Not
    /// applied to loopback peers, nor behind a proxy (`BLOG_CLIENT_IP_HEADER` set, or on Fly.io),
    /// where every connection is the proxy's: Fly's proxy limits concurrency itself
    /// (`[http_service.concurrency]`). 0: no cap.
    #[arg(long, env = "BLOG_MAX_CONNECTIONS_PER_CLIENT", default_value_t = 64)]
    pub max_connections_per_client: usize,

    /// Megabytes of posts' rendered HTML each node keeps in memory, so a post is rendered once
    /// rather than on every view (the least used go first). 0: render on every view.
    #[arg(long, env = "BLOG_RENDER_CACHE_MB", default_value_t = 32)]
    pub render_cache_mb: u64,

    /// A request still unanswered after this long is answered with a 503 that says so (in the
    /// API's JSON shape, or the site's error page); a write it was making may or may not be saved.
    /// From 100 to 600000, and above the search timeout.
    #[arg(
        long = "request-timeout-ms",
        env = "BLOG_REQUEST_TIMEOUT_MS",
        value_name = "MS",
        default_value = "30000",
        value_parser = request_timeout
    )]
    pub request_timeout: Duration,

    /// A search still running after this long is stopped (SQLite interrupts it) and answered
    /// with a 503 that says so: on a replica, a read that runs holds back replication there.
    /// From 1 to 29000, and below the request timeout.
    #[arg(
        long = "search-timeout-ms",
        env = "BLOG_SEARCH_TIMEOUT_MS",
        value_name = "MS",
        default_value = "5000",
        value_parser = search_timeout
    )]
    pub search_timeout: Duration,

    /// The LiteFS FUSE mount. Setting it turns cluster mode on.
    #[arg(long, env = "BLOG_LITEFS_DIR", global = true)]
    pub litefs_dir: Option<PathBuf>,

    /// LiteFS's HTTP API, for its `/events` stream.
    #[arg(
        long,
        env = "BLOG_LITEFS_API",
        default_value = "http://127.0.0.1:20202",
        global = true
    )]
    pub litefs_api: String,

    /// Where this node's write-forwarding RPC listens (host:port; host may be a name).
    #[arg(long, env = "BLOG_RPC_LISTEN", default_value = "127.0.0.1:7070")]
    pub rpc_listen: String,

    /// How to reach the primary's RPC: `{primary}` is replaced by the host name in `.primary`.
    #[arg(long, env = "BLOG_PRIMARY_RPC", default_value = "{primary}:7070")]
    pub primary_rpc: String,

    /// Shared secret that authenticates the nodes of a cluster to each other.
    #[arg(
        long,
        env = "BLOG_CLUSTER_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub cluster_secret: Option<String>,

    /// Deadline of a write, in milliseconds: waiting for the primary's writer, one forwarded
    /// call, and the wait for this node to replicate its commit. More than 0, more than the
    /// remote-transaction lease when that is set, and at most an hour.
    #[arg(
        long = "forward-timeout-ms",
        env = "BLOG_FORWARD_TIMEOUT_MS",
        value_name = "MS",
        default_value = "5000",
        value_parser = millis
    )]
    pub forward_timeout: Duration,

    /// On the primary: a remote transaction idle this long (its replica vanished) is rolled back.
    /// Default 2000, or half the forward timeout if that is less. More than 0, and below the
    /// forward timeout (the blog refuses to start otherwise), so that a vanished replica frees
    /// the writer before the writes queued behind it give up. A remote transaction open 30 s (or
    /// this long, if longer) is rolled back too.
    #[arg(
        long = "remote-tx-lease-ms",
        env = "BLOG_REMOTE_TX_LEASE_MS",
        value_name = "MS",
        value_parser = millis
    )]
    pub remote_tx_lease: Option<Duration>,

    /// Log format.
    #[arg(
        long,
        env = "BLOG_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// For people: one line per event (coloured on a terminal).
    Text,
    /// For log collectors (Fly's log shipping): one JSON object per line.
    Json,
}

/// A duration given in whole milliseconds (the unit of every `*_MS` setting).
fn millis(value: &str) -> Result<Duration, String> {
    value
        .parse()
        .map(Duration::from_millis)
        .map_err(|_| format!("expected whole milliseconds, got {value:?}"))
}

/// `BLOG_REQUEST_TIMEOUT_MS`: whole milliseconds from 100 to 600000.
fn request_timeout(value: &str) -> Result<Duration, String> {
    let timeout = millis(value)?;
    if timeout < Duration::from_millis(100) || timeout > Duration::from_secs(600) {
        return Err(format!("expected 100 to 600000 milliseconds, got {value}"));
    }
    Ok(timeout)
}

/// `BLOG_SEARCH_TIMEOUT_MS`: whole milliseconds from 1 to 29000 (on a replica, a search that
/// runs holds back replication there). It must also be below the request timeout (`check`).
fn search_timeout(value: &str) -> Result<Duration, String> {
    let timeout = millis(value)?;
    if timeout.is_zero() || timeout > Duration::from_secs(29) {
        return Err(format!(
            "expected 1 to 29000 milliseconds (on a replica, a search that runs holds back \
             replication there), got {value}"
        ));
    }
    Ok(timeout)
}

/// `BLOG_PUBLIC_URL`, parsed by the `url` crate as a browser would and written as browsers write
/// an `Origin`: scheme and host in lower case, no default port (`:443` for https, `:80` for http),
/// then the path without its trailing `/`. Refuses what is no http(s) URL of a host, and
/// credentials, a query or a fragment, which a site's address does not have.
fn public_url(value: &str) -> Result<String, String> {
    let url = url::Url::parse(value).map_err(|e| format!("not an absolute URL ({e})"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err("it must start with https:// or http://".into());
    }
    if url.host().is_none() {
        return Err("it has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("it must not carry a user name or password".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("it must not have a query (?) or fragment (#)".into());
    }
    Ok(format!(
        "{}{}",
        url.origin().ascii_serialization(),
        url.path().trim_end_matches('/')
    ))
}

/// Whether this process runs on a Fly.io machine.
fn on_fly() -> bool {
    std::env::var_os("FLY_APP_NAME").is_some_and(|v| !v.is_empty())
}

/// The shortest admin password accepted: NIST SP 800-63B (rev. 4) asks 15 characters of a password
/// that is the only factor.
pub const MIN_PASSWORD_CHARS: usize = 15;

/// The longest admin password accepted, in bytes (NIST asks that at least 64 characters be
/// allowed). A longer attempt cannot be the password: it is wrong without being hashed, so a
/// request waiting for an argon2 slot never holds more than this of a password.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The remote-transaction lease when `BLOG_REMOTE_TX_LEASE_MS` is not set, unless half the forward
/// timeout is less (the cluster layer's default).
pub const DEFAULT_REMOTE_TX_LEASE: Duration = Duration::from_secs(2);

/// The longest forward timeout and lease accepted, in milliseconds (the cluster layer's limit).
pub const MAX_FORWARDING_MS: u128 = 60 * 60 * 1000;

/// The shortest `BLOG_SESSION_SECRET` accepted.
pub const MIN_SESSION_SECRET_CHARS: usize = 32;
/// The database path in `DATABASE_URL` (`sqlite://blog.db?mode=rwc`, `sqlite:blog.db`), else
/// `data/blog.db`.
fn default_database() -> PathBuf {
    std::env::var("DATABASE_URL")
        .ok()
        .and_then(|url| sqlite_path(&url))
        .unwrap_or_else(|| PathBuf::from("data/blog.db"))
}

/// The file path of a `sqlite:` URL, without its query string.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

impl Config {
    /// Refuses settings that would make the sign-in weak, with a message that says what to do.
    pub fn check(&self) -> Result<(), String> {
        if let Some(password) = &self.admin_password
            && password.chars().count() < MIN_PASSWORD_CHARS
        {
            return Err(format!(
                "BLOG_ADMIN_PASSWORD must be at least {MIN_PASSWORD_CHARS} characters \
                 (unset it to have one generated)"
            ));
        }
        if let Some(password) = &self.admin_password
            && password.len() > MAX_PASSWORD_BYTES
        {
            return Err(format!(
                "BLOG_ADMIN_PASSWORD must be at most {MAX_PASSWORD_BYTES} bytes"
            ));
        }
        if let Some(secret) = &self.session_secret
            && secret.chars().count() < MIN_SESSION_SECRET_CHARS
        {
            return Err(format!(
                "BLOG_SESSION_SECRET must be at least {MIN_SESSION_SECRET_CHARS} characters \
                 (unset it to use the key kept in the database)"
            ));
        }
        if let Some(header) = &self.client_ip_header {
            axum::http::HeaderName::try_from(header.as_str()).map_err(|e| {
                format!("BLOG_CLIENT_IP_HEADER is not a header name ({e}): {header}")
            })?;
        }
        if self.search_timeout >= self.request_timeout {
            return Err(format!(
                "BLOG_SEARCH_TIMEOUT_MS ({} ms) must be below BLOG_REQUEST_TIMEOUT_MS ({} ms): a \
                 search is stopped with an answer that says so only within its request's time",
                self.search_timeout.as_millis(),
                self.request_timeout.as_millis()
            ));
        }
        self.check_forwarding()
    }

    /// The remote-transaction lease: as set, else 2000 ms, or half the forward timeout if that is
    /// less, so that setting only the timeout (to 2000 or less) works. The cluster crate's
    /// `Builder` has the same default.
    pub fn remote_tx_lease(&self) -> Duration {
        self.remote_tx_lease
            .unwrap_or_else(|| DEFAULT_REMOTE_TX_LEASE.min(self.forward_timeout / 2))
    }

    /// The forwarding limits, as the cluster crate's `Builder::start` checks them, said in the
    /// blog's own settings' names. Only a lease set explicitly can be 0 or reach the timeout: the
    /// default is below any timeout above 0.
    fn check_forwarding(&self) -> Result<(), String> {
        let timeout = self.forward_timeout.as_millis();
        let mut limits = vec![("BLOG_FORWARD_TIMEOUT_MS", timeout)];
        let lease = self.remote_tx_lease.map(|lease| lease.as_millis());
        limits.extend(lease.map(|lease| ("BLOG_REMOTE_TX_LEASE_MS", lease)));
        for (setting, value) in limits {
            if value > MAX_FORWARDING_MS {
                return Err(format!(
                    "{setting} ({value} ms) is longer than an hour ({MAX_FORWARDING_MS} ms), the \
                     most a write may wait"
                ));
            }
        }
        if timeout == 0 {
            return Err(
                "BLOG_FORWARD_TIMEOUT_MS is 0: every write would give up before it starts \
                 (unset it for the default, 5000)"
                    .into(),
            );
        }
        match lease {
            None => Ok(()),
            Some(0) => Err(
                "BLOG_REMOTE_TX_LEASE_MS is 0: a transaction from a replica would be rolled \
                 back at its first pause (unset it for the default, 2000 or half the forward \
                 timeout if that is less)"
                    .into(),
            ),
            Some(lease) if lease >= timeout => Err(format!(
                "BLOG_REMOTE_TX_LEASE_MS ({lease} ms) must be below BLOG_FORWARD_TIMEOUT_MS \
                 ({timeout} ms): on the primary, a write queued behind the transaction of a \
                 replica that vanished waits for the lease to roll it back, and gives up at the \
                 forward timeout. Lower BLOG_REMOTE_TX_LEASE_MS or raise BLOG_FORWARD_TIMEOUT_MS, \
                 leaving the write time to run (the defaults are 2000 and 5000)"
            )),
            Some(_) => Ok(()),
        }
    }

    /// Whether cookies must be `Secure`: the public URL is https, or the blog runs on Fly.io
    /// (`FLY_APP_NAME` is set), whose proxy serves every app over https.
    pub fn secure_cookies(&self) -> bool {
        match self.public_url.as_deref() {
            Some(url) => url.starts_with("https://"),
            None => on_fly(),
        }
    }

    /// The per-client connection cap, when it applies: not behind a proxy (see
    /// [`Config::max_connections_per_client`]), and not when it is 0.
    pub fn connection_cap_per_client(&self) -> Option<usize> {
        (self.client_ip_header().is_none() && self.max_connections_per_client > 0)
            .then_some(self.max_connections_per_client)
    }

    /// The header with the client's IP: as configured, or on Fly.io the `fly-client-ip` its proxy
    /// always sets.
    pub fn client_ip_header(&self) -> Option<String> {
        self.client_ip_header
            .clone()
            .or_else(|| on_fly().then(|| "fly-client-ip".to_owned()))
    }

    /// The origin forms must come from (`https://host[:port]`, as browsers send it in `Origin`),
    /// when the public URL is known.
    pub fn public_origin(&self) -> Option<String> {
        let url = url::Url::parse(self.public_url.as_deref()?).ok()?;
        Some(url.origin().ascii_serialization())
    }

    pub fn node_name(&self) -> String {
        self.node_name.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::sqlite_path;

    #[test]
    fn database_urls_name_a_file() {
        assert_eq!(
            sqlite_path("sqlite://data/blog.db?mode=rwc"),
            Some("data/blog.db".into())
        );
        assert_eq!(
            sqlite_path("sqlite:///srv/blog.db"),
            Some("/srv/blog.db".into())
        );
        assert_eq!(sqlite_path("sqlite:blog.db"), Some("blog.db".into()));
        assert_eq!(sqlite_path("postgres://x/y"), None);
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }
}
