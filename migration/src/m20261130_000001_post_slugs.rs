//! A post's old slugs, so that its old addresses keep working: `post_slugs` maps a slug a post
//! had to the post (`GET /posts/<old slug>` redirects to where it is now).
//!
//! The database keeps it, with triggers on `posts`, not the app's code: a node of the previous
//! release (a rolling deploy), or any other SQL client, renames and deletes posts without knowing
//! about it, and the blog's writes are write procedures whose fingerprints stay as they are. The
//! triggers run in the write's own transaction, on the primary, so the table replicates with the
//! post through LiteFS:
//!
//! - a post's slug changes (`UPDATE OF slug`, the slug really different): its old slug is
//!   recorded for it (replacing any record of that slug), and its new slug is forgotten, whoever
//!   had it before;
//! - a post is created: its slug is forgotten (a new post may take a freed slug, and a slug a post
//!   has now always wins);
//! - a post is deleted: its old slugs are forgotten (`ON DELETE CASCADE` with foreign keys on, as
//!   the blog has them; and a trigger, for a connection with them off).
//!
//! So a slug is never both a post's slug and an old one, and every old slug of a post names the
//! post itself, which leads to its current slug in one hop. Renames made before this migration
//! are not known. Down drops the table and the triggers.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "CREATE TABLE post_slugs (
        slug TEXT NOT NULL PRIMARY KEY,
        post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE
    )",
    "CREATE INDEX idx_post_slugs_post_id ON post_slugs (post_id)",
    "CREATE TRIGGER post_slugs_rename AFTER UPDATE OF slug ON posts
     WHEN NEW.slug IS NOT OLD.slug
     BEGIN
        DELETE FROM post_slugs WHERE slug IN (NEW.slug, OLD.slug);
        INSERT INTO post_slugs (slug, post_id) VALUES (OLD.slug, NEW.id);
     END",
    "CREATE TRIGGER post_slugs_insert AFTER INSERT ON posts
     BEGIN
        DELETE FROM post_slugs WHERE slug = NEW.slug;
     END",
    "CREATE TRIGGER post_slugs_delete AFTER DELETE ON posts
     BEGIN
        DELETE FROM post_slugs WHERE post_id = OLD.id;
     END",
];

const DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS post_slugs_delete",
    "DROP TRIGGER IF EXISTS post_slugs_insert",
    "DROP TRIGGER IF EXISTS post_slugs_rename",
    "DROP TABLE IF EXISTS post_slugs",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// In one transaction on SQLite too (sea-orm-migration runs SQLite's without one): a table
    /// without its triggers would miss renames. In the blog's own migration transaction, a
    /// savepoint in it.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(manager, DOWN).await
    }
}
