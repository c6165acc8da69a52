//! The blog in a real headless Chromium: the admin flow, and every public and admin page at a
//! desktop and a phone width (no horizontal overflow, no console errors), the feed and sitemap
//! parsed by the browser, highlighted code, dark mode, screenshots.

use fantoccini::Client;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::browser::{self, Chromedriver};
use crate::helpers::{TestApp, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_creates_a_tag_and_a_post_in_a_browser() {
    let app = spawn_app().await;
    browser::admin_creates_tag_and_post(
        &app.base,
        &app.password,
        "browser-tag",
        "Hello from Chromium",
    )
    .await;

    // What the browser did is really there.
    assert_eq!(app.tag_labels().await, ["browser-tag"]);
    let (status, post) = app.api_get("/posts/hello-from-chromium").await;
    assert_eq!(status, StatusCode::OK, "the post is published: {post}");
    assert_eq!(post["title"], "Hello from Chromium");
    assert_eq!(post["tags"], serde_json::json!(["browser-tag"]));
    assert_eq!(post["body"], "Written in a *real* browser.");
    let (_, all) = app.api_call(Method::GET, "/posts", None).await;
    assert_eq!(all["total_items"], 1);
}

/// A post with what tends to overflow a phone: a long title, a long unbroken word, a wide table,
/// long code lines; and highlighted code and footnotes.
const DEMO_BODY: &str = "LiteFS copies an SQLite database from one primary node to \
read-only replicas; this blog forwards a replica's writes to the primary[^why].\n\n\
```rust\nasync fn forward_write(db: &ClusterConnection, sql: &str) -> Result<ExecResult, DbErr> {\n    \
db.execute_unprepared(sql).await // the primary's answer, never a local attempt\n}\n```\n\n\
| node | role | answers writes by | lag after a write |\n|---|---|---|---|\n\
| lhr | primary | writing to SQLite itself | none |\n| ams | replica | forwarding to the primary | one LTX file |\n\n\
A long word: Supercalifragilisticexpialidocious-replication-with-no-break-opportunity-at-all.\n\n\
[^why]: A replica's database file is read-only: LiteFS refuses local writes.\n";

async fn seed(app: &TestApp) {
    app.create_post(json!({
        "title": "How writes reach the primary when a replica is asked to make them",
        "slug": "forwarding",
        "body": DEMO_BODY,
        "tags": ["litefs", "sqlite", "rust"],
        "published": true
    }))
    .await;
    app.create_post(json!({
        "title": "A draft",
        "body": "Not yet.",
        "tags": ["drafts"],
        "published": false
    }))
    .await;
}

const PUBLIC_PAGES: &[&str] = &[
    "/",
    "/posts/forwarding",
    "/tags",
    "/tags/litefs",
    "/search?q=replica",
    "/search?q=nothing-matches-this",
    "/admin/login",
    "/no-such-page",
];

const ADMIN_PAGES: &[&str] = &[
    "/admin",
    "/admin/posts/new",
    "/admin/posts/forwarding/edit",
    "/admin/tags",
    "/posts/a-draft",
];

/// Checks the page at `path`: it fits the viewport and logged no console error. A 404 page
/// logs its own status, which is expected there.
async fn check_page(browser: &Client, base: &str, path: &str, width: u32) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(e) = browser::goto(browser, &format!("{base}{path}")).await {
        return vec![e];
    }
    match browser::script(
        browser,
        "return [document.documentElement.scrollWidth, window.innerWidth];",
    )
    .await
    {
        Ok(sizes) => {
            let (scroll, inner) = (sizes[0].as_u64().unwrap(), sizes[1].as_u64().unwrap());
            if inner != u64::from(width) {
                problems.push(format!(
                    "{path} at {width}: the viewport is {inner} px wide"
                ));
            }
            if scroll > inner {
                problems.push(format!(
                    "{path} at {width}: overflows, {scroll} px of content in {inner}"
                ));
            }
        }
        Err(e) => problems.push(e),
    }
    match browser::console_errors(browser).await {
        Ok(errors) => problems.extend(
            errors
                .into_iter()
                .filter(|e| !(path == "/no-such-page" && e.contains("status of 404")))
                .map(|e| format!("{path} at {width}: console error: {e}")),
        ),
        Err(e) => problems.push(e),
    }
    problems
}

