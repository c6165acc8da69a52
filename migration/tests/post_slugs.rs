//! The migration that remembers posts' old slugs (`m20261130_000001_post_slugs`), on a database
//! with posts: the posts are kept, and from then on the database itself (triggers, whatever code
//! writes) records a post's slug when it changes, forgets it when a post takes it, and forgets a
//! post's old slugs when it is deleted.

mod common;

use migration::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};

/// Migrations before the one under test.
const BEFORE: u32 = 4;

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Rows of `sql` (text and integer columns), each row's columns joined with `|`.
async fn rows(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    db.query_all_raw(Statement::from_string(DbBackend::Sqlite, sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| {
            (0..)
                .map_while(|i| {
                    row.try_get_by_index::<String>(i)
                        .ok()
                        .or_else(|| row.try_get_by_index::<i64>(i).ok().map(|v| v.to_string()))
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

const NOW: &str = "'2026-11-30T00:00:00Z'";

async fn insert_post(db: &DatabaseConnection, id: i32, slug: &str) {
    exec(
        db,
        &format!(
            "INSERT INTO posts (id, slug, title, body, published, created_at, updated_at) \
             VALUES ({id}, '{slug}', 'P{id}', '', 1, {NOW}, {NOW})"
        ),
    )
    .await;
}

const OLD_SLUGS: &str = "SELECT slug, post_id FROM post_slugs ORDER BY slug";
const POSTS: &str = "SELECT id, slug FROM posts ORDER BY id";

#[tokio::test]
async fn posts_are_kept_and_every_later_rename_is_remembered() {
    let (db, dir) = common::scratch("post-slugs", "renames").await;
    Migrator::up(&db, Some(BEFORE)).await.unwrap();
    insert_post(&db, 1, "one").await;
    insert_post(&db, 2, "two").await;
    Migrator::up(&db, None).await.unwrap();
    assert_eq!(rows(&db, POSTS).await, ["1|one", "2|two"]);
    assert!(rows(&db, OLD_SLUGS).await.is_empty());

    exec(&db, "UPDATE posts SET slug = 'one-b' WHERE id = 1").await;
    exec(&db, "UPDATE posts SET slug = 'one-c' WHERE id = 1").await;
    assert_eq!(rows(&db, OLD_SLUGS).await, ["one|1", "one-b|1"]);
    // An update that sets the slug it has (as an update of every column does) is no rename.
    exec(
        &db,
        "UPDATE posts SET slug = 'one-c', title = 'P1 again' WHERE id = 1",
    )
    .await;
    assert_eq!(rows(&db, OLD_SLUGS).await, ["one|1", "one-b|1"]);
    // A new post at an old slug takes it; a post renamed to another's old slug does too.
    insert_post(&db, 3, "one").await;
    assert_eq!(rows(&db, OLD_SLUGS).await, ["one-b|1"]);
    exec(&db, "UPDATE posts SET slug = 'one-b' WHERE id = 2").await;
    assert_eq!(rows(&db, OLD_SLUGS).await, ["two|2"]);
    exec(&db, "UPDATE posts SET slug = 'two' WHERE id = 1").await;
    assert_eq!(rows(&db, OLD_SLUGS).await, ["one-c|1"]);
    // A rename refused (the slug is another post's) remembers nothing.
    let refused = db
        .execute_unprepared("UPDATE posts SET slug = 'one' WHERE id = 1")
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(rows(&db, OLD_SLUGS).await, ["one-c|1"]);
    assert_eq!(rows(&db, POSTS).await, ["1|two", "2|one-b", "3|one"]);
    // A deleted post's old slugs are forgotten.
    exec(&db, "UPDATE posts SET slug = 'two-b' WHERE id = 2").await;
    exec(&db, "DELETE FROM posts WHERE id = 1").await;
    assert_eq!(rows(&db, OLD_SLUGS).await, ["one-b|2"]);

    // Down: the table and its triggers go, the posts stay; up again, renames are remembered again.
    Migrator::down(&db, Some(1)).await.unwrap();
    assert_eq!(rows(&db, POSTS).await, ["2|two-b", "3|one"]);
    exec(&db, "UPDATE posts SET slug = 'three' WHERE id = 3").await;
    Migrator::up(&db, None).await.unwrap();
    assert!(rows(&db, OLD_SLUGS).await.is_empty());
    exec(&db, "UPDATE posts SET slug = 'three-b' WHERE id = 3").await;
    assert_eq!(rows(&db, OLD_SLUGS).await, ["three|3"]);
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}

/// A connection with foreign keys off (a client other than the blog, which turns them on): a
/// deleted post's old slugs are forgotten all the same.
#[tokio::test]
async fn a_deleted_posts_old_slugs_are_forgotten_also_with_foreign_keys_off() {
    let (db, dir) = common::scratch("post-slugs", "no-fk").await;
    Migrator::up(&db, None).await.unwrap();
    drop(db);
    let url = format!("sqlite://{}", dir.join("blog.db").display());
    // One connection, so the PRAGMA applies to every statement after it.
    let mut options = ConnectOptions::new(url);
    options.max_connections(1).min_connections(1);
    let db = Database::connect(options).await.unwrap();
    exec(&db, "PRAGMA foreign_keys = OFF").await;
    assert_eq!(
        rows(&db, "SELECT foreign_keys FROM pragma_foreign_keys").await,
        ["0"]
    );
    insert_post(&db, 1, "one").await;
    exec(&db, "UPDATE posts SET slug = 'one-b' WHERE id = 1").await;
    assert_eq!(rows(&db, OLD_SLUGS).await, ["one|1"]);
    exec(&db, "DELETE FROM posts WHERE id = 1").await;
    assert!(rows(&db, OLD_SLUGS).await.is_empty());
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}
