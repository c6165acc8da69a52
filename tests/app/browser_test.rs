//! The blog in a real headless Chromium: the admin flow, and every public and admin page at a
//! desktop and a phone width (no horizontal overflow, no console errors), the feed and sitemap
//! parsed by the browser, highlighted code, dark mode, screenshots.

use fantoccini::Client;
use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait;
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
    "/admin?status=drafts",
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

/// The admin's session ends while they write a post (it expired, or they logged out in another
/// tab): the submit lands on the login, and the text they typed is still in this browser. Signed
/// in again, the form offers it back without overwriting anything by itself; once the post is
/// saved, it is not offered again. An edit of a post keeps its own draft, apart from a new post's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_typed_as_the_session_ends_is_kept_in_the_browser() {
    let app = spawn_app().await;
    app.create_post(json!({
        "title": "Kept apart",
        "body": "The saved body.",
        "tags": [],
        "published": true
    }))
    .await;
    let driver = Chromedriver::start().await;
    let browser = driver.session().await;
    let outcome = draft_flow(&browser, &app).await;
    let source = match &outcome {
        Ok(()) => String::new(),
        Err(_) => browser.source().await.unwrap_or_default(),
    };
    let _ = browser.close().await;
    if let Err(step) = outcome {
        panic!("draft flow failed: {step}\n--- page source ---\n{source}");
    }
    let (status, post) = app.api_get("/posts/written-as-the-session-ended").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the restored post was saved: {post}"
    );
    assert_eq!(post["body"], "Every word of this must survive.");
    assert_eq!(post["tags"], json!(["kept"]));
    let (status, post) = app.api_get("/posts/kept-apart").await;
    assert_eq!(status, StatusCode::OK, "{post}");
    assert_eq!(
        post["body"], "The saved body. Typed as it was deleted. And after.",
        "only the edit sent after the discard was saved, as a new post"
    );
}

const NEW_FORM: &str = "form[action='/admin/posts']";
const NOTICE: &str = ".draft-notice";

/// The form's fields as the page shows them: title, slug, body, tags, published.
async fn form_values(browser: &Client) -> Result<serde_json::Value, String> {
    browser::script(
        browser,
        "const f = document.querySelector('main form[method=post]');
         return [f.title.value, f.slug.value, f.body.value, f.tags.value, f.published.checked];",
    )
    .await
}

/// Opens a post form and waits until the draft script has looked at it; says whether it offers
/// a saved draft back.
async fn open_form(browser: &Client, url: &str) -> Result<bool, String> {
    browser::goto(browser, url).await?;
    browser::wait_for(
        browser,
        fantoccini::Locator::Css("main form[data-draft-key][data-draft-ready]"),
    )
    .await?;
    let notices = browser
        .find_all(fantoccini::Locator::Css(NOTICE))
        .await
        .map_err(|e| format!("looking for the notice: {e}"))?;
    Ok(!notices.is_empty())
}

async fn type_in(browser: &Client, css: &str, text: &str) -> Result<(), String> {
    browser::wait_for(browser, fantoccini::Locator::Css(css))
        .await?
        .send_keys(text)
        .await
        .map_err(|e| format!("typing into {css}: {e}"))
}

