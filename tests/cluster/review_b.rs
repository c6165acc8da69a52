//! Review B of /readyz on a replica (check_primary): failing tests, and checks that held.

use std::time::{Duration, Instant};

use crate::harness::Cluster;
use crate::http;
use test_support::cluster::wait_until;

/// Lines of node `k`'s app log where the primary refused a peer's secret.
fn refused_handshakes(cluster: &Cluster, k: usize) -> usize {
    std::fs::read_to_string(cluster.node(k).app_log())
        .unwrap()
        .lines()
        .filter(|l| l.contains("does not know the cluster secret"))
        .count()
}

/// `/readyz` is public and unauthenticated. On a replica whose secret the primary refuses,
/// each call opens a new TCP connection and handshake to the primary's RPC port (the refusal is
/// not remembered), and the primary logs a warning for each: 30 probes, 30 connections and 30
/// warnings on the primary. Expected: a refusal is kept for a while (a setting does not change
/// under a running node), so probes do not become connections to the primary.
#[tokio::test]
async fn revb_readyz_with_wrong_secret_does_not_open_a_connection_per_probe() {
    let mut cluster = Cluster::start(2).await;
    let client = http();
    cluster.stop_app(2);
    let wrong = [("BLOG_CLUSTER_SECRET", "not the cluster's secret")];
    cluster.start_app_with(2, &wrong, "/healthz").await;
    let before = refused_handshakes(&cluster, 1);
    for _ in 0..30 {
        let ready = client
            .get(format!("{}/readyz", cluster.url(2)))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 503);
    }
    // The first probe's refusal is in the primary's log (it logs before it closes).
    wait_until("the primary to log the refused handshake", || async {
        (refused_handshakes(&cluster, 1) > before).then_some(())
    })
    .await;
    let opened = refused_handshakes(&cluster, 1) - before;
    assert!(
        opened <= 3,
        "30 /readyz probes made {opened} refused RPC handshakes on the primary"
    );
}

