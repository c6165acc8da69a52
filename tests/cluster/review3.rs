//! A third review of case-insensitive tags, on a real cluster: what held of the stale-key fixes
//! where a replica forwards the writes.

use blog::blog::input::{PostInput, TagLabel};
use blog::blog::posts::{self, CreatePost, Visibility};
use blog::blog::{BlogError, procedures, tags};

use crate::harness::Cluster;
use crate::{open_db, primary_i64};

/// A tag renamed by an old node on the primary (`Über` to `Ärger`, its key left `über`): from a
/// replica, another tag renamed to `Über` (a forwarded update, its unique violation corrected in
/// a transaction on the primary, then the update again), a post given the stale tag's new label
/// in another case (the primary's procedure), and a tag created in another case of it (a 409):
/// one tag per key, the stale key corrected once, nothing refused that is free.
#[tokio::test]
async fn a_replica_s_rename_and_post_behind_a_stale_key() {
    let cluster = Cluster::start(2).await;
    let (primary, replica) = cluster
        .primary_and_replica(|o| o.procedures(procedures::registry()))
        .await;
    let label = |l: &str| TagLabel::parse(l).unwrap();
    tags::create(&primary, &label("Über")).await.unwrap();
    let zorn = tags::create(&primary, &label("Zorn")).await.unwrap();
    sqlx::query("UPDATE tags SET label = 'Ärger' WHERE label = 'Über'")
        .execute(&mut open_db(cluster.node(cluster.primary)).await)
        .await
        .unwrap();

    let renamed = tags::rename(&replica, zorn.id, &label("ÜBER"))
        .await
        .expect("the stale key is corrected, then the rename goes through");
    assert_eq!(renamed.label_key, "über");
    let input: PostInput = serde_json::from_value(serde_json::json!({
        "title": "Post", "slug": "post", "body": "b", "tags": ["ärger", "über"],
        "published": true,
    }))
    .unwrap();
    replica.call::<CreatePost>(input).await.unwrap();
    let post = posts::find_by_slug(&primary, "post", Visibility::All)
        .await
        .unwrap();
    assert_eq!(post.tags, ["Ärger", "ÜBER"]);
    assert!(matches!(
        tags::create(&replica, &label("ärger")).await,
        Err(BlogError::Conflict(_))
    ));
    assert_eq!(
        primary_i64(
            &cluster,
            "SELECT count(*) FROM tags WHERE label || '|' || label_key IN (?, 'ÜBER|über')",
            "Ärger|ärger"
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
