//! The admin dashboard's list of posts: drafts first (the newest edited first), then published
//! posts (the newest published first), 20 a page; and a filter, All / Drafts / Published, each
//! with its count, as links that keep it across the pages.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, spawn_app, unescape};

/// The slugs of the posts a dashboard page lists, in order (each row's delete form names it).
pub fn listed(html: &str) -> Vec<String> {
    let marker = r#"<form method="post" action="/admin/posts/"#;
    html.split(marker)
        .skip(1)
        .map(|rest| rest.split('/').next().unwrap().to_owned())
        .collect()
}

/// The filter's link to `href` on a dashboard page: its text (tags and spaces collapsed), and
/// whether it is marked as the page shown (`aria-current="page"`).
pub fn filter_link(html: &str, href: &str) -> (String, bool) {
    let nav_start = html
        .find(r#"<nav class="filter""#)
        .unwrap_or_else(|| panic!("no filter on the page: {html}"));
    let nav = &html[nav_start..];
    let nav = &nav[..nav.find("</nav>").expect("the filter ends")];
    let marker = format!(r#"href="{href}""#);
    let link_start = nav
        .find(&marker)
        .unwrap_or_else(|| panic!("no link to {href} in {nav}"));
    let open = &nav[..link_start];
    let open = &open[open.rfind("<a").expect("a link")..];
    let rest = &nav[link_start..];
    let tag_end = rest.find('>').unwrap();
    let current = rest[..tag_end].contains(r#"aria-current="page""#)
        || open.contains(r#"aria-current="page""#);
    let inner = &rest[tag_end + 1..rest.find("</a>").unwrap()];
    let mut text = String::new();
    let mut in_tag = false;
    for c in inner.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (unescape(&text), current)
}

/// The pager's link `rel` (`next` or `prev`), unescaped, if there is one.
fn pager_link(html: &str, rel: &str) -> Option<String> {
    let marker = format!(r#"<a rel="{rel}" href=""#);
    let start = html.find(&marker)? + marker.len();
    let rest = &html[start..];
    Some(unescape(&rest[..rest.find('"').unwrap()]))
}

fn next_link(html: &str) -> Option<String> {
    pager_link(html, "next")
}

async fn create(app: &TestApp, slug: &str, published: bool) {
    app.create_post(json!({ "title": slug, "slug": slug, "body": "x", "published": published }))
        .await;
}

async fn patch(app: &TestApp, slug: &str, fields: serde_json::Value) {
    let (status, body) = app
        .api_call(Method::PATCH, &format!("/posts/{slug}"), Some(&fields))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// 62 posts: `pub-0` to `pub-56` published (in that order), drafts `draft-1` to `draft-4` made
/// among them, and `was-public`, published then taken back to a draft; then `draft-2` edited.
/// Drafts by last edit: draft-2, was-public, draft-4, draft-3, draft-1.
async fn blog_of_62() -> TestApp {
    let app = spawn_app().await;
    let mut draft = 0;
    for i in 0..57 {
        create(&app, &format!("pub-{i}"), true).await;
        if i % 14 == 5 {
            draft += 1;
            create(&app, &format!("draft-{draft}"), false).await;
        }
    }
    assert_eq!(draft, 4);
    create(&app, "was-public", true).await;
    patch(&app, "was-public", json!({ "published": false })).await;
    patch(&app, "draft-2", json!({ "body": "edited" })).await;
    app.login().await;
    app
}

const DRAFTS_BY_LAST_EDIT: [&str; 5] = ["draft-2", "was-public", "draft-4", "draft-3", "draft-1"];

/// `pub-{from}` down to `pub-{to}`.
fn published(from: usize, to: usize) -> Vec<String> {
    (to..=from).rev().map(|i| format!("pub-{i}")).collect()
}

#[tokio::test]
async fn all_lists_the_drafts_first_newest_edited_first_then_the_published() {
    let app = blog_of_62().await;
    let (status, html) = app.get_text("/admin").await;
    assert_eq!(status, StatusCode::OK);
    let mut expected: Vec<String> = DRAFTS_BY_LAST_EDIT.iter().map(|s| s.to_string()).collect();
    expected.extend(published(56, 42));
    assert_eq!(listed(&html), expected);
    assert_eq!(next_link(&html).as_deref(), Some("/admin?page=2"));
    let (_, last) = app.get_text("/admin?page=4").await;
    assert_eq!(listed(&last), published(1, 0));
}

#[tokio::test]
async fn the_filter_shows_drafts_or_published_posts_with_their_counts_across_pages() {
    let app = blog_of_62().await;
    let all = ("/admin", "All (62)");
    let drafts = ("/admin?status=drafts", "Drafts (5)");
    let public = ("/admin?status=published", "Published (57)");
    for (path, current) in [
        ("/admin", all.0),
        ("/admin?status=all", all.0),
        ("/admin?page=2", all.0),
        ("/admin?status=drafts", drafts.0),
        ("/admin?status=published", public.0),
        ("/admin?status=published&page=3", public.0),
    ] {
        let (status, html) = app.get_text(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        for (href, text) in [all, drafts, public] {
            let (shown, is_current) = filter_link(&html, href);
            assert_eq!(shown, text, "{path}");
            assert_eq!(is_current, href == current, "{path}: the link to {href}");
        }
    }

    let (_, html) = app.get_text("/admin?status=drafts").await;
    assert_eq!(listed(&html), DRAFTS_BY_LAST_EDIT);
    assert_eq!(next_link(&html), None);

    // The published posts, newest first, page after page, the filter kept by the pager.
    let (_, html) = app.get_text("/admin?status=published").await;
    assert_eq!(listed(&html), published(56, 37));
    let next = next_link(&html).expect("a page 2");
    assert_eq!(next, "/admin?status=published&page=2");
    let (_, html) = app.get_text(&next).await;
    assert_eq!(listed(&html), published(36, 17));
    assert!(html.contains("Page 2 of 3"), "{html}");
    let (_, html) = app.get_text(&next_link(&html).expect("a page 3")).await;
    assert_eq!(listed(&html), published(16, 0));
    assert_eq!(next_link(&html), None);
    assert_eq!(
        pager_link(&html, "prev").as_deref(),
        Some("/admin?status=published&page=2")
    );

    // Past the last page of a filter: a 404, as for the whole list.
    let (status, _) = app.get_text("/admin?status=drafts&page=2").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_empty_filter_says_so_and_an_unknown_one_is_a_400() {
    let app = spawn_app().await;
    create(&app, "only-public", true).await;
    app.login().await;
    let (status, html) = app.get_text("/admin?status=drafts").await;
    assert_eq!(status, StatusCode::OK);
    assert!(listed(&html).is_empty(), "{html}");
    assert!(html.contains("No drafts."), "{html}");
    assert_eq!(filter_link(&html, "/admin?status=drafts").0, "Drafts (0)");
    assert_eq!(filter_link(&html, "/admin").0, "All (1)");
    for path in ["/admin?status=bogus", "/admin?status="] {
        let (status, html) = app.get_text(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {html}");
        assert!(
            html.contains("status"),
            "{path}: the error names the field: {html}"
        );
    }
}
