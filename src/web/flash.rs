//! One-time messages for the next page (post-redirect-get), in a cookie signed by `axum-extra`'s
//! `SignedCookieJar`. A cookie rather than the session: showing a message must not be a database
//! write (on a replica it would be forwarded), and logged-out visitors have no session.

use axum_extra::extract::cookie::{Cookie, SameSite, SignedCookieJar};

const COOKIE: &str = "blog_flash";

/// Leaves `message` for the next page.
pub fn set(jar: SignedCookieJar, message: &str, secure: bool) -> SignedCookieJar {
    jar.add(
        Cookie::build((COOKIE, message.to_owned()))
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Lax),
    )
}

/// Takes the message left by the previous request, if any.
pub fn take(jar: SignedCookieJar) -> (SignedCookieJar, Option<String>) {
    match jar.get(COOKIE) {
        Some(cookie) => {
            let message = cookie.value().to_owned();
            (jar.remove(Cookie::build(COOKIE).path("/")), Some(message))
        }
        None => (jar, None),
    }
}
