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

/// An old node's rename on the primary (`Über` to `Ärger`, which would leave the key `über`),
/// then `Über` and `Ärger` created on a replica that lags. Premise changed: the review checked
/// that the stale key the rename left was corrected on the primary; the database now refuses the
/// rename, so nothing is stale: `Über` typed again is the tag that exists (a 409), `Ärger` a new
/// tag, both decided on the primary.
#[tokio::test]
async fn a_stale_key_is_corrected_from_a_lagging_replica() {
    use std::time::Duration;

    use crate::harness::wait_until;
    use crate::{create_tag, http, open_db};

    let cluster = Cluster::start_with_lag(2, 2, Duration::from_millis(1500)).await;
    let (primary, replica) = (cluster.url(1), cluster.url(2));
    let api = http();
    assert_eq!(create_tag(&api, &primary, "Über").await.0, 201);
    wait_until("the tag on the replica", || {
        let (api, replica) = (api.clone(), replica.clone());
        async move {
            let tags: serde_json::Value = api
                .get(format!("{replica}/api/tags"))
                .basic_auth("admin", Some(crate::harness::ADMIN_PASSWORD))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            tags.as_array()?
                .iter()
                .any(|t| t["label"] == "Über")
                .then_some(())
        }
    })
    .await;
    // The old node's rename, on the primary: refused, nothing written.
    let err = sqlx::query("UPDATE tags SET label = 'Ärger' WHERE label = 'Über'")
        .execute(&mut open_db(cluster.node(cluster.primary)).await)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("renamed by code of before case-insensitive tags"),
        "{err}"
    );

    let (status, body) = create_tag(&api, &replica, "über").await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = create_tag(&api, &replica, "Ärger").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        primary_i64(
            &cluster,
            "SELECT count(*) FROM tags WHERE label || '|' || label_key IN (?, 'Ärger|ärger')",
            "Über|über"
        )
        .await,
        2
    );
    assert_eq!(
        primary_i64(
            &cluster,
            "SELECT count(*) FROM tags WHERE ? IS NOT NULL",
            ""
        )
        .await,
        2
    );
}
