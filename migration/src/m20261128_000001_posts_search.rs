//! Full-text search over posts: an FTS5 index of each post's title and body.
//!
//! The index is an external-content FTS5 table (it stores no copy of the text, only the index,
//! and reads the text from `posts` by `rowid = posts.id`). Triggers on `posts` keep it in step
//! in the same transaction as the write, so it replicates through LiteFS like any other page of
//! the database, and on a replica the write that changes a post (forwarded to the primary)
//! changes its index entry with it. Nothing in the application writes to it directly.
//!
//! The `porter` tokenizer stems English words ("replicating" finds "replicated");
//! `remove_diacritics 2` makes "café" match "cafe".

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "CREATE VIRTUAL TABLE posts_fts USING fts5(
        title, body,
        content = 'posts', content_rowid = 'id',
        tokenize = 'porter unicode61 remove_diacritics 2'
    )",
    "CREATE TRIGGER posts_fts_insert AFTER INSERT ON posts BEGIN
        INSERT INTO posts_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
    END",
    "CREATE TRIGGER posts_fts_delete AFTER DELETE ON posts BEGIN
        INSERT INTO posts_fts(posts_fts, rowid, title, body)
            VALUES ('delete', old.id, old.title, old.body);
    END",
    "CREATE TRIGGER posts_fts_update AFTER UPDATE OF title, body ON posts BEGIN
        INSERT INTO posts_fts(posts_fts, rowid, title, body)
            VALUES ('delete', old.id, old.title, old.body);
        INSERT INTO posts_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
    END",
    // Posts written before this migration.
    "INSERT INTO posts_fts(posts_fts) VALUES ('rebuild')",
];

const DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS posts_fts_update",
    "DROP TRIGGER IF EXISTS posts_fts_delete",
    "DROP TRIGGER IF EXISTS posts_fts_insert",
    "DROP TABLE IF EXISTS posts_fts",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(manager, DOWN).await
    }
}
