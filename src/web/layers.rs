//! The app's own middleware: one error shape per area, HTTP metrics, node headers, the write
//! guard for a lost database file, and request-id hygiene.

use std::time::Instant;

use axum::body::{Body, to_bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::SignedCookieJar;
use tower_sessions::Session;

use super::AppState;
use super::auth::Visitor;
use super::error::{Error, ErrorPage, PageError};
use super::views::ErrorPageView;

/// Error bodies longer than this are not quoted back.
const QUOTED_ERROR_BYTES: usize = 4096;

/// Gives every error response its area's shape: JSON `{"error": ...}` under `/api`, the site's
/// HTML error page elsewhere. Handlers' errors already have it; this catches the rest (axum's
/// rejections of a bad path, query or body, 405s, timeouts), which are plain text or empty.
pub async fn error_shapes(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let api = super::is_api(&request);
    let session = request.extensions().get::<Session>().cloned();
    let jar = SignedCookieJar::from_headers(request.headers(), state.cookie_key.clone());
    let mut response = next.run(request).await;
    if let Some(page) = response.extensions_mut().remove::<ErrorPage>() {
        return render_page(&state, session, jar, page, response.headers().clone()).await;
    }
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || has_shape(response.headers()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = to_bytes(body, QUOTED_ERROR_BYTES)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    if api {
        let mut shaped = Error::Request(status, message).into_response();
        keep_headers(&parts.headers, shaped.headers_mut());
        shaped
    } else {
        let page = ErrorPage { status, message };
        render_page(&state, session, jar, page, parts.headers).await
    }
}

fn has_shape(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"))
}

/// Headers of the original response that still mean something on the reshaped one.
fn keep_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for name in [
        header::ALLOW,
        header::RETRY_AFTER,
        header::WWW_AUTHENTICATE,
        header::CONNECTION,
    ] {
        if let Some(value) = from.get(&name) {
            to.insert(name, value.clone());
        }
    }
}

async fn render_page(
    state: &AppState,
    session: Option<Session>,
    jar: SignedCookieJar,
    page: ErrorPage,
    original: HeaderMap,
) -> Response {
    let Some(session) = session else {
        return (page.status, page.message).into_response();
    };
    let admin = session
        .get::<bool>("admin")
        .await
        .ok()
        .flatten()
        .unwrap_or(false);
    let visitor = Visitor {
        session,
        admin,
        jar,
    };
    let reason = page.status.canonical_reason().unwrap_or("Error");
    let (jar, chrome) = state.chrome(&visitor, reason);
    let view = ErrorPageView {
        chrome,
        status: page.status.as_u16(),
        reason: reason.to_owned(),
        message: page.message,
    };
    let mut response = (page.status, jar, view).into_response();
    keep_headers(&original, response.headers_mut());
    response
}

/// Bounds a request's handling by `BLOG_REQUEST_TIMEOUT_MS`: past it, a 503 that says so, in the
/// area's shape (this runs inside [`error_shapes`]), closing the connection. A write cut there
/// may or may not have been saved (the cluster layer finishes what it began), and its answer
/// says so. Not a 408: a browser resends a request answered 408 on a reused connection by
/// itself (Chromium does, whatever the method), which would make a cut write twice, unseen.
pub async fn request_timeout(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let api = super::is_api(&request);
    let reads = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let Ok(response) = tokio::time::timeout(state.request_timeout, next.run(request)).await else {
        let mut message = format!(
            "this request took longer than {} s and was stopped",
            state.request_timeout.as_secs_f64()
        );
        // A write cut here has an unknown outcome, said as every such 503 says it (no
        // Retry-After; `"outcome": "unknown"` in the API's JSON).
        let error = if reads {
            Error::Request(StatusCode::SERVICE_UNAVAILABLE, message)
        } else {
            message.push_str(
                ": what it was saving may or may not have been saved, so look before trying again",
            );
            Error::OutcomeUnknown(message)
        };
        let mut response = if api {
            error.into_response()
        } else {
            PageError(error).into_response()
        };
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    };
    response
}

/// On a node that writes locally, refuses writes once its database file is gone, replaced or
/// read-only: SQLite would otherwise acknowledge writes into a file nobody will read again.
pub async fn refuse_writes_to_a_lost_database(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let reads = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !reads
        && state.db.role().writes_locally()
        && let Some(problem) = state.database_file.write_problem()
    {
        let error = Error::Unavailable(problem);
        return if super::is_api(&request) {
            error.into_response()
        } else {
            PageError(error).into_response()
        };
    }
    next.run(request).await
}

/// `http_requests_total` by method, route and status, and `http_request_duration_seconds`.
pub async fn http_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = match *request.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        // Arbitrary methods would make arbitrary label values.
        _ => "other",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Registers the counters of the web layer at zero, so they are listed before anything happens.
pub fn register_metrics() {
    for via in ["basic", "form"] {
        for reason in ["wrong", "throttled"] {
            metrics::counter!("blog_auth_failures_total", "via" => via, "reason" => reason)
                .increment(0);
        }
    }
    for kind in ["busy", "readonly", "cluster", "other"] {
        metrics::counter!("blog_db_errors_total", "kind" => kind).increment(0);
    }
    metrics::describe_counter!(
        "blog_auth_failures_total",
        "Admin password checks that failed (wrong) or were refused (throttled)"
    );
    metrics::describe_counter!(
        "blog_db_errors_total",
        "Database errors answered as 503 (busy, readonly, cluster) or 500 (other)"
    );
    for name in [
        "blog_render_cache_hits_total",
        "blog_render_cache_misses_total",
        "blog_searches_stopped_total",
    ] {
        metrics::counter!(name).increment(0);
    }
    metrics::describe_counter!(
        "blog_render_cache_hits_total",
        "Views of a post's body served from the render cache"
    );
    metrics::describe_counter!(
        "blog_render_cache_misses_total",
        "Views of a post's body that rendered its Markdown"
    );
    metrics::describe_counter!(
        "blog_searches_stopped_total",
        "Searches stopped at BLOG_SEARCH_TIMEOUT_MS (answered 503)"
    );
    metrics::describe_counter!(
        "http_requests_total",
        "HTTP requests by method, route and status"
    );
    metrics::describe_histogram!(
        "http_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request latency by method and route"
    );
}

/// Adds `x-blog-node` and `x-blog-role` to every response, whichever layer produced it.
pub async fn node_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
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

/// A client's `x-request-id` is kept only when it is a short token (letters, digits, `-_.`);
/// otherwise it is dropped and a fresh one is made, so logs and responses never echo junk.
pub async fn drop_malformed_request_id(mut request: Request) -> Request {
    let well_formed = |v: &HeaderValue| {
        let bytes = v.as_bytes();
        (1..=64).contains(&bytes.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if request
        .headers()
        .get("x-request-id")
        .is_some_and(|v| !well_formed(v))
    {
        request.headers_mut().remove("x-request-id");
    }
    request
}

/// `ServeDir` answers 500 to paths the file system refuses (an encoded NUL, say): for a
/// visitor that is simply a file that does not exist.
pub fn static_errors_are_not_found<B>(response: Response<B>) -> Response
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    if response.status().is_server_error() {
        return PageError(Error::NotFound).into_response();
    }
    response.map(Body::new)
}
