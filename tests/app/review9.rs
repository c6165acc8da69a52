//! A fresh-context review of old-slug redirects and the dashboard's filter: what fails, and what
//! held when tried.

use std::collections::HashMap;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::header::LOCATION;
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, TransactionSession, TransactionTrait};
use serde_json::json;

use crate::dashboard::{filter_link, listed};
use crate::helpers::{TestApp, cookie_client, hidden_inputs, location, spawn_app};

async fn sql(app: &TestApp, statement: &str) {
    app.db
        .execute_unprepared(statement)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// An anonymous GET, redirects not followed: status, Location (if any), body.
async fn anonymous(app: &TestApp, path: &str) -> (StatusCode, Option<String>, String) {
    let response = cookie_client().get(app.url(path)).send().await.unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .map(|l| l.to_str().unwrap().to_owned());
    (status, location, response.text().await.unwrap())
}

/// A node of this version on a database its primary (still of the version before, during a
/// rolling deploy) has not migrated yet: no `post_slugs` table. A post's page is looked up as
/// before, and a slug no post has is a 404, as it was: not a 500.
#[tokio::test]
async fn a_database_not_migrated_yet_answers_a_missing_post_with_a_404_not_a_500() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Kept", "slug": "kept", "body": "x", "published": true }))
        .await;
    app.create_post(json!({ "title": "Secret", "slug": "secret", "body": "x" }))
        .await;
    for statement in [
        "DROP TRIGGER post_slugs_delete",
        "DROP TRIGGER post_slugs_insert",
        "DROP TRIGGER post_slugs_rename",
        "DROP TABLE post_slugs",
        "DELETE FROM seaql_migrations WHERE version = 'm20261130_000001_post_slugs'",
    ] {
        sql(&app, statement).await;
    }
    let (status, _, _) = anonymous(&app, "/posts/kept").await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/posts/no-such-post", "/posts/secret"] {
        let (status, _, body) = anonymous(&app, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "GET {path}: {body}");
    }
}

/// What may happen to the posts, in the proptest below. Slugs are indexes into [`SLUGS`]; posts
/// are indexes into the posts alive (modulo their number).
#[derive(Debug, Clone)]
enum Op {
    Create {
        slug: usize,
        published: bool,
    },
    /// Through the API's PATCH (`api`), or as any SQL client (`UPDATE posts SET slug`).
    Rename {
        post: usize,
        to: usize,
        api: bool,
    },
    Publish {
        post: usize,
        published: bool,
    },
    /// Two posts' slugs swapped in one transaction: A to a spare slug, B to A, the spare to B.
    Swap {
        a: usize,
        b: usize,
    },
    Delete {
        post: usize,
    },
}

const SLUGS: [&str; 5] = ["s-a", "s-b", "s-c", "s-d", "s-e"];
const SPARE: &str = "swap-spare";

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..SLUGS.len(), any::<bool>())
            .prop_map(|(slug, published)| Op::Create { slug, published }),
        (0..8usize, 0..SLUGS.len(), any::<bool>()).prop_map(|(post, to, api)| Op::Rename {
            post,
            to,
            api
        }),
        (0..8usize, 0..SLUGS.len(), any::<bool>()).prop_map(|(post, to, api)| Op::Rename {
            post,
            to,
            api
        }),
        (0..8usize, any::<bool>()).prop_map(|(post, published)| Op::Publish { post, published }),
        (0..8usize, 0..8usize).prop_map(|(a, b)| Op::Swap { a, b }),
        (0..8usize).prop_map(|post| Op::Delete { post }),
    ]
}

/// A post of the model: its name (its title is `Post <name>`), slug and status.
#[derive(Debug, Clone)]
struct Modelled {
    name: usize,
    slug: String,
    published: bool,
}

/// The model: the posts alive, and for each slug the post that held it last (a name, alive or
/// not). An old slug leads to the post that left it last, if nobody holds it now and that post
/// is alive; else nowhere.
#[derive(Default)]
struct Model {
    posts: Vec<Modelled>,
    last_holder: HashMap<String, usize>,
    names: usize,
}

impl Model {
    fn holder(&self, slug: &str) -> Option<&Modelled> {
        self.posts.iter().find(|p| p.slug == slug)
    }

