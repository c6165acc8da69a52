//! A second review of case-insensitive tags: what breaks them, and what holds.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, location, spawn_app};

/// The tags of the post `slug`, as the API shows them.
async fn tags_of(app: &TestApp, slug: &str) -> Value {
    let (status, post) = app
        .api_call(Method::GET, &format!("/posts/{slug}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{post}");
    post["tags"].clone()
}

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
/// label only; the trigger lets a non-ASCII label through, the key stays `über`). The tag's old
/// label then still finds it: a post given `über` gets `Ärger`, and a new tag `Über` is refused
/// as existing, though no tag is shown so, and stays so after the deploy until someone renames
/// the tag again. (docs/reference.md says only that the new label in another case makes a second
/// tag.)
#[tokio::test]
async fn a_tag_renamed_by_an_old_node_is_not_found_by_its_old_label() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    app.create_post(json!({ "title": "P", "slug": "p", "tags": ["Über"], "published": true }))
        .await;
    // The old node's rename: `UPDATE tags SET label = ? WHERE id = ?`.
    app.db
        .execute_unprepared("UPDATE tags SET label = 'Ärger' WHERE label = 'Über'")
        .await
        .expect("the trigger lets an old node's non-ASCII rename through");
    assert_eq!(tags_of(&app, "p").await, json!(["Ärger"]));

    let (status, body) = app
        .api_call(Method::POST, "/tags", Some(&json!({ "label": "Über" })))
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "no tag is shown as Über, yet it is refused: {body}"
    );
    let post = app
        .create_post(json!({ "title": "Q", "slug": "q", "tags": ["über"], "published": true }))
        .await;
    assert_eq!(post["tags"], json!(["Über"]), "{post}");
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
        json!(["100% Rust", "C#", "Why?", "Ünï Cödé", "ΟΔΟΣ"])
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

/// docs/reference.md: a tag renamed by an old node to a non-ASCII label keeps its old key, and
/// its page at its exact label. (Written when its old label still found it and its new label in
/// another case made a second tag, whose key then took the first tag's page; its old label now
/// finds nothing, and the first new tag given it corrects the renamed tag's key, so the new label
/// in another case is that tag: see the test above.)
#[tokio::test]
async fn a_tag_renamed_by_an_old_node_keeps_its_page_at_its_exact_label() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    app.create_post(json!({ "title": "P", "slug": "p", "tags": ["Über"], "published": true }))
        .await;
    app.db
        .execute_unprepared("UPDATE tags SET label = 'Ärger' WHERE label = 'Über'")
        .await
        .unwrap();
    let (seen, end) = follow(&app, "/tags/%C3%84rger").await;
    assert_eq!(
        (seen.as_slice(), end),
        (&[][..], StatusCode::OK),
        "the page of the tag shown as Ärger, its key stale"
    );
    // The old label is a tag of its own.
    let q = app
        .create_post(json!({ "title": "Q", "slug": "q", "tags": ["über"], "published": true }))
        .await;
    assert_eq!(q["tags"], json!(["über"]), "{q}");
    // The new label typed in another case is the renamed tag.
    let r = app
        .create_post(json!({ "title": "R", "slug": "r", "tags": ["ärger"], "published": true }))
        .await;
    assert_eq!(r["tags"], json!(["Ärger"]), "{r}");
    for (path, to) in [
        ("/tags/%C3%84rger", None),
        ("/tags/%C3%A4rger", Some("/tags/%C3%84rger")),
        ("/tags/%C3%BCber", None),
        ("/tags/%C3%9Cber", Some("/tags/%C3%BCber")),
    ] {
        let (seen, end) = follow(&app, path).await;
        let expected: Vec<_> = to
            .map(|to| (StatusCode::PERMANENT_REDIRECT, to.to_owned()))
            .into_iter()
            .collect();
        assert_eq!((seen, end), (expected, StatusCode::OK), "{path}");
    }
}

