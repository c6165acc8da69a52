//! HTTP: server-rendered pages, the admin area, the JSON API, health and metrics.
//!
//! Each area exposes `router()`; [`app`] merges them and adds the middleware (see [`layers`]):
//! request ids, tracing, metrics, security headers, timeouts, body limit, compression, panic
//! catching, sessions, one error shape per area, and the `x-blog-node` / `x-blog-role` headers.
//! [`serve`] runs the server loop itself (timeouts, connection cap, graceful shutdown).
//!
//! Sign-in: [`auth`] (passwords, sessions, the admin extractors), [`csrf`] (the only form
//! extractor of the admin area), [`flash`] (messages), [`session_store`] (sessions in SQLite),
//! [`throttle`] (how fast passwords may be tried).

mod access_log;
mod admin;
mod api;
pub mod auth;
pub mod consistency;
pub mod csrf;
pub mod error;
pub mod flash;
pub mod health;
mod layers;
mod pages;
pub mod serve;
pub mod session_store;
pub mod site;
mod slash;
pub mod static_files;
pub mod throttle;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Key, SignedCookieJar};
use metrics_exporter_prometheus::PrometheusHandle;
use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_sessions::{Expiry, SessionManagerLayer};

use error::PageError;
pub use layers::register_metrics;
use sea_orm_litefs::ClusterConnection;
use views::Chrome;

/// Largest request body accepted (413 beyond).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database: local on the primary, forwarding writes on a replica.
    pub db: ClusterConnection,
    /// Shown on pages and in `x-blog-node`.
    pub node_name: Arc<str>,
    /// The admin password's hash, with its throttles and concurrency bound.
    pub passwords: Arc<auth::PasswordGate>,
    /// Signs the session, CSRF and flash cookies; random, the same on every node of a cluster.
    pub cookie_key: Key,
    /// Cookie and origin settings derived from the public URL.
    pub security: Arc<Security>,
    /// The database file and its identity at start, for readiness and the write guard.
    pub database_file: Arc<health::DatabaseFile>,
    pub metrics: PrometheusHandle,
    /// The site's title, description and public URL, from configuration.
    pub site: Arc<site::Site>,
    /// Posts' rendered HTML, by their Markdown.
    pub renders: Arc<crate::blog::rendered::RenderCache>,
    /// How long a search may run (`BLOG_SEARCH_TIMEOUT_MS`).
    pub search_timeout: std::time::Duration,
    /// How long a request's handling may take (`BLOG_REQUEST_TIMEOUT_MS`).
    pub request_timeout: std::time::Duration,
    /// How long a request may take in all, with the layers outside the handlers' bound (the
    /// session's save, the read-your-writes wait): see [`app`].
    pub backstop_timeout: std::time::Duration,
}

/// What the public URL implies for cookies and forms.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// Cookies carry `Secure` (the public URL is https).
    pub secure_cookies: bool,
    /// The only `Origin` forms are accepted from; `None`: the request's own host.
    pub public_origin: Option<String>,
    /// The header a trusted proxy puts the client's IP in; `None`: the TCP peer is the client.
    pub client_ip_header: Option<HeaderName>,
    /// `/metrics` has a listener of its own (`BLOG_METRICS_LISTEN`): the main one never serves it.
    pub metrics_elsewhere: bool,
}

impl FromRef<AppState> for Key {
    fn from_ref(state: &AppState) -> Key {
        state.cookie_key.clone()
    }
}

impl AppState {
    /// The posts with every one of `words` ([`crate::blog::posts::search`]), if the search ends
    /// within `BLOG_SEARCH_TIMEOUT_MS`; `None` if it was stopped then. A search stopped, or one
    /// whose request ended first (a client gone, the request's own timeout), has its statement
    /// interrupted in SQLite rather than read to its end for nobody: on a replica, a read that
    /// runs holds back replication there.
    pub async fn search(
        &self,
        visibility: crate::blog::posts::Visibility,
        words: &[String],
        page: u64,
        per_page: u64,
    ) -> Result<Option<crate::blog::Page<crate::blog::posts::PostWithTags>>, error::Error> {
        let search = crate::blog::posts::search(&self.db, visibility, words, page, per_page);
        let watched = sea_orm_litefs::interruptible_reads(search);
        match tokio::time::timeout(self.search_timeout, watched).await {
            Ok(found) => Ok(Some(found?)),
            Err(_) => {
                metrics::counter!("blog_searches_stopped_total").increment(1);
                tracing::warn!(?words, "a search ran past BLOG_SEARCH_TIMEOUT_MS: stopped");
                Ok(None)
            }
        }
    }

