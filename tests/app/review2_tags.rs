//! A second review of case-insensitive tags: what breaks them, and what holds.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, location, spawn_app, tags_of};

/// Follows the redirects from `path` (at most 5): the statuses and locations seen, and where it
/// ended.
async fn follow(app: &TestApp, path: &str) -> (Vec<(StatusCode, String)>, StatusCode) {
    let mut seen = Vec::new();
    let mut path = path.to_owned();
    for _ in 0..5 {
        let response = app.get(&path).await;
        let status = response.status();
        if !status.is_redirection() {
            return (seen, status);
        }
        let to = location(response.headers()).to_owned();
        seen.push((status, to.clone()));
        path = to;
    }
    (seen, StatusCode::LOOP_DETECTED)
}

/// Labels are NFC, and lowercasing an NFC label need not give an NFC key: `J̌` (no precomposed
/// capital exists) lowercases to `j` + U+030C, while `ǰ` (U+01F0, the NFC of that very text)
/// stays itself. The two differ only in case, and the blog treats text typed two ways as one
/// label ("café"), yet their keys differ: two tags.
#[tokio::test]
async fn labels_that_differ_only_in_case_are_one_tag_also_where_only_one_case_is_precomposed() {
    let app = spawn_app().await;
    for (n, (lower, upper)) in [
        ("\u{1F0}", "J\u{30C}"),
        ("\u{1E98}", "W\u{30A}"),
        ("\u{390}", "\u{399}\u{308}\u{301}"),
    ]
    .into_iter()
    .enumerate()
    {
        let post = app
            .create_post(json!({
                "title": format!("P{n}"), "slug": format!("p-{n}"), "tags": [lower, upper],
                "published": true
            }))
            .await;
        assert_eq!(post["tags"], json!([lower]), "{lower} / {upper}: {post}");
        let (status, body) = app
            .api_call(Method::POST, "/tags", Some(&json!({ "label": upper })))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{upper}: {body}");
    }
    assert_eq!(app.tag_labels().await.len(), 3, "one tag per word");
}

/// A tag saved before labels were NFC-normalized, labelled with the ANGSTROM SIGN (U+212B): its
/// key (the migration lowercases it to `å`) is the key of its NFC form `Å`, but its label is not
/// that form. Its page answers a 308 to itself, for ever (before case-insensitive tags: a 404).
#[tokio::test]
async fn a_tag_page_never_redirects_to_itself() {
    use migration::MigratorTrait;
    use sea_orm::ConnectionTrait;
    let dir = crate::helpers::new_dir();
    let url = format!("sqlite://{}?mode=rwc", dir.join("blog.db").display());
    let old = sea_orm::Database::connect(&url).await.unwrap();
    migration::Migrator::up(&old, Some(3)).await.unwrap();
    old.execute_unprepared(
        "INSERT INTO posts (id, slug, title, body, published, published_at, created_at, updated_at) VALUES \
           (1, 'one', 'One', 'b', 1, '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z'); \
         INSERT INTO tags (id, label, created_at) VALUES (1, '\u{212B}', '2026-11-28T00:00:00Z'); \
         INSERT INTO posts_tags (post_id, tag_id) VALUES (1, 1);",
    )
    .await
    .unwrap();
    old.close().await.unwrap();
    let app = crate::helpers::spawn_app_in(dir, &[]).await.unwrap();
    assert_eq!(app.tag_labels().await, ["\u{212B}"]);

    // The address the Tags page links to.
    let path = "/tags/%E2%84%AB";
    let (html_status, html) = app.get_text("/tags").await;
    assert_eq!(html_status, StatusCode::OK);
    assert!(html.contains(path), "{html}");
    let (seen, end) = follow(&app, path).await;
    assert!(
        seen.iter().all(|(_, to)| to != path),
        "{path} redirects to itself: {seen:?}"
    );
    assert_ne!(end, StatusCode::LOOP_DETECTED, "{seen:?}");
}