async fn draft_flow(browser: &Client, app: &TestApp) -> Result<(), String> {
    use fantoccini::Locator::{Css, XPath};
    let base = &app.base;
    browser::log_in(browser, base, &app.password).await?;

    // Write a post, and the session ends before it is sent.
    browser::goto(browser, &format!("{base}/admin/posts/new")).await?;
    type_in(
        browser,
        &format!("{NEW_FORM} input[name='title']"),
        "Written as the session ended",
    )
    .await?;
    type_in(
        browser,
        &format!("{NEW_FORM} textarea[name='body']"),
        "Every word of this must survive.",
    )
    .await?;
    type_in(browser, &format!("{NEW_FORM} input[name='tags']"), "kept").await?;
    browser::click(browser, Css(&format!("{NEW_FORM} input[name='published']"))).await?;
    app.db
        .execute_unprepared("UPDATE sessions SET expires_at = 0")
        .await
        .map_err(|e| format!("expiring the session: {e}"))?;
    browser::click(browser, Css(&format!("{NEW_FORM} button[type='submit']"))).await?;

    // The submit lands on the login, which leads back to the form; nothing was saved.
    let password = browser::wait_for(browser, Css("input[name='password']")).await?;
    let (status, _) = app.api_get("/posts/written-as-the-session-ended").await;
    if status != StatusCode::NOT_FOUND {
        return Err(format!("the post was saved without a session: {status}"));
    }
    password
        .send_keys(&app.password)
        .await
        .map_err(|e| format!("typing the password: {e}"))?;
    browser::click(
        browser,
        Css("form[action='/admin/login'] button[type='submit']"),
    )
    .await?;

    // The form is empty, and offers the draft back.
    browser::wait_for(browser, Css(NOTICE)).await?;
    let notice = browser::wait_for(browser, Css(NOTICE)).await?;
    let said = notice
        .text()
        .await
        .map_err(|e| format!("the notice's text: {e}"))?;
    if !said.contains("You have unsaved changes from") {
        return Err(format!("the notice says {said:?}"));
    }
    let empty = json!(["", "", "", "", false]);
    if form_values(browser).await? != empty {
        return Err(format!(
            "the form was filled before asking: {:?}",
            form_values(browser).await
        ));
    }
    browser::click(
        browser,
        Css(&format!("{NOTICE} button[data-draft-action='restore']")),
    )
    .await?;
    let restored = json!([
        "Written as the session ended",
        "",
        "Every word of this must survive.",
        "kept",
        true
    ]);
    if form_values(browser).await? != restored {
        return Err(format!("restored: {:?}", form_values(browser).await));
    }
    if !browser
        .find_all(Css(NOTICE))
        .await
        .map_err(|e| e.to_string())?
        .is_empty()
    {
        return Err("the notice stays after restoring".into());
    }

    // Saved, the draft is gone: the form no longer offers it.
    browser::click(browser, Css(&format!("{NEW_FORM} button[type='submit']"))).await?;
    browser::wait_for(
        browser,
        XPath("//p[@class='flash' and contains(., 'Created')]"),
    )
    .await?;
    if open_form(browser, &format!("{base}/admin/posts/new")).await? {
        return Err("the saved post's draft is still offered".into());
    }

    // An edit keeps its own draft: not offered on the new-post form, offered on the edit form.
    // A submit the server rejects (422, the form sent back as typed) does not remove it.
    let edit = format!("{base}/admin/posts/kept-apart/edit");
    if open_form(browser, &edit).await? {
        return Err("an edit form offers a draft nobody wrote".into());
    }
    type_in(
        browser,
        "main form textarea[name='body']",
        " An edit not saved.",
    )
    .await?;
    let title = browser::wait_for(browser, Css("main form input[name='title']")).await?;
    title
        .clear()
        .await
        .map_err(|e| format!("clearing the title: {e}"))?;
    browser::click(browser, Css("main form button[type='submit']")).await?;
    browser::wait_for(browser, Css("#title-error")).await?;
    browser::wait_for(browser, Css("main form[data-draft-ready]")).await?;
    if !browser
        .find_all(Css(NOTICE))
        .await
        .map_err(|e| e.to_string())?
        .is_empty()
    {
        return Err("the rejected form offers what it already shows".into());
    }
    if open_form(browser, &format!("{base}/admin/posts/new")).await? {
        return Err("the new-post form offers the edit's draft".into());
    }
    if !open_form(browser, &edit).await? {
        return Err("the edit's draft is not offered on its form".into());
    }
    browser::click(
        browser,
        Css(&format!("{NOTICE} button[data-draft-action='discard']")),
    )
    .await?;
    if form_values(browser).await?[2] != "The saved body." {
        return Err(format!(
            "discarding changed the form: {:?}",
            form_values(browser).await
        ));
    }
    if open_form(browser, &edit).await? {
        return Err("a discarded draft is offered again".into());
    }

    // An edit of a post deleted meanwhile comes back as a new-post form holding the edit (404),
    // still under the edit's draft; saving it as a new post removes that draft.
    type_in(
        browser,
        "main form textarea[name='body']",
        " Typed as it was deleted.",
    )
    .await?;
    let (status, _) = app
        .api_call(Method::DELETE, "/posts/kept-apart", None)
        .await;
    if !status.is_success() {
        return Err(format!("deleting the post: {status}"));
    }
    browser::click(browser, Css("main form button[type='submit']")).await?;
    browser::wait_for(browser, Css("#form-error")).await?;
    browser::wait_for(browser, Css(&format!("{NEW_FORM}[data-draft-ready]"))).await?;
    if !browser
        .find_all(Css(NOTICE))
        .await
        .map_err(|e| e.to_string())?
        .is_empty()
    {
        return Err("the deleted-meanwhile form offers what it already shows".into());
    }
    type_in(
        browser,
        &format!("{NEW_FORM} textarea[name='body']"),
        " And after.",
    )
    .await?;
    browser::click(browser, Css(&format!("{NEW_FORM} button[type='submit']"))).await?;
    browser::wait_for(
        browser,
        XPath("//p[@class='flash' and contains(., 'Created')]"),
    )
    .await?;
    if open_form(browser, &edit).await? {
        return Err("the edit saved as a new post is still offered on its form".into());
    }
    if open_form(browser, &format!("{base}/admin/posts/new")).await? {
        return Err("the new-post form offers a draft after the edit was saved".into());
    }

    // The 422 and the 404 above are logged by the browser itself; nothing else may be.
    let errors: Vec<String> = browser::console_errors(browser)
        .await?
        .into_iter()
        .filter(|e| !e.contains("the server responded with a status of 4"))
        .collect();
    if !errors.is_empty() {
        return Err(format!("console errors: {errors:?}"));
    }
    Ok(())
}