/// A tag renamed by an old node (`Über` to `Ärger`, its key left `über`) while a tag `ärger`
/// exists: its key cannot be corrected (`ärger` is taken). It keeps its page at its exact label,
/// the other tag keeps its own; its old label is refused with a message that says which tags to
/// rename (not given to the renamed tag); once one of them is renamed, the old label is free.
#[tokio::test]
async fn a_tag_renamed_by_an_old_node_onto_another_case_of_a_tag_is_refused_until_renamed() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    app.create_post(
        json!({ "title": "P", "slug": "p", "tags": ["Über", "ärger"], "published": true }),
    )
    .await;
    app.db
        .execute_unprepared("UPDATE tags SET label = 'Ärger' WHERE label = 'Über'")
        .await
        .unwrap();
    for path in ["/tags/%C3%84rger", "/tags/%C3%A4rger"] {
        let (seen, end) = follow(&app, path).await;
        assert_eq!((seen.as_slice(), end), (&[][..], StatusCode::OK), "{path}");
    }
    let (status, body) = app
        .api_call(Method::POST, "/tags", Some(&json!({ "label": "Über" })))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("\"Ärger\"") && message.contains("\"ärger\""),
        "{message}"
    );
    let (status, body) = app
        .api_call(
            Method::POST,
            "/posts",
            Some(&json!({ "title": "Q", "slug": "q", "tags": ["über"], "published": true })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["fields"]["tags"]
            .as_str()
            .unwrap()
            .contains("\"Ärger\""),
        "{body}"
    );
    assert_eq!(app.tag_labels().await.len(), 2);

    let (_, tags) = app.api_get("/tags").await;
    let lower = tags
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "ärger")
        .unwrap()["id"]
        .clone();
    let (status, body) = app
        .api_call(
            Method::PATCH,
            &format!("/tags/{lower}"),
            Some(&json!({ "label": "Zorn" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let q = app
        .create_post(json!({ "title": "Q", "slug": "q", "tags": ["über"], "published": true }))
        .await;
    assert_eq!(q["tags"], json!(["über"]), "{q}");
    let r = app
        .create_post(json!({ "title": "R", "slug": "r", "tags": ["ÄRGER"], "published": true }))
        .await;
    assert_eq!(r["tags"], json!(["Ärger"]), "{r}");
}

/// Tags renamed by an old node (keys stale, as an old node leaves them) get their right keys when
/// the primary starts, one after another (`Ö` holds `ärger`, the right key of `Ärger`: corrected
/// first), except a tag whose right key is another tag's (`Ä`, while `ä` exists), which keeps its
/// page at its exact label.
#[tokio::test]
async fn the_primary_s_start_up_gives_stale_tags_their_right_keys_where_free() {
    use migration::MigratorTrait;
    use sea_orm::ConnectionTrait;
    let keys = "SELECT id || '|' || label || '|' || label_key AS row FROM tags ORDER BY id";
    let dir = crate::helpers::new_dir();
    let url = format!("sqlite://{}?mode=rwc", dir.join("blog.db").display());
    let old = sea_orm::Database::connect(&url).await.unwrap();
    migration::Migrator::up(&old, None).await.unwrap();
    old.execute_unprepared(
        "INSERT INTO tags (id, label, label_key, created_at) VALUES \
           (1, 'Ärger', 'über', '2026-11-29T00:00:00Z'), \
           (2, 'Ö', 'ärger', '2026-11-29T00:00:00Z'), \
           (3, 'Zorn', 'zorn', '2026-11-29T00:00:00Z'), \
           (4, 'Ä', 'äx', '2026-11-29T00:00:00Z'), \
           (5, 'ä', 'ä', '2026-11-29T00:00:00Z');",
    )
    .await
    .expect("an old node's renames of non-ASCII labels pass the triggers");
    old.close().await.unwrap();
    let app = crate::helpers::spawn_app_in(dir, &[]).await.unwrap();
    let rows: Vec<String> = app
        .db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            keys,
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", "row").unwrap())
        .collect();
    assert_eq!(
        rows,
        ["1|Ärger|ärger", "2|Ö|ö", "3|Zorn|zorn", "4|Ä|äx", "5|ä|ä"]
    );
    // The tags' own labels in another case find them; the one left keeps its page.
    app.create_post(json!({
        "title": "P", "slug": "p", "tags": ["ÄRGER", "ö", "über"], "published": true
    }))
    .await;
    assert_eq!(tags_of(&app, "p").await, json!(["Ärger", "Ö", "über"]));
    let q = app
        .create_post(json!({ "title": "Q", "slug": "q", "tags": ["Ä", "ä"], "published": true }))
        .await;
    assert_eq!(q["tags"], json!(["Ä"]), "{q}");
    for path in ["/tags/%C3%84", "/tags/%C3%A4"] {
        let (seen, end) = follow(&app, path).await;
        assert_eq!((seen.as_slice(), end), (&[][..], StatusCode::OK), "{path}");
    }
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