/// During a rolling deploy a node of before the keys renames `Über` to `Ärger` (it sets the
/// label only, the key would stay `über`). Premise changed: the review found the old label then
/// still found the tag (a post given `über` got `Ärger`, a new tag `Über` was refused); the
/// database now refuses that rename, so the tag stays `Über`, found by its label in any case, its
/// posts as they were. An old node's ASCII case change passes, its key right.
#[tokio::test]
async fn an_old_node_s_rename_keeping_the_key_is_refused_and_its_tag_found_as_before() {
    let app = spawn_app().await;
    app.create_post(
        json!({ "title": "P", "slug": "p", "tags": ["Über", "go"], "published": true }),
    )
    .await;
    let before = app.tag_rows().await;
    app.old_node_rename_is_refused("Über", "Ärger").await;
    assert_eq!(app.tag_rows().await, before);
    assert_eq!(tags_of(&app, "p").await, json!(["go", "Über"]));

    let (status, body) = app
        .api_call(Method::POST, "/tags", Some(&json!({ "label": "über" })))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "Über exists: {body}");
    let post = app
        .create_post(
            json!({ "title": "Q", "slug": "q", "tags": ["über", "ärger"], "published": true }),
        )
        .await;
    assert_eq!(post["tags"], json!(["ärger", "Über"]), "{post}");

    app.old_node_renames("go", "GO").await.unwrap();
    let post = app
        .create_post(json!({ "title": "R", "slug": "r", "tags": ["Go"], "published": true }))
        .await;
    assert_eq!(post["tags"], json!(["GO"]), "{post}");
    assert_eq!(tags_of(&app, "p").await, json!(["GO", "Über"]));
    assert_eq!(app.tag_rows().await.len(), 3);
}

// What held.

/// Posts created at once with `Rust` and `rust` (and tags created at once in two cases) end with
/// one tag: writes on one node are serialized, and the upsert is on the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_at_once_in_two_cases_make_one_tag() {
    let app = spawn_app().await;
    for round in 0..5 {
        let (a, b) = tokio::join!(
            app.create_post(json!({
                "title": format!("A{round}"), "slug": format!("a-{round}"),
                "tags": [format!("Rust{round}")], "published": true
            })),
            app.create_post(json!({
                "title": format!("B{round}"), "slug": format!("b-{round}"),
                "tags": [format!("rust{round}"), format!("RUST{round}")], "published": true
            })),
        );
        assert_eq!(a["tags"], b["tags"], "round {round}");
        let label = format!("x{round}");
        let upper = label.to_uppercase();
        let (lower, upper) = (json!({ "label": label }), json!({ "label": upper }));
        let ((s1, b1), (s2, b2)) = tokio::join!(
            app.api_call(Method::POST, "/tags", Some(&lower)),
            app.api_call(Method::POST, "/tags", Some(&upper)),
        );
        let mut statuses = [s1, s2];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::CREATED, StatusCode::CONFLICT],
            "{b1} {b2}"
        );
    }
    assert_eq!(app.tag_labels().await.len(), 10);
    let (_, tags) = app.api_get("/tags").await;
    for tag in tags.as_array().unwrap() {
        if tag["label"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .starts_with("rust")
        {
            assert_eq!(tag["post_count"], 2, "{tag}");
        }
    }
}

