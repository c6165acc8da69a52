//! A second review of the tag-key migration (`m20261129_000001_tag_label_keys`) on awkward data:
//! what held.

mod common;

use migration::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value,
};

/// Migrations before the one under test.
const BEFORE: u32 = 3;
const NOW: &str = "2026-11-29T00:00:00Z";

async fn scratch(name: &str) -> (DatabaseConnection, std::path::PathBuf) {
    common::scratch("review2", name).await
}

async fn exec(db: &DatabaseConnection, sql: &str, values: Vec<Value>) {
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        sql,
        values,
    ))
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn strings(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    db.query_all_raw(Statement::from_string(DbBackend::Sqlite, sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect()
}

/// Tags (id, label) in the state before the migration, the posts 1..=4, and their links.
async fn old_state(db: &DatabaseConnection, tags: &[(i32, &str)], links: &[(i32, i32)]) {
    Migrator::up(db, Some(BEFORE)).await.unwrap();
    for &(id, label) in tags {
        exec(
            db,
            "INSERT INTO tags (id, label, created_at) VALUES (?, ?, ?)",
            vec![id.into(), label.into(), NOW.into()],
        )
        .await;
    }
    for id in 1..=4 {
        exec(
            db,
            "INSERT INTO posts (id, slug, title, body, published, created_at, updated_at) \
             VALUES (?, ?, 'P', '', 1, ?, ?)",
            vec![id.into(), format!("p{id}").into(), NOW.into(), NOW.into()],
        )
        .await;
    }
    for &(post, tag) in links {
        exec(
            db,
            "INSERT INTO posts_tags (post_id, tag_id) VALUES (?, ?)",
            vec![post.into(), tag.into()],
        )
        .await;
    }
}

const TAGS: &str = "SELECT id || '|' || label || '|' || label_key FROM tags ORDER BY id";
const LINKS: &str = "SELECT post_id || '|' || tag_id FROM posts_tags ORDER BY post_id, tag_id";

/// A post linked to three duplicates but not to the oldest; duplicates that are comma-legacy
/// labels; `İ` (whose lowercase is two characters) and its lowercase typed; a 40-character label
/// whose key is 80; titlecase `ǅ`; Greek final sigma (`ΟΔΟΣ`, `οδος` and `οδοσ` one tag: case folding folds `Σ`,
/// `σ` and `ς` alike); an empty and a blank label (kept, not
/// merged with anything): merged per key into the oldest, one link per post, and down then up
/// again gives the same keys.
#[tokio::test]
async fn awkward_labels_merge_per_key_and_survive_down_and_up() {
    let (db, dir) = scratch("awkward").await;
    let long_upper = "İ".repeat(40);
    let long_lower = "i\u{307}".repeat(40);
    old_state(
        &db,
        &[
            (1, "Rust"),
            (2, "rust"),
            (3, "RUST"),
            (4, "rUST"),
            (5, "a,B"),
            (6, "A,b"),
            (7, "İ"),
            (8, "i\u{307}"),
            (9, &long_upper),
            (10, &long_lower),
            (11, "ǅ"),
            (12, "ǆ"),
            (13, "Ǆ"),
            (14, "ΟΔΟΣ"),
            (15, "οδος"),
            (16, "οδοσ"),
            (17, ""),
            (18, " "),
        ],
        &[
            (1, 2),
            (1, 3),
            (1, 4),
            (2, 6),
            (2, 5),
            (3, 8),
            (3, 10),
            (3, 13),
            (3, 12),
            (4, 15),
            (4, 16),
            (4, 17),
        ],
    )
    .await;

    Migrator::up(&db, None).await.unwrap();
    let tags = [
        "1|Rust|rust".to_owned(),
        "5|a,B|a,b".to_owned(),
        "7|İ|i\u{307}".to_owned(),
        format!("9|{long_upper}|{long_lower}"),
        "11|ǅ|ǆ".to_owned(),
        "14|ΟΔΟΣ|οδοσ".to_owned(),
        "17||".to_owned(),
        "18| | ".to_owned(),
    ];
    let links = ["1|1", "2|5", "3|7", "3|9", "3|11", "4|14", "4|17"];
    assert_eq!(strings(&db, TAGS).await, tags);
    assert_eq!(strings(&db, LINKS).await, links);

    // Down to before the tag-key migration (and the migrations after it).
    let after = Migrator::migrations().len() as u32 - BEFORE;
    Migrator::down(&db, Some(after)).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    assert_eq!(strings(&db, TAGS).await, tags);
    assert_eq!(strings(&db, LINKS).await, links);
    assert!(
        Migrator::get_pending_migrations(&db)
            .await
            .unwrap()
            .is_empty()
    );
    // Up once more: nothing to do, nothing changed.
    Migrator::up(&db, None).await.unwrap();
    assert_eq!(strings(&db, TAGS).await, tags);
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}
