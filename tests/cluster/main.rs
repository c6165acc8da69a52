//! Tests on a real LiteFS cluster: LiteFS itself behaves as the project relies on, and writes on
//! replicas are forwarded, answered with the primary's result, and never attempted locally.

mod defects;
mod differential;
mod forwarding;
mod guarantees;
mod lab;
mod litefs;
mod procedures;
mod redirects;
mod review1;
mod review2;
mod review3;
mod review4;
mod review_b;
mod review_two;
mod search;

use std::time::Duration;

use test_support::{browser, cluster as harness, toxiproxy};

use harness::{ADMIN_PASSWORD, Node};

/// An HTTP client for the apps; no cookie store unless a test needs one.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// POST /api/tags as the admin: status and JSON body.
pub async fn create_tag(
    client: &reqwest::Client,
    base: &str,
    label: &str,
) -> (u16, serde_json::Value) {
    let response = client
        .post(format!("{base}/api/tags"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&serde_json::json!({ "label": label }))
        .send()
        .await
        .expect("the app answers");
    let status = response.status().as_u16();
    (
        status,
        response.json().await.unwrap_or(serde_json::Value::Null),
    )
}

/// The value of an unlabelled counter in a node's `/metrics`.
pub async fn counter(base: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("{name} is not in {base}/metrics"))
}

/// Opens a node's database file directly with SQLite (through its LiteFS mount).
pub async fn open_db(node: &Node) -> sqlx::SqliteConnection {
    use sqlx::ConnectOptions;
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(node.db_path())
        .connect()
        .await
        .expect("the database opens")
}

/// One integer from the primary's own database: `sql` with `bind` as its only parameter.
pub async fn primary_i64(cluster: &harness::Cluster, sql: &'static str, bind: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(sql)
        .bind(bind)
        .fetch_one(&mut open_db(cluster.node(cluster.primary)).await)
        .await
        .unwrap()
        .get(0)
}

/// Counts rows with this label in the primary's own database.
pub async fn rows_on_primary(cluster: &harness::Cluster, label: &str) -> i64 {
    primary_i64(cluster, "SELECT count(*) FROM tags WHERE label = ?", label).await
}

/// A new tag to insert through SeaORM.
pub fn new_tag(label: &str) -> blog::entity::tag::ActiveModel {
    use sea_orm::Set;
    blog::entity::tag::ActiveModel {
        label: Set(label.into()),
        label_key: Set(blog::blog::input::label_key(label)),
        created_at: Set(chrono::Utc::now()),
        ..Default::default()
    }
}

/// GET `url`, as text.
pub async fn get_text(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// GET `url`, as JSON.
pub async fn get_json<T: serde::de::DeserializeOwned>(client: &reqwest::Client, url: &str) -> T {
    client.get(url).send().await.unwrap().json().await.unwrap()
}
