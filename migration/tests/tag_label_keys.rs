//! The migration that makes tags case-insensitive (`m20261129_000001_tag_label_keys`), on a
//! database in the state before it: tags that differ only in case are merged into the oldest,
//! their posts' links moved to it (a post linked to two of them keeps one link), and every tag
//! gets its key.

mod common;

use migration::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// Migrations before the one under test.
const BEFORE: u32 = 3;

async fn scratch(name: &str) -> (DatabaseConnection, std::path::PathBuf) {
    common::scratch("tag-keys", name).await
}

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Rows of `sql` as text, each row's columns joined with `|`.
async fn rows(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    db.query_all_raw(Statement::from_string(DbBackend::Sqlite, sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| {
            (0..)
                .map_while(|i| {
                    row.try_get_by_index::<Option<String>>(i)
                        .ok()
                        .map(|v| v.unwrap_or_else(|| "NULL".into()))
                        .or_else(|| row.try_get_by_index::<i64>(i).ok().map(|v| v.to_string()))
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

const NOW: &str = "'2026-11-29T00:00:00Z'";

async fn insert_post(db: &DatabaseConnection, id: i32) {
    exec(
        db,
        &format!(
            "INSERT INTO posts (id, slug, title, body, published, created_at, updated_at) \
             VALUES ({id}, 'p{id}', 'P{id}', '', 1, {NOW}, {NOW})"
        ),
    )
    .await;
}

#[tokio::test]
async fn duplicates_in_case_are_merged_into_the_oldest_tag() {
    let (db, dir) = scratch("merge").await;
    Migrator::up(&db, Some(BEFORE)).await.unwrap();
    for (id, label) in [
        (1, "Rust"),
        (2, "go"),
        (3, "rust"),
        (4, "RUST"),
        (5, "über"),
        (6, "Über"),
        (7, "ÜBER"),
    ] {
        exec(
            &db,
            &format!("INSERT INTO tags (id, label, created_at) VALUES ({id}, '{label}', {NOW})"),
        )
        .await;
    }
    for post in 1..=4 {
        insert_post(&db, post).await;
    }
    // Post 1 carries two spellings of rust (and a third), post 2 one that is not the oldest,
    // post 3 two of über and go, post 4 none.
    for (post, tag) in [(1, 1), (1, 3), (1, 4), (2, 4), (3, 6), (3, 7), (3, 2)] {
        exec(
            &db,
            &format!("INSERT INTO posts_tags (post_id, tag_id) VALUES ({post}, {tag})"),
        )
        .await;
    }

    Migrator::up(&db, None).await.unwrap();

    assert_eq!(
        rows(&db, "SELECT id, label, label_key FROM tags ORDER BY id").await,
        ["1|Rust|rust", "2|go|go", "5|über|über"]
    );
    assert_eq!(
        rows(
            &db,
            "SELECT post_id, tag_id FROM posts_tags ORDER BY post_id, tag_id"
        )
        .await,
        ["1|1", "2|1", "3|2", "3|5"]
    );
    // The key is unique: no second tag of the same key can be made.
    let again = db
        .execute_unprepared(&format!(
            "INSERT INTO tags (label, label_key, created_at) VALUES ('RuSt', 'rust', {NOW})"
        ))
        .await;
    assert!(again.is_err(), "a second tag with the key rust: {again:?}");
    assert!(
        Migrator::get_pending_migrations(&db)
            .await
            .unwrap()
            .is_empty()
    );
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_database_without_duplicates_keeps_every_tag_and_link_and_can_go_down_and_up() {
    let (db, dir) = scratch("clean").await;
    Migrator::up(&db, Some(BEFORE)).await.unwrap();
    for (id, label) in [(1, "Rust"), (2, "go"), (3, "Über")] {
        exec(
            &db,
            &format!("INSERT INTO tags (id, label, created_at) VALUES ({id}, '{label}', {NOW})"),
        )
        .await;
    }
    insert_post(&db, 1).await;
    exec(
        &db,
        "INSERT INTO posts_tags (post_id, tag_id) VALUES (1, 1), (1, 2), (1, 3)",
    )
    .await;
    Migrator::up(&db, None).await.unwrap();
    let tags = ["1|Rust|rust", "2|go|go", "3|Über|über"];
    let links = ["1|1", "1|2", "1|3"];
    let tags_sql = "SELECT id, label, label_key FROM tags ORDER BY id";
    let links_sql = "SELECT post_id, tag_id FROM posts_tags ORDER BY post_id, tag_id";
    assert_eq!(rows(&db, tags_sql).await, tags);
    assert_eq!(rows(&db, links_sql).await, links);

    // Down to before the tag-key migration (and the migrations after it).
    let after = Migrator::migrations().len() as u32 - BEFORE;
    Migrator::down(&db, Some(after)).await.unwrap();
    assert_eq!(
        rows(&db, "SELECT id, label FROM tags ORDER BY id").await,
        ["1|Rust", "2|go", "3|Über"]
    );
    assert_eq!(rows(&db, links_sql).await, links);
    // Down, a tag is inserted as before the migration, without a key.
    exec(
        &db,
        &format!("INSERT INTO tags (id, label, created_at) VALUES (4, 'GO', {NOW})"),
    )
    .await;
    Migrator::up(&db, None).await.unwrap();
    assert_eq!(rows(&db, tags_sql).await, tags);
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}

/// A node of before the migration (a rolling deploy) writes tags without their key: the database
/// refuses a new tag so written, and a rename whose key it can check (an ASCII label), rather
/// than keep a tag whose key is not its label's. Its upsert of a tag that exists still passes.
#[tokio::test]
async fn writes_of_code_that_does_not_know_the_key_are_refused() {
    let (db, dir) = scratch("old-code").await;
    Migrator::up(&db, None).await.unwrap();
    exec(
        &db,
        &format!(
            "INSERT INTO tags (id, label, label_key, created_at) VALUES (1, 'Rust', 'rust', {NOW})"
        ),
    )
    .await;
    for refused in [
        format!("INSERT INTO tags (label, created_at) VALUES ('go', {NOW})"),
        format!(
            "INSERT INTO tags (label, created_at) VALUES ('go', {NOW}) \
             ON CONFLICT (label) DO NOTHING"
        ),
        "UPDATE tags SET label = 'Go' WHERE id = 1".to_owned(),
        format!("INSERT INTO tags (label, label_key, created_at) VALUES ('Go', 'Go', {NOW})"),
    ] {
        let result = db.execute_unprepared(&refused).await;
        assert!(result.is_err(), "{refused}: {result:?}");
    }
    // What the old code's upsert of an existing tag does, and what the new code writes.
    for accepted in [
        format!(
            "INSERT INTO tags (label, created_at) VALUES ('Rust', {NOW}) \
             ON CONFLICT (label) DO NOTHING"
        ),
        "UPDATE tags SET label = 'RUST', label_key = 'rust' WHERE id = 1".to_owned(),
        "UPDATE tags SET label = 'Über', label_key = 'über' WHERE id = 1".to_owned(),
        format!("INSERT INTO tags (label, label_key, created_at) VALUES ('Go', 'go', {NOW})"),
    ] {
        exec(&db, &accepted).await;
    }
    assert_eq!(
        rows(&db, "SELECT label, label_key FROM tags ORDER BY id").await,
        ["Über|über", "Go|go"]
    );
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}

/// A migration that fails half-way (here a merge's delete, refused by a trigger of the
/// database's own) leaves the database as it was, so that it can run again once the cause is
/// gone: in one transaction, also on the migration crate's own command line (which runs
/// migrations one by one on a plain connection, not in the blog's transaction).
#[tokio::test]
async fn a_migration_that_fails_half_way_leaves_nothing_and_runs_again() {
    let (db, dir) = scratch("half-way").await;
    Migrator::up(&db, Some(BEFORE)).await.unwrap();
    for (id, label) in [(1, "Rust"), (2, "rust")] {
        exec(
            &db,
            &format!("INSERT INTO tags (id, label, created_at) VALUES ({id}, '{label}', {NOW})"),
        )
        .await;
    }
    exec(
        &db,
        "CREATE TRIGGER no_delete BEFORE DELETE ON tags BEGIN SELECT RAISE(ABORT, 'kept'); END",
    )
    .await;
    let failed = Migrator::up(&db, None).await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(
        rows(
            &db,
            "SELECT name FROM pragma_table_info('tags') ORDER BY cid"
        )
        .await,
        ["id", "label", "created_at"],
        "the column added before the failure is gone"
    );
    exec(&db, "DROP TRIGGER no_delete").await;
    Migrator::up(&db, None).await.unwrap();
    assert_eq!(
        rows(&db, "SELECT id, label, label_key FROM tags ORDER BY id").await,
        ["1|Rust|rust"]
    );
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}

/// The key is the label lowercased, then NFC (as `blog::input::label_key`, whose tests check the
/// same labels): where only one case has a precomposed letter (`ǰ`, no capital `J̌`; `ΐ`), the two
/// cases are one key, and merged.
#[tokio::test]
async fn a_key_is_nfc_also_where_only_one_case_is_precomposed() {
    let (db, dir) = scratch("nfc").await;
    Migrator::up(&db, Some(BEFORE)).await.unwrap();
    for (id, label) in [
        (1, "\u{1F0}"),
        (2, "J\u{30C}"),
        (3, "\u{399}\u{308}\u{301}"),
        (4, "\u{390}"),
        (5, "İ"),
    ] {
        exec(
            &db,
            &format!("INSERT INTO tags (id, label, created_at) VALUES ({id}, '{label}', {NOW})"),
        )
        .await;
    }
    insert_post(&db, 1).await;
    exec(
        &db,
        "INSERT INTO posts_tags (post_id, tag_id) VALUES (1, 2), (1, 3)",
    )
    .await;
    Migrator::up(&db, None).await.unwrap();
    assert_eq!(
        rows(&db, "SELECT id, label, label_key FROM tags ORDER BY id").await,
        [
            "1|\u{1F0}|\u{1F0}",
            "3|\u{399}\u{308}\u{301}|\u{390}",
            "5|İ|i\u{307}"
        ]
    );
    assert_eq!(
        rows(
            &db,
            "SELECT post_id, tag_id FROM posts_tags ORDER BY post_id, tag_id"
        )
        .await,
        ["1|1", "1|3"]
    );
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}

/// A node of before the migration renames a tag with `UPDATE tags SET label = ?`, keeping its
/// key: the database refuses that whenever the key could be wrong (the label changes, the key
/// does not, and `lower()` tells the two labels apart), with a message saying why, and writes
/// nothing. A change of the case of ASCII letters alone passes: the key stays right. The new code's rename sets both;
/// a case-only rename of a non-ASCII label, which `lower()` cannot check, goes through a
/// temporary key (no label's key starts with `/`), which no trigger refuses.
#[tokio::test]
async fn an_old_nodes_rename_that_could_leave_a_wrong_key_is_refused() {
    let (db, dir) = scratch("old-rename").await;
    Migrator::up(&db, None).await.unwrap();
    for (id, label, key) in [(1, "Über", "über"), (2, "Go", "go"), (3, "Zorn", "zorn")] {
        exec(
            &db,
            &format!(
                "INSERT INTO tags (id, label, label_key, created_at) \
                 VALUES ({id}, '{label}', '{key}', {NOW})"
            ),
        )
        .await;
    }
    let tags_sql = "SELECT id, label, label_key FROM tags ORDER BY id";
    let before = rows(&db, tags_sql).await;
    for refused in [
        "UPDATE tags SET label = 'Ärger' WHERE id = 1",
        "UPDATE tags SET label = 'über' WHERE id = 1",
        "UPDATE tags SET label = 'Rust' WHERE id = 2",
        "UPDATE tags SET label = 'Gö' WHERE id = 2",
        "UPDATE tags SET label = 'Über' WHERE id = 3",
        // The new code's case-only rename of a non-ASCII label in one statement.
        "UPDATE tags SET label = 'über', label_key = 'über' WHERE id = 1",
    ] {
        let Err(err) = db.execute_unprepared(refused).await else {
            panic!("{refused} passed");
        };
        assert!(
            err.to_string()
                .contains("renamed by code of before case-insensitive tags"),
            "{refused}: {err}"
        );
        assert_eq!(rows(&db, tags_sql).await, before, "{refused} wrote nothing");
    }
    // An ASCII case change by an old node (other letters as they were): the key stays right.
    exec(&db, "UPDATE tags SET label = 'GO' WHERE id = 2").await;
    exec(&db, "UPDATE tags SET label = 'ÜBER' WHERE id = 1").await;
    // The new code's case-only rename of a non-ASCII label: a temporary key, then both.
    exec(&db, "UPDATE tags SET label_key = '/1' WHERE id = 1").await;
    exec(
        &db,
        "UPDATE tags SET label = 'über', label_key = 'über' WHERE id = 1",
    )
    .await;
    // Setting a label to itself, as an update of every column does, is no rename.
    exec(
        &db,
        "UPDATE tags SET label = 'Zorn', label_key = 'zorn' WHERE id = 3",
    )
    .await;
    assert_eq!(
        rows(&db, tags_sql).await,
        ["1|über|über", "2|GO|go", "3|Zorn|zorn"]
    );
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}
