//! One-time messages for the next page (post-redirect-get), in a cookie signed by `axum-extra`'s
//! `SignedCookieJar`. A cookie rather than the session: showing a message must not be a database
//! write (on a replica it would be forwarded), and logged-out visitors have no session.
//!
//! A saved post form also leaves, in a second cookie, the key of the draft the browser kept of it
//! (`static/drafts.js`): the next page names it, and the script removes that draft only then, once
//! the server has confirmed the save.

use axum_extra::extract::cookie::{Cookie, SameSite, SignedCookieJar};

const COOKIE: &str = "blog_flash";
const SAVED_DRAFT_COOKIE: &str = "blog_saved_draft";

/// Leaves `message` for the next page.
pub fn set(jar: SignedCookieJar, message: &str, secure: bool) -> SignedCookieJar {
    put(jar, COOKIE, message, secure)
}

/// Takes the message left by the previous request, if any.
pub fn take(jar: SignedCookieJar) -> (SignedCookieJar, Option<String>) {
    take_cookie(jar, COOKIE)
}

/// Tells the next page that the post form whose browser draft is `key` was saved.
pub fn set_saved_draft(jar: SignedCookieJar, key: &str, secure: bool) -> SignedCookieJar {
    put(jar, SAVED_DRAFT_COOKIE, key, secure)
}

/// Takes the key of the draft saved by the previous request, if any.
pub fn take_saved_draft(jar: SignedCookieJar) -> (SignedCookieJar, Option<String>) {
    take_cookie(jar, SAVED_DRAFT_COOKIE)
}

fn put(jar: SignedCookieJar, name: &'static str, value: &str, secure: bool) -> SignedCookieJar {
    jar.add(
        Cookie::build((name, value.to_owned()))
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Lax),
    )
}

fn take_cookie(jar: SignedCookieJar, name: &'static str) -> (SignedCookieJar, Option<String>) {
    match jar.get(name) {
        Some(cookie) => {
            let value = cookie.value().to_owned();
            (jar.remove(Cookie::build(name).path("/")), Some(value))
        }
        None => (jar, None),
    }
}
