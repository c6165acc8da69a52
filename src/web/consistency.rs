//! Read your writes across nodes, for browsers and API clients alike. A response to a request
//! that wrote carries a signed `blog_txid` cookie with the LiteFS position (TXID and checksum) of
//! its commit; a node that gets the cookie waits (bounded) until its own database includes that
//! position before it serves. When it cannot — or when the request's own forwarded write has not
//! reached this node yet — the response says `x-blog-stale: 1`, and a cookie that could not be
//! met is dropped, so one lost history (a failover to a primary that was behind) costs one slow
//! request, not minutes of them. A tampered or foreign cookie fails the signature check and is
//! ignored.

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, SameSite, SignedCookieJar};

use super::AppState;
use sea_orm_litefs::consistency::track_writes;
use sea_orm_litefs::wire::Pos;

pub const COOKIE: &str = "blog_txid";
/// Long enough for any replica to catch up; after that the cookie has nothing left to say.
const COOKIE_MINUTES: i64 = 5;

pub async fn read_your_writes(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    request: Request,
    next: Next,
) -> Response {
    let seen = jar.get(COOKIE).and_then(|c| Pos::parse(c.value()));
    let mut stale = false;
    let mut jar = jar;
    if let Some(pos) = seen
        && let Err(err) = state.db.wait_for(pos, state.db.timeout()).await
    {
        tracing::warn!(%err, "serving a request before this node has the client's last write");
        stale = true;
        jar = jar.remove(Cookie::build(COOKIE).path("/"));
    }
    let (response, written) = track_writes(next.run(request)).await;
    stale |= written.stale;
    let mut response = match written.pos.filter(|w| Some(*w) != seen) {
        Some(pos) => {
            let cookie = Cookie::build((COOKIE, pos.to_string()))
                .path("/")
                .http_only(true)
                .same_site(SameSite::Lax)
                .max_age(cookie::time::Duration::minutes(COOKIE_MINUTES));
            (jar.add(cookie), response).into_response()
        }
        None => (jar, response).into_response(),
    };
    if stale {
        response
            .headers_mut()
            .insert("x-blog-stale", HeaderValue::from_static("1"));
    }
    response
}
