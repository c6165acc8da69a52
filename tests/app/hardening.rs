//! Hardening findings of the pen test of issue 10 (numbered as there): draft tags, readiness,
//! headers, pagination, migrations, HTTP limits, input, error shapes, metrics, request ids.

use std::time::Duration;

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{
    PASSWORD, bare_client, cookie_pairs, csrf_of, host_of, new_dir, raw_exchange, spawn_app,
    spawn_app_in, spawn_app_with,
};

// --- 7: tags of drafts ----------------------------------------------------------------------------

#[tokio::test]
async fn f07_tags_used_only_by_drafts_are_not_public() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Plan", "tags": ["secret-launch-q3", "shared"] }))
        .await;
    app.create_post(json!({ "title": "Out", "tags": ["shared"], "published": true }))
        .await;
    let (status, tags) = app.api_get("/tags").await;
    assert_eq!(status, StatusCode::OK);
    let labels: Vec<&str> = tags
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["shared"], "{tags}");
    assert_eq!(
        tags[0]["post_count"], 1,
        "only published posts count: {tags}"
    );
    let (status, page) = app.get_text("/tags").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("secret-launch-q3"), "{page}");
    let (status, _) = app.get_text("/tags/secret-launch-q3").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

// --- 8: readiness and a database that changed under the node --------------------------------------

#[tokio::test]
async fn f08_readiness_fails_and_writes_are_refused_when_the_database_file_is_gone() {
    let app = spawn_app().await;
    let (status, _) = app.get_text("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    std::fs::remove_file(app.dir.join("blog.db")).unwrap();
    let (status, body) = app.get_text("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, body) = app
        .api_call(Method::POST, "/tags", Some(&json!({ "label": "lost" })))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["error"].as_str().is_some(), "{body}");
    // A form gets the error page, with the reason.
    let response = app.post_form("/admin/tags", &[("label", "lost")]).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let html = response.text().await.unwrap();
    assert!(html.contains("deleted while the node ran"), "{html}");
}

/// Whether this process runs as root (which ignores file modes, so the test also sets the
/// immutable attribute).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

#[tokio::test]
async fn f08_readiness_fails_when_the_database_is_read_only() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    let db = app.dir.join("blog.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    let immutable = running_as_root()
        && std::process::Command::new("chattr")
            .arg("+i")
            .arg(&db)
            .status()
            .is_ok_and(|s| s.success());
    let (status, body) = app.get_text("/readyz").await;
    if immutable {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&db)
            .status();
    }
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("read-only"), "{body}");
}

// --- 9: security headers and Secure cookies -----------------------------------------------------

pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

#[tokio::test]
async fn f09_every_response_has_security_headers() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/admin/login",
        "/api/tags",
        "/nope",
        "/static/style.css",
    ] {
        let response = app.get(path).await;
        let headers = response.headers();
        assert_eq!(headers["content-security-policy"], CSP, "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "same-origin", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
    }
    for path in ["/admin/login", "/admin"] {
        let response = app.get(path).await;
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store", "{path}");
    }
}

