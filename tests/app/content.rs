//! Findings of a newcomer's review of the blog's content handling: slugs of titles in other
//! languages, tags of drafts, images, static files' caching, and small things.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{encoded, form_with, hidden_inputs, input_value, location, spawn_app};

/// The review: "Été à Paris" got the slug `t-paris`, "日本語のポスト" none (422, "the title has
/// no letters or digits"). Latin letters lose their accents; other scripts' letters are kept.
#[tokio::test]
async fn titles_in_other_languages_get_slugs() {
    let app = spawn_app().await;
    for (title, slug) in [
        ("Été à Paris", "ete-a-paris"),
        ("Über uns", "uber-uns"),
        ("Crème brûlée für Straße", "creme-brulee-fur-strasse"),
        ("日本語のポスト", "日本語のポスト"),
    ] {
        let (status, post) = app
            .api_call(Method::POST, "/posts", Some(&json!({ "title": title })))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{title}: {post}");
        assert_eq!(post["slug"], slug, "{title}");
    }
    let (status, post) = app
        .api_call(
            Method::POST,
            "/posts",
            Some(&json!({ "title": "Typed", "slug": "日本語" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{post}");
    assert_eq!(post["slug"], "日本語");
    let (status, error) = app
        .api_call(
            Method::POST,
            "/posts",
            Some(&json!({ "title": "Typed", "slug": "日本 語" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert!(error.to_string().contains("lowercase letters"), "{error}");
}

/// A post whose slug is not ASCII, through every route that names it: the form's redirects, the
/// post's page and canonical link, the dashboard's links, the edit and delete forms, the API by
/// slug, the feed and the sitemap. Links and `Location` are percent-encoded.
#[tokio::test]
async fn a_unicode_slug_works_on_every_route() {
    let app = spawn_app().await;
    app.login().await;
    let slug = "日本語のポスト";
    let path = format!("/posts/{}", encoded(slug));
    let csrf = app.csrf_for("/admin/posts/new").await;
    let response = app
        .post_form(
            "/admin/posts",
            &[
                ("csrf", &csrf),
                ("title", "日本語のポスト"),
                ("slug", ""),
                ("body", "本文"),
                ("published", "on"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(response.headers()), path);

    // Asked with lower-case hex, the page names itself in the one way.
    let (status, page) = app.get_text(&path.to_lowercase()).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let canonical = format!(r#"<link rel="canonical" href="{}{path}">"#, app.base);
    assert!(page.contains(&canonical), "{canonical} in {page}");
    let edit = format!("/admin/posts/{}/edit", encoded(slug));
    assert!(page.contains(&format!(r#"href="{edit}""#)), "{page}");

    let (_, dashboard) = app.get_text("/admin").await;
    assert!(
        dashboard.contains(&format!(r#"href="{path}""#)),
        "{dashboard}"
    );
    assert!(
        dashboard.contains(&format!(r#"href="{edit}""#)),
        "{dashboard}"
    );

    // The edit form, sent back as shown with a new title.
    let (status, form_page) = app.get_text(&edit).await;
    assert_eq!(status, StatusCode::OK, "{form_page}");
    let action = format!("/admin/posts/{}", encoded(slug));
    let form = form_with(&form_page, &format!(r#"action="{action}""#));
    let mut fields = hidden_inputs(form);
    for name in ["title", "slug", "tags"] {
        fields.push((name.into(), input_value(form, name)));
    }
    fields.push(("body".into(), "新しい本文".into()));
    fields.push(("published".into(), "on".into()));
    let response = app
        .client
        .post(app.url(&action))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(response.headers()), path);

    // The API by slug, the feed and the sitemap.
    let (status, post) = app.api_get(&path).await;
    assert_eq!(status, StatusCode::OK, "{post}");
    assert_eq!(post["body"], "新しい本文");
    let (_, feed) = app.get_text("/feed.xml").await;
    assert!(
        feed.contains(&format!(r#"href="{}{path}""#, app.base)),
        "{feed}"
    );
    let (_, sitemap) = app.get_text("/sitemap.xml").await;
    assert!(
        sitemap.contains(&format!("<loc>{}{path}</loc>", app.base)),
        "{sitemap}"
    );
    let (status, patched) = app
        .api_call(Method::PATCH, &path, Some(&json!({ "title": "改題" })))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");

    // Deleted from the dashboard.
    let (_, dashboard) = app.get_text("/admin").await;
    let delete = format!("/admin/posts/{}/delete", encoded(slug));
    let form = form_with(&dashboard, &format!(r#"action="{delete}""#));
    let response = app
        .client
        .post(app.url(&delete))
        .form(&hidden_inputs(form))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get(&path).await.status(), StatusCode::NOT_FOUND);

    // And one made and deleted by the API, by its slug decomposed (NFD) in the address.
    let post = app
        .create_post(json!({ "title": "Café", "slug": "café" }))
        .await;
    assert_eq!(post["slug"], "caf\u{e9}");
    let (status, _) = app
        .api_call(
            Method::DELETE,
            &format!("/posts/{}", encoded("cafe\u{301}")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

/// What a visitor sees of the tag `label`: listed on `/tags` (with its count), its page's status,
/// listed by the public API.
async fn public_view_of_tag(
    app: &crate::helpers::TestApp,
    label: &str,
) -> (bool, StatusCode, bool) {
    let (_, index) = app.get_text("/tags").await;
    let listed = index.contains(&format!(r#"href="/tags/{label}""#));
    let page = app.get(&format!("/tags/{label}")).await.status();
    let (_, api) = app.api_get("/tags").await;
    let in_api = api
        .as_array()
        .expect("tags are an array")
        .iter()
        .any(|t| t["label"] == label);
    (listed, page, in_api)
}

/// The review: a draft's tag is hidden from visitors, but once the draft is deleted (or the tag
/// taken off a post) it showed on `/tags` with 0 posts, its page answered 200 and `/api/tags`
/// listed it: the rule was "a tag with a published post, or on no post at all". The one rule now:
/// visitors see tags that have a published post; the admin sees every tag.
#[tokio::test]
async fn tags_without_a_published_post_are_not_public() {
    let app = spawn_app().await;
    let hidden = (false, StatusCode::NOT_FOUND, false);
    app.create_post(json!({ "title": "Draft", "slug": "draft", "tags": ["secret"] }))
        .await;
    app.create_post(json!({
        "title": "Out", "slug": "out", "tags": ["kept", "dropped"], "published": true
    }))
    .await;
    app.create_tag("empty").await;
    assert_eq!(public_view_of_tag(&app, "secret").await, hidden);
    assert_eq!(
        public_view_of_tag(&app, "dropped").await,
        (true, StatusCode::OK, true)
    );

    let (status, _) = app.api_call(Method::DELETE, "/posts/draft", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .api_call(
            Method::PATCH,
            "/posts/out",
            Some(&json!({ "tags": ["kept"] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for label in ["secret", "dropped", "empty"] {
        assert_eq!(public_view_of_tag(&app, label).await, hidden, "{label}");
    }
    assert_eq!(
        public_view_of_tag(&app, "kept").await,
        (true, StatusCode::OK, true)
    );

    // The admin still sees every tag, to rename or delete one: in the API and in tag management.
    let (status, all) = app.api_call(Method::GET, "/tags", None).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let mut labels: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["label"].as_str().unwrap())
        .collect();
    labels.sort();
    assert_eq!(labels, ["dropped", "empty", "kept", "secret"]);
    app.login().await;
    let (_, manage) = app.get_text("/admin/tags").await;
    for label in ["secret", "dropped", "empty", "kept"] {
        assert!(
            manage.contains(&format!(r#"value="{label}""#)),
            "{label} in {manage}"
        );
    }
}

/// The review: images by URL never showed (`img-src 'self' data:`). https images are allowed,
/// `http:` ones not (mixed content); a file in `static/` is an image of the blog's own. The post
/// form says how to add one.
#[tokio::test]
async fn images_by_https_url_are_allowed_and_the_form_says_how_to_add_one() {
    let app = spawn_app().await;
    let response = app.get("/").await;
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let img_src = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("img-src "))
        .unwrap_or_else(|| panic!("no img-src in {csp}"));
    let sources: Vec<&str> = img_src.split_whitespace().skip(1).collect();
    assert!(sources.contains(&"https:"), "{csp}");
    assert!(
        !sources.iter().any(|s| s.starts_with("http:") || *s == "*"),
        "{csp}"
    );

    app.create_post(json!({
        "title": "Icon",
        "slug": "icon",
        "body": "![icon](/static/favicon.svg) ![cat](https://example.com/cat.png)",
        "published": true
    }))
    .await;
    let (_, page) = app.get_text("/posts/icon").await;
    assert!(
        page.contains(r#"<img src="/static/favicon.svg" alt="icon">"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<img src="https://example.com/cat.png" alt="cat">"#),
        "{page}"
    );
    assert_eq!(
        app.get("/static/favicon.svg").await.status(),
        StatusCode::OK
    );

    app.login().await;
    let (_, form) = app.get_text("/admin/posts/new").await;
    assert!(
        form.contains("https://") && form.contains("/static/"),
        "the form says how to add images: {form}"
    );
    let reference =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reference.md")).unwrap();
    assert!(
        reference.contains("![") && reference.contains("img-src"),
        "docs/reference.md says how to add images and why only https"
    );
}

/// The `/static/...` addresses the page `html` links in `href` or `src` attributes.
fn static_links(html: &str) -> Vec<String> {
    let mut links = Vec::new();
    for attribute in [r#"href="/static/"#, r#"src="/static/"#] {
        for (at, _) in html.match_indices(attribute) {
            let start = at + attribute.find('/').unwrap();
            let end = start + html[start..].find('"').unwrap();
            links.push(crate::helpers::unescape(&html[start..end]));
        }
    }
    links
}

/// The review: `static/style.css` was served with `max-age=3600` at a fixed address, so after a
/// deploy browsers kept the old stylesheet for an hour. Pages link every static file with its
/// content's hash, served `immutable` for a year; the file at its bare address or another
/// version still comes, with a short cache.
#[tokio::test]
async fn static_files_are_linked_by_their_content_s_version() {
    use sha2::Digest;
    let app = spawn_app().await;
    app.create_post(json!({ "title": "P", "slug": "p", "published": true }))
        .await;
    // The page after a save carries the drafts script in base.html; the form has it in its own.
    app.login().await;
    let csrf = app.csrf_for("/admin/posts/new").await;
    let saved = app
        .post_form(
            "/admin/posts",
            &[("csrf", &csrf), ("title", "Saved"), ("body", "b")],
        )
        .await;
    let after_save = location(saved.headers()).to_owned();
    let mut linked = std::collections::BTreeSet::new();
    for path in [
        after_save.as_str(),
        "/",
        "/posts/p",
        "/tags",
        "/search?q=p",
        "/no-such-page",
        "/admin",
        "/admin/posts/new",
        "/admin/posts/p/edit",
        "/admin/tags",
    ] {
        let (_, html) = app.get_text(path).await;
        let links = static_links(&html);
        assert!(!links.is_empty(), "{path} links no static file: {html}");
        linked.extend(links);
    }
    // The login page, as a visitor sees it.
    let login = crate::helpers::bare_client()
        .get(app.url("/admin/login"))
        .send()
        .await
        .unwrap();
    linked.extend(static_links(&login.text().await.unwrap()));
    let names: Vec<&str> = linked
        .iter()
        .map(|l| l["/static/".len()..].split('?').next().unwrap())
        .collect();
    for name in ["style.css", "favicon.svg", "drafts.js"] {
        assert!(names.contains(&name), "{name} in {linked:?}");
    }

    for link in &linked {
        let (name, version) = link["/static/".len()..]
            .split_once("?v=")
            .unwrap_or_else(|| panic!("{link} has no version"));
        let file = std::fs::read(format!("{}/static/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let hash = hex::encode(sha2::Sha256::digest(&file));
        assert!(
            hash.starts_with(version) && version.len() >= 12,
            "{link}: {hash}"
        );

        let response = app.get(link).await;
        assert_eq!(response.status(), StatusCode::OK, "{link}");
        let cache = response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            cache.contains("immutable") && cache.contains("max-age=31536000"),
            "{link}: {cache}"
        );
        assert_eq!(response.bytes().await.unwrap(), file, "{link}");

        for other in [
            format!("/static/{name}"),
            format!("/static/{name}?v=0123456789ab"),
        ] {
            let response = app.get(&other).await;
            assert_eq!(response.status(), StatusCode::OK, "{other}");
            let cache = response.headers()["cache-control"]
                .to_str()
                .unwrap()
                .to_owned();
            let max_age: u64 = cache
                .split(',')
                .find_map(|d| d.trim().strip_prefix("max-age="))
                .map_or(0, |s| s.parse().unwrap());
            assert!(
                !cache.contains("immutable") && max_age <= 300,
                "{other}: {cache}"
            );
            assert_eq!(response.bytes().await.unwrap(), file, "{other}");
        }
    }
}

/// The review's small things. Quotes had no style of their own: the stylesheet gives
/// `blockquote` one, in its colour variables (which the dark scheme redefines).
#[test]
fn blockquotes_have_a_style_in_light_and_dark() {
    let css =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/static/style.css")).unwrap();
    let rule = css
        .lines()
        .find(|l| l.trim_start().starts_with("blockquote") && l.contains('{'))
        .unwrap_or_else(|| panic!("no blockquote rule in style.css"));
    assert!(
        rule.contains("border-left") && rule.contains("var(--"),
        "a quote is marked, in the scheme's colours: {rule}"
    );
}

/// The first sign-in of a browser said "Welcome back."; it says "Signed in." now, and "Welcome
/// back." the next time.
#[tokio::test]
async fn the_first_sign_in_is_not_welcomed_back() {
    let app = spawn_app().await;
    app.login().await;
    let (_, dashboard) = app.get_text("/admin").await;
    assert!(
        dashboard.contains(r#"<p class="flash" role="status">Signed in.</p>"#),
        "{dashboard}"
    );
    let csrf = crate::helpers::csrf_of(&dashboard);
    let response = app.post_form("/admin/logout", &[("csrf", &csrf)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    app.login().await;
    let (_, dashboard) = app.get_text("/admin").await;
    assert!(
        dashboard.contains(r#"<p class="flash" role="status">Welcome back.</p>"#),
        "{dashboard}"
    );
}

/// A body that starts with `# Title`, the post's own title, showed the title twice: that first
/// heading is not shown (the body keeps it); another first heading is.
#[tokio::test]
async fn a_leading_heading_that_repeats_the_title_is_shown_once() {
    let app = spawn_app().await;
    app.create_post(json!({
        "title": "Été à Paris", "slug": "same", "published": true,
        "body": "\n# Été à Paris #\n\nIt was warm.\n"
    }))
    .await;
    app.create_post(json!({
        "title": "Another", "slug": "other", "published": true,
        "body": "# A different heading\n\nText.\n"
    }))
    .await;
    let (_, page) = app.get_text("/posts/same").await;
    assert_eq!(page.matches("Été à Paris</h1>").count(), 1, "{page}");
    assert!(page.contains("It was warm."), "{page}");
    let (_, page) = app.get_text("/posts/other").await;
    assert_eq!(page.matches("<h1").count(), 2, "{page}");
    // The entries' HTML, as a feed reader reads it out of the XML.
    let (_, xml) = app.get_text("/feed.xml").await;
    let feed = roxmltree::Document::parse(&xml).unwrap();
    let html: String = feed
        .descendants()
        .filter(|n| n.has_tag_name("content"))
        .filter_map(|n| n.text())
        .collect();
    assert!(html.contains("It was warm."), "{html}");
    assert!(!html.contains("Été à Paris</h1>"), "{html}");
    assert!(html.contains("A different heading</h1>"), "{html}");
    let (_, post) = app.api_get("/posts/same").await;
    assert_eq!(post["body"], "\n# Été à Paris #\n\nIt was warm.\n", "kept");
}
