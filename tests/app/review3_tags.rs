//! A third review of case-insensitive tags, after the fixes of the second (NFC keys, a tag's page
//! at its exact label, stale keys skipped by look-ups and corrected where they block a write, the
//! primary's start-up repair, typed labels longer than stored ones): what breaks them, and what
//! holds.
//!
//! Premise changed since: the defects it found were in the handling of stale keys (a tag renamed
//! by a node of before the keys, its key left as it was); the database now refuses such a rename
//! (except an ASCII case change, whose key stays right) and that handling is gone. Each test
//! checks that the old node's rename is refused and changes nothing, then the property it was
//! about, with the renames done by the blog itself.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{location, spawn_app, tag_id, tags_of};

/// A tag typed in another case of its label is that tag, never a second one. The review had an
/// old node rename `Über` to `Ärger` (key left `über`), after which `ärger` made a second tag;
/// that rename is refused now. Renamed by the blog, `ärger` and `ÄRGER` are the tag `Ärger`.
#[tokio::test]
async fn a_tag_renamed_by_an_old_node_is_its_new_label_in_another_case() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "P", "slug": "p", "tags": ["Über"], "published": true }))
        .await;
    let before = app.tag_rows().await;
    app.old_node_rename_is_refused("Über", "Ärger").await;
    assert_eq!(app.tag_rows().await, before);
    let id = tag_id(&app, "Über").await;
    let (status, body) = app
        .api_call(
            Method::PATCH,
            &format!("/tags/{id}"),
            Some(&json!({ "label": "Ärger" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

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
    assert_eq!(app.tag_rows().await, [format!("{id}|Ärger|ärger")]);
}

/// Renames one after the other (`Ärger` to `Ö`, then `Über` to the label now free, `Ärger`) leave
/// every key right and refuse no later write. The review had an old node make them (a chain of
/// stale keys, then a write refused with a false message); an old node's are refused now.
#[tokio::test]
async fn a_chain_of_stale_keys_does_not_refuse_a_write() {
    let app = spawn_app().await;
    app.create_post(json!({
        "title": "P", "slug": "p", "tags": ["Über", "Ärger"], "published": true
    }))
    .await;
    let before = app.tag_rows().await;
    app.old_node_rename_is_refused("Ärger", "Ö").await;
    app.old_node_rename_is_refused("Über", "Ärger").await;
    assert_eq!(app.tag_rows().await, before);
    for (from, to) in [("Ärger", "Ö"), ("Über", "Ärger")] {
        let id = tag_id(&app, from).await;
        let (status, body) = app
            .api_call(
                Method::PATCH,
                &format!("/tags/{id}"),
                Some(&json!({ "label": to })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{from} -> {to}: {body}");
    }
    assert_eq!(app.tag_rows().await, ["1|Ärger|ärger", "2|Ö|ö"]);

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
        .api_call(Method::POST, "/tags", Some(&json!({ "label": "ö" })))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "Ö exists: {body}");
    assert_eq!(
        app.tag_rows().await,
        ["1|Ärger|ärger", "2|Ö|ö", "3|über|über"]
    );
}

/// Two tags `Über` and `ärger`: the review had an old node rename `Über` to `Ärger` (a pair in
/// two cases), then a rename meant to sort the pair out refused by the very message that asked
/// for it. That rename is refused now; the blog's renames that free a key for another tag pass,
/// and those onto another tag's label in another case are a 409 that changes nothing.
#[tokio::test]
async fn renaming_the_tag_a_stale_key_s_message_names_is_not_refused_by_that_message() {
    let app = spawn_app().await;
    app.create_post(json!({
        "title": "P", "slug": "p", "tags": ["Über", "ärger"], "published": true
    }))
    .await;
    app.old_node_rename_is_refused("Über", "Ärger").await;
    let upper = tag_id(&app, "Über").await;
    let lower = tag_id(&app, "ärger").await;
    let rename = |id: i64, to: &'static str| {
        let app = &app;
        async move {
            app.api_call(
                Method::PATCH,
                &format!("/tags/{id}"),
                Some(&json!({ "label": to })),
            )
            .await
        }
    };
    for (id, to) in [(lower, "ÜBER"), (upper, "Ärger")] {
        let (status, body) = rename(id, to).await;
        assert_eq!(status, StatusCode::CONFLICT, "{to}: {body}");
    }
    assert_eq!(
        app.tag_rows().await,
        [format!("{upper}|Über|über"), format!("{lower}|ärger|ärger")]
    );
    for (id, to) in [(lower, "Zorn"), (upper, "Ärger"), (lower, "Über")] {
        let (status, body) = rename(id, to).await;
        assert_eq!(status, StatusCode::OK, "{to}: {body}");
    }
    assert_eq!(
        app.tag_rows().await,
        [format!("{upper}|Ärger|ärger"), format!("{lower}|Über|über")]
    );
    assert_eq!(tags_of(&app, "p").await, json!(["Ärger", "Über"]));
}

/// A tag saved before labels were NFC (`cafe` + U+0301, its key the NFC `café`) has its page at its
/// exact label (hardening f15, and the fix of the self-redirect), even beside a tag whose label
/// is the NFC `café`. The review had an old node rename another tag to `café` (its key left
/// stale); that rename is refused now, and so is the blog's (the key is the legacy tag's).
#[tokio::test]
async fn a_tag_s_exact_label_is_its_own_page_not_the_page_of_its_nfc_form() {
    use sea_orm::ConnectionTrait;
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
    let before = app.tag_rows().await;
    app.old_node_rename_is_refused("Ärger", "caf\u{e9}").await;
    let arger = tag_id(&app, "Ärger").await;
    let (status, body) = app
        .api_call(
            Method::PATCH,
            &format!("/tags/{arger}"),
            Some(&json!({ "label": "caf\u{e9}" })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(app.tag_rows().await, before);

    let (_, index) = app.get_text("/tags").await;
    assert!(index.contains("/tags/cafe%CC%81"), "{index}");
    let response = app.get("/tags/cafe%CC%81").await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("Legacy post") && !html.contains("Renamed post"),
        "the page at the legacy tag's exact label: {html}"
    );
    let response = app.get("/tags/%C3%84rger").await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("Renamed post") && !html.contains("Legacy post"),
        "{html}"
    );
}

/// A post saved again with the very tags it shows keeps them. The review had an old node rename
/// `Über` to `Ärger` beside a tag `ärger` (a post then showed both, and lost one when saved); that
/// rename is refused now, so no post shows two tags of one key.
#[tokio::test]
async fn a_post_saved_with_its_own_tags_keeps_them() {
    let app = spawn_app().await;
    app.create_post(json!({
        "title": "P", "slug": "p", "tags": ["Über", "ärger"], "published": true
    }))
    .await;
    app.old_node_rename_is_refused("Über", "Ärger").await;
    let shown = tags_of(&app, "p").await;
    assert_eq!(shown, json!(["ärger", "Über"]));
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

/// A big table: 3000 tags. The review checked the primary's start-up repair of a long chain of
/// stale keys on it; that repair is gone, as an old node can make no stale key: its rename of
/// 2000 non-ASCII labels in one statement (`ä{i}` to `Ä{i}`) is refused whole, nothing written,
/// and its ASCII case change of the others (`tag-{i}` to `TAG-{i}`) passes, every key right.
#[tokio::test]
async fn an_old_node_s_bulk_rename_on_a_big_table_is_refused_whole() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    let mut rows = Vec::new();
    for i in 0..2000 {
        rows.push(format!(
            "({}, 'ä{i}', 'ä{i}', '2026-11-29T00:00:00Z')",
            i + 1
        ));
    }
    for i in 0..1000 {
        rows.push(format!(
            "({}, 'tag-{i}', 'tag-{i}', '2026-11-29T00:00:00Z')",
            10_000 + i
        ));
    }
    for chunk in rows.chunks(500) {
        app.db
            .execute_unprepared(&format!(
                "INSERT INTO tags (id, label, label_key, created_at) VALUES {}",
                chunk.join(", ")
            ))
            .await
            .unwrap();
    }
    let before = app.tag_rows().await;
    assert_eq!(before.len(), 3000);
    let err = app
        .db
        .execute_unprepared("UPDATE tags SET label = 'Ä' || substr(label, 2) WHERE label LIKE 'ä%'")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("renamed by code of before case-insensitive tags"),
        "{err}"
    );
    assert_eq!(app.tag_rows().await, before);
    let done = app
        .db
        .execute_unprepared("UPDATE tags SET label = upper(label) WHERE label LIKE 'tag-%'")
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1000);
    let after = app.tag_rows().await;
    assert!(
        after.contains(&"10007|TAG-7|tag-7".to_owned()),
        "{:?}",
        &after[2000..2010]
    );
    let post = app
        .create_post(json!({
            "title": "P", "slug": "p", "tags": ["Ä1999", "ä0", "tag-7"], "published": true
        }))
        .await;
    let mut tags: Vec<&str> = post["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort();
    assert_eq!(tags, ["TAG-7", "ä0", "ä1999"], "{post}");
    assert_eq!(app.tag_rows().await.len(), 3000);
}

/// A post given one tag in several cases gets it once, and the tag pages redirect once at most,
/// to pages that answer. The review checked this with a tag an old node had renamed (`Über` to
/// `Ärger`); that rename is refused now, and the tag is still `Über`.
#[tokio::test]
async fn a_tag_in_several_cases_on_a_post_stays_single_and_its_pages_settle_in_one_hop() {
    let app = spawn_app().await;
    app.create_post(json!({
        "title": "P", "slug": "p", "tags": ["Über", "go"], "published": true
    }))
    .await;
    app.old_node_rename_is_refused("Über", "Ärger").await;
    let (status, body) = app
        .api_call(
            Method::PATCH,
            "/posts/p",
            Some(&json!({ "tags": ["Ärger", "go", "über", "ÜBER", "Go"] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(tags_of(&app, "p").await, json!(["Ärger", "go", "Über"]));
    assert_eq!(
        app.tag_rows().await,
        ["1|Über|über", "2|go|go", "3|Ärger|ärger"]
    );
    for path in [
        "/tags/%C3%84rger",
        "/tags/%C3%84RGER",
        "/tags/%C3%9CBER",
        "/tags/%C3%BCber",
        "/tags/u%CC%88ber",
        "/tags/%C3%9Cber",
    ] {
        let response = app.get(path).await;
        if response.status() == StatusCode::PERMANENT_REDIRECT {
            let to = location(response.headers()).to_owned();
            assert_eq!(
                app.get(&to).await.status(),
                StatusCode::OK,
                "{path} -> {to}"
            );
        } else {
            assert_eq!(response.status(), StatusCode::OK, "{path}");
        }
    }
}

/// Two creates of one new label at once: one tag made, the other a 409 (never a 500). The review
/// had a stale tag hold the label's key (an old node's rename of `Über{round}` to
/// `Ärger{round}`); that rename is refused now, and `Ärger{round}` is a new label.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_at_once_of_a_new_label_make_one_tag() {
    let app = spawn_app().await;
    for round in 0..5 {
        let (old, new) = (format!("Über{round}"), format!("Ärger{round}"));
        app.create_tag(&old).await;
        app.old_node_rename_is_refused(&old, &new).await;
        let body = json!({ "label": new });
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
    let rows = app.tag_rows().await;
    assert_eq!(rows.len(), 10, "{rows:?}");
    for round in 0..5 {
        for label in [format!("Über{round}"), format!("Ärger{round}")] {
            assert!(
                rows.iter().any(|r| r.contains(&format!("|{label}|"))),
                "{rows:?}"
            );
        }
    }
}
