//! Schema migrations for the blog, applied at start on the primary (or a standalone node), and
//! by hand with `blog migrate [up|status|down]` or this crate's own command line
//! (`cargo run -p migration -- status`, the same as `sea-orm-cli migrate status`).

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_create_tags_posts;
mod m20261128_000001_posts_search;
mod m20261128_000002_sessions_settings;
mod m20261129_000001_tag_label_keys;
mod m20261129_000002_posts_search_unstemmed;
mod m20261130_000001_post_slugs;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_tags_posts::Migration),
            Box::new(m20261128_000001_posts_search::Migration),
            Box::new(m20261128_000002_sessions_settings::Migration),
            Box::new(m20261129_000001_tag_label_keys::Migration),
            Box::new(m20261129_000002_posts_search_unstemmed::Migration),
            Box::new(m20261130_000001_post_slugs::Migration),
        ]
    }
}

/// Runs `statements` in order on the migration's connection (in its transaction, when it has one).
async fn run_sql(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for sql in statements {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}
