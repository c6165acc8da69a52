//! A fourth review of case-insensitive tags, of the final design (a key written by the app, a
//! rename in two statements through a temporary key `/<id>`, triggers that refuse an old node's
//! writes): what breaks it, and what holds.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, location, rename_tag, spawn_app, tag_id};

/// How many tags have a temporary key (`/<id>`), read straight from the database.
async fn temporary_keys(app: &TestApp) -> usize {
    app.tag_rows()
        .await
        .iter()
        .filter(|row| row.ends_with(|c: char| c.is_ascii_digit()) && row.contains("|/"))
        .count()
}

/// `ΟΔΟΣ` and `οδοσ` differ only in case: `οδοσ` uppercases to `ΟΔΟΣ`, and Unicode's caseless
/// match (case folding: `Σ`, `σ` and `ς` all fold to `σ`) makes them one. The key is the label
/// lowercased (`str::to_lowercase`), which gives the final `Σ` as `ς` (`οδος`) where `οδοσ` keeps
/// its `σ`: two keys, two tags, and the page of one in the other's case is a 404.
/// Fails: POST /api/tags `οδοσ` is a 201 beside `ΟΔΟΣ` (expected a 409).
#[tokio::test]
async fn labels_that_differ_only_in_a_final_sigma_s_case_are_one_tag() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "P", "slug": "p", "tags": ["ΟΔΟΣ"], "published": true }))
        .await;
    let (status, body) = app
        .api_call(Method::POST, "/tags", Some(&json!({ "label": "οδοσ" })))
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "οδοσ is ΟΔΟΣ in another case: {body}; tags {:?}",
        app.tag_labels().await
    );
    let response = app.get("/tags/%CE%BF%CE%B4%CE%BF%CF%83").await;
    assert_eq!(
        response.status(),
        StatusCode::PERMANENT_REDIRECT,
        "/tags/οδοσ"
    );
}

/// Renames the blog makes that the triggers could have refused, and renames that fail, never
/// leave a temporary key or change a row they should not: a rename to the label a tag has, a
/// case-only rename of a non-ASCII label through every case of a Greek word (the final sigma
/// included), a rename onto another tag's key in another case, a rename of a tag that is not
/// there.
#[tokio::test]
async fn renames_the_blog_makes_are_accepted_or_refused_whole() {
    let app = spawn_app().await;
    app.create_post(json!({
        "title": "P", "slug": "p", "tags": ["Rust", "Über", "ΟΔΟΣ"], "published": true
    }))
    .await;
    let rust = tag_id(&app, "Rust").await;
    let uber = tag_id(&app, "Über").await;
    let odos = tag_id(&app, "ΟΔΟΣ").await;

    // To the label it has: accepted, nothing changes.
    let before = app.tag_rows().await;
    for (id, label) in [(rust, "Rust"), (uber, "Über"), (odos, "ΟΔΟΣ")] {
        let (status, body) = rename_tag(&app, id, label).await;
        assert_eq!(status, StatusCode::OK, "{label}: {body}");
        assert_eq!(body["label"], label);
    }
    assert_eq!(app.tag_rows().await, before);

    // Case only, non-ASCII letters, one key throughout.
    for label in ["Οδος", "οδος", "ΟΔΟΣ", "οΔοΣ"] {
        let (status, body) = rename_tag(&app, odos, label).await;
        assert_eq!(status, StatusCode::OK, "{label}: {body}");
        assert_eq!(tag_id(&app, label).await, odos);
    }

    // Onto another tag's key, and onto a tag that is not there: refused, nothing written.
    let before = app.tag_rows().await;
    for (id, label, expected) in [
        (uber, "rUST", StatusCode::CONFLICT),
        (uber, "ΟΔΟΣ", StatusCode::CONFLICT),
        (odos, "über", StatusCode::CONFLICT),
        (9999, "Nowhere", StatusCode::NOT_FOUND),
    ] {
        let (status, body) = rename_tag(&app, id, label).await;
        assert_eq!(status, expected, "{id} -> {label}: {body}");
    }
    assert_eq!(app.tag_rows().await, before);
    assert_eq!(temporary_keys(&app).await, 0);

    // The post kept its three tags, and each page is at its label.
    let (_, post) = app.api_call(Method::GET, "/posts/p", None).await;
    assert_eq!(post["tags"], json!(["Rust", "Über", "οΔοΣ"]), "{post}");
    for path in [
        "/tags/Rust",
        "/tags/%C3%9Cber",
        "/tags/%CE%BF%CE%94%CE%BF%CE%A3",
    ] {
        assert_eq!(app.get(path).await.status(), StatusCode::OK, "{path}");
    }
    let response = app.get("/tags/%CE%BF%CE%B4%CE%BF%CF%82").await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        location(response.headers()),
        "/tags/%CE%BF%CE%94%CE%BF%CE%A3"
    );
}

/// A rename and a create that want one key, at once, many times: one of them wins, the other is
/// a 409, never a 500; no temporary key is left and every key is its label's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_and_a_create_of_one_key_at_once_make_one_tag() {
    let app = spawn_app().await;
    let mut created_tags = 0;
    for round in 0..20 {
        let from = format!("from{round}");
        let id = app.create_tag(&from).await["id"].as_i64().unwrap();
        let wanted = format!("Ärger{round}");
        let create = json!({ "label": wanted.to_lowercase() });
        let (renamed, created) = tokio::join!(
            rename_tag(&app, id, &wanted),
            app.api_call(Method::POST, "/tags", Some(&create))
        );
        let statuses = (renamed.0, created.0);
        assert!(
            statuses == (StatusCode::OK, StatusCode::CONFLICT)
                || statuses == (StatusCode::CONFLICT, StatusCode::CREATED),
            "round {round}: {renamed:?} {created:?}"
        );
        if created.0 == StatusCode::CREATED {
            created_tags += 1;
        }
    }
    // tag_rows checks every key is its label's.
    assert_eq!(app.tag_rows().await.len(), 20 + created_tags);
    assert_eq!(temporary_keys(&app).await, 0);
}

