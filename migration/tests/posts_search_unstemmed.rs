//! The migration that adds the unstemmed search index (`m20261129_000002_posts_search_unstemmed`),
//! on a database with posts: it indexes the posts there already; triggers keep it in step with
//! whatever writes `posts` (the app, a node of before it during a rolling deploy, a hand-typed
//! statement); it goes down and up again; and when it fails half-way it leaves nothing.

mod common;

use migration::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// Migrations before the one under test.
const BEFORE: u32 = 4;
const NOW: &str = "'2026-11-29T00:00:00Z'";

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn insert_post(db: &DatabaseConnection, id: i32, title: &str, body: &str) {
    exec(
        db,
        &format!(
            "INSERT INTO posts (id, slug, title, body, published, created_at, updated_at) \
             VALUES ({id}, 'p{id}', '{title}', '{body}', 1, {NOW}, {NOW})"
        ),
    )
    .await;
}

/// The ids of the posts whose unstemmed index matches `query` (FTS5 syntax).
async fn unstemmed(db: &DatabaseConnection, query: &str) -> Vec<i32> {
    db.query_all_raw(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "SELECT rowid FROM posts_fts_unstemmed WHERE posts_fts_unstemmed MATCH ? ORDER BY rowid",
        [query.into()],
    ))
    .await
    .unwrap_or_else(|e| panic!("{query}: {e}"))
    .iter()
    .map(|row| row.try_get_by_index(0).unwrap())
    .collect()
}

/// The names of the schema's objects (tables, triggers, indexes) whose name starts with `prefix`.
async fn objects(db: &DatabaseConnection, prefix: &str) -> Vec<String> {
    db.query_all_raw(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "SELECT name FROM sqlite_schema WHERE name LIKE ? || '%' ORDER BY name",
        [prefix.into()],
    ))
    .await
    .unwrap()
    .iter()
    .map(|row| row.try_get_by_index(0).unwrap())
    .collect()
}

/// FTS5's check of an external-content index against the rows of `posts`.
async fn index_agrees_with_posts(db: &DatabaseConnection, table: &str) {
    exec(
        db,
        &format!("INSERT INTO {table}({table}, rank) VALUES ('integrity-check', 1)"),
    )
    .await;
}

#[tokio::test]
async fn posts_written_before_are_indexed_and_every_later_write_keeps_it_in_step() {
    let (db, dir) = common::scratch("unstemmed", "posts").await;
    Migrator::up(&db, Some(BEFORE)).await.unwrap();
    insert_post(&db, 1, "Replication notes", "LiteFS copies the file.").await;
    insert_post(&db, 2, "Copies", "Every node keeps a replicated copy.").await;
    insert_post(&db, 3, "Gardening", "Tomatoes and basil.").await;

    Migrator::up(&db, None).await.unwrap();
    assert!(
        Migrator::get_pending_migrations(&db)
            .await
            .unwrap()
            .is_empty()
    );
    index_agrees_with_posts(&db, "posts_fts_unstemmed").await;
    index_agrees_with_posts(&db, "posts_fts").await;
    assert_eq!(unstemmed(&db, "\"replicatio\"*").await, [1]);
    assert_eq!(unstemmed(&db, "\"replica\"*").await, [1, 2]);
    assert_eq!(unstemmed(&db, "\"tomato\"*").await, [3]);
    // Not stemmed: "replicating" is no word of any post.
    assert_eq!(unstemmed(&db, "\"replicating\"").await, Vec::<i32>::new());

    // Writes as any code makes them, the app's or a node's of before this migration: plain
    // statements on `posts`.
    insert_post(&db, 4, "Sets", "A replica set.").await;
    exec(
        &db,
        "UPDATE posts SET body = 'Courgettes now.' WHERE id = 3",
    )
    .await;
    exec(&db, "UPDATE posts SET title = 'Replicas' WHERE id = 2").await;
    exec(&db, "UPDATE posts SET published = 0 WHERE id = 4").await;
    exec(&db, "DELETE FROM posts WHERE id = 1").await;
    index_agrees_with_posts(&db, "posts_fts_unstemmed").await;
    index_agrees_with_posts(&db, "posts_fts").await;
    assert_eq!(unstemmed(&db, "\"replica\"*").await, [2, 4]);
    assert_eq!(unstemmed(&db, "\"tomato\"*").await, Vec::<i32>::new());
    assert_eq!(unstemmed(&db, "\"courgette\"*").await, [3]);
    assert_eq!(unstemmed(&db, "\"litefs\"*").await, Vec::<i32>::new());
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn it_goes_down_and_up_again() {
    let (db, dir) = common::scratch("unstemmed", "down-up").await;
    Migrator::up(&db, None).await.unwrap();
    insert_post(&db, 1, "Replication notes", "LiteFS copies the file.").await;
    // Down to before this migration (and the migrations after it).
    let since = Migrator::migrations().len() as u32 - BEFORE;
    Migrator::down(&db, Some(since)).await.unwrap();
    assert_eq!(
        objects(&db, "posts_fts_unstemmed").await,
        Vec::<String>::new()
    );
    // Down, posts are written as before the migration (and the stemmed index still follows).
    insert_post(&db, 2, "Replicas", "Two of them.").await;
    exec(
        &db,
        "UPDATE posts SET title = 'Replicated notes' WHERE id = 1",
    )
    .await;
    index_agrees_with_posts(&db, "posts_fts").await;
    Migrator::up(&db, None).await.unwrap();
    index_agrees_with_posts(&db, "posts_fts_unstemmed").await;
    assert_eq!(unstemmed(&db, "\"replica\"*").await, [1, 2]);
    assert_eq!(unstemmed(&db, "\"replicatio\"*").await, Vec::<i32>::new());
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}

/// A migration that fails half-way (here its last trigger, whose name is taken) leaves the
/// database as it was, and runs once the cause is gone: in one transaction, also on the
/// migration crate's own command line (migrations one by one, not in the blog's transaction).
#[tokio::test]
async fn a_migration_that_fails_half_way_leaves_nothing_and_runs_again() {
    let (db, dir) = common::scratch("unstemmed", "half-way").await;
    Migrator::up(&db, Some(BEFORE)).await.unwrap();
    insert_post(&db, 1, "Replication notes", "LiteFS copies the file.").await;
    exec(
        &db,
        "CREATE TRIGGER posts_fts_unstemmed_update AFTER UPDATE ON tags BEGIN SELECT 1; END",
    )
    .await;
    let failed = Migrator::up(&db, None).await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(
        objects(&db, "posts_fts_unstemmed").await,
        ["posts_fts_unstemmed_update"],
        "nothing of the migration is left"
    );
    assert_eq!(
        Migrator::get_pending_migrations(&db).await.unwrap().len(),
        Migrator::migrations().len() - BEFORE as usize,
        "this migration and the ones after it"
    );
    exec(&db, "DROP TRIGGER posts_fts_unstemmed_update").await;
    Migrator::up(&db, None).await.unwrap();
    assert_eq!(unstemmed(&db, "\"replicatio\"*").await, [1]);
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}
