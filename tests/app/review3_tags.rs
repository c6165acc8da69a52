//! A third review of case-insensitive tags, after the fixes of the second (NFC keys, a tag's page
//! at its exact label, stale keys skipped by look-ups and corrected where they block a write, the
//! primary's start-up repair, typed labels longer than stored ones): what breaks them, and what
//! holds.

use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait;
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

/// The id of the tag labelled exactly `label`, as `GET /api/tags` lists it.
async fn id_of(app: &TestApp, label: &str) -> i64 {
    let (_, tags) = app.api_get("/tags").await;
    tags.as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == label)
        .unwrap_or_else(|| panic!("no tag {label}: {tags}"))["id"]
        .as_i64()
        .unwrap()
}

/// An old node's rename (a node of before the keys: it sets the label only; the trigger lets a
/// label with other letters than ASCII through, and the key stays as it was).
async fn old_node_renames(app: &TestApp, from: &str, to: &str) {
    app.db
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Sqlite,
            "UPDATE tags SET label = ? WHERE label = ?",
            [to.into(), from.into()],
        ))
        .await
        .expect("the trigger lets an old node's non-ASCII rename through");
}

/// `id|label|key` of every tag, by id, read straight from the database.
async fn keys(app: &TestApp) -> Vec<String> {
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

/// A tag renamed by an old node (`Über` to `Ärger`, its key left `über`) is not found by its new
/// label in another case until some write happens to need its old key (`über`): a post given
/// `ärger` (or the form's `ÄRGER`, even with `Ärger` typed after it, which the post's parse drops
/// as the same tag) gets a second tag, `ärger`, beside `Ärger`; `POST /api/tags ÄRGER` makes one
/// too. The two then differ only in case for good: the renamed tag's right key is taken, the
/// start-up repair leaves it, and a post given `über` is refused until a person renames one.
#[tokio::test]
async fn a_tag_renamed_by_an_old_node_is_its_new_label_in_another_case() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "P", "slug": "p", "tags": ["Über"], "published": true }))
        .await;
    old_node_renames(&app, "Über", "Ärger").await;

    let (status, body) = app
        .api_call(Method::POST, "/tags", Some(&json!({ "label": "ärger" })))
        .await;
    let q = app
        .create_post(json!({
            "title": "Q", "slug": "q", "tags": ["ÄRGER", "Ärger"], "published": true
        }))
        .await;
    assert_eq!(
        (status, &q["tags"], app.tag_labels().await),
        (
            StatusCode::CONFLICT,
            &json!(["Ärger"]),
            vec!["Ärger".to_owned()]
        ),
        "the tag shown as Ärger typed in another case made a second tag: {q} / {body}"
    );
}

/// Two tags renamed by an old node one after the other (`Ärger` to `Ö`, then `Über` to the label
/// now free, `Ärger`): each key is stale, and `Ärger`'s right key (`ärger`) is held by `Ö`, whose
/// own right key (`ö`) is free. The start-up repair corrects such a chain; a write does not: a new
/// tag `Über` is a 409, and a post given `über` a 422, saying that `Ärger` "is the tag "Ö" in
/// another case: rename or delete one of these two tags first", which is false (Ö is not Ärger in
/// any case), and nothing needs a person: both keys can be corrected.
#[tokio::test]
async fn a_chain_of_stale_keys_does_not_refuse_a_write() {
    let app = spawn_app().await;
    app.create_post(json!({
        "title": "P", "slug": "p", "tags": ["Über", "Ärger"], "published": true
    }))
    .await;
    old_node_renames(&app, "Ärger", "Ö").await;
    old_node_renames(&app, "Über", "Ärger").await;
    assert_eq!(keys(&app).await, ["1|Ärger|über", "2|Ö|ärger"]);

    let (status, body) = app
        .api_call(
            Method::POST,
            "/posts",
            Some(&json!({ "title": "Q", "slug": "q", "tags": ["über"], "published": true })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["tags"], json!(["über"]), "{body}");
    let (status, body) = app
        .api_call(Method::POST, "/tags", Some(&json!({ "label": "Ö" })))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "Ö exists: {body}");
    assert_eq!(
        keys(&app).await,
        ["1|Ärger|ärger", "2|Ö|ö", "3|über|über"],
        "both stale keys corrected"
    );
}

