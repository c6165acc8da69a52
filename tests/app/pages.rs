//! Server-rendered pages and the admin forms, driven with a cookie-keeping HTTP client.

use reqwest::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::json;

use std::time::Duration;

use crate::helpers::{
    NODE_NAME, TestApp, cookie_client, csrf_of, hidden_value, host_of, location,
    new_visitor_at_login, raw_exchange, spawn_app,
};

/// GET with a client that has no cookies: an anonymous visitor.
async fn anonymous_get(app: &TestApp, path: &str) -> (StatusCode, String) {
    let response = cookie_client().get(app.url(path)).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

fn assert_html(response: &reqwest::Response) {
    let content_type = response.headers()[CONTENT_TYPE].to_str().unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}");
}

#[tokio::test]
async fn markdown_is_rendered_and_sanitised() {
    let app = spawn_app().await;
    let body = "Intro with **bold** text.\n\n\
        <script>alert('xss')</script>\n\n\
        <img src=\"x.png\" onerror=\"alert(1)\">\n\n\
        [click me](javascript:alert(2))\n\n\
        <a href=\"JaVaScRiPt:alert(3)\" onclick=\"alert(4)\">shouting</a>\n\n\
        <p onmouseover=\"alert(5)\">hover</p>\n\n\
        <iframe src=\"javascript:alert(6)\"></iframe>\n\n\
        <svg><script>alert(7)</script></svg>\n";
    app.create_post(json!({
        "title": "Safe <em>title</em>",
        "slug": "xss",
        "body": body,
        "published": true
    }))
    .await;
    app.create_post(json!({
        "title": "Ampersands",
        "body": "Tom & Jerry: 1 < 2",
        "published": true
    }))
    .await;
    app.create_post(json!({
        "title": "Script first",
        "body": "<script>alert(8)</script> and <img src=x onerror=alert(9)> in the excerpt",
        "published": true
    }))
    .await;

    let (status, page) = anonymous_get(&app, "/posts/xss").await;
    assert_eq!(status, StatusCode::OK);
    let lower = page.to_lowercase();
    for forbidden in [
        "<script",
        "javascript:",
        "onerror",
        "onclick",
        "onmouseover",
        "<iframe",
        "alert(",
    ] {
        assert!(!lower.contains(forbidden), "{forbidden} survived: {page}");
    }
    assert!(
        page.contains("<strong>bold</strong>"),
        "Markdown is rendered: {page}"
    );
    assert!(page.contains("click me") && page.contains("shouting") && page.contains("hover"));
    assert!(!page.contains("<em>title</em>"), "the title is escaped");
    assert!(
        page.contains("<h1>Safe &#60;em&#62;title&#60;/em&#62;")
            || page.contains("<h1>Safe &lt;em&gt;title&lt;/em&gt;"),
        "the title is shown, escaped: {page}"
    );

    // Lists show excerpts: no markup from the body gets through there either.
    let (status, home) = anonymous_get(&app, "/").await;
    assert_eq!(status, StatusCode::OK);
    let lower = home.to_lowercase();
    for forbidden in ["<script", "<img", "onerror", "javascript:", "<em>title"] {
        assert!(
            !lower.contains(forbidden),
            "{forbidden} on the home page: {home}"
        );
    }
    // Excerpts are text, escaped once: "&" shows as "&", not as "&amp;".
    assert!(
        home.contains("<p>Tom &#38; Jerry: 1 &#60; 2</p>")
            || home.contains("<p>Tom &amp; Jerry: 1 &lt; 2</p>"),
        "the excerpt is escaped exactly once: {home}"
    );
}

#[tokio::test]
async fn admin_pages_redirect_to_the_login() {
    let app = spawn_app().await;
    for path in [
        "/admin",
        "/admin/posts/new",
        "/admin/tags",
        "/admin/posts/some-post/edit",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            location(response.headers()),
            format!("/admin/login?next={path}")
        );
    }
    // A form post without a session is sent to the login too, and does nothing.
    let csrf = app.csrf_for("/admin/login").await;
    let response = app
        .post_form("/admin/tags", &[("csrf", &csrf), ("label", "sneaky")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(response.headers()).starts_with("/admin/login"));
    assert_eq!(app.row_counts().await, (0, 0));
}

