//! HTTP: server-rendered pages, the admin area, the JSON API, health and metrics.
//!
//! Each area exposes `router()`; [`app`] merges them and adds the middleware: request ids,
//! tracing, timeouts, body limit, compression, panic catching, and the `x-blog-node` /
//! `x-blog-role` headers that say which node served a response and what LiteFS role it has.

mod access_log;
mod admin;
mod api;
pub mod auth;
pub mod consistency;
pub mod error;
mod health;
mod pages;
pub mod site;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Key, SignedCookieJar};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::cluster::ClusterConnection;
use error::{ErrorPage, PageError};
use views::{Chrome, ErrorPageView};

/// Largest request body accepted (413 beyond).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database: local on the primary, forwarding writes on a replica.
    pub db: ClusterConnection,
    /// Shown on pages and in `x-blog-node`.
    pub node_name: Arc<str>,
    pub credentials: Arc<auth::Credentials>,
    /// Signs the session, CSRF and flash cookies; the same on every node of a cluster.
    pub cookie_key: Key,
    pub metrics: PrometheusHandle,
    /// The site's title, description and public URL, from configuration.
    pub site: Arc<site::Site>,
}

impl FromRef<AppState> for Key {
    fn from_ref(state: &AppState) -> Key {
        state.cookie_key.clone()
    }
}

impl AppState {
    /// The chrome of a page for this visitor; also returns the jar, which may gain a CSRF cookie
    /// and lose the flash cookie.
    pub fn chrome(
        &self,
        jar: SignedCookieJar,
        title: impl Into<String>,
    ) -> (SignedCookieJar, Chrome) {
        let admin = auth::is_admin(&jar);
        let (jar, flash) = auth::take_flash(jar);
        let (jar, csrf) = auth::csrf_token(jar);
        let page = site::current_page(&self.site);
        let chrome = Chrome {
            title: title.into(),
            node: self.node_name.to_string(),
            role: self.db.role().as_str(),
            admin,
            flash,
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
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(pages::router())
        .merge(admin::router())
        .nest("/api", api::router())
        .merge(health::router())
        .nest_service(
            "/static",
            tower::ServiceBuilder::new()
                .layer(SetResponseHeaderLayer::overriding(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=3600"),
                ))
                .service(ServeDir::new(static_dir()).not_found_service(
                    axum::handler::HandlerWithoutStateExt::into_service(not_found),
                )),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), error_pages))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            site::remember_page_url,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            consistency::read_your_writes,
        ))
        // The body limit is enforced by the extractors, so that an API client gets its 413 as a
        // JSON error (see `api::ApiJson`); tower-http's `RequestBodyLimitLayer` would answer a
        // too-large `Content-Length` itself, in plain text.
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(CatchPanicLayer::new())
        // Outside the timeout and panic layers, so their responses carry the headers too.
        .layer(middleware::from_fn_with_state(state.clone(), node_headers))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(access_log::layer())
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
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

async fn not_found(request: Request) -> Response {
    if request.uri().path().starts_with("/api/") {
        error::Error::NotFound.into_response()
    } else {
        PageError(error::Error::NotFound).into_response()
    }
}

/// Renders error pages (responses marked with [`ErrorPage`]) with the site chrome.
async fn error_pages(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    if let Some(page) = response.extensions_mut().remove::<ErrorPage>() {
        let (jar, chrome) = state.chrome(jar, page.status.canonical_reason().unwrap_or("Error"));
        let view = ErrorPageView {
            chrome,
            status: page.status.as_u16(),
            reason: page.status.canonical_reason().unwrap_or("Error").to_owned(),
            message: page.message,
        };
        response = (page.status, jar, view).into_response();
    }
    response
}

/// Adds `x-blog-node` and `x-blog-role` to every response, whichever layer produced it.
async fn node_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(node) = HeaderValue::from_str(&state.node_name) {
        headers.insert("x-blog-node", node);
    }
    headers.insert(
        "x-blog-role",
        HeaderValue::from_static(state.db.role().as_str()),
    );
    response
}