/// A draft of an edit kept in the browser (the session ended before it was sent, the tab was
/// closed) is restored into the edit form after someone else saved the post: the form now
/// carries the post's new version, so saving the restored text must not silently overwrite that
/// save (it must come back as the conflict it is, with the post as it is now).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_draft_does_not_overwrite_a_save_made_since_it_was_typed() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Drafted", "body": "v1.", "published": true }))
        .await;
    let driver = Chromedriver::start().await;
    let browser = driver.session().await;
    let outcome = restored_draft_flow(&browser, &app).await;
    let source = browser.source().await.unwrap_or_default();
    let _ = browser.close().await;
    if let Err(step) = outcome {
        panic!("restored draft flow failed: {step}\n--- page source ---\n{source}");
    }
    let (_, post) = app.api_get("/posts/drafted").await;
    assert_eq!(
        post["body"], "v2, saved by someone else.",
        "the restored draft was saved over the change made since it was typed; the page: {source}"
    );
    assert!(
        source.contains("changed by someone else"),
        "the save is refused as a conflict: {source}"
    );
}

async fn restored_draft_flow(browser: &Client, app: &TestApp) -> Result<(), String> {
    use fantoccini::Locator::Css;
    let base = &app.base;
    browser::log_in(browser, base, &app.password).await?;
    let edit = format!("{base}/admin/posts/drafted/edit");
    if open_form(browser, &edit).await? {
        return Err("a draft nobody wrote is offered".into());
    }
    type_in(browser, "main form textarea[name='body']", " Typed at v1.").await?;
    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/drafted",
            Some(&json!({ "body": "v2, saved by someone else." })),
        )
        .await;
    if status != StatusCode::OK {
        return Err(format!("the change meanwhile: {status}"));
    }
    if !open_form(browser, &edit).await? {
        return Err("the draft is not offered".into());
    }
    browser::click(
        browser,
        Css(&format!("{NOTICE} button[data-draft-action='restore']")),
    )
    .await?;
    if form_values(browser).await?[2] != "v1. Typed at v1." {
        return Err(format!("restored: {:?}", form_values(browser).await));
    }
    browser::click(browser, Css("main form button[type='submit']")).await?;
    browser::wait_for(browser, Css("p.flash, #form-error")).await?;
    Ok(())
}

