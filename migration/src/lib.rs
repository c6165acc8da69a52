//! Schema migrations for the blog, run by `blog migrate` and at start on the primary.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_create_tags_posts;
mod m20261128_000002_sessions_settings;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_tags_posts::Migration),
            Box::new(m20261128_000002_sessions_settings::Migration),
        ]
    }
}
