//! Cross-site request forgery: every form handler reads its form through [`CsrfForm`], which
//! refuses the request before the handler runs unless
//! - its `Origin` (sent by browsers on every form POST) is this site's, and
//! - its `csrf` field is the token of this visitor: an HMAC, under the cookie key, of the admin
//!   session's id, or (before login) of a random value in a signed cookie. Login changes the
//!   session id, so it changes the token too.
//!
//! There is no other way to read a form in the admin area, so a new form handler cannot forget it.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum_extra::extract::cookie::{Cookie, SameSite, SignedCookieJar};
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use sha2::Sha256;

use super::AppState;
use super::auth::Visitor;
use super::error::{Error, PageError};

/// The signed cookie that holds a visitor's pre-login CSRF secret.
const ANON_COOKIE: &str = "blog_csrf";
const REFUSED: &str =
    "this form has expired or did not come from this site: reload the page and try again";

/// The CSRF token for `visitor`, adding the pre-login cookie to their jar when needed.
pub fn token(
    state: &AppState,
    visitor: &Visitor,
    jar: SignedCookieJar,
) -> (SignedCookieJar, String) {
    if visitor.admin
        && let Some(id) = visitor.session.id()
    {
        return (jar, sign(state, "session", &id.to_string()));
    }
    if let Some(secret) = jar.get(ANON_COOKIE).map(|c| c.value().to_owned()) {
        return (jar, sign(state, "anonymous", &secret));
    }
    let secret = hex::encode(rand::random::<[u8; 16]>());
    let token = sign(state, "anonymous", &secret);
    let cookie = Cookie::build((ANON_COOKIE, secret))
        .path("/")
        .http_only(true)
        .secure(state.security.secure_cookies)
        .same_site(SameSite::Lax);
    (jar.add(cookie), token)
}

fn mac(state: &AppState, kind: &str, value: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(state.cookie_key.signing())
        .expect("HMAC takes any key length");
    mac.update(b"blog csrf v1\0");
    mac.update(kind.as_bytes());
    mac.update(b"\0");
    mac.update(value.as_bytes());
    mac
}

fn sign(state: &AppState, kind: &str, value: &str) -> String {
    hex::encode(mac(state, kind, value).finalize().into_bytes())
}

/// Whether `submitted` is this visitor's token (compared in constant time by `hmac`).
fn verify(state: &AppState, visitor: &Visitor, submitted: &str) -> bool {
    let Ok(submitted) = hex::decode(submitted) else {
        return false;
    };
    let expected = if visitor.admin {
        visitor
            .session
            .id()
            .map(|id| mac(state, "session", &id.to_string()))
    } else {
        visitor
            .jar
            .get(ANON_COOKIE)
            .map(|c| mac(state, "anonymous", c.value()))
    };
    expected.is_some_and(|mac| mac.verify_slice(&submitted).is_ok())
}

/// Whether the request's `Origin` (if the browser sent one) is this site.
fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Browsers send Origin on form POSTs; a client that does not is no browser being forged.
        return headers
            .get("sec-fetch-site")
            .is_none_or(|site| site == "same-origin" || site == "none");
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    match &state.security.public_origin {
        Some(expected) => origin.eq_ignore_ascii_case(expected),
        None => {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
            let authority = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            host.is_some() && authority.is_some_and(|a| Some(a) == host)
        }
    }
}

/// A form body that passed the CSRF checks, deserialized into `T` (which needs no `csrf` field).
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, PageError> {
        let (mut parts, body) = request.into_parts();
        let refused = || PageError(Error::Forbidden(REFUSED.into()));
        if !same_origin(state, &parts.headers) {
            return Err(refused());
        }
        let visitor = Visitor::from_request_parts(&mut parts, state).await?;
        let form_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|rejection| {
                let status = rejection.status();
                let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    format!("the form is larger than {} bytes", super::BODY_LIMIT)
                } else {
                    rejection.body_text()
                };
                PageError(Error::Request(status, message))
            })?;
        let submitted = form_urlencoded::parse(&bytes)
            .find(|(name, _)| name == "csrf")
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        if !verify(state, &visitor, &submitted) {
            return Err(refused());
        }
        if !form_type {
            return Err(PageError(Error::Request(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the form as application/x-www-form-urlencoded".into(),
            )));
        }
        serde_urlencoded::from_bytes(&bytes)
            .map(CsrfForm)
            .map_err(|e| {
                PageError(Error::Request(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    e.to_string(),
                ))
            })
    }
}
