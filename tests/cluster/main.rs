//! Tests on a real LiteFS cluster: LiteFS itself behaves as the project relies on, and writes on
//! replicas are forwarded, answered with the primary's result, and never attempted locally.

#[path = "../support/browser.rs"]
mod browser;
mod differential;
mod forwarding;
mod guarantees;
mod harness;
mod litefs;

use std::time::Duration;

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
