//! Who may write: the admin, by HTTP Basic auth on the API and by a session on the pages.
//!
//! - Passwords: one argon2 hash ([`PasswordGate`]); checks run on blocking threads, at most a few at
//!   once, in working memory allocated once and reused (a flood of guesses must not grow the
//!   process), throttled per client and globally (see
//!   [`super::throttle`]), and failures are logged and counted. A password that verified is
//!   remembered as a keyed digest, so an API client does not pay argon2 per call; that saves
//!   argon2 only: a client that has not signed in still spends a throttle cell on it.
//! - Sessions: `tower-sessions` over the replicated database (see [`super::session_store`]);
//!   random ids, expiry enforced by the store, the id changed at login (one write) and the row
//!   deleted at logout before the cookie is (a logout that was not saved says so).
//! - A sign-in also leaves a signed cookie that lets this browser's next sign-in past the global
//!   throttle (see [`super::throttle`]).
//! - Basic auth is parsed by the `headers` crate (case-insensitive scheme, RFC 7235).
//!
//! Forms are checked by [`super::csrf::CsrfForm`]; flash messages live in [`super::flash`].

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::{Argon2, Block, Params};
use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, SameSite, SignedCookieJar};
use axum_extra::headers::HeaderMapExt;
use axum_extra::headers::authorization::{Authorization, Basic};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use tower_sessions::Session;

use super::AppState;
use super::error::{Error, PageError};
use super::throttle::{self, Throttle};

pub const ADMIN_USER: &str = "admin";
/// The session key that marks an admin session.
const ADMIN_KEY: &str = "admin";
/// A session lasts this long from login (the store refuses it afterwards).
pub const SESSION_HOURS: i64 = 12;
/// The session cookie (its attributes are set on the session layer, in [`super::app`]).
pub const SESSION_COOKIE: &str = "blog_session";
/// The signed cookie a sign-in leaves in the browser: the Unix time of the sign-in.
const SIGNED_IN_COOKIE: &str = "blog_signed_in";
/// How long [`SIGNED_IN_COOKIE`] counts, whatever the browser keeps.
const SIGNED_IN_COOKIE_DAYS: i64 = 30;
/// How far ahead of this node's clock a sign-in time may be (it may come from another node).
const CLOCK_SKEW_SECS: i64 = 300;

/// What a password check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Right,
    Wrong,
    /// Too many checks from this client or in all: try again after this long.
    Throttled(Duration),
}

/// The admin password's hash, and what guards its checks.
pub struct PasswordGate {
    /// The admin password's random salt...
    salt: [u8; 16],
    /// ...and its argon2 hash under it (Argon2id at the crate's default cost: 19 MiB, 2 passes).
    hash: [u8; 32],
    /// HMAC-SHA256 (under [`Self::memo_key`]) of the last password that verified.
    verified: Mutex<Option<[u8; 32]>>,
    /// Random per process, so the remembered digest is useless outside it.
    memo_key: [u8; 32],
    /// Bounds concurrent argon2 runs (each takes ~19 MiB); a permit is held until its run ends,
    /// even if the request that wanted it has gone.
    checks: Arc<Semaphore>,
    memory: WorkingMemory,
    throttle: Throttle,
}

/// argon2's working memory (19 MiB), one per run at once, allocated once and reused. Allocated
/// and freed per run, it stayed behind in the allocator's per-thread arenas: 65 wrong passwords
/// grew the process from 36 to 438 MiB, past what a 256 MB Fly machine has.
#[derive(Clone, Default)]
struct WorkingMemory(Arc<Mutex<Vec<Vec<Block>>>>);