/// Holds?: the primary's app stopped (SIGSTOP: its port accepts, nothing answers): /readyz on
/// a replica answers within a couple of seconds, 200, every time, with several at once.
#[tokio::test]
async fn revb_readyz_answers_in_time_when_the_primary_is_black_holed() {
    let mut cluster = Cluster::start(2).await;
    let client = http();
    // A fresh replica app: no RPC connection open yet.
    cluster.stop_app(2);
    cluster.start_app_with(2, &[], "/healthz").await;
    cluster.pause_app(1, true);
    let mut worst = Duration::ZERO;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let probes = (0..5).map(|_| {
            let client = client.clone();
            let url = format!("{}/readyz", cluster.url(2));
            async move {
                client
                    .get(url)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        });
        statuses.extend(futures::future::join_all(probes).await);
        worst = worst.max(started.elapsed());
    }
    cluster.pause_app(1, false);
    eprintln!("readyz with the primary black-holed: worst {worst:?}, {statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(worst < Duration::from_millis(2500), "worst {worst:?}");
}

/// The position cookie of `ReadYourWritesLayer::max_age` (new): a lifetime past i64::MAX
/// seconds (`Duration::MAX`, "keep it") is cast `as i64` into a negative Max-Age, so the browser
/// deletes the cookie at once and read-your-writes is silently off; a lifetime under a second
/// becomes Max-Age=0 (deleted at once) too.
#[tokio::test]
async fn revb_read_your_writes_cookie_max_age_is_never_negative_or_zero() {
    use axum::routing::post;
    use sea_orm::ConnectionTrait;
    use tower::ServiceExt;
    let cluster = Cluster::start_litefs_only(2).await;
    let (primary, _replica) = cluster.primary_and_replica(|o| o).await;
    primary
        .execute_unprepared("CREATE TABLE IF NOT EXISTS revb_ryw(x)")
        .await
        .unwrap();
    let key = sea_orm_litefs::axum::Key::generate();
    let mut seen = Vec::new();
    for max_age in [Duration::MAX, Duration::from_millis(500)] {
        let db = primary.clone();
        let app = axum::Router::new()
            .route(
                "/w",
                post(move || {
                    let db = db.clone();
                    async move {
                        db.execute_unprepared("INSERT INTO revb_ryw VALUES (1)")
                            .await
                            .unwrap();
                        "ok"
                    }
                }),
            )
            .layer(
                sea_orm_litefs::axum::ReadYourWritesLayer::new(primary.clone(), key.clone())
                    .max_age(max_age),
            );
        let response = app
            .oneshot(
                axum::http::Request::post("/w")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let cookies: Vec<String> = response
            .headers()
            .get_all(axum::http::header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        seen.push(format!("{max_age:?}: {cookies:?}"));
    }
    for line in &seen {
        assert!(
            line.contains("Max-Age=") && !line.contains("Max-Age=-") && !line.contains("Max-Age=0"),
            "{seen:#?}"
        );
    }
}

/// Holds?: on a replica whose secret the primary refuses, no page or API write is a 500: the
/// sign-in, a tag through the admin form, a post through the API, a post's PATCH and DELETE.
#[tokio::test]
async fn revb_no_write_on_a_wrong_secret_replica_is_a_500() {
    let mut cluster = Cluster::start(2).await;
    let client = http();
    let (status, body) = crate::create_tag(&client, &cluster.url(1), "before").await;
    assert_eq!(status, 201, "{body}");
    let created = client
        .post(format!("{}/api/posts", cluster.url(1)))
        .basic_auth("admin", Some(crate::harness::ADMIN_PASSWORD))
        .json(&serde_json::json!({"title": "Kept", "body": "x", "published": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    cluster.stop_app(2);
    let wrong = [("BLOG_CLUSTER_SECRET", "not the cluster's secret")];
    cluster.start_app_with(2, &wrong, "/healthz").await;
    let base = cluster.url(2);
    let mut statuses = Vec::new();

    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let login = crate::get_text(&browser, &format!("{base}/admin/login")).await;
    let csrf = |html: &str| {
        let at = html.find("name=\"csrf\" value=\"").expect("a form") + 19;
        html[at..].split('"').next().unwrap().to_owned()
    };
    let signed = browser
        .post(format!("{base}/admin/login"))
        .form(&[
            ("csrf", csrf(&login).as_str()),
            ("password", crate::harness::ADMIN_PASSWORD),
            ("next", "/admin/tags"),
        ])
        .send()
        .await
        .unwrap();
    statuses.push(("sign-in", signed.status().as_u16()));
    let form = signed.text().await.unwrap();
    if form.contains("name=\"csrf\"") {
        let done = browser
            .post(format!("{base}/admin/tags"))
            .form(&[("csrf", csrf(&form).as_str()), ("label", "never-form")])
            .send()
            .await
            .unwrap();
        statuses.push(("tag form", done.status().as_u16()));
    }
    let api = |method: reqwest::Method, path: &str| {
        client
            .request(method, format!("{base}/api{path}"))
            .basic_auth("admin", Some(crate::harness::ADMIN_PASSWORD))
    };
    let r = api(reqwest::Method::POST, "/posts")
        .json(&serde_json::json!({"title": "Never", "body": "x"}))
        .send()
        .await
        .unwrap();
    statuses.push(("post create", r.status().as_u16()));
    let r = api(reqwest::Method::PATCH, "/posts/kept")
        .json(&serde_json::json!({"body": "y"}))
        .send()
        .await
        .unwrap();
    statuses.push(("post patch", r.status().as_u16()));
    let r = api(reqwest::Method::DELETE, "/posts/kept")
        .send()
        .await
        .unwrap();
    statuses.push(("post delete", r.status().as_u16()));
    let r = client
        .get(format!("{base}/posts/kept"))
        .send()
        .await
        .unwrap();
    statuses.push(("read", r.status().as_u16()));
    eprintln!("{statuses:?}");
    assert!(statuses.iter().all(|(_, s)| *s != 500), "{statuses:?}");
}

/// `ClusterConnection::check_primary(timeout)` (new, public) on a replica: a timeout meaning
/// "no limit" (`Duration::MAX`) panics in `Instant::now() + timeout` ("overflow when adding
/// duration to instant") instead of answering.
#[tokio::test]
async fn revb_check_primary_with_a_huge_timeout_answers() {
    let cluster = Cluster::start_litefs_only(2).await;
    let (_primary, replica) = cluster.primary_and_replica(|o| o).await;
    assert_eq!(replica.role().as_str(), "replica");
    let replica2 = replica.clone();
    let outcome = tokio::spawn(async move { replica2.check_primary(Duration::MAX).await }).await;
    assert!(
        matches!(outcome, Ok(Ok(()))),
        "{:?}",
        outcome.map_err(|e| e.to_string())
    );
}

/// Holds?: a replica's `check_primary` with a wrong secret is AuthFailed each time (no flapping),
/// and with the right one Ok; a primary away is PrimaryUnreachable, not AuthFailed.
#[tokio::test]
async fn revb_check_primary_tells_a_wrong_secret_from_a_primary_away() {
    let cluster = Cluster::start_litefs_only(2).await;
    let (primary, _replica) = cluster.primary_and_replica(|o| o).await;
    let port = primary.rpc_addr().unwrap().port();
    let wrong = cluster
        .options(2)
        .secret("wrong")
        .rpc_listen("127.0.0.1:0")
        .primary_rpc(format!("{{primary}}:{port}"))
        .start()
        .await
        .unwrap();
    for _ in 0..5 {
        let r = wrong.check_primary(Duration::from_secs(1)).await;
        assert!(
            matches!(r, Err(sea_orm_litefs::ClusterError::AuthFailed { .. })),
            "{r:?}"
        );
    }
}
