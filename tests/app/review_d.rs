//! Review D: the body saved in NFC, CJK words led by a Latin letter (instr), the 200-character cut.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, api_search, encoded, spawn_app};

async fn post(app: &TestApp, slug: &str, body: &str) {
    app.create_post(json!({ "slug": slug, "title": slug, "body": body, "published": true }))
        .await;
}

/// Cost: a CJK word NOT led by a Latin letter still takes the GLOB of accent sets. A periodic
/// word ("1o1o…1o京", 199 characters) over periodic bodies ("1o" repeated, ~512 KB) makes GLOB
/// match ~99 sets at each of ~262 000 starts of every body: the text's length times the word's.
#[tokio::test]
async fn revd_periodic_cjk_word_led_by_a_digit_answers_within_10_s() {
    let app = spawn_app().await;
    let body = "1o".repeat(262_000);
    for n in 0..4 {
        post(&app, &format!("big-{n}"), &body).await;
    }
    let word = format!("{}京", "1o".repeat(99));
    assert_eq!(word.chars().count(), 199);
    let started = Instant::now();
    let response = app
        .client
        .get(app.url(&format!("/api/posts?q={}", encoded(&word))))
        .timeout(Duration::from_secs(60))
        .send()
        .await;
    let elapsed = started.elapsed();
    eprintln!("periodic digit-led CJK word over 4 x 512 KB: {elapsed:?}");
    let status = response.map(|r| r.status());
    assert!(
        matches!(status, Ok(StatusCode::OK)) && elapsed < Duration::from_secs(10),
        "q={}…京 (199 chars): status {status:?} after {elapsed:?}",
        &word[..10]
    );
}

/// The same with a CJK character first ("京o京o…都") over "京o" bodies.
#[tokio::test]
async fn revd_periodic_cjk_word_led_by_a_cjk_character_answers_within_10_s() {
    let app = spawn_app().await;
    let body = "京o".repeat(131_000);
    for n in 0..4 {
        post(&app, &format!("big-{n}"), &body).await;
    }
    let word = format!("{}都", "京o".repeat(99));
    let started = Instant::now();
    let response = app
        .client
        .get(app.url(&format!("/api/posts?q={}", encoded(&word))))
        .timeout(Duration::from_secs(60))
        .send()
        .await;
    let elapsed = started.elapsed();
    eprintln!("periodic CJK-led word over 4 x 512 KB: {elapsed:?}");
    let status = response.map(|r| r.status());
    assert!(
        matches!(status, Ok(StatusCode::OK)) && elapsed < Duration::from_secs(10),
        "q=京o京o…都 (199 chars): status {status:?} after {elapsed:?}"
    );
}

/// ł is a Latin letter outside the accent table: its word takes substring_glob. Periodic too.
#[tokio::test]
async fn revd_periodic_cjk_word_led_by_l_stroke_answers_within_10_s() {
    let app = spawn_app().await;
    let body = "ło".repeat(174_000);
    for n in 0..4 {
        post(&app, &format!("big-{n}"), &body).await;
    }
    let word = format!("{}京", "ło".repeat(99));
    let started = Instant::now();
    let response = app
        .client
        .get(app.url(&format!("/api/posts?q={}", encoded(&word))))
        .timeout(Duration::from_secs(60))
        .send()
        .await;
    let elapsed = started.elapsed();
    eprintln!("periodic ł-led CJK word over 4 x 512 KB: {elapsed:?}");
    let status = response.map(|r| r.status());
    assert!(
        matches!(status, Ok(StatusCode::OK)) && elapsed < Duration::from_secs(10),
        "q=łoło…京: status {status:?} after {elapsed:?}"
    );
}

