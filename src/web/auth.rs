//! Who may write: the admin, by HTTP Basic auth on the API and by a signed session cookie on the
//! pages. Forms carry a CSRF token that must match a signed cookie. Nothing here writes to the
//! database, so a page view on a replica never turns into a forwarded write.

use std::sync::{Arc, Mutex};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, Key, SameSite, SignedCookieJar};
use base64::Engine;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::Error;

pub const ADMIN_USER: &str = "admin";
const SESSION_COOKIE: &str = "blog_session";
const CSRF_COOKIE: &str = "blog_csrf";
const FLASH_COOKIE: &str = "blog_flash";
const SESSION_DAYS: i64 = 7;

/// The admin's credentials: an argon2 hash, plus a digest of the last password that verified, so
/// repeated API calls do not pay argon2 each time.
pub struct Credentials {
    hash: String,
    verified: Mutex<Option<[u8; 32]>>,
}

impl Credentials {
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
        Credentials {
            hash,
            verified: Mutex::new(None),
        }
    }

    pub async fn verify(self: &Arc<Self>, password: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        if let Some(known) = *self.verified.lock().unwrap() {
            // Constant-time comparison of two digests.
            return known
                .iter()
                .zip(digest.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        }
        let this = self.clone();
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&this.hash).is_ok_and(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        if ok {
            *self.verified.lock().unwrap() = Some(digest);
        }
        ok
    }
}

/// An API caller that passed HTTP Basic auth as the admin.
pub struct ApiAdmin;

impl FromRequestParts<AppState> for ApiAdmin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(Error::Unauthorized)?;
        let encoded = header.strip_prefix("Basic ").ok_or(Error::Unauthorized)?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| Error::Unauthorized)?;
        let decoded = String::from_utf8(decoded).map_err(|_| Error::Unauthorized)?;
        let (user, password) = decoded.split_once(':').ok_or(Error::Unauthorized)?;
        if user == ADMIN_USER && state.credentials.verify(password).await {
            Ok(ApiAdmin)
        } else {
            Err(Error::Unauthorized)
        }
    }
}

/// Whether the visitor has an admin session (pages that merely show more to the admin).
pub fn is_admin(jar: &SignedCookieJar) -> bool {
    jar.get(SESSION_COOKIE)
        .is_some_and(|c| c.value() == ADMIN_USER)
}

/// A page visitor with an admin session; anyone else is sent to the login page.
pub struct PageAdmin;

impl FromRequestParts<AppState> for PageAdmin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let jar = SignedCookieJar::from_headers(&parts.headers, Key::from_ref(state));
        if is_admin(&jar) {
            Ok(PageAdmin)
        } else {
            let next = parts.uri.path();
            Err(Redirect::to(&format!("/admin/login?next={}", urlencode(next))).into_response())
        }
    }
}

pub fn login(jar: SignedCookieJar) -> SignedCookieJar {
    jar.add(
        Cookie::build((SESSION_COOKIE, ADMIN_USER))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .max_age(time_days(SESSION_DAYS)),
    )
}

pub fn logout(jar: SignedCookieJar) -> SignedCookieJar {
    jar.remove(Cookie::build(SESSION_COOKIE).path("/"))
}

fn time_days(days: i64) -> cookie::time::Duration {
    cookie::time::Duration::days(days)
}

/// The visitor's CSRF token, creating it (and its cookie) if there is none.
pub fn csrf_token(jar: SignedCookieJar) -> (SignedCookieJar, String) {
    if let Some(token) = jar.get(CSRF_COOKIE).map(|c| c.value().to_owned()) {
        return (jar, token);
    }
    let token = hex::encode(rand::random::<[u8; 16]>());
    let jar = jar.add(
        Cookie::build((CSRF_COOKIE, token.clone()))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax),
    );
    (jar, token)
}

/// Checks a submitted form's token against the cookie.
pub fn check_csrf(jar: &SignedCookieJar, submitted: &str) -> Result<(), Error> {
    match jar.get(CSRF_COOKIE) {
        Some(cookie) if !submitted.is_empty() && cookie.value() == submitted => Ok(()),
        _ => Err(Error::Forbidden(
            "this form has expired or did not come from this site: reload the page and try again"
                .into(),
        )),
    }
}

/// Leaves a message for the next page (post-redirect-get).
pub fn flash(jar: SignedCookieJar, message: &str) -> SignedCookieJar {
    jar.add(
        Cookie::build((FLASH_COOKIE, message.to_owned()))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax),
    )
}

/// Takes the message left by the previous request, if any.
pub fn take_flash(jar: SignedCookieJar) -> (SignedCookieJar, Option<String>) {
    match jar.get(FLASH_COOKIE) {
        Some(cookie) => {
            let message = cookie.value().to_owned();
            (
                jar.remove(Cookie::build(FLASH_COOKIE).path("/")),
                Some(message),
            )
        }
        None => (jar, None),
    }
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `Option<ApiAdmin>`: `None` without credentials, a 401 with wrong ones.
impl axum::extract::OptionalFromRequestParts<AppState> for ApiAdmin {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Error> {
        if parts.headers.contains_key(AUTHORIZATION) {
            <ApiAdmin as FromRequestParts<AppState>>::from_request_parts(parts, state)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    }
}
