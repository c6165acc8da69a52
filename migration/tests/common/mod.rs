//! What the migration tests share: a scratch SQLite database of their own.

use sea_orm_migration::sea_orm::{ConnectionTrait, Database, DatabaseConnection};

/// A new, empty database `blog.db` in a directory of its own (`suite` and `name` tell them
/// apart), with foreign keys on as the blog has them; the directory is returned to be removed.
pub async fn scratch(suite: &str, name: &str) -> (DatabaseConnection, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "blog-migration-{suite}-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("blog.db").display());
    let db = Database::connect(&url).await.unwrap();
    db.execute_unprepared("PRAGMA foreign_keys = ON")
        .await
        .unwrap();
    (db, dir)
}
