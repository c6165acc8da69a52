//! Tags compare without regard to case: `tags.label_key`, the label case-folded (Unicode's full
//! case folding, as the `caseless` crate does it: SQLite's `lower()` and `NOCASE` know ASCII only)
//! then normalized to NFC, NOT NULL and UNIQUE. The app writes it with the label wherever it inserts or renames a tag.
//!
//! Tags that already differ only in case are merged: per key the oldest tag (lowest id) stays,
//! with the label it has; the posts of the others are linked to it instead (a post linked to two
//! of them keeps one link), and the others are deleted.
//!
//! A node of before this migration (a rolling deploy) inserts tags without the key, and renames
//! them without changing it. Two triggers keep such writes from leaving a tag whose key is not its
//! label's: a new tag without a key is refused (an upsert of a tag that exists under that very
//! label still passes, and does nothing); a rename that changes the label but not the key is
//! refused unless SQLite's `lower()` sees the two labels as one (an ASCII case change, whose key
//! stays right); and any insert or rename whose key is not the label's where SQLite can tell (an
//! ASCII label, whose key is its `lower()`) is refused too. So no tag's key is ever stale
//! (docs/reference.md). The app's own case-only rename of a non-ASCII label (`Über` to `über`:
//! one key, which `lower()` cannot check) first sets a temporary key, then label and key.
//!
//! Down drops the key and the triggers; tags merged stay merged.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The key of a label, frozen here as this migration wrote it: the label decomposed (NFD, as
/// Unicode's canonical caseless match does first), case-folded, then NFC
/// (folding an NFC label need not give NFC: `J̌` folds to `j` + U+030C, whose NFC is `ǰ`). Folding
/// of an ASCII label is its `lower()`, which the triggers check. `blog::input::label_key` must give the same for every label (its tests check a few): a
/// tag's key is compared with it.
fn label_key(label: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let decomposed: String = label.nfd().collect();
    caseless::default_case_fold_str(&decomposed).nfc().collect()
}

const TRIGGERS: &[&str] = &[
    // A label with nothing but printable ASCII: `NOT GLOB '*[^ -~]*'`; its key is `lower()`.
    "CREATE TRIGGER tags_label_key_insert BEFORE INSERT ON tags
     WHEN (NEW.label_key = ''
           OR (NEW.label NOT GLOB '*[^ -~]*' AND NEW.label_key IS NOT lower(NEW.label)))
          AND NOT EXISTS (SELECT 1 FROM tags WHERE label = NEW.label)
     BEGIN
        SELECT RAISE(ABORT, 'tags.label_key must be the label lowercased: this tag was written by code of before case-insensitive tags');
     END",
    // A rename that keeps the key is refused unless `lower()` sees no change (an ASCII case
    // change: its key stays right). `OF label`: it does not fire on an update of the key alone,
    // the first step of the app's case-only rename of a non-ASCII label (a temporary key).
    "CREATE TRIGGER tags_label_key_update BEFORE UPDATE OF label ON tags
     WHEN NEW.label_key = ''
          OR (NEW.label NOT GLOB '*[^ -~]*' AND NEW.label_key IS NOT lower(NEW.label))
          OR (NEW.label IS NOT OLD.label AND NEW.label_key IS OLD.label_key
              AND lower(NEW.label) IS NOT lower(OLD.label))
     BEGIN
        SELECT RAISE(ABORT, 'tags.label_key must be the label lowercased: this tag was renamed by code of before case-insensitive tags');
     END",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// In one transaction on SQLite too (sea-orm-migration runs SQLite's without one): it adds a
    /// column, then merges rows, and must not stop between the two. The blog runs migrations in a
    /// transaction of its own already; this one is then a savepoint in it.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // SQLite adds a NOT NULL column only with a default: '' is no key (the triggers refuse it).
        db.execute_unprepared("ALTER TABLE tags ADD COLUMN label_key TEXT NOT NULL DEFAULT ''")
            .await?;
        let tags = db
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT id, label FROM tags ORDER BY id",
            ))
            .await?;
        let mut kept: std::collections::HashMap<String, i32> = Default::default();
        for row in tags {
            let id: i32 = row.try_get_by_index(0)?;
            let label: String = row.try_get_by_index(1)?;
            let key = label_key(&label);
            match kept.get(&key) {
                None => {
                    kept.insert(key.clone(), id);
                    db.execute_raw(Statement::from_sql_and_values(
                        DbBackend::Sqlite,
                        "UPDATE tags SET label_key = ? WHERE id = ?",
                        [key.into(), id.into()],
                    ))
                    .await?;
                }
                Some(&oldest) => merge(db, id, oldest).await?,
            }
        }
        db.execute_unprepared("CREATE UNIQUE INDEX idx_tags_label_key ON tags (label_key)")
            .await?;
        for sql in TRIGGERS {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in [
            "DROP TRIGGER IF EXISTS tags_label_key_update",
            "DROP TRIGGER IF EXISTS tags_label_key_insert",
            "DROP INDEX IF EXISTS idx_tags_label_key",
            "ALTER TABLE tags DROP COLUMN label_key",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}

/// Links the posts of the tag `duplicate` to `oldest` (a post that has both keeps its one link
/// to `oldest`), then deletes `duplicate`.
async fn merge<C: ConnectionTrait>(db: &C, duplicate: i32, oldest: i32) -> Result<(), DbErr> {
    let statements: [(&str, Vec<Value>); 3] = [
        (
            "UPDATE OR IGNORE posts_tags SET tag_id = ? WHERE tag_id = ?",
            vec![oldest.into(), duplicate.into()],
        ),
        // The links left are of posts that had `oldest` already.
        (
            "DELETE FROM posts_tags WHERE tag_id = ?",
            vec![duplicate.into()],
        ),
        ("DELETE FROM tags WHERE id = ?", vec![duplicate.into()]),
    ];
    for (sql, values) in statements {
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            sql,
            values,
        ))
        .await?;
    }
    Ok(())
}
