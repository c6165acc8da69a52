//! A fifth review of the migration that makes tags case-insensitive: labels whose case folding
//! is not lowercasing, on a database of before it.

mod common;

use migration::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

const BEFORE: u32 = 3;
const NOW: &str = "'2026-11-29T00:00:00Z'";

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn tags(db: &DatabaseConnection) -> Vec<String> {
    db.query_all_raw(Statement::from_string(
        DbBackend::Sqlite,
        "SELECT id, label FROM tags ORDER BY id",
    ))
    .await
    .unwrap()
    .iter()
    .map(|row| {
        let id: i32 = row.try_get_by_index(0).unwrap();
        let label: String = row.try_get_by_index(1).unwrap();
        format!("{id}|{label}")
    })
    .collect()
}

async fn legacy(name: &str, labels: &[&str]) -> (DatabaseConnection, std::path::PathBuf) {
    let (db, dir) = common::scratch("review5", name).await;
    Migrator::up(&db, Some(BEFORE)).await.unwrap();
    for (i, label) in labels.iter().enumerate() {
        exec(
            &db,
            &format!(
                "INSERT INTO tags (id, label, created_at) VALUES ({}, '{label}', {NOW})",
                i + 1
            ),
        )
        .await;
    }
    Migrator::up(&db, None).await.unwrap();
    (db, dir)
}

/// Ligatures, sharp s and capital sharp s, Cherokee (lower case folds to upper), title-case
/// digraphs, the Kelvin sign (a label not NFC) and the micro sign merge into the oldest; dotted
/// and dotless Turkish i stay apart; and the triggers then accept the app's writes of them.
#[tokio::test]
async fn labels_whose_folding_is_not_lowercasing_are_merged() {
    let (db, dir) = legacy(
        "fold",
        &[
            "ﬁle",
            "FILE",
            "File",
            "Straße",
            "STRAẞE",
            "STRASSE",
            "Ꭰꭱ",
            "ꭰᎡ",
            "ǅ",
            "Ǆ",
            "ǆ",
            "\u{212a}elvin",
            "kelvin",
            "µs",
            "μs",
            "İ",
            "i",
            "I",
            "ı",
        ],
    )
    .await;
    assert_eq!(
        tags(&db).await,
        [
            "1|ﬁle",
            "4|Straße",
            "7|Ꭰꭱ",
            "9|ǅ",
            "12|\u{212a}elvin",
            "14|µs",
            "16|İ",
            "17|i",
            "19|ı"
        ]
    );
    // The app's insert of an ASCII label with its key, and its rename through a temporary key.
    exec(
        &db,
        &format!("INSERT INTO tags (label, label_key, created_at) VALUES ('Zeta', 'zeta', {NOW})"),
    )
    .await;
    exec(&db, "UPDATE tags SET label_key = '/1' WHERE id = 1").await;
    exec(
        &db,
        "UPDATE tags SET label = 'FILE', label_key = 'file' WHERE id = 1",
    )
    .await;
    exec(&db, "UPDATE tags SET label_key = '/4' WHERE id = 4").await;
    exec(
        &db,
        "UPDATE tags SET label = 'STRAẞE', label_key = 'strasse' WHERE id = 4",
    )
    .await;
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}

/// `ῷδε`, its title case `ῼ͂δε` (Ω + U+0342 + U+0345, NFC U+1FFC U+0342) and its upper case
/// `Ω͂ΙΔΕ` are one word in three cases: Unicode's canonical caseless match makes them one. The
/// migration folds the NFC label, then normalizes: the title case keeps a key of its own.
/// Fails: tags after the migration are [1|ῷδε, 2|ῼ͂δε] (expected [1|ῷδε]).
#[tokio::test]
async fn a_greek_word_in_title_case_is_merged_with_it() {
    let (db, dir) = legacy("greek", &["ῷδε", "\u{1ffc}\u{342}δε", "Ω\u{342}ΙΔΕ"]).await;
    assert_eq!(tags(&db).await, ["1|ῷδε"]);
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}
