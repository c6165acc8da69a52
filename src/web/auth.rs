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
mod tests {
    use std::net::Ipv4Addr;

    use super::throttle::CLIENT_BURST;
    use super::*;

    #[tokio::test]
    async fn checks_are_throttled_per_client_and_remember_only_the_right_password() {
        let gate = PasswordGate::new("a-right-password-here".into()).await;
        let client = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(
            gate.check(client, false, "a-right-password-here", "basic")
                .await,
            Verdict::Right
        );
        // The remembered password costs no throttle cell...
        for _ in 0..(CLIENT_BURST * 2) {
            assert_eq!(
                gate.check(client, false, "a-right-password-here", "basic")
                    .await,
                Verdict::Right
            );
        }
        // ...while wrong ones do, and the limit then refuses the right one too.
        let mut wrong = 0;
        let mut throttled = 0;
        for i in 0..(CLIENT_BURST + 5) {
            match gate
                .check(client, false, &format!("a-long-wrong-guess-{i}"), "basic")
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
            gate.check(other, false, "another-long-wrong-guess", "form")
                .await,
            Verdict::Wrong
        );
        // Too short to be any accepted password: wrong, and no throttle cell spent.
        assert_eq!(
            gate.check(other, false, "short", "form").await,
            Verdict::Wrong
        );
    }

    const RIGHT: &str = "a-right-password-here";

    /// Empties the global bucket as guesses from many other addresses would.
    fn empty_the_global_bucket(gate: &PasswordGate) {
        for i in 0u32.. {
            let elsewhere = IpAddr::V4(Ipv4Addr::from_bits(0x0a00_0000 + i));
            if gate.throttle.admit(elsewhere, false).is_err() {
                break;
            }
        }
    }

    #[tokio::test]
    async fn a_too_short_password_from_the_admins_address_leaves_the_admin_signed_in() {
        let gate = PasswordGate::new(RIGHT.into()).await;
        let admin = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
        assert_eq!(
            gate.check(admin, false, RIGHT, "basic").await,
            Verdict::Right
        );
        empty_the_global_bucket(&gate);
        // Someone behind the same address sends what cannot be any password, for free...
        assert_eq!(gate.check(admin, false, "x", "basic").await, Verdict::Wrong);
        // ...and the admin's API client, which has no cookie, is still let in.
        assert_eq!(
            gate.check(admin, false, RIGHT, "basic").await,
            Verdict::Right
        );
    }

