//! A fresh-context review of old-slug redirects and the dashboard's filter: what fails, and what
//! held when tried.

use reqwest::StatusCode;
use reqwest::header::LOCATION;
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::helpers::{TestApp, cookie_client, spawn_app};

async fn sql(app: &TestApp, statement: &str) {
    app.db
        .execute_unprepared(statement)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// An anonymous GET, redirects not followed: status, Location (if any), body.
async fn anonymous(app: &TestApp, path: &str) -> (StatusCode, Option<String>, String) {
    let response = cookie_client().get(app.url(path)).send().await.unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .map(|l| l.to_str().unwrap().to_owned());
    (status, location, response.text().await.unwrap())
}

/// A node of this version on a database its primary (still of the version before, during a
/// rolling deploy) has not migrated yet: no `post_slugs` table. A post's page is looked up as
/// before, and a slug no post has is a 404, as it was: not a 500.
#[tokio::test]
async fn a_database_not_migrated_yet_answers_a_missing_post_with_a_404_not_a_500() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Kept", "slug": "kept", "body": "x", "published": true }))
        .await;
    app.create_post(json!({ "title": "Secret", "slug": "secret", "body": "x" }))
        .await;
    for statement in [
        "DROP TRIGGER post_slugs_delete",
        "DROP TRIGGER post_slugs_insert",
        "DROP TRIGGER post_slugs_rename",
        "DROP TABLE post_slugs",
        "DELETE FROM seaql_migrations WHERE version = 'm20261130_000001_post_slugs'",
    ] {
        sql(&app, statement).await;
    }
    let (status, _, _) = anonymous(&app, "/posts/kept").await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/posts/no-such-post", "/posts/secret"] {
        let (status, _, body) = anonymous(&app, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "GET {path}: {body}");
    }
}