/// A tag renamed by an old node (`Über` to `Ärger`, its key left `über`) while a tag `ärger`
/// exists: the refusal of `über` says "rename or delete one of these two tags first". Renaming
/// `ärger` to `Über` is renaming one of them, and leaves both labels' keys free for their tags;
/// it is refused with that same message (the stale tag's right key is the key of the tag being
/// renamed away from it), so the message asks for what was just done.
#[tokio::test]
async fn renaming_the_tag_a_stale_key_s_message_names_is_not_refused_by_that_message() {
    let app = spawn_app().await;
    app.create_post(json!({
        "title": "P", "slug": "p", "tags": ["Über", "ärger"], "published": true
    }))
    .await;
    old_node_renames(&app, "Über", "Ärger").await;
    let lower = id_of(&app, "ärger").await;
    let (status, body) = app
        .api_call(
            Method::PATCH,
            &format!("/tags/{lower}"),
            Some(&json!({ "label": "Über" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(keys(&app).await, ["1|Ärger|ärger", "2|Über|über"]);
}

/// A tag saved before labels were NFC (`cafe` + U+0301, its key the NFC `café`) has its page at its
/// exact label (hardening f15, and the fix of the self-redirect). Once an old node renames another
/// tag to the NFC `café` (its key left stale, its right key taken by the first tag), the first
/// tag's address (`/tags/cafe%CC%81`, the one the Tags page links to) shows the other tag: the
/// page looks the NFC label up, finds the other tag labelled exactly so, and serves it there, as
/// the asked label's NFC is its label.
#[tokio::test]
async fn a_tag_s_exact_label_is_its_own_page_not_the_page_of_its_nfc_form() {
    let app = spawn_app().await;
    app.create_post(json!({
        "title": "Legacy post", "slug": "legacy", "tags": ["Zorn"], "published": true
    }))
    .await;
    app.create_post(json!({
        "title": "Renamed post", "slug": "renamed", "tags": ["Ärger"], "published": true
    }))
    .await;
    // The tag as saved before labels were NFC, with the key the migration gave it.
    app.db
        .execute_unprepared(
            "UPDATE tags SET label = 'cafe\u{301}', label_key = 'caf\u{e9}' WHERE label = 'Zorn'",
        )
        .await
        .unwrap();
    old_node_renames(&app, "Ärger", "caf\u{e9}").await;

    let (_, index) = app.get_text("/tags").await;
    assert!(index.contains("/tags/cafe%CC%81"), "{index}");
    let response = app.get("/tags/cafe%CC%81").await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("Legacy post") && !html.contains("Renamed post"),
        "the page at the legacy tag's exact label: {html}"
    );
}

/// A post carrying both tags of a pair that differ only in case (a tag renamed by an old node,
/// `Über` to `Ärger`, beside a tag `ärger`: the pair the refusal messages ask a person to sort
/// out) is saved again with the very tags it shows: the post's parse keeps one label per key, so
/// `Ärger` is dropped and the post loses that tag, with nothing said.
#[tokio::test]
async fn a_post_saved_with_its_own_tags_keeps_them() {
    let app = spawn_app().await;
    app.create_post(json!({
        "title": "P", "slug": "p", "tags": ["Über", "ärger"], "published": true
    }))
    .await;
    old_node_renames(&app, "Über", "Ärger").await;
    let shown = tags_of(&app, "p").await;
    assert_eq!(shown, json!(["ärger", "Ärger"]));
    let (status, body) = app
        .api_call(Method::PATCH, "/posts/p", Some(&json!({ "tags": shown })))
        .await;
    assert!(status.is_success(), "{status}: {body}");
    assert_eq!(
        tags_of(&app, "p").await,
        shown,
        "the post saved with its own tags: {body}"
    );
}

// What held.

/// A big table at start-up: 6000 tags, 2000 of them stale in one chain, listed so that each can
/// be corrected only after the one after it (`Ä{i}` holds `ä{i+1}`, the right key of the next);
/// and 500 whose right key is another tag's. The primary starts, corrects the chain, leaves the
/// 500, and writes nothing else.
#[tokio::test]
async fn the_start_up_repair_on_a_big_table_with_a_long_chain() {
    use migration::MigratorTrait;
    let dir = crate::helpers::new_dir();
    let url = format!("sqlite://{}?mode=rwc", dir.join("blog.db").display());
    let old = sea_orm::Database::connect(&url).await.unwrap();
    migration::Migrator::up(&old, None).await.unwrap();
    let mut rows = Vec::new();
    let chain = 2000;
    for i in 0..chain {
        // `Ä{i}`'s right key is `ä{i}`, held by `Ä{i-1}`; the last holds a key no label has.
        let key = if i + 1 == chain {
            "zz-end".to_owned()
        } else {
            format!("ä{}", i + 1)
        };
        rows.push(format!(
            "({}, 'Ä{i}', '{key}', '2026-11-29T00:00:00Z')",
            chain - i
        ));
    }
    for i in 0..500 {
        // `Ö{i}` (stale) and `ö{i}` (right): two tags in two cases, left as they are.
        rows.push(format!(
            "({}, 'Ö{i}', 'stale-{i}é', '2026-11-29T00:00:00Z')",
            10_000 + 2 * i
        ));
        rows.push(format!(
            "({}, 'ö{i}', 'ö{i}', '2026-11-29T00:00:00Z')",
            10_001 + 2 * i
        ));
    }
    for i in 0..3000 {
        rows.push(format!(
            "({}, 'tag-{i}', 'tag-{i}', '2026-11-29T00:00:00Z')",
            20_000 + i
        ));
    }
    // The chain's first link (`Ä0`, whose right key `ä0` is free) has the highest id.
    for chunk in rows.chunks(500) {
        old.execute_unprepared(&format!(
            "INSERT INTO tags (id, label, label_key, created_at) VALUES {}",
            chunk.join(", ")
        ))
        .await
        .unwrap();
    }
    old.close().await.unwrap();

    let app = crate::helpers::spawn_app_in(dir, &[]).await.unwrap();
    let count = |sql: &'static str| {
        let db = app.db.clone();
        async move {
            db.query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                sql,
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap()
        }
    };
    assert_eq!(count("SELECT count(*) AS n FROM tags").await, 6000);
    assert_eq!(
        count(
            "SELECT count(*) AS n FROM tags WHERE label LIKE 'Ä%' \
             AND label_key = 'ä' || substr(label, 2)"
        )
        .await,
        chain as i64
    );
    assert_eq!(
        count("SELECT count(*) AS n FROM tags WHERE label_key LIKE 'stale-%'").await,
        500
    );
    // A chain link in another case finds its tag; a tag left stale keeps its page.
    let post = app
        .create_post(json!({
            "title": "P", "slug": "p", "tags": ["ä1999", "ä0", "Ö7", "ö7"], "published": true
        }))
        .await;
    let mut tags: Vec<&str> = post["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort();
    assert_eq!(tags, ["Ä0", "Ä1999", "Ö7"], "{post}");
}

/// A post saved again through its edit form keeps a stale tag (its exact label comes back as
/// typed), and an old replica's input naming a stale tag by its exact label and its old label
/// gets the stale tag and a new tag of the old label (the stale key corrected first), in one
/// write, with no duplicate: a post never doubles a tag. The tag pages then redirect once at
/// most, to pages that answer.
#[tokio::test]
async fn stale_tags_on_posts_stay_single_and_their_pages_settle_in_one_hop() {
    let app = spawn_app().await;
    app.create_post(json!({
        "title": "P", "slug": "p", "tags": ["Über", "go"], "published": true
    }))
    .await;
    old_node_renames(&app, "Über", "Ärger").await;
    let (status, body) = app
        .api_call(
            Method::PATCH,
            "/posts/p",
            Some(&json!({ "tags": ["Ärger", "go", "über", "ÜBER", "Go"] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(tags_of(&app, "p").await, json!(["go", "Ärger", "über"]));
    assert_eq!(
        keys(&app).await,
        ["1|Ärger|ärger", "2|go|go", "3|über|über"]
    );
    for (path, to) in [
        ("/tags/%C3%84rger", None),
        ("/tags/%C3%84RGER", Some("/tags/%C3%84rger")),
        ("/tags/%C3%9CBER", Some("/tags/%C3%BCber")),
        ("/tags/u%CC%88ber", None),
    ] {
        let response = app.get(path).await;
        match to {
            None => assert_eq!(response.status(), StatusCode::OK, "{path}"),
            Some(to) => {
                assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT, "{path}");
                assert_eq!(location(response.headers()), to, "{path}");
                assert_eq!(app.get(to).await.status(), StatusCode::OK, "{to}");
            }
        }
    }
}

/// Two creates of `Über` at once, while a stale tag holds `über`: one tag made, the other a 409
/// (never a 500), and the stale tag's key corrected once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_at_once_behind_a_stale_key_make_one_tag() {
    let app = spawn_app().await;
    for round in 0..5 {
        let (old, new) = (format!("Über{round}"), format!("Ärger{round}"));
        app.create_tag(&old).await;
        old_node_renames(&app, &old, &new).await;
        let body = json!({ "label": old });
        let ((s1, b1), (s2, b2)) = tokio::join!(
            app.api_call(Method::POST, "/tags", Some(&body)),
            app.api_call(Method::POST, "/tags", Some(&body)),
        );
        let mut statuses = [s1, s2];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::CREATED, StatusCode::CONFLICT],
            "{b1} {b2}"
        );
    }
    let rows = keys(&app).await;
    assert_eq!(rows.len(), 10, "{rows:?}");
    for round in 0..5 {
        assert!(
            rows.iter()
                .any(|r| r.ends_with(&format!("|Ärger{round}|ärger{round}"))),
            "{rows:?}"
        );
    }
}