/// Every page at one width; screenshots when `screenshots` names a directory.
async fn audit_at(
    driver: &Chromedriver,
    app: &TestApp,
    width: u32,
    screenshots: Option<&std::path::Path>,
) -> Vec<String> {
    let browser = driver.session_at(width).await;
    let mut problems = Vec::new();
    for path in PUBLIC_PAGES {
        problems.extend(check_page(&browser, &app.base, path, width).await);
    }
    if let Err(e) = browser::log_in(&browser, &app.base, &app.password).await {
        problems.push(e);
    }
    for path in ADMIN_PAGES {
        problems.extend(check_page(&browser, &app.base, path, width).await);
    }
    // The dashboard with a delete confirmation open still fits, and asks before deleting.
    if let Err(e) = browser::goto(&browser, &format!("{}/admin", app.base)).await {
        problems.push(e);
    }
    if browser::click(
        &browser,
        fantoccini::Locator::Css("details.confirm summary"),
    )
    .await
    .is_ok()
    {
        match browser::script(
            &browser,
            "return [document.documentElement.scrollWidth, window.innerWidth, \
             !!document.querySelector('details.confirm[open] button[type=submit]').offsetParent];",
        )
        .await
        {
            Ok(v) if v[0].as_u64() <= v[1].as_u64() && v[2] == true => {}
            other => problems.push(format!("dashboard at {width}, delete opened: {other:?}")),
        }
    } else {
        problems.push(format!("dashboard at {width}: no Delete disclosure"));
    }
    problems.extend(feed_and_sitemap_parse(&browser, &app.base).await);
    problems
        .extend(code_is_highlighted_in_both_schemes(&browser, &app.base, width, screenshots).await);
    let _ = browser.close().await;
    problems
}

/// The browser's own XML parser reads the feed and the sitemap without error.
async fn feed_and_sitemap_parse(browser: &Client, base: &str) -> Vec<String> {
    if let Err(e) = browser::goto(browser, &format!("{base}/")).await {
        return vec![e];
    }
    let result = browser::script(
        browser,
        "const parse = async (path, root) => {
           const text = await (await fetch(path)).text();
           const doc = new DOMParser().parseFromString(text, 'application/xml');
           if (doc.getElementsByTagName('parsererror').length) return path + ': parse error';
           if (doc.documentElement.localName !== root) return path + ': root ' + doc.documentElement.localName;
           return path + ': ' + doc.documentElement.children.length;
         };
         return [await parse('/feed.xml', 'feed'), await parse('/sitemap.xml', 'urlset')];",
    )
    .await;
    match result {
        Ok(v)
            if v[0].as_str().is_some_and(|s| s.starts_with("/feed.xml: "))
                && !v.to_string().contains("error")
                && !v.to_string().contains("root") =>
        {
            Vec::new()
        }
        other => vec![format!("feed and sitemap: {other:?}")],
    }
}

/// A post's code has token spans, coloured differently in the light and the dark scheme; takes
/// the screenshots.
async fn code_is_highlighted_in_both_schemes(
    browser: &Client,
    base: &str,
    width: u32,
    screenshots: Option<&std::path::Path>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut colours = Vec::new();
    for dark in [false, true] {
        let scheme = if dark { "dark" } else { "light" };
        if let Err(e) = browser::emulate_dark_scheme(browser, dark).await {
            return vec![e];
        }
        for (name, path) in [("home", "/"), ("post", "/posts/forwarding")] {
            if let Err(e) = browser::goto(browser, &format!("{base}{path}")).await {
                problems.push(e);
                continue;
            }
            if let Some(dir) = screenshots {
                match browser.screenshot().await {
                    Ok(png) => {
                        let file = dir.join(format!("{name}-{scheme}-{width}.png"));
                        std::fs::write(&file, png).expect("writing a screenshot");
                    }
                    Err(e) => problems.push(format!("screenshot: {e}")),
                }
            }
        }
        match browser::script(
            browser,
            "const spans = document.querySelectorAll('pre.highlight code span[class^=\"hl-\"]');
             const keyword = document.querySelector('pre.highlight .hl-storage');
             return [spans.length, keyword ? getComputedStyle(keyword).color : null,
                     getComputedStyle(document.body).backgroundColor];",
        )
        .await
        {
            Ok(v) if v[0].as_u64().unwrap_or(0) > 0 && v[1].is_string() => colours.push(v),
            other => problems.push(format!("highlighting ({scheme}): {other:?}")),
        }
    }
    if colours.len() == 2 && (colours[0][1] == colours[1][1] || colours[0][2] == colours[1][2]) {
        problems.push(format!("dark mode changes no colour: {colours:?}"));
    }
    problems
}

/// Set `BLOG_SCREENSHOTS=docs/screenshots` to (re)write the README's screenshots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_fits_a_desktop_and_a_phone_without_console_errors() {
    let app = spawn_app().await;
    seed(&app).await;
    let screenshots = std::env::var_os("BLOG_SCREENSHOTS").map(std::path::PathBuf::from);
    if let Some(dir) = &screenshots {
        std::fs::create_dir_all(dir).expect("the screenshots directory");
    }
    let driver = Chromedriver::start().await;
    let mut problems = Vec::new();
    for width in [1280, 390] {
        problems.extend(audit_at(&driver, &app, width, screenshots.as_deref()).await);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