impl WorkingMemory {
    /// The argon2 hash of `password` under `salt`, in memory taken from the pool and put back.
    /// `None` only for a password argon2 refuses (over 4 GiB).
    fn argon2(&self, password: &[u8], salt: &[u8]) -> Option<[u8; 32]> {
        let spare = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut blocks =
            spare.unwrap_or_else(|| vec![Block::default(); Params::default().block_count()]);
        let mut hash = [0u8; 32];
        let done = Argon2::default().hash_password_into_with_memory(
            password,
            salt,
            &mut hash,
            &mut blocks,
        );
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(blocks);
        done.ok().map(|()| hash)
    }
}

impl PasswordGate {
    pub async fn new(password: String) -> Self {
        let salt: [u8; 16] = rand::random();
        let memory = WorkingMemory::default();
        let hashing = memory.clone();
        let hash = tokio::task::spawn_blocking(move || hashing.argon2(password.as_bytes(), &salt))
            .await
            .expect("hashing does not panic")
            .expect("argon2 hashes a configured password");
        let parallel = std::thread::available_parallelism().map_or(1, |n| n.get());
        PasswordGate {
            salt,
            hash,
            verified: Mutex::new(None),
            memo_key: rand::random(),
            checks: Arc::new(Semaphore::new(parallel)),
            memory,
            throttle: Throttle::default(),
        }
    }

    fn memo(&self, password: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.memo_key)
            .expect("HMAC takes any key length");
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Checks `password` for a request from `client` (`via`: "form" or "basic", for logs);
    /// `signed_in_browser`: the request carries the cookie of an earlier sign-in.
    pub async fn check(
        &self,
        client: Option<IpAddr>,
        signed_in_browser: bool,
        password: &str,
        via: &'static str,
    ) -> Verdict {
        let key = throttle::client_key(client);
        let memo = self.memo(password);
        let remembered = *self.verified.lock().unwrap_or_else(|e| e.into_inner());
        let known_password = remembered.is_some_and(|known| bool::from(known.ct_eq(&memo)));
        let key_signed_in = self.throttle.signed_in_recently(key);
        // The admin's own client (its key verified the password, and sent no wrong one since):
        // no argon2, no throttle, however many API calls. Anyone else pays a throttle cell even
        // for the right password, or a throttled guesser would learn from a quick yes that a
        // guess was right.
        if known_password && key_signed_in {
            return Verdict::Right;
        }
        // Shorter or longer than any password the app accepts: wrong, without spending argon2
        // or a throttle cell on it (nor holding it while waiting for an argon2 slot). It cannot
        // be a guess, so it does not end the client's exemptions (anyone sharing the admin's
        // address could otherwise end them, for free, at will).
        if password.len() > crate::config::MAX_PASSWORD_BYTES
            || password.chars().count() < crate::config::MIN_PASSWORD_CHARS
        {
            self.log_failure(key, via, "wrong");
            return Verdict::Wrong;
        }
        let admitted = std::time::Instant::now();
        if let Err(wait) = self.throttle.admit(key, key_signed_in || signed_in_browser) {
            // While its client is throttled, the right password must get this same answer: the
            // exemption ends here, or a guesser sharing the admin's address would read a quick
            // yes among its refusals.
            self.throttle.forget_sign_in(key);
            tracing::info!(client = %key, via, "password check throttled");
            metrics::counter!("blog_auth_failures_total", "via" => via, "reason" => "throttled")
                .increment(1);
            return Verdict::Throttled(wait);
        }
        if known_password || self.verify(password).await {
            *self.verified.lock().unwrap_or_else(|e| e.into_inner()) = Some(memo);
            // Not if this check, or another from its address while it ran, took the last cell:
            // the address is throttled then, and a sign-in would give its next request a quick
            // yes for the right password and 429 for a wrong one, a free answer to a guesser
            // sharing it.
            self.throttle.remember_sign_in(key, admitted);
            Verdict::Right
        } else {
            self.wrong(key, via)
        }
    }