    /// What a stopped search ([`AppState::search`]) says.
    pub fn search_stopped(&self) -> String {
        format!(
            "this search took longer than {} s and was stopped: search for fewer words, or for \
             longer ones",
            self.search_timeout.as_secs_f64()
        )
    }

    /// The chrome of a page for this visitor; also returns the jar, which may gain a CSRF cookie
    /// and lose the flash cookies.
    pub fn chrome(
        &self,
        visitor: &auth::Visitor,
        title: impl Into<String>,
    ) -> (SignedCookieJar, Chrome) {
        let (jar, flash) = flash::take(visitor.jar.clone());
        let (jar, saved_draft) = flash::take_saved_draft(jar);
        let (jar, csrf) = csrf::token(self, visitor, jar);
        let page = site::current_page(&self.site);
        let chrome = Chrome {
            title: title.into(),
            node: self.node_name.to_string(),
            role: self.db.role().as_str(),
            admin: visitor.admin,
            flash,
            saved_draft,
            csrf,
            site_title: self.site.title.clone(),
            description: self.site.description.clone(),
            canonical: page.absolute(),
            og_type: "website",
            noindex: page.path.starts_with("/admin"),
            search: String::new(),
        };
        (jar, chrome)
    }

    /// Leaves a one-time message for the next page.
    pub fn flash(&self, jar: SignedCookieJar, message: &str) -> SignedCookieJar {
        flash::set(jar, message, self.security.secure_cookies)
    }

    /// Leaves `message` for the next page, and tells it that the post form whose browser draft
    /// is `draft_key` was saved (the page's script then removes that draft).
    pub fn flash_saved(
        &self,
        jar: SignedCookieJar,
        message: &str,
        draft_key: &str,
    ) -> SignedCookieJar {
        let jar = self.flash(jar, message);
        flash::set_saved_draft(jar, draft_key, self.security.secure_cookies)
    }
}

/// Characters escaped in a URL query value or path segment (`/` kept: it separates segments).
const URL_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Percent-encodes `s` for a URL path or query value.
pub fn urlencode(s: &str) -> String {
    utf8_percent_encode(s, URL_ESCAPED).to_string()
}

/// What [`post_path`] escapes in a slug: [`URL_ESCAPED`], and `/` and `.`, which the slug rules
/// refuse but a slug written in SQL may have: escaped, the path still names that one post, not
/// another path (`2026/dated`) or a dot segment (`..`) a client would resolve away.
const SEGMENT_ESCAPED: &AsciiSet = &URL_ESCAPED.add(b'/').add(b'.');

/// The path of the post `slug`, percent-encoded (a slug may be Unicode): for links, redirects,
/// the feed and the sitemap.
pub fn post_path(slug: &str) -> String {
    format!("/posts/{}", path_segment(slug))
}

/// `s` percent-encoded as one segment of a path (a slug in `/posts/...` or `/admin/posts/...`).
pub fn path_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT_ESCAPED).to_string()
}

/// A query string as a client sent it, with what a URI may not hold percent-encoded (UTF-8
/// bytes, controls, spaces, `"<>` and backquotes; escapes already there are kept as sent): the
/// same query, fit for a `Location`.
pub fn ascii_query(query: &str) -> String {
    const ESCAPED: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'<').add(b'>').add(b'`');
    utf8_percent_encode(query, ESCAPED).to_string()
}

/// `path` with the query `query` as sent, but in ASCII, as a `Location` must be (a client may
/// send UTF-8).
pub fn with_query(path: String, query: Option<&str>) -> String {
    match query {
        Some(query) => format!("{path}?{}", ascii_query(query)),
        None => path,
    }
}

