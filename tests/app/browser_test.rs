//! The admin flow in a real headless Chromium.

use reqwest::{Method, StatusCode};

use crate::browser;
use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_creates_a_tag_and_a_post_in_a_browser() {
    let app = spawn_app().await;
    browser::admin_creates_tag_and_post(
        &app.base,
        &app.password,
        "browser-tag",
        "Hello from Chromium",
    )
    .await;

    // What the browser did is really there.
    assert_eq!(app.tag_labels().await, ["browser-tag"]);
    let (status, post) = app.api_get("/posts/hello-from-chromium").await;
    assert_eq!(status, StatusCode::OK, "the post is published: {post}");
    assert_eq!(post["title"], "Hello from Chromium");
    assert_eq!(post["tags"], serde_json::json!(["browser-tag"]));
    assert_eq!(post["body"], "Written in a *real* browser.");
    let (_, all) = app.api_call(Method::GET, "/posts", None).await;
    assert_eq!(all["total_items"], 1);
}
