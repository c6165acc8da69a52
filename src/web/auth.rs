//! Who may write: the admin, by HTTP Basic auth on the API and by a session on the pages.
//!
//! - Passwords: one argon2 hash ([`PasswordGate`]); checks run on blocking threads, at most a few at
//!   once (a semaphore bounds their memory), throttled per client and globally (`governor`), and
//!   failures are logged and counted. A password that verified is remembered as a keyed digest, so
//!   an API client does not pay argon2 per call; a different password always goes to argon2.
//! - Sessions: `tower-sessions` over the replicated database (see [`super::session_store`]);
//!   random ids, expiry enforced by the store, the id changed at login and deleted at logout.
//! - Basic auth is parsed by the `headers` crate (case-insensitive scheme, RFC 7235).
//!
//! Forms are checked by [`super::csrf::CsrfForm`]; flash messages live in [`super::flash`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::SignedCookieJar;
use axum_extra::headers::HeaderMapExt;
use axum_extra::headers::authorization::{Authorization, Basic};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use tower_sessions::Session;

use super::AppState;
use super::error::{Error, PageError};

pub const ADMIN_USER: &str = "admin";
/// The session key that marks an admin session.
const ADMIN_KEY: &str = "admin";
/// A session lasts this long from login (the store refuses it afterwards).
pub const SESSION_HOURS: i64 = 12;
/// Password checks one client may make in a burst, then one per [`CLIENT_PERIOD`].
const CLIENT_BURST: u32 = 10;
const CLIENT_PERIOD: Duration = Duration::from_secs(6);
/// Past this many clients tracked, those with full buckets are forgotten.
const MAX_TRACKED_CLIENTS: usize = 10_000;
/// Password checks all clients together may make in a burst, then one per [`GLOBAL_PERIOD`].
const GLOBAL_BURST: u32 = 60;
const GLOBAL_PERIOD: Duration = Duration::from_millis(200);

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
    /// The argon2 PHC string of the admin password.
    hash: String,
    /// HMAC-SHA256 (under [`Self::memo_key`]) of the last password that verified.
    verified: Mutex<Option<[u8; 32]>>,
    /// Random per process, so the remembered digest is useless outside it.
    memo_key: [u8; 32],
    /// Bounds concurrent argon2 runs (each takes ~19 MiB).
    checks: Semaphore,
    per_client: DefaultKeyedRateLimiter<IpAddr>,
    global: DefaultDirectRateLimiter,
}

impl PasswordGate {
    pub async fn new(password: String) -> Self {
        let hash = tokio::task::spawn_blocking(move || {
            let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
                .expect("16 bytes is a valid salt");
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .expect("argon2 hashes any password")
                .to_string()
        })
        .await
        .expect("hashing does not panic");
        let parallel = std::thread::available_parallelism().map_or(1, |n| n.get());
        PasswordGate {
            hash,
            verified: Mutex::new(None),
            memo_key: rand::random(),
            checks: Semaphore::new(parallel),
            per_client: RateLimiter::keyed(quota(CLIENT_PERIOD, CLIENT_BURST)),
            global: RateLimiter::direct(quota(GLOBAL_PERIOD, GLOBAL_BURST)),
        }
    }

