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
    #[error(transparent)]
    Db(DbErr),
}

impl From<DbErr> for BlogError {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(msg)) => {
                BlogError::Conflict(conflict_message(&msg))
            }
            _ => BlogError::Db(err),
        }
    }
}

fn conflict_message(sqlite_msg: &str) -> String {
    if sqlite_msg.contains("tags.label") {
        "a tag with this label already exists".into()
    } else if sqlite_msg.contains("posts.slug") {
        "a post with this slug already exists".into()
    } else {
        format!("this would create a duplicate ({sqlite_msg})")
    }
}

impl BlogError {
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        BlogError::Validation(FieldErrors::from([(field, message.into())]))
    }
}