/// An old node's rename that changes only the case of ASCII letters in a non-ASCII label (the
/// one rename of a label the triggers let it make) keeps a right key; the page of the old label
/// redirects to the new one in one hop.
#[tokio::test]
async fn an_old_node_s_ascii_case_change_of_a_non_ascii_label_keeps_a_right_key() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "P", "slug": "p", "tags": ["Über"], "published": true }))
        .await;
    app.old_node_renames("Über", "ÜBER").await.unwrap();
    // tag_rows checks the key is the label's.
    assert_eq!(app.tag_rows().await.len(), 1);
    assert_eq!(app.tag_labels().await, ["ÜBER"]);
    let response = app.get("/tags/%C3%9Cber").await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(location(response.headers()), "/tags/%C3%9CBER");
    assert_eq!(app.get("/tags/%C3%9CBER").await.status(), StatusCode::OK);
    // A case change of a non-ASCII letter is still refused to it.
    app.old_node_rename_is_refused("ÜBER", "üBER").await;
}

/// A tag renamed to a new label while a post is patched with that label in another case, at
/// once, many times: never a 500; the post has exactly one tag of that key, and it is the renamed
/// tag if the rename came first, else a new tag (and the rename is a 409); a second post that
/// carries the renamed tag keeps it either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_racing_a_post_patch_in_another_case_leaves_one_tag_per_key() {
    let app = spawn_app().await;
    for round in 0..15 {
        let from = format!("vorher{round}");
        let wanted = format!("Ärger{round}");
        let keeper = format!("keeper{round}");
        let patched = format!("patched{round}");
        app.create_post(json!({ "title": "K", "slug": keeper, "tags": [from], "published": true }))
            .await;
        app.create_post(json!({ "title": "P", "slug": patched, "tags": ["a"], "published": true }))
            .await;
        let id = tag_id(&app, &from).await;
        let patch = json!({ "tags": [wanted.to_lowercase(), "a"] });
        let path = format!("/posts/{patched}");
        let (renamed, patch_answer) = tokio::join!(
            rename_tag(&app, id, &wanted),
            app.api_call(Method::PATCH, &path, Some(&patch))
        );
        assert_eq!(
            patch_answer.0,
            StatusCode::OK,
            "round {round}: {patch_answer:?}"
        );
        let (_, post) = app
            .api_call(Method::GET, &format!("/posts/{patched}"), None)
            .await;
        let (_, kept) = app
            .api_call(Method::GET, &format!("/posts/{keeper}"), None)
            .await;
        match renamed.0 {
            StatusCode::OK => {
                assert_eq!(post["tags"], json!(["a", wanted]), "round {round}");
                assert_eq!(kept["tags"], json!([wanted]), "round {round}");
            }
            StatusCode::CONFLICT => {
                assert_eq!(
                    post["tags"],
                    json!(["a", wanted.to_lowercase()]),
                    "round {round}"
                );
                assert_eq!(kept["tags"], json!([from]), "round {round}");
            }
            other => panic!("round {round}: rename {other}: {renamed:?}"),
        }
    }
    // tag_rows checks every key is its label's.
    app.tag_rows().await;
    assert_eq!(temporary_keys(&app).await, 0);
}

/// A post may have 20 tags; labels that differ only in case are one tag. The limit counts the
/// labels as typed, before they are made one per key: 20 tags given with one of them again in
/// another case (as a post form does where a tag is typed anew in the case one remembers) is
/// refused as too many tags, where the post would have 20.
/// Fails: POST /api/posts is a 422 `tags: at most 20 tags` (expected a 201 with 20 tags).
#[tokio::test]
async fn twenty_tags_with_one_again_in_another_case_are_not_too_many() {
    let app = spawn_app().await;
    let mut labels: Vec<String> = (0..20).map(|i| format!("tag{i:02}")).collect();
    labels.push("TAG00".to_owned());
    let (status, body) = app
        .api_call(
            Method::POST,
            "/posts",
            Some(&json!({ "title": "P", "slug": "p", "tags": labels, "published": true })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["tags"].as_array().unwrap().len(), 20, "{body}");
}

/// Tags are listed "alphabetically (by their keys: case does not count)" (`tags::list_with_counts`,
/// docs): the keys compare as bytes, so every label that begins with a letter beyond ASCII comes
/// after `z`: `Éclair` and `über` after `Zeta`, in the API, on a post and on the tag index.
/// Fails: GET /api/tags lists [apple, Zeta, Éclair, über] (expected [apple, Éclair, über, Zeta]).
#[tokio::test]
async fn tags_with_accented_initials_are_listed_alphabetically() {
    let app = spawn_app().await;
    app.create_post(json!({
        "title": "P", "slug": "p", "tags": ["Zeta", "über", "apple", "Éclair"], "published": true
    }))
    .await;
    let expected = ["apple", "Éclair", "über", "Zeta"];
    assert_eq!(app.tag_labels().await, expected);
    let (_, post) = app.api_call(Method::GET, "/posts/p", None).await;
    assert_eq!(post["tags"], json!(expected));
}
