//! A post's old addresses: after its slug changes, `GET /posts/<old slug>` is a permanent
//! redirect (301) to where it is now, in one hop, for every slug it had; a slug a post has now
//! wins over another post's old one; a deleted post's old slugs lead nowhere; a draft's old slug
//! is a 404 for visitors, as the draft is.

use reqwest::header::LOCATION;
use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::helpers::{TestApp, cookie_client, location, spawn_app};

/// GET with a client that has no cookies (an anonymous visitor), without following redirects.
async fn anonymous(app: &TestApp, path: &str) -> reqwest::Response {
    cookie_client().get(app.url(path)).send().await.unwrap()
}

/// Asserts that an anonymous visitor's GET of `path` is a 301 to `to`.
async fn assert_moved(app: &TestApp, path: &str, to: &str) {
    let response = anonymous(app, path).await;
    assert_eq!(
        response.status(),
        StatusCode::MOVED_PERMANENTLY,
        "GET {path}"
    );
    assert_eq!(location(response.headers()), to, "GET {path}");
}

/// Asserts that an anonymous visitor's GET of `path` is the page of the post titled `title`.
async fn assert_shows(app: &TestApp, path: &str, title: &str) {
    let response = anonymous(app, path).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    let html = response.text().await.unwrap();
    assert!(
        html.contains(&format!("<h1>{title}</h1>")),
        "GET {path}: {html}"
    );
}

/// Asserts that an anonymous visitor's GET of `path` is a 404 that names no other address.
async fn assert_not_found(app: &TestApp, path: &str) {
    let response = anonymous(app, path).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "GET {path}");
    assert!(response.headers().get(LOCATION).is_none(), "GET {path}");
}

async fn post(app: &TestApp, slug: &str, title: &str, published: bool) {
    app.create_post(
        json!({ "title": title, "slug": slug, "body": "Text.", "published": published }),
    )
    .await;
}

/// Renames the post `from` to `to` through the API.
async fn rename(app: &TestApp, from: &str, to: &str) {
    let (status, body) = app
        .api_call(
            Method::PATCH,
            &format!("/posts/{from}"),
            Some(&json!({ "slug": to })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{from} -> {to}: {body}");
}

/// A rename as any SQL client makes it (a node of the previous release, during a rolling deploy,
/// or a slug the validation of today would not accept): one `UPDATE` of the slug.
async fn rename_in_sql(app: &TestApp, from: &str, to: &str) {
    let done = app
        .db
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Sqlite,
            "UPDATE posts SET slug = ? WHERE slug = ?",
            [to.into(), from.into()],
        ))
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1, "no post {from}");
}

