//! Operations on tags. Deleting a tag is a write procedure ([`DeleteTag`]): one round trip from a
//! replica.
//!
//! Labels that differ only in case are one tag: each tag has a key, its label lowercased
//! ([`label_key`]), unique, written with the label wherever a tag is inserted or renamed, and a
//! label that comes in finds its tag by that key. The label shown keeps the case it was first
//! written with (or renamed to).
//!
//! A tag renamed by a node of before the keys (a rolling deploy) keeps its old key: its key is
//! *stale* ([`is_stale`]). A stale key finds nothing, and a write it stands in the way of gives
//! the stale tag its right key first ([`free_stale_key`]); the primary's start-up gives every
//! stale tag its right key where that key is free ([`repair_stale_keys`]).

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult,
    ModelTrait, QueryFilter, QueryOrder, Set, Statement, TransactionSession, TransactionTrait,
};

use sea_orm_litefs::{ClusterConnection, ClusterTransaction, Procedure};

use super::input::{TagLabel, label_key};
use super::posts::Visibility;
use super::{BlogError, Unique};
use crate::entity::{post_tag, tag};

/// A tag with how many posts carry it.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult, serde::Serialize)]
pub struct TagWithCount {
    pub id: i32,
    pub label: String,
    pub post_count: i64,
}

/// Tags alphabetically (by their keys: case does not count) with their post counts. `All` (the admin): every tag, drafts counted.
/// `PublishedOnly` (visitors): counts of published posts only, and no tag whose posts are all
/// drafts (its label alone could give away an unpublished post); a tag on no post is listed.
pub async fn list_with_counts<C: ConnectionTrait>(
    db: &C,
    visibility: Visibility,
) -> Result<Vec<TagWithCount>, BlogError> {
    let sql = match visibility {
        Visibility::All => {
            "SELECT tags.id, tags.label, count(posts_tags.post_id) AS post_count \
             FROM tags LEFT JOIN posts_tags ON posts_tags.tag_id = tags.id \
             GROUP BY tags.id ORDER BY tags.label_key, tags.label"
        }
        Visibility::PublishedOnly => {
            "SELECT tags.id, tags.label, count(posts.id) AS post_count \
             FROM tags LEFT JOIN posts_tags ON posts_tags.tag_id = tags.id \
             LEFT JOIN posts ON posts.id = posts_tags.post_id AND posts.published \
             GROUP BY tags.id \
             HAVING count(posts.id) > 0 OR count(posts_tags.post_id) = 0 \
             ORDER BY tags.label_key, tags.label"
        }
    };
    Ok(
        TagWithCount::find_by_statement(Statement::from_string(DbBackend::Sqlite, sql))
            .all(db)
            .await?,
    )
}

/// A tag a visitor may see (see [`list_with_counts`]); `NotFound` for a tag only drafts carry.
/// `label` as [`lookup_label`](super::input::lookup_label) gives it.
pub async fn find_public<C: ConnectionTrait>(db: &C, label: &str) -> Result<tag::Model, BlogError> {
    let tag = find_by_label(db, label).await?;
    let visible = list_with_counts(db, Visibility::PublishedOnly)
        .await?
        .iter()
        .any(|t| t.id == tag.id);
    if visible {
        Ok(tag)
    } else {
        Err(BlogError::NotFound)
    }
}

/// A new tag labelled `label`, with its key.
fn new_tag(label: &TagLabel) -> tag::ActiveModel {
    tag::ActiveModel {
        label: Set(label.as_str().to_owned()),
        label_key: Set(label.key()),
        ..Default::default()
    }
}

/// Whether `tag`'s key is not its label's: renamed by a node of before the keys (it sets the
/// label only; the database can tell for ASCII labels alone, see the migration that added the
/// keys). Such a tag is found by its exact label only.
pub fn is_stale(tag: &tag::Model) -> bool {
    tag.label_key != label_key(&tag.label)
}

