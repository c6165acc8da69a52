//! One struct for the whole configuration, from flags with environment fallbacks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// The blog: Tags and Posts on SQLite, replicated by LiteFS, writes forwarded to the primary.
#[derive(Debug, Parser)]
#[command(name = "blog", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the blog over HTTP (the default).
    Serve,
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
    #[arg(
        long,
        env = "BLOG_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
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
    #[arg(
        long,
        env = "BLOG_SITE_TITLE",
        default_value = "LiteFS Blog",
        global = true
    )]
    pub site_title: String,

    /// One sentence about the site, for search engines and link previews.
    #[arg(
        long,
        env = "BLOG_SITE_DESCRIPTION",
        default_value = "A blog on SQLite, replicated by LiteFS.",
        global = true
    )]
    pub site_description: String,

    /// The public URL (`https://blog.example.com`) for canonical links, the feed and the
    /// sitemap. Defaults to the request's `Host`.
    #[arg(long, env = "BLOG_SITE_URL", global = true)]
    pub site_url: Option<String>,

    /// Name shown on pages and in the `x-blog-node` header. Defaults to the host name.
    #[arg(long, env = "BLOG_NODE_NAME", global = true)]
    pub node_name: Option<String>,

    /// The admin password (user `admin`). Generated and printed at start when unset.
    #[arg(
        long,
        env = "BLOG_ADMIN_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    pub admin_password: Option<String>,

    /// Key that signs session and consistency cookies. Defaults to one derived from the
    /// cluster secret and admin password, so every node of a cluster agrees on it.
    #[arg(
        long,
        env = "BLOG_SESSION_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub session_secret: Option<String>,

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
    #[arg(
        long,
        env = "BLOG_RPC_LISTEN",
        default_value = "127.0.0.1:7070",
        global = true
    )]
    pub rpc_listen: String,

    /// How to reach the primary's RPC: `{primary}` is replaced by the host name in `.primary`.
    #[arg(
        long,
        env = "BLOG_PRIMARY_RPC",
        default_value = "{primary}:7070",
        global = true
    )]
    pub primary_rpc: String,

    /// Shared secret that authenticates the nodes of a cluster to each other.
    #[arg(
        long,
        env = "BLOG_CLUSTER_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub cluster_secret: Option<String>,

    /// Deadline of one forwarded call, in milliseconds.
    #[arg(
        long,
        env = "BLOG_FORWARD_TIMEOUT_MS",
        default_value_t = 5000,
        global = true
    )]
    pub forward_timeout_ms: u64,

    /// On the primary: a remote transaction idle this long (its replica vanished) is rolled back.
    #[arg(
        long,
        env = "BLOG_REMOTE_TX_LEASE_MS",
        default_value_t = 5000,
        global = true
    )]
    pub remote_tx_lease_ms: u64,

    /// Log format: `text` or `json`.
    #[arg(long, env = "BLOG_LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: String,
}

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
    pub fn node_name(&self) -> String {
        self.node_name.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".into())
        })
    }

    pub fn forward_timeout(&self) -> Duration {
        Duration::from_millis(self.forward_timeout_ms)
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