/// A draft kept by the drafts script of before versions (no `version` in it), restored after
/// someone else saved the post, must not be saved over that save: its base is unknown, so the
/// save comes back as a conflict. The conflict page then shows the restored text with the post's
/// current version, is not offered the draft again, and saved again it saves, and the draft is
/// gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_of_before_versions_restored_comes_back_as_a_conflict_then_saves() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Old draft", "body": "v1.", "published": true }))
        .await;
    let driver = Chromedriver::start().await;
    let browser = driver.session().await;
    let outcome = old_draft_flow(&browser, &app).await;
    let source = browser.source().await.unwrap_or_default();
    let _ = browser.close().await;
    if let Err(step) = outcome {
        panic!("old draft flow failed: {step}\n--- page source ---\n{source}");
    }
    let (_, post) = app.api_get("/posts/old-draft").await;
    assert_eq!(
        post["body"], "v1. Typed long ago. And after the conflict.",
        "saved again from the conflict page, the restored text is saved"
    );
}

async fn old_draft_flow(browser: &Client, app: &TestApp) -> Result<(), String> {
    use fantoccini::Locator::Css;
    let base = &app.base;
    browser::log_in(browser, base, &app.password).await?;
    let edit = format!("{base}/admin/posts/old-draft/edit");
    if open_form(browser, &edit).await? {
        return Err("a draft nobody wrote is offered".into());
    }
    browser::script(
        browser,
        "localStorage.setItem('blog-draft:edit:old-draft', JSON.stringify({
           title: 'Old draft', slug: 'old-draft', body: 'v1. Typed long ago.', tags: '',
           published: true, savedAt: Date.now() }));",
    )
    .await?;
    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/old-draft",
            Some(&json!({ "body": "v2, saved by someone else." })),
        )
        .await;
    if status != StatusCode::OK {
        return Err(format!("the change meanwhile: {status}"));
    }
    if !open_form(browser, &edit).await? {
        return Err("the old draft is not offered".into());
    }
    browser::click(
        browser,
        Css(&format!("{NOTICE} button[data-draft-action='restore']")),
    )
    .await?;
    browser::click(browser, Css("main form button[type='submit']")).await?;
    browser::wait_for(browser, Css("p.flash, #form-error")).await?;
    let (_, post) = app.api_get("/posts/old-draft").await;
    if post["body"] != "v2, saved by someone else." {
        return Err(format!("the old draft was saved over the change: {post}"));
    }
    // The conflict page: the restored text, not offered again.
    browser::wait_for(browser, Css("main form[data-draft-key][data-draft-ready]")).await?;
    if !browser
        .find_all(Css(NOTICE))
        .await
        .map_err(|e| e.to_string())?
        .is_empty()
    {
        return Err("the conflict page offers the draft it shows".into());
    }
    if form_values(browser).await?[2] != "v1. Typed long ago." {
        return Err(format!("conflict page: {:?}", form_values(browser).await));
    }
    type_in(
        browser,
        "main form textarea[name='body']",
        " And after the conflict.",
    )
    .await?;
    browser::click(browser, Css("main form button[type='submit']")).await?;
    browser::wait_for(browser, Css("p.flash")).await?;
    let left = browser::script(
        browser,
        "return localStorage.getItem('blog-draft:edit:old-draft');",
    )
    .await?;
    if !left.is_null() {
        return Err(format!("the draft is still kept after the save: {left}"));
    }
    if open_form(browser, &edit).await? {
        return Err("the saved draft is offered again".into());
    }
    let left = browser::script(browser, FORM_DRAFT).await?;
    if !left.is_null() {
        return Err(format!("the draft is still kept after the save: {left}"));
    }
    Ok(())
}

/// The post's draft, read in the page: the value kept under the key the open form gives it.
const FORM_DRAFT: &str = "return localStorage.getItem('blog-draft:'
     + document.querySelector('main form[data-draft-key]').dataset.draftKey);";