/// Makes `key` free if a stale tag ([`is_stale`]) holds it, by giving that tag its right key:
/// `true` if it did. `false` if no tag holds `key`, or the tag whose key it is. A
/// [`BlogError::Conflict`] if the stale tag's right key is taken too (by the tag shown in
/// another case): that needs a person to rename or delete one of the two.
async fn free_stale_key<C: ConnectionTrait>(db: &C, key: &str) -> Result<bool, BlogError> {
    let Some(holder) = tag::Entity::find()
        .filter(tag::Column::LabelKey.eq(key))
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    if !is_stale(&holder) {
        return Ok(false);
    }
    let right = label_key(&holder.label);
    if let Some(other) = tag::Entity::find()
        .filter(tag::Column::LabelKey.eq(right.as_str()))
        .one(db)
        .await?
    {
        return Err(BlogError::Conflict(stale_conflict(&holder, &other)));
    }
    // Only if the tag is still as read (these statements need not share a transaction).
    tag::Entity::update_many()
        .col_expr(tag::Column::LabelKey, right.into())
        .filter(tag::Column::Id.eq(holder.id))
        .filter(tag::Column::Label.eq(holder.label.as_str()))
        .filter(tag::Column::LabelKey.eq(key))
        .exec(db)
        .await
        .map_err(BlogError::unless_unique(Unique::TagLabel))?;
    Ok(true)
}

/// What [`repair_stale_keys`] did: stale tags given their right key, and those left stale
/// because their right key is another tag's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyRepair {
    pub repaired: usize,
    pub left: usize,
}

/// Gives every stale tag ([`is_stale`]) its right key where no other tag holds it, one after
/// another, so that a stale tag holding another's right key is corrected first. Run by the
/// primary at start-up, after the migrations, in their transaction: it reads every tag once
/// (tags are few) and writes only stale ones, which exist only after a rolling deploy from a
/// version of before the keys. A tag whose right key is another tag's is left (a person must
/// rename or delete one of them; [`free_stale_key`] says so when it is in the way).
pub async fn repair_stale_keys<C: ConnectionTrait>(db: &C) -> Result<KeyRepair, sea_orm::DbErr> {
    let tags = tag::Entity::find().all(db).await?;
    let mut taken: std::collections::HashSet<String> =
        tags.iter().map(|t| t.label_key.clone()).collect();
    let mut stale: Vec<tag::Model> = tags.into_iter().filter(is_stale).collect();
    let mut repaired = 0;
    while let Some(at) = stale
        .iter()
        .position(|t| !taken.contains(&label_key(&t.label)))
    {
        let tag = stale.swap_remove(at);
        let right = label_key(&tag.label);
        tag::Entity::update_many()
            .col_expr(tag::Column::LabelKey, right.as_str().into())
            .filter(tag::Column::Id.eq(tag.id))
            .exec(db)
            .await?;
        taken.remove(&tag.label_key);
        taken.insert(right);
        repaired += 1;
    }
    Ok(KeyRepair {
        repaired,
        left: stale.len(),
    })
}

/// Why a label whose key a stale tag holds cannot be written.
fn stale_conflict(stale: &tag::Model, other: &tag::Model) -> String {
    format!(
        "the tag \"{}\" was renamed during an upgrade and still answers to this label; it is the \
         tag \"{}\" in another case: rename or delete one of these two tags first",
        stale.label, other.label
    )
}

/// [`free_stale_key`] in a transaction of its own: on a replica, a transaction on the primary,
/// so that it reads the tags where the write that failed saw them (the replica's copy may not
/// have the old node's rename yet).
async fn free_stale_key_on_primary<C: TransactionTrait>(
    db: &C,
    key: &str,
) -> Result<bool, BlogError> {
    let txn = db.begin().await?;
    match free_stale_key(&txn, key).await {
        Ok(freed) => {
            txn.commit().await?;
            Ok(freed)
        }
        Err(err) => {
            let _ = txn.rollback().await;
            Err(err)
        }
    }
}

