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