/// The login sends the visitor back where they were going: a page's query string is kept
/// (`/admin?page=2`, not the first page), and a form sent without a session returns to the page
/// the form was on, never to the form's POST address (a 405 page once signed in).
#[tokio::test]
async fn the_login_returns_to_a_page_that_can_be_shown() {
    let app = spawn_app().await;
    let response = app.get("/admin?page=2").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(response.headers()),
        "/admin/login?next=/admin%3Fpage%3D2"
    );

    let csrf = app.csrf_for("/admin/login").await;
    let form = [("csrf", csrf.as_str()), ("label", "sneaky")];
    let from_the_tags_page = app
        .client
        .post(app.url("/admin/tags"))
        .header("referer", app.url("/admin/tags?page=1"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(from_the_tags_page.headers()),
        "/admin/login?next=/admin/tags%3Fpage%3D1"
    );
    let from_nowhere = app.post_form("/admin/tags", &form).await;
    assert_eq!(location(from_nowhere.headers()), "/admin/login?next=/admin");
    // Whatever the login then goes to, it is a page: a GET of it is not a 405.
    for next in ["/admin%3Fpage%3D2", "/admin/tags%3Fpage%3D1", "/admin"] {
        let page = app.get(&next.replace("%3F", "?").replace("%3D", "=")).await;
        assert_ne!(page.status(), StatusCode::METHOD_NOT_ALLOWED, "{next}");
    }
    assert_eq!(app.row_counts().await, (0, 0));
}

/// A post form the server sent back (a 422, or an edit of a post deleted meanwhile) is shown at
/// the form's POST address. A submit from it after the session ended goes to the login, which
/// must then lead to the post form again, where the browser's draft is offered back
/// (`static/drafts.js`), not to a 405 page.
#[tokio::test]
async fn the_login_after_a_rejected_post_form_returns_to_the_form() {
    let app = spawn_app().await;
    let kept = app
        .create_post(json!({"title": "Kept", "body": "Body.", "tags": [], "published": true}))
        .await;
    // The edit's draft is kept under the post's id.
    let edit_key = format!("edit:id:{}", kept["id"]);
    for (action, form_key) in [
        ("/admin/posts/kept", edit_key.as_str()),
        ("/admin/posts", "new"),
    ] {
        let csrf = app.csrf_for("/admin/login").await;
        let sent = app
            .client
            .post(app.url(action))
            .header("referer", app.url(action))
            .form(&[("csrf", csrf.as_str()), ("title", "T"), ("body", "B")])
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), StatusCode::SEE_OTHER, "{action}");
        let next = location(sent.headers())
            .strip_prefix("/admin/login?next=")
            .expect("sent to the login")
            .replace("%3F", "?")
            .replace("%3D", "=");
        app.login().await;
        // As a browser would, follow a redirect from there.
        let mut page = app.get(&next).await;
        if page.status().is_redirection() {
            let to = location(page.headers()).to_owned();
            page = app.get(&to).await;
        }
        let status = page.status();
        let html = page.text().await.unwrap();
        assert_eq!(
            status,
            StatusCode::OK,
            "{action}: the login leads to {next}: {html}"
        );
        assert!(
            html.contains(&format!("data-draft-key=\"{form_key}\"")),
            "{action}: {next} is not the post form: {html}"
        );
        app.client
            .post(app.url("/admin/logout"))
            .form(&[("csrf", app.csrf_for("/admin").await.as_str())])
            .send()
            .await
            .unwrap();
    }
    assert_eq!(app.row_counts().await, (1, 0));
}

