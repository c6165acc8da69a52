//! Read your writes across nodes, for browsers and API clients alike, with the cluster crate's
//! layer: a response to a request that wrote carries a signed `blog_txid` cookie with the LiteFS
//! position (TXID and checksum) of its commit; a node that gets the cookie waits (bounded) until
//! its own database includes that position before it serves. When it cannot, or when the
//! request's own forwarded write has not reached this node yet, the response says
//! `x-blog-stale: 1` (see `sea_orm_litefs::axum`).

use axum::http::HeaderName;
use sea_orm_litefs::axum::ReadYourWritesLayer;

use super::AppState;

pub const COOKIE: &str = "blog_txid";

/// The layer, signing with the app's cookie key.
pub fn read_your_writes(state: &AppState) -> ReadYourWritesLayer {
    ReadYourWritesLayer::new(state.db.clone(), state.cookie_key.clone())
        .cookie_name(COOKIE)
        .stale_header(HeaderName::from_static("x-blog-stale"))
        .secure(state.security.secure_cookies)
}