/// A draft of an edit belongs to the post, not to its address: typed in the edit form, the page
/// closed, then someone else gives the post another slug. The draft used to be kept under the
/// slug, so the post's edit form at its new address never offered it, and a new post made at the
/// old address was offered the other post's text. The draft must follow the post; restored, it
/// still carries the version it was typed against (so saving it is a conflict, the slug change
/// is not undone); and the new post at the old address offers nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_draft_follows_its_post_to_a_new_slug_not_to_a_new_post_at_the_old_one() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Moving", "body": "v1.", "published": true }))
        .await;
    let driver = Chromedriver::start().await;
    let browser = driver.session().await;
    let outcome = moved_draft_flow(&browser, &app).await;
    let source = browser.source().await.unwrap_or_default();
    let _ = browser.close().await;
    if let Err(step) = outcome {
        panic!("moved draft flow failed: {step}\n--- page source ---\n{source}");
    }
    let (status, post) = app.api_get("/posts/moved").await;
    assert_eq!(status, StatusCode::OK, "{post}");
    assert_eq!(
        post["body"], "v1.",
        "the draft typed before the slug changed was saved over the change; the page: {source}"
    );
}

async fn moved_draft_flow(browser: &Client, app: &TestApp) -> Result<(), String> {
    use fantoccini::Locator::Css;
    let base = &app.base;
    browser::log_in(browser, base, &app.password).await?;
    let old_address = format!("{base}/admin/posts/moving/edit");
    if open_form(browser, &old_address).await? {
        return Err("a draft nobody wrote is offered".into());
    }
    type_in(
        browser,
        "main form textarea[name='body']",
        " Typed before the move.",
    )
    .await?;
    // The page is closed (the admin goes elsewhere), and the post is given another slug.
    browser::goto(browser, &format!("{base}/admin")).await?;
    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/moving",
            Some(&json!({ "slug": "moved" })),
        )
        .await;
    if status != StatusCode::OK {
        return Err(format!("the slug change: {status}"));
    }
    if !open_form(browser, &format!("{base}/admin/posts/moved/edit")).await? {
        return Err("the draft is not offered on the post's edit form at its new address".into());
    }
    browser::click(
        browser,
        Css(&format!("{NOTICE} button[data-draft-action='restore']")),
    )
    .await?;
    let values = form_values(browser).await?;
    if values[1] != "moving" || values[2] != "v1. Typed before the move." {
        return Err(format!("restored: {values:?}"));
    }
    browser::click(browser, Css("main form button[type='submit']")).await?;
    browser::wait_for(browser, Css("p.flash, #form-error")).await?;
    let page = browser.source().await.map_err(|e| e.to_string())?;
    if !page.contains("changed by someone else") {
        return Err("the restored draft's save is not refused as a conflict".into());
    }

    // A new post at the old address is another post: it is not offered the moved post's draft.
    app.create_post(json!({ "title": "Moving", "body": "another post.", "published": true }))
        .await;
    if open_form(browser, &old_address).await? {
        return Err("the new post at the old address is offered the moved post's draft".into());
    }
    Ok(())
}

/// Drafts kept before they were keyed by the post (under `edit:<slug>`) are not lost by the
/// deploy: the edit form at that slug offers such a draft, moved to the post's own key (so it is
/// read under the slug once, and offered again from the post's key), and once saved it is gone.
/// A draft kept under the slug before the post at that slug was created (the post that had the
/// address then was given another one, or deleted) is not that post's: not offered to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_kept_under_a_slug_moves_to_its_post_and_skips_a_newer_post_there() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Kept by slug", "body": "v1.", "published": true }))
        .await;
    app.create_post(json!({ "title": "First home", "body": "v1.", "published": true }))
        .await;
    let driver = Chromedriver::start().await;
    let browser = driver.session().await;
    let outcome = slug_draft_flow(&browser, &app).await;
    let source = browser.source().await.unwrap_or_default();
    let _ = browser.close().await;
    if let Err(step) = outcome {
        panic!("slug-keyed draft flow failed: {step}\n--- page source ---\n{source}");
    }
    let (_, post) = app.api_get("/posts/kept-by-slug").await;
    assert_eq!(post["body"], "v1. Typed before the deploy. Saved after.");
}

/// Keeps a draft of the open edit form's post, at the version the form shows, as the drafts
/// script of before ids did: under `edit:<slug>`.
async fn keep_under_slug(browser: &Client, slug: &str, body: &str) -> Result<(), String> {
    browser::script(
        browser,
        &format!(
            "const f = document.querySelector('main form[data-draft-key]');
             localStorage.setItem('blog-draft:edit:{slug}', JSON.stringify({{
               title: f.title.value, slug: f.slug.value, body: {body:?}, tags: f.tags.value,
               published: f.published.checked, savedAt: Date.now() - 60000,
               version: f.version.value }}));"
        ),
    )
    .await
    .map(|_| ())
}