/// A page's address with a slash at the end (`/tags/`, `/api/posts/?page=2`) is sent to the
/// address without it, query kept (a 308, so a form or API write is sent again as it was);
/// one that would then name another host (`//evil.example/`) is not found, never a redirect
/// off the site, and neither is a path no page has.
#[tokio::test]
async fn a_trailing_slash_is_sent_to_the_page_without_it() {
    let app = spawn_app().await;
    for (path, to) in [
        ("/tags/", "/tags"),
        ("/admin/", "/admin"),
        ("/api/posts/?page=2", "/api/posts?page=2"),
        ("/posts/some-post/", "/posts/some-post"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT, "{path}");
        assert_eq!(location(response.headers()), to, "{path}");
    }
    for path in [
        "//evil.example/",
        "/\\evil.example/",
        "/nothing-here/",
        "/healthz/",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

/// A request line may name the host itself (absolute form, `GET http://evil.example/tags/`, as
/// sent to a proxy): the redirect to the address without the slash stays a path on this site,
/// never a `Location` on the host the request line named.
#[tokio::test]
async fn a_trailing_slash_redirect_never_names_the_request_lines_host() {
    let app = spawn_app().await;
    let host = host_of(&app);
    for target in [
        "http://evil.example/tags/",
        "http://evil.example/api/posts/?page=2",
    ] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let answer = raw_exchange(&host, request.as_bytes(), Duration::from_secs(5)).await;
        let head = answer.split("\r\n\r\n").next().unwrap_or_default();
        let location = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("location").then(|| value.trim())
            })
            .unwrap_or_default();
        assert!(
            !location.contains("evil.example"),
            "{target}: the redirect leaves the site:\n{head}"
        );
    }
}