/// Runs `write` (an insert or a rename of a tag to `label`), and once more if a unique violation
/// was a stale tag holding `label`'s key, which [`free_stale_key`] gave its right key.
async fn unless_stale<C, T, F, Fut>(db: &C, label: &TagLabel, write: F) -> Result<T, BlogError>
where
    C: ConnectionTrait + TransactionTrait,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, sea_orm::DbErr>>,
{
    match write().await {
        Err(err) if super::error::is_unique_violation(&err) => {
            if free_stale_key_on_primary(db, &label.key()).await? {
                write()
                    .await
                    .map_err(BlogError::unless_unique(Unique::TagLabel))
            } else {
                Err(BlogError::unless_unique(Unique::TagLabel)(err))
            }
        }
        other => other.map_err(BlogError::from),
    }
}

/// Creates the tag `label`: a [`BlogError::Conflict`] if a tag has that label in any case, a
/// [`BlogError::Validation`] of `label` if it is too long to be stored.
pub async fn create<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    label: &TagLabel,
) -> Result<tag::Model, BlogError> {
    label
        .check_length()
        .map_err(|e| BlogError::field("label", e))?;
    unless_stale(db, label, || new_tag(label).insert(db)).await
}

/// Renames the tag `id` to `label`, which may differ from its label only in case; a
/// [`BlogError::Conflict`] if another tag has that label in any case, a
/// [`BlogError::Validation`] of `label` if it is too long to be stored.
///
/// In a transaction (on a replica, a transaction on the primary), in two statements: the tag
/// first gets a temporary key of its own, then its label and its key. The database refuses a
/// rename that keeps the key where its `lower()` sees the label change (what a node of before the
/// keys does, see the migration that added them), and a rename only in the case of letters other
/// than ASCII (`über` to `Über`) is such a rename in one statement. Refused at the second step
/// (the key is another tag's), nothing is written.
pub async fn rename<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    id: i32,
    label: &TagLabel,
) -> Result<tag::Model, BlogError> {
    label
        .check_length()
        .map_err(|e| BlogError::field("label", e))?;
    let txn = db.begin().await?;
    match rename_in(&txn, id, label).await {
        Ok(tag) => {
            txn.commit().await?;
            Ok(tag)
        }
        Err(err) => {
            let _ = txn.rollback().await;
            Err(err)
        }
    }
}

/// [`rename`]'s two statements, inside the caller's transaction.
async fn rename_in<C: ConnectionTrait>(
    db: &C,
    id: i32,
    label: &TagLabel,
) -> Result<tag::Model, BlogError> {
    let existing = tag::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(BlogError::NotFound)?;
    // No label's key starts with `/`: a label holds no slash, and lowercasing makes none.
    tag::Entity::update_many()
        .col_expr(tag::Column::LabelKey, format!("/{id}").into())
        .filter(tag::Column::Id.eq(id))
        .exec(db)
        .await?;
    let mut tag: tag::ActiveModel = existing.into();
    tag.label = Set(label.as_str().to_owned());
    tag.label_key = Set(label.key());
    tag.update(db)
        .await
        .map_err(BlogError::unless_unique(Unique::TagLabel))
}

/// Deletes a tag; the links to its posts go with it (the posts stay).
pub async fn delete(db: &ClusterConnection, id: i32) -> Result<(), BlogError> {
    db.call::<DeleteTag>(id).await
}

/// [`delete`]'s transaction: the tag's id.
pub struct DeleteTag;

impl Procedure for DeleteTag {
    const NAME: &'static str = "blog.tags.delete";
    const VERSION: u32 = 1;
    type Args = i32;
    type Output = ();
    type Error = BlogError;

    async fn run(txn: &ClusterTransaction, id: i32) -> Result<(), BlogError> {
        delete_in(txn, id).await
    }
}

