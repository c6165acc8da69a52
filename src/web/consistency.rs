//! Read your writes across nodes, for browsers and API clients alike. A response to a request
//! that wrote carries a signed `blog_txid` cookie with the LiteFS TXID of its commit; a node that
//! gets the cookie waits (bounded) until its own copy has reached that TXID before it serves, and
//! says so in `x-blog-stale` if it could not. A tampered or foreign cookie fails the signature
//! check and is ignored.

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, SameSite, SignedCookieJar};

use super::AppState;
use crate::cluster::consistency::track_writes;

pub const COOKIE: &str = "blog_txid";
/// Long enough for any replica to catch up; after that the cookie has nothing left to say.
const COOKIE_MINUTES: i64 = 5;

pub async fn read_your_writes(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    request: Request,
    next: Next,
) -> Response {
    let seen = jar
        .get(COOKIE)
        .and_then(|c| u64::from_str_radix(c.value(), 16).ok());
    let mut stale = None;
    if let Some(txid) = seen
        && let Err(err) = state.db.wait_for_txid(txid, state.db.timeout()).await
    {
        tracing::warn!(%err, "serving a request before this node has the client's last write");
        stale = Some(txid);
    }
    let (response, written) = track_writes(next.run(request)).await;
    let mut response = match written.filter(|w| Some(*w) > seen) {
        Some(txid) => {
            let cookie = Cookie::build((COOKIE, format!("{txid:016x}")))
                .path("/")
                .http_only(true)
                .same_site(SameSite::Lax)
                .max_age(cookie::time::Duration::minutes(COOKIE_MINUTES));
            (jar.add(cookie), response).into_response()
        }
        None => response,
    };
    if let Some(txid) = stale
        && let Ok(value) = HeaderValue::from_str(&format!("{txid:016x}"))
    {
        response.headers_mut().insert("x-blog-stale", value);
    }
    response
}
