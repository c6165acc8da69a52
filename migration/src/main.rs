//! The migration crate's own command line, sea-orm-migration's: `cargo run -p migration -- status`
//! (or `up`, `down`, `fresh`, `refresh`, `reset`), the same commands `sea-orm-cli migrate` runs.
//!
//! The database is `-u URL`, else `DATABASE_URL` (`sqlite://data/blog.db?mode=rwc`), else the
//! blog's own `BLOG_DATABASE` path, else `data/blog.db`, the blog's default.
//!
//! On a LiteFS cluster, run it on the primary only (replicas refuse writes); the blog itself
//! applies pending migrations when it starts on the primary.

use sea_orm_migration::prelude::*;

fn main() {
    if std::env::var_os("DATABASE_URL").is_none() {
        let url = blog_database_url();
        // SAFETY: no other thread exists yet: the runtime starts below.
        unsafe { std::env::set_var("DATABASE_URL", url) };
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(cli::run_cli(migration::Migrator));
}

/// The blog's database as a URL: `BLOG_DATABASE`, else `data/blog.db` (its directory created,
/// as the blog itself does).
fn blog_database_url() -> String {
    let path = std::env::var("BLOG_DATABASE").unwrap_or_else(|_| "data/blog.db".into());
    if let Some(dir) = std::path::Path::new(&path).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    format!("sqlite://{path}?mode=rwc")
}