#[tokio::test]
async fn f09_cookies_are_secure_when_the_public_url_is_https() {
    let app = spawn_app_with(&["--public-url", "https://blog.example"])
        .await
        .expect("starts with a public URL");
    let client = bare_client();
    let page = client.get(app.url("/admin/login")).send().await.unwrap();
    let anon = cookie_pairs(&page);
    for cookie in page.headers().get_all(SET_COOKIE) {
        assert!(cookie.to_str().unwrap().contains("; Secure"), "{cookie:?}");
    }
    let csrf = csrf_of(&page.text().await.unwrap());
    let response = client
        .post(app.url("/admin/login"))
        .header(COOKIE, &anon)
        .header("origin", "https://blog.example")
        .form(&[("csrf", csrf.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookies: Vec<_> = response.headers().get_all(SET_COOKIE).iter().collect();
    assert!(!cookies.is_empty());
    for cookie in cookies {
        assert!(cookie.to_str().unwrap().contains("; Secure"), "{cookie:?}");
    }
}

// --- 11: pagination -------------------------------------------------------------------------------

#[tokio::test]
async fn f11_pages_past_the_last_are_404_and_huge_pages_do_not_panic() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "One", "tags": ["t"], "published": true }))
        .await;
    app.login().await;
    for path in [
        "/?page=1000000000000000000",
        "/?page=18446744073709551615",
        "/?page=99",
        "/tags/t?page=1000000000000000000",
        "/admin?page=1000000000000000000",
    ] {
        let (status, html) = app.get_text(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {html}");
    }
    for path in ["/posts?page=1000000000000000000", "/posts?page=2"] {
        let (status, body) = app.api_get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (status, _) = app.get_text("/?page=1").await;
    assert_eq!(status, StatusCode::OK);
}

// --- 12: migrations started twice ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f12_two_servers_migrating_one_fresh_file_both_start() {
    for _ in 0..3 {
        let dir = new_dir();
        let (a, b) = tokio::join!(spawn_app_in(dir.clone(), &[]), spawn_app_in(dir, &[]));
        let (a, b) = (a.expect("first starts"), b.expect("second starts"));
        assert_eq!(a.api_get("/tags").await.0, StatusCode::OK);
        drop(b);
        drop(a);
    }
}

// --- 14: timeouts and the connection limit ------------------------------------------------------