async fn slug_draft_flow(browser: &Client, app: &TestApp) -> Result<(), String> {
    use fantoccini::Locator::{Css, XPath};
    let base = &app.base;
    browser::log_in(browser, base, &app.password).await?;
    let edit = format!("{base}/admin/posts/kept-by-slug/edit");
    if open_form(browser, &edit).await? {
        return Err("a draft nobody wrote is offered".into());
    }
    keep_under_slug(browser, "kept-by-slug", "v1. Typed before the deploy.").await?;
    if !open_form(browser, &edit).await? {
        return Err("the draft kept under the slug is not offered".into());
    }
    let under_slug = browser::script(
        browser,
        "return localStorage.getItem('blog-draft:edit:kept-by-slug');",
    )
    .await?;
    if !under_slug.is_null() {
        return Err(format!(
            "the draft is still kept under the slug: {under_slug}"
        ));
    }
    let under_post = browser::script(browser, FORM_DRAFT).await?;
    if !under_post
        .as_str()
        .is_some_and(|d| d.contains("Typed before the deploy."))
    {
        return Err(format!(
            "the draft is not kept under the post's key: {under_post}"
        ));
    }
    if !open_form(browser, &edit).await? {
        return Err("the draft is not offered again from the post's key".into());
    }
    browser::click(
        browser,
        Css(&format!("{NOTICE} button[data-draft-action='restore']")),
    )
    .await?;
    type_in(browser, "main form textarea[name='body']", " Saved after.").await?;
    browser::click(browser, Css("main form button[type='submit']")).await?;
    browser::wait_for(
        browser,
        XPath("//p[@class='flash' and contains(., 'Saved')]"),
    )
    .await?;
    if open_form(browser, &edit).await? {
        return Err("the saved draft is offered again".into());
    }
    let left = browser::script(browser, FORM_DRAFT).await?;
    if !left.is_null() {
        return Err(format!("the draft is still kept after the save: {left}"));
    }

    // A draft kept under "first-home" for the post there, which is then given another address;
    // a new post is made at "first-home". Its edit form must not offer the other post's text.
    let first = format!("{base}/admin/posts/first-home/edit");
    if open_form(browser, &first).await? {
        return Err("a draft nobody wrote is offered".into());
    }
    keep_under_slug(browser, "first-home", "v1. Typed for the first post.").await?;
    browser::goto(browser, &format!("{base}/admin")).await?;
    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/first-home",
            Some(&json!({ "slug": "second-home" })),
        )
        .await;
    if status != StatusCode::OK {
        return Err(format!("the slug change: {status}"));
    }
    app.create_post(json!({ "title": "First home", "body": "another post.", "published": true }))
        .await;
    if open_form(browser, &first).await? {
        return Err("the new post at the slug is offered a draft kept before it existed".into());
    }
    Ok(())
}

/// The admin types in an edit form, follows a link away, someone else saves the post, and the
/// admin comes Back: the browser puts the typed text back into the form (its form state), while
/// the page, fetched again, carries the post's new version. Saved, that text must come back as a
/// conflict, not be saved over the change it never saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_the_browser_restores_on_back_does_not_overwrite_a_save_made_since() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Went back", "body": "v1.", "published": true }))
        .await;
    let driver = Chromedriver::start().await;
    let browser = driver.session().await;
    let outcome = back_flow(&browser, &app).await;
    let source = browser.source().await.unwrap_or_default();
    let _ = browser.close().await;
    if let Err(step) = outcome {
        panic!("back flow failed: {step}\n--- page source ---\n{source}");
    }
    let (_, post) = app.api_get("/posts/went-back").await;
    assert_eq!(
        post["body"], "v2, saved by someone else.",
        "text typed at v1 and put back by the browser was saved over v2; the page: {source}"
    );
}

