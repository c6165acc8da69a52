//! Content edges a newcomer hits: a body saved from an editor that writes a byte-order mark,
//! Greek and fullwidth slugs, a renamed post's old address on the API and the edit page.

use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::helpers::{cookie_client, encoded, location, spawn_app};

/// A body that starts with a byte-order mark (U+FEFF, as some editors save a file and a paste
/// of it keeps) rendered its first line `# Hello` as a paragraph: Markdown sees the mark as
/// text. The mark is dropped from a body given by the API (create and patch) and the form, and a
/// body stored with one before renders as if it had none.
#[tokio::test]
async fn a_leading_byte_order_mark_is_no_part_of_a_body() {
    let app = spawn_app().await;
    let post = app
        .create_post(json!({
            "title": "Marked", "body": "\u{feff}# Hello\n\nText.", "published": true
        }))
        .await;
    assert_eq!(post["body"], "# Hello\n\nText.", "{post}");
    let (_, page) = app.get_text("/posts/marked").await;
    assert!(page.contains("<h1>Hello</h1>"), "{page}");

    let (status, post) = app
        .api_call(
            Method::PATCH,
            "/posts/marked",
            Some(&json!({ "body": "\u{feff}## Patched" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{post}");
    assert_eq!(post["body"], "## Patched", "{post}");

    app.login().await;
    let csrf = app.csrf_for("/admin/posts/new").await;
    let response = app
        .post_form(
            "/admin/posts",
            &[
                ("csrf", &csrf),
                ("title", "From the form"),
                ("slug", ""),
                ("body", "\u{feff}# Formed"),
                ("published", "on"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, post) = app.api_get("/posts/from-the-form").await;
    assert_eq!(post["body"], "# Formed", "{post}");

    // Stored with a mark (by a node of before, or any SQL client): shown without it, and a
    // first heading that is the title is still left out.
    app.db
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Sqlite,
            "UPDATE posts SET body = ? WHERE slug = ?",
            ["\u{feff}# Heading\n\nFirst words.".into(), "marked".into()],
        ))
        .await
        .unwrap();
    let (_, page) = app.get_text("/posts/marked").await;
    assert!(page.contains("<h1>Heading</h1>"), "{page}");
    assert!(!page.contains('\u{feff}'), "{page}");
    app.db
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Sqlite,
            "UPDATE posts SET body = ? WHERE slug = ?",
            ["\u{feff}# Marked\n\nFirst words.".into(), "marked".into()],
        ))
        .await
        .unwrap();
    let (_, page) = app.get_text("/posts/marked").await;
    assert_eq!(page.matches(">Marked</h1>").count(), 1, "{page}");
    assert!(!page.contains('\u{feff}'), "{page}");
    let (_, home) = app.get_text("/").await;
    assert!(!home.contains('\u{feff}'), "{home}");
}

/// A title or a tag label cannot carry a byte-order mark: it is refused, as every invisible
/// character is, with the field named.
#[tokio::test]
async fn a_title_or_label_with_a_byte_order_mark_is_refused_by_name() {
    let app = spawn_app().await;
    let (status, error) = app
        .api_call(
            Method::POST,
            "/posts",
            Some(&json!({ "title": "\u{feff}Title", "tags": ["\u{feff}rust"] })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    let text = error.to_string();
    assert!(text.contains("title") && text.contains("tags"), "{error}");
}

/// A Greek title in capitals ends its words with a final sigma, as in lowercase: "ΟΔΟΣ" gave the
/// slug `οδοσ`, "Οδος" `οδος`.
#[tokio::test]
async fn a_greek_title_in_capitals_gets_the_slug_it_has_in_lowercase() {
    let app = spawn_app().await;
    for (title, slug) in [
        ("ΟΔΟΣ ΚΑΙ ΣΟΦΙΑ", "οδος-και-σοφια"),
        ("Νεος δρομος", "νεος-δρομος"),
    ] {
        let post = app.create_post(json!({ "title": title })).await;
        assert_eq!(post["slug"], slug, "{title}: {post}");
    }
}

/// A typed slug in fullwidth letters (`ｆｏｏ`, as an input method for Chinese or Japanese types
/// them) was kept as typed, though the title "foo" gives `foo`: it is folded (NFKC) to `foo`, by
/// the API and the form. An accent typed stays: `café` is the slug typed, where the title "Café"
/// gives `cafe`. A patch that does not give a slug keeps the post's slug as stored.
#[tokio::test]
async fn typed_fullwidth_slugs_are_folded_and_accents_kept() {
    let app = spawn_app().await;
    let post = app
        .create_post(json!({ "title": "Wide", "slug": "ｆｏｏ" }))
        .await;
    assert_eq!(post["slug"], "foo", "{post}");
    let post = app
        .create_post(json!({ "title": "Accent", "slug": "café" }))
        .await;
    assert_eq!(post["slug"], "café", "{post}");
    let post = app.create_post(json!({ "title": "Café" })).await;
    assert_eq!(post["slug"], "cafe", "{post}");
    let (status, post) = app
        .api_call(
            Method::PATCH,
            "/posts/foo",
            Some(&json!({ "slug": "ｂａｒ" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{post}");
    assert_eq!(post["slug"], "bar", "{post}");

    app.login().await;
    let csrf = app.csrf_for("/admin/posts/new").await;
    let response = app
        .post_form(
            "/admin/posts",
            &[
                ("csrf", &csrf),
                ("title", "Formed"),
                ("slug", "ｆｏｒｍ-２"),
                ("body", ""),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, post) = app.api_call(Method::GET, "/posts/form-2", None).await;
    assert_eq!(status, StatusCode::OK, "{post}");

    // A slug stored in fullwidth before (typed then): a patch of its body keeps it.
    app.db
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Sqlite,
            "UPDATE posts SET slug = ? WHERE slug = ?",
            ["ｗｉｄｅ".into(), "bar".into()],
        ))
        .await
        .unwrap();
    let (status, post) = app
        .api_call(
            Method::PATCH,
            "/posts/ｗｉｄｅ",
            Some(&json!({ "body": "Edited." })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{post}");
    assert_eq!(post["slug"], "ｗｉｄｅ", "{post}");
}

/// Renames the post `from` to `to` through the API.
async fn rename(app: &crate::helpers::TestApp, from: &str, to: &str) {
    let (status, body) = app
        .api_call(
            Method::PATCH,
            &format!("/posts/{}", encoded(from)),
            Some(&json!({ "slug": to })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{from} -> {to}: {body}");
}

/// Only the public page redirected from a post's old slug: `GET /api/posts/<old slug>` and the
/// admin's edit page there were 404s. The API's GET is a 301 to the post's address in the API
/// (a draft's old slug: a 404 without credentials, the 301 with them, as its GET shows drafts),
/// the edit page a 301 to the edit page at the current slug (for the admin only), Locations
/// percent-encoded.
#[tokio::test]
async fn a_renamed_posts_old_slug_leads_to_it_in_the_api_and_the_edit_page() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Moving", "slug": "old", "published": true }))
        .await;
    rename(&app, "old", "日本語").await;
    let now = format!("/api/posts/{}", encoded("日本語"));
    let response = cookie_client()
        .get(app.url("/api/posts/old"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(location(response.headers()), now);
    let response = app.api(Method::GET, "/posts/old").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(location(response.headers()), now);
    // A slug a post has now is that post, not a redirect.
    let (status, post) = app.api_get(&now["/api".len()..]).await;
    assert_eq!(status, StatusCode::OK, "{post}");

    // A draft's old slug: a 404 that names nothing for a client without credentials.
    app.create_post(json!({ "title": "Hidden", "slug": "draft-old" }))
        .await;
    rename(&app, "draft-old", "draft-new").await;
    let response = cookie_client()
        .get(app.url("/api/posts/draft-old"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.headers().get("location").is_none());
    let text = response.text().await.unwrap();
    assert!(!text.contains("draft-new"), "{text}");
    let response = app
        .api(Method::GET, "/posts/draft-old")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(location(response.headers()), "/api/posts/draft-new");

    // The edit page: only behind the admin's sign-in, which it asks for first as before.
    let response = cookie_client()
        .get(app.url("/admin/posts/old/edit"))
        .send()
        .await
        .unwrap();
    assert_ne!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert!(location(response.headers()).starts_with("/admin/login"));
    app.login().await;
    let response = app.get("/admin/posts/old/edit").await;
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        location(response.headers()),
        format!("/admin/posts/{}/edit", encoded("日本語"))
    );
    let response = app.get("/admin/posts/draft-old/edit").await;
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(location(response.headers()), "/admin/posts/draft-new/edit");
    // A slug no post ever had is still a 404.
    let response = app.get("/admin/posts/never/edit").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (status, _) = app.api_get("/posts/never").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A PATCH or DELETE at a post's old slug stays a 404 (a write goes to the address it names, not
/// through a redirect), and its message names the post's address now; nothing is written.
#[tokio::test]
async fn a_write_at_an_old_slug_is_a_404_that_names_the_current_address() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Moving", "slug": "old", "body": "Kept." }))
        .await;
    rename(&app, "old", "ｎｅｗ-日本").await;
    let now = format!("/api/posts/{}", encoded("new-日本"));
    let (status, error) = app
        .api_call(
            Method::PATCH,
            "/posts/old",
            Some(&json!({ "body": "Lost?" })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    let message = error["error"].as_str().unwrap_or_default();
    assert!(message.contains(&now), "{error}");
    let (status, error) = app.api_call(Method::DELETE, "/posts/old", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    let message = error["error"].as_str().unwrap_or_default();
    assert!(message.contains(&now), "{error}");
    let (status, post) = app.api_call(Method::GET, &now["/api".len()..], None).await;
    assert_eq!(status, StatusCode::OK, "{post}");
    assert_eq!(post["body"], "Kept.", "{post}");
    // A slug no post had: the plain 404.
    let (status, error) = app.api_call(Method::DELETE, "/posts/never", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    assert!(!error.to_string().contains("/api/posts/"), "{error}");
}

/// A body that starts with its title as a setext heading (`Title` over `=====`) showed the title
/// twice, where `# Title` shows it once. In another case it stays: the author may mean it.
#[tokio::test]
async fn a_setext_title_heading_is_shown_once() {
    let app = spawn_app().await;
    app.create_post(json!({
        "title": "Garden notes", "slug": "setext", "published": true,
        "body": "Garden notes\n============\n\nFirst words."
    }))
    .await;
    let (_, page) = app.get_text("/posts/setext").await;
    assert_eq!(page.matches(">Garden notes</h1>").count(), 1, "{page}");
    assert!(page.contains("First words."), "{page}");
    app.create_post(json!({
        "title": "Garden notes", "slug": "shouted", "published": true,
        "body": "GARDEN NOTES\n============\n\nFirst words."
    }))
    .await;
    let (_, page) = app.get_text("/posts/shouted").await;
    assert!(page.contains("<h1>GARDEN NOTES</h1>"), "{page}");
}
