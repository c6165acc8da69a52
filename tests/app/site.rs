//! What readers and machines expect of a blog: search, the Atom feed, the sitemap, robots.txt,
//! meta tags, `<time>`, the empty home page, the footer, timestamps.

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app};

async fn get_typed(app: &TestApp, path: &str) -> (String, String) {
    let response = app.get(path).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    (content_type, response.text().await.unwrap())
}

async fn three_posts(app: &TestApp) {
    app.create_post(json!({
        "title": "Replication notes",
        "body": "LiteFS replicates the **database** file.\n\n```rust\nfn main() {}\n```\n",
        "tags": ["litefs"],
        "published": true
    }))
    .await;
    app.create_post(json!({
        "title": "Gardening",
        "body": "Tomatoes & basil, < 3 of each.",
        "published": true
    }))
    .await;
    app.create_post(json!({
        "title": "Secret draft",
        "body": "Tomatoes nobody may see yet.",
        "published": false
    }))
    .await;
}

#[tokio::test]
async fn search_finds_posts_by_words_in_their_body() {
    let app = spawn_app().await;
    three_posts(&app).await;

    let (status, page) = app.api_get("/posts?q=tomatoes").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total_items"], 1, "drafts stay hidden: {page}");
    assert_eq!(page["items"][0]["slug"], "gardening");
    // Stemmed: "replicating" finds "replicates"; every word must match.
    let (_, page) = app.api_get("/posts?q=replicating%20database").await;
    assert_eq!(page["items"][0]["slug"], "replication-notes", "{page}");
    let (_, page) = app.api_get("/posts?q=replicating%20basil").await;
    assert_eq!(page["total_items"], 0, "{page}");
    // Every word also finds the words it begins, as a search box is expected to: "lite" finds
    // "LiteFS", "tomat basil" finds "Tomatoes & basil".
    let (_, page) = app.api_get("/posts?q=lite").await;
    assert_eq!(page["total_items"], 1, "{page}");
    assert_eq!(page["items"][0]["slug"], "replication-notes", "{page}");
    let (_, page) = app.api_get("/posts?q=tomat%20basil").await;
    assert_eq!(page["items"][0]["slug"], "gardening", "{page}");
    let (_, page) = app.api_get("/posts?q=lite%20basil").await;
    assert_eq!(
        page["total_items"], 0,
        "every word still must match: {page}"
    );
    // FTS5 syntax in the text is just words, never an error.
    let (status, page) = app.api_get("/posts?q=%22NEAR(%20*%20OR").await;
    assert_eq!(status, StatusCode::OK, "{page}");

    // The admin sees drafts too.
    let (_, page) = app
        .api_call(reqwest::Method::GET, "/posts?q=tomatoes", None)
        .await;
    assert_eq!(page["total_items"], 2, "{page}");

    // An edit is searchable at once (the triggers keep the index in step), a delete drops out.
    let (status, _) = app
        .api_call(
            reqwest::Method::PATCH,
            "/posts/gardening",
            Some(
                &json!({"title": "Gardening", "body": "Now about courgettes.", "published": true}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = app.api_get("/posts?q=tomatoes").await;
    assert_eq!(page["total_items"], 0, "{page}");
    let (_, page) = app.api_get("/posts?q=courgettes").await;
    assert_eq!(page["total_items"], 1, "{page}");

    let (status, html) = app.get_text("/search?q=courgettes").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(r#"<a href="/posts/gardening">Gardening</a>"#),
        "{html}"
    );
    assert!(html.contains("1 post(s) contain “courgettes”"), "{html}");
    assert!(
        html.contains(r#"value="courgettes""#),
        "the query stays in the box"
    );
    let (_, html) = app.get_text("/search?q=zucchini").await;
    assert!(html.contains("Nothing found"), "{html}");
}

#[tokio::test]
async fn the_feed_is_atom_with_the_published_posts() {
    let app = spawn_app().await;
    three_posts(&app).await;
    let (content_type, xml) = get_typed(&app, "/feed.xml").await;
    assert_eq!(content_type, "application/atom+xml; charset=utf-8");
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    let feed = doc.root_element();
    assert_eq!(
        feed.tag_name().namespace(),
        Some("http://www.w3.org/2005/Atom")
    );
    assert_eq!(feed.tag_name().name(), "feed");
    let child = |node: roxmltree::Node, name: &str| {
        node.children()
            .find(|c| c.has_tag_name(name))
            .unwrap_or_else(|| panic!("no <{name}> in {xml}"))
            .text()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(child(feed, "title"), "LiteFS Blog");
    assert!(!child(feed, "updated").starts_with("1970"));
    let entries: Vec<_> = feed
        .children()
        .filter(|c| c.has_tag_name("entry"))
        .collect();
    assert_eq!(entries.len(), 2, "drafts are not in the feed: {xml}");
    let titles: Vec<String> = entries.iter().map(|e| child(*e, "title")).collect();
    assert!(titles.contains(&"Gardening".to_owned()));
    let gardening = entries
        .iter()
        .find(|e| child(**e, "title") == "Gardening")
        .unwrap();
    assert_eq!(
        child(*gardening, "content"),
        "<p>Tomatoes &amp; basil, &lt; 3 of each.</p>\n",
        "the content is the rendered HTML, escaped once for XML"
    );
    assert!(child(*gardening, "id").starts_with("tag:127.0.0.1,"));
    let link = gardening
        .children()
        .find(|c| c.has_tag_name("link"))
        .unwrap();
    assert!(
        link.attribute("href")
            .unwrap()
            .ends_with("/posts/gardening")
    );

    // Linked from every page's head.
    let (_, home) = app.get_text("/").await;
    assert!(home.contains(
        r#"<link rel="alternate" type="application/atom+xml" title="LiteFS Blog" href="/feed.xml">"#
    ));
}

#[tokio::test]
async fn sitemap_and_robots() {
    let app = spawn_app().await;
    three_posts(&app).await;
    let (content_type, xml) = get_typed(&app, "/sitemap.xml").await;
    assert_eq!(content_type, "application/xml; charset=utf-8");
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    let locs: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("loc"))
        .filter_map(|n| n.text())
        .collect();
    assert!(
        locs.contains(&app.url("/posts/gardening").as_str()),
        "{xml}"
    );
    assert!(locs.contains(&app.url("/").as_str()), "{xml}");
    assert!(!xml.contains("secret-draft"), "no drafts: {xml}");

    let (content_type, robots) = get_typed(&app, "/robots.txt").await;
    assert!(content_type.starts_with("text/plain"));
    assert!(robots.contains("Disallow: /admin\n"), "{robots}");
    assert!(
        robots.contains(&format!("Sitemap: {}/sitemap.xml", app.base)),
        "{robots}"
    );
}

#[tokio::test]
async fn pages_carry_meta_tags_and_times() {
    let app = spawn_app().await;
    three_posts(&app).await;
    let (_, post) = app.get_text("/posts/gardening").await;
    for tag in [
        r#"<meta name="description" content="Tomatoes &#38; basil, &#60; 3 of each.">"#,
        r#"<meta property="og:type" content="article">"#,
        r#"<meta property="og:title" content="Gardening">"#,
        r#"<link rel="icon" type="image/svg+xml" href="/static/favicon.svg?v="#,
        r##"<a class="skip-link" href="#content">"##,
    ] {
        assert!(post.contains(tag), "no {tag} in {post}");
    }
    assert!(
        post.contains(&format!(
            r#"<link rel="canonical" href="{}/posts/gardening">"#,
            app.base
        )),
        "{post}"
    );
    assert!(post.contains(r#"<time datetime="20"#), "{post}");
    // Highlighted code on a post page: token spans with classes.
    let (_, notes) = app.get_text("/posts/replication-notes").await;
    assert!(
        notes.contains(r#"<code class="language-rust"><span class="hl-source hl-rust">"#),
        "{notes}"
    );

    for path in ["/", "/tags", "/search?q=x", "/admin/login", "/nope"] {
        let (_, html) = app.get_text(path).await;
        assert!(
            html.contains(
                r#"<meta name="description" content="A blog on SQLite, replicated by LiteFS.">"#
            ),
            "{path}"
        );
        assert!(
            html.contains(r#"<meta property="og:url" content="http://127.0.0.1:"#),
            "{path}"
        );
        assert!(
            html.contains(r#"<link rel="canonical" href="http://127.0.0.1:"#),
            "{path}"
        );
    }
    let (_, login) = app.get_text("/admin/login").await;
    assert!(login.contains(r#"<meta name="robots" content="noindex">"#));
    assert!(!post.contains("noindex"));
}

#[tokio::test]
async fn the_empty_home_page_says_how_to_start_and_the_footer_tells_the_truth() {
    let app = spawn_app().await;
    let (_, html) = app.get_text("/").await;
    assert!(
        html.contains(r#"<a href="/admin/login">Log in</a> with the admin password"#),
        "{html}"
    );
    assert!(html.contains("SQLite, one standalone node"), "{html}");
    assert!(
        !html.contains("forwarded"),
        "a standalone node forwards nothing: {html}"
    );
    app.login().await;
    let (_, html) = app.get_text("/").await;
    assert!(
        html.contains(r#"<a class="button" href="/admin/posts/new">Write your first post</a>"#),
        "{html}"
    );
}

#[tokio::test]
async fn timestamps_are_kept_by_the_entities() {
    let app = spawn_app().await;
    let created = app
        .create_post(json!({"title": "Stamped", "body": "b", "published": false}))
        .await;
    let created_at = created["created_at"].as_str().unwrap().to_owned();
    assert_eq!(created["updated_at"].as_str().unwrap(), created_at);
    assert!(created["published_at"].is_null());
    let (status, updated) = app
        .api_call(
            reqwest::Method::PATCH,
            "/posts/stamped",
            Some(&json!({"title": "Stamped", "body": "b2", "published": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["created_at"].as_str().unwrap(), created_at);
    assert!(
        updated["updated_at"].as_str().unwrap() > created_at.as_str(),
        "{updated}"
    );
    assert!(updated["published_at"].is_string());
    // Tags made by the post form's upsert (`Entity::insert`, no hooks) get `created_at` too.
    let (status, tags) = app.api_get("/tags").await;
    assert_eq!(status, StatusCode::OK, "{tags}");
    let tag = app.create_tag("stamped").await;
    assert!(tag["created_at"].is_string(), "{tag}");
}

/// A post's HTML is rendered once and then served from memory (the metrics count the views that
/// did not render), and an edit shows at once, on its page and in the feed.
#[tokio::test]
async fn a_post_renders_once_and_an_edit_shows_at_once() {
    let app = spawn_app().await;
    three_posts(&app).await;
    for _ in 0..2 {
        let (status, html) = app.get_text("/posts/replication-notes").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("<strong>database</strong>"), "{html}");
    }
    let (_, metrics) = app.get_text("/metrics").await;
    let hits: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("blog_render_cache_hits_total "))
        .unwrap_or_else(|| panic!("no render cache hits counted: {metrics}"))
        .trim()
        .parse()
        .unwrap();
    assert!(hits >= 1.0, "{hits}");

    let (status, _) = app
        .api_call(
            reqwest::Method::PATCH,
            "/posts/replication-notes",
            Some(&json!({"body": "LiteFS replicates the **whole** file."})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, html) = app.get_text("/posts/replication-notes").await;
    assert!(html.contains("<strong>whole</strong>"), "{html}");
    assert!(!html.contains("<strong>database</strong>"), "{html}");
    let (_, xml) = get_typed(&app, "/feed.xml").await;
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    let contents: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("content"))
        .filter_map(|n| n.text())
        .collect();
    assert!(
        contents
            .iter()
            .any(|c| c.contains("<strong>whole</strong>")),
        "{contents:?}"
    );
}

// ---- Review (fresh context): what held when trying to make the render cache serve stale HTML.

/// The feed's content of the entry whose body contains `marker`, read as XML text.
fn feed_has(xml: &str, rendered: &str) -> bool {
    // The feed escapes the HTML once more (Atom's type="html"): '<' as &lt; or &#60;.
    let escaped_lt = rendered.replace('<', "&lt;").replace('>', "&gt;");
    let escaped_num = rendered.replace('<', "&#60;").replace('>', "&#62;");
    xml.contains(&escaped_lt) || xml.contains(&escaped_num)
}

/// An edit through the admin form (not only the API) shows at once on the page and in the feed;
/// an edit back to an earlier body (a key already cached) shows that body; a second post with the
/// same body shares it and neither shows the other's title.
#[tokio::test]
async fn review_a_form_edit_and_an_edit_back_show_at_once_on_the_page_and_in_the_feed() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Cached", "body": "first **one**", "published": true }))
        .await;
    app.create_post(json!({ "title": "Twin", "body": "first **one**", "published": true }))
        .await;
    app.login().await;
    for _ in 0..2 {
        let (_, html) = app.get_text("/posts/cached").await;
        assert!(html.contains("<strong>one</strong>"), "{html}");
        let (_, xml) = get_typed(&app, "/feed.xml").await;
        assert!(feed_has(&xml, "<strong>one</strong>"), "{xml}");
    }
    let save = |body: &'static str| {
        let app = &app;
        async move {
            let (_, form) = app.get_text("/admin/posts/cached/edit").await;
            let fields = [
                ("csrf", crate::helpers::csrf_of(&form)),
                ("title", "Cached".to_owned()),
                ("slug", "cached".to_owned()),
                ("body", body.to_owned()),
                ("tags", String::new()),
                ("published", "on".to_owned()),
                ("draft_key", crate::helpers::input_value(&form, "draft_key")),
                ("post_id", crate::helpers::input_value(&form, "post_id")),
                ("version", crate::helpers::input_value(&form, "version")),
            ];
            let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let response = app.post_form("/admin/posts/cached", &fields).await;
            assert_eq!(response.status(), StatusCode::SEE_OTHER);
        }
    };
    save("second **two**").await;
    let (_, html) = app.get_text("/posts/cached").await;
    assert!(html.contains("<strong>two</strong>"), "{html}");
    assert!(!html.contains("<strong>one</strong>"), "{html}");
    let (_, xml) = get_typed(&app, "/feed.xml").await;
    assert!(feed_has(&xml, "<strong>two</strong>"), "{xml}");
    // The twin still shows the first body, under its own title.
    let (_, twin) = app.get_text("/posts/twin").await;
    assert!(
        twin.contains("<strong>one</strong>") && twin.contains("Twin"),
        "{twin}"
    );
    // Back to the first body: the cached HTML of that body, which is right again.
    save("first **one**").await;
    let (_, html) = app.get_text("/posts/cached").await;
    assert!(html.contains("<strong>one</strong>"), "{html}");
    assert!(!html.contains("<strong>two</strong>"), "{html}");
    let (_, xml) = get_typed(&app, "/feed.xml").await;
    assert!(!feed_has(&xml, "<strong>two</strong>"), "{xml}");
}

/// `--render-cache-mb 0`: every view renders, and pages, the feed and edits work as with it.
#[tokio::test]
async fn review_with_the_render_cache_off_pages_and_the_feed_still_render_and_edits_show() {
    let app = crate::helpers::spawn_app_with(&["--render-cache-mb", "0"])
        .await
        .unwrap();
    three_posts(&app).await;
    for _ in 0..2 {
        let (status, html) = app.get_text("/posts/replication-notes").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("<strong>database</strong>"), "{html}");
    }
    let (status, _) = app
        .api_call(
            reqwest::Method::PATCH,
            "/posts/replication-notes",
            Some(&json!({"body": "now **whole**"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, html) = app.get_text("/posts/replication-notes").await;
    assert!(html.contains("<strong>whole</strong>"), "{html}");
    let (_, xml) = get_typed(&app, "/feed.xml").await;
    assert!(feed_has(&xml, "<strong>whole</strong>"), "{xml}");
}

/// A post whose HTML is bigger than the whole cache (1 MB here): shown whole on every view (it
/// is not kept), and an edit of it shows at once.
#[tokio::test]
async fn review_a_post_bigger_than_the_render_cache_is_shown_whole_and_fresh() {
    let app = crate::helpers::spawn_app_with(&["--render-cache-mb", "1"])
        .await
        .unwrap();
    // About 480 KB of Markdown, over 1.3 MB of HTML.
    let body = |end: &str| format!("{}\n\nThe **{end}**.", "*a* ".repeat(120_000));
    app.create_post(json!({ "title": "Huge", "body": body("end"), "published": true }))
        .await;
    for _ in 0..2 {
        let (status, html) = app.get_text("/posts/huge").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.len() > 1024 * 1024, "{}", html.len());
        assert!(
            html.contains("The <strong>end</strong>."),
            "the end is missing"
        );
    }
    let (status, _) = app
        .api_call(
            reqwest::Method::PATCH,
            "/posts/huge",
            Some(&json!({ "body": body("new end") })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, html) = app.get_text("/posts/huge").await;
    assert!(html.contains("The <strong>new end</strong>."));
    assert!(!html.contains("The <strong>end</strong>."));
}

/// Many readers of a post being edited meanwhile: each sees one whole version (the old or the
/// new), never a mix or another post's; once the edit is answered, every view shows the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_concurrent_views_during_edits_see_whole_versions_and_then_the_new_one() {
    let app = spawn_app().await;
    let body = |n: usize| {
        format!(
            "# Version {n}\n\n{}\n\nEnd of version {n}.",
            "text ".repeat(20_000)
        )
    };
    app.create_post(json!({ "title": "Hot", "body": body(0), "published": true }))
        .await;
    app.create_post(json!({ "title": "Cold", "body": "cold *body*", "published": true }))
        .await;
    for n in 1..=3 {
        let views: Vec<_> = (0..12)
            .map(|i| {
                let url = app.url(if i % 4 == 0 {
                    "/posts/cold"
                } else {
                    "/posts/hot"
                });
                tokio::spawn(async move { reqwest::get(url).await.unwrap().text().await.unwrap() })
            })
            .collect();
        let (status, _) = app
            .api_call(
                reqwest::Method::PATCH,
                "/posts/hot",
                Some(&json!({ "body": body(n) })),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        for (i, view) in views.into_iter().enumerate() {
            let html = view.await.unwrap();
            if i % 4 == 0 {
                assert!(html.contains("cold <em>body</em>"), "{html}");
                assert!(!html.contains("Version"), "cold shows hot's body");
                continue;
            }
            let shown: Vec<usize> = (0..=n)
                .filter(|v| html.contains(&format!("<h1>Version {v}</h1>")))
                .collect();
            assert_eq!(shown.len(), 1, "versions {shown:?} in one view");
            let v = shown[0];
            assert!(v + 1 >= n, "version {v} shown during the edit to {n}");
            assert!(
                html.contains(&format!("End of version {v}.")),
                "version {v} cut"
            );
        }
        let (_, html) = app.get_text("/posts/hot").await;
        assert!(
            html.contains(&format!("<h1>Version {n}</h1>")),
            "after edit {n}"
        );
    }
}

/// Many first views at once of a post slow to render (they wait for one render, parked on the
/// blocking pool): `/healthz` never waits for them.
#[tokio::test]
async fn review_views_waiting_for_one_render_do_not_hold_up_the_health_check() {
    let app = spawn_app().await;
    let body: String = (0..4_500)
        .map(|i| format!("- item **{i}** with _emphasis_, `code {i}` and [a link](/posts/p{i})\n"))
        .collect();
    app.create_post(json!({ "title": "Slow", "body": body, "published": true }))
        .await;
    let started = std::time::Instant::now();
    let pages: Vec<_> = (0..6)
        .map(|_| {
            let url = app.url("/posts/slow");
            tokio::spawn(async move {
                let response = reqwest::get(url).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                response.text().await.unwrap().len()
            })
        })
        .collect();
    let client = reqwest::Client::new();
    let mut slowest = std::time::Duration::ZERO;
    while !pages.iter().all(|p| p.is_finished()) {
        let asking = std::time::Instant::now();
        let health = client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        slowest = slowest.max(asking.elapsed());
    }
    let mut lens = Vec::new();
    for page in pages {
        lens.push(page.await.unwrap());
    }
    let took = started.elapsed();
    assert!(lens.windows(2).all(|w| w[0] == w[1]), "{lens:?}");
    // A render on the runtime makes one check wait about as long as the pages (a ratio near 1);
    // off it, checks wait only for the machine (0.26 was seen once under a full CI run, so a
    // quarter was too close).
    assert!(
        slowest < took / 2,
        "a health check waited {slowest:?} of the pages' {took:?}"
    );
}

/// On Fly.io with no `BLOG_PUBLIC_URL`, absolute links follow the request's host but are https:
/// Fly's proxy serves every app over https (`force_https` in fly.toml), and the cookies already
/// say so. Before, a deploy that followed the docs had every canonical link, feed id and sitemap
/// entry on `http://`.
#[tokio::test]
async fn on_fly_without_a_public_url_absolute_links_are_https() {
    let dir = crate::helpers::new_dir();
    let (mut child, addr) =
        crate::helpers::spawn_binary_with(&dir, &[], &[("FLY_APP_NAME", "my-blog")]);
    let client = reqwest::Client::new();
    let mut pages = Vec::new();
    for path in ["/", "/robots.txt", "/sitemap.xml", "/feed.xml"] {
        let response = client
            .get(format!("http://{addr}{path}"))
            .header("host", "my-blog.fly.dev")
            .header("fly-client-ip", "203.0.113.7")
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        pages.push(response.text().await.unwrap());
    }
    let [home, robots, sitemap, feed] = <[String; 4]>::try_from(pages).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        home.contains(r#"<link rel="canonical" href="https://my-blog.fly.dev/">"#),
        "{home}"
    );
    assert!(
        robots.contains("Sitemap: https://my-blog.fly.dev/sitemap.xml"),
        "{robots}"
    );
    assert!(
        sitemap.contains("<loc>https://my-blog.fly.dev/</loc>"),
        "{sitemap}"
    );
    for text in [&home, &robots, &sitemap, &feed] {
        assert!(!text.contains("http://my-blog"), "{text}");
    }
}