#[tokio::test]
async fn f14_slow_headers_and_idle_connections_are_closed() {
    let app = spawn_app_with(&["--header-read-timeout-ms", "300"])
        .await
        .expect("starts with timeouts");
    let addr = host_of(&app);
    // Partial headers: closed without a full response within the bound.
    let started = std::time::Instant::now();
    let out = raw_exchange(
        &addr,
        b"GET / HTTP/1.1\r\nHost: x\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(3), "{out}");
    assert!(!out.contains("200 OK"), "{out}");
    // An idle keep-alive connection is closed too (the header-read timeout runs while the
    // connection waits for its next request).
    let started = std::time::Instant::now();
    let out = raw_exchange(
        &addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "idle connection kept open"
    );
}

#[tokio::test]
async fn f14_connections_beyond_the_limit_get_a_503() {
    let app = spawn_app_with(&["--max-connections", "3"])
        .await
        .expect("starts with a connection limit");
    let addr = host_of(&app);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        held.push(stream);
    }
    let out = raw_exchange(
        &addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 503"), "{out}");
    drop(held);
    // Once they are gone, the server answers again (the slots free as connections close).
    let mut answered = false;
    for _ in 0..100 {
        let out = raw_exchange(
            &addr,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Duration::from_secs(5),
        )
        .await;
        if out.starts_with("HTTP/1.1 200") {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answered);
}

// --- 15: labels and titles ------------------------------------------------------------------------

#[tokio::test]
async fn f15_labels_are_nfc_and_invisible_or_dot_labels_are_refused() {
    let app = spawn_app().await;
    app.create_tag("caf\u{e9}").await;
    let (status, body) = app
        .api_call(
            Method::POST,
            "/tags",
            Some(&json!({ "label": "cafe\u{301}" })),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "NFD is the same label: {body}"
    );
    for bad in [
        "\u{200b}",
        "\u{200b}\u{200c}",
        "\u{202e}abc",
        "a\u{feff}",
        "\u{2028}",
        ".",
        "..",
    ] {
        let (status, body) = app
            .api_call(Method::POST, "/tags", Some(&json!({ "label": bad })))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}: {body}");
    }
    for bad in ["nul\u{0}", "bell\u{7}", "rtl\u{202e}"] {
        let (status, body) = app
            .api_call(
                Method::POST,
                "/posts",
                Some(&json!({ "title": bad, "slug": "x" })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}: {body}");
    }
    assert_eq!(app.tag_labels().await, ["caf\u{e9}"]);
    // The NFD spelling finds the tag's page (which a tag has once a published post carries it).
    app.create_post(json!({ "title": "P", "tags": ["caf\u{e9}"], "published": true }))
        .await;
    let (status, _) = app.get_text("/tags/cafe%CC%81").await;
    assert_eq!(status, StatusCode::OK);
}

// --- 16: error shapes -----------------------------------------------------------------------------

#[tokio::test]
async fn f16_every_api_error_is_json_and_every_page_error_is_html() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Post", "published": true }))
        .await;
    let api_cases: [(Method, &str, Option<&str>, StatusCode); 7] = [
        (
            Method::GET,
            "/api/posts?page=abc",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            "/api/tags/abc",
            Some(r#"{"label":"x"}"#),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            "/api/tags",
            None,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (Method::GET, "/api/nothing", None, StatusCode::NOT_FOUND),
        (
            Method::POST,
            "/api/tags",
            Some("{not json"),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            "/api/posts/post",
            Some(r#"{"titel":"typo"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/api/tags",
            Some(r#"{"label":"x","extra":1}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (method, path, body, expected) in api_cases {
        let mut request = app
            .client
            .request(method.clone(), app.url(path))
            .basic_auth("admin", Some(PASSWORD));
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        assert_eq!(status, expected, "{method} {path}: {text}");
        assert_eq!(content_type, "application/json", "{method} {path}: {text}");
        let value: Value = serde_json::from_str(&text).unwrap();
        assert!(
            value["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{text}"
        );
    }
    let (_, post) = app.api_get("/posts/post").await;
    assert_eq!(
        post["title"], "Post",
        "the misspelled patch changed nothing"
    );

    for (method, path, expected) in [
        (Method::GET, "/?page=abc", StatusCode::BAD_REQUEST),
        (Method::DELETE, "/", StatusCode::METHOD_NOT_ALLOWED),
        (Method::GET, "/admin/tags/1", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{method} {path}");
        let content_type = response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/html"),
            "{method} {path}: {content_type}"
        );
        let html = response.text().await.unwrap();
        assert!(
            html.contains("LiteFS Blog"),
            "the site's error page: {html}"
        );
    }

    // Readiness never shows SQL.
    app.db
        .execute_unprepared("DROP TABLE posts_tags; DROP TABLE tags")
        .await
        .unwrap();
    let (status, body) = app.get_text("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!body.contains("no such table"), "{body}");
}

// --- 18: metrics ----------------------------------------------------------------------------------

#[tokio::test]
async fn f18_metrics_count_http_requests_by_route_and_status() {
    let app = spawn_app().await;
    app.create_tag("measured").await;
    app.get_text("/tags").await;
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("http_requests_total{")
                && l.contains(r#"route="/api/tags""#)
                && l.contains(r#"status="201""#)),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("http_request_duration_seconds_bucket{")),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE blog_auth_failures_total counter"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE blog_db_errors_total counter"),
        "{metrics}"
    );
}

#[tokio::test]
async fn f19_a_client_request_id_is_echoed_only_when_well_formed() {
    let app = spawn_app().await;
    let good = "abc-123_DEF.456";
    let response = bare_client()
        .get(app.url("/healthz"))
        .header("x-request-id", good)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], good);
    for bad in ["<script>alert(1)</script>".to_owned(), "x".repeat(300)] {
        let response = bare_client()
            .get(app.url("/healthz"))
            .header("x-request-id", &bad)
            .send()
            .await
            .unwrap();
        let echoed = response.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(echoed, bad);
        assert!(!echoed.is_empty());
    }
}

#[tokio::test]
async fn f19_a_taken_port_fails_before_the_database_is_touched() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let dir = new_dir();
    let err = match spawn_app_in(dir.clone(), &["--listen", &port]).await {
        Ok(_) => panic!("started on a taken port"),
        Err(err) => err,
    };
    assert!(err.contains("cannot listen"), "{err}");
    assert!(
        !dir.join("blog.db").exists(),
        "the database was created before the bind failed"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn f19_a_post_has_at_most_twenty_tags() {
    let app = spawn_app().await;
    let tags: Vec<String> = (0..5000).map(|i| format!("t{i}")).collect();
    let (status, body) = app
        .api_call(
            Method::POST,
            "/posts",
            Some(&json!({ "title": "Many", "tags": tags })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["fields"]["tags"].as_str().unwrap().contains("20"),
        "{body}"
    );
    assert_eq!(app.row_counts().await, (0, 0));
}
