//! Findings of a user's review of the blog through its HTTP surface (forms, API, feed), each a
//! standard the blog sets itself: bad input gets a clear error and loses nothing, a write that
//! says "saved" is there, and a write that cannot be done is a 503 that says so.

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{Connection, Executor, SqliteConnection};

use crate::helpers::{TestApp, csrf_of, input_value, spawn_app};

/// The post as the admin sees it through the API.
async fn post_of(app: &TestApp, slug: &str) -> Value {
    let (status, post) = app
        .api_call(Method::GET, &format!("/posts/{slug}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{post}");
    post
}

/// Sends the edit form of the post at `path` as `html` shows it (body "b", published), with the
/// post's id and version it carries, as a browser does.
async fn save_as_shown(app: &TestApp, path: &str, html: &str) -> reqwest::Response {
    app.post_form(
        path,
        &[
            ("csrf", &csrf_of(html)),
            ("post_id", &input_value(html, "post_id")),
            ("version", &input_value(html, "version")),
            ("title", &input_value(html, "title")),
            ("slug", &input_value(html, "slug")),
            ("body", "b"),
            ("tags", &input_value(html, "tags")),
            ("published", "on"),
        ],
    )
    .await
}

/// Two PATCHes of different fields of one post, at the same time: each answers 200 with its
/// change, so both changes must be there. The PATCH reads the post, then writes every field back
/// outside one transaction, so the later one puts back the field the other one changed.
#[tokio::test]
async fn concurrent_patches_of_different_fields_both_stay() {
    let app = spawn_app().await;
    let mut lost = Vec::new();
    for round in 0..10 {
        let slug = format!("race-{round}");
        app.create_post(json!({ "title": "Original", "slug": slug, "body": "original body" }))
            .await;
        let path = format!("/posts/{slug}");
        let title = json!({ "title": "New title" });
        let body = json!({ "body": "new body" });
        let answers = join_all([
            app.api_call(Method::PATCH, &path, Some(&title)),
            app.api_call(Method::PATCH, &path, Some(&body)),
        ])
        .await;
        for (status, answer) in &answers {
            assert_eq!(*status, StatusCode::OK, "{answer}");
        }
        let post = post_of(&app, &slug).await;
        if post["title"] != "New title" || post["body"] != "new body" {
            lost.push(format!(
                "round {round}: both PATCHes answered 200, the post is {{title: {}, body: {}}}",
                post["title"], post["body"]
            ));
        }
    }
    assert!(
        lost.is_empty(),
        "a saved change was lost:\n{}",
        lost.join("\n")
    );
}

/// The post form lists a post's tags comma-separated and splits what it gets back on commas, so a
/// tag label may not hold a comma (as in WordPress and Ghost): every way a label comes in refuses
/// one with a 422 that names the field and says why, and every tag that can exist comes back
/// unchanged from an edit form saved untouched.
#[tokio::test]
async fn a_tag_with_a_comma_is_refused_and_every_tag_survives_an_untouched_edit_form() {
    let app = spawn_app().await;
    let says_why = |answer: &Value, field: &str| {
        let message = answer["fields"][field].as_str().unwrap_or_default();
        assert!(message.contains("comma"), "{field}: {answer}");
    };

    // The API: a post's tags (create and patch), a tag's label (create and rename).
    let (status, answer) = app
        .api_call(
            Method::POST,
            "/posts",
            Some(&json!({ "title": "Commas", "tags": ["x,y", "solo"] })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    says_why(&answer, "tags");
    app.create_post(json!({ "title": "Plain", "tags": ["solo"], "published": true }))
        .await;
    let (status, answer) = app
        .api_call(
            Method::PATCH,
            "/posts/plain",
            Some(&json!({ "tags": ["x,y"] })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    says_why(&answer, "tags");
    assert_eq!(post_of(&app, "plain").await["tags"], json!(["solo"]));
    let (status, answer) = app
        .api_call(Method::POST, "/tags", Some(&json!({ "label": "x,y" })))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    says_why(&answer, "label");
    let id = app.create_tag("single").await["id"].as_i64().unwrap();
    let (status, answer) = app
        .api_call(
            Method::PATCH,
            &format!("/tags/{id}"),
            Some(&json!({ "label": "x,y" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    says_why(&answer, "label");

    // The tag form: create and rename.
    app.login().await;
    for path in ["/admin/tags".to_owned(), format!("/admin/tags/{id}")] {
        let csrf = app.csrf_for("/admin/tags").await;
        let response = app
            .post_form(&path, &[("csrf", &csrf), ("label", "x,y")])
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}"
        );
        let html = response.text().await.unwrap();
        assert!(html.contains("no commas"), "{path}: {html}");
    }
    let mut labels = app.tag_labels().await;
    labels.sort();
    assert_eq!(labels, ["single", "solo"], "nothing was written");

    // Every other label survives the edit form saved as shown.
    let tags = [
        "two words",
        "a  b",
        "café",
        "日本語",
        "C++",
        "v1.2",
        "Q&A",
        "it's",
        "\"quoted\"",
        "1 < 2",
        "semi;colon",
        "#hash",
        "&#34;",
    ];
    app.create_post(json!({ "title": "Labels", "body": "b", "tags": tags, "published": true }))
        .await;
    let (status, html) = app.get_text("/admin/posts/labels/edit").await;
    assert_eq!(status, StatusCode::OK);
    let response = save_as_shown(&app, "/admin/posts/labels", &html).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let mut saved: Vec<String> =
        serde_json::from_value(post_of(&app, "labels").await["tags"].clone()).unwrap();
    saved.sort();
    let mut expected = tags.map(str::to_owned).to_vec();
    expected.sort();
    assert_eq!(
        saved, expected,
        "saving the form as shown changed the post's tags"
    );
}

/// A rejected rename on the tag page: the message should go with the row renamed, with what was
/// typed kept. It is shown under the "New tag" field instead (marked invalid, and empty), and the
/// typed label is gone.
#[tokio::test]
async fn a_rejected_tag_rename_keeps_the_typed_label_at_its_row() {
    let app = spawn_app().await;
    let id = app.create_tag("gardening").await["id"].as_i64().unwrap();
    app.login().await;
    let csrf = app.csrf_for("/admin/tags").await;
    let response = app
        .post_form(
            &format!("/admin/tags/{id}"),
            &[("csrf", &csrf), ("label", "garden/ing")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains("no slashes"), "{html}");
    assert!(
        !html.contains(r#"name="label" value="" required aria-invalid="true""#),
        "the error is pinned on the empty \"New tag\" field, not the renamed row: {html}"
    );
    assert!(
        html.contains(r#"value="garden/ing""#),
        "the typed label is lost: {html}"
    );
}

/// The tag form's answer when the database cannot be written: a 503 (as the post form's is),
/// not a 422, which says the input was wrong.
#[tokio::test]
async fn a_tag_form_that_cannot_be_written_is_a_503() {
    let app = spawn_app().await;
    app.login().await;
    let csrf = app.csrf_for("/admin/tags").await;
    let path = app.dir.join("blog.db");
    let mut holder = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    holder.execute("BEGIN IMMEDIATE").await.unwrap();
    let response = app
        .post_form("/admin/tags", &[("csrf", &csrf), ("label", "gardening")])
        .await;
    let status = response.status();
    let html = response.text().await.unwrap();
    holder.execute("ROLLBACK").await.unwrap();
    assert!(html.contains("nothing was saved"), "{html}");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{html}");
}

/// The edit form of a post deleted meanwhile: the edit is answered with the bare 404 page, and
/// what the user typed is gone. It should come back in the form, saying the post no longer exists.
#[tokio::test]
async fn editing_a_post_deleted_meanwhile_keeps_the_edit() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Doomed", "body": "d" }))
        .await;
    app.login().await;
    let csrf = app.csrf_for("/admin/posts/doomed/edit").await;
    let (status, _) = app.api_call(Method::DELETE, "/posts/doomed", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let response = app
        .post_form(
            "/admin/posts/doomed",
            &[
                ("csrf", &csrf),
                ("title", "Doomed"),
                ("slug", "doomed"),
                ("body", "an hour of careful rewriting"),
                ("tags", ""),
            ],
        )
        .await;
    let status = response.status();
    let html = response.text().await.unwrap();
    assert!(
        html.contains("an hour of careful rewriting"),
        "{status}: the edit is lost: {html}"
    );
    assert_eq!(status, StatusCode::NOT_FOUND, "{html}");
    assert!(html.contains(GONE_MEANWHILE), "{html}");
    assert!(
        html.contains(r#"action="/admin/posts""#),
        "the form can save the text as a new post: {html}"
    );
    assert_eq!(app.row_counts().await.0, 0, "nothing was saved");
}

/// What the edit form says when the post it edits is gone from its address.
const GONE_MEANWHILE: &str = "was deleted, or given another address, while you were editing it";

/// The same when another node changed the post's slug meanwhile and the form does not carry the
/// post's id (one opened before forms carried it; a form that carries it finds the post by id,
/// see `edit_conflicts.rs`): the edit comes back in the form, and the moved post is left as it is.
#[tokio::test]
async fn editing_a_post_moved_meanwhile_keeps_the_edit() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Moving", "body": "original" }))
        .await;
    app.login().await;
    let csrf = app.csrf_for("/admin/posts/moving/edit").await;
    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/moving",
            Some(&json!({ "slug": "moved" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let response = app
        .post_form(
            "/admin/posts/moving",
            &[
                ("csrf", &csrf),
                ("title", "Moving"),
                ("slug", "moving"),
                ("body", "the edit made on the old address"),
                ("tags", "kept"),
            ],
        )
        .await;
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND, "{html}");
    assert!(html.contains(GONE_MEANWHILE), "{html}");
    assert!(
        html.contains("the edit made on the old address"),
        "the edit is lost: {html}"
    );
    assert_eq!(input_value(&html, "tags"), "kept");
    assert_eq!(post_of(&app, "moved").await["body"], "original");
}

/// A form whose write cannot be done (the database is locked): a 503 that says once that nothing
/// was saved (the post form said it twice), with Retry-After as the API's 503 and the error
/// pages have, and what was typed kept.
#[tokio::test]
async fn a_form_that_cannot_be_written_says_so_once_with_retry_after() {
    let app = spawn_app().await;
    app.login().await;
    let csrf = app.csrf_for("/admin/posts/new").await;
    let path = app.dir.join("blog.db");
    let mut holder = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    holder.execute("BEGIN IMMEDIATE").await.unwrap();
    let mut answers = Vec::new();
    for (path, fields) in [
        (
            "/admin/posts",
            vec![
                ("csrf", csrf.as_str()),
                ("title", "Locked out"),
                ("body", "typed while the database was locked"),
            ],
        ),
        (
            "/admin/tags",
            vec![("csrf", csrf.as_str()), ("label", "locked-out")],
        ),
    ] {
        let response = app.post_form(path, &fields).await;
        let status = response.status();
        let retry_after = response.headers().get("retry-after").cloned();
        answers.push((path, status, retry_after, response.text().await.unwrap()));
    }
    holder.execute("ROLLBACK").await.unwrap();
    for (path, status, retry_after, html) in answers {
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {html}");
        assert_eq!(
            retry_after.as_ref().map(|v| v.to_str().unwrap()),
            Some("2"),
            "{path}: no Retry-After"
        );
        assert_eq!(
            html.to_lowercase().matches("nothing was saved").count(),
            1,
            "{path}: said once: {html}"
        );
        assert!(
            path != "/admin/posts" || html.contains("typed while the database was locked"),
            "the typed body is kept: {html}"
        );
    }
    assert_eq!(app.row_counts().await, (0, 0), "nothing was saved");
}

/// A rename of a tag deleted meanwhile (on another tab or node): the typed label comes back in
/// the "New tag" field with a message, not as the bare 404 page.
#[tokio::test]
async fn renaming_a_tag_deleted_meanwhile_keeps_the_label() {
    let app = spawn_app().await;
    let id = app.create_tag("doomed").await["id"].as_i64().unwrap();
    app.login().await;
    let csrf = app.csrf_for("/admin/tags").await;
    let (status, _) = app
        .api_call(Method::DELETE, &format!("/tags/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let response = app
        .post_form(
            &format!("/admin/tags/{id}"),
            &[("csrf", &csrf), ("label", "carefully-chosen")],
        )
        .await;
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND, "{html}");
    assert!(html.contains("was deleted meanwhile"), "{html}");
    assert_eq!(input_value(&html, "label"), "carefully-chosen", "{html}");
    // A label rejected before the tag is looked up: its message has no row to go to either.
    let response = app
        .post_form(
            &format!("/admin/tags/{id}"),
            &[("csrf", &csrf), ("label", "careful/ly")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains("no slashes"), "{html}");
    assert_eq!(input_value(&html, "label"), "careful/ly", "{html}");
    assert!(app.tag_labels().await.is_empty());
}

/// Deleting a post or a tag already deleted (in another tab, or by another admin) shows the list
/// with a message saying so, not the bare 404 page: nothing is lost, it is gone either way. The
/// API answers a 404 in its JSON error shape.
#[tokio::test]
async fn deleting_what_is_already_deleted_says_so_on_the_list() {
    let app = spawn_app().await;
    let id = app.create_tag("doomed").await["id"].as_i64().unwrap();
    app.create_post(json!({ "title": "Doomed post", "body": "x", "published": true }))
        .await;
    app.create_post(json!({ "title": "Kept post", "body": "y", "published": true }))
        .await;
    app.login().await;
    let csrf = app.csrf_for("/admin").await;
    for path in [format!("/tags/{id}"), "/posts/doomed-post".to_owned()] {
        let (status, _) = app.api_call(Method::DELETE, &path, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{path}");
        // Again: the API's 404, in its one JSON shape.
        let (status, answer) = app.api_call(Method::DELETE, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {answer}");
        assert!(answer["error"].is_string(), "{path}: {answer}");
    }

    for (path, list, message) in [
        (
            format!("/admin/tags/{id}/delete"),
            "/admin/tags",
            "That tag was already deleted",
        ),
        (
            "/admin/posts/doomed-post/delete".to_owned(),
            "/admin",
            "No post has that address any more",
        ),
    ] {
        let response = app.post_form(&path, &[("csrf", &csrf)]).await;
        let status = response.status();
        let location = response.headers().get("location").cloned();
        let body = response.text().await.unwrap();
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}: {body}");
        assert_eq!(location.unwrap(), list, "{path}");
        let (_, html) = app.get_text(list).await;
        assert!(html.contains(message), "{path}: {html}");
        assert!(html.contains("Nothing was deleted now"), "{path}: {html}");
    }
    let (_, dashboard) = app.get_text("/admin").await;
    assert!(dashboard.contains("Kept post"), "{dashboard}");
    assert_eq!(app.row_counts().await, (1, 0), "the other post is kept");
}

/// A body with a control character (a form feed pasted from a document) is accepted, and then
/// the Atom feed is not well-formed XML: XML 1.0 allows no U+000C, not even as `&#12;`.
#[tokio::test]
async fn a_control_character_in_a_body_keeps_the_feed_well_formed() {
    let app = spawn_app().await;
    let (status, answer) = app
        .api_call(
            Method::POST,
            "/posts",
            Some(&json!({ "title": "Pasted", "body": "page one\u{c}page two", "published": true })),
        )
        .await;
    if status != StatusCode::CREATED {
        // Refusing the body is fine, as a 422 on the body field.
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        return;
    }
    let (status, xml) = app.get_text("/feed.xml").await;
    assert_eq!(status, StatusCode::OK);
    if let Err(e) = roxmltree::Document::parse(&xml) {
        panic!("the feed is not well-formed XML ({e}): {xml}");
    }
}

/// A body of 40,000 `>` (40 KB, well under the 512 KiB limit) takes seconds to render, and the
/// time grows with the square of its length (100,000: 48 s in a debug build, and as long for
/// `<div>` repeated): every view of the post and of `/feed.xml` renders it again, on the async
/// runtime's own threads, so two such views stall the node, `/healthz` included.
#[tokio::test]
async fn a_deeply_nested_body_renders_in_linear_time() {
    let app = spawn_app().await;
    for (name, unit) in [("quotes", ">"), ("divs", "<div>")] {
        let body = format!("{} x\n", unit.repeat(40_000 / unit.len()));
        app.create_post(json!({ "title": name, "body": body, "published": true }))
            .await;
        let started = std::time::Instant::now();
        let (status, _) = app.get_text(&format!("/posts/{name}")).await;
        let took = started.elapsed();
        assert_eq!(status, StatusCode::OK);
        assert!(
            took < std::time::Duration::from_secs(2),
            "{name}: a 40 KB body took {took:?} to render"
        );
    }
}

/// An app with the post "legacy", tagged "solo" and "x,y": a tag saved with a comma before
/// commas were refused (written straight into its database, as no entry point takes one now).
async fn app_with_a_legacy_comma_tag() -> TestApp {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Legacy", "body": "b", "tags": ["solo"], "published": true }))
        .await;
    let path = app.dir.join("blog.db");
    let mut db = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    db.execute(
        "INSERT INTO tags (label, label_key, created_at) SELECT 'x,y', 'x,y', created_at FROM posts; \
         INSERT INTO posts_tags (post_id, tag_id) \
         SELECT posts.id, tags.id FROM posts, tags WHERE posts.slug = 'legacy' AND tags.label = 'x,y'",
    )
    .await
    .unwrap();
    db.close().await.unwrap();
    app
}

/// A tag saved with a comma before commas were refused is not migrated, and keeps working: its
/// page lists its posts, and an API patch of its post's other fields keeps it.
#[tokio::test]
async fn a_tag_saved_with_a_comma_before_the_rule_keeps_working() {
    let app = app_with_a_legacy_comma_tag().await;
    assert_eq!(
        post_of(&app, "legacy").await["tags"],
        json!(["solo", "x,y"])
    );

    let (status, html) = app.get_text("/tags/x%2Cy").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Legacy"), "{html}");

    let (status, answer) = app
        .api_call(
            Method::PATCH,
            "/posts/legacy",
            Some(&json!({ "title": "Legacy, renamed" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["title"], "Legacy, renamed");
    assert_eq!(answer["tags"], json!(["solo", "x,y"]), "{answer}");
}

/// A new post whose title makes the address of a post that exists (its slug left empty, to be
/// made from the title) is refused at the slug field, which is empty: the message must say which
/// address was taken and that it came from the title, or the field it points at makes no sense.
#[tokio::test]
async fn a_slug_made_from_the_title_that_is_taken_says_so() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Hello, World", "body": "first" }))
        .await;
    app.login().await;
    let csrf = app.csrf_for("/admin/posts/new").await;
    let response = app
        .post_form(
            "/admin/posts",
            &[
                ("csrf", &csrf),
                ("title", "Hello World"),
                ("slug", ""),
                ("body", "second"),
                ("tags", ""),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("hello-world") && html.contains("made from the title"),
        "the message names the address taken, and where it came from: {html}"
    );
    assert!(html.contains("second"), "the input is kept: {html}");
    assert_eq!(app.row_counts().await.0, 1, "nothing more was saved");
}

/// A body that starts with a line break keeps it through the edit form: an HTML parser drops the
/// first line break after `<textarea>`, so the form must put one there before the body, or each
/// save through the form takes a line off the top of the post.
#[tokio::test]
async fn a_body_starting_with_a_line_break_keeps_it_in_the_edit_form() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Spaced", "body": "\nfirst line" }))
        .await;
    app.login().await;
    let (status, html) = app.get_text("/admin/posts/spaced/edit").await;
    assert_eq!(status, StatusCode::OK);
    let start = html.find("<textarea").expect("the body's textarea");
    let opened = start + html[start..].find('>').unwrap() + 1;
    assert!(
        html[opened..].starts_with("\n\nfirst line</textarea>"),
        "the textarea holds its own line break, then the body's: {:?}",
        &html[opened..opened + 40]
    );
}

/// A tag saved with a comma before commas were refused, on a post whose edit form is saved as
/// shown: the form lists the tags comma-separated, so "x,y" would come back as the two tags "x"
/// and "y", and the post would lose its tag although nothing was changed. The form is refused
/// instead, saying to rename the tag first; renamed, the tag goes through the form.
#[tokio::test]
async fn a_tag_saved_with_a_comma_before_the_rule_survives_an_untouched_edit_form() {
    let app = app_with_a_legacy_comma_tag().await;

    app.login().await;
    let (status, html) = app.get_text("/admin/posts/legacy/edit").await;
    assert_eq!(status, StatusCode::OK);
    let response = save_as_shown(&app, "/admin/posts/legacy", &html).await;
    let status = response.status();
    let page = response.text().await.unwrap();
    let tags = post_of(&app, "legacy").await["tags"].clone();
    assert_eq!(
        tags,
        json!(["solo", "x,y"]),
        "the untouched form answered {status} and changed the post's tags"
    );
    let mut labels = app.tag_labels().await;
    labels.sort();
    assert_eq!(labels, ["solo", "x,y"], "no tag was made: {page}");
    // The form is refused, saying why and what to do, with the edit kept.
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("rename it on the Tags page"), "{page}");
    assert_eq!(input_value(&page, "tags"), input_value(&html, "tags"));

    // Renamed on the tag page, the tag goes through the form saved untouched.
    let (_, all) = app.api_get("/tags").await;
    let id = all
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "x,y")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let csrf = app.csrf_for("/admin/tags").await;
    let response = app
        .post_form(
            &format!("/admin/tags/{id}"),
            &[("csrf", &csrf), ("label", "x and y")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, html) = app.get_text("/admin/posts/legacy/edit").await;
    let response = save_as_shown(&app, "/admin/posts/legacy", &html).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        post_of(&app, "legacy").await["tags"],
        json!(["solo", "x and y"])
    );
}

/// A post that is slow to render must not hold up the node's other requests: `/healthz`, asked
/// again and again while the post's page is on its way, never waits for it. (This test's runtime
/// has one thread, as a busy node's would be taken.) The post is the slowest kind the renderer
/// still renders in full: a body near the size limit of ordinary Markdown, every line with
/// emphasis, code and a link (bodies that cost more per byte, such as a tag with thousands of
/// attributes, are shown as text now, and fast).
#[tokio::test]
async fn a_slow_post_does_not_hold_up_the_health_check() {
    let app = spawn_app().await;
    let body: String = (0..4_500)
        .map(|i| format!("- item **{i}** with _emphasis_, `code {i}` and [a link](/posts/p{i})\n"))
        .collect();
    assert!(
        body.len() < 512 * 1024,
        "within the body limit: {}",
        body.len()
    );
    app.create_post(json!({ "title": "Slow", "body": body, "published": true }))
        .await;
    let started = std::time::Instant::now();
    let page = tokio::spawn({
        let url = app.url("/posts/slow");
        async move {
            let response = reqwest::get(url).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
    });
    let client = reqwest::Client::new();
    let mut slowest = std::time::Duration::ZERO;
    let mut asked = 0;
    while !page.is_finished() {
        let asking = std::time::Instant::now();
        let health = client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        slowest = slowest.max(asking.elapsed());
        asked += 1;
    }
    page.await.unwrap();
    let page_took = started.elapsed();
    println!(
        "the page took {page_took:?}; {asked} health checks meanwhile, the slowest {slowest:?}"
    );
    assert!(
        slowest < page_took / 4,
        "a health check waited {slowest:?} of the page's {page_took:?}"
    );
}
