//! The blog's write procedures, and how its errors cross the network when one runs on the
//! primary for a replica: a not-found or a conflict comes back as the same [`BlogError`] (a 404
//! or a 409), a post changed meanwhile as the same [`BlogError::Changed`] with the post as it is,
//! a database error as the same `DbErr`.

use sea_orm_litefs::{Failure, ProcedureError, Procedures};

use super::{BlogError, FieldErrors, posts, tags};

/// Every write procedure of the blog, registered at start-up on every node.
pub fn registry() -> Procedures {
    Procedures::new()
        .register::<posts::CreatePost>()
        .register::<posts::UpdatePost>()
        .register::<posts::PatchPost>()
        .register::<posts::DeletePost>()
        .register::<tags::DeleteTag>()
}

/// A [`BlogError`] other than a database error, as it crosses the network.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum AppFailure {
    NotFound,
    Conflict(String),
    /// Field names and messages (procedures take validated input, so this is a safety net).
    Validation(Vec<(String, String)>),
    /// [`BlogError::Changed`], with the post as it is now. Last, so that the variants before it
    /// keep their bincode numbers for nodes of the version before it.
    Changed(posts::Saved),
}

/// The fields a form names; a validation error names one of them.
const FIELDS: [&str; 6] = ["title", "slug", "body", "tags", "published", "label"];

impl ProcedureError for BlogError {
    type App = AppFailure;

    fn into_failure(self) -> Failure<AppFailure> {
        match self {
            BlogError::Db(err) => Failure::Db(err),
            BlogError::NotFound => Failure::App(AppFailure::NotFound),
            BlogError::Conflict(message) => Failure::App(AppFailure::Conflict(message)),
            BlogError::Changed(current) => Failure::App(AppFailure::Changed((*current).into())),
            BlogError::Validation(fields) => Failure::App(AppFailure::Validation(
                fields
                    .into_iter()
                    .map(|(field, message)| (field.to_owned(), message))
                    .collect(),
            )),
        }
    }

    fn from_app(app: AppFailure) -> Self {
        match app {
            AppFailure::NotFound => BlogError::NotFound,
            AppFailure::Conflict(message) => BlogError::Conflict(message),
            AppFailure::Changed(current) => BlogError::Changed(Box::new(current.into())),
            AppFailure::Validation(fields) => BlogError::Validation(
                fields
                    .into_iter()
                    .map(|(field, message)| {
                        let known = FIELDS.into_iter().find(|known| *known == field);
                        (known.unwrap_or("input"), message)
                    })
                    .collect::<FieldErrors>(),
            ),
        }
    }
}
