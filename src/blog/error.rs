use std::collections::BTreeMap;

use sea_orm::{DbErr, SqlErr};

/// Per-field validation messages, keyed by the form/JSON field name.
pub type FieldErrors = BTreeMap<&'static str, String>;

/// What a domain operation can fail with; the web layer maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum BlogError {
    #[error("invalid input")]
    Validation(FieldErrors),
    #[error("not found")]
    NotFound,
    /// A unique constraint said no; the message is meant for a person.
    #[error("{0}")]
    Conflict(String),
    /// The post changed since the version the write was told to expect (an edit form opened
    /// before another save): nothing was written. Holds the post as it is now.
    #[error("the post was changed since it was read")]
    Changed(Box<crate::blog::posts::PostWithTags>),
    #[error(transparent)]
    Db(DbErr),
}

/// The unique constraints a person can run into, each with a message they can act on.
///
/// A write says which one it can violate ([`BlogError::unless_unique`]): SQLite reports a unique
/// violation by its error code (2067, or 1555 for a primary key), which SeaORM reads and a
/// forwarded error keeps, but names the columns only inside its message text, which is not an
/// interface to match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unique {
    /// `posts.slug`.
    PostSlug,
    /// `tags.label`, or `tags.label_key` (the same label in another case).
    TagLabel,
}

impl Unique {
    pub fn message(self) -> &'static str {
        match self {
            Unique::PostSlug => "a post with this slug already exists",
            Unique::TagLabel => "a tag with this label already exists",
        }
    }
}

/// Any other unique violation: a write that was not expected to hit one.
pub(super) fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

impl From<DbErr> for BlogError {
    fn from(err: DbErr) -> Self {
        if is_unique_violation(&err) {
            BlogError::Conflict("this would create a duplicate".into())
        } else {
            BlogError::Db(err)
        }
    }
}

impl BlogError {
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        BlogError::Validation(FieldErrors::from([(field, message.into())]))
    }

    /// For `.map_err` on a write whose only unique constraint is `unique`: a unique violation
    /// becomes that constraint's [`BlogError::Conflict`], anything else converts as usual.
    pub fn unless_unique(unique: Unique) -> impl FnOnce(DbErr) -> BlogError {
        move |err| {
            if is_unique_violation(&err) {
                BlogError::Conflict(unique.message().into())
            } else {
                BlogError::from(err)
            }
        }
    }
}
