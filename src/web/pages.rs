//! Public pages: the home page, a post, the tag index, a tag's posts and search; and what
//! machines read: the Atom feed, the sitemap and robots.txt.

use super::slash::RouteWithSlash;
use axum::Router;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use std::sync::Arc;

use super::AppState;
use super::auth::Visitor;
use super::error::Error;
use super::error::PageError;
use super::views::{
    FeedEntry, FeedXml, IndexPage, Pager, PostCard, PostPage, SearchPage, SitemapXml, TagsPage,
};
use crate::blog::BlogError;
use crate::blog::input::lookup_label;
use crate::blog::posts::{self, Visibility};
use crate::blog::{markdown, tags};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route_with_tsr("/posts/{slug}", get(show_post))
        .route_with_tsr("/tags", get(tag_index))
        .route_with_tsr("/tags/{label}", get(tag_posts))
        .route_with_tsr("/search", get(search))
        .route("/feed.xml", get(feed))
        .route("/sitemap.xml", get(sitemap))
        .route("/robots.txt", get(robots))
}

/// Posts in the feed.
const FEED_ENTRIES: u64 = 20;
/// Posts in the sitemap (the format allows 50,000 URLs a file).
const SITEMAP_POSTS: u64 = 10_000;

#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(default = "first_page")]
    pub page: u64,
}

fn first_page() -> u64 {
    1
}

async fn home(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(q): Query<PageQuery>,
) -> Result<impl IntoResponse, PageError> {
    let page = posts::list(
        &state.db,
        Visibility::PublishedOnly,
        None,
        q.page,
        posts::PER_PAGE,
    )
    .await?;
    let (jar, chrome) = state.chrome(&visitor, "Posts");
    let view = IndexPage {
        chrome,
        heading: "Latest posts".into(),
        home: true,
        posts: page.items.iter().map(PostCard::new).collect(),
        pager: Pager::new("/", &page),
    };
    Ok((jar, view))
}

/// A post's page. A slug the post had before (it was renamed) is a permanent redirect (301: feed
/// readers and crawlers of before 308 know it) to its address now, query kept, if the visitor may
/// see the post there: a draft's old slug is a 404 for visitors, as the draft is, and the admin
/// is sent on to it. A slug a post has now always wins over another post's old one.
async fn show_post(
    State(state): State<AppState>,
    visitor: Visitor,
    OriginalUri(uri): OriginalUri,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let visibility = if visitor.admin {
        Visibility::All
    } else {
        Visibility::PublishedOnly
    };
    let post = match posts::find_by_slug(&state.db, &slug, visibility).await {
        Err(BlogError::NotFound) => {
            // A slug a post has now (a draft the visitor may not see) is no old slug: the
            // database forgets an old slug when a post takes it.
            let moved = posts::find_by_old_slug(&state.db, &slug, visibility).await?;
            let location = super::with_query(super::post_path(&moved.slug), uri.query());
            return super::moved_permanently(&location).map_err(PageError);
        }
        other => other?,
    };
    let (jar, mut chrome) = state.chrome(&visitor, post.post.title.clone());
    chrome.description = markdown::excerpt(&post.post.body, 160);
    chrome.og_type = "article";
    // The post's one address, however the request spelled it (its hex's case, NFD).
    let page = super::site::current_page(&state.site);
    chrome.canonical = format!("{}{}", page.origin, super::post_path(&post.post.slug));
    let body = markdown::without_title(&post.post.body, &post.post.title).to_owned();
    let html = rendered(&state, body).await?;
    let view = PostPage {
        chrome,
        html,
        post: PostCard::new(&post),
    };
    Ok((jar, view).into_response())
}

/// The HTML of a post's Markdown, from the render cache: rendered on the blocking pool (however
/// long a post takes to render, the runtime's threads go on serving other requests, `/healthz`
/// included), waiting for its turn, or for another view's render of it, without holding a thread.
async fn rendered(state: &AppState, markdown: String) -> Result<Arc<str>, Error> {
    state
        .renders
        .render_async(markdown)
        .await
        .map_err(|e| Error::Internal(format!("rendering failed: {e}")))
}

/// Runs `work` (the feed's entries, from posts and their HTML) on the blocking pool.
async fn off_the_runtime<T: Send + 'static, R: Send + 'static>(
    input: T,
    work: impl FnOnce(T) -> R + Send + 'static,
) -> Result<R, Error> {
    tokio::task::spawn_blocking(move || work(input))
        .await
        .map_err(|e| Error::Internal(format!("rendering failed: {e}")))
}

/// Tags of published posts, with counts of published posts (see [`tags::list_with_counts`]).
async fn tag_index(
    State(state): State<AppState>,
    visitor: Visitor,
) -> Result<impl IntoResponse, PageError> {
    let tags = tags::list_with_counts(&state.db, Visibility::PublishedOnly).await?;
    let (jar, chrome) = state.chrome(&visitor, "Tags");
    Ok((jar, TagsPage { chrome, tags }))
}

