//! The site's identity (title, description, public URL) and the URL of the page being served,
//! for canonical links, OpenGraph tags, the feed and the sitemap.
//!
//! Every page needs its own absolute URL, but most handlers have no reason to take the request's
//! URI and host; [`remember_page_url`] keeps them for the duration of the request, where
//! [`super::AppState::chrome`] finds them.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;

/// Who the site is, from configuration.
#[derive(Debug, Clone)]
pub struct Site {
    /// In every page's title, the header, the feed.
    pub title: String,
    /// The home page's description (search results, link previews).
    pub description: String,
    /// The public origin, `https://blog.example.com` (no trailing slash). When unset, the
    /// request's `Host` is used: fine for trying it out, but set it in production so canonical
    /// links and feed ids do not depend on what a client sent.
    pub url: Option<String>,
    /// Without `url`, whether the request's host is served over https: on Fly.io, whose proxy
    /// serves every app over https, the blog itself sees only plain HTTP.
    pub https: bool,
}

impl Site {
    /// The origin to build absolute URLs on, for a request with these headers.
    pub fn origin(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.url {
            return url.trim_end_matches('/').to_owned();
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            })
            .unwrap_or("localhost");
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{host}")
    }
}

/// The absolute URL of the page being served.
#[derive(Debug, Clone)]
pub struct PageUrl {
    pub origin: String,
    pub path: String,
}

impl PageUrl {
    pub fn absolute(&self) -> String {
        format!("{}{}", self.origin, self.path)
    }
}

tokio::task_local! {
    static PAGE_URL: PageUrl;
}

/// Middleware: keeps the request's [`PageUrl`] while the rest of the stack handles it.
pub async fn remember_page_url(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let url = PageUrl {
        origin: state.site.origin(request.headers()),
        path: request.uri().path().to_owned(),
    };
    PAGE_URL.scope(url, next.run(request)).await
}

/// The URL of the page being served (the site's root outside a request).
pub fn current_page(site: &Site) -> PageUrl {
    PAGE_URL.try_with(Clone::clone).unwrap_or_else(|_| PageUrl {
        origin: site.origin(&HeaderMap::new()),
        path: "/".into(),
    })
}
