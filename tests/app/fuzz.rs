//! A few thousand generated bad requests (random methods, paths, query strings, headers and
//! bodies) against every route: no 5xx, no panic, and the server still answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

/// Every route, with `{}` where a path parameter goes.
const ROUTES: &[&str] = &[
    "/",
    "/posts/{}",
    "/tags",
    "/tags/{}",
    "/admin",
    "/admin/login",
    "/admin/logout",
    "/admin/posts/new",
    "/admin/posts",
    "/admin/posts/{}/edit",
    "/admin/posts/{}",
    "/admin/posts/{}/delete",
    "/admin/tags",
    "/admin/tags/{}",
    "/admin/tags/{}/delete",
    "/api/tags",
    "/api/tags/{}",
    "/api/posts",
    "/api/posts/{}",
    "/healthz",
    "/readyz",
    "/metrics",
    "/static/style.css",
    "/static/{}",
];

/// Panics on the server's worker threads (tests' own threads are named after the test).
static SERVER_PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_server_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some("tokio-runtime-worker") {
                SERVER_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

#[derive(Debug, Clone)]
struct BadRequest {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{0,12}",
        "-?[0-9]{1,25}",
        "%[0-9A-Fa-f]{2}[a-z]{0,3}",
        Just("..".to_owned()),
        Just("%2e%2e".to_owned()),
        Just("%00".to_owned()),
        Just("caf%C3%A9".to_owned()),
        Just("%FF%FE".to_owned()),
        "[\\PC]{0,8}".prop_map(|s| percent_encoding::utf8_percent_encode(
            &s,
            percent_encoding::NON_ALPHANUMERIC
        )
        .to_string()),
    ]
}

fn request() -> impl Strategy<Value = BadRequest> {
    let method = prop_oneof![
        Just("GET"),
        Just("POST"),
        Just("PUT"),
        Just("PATCH"),
        Just("DELETE"),
        Just("HEAD"),
        Just("OPTIONS"),
        Just("TRACE"),
        Just("BREW"),
    ]
    .prop_map(str::to_owned);
    let path = (0..ROUTES.len(), segment()).prop_map(|(i, seg)| ROUTES[i].replace("{}", &seg));
    let query = prop_oneof![
        Just(String::new()),
        "page=-?[0-9]{1,30}",
        "page=[a-z%]{0,5}&per_page=-?[0-9]{1,25}",
        "next=[/\\\\%a-z.:]{0,20}",
        "[a-z=&%]{0,30}",
    ];
    let header = prop_oneof![
        ("authorization", "(Basic|basic|Bearer) [A-Za-z0-9+/=:]{0,40}"),
        ("content-type", "(application/json|application/x-www-form-urlencoded|text/plain|multipart/form-data; boundary=x)"),
        ("cookie", "(id|blog_csrf|blog_flash|blog_txid)=[A-Za-z0-9%=+/]{0,60}"),
        ("origin", "(null|https?://[a-z.]{1,12})"),
        ("x-request-id", "[ -~]{0,80}"),
        ("accept-encoding", "(gzip|br|identity|\\*)"),
    ]
    .prop_map(|(name, value)| (name.to_owned(), value));
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        "\\{\"(label|title|tags|published|slug|body|titel)\": ?(\"[^\"]{0,20}\"|-?[0-9]{1,22}|true|null|\\[\\]|\\{\\})\\}"
            .prop_map(String::into_bytes),
        "(csrf|password|next|label|title|tags)=[^&]{0,30}(&[a-z]{1,6}=[^&]{0,20}){0,3}"
            .prop_map(String::into_bytes),
    ];
    (
        method,
        path,
        query,
        proptest::collection::vec(header, 0..4),
        body,
    )
        .prop_map(|(method, path, query, headers, body)| BadRequest {
            method,
            path,
            query,
            headers,
            body,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The closure's error type is proptest's `TestCaseError`, not ours to shrink.
#[allow(clippy::result_large_err)]
async fn fuzz_generated_bad_requests_never_get_a_5xx() {
    count_server_panics();
    let app = Arc::new(spawn_app().await);
    app.create_post(json!({ "title": "Fuzz target", "tags": ["fuzz"], "published": true }))
        .await;
    let panics_before = SERVER_PANICS.load(Ordering::SeqCst);

    let mut runner = TestRunner::new(Config {
        cases: 2000,
        failure_persistence: None,
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let target = app.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        runner.run(&request(), |req| {
            let url = if req.query.is_empty() {
                target.url(&req.path)
            } else {
                format!("{}?{}", target.url(&req.path), req.query)
            };
            let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap();
            let mut builder = client.request(method, url).body(req.body.clone());
            for (name, value) in &req.headers {
                builder = builder.header(name, value);
            }
            let status = handle
                .block_on(builder.send())
                .map(|r| r.status())
                .map_err(|e| TestCaseError::fail(format!("no answer to {req:?}: {e}")))?;
            prop_assert!(!status.is_server_error(), "{status} for {req:?}");
            Ok(())
        })
    })
    .await
    .unwrap();
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    assert_eq!(
        SERVER_PANICS.load(Ordering::SeqCst),
        panics_before,
        "the server panicked"
    );
    let (status, _) = app.get_text("/healthz").await;
    assert_eq!(status, StatusCode::OK, "the server still answers");
    let (status, post) = app.api_get("/posts/fuzz-target").await;
    assert_eq!(status, StatusCode::OK, "{post}");
}