/// A post whose body was saved before bodies were NFC (within the limit as stored) and whose NFC
/// is longer (U+0958, a precomposed Devanagari letter NFC decomposes: 3 bytes to 6): a PATCH of
/// its title alone is refused for the body the author did not touch.
#[tokio::test]
async fn revd_title_patch_of_a_post_saved_before_nfc_is_not_refused_for_its_body() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    post(&app, "legacy", "short").await;
    let body = "\u{958}".repeat(400 * 1024 / 3); // 409 599 bytes stored; NFC: 819 198
    app.db
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Sqlite,
            "UPDATE posts SET body = ? WHERE slug = 'legacy'",
            [body.into()],
        ))
        .await
        .expect("a body as a node before NFC bodies saved it");
    let (status, answer) = app
        .api_call(
            reqwest::Method::PATCH,
            "/posts/legacy",
            Some(&json!({ "title": "Legacy renamed" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "title-only PATCH: {answer}");
}

/// A new body sent within the limit (300 KiB) is refused "at most 512 KiB" because NFC doubles it.
#[tokio::test]
async fn revd_body_sent_within_the_limit_is_not_refused_as_too_long() {
    let app = spawn_app().await;
    let body = "\u{958}".repeat(300 * 1024 / 3);
    assert!(body.len() <= 512 * 1024);
    let (status, answer) = app
        .api_call(
            reqwest::Method::POST,
            "/posts",
            Some(&json!({ "title": "Devanagari", "body": body, "published": true })),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a {} byte body: {answer}",
        body.len()
    );
}

/// The answer of a PATCH that NFC changes: its body and ETag are what is stored and served.
#[tokio::test]
async fn revd_patch_answer_echoes_the_stored_body_and_etag() {
    let app = spawn_app().await;
    post(&app, "echo", "x").await;
    let response = app
        .api(reqwest::Method::PATCH, "/posts/echo")
        .json(&json!({ "body": "Cafe\u{301} \u{2126} \u{F900}" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    let answer: serde_json::Value = response.json().await.unwrap();
    let got = app
        .api(reqwest::Method::GET, "/posts/echo")
        .send()
        .await
        .unwrap();
    let etag_now = got
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    let stored: serde_json::Value = got.json().await.unwrap();
    assert_eq!(answer["body"], stored["body"]);
    assert_eq!(etag, etag_now);
    let response = app
        .api(reqwest::Method::PATCH, "/posts/echo")
        .header("If-Match", etag.unwrap())
        .json(&json!({ "title": "t2" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// The page's note on the 200-character cut follows the text as searched (NFC, trimmed).
#[tokio::test]
async fn revd_search_page_cut_note_follows_the_text_as_searched() {
    let app = spawn_app().await;
    let note = "of the first 200 characters";
    let mut failures = Vec::new();
    // 9 words; sent 9 * 24 = 216 characters decomposed, 9 * 12 = 108 in NFC: no cut.
    let nfd_word = "e\u{301}".repeat(11);
    let nine: Vec<String> = (0..9).map(|n| format!("{nfd_word}{n}")).collect();
    let shortened = nine.join(" ");
    // Whitespace around 9 short words, 300 characters in all: trimmed, no cut.
    let padded = format!(
        "{}{}{}",
        " ".repeat(140),
        "a b c d e f g h i",
        " ".repeat(140)
    );
    // 9 words of U+0958 (NFC: two characters each): 8 * 23 = 184 sent, past 200 once NFC.
    let lengthened = (0..9)
        .map(|n| format!("{}{n}", "\u{958}".repeat(11)))
        .collect::<Vec<_>>()
        .join(" ");
    for (q, cut) in [(&shortened, false), (&padded, false), (&lengthened, true)] {
        let (status, html) = app.get_text(&format!("/search?q={}", encoded(q))).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Only the first 8 words"), "q={q:?}");
        if html.contains(note) != cut {
            failures.push(format!("q={q:?}: note {}", html.contains(note)));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The edit form saves a body in NFC too: a decomposed word is stored composed and found as typed.
#[tokio::test]
async fn revd_edit_form_saves_a_decomposed_body_in_nfc() {
    let app = spawn_app().await;
    post(&app, "form", "x").await;
    app.login().await;
    let (status, html) = app.get_text("/admin/posts/form/edit").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let response =
        crate::helpers::save_with_body(&app, &html, "東京カ\u{3099}ラス and cafe\u{301}").await;
    assert!(response.status().is_redirection() || response.status().is_success());
    let (_, got) = app.api_get("/posts/form").await;
    assert_eq!(got["body"].as_str(), Some("東京ガラス and café"));
    let (slugs, _) = api_search(&app, "ガラス").await;
    assert_eq!(slugs, ["form"]);
}
