//! Tags compare without regard to case: "Rust", "rust" and "RUST" are one tag, wherever a label
//! comes in (the post form and the API's posts, the Tags page and the API's tags, `/tags/{label}`).
//! "The same" is equal after Unicode lowercasing, so "Über" and "über" are one tag too. The label
//! shown keeps the case it was first written with.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, input_value, location, spawn_app, tag_id, tags_of};

#[tokio::test]
async fn the_api_gives_a_post_one_tag_for_labels_that_differ_in_case() {
    let app = spawn_app().await;
    let post = app
        .create_post(json!({
            "title": "One", "slug": "one", "tags": ["Rust", "rust", "RUST", "Über", "über"],
            "published": true
        }))
        .await;
    assert_eq!(post["tags"], json!(["Rust", "Über"]), "{post}");
    assert_eq!(app.tag_labels().await, ["Rust", "Über"]);

    // An existing tag typed in another case is that tag, its label unchanged.
    let post = app
        .create_post(json!({
            "title": "Two", "slug": "two", "tags": ["rUST", "ÜBER"], "published": true
        }))
        .await;
    assert_eq!(post["tags"], json!(["Rust", "Über"]), "{post}");
    let (status, patched) = app
        .api_call(
            Method::PATCH,
            "/posts/one",
            Some(&json!({ "tags": ["rust", "über", "RUST"] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["tags"], json!(["Rust", "Über"]));
    let (_, tags) = app.api_get("/tags").await;
    assert_eq!(
        tags,
        json!([
            { "id": tags[0]["id"], "label": "Rust", "post_count": 2 },
            { "id": tags[1]["id"], "label": "Über", "post_count": 2 },
        ])
    );
    assert_eq!(app.row_counts().await, (2, 2));
}

#[tokio::test]
async fn the_post_form_gives_a_post_one_tag_for_labels_that_differ_in_case() {
    let app = spawn_app().await;
    app.create_tag("Rust").await;
    app.login().await;
    let csrf = app.csrf_for("/admin/posts/new").await;
    let response = app
        .post_form(
            "/admin/posts",
            &[
                ("csrf", &csrf),
                ("title", "Form post"),
                ("slug", "form-post"),
                ("body", "b"),
                ("tags", "rust, RUST, über, Über, new, NEW"),
                ("published", "on"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(response.headers()), "/posts/form-post");
    assert_eq!(
        tags_of(&app, "form-post").await,
        json!(["new", "Rust", "über"])
    );
    assert_eq!(app.tag_labels().await, ["new", "Rust", "über"]);

    // The edit form shows the tags as they are, and saved again with other cases changes nothing.
    let (status, form) = app.get_text("/admin/posts/form-post/edit").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(input_value(&form, "tags"), "new, Rust, über");
    let csrf = app.csrf_for("/admin/posts/form-post/edit").await;
    let response = app
        .post_form(
            "/admin/posts/form-post",
            &[
                ("csrf", &csrf),
                ("title", "Form post"),
                ("slug", "form-post"),
                ("body", "b2"),
                ("tags", "RUST, New, ÜBER"),
                ("published", "on"),
                ("post_id", &crate::helpers::hidden_value(&form, "post_id")),
                ("version", &crate::helpers::hidden_value(&form, "version")),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        tags_of(&app, "form-post").await,
        json!(["new", "Rust", "über"])
    );
    assert_eq!(app.tag_labels().await, ["new", "Rust", "über"]);
}

#[tokio::test]
async fn a_new_tag_in_another_case_of_an_existing_one_is_refused() {
    let app = spawn_app().await;
    app.create_tag("Rust").await;
    app.create_tag("Über").await;
    for label in ["rust", "RUST", "über"] {
        let (status, body) = app
            .api_call(Method::POST, "/tags", Some(&json!({ "label": label })))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{label}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("already exists"),
            "{body}"
        );
    }
    app.login().await;
    let csrf = app.csrf_for("/admin/tags").await;
    let response = app
        .post_form("/admin/tags", &[("csrf", &csrf), ("label", "rUsT")])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("a tag with this label already exists"),
        "{html}"
    );
    assert!(
        html.contains(r#"name="label" value="rUsT" required"#),
        "{html}"
    );
    assert_eq!(app.tag_labels().await, ["Rust", "Über"]);
}

#[tokio::test]
async fn a_rename_only_in_case_changes_the_label_shown() {
    let app = spawn_app().await;
    app.create_post(
        json!({ "title": "P", "slug": "p", "tags": ["rust", "über"], "published": true }),
    )
    .await;
    let rust = tag_id(&app, "rust").await;
    let uber = tag_id(&app, "über").await;
    app.login().await;
    let csrf = app.csrf_for("/admin/tags").await;
    let response = app
        .post_form(
            &format!("/admin/tags/{rust}"),
            &[("csrf", &csrf), ("label", "Rust")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, renamed) = app
        .api_call(
            Method::PATCH,
            &format!("/tags/{uber}"),
            Some(&json!({ "label": "Über" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(app.tag_labels().await, ["Rust", "Über"]);
    assert_eq!(tag_id(&app, "Rust").await, rust);
    assert_eq!(tag_id(&app, "Über").await, uber);
    assert_eq!(tags_of(&app, "p").await, json!(["Rust", "Über"]));
}

#[tokio::test]
async fn a_rename_onto_another_tag_s_label_in_another_case_is_refused() {
    let app = spawn_app().await;
    app.create_tag("rust").await;
    app.create_tag("Über").await;
    let go = app.create_tag("go").await["id"].as_i64().unwrap();
    for label in ["RUST", "über"] {
        let (status, body) = app
            .api_call(
                Method::PATCH,
                &format!("/tags/{go}"),
                Some(&json!({ "label": label })),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{label}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("already exists"),
            "{body}"
        );
    }
    app.login().await;
    let csrf = app.csrf_for("/admin/tags").await;
    let response = app
        .post_form(
            &format!("/admin/tags/{go}"),
            &[("csrf", &csrf), ("label", "Rust")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("a tag with this label already exists"),
        "{html}"
    );
    assert!(
        html.contains(r#"value="Rust""#),
        "the typed label is kept at its row: {html}"
    );
    assert!(
        !html.contains(r#"name="label" value="" required aria-invalid="true""#),
        "the error is at the renamed row, not the New tag field: {html}"
    );
    assert_eq!(app.tag_labels().await, ["go", "rust", "Über"]);
}

#[tokio::test]
async fn a_tag_page_in_another_case_redirects_to_the_tag_s_own_address() {
    let app = spawn_app().await;
    app.create_post(
        json!({ "title": "P", "slug": "p", "tags": ["Rust", "Über"], "published": true }),
    )
    .await;
    app.create_post(json!({ "title": "D", "slug": "d", "tags": ["Drafty"], "published": false }))
        .await;
    for (path, to) in [
        ("/tags/rust", "/tags/Rust"),
        ("/tags/RUST?page=1", "/tags/Rust?page=1"),
        ("/tags/%C3%BCber", "/tags/%C3%9Cber"),
        ("/tags/%C3%9CBER?page=1", "/tags/%C3%9Cber?page=1"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT, "{path}");
        assert_eq!(location(response.headers()), to, "{path}");
    }
    for path in ["/tags/Rust", "/tags/%C3%9Cber"] {
        let (status, html) = app.get_text(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(html.contains(">P<"), "{path}: {html}");
    }
    // A tag only drafts carry stays hidden in any case.
    for path in ["/tags/Drafty", "/tags/drafty"] {
        assert_eq!(
            app.get(path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

/// Letters with their case forms (a titlecase one too, `ǅ`), ASCII and not.
const LETTERS: &[&[&str]] = &[
    &["a", "A"],
    &["r", "R"],
    &["ü", "Ü"],
    &["é", "É"],
    &["ж", "Ж"],
    &["ǆ", "ǅ", "Ǆ"],
    &["ø", "Ø"],
];

/// Labels that differ only in case, given as the tags of one post (and some of them again on a
/// second post): always one tag, labelled as first written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The closure's error type is proptest's `TestCaseError`, not ours to shrink.
#[allow(clippy::result_large_err)]
async fn labels_that_differ_only_in_case_are_always_one_tag() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    let app = Arc::new(spawn_app().await);
    // A word: letters by index; its spellings: for each, a case form of every letter.
    let word = proptest::collection::vec(0..LETTERS.len(), 1..6);
    let spellings = word.prop_flat_map(|letters| {
        let spelling = letters
            .iter()
            .map(|&l| (Just(l), 0..LETTERS[l].len()))
            .collect::<Vec<_>>();
        proptest::collection::vec(spelling, 2..5)
    });
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    let keys = Arc::new(Mutex::new(BTreeSet::new()));
    let counter = Arc::new(Mutex::new(0));
    let target = app.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        runner.run(&spellings, |spellings| {
            let labels: Vec<String> = spellings
                .iter()
                .map(|forms| forms.iter().map(|&(l, f)| LETTERS[l][f]).collect())
                .collect();
            let n = {
                let mut counter = counter.lock().unwrap();
                *counter += 1;
                *counter
            };
            let (first, again) = handle.block_on(async {
                let first = target
                    .create_post(json!({ "title": format!("P{n}"), "slug": format!("p-{n}"), "tags": labels, "published": true }))
                    .await;
                let again = target
                    .create_post(json!({ "title": format!("Q{n}"), "slug": format!("q-{n}"), "tags": [labels[labels.len() - 1]], "published": true }))
                    .await;
                (first, again)
            });
            prop_assert_eq!(first["tags"].as_array().unwrap().len(), 1, "{:?}: {}", labels, first);
            prop_assert_eq!(&first["tags"], &again["tags"], "{:?}", labels);
            let shown = first["tags"][0].as_str().unwrap().to_owned();
            let key = labels[0].to_lowercase();
            let new = keys.lock().unwrap().insert(key.clone());
            if new {
                prop_assert_eq!(&shown, &labels[0], "a new tag keeps its first spelling");
            } else {
                prop_assert_eq!(shown.to_lowercase(), key);
            }
            let count = handle.block_on(target.tag_labels()).len();
            prop_assert_eq!(count, keys.lock().unwrap().len(), "one tag per key");
            Ok(())
        })
    })
    .await
    .unwrap();
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

/// Code that saves a tag's active model with only its label set (as the cluster layer's example
/// does) gets the key of that label, on insert and on update: no tag whose key is not its label's.
#[tokio::test]
async fn an_active_model_saved_with_a_label_gets_its_key() {
    use blog::entity::tag;
    use sea_orm::{ActiveModelTrait, Set};
    let app = spawn_app().await;
    let saved = tag::ActiveModel {
        label: Set("Über".into()),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .unwrap();
    assert_eq!(saved.label_key, "über");
    let mut renamed: tag::ActiveModel = saved.into();
    renamed.label = Set("GO".into());
    let renamed = renamed.update(&app.db).await.unwrap();
    assert_eq!(renamed.label_key, "go");
    let (status, _) = app
        .api_call(Method::POST, "/tags", Some(&json!({ "label": "go" })))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

/// The blog started on a database of before case-insensitive tags, with tags that differ only in
/// case: it migrates at start (the merge inside its own migration transaction), and serves one
/// tag, labelled as the oldest, on every post that had any of them; the edit form of a post whose
/// tags were merged saves (it is opened after the migration, on the post's new version).
#[tokio::test]
async fn the_blog_started_on_a_database_with_duplicates_in_case_serves_one_tag() {
    use migration::MigratorTrait;
    use sea_orm::ConnectionTrait;
    let dir = crate::helpers::new_dir();
    let url = format!("sqlite://{}?mode=rwc", dir.join("blog.db").display());
    let old = sea_orm::Database::connect(&url).await.unwrap();
    migration::Migrator::up(&old, Some(3)).await.unwrap();
    old.execute_unprepared(
        "INSERT INTO posts (id, slug, title, body, published, published_at, created_at, updated_at) VALUES \
           (1, 'one', 'One', 'b', 1, '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z'), \
           (2, 'two', 'Two', 'b', 1, '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z'); \
         INSERT INTO tags (id, label, created_at) VALUES \
           (1, 'über', '2026-11-28T00:00:00Z'), (2, 'Rust', '2026-11-28T00:00:00Z'), \
           (3, 'rust', '2026-11-28T00:00:00Z'), (4, 'Über', '2026-11-28T00:00:00Z'); \
         INSERT INTO posts_tags (post_id, tag_id) VALUES (1, 2), (1, 3), (1, 4), (2, 3), (2, 1);",
    )
    .await
    .unwrap();
    old.close().await.unwrap();

    let app = crate::helpers::spawn_app_in(dir, &[]).await.unwrap();
    let (_, tags) = app.api_get("/tags").await;
    assert_eq!(
        tags,
        json!([
            { "id": 2, "label": "Rust", "post_count": 2 },
            { "id": 1, "label": "über", "post_count": 2 },
        ])
    );
    assert_eq!(tags_of(&app, "one").await, json!(["Rust", "über"]));
    assert_eq!(tags_of(&app, "two").await, json!(["Rust", "über"]));
    let response = app.get("/tags/RUST").await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(location(response.headers()), "/tags/Rust");

    app.login().await;
    let (status, form) = app.get_text("/admin/posts/one/edit").await;
    assert_eq!(status, StatusCode::OK);
    let response = app
        .post_form(
            "/admin/posts/one",
            &[
                ("csrf", &crate::helpers::csrf_of(&form)),
                ("title", "One"),
                ("slug", "one"),
                ("body", "b2"),
                ("tags", &input_value(&form, "tags")),
                ("published", "on"),
                ("post_id", &crate::helpers::hidden_value(&form, "post_id")),
                ("version", &crate::helpers::hidden_value(&form, "version")),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(tags_of(&app, "one").await, json!(["Rust", "über"]));
}

/// Tags are listed in the order of their keys, whatever their case: `apple`, `banana`, `Rust`,
/// not `Rust` first because capitals sort before small letters; on the tag index, in the API,
/// and on a post.
#[tokio::test]
async fn tags_are_listed_alphabetically_whatever_their_case() {
    let app = spawn_app().await;
    app.create_post(json!({
        "title": "Fruit", "slug": "fruit", "tags": ["Rust", "banana", "apple", "Zeta"],
        "published": true
    }))
    .await;
    let expected = ["apple", "banana", "Rust", "Zeta"];
    let (_, tags) = app.api_get("/tags").await;
    let listed: Vec<&str> = tags
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["label"].as_str().unwrap())
        .collect();
    assert_eq!(listed, expected);
    let on_post = tags_of(&app, "fruit").await;
    assert_eq!(on_post, json!(expected));
    let (_, html) = app.get_text("/tags").await;
    let at = |label: &str| {
        html.find(&format!(">#{label}<"))
            .unwrap_or_else(|| panic!("{label} on /tags: {html}"))
    };
    assert!(at("apple") < at("banana") && at("banana") < at("Rust") && at("Rust") < at("Zeta"));
}

/// `id|label|key` of every tag, by id, read straight from the database.
async fn tag_rows(app: &TestApp) -> Vec<String> {
    use sea_orm::ConnectionTrait;
    app.db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "SELECT id || '|' || label || '|' || label_key AS row FROM tags ORDER BY id",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", "row").unwrap())
        .collect()
}

/// A rename only in the case of letters other than ASCII (`über` to `Über`) keeps the key, which
/// the database cannot check (its `lower()` knows ASCII only, and it refuses a rename that keeps
/// the key where `lower()` sees a change, as an old node's would be): it works from the API and
/// from the Tags page, and all at once: a rename refused on the way (onto another tag's label in
/// another case) leaves the tag's label and key as they were.
#[tokio::test]
async fn a_case_only_rename_of_a_non_ascii_label_works_and_is_all_or_nothing() {
    let app = spawn_app().await;
    app.create_post(
        json!({ "title": "P", "slug": "p", "tags": ["über", "Ärger"], "published": true }),
    )
    .await;
    let uber = tag_id(&app, "über").await;
    let arger = tag_id(&app, "Ärger").await;
    let (status, renamed) = app
        .api_call(
            Method::PATCH,
            &format!("/tags/{uber}"),
            Some(&json!({ "label": "Über" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["label"], "Über", "{renamed}");
    app.login().await;
    let csrf = app.csrf_for("/admin/tags").await;
    let response = app
        .post_form(
            &format!("/admin/tags/{arger}"),
            &[("csrf", &csrf), ("label", "ärger")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        tag_rows(&app).await,
        [format!("{uber}|Über|über"), format!("{arger}|ärger|ärger")]
    );
    assert_eq!(tags_of(&app, "p").await, json!(["ärger", "Über"]));

    // Refused half-way: the tag is as it was, its key too.
    let (status, body) = app
        .api_call(
            Method::PATCH,
            &format!("/tags/{uber}"),
            Some(&json!({ "label": "ÄRGER" })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let csrf = app.csrf_for("/admin/tags").await;
    let response = app
        .post_form(
            &format!("/admin/tags/{arger}"),
            &[("csrf", &csrf), ("label", "über")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        tag_rows(&app).await,
        [format!("{uber}|Über|über"), format!("{arger}|ärger|ärger")]
    );
    assert_eq!(tags_of(&app, "p").await, json!(["ärger", "Über"]));
}

/// A label as typed may be up to 160 characters, though a label stored has at most 40: one of
/// 41 or more whose key is an existing tag's (`İ` typed as `i` and a combining dot, two
/// characters) names that tag. Created (API and Tags page), or given to another tag by a rename,
/// it gets the answer a short label naming that tag in another case gets: it already exists, not
/// "at most 40 characters". A long label naming no tag, or a rename of the tag itself to a label
/// too long to be stored, is still "at most 40 characters".
#[tokio::test]
async fn a_long_label_naming_an_existing_tag_is_refused_as_that_tag() {
    let app = spawn_app().await;
    let dotted = "İ".repeat(21);
    let dotted_id = app.create_tag(&dotted).await["id"].as_i64().unwrap();
    let go = app.create_tag("go").await["id"].as_i64().unwrap();
    // The same tag, typed 42 characters long, and typed short (40) in another case.
    let long = "i\u{307}".repeat(21);
    let short = format!("{}{}", "İ".repeat(19), "i\u{307}".repeat(2));
    assert!(long.chars().count() > 40 && short.chars().count() <= 40);

    for (method, path) in [
        (Method::POST, "/tags".to_owned()),
        (Method::PATCH, format!("/tags/{go}")),
    ] {
        let short_answer = app
            .api_call(method.clone(), &path, Some(&json!({ "label": short })))
            .await;
        assert_eq!(
            short_answer.0,
            StatusCode::CONFLICT,
            "{path}: {short_answer:?}"
        );
        let long_answer = app
            .api_call(method.clone(), &path, Some(&json!({ "label": long })))
            .await;
        assert_eq!(long_answer, short_answer, "{method} {path}");
        // A long label naming no tag: too long.
        let (status, body) = app
            .api_call(method, &path, Some(&json!({ "label": "x".repeat(41) })))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert!(
            body["fields"]["label"]
                .as_str()
                .unwrap()
                .contains("at most 40 characters"),
            "{path}: {body}"
        );
    }
    // The tag renamed to its own label in that longer case: it would be stored, so too long.
    let (status, body) = app
        .api_call(
            Method::PATCH,
            &format!("/tags/{dotted_id}"),
            Some(&json!({ "label": long })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["fields"]["label"]
            .as_str()
            .unwrap()
            .contains("at most 40 characters"),
        "{body}"
    );
    // A rename of a tag deleted meanwhile to that label: the tag is gone, as for a short label.
    let gone = app.create_tag("gone").await["id"].as_i64().unwrap();
    let (status, _) = app
        .api_call(Method::DELETE, &format!("/tags/{gone}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let short_gone = app
        .api_call(
            Method::PATCH,
            &format!("/tags/{gone}"),
            Some(&json!({ "label": short })),
        )
        .await;
    let long_gone = app
        .api_call(
            Method::PATCH,
            &format!("/tags/{gone}"),
            Some(&json!({ "label": long })),
        )
        .await;
    assert_eq!(short_gone.0, StatusCode::NOT_FOUND, "{short_gone:?}");
    assert_eq!(long_gone, short_gone);

    // The Tags page: the form comes back as for the short label, with the label kept.
    app.login().await;
    for path in ["/admin/tags".to_owned(), format!("/admin/tags/{go}")] {
        let mut answers = Vec::new();
        for label in [&short, &long] {
            let csrf = app.csrf_for("/admin/tags").await;
            let response = app
                .post_form(&path, &[("csrf", &csrf), ("label", label)])
                .await;
            let status = response.status();
            let html = response.text().await.unwrap();
            assert!(html.contains(&format!(r#"value="{label}""#)), "{html}");
            answers.push((status, html.replace(label.as_str(), "LABEL")));
        }
        assert_eq!(answers[0].0, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert!(
            answers[1]
                .1
                .contains("a tag with this label already exists"),
            "{path}: {}",
            answers[1].1
        );
        assert_eq!(answers[1].0, answers[0].0, "{path}");
    }
    assert_eq!(app.tag_labels().await, ["go", dotted.as_str()]);
}

/// Review, holds: a 40-character tag of `İ` whose key is 80 characters: typed in its 80-character
/// lower case it is that tag everywhere: created (API, Tags page) it already exists, as the exact
/// label does; on a post it is that tag, the label kept; a rename of another tag to it is that
/// conflict; a rename of a deleted tag to it is gone, as with a short label, on the Tags page too;
/// a long label naming no tag is too long on a post as well. Nothing is written by a refusal.
#[tokio::test]
async fn review_holds_a_40_character_tag_typed_80_long_is_that_tag_and_nothing_is_written() {
    let app = spawn_app().await;
    let dotted = "İ".repeat(40);
    let long = "i\u{307}".repeat(40);
    assert_eq!(long.chars().count(), 80);
    let dotted_id = app.create_tag(&dotted).await["id"].as_i64().unwrap();
    let other = app.create_tag("other").await["id"].as_i64().unwrap();
    let (_, before) = app.api_get("/tags").await;

    let exact = app
        .api_call(Method::POST, "/tags", Some(&json!({ "label": dotted })))
        .await;
    assert_eq!(exact.0, StatusCode::CONFLICT, "{exact:?}");
    let typed_long = app
        .api_call(Method::POST, "/tags", Some(&json!({ "label": long })))
        .await;
    assert_eq!(typed_long, exact);
    let renamed = app
        .api_call(
            Method::PATCH,
            &format!("/tags/{other}"),
            Some(&json!({ "label": long })),
        )
        .await;
    assert_eq!(renamed.0, StatusCode::CONFLICT, "{renamed:?}");
    let own = app
        .api_call(
            Method::PATCH,
            &format!("/tags/{dotted_id}"),
            Some(&json!({ "label": long })),
        )
        .await;
    assert_eq!(own.0, StatusCode::UNPROCESSABLE_ENTITY, "{own:?}");
    let (_, after) = app.api_get("/tags").await;
    assert_eq!(after, before, "a refusal wrote something");

    // On a post: the existing tag, its label kept; a long label naming no tag is too long.
    let post = app
        .create_post(json!({ "title": "P", "slug": "p", "tags": [long], "published": true }))
        .await;
    assert_eq!(post["tags"], json!([dotted]), "{post}");
    let (status, body) = app
        .api_call(
            Method::POST,
            "/posts",
            Some(&json!({ "title": "Q", "slug": "q", "tags": ["y".repeat(41)] })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("at most 40"), "{body}");
    assert_eq!(app.tag_labels().await, [dotted.as_str(), "other"]);

    // A rename of a deleted tag on the Tags page: the same answer, short or long.
    let gone = app.create_tag("gone").await["id"].as_i64().unwrap();
    let (status, _) = app
        .api_call(Method::DELETE, &format!("/tags/{gone}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.login().await;
    let mut answers = Vec::new();
    for label in [&dotted, &long] {
        let csrf = app.csrf_for("/admin/tags").await;
        let response = app
            .post_form(
                &format!("/admin/tags/{gone}"),
                &[("csrf", &csrf), ("label", label)],
            )
            .await;
        let status = response.status();
        let place = response
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|l| l.to_str().unwrap().to_owned());
        let html = response.text().await.unwrap();
        answers.push((status, place, html.replace(label.as_str(), "LABEL")));
    }
    assert!(
        answers[0].0.is_client_error() || answers[0].0.is_redirection(),
        "{:?}",
        answers[0]
    );
    assert_eq!(answers[1].0, answers[0].0);
    assert_eq!(answers[1].1, answers[0].1);
    assert_eq!(app.tag_labels().await, [dotted.as_str(), "other"]);
}
