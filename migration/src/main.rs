//! The migration crate's own command line, sea-orm-migration's: `cargo run -p migration -- status`
//! (or `up`, `down`, `fresh`, `refresh`, `reset`), the same commands `sea-orm-cli migrate` runs.
//!
//! The database is `DATABASE_URL` (`sqlite://data/blog.db?mode=rwc`), else the blog's own
//! `BLOG_DATABASE` path, else `data/blog.db`, the blog's default.
//!
//! On a LiteFS cluster, run it on the primary only (replicas refuse writes); the blog itself
//! applies pending migrations when it starts on the primary.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::Database;

#[tokio::main]
async fn main() {
    cli::run_cli_with_custom_connection(migration::Migrator, async || {
        Database::connect(database_url()).await
    })
    .await;
}

fn database_url() -> String {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return url;
    }
    let path = std::env::var("BLOG_DATABASE").unwrap_or_else(|_| "data/blog.db".into());
    if let Some(dir) = std::path::Path::new(&path).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    format!("sqlite://{path}?mode=rwc")
}