    /// What an anonymous GET of `/posts/<slug>` must answer: (status, Location or title).
    fn expected(&self, slug: &str, admin: bool) -> (StatusCode, String) {
        if let Some(post) = self.holder(slug) {
            return if post.published || admin {
                (StatusCode::OK, format!("Post {}", post.name))
            } else {
                (StatusCode::NOT_FOUND, String::new())
            };
        }
        match self
            .last_holder
            .get(slug)
            .and_then(|name| self.posts.iter().find(|p| p.name == *name))
        {
            Some(post) if post.published || admin => (
                StatusCode::MOVED_PERMANENTLY,
                format!("/posts/{}", post.slug),
            ),
            _ => (StatusCode::NOT_FOUND, String::new()),
        }
    }
}

async fn apply(app: &TestApp, model: &mut Model, op: &Op) {
    let n = model.posts.len();
    match *op {
        Op::Create { slug, published } => {
            let slug = SLUGS[slug];
            if model.holder(slug).is_some() {
                return;
            }
            let name = model.names;
            model.names += 1;
            app.create_post(json!({
                "title": format!("Post {name}"), "slug": slug, "body": "x", "published": published
            }))
            .await;
            model.posts.push(Modelled {
                name,
                slug: slug.to_owned(),
                published,
            });
            model.last_holder.insert(slug.to_owned(), name);
        }
        Op::Rename { post, to, api } if n > 0 => {
            let to = SLUGS[to];
            let from = model.posts[post % n].slug.clone();
            if model.holder(to).is_some_and(|p| p.slug != from) {
                return;
            }
            if api {
                let (status, body) = app
                    .api_call(
                        Method::PATCH,
                        &format!("/posts/{from}"),
                        Some(&json!({ "slug": to })),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{from} -> {to}: {body}");
            } else {
                sql(
                    app,
                    &format!("UPDATE posts SET slug = '{to}' WHERE slug = '{from}'"),
                )
                .await;
            }
            let post = &mut model.posts[post % n];
            post.slug = to.to_owned();
            model.last_holder.insert(to.to_owned(), post.name);
        }
        Op::Publish { post, published } if n > 0 => {
            let slug = model.posts[post % n].slug.clone();
            let (status, body) = app
                .api_call(
                    Method::PATCH,
                    &format!("/posts/{slug}"),
                    Some(&json!({ "published": published })),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "publish {slug}: {body}");
            model.posts[post % n].published = published;
        }
        Op::Swap { a, b } if n > 1 && a % n != b % n => {
            let (sa, sb) = (
                model.posts[a % n].slug.clone(),
                model.posts[b % n].slug.clone(),
            );
            let txn = app.db.begin().await.unwrap();
            for (to, from) in [(SPARE, sa.as_str()), (&sa, &sb), (&sb, SPARE)] {
                txn.execute_unprepared(&format!(
                    "UPDATE posts SET slug = '{to}' WHERE slug = '{from}'"
                ))
                .await
                .unwrap();
            }
            txn.commit().await.unwrap();
            let (name_a, name_b) = (model.posts[a % n].name, model.posts[b % n].name);
            model.posts[a % n].slug = sb.clone();
            model.posts[b % n].slug = sa.clone();
            // The spare slug was left last by post a.
            model.last_holder.insert(SPARE.to_owned(), name_a);
            model.last_holder.insert(sa, name_b);
            model.last_holder.insert(sb, name_a);
        }
        Op::Delete { post } if n > 0 => {
            let slug = model.posts[post % n].slug.clone();
            let (status, body) = app
                .api_call(Method::DELETE, &format!("/posts/{slug}"), None)
                .await;
            assert_eq!(status, StatusCode::NO_CONTENT, "delete {slug}: {body}");
            model.posts.remove(post % n);
        }
        _ => {}
    }
}

/// Every slug ever used answers as the model says, anonymously and for the admin; a redirect
/// leads in one hop to a post's page (never to another redirect).
async fn check(app: &TestApp, model: &Model, ops: &[Op]) -> Result<(), TestCaseError> {
    for slug in SLUGS.iter().chain([&SPARE]) {
        let path = format!("/posts/{slug}");
        for admin in [false, true] {
            let response = if admin {
                app.get(&path).await
            } else {
                cookie_client().get(app.url(&path)).send().await.unwrap()
            };
            let status = response.status();
            let got_location = response
                .headers()
                .get(LOCATION)
                .map(|l| l.to_str().unwrap().to_owned());
            let body = response.text().await.unwrap();
            let (want, what) = model.expected(slug, admin);
            prop_assert_eq!(
                status,
                want,
                "GET {} (admin: {}) after {:?}: {:?}",
                path,
                admin,
                ops,
                got_location
            );
            match want {
                StatusCode::OK => prop_assert!(
                    body.contains(&format!("<h1>{what}</h1>"))
                        || body.contains(&format!("<h1>{what} <span")),
                    "GET {} shows another post after {:?}: {}",
                    path,
                    ops,
                    body
                ),
                StatusCode::MOVED_PERMANENTLY => {
                    prop_assert_eq!(got_location.as_deref(), Some(what.as_str()));
                    let next = app.get(&what).await.status();
                    prop_assert_eq!(next, StatusCode::OK, "{} -> {} is no post", path, what);
                }
                _ => prop_assert!(got_location.is_none()),
            }
        }
    }
    Ok(())
}

/// Random sequences of creates, renames (API and SQL, onto old slugs, back and forth), publish
/// and unpublish, swaps in one transaction and deletes: after every step, every slug is its
/// post's page, or a 301 in one hop to the post that left it last (if alive and visible), or a
/// 404; `post_slugs` never names a slug a post has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::result_large_err)]
async fn holds_random_creates_renames_swaps_deletes_every_old_slug_is_one_hop_or_404() {
    let app = Arc::new(spawn_app().await);
    app.login().await;
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    let target = app.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        runner.run(&prop::collection::vec(op(), 1..20), |ops| {
            handle.block_on(async {
                sql(&target, "DELETE FROM posts").await;
                let left = target
                    .db
                    .query_all_raw(sea_orm::Statement::from_string(
                        sea_orm::DbBackend::Sqlite,
                        "SELECT slug FROM post_slugs",
                    ))
                    .await
                    .unwrap();
                prop_assert!(left.is_empty(), "old slugs outlived their posts");
                let mut model = Model::default();
                for (i, op) in ops.iter().enumerate() {
                    apply(&target, &mut model, op).await;
                    check(&target, &model, &ops[..=i]).await?;
                }
                let clash = target
                    .db
                    .query_all_raw(sea_orm::Statement::from_string(
                        sea_orm::DbBackend::Sqlite,
                        "SELECT slug FROM post_slugs WHERE slug IN (SELECT slug FROM posts)",
                    ))
                    .await
                    .unwrap();
                prop_assert!(clash.is_empty(), "a slug in use is also an old one");
                Ok(())
            })
        })
    })
    .await
    .unwrap();
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

