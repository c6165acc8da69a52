//! Operations on tags. Deleting a tag is a write procedure ([`DeleteTag`]): one round trip from a
//! replica.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult,
    ModelTrait, QueryFilter, QueryOrder, Set, Statement,
};

use sea_orm_litefs::{ClusterConnection, ClusterTransaction, Procedure};

use super::input::TagLabel;
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

/// Tags alphabetically with their post counts. `All` (the admin): every tag, drafts counted.
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
             GROUP BY tags.id ORDER BY tags.label"
        }
        Visibility::PublishedOnly => {
            "SELECT tags.id, tags.label, count(posts.id) AS post_count \
             FROM tags LEFT JOIN posts_tags ON posts_tags.tag_id = tags.id \
             LEFT JOIN posts ON posts.id = posts_tags.post_id AND posts.published \
             GROUP BY tags.id \
             HAVING count(posts.id) > 0 OR count(posts_tags.post_id) = 0 \
             ORDER BY tags.label"
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

pub async fn create<C: ConnectionTrait>(db: &C, label: &TagLabel) -> Result<tag::Model, BlogError> {
    let tag = tag::ActiveModel {
        label: Set(label.as_str().to_owned()),
        ..Default::default()
    };
    tag.insert(db)
        .await
        .map_err(BlogError::unless_unique(Unique::TagLabel))
}

pub async fn rename<C: ConnectionTrait>(
    db: &C,
    id: i32,
    label: &TagLabel,
) -> Result<tag::Model, BlogError> {
    let existing = tag::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(BlogError::NotFound)?;
    let mut tag: tag::ActiveModel = existing.into();
    tag.label = Set(label.as_str().to_owned());
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

pub async fn find_by_label<C: ConnectionTrait>(
    db: &C,
    label: &str,
) -> Result<tag::Model, BlogError> {
    tag::Entity::find()
        .filter(tag::Column::Label.eq(label))
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
        .order_by_asc(tag::Column::Label)
        .all(db)
        .await?;
    Ok(links
        .into_iter()
        .filter_map(|(link, tag)| Some((link.post_id, tag?)))
        .collect())
}

/// Ensures every label exists as a tag and returns their ids, in the labels' order.
/// Uses an upsert, so two writers creating the same new tag at once both succeed.
pub async fn ensure<C: ConnectionTrait>(
    db: &C,
    labels: &[TagLabel],
) -> Result<Vec<i32>, BlogError> {
    let mut ids = Vec::with_capacity(labels.len());
    for label in labels {
        let tag = tag::ActiveModel {
            label: Set(label.as_str().to_owned()),
            ..Default::default()
        };
        tag::Entity::insert(tag)
            .on_conflict_do_nothing_on([tag::Column::Label])
            .exec(db)
            .await?;
        ids.push(find_by_label(db, label.as_str()).await?.id);
    }
    Ok(ids)
}
