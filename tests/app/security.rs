//! The findings of the pen test of issue 10, one test (or a few) per finding, numbered as there.

use std::time::Duration;

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::{Client, Method, StatusCode};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{
    PASSWORD, TestApp, cookie_client, csrf_of, json_of, location, new_dir, spawn_app, spawn_app_in,
    spawn_app_with,
};

/// The `name=value` pairs a response sets, as a `Cookie` header would send them back.
fn cookie_pairs(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A client without a cookie store, so a test can carry cookies by hand.
fn bare_client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// Logs in with a client that keeps no cookies; returns the cookies of the logged-in session.
async fn login_cookies(app: &TestApp) -> String {
    let client = bare_client();
    let page = client.get(app.url("/admin/login")).send().await.unwrap();
    let anon = cookie_pairs(&page);
    let csrf = csrf_of(&page.text().await.unwrap());
    let response = client
        .post(app.url("/admin/login"))
        .header(COOKIE, &anon)
        .form(&[
            ("csrf", csrf.as_str()),
            ("password", PASSWORD),
            ("next", "/admin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let session = cookie_pairs(&response);
    assert!(!session.is_empty(), "login sets a session cookie");
    format!("{anon}; {session}")
}

async fn status_with_cookies(app: &TestApp, path: &str, cookies: &str) -> StatusCode {
    bare_client()
        .get(app.url(path))
        .header(COOKIE, cookies)
        .send()
        .await
        .unwrap()
        .status()
}

/// Sends raw bytes on a new connection and reads until the server closes it (or `wait` passes).
async fn raw_exchange(addr: &str, request: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn host_of(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

// --- 1: the cookie key --------------------------------------------------------------------------

#[tokio::test]
async fn f01_the_cookie_key_is_random_and_kept_in_the_database() {
    // Two nodes with the same password and no secrets: a cookie of one means nothing to the other.
    let a = spawn_app().await;
    let b = spawn_app().await;
    let cookies = login_cookies(&a).await;
    assert_eq!(
        status_with_cookies(&a, "/admin", &cookies).await,
        StatusCode::OK
    );
    assert_eq!(
        status_with_cookies(&b, "/admin", &cookies).await,
        StatusCode::SEE_OTHER,
        "a session cookie signed on another node with the same password must not open /admin"
    );
    // The key is a random settings row, written at migration.
    let row =
        a.db.query_one_raw(Statement::from_string(
            a.db.get_database_backend(),
            "SELECT value FROM settings WHERE name = 'cookie_key'",
        ))
        .await
        .expect("a settings table")
        .expect("a cookie_key row");
    let key: String = row.try_get("", "value").unwrap();
    assert!(
        key.len() >= 128 && key.bytes().all(|b| b.is_ascii_hexdigit()),
        "{key}"
    );
}

// --- 2: the admin password ----------------------------------------------------------------------

#[tokio::test]
async fn f02_an_empty_or_short_admin_password_is_refused_at_start() {
    for password in ["", "short", "fourteen-chars"] {
        let err = match spawn_app_with(&["--admin-password", password]).await {
            Ok(_) => panic!("started with the admin password {password:?}"),
            Err(err) => err,
        };
        assert!(err.contains("at least 15 characters"), "{err}");
    }
}

// --- 3: sessions ----------------------------------------------------------------------------------

#[tokio::test]
async fn f03_sessions_are_random_revoked_at_logout_and_expire_server_side() {
    let app = spawn_app().await;
    let first = login_cookies(&app).await;
    let second = login_cookies(&app).await;
    assert_ne!(first, second, "every login gets its own session");

    // A cookie saved before logout no longer opens /admin.
    let client = bare_client();
    let page = client
        .get(app.url("/admin"))
        .header(COOKIE, &first)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = csrf_of(&page.text().await.unwrap());
    let response = client
        .post(app.url("/admin/logout"))
        .header(COOKIE, &first)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        status_with_cookies(&app, "/admin", &first).await,
        StatusCode::SEE_OTHER,
        "the session is revoked"
    );
    assert_eq!(
        status_with_cookies(&app, "/admin", &second).await,
        StatusCode::OK
    );

    // Expiry is the server's: a session past its expiry is refused, whatever the cookie says.
    app.db
        .execute_unprepared("UPDATE sessions SET expires_at = 0")
        .await
        .expect("a sessions table");
    assert_eq!(
        status_with_cookies(&app, "/admin", &second).await,
        StatusCode::SEE_OTHER
    );
}

// --- 4 and 5: throttling and the cost of wrong passwords ---------------------------------------

#[tokio::test]
async fn f04_password_guesses_are_throttled_logged_and_counted() {
    let app = spawn_app().await;
    let mut throttled = 0;
    for i in 0..30 {
        let response = bare_client()
            .post(app.url("/api/tags"))
            .basic_auth("admin", Some(format!("a-long-wrong-guess-{i}")))
            .json(&json!({ "label": "x" }))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry = response.headers().get("retry-after").expect("Retry-After");
            assert!(retry.to_str().unwrap().parse::<u64>().unwrap() >= 1);
            let (_, body) = json_of(response).await;
            assert!(body["error"].as_str().is_some(), "{body}");
            throttled += 1;
        } else {
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
    }
    assert!(
        throttled >= 15,
        "most of 30 guesses are refused: {throttled}"
    );
    // After the burst, guesses (right ones too) are refused with 429.
    let response = bare_client()
        .post(app.url("/api/tags"))
        .basic_auth("admin", Some(PASSWORD))
        .json(&json!({ "label": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // The login form is throttled for the same client too.
    let html = cookie_client();
    let page = html.get(app.url("/admin/login")).send().await.unwrap();
    let csrf = csrf_of(&page.text().await.unwrap());
    let response = html
        .post(app.url("/admin/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("password", "another-long-wrong-guess"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("blog_auth_failures_total")),
        "{metrics}"
    );
    assert_eq!(app.row_counts().await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f05_concurrent_wrong_passwords_run_few_password_checks() {
    let app = spawn_app().await;
    let requests = (0..40).map(|i| {
        bare_client()
            .get(app.url("/api/posts"))
            .basic_auth("admin", Some(format!("a-long-wrong-password-{i}")))
            .send()
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect();
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert!(
        checked <= 10,
        "at most a burst of password checks, the rest refused early: {statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS)
    );
    // Public pages ignore credentials they do not need, and stay fast.
    let response = bare_client()
        .get(app.url("/"))
        .basic_auth("admin", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

// --- 6: open redirect -----------------------------------------------------------------------------

#[tokio::test]
async fn f06_login_only_redirects_to_same_site_paths() {
    let app = spawn_app().await;
    for next in [
        "/\\evil.example",
        "/\t/evil.example",
        "/admin\r\nSet-Cookie: x=y",
        "//evil.example",
        "https://evil.example/",
        "/\\/evil.example",
    ] {
        let client = cookie_client();
        let html = client
            .get(app.url("/admin/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let response = client
            .post(app.url("/admin/login"))
            .form(&[
                ("csrf", csrf_of(&html).as_str()),
                ("password", PASSWORD),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(location(response.headers()), "/admin", "{next:?}");
    }
    // A good one is kept.
    let client = cookie_client();
    let html = client
        .get(app.url("/admin/login?next=/admin/tags"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(r#"name="next" value="/admin/tags""#),
        "{html}"
    );
}

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

pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

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

// --- 10: CSRF -------------------------------------------------------------------------------------

#[tokio::test]
async fn f10_the_csrf_token_is_bound_to_the_session_and_the_origin_is_checked() {
    let app = spawn_app().await;
    let before = app.csrf_for("/admin/login").await;
    app.login().await;
    let after = app.csrf_for("/admin").await;
    assert_ne!(before, after, "the token changes at login");
    let response = app
        .post_form("/admin/tags", &[("csrf", &before), ("label", "old-token")])
        .await;
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "a pre-login token is refused"
    );

    // Another session's token does not fit this session.
    let other = cookie_client();
    let html = other
        .get(app.url("/admin/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = app
        .post_form(
            "/admin/tags",
            &[("csrf", &csrf_of(&html)), ("label", "foreign")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // A right token from a foreign origin is refused.
    let response = app
        .client
        .post(app.url("/admin/tags"))
        .header("origin", "https://evil.example")
        .form(&[("csrf", after.as_str()), ("label", "cross-site")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // The same from this site's own origin works.
    let response = app
        .client
        .post(app.url("/admin/tags"))
        .header("origin", &app.base)
        .form(&[("csrf", after.as_str()), ("label", "same-site")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.tag_labels().await, ["same-site"]);
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
    // The NFD spelling finds the tag's page.
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

// --- 19: the small ones ---------------------------------------------------------------------------

#[tokio::test]
async fn f19_a_lowercase_basic_scheme_is_accepted() {
    use base64::Engine;
    let app = spawn_app().await;
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}"));
    let response = bare_client()
        .post(app.url("/api/tags"))
        .header("authorization", format!("basic {credentials}"))
        .json(&json!({ "label": "lower" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
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

#[tokio::test]
async fn f04_behind_a_proxy_the_client_ip_header_keys_the_throttle() {
    let app = spawn_app_with(&["--client-ip-header", "x-client-ip"])
        .await
        .expect("starts with a client IP header");
    let guess = |ip: &'static str, i: usize| {
        bare_client()
            .get(app.url("/api/posts"))
            .header("x-client-ip", ip)
            .basic_auth("admin", Some(format!("a-long-wrong-guess-{i}")))
            .send()
    };
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(guess("10.0.0.1", i).await.unwrap().status());
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // Another client behind the same proxy is not held back by the first.
    assert_eq!(
        guess("10.0.0.2", 0).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}