/// Addresses written otherwise than the slug: percent-encoded letters are the same slug;
/// upper case, a space and an encoded slash are no slug (404, no Location); every Location is a
/// path on this site (`/posts/...`, never `//host` or a scheme), and no old slug appears in the
/// feed, the sitemap, the home page or the API's list.
#[tokio::test]
async fn holds_encoded_cased_and_dotted_old_slugs_stay_on_the_site_and_out_of_feed_and_sitemap() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Mover", "slug": "old-one", "body": "x", "published": true }))
        .await;
    let (status, body) = app
        .api_call(
            Method::PATCH,
            "/posts/old-one",
            Some(&json!({ "slug": "new-one" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response = cookie_client()
        .get(app.url("/posts/old-one"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        response.headers()[reqwest::header::CACHE_CONTROL],
        "no-store",
        "a redirect that a later post at the old slug must be able to undo"
    );
    let (status, location, _) = anonymous(&app, "/posts/%6Fld-%6Fne").await;
    assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(location.as_deref(), Some("/posts/new-one"));
    let (status, location, _) = anonymous(&app, "/posts/old-one?a=%2F%2Fevil.example&b").await;
    assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        location.as_deref(),
        Some("/posts/new-one?a=%2F%2Fevil.example&b")
    );
    for path in [
        "/posts/OLD-ONE",
        "/posts/Old-One",
        "/posts/old-one%2F",
        "/posts/%2Fold-one",
        "/posts/old-one%20",
    ] {
        let (status, location, _) = anonymous(&app, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "GET {path}: {location:?}");
        assert!(location.is_none(), "GET {path}: {location:?}");
    }
    // A slug written by SQL that tries to leave the site: the Location is still a path here.
    sql(
        &app,
        "UPDATE posts SET slug = '//evil.example' WHERE slug = 'new-one'",
    )
    .await;
    let (status, location, _) = anonymous(&app, "/posts/old-one").await;
    assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
    let location = location.unwrap();
    assert!(
        location.starts_with("/posts/") && !location.starts_with("//"),
        "{location}"
    );
    sql(
        &app,
        "UPDATE posts SET slug = 'new-one' WHERE slug = '//evil.example'",
    )
    .await;
    for path in ["/feed.xml", "/sitemap.xml", "/", "/api/posts"] {
        let (status, _, body) = anonymous(&app, path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}");
        assert!(body.contains("new-one"), "GET {path}: {body}");
        assert!(
            !body.contains("old-one"),
            "GET {path} lists an old slug: {body}"
        );
    }
}

/// The dashboard's filter against deletes: deleting every draft of the last page of Drafts comes
/// back to Drafts (a page there is), counts follow; a refused delete (stale version) from page 2
/// of Published is a 409 on that page of that filter; a delete with a bad CSRF token deletes
/// nothing whatever its status field; a status field with markup is all posts, never echoed.
#[tokio::test]
async fn holds_dashboard_filter_deletes_counts_csrf_and_a_status_field_with_markup() {
    let app = spawn_app().await;
    for i in 0..21 {
        app.create_post(json!({ "title": format!("d{i}"), "slug": format!("d{i}"), "body": "x" }))
            .await;
    }
    for i in 0..22 {
        app.create_post(json!({
            "title": format!("p{i}"), "slug": format!("p{i}"), "body": "x", "published": true
        }))
        .await;
    }
    app.login().await;
    let (status, html) = app.get_text("/admin?status=drafts&page=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed(&html), ["d0"]);
    assert_eq!(filter_link(&html, "/admin").0, "All (43)");
    assert_eq!(
        filter_link(&html, "/admin?status=drafts"),
        ("Drafts (21)".into(), true)
    );
    assert_eq!(
        filter_link(&html, "/admin?status=published").0,
        "Published (22)"
    );
    let form = delete_form(&html, "d0");
    assert!(
        form.contains(&("status".into(), "drafts".into())),
        "{form:?}"
    );
    assert!(form.contains(&("page".into(), "2".into())), "{form:?}");

    // A bad CSRF token: refused, nothing deleted.
    let mut forged = form.clone();
    for (name, value) in &mut forged {
        if name == "csrf" {
            *value = "forged".into();
        }
    }
    let response = press(&app, "d0", &forged).await;
    assert!(response.status().is_client_error(), "{}", response.status());
    assert_eq!(
        app.api_call(Method::GET, "/posts/d0", None).await.0,
        StatusCode::OK
    );

    // The last draft of the last page goes: back to Drafts, which has one page now.
    let response = press(&app, "d0", &form).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(response.headers()), "/admin?status=drafts");
    let (status, html) = app.get_text("/admin?status=drafts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed(&html).len(), 20);
    assert!(!html.contains(r#"rel="next""#));
    assert_eq!(filter_link(&html, "/admin").0, "All (42)");
    assert_eq!(filter_link(&html, "/admin?status=drafts").0, "Drafts (20)");
    let (status, _) = app.get_text("/admin?status=drafts&page=2").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A refused delete from page 2 of Published (the post changed since): 409, that filter and
    // page, its forms carrying them again.
    let (_, html) = app.get_text("/admin?status=published&page=2").await;
    assert_eq!(listed(&html), ["p1", "p0"]);
    let form = delete_form(&html, "p0");
    let (status, body) = app
        .api_call(
            Method::PATCH,
            "/posts/p0",
            Some(&json!({ "body": "changed" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response = press(&app, "p0", &form).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await.unwrap();
    assert!(html.contains("Page 2 of 2"), "{html}");
    assert!(filter_link(&html, "/admin?status=published").1, "{html}");
    let again = delete_form(&html, "p0");
    assert!(again.contains(&("status".into(), "published".into())));
    assert!(again.contains(&("page".into(), "2".into())));
    assert_eq!(
        app.api_call(Method::GET, "/posts/p0", None).await.0,
        StatusCode::OK
    );

    // A status field with markup (a forged or broken form): all posts, the field never echoed.
    let mut marked = again.clone();
    for (name, value) in &mut marked {
        if name == "status" {
            *value = "\"><script>x</script>".into();
        }
        if name == "version" {
            *value = "0".into();
        }
    }
    let response = press(&app, "p0", &marked).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await.unwrap();
    assert!(!html.contains("<script>x"), "{html}");
    assert!(filter_link(&html, "/admin").1, "{html}");
    assert_eq!(
        app.api_call(Method::GET, "/posts/p0", None).await.0,
        StatusCode::OK
    );
}

fn delete_form(html: &str, slug: &str) -> Vec<(String, String)> {
    let marker = format!(r#"<form method="post" action="/admin/posts/{slug}/delete">"#);
    let form = &html[html
        .find(&marker)
        .unwrap_or_else(|| panic!("no delete form for {slug}: {html}"))..];
    hidden_inputs(&form[..form.find("</form>").unwrap()])
}

async fn press(app: &TestApp, slug: &str, fields: &[(String, String)]) -> reqwest::Response {
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    app.post_form(&format!("/admin/posts/{slug}/delete"), &fields)
        .await
}

/// A raw GET of `target` (bytes as sent, not percent-encoded by a client): the status line and
/// the Location, if any.
async fn raw_get(app: &TestApp, target: &str) -> (String, Option<String>) {
    let host = crate::helpers::host_of(app);
    let request = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let answer = crate::helpers::raw_exchange(
        &host,
        request.as_bytes(),
        std::time::Duration::from_secs(10),
    )
    .await;
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let location = answer
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .map(str::to_owned);
    (status, location)
}

/// An old slug asked with letters outside ASCII in its query, as scripts and some clients send
/// them unencoded (hyper and `http` 1.5 accept UTF-8 there): the query is kept in the 301, and
/// the Location is ASCII (a URI reference, RFC 9110; `moved_permanently` says "percent-encoded:
/// a header value is ASCII"), the query's letters percent-encoded.
#[tokio::test]
async fn an_old_slug_with_an_unencoded_utf8_query_redirects_to_an_ascii_location() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Mover", "slug": "old-one", "body": "x", "published": true }))
        .await;
    let (status, body) = app
        .api_call(
            Method::PATCH,
            "/posts/old-one",
            Some(&json!({ "slug": "new-one" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, location) = raw_get(&app, "/posts/old-one?ref=ascii").await;
    assert!(status.starts_with("HTTP/1.1 301"), "{status}");
    assert_eq!(location.as_deref(), Some("/posts/new-one?ref=ascii"));
    // The current address takes such a query (200), so the old one must lead there too.
    let (status, _) = raw_get(&app, "/posts/new-one?ref=café").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let (status, location) = raw_get(&app, "/posts/old-one?ref=café").await;
    assert!(status.starts_with("HTTP/1.1 301"), "{status}");
    assert!(
        location
            .as_deref()
            .is_some_and(|l| l.starts_with("/posts/new-one?ref=") && l.is_ascii()),
        "{location:?}"
    );
}

/// A slug with a slash, written in SQL (a client other than the blog, as `slug_redirects.rs`
/// allows for slugs outside ASCII): the post is at `/posts/a%2Fb` (the path segment decoded),
/// so its old address must lead there; a Location with the slash as is names another path.
#[tokio::test]
async fn an_old_slug_leads_in_one_hop_to_a_current_slug_with_a_slash() {
    let app = spawn_app().await;
    app.create_post(json!({ "title": "Dated", "slug": "dated", "body": "x", "published": true }))
        .await;
    sql(
        &app,
        "UPDATE posts SET slug = '2026/dated' WHERE slug = 'dated'",
    )
    .await;
    let (status, _, body) = anonymous(&app, "/posts/2026%2Fdated").await;
    assert_eq!(status, StatusCode::OK, "the post is at its slug, encoded");
    assert!(body.contains("<h1>Dated</h1>"), "{body}");
    let (status, location, _) = anonymous(&app, "/posts/dated").await;
    assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
    let location = location.unwrap();
    let (status, _, _) = anonymous(&app, &location).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "301 to {location}, which is no post"
    );
}
