//! A fresh-context review of the content changes (branch `content`): slugs in any language, tags
//! shown to visitors, the CSP's images, static files by version, a body's first `# Title`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{
    encoded, form_with, hidden_inputs, host_of, location, raw_exchange, spawn_app,
};

/// Holds: titles of marks only, emoji, RTL scripts, Turkish İ/ı, Greek, fullwidth digits and
/// mixed scripts make slugs of their letters (or none), and every slug a title makes is a slug
/// the rules accept and the slug of itself as a title (idempotent).
#[test]
fn holds_slugs_of_odd_titles() {
    use blog::blog::input::Slug;
    let slug = |title: &str| Slug::from_title(title).map(|s| s.as_str().to_owned());
    for (title, expected) in [
        ("\u{301}\u{308}\u{20e3}", None),
        ("🎉🎉 ✨", None),
        ("🎉 Party 🎉", Some("party")),
        ("مرحبا بالعالم", Some("مرحبا-بالعالم")),
        ("שלום עולם", Some("שלום-עולם")),
        ("İstanbul ISPARTA", Some("istanbul-isparta")),
        ("ısparta", Some("isparta")),
        ("ΟΔΟΣ", Some("οδος")),
        ("１２３ ｆｏｏ", Some("123-foo")),
        ("Rust и Go", Some("rust-и-go")),
        ("1\u{fe0f}\u{20e3} Intro", Some("1-intro")),
    ] {
        assert_eq!(slug(title).as_deref(), expected, "{title:?}");
    }
    let letters = [
        "a",
        "Z",
        "é",
        "e\u{301}",
        "ß",
        "İ",
        "ı",
        "Σ",
        "ς",
        "ά",
        "α\u{301}",
        "日",
        "ガ",
        "ｶ",
        "ﾞ",
        "١",
        "٣",
        "١\u{301}",
        "-",
        " ",
        "!",
        "🎉",
        "\u{301}",
        "ǅ",
        "ﬁ",
        "²",
        "Ⅻ",
        "ⅻ",
        "ŋ",
        "ə",
        "\u{94d}",
        "ह",
        "𐐀",
        "𐐨",
        "Ǆ",
        "ǰ",
        "J\u{30c}",
        "ẞ",
        "ŉ",
    ];
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    runner
        .run(
            &proptest::collection::vec(proptest::sample::select(letters.to_vec()), 0..40),
            |parts| {
                let title: String = parts.concat();
                if let Some(once) = Slug::from_title(&title) {
                    let again = Slug::from_title(once.as_str());
                    proptest::prop_assert_eq!(
                        again.as_ref().map(Slug::as_str),
                        Some(once.as_str()),
                        "{:?}",
                        title
                    );
                    proptest::prop_assert!(Slug::parse(once.as_str()).is_ok());
                }
                Ok(())
            },
        )
        .unwrap();
}

