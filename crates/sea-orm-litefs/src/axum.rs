//! Read your writes across requests and nodes, as an axum (tower) layer: the `axum` feature.
//!
//! A response to a request that wrote carries a signed cookie with the LiteFS position of its
//! commit. A node that later gets the cookie waits, at most the connection's timeout, until its
//! own database includes that position before it runs the request, so a user who wrote on one
//! node and reads on another (or on a replica the write was forwarded from) sees the write. When
//! it cannot wait long enough — or when the request's own forwarded write has not reached this
//! node yet — the response carries the stale header (`x-litefs-stale: 1` by default), and a cookie
//! that could not be met is dropped, so one lost history (a failover to a primary that was behind)
//! costs one slow request, not many. A tampered or foreign cookie fails the signature check and is
//! ignored.
//!
//! ```no_run
//! # fn app(db: sea_orm_litefs::ClusterConnection, key: sea_orm_litefs::axum::Key) -> axum::Router {
//! use sea_orm_litefs::axum::ReadYourWritesLayer;
//!
//! axum::Router::new()
//!     // .route(...)
//!     .layer(ReadYourWritesLayer::new(db, key))
//! # }
//! ```

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use cookie::{Cookie, CookieJar, SameSite};
use futures::future::BoxFuture;

use crate::{ClusterConnection, Pos, track_writes};

/// The longest a browser keeps a cookie (RFC 6265bis).
const MAX_COOKIE_AGE: Duration = Duration::from_secs(400 * 24 * 60 * 60);

/// The key that signs the position cookie (the `cookie` crate's): `Key::generate()`, or
/// `Key::from(bytes)` with at least 64 bytes shared by every node, e.g. derived from the cluster
/// secret.
pub use cookie::Key;

/// The layer; see the module docs.
#[derive(Clone)]
pub struct ReadYourWritesLayer {
    db: ClusterConnection,
    key: Key,
    cookie: String,
    stale_header: HeaderName,
    max_age: Duration,
    secure: bool,
}

impl ReadYourWritesLayer {
    /// Tracks writes made through `db` and signs the position cookie with `key`: use the same key
    /// on every node. Defaults: cookie `litefs_pos` (HTTP-only, `SameSite=Lax`, 5 minutes, long
    /// enough for any replica to catch up), header `x-litefs-stale`.
    pub fn new(db: ClusterConnection, key: Key) -> Self {
        ReadYourWritesLayer {
            db,
            key,
            cookie: "litefs_pos".into(),
            stale_header: HeaderName::from_static("x-litefs-stale"),
            max_age: Duration::from_secs(300),
            secure: false,
        }
    }

    /// The name of the position cookie.
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie = name.into();
        self
    }

    /// The response header set to `1` when this node may not show the client's last write.
    pub fn stale_header(mut self, name: HeaderName) -> Self {
        self.stale_header = name;
        self
    }

    /// How long the position cookie lives (default 5 minutes): long enough for any replica to
    /// catch up; after it, a node no longer waits for that write. Kept between 1 second (a
    /// cookie of 0 is deleted at once) and 400 days (the most browsers keep one).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age.clamp(Duration::from_secs(1), MAX_COOKIE_AGE);
        self
    }

    /// Marks the cookie `Secure` (for sites served over HTTPS only).
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }
}

impl<S> tower_layer::Layer<S> for ReadYourWritesLayer {
    type Service = ReadYourWrites<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ReadYourWrites {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service the layer wraps around the app.
#[derive(Clone)]
pub struct ReadYourWrites<S> {
    inner: S,
    layer: ReadYourWritesLayer,
}

impl<S> tower_service::Service<Request> for ReadYourWrites<S>
where
    S: tower_service::Service<Request, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The clone that was polled ready serves this request; the fresh clone waits its turn.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let layer = self.layer.clone();
        Box::pin(async move {
            let mut jar = CookieJar::new();
            for header in request.headers().get_all(COOKIE) {
                let Ok(header) = header.to_str() else {
                    continue;
                };
                for cookie in Cookie::split_parse(header.to_owned()).flatten() {
                    jar.add_original(cookie);
                }
            }
            let seen = jar
                .signed(&layer.key)
                .get(&layer.cookie)
                .and_then(|c| Pos::parse(c.value()));
            let mut stale = false;
            if let Some(pos) = seen
                && let Err(err) = layer.db.wait_for(pos, layer.db.timeout()).await
            {
                tracing::warn!(%err, "serving a request before this node has the client's last write");
                stale = true;
                jar.signed_mut(&layer.key)
                    .remove(Cookie::build(layer.cookie.clone()).path("/"));
            }
            let (response, written) = track_writes(inner.call(request)).await;
            let mut response = response?;
            stale |= written.stale;
            if let Some(pos) = written.pos.filter(|w| Some(*w) != seen) {
                let max_age = cookie::time::Duration::seconds(layer.max_age.as_secs() as i64);
                jar.signed_mut(&layer.key).add(
                    Cookie::build((layer.cookie.clone(), pos.to_string()))
                        .path("/")
                        .http_only(true)
                        .secure(layer.secure)
                        .same_site(SameSite::Lax)
                        .max_age(max_age),
                );
            }
            let headers = response.headers_mut();
            for cookie in jar.delta() {
                if let Ok(value) = HeaderValue::try_from(cookie.to_string()) {
                    headers.append(SET_COOKIE, value);
                }
            }
            if stale {
                headers.insert(layer.stale_header.clone(), HeaderValue::from_static("1"));
            }
            Ok(response)
        })
    }
}
