//! What the render cache saves (`scripts/bench render` runs this section alone, a few seconds).
//!
//! One standalone node's database (a plain SQLite file, no LiteFS: rendering happens where a
//! post is read, the same on every node) served by two apps in this process: one with the render
//! cache (the default), one rendering every view (`--render-cache-mb 0`), asked in turn. Cases:
//! a short post, a long tutorial with code, and the feed. The cached app's first view of each
//! renders; what is measured is what a reader waits after that.

use std::time::{Duration, Instant};

use super::{Row, latency_row, print_table};

const WARMUP: usize = 5;
const SAMPLES: usize = 40;
const PASSWORD: &str = "bench-render-password";

/// A post of about `kb` kilobytes, as a tutorial is written: headings, paragraphs with inline
/// markup and links, lists, and fenced Rust.
fn tutorial(kb: usize) -> String {
    let section = "## A section\n\nSome *prose* about **LiteFS**, with `code`, a \
        [link](https://fly.io/docs/litefs/) and a footnote.[^n]\n\n- one point\n- another \
        point, longer than the first one\n\n```rust\nfn main() {\n    let x: Vec<u32> = \
        (0..10).map(|i| i * 2).collect();\n    println!(\"{x:?}\");\n}\n```\n\n";
    let mut body = String::from("# A tutorial\n\n");
    while body.len() < kb * 1024 {
        body.push_str(section);
    }
    body.push_str("[^n]: The footnote.\n");
    body
}

/// Starts a standalone blog on `dir/blog.db` with `extra` arguments; its base URL.
pub(super) async fn start(dir: &std::path::Path, extra: &[&str]) -> String {
    let database = dir.join("blog.db");
    let mut args = vec![
        "blog",
        "--listen",
        "127.0.0.1:0",
        "--database",
        database.to_str().expect("a UTF-8 path"),
        "--admin-password",
        PASSWORD,
    ];
    args.extend_from_slice(extra);
    let cli = <blog::config::Cli as clap::Parser>::try_parse_from(args).expect("bench arguments");
    let running = blog::start(cli.config).await.expect("the blog starts");
    let base = format!("http://{}", running.addr);
    // The server runs on this runtime until the section ends.
    std::mem::forget(running);
    base
}

/// `GET url`, which must succeed; how long it took, body included.
pub(super) async fn get(client: &reqwest::Client, url: &str) -> Duration {
    let started = Instant::now();
    let response = client.get(url).send().await.expect("the blog answers");
    assert!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    response.bytes().await.expect("the body");
    started.elapsed()
}

pub(super) fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

pub async fn run() {
    eprintln!("bench: the render cache: one node, cached against rendering every view");
    let dir = std::env::temp_dir().join(format!("blog-bench-render-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let cached = start(&dir, &[]).await;
    let uncached = start(&dir, &["--render-cache-mb", "0"]).await;
    let client = reqwest::Client::new();
    let posts = [("short", 4), ("tutorial", 200)];
    for (slug, kb) in posts {
        let body = serde_json::json!({
            "title": format!("Bench {slug}"), "slug": slug, "body": tutorial(kb),
            "tags": ["bench"], "published": true,
        });
        let response = client
            .post(format!("{cached}/api/posts"))
            .basic_auth("admin", Some(PASSWORD))
            .json(&body)
            .send()
            .await
            .expect("the blog answers");
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
    }
    for i in 0..18 {
        let body = serde_json::json!({
            "title": format!("Feed filler {i}"), "body": tutorial(8), "published": true,
        });
        client
            .post(format!("{cached}/api/posts"))
            .basic_auth("admin", Some(PASSWORD))
            .json(&body)
            .send()
            .await
            .expect("the blog answers");
    }
    let cases = [
        ("view of a 4 KB post", "/posts/short"),
        ("view of a 200 KB tutorial", "/posts/tutorial"),
        ("/feed.xml, 20 posts", "/feed.xml"),
    ];
    let mut rows: Vec<Row> = Vec::new();
    for (what, path) in cases {
        let (with, without) = (format!("{cached}{path}"), format!("{uncached}{path}"));
        for _ in 0..WARMUP {
            get(&client, &with).await;
            get(&client, &without).await;
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..SAMPLES {
            a.push(get(&client, &with).await);
            b.push(get(&client, &without).await);
        }
        rows.push(latency_row(
            &format!("{what}, cached vs rendering each view"),
            median(a),
            median(b),
            None,
        ));
    }
    println!();
    println!("render cache (medians of {SAMPLES}, interleaved):");
    print_table(&rows);
    let _ = std::fs::remove_dir_all(&dir);
}