    fn memo(&self, password: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.memo_key)
            .expect("HMAC takes any key length");
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Checks `password` for a request from `client` (`via`: "form" or "basic", for logs).
    pub async fn check(
        &self,
        client: Option<IpAddr>,
        password: &str,
        via: &'static str,
    ) -> Verdict {
        let memo = self.memo(password);
        let remembered = *self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if remembered.is_some_and(|known| bool::from(known.ct_eq(&memo))) {
            return Verdict::Right;
        }
        let client = client.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        // Shorter than any password the app accepts: wrong, without spending argon2 or a
        // throttle cell on it.
        if password.chars().count() < crate::config::MIN_PASSWORD_CHARS {
            return self.wrong(client, via);
        }
        // Forget clients whose buckets are full again, so spoofed or many addresses cannot grow
        // the map without bound.
        if self.per_client.len() > MAX_TRACKED_CLIENTS {
            self.per_client.retain_recent();
        }
        let now = DefaultClock::default().now();
        let throttled = match self.per_client.check_key(&client) {
            Err(not_until) => Some(not_until.wait_time_from(now)),
            Ok(()) => self.global.check().err().map(|n| n.wait_time_from(now)),
        };
        if let Some(wait) = throttled {
            tracing::info!(%client, via, "password check throttled");
            metrics::counter!("blog_auth_failures_total", "via" => via, "reason" => "throttled")
                .increment(1);
            return Verdict::Throttled(wait);
        }
        let right = {
            let Ok(_permit) = self.checks.acquire().await else {
                return Verdict::Wrong;
            };
            let hash = self.hash.clone();
            let password = password.to_owned();
            tokio::task::spawn_blocking(move || {
                PasswordHash::new(&hash).is_ok_and(|h| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &h)
                        .is_ok()
                })
            })
            .await
            .unwrap_or(false)
        };
        if right {
            *self.verified.lock().unwrap_or_else(|e| e.into_inner()) = Some(memo);
            Verdict::Right
        } else {
            self.wrong(client, via)
        }
    }

    fn wrong(&self, client: IpAddr, via: &'static str) -> Verdict {
        tracing::info!(%client, via, "failed admin login");
        metrics::counter!("blog_auth_failures_total", "via" => via, "reason" => "wrong")
            .increment(1);
        Verdict::Wrong
    }
}

fn quota(period: Duration, burst: u32) -> Quota {
    Quota::with_period(period)
        .expect("a non-zero period")
        .allow_burst(NonZeroU32::new(burst).expect("a non-zero burst"))
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
            .check(client_ip(parts, state), basic.password(), "basic")
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
            .map_err(|e| PageError(Error::Unavailable(format!("sessions are unavailable: {e}"))))?
            .unwrap_or(false);
        let jar = SignedCookieJar::from_headers(&parts.headers, state.cookie_key.clone());
        Ok(Visitor {
            session,
            admin,
            jar,
        })
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
            let next = super::urlencode(parts.uri.path());
            Err(Redirect::to(&format!("/admin/login?next={next}")).into_response())
        }
    }
}

fn session_error(err: tower_sessions::session::Error) -> Error {
    Error::Unavailable(format!("sessions are unavailable: {err}"))
}

/// Starts an admin session under a new id (the old one, if any, is deleted): a write.
pub async fn start_session(session: &Session) -> Result<(), Error> {
    session.cycle_id().await.map_err(session_error)?;
    session
        .insert(ADMIN_KEY, true)
        .await
        .map_err(session_error)?;
    session.save().await.map_err(session_error)
}

/// Ends the session everywhere: its row is deleted (a write), so a saved cookie is worthless.
pub async fn end_session(session: &Session) -> Result<(), Error> {
    session.flush().await.map_err(session_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checks_are_throttled_per_client_and_remember_only_the_right_password() {
        let gate = PasswordGate::new("a-right-password-here".into()).await;
        let client = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(
            gate.check(client, "a-right-password-here", "basic").await,
            Verdict::Right
        );
        // The remembered password costs no throttle cell...
        for _ in 0..(CLIENT_BURST * 2) {
            assert_eq!(
                gate.check(client, "a-right-password-here", "basic").await,
                Verdict::Right
            );
        }
        // ...while wrong ones do, and the limit then refuses the right one too.
        let mut wrong = 0;
        let mut throttled = 0;
        for i in 0..(CLIENT_BURST + 5) {
            match gate
                .check(client, &format!("a-long-wrong-guess-{i}"), "basic")
                .await
            {
                Verdict::Wrong => wrong += 1,
                Verdict::Throttled(wait) => {
                    assert!(wait > Duration::ZERO);
                    throttled += 1;
                }
                Verdict::Right => panic!("a guess verified"),
            }
        }
        assert_eq!((wrong, throttled), (CLIENT_BURST - 1, 6));
        // Another client is not throttled by this one.
        let other = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(
            gate.check(other, "another-long-wrong-guess", "form").await,
            Verdict::Wrong
        );
        // Too short to be any accepted password: wrong, and no throttle cell spent.
        assert_eq!(gate.check(other, "short", "form").await, Verdict::Wrong);
    }
}
