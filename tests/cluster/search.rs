//! Full-text search on real LiteFS: the FTS5 index is kept by triggers in the primary's
//! transaction, so it replicates with the post. A post written through one replica is found by
//! a word of its body on another replica right away (with the write's consistency cookie).

use std::time::Duration;

use crate::harness::{ADMIN_PASSWORD, Cluster};
use crate::http;

/// The `blog_txid=...` pair of a write's response, to carry to another node.
fn consistency_cookie(response: &reqwest::Response) -> String {
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(set_cookie.starts_with("blog_txid="), "{set_cookie}");
    set_cookie.split(';').next().unwrap().to_owned()
}

/// `GET {base}/api/posts?q={word}` with `cookie`: the slugs found.
async fn search(client: &reqwest::Client, base: &str, word: &str, cookie: &str) -> Vec<String> {
    let response = client
        .get(format!("{base}/api/posts?q={word}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert!(
        response.headers().get("x-blog-stale").is_none(),
        "{base} gave up waiting for the write"
    );
    let page: serde_json::Value = response.json().await.unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn search_on_a_replica_finds_a_post_just_written_through_another() {
    // Node 3 gets the primary's changes 20 ms late, like a replica in another region.
    let cluster = Cluster::start_with_lag(3, 3, Duration::from_millis(20)).await;
    let client = http();
    let (writer, reader) = (cluster.url(2), cluster.url(3));
    for i in 0..10 {
        let (slug, word) = (format!("post-{i}"), format!("zanzibar{i}"));
        let created = client
            .post(format!("{writer}/api/posts"))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .json(&serde_json::json!({
                "title": format!("Post {i}"),
                "slug": slug,
                "body": format!("Travel notes: {word} in spring."),
                "published": true
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201, "round {i}");
        let cookie = consistency_cookie(&created);
        assert_eq!(
            search(&client, &reader, &word, &cookie).await,
            [slug.as_str()],
            "round {i}"
        );

        // The search page on the reader shows it too.
        let page = client
            .get(format!("{reader}/search?q={word}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains(&format!(r#"<a href="/posts/{slug}">"#)),
            "round {i}: {page}"
        );
    }

    // An edit through the lagging replica moves the post in the index, seen on the other.
    let edited = client
        .patch(format!("{reader}/api/posts/post-0"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&serde_json::json!({
            "title": "Post 0",
            "body": "Now about quokkas.",
            "published": true
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(edited.status(), 200);
    let cookie = consistency_cookie(&edited);
    assert_eq!(
        search(&client, &writer, "quokkas", &cookie).await,
        ["post-0"]
    );
    assert!(
        search(&client, &writer, "zanzibar0", &cookie)
            .await
            .is_empty()
    );
}
