//! The scenario that started the project, end to end on real LiteFS: a write on a replica is
//! forwarded, answered with the primary's result, and never attempted locally.

use std::time::{Duration, Instant};

use futures::StreamExt;
use sea_orm::ActiveModelTrait;
use sqlx::Row;

use crate::harness::{ADMIN_PASSWORD, Cluster, FORWARD_TIMEOUT_MS};
use crate::{counter, create_tag, get_json, get_text, http, new_tag, open_db, rows_on_primary};

/// Lines of a node's app log that show a write attempted locally and refused.
fn local_write_failures(cluster: &Cluster, k: usize) -> Vec<String> {
    std::fs::read_to_string(cluster.node(k).app_log())
        .unwrap()
        .lines()
        .filter(|l| {
            ["disk I/O error", "readonly", "constraint failed"]
                .iter()
                .any(|s| l.contains(s))
        })
        .map(str::to_owned)
        .collect()
}

async fn tag_labels(client: &reqwest::Client, base: &str) -> Vec<String> {
    // As the admin: visitors see only tags a published post carries.
    let tags: Vec<serde_json::Value> = client
        .get(format!("{base}/api/tags"))
        .basic_auth("admin", Some(crate::harness::ADMIN_PASSWORD))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tags.iter()
        .map(|t| t["label"].as_str().unwrap().to_owned())
        .collect()
}

/// The hidden CSRF field of a page.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("the page has a form")
        + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

/// A client that keeps cookies, as a browser does.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

/// Signs in through the login form on `base` (its CSRF token first), then to `next`.
async fn sign_in(browser: &reqwest::Client, base: &str, next: &str) -> reqwest::Response {
    let login = get_text(browser, &format!("{base}/admin/login")).await;
    browser
        .post(format!("{base}/admin/login"))
        .form(&[
            ("csrf", csrf_of(&login).as_str()),
            ("password", ADMIN_PASSWORD),
            ("next", next),
        ])
        .send()
        .await
        .unwrap()
}