    /// Runs argon2 on a blocking thread, at most as many at once as there are cores, and compares
    /// in constant time.
    async fn verify(&self, password: &str) -> bool {
        let Ok(permit) = self.checks.clone().acquire_owned().await else {
            return false;
        };
        let (salt, hash, memory) = (self.salt, self.hash, self.memory.clone());
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            memory
                .argon2(password.as_bytes(), &salt)
                .is_some_and(|computed| bool::from(computed.ct_eq(&hash)))
        })
        .await
        .unwrap_or(false)
    }

    /// A wrong password: logged, counted, and the end of its client's exemptions (someone
    /// sharing the admin's address does not share them while guessing).
    fn wrong(&self, client: IpAddr, via: &'static str) -> Verdict {
        self.throttle.forget_sign_in(client);
        self.log_failure(client, via, "wrong");
        Verdict::Wrong
    }

    fn log_failure(&self, client: IpAddr, via: &'static str, reason: &'static str) {
        tracing::info!(%client, via, reason, "failed admin login");
        metrics::counter!("blog_auth_failures_total", "via" => via, "reason" => reason)
            .increment(1);
    }
}

/// The client's IP: from the header a trusted proxy sets (`BLOG_CLIENT_IP_HEADER`, such as Fly's
/// `fly-client-ip`) when configured, else the TCP peer as the server loop recorded it.
pub fn client_ip(parts: &Parts, state: &AppState) -> Option<IpAddr> {
    if let Some(header) = &state.security.client_ip_header {
        return parts
            .headers
            .get(header)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// The client's IP address, for throttling (see [`client_ip`]).
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts, state)))
    }
}

/// An API caller that passed HTTP Basic auth as the admin.
pub struct ApiAdmin;

impl FromRequestParts<AppState> for ApiAdmin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let basic = parts
            .headers
            .typed_get::<Authorization<Basic>>()
            .ok_or(Error::Unauthorized)?;
        if basic.username() != ADMIN_USER {
            return Err(Error::Unauthorized);
        }
        match state
            .passwords
            .check(client_ip(parts, state), false, basic.password(), "basic")
            .await
        {
            Verdict::Right => Ok(ApiAdmin),
            Verdict::Wrong => Err(Error::Unauthorized),
            Verdict::Throttled(wait) => Err(Error::TooManyRequests(wait)),
        }
    }
}

/// `Option<ApiAdmin>`: `None` without credentials, a 401 with wrong ones.
impl OptionalFromRequestParts<AppState> for ApiAdmin {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Error> {
        if parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            <ApiAdmin as FromRequestParts<AppState>>::from_request_parts(parts, state)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    }
}

/// A page visitor: their session (loaded lazily, a local read), whether it is the admin's, and the
/// signed cookies of the CSRF token and the flash message.
pub struct Visitor {
    pub session: Session,
    pub admin: bool,
    pub jar: SignedCookieJar,
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(status, msg)| PageError(Error::Request(status, msg.into())))?;
        let admin = session
            .get::<bool>(ADMIN_KEY)
            .await
            .map_err(|e| PageError(session_error(e)))?
            .unwrap_or(false);
        let jar = SignedCookieJar::from_headers(&parts.headers, state.cookie_key.clone());
        Ok(Visitor {
            session,
            admin,
            jar,
        })
    }
}

/// Where a login should return to: a page asked for, with its query; for a form sent without a
/// session, the page the form was on (its `Referer`'s path and query; the login keeps only
/// same-site paths), else the dashboard. Never the form's own address: a GET of it is a 405.
fn return_to(parts: &Parts) -> String {
    if matches!(parts.method, Method::GET | Method::HEAD) {
        return parts
            .uri
            .path_and_query()
            .map_or("/admin", |p| p.as_str())
            .to_owned();
    }
    let referer = parts.headers.get(header::REFERER);
    let referer = referer.and_then(|r| r.to_str().ok());
    match referer.and_then(|r| r.parse::<axum::http::Uri>().ok()) {
        Some(uri) => uri
            .path_and_query()
            .map_or("/admin", |p| p.as_str())
            .to_owned(),
        None => "/admin".to_owned(),
    }
}

