//! A post's old address on a real cluster: the old slug is recorded by a trigger in the rename's
//! own transaction on the primary, so it replicates with the post. A rename through a replica
//! redirects from the old address on that replica at once, and on another replica with the
//! write's consistency cookie, as the post's new address is shown there.

use std::time::Duration;

use crate::harness::{ADMIN_PASSWORD, Cluster};

/// The `blog_txid=...` pair of a write's response, to carry to another node.
fn consistency_cookie(response: &reqwest::Response) -> String {
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(set_cookie.starts_with("blog_txid="), "{set_cookie}");
    set_cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_rename_through_a_replica_redirects_on_it_and_on_another_replica() {
    // Node 3 gets the primary's changes 20 ms late, like a replica in another region.
    let cluster = Cluster::start_with_lag(3, 3, Duration::from_millis(20)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (writer, reader) = (cluster.url(2), cluster.url(3));
    let created = client
        .post(format!("{writer}/api/posts"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&serde_json::json!({ "title": "Moving", "slug": "slug-0", "published": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    for i in 1..=5 {
        let (from, to) = (format!("slug-{}", i - 1), format!("slug-{i}"));
        let renamed = client
            .patch(format!("{writer}/api/posts/{from}"))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .json(&serde_json::json!({ "slug": to }))
            .send()
            .await
            .unwrap();
        assert_eq!(renamed.status(), 200, "round {i}");
        let cookie = consistency_cookie(&renamed);
        for base in [&writer, &reader] {
            for old in 0..i {
                let response = client
                    .get(format!("{base}/posts/slug-{old}"))
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .unwrap();
                assert!(
                    response.headers().get("x-blog-stale").is_none(),
                    "{base} gave up waiting for the write"
                );
                assert_eq!(response.status(), 301, "round {i}, {base}/posts/slug-{old}");
                assert_eq!(
                    response.headers()["location"].to_str().unwrap(),
                    format!("/posts/{to}"),
                    "round {i}, {base}/posts/slug-{old}"
                );
            }
        }
    }
}
