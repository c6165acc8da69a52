//! Review four: the request timeout's 503 (`layers::request_timeout`), its `Connection: close`,
//! its headers and its body, in both areas. Each test holds the writer with a transaction on
//! `app.db`, so that a write waits past `--request-timeout-ms 1000`.

use std::time::Duration;

use base64::Engine;
use reqwest::StatusCode;
use reqwest::header::COOKIE;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, bare_client, cookie_pairs, csrf_of, host_of, login_cookies, raw_exchange,
    spawn_app_with,
};

async fn app() -> TestApp {
    spawn_app_with(&["--request-timeout-ms", "1000", "--search-timeout-ms", "500"])
        .await
        .unwrap()
}

fn connection(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("connection")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The site's page for a form's write cut by the timeout closes its connection too, as the API's
/// answer does (docs/reference.md: "in the API's JSON shape or as the site's error page, and its
/// connection is closed"). The page is the one a browser gets, the client the change is for.
#[tokio::test]
async fn review_four_the_sites_page_for_a_cut_write_closes_its_connection() {
    let app = app().await;
    app.login().await;
    let csrf = app.csrf_for("/admin/tags").await;
    let held = sea_orm::TransactionTrait::begin(&app.db).await.unwrap();
    let response = app
        .post_form("/admin/tags", &[("csrf", &csrf), ("label", "later")])
        .await;
    drop(held);
    let status = response.status();
    let close = connection(&response);
    let headers = format!("{:?}", response.headers());
    let html = response.text().await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{html}");
    assert!(html.contains("may or may not have been saved"), "{html}");
    assert_eq!(close.as_deref(), Some("close"), "{headers}");
}

/// The same for a sign-in cut by the timeout (its session's write waits).
#[tokio::test]
async fn review_four_a_cut_sign_in_page_closes_its_connection() {
    let app = app().await;
    let (status, html) = app.get_text("/admin/login").await;
    assert_eq!(status, StatusCode::OK);
    let csrf = csrf_of(&html);
    let held = sea_orm::TransactionTrait::begin(&app.db).await.unwrap();
    let response = app
        .post_form(
            "/admin/login",
            &[
                ("csrf", &csrf),
                ("password", &app.password),
                ("next", "/admin"),
            ],
        )
        .await;
    drop(held);
    let status = response.status();
    let close = connection(&response);
    let headers = format!("{:?}", response.headers());
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(close.as_deref(), Some("close"), "{headers}");
}

/// `Connection: close` honoured: a second request pipelined on the connection of an API write
/// cut by the timeout is not answered on it (one response, then the server closes).
#[tokio::test]
async fn review_four_no_second_request_is_served_on_a_cut_api_writes_connection() {
    let app = app().await;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("admin:{}", app.password));
    let host = host_of(&app);
    let body = json!({ "label": "late" }).to_string();
    let request = format!(
        "POST /api/tags HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}\
         GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n",
        body.len()
    );
    let held = sea_orm::TransactionTrait::begin(&app.db).await.unwrap();
    let out = raw_exchange(&host, request.as_bytes(), Duration::from_secs(5)).await;
    drop(held);
    assert!(out.starts_with("HTTP/1.1 503"), "{out}");
    assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
}

/// The same for the site's page: a form's write cut by the timeout, then a GET pipelined on the
/// same connection (as a browser reuses a keep-alive connection).
#[tokio::test]
async fn review_four_no_second_request_is_served_on_a_cut_form_writes_connection() {
    let app = app().await;
    let cookies = login_cookies(&app).await;
    let page = bare_client()
        .get(app.url("/admin/tags"))
        .header(COOKIE, &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let more = cookie_pairs(&page);
    let cookies = if more.is_empty() {
        cookies
    } else {
        format!("{cookies}; {more}")
    };
    let csrf = csrf_of(&page.text().await.unwrap());
    let host = host_of(&app);
    let form = format!("csrf={}&label=later", crate::helpers::encoded(&csrf));
    let request = format!(
        "POST /admin/tags HTTP/1.1\r\nHost: {host}\r\nCookie: {cookies}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}\
         GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n",
        form.len()
    );
    let held = sea_orm::TransactionTrait::begin(&app.db).await.unwrap();
    let out = raw_exchange(&host, request.as_bytes(), Duration::from_secs(5)).await;
    drop(held);
    assert!(out.starts_with("HTTP/1.1 503"), "{out}");
    assert!(out.contains("may or may not have been saved"), "{out}");
    assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
}

/// No Retry-After on a cut write (it must be looked for first), in either area; and the API's
/// answer says its outcome is unknown the way every other such answer does
/// (docs/forwarding.md: "unknown ... HTTP: 503 with `"outcome": "unknown"`"; `Error::Unavailable`,
/// the other 503 `{"error"}` without it, means nothing was saved).
#[tokio::test]
async fn review_four_a_cut_api_write_says_its_outcome_is_unknown_like_other_unknowns() {
    let app = app().await;
    app.login().await;
    let csrf = app.csrf_for("/admin/tags").await;
    let held = sea_orm::TransactionTrait::begin(&app.db).await.unwrap();
    let api = app
        .api(reqwest::Method::POST, "/tags")
        .json(&json!({ "label": "late" }))
        .send()
        .await
        .unwrap();
    let page = app
        .post_form("/admin/tags", &[("csrf", &csrf), ("label", "later")])
        .await;
    drop(held);
    for response in [&api, &page] {
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            response.headers().get("retry-after").is_none(),
            "{:?}",
            response.headers()
        );
    }
    let body: Value = api.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("may or may not"),
        "{body}"
    );
    assert_eq!(body["outcome"], "unknown", "{body}");
}
