//! The admin edit form against changes made while it was open (another admin, the API, another
//! node): saving it must never silently overwrite them (a lost update), nor offer to make a
//! duplicate of a post whose slug changed meanwhile.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, action_of, hidden_fields, input_value, location, save_with_body, spawn_app,
};

/// The post as the admin sees it through the API.
async fn post_of(app: &TestApp, slug: &str) -> Value {
    let (status, post) = app
        .api_call(Method::GET, &format!("/posts/{slug}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{post}");
    post
}

/// What the form says when the post changed since it was opened.
const CHANGED_MEANWHILE: &str = "was changed by someone else since you opened this form";

/// The lost update: the edit form is opened, the post is changed through the API meanwhile, and
/// the form is then saved. Both saves used to answer success and the API's change was gone. The
/// form must come back (409) with the user's text, saying the post changed and showing it as it
/// is now, and the API's change must stay.
#[tokio::test]
async fn saving_an_edit_form_does_not_overwrite_a_change_made_meanwhile() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Shared", "body": "original body", "published": true }))
        .await;
    app.login().await;
    let (status, form) = app.get_text("/admin/posts/shared/edit").await;
    assert_eq!(status, StatusCode::OK);

    let (status, answer) = app
        .api_call(
            Method::PATCH,
            "/posts/shared",
            Some(&json!({ "body": "the API's change" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let response = save_with_body(&app, &form, "the form's rewrite").await;
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(
        post_of(&app, "shared").await["body"],
        "the API's change",
        "the form answered {status} and overwrote the change made meanwhile"
    );
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains(CHANGED_MEANWHILE), "{html}");
    assert!(
        html.contains("the form&#39;s rewrite"),
        "the user's text is kept: {html}"
    );
    assert!(
        html.contains("the API&#39;s change"),
        "the post as it is now is shown: {html}"
    );
}

/// After the conflict, the form that came back carries the post's new version: saved again as
/// it is, it saves the user's text.
#[tokio::test]
async fn an_edit_form_saved_again_after_a_conflict_saves() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Twice", "body": "original body" }))
        .await;
    app.login().await;
    let (_, form) = app.get_text("/admin/posts/twice/edit").await;
    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/twice",
            Some(&json!({ "title": "Twice, retitled" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let response = save_with_body(&app, &form, "my edit").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let again = response.text().await.unwrap();
    assert!(
        again.contains("Twice, retitled"),
        "the current title is shown: {again}"
    );

    let response = save_with_body(&app, &again, "my edit").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(response.headers()), "/posts/twice");
    let post = post_of(&app, "twice").await;
    assert_eq!(post["body"], "my edit");
    // The user's form held the old title; saving again after seeing the new one is their choice.
    assert_eq!(post["title"], "Twice");
}

/// An edit form saved untouched, with nothing changed meanwhile, saves (the version check does
/// not refuse a form that is up to date).
#[tokio::test]
async fn an_up_to_date_edit_form_saves() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Calm", "body": "original body" }))
        .await;
    app.login().await;
    let (_, form) = app.get_text("/admin/posts/calm/edit").await;
    let response = save_with_body(&app, &form, "edited").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(post_of(&app, "calm").await["body"], "edited");
}

/// The slug changed meanwhile (on another node, or through the API): the form finds the post by
/// its id, not by the old address, so it comes back as the same post's edit form (409, the
/// version check), not as a new-post form that would make a duplicate; saved again, it saves
/// the same post.
#[tokio::test]
async fn an_edit_form_of_a_post_whose_slug_changed_meanwhile_finds_it_by_id() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Wandering", "body": "original" }))
        .await;
    app.login().await;
    let (_, form) = app.get_text("/admin/posts/wandering/edit").await;
    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/wandering",
            Some(&json!({ "slug": "wandered" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let response = save_with_body(&app, &form, "edit made at the old address").await;
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains(CHANGED_MEANWHILE), "{html}");
    assert!(html.contains("edit made at the old address"), "{html}");
    assert_eq!(
        action_of(&html),
        "/admin/posts/wandered",
        "the same post's edit"
    );
    assert!(
        !html.contains("Create post"),
        "no duplicate is offered: {html}"
    );
    assert_eq!(post_of(&app, "wandered").await["body"], "original");

    // Saved again with the slug the user sees now, the one post is saved.
    let mut fields = hidden_fields(&html);
    fields.extend(
        [
            ("title", "Wandering"),
            ("slug", "wandered"),
            ("body", "edit made at the old address"),
            ("tags", ""),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned())),
    );
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let response = app.post_form(&action_of(&html), &fields).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        post_of(&app, "wandered").await["body"],
        "edit made at the old address"
    );
    assert_eq!(app.row_counts().await.0, 1, "no duplicate");
}

/// An edit form without the post's id and version (one opened before a deploy added them) cannot
/// tell whether the post changed since it was opened: it is not saved blindly, but comes back
/// (409) with the user's text and the post as it is now, and the version to save it with.
#[tokio::test]
async fn an_edit_form_without_a_version_is_sent_back_to_be_checked() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Old tab", "body": "original" }))
        .await;
    app.login().await;
    let csrf = app.csrf_for("/admin/posts/old-tab/edit").await;
    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/old-tab",
            Some(&json!({ "tags": ["added-meanwhile"] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let response = app
        .post_form(
            "/admin/posts/old-tab",
            &[
                ("csrf", &csrf),
                ("title", "Old tab"),
                ("slug", "old-tab"),
                ("body", "typed in an old tab"),
                ("tags", ""),
            ],
        )
        .await;
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("typed in an old tab"), "{html}");
    assert!(
        html.contains("added-meanwhile"),
        "the post as it is now: {html}"
    );
    let post = post_of(&app, "old-tab").await;
    assert_eq!(post["body"], "original");
    assert_eq!(post["tags"], json!(["added-meanwhile"]));

    let response = save_with_body(&app, &html, "typed in an old tab").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        post_of(&app, "old-tab").await["body"],
        "typed in an old tab"
    );
}

/// The API's lost update: a client GETs a post, another changes it, then the first PATCHes what
/// it read. With the ETag of its GET in `If-Match`, the PATCH is refused (412, in the API's JSON
/// error shape) and nothing is written; with the current ETag, or `*`, or without `If-Match`
/// (as before), it is applied, and its answer carries the new ETag.
#[tokio::test]
async fn an_api_patch_with_if_match_is_refused_after_a_change_meanwhile() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Etagged", "body": "original" }))
        .await;
    let read = app.api(Method::GET, "/posts/etagged").send().await.unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let etag = read
        .headers()
        .get("etag")
        .expect("a GET of a post gives its ETag")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "a strong ETag: {etag}"
    );

    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/etagged",
            Some(&json!({ "title": "Changed meanwhile" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let patch = |if_match: &str| {
        app.api(Method::PATCH, "/posts/etagged")
            .header("if-match", if_match)
            .json(&json!({ "body": "based on what I read" }))
            .send()
    };
    let refused = patch(&etag).await.unwrap();
    let status = refused.status();
    let (_, answer) = crate::helpers::json_of(refused).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("changed"),
        "{answer}"
    );
    assert_eq!(post_of(&app, "etagged").await["body"], "original");
    for unknown in [r#""nonsense""#, r#"W/"1@x""#] {
        let refused = patch(unknown).await.unwrap();
        assert_eq!(
            refused.status(),
            StatusCode::PRECONDITION_FAILED,
            "{unknown}"
        );
    }

    let current = app.api(Method::GET, "/posts/etagged").send().await.unwrap();
    let current = current.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(current, etag, "the ETag changes with the post");
    let applied = patch(&format!(r#""other", {current}"#)).await.unwrap();
    assert_eq!(applied.status(), StatusCode::OK);
    let after = applied.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(after, current, "the answer carries the new ETag");
    assert_eq!(
        post_of(&app, "etagged").await["body"],
        "based on what I read"
    );
    assert_eq!(patch("*").await.unwrap().status(), StatusCode::OK);
    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/etagged",
            Some(&json!({ "body": "no precondition" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// The tag of `post`'s edit form renamed on the Tags page (here through the API, as the Tags page
/// does it) while the form is open, then the form saved with only its body changed: the rename
/// must not be undone for that post. A rename does not move the post's version, so the save was
/// accepted and wrote the form's old label back over it (re-creating the old tag).
#[tokio::test]
async fn saving_an_edit_form_does_not_undo_a_tag_rename_made_meanwhile() {
    let app = spawn_app().await;
    app.create_post(
        json!({ "title": "Tagged", "body": "original", "tags": ["rust"], "published": true }),
    )
    .await;
    app.login().await;
    let (status, form) = app.get_text("/admin/posts/tagged/edit").await;
    assert_eq!(status, StatusCode::OK);

    let (_, tags) = app.api_get("/tags").await;
    let id = tags[0]["id"].as_i64().unwrap();
    let (status, answer) = app
        .api_call(
            Method::PATCH,
            &format!("/tags/{id}"),
            Some(&json!({ "label": "rust-lang" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let response = save_with_body(&app, &form, "a new body").await;
    let status = response.status();
    let tags = post_of(&app, "tagged").await["tags"].clone();
    assert!(
        status == StatusCode::CONFLICT || tags == json!(["rust-lang"]),
        "the form answered {status} and the post's tags are now {tags}: the rename made meanwhile \
         was undone (tags now: {:?})",
        app.tag_labels().await
    );
}

/// As above for a tag deleted on the Tags page while the form is open: the save must not silently
/// bring the deleted tag back onto the post.
#[tokio::test]
async fn saving_an_edit_form_does_not_undo_a_tag_deletion_made_meanwhile() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Tagged", "body": "original", "tags": ["keep", "gone"], "published": true }))
        .await;
    app.login().await;
    let (status, form) = app.get_text("/admin/posts/tagged/edit").await;
    assert_eq!(status, StatusCode::OK);

    let (_, tags) = app.api_get("/tags").await;
    let gone = tags
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "gone")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, _) = app
        .api_call(Method::DELETE, &format!("/tags/{gone}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let response = save_with_body(&app, &form, "a new body").await;
    let status = response.status();
    let tags = post_of(&app, "tagged").await["tags"].clone();
    assert!(
        status == StatusCode::CONFLICT || tags == json!(["keep"]),
        "the form answered {status} and the post's tags are now {tags}: the deletion made \
         meanwhile was undone"
    );
}

/// `DELETE /api/posts/{slug}` with the `If-Match` of a version the post no longer is: the client
/// deletes what it read, not what someone else saved since. As for PATCH, 412 and nothing done;
/// the post used to be deleted (the header was ignored).
#[tokio::test]
async fn an_api_delete_with_a_stale_if_match_is_refused() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Doomed", "body": "original" }))
        .await;
    let read = app.api(Method::GET, "/posts/doomed").send().await.unwrap();
    let etag = read.headers()["etag"].to_str().unwrap().to_owned();
    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/doomed",
            Some(&json!({ "body": "important change made meanwhile" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let deleted = app
        .api(Method::DELETE, "/posts/doomed")
        .header("if-match", &etag)
        .send()
        .await
        .unwrap();
    let status = deleted.status();
    let (found, _) = app.api_call(Method::GET, "/posts/doomed", None).await;
    assert_eq!(
        (status, found),
        (StatusCode::PRECONDITION_FAILED, StatusCode::OK),
        "a DELETE with a stale If-Match answered {status} and the post is now {found}"
    );
}

/// The ETag a create or a PATCH answers with is the post's version as stored: a PATCH with it in
/// `If-Match` applies (no needless 412 from a value that does not round-trip the database).
#[tokio::test]
async fn the_etag_of_a_create_or_patch_answer_matches_the_stored_post() {
    let app = spawn_app().await;
    let created = app
        .api(Method::POST, "/posts")
        .json(&json!({ "title": "Fresh", "body": "one" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let mut etag = created.headers()["etag"].to_str().unwrap().to_owned();
    for body in ["two", "three", "four"] {
        let patched = app
            .api(Method::PATCH, "/posts/fresh")
            .header("if-match", &etag)
            .json(&json!({ "body": body }))
            .send()
            .await
            .unwrap();
        assert_eq!(patched.status(), StatusCode::OK, "If-Match {etag}");
        etag = patched.headers()["etag"].to_str().unwrap().to_owned();
        let read = app.api(Method::GET, "/posts/fresh").send().await.unwrap();
        assert_eq!(read.headers()["etag"].to_str().unwrap(), etag);
    }
}

/// Odd hidden fields in an edit form (hand-made or corrupted): never a 500, and nothing written
/// over the post unless the form names its current version.
#[tokio::test]
async fn an_edit_form_with_odd_ids_and_versions_is_answered_and_writes_nothing() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Odd", "body": "original", "published": true }))
        .await;
    app.create_post(json!({ "title": "Other", "body": "other's body", "published": true }))
        .await;
    app.login().await;
    let (_, form) = app.get_text("/admin/posts/odd/edit").await;
    let id = input_value(&form, "post_id");
    let version = input_value(&form, "version");
    let (_, other_form) = app.get_text("/admin/posts/other/edit").await;
    let other_id = input_value(&other_form, "post_id");
    let csrf = crate::helpers::csrf_of(&form);
    let cases: Vec<(String, String)> = vec![
        ("abc".into(), version.clone()),
        ("".into(), version.clone()),
        ("99999999999999999999".into(), version.clone()),
        ("-1".into(), version.clone()),
        ("0".into(), version.clone()),
        (id.clone(), "".into()),
        (id.clone(), "garbage".into()),
        (id.clone(), "1970-01-01T00:00:00Z".into()),
        (id.clone(), "9999-12-31T23:59:59.999999999Z".into()),
        (id.clone(), "+262143-12-31T23:59:59Z".into()),
        (other_id.clone(), version.clone()),
    ];
    for (post_id, v) in cases {
        let response = app
            .post_form(
                "/admin/posts/odd",
                &[
                    ("csrf", csrf.as_str()),
                    ("post_id", post_id.as_str()),
                    ("version", v.as_str()),
                    ("title", "Odd"),
                    ("slug", "odd"),
                    ("body", "forged write"),
                    ("tags", ""),
                ],
            )
            .await;
        let status = response.status();
        assert!(
            status.is_client_error(),
            "post_id {post_id:?} version {v:?}: {status}"
        );
        let text = response.text().await.unwrap();
        assert!(text.contains("forged write"), "the text is kept: {text}");
        assert_eq!(post_of(&app, "odd").await["body"], "original");
        assert_eq!(post_of(&app, "other").await["body"], "other's body");
    }
}

/// The conflict page shows the post as it is now: its title and body are escaped, so a post's
/// text cannot end the textarea or inject markup.
#[tokio::test]
async fn the_conflict_page_escapes_the_current_post() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Safe", "body": "original", "published": true }))
        .await;
    app.login().await;
    let (_, form) = app.get_text("/admin/posts/safe/edit").await;
    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/safe",
            Some(&json!({
                "title": "<img src=x onerror=alert(1)>",
                "body": "</textarea><script>alert(2)</script>"
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let response = save_with_body(&app, &form, "mine").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await.unwrap();
    assert!(!html.contains("<script>alert(2)"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
}

/// Two edit forms opened on the same version, saved at the same moment (and an API PATCH with
/// the same version's ETag alongside): exactly one of them is saved, the others are refused
/// (409, 412) and what was saved is the one that answered success.
#[tokio::test]
async fn edit_forms_saved_at_once_on_the_same_version_save_one() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Raced", "body": "original", "published": true }))
        .await;
    app.login().await;
    for round in 0..5 {
        let (_, first) = app.get_text("/admin/posts/raced/edit").await;
        let (_, second) = app.get_text("/admin/posts/raced/edit").await;
        let read = app.api(Method::GET, "/posts/raced").send().await.unwrap();
        let etag = read.headers()["etag"].to_str().unwrap().to_owned();
        let (first_body, second_body) = (format!("first {round}"), format!("second {round}"));
        let (a, b, c) = tokio::join!(
            save_with_body(&app, &first, &first_body),
            save_with_body(&app, &second, &second_body),
            app.api(Method::PATCH, "/posts/raced")
                .header("if-match", &etag)
                .json(&json!({ "body": format!("api {round}") }))
                .send(),
        );
        let (a, b, c) = (a.status(), b.status(), c.unwrap().status());
        let body = post_of(&app, "raced").await["body"].clone();
        let winners: Vec<&str> = [
            (a == StatusCode::SEE_OTHER, "first"),
            (b == StatusCode::SEE_OTHER, "second"),
            (c == StatusCode::OK, "api"),
        ]
        .into_iter()
        .filter_map(|(won, who)| won.then_some(who))
        .collect();
        assert_eq!(winners.len(), 1, "{a} {b} {c}");
        assert_eq!(body, format!("{} {round}", winners[0]), "{a} {b} {c}");
        for (status, who) in [(a, "first"), (b, "second")] {
            if who != winners[0] {
                assert_eq!(status, StatusCode::CONFLICT);
            }
        }
        if winners[0] != "api" {
            assert_eq!(c, StatusCode::PRECONDITION_FAILED);
        }
    }
}

/// The post deleted and a new one created at its address while its edit form is open: the form
/// names the old post (its id), so the save does not land on the new post, nor offer to replace
/// it as if it were the same post changed: the edit comes back as the deleted post's (404).
#[tokio::test]
async fn an_edit_form_of_a_post_deleted_and_recreated_meanwhile_does_not_touch_the_new_one() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Reborn", "body": "first life", "published": true }))
        .await;
    app.login().await;
    let (_, form) = app.get_text("/admin/posts/reborn/edit").await;
    let (status, _) = app.api_call(Method::DELETE, "/posts/reborn", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.create_post(json!({ "title": "Reborn", "body": "second life", "published": true }))
        .await;
    let response = save_with_body(&app, &form, "edit of the first life").await;
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(post_of(&app, "reborn").await["body"], "second life");
    assert_eq!(status, StatusCode::NOT_FOUND, "{html}");
    assert!(html.contains("edit of the first life"), "{html}");
}

/// `DELETE /api/posts/{slug}` against every shape of `If-Match`: only `*`, no header, or a list
/// naming this post's current ETag deletes; a weak ETag (compared strongly), a garbage value, an
/// empty one, the ETag of another post or of an earlier version of this one answers 412 in the
/// API's JSON shape and deletes nothing. A post already gone answers 404 whatever the header.
#[tokio::test]
async fn an_api_delete_honours_every_shape_of_if_match() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Other", "body": "o" }))
        .await;
    let other = app.api(Method::GET, "/posts/other").send().await.unwrap();
    let other_etag = other.headers()["etag"].to_str().unwrap().to_owned();

    let etag_of = |slug: &'static str| {
        let app = &app;
        async move {
            let read = app
                .api(Method::GET, &format!("/posts/{slug}"))
                .send()
                .await
                .unwrap();
            read.headers()["etag"].to_str().unwrap().to_owned()
        }
    };
    app.create_post(json!({ "title": "Target", "body": "t", "tags": ["x"] }))
        .await;
    let stale = etag_of("target").await;
    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/target",
            Some(&json!({ "body": "t2" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let current = etag_of("target").await;
    let weak = format!("W/{current}");
    let inner = current.trim_matches('"').to_owned();

    let refused: Vec<(&str, Vec<String>)> = vec![
        ("a weak ETag of the current version", vec![weak.clone()]),
        ("garbage", vec!["garbage".into()]),
        ("an unquoted current ETag", vec![inner.clone()]),
        ("an empty value", vec![String::new()]),
        ("another post's ETag", vec![other_etag.clone()]),
        ("the stale ETag", vec![stale.clone()]),
        (
            "a list of stale and other",
            vec![format!("{stale}, {other_etag}")],
        ),
        ("a quoted star", vec!["\"*\"".into()]),
    ];
    for (what, values) in refused {
        let mut request = app.api(Method::DELETE, "/posts/target");
        for v in &values {
            request = request.header("if-match", v);
        }
        let (status, body) = crate::helpers::json_of(request.send().await.unwrap()).await;
        let (found, _) = app.api_call(Method::GET, "/posts/target", None).await;
        assert_eq!(
            (status, found),
            (StatusCode::PRECONDITION_FAILED, StatusCode::OK),
            "DELETE with {what} ({values:?}) answered {status} {body} and the post is {found}"
        );
        assert!(
            body["error"].is_string(),
            "{what}: the API's JSON shape: {body}"
        );
    }

    // A list naming the current version among others (and split over two headers) deletes.
    let deleted = app
        .api(Method::DELETE, "/posts/target")
        .header("if-match", format!("{stale}, garbage"))
        .header("if-match", format!("{weak}, {current}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let (found, _) = app.api_call(Method::GET, "/posts/target", None).await;
    assert_eq!(found, StatusCode::NOT_FOUND);

    // Gone already: with its last ETag, with `*`, the answer says so (404) in the JSON shape.
    for value in [current.as_str(), "*"] {
        let (status, body) = crate::helpers::json_of(
            app.api(Method::DELETE, "/posts/target")
                .header("if-match", value)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::PRECONDITION_FAILED,
            "DELETE of a gone post with If-Match {value} answered {status} {body}"
        );
        assert!(body["error"].is_string(), "{body}");
    }

    // `*` deletes whatever version it is.
    let deleted = app
        .api(Method::DELETE, "/posts/other")
        .header("if-match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
}

/// Tag changes made on the Tags page (the admin's forms, not the API) while an edit form is open:
/// a rename only in case, a delete and a new tag of the same label, and a rename away and back.
/// The form saved after must not write back a tag list the post no longer has: either it comes
/// back 409, or the post's tags are what they are now.
#[tokio::test]
async fn tag_changes_on_the_tags_page_are_not_undone_by_an_open_edit_form() {
    let app = spawn_app().await;
    app.login().await;
    for (case, steps) in [("case", 0), ("recreated", 1), ("away-and-back", 2)] {
        let slug = format!("post-{case}");
        let label = format!("Tag-{case}");
        app.create_post(json!({
            "title": format!("Post {case}"), "slug": slug, "body": "b", "tags": [label.clone(), "keep"], "published": true
        }))
        .await;
        let (status, form) = app.get_text(&format!("/admin/posts/{slug}/edit")).await;
        assert_eq!(status, StatusCode::OK);
        let (_, tags) = app.api_get("/tags").await;
        assert!(tags.as_array().is_some(), "{tags}");
        let id = tags
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["label"] == label.as_str())
            .unwrap()["id"]
            .as_i64()
            .unwrap();
        let csrf = app.csrf_for("/admin/tags").await;
        let rename = |to: String| {
            let app = &app;
            let csrf = csrf.clone();
            async move {
                let response = app
                    .post_form(
                        &format!("/admin/tags/{id}"),
                        &[("csrf", &csrf), ("label", &to)],
                    )
                    .await;
                assert_eq!(response.status(), StatusCode::SEE_OTHER, "rename to {to}");
            }
        };
        match steps {
            0 => rename(label.to_lowercase()).await,
            1 => {
                let response = app
                    .post_form(&format!("/admin/tags/{id}/delete"), &[("csrf", &csrf)])
                    .await;
                assert_eq!(response.status(), StatusCode::SEE_OTHER);
                app.create_tag(&label).await;
            }
            _ => {
                rename(format!("{label}-renamed")).await;
                rename(label.clone()).await;
            }
        }
        let expected = post_of(&app, &slug).await["tags"].clone();
        let response = save_with_body(&app, &form, "a new body").await;
        let status = response.status();
        let tags = post_of(&app, &slug).await["tags"].clone();
        assert!(
            status == StatusCode::CONFLICT || tags == expected,
            "{case}: the form answered {status} and the post's tags are now {tags}, not {expected}"
        );
    }
}