/// The 308 to a tag's own address encodes what a path segment must (`#`, `?`, `%`, space, non
/// ASCII), keeps the query as sent, and lands on the page; a trailing slash in another case ends
/// there too. Greek final sigma: `ΟΔΟΣ`, `Οδος` and `οδος` are one tag.
#[tokio::test]
async fn the_redirect_to_a_tag_s_own_address_encodes_it_and_lands_on_the_page() {
    let app = spawn_app().await;
    let post = app
        .create_post(json!({
            "title": "P", "slug": "p", "published": true,
            "tags": ["C#", "Why?", "100% Rust", "ΟΔΟΣ", "Οδος", "οδος", "Ünï Cödé"]
        }))
        .await;
    assert_eq!(
        post["tags"],
        json!(["100% Rust", "C#", "Ünï Cödé", "Why?", "ΟΔΟΣ"])
    );
    for (path, to) in [
        ("/tags/c%23", "/tags/C%23"),
        ("/tags/WHY%3F?page=1&x=%2F", "/tags/Why%3F?page=1&x=%2F"),
        ("/tags/100%25%20rust", "/tags/100%25%20Rust"),
        (
            "/tags/%CE%BF%CE%B4%CE%BF%CF%82",
            "/tags/%CE%9F%CE%94%CE%9F%CE%A3",
        ),
        (
            "/tags/%C3%BCn%C3%AF%20c%C3%B6d%C3%A9",
            "/tags/%C3%9Cn%C3%AF%20C%C3%B6d%C3%A9",
        ),
        // NFD and lowercase: one hop to the NFC label as shown.
        (
            "/tags/u%CC%88n%C3%AF%20c%C3%B6d%C3%A9",
            "/tags/%C3%9Cn%C3%AF%20C%C3%B6d%C3%A9",
        ),
    ] {
        let (seen, end) = follow(&app, path).await;
        assert_eq!(
            seen,
            [(StatusCode::PERMANENT_REDIRECT, to.to_owned())],
            "{path}"
        );
        assert_eq!(end, StatusCode::OK, "{path}");
    }
    let (seen, end) = follow(&app, "/tags/c%23/").await;
    assert_eq!(end, StatusCode::OK, "{seen:?}");
    assert_eq!(seen.last().unwrap().1, "/tags/C%23", "{seen:?}");
    // The page itself: no redirect.
    let (seen, end) = follow(&app, "/tags/Why%3F").await;
    assert_eq!((seen.len(), end), (0, StatusCode::OK));
}