#[tokio::test]
async fn every_old_slug_of_a_post_leads_to_where_it_is_now_in_one_hop() {
    let app = spawn_app().await;
    post(&app, "first", "Moving post", true).await;
    rename(&app, "first", "second").await;
    assert_moved(&app, "/posts/first", "/posts/second").await;
    rename(&app, "second", "third").await;
    assert_moved(&app, "/posts/first", "/posts/third").await;
    assert_moved(&app, "/posts/second", "/posts/third").await;
    assert_shows(&app, "/posts/third", "Moving post").await;
    // The query comes along, as a tag's redirect keeps it.
    assert_moved(&app, "/posts/first?ref=feed", "/posts/third?ref=feed").await;
    // An edit that keeps the slug (the edit form sends it again) is no rename: the post's address
    // does not become an old address of itself.
    let (status, body) = app
        .api_call(
            Method::PATCH,
            "/posts/third",
            Some(&json!({ "slug": "third", "title": "Moved post" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_shows(&app, "/posts/third", "Moved post").await;
    // Back to its first address: that is the post itself again, and the others lead there.
    rename(&app, "third", "first").await;
    assert_shows(&app, "/posts/first", "Moved post").await;
    assert_moved(&app, "/posts/second", "/posts/first").await;
    assert_moved(&app, "/posts/third", "/posts/first").await;
    // A rename by a node that does not know about old addresses is remembered too (the database
    // keeps them, not the app's code).
    rename_in_sql(&app, "first", "fourth").await;
    for old in ["first", "second", "third"] {
        assert_moved(&app, &format!("/posts/{old}"), "/posts/fourth").await;
    }
    // A trailing slash: to the address without it, which leads on.
    let response = anonymous(&app, "/posts/second/").await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(location(response.headers()), "/posts/second");
}

#[tokio::test]
async fn a_slug_a_post_has_now_wins_over_an_old_slug_of_another() {
    let app = spawn_app().await;
    post(&app, "alpha", "Old alpha", true).await;
    rename(&app, "alpha", "alpha-moved").await;
    assert_moved(&app, "/posts/alpha", "/posts/alpha-moved").await;
    // A new post takes the freed address: it is that post's.
    post(&app, "alpha", "New alpha", true).await;
    assert_shows(&app, "/posts/alpha", "New alpha").await;
    // And when that one moves on, the address follows it, not the first post.
    rename(&app, "alpha", "beta").await;
    assert_moved(&app, "/posts/alpha", "/posts/beta").await;
    assert_shows(&app, "/posts/alpha-moved", "Old alpha").await;
    // A post renamed to another post's old address takes it over as well.
    rename(&app, "alpha-moved", "gamma").await;
    rename(&app, "beta", "alpha-moved").await;
    assert_shows(&app, "/posts/alpha-moved", "New alpha").await;
    assert_moved(&app, "/posts/alpha", "/posts/alpha-moved").await;
    assert_moved(&app, "/posts/beta", "/posts/alpha-moved").await;
    assert_shows(&app, "/posts/gamma", "Old alpha").await;
    // A draft that takes an address holds it too: visitors get its 404, not another post.
    rename(&app, "gamma", "delta").await;
    post(&app, "gamma", "Draft gamma", false).await;
    assert_not_found(&app, "/posts/gamma").await;
}

#[tokio::test]
async fn a_drafts_old_slug_is_a_404_for_visitors_and_leads_the_admin_to_it() {
    let app = spawn_app().await;
    post(&app, "draft-one", "A draft", false).await;
    rename(&app, "draft-one", "draft-two").await;
    assert_not_found(&app, "/posts/draft-one").await;
    let response = anonymous(&app, "/posts/draft-one").await;
    let page = response.text().await.unwrap();
    assert!(!page.contains("draft-two"), "{page}");
    // The signed-in admin, who may read the draft, is sent to its address.
    app.login().await;
    let response = app.get("/posts/draft-one").await;
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(location(response.headers()), "/posts/draft-two");
    // A published post taken back to a draft: its old addresses are a 404 for visitors again.
    post(&app, "was-public", "Was public", true).await;
    rename(&app, "was-public", "now-private").await;
    assert_moved(&app, "/posts/was-public", "/posts/now-private").await;
    let (status, body) = app
        .api_call(
            Method::PATCH,
            "/posts/now-private",
            Some(&json!({ "published": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_not_found(&app, "/posts/was-public").await;
}

#[tokio::test]
async fn a_deleted_posts_old_slugs_lead_nowhere() {
    let app = spawn_app().await;
    post(&app, "short-lived", "Short-lived", true).await;
    rename(&app, "short-lived", "renamed").await;
    rename(&app, "renamed", "renamed-again").await;
    assert_moved(&app, "/posts/short-lived", "/posts/renamed-again").await;
    let (status, body) = app
        .api_call(Method::DELETE, "/posts/renamed-again", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for path in [
        "/posts/short-lived",
        "/posts/renamed",
        "/posts/renamed-again",
    ] {
        assert_not_found(&app, path).await;
    }
    let remembered = app
        .db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "SELECT slug FROM post_slugs",
        ))
        .await
        .unwrap();
    assert!(remembered.is_empty(), "{} old slugs kept", remembered.len());
    // The addresses are free for new posts.
    post(&app, "renamed", "Another post", true).await;
    assert_shows(&app, "/posts/renamed", "Another post").await;
    assert_not_found(&app, "/posts/short-lived").await;
}

/// A slug with letters outside ASCII (not accepted by the forms today, but a post may have one
/// written otherwise, and slugs may soon allow them): the redirect's `Location` is
/// percent-encoded, to the address and from it.
#[tokio::test]
async fn a_redirect_to_or_from_a_slug_outside_ascii_is_percent_encoded() {
    let app = spawn_app().await;
    post(&app, "cafe", "Café", true).await;
    rename_in_sql(&app, "cafe", "café-crème").await;
    assert_moved(&app, "/posts/cafe", "/posts/caf%C3%A9-cr%C3%A8me").await;
    assert_shows(&app, "/posts/caf%C3%A9-cr%C3%A8me", "Café").await;
    rename_in_sql(&app, "café-crème", "plain").await;
    assert_moved(&app, "/posts/caf%C3%A9-cr%C3%A8me", "/posts/plain").await;
    assert_moved(&app, "/posts/cafe", "/posts/plain").await;
}