/// A page visitor with an admin session; anyone else is sent to the login page.
pub struct PageAdmin;

impl FromRequestParts<AppState> for PageAdmin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let visitor = Visitor::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        if visitor.admin {
            Ok(PageAdmin)
        } else {
            let next = super::urlencode(&return_to(parts));
            Err(Redirect::to(&format!("/admin/login?next={next}")).into_response())
        }
    }
}

/// The store's error goes to the log: it may name the primary's private address.
fn session_error(err: tower_sessions::session::Error) -> Error {
    tracing::warn!(%err, "session store failed");
    Error::Unavailable(
        "sessions are unavailable right now (the primary may be unreachable); nothing was \
         saved, try again shortly"
            .into(),
    )
}

/// Starts an admin session under a new id: one write. A visitor whose cookie named a live session
/// gets a new id and the old row is deleted (a second write, only then); anyone else has no row
/// to delete, and `save` creates one under a fresh random id.
pub async fn start_session(session: &Session) -> Result<(), Error> {
    // Loads the record (already loaded by `Visitor`): the id is `None` unless a live row exists.
    session.get_value(ADMIN_KEY).await.map_err(session_error)?;
    if session.id().is_some() {
        session.cycle_id().await.map_err(session_error)?;
    }
    session
        .insert(ADMIN_KEY, true)
        .await
        .map_err(session_error)?;
    session.save().await.map_err(session_error)
}

/// Ends the session everywhere: its row is deleted (one write), and only once that is saved is
/// the cookie removed, so a saved cookie is worthless. If the delete fails, the cookie stays and
/// the error says the visitor is still logged in: it is true.
pub async fn end_session(
    state: &AppState,
    session: &Session,
    jar: SignedCookieJar,
) -> Result<SignedCookieJar, Error> {
    if let Some(id) = session.id() {
        super::session_store::delete(&state.db, &id)
            .await
            .map_err(still_logged_in)?;
    }
    Ok(jar.remove(Cookie::build(SESSION_COOKIE).path("/")))
}

/// A logout's failed delete, saying what it means for the visitor.
fn still_logged_in(err: sea_orm::DbErr) -> Error {
    match Error::from(err) {
        Error::Unavailable(why) => Error::Unavailable(format!(
            "You are still logged in: logging out could not be saved ({why})."
        )),
        Error::OutcomeUnknown(why) => Error::OutcomeUnknown(format!(
            "You may still be logged in: whether logging out was saved is unknown ({why})"
        )),
        other => other,
    }
}

/// Whether this browser signed in within [`SIGNED_IN_COOKIE_DAYS`] (the cookie's signature and
/// its own time are checked; its expiry is the browser's and proves nothing).
pub fn signed_in_before(jar: &SignedCookieJar) -> bool {
    let now = tower_sessions::cookie::time::OffsetDateTime::now_utc().unix_timestamp();
    jar.get(SIGNED_IN_COOKIE)
        .and_then(|c| c.value().parse::<i64>().ok())
        .is_some_and(|at| at <= now + CLOCK_SKEW_SECS && now - at < SIGNED_IN_COOKIE_DAYS * 86_400)
}

/// Leaves the signed cookie of a sign-in, read by [`signed_in_before`] at the next one.
pub fn remember_sign_in(jar: SignedCookieJar, secure: bool) -> SignedCookieJar {
    let now = tower_sessions::cookie::time::OffsetDateTime::now_utc().unix_timestamp();
    jar.add(
        Cookie::build((SIGNED_IN_COOKIE, now.to_string()))
            .path("/admin")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Lax)
            .max_age(tower_sessions::cookie::time::Duration::days(
                SIGNED_IN_COOKIE_DAYS,
            )),
    )
}

#[cfg(test)]
mod tests;