/// A 301 to `location`, a path on this site (percent-encoded: a header value is ASCII), as the
/// public page, the API and the edit page answer at a post's old slug (301: feed readers and
/// crawlers of before 308 know it).
pub fn moved_permanently(location: &str) -> Result<Response, error::Error> {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            Ok((StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, value)]).into_response())
        }
        Err(_) => Err(error::Error::Internal(format!(
            "not a header value: {location:?}"
        ))),
    }
}

/// The path of a post in the JSON API, its slug percent-encoded.
pub fn api_post_path(slug: &str) -> String {
    format!("/api/posts/{}", path_segment(slug))
}

/// The path of a post's edit page, its slug percent-encoded.
pub fn edit_path(slug: &str) -> String {
    format!("/admin/posts/{}/edit", path_segment(slug))
}

/// The Content-Security-Policy of every response: no inline scripts or styles anywhere. Images
/// may come from anywhere by https (a post's `![](https://...)`), not by http (mixed content).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: https:; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The whole application.
pub fn app(state: AppState) -> Router {
    static_files::prime();
    let request_id = HeaderName::from_static("x-request-id");
    let sessions =
        SessionManagerLayer::new(session_store::SeaOrmSessionStore::new(state.db.clone()))
            .with_name(auth::SESSION_COOKIE)
            .with_http_only(true)
            .with_same_site(tower_sessions::cookie::SameSite::Lax)
            .with_secure(state.security.secure_cookies)
            .with_expiry(Expiry::OnInactivity(
                tower_sessions::cookie::time::Duration::hours(auth::SESSION_HOURS),
            ))
            .with_signed(state.cookie_key.clone());
    Router::new()
        .merge(pages::router())
        .merge(admin::router())
        .nest("/api", api::router())
        .merge(health::router())
        .nest_service(
            "/static",
            tower::ServiceBuilder::new()
                .layer(middleware::from_fn(static_files::cache_control))
                .map_response(layers::static_errors_are_not_found)
                .service(ServeDir::new(static_dir()).not_found_service(
                    axum::handler::HandlerWithoutStateExt::into_service(not_found),
                )),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            layers::refuse_writes_to_a_lost_database,
        ))
        // Inside `error_shapes`, so that its 503 has the area's shape.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            layers::request_timeout,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            layers::error_shapes,
        ))
        .layer(sessions)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            site::remember_page_url,
        ))
        .layer(consistency::read_your_writes(&state))
        // The body limit is enforced by the extractors, so that an API client gets its 413 as a
        // JSON error (see `api::ApiJson`); tower-http's `RequestBodyLimitLayer` would answer a
        // too-large `Content-Length` itself, in plain text.
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CompressionLayer::new())
        // A backstop for the layers outside `layers::request_timeout`, past their own bounds
        // (the session's save waits at most SQLite's busy timeout, the read-your-writes wait at
        // most the forward timeout): a bare 503.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            state.backstop_timeout,
        ))
        .layer(CatchPanicLayer::new())
        .layer(middleware::from_fn(layers::http_metrics))
        // Outside the timeout and panic layers, so their responses carry the headers too.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        // Pages carry CSRF tokens and admin content: no cache keeps them (static files say
        // otherwise for themselves).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            layers::node_headers,
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(access_log::layer())
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(middleware::map_request(layers::drop_malformed_request_id))
        .with_state(state)
}

/// `static/` next to the binary's working directory, or beside the crate when run by cargo.
fn static_dir() -> std::path::PathBuf {
    let local = std::path::PathBuf::from("static");
    if local.join("style.css").exists() {
        return local;
    }
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static")
}

fn is_api(request: &Request) -> bool {
    let path = request.uri().path();
    path == "/api" || path.starts_with("/api/")
}

async fn not_found(request: Request) -> Response {
    if is_api(&request) {
        error::Error::NotFound.into_response()
    } else {
        PageError(error::Error::NotFound).into_response()
    }
}

async fn method_not_allowed(request: Request) -> Response {
    let error = error::Error::Request(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed here", request.method()),
    );
    if is_api(&request) {
        error.into_response()
    } else {
        PageError(error).into_response()
    }
}
