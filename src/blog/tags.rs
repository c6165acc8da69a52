//! Operations on tags. Deleting a tag is a write procedure ([`DeleteTag`]): one round trip from a
//! replica.
//!
//! Labels that differ only in case are one tag: each tag has a key, its label lowercased
//! ([`label_key`]), unique, written with the label wherever a tag is inserted or renamed, and a
//! label that comes in finds its tag by that key. The label shown keeps the case it was first
//! written with (or renamed to).
//!
//! A node of before the keys (a rolling deploy) cannot leave a tag whose key is not its label's:
//! the database refuses its new tags and its renames, but for a change of the case of ASCII
//! letters, whose key stays right (see the migration that added the keys, and [`rename`]).

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult,
    ModelTrait, QueryFilter, Set, Statement, TransactionSession, TransactionTrait,
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

/// Tags alphabetically ([`alphabetical`]: case and accents do not count) with their post counts.
/// `All` (the admin): every tag, drafts counted, tags on no post included (to rename or delete
/// them). `PublishedOnly` (visitors): the one public rule, a tag is shown if a published post
/// carries it, with its count of published posts. So neither a tag only drafts carry (its label
/// alone could give away an unpublished post) nor one on no post (a draft deleted, a tag taken
/// off its post, a tag made in advance) is listed or has a page.
pub async fn list_with_counts<C: ConnectionTrait>(
    db: &C,
    visibility: Visibility,
) -> Result<Vec<TagWithCount>, BlogError> {
    let sql = match visibility {
        Visibility::All => {
            "SELECT tags.id, tags.label, count(posts_tags.post_id) AS post_count \
             FROM tags LEFT JOIN posts_tags ON posts_tags.tag_id = tags.id \
             GROUP BY tags.id"
        }
        Visibility::PublishedOnly => {
            "SELECT tags.id, tags.label, count(posts.id) AS post_count \
             FROM tags JOIN posts_tags ON posts_tags.tag_id = tags.id \
             JOIN posts ON posts.id = posts_tags.post_id AND posts.published \
             GROUP BY tags.id"
        }
    };
    let mut tags = TagWithCount::find_by_statement(Statement::from_string(DbBackend::Sqlite, sql))
        .all(db)
        .await?;
    tags.sort_by_cached_key(|t| alphabetical(&t.label));
    Ok(tags)
}

/// Where a label sorts: by its key with accents set aside (`Éclair` beside `eclair`, between
/// `apple` and `Zeta`, not after `z` as its bytes would put it; `Łódź` beside `lodz`), then by its
/// key. Not a
/// language's collation, which the blog does not know; letters beyond Latin sort by their code.
pub fn alphabetical(label: &str) -> (String, String) {
    use unicode_normalization::UnicodeNormalization;
    let key = label_key(label);
    let base = key
        .nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .map(|c| match c {
            // Letters with a stroke, which Unicode does not decompose, sort with their letter in
            // the languages that write them (Polish Ł, Croatian Đ, Maltese Ħ, Sámi Ŧ). Not Ø, Æ
            // or Œ: Danish and Norwegian sort Ø and Æ after z.
            'ł' => 'l',
            'đ' => 'd',
            'ħ' => 'h',
            'ŧ' => 't',
            other => other,
        })
        .collect();
    (base, key)
}

/// A tag a visitor may see (see [`list_with_counts`]); `NotFound` for a tag no published post
/// carries.
/// `label` as [`lookup_label`](super::input::lookup_label) gives it.
pub async fn find_public<C: ConnectionTrait>(db: &C, label: &str) -> Result<tag::Model, BlogError> {
    let tag = find_by_label(db, label).await?;
    // The rule of `list_with_counts(PublishedOnly)`, asked of this one tag (not by listing and
    // sorting every tag on each view of a tag's page).
    let visible = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "SELECT 1 FROM posts_tags JOIN posts ON posts.id = posts_tags.post_id \
             WHERE posts_tags.tag_id = ? AND posts.published LIMIT 1",
            [tag.id.into()],
        ))
        .await?
        .is_some();
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

/// Why `label`, too long to be stored ([`TagLabel::check_length`]), cannot be a tag's label: a
/// [`BlogError::Conflict`], as a short label gets, if it names a tag other than `own` in another
/// case (a case may be longer than the tag's label, see
/// [`MAX_TYPED_LABEL_CHARS`](super::input::MAX_TYPED_LABEL_CHARS)), else a
/// [`BlogError::Validation`] of `label` (too long). `Ok` if it is not too long.
async fn check_length<C: ConnectionTrait>(
    db: &C,
    label: &TagLabel,
    own: Option<i32>,
) -> Result<(), BlogError> {
    let Err(too_long) = label.check_length() else {
        return Ok(());
    };
    match find_by_label(db, label.as_str()).await {
        Ok(tag) if Some(tag.id) != own => {
            Err(BlogError::Conflict(Unique::TagLabel.message().into()))
        }
        Ok(_) | Err(BlogError::NotFound) => Err(BlogError::field("label", too_long)),
        Err(other) => Err(other),
    }
}

/// Creates the tag `label`: a [`BlogError::Conflict`] if a tag has that label in any case, a
/// [`BlogError::Validation`] of `label` if it is too long to be stored (and names no tag).
pub async fn create<C: ConnectionTrait>(db: &C, label: &TagLabel) -> Result<tag::Model, BlogError> {
    check_length(db, label, None).await?;
    new_tag(label)
        .insert(db)
        .await
        .map_err(BlogError::unless_unique(Unique::TagLabel))
}

/// Renames the tag `id` to `label`, which may differ from its label only in case; a
/// [`BlogError::Conflict`] if another tag has that label in any case, a
/// [`BlogError::Validation`] of `label` if it is too long to be stored (and names no other tag),
/// [`BlogError::NotFound`] if there is no tag `id`, before either.
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
    if label.check_length().is_err() {
        // Nothing is written: read, not in a transaction. The tag first, as a short label's
        // rename finds it before its key is refused.
        find_by_id(db, id).await?;
        check_length(db, label, Some(id)).await?;
    }
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
/// gives it): the tag labelled exactly so if there is one (a legacy label that is not NFC is its
/// own tag's, not the tag of its key), else the tag of its key.
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
        .all(db)
        .await?;
    let mut tags: Vec<(i32, tag::Model)> = links
        .into_iter()
        .filter_map(|(link, tag)| Some((link.post_id, tag?)))
        .collect();
    tags.sort_by_cached_key(|(_, tag)| alphabetical(&tag.label));
    Ok(tags)
}

/// Ensures every label exists as a tag, in any case (a label new in every case becomes a tag
/// spelled as given, if it is not too long to be stored: else a validation error at `tags`), and returns their ids in the labels' order, each once: labels that differ
/// only in case are one tag (input parsed by a node of before the keys may hold both).
/// Uses an upsert, so two writers creating the same new tag at once both succeed.
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
