//! A third review of case-insensitive tags, on a real cluster: what held of the stale-key fixes
//! where a replica forwards the writes (since: no key can be stale, an old node's rename that
//! would leave one is refused).

use blog::blog::input::{PostInput, TagLabel};
use blog::blog::posts::{self, CreatePost, Visibility};
use blog::blog::{BlogError, procedures, tags};

use crate::harness::Cluster;
use crate::{open_db, primary_i64};

/// An old node's rename on the primary (`Über` to `Ärger`, which would leave the key `über`).
/// Premise changed: the review checked that a replica's writes behind the stale key it left
/// corrected it once; the database now refuses that rename. From a replica: the tag renamed to
/// `Ärger` by the blog, then only in the case of a non-ASCII letter (`ärger`: a temporary key,
/// then label and key, in a transaction on the primary), another tag renamed to the label now
/// free (`ÜBER`), a post given both labels in other cases (the primary's procedure), and a tag
/// created in another case of one (a 409): one tag per key, every key right.
#[tokio::test]
async fn a_replica_s_rename_and_post_behind_a_stale_key() {
    let cluster = Cluster::start(2).await;
    let (primary, replica) = cluster
        .primary_and_replica(|o| o.procedures(procedures::registry()))
        .await;
    let label = |l: &str| TagLabel::parse(l).unwrap();
    let uber = tags::create(&primary, &label("Über")).await.unwrap();
    let zorn = tags::create(&primary, &label("Zorn")).await.unwrap();
    let err = sqlx::query("UPDATE tags SET label = 'Ärger' WHERE label = 'Über'")
        .execute(&mut open_db(cluster.node(cluster.primary)).await)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("renamed by code of before case-insensitive tags"),
        "{err}"
    );
    assert_eq!(
        tags::find_by_id(&primary, uber.id).await.unwrap().label,
        "Über"
    );

    for to in ["Ärger", "ärger"] {
        let renamed = tags::rename(&replica, uber.id, &label(to)).await.unwrap();
        assert_eq!(
            (renamed.label.as_str(), renamed.label_key.as_str()),
            (to, "ärger")
        );
    }
    let renamed = tags::rename(&replica, zorn.id, &label("ÜBER"))
        .await
        .expect("the label is free");
    assert_eq!(renamed.label_key, "über");
    assert!(matches!(
        tags::rename(&replica, zorn.id, &label("ÄRGER")).await,
        Err(BlogError::Conflict(_))
    ));
    let input: PostInput = serde_json::from_value(serde_json::json!({
        "title": "Post", "slug": "post", "body": "b", "tags": ["Ärger", "über"],
        "published": true,
    }))
    .unwrap();
    replica.call::<CreatePost>(input).await.unwrap();
    let post = posts::find_by_slug(&primary, "post", Visibility::All)
        .await
        .unwrap();
    assert_eq!(post.tags, ["ärger", "ÜBER"]);
    assert!(matches!(
        tags::create(&replica, &label("ÄRGER")).await,
        Err(BlogError::Conflict(_))
    ));
    assert_eq!(
        primary_i64(
            &cluster,
            "SELECT count(*) FROM tags WHERE label || '|' || label_key IN (?, 'ÜBER|über')",
            "ärger|ärger"
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