#[tokio::test]
async fn login_rejects_a_wrong_password_and_accepts_the_right_one() {
    let app = spawn_app().await;
    let response = app.get("/admin").await;
    let login_path = location(response.headers()).to_owned();
    let (status, html) = app.get_text(&login_path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"name="next" value="/admin""#), "{html}");
    let csrf = csrf_of(&html);

    let response = app
        .post_form(
            "/admin/login",
            &[("csrf", &csrf), ("password", "wrong"), ("next", "/admin")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_html(&response);
    let html = response.text().await.unwrap();
    assert!(html.contains("That password is not right."), "{html}");
    assert!(
        html.contains(r#"type="password""#),
        "the form is shown again"
    );
    assert_eq!(app.get("/admin").await.status(), StatusCode::SEE_OTHER);

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
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(response.headers()), "/admin");
    let (status, dashboard) = app.get_text("/admin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(dashboard.contains("<h1>Dashboard</h1>"));
    assert!(
        dashboard.contains(r#"<p class="flash" role="status">Signed in.</p>"#),
        "{dashboard}"
    );
    let (_, again) = app.get_text("/admin").await;
    assert!(!again.contains("class=\"flash\""), "a flash is shown once");

    // `next` only takes local paths.
    let (other, csrf) = new_visitor_at_login(&app).await;
    let response = other
        .post(app.url("/admin/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("password", app.password.as_str()),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(response.headers()), "/admin");

    // Logging out ends the session.
    let csrf = app.csrf_for("/admin").await;
    let response = app.post_form("/admin/logout", &[("csrf", &csrf)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get("/admin").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn admin_writes_a_post_through_the_form() {
    let app = spawn_app().await;
    app.login().await;
    let csrf = app.csrf_for("/admin/posts/new").await;

    // An empty title: 422, the form again with what was typed and the error by the field.
    let typed_body = "Typed body that must survive the error";
    let response = app
        .post_form(
            "/admin/posts",
            &[
                ("csrf", &csrf),
                ("title", "   "),
                ("slug", ""),
                ("body", typed_body),
                ("tags", "alpha, beta"),
                ("published", "on"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_html(&response);
    let html = response.text().await.unwrap();
    assert!(
        html.contains(&format!(
            // The line break after the tag is the textarea's own (a parser drops it).
            "<textarea name=\"body\" rows=\"16\">\n{typed_body}</textarea>"
        )),
        "the typed body is kept: {html}"
    );
    assert!(
        html.contains(r#"value="alpha, beta""#),
        "the typed tags are kept"
    );
    assert!(
        html.contains(r#"value="on" checked"#),
        "the checkbox is kept"
    );
    let title_input = html.find(r#"name="title""#).expect("the title field");
    let title_error = html
        .find(r#"<p class="error" id="title-error" data-field="title">"#)
        .expect("an error for the title");
    assert!(
        html.contains(r#"name="title" value="   " required aria-invalid="true" aria-describedby="title-error">"#),
        "the title field points at its error: {html}"
    );
    let slug_input = html.find(r#"name="slug""#).expect("the slug field");
    assert!(
        title_input < title_error && title_error < slug_input,
        "the error sits right after the title field"
    );
    assert!(
        !html.contains(r#"data-field="body""#),
        "only the title is wrong"
    );
    assert_eq!(app.row_counts().await, (0, 0), "nothing was saved");

    // Now correctly, as a draft: post-redirect-get to the post, with a flash.
    let response = app
        .post_form(
            "/admin/posts",
            &[
                ("csrf", &csrf),
                ("title", "Form Post"),
                ("slug", ""),
                ("body", "Some *emphasis* here."),
                ("tags", "alpha"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(response.headers()), "/posts/form-post");
    let (status, page) = app.get_text("/posts/form-post").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(r#"<p class="flash" role="status">Created "#),
        "{page}"
    );
    assert!(page.contains("Form Post"));
    assert!(page.contains("<em>emphasis</em>"));
    assert!(page.contains(r#"<span class="badge">draft</span>"#));

    // The draft: hidden from visitors, listed for the admin.
    let (status, home) = anonymous_get(&app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !home.contains("Form Post"),
        "a draft is not on the home page"
    );
    assert_eq!(
        anonymous_get(&app, "/posts/form-post").await.0,
        StatusCode::NOT_FOUND
    );
    let (_, tag_page) = anonymous_get(&app, "/tags/alpha").await;
    assert!(!tag_page.contains("Form Post"));
    let (status, dashboard) = app.get_text("/admin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(dashboard.contains("Form Post"));
    assert!(dashboard.contains(" (1 draft) · "), "{dashboard}");

    // A slug that is taken: 422 with the message next to the slug.
    let response = app
        .post_form(
            "/admin/posts",
            &[
                ("csrf", &csrf),
                ("title", "Another"),
                ("slug", "form-post"),
                ("body", "b"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(
        html.contains(
            r#"<p class="error" id="slug-error" data-field="slug">a post with this slug already exists</p>"#
        ),
        "{html}"
    );
    assert!(html.contains(r#"value="Another""#));

    // Edit and publish it.
    let (status, edit) = app.get_text("/admin/posts/form-post/edit").await;
    assert_eq!(status, StatusCode::OK);
    assert!(edit.contains(r#"value="Form Post""#));
    assert!(edit.contains(r#"action="/admin/posts/form-post""#));
    let response = app
        .post_form(
            "/admin/posts/form-post",
            &[
                ("csrf", &csrf_of(&edit)),
                ("post_id", &hidden_value(&edit, "post_id")),
                ("version", &hidden_value(&edit, "version")),
                ("title", "Form Post"),
                ("slug", "form-post"),
                ("body", "Some *emphasis* here."),
                ("tags", "alpha, gamma"),
                ("published", "on"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(response.headers()), "/posts/form-post");
    let (_, page) = app.get_text("/posts/form-post").await;
    assert!(
        page.contains(r#"<p class="flash" role="status">Saved "#),
        "{page}"
    );
    let (_, home) = anonymous_get(&app, "/").await;
    assert!(home.contains("Form Post"), "published now");
    let (_, tag_page) = anonymous_get(&app, "/tags/gamma").await;
    assert!(tag_page.contains("Form Post"));

    // Delete it, with the dashboard's button: the post's id and the version the page showed.
    let (_, dashboard) = app.get_text("/admin").await;
    let delete = &dashboard[dashboard
        .find(r#"action="/admin/posts/form-post/delete""#)
        .expect("the post's delete button")..];
    let response = app
        .post_form(
            "/admin/posts/form-post/delete",
            &[
                ("csrf", &csrf_of(delete)),
                ("post_id", &hidden_value(delete, "post_id")),
                ("version", &hidden_value(delete, "version")),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(response.headers()), "/admin");
    let (_, dashboard) = app.get_text("/admin").await;
    assert!(dashboard.contains("Post deleted."));
    assert!(!dashboard.contains("Form Post"));
    assert_eq!(
        anonymous_get(&app, "/posts/form-post").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn admin_manages_tags_through_the_forms() {
    let app = spawn_app().await;
    app.login().await;
    let csrf = app.csrf_for("/admin/tags").await;

    let response = app
        .post_form("/admin/tags", &[("csrf", &csrf), ("label", "gardening")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(response.headers()), "/admin/tags");
    let (_, html) = app.get_text("/admin/tags").await;
    assert!(html.contains("Created tag"), "{html}");
    assert!(html.contains(r#"value="gardening" aria-label="Label of gardening""#));
    assert_eq!(app.tag_labels().await, ["gardening"]);

    // Rejected labels: 422, the message shown, the typed label kept.
    for (label, message) in [
        ("gardening", "a tag with this label already exists"),
        (
            "a/b",
            "no slashes, control, invisible or direction characters",
        ),
        ("", "a label is required"),
    ] {
        let response = app
            .post_form("/admin/tags", &[("csrf", &csrf), ("label", label)])
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{label}"
        );
        let html = response.text().await.unwrap();
        assert!(
            html.contains(&format!(
                r#"<p class="error" role="alert" id="label-error" data-field="label">{message}</p>"#
            )),
            "{label}: {html}"
        );
        assert!(
            html.contains(r#"required aria-invalid="true" aria-describedby="label-error">"#),
            "{label}: the field points at its error: {html}"
        );
        assert!(
            html.contains(&format!(r#"name="label" value="{label}" required"#)),
            "the typed label is kept: {html}"
        );
    }
    assert_eq!(app.tag_labels().await, ["gardening"]);

    let id = crate::helpers::tag_id(&app, "gardening").await;
    let response = app
        .post_form(
            &format!("/admin/tags/{id}"),
            &[("csrf", &csrf), ("label", "horticulture")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, html) = app.get_text("/admin/tags").await;
    assert!(html.contains("Renamed to"), "{html}");
    assert!(html.contains(r#"value="horticulture""#));
    assert!(!html.contains(r#"value="gardening""#));
    assert_eq!(app.tag_labels().await, ["horticulture"]);

    let response = app
        .post_form(&format!("/admin/tags/{id}/delete"), &[("csrf", &csrf)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, html) = app.get_text("/admin/tags").await;
    assert!(html.contains("Deleted tag"), "{html}");
    assert!(html.contains("No tags yet."));
    assert!(app.tag_labels().await.is_empty());
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused() {
    let app = spawn_app().await;
    app.login().await;
    app.create_post(json!({ "title": "Keep me", "published": true }))
        .await;
    let tag = app.create_tag("keep").await;
    let csrf = app.csrf_for("/admin").await;
    let tag_path = format!("/admin/tags/{}", tag["id"]);
    let tag_delete_path = format!("{tag_path}/delete");
    let forms: [(&str, &[(&str, &str)]); 6] = [
        ("/admin/tags", &[("label", "new")]),
        (&tag_path, &[("label", "renamed")]),
        (&tag_delete_path, &[]),
        ("/admin/posts", &[("title", "New post")]),
        ("/admin/posts/keep-me", &[("title", "Changed")]),
        ("/admin/posts/keep-me/delete", &[]),
    ];
    for (path, fields) in forms {
        for token in [None, Some(""), Some("0123456789abcdef0123456789abcdef")] {
            let mut fields = fields.to_vec();
            if let Some(token) = token {
                fields.push(("csrf", token));
            }
            let response = app.post_form(path, &fields).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} {token:?}");
            assert_html(&response);
        }
    }
    let response = app.post_form("/admin/logout", &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // A visitor without the CSRF cookie cannot log in with a token from elsewhere.
    let response = cookie_client()
        .post(app.url("/admin/login"))
        .form(&[("csrf", csrf.as_str()), ("password", app.password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // Nothing changed, and the session still works.
    assert_eq!(app.tag_labels().await, ["keep"]);
    let (_, post) = app.api_get("/posts/keep-me").await;
    assert_eq!(post["title"], "Keep me");
    assert_eq!(app.row_counts().await, (1, 1));
    assert_eq!(app.get("/admin").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_pages_get_a_friendly_404() {
    let app = spawn_app().await;
    for path in [
        "/nope",
        "/posts/missing",
        "/tags/missing",
        "/admin/login/extra",
        "/static/missing.css",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_html(&response);
        let html = response.text().await.unwrap();
        assert!(html.contains("404 · Not Found"), "{path}: {html}");
        assert!(html.contains("There is nothing here."));
        assert!(html.contains(r#"<a href="/">Back to the posts</a>"#));
        assert!(
            html.contains(&format!(r#"data-node="{NODE_NAME}">{NODE_NAME}</strong>"#)),
            "the footer names the node: {html}"
        );
    }
}

#[tokio::test]
async fn every_response_names_the_node_and_its_role() {
    let app = spawn_app().await;
    let anonymous = cookie_client();
    let requests = [
        anonymous.get(app.url("/")),
        anonymous.get(app.url("/tags")),
        anonymous.get(app.url("/nope")),
        anonymous.get(app.url("/admin")),
        anonymous.get(app.url("/api/tags")),
        anonymous.get(app.url("/api/posts/nope")),
        anonymous.get(app.url("/healthz")),
        anonymous.get(app.url("/readyz")),
        anonymous.get(app.url("/metrics")),
        anonymous.get(app.url("/static/style.css")),
        anonymous
            .post(app.url("/api/tags"))
            .json(&json!({ "label": "x" })),
        anonymous
            .post(app.url("/admin/login"))
            .form(&[("csrf", "x")]),
        app.api(Method::POST, "/posts")
            .json(&json!({ "title": "big", "body": "x".repeat(1024 * 1024 + 1) })),
    ];
    for request in requests {
        let request = request.build().unwrap();
        let what = format!("{} {}", request.method(), request.url().path());
        let response = anonymous.execute(request).await.unwrap();
        let headers = response.headers();
        assert_eq!(
            headers.get("x-blog-node").map(|v| v.to_str().unwrap()),
            Some(NODE_NAME),
            "x-blog-node on {what} ({})",
            response.status()
        );
        assert_eq!(
            headers.get("x-blog-role").map(|v| v.to_str().unwrap()),
            Some("standalone"),
            "x-blog-role on {what} ({})",
            response.status()
        );
    }
    let (_, home) = anonymous_get(&app, "/").await;
    assert!(home.contains(&format!(r#"data-node="{NODE_NAME}">{NODE_NAME}</strong>"#)));
    assert!(home.contains(r#"data-role="standalone""#));
}

#[tokio::test]
async fn the_stylesheet_is_cached_and_gzipped() {
    let app = spawn_app().await;
    let css = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/static/style.css")).unwrap();

    let response = app
        .client
        .get(app.url("/static/style.css"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert!(
        headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(
        headers[CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("max-age="),
        "{:?}",
        headers[CACHE_CONTROL]
    );
    assert_eq!(headers.get(CONTENT_ENCODING).unwrap(), "gzip");
    let gzipped = response.bytes().await.unwrap();
    assert_eq!(gzipped[..2], [0x1f, 0x8b], "a gzip stream");
    assert!(gzipped.len() < css.len(), "compressed");

    let response = app.get("/static/style.css").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(CONTENT_ENCODING).is_none());
    assert!(response.headers().contains_key(CACHE_CONTROL));
    assert_eq!(response.bytes().await.unwrap(), css);

    assert_eq!(
        app.get("/static/missing.css").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_oversized_form_is_a_413_page_and_saves_nothing() {
    let app = spawn_app().await;
    app.login().await;
    let csrf = app.csrf_for("/admin/posts/new").await;
    let body = "x".repeat(2 * 1024 * 1024);
    let response = app
        .post_form(
            "/admin/posts",
            &[
                ("csrf", csrf.as_str()),
                ("title", "Too big"),
                ("body", body.as_str()),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_html(&response);
    let html = response.text().await.unwrap();
    assert!(html.contains("413 · Payload Too Large"), "{html}");
    assert_eq!(app.row_counts().await.0, 0, "no post was created");
}

/// A signed-in admin sent to the login page (a bookmark, the header's link in an old tab, or a
/// `next` that names the login itself) goes on to where it leads, never to the form again; and a
/// login whose `next` is the login page lands on the dashboard.
#[tokio::test]
async fn a_signed_in_admin_is_not_shown_the_login_form_again() {
    let app = spawn_app().await;
    let csrf = app.csrf_for("/admin/login").await;
    let response = app
        .post_form(
            "/admin/login",
            &[
                ("csrf", csrf.as_str()),
                ("password", app.password.as_str()),
                ("next", "/admin/login?next=/admin/login"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(response.headers()), "/admin");
    for (path, to) in [
        ("/admin/login", "/admin"),
        (
            "/admin/login?next=/admin/tags%3Fpage%3D1",
            "/admin/tags?page=1",
        ),
        ("/admin/login?next=/admin/login", "/admin"),
        ("/admin/login?next=//evil.example", "/admin"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(response.headers()), to, "{path}");
    }
}