    #[tokio::test]
    async fn while_an_address_is_throttled_the_right_password_is_throttled_too() {
        let gate = PasswordGate::new(RIGHT.into()).await;
        let shared = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 8)));
        // The admin signs in (one cell); a guesser behind the same address spends all but one of
        // the others...
        assert_eq!(
            gate.check(shared, false, RIGHT, "basic").await,
            Verdict::Right
        );
        for i in 2..CLIENT_BURST {
            let guess = format!("a-long-wrong-guess-{i}");
            assert_eq!(
                gate.check(shared, false, &guess, "basic").await,
                Verdict::Wrong
            );
        }
        // ...the admin's client spends the last one and is signed in again...
        assert_eq!(
            gate.check(shared, false, RIGHT, "basic").await,
            Verdict::Right
        );
        // ...and from now on, until a cell comes back, a guess learns nothing: wrong or right,
        // the answer is the same.
        let wrong = gate
            .check(shared, false, "another-wrong-guess", "basic")
            .await;
        let right = gate.check(shared, false, RIGHT, "basic").await;
        assert!(matches!(wrong, Verdict::Throttled(_)), "{wrong:?}");
        assert!(matches!(right, Verdict::Throttled(_)), "{right:?}");
    }

    /// Takes every argon2 slot: a check admitted meanwhile waits in `verify`, past the throttle,
    /// until the permit is dropped.
    async fn hold_every_argon2_slot(gate: &Arc<PasswordGate>) -> tokio::sync::OwnedSemaphorePermit {
        let slots = gate.checks.available_permits() as u32;
        gate.checks.clone().acquire_many_owned(slots).await.unwrap()
    }

    /// The admin's right password from `client`, checked in a task of its own that has been
    /// admitted by the throttle (with every argon2 slot held, it then waits in `verify`).
    async fn admin_check_in_flight(
        gate: &Arc<PasswordGate>,
        client: Option<IpAddr>,
    ) -> tokio::task::JoinHandle<Verdict> {
        let check = tokio::spawn({
            let gate = gate.clone();
            async move { gate.check(client, false, RIGHT, "basic").await }
        });
        tokio::task::yield_now().await;
        check
    }

    #[tokio::test]
    async fn a_password_longer_than_any_accepted_is_wrong_at_once_and_costs_no_cell() {
        let gate = Arc::new(PasswordGate::new(RIGHT.into()).await);
        let client = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)));
        let too_long = format!("{RIGHT}{}", "x".repeat(crate::config::MAX_PASSWORD_BYTES));
        // With every argon2 slot taken, a check that needed one would wait for it.
        let slots = hold_every_argon2_slot(&gate).await;
        for _ in 0..CLIENT_BURST {
            let check = gate.check(client, false, &too_long, "form");
            let verdict = tokio::time::timeout(Duration::from_secs(10), check).await;
            assert_eq!(verdict, Ok(Verdict::Wrong), "answered without argon2");
        }
        drop(slots);
        // None of them took a cell: the client still has its whole burst.
        for i in 0..CLIENT_BURST {
            let guess = format!("a-long-wrong-guess-{i}");
            let verdict = gate.check(client, false, &guess, "form").await;
            assert_eq!(verdict, Verdict::Wrong, "guess {i}");
        }
        let verdict = gate
            .check(client, false, "a-long-wrong-guess", "form")
            .await;
        assert!(matches!(verdict, Verdict::Throttled(_)), "{verdict:?}");
    }

    /// Brings `shared` to: the admin's client signed in by spending the address's last cell.
    async fn admin_signed_in_with_no_cell_left(gate: &PasswordGate, shared: Option<IpAddr>) {
        assert_eq!(
            gate.check(shared, false, RIGHT, "basic").await,
            Verdict::Right
        );
        for i in 2..CLIENT_BURST {
            let guess = format!("a-long-wrong-guess-{i}");
            assert_eq!(
                gate.check(shared, false, &guess, "basic").await,
                Verdict::Wrong
            );
        }
        assert_eq!(
            gate.check(shared, false, RIGHT, "basic").await,
            Verdict::Right
        );
    }

    /// Review (adversarial): the admin's check was admitted with cells left, and its argon2 is
    /// still running when a guesser sharing the address empties the bucket and is throttled
    /// (which ends the address's exemption); the admin's check then ends and must not sign the
    /// address in again, or the guesser's next request gets a quick yes for the right password.
    #[tokio::test]
    async fn review_a_check_that_ends_after_its_address_was_throttled_does_not_sign_it_in() {
        let gate = Arc::new(PasswordGate::new(RIGHT.into()).await);
        let shared = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)));
        let key = throttle::client_key(shared);
        // Every argon2 slot busy: the admin's check waits in `verify`, past the throttle.
        let busy = hold_every_argon2_slot(&gate).await;
        let admin = admin_check_in_flight(&gate, shared).await;
        // The guesser's checks in flight take the other cells, and the next one is throttled.
        while gate.throttle.admit(key, false).is_ok() {}
        let throttled = gate
            .check(shared, false, "a-long-wrong-guess", "basic")
            .await;
        assert!(matches!(throttled, Verdict::Throttled(_)), "{throttled:?}");
        drop(busy);
        assert_eq!(admin.await.unwrap(), Verdict::Right);
        let right = gate.check(shared, false, RIGHT, "basic").await;
        assert!(
            matches!(right, Verdict::Throttled(_)),
            "right password, throttled: {right:?}"
        );
    }

    /// Review (adversarial): while the admin's check is in argon2 (admitted with cells left), a
    /// guesser sharing the address spends the other cells on requests the EMPTY GLOBAL bucket
    /// refuses at once (each takes its per-client cell first, and none is a per-client refusal).
    /// The admin's check then ends and signs in an address with no cell left: the guesser's next
    /// request gets a quick yes for the right password and 429 for a wrong one.
    #[tokio::test]
    async fn review_a_check_that_ends_after_its_address_spent_its_last_cell_does_not_sign_it_in() {
        let gate = Arc::new(PasswordGate::new(RIGHT.into()).await);
        let shared = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11)));
        let busy = hold_every_argon2_slot(&gate).await;
        let admin = admin_check_in_flight(&gate, shared).await;
        empty_the_global_bucket(&gate);
        for i in 1..CLIENT_BURST {
            let guess = format!("a-long-wrong-guess-{i}");
            let verdict = gate.check(shared, false, &guess, "basic").await;
            assert!(matches!(verdict, Verdict::Throttled(_)), "{verdict:?}");
        }
        drop(busy);
        assert_eq!(admin.await.unwrap(), Verdict::Right);
        let right = gate.check(shared, false, RIGHT, "basic").await;
        assert!(
            matches!(right, Verdict::Throttled(_)),
            "right password, no cell left: {right:?}"
        );
    }

    /// Review (adversarial): the admin is signed in (its API client answered at once); a guesser
    /// sharing the address sends wrong guesses that take every cell and wait for argon2 (their
    /// "wrong" has not ended the exemption yet). The address has no cell left, yet its next
    /// request gets a quick yes for the right password, and 429 for a wrong one.
    #[tokio::test]
    async fn review_guesses_in_flight_that_take_the_last_cell_end_the_exemption() {
        let gate = Arc::new(PasswordGate::new(RIGHT.into()).await);
        let shared = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 12)));
        assert_eq!(
            gate.check(shared, false, RIGHT, "basic").await,
            Verdict::Right
        );
        let busy = hold_every_argon2_slot(&gate).await;
        let guesses: Vec<_> = (1..CLIENT_BURST)
            .map(|i| {
                let gate = gate.clone();
                tokio::spawn(async move {
                    let guess = format!("a-long-wrong-guess-{i}");
                    gate.check(shared, false, &guess, "basic").await
                })
            })
            .collect();
        // Each guess takes its cell before it waits for argon2.
        for _ in 0..CLIENT_BURST {
            tokio::task::yield_now().await;
        }
        let right = gate.check(shared, false, RIGHT, "basic").await;
        drop(busy);
        for guess in guesses {
            assert_eq!(guess.await.unwrap(), Verdict::Wrong);
        }
        assert!(
            matches!(right, Verdict::Throttled(_)),
            "right password, no cell left: {right:?}"
        );
    }

    /// Review (adversarial): a flood of checks, half of whose requests are dropped mid-check (a
    /// client that gives up), never holds more argon2 working memories than there are permits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn review_dropped_checks_do_not_grow_the_working_memory_past_the_permits() {
        let gate = Arc::new(PasswordGate::new(RIGHT.into()).await);
        let slots = gate.checks.available_permits();
        let flood = |from: u32| -> Vec<_> {
            (from..from + 4 * slots as u32)
                .map(|i| {
                    let gate = gate.clone();
                    let client = Some(IpAddr::V4(Ipv4Addr::from_bits(0x0a01_0000 + i)));
                    tokio::spawn(async move {
                        gate.check(client, false, "a-long-wrong-guess", "basic")
                            .await
                    })
                })
                .collect()
        };
        let first = flood(0);
        tokio::task::yield_now().await;
        for (i, check) in first.iter().enumerate() {
            if i % 2 == 0 {
                check.abort();
            }
        }
        for check in flood(1000) {
            assert_eq!(check.await.unwrap(), Verdict::Wrong);
        }
        for check in first {
            let _ = check.await;
        }
        // Blocking runs of aborted checks end on their own: wait until every permit is back.
        drop(gate.checks.acquire_many(slots as u32).await.unwrap());
        let pooled = gate.memory.0.lock().unwrap().len();
        assert!(
            (1..=slots).contains(&pooled),
            "{pooled} working memories for {slots} permits"
        );
    }

    /// Review (adversarial): the guesser's FIRST request after the admin spent the last cell is
    /// answered by the memo when it is the right password (a quick yes, no cell), while a wrong
    /// one gets 429: one guess answered yes/no with no cell left to the address.
    #[tokio::test]
    async fn review_with_no_cell_left_the_first_guess_gets_the_same_answer_right_or_wrong() {
        let shared = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)));
        let (one, other) = (
            PasswordGate::new(RIGHT.into()).await,
            PasswordGate::new(RIGHT.into()).await,
        );
        admin_signed_in_with_no_cell_left(&one, shared).await;
        admin_signed_in_with_no_cell_left(&other, shared).await;
        let wrong = one
            .check(shared, false, "another-wrong-guess", "basic")
            .await;
        let right = other.check(shared, false, RIGHT, "basic").await;
        assert!(matches!(wrong, Verdict::Throttled(_)), "{wrong:?}");
        assert!(
            matches!(right, Verdict::Throttled(_)),
            "right password, no cell left: {right:?}"
        );
    }
}
