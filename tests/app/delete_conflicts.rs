//! The dashboard's delete button against changes made after the dashboard was loaded (another
//! admin, the API, another node): pressing it must delete the post as the admin saw it, or
//! nothing. A post changed since is kept, and the answer says so and shows it as it is now.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, location, spawn_app, unescape};

/// What a delete refused because the post changed since the page was loaded says.
const CHANGED_SINCE_LOADED: &str = "was changed since this page was loaded";
/// What a delete that does not say which version it was loaded on says.
const VERSION_UNKNOWN: &str = "does not say which version of the post";

/// Every hidden field of the form in `html` that posts to `action`, as a browser sends them back;
/// `None` when the page has no such form.
fn form_fields(html: &str, action: &str) -> Option<Vec<(String, String)>> {
    let marker = format!(r#"<form method="post" action="{action}">"#);
    let form = &html[html.find(&marker)?..];
    let form = &form[..form.find("</form>").expect("the form ends")];
    Some(
        form.match_indices(r#"<input type="hidden" name=""#)
            .map(|(at, marker)| {
                let rest = &form[at + marker.len()..];
                let name_end = rest.find('"').unwrap();
                let value_at = rest.find(r#"value=""#).unwrap() + r#"value=""#.len();
                let value_end = value_at + rest[value_at..].find('"').unwrap();
                (
                    rest[..name_end].to_owned(),
                    unescape(&rest[value_at..value_end]),
                )
            })
            .collect(),
    )
}

/// The delete form of the post `slug` on the page `html`, its hidden fields.
fn delete_form(html: &str, slug: &str) -> Vec<(String, String)> {
    form_fields(html, &format!("/admin/posts/{slug}/delete"))
        .unwrap_or_else(|| panic!("no delete form for {slug} in {html}"))
}

/// Presses the delete button whose form is `fields` (its hidden fields), for the post `slug`.
async fn press_delete(app: &TestApp, slug: &str, fields: &[(String, String)]) -> reqwest::Response {
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    app.post_form(&format!("/admin/posts/{slug}/delete"), &fields)
        .await
}

async fn status_of(app: &TestApp, slug: &str) -> StatusCode {
    app.api_call(Method::GET, &format!("/posts/{slug}"), None)
        .await
        .0
}

/// The lost update of a delete: the dashboard is loaded, the post is changed through the API,
/// then the admin presses Delete. The delete used to go through whatever the post had become.
/// It must keep the post and answer 409, saying it changed since the page was loaded and what
/// to do, with the post as it is now and a delete button for that version, which deletes it.
#[tokio::test]
async fn a_dashboard_delete_keeps_a_post_changed_since_the_dashboard_was_loaded() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Doomed", "body": "v1", "published": true }))
        .await;
    app.login().await;
    let (status, dashboard) = app.get_text("/admin").await;
    assert_eq!(status, StatusCode::OK);
    let form = delete_form(&dashboard, "doomed");

    let (status, answer) = app
        .api_call(
            Method::PATCH,
            "/posts/doomed",
            Some(&json!({ "title": "Doomed, now rewritten", "body": "v2, worth keeping" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let response = press_delete(&app, "doomed", &form).await;
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(
        status_of(&app, "doomed").await,
        StatusCode::OK,
        "the delete answered {status} and deleted a post changed since the dashboard was loaded"
    );
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains(CHANGED_SINCE_LOADED), "{html}");
    assert!(html.contains("nothing was deleted"), "{html}");
    assert!(
        html.contains("Doomed, now rewritten"),
        "the post as it is now: {html}"
    );

    // Pressed again from the page that came back, after looking: it deletes.
    let again = delete_form(&html, "doomed");
    let response = press_delete(&app, "doomed", &again).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(response.headers()), "/admin");
    let (_, dashboard) = app.get_text("/admin").await;
    assert!(dashboard.contains("Post deleted."), "{dashboard}");
    assert_eq!(status_of(&app, "doomed").await, StatusCode::NOT_FOUND);
}

/// A delete form from a page of before versions (only its CSRF token) cannot tell whether the
/// post changed since: as an edit form without a version, it is not applied blindly but comes
/// back (409) with the post as it is now and a delete button for that version. Its address, opened
/// (a login returning to it), leads to the dashboard.
#[tokio::test]
async fn a_delete_without_a_version_is_sent_back_to_be_checked() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Old page", "body": "v1" }))
        .await;
    app.login().await;
    let csrf = app.csrf_for("/admin").await;
    let response = press_delete(&app, "old-page", &[("csrf".into(), csrf)]).await;
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(
        status_of(&app, "old-page").await,
        StatusCode::OK,
        "deleted blindly ({status})"
    );
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains(VERSION_UNKNOWN), "{html}");
    assert!(html.contains("Old page"), "{html}");

    let again = delete_form(&html, "old-page");
    let response = press_delete(&app, "old-page", &again).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(status_of(&app, "old-page").await, StatusCode::NOT_FOUND);

    let response = app.get("/admin/posts/old-page/delete").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(response.headers()), "/admin");
}

/// The post given another slug after the dashboard was loaded: it changed, and it is not gone.
/// The delete finds it by its id and comes back as the 409 above, showing it at its new address.
#[tokio::test]
async fn a_dashboard_delete_of_a_post_whose_slug_changed_shows_it_at_its_new_address() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Wanderer", "body": "v1" }))
        .await;
    app.login().await;
    let (_, dashboard) = app.get_text("/admin").await;
    let form = delete_form(&dashboard, "wanderer");
    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/wanderer",
            Some(&json!({ "slug": "wandered-off" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let response = press_delete(&app, "wanderer", &form).await;
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(status_of(&app, "wandered-off").await, StatusCode::OK);
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains(CHANGED_SINCE_LOADED), "{html}");
    // Its delete button is the post's at its address now.
    let again = delete_form(&html, "wandered-off");
    let response = press_delete(&app, "wandered-off", &again).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(status_of(&app, "wandered-off").await, StatusCode::NOT_FOUND);
}

/// The post deleted and another created at its address after the dashboard was loaded: the
/// delete button names the first post (its id), so it does not delete the new one; the first is
/// already gone, which the dashboard says, as it does for a post already deleted.
#[tokio::test]
async fn a_dashboard_delete_of_a_post_deleted_and_recreated_meanwhile_keeps_the_new_one() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Reborn", "body": "first life" }))
        .await;
    app.login().await;
    let (_, dashboard) = app.get_text("/admin").await;
    let form = delete_form(&dashboard, "reborn");
    let (status, _) = app.api_call(Method::DELETE, "/posts/reborn", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.create_post(json!({ "title": "Reborn", "body": "second life" }))
        .await;

    let response = press_delete(&app, "reborn", &form).await;
    let status = response.status();
    assert_eq!(
        status_of(&app, "reborn").await,
        StatusCode::OK,
        "the new post at the address was deleted ({status})"
    );
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(response.headers()), "/admin");
    let (_, dashboard) = app.get_text("/admin").await;
    assert!(dashboard.contains("already deleted"), "{dashboard}");
    assert!(dashboard.contains("Nothing was deleted now"), "{dashboard}");
}
