//! The access log: one line per request at `info`, with method, path, status, latency and the
//! request id (the same id the response's `x-request-id` carries), e.g.
//!
//! ```text
//! INFO request{method=GET path=/posts/hello request_id=6f1c…}: blog::web::access_log: served status=200 latency_ms=1.4
//! ```
//!
//! Anything logged while the request is handled carries the same `request{…}` prefix.

use std::time::Duration;

use axum::http::{Request, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnRequest, MakeSpan, OnResponse, TraceLayer};
use tracing::Span;

/// The tower-http trace layer, configured as the access log.
pub type AccessLog =
    TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan, DefaultOnRequest, Served>;

pub fn layer() -> AccessLog {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_response(Served)
}

/// Opens the `request` span: method, path (not the query, which may hold search text) and id.
#[derive(Debug, Clone, Copy)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let request_id = request
            .headers()
            .get("x-request-id")
            .and_then(|id| id.to_str().ok())
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            request_id,
        )
    }
}

/// Writes the access-log line when the response is ready.
#[derive(Debug, Clone, Copy)]
pub struct Served;

impl<B> OnResponse<B> for Served {
    fn on_response(self, response: &Response<B>, latency: Duration, _span: &Span) {
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = (latency.as_secs_f64() * 1000.0 * 10.0).round() / 10.0,
            "served"
        );
    }
}