/// The API's tag endpoints with case variants: a case-only rename is a rename (the post's ETag
/// changes, its tags show the new case), a rename onto another tag in another case is a 409 that
/// changes nothing, and a tag deleted can be created again in another case.
#[tokio::test]
async fn the_api_s_tag_endpoints_with_case_variants() {
    let app = spawn_app().await;
    app.create_post(
        json!({ "title": "P", "slug": "p", "tags": ["rust", "go"], "published": true }),
    )
    .await;
    let etag = |r: &reqwest::Response| r.headers()["etag"].to_str().unwrap().to_owned();
    let before = etag(&app.get("/api/posts/p").await);
    let (_, tags) = app.api_get("/tags").await;
    let id_of = |label: &str| {
        tags.as_array()
            .unwrap()
            .iter()
            .find(|t| t["label"] == label)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (rust, go) = (id_of("rust"), id_of("go"));
    let (status, body) = app
        .api_call(
            Method::PATCH,
            &format!("/tags/{rust}"),
            Some(&json!({ "label": "Rust" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A post's tags are in the order of their keys (go, rust), whatever the case.
    assert_eq!(tags_of(&app, "p").await, json!(["go", "Rust"]));
    assert_ne!(etag(&app.get("/api/posts/p").await), before);
    let (status, body) = app
        .api_call(
            Method::PATCH,
            &format!("/tags/{go}"),
            Some(&json!({ "label": "RUST" })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(app.tag_labels().await, ["go", "Rust"]);
    let (status, _) = app
        .api_call(Method::DELETE, &format!("/tags/{rust}"), None)
        .await;
    assert!(status.is_success(), "{status}");
    app.create_tag("RUST").await;
    assert_eq!(tags_of(&app, "p").await, json!(["go"]));
}

/// A tag's page is at its exact label, its label in another case a 308 to it. Premise changed: the
/// review had an old node rename `Über` to `Ärger` (keeping the key `über`) and checked the page
/// of the tag then; the database now refuses that rename, so the page stays at `Über`, and
/// `Ärger` has none. Renamed by the blog itself, the tag's page moves with its label.
#[tokio::test]
async fn a_tag_an_old_node_could_not_rename_keeps_its_page_and_the_blog_s_rename_moves_it() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "P", "slug": "p", "tags": ["Über"], "published": true }))
        .await;
    app.old_node_rename_is_refused("Über", "Ärger").await;
    for (path, to, status) in [
        ("/tags/%C3%9Cber", None, StatusCode::OK),
        ("/tags/%C3%BCber", Some("/tags/%C3%9Cber"), StatusCode::OK),
        ("/tags/%C3%84rger", None, StatusCode::NOT_FOUND),
    ] {
        let (seen, end) = follow(&app, path).await;
        let expected: Vec<_> = to
            .map(|to| (StatusCode::PERMANENT_REDIRECT, to.to_owned()))
            .into_iter()
            .collect();
        assert_eq!((seen, end), (expected, status), "{path}");
    }
    let (_, tags) = app.api_get("/tags").await;
    let id = tags[0]["id"].clone();
    let (status, body) = app
        .api_call(
            Method::PATCH,
            &format!("/tags/{id}"),
            Some(&json!({ "label": "Ärger" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (path, to, status) in [
        ("/tags/%C3%84rger", None, StatusCode::OK),
        ("/tags/%C3%A4rger", Some("/tags/%C3%84rger"), StatusCode::OK),
        ("/tags/%C3%9Cber", None, StatusCode::NOT_FOUND),
    ] {
        let (seen, end) = follow(&app, path).await;
        let expected: Vec<_> = to
            .map(|to| (StatusCode::PERMANENT_REDIRECT, to.to_owned()))
            .into_iter()
            .collect();
        assert_eq!((seen, end), (expected, status), "{path}");
    }
    let q = app
        .create_post(json!({ "title": "Q", "slug": "q", "tags": ["über"], "published": true }))
        .await;
    assert_eq!(q["tags"], json!(["über"]), "the old label is free: {q}");
    assert_eq!(tags_of(&app, "p").await, json!(["Ärger"]));
}

/// An old node renames `Über` to `Ärger` while a tag `ärger` exists. Premise changed: the review
/// found the renamed tag's key (left `über`) could not be corrected (`ärger` taken), and the old
/// label refused until a person renamed one of the two; the database now refuses the rename, so
/// the two tags stay apart with their own labels, keys, pages and posts, and the old label (in any
/// case) is still its tag.
#[tokio::test]
async fn an_old_node_s_rename_onto_another_case_of_a_tag_is_refused_and_both_stay() {
    let app = spawn_app().await;
    app.create_post(
        json!({ "title": "P", "slug": "p", "tags": ["Über", "ärger"], "published": true }),
    )
    .await;
    let before = app.tag_rows().await;
    app.old_node_rename_is_refused("Über", "Ärger").await;
    app.old_node_rename_is_refused("Über", "ärger").await;
    assert_eq!(app.tag_rows().await, before);
    assert_eq!(tags_of(&app, "p").await, json!(["ärger", "Über"]));
    for (path, status) in [
        ("/tags/%C3%9Cber", StatusCode::OK),
        ("/tags/%C3%A4rger", StatusCode::OK),
    ] {
        let (seen, end) = follow(&app, path).await;
        assert_eq!((seen.as_slice(), end), (&[][..], status), "{path}");
    }
    let q = app
        .create_post(
            json!({ "title": "Q", "slug": "q", "tags": ["über", "ÄRGER"], "published": true }),
        )
        .await;
    assert_eq!(q["tags"], json!(["ärger", "Über"]), "{q}");
    assert_eq!(app.tag_rows().await, before);
}

/// Premise changed: the review checked that the primary's start-up gave tags renamed by an old
/// node (keys stale) their right keys where free; that repair is gone, as no key can be stale:
/// the renames that made them (`Über` to `Ärger`, `Ärger` onto `Ö`'s old key, `ä` to `Ä`) are
/// refused, an ASCII case change (`Zorn` to `ZORN`) passes, and every key stays its label's,
/// every tag found by its label in any case.
#[tokio::test]
async fn an_old_node_leaves_no_stale_key_for_a_start_up_to_repair() {
    let app = spawn_app().await;
    app.create_post(json!({
        "title": "P", "slug": "p", "tags": ["Über", "Ö", "Zorn", "ä"], "published": true
    }))
    .await;
    let before = app.tag_rows().await;
    for (from, to) in [("Über", "Ärger"), ("Ö", "Ärger"), ("ä", "Ä"), ("Ö", "ö")] {
        app.old_node_rename_is_refused(from, to).await;
    }
    assert_eq!(app.tag_rows().await, before);
    app.old_node_renames("Zorn", "ZORN").await.unwrap();
    let rows = app.tag_rows().await;
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.iter().any(|r| r.ends_with("|ZORN|zorn")), "{rows:?}");
    app.create_post(json!({
        "title": "Q", "slug": "q", "tags": ["über", "ö", "zorn", "Ä"], "published": true
    }))
    .await;
    assert_eq!(tags_of(&app, "q").await, json!(["ä", "Ö", "Über", "ZORN"]));
    assert_eq!(app.tag_rows().await.len(), 4);
}

/// A label's other case can be longer than the label: `İ` lowercases to two characters. An existing tag typed in its other case is refused as over 40
/// characters, though it names a tag that exists (and whose label was within the limit).
#[tokio::test]
async fn an_existing_tag_typed_in_a_longer_case_is_that_tag() {
    let app = spawn_app().await;
    for (n, (label, other)) in [
        ("İ".repeat(21), "i\u{307}".repeat(21)),
        ("Kİ".repeat(14), "ki\u{307}".repeat(14)),
    ]
    .into_iter()
    .enumerate()
    {
        app.create_post(json!({
            "title": format!("P{n}"), "slug": format!("p-{n}"), "tags": [label],
            "published": true
        }))
        .await;
        let (status, body) = app
            .api_call(
                Method::POST,
                "/posts",
                Some(&json!({
                    "title": format!("Q{n}"), "slug": format!("q-{n}"), "tags": [other],
                    "published": true
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["tags"], json!([label]), "{body}");
    }
}

/// A label as typed may be longer than 40 characters when it names an existing tag in another
/// case (above); a label that would be stored is still held to 40: a new tag on a post (API and
/// form: the form comes back with what was typed, nothing written), a tag created or renamed.
#[tokio::test]
async fn a_label_too_long_to_be_stored_is_refused_where_it_would_be_stored() {
    let app = spawn_app().await;
    let go = app.create_tag("go").await["id"].clone();
    for long in ["x".repeat(41), "i\u{307}".repeat(21)] {
        let (status, body) = app
            .api_call(
                Method::POST,
                "/posts",
                Some(&json!({ "title": "P", "slug": "p", "tags": ["go", long] })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let message = body["fields"]["tags"].as_str().unwrap();
        assert!(message.contains("at most 40 characters"), "{body}");
        for (method, path) in [
            (Method::POST, "/tags".to_owned()),
            (Method::PATCH, format!("/tags/{go}")),
        ] {
            let (status, body) = app
                .api_call(method, &path, Some(&json!({ "label": long })))
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
    }
    app.login().await;
    let csrf = app.csrf_for("/admin/posts/new").await;
    let typed = format!("go, {}", "y".repeat(41));
    let response = app
        .post_form(
            "/admin/posts",
            &[
                ("csrf", &csrf),
                ("title", "Form post"),
                ("slug", "form-post"),
                ("body", "typed body"),
                ("tags", &typed),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains("at most 40 characters"), "{html}");
    assert!(
        html.contains(&typed) && html.contains("typed body"),
        "{html}"
    );
    assert_eq!(app.row_counts().await, (0, 1));
    assert_eq!(app.tag_labels().await, ["go"]);
}