/// Deletes a tag, inside the caller's transaction.
pub async fn delete_in<C: ConnectionTrait>(db: &C, id: i32) -> Result<(), BlogError> {
    let existing = tag::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(BlogError::NotFound)?;
    existing.delete(db).await?;
    Ok(())
}

pub async fn find_by_id<C: ConnectionTrait>(db: &C, id: i32) -> Result<tag::Model, BlogError> {
    tag::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(BlogError::NotFound)
}

/// The tag whose label is `label` in any case (as [`lookup_label`](super::input::lookup_label)
/// gives it): the tag labelled exactly so if there is one, else the tag of its key, unless that
/// tag's key is stale ([`is_stale`]: renamed by a node of before the keys, it is not its old
/// label any more). A stale tag keeps its page at its exact label.
pub async fn find_by_label<C: ConnectionTrait>(
    db: &C,
    label: &str,
) -> Result<tag::Model, BlogError> {
    if let Some(tag) = tag::Entity::find()
        .filter(tag::Column::Label.eq(label))
        .one(db)
        .await?
    {
        return Ok(tag);
    }
    tag::Entity::find()
        .filter(tag::Column::LabelKey.eq(label_key(label)))
        .one(db)
        .await?
        .filter(|tag| !is_stale(tag))
        .ok_or(BlogError::NotFound)
}

/// The tags of each of `post_ids`, alphabetically, as `(post_id, tag)` pairs.
pub async fn for_posts<C: ConnectionTrait>(
    db: &C,
    post_ids: &[i32],
) -> Result<Vec<(i32, tag::Model)>, BlogError> {
    if post_ids.is_empty() {
        return Ok(Vec::new());
    }
    let links = post_tag::Entity::find()
        .filter(post_tag::Column::PostId.is_in(post_ids.iter().copied()))
        .find_also_related(tag::Entity)
        .order_by_asc(tag::Column::LabelKey)
        .order_by_asc(tag::Column::Label)
        .all(db)
        .await?;
    Ok(links
        .into_iter()
        .filter_map(|(link, tag)| Some((link.post_id, tag?)))
        .collect())
}

/// Ensures every label exists as a tag, in any case (a label new in every case becomes a tag
/// spelled as given, if it is not too long to be stored: else a validation error at `tags`), and returns their ids in the labels' order, each once: labels that differ
/// only in case are one tag (input parsed by a node of before the keys may hold both).
/// A label a stale tag holds the key of is refused at the field `tags` if that tag cannot be
/// given its right key ([`free_stale_key`]). Uses an upsert, so two writers creating the same new tag at once both succeed.
pub async fn ensure<C: ConnectionTrait>(
    db: &C,
    labels: &[TagLabel],
) -> Result<Vec<i32>, BlogError> {
    let mut ids = Vec::with_capacity(labels.len());
    for label in labels {
        let id = match find_by_label(db, label.as_str()).await {
            Ok(tag) => tag.id,
            Err(BlogError::NotFound) => {
                // A label as typed may be longer than a label stored (it may name an existing
                // tag in a longer case): a new tag's is held to the limit here.
                label.check_length().map_err(|e| {
                    BlogError::field("tags", format!("tag \"{}\": {e}", label.as_str()))
                })?;
                // A stale tag holding the key would make the upsert do nothing.
                free_stale_key(db, &label.key())
                    .await
                    .map_err(|err| match err {
                        BlogError::Conflict(message) => BlogError::field(
                            "tags",
                            format!("tag \"{}\": {message}", label.as_str()),
                        ),
                        other => other,
                    })?;
                tag::Entity::insert(new_tag(label))
                    .on_conflict_do_nothing_on([tag::Column::LabelKey])
                    .exec(db)
                    .await?;
                find_by_label(db, label.as_str()).await?.id
            }
            Err(other) => return Err(other),
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}