/// Holds: a slug of 100 four-byte letters (400 bytes) is a post's address on every route: its
/// page, the edit form (asked encoded and as raw UTF-8), a save, the old-slug redirect after a
/// rename, and a delete from the dashboard.
#[tokio::test]
async fn holds_a_slug_of_100_four_byte_letters_on_every_route() {
    let app = spawn_app().await;
    app.login().await;
    let slug = "𐐨".repeat(100);
    let post = app
        .create_post(json!({ "title": "Deseret", "slug": slug, "published": true }))
        .await;
    assert_eq!(post["slug"], slug.as_str());
    let too_long = "𐐨".repeat(101);
    let (status, error) = app
        .api_call(
            Method::POST,
            "/posts",
            Some(&json!({ "title": "Deseret 2", "slug": too_long })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    let path = format!("/posts/{}", encoded(&slug));
    let (status, page) = app.get_text(&path).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let edit = format!("/admin/posts/{}/edit", encoded(&slug));
    assert_eq!(app.get(&edit).await.status(), StatusCode::OK);
    // Unencoded: raw UTF-8 in the request line, with the session's cookies.
    let raw = format!(
        "GET /posts/{slug} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        host_of(&app)
    );
    let answer = raw_exchange(&host_of(&app), raw.as_bytes(), Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Renamed: the old 400-byte slug redirects to the new one, percent-encoded.
    let (status, form_page) = app.get_text(&edit).await;
    assert_eq!(status, StatusCode::OK);
    let action = format!("/admin/posts/{}", encoded(&slug));
    let form = form_with(&form_page, &format!(r#"action="{action}""#));
    let mut fields = hidden_inputs(form);
    let new_slug = "𐐩".repeat(100);
    fields.extend([
        ("title".to_owned(), "Deseret".to_owned()),
        ("slug".to_owned(), new_slug.clone()),
        ("body".to_owned(), "text".to_owned()),
        ("tags".to_owned(), String::new()),
        ("published".to_owned(), "on".to_owned()),
    ]);
    let response = app
        .client
        .post(app.url(&action))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let new_path = format!("/posts/{}", encoded(&new_slug));
    assert_eq!(location(response.headers()), new_path);
    let response = app.get(&path).await;
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(location(response.headers()), new_path);

    let (_, dashboard) = app.get_text("/admin").await;
    let delete = format!("/admin/posts/{}/delete", encoded(&new_slug));
    let form = form_with(&dashboard, &format!(r#"action="{delete}""#));
    let response = app
        .client
        .post(app.url(&delete))
        .form(&hidden_inputs(form))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get(&new_path).await.status(), StatusCode::NOT_FOUND);
}

/// Holds: two titles that make one slug ("Straße", "Strasse"; "İstanbul", "ıstanbul") give the
/// second a clear conflict, 409 by the API and the form back (422/409) with the slug field's
/// message and the input kept, and nothing written; a typed slug in upper case is a 422 on the
/// slug field.
#[tokio::test]
async fn holds_titles_that_slug_alike_are_a_clear_conflict() {
    let app = spawn_app().await;
    app.login().await;
    for (first, second) in [("Straße", "Strasse"), ("İstanbul", "ıstanbul")] {
        app.create_post(json!({ "title": first })).await;
        let (status, error) = app
            .api_call(Method::POST, "/posts", Some(&json!({ "title": second })))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{second}: {error}");
        let csrf = app.csrf_for("/admin/posts/new").await;
        let response = app
            .post_form(
                "/admin/posts",
                &[
                    ("csrf", &csrf),
                    ("title", second),
                    ("slug", ""),
                    ("body", "kept body"),
                ],
            )
            .await;
        let status = response.status();
        let html = response.text().await.unwrap();
        assert!(
            status == StatusCode::CONFLICT || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{status}: {html}"
        );
        assert!(html.contains("kept body"), "{html}");
        assert!(html.contains("slug"), "{html}");
    }
    let (status, posts) = app.api_call(Method::GET, "/posts", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(posts["items"].as_array().map(Vec::len), Some(2), "{posts}");
    let (status, error) = app
        .api_call(
            Method::POST,
            "/posts",
            Some(&json!({ "title": "Upper", "slug": "Café" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert!(error.to_string().contains("slug"), "{error}");
}

/// (minor; the title rule predates the branch, a design question) A title in Persian, Hindi or
/// Malayalam is often spelled with a zero-width non-joiner or joiner (U+200C, U+200D), and an
/// emoji sequence with a joiner: the title rule refuses them as "invisible", so a post in such a
/// language cannot be titled as it is written, whatever its slug may be. Fails: 422 "no control,
/// invisible or direction characters" for "می\u{200c}خواهم".
#[tokio::test]
async fn a_title_spelled_with_a_zero_width_joiner_is_accepted() {
    let app = spawn_app().await;
    for title in ["می\u{200c}خواهم", "क्\u{200d}ष", "👩\u{200d}💻 Coding"] {
        let (status, post) = app
            .api_call(Method::POST, "/posts", Some(&json!({ "title": title })))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{title:?}: {post}");
    }
}

/// Holds: an NFD address of a Unicode post (percent-encoded, or raw UTF-8 in the request line)
/// is the post (200), its canonical the NFC address.
#[tokio::test]
async fn holds_nfd_addresses_of_posts() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Crème", "slug": "crème", "published": true }))
        .await;
    let (status, page) = app
        .get_text(&format!("/posts/{}", encoded("cre\u{300}me")))
        .await;
    assert_eq!(status, StatusCode::OK);
    let canonical = format!(
        r#"<link rel="canonical" href="{}/posts/{}">"#,
        app.base,
        encoded("crème")
    );
    assert!(page.contains(&canonical), "{page}");
    let raw = format!(
        "GET /posts/cre\u{300}me HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        host_of(&app)
    );
    let answer = raw_exchange(&host_of(&app), raw.as_bytes(), Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// The old-slug redirect does not look the slug up NFC first, as the post's own address does:
/// a post renamed from `café-noir` answers its old address typed decomposed (NFD, as a Mac's
/// clipboard or a link written by hand may have it) with a 404, though the same NFD spelling of
/// its current slug is the post. Fails: GET /posts/cafe%CC%81-noir (encoded or raw) is 404, not
/// a 301 to /posts/cr%C3%A8me (find_by_old_slug compares the slug as asked with the stored NFC).
#[tokio::test]
async fn an_old_slug_asked_decomposed_redirects() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Café", "slug": "café-noir", "published": true }))
        .await;
    let (status, _) = app
        .api_call(
            Method::PATCH,
            &format!("/posts/{}", encoded("café-noir")),
            Some(&json!({ "slug": "crème" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // As composed (NFC), the old slug redirects.
    let response = app.get(&format!("/posts/{}", encoded("café-noir"))).await;
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    let response = app
        .get(&format!("/posts/{}", encoded("cafe\u{301}-noir")))
        .await;
    assert_eq!(
        response.status(),
        StatusCode::MOVED_PERMANENTLY,
        "NFD old slug"
    );
    assert_eq!(
        location(response.headers()),
        format!("/posts/{}", encoded("crème"))
    );
    let raw = format!(
        "GET /posts/cafe\u{301}-noir HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        host_of(&app)
    );
    let answer = raw_exchange(&host_of(&app), raw.as_bytes(), Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 301"), "{answer}");
}

/// Holds: a tag is shown to visitors while a published post carries it, through unpublish,
/// publish, a tag taken off, a rename of its post and a delete: /tags and its counts, its page
/// (also asked in another case: 404, no 308 naming a hidden tag), GET /api/tags (all of them
/// with auth); the feed and sitemap name no hidden tag.
#[tokio::test]
async fn holds_tags_are_public_while_a_published_post_carries_them() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "A", "tags": ["Shared", "Solo"], "published": true }))
        .await;
    app.create_post(json!({ "title": "B", "tags": ["Shared"], "published": true }))
        .await;
    async fn seen(app: &crate::helpers::TestApp) -> Vec<(String, i64)> {
        let (_, list) = app.api_get("/tags").await;
        let mut out: Vec<(String, i64)> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["label"].as_str().unwrap().to_owned(),
                    t["post_count"].as_i64().unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }
    async fn page(app: &crate::helpers::TestApp, path: &str) -> StatusCode {
        let response = bare(app).get(app.url(path)).send().await.unwrap();
        response.status()
    }
    fn bare(_: &crate::helpers::TestApp) -> reqwest::Client {
        crate::helpers::bare_client()
    }
    let s = |l: &str, n: i64| (l.to_owned(), n);
    assert_eq!(seen(&app).await, vec![s("Shared", 2), s("Solo", 1)]);

    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/a",
            Some(&json!({ "published": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen(&app).await, vec![s("Shared", 1)]);
    for path in [
        "/tags/Solo",
        "/tags/solo",
        "/tags/SOLO",
        "/tags/Solo?page=2",
    ] {
        assert_eq!(page(&app, path).await, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        page(&app, "/tags/shared").await,
        StatusCode::PERMANENT_REDIRECT
    );
    let (_, tags_page) = app.get_text("/tags").await;
    assert!(!tags_page.contains("Solo"), "{tags_page}");
    for path in ["/feed.xml", "/sitemap.xml", "/"] {
        let (_, text) = app.get_text(path).await;
        assert!(!text.contains("Solo"), "{path}: {text}");
    }
    assert!(app.tag_labels().await.contains(&"Solo".to_owned()));

    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/a",
            Some(&json!({ "published": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen(&app).await, vec![s("Shared", 2), s("Solo", 1)]);
    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/a",
            Some(&json!({ "tags": ["Shared"], "slug": "a2" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen(&app).await, vec![s("Shared", 2)]);
    assert_eq!(page(&app, "/tags/Solo").await, StatusCode::NOT_FOUND);
    let (status, _) = app.api_call(Method::DELETE, "/posts/b", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(seen(&app).await, vec![s("Shared", 1)]);
    let (status, _) = app.api_call(Method::DELETE, "/posts/a2", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(seen(&app).await, vec![]);
    assert_eq!(page(&app, "/tags/Shared").await, StatusCode::NOT_FOUND);
    let mut all = app.tag_labels().await;
    all.sort();
    assert_eq!(all, ["Shared", "Solo"]);
}

/// (minor) A tag asked in another case with a query in raw UTF-8 (GET /tags/rust?ref=café, which
/// hyper accepts) is redirected (308) with that query copied raw into Location, as old slugs were
/// until review 9's fix (ascii_query), which the tag redirect did not get. Fails: the Location's
/// bytes are not ASCII ('/tags/Rust?ref=café').
#[tokio::test]
async fn a_tag_redirect_keeps_a_utf8_query_in_ascii() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "R", "tags": ["Rust"], "published": true }))
        .await;
    let raw = format!(
        "GET /tags/rust?ref=caf\u{e9} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        host_of(&app)
    );
    let answer = raw_exchange(&host_of(&app), raw.as_bytes(), Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 308"), "{answer}");
    let location = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("location:"))
        .expect("a Location");
    assert!(location.is_ascii(), "{location:?}");
    assert!(
        location.ends_with("/tags/Rust?ref=caf%C3%A9"),
        "{location:?}"
    );
}

/// Holds: the CSP loosens img-src by `https:` only (every other directive as before), and a
/// post's images by javascript:, data: (SVG) or http URLs, in Markdown or raw HTML with srcset,
/// bring no script into the page.
#[tokio::test]
async fn holds_csp_images_and_nothing_else_loosened() {
    let app = spawn_app().await;
    let body = "![a](javascript:alert(1))\n\n![b](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)\n\n\
                ![c](http://example.com/c.png)\n\n\
                <img src=\"https://example.com/d.png\" srcset=\"javascript:alert(2) 1x, https://e.example/e.png 2x\" onerror=\"alert(3)\">\n\n\
                <svg><image href=\"javascript:alert(4)\"/><script>alert(5)</script></svg>\n";
    app.create_post(json!({ "title": "Images", "body": body, "published": true }))
        .await;
    let response = app.get("/posts/images").await;
    assert_eq!(response.status(), StatusCode::OK);
    let csp = response
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        csp,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    let html = response.text().await.unwrap();
    let article = &html[html.find("<article").unwrap()..];
    for bad in ["javascript:", "onerror", "<script", "alert(5)", "<svg"] {
        assert!(!article.contains(bad), "{bad} in {article}");
    }
    assert!(article.contains("https://example.com/d.png"), "{article}");
}

/// The version of `/static/style.css` the pages link.
async fn style_version(app: &crate::helpers::TestApp) -> String {
    let (_, home) = app.get_text("/").await;
    let at = home
        .find("/static/style.css?v=")
        .expect("style.css linked by version");
    home[at + "/static/style.css?v=".len()..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect()
}

async fn cache_of(
    app: &crate::helpers::TestApp,
    method: Method,
    path: &str,
) -> (StatusCode, String) {
    let response = app
        .client
        .request(method, app.url(path))
        .send()
        .await
        .unwrap();
    let policy = response
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.status(), policy)
}

/// Holds: only `v` equal to the file's version is immutable (also with other parameters, by
/// HEAD, and on a 304); an empty, wrong-case, very long or second `v` is no-cache, the bare
/// address five minutes; traversal out of static/ is a 404 however spelled.
#[tokio::test]
async fn holds_static_versions_odd_queries_head_304_and_traversal() {
    let app = spawn_app().await;
    let v = style_version(&app).await;
    assert_eq!(v.len(), 16);
    const IMMUTABLE: &str = "public, max-age=31536000, immutable";
    for (query, policy) in [
        (format!("v={v}"), IMMUTABLE),
        (format!("x=1&v={v}"), IMMUTABLE),
        (format!("v={v}&x=1"), IMMUTABLE),
        (String::new(), "public, max-age=300"),
        ("v=".to_owned(), "no-cache"),
        ("v".to_owned(), "no-cache"),
        (format!("v={}", v.to_uppercase()), "no-cache"),
        (format!("v=x&v={v}"), "no-cache"),
        (format!("v={}", "0".repeat(8000)), "no-cache"),
        (format!("v={v}0"), "no-cache"),
    ] {
        let path = if query.is_empty() {
            "/static/style.css".to_owned()
        } else {
            format!("/static/style.css?{query}")
        };
        assert_eq!(
            cache_of(&app, Method::GET, &path).await,
            (StatusCode::OK, policy.to_owned()),
            "{path}"
        );
        assert_eq!(
            cache_of(&app, Method::HEAD, &path).await,
            (StatusCode::OK, policy.to_owned()),
            "HEAD {path}"
        );
    }
    let first = app.get(&format!("/static/style.css?v={v}")).await;
    let modified = first.headers().get("last-modified").unwrap().clone();
    let response = app
        .client
        .get(app.url(&format!("/static/style.css?v={v}")))
        .header("if-modified-since", modified)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(response.headers()["cache-control"], IMMUTABLE);
    for path in [
        "/static/../Cargo.toml",
        "/static/%2e%2e/Cargo.toml",
        "/static/%2E%2E%2FCargo.toml",
        "/static/..%5CCargo.toml",
        "/static//etc/passwd",
    ] {
        let raw = format!(
            "GET {path}?v={v} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            host_of(&app)
        );
        let answer = raw_exchange(&host_of(&app), raw.as_bytes(), Duration::from_secs(10)).await;
        assert!(
            answer.starts_with("HTTP/1.1 404") || answer.starts_with("HTTP/1.1 400"),
            "{path}: {answer}"
        );
        assert!(!answer.contains("[package]"), "{path}: {answer}");
        assert!(!answer.contains("immutable"), "{path}: {answer}");
    }
}

/// A file of static/ that is removed when the test ends.
struct TempStatic(std::path::PathBuf);

impl Drop for TempStatic {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// (minor) A static file changed with the same size and modification time (a copy that keeps
/// times, `touch -r`, or two saves within the file system's time granularity) keeps its old
/// version: the new content is served `immutable` under the old content's hash, and browsers
/// keep it there for a year. Fails: the link's version is unchanged and GET ?v=<old hash>
/// answers the new bytes with `immutable`.
#[tokio::test]
async fn a_static_file_changed_with_the_same_size_and_mtime_gets_a_new_version() {
    use blog::web::static_files::url;
    let app = spawn_app().await;
    let name = format!("review10-same-stamp-{}.txt", std::process::id());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("static")
        .join(&name);
    let _guard = TempStatic(path.clone());
    std::fs::write(&path, "first").unwrap();
    let stamp = std::fs::metadata(&path).unwrap().modified().unwrap();
    let before = url(&name);
    assert!(before.contains("?v="), "{before}");
    std::fs::write(&path, "other").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(stamp)
        .unwrap();
    let response = app.get(&before).await;
    assert_eq!(response.status(), StatusCode::OK);
    let policy = response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.text().await.unwrap();
    assert_eq!(body, "other");
    assert_ne!(
        policy, "public, max-age=31536000, immutable",
        "the new bytes are served immutable under the old version {before}"
    );
    assert_ne!(url(&name), before, "the version of the new content");
}

/// The `<h1` headings of a post's page and the HTML of the feed's entries.
async fn headings(app: &crate::helpers::TestApp, slug: &str) -> (usize, String) {
    let (status, page) = app.get_text(&format!("/posts/{slug}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (_, xml) = app.get_text("/feed.xml").await;
    let feed = roxmltree::Document::parse(&xml).unwrap();
    let html: String = feed
        .descendants()
        .filter(|n| n.has_tag_name("content"))
        .filter_map(|n| n.text())
        .collect();
    (page.matches("<h1").count(), html)
}

/// A title typed decomposed (NFD, as some keyboards and pastes give it) is stored NFC, the body
/// as typed: its first `# Café` is the title the reader sees, and is shown twice. Fails: the
/// page has two `<h1>`s and the feed's entry the heading, as `without_title` compares the body's
/// NFD line with the NFC title.
#[tokio::test]
async fn a_leading_title_heading_typed_decomposed_is_hidden() {
    let app = spawn_app().await;
    app.create_post(json!({
        "title": "Cafe\u{301} noir", "slug": "noir", "published": true,
        "body": "# Cafe\u{301} noir\n\nStrong.\n"
    }))
    .await;
    let (h1s, feed) = headings(&app, "noir").await;
    assert!(!feed.contains("</h1>"), "{feed}");
    assert_eq!(h1s, 1, "the title once");
}

/// Holds: only a first ATX `# <the title>` goes (closing #s after a space; up to three spaces;
/// "# Hello # #" whose heading is "Hello #" for the title "Hello #"; "# C#" for "C#"), or a
/// first setext heading of level 1 that is the title (since content2); one in another case, a
/// heading after text, in a fence, of level 2, "# Hello #" for the title
/// "Hello #" (its heading is "Hello") stay; the list's excerpt and the search result show the
/// text after the heading; the page's description too.
#[tokio::test]
async fn holds_only_a_first_heading_equal_to_the_title_goes() {
    let app = spawn_app().await;
    for (i, (title, body, hidden)) in [
        ("Hello #", "# Hello # #\n\nAlpha words.\n", true),
        ("C#", "# C#\n\nAlpha words.\n", true),
        ("Hello", "   # Hello\t##  \n\nAlpha words.\n", true),
        ("Hello", "#\tHello\r\n\r\nAlpha words.\r\n", true),
        ("Hello #", "# Hello #\n\nAlpha words.\n", false),
        ("Hello", "Hello\n=====\n\nAlpha words.\n", true),
        ("Hello", "HELLO\n=====\n\nAlpha words.\n", false),
        ("Hello", "Alpha words.\n\n# Hello\n", false),
        (
            "Hello",
            "```\n# Hello\n```\n\n# Hello\n\nAlpha words.\n",
            false,
        ),
        ("Hello", "## Hello\n\nAlpha words.\n", false),
    ]
    .into_iter()
    .enumerate()
    {
        let slug = format!("p{i}");
        app.create_post(json!({ "title": title, "slug": slug, "body": body, "published": true }))
            .await;
        let (status, page) = app.get_text(&format!("/posts/{slug}")).await;
        assert_eq!(status, StatusCode::OK);
        let article = &page[page.find("<article").unwrap()..];
        let shown = article.matches("<h1").count() + article.matches("<h2").count();
        assert_eq!(
            shown,
            if hidden { 1 } else { 2 },
            "{title:?} {body:?}: {article}"
        );
        assert!(article.contains("Alpha words."), "{article}");
        let (_, post) = app.api_get(&format!("/posts/{slug}")).await;
        assert_eq!(post["body"], body, "kept as stored");
        if hidden {
            assert!(
                page.contains(r#"name="description" content="Alpha words.""#),
                "{page}"
            );
        }
    }
    let (_, results) = app.get_text("/search?q=alpha").await;
    assert_eq!(results.matches("Alpha words.").count(), 10, "{results}");
}

/// Holds: a title with a letter (not only marks) of any script always makes a slug (a proptest of
/// any characters), and `/admin/posts/<slug>/edit` answers the edit form asked with the slug as
/// raw UTF-8 or decomposed (NFD), its form's action encoded; saved from the NFD form, the post
/// keeps its NFC slug.
#[tokio::test]
async fn holds_any_title_with_a_letter_has_a_slug_and_raw_or_nfd_edit_addresses() {
    use blog::blog::input::Slug;
    use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};
    let config = proptest::test_runner::Config {
        cases: 5000,
        ..Default::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new_with_rng(
        config,
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    runner
        .run(
            &proptest::collection::vec(proptest::char::any(), 0..12),
            |chars| {
                let title: String = chars.into_iter().collect();
                let letters = title.chars().any(|c| {
                    c.is_alphanumeric() && c.general_category_group() != GeneralCategoryGroup::Mark
                });
                proptest::prop_assert_eq!(
                    Slug::from_title(&title).is_some(),
                    letters,
                    "{:?}",
                    title
                );
                Ok(())
            },
        )
        .unwrap();

    let app = spawn_app().await;
    app.login().await;
    app.create_post(json!({ "title": "Crème brûlée", "slug": "crème-日本", "published": true }))
        .await;
    let cookies = crate::helpers::login_cookies(&app).await;
    let raw = format!(
        "GET /admin/posts/crème-日本/edit HTTP/1.1\r\nHost: {}\r\nCookie: {cookies}\r\nConnection: close\r\n\r\n",
        host_of(&app)
    );
    let answer = raw_exchange(&host_of(&app), raw.as_bytes(), Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let action = format!(r#"action="/admin/posts/{}""#, encoded("crème-日本"));
    assert!(answer.contains(&action), "{answer}");

    let nfd = format!("/admin/posts/{}/edit", encoded("cre\u{300}me-日本"));
    let (status, page) = app.get_text(&nfd).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let form = &page[page
        .find("<form method=\"post\" action=\"/admin/posts/")
        .unwrap()..];
    let form = &form[..form.find("</form>").unwrap()];
    let action = form["<form method=\"post\" action=\"".len()..]
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let mut fields = hidden_inputs(form);
    fields.extend([
        ("title".to_owned(), "Crème brûlée".to_owned()),
        ("slug".to_owned(), "crème-日本".to_owned()),
        ("body".to_owned(), "edited".to_owned()),
        ("tags".to_owned(), String::new()),
        ("published".to_owned(), "on".to_owned()),
    ]);
    let response = app
        .client
        .post(app.url(&action))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{action}");
    assert_eq!(
        location(response.headers()),
        format!("/posts/{}", encoded("crème-日本"))
    );
    let (_, post) = app
        .api_get(&format!("/posts/{}", encoded("crème-日本")))
        .await;
    assert_eq!(post["body"], "edited");
    assert_eq!(post["slug"], "crème-日本");
}
