//! Review of interruptible reads (the search's long statement inside `interruptible_reads`):
//! searches abandoned by their clients, from the API and the search page, then searches that
//! are waited for.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

/// Sixteen searches that take seconds, from the API and from the search page, all abandoned by
/// their clients at once: each is stopped in SQLite, so the read pool (8 connections) is free
/// again at once, and a search that is then waited for answers, in full and promptly (from
/// both the API and the page), as does the same long search.
#[tokio::test]
async fn review_searches_after_many_abandoned_ones_answer_promptly_and_in_full() {
    let app = spawn_app().await;
    sea_orm::ConnectionTrait::execute_unprepared(
        &app.db,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 48) \
         INSERT INTO posts (slug, title, body, published, published_at, created_at, updated_at) \
         SELECT 'big-' || i, 'Big ' || i, replace(hex(zeroblob(262144)), '00', 'ab c'), 1, \
                '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM n",
    )
    .await
    .expect("the big posts are written");
    app.create_post(json!({ "title": "Zebrafish", "body": "On zebrafish.", "published": true }))
        .await;
    let q = "東京 大阪 京都 札幌 福岡 神戸 横浜 名古屋";
    let encoded = percent_encoding::utf8_percent_encode(q, percent_encoding::NON_ALPHANUMERIC);
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let abandoned = (0..16).map(|i| {
        let url = match i % 2 {
            0 => app.url(&format!("/api/posts?q={encoded}")),
            _ => app.url(&format!("/search?q={encoded}")),
        };
        let client = impatient.clone();
        async move { client.get(url).send().await }
    });
    for gave_up in futures::future::join_all(abandoned).await {
        assert!(
            gave_up.as_ref().is_err_and(reqwest::Error::is_timeout),
            "the search was to take longer than its client waits: {gave_up:?}"
        );
    }
    // Promptly: well under the time of one of those searches run to its end.
    let started = Instant::now();
    let (status, page) = app.api_get("/posts?q=zebrafish").await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"][0]["slug"], "zebrafish", "{page}");
    let (status, html) = app.get_text("/search?q=zebrafish").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(r#"<a href="/posts/zebrafish">"#), "{html}");
    assert!(
        took < Duration::from_secs(1),
        "a quick search after sixteen abandoned ones took {took:?}"
    );
    // The long search itself, waited for, answers in full (nothing found).
    let (status, page) = app.api_get(&format!("/posts?q={encoded}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total_items"], 0, "{page}");
}
