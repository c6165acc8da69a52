//! A fresh-context review of the old-slugs migration (`m20261130_000001_post_slugs`): what held.

mod common;

use migration::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// Migrations before the one under test.
const BEFORE: u32 = 5;

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn names(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    db.query_all_raw(Statement::from_string(DbBackend::Sqlite, sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| row.try_get_by_index(0).unwrap())
        .collect()
}

const OBJECTS: &str = "SELECT name FROM sqlite_schema WHERE name LIKE '%post_slugs%' ORDER BY name";

/// The migration failing at its last statement (the name of its delete trigger taken) leaves
/// no table, index or trigger of it and stays pending; once the cause is gone it runs, and a
/// swap of two posts' slugs in one transaction (A to a spare, B to A, the spare to B) then leaves
/// only the spare as an old slug; down and up again forget everything and keep the posts.
#[tokio::test]
async fn holds_a_migration_failing_half_way_leaves_nothing_and_a_swap_leaves_only_the_spare() {
    let (db, dir) = common::scratch("review9", "half-way").await;
    Migrator::up(&db, Some(BEFORE)).await.unwrap();
    for (id, slug) in [(1, "a"), (2, "b")] {
        exec(
            &db,
            &format!(
                "INSERT INTO posts (id, slug, title, body, published, created_at, updated_at) \
                 VALUES ({id}, '{slug}', 'P{id}', '', 1, '2026-11-30T00:00:00Z', \
                 '2026-11-30T00:00:00Z')"
            ),
        )
        .await;
    }
    exec(
        &db,
        "CREATE TRIGGER post_slugs_delete AFTER DELETE ON tags BEGIN SELECT 1; END",
    )
    .await;
    let failed = Migrator::up(&db, None).await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(names(&db, OBJECTS).await, ["post_slugs_delete"]);
    assert_eq!(
        Migrator::get_pending_migrations(&db).await.unwrap().len(),
        1
    );
    exec(&db, "DROP TRIGGER post_slugs_delete").await;
    Migrator::up(&db, None).await.unwrap();
    assert_eq!(
        names(&db, OBJECTS).await,
        [
            "idx_post_slugs_post_id",
            "post_slugs",
            "post_slugs_delete",
            "post_slugs_insert",
            "post_slugs_rename",
            "sqlite_autoindex_post_slugs_1",
        ]
    );
    exec(
        &db,
        "BEGIN; UPDATE posts SET slug = 'spare' WHERE id = 1; \
         UPDATE posts SET slug = 'a' WHERE id = 2; UPDATE posts SET slug = 'b' WHERE id = 1; \
         COMMIT",
    )
    .await;
    assert_eq!(
        names(
            &db,
            "SELECT slug || '>' || post_id FROM post_slugs ORDER BY slug"
        )
        .await,
        ["spare>1"]
    );
    Migrator::down(&db, Some(1)).await.unwrap();
    assert!(names(&db, OBJECTS).await.is_empty());
    Migrator::up(&db, None).await.unwrap();
    assert!(names(&db, "SELECT slug FROM post_slugs").await.is_empty());
    assert_eq!(
        names(&db, "SELECT slug FROM posts ORDER BY id").await,
        ["b", "a"]
    );
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}