async fn back_flow(browser: &Client, app: &TestApp) -> Result<(), String> {
    use fantoccini::Locator::Css;
    let base = &app.base;
    browser::log_in(browser, base, &app.password).await?;
    let edit = format!("{base}/admin/posts/went-back/edit");
    open_form(browser, &edit).await?;
    type_in(browser, "main form textarea[name='body']", " Typed at v1.").await?;
    browser::goto(browser, &format!("{base}/admin")).await?;
    let (status, _) = app
        .api_call(
            Method::PATCH,
            "/posts/went-back",
            Some(&json!({ "body": "v2, saved by someone else." })),
        )
        .await;
    if status != StatusCode::OK {
        return Err(format!("the change meanwhile: {status}"));
    }
    browser.back().await.map_err(|e| format!("back: {e}"))?;
    browser::wait_for(browser, Css("main form[data-draft-key][data-draft-ready]")).await?;
    if form_values(browser).await?[2] != "v1. Typed at v1." {
        return Err(format!("after Back: {:?}", form_values(browser).await));
    }
    browser::click(browser, Css("main form button[type='submit']")).await?;
    browser::wait_for(browser, Css("p.flash, #form-error")).await?;
    Ok(())
}

// ---- Review (fresh context): drafts kept under a slug, and posts that reach that slug later. ----

/// Runs `flow` in a fresh Chromium session against `app`, failing the test with the page's
/// source when it fails.
async fn in_browser<'a, F, Fut>(app: &'a TestApp, what: &str, flow: F)
where
    F: FnOnce(Client, &'a TestApp) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let driver = Chromedriver::start().await;
    let browser = driver.session().await;
    let outcome = flow(browser.clone(), app).await;
    let source = browser.source().await.unwrap_or_default();
    let _ = browser.close().await;
    if let Err(step) = outcome {
        panic!("{what}: {step}\n--- page source ---\n{source}");
    }
}

/// A draft kept under `edit:first-home` (by the script of before ids) for the post P that had
/// that slug; P is then given another slug, and an *older* post Z (created before the draft was
/// typed) is given "first-home". Nothing kept says which post a draft under a slug was typed
/// for, nor when Z got the slug, so Z's edit form offers P's text (hiding it would lose it from
/// view: P's form at its new slug never looks under the old one). What must hold is that it
/// cannot overwrite Z: restored, it carries P's version, so saving it is a conflict showing Z as
/// it is, and Z is unchanged. (Review: the first version of this test asked that Z not be offered
/// the draft; the script cannot tell, see `static/drafts.js`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_a_draft_kept_under_a_slug_and_offered_to_an_older_post_renamed_to_it_cannot_overwrite_it()
 {
    let app = spawn_app().await;
    // Z first: created before P, and before the draft.
    app.create_post(json!({ "title": "Elsewhere", "body": "Z's own text.", "published": true }))
        .await;
    app.create_post(json!({ "title": "First home", "body": "v1.", "published": true }))
        .await;
    in_browser(
        &app,
        "older post renamed to a draft's slug",
        |browser, app| async move {
            use fantoccini::Locator::Css;
            let base = &app.base;
            browser::log_in(&browser, base, &app.password).await?;
            let first = format!("{base}/admin/posts/first-home/edit");
            if open_form(&browser, &first).await? {
                return Err("a draft nobody wrote is offered".into());
            }
            keep_under_slug(&browser, "first-home", "v1. Typed for the first post.").await?;
            browser::goto(&browser, &format!("{base}/admin")).await?;
            for (from, to) in [("first-home", "second-home"), ("elsewhere", "first-home")] {
                let (status, _) = app
                    .api_call(
                        Method::PATCH,
                        &format!("/posts/{from}"),
                        Some(&json!({ "slug": to })),
                    )
                    .await;
                if status != StatusCode::OK {
                    return Err(format!("the slug change {from} -> {to}: {status}"));
                }
            }
            if !open_form(&browser, &first).await? {
                return Err("the draft kept under the slug is not offered".into());
            }
            browser::click(
                &browser,
                Css(&format!("{NOTICE} button[data-draft-action='restore']")),
            )
            .await?;
            browser::click(&browser, Css("main form button[type='submit']")).await?;
            browser::wait_for(&browser, Css("p.flash, #form-error")).await?;
            let (_, z) = app.api_get("/posts/first-home").await;
            if z["title"] != "Elsewhere" || z["body"] != "Z's own text." {
                return Err(format!("the other post's draft was saved over Z: {z}"));
            }
            let (_, p) = app.api_get("/posts/second-home").await;
            if p["body"] != "v1." {
                return Err(format!("the first post changed: {p}"));
            }
            Ok(())
        },
    )
    .await;
}

