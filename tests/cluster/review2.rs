//! A second review of case-insensitive tags, on a real cluster: a replica's tag writes (forwarded
//! statements and the post procedures the primary runs) treat labels that differ only in case as
//! one tag, and refuse a duplicate in another case as the blog's conflict, not a database error.

use blog::blog::input::{PostInput, TagLabel};
use blog::blog::posts::{self, CreatePost, Visibility};
use blog::blog::{BlogError, procedures, tags};

use crate::harness::Cluster;
use crate::primary_i64;

/// Labels that differ only in case, as a replica running the code of before the keys sends them
/// (its parse kept both): built by deserializing, as the primary receives them.
fn input_of_an_old_replica(slug: &str, labels: &[&str]) -> PostInput {
    serde_json::from_value(serde_json::json!({
        "title": format!("Post {slug}"),
        "slug": slug,
        "body": "b",
        "tags": labels,
        "published": true,
    }))
    .unwrap()
}

#[tokio::test]
async fn a_replica_s_tag_writes_in_another_case_are_one_tag_or_a_conflict() {
    let cluster = Cluster::start(2).await;
    let (primary, replica) = cluster
        .primary_and_replica(|o| o.procedures(procedures::registry()))
        .await;
    let label = |l: &str| TagLabel::parse(l).unwrap();

    let rust = tags::create(&replica, &label("Rust")).await.unwrap();
    assert_eq!(rust.label_key, "rust");
    assert!(matches!(
        tags::create(&replica, &label("rUST")).await,
        Err(BlogError::Conflict(_))
    ));
    let uber = tags::create(&replica, &label("über")).await.unwrap();
    assert!(matches!(
        tags::rename(&replica, uber.id, &label("RUST")).await,
        Err(BlogError::Conflict(_))
    ));
    let renamed = tags::rename(&replica, uber.id, &label("Über"))
        .await
        .unwrap();
    assert_eq!(
        (renamed.label.as_str(), renamed.label_key.as_str()),
        ("Über", "über")
    );

    replica
        .call::<CreatePost>(input_of_an_old_replica(
            "old",
            &["rust", "RUST", "ÜBER", "über", "New", "nEW"],
        ))
        .await
        .expect("the primary's procedure keeps one tag per key");
    let post = posts::find_by_slug(&primary, "old", Visibility::All)
        .await
        .unwrap();
    assert_eq!(post.tags, ["New", "Rust", "Über"]);
    assert_eq!(
        primary_i64(
            &cluster,
            "SELECT count(*) FROM tags WHERE ? IS NOT NULL",
            ""
        )
        .await,
        3
    );
    assert_eq!(
        primary_i64(
            &cluster,
            "SELECT count(*) FROM tags WHERE label_key = ?",
            "new"
        )
        .await,
        1
    );
}
