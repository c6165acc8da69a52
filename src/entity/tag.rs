use sea_orm::ActiveValue::{self, Set};
use sea_orm::entity::prelude::*;
use serde::Serialize;

/// A tag; `label` is unique, and so is `label_key`, the label lowercased
/// ([`label_key`](crate::blog::input::label_key)): labels that differ only in case are one tag.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "tags")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub label: String,
    /// Written with `label` wherever a tag is inserted or renamed (`blog::tags`); not shown.
    #[sea_orm(unique)]
    #[serde(skip)]
    pub label_key: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::post_tag::Entity")]
    PostTag,
}

impl Related<super::post_tag::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::PostTag.def()
    }
}

impl Related<super::post::Entity> for Entity {
    fn to() -> RelationDef {
        super::post_tag::Relation::Post.def()
    }
    fn via() -> Option<RelationDef> {
        Some(super::post_tag::Relation::Tag.def().rev())
    }
}

/// `created_at` starts as now, also for `Entity::insert` (the upsert in `blog::tags::ensure`),
/// which runs no hooks: set once here rather than by every function that creates a tag.
#[async_trait::async_trait]
impl ActiveModelBehavior for ActiveModel {
    fn new() -> Self {
        Self {
            created_at: Set(chrono::Utc::now()),
            ..ActiveModelTrait::default()
        }
    }

    /// A label set without its key gets the key of that label: an `insert` or `update` of an
    /// active model cannot leave a tag whose key is not its label's. (`Entity::insert` runs no
    /// hooks: `blog::tags` sets both itself.)
    async fn before_save<C>(mut self, _db: &C, _insert: bool) -> Result<Self, DbErr>
    where
        C: ConnectionTrait,
    {
        if let ActiveValue::Set(label) = &self.label
            && !matches!(self.label_key, ActiveValue::Set(_))
        {
            self.label_key = Set(crate::blog::input::label_key(label));
        }
        Ok(self)
    }
}
