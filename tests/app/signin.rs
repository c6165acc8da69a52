//! Sign-in findings of the pen test of issue 10 (numbered as there): the cookie key, the password,
//! sessions, throttling, the login redirect, CSRF and Basic auth.

use reqwest::StatusCode;
use reqwest::header::COOKIE;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::helpers::{
    PASSWORD, bare_client, cookie_client, csrf_of, json_of, location, login_cookies,
    new_visitor_at_login, spawn_app, spawn_app_with, status_with_cookies,
};

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
async fn f02_an_empty_short_or_overlong_admin_password_is_refused_at_start() {
    for password in ["", "short", "fourteen-chars"] {
        let err = match spawn_app_with(&["--admin-password", password]).await {
            Ok(_) => panic!("started with the admin password {password:?}"),
            Err(err) => err,
        };
        assert!(err.contains("at least 15 characters"), "{err}");
    }
    let too_long = "a-long-password-".repeat(65);
    let err = match spawn_app_with(&["--admin-password", &too_long]).await {
        Ok(_) => panic!("started with a {}-byte admin password", too_long.len()),
        Err(err) => err,
    };
    assert!(err.contains("at most 1024 bytes"), "{err}");
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
    // Its row is gone for good: nothing after the logout (such as the session layer saving the
    // request's session) wrote it back. The second login's row is the only one left.
    let sessions = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM sessions",
        ))
        .await
        .expect("a sessions table")
        .expect("a count");
    assert_eq!(sessions.try_get::<i64>("", "n").unwrap(), 1);
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
    let (html, csrf) = new_visitor_at_login(&app).await;
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
        let (client, csrf) = new_visitor_at_login(&app).await;
        let response = client
            .post(app.url("/admin/login"))
            .form(&[
                ("csrf", csrf.as_str()),
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
    let (_, foreign) = new_visitor_at_login(&app).await;
    let response = app
        .post_form("/admin/tags", &[("csrf", &foreign), ("label", "foreign")])
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

// --- 19: the Basic scheme is case-insensitive -------------------------------------------------

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