/// A draft kept under `edit:reused` by the script of before versions (no version in it) an hour
/// ago; since then the post at "reused" was deleted and a new post made there. The draft was
/// typed before that post existed (its savedAt says so), so by the rule of the move (moved only
/// if typed after the post at the slug was created) it is not that post's: it must not be
/// offered on its form. Without a version the script cannot tell, and moves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_a_versionless_draft_kept_under_a_slug_is_not_offered_to_a_post_created_after_it() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Reused", "body": "first post.", "published": true }))
        .await;
    in_browser(
        &app,
        "versionless draft, new post at its slug",
        |browser, app| async move {
            let base = &app.base;
            browser::log_in(&browser, base, &app.password).await?;
            let edit = format!("{base}/admin/posts/reused/edit");
            if open_form(&browser, &edit).await? {
                return Err("a draft nobody wrote is offered".into());
            }
            browser::script(
                &browser,
                "localStorage.setItem('blog-draft:edit:reused', JSON.stringify({
               title: 'Reused', slug: 'reused', body: 'Typed for the first post, long ago.',
               tags: '', published: true, savedAt: Date.now() - 3600000 }));",
            )
            .await?;
            browser::goto(&browser, &format!("{base}/admin")).await?;
            let (status, _) = app.api_call(Method::DELETE, "/posts/reused", None).await;
            if status != StatusCode::NO_CONTENT {
                return Err(format!("the delete: {status}"));
            }
            app.create_post(
                json!({ "title": "Reused", "body": "second post.", "published": true }),
            )
            .await;
            if open_form(&browser, &edit).await? {
                let offered = browser::script(&browser, FORM_DRAFT).await?;
                return Err(format!(
                    "the new post at reused is offered a draft typed an hour before it was \
                 created: {offered}"
                ));
            }
            Ok(())
        },
    )
    .await;
}

/// The newcomer's review: `![cat](https://...)` showed only its alt text, the CSP allowing images
/// from the blog itself and `data:` only. An https image is loaded now (here it fails to connect:
/// the point is that the browser tries); an `http:` one is still refused by the CSP (mixed
/// content on an https blog); a file in `static/` linked as `/static/...` loads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_images_are_loaded_and_http_ones_refused() {
    let app = spawn_app().await;
    app.create_post(json!({
        "title": "Pictures",
        "slug": "pictures",
        "body": "![https cat](https://127.0.0.1:1/https-cat.png)\n\n\
                 ![http cat](http://127.0.0.1:1/http-cat.png)\n\n\
                 ![icon](/static/favicon.svg)\n",
        "published": true
    }))
    .await;
    let driver = Chromedriver::start().await;
    let browser = driver.session().await;
    let seen = async {
        browser::goto(&browser, &app.url("/posts/pictures")).await?;
        let icon = browser::script(
            &browser,
            "const i = document.querySelector('img[alt=icon]'); \
             return i.complete && i.naturalWidth > 0;",
        )
        .await?;
        Ok::<_, String>((icon, browser::console_errors(&browser).await?))
    }
    .await;
    let _ = browser.close().await;
    let (icon, errors) = seen.unwrap_or_else(|e| panic!("{e}"));
    let refused = |name: &str| {
        errors
            .iter()
            .any(|e| e.contains(name) && e.contains("Content Security Policy"))
    };
    assert_eq!(icon, json!(true), "the static file is shown: {errors:?}");
    assert!(refused("http-cat.png"), "http stays refused: {errors:?}");
    assert!(!refused("https-cat.png"), "https is allowed: {errors:?}");
    assert!(
        errors.iter().any(|e| e.contains("https-cat.png")),
        "the https image was tried (and failed to connect): {errors:?}"
    );
}
