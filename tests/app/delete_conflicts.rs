//! The dashboard's delete button against changes made after the dashboard was loaded (another
//! admin, the API, another node): pressing it must delete the post as the admin saw it, or
//! nothing. A post changed since is kept, and the answer says so and shows it as it is now.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, hidden_inputs, location, spawn_app};

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
    Some(hidden_inputs(form))
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

// ---- Review (fresh context): what held when trying to break the dashboard's delete. ----

/// The post's tag renamed on the Tags page (the API here) after the dashboard was loaded: the
/// post did not get a new `updated_at`, but its version covers its tags' labels, so the delete
/// is refused (409) and the post shown with the new label; the refused page's button deletes it.
#[tokio::test]
async fn review_a_tag_renamed_meanwhile_refuses_the_dashboard_delete() {
    let app = spawn_app().await;
    let tag = app.create_tag("oldname").await;
    app.create_post(json!({ "title": "Tagged", "body": "v1", "tags": ["oldname"] }))
        .await;
    app.login().await;
    let (_, dashboard) = app.get_text("/admin").await;
    let form = delete_form(&dashboard, "tagged");
    let (status, body) = app
        .api_call(
            Method::PATCH,
            &format!("/tags/{}", tag["id"]),
            Some(&json!({ "label": "newname" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let response = press_delete(&app, "tagged", &form).await;
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(status_of(&app, "tagged").await, StatusCode::OK, "{status}");
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains(CHANGED_SINCE_LOADED), "{html}");
    assert!(html.contains("newname"), "the tags as they are now: {html}");
    let again = delete_form(&html, "tagged");
    assert_eq!(
        press_delete(&app, "tagged", &again).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(status_of(&app, "tagged").await, StatusCode::NOT_FOUND);
}

/// The same button pressed twice (a double click, or Back and again): the first deletes, the
/// second says the post was already deleted and deletes nothing else.
#[tokio::test]
async fn review_a_double_submitted_delete_deletes_once_and_says_so() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Twice", "body": "v1" }))
        .await;
    app.create_post(json!({ "title": "Bystander", "body": "v1" }))
        .await;
    app.login().await;
    let (_, dashboard) = app.get_text("/admin").await;
    let form = delete_form(&dashboard, "twice");
    let (first, second) = tokio::join!(
        press_delete(&app, "twice", &form),
        press_delete(&app, "twice", &form)
    );
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    assert_eq!(second.status(), StatusCode::SEE_OTHER);
    let (_, dashboard) = app.get_text("/admin").await;
    assert!(
        dashboard.contains("Post deleted.") || dashboard.contains("already deleted"),
        "{dashboard}"
    );
    let response = press_delete(&app, "twice", &form).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, dashboard) = app.get_text("/admin").await;
    assert!(dashboard.contains("already deleted"), "{dashboard}");
    assert_eq!(status_of(&app, "twice").await, StatusCode::NOT_FOUND);
    assert_eq!(status_of(&app, "bystander").await, StatusCode::OK);
}

/// The fields of a delete button without (or with another session's, or a forged) CSRF token,
/// or from another site: refused (403), nothing deleted.
#[tokio::test]
async fn review_a_dashboard_delete_without_its_csrf_token_deletes_nothing() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Guarded", "body": "v1" }))
        .await;
    app.login().await;
    let (_, dashboard) = app.get_text("/admin").await;
    let form = delete_form(&dashboard, "guarded");
    let without: Vec<(String, String)> =
        form.iter().filter(|(n, _)| n != "csrf").cloned().collect();
    let response = press_delete(&app, "guarded", &without).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let mut forged = without.clone();
    forged.push(("csrf".into(), "forged".into()));
    let response = press_delete(&app, "guarded", &forged).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let fields: Vec<(&str, &str)> = form.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let response = app
        .client
        .post(app.url("/admin/posts/guarded/delete"))
        .header("origin", "https://evil.example")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Another visitor (not signed in), with the admin's form: not deleted either.
    let stranger = crate::helpers::cookie_client();
    let response = stranger
        .post(app.url("/admin/posts/guarded/delete"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_redirection() || response.status() == StatusCode::FORBIDDEN,
        "{}",
        response.status()
    );
    assert_eq!(status_of(&app, "guarded").await, StatusCode::OK);
}

/// Odd and forged ids and versions on a delete button: nothing is deleted (neither the post at
/// the address nor the post the id names), and no answer is a 5xx.
#[tokio::test]
async fn review_odd_and_forged_delete_fields_delete_nothing_and_never_fail() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Target", "body": "v1" }))
        .await;
    app.create_post(json!({ "title": "Other", "body": "v1" }))
        .await;
    app.login().await;
    let (_, dashboard) = app.get_text("/admin").await;
    let target = delete_form(&dashboard, "target");
    let other = delete_form(&dashboard, "other");
    let field = |form: &[(String, String)], name: &str| {
        form.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let csrf = field(&target, "csrf");
    let (id, version) = (field(&target, "post_id"), field(&target, "version"));
    let (other_id, other_version) = (field(&other, "post_id"), field(&other, "version"));
    let cases: Vec<(String, String)> = vec![
        // Another post's id and version, at this address.
        (other_id.clone(), other_version.clone()),
        // This post's version, another post's id.
        (other_id.clone(), version.clone()),
        // Another post's version, this post's id.
        (id.clone(), other_version.clone()),
        ("".into(), version.clone()),
        ("-1".into(), version.clone()),
        ("0".into(), version.clone()),
        ("99999999999999999999".into(), version.clone()),
        ("2147483647".into(), version.clone()),
        ("1e3".into(), version.clone()),
        (id.clone(), "".into()),
        (id.clone(), "garbage".into()),
        (id.clone(), "2026-11-29T07:00:00Z".into()),
        (id.clone(), format!("{version}0")),
        (id.clone(), version.replace('~', "~~")),
        (
            id.clone(),
            "9999-12-31T23:59:59.999999999Z~0000000000000000".into(),
        ),
        (id.clone(), "\u{0}\u{ffff}~".into()),
        (format!(" {id} "), "x".repeat(100_000)),
    ];
    for (post_id, version) in cases {
        let fields = vec![
            ("csrf".to_owned(), csrf.clone()),
            ("post_id".to_owned(), post_id.clone()),
            ("version".to_owned(), version.clone()),
        ];
        let response = press_delete(&app, "target", &fields).await;
        let status = response.status();
        let html = response.text().await.unwrap();
        assert!(
            status == StatusCode::CONFLICT || status == StatusCode::SEE_OTHER,
            "{post_id:?} {:?}: {status} {html}",
            &version[..version.len().min(60)]
        );
        assert_eq!(
            status_of(&app, "target").await,
            StatusCode::OK,
            "{post_id:?}"
        );
        assert_eq!(
            status_of(&app, "other").await,
            StatusCode::OK,
            "{post_id:?}"
        );
    }
    // A delete at an address no post has, with a real post's id and version: that post is kept.
    let fields = vec![
        ("csrf".to_owned(), csrf.clone()),
        ("post_id".to_owned(), id.clone()),
        ("version".to_owned(), version.clone()),
    ];
    let response = press_delete(&app, "no-such-post", &fields).await;
    assert!(
        matches!(
            response.status(),
            StatusCode::CONFLICT | StatusCode::SEE_OTHER
        ),
        "{}",
        response.status()
    );
    assert_eq!(status_of(&app, "target").await, StatusCode::OK);
}

/// The post given another slug, and a new post made at its old one, after the dashboard was
/// loaded: the button deletes neither; the 409 shows the first post at its new address.
#[tokio::test]
async fn review_a_delete_of_a_moved_post_keeps_the_new_post_at_its_old_address() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Squatted", "body": "first" }))
        .await;
    app.login().await;
    let (_, dashboard) = app.get_text("/admin").await;
    let form = delete_form(&dashboard, "squatted");
    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/squatted",
            Some(&json!({ "slug": "moved-out" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.create_post(json!({ "title": "Squatted", "body": "second" }))
        .await;
    let response = press_delete(&app, "squatted", &form).await;
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(status_of(&app, "squatted").await, StatusCode::OK);
    assert_eq!(status_of(&app, "moved-out").await, StatusCode::OK);
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains(CHANGED_SINCE_LOADED), "{html}");
    delete_form(&html, "moved-out");
}

/// The refused page's own button, after the post changed once more: refused again (409, with
/// the newest version), never deleted blindly.
#[tokio::test]
async fn review_the_refused_pages_button_is_refused_too_after_another_change() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Busy", "body": "v1" }))
        .await;
    app.login().await;
    let (_, dashboard) = app.get_text("/admin").await;
    let form = delete_form(&dashboard, "busy");
    for body in ["v2", "v3"] {
        let (status, _) = app
            .api_call(Method::PATCH, "/posts/busy", Some(&json!({ "body": body })))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let html = press_delete(&app, "busy", &form)
        .await
        .text()
        .await
        .unwrap();
    let refused_form = delete_form(&html, "busy");
    let (status, _) = app
        .api_call(Method::PATCH, "/posts/busy", Some(&json!({ "body": "v4" })))
        .await;
    assert_eq!(status, StatusCode::OK);
    let response = press_delete(&app, "busy", &refused_form).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(status_of(&app, "busy").await, StatusCode::OK);
}

/// Page 2 of the dashboard: its delete buttons carry the id and version too, and delete.
#[tokio::test]
async fn review_a_delete_from_page_two_of_the_dashboard_deletes_that_post() {
    let app = spawn_app().await;
    for i in 0..22 {
        app.create_post(json!({ "title": format!("Post {i}"), "body": "x", "published": true }))
            .await;
    }
    app.login().await;
    let (status, page_two) = app.get_text("/admin?page=2").await;
    assert_eq!(status, StatusCode::OK);
    // The oldest posts are on page 2.
    let form = delete_form(&page_two, "post-0");
    assert!(
        form.iter().any(|(n, v)| n == "version" && !v.is_empty()),
        "{form:?}"
    );
    let response = press_delete(&app, "post-0", &form).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(status_of(&app, "post-0").await, StatusCode::NOT_FOUND);
    assert_eq!(status_of(&app, "post-1").await, StatusCode::OK);
}

/// The field `name` of the form `fields`, if it has one.
fn field_of(fields: &[(String, String)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

/// A delete refused from page 2 of the dashboard: the 409 is page 2 (the page the admin was on,
/// its rows and its pager), not page 1, with the refused post shown as it is now and a button for
/// that version, which keeps the page too and deletes the post.
#[tokio::test]
async fn a_delete_refused_from_page_two_shows_page_two() {
    let app = spawn_app().await;
    for i in 0..22 {
        app.create_post(json!({ "title": format!("Post {i}"), "body": "x", "published": true }))
            .await;
    }
    app.login().await;
    let (status, page_two) = app.get_text("/admin?page=2").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page_two.contains("Page 2 of 2"), "{page_two}");
    let form = delete_form(&page_two, "post-0");
    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/post-0",
            Some(&json!({ "body": "rewritten meanwhile" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let response = press_delete(&app, "post-0", &form).await;
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert_eq!(status_of(&app, "post-0").await, StatusCode::OK);
    assert!(html.contains(CHANGED_SINCE_LOADED), "{html}");
    assert!(
        html.contains("Page 2 of 2"),
        "the 409 is not the page the delete came from: {html}"
    );
    // Page 2's rows, not page 1's.
    form_fields(&html, "/admin/posts/post-1/delete").expect("page 2's other post is listed");
    assert!(
        form_fields(&html, "/admin/posts/post-21/delete").is_none(),
        "page 1's newest post is listed: {html}"
    );

    // The refused post's button names its version now, and keeps the page.
    let again = delete_form(&html, "post-0");
    assert_ne!(field_of(&again, "version"), field_of(&form, "version"));
    assert_eq!(field_of(&again, "page").as_deref(), Some("2"), "{again:?}");
    let response = press_delete(&app, "post-0", &again).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(status_of(&app, "post-0").await, StatusCode::NOT_FOUND);
}

/// A delete refused from a page that is no longer there (posts deleted meanwhile), or naming a
/// page that never was: the 409 is the last page there is, never a 404 or a 5xx, with the refused
/// post and its button; a page field that is not a number is page 1.
#[tokio::test]
async fn a_delete_refused_from_a_page_gone_meanwhile_shows_the_last_page() {
    let app = spawn_app().await;
    for i in 0..21 {
        app.create_post(json!({ "title": format!("Post {i}"), "body": "x", "published": true }))
            .await;
    }
    app.login().await;
    let (_, page_two) = app.get_text("/admin?page=2").await;
    let form = delete_form(&page_two, "post-0");
    assert_eq!(field_of(&form, "page").as_deref(), Some("2"), "{form:?}");
    // Page 2 goes: 20 posts left, one page.
    let (status, _) = app.api_call(Method::DELETE, "/posts/post-20", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/post-0",
            Some(&json!({ "body": "v2" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let with_page = |page: &str| {
        let mut fields: Vec<(String, String)> =
            form.iter().filter(|(n, _)| n != "page").cloned().collect();
        fields.push(("page".into(), page.into()));
        fields
    };
    for page in [
        "2",
        "99999999999999999999",
        "18446744073709551615",
        "0",
        "-1",
        "two",
        "",
    ] {
        let response = press_delete(&app, "post-0", &with_page(page)).await;
        let status = response.status();
        let html = response.text().await.unwrap();
        assert_eq!(status, StatusCode::CONFLICT, "page {page:?}: {html}");
        assert!(html.contains(CHANGED_SINCE_LOADED), "{html}");
        // The one page there is: its newest and oldest posts, and the refused post's button.
        form_fields(&html, "/admin/posts/post-19/delete").expect("the last page's rows");
        let again = delete_form(&html, "post-0");
        assert_ne!(field_of(&again, "version"), field_of(&form, "version"));
    }
    assert_eq!(status_of(&app, "post-0").await, StatusCode::OK);
}

/// Review: three pages of posts (41), the delete of the oldest post (on page 3) refused, its form
/// sent with `page` set to `page`: the 409 and the "Page N of 3" it shows.
async fn refused_delete_shows(pages: &[&str]) -> Vec<(String, StatusCode, Option<u64>)> {
    let app = spawn_app().await;
    for i in 0..41 {
        app.create_post(json!({ "title": format!("Post {i}"), "body": "x", "published": true }))
            .await;
    }
    app.login().await;
    let (_, page_three) = app.get_text("/admin?page=3").await;
    assert!(page_three.contains("Page 3 of 3"), "{page_three}");
    let form = delete_form(&page_three, "post-0");
    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/post-0",
            Some(&json!({ "body": "v2" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut answers = Vec::new();
    for page in pages {
        let mut fields: Vec<(String, String)> =
            form.iter().filter(|(n, _)| n != "page").cloned().collect();
        fields.push(("page".into(), (*page).into()));
        let response = press_delete(&app, "post-0", &fields).await;
        let status = response.status();
        let html = response.text().await.unwrap();
        assert!(html.contains(CHANGED_SINCE_LOADED), "{page:?}: {html}");
        let shown = (1..=3).find(|n| html.contains(&format!("Page {n} of 3")));
        answers.push(((*page).to_owned(), status, shown));
    }
    assert_eq!(status_of(&app, "post-0").await, StatusCode::OK);
    answers
}

/// Review: a page number too big for a u64 is still a number, a page that never was, which the
/// change says shows the last page (as 18446744073709551615 does); it is taken as "not a number"
/// and shows page 1.
#[tokio::test]
async fn review_a_delete_refused_with_a_page_beyond_u64_shows_the_last_page() {
    let pages = [
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999",
    ];
    for (page, status, shown) in refused_delete_shows(&pages).await {
        assert_eq!(status, StatusCode::CONFLICT, "{page}");
        assert_eq!(shown, Some(3), "page {page:?}: not the last page");
    }
}

/// Review, holds: with three pages, the page field as sent is the page shown, trimmed and with a
/// sign; 0 and non-numbers are page 1; a page past the end is the last page; always a 409.
#[tokio::test]
async fn review_holds_a_refused_delete_shows_the_page_its_field_names() {
    let pages = ["2", " 3 ", "+2", "0", "-3", "2.0", "", "4", "1000"];
    let expected = [2, 3, 2, 1, 1, 1, 1, 3, 3];
    for ((page, status, shown), want) in
        refused_delete_shows(&pages).await.into_iter().zip(expected)
    {
        assert_eq!(status, StatusCode::CONFLICT, "{page:?}");
        assert_eq!(shown, Some(want), "page {page:?}");
    }
}

/// A delete refused from page 2 of the dashboard's drafts: the 409 is that page of the drafts
/// (the filter marked, its rows and its pager), and the refused post's button keeps the filter
/// and the page. A delete done from a filter comes back to that filter; a filter field that is
/// not one (a form of before it, or tampered with) is all posts, as a page that is not a number
/// is page 1.
#[tokio::test]
async fn a_delete_refused_from_a_filtered_page_keeps_the_filter_and_the_page() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.create_post(json!({ "title": format!("Public {i}"), "body": "x", "published": true }))
            .await;
    }
    for i in 0..22 {
        app.create_post(json!({ "title": format!("Draft {i}"), "body": "x", "published": false }))
            .await;
    }
    app.login().await;
    let (status, page_two) = app.get_text("/admin?status=drafts&page=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        crate::dashboard::listed(&page_two),
        ["draft-1", "draft-0"],
        "{page_two}"
    );
    let form = delete_form(&page_two, "draft-0");
    assert_eq!(
        field_of(&form, "status").as_deref(),
        Some("drafts"),
        "{form:?}"
    );
    assert_eq!(field_of(&form, "page").as_deref(), Some("2"), "{form:?}");
    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/draft-0",
            Some(&json!({ "body": "rewritten meanwhile" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let response = press_delete(&app, "draft-0", &form).await;
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains(CHANGED_SINCE_LOADED), "{html}");
    assert!(html.contains("Page 2 of 2"), "{html}");
    // Edited meanwhile, draft-0 is the newest edited draft now: page 1's first.
    assert_eq!(crate::dashboard::listed(&html)[1..], ["draft-2", "draft-1"]);
    assert!(crate::dashboard::filter_link(&html, "/admin?status=drafts").1);
    assert!(!crate::dashboard::filter_link(&html, "/admin").1);
    let again = delete_form(&html, "draft-0");
    assert_eq!(field_of(&again, "status").as_deref(), Some("drafts"));
    assert_eq!(field_of(&again, "page").as_deref(), Some("2"));

    // Any filter field a form may send: what it shows.
    for (sent, current) in [
        ("published", "/admin?status=published"),
        ("all", "/admin"),
        ("bogus", "/admin"),
        ("", "/admin"),
    ] {
        let mut fields: Vec<(String, String)> = again
            .iter()
            .filter(|(n, _)| n != "status")
            .cloned()
            .collect();
        fields.push(("status".into(), sent.into()));
        fields.retain(|(n, _)| n != "version");
        fields.push((
            "version".into(),
            "2020-01-01T00:00:00.000000000Z~0000000000000000".into(),
        ));
        let response = press_delete(&app, "draft-0", &fields).await;
        let status = response.status();
        let html = response.text().await.unwrap();
        assert_eq!(status, StatusCode::CONFLICT, "status {sent:?}: {html}");
        assert!(
            crate::dashboard::filter_link(&html, current).1,
            "status {sent:?}: {html}"
        );
    }

    // Deleted from the drafts' filter: back to it.
    let response = press_delete(&app, "draft-0", &again).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(response.headers()), "/admin?status=drafts");
    assert_eq!(status_of(&app, "draft-0").await, StatusCode::NOT_FOUND);
}