/// A replica whose cluster secret is not the primary's can never forward a write: a setting to
/// fix, so it is not ready (a deploy's health check stops there), and says why. A primary that
/// is away is not that: the replica still serves reads, and stays ready.
#[tokio::test]
async fn a_replica_with_the_wrong_secret_is_not_ready_and_says_why() {
    let mut cluster = Cluster::start(2).await;
    let client = http();
    cluster.stop_app(2);
    let wrong = [("BLOG_CLUSTER_SECRET", "not the cluster's secret")];
    cluster.start_app_with(2, &wrong, "/healthz").await;

    let ready = client
        .get(format!("{}/readyz", cluster.url(2)))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let why = ready.text().await.unwrap();
    assert!(why.contains("BLOG_CLUSTER_SECRET"), "{why}");
    let (status, body) = create_tag(&client, &cluster.url(2), "never").await;
    assert_eq!(status, 503, "{body}");

    cluster.stop_app(2);
    cluster.start_app(2).await;
    let (status, body) = create_tag(&client, &cluster.url(2), "with-the-secret").await;
    assert_eq!(status, 201, "{body}");
    cluster.stop_app(1);
    let ready = client
        .get(format!("{}/readyz", cluster.url(2)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ready.status(),
        200,
        "a primary away is not this replica's fault"
    );
}

#[tokio::test]
async fn a_write_on_a_replica_is_forwarded_and_never_attempted_locally() {
    let cluster = Cluster::start(3).await;
    let client = http();
    let (replica, other) = (cluster.url(2), cluster.url(3));

    // 0. The replica is ready, and its public port does not name the primary's private address.
    let ready = client
        .get(format!("{replica}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.unwrap(), "ready (replica)\n");

    // 1. Through the API: the primary's id comes back, and this replica lists the tag at once.
    let (status, body) = create_tag(&client, &replica, "test").await;
    assert_eq!(status, 201, "{body}");
    let api_id = body["id"].as_i64().unwrap();
    assert!(
        tag_labels(&client, &replica)
            .await
            .contains(&"test".to_owned()),
        "read your own write on the replica"
    );

    // 2. Through the page form (login, CSRF, post-redirect-get).
    let browser = browser();
    let page = sign_in(&browser, &replica, "/admin/tags").await;
    assert_eq!(page.url().path(), "/admin/tags");
    let form = page.text().await.unwrap();
    let done = browser
        .post(format!("{replica}/admin/tags"))
        .form(&[("csrf", csrf_of(&form).as_str()), ("label", "test-form")])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let html = done.text().await.unwrap();
    let flash = html
        .split("class=\"flash\"")
        .nth(1)
        .expect("a flash message");
    assert!(
        flash.split("</p>").next().unwrap().contains("test-form"),
        "{html}"
    );

    // 3. Through SeaORM's ActiveModel::insert on a replica connection.
    let db = cluster.connect(2).await;
    assert_eq!(db.role().as_str(), "replica");
    let model = new_tag("test-orm")
        .insert(&db)
        .await
        .expect("the insert is forwarded");

    // Each got the id the primary assigned, and the primary holds exactly one row of each.
    let mut primary = open_db(cluster.node(1)).await;
    for (label, id) in [
        ("test", Some(api_id)),
        ("test-form", None),
        ("test-orm", Some(model.id as i64)),
    ] {
        let rows: Vec<i64> = sqlx::query("SELECT id FROM tags WHERE label = ?")
            .bind(label)
            .fetch_all(&mut primary)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(rows.len(), 1, "{label} exists exactly once on the primary");
        if let Some(id) = id {
            assert_eq!(rows[0], id, "{label}: the id returned is the primary's");
        }
    }

    // The same label again, from the other replica: the same 409 as on the primary.
    let (status, from_other) = create_tag(&client, &other, "test").await;
    let (primary_status, from_primary) = create_tag(&client, &cluster.url(1), "test").await;
    assert_eq!((status, primary_status), (409, 409));
    assert_eq!(from_other, from_primary);

    // Nothing was attempted locally: no refusals in the logs, the backstop never hit.
    for k in cluster.replicas() {
        assert_eq!(
            local_write_failures(&cluster, k),
            Vec::<String>::new(),
            "node {k}'s log"
        );
        assert_eq!(
            counter(&cluster.url(k), "blog_replica_local_write_attempts_total").await,
            0.0
        );
    }
    assert!(counter(&replica, "blog_forwarded_writes_total").await >= 2.0);
}

#[tokio::test]
async fn every_node_writing_at_once_loses_nothing() {
    let cluster = Cluster::start(3).await;
    let client = http();
    const PER_NODE: usize = 200;
    let writers = (1..=3).map(|k| {
        let (client, base) = (client.clone(), cluster.url(k));
        async move {
            futures::stream::iter(0..PER_NODE)
                .map(|i| {
                    let (client, base) = (client.clone(), base.clone());
                    async move { create_tag(&client, &base, &format!("n{k}-{i}")).await.0 }
                })
                .buffer_unordered(8)
                .collect::<Vec<u16>>()
                .await
        }
    });
    let statuses: Vec<u16> = futures::future::join_all(writers)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(statuses.len(), 3 * PER_NODE);
    assert!(
        statuses.iter().all(|s| *s == 201),
        "non-201 answers: {:?}",
        statuses.iter().filter(|s| **s != 201).collect::<Vec<_>>()
    );

    let labels: Vec<String> = sqlx::query("SELECT label FROM tags")
        .fetch_all(&mut open_db(cluster.node(1)).await)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut expected: Vec<String> = (1..=3)
        .flat_map(|k| (0..PER_NODE).map(move |i| format!("n{k}-{i}")))
        .collect();
    let mut got = labels.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "every tag present exactly once");
    for k in cluster.replicas() {
        assert_eq!(
            counter(&cluster.url(k), "blog_replica_local_write_attempts_total").await,
            0.0
        );
        assert_eq!(local_write_failures(&cluster, k), Vec::<String>::new());
    }
}

#[tokio::test]
async fn a_post_with_tags_created_on_a_replica_shows_with_its_tags() {
    let cluster = Cluster::start(2).await;
    let client = http();
    let replica = cluster.url(2);
    let response = client
        .post(format!("{replica}/api/posts"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&serde_json::json!({"title": "Forwarded post", "body": "Written on a *replica*.", "tags": ["rust", "litefs"], "published": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: serde_json::Value = response.json().await.unwrap();
    assert_eq!(created["tags"], serde_json::json!(["litefs", "rust"]));
    let shown: serde_json::Value =
        get_json(&client, &format!("{replica}/api/posts/forwarded-post")).await;
    assert_eq!(shown["tags"], serde_json::json!(["litefs", "rust"]));
    let page = get_text(&client, &format!("{replica}/tags/litefs")).await;
    assert!(page.contains("Forwarded post"));
    // One write procedure (one round trip), not an interactive remote transaction.
    assert_eq!(counter(&replica, "blog_procedure_calls_total").await, 1.0);
    assert_eq!(
        counter(&replica, "blog_remote_transactions_total").await,
        0.0
    );
    assert_eq!(
        counter(&replica, "blog_replica_local_write_attempts_total").await,
        0.0
    );
}

#[tokio::test]
async fn a_logout_on_a_replica_with_a_dead_primary_says_so_without_its_address() {
    let mut cluster = Cluster::start(2).await;
    let replica = cluster.url(2);
    let browser = browser();
    let dashboard = sign_in(&browser, &replica, "/admin").await;
    assert_eq!(dashboard.status(), 200);
    let csrf = csrf_of(&dashboard.text().await.unwrap());

    cluster.stop_app(1);
    let page = browser
        .post(format!("{replica}/admin/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 503);
    let html = page.text().await.unwrap();
    assert!(html.contains("still logged in"), "{html}");
    // Neither the primary's address on the private network nor the transport's error. (Its
    // address exactly: the replica's own, 127.A.B.12, is in the page's canonical link, and A or
    // B may be 11.)
    let primary = crate::harness::ip(1);
    for private in [":7070", primary.as_str(), "refused", "Connection"] {
        assert!(!html.contains(private), "{private} in {html}");
    }
}

#[tokio::test]
async fn a_dead_primary_is_a_503_and_reads_keep_working() {
    let mut cluster = Cluster::start(2).await;
    let client = http();
    let replica = cluster.url(2);
    assert_eq!(create_tag(&client, &replica, "before").await.0, 201);

    cluster.stop_app(1);
    let started = Instant::now();
    let (status, body) = create_tag(&client, &replica, "while-down").await;
    let took = started.elapsed();
    assert_eq!(status, 503, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("unreachable") || message.contains("did not answer"),
        "{message}"
    );
    // Not the primary's address on the private network: this answer is public.
    assert!(!message.contains(":7070"), "{message}");
    // Nor when signing in (a session is a write) fails the same way.
    let page = sign_in(&browser(), &replica, "/admin").await;
    assert_eq!(page.status(), 503);
    let html = page.text().await.unwrap();
    assert!(html.contains("nothing was"), "{html}");
    assert!(!html.contains(":7070"), "{html}");
    assert!(
        took < Duration::from_millis(FORWARD_TIMEOUT_MS + 1000),
        "answered in {took:?}"
    );
    // Reads keep working on the replica.
    assert_eq!(tag_labels(&client, &replica).await, ["before"]);
    let home = client.get(format!("{replica}/")).send().await.unwrap();
    assert_eq!(home.status(), 200);

    cluster.start_app(1).await;
    let (status, body) = create_tag(&client, &replica, "after").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(rows_on_primary(&cluster, "while-down").await, 0);
    assert_eq!(rows_on_primary(&cluster, "after").await, 1);
    assert_eq!(
        counter(&replica, "blog_replica_local_write_attempts_total").await,
        0.0
    );
    assert_eq!(local_write_failures(&cluster, 2), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_flow_works_on_a_replica() {
    let cluster = Cluster::start(2).await;
    let replica = cluster.url(2);
    crate::browser::admin_creates_tag_and_post(
        &replica,
        ADMIN_PASSWORD,
        "from-chromium",
        "Written on a replica",
    )
    .await;

    // Everything the browser did went to the primary, and nothing was attempted locally.
    let client = http();
    assert_eq!(rows_on_primary(&cluster, "from-chromium").await, 1);
    let post: serde_json::Value = get_json(
        &client,
        &format!("{replica}/api/posts/written-on-a-replica"),
    )
    .await;
    assert_eq!(post["tags"], serde_json::json!(["from-chromium"]));
    assert!(counter(&replica, "blog_forwarded_writes_total").await >= 1.0);
    assert!(counter(&replica, "blog_procedure_calls_total").await >= 1.0);
    assert_eq!(
        counter(&replica, "blog_replica_local_write_attempts_total").await,
        0.0
    );
    assert_eq!(local_write_failures(&cluster, 2), Vec::<String>::new());
}
