//! Addresses with a trailing slash, sent to the address without it.
//!
//! Like axum-extra's `route_with_tsr`, except for the redirect's `Location`: axum-extra rebuilds
//! the whole request URI, so a request line that names a host (absolute form, `GET
//! http://evil.example/tags/ HTTP/1.1`, as sent to a proxy) was sent to that host. Here the
//! `Location` is the path and query alone: every route starts with a fixed segment, so the path
//! without its last slash is a path on this site.

use axum::Router;
use axum::extract::OriginalUri;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, any};

pub trait RouteWithSlash {
    /// Routes `path` to `method_router`, and `path` with a trailing slash to a 308 to `path`,
    /// query kept (a 308, so a form or API write is sent again as it was).
    fn route_with_tsr(self, path: &str, method_router: MethodRouter<super::AppState>) -> Self;
}

impl RouteWithSlash for Router<super::AppState> {
    fn route_with_tsr(self, path: &str, method_router: MethodRouter<super::AppState>) -> Self {
        assert!(
            path.len() > 1 && !path.ends_with('/'),
            "a route with a trailing-slash redirect names a page: {path}"
        );
        self.route(path, method_router)
            .route(&format!("{path}/"), any(without_trailing_slash))
    }
}

async fn without_trailing_slash(OriginalUri(uri): OriginalUri) -> Response {
    let path = uri.path();
    let path = path.strip_suffix('/').unwrap_or(path);
    let location = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    Redirect::permanent(&location).into_response()
}