/// A tag's posts. The tag's page is at its label as shown: the label in another case is a
/// permanent redirect there (308), query kept. (The label normalized as labels are, NFC and
/// trimmed, is the page itself, as before tags were case-insensitive.) The label as asked (the
/// decoded path, before any normalization) that is the tag's label is the page itself too: never
/// a redirect to the address asked for (a tag saved before labels were NFC, such as one labelled
/// with the ANGSTROM SIGN, is found by its NFC form, which is not its label).
async fn tag_posts(
    State(state): State<AppState>,
    visitor: Visitor,
    OriginalUri(uri): OriginalUri,
    Path(asked): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, PageError> {
    let label = lookup_label(&asked);
    let tag = tags::find_public(&state.db, &label).await?;
    if asked != tag.label && label != tag.label {
        let path = format!("/tags/{}", super::urlencode(&tag.label));
        let location = match uri.query() {
            Some(query) => format!("{path}?{}", super::ascii_query(query)),
            None => path,
        };
        return Ok(Redirect::permanent(&location).into_response());
    }
    let page = posts::list(
        &state.db,
        Visibility::PublishedOnly,
        Some(&tag.label),
        q.page,
        posts::PER_PAGE,
    )
    .await?;
    let (jar, chrome) = state.chrome(&visitor, format!("#{}", tag.label));
    let view = IndexPage {
        chrome,
        heading: format!("Posts tagged #{}", tag.label),
        home: false,
        posts: page.items.iter().map(PostCard::new).collect(),
        pager: Pager::new(format!("/tags/{}", super::urlencode(&tag.label)), &page),
    };
    Ok((jar, view).into_response())
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default = "first_page")]
    page: u64,
}

async fn search(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(q): Query<SearchQuery>,
) -> Result<impl IntoResponse, PageError> {
    // The words as the API takes them (`search_words` trims); the text trimmed for display.
    let words = posts::search_words(&q.q);
    let text = q.q.trim();
    let found = state
        .search(
            Visibility::PublishedOnly,
            &words.searched,
            q.page,
            posts::PER_PAGE,
        )
        .await?;
    // A search stopped at its timeout: the page says so, with the words kept in the box.
    let (status, stopped) = match &found {
        Some(_) => (StatusCode::OK, None),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Some(state.search_stopped()),
        ),
    };
    let page = found.unwrap_or_else(|| crate::blog::Page::empty(posts::PER_PAGE));
    let title = if text.is_empty() {
        "Search".to_owned()
    } else {
        format!("Search: {text}")
    };
    let (jar, mut chrome) = state.chrome(&visitor, title);
    chrome.search = text.to_owned();
    let view = SearchPage {
        chrome,
        query: text.to_owned(),
        words: words.searched,
        ignored: words.ignored,
        more_ignored: words.more_ignored,
        stopped,
        max_words: posts::MAX_SEARCH_WORDS,
        max_chars: posts::MAX_SEARCH_CHARS,
        long: words.cut,
        total: page.total_items,
        posts: page.items.iter().map(PostCard::new).collect(),
        pager: Pager::new(format!("/search?q={}", super::urlencode(text)), &page),
    };
    Ok((status, jar, view))
}

/// The Atom feed of the latest published posts, full content included.
async fn feed(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Error> {
    let origin = state.site.origin(&headers);
    let latest = posts::latest_published(&state.db, FEED_ENTRIES).await?;
    let feed_origin = origin.clone();
    // One post at a time: a feed request takes at most one turn to render.
    let mut htmls = Vec::with_capacity(latest.len());
    for post in &latest {
        let body = markdown::without_title(&post.body, &post.title).to_owned();
        htmls.push(rendered(&state, body).await?);
    }
    let entries = off_the_runtime((latest, htmls), move |(latest, htmls)| {
        latest
            .iter()
            .zip(&htmls)
            .map(|(p, html)| FeedEntry::new(&feed_origin, p, html))
            .collect::<Vec<_>>()
    })
    .await?;
    let updated = entries
        .iter()
        .map(|e| e.updated.clone())
        .max()
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into());
    let xml = FeedXml {
        site_title: super::views::xml_text(&state.site.title),
        description: super::views::xml_text(&state.site.description),
        origin,
        updated,
        entries,
    };
    xml_response("application/atom+xml; charset=utf-8", &xml)
}

async fn sitemap(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Error> {
    let origin = state.site.origin(&headers);
    let posts = posts::latest_published(&state.db, SITEMAP_POSTS).await?;
    let xml = SitemapXml {
        posts: posts
            .iter()
            .map(|p| {
                let url = format!("{origin}{}", super::post_path(&p.slug));
                (url, p.updated_at.format("%Y-%m-%d").to_string())
            })
            .collect(),
        origin,
    };
    xml_response("application/xml; charset=utf-8", &xml)
}

fn xml_response(
    content_type: &'static str,
    xml: &impl askama::Template,
) -> Result<Response, Error> {
    let body = xml
        .render()
        .map_err(|e| Error::Internal(format!("rendering XML: {e}")))?;
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// Crawlers may read everything public; the admin area and the API are not for them.
async fn robots(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let origin = state.site.origin(&headers);
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!(
            "User-agent: *\nDisallow: /admin\nDisallow: /api/\n\nSitemap: {origin}/sitemap.xml\n"
        ),
    )
}
