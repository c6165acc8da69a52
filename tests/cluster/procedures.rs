//! Write procedures on a real cluster: one round trip from a replica, exactly once when the answer
//! is lost, errors of the same type as on the primary, read your writes, and the fallback to an
//! interactive transaction when the primary runs another version.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sea_orm::{ActiveModelTrait, DbErr, SqlErr, TransactionSession, TransactionTrait};

use blog::blog::input::{PostDraft, PostInput, PostPatch, TagLabel};
use blog::blog::posts::{self, CreatePost, UpdatePost, Visibility};
use blog::blog::tags;
use blog::blog::{BlogError, procedures};
use sea_orm_litefs::testing::Faults;
use sea_orm_litefs::{ClusterConnection, ClusterTransaction, Procedure, Procedures};

use crate::harness::Cluster;
use crate::{new_tag, primary_i64, rows_on_primary};

/// Inserts tags with plain SeaORM calls, failing as SeaORM does (a duplicate label is a unique
/// violation, not an app error).
struct InsertTags;

impl Procedure for InsertTags {
    const NAME: &'static str = "test.insert_tags";
    const VERSION: u32 = 1;
    type Args = Vec<String>;
    type Output = Vec<i32>;
    type Error = DbErr;

    async fn run(txn: &ClusterTransaction, labels: Vec<String>) -> Result<Vec<i32>, DbErr> {
        let mut ids = Vec::new();
        for label in labels {
            ids.push(new_tag(&label).insert(txn).await?.id);
        }
        Ok(ids)
    }
}

/// The same procedure in a later version, as a node deployed after a change would run it.
struct InsertTagsV2;

impl Procedure for InsertTagsV2 {
    const NAME: &'static str = InsertTags::NAME;
    const VERSION: u32 = 2;
    type Args = Vec<String>;
    type Output = Vec<i32>;
    type Error = DbErr;

    async fn run(txn: &ClusterTransaction, labels: Vec<String>) -> Result<Vec<i32>, DbErr> {
        InsertTags::run(txn, labels).await
    }
}

/// A primary and a replica in this process; the primary runs `procedures`, and its replies can be
/// lost and its calls counted through the returned [`Faults`]. The primary's handle keeps it alive.
async fn nodes(
    cluster: &Cluster,
    procedures: Procedures,
) -> (Arc<Faults>, ClusterConnection, ClusterConnection) {
    let faults = Arc::new(Faults::default());
    let (primary, replica) = cluster
        .primary_and_replica(|o| o.faults(faults.clone()).procedures(procedures))
        .await;
    (faults, primary, replica)
}

fn blog_procedures() -> Procedures {
    procedures::registry().register::<InsertTags>()
}

fn post(slug: &str, tags: usize) -> PostInput {
    PostInput::parse(&PostDraft {
        title: format!("Post {slug}"),
        slug: Some(slug.into()),
        body: "Written from a replica.".into(),
        tags: (0..tags).map(|i| format!("{slug}-tag{i}")).collect(),
        published: true,
    })
    .unwrap()
}

fn calls(faults: &Faults) -> usize {
    faults.calls_received.load(Ordering::SeqCst)
}

/// A post with 5 tags is a dozen statements; as a procedure it is one RPC, and the replica reads
/// it at once, although its replication is 300 ms late (the call waited for the commit here).
#[tokio::test]
async fn a_procedure_is_one_round_trip_and_the_replica_reads_its_write() {
    let cluster = Cluster::start_with_lag(2, 2, Duration::from_millis(300)).await;
    let (faults, _primary, replica) = nodes(&cluster, blog_procedures()).await;

    let before = calls(&faults);
    let created = replica.call::<CreatePost>(post("one-trip", 5)).await;
    let procedure_calls = calls(&faults) - before;
    let created: posts::PostWithTags = created.expect("the procedure commits").into();
    assert_eq!(procedure_calls, 1, "one RPC for the whole transaction");
    assert_eq!(created.tags.len(), 5);

    let read = posts::find_by_slug(&replica, "one-trip", Visibility::All)
        .await
        .expect("the replica reads its own write at once");
    assert_eq!(read.post.id, created.post.id);
    assert_eq!(read.tags, created.tags);

    // The same transaction, interactive: one RPC per statement.
    let before = calls(&faults);
    let txn = replica.begin().await.unwrap();
    posts::create_in(&txn, &post("many-trips", 5))
        .await
        .unwrap();
    txn.commit().await.unwrap();
    let interactive_calls = calls(&faults) - before;
    println!("RPCs for a post with 5 tags: procedure 1, interactive {interactive_calls}");
    assert!(interactive_calls > 10, "{interactive_calls}");
}

/// The primary commits the procedure and its answer is lost: the replica asks what became of the
/// key, gets the stored output, and the post exists once.
#[tokio::test]
async fn a_lost_answer_gets_the_stored_output_and_the_procedure_commits_once() {
    let cluster = Cluster::start(2).await;
    let (faults, _primary, replica) = nodes(&cluster, blog_procedures()).await;

    faults.lose_replies.store(1, Ordering::SeqCst);
    let created: posts::PostWithTags = replica
        .call::<CreatePost>(post("lost-answer", 3))
        .await
        .expect("the stored output, not a conflict nor an unknown outcome")
        .into();
    assert_eq!(
        faults.lose_replies.load(Ordering::SeqCst),
        0,
        "the fault fired"
    );
    let slug = "lost-answer";
    assert_eq!(
        primary_i64(&cluster, "SELECT count(*) FROM posts WHERE slug = ?", slug).await,
        1
    );
    let id = primary_i64(&cluster, "SELECT id FROM posts WHERE slug = ?", slug).await;
    assert_eq!(id, i64::from(created.post.id), "the output is the commit's");
    assert_eq!(created.tags.len(), 3);
    let links = primary_i64(
        &cluster,
        "SELECT count(*) FROM posts_tags JOIN posts ON posts.id = post_id WHERE slug = ?",
        slug,
    )
    .await;
    assert_eq!(links, 3, "the tags were linked once");
}

/// A procedure's own error comes back as the same error: the blog's conflict and not-found, and
/// a database error that SeaORM reads as a unique violation, as it would on the primary.
#[tokio::test]
async fn a_procedures_error_comes_back_typed() {
    let cluster = Cluster::start(2).await;
    let (_faults, _primary, replica) = nodes(&cluster, blog_procedures()).await;

    replica.call::<CreatePost>(post("taken", 1)).await.unwrap();
    match replica.call::<CreatePost>(post("taken", 2)).await {
        Err(BlogError::Conflict(message)) => {
            assert_eq!(message, "a post with this slug already exists")
        }
        other => panic!("expected the slug conflict, got {other:?}"),
    }
    let missing = replica
        .call::<UpdatePost>((
            i32::MAX,
            posts::Version::parse("2026-01-01T00:00:00Z~0000000000000000").unwrap(),
            post("no-such-post", 0),
        ))
        .await;
    assert!(
        matches!(missing, Err(BlogError::NotFound)),
        "expected not found, got {missing:?}"
    );

    let err = replica
        .call::<InsertTags>(vec!["typed-a".into(), "typed-a".into()])
        .await
        .expect_err("the second label is a duplicate");
    assert!(
        matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))),
        "a genuine unique violation: {err:?}"
    );
    assert_eq!(
        rows_on_primary(&cluster, "typed-a").await,
        0,
        "the failed procedure rolled back its first insert"
    );
}

/// A primary that runs another version of a procedure refuses it before running anything; the
/// replica runs the same body as an interactive transaction, which commits once.
#[tokio::test]
async fn an_unknown_version_runs_as_an_interactive_transaction() {
    let cluster = Cluster::start(2).await;
    let (faults, _primary, replica) = nodes(&cluster, blog_procedures()).await;

    let before = calls(&faults);
    let ids = replica
        .call::<InsertTagsV2>(vec!["v2-a".into(), "v2-b".into()])
        .await
        .expect("the fallback commits");
    let rpcs = calls(&faults) - before;
    assert_eq!(ids.len(), 2);
    assert_eq!(rows_on_primary(&cluster, "v2-a").await, 1);
    assert_eq!(rows_on_primary(&cluster, "v2-b").await, 1);
    // The refused call, then begin, two inserts and the commit.
    assert_eq!(rpcs, 5, "the refused call and an interactive transaction");

    // A primary that knows no such procedure at all: the same fallback.
    let (_faults, _other, replica) = nodes(&cluster, Procedures::new()).await;
    replica
        .call::<InsertTags>(vec!["unregistered".into()])
        .await
        .expect("the fallback commits");
    assert_eq!(rows_on_primary(&cluster, "unregistered").await, 1);
}

/// The blog's deletes from a replica: a post (its tag links go with it) and a tag, each one
/// procedure; deleting what is gone is the blog's not-found, as on the primary.
#[tokio::test]
async fn a_replica_deletes_posts_and_tags_with_procedures() {
    let cluster = Cluster::start(2).await;
    let (faults, _primary, replica) = nodes(&cluster, blog_procedures()).await;
    replica.call::<CreatePost>(post("doomed", 2)).await.unwrap();
    let tag = tags::find_by_label(&replica, "doomed-tag0").await.unwrap();

    let before = calls(&faults);
    posts::delete(&replica, "doomed", &posts::Expected::Any)
        .await
        .expect("deleted");
    tags::delete(&replica, tag.id).await.expect("deleted");
    assert_eq!(calls(&faults) - before, 2, "one RPC each");

    let on_primary = |sql| primary_i64(&cluster, sql, "doomed");
    assert_eq!(
        on_primary("SELECT count(*) FROM posts WHERE slug = ?").await,
        0
    );
    let links = "SELECT count(*) FROM posts_tags WHERE ? IS NOT NULL AND post_id NOT IN (SELECT id FROM posts)";
    assert_eq!(on_primary(links).await, 0, "no link outlives its post");
    assert_eq!(rows_on_primary(&cluster, "doomed-tag0").await, 0);
    assert_eq!(
        rows_on_primary(&cluster, "doomed-tag1").await,
        1,
        "the other tag stays"
    );
    assert!(matches!(
        posts::delete(&replica, "doomed", &posts::Expected::Any).await,
        Err(BlogError::NotFound)
    ));
    assert!(matches!(
        tags::delete(&replica, tag.id).await,
        Err(BlogError::NotFound)
    ));
}

/// The API's PATCH from a replica: one procedure that reads the post, merges the fields given and
/// validates on the primary, so the fields not given are the primary's current ones; its
/// validation errors come back with their fields, and a missing post as not found, as on the
/// primary.
#[tokio::test]
async fn a_replica_patches_a_post_with_one_procedure() {
    let cluster = Cluster::start(2).await;
    let (faults, primary, replica) = nodes(&cluster, blog_procedures()).await;
    replica
        .call::<CreatePost>(post("patched", 2))
        .await
        .unwrap();
    // A change made on the primary meanwhile: the patch must keep it.
    let title = PostPatch {
        title: Some("Retitled on the primary".into()),
        ..Default::default()
    };
    posts::patch(&primary, "patched", &title, &posts::Expected::Any)
        .await
        .unwrap();

    let before = calls(&faults);
    let body = PostPatch {
        body: Some("Rewritten on a replica.".into()),
        ..Default::default()
    };
    let patched = posts::patch(&replica, "patched", &body, &posts::Expected::Any)
        .await
        .expect("patched");
    assert_eq!(calls(&faults) - before, 1, "one RPC");
    assert_eq!(patched.post.title, "Retitled on the primary");
    assert_eq!(patched.post.body, "Rewritten on a replica.");
    assert_eq!(patched.tags, ["patched-tag0", "patched-tag1"]);
    let read = posts::find_by_slug(&replica, "patched", Visibility::All)
        .await
        .unwrap();
    assert_eq!(read.post.title, "Retitled on the primary");
    assert_eq!(read.post.body, "Rewritten on a replica.");

    let invalid = PostPatch {
        title: Some(" ".into()),
        tags: Some(vec!["x,y".into()]),
        ..Default::default()
    };
    match posts::patch(&replica, "patched", &invalid, &posts::Expected::Any).await {
        Err(BlogError::Validation(fields)) => {
            assert_eq!(
                fields.keys().copied().collect::<Vec<_>>(),
                ["tags", "title"]
            );
            assert!(fields["tags"].contains("no commas"), "{fields:?}");
        }
        other => panic!("expected the validation errors, got {other:?}"),
    }
    let missing = posts::patch(&replica, "no-such-post", &body, &posts::Expected::Any).await;
    assert!(
        matches!(missing, Err(BlogError::NotFound)),
        "expected not found, got {missing:?}"
    );
    let unchanged = posts::find_by_slug(&primary, "patched", Visibility::All)
        .await
        .unwrap();
    assert_eq!(unchanged.post.title, "Retitled on the primary");
    assert_eq!(unchanged.tags.len(), 2, "the refused patch wrote nothing");
}

/// A procedure that committed but has not reached this replica within the bound is a success
/// marked stale, not an error: a post created through a replica whose replication lags past the
/// forward timeout answers 201 with `x-blog-stale: 1`, through one procedure call.
#[tokio::test]
async fn a_committed_procedure_this_node_lags_behind_is_a_success_marked_stale() {
    let lag = Duration::from_millis(crate::harness::FORWARD_TIMEOUT_MS + 700);
    let cluster = Cluster::start_with_lag(2, 2, lag).await;
    let replica = cluster.url(2);
    let response = crate::http()
        .post(format!("{replica}/api/posts"))
        .basic_auth("admin", Some(crate::harness::ADMIN_PASSWORD))
        .json(&serde_json::json!({"title": "Lagging", "tags": ["slow"], "published": true}))
        .send()
        .await
        .unwrap();
    let stale = response.headers().get("x-blog-stale").cloned();
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    assert_eq!(stale.as_ref().map(|v| v.to_str().unwrap()), Some("1"));
    let on_primary = primary_i64(
        &cluster,
        "SELECT count(*) FROM posts WHERE slug = ?",
        "lagging",
    );
    assert_eq!(on_primary.await, 1);
    let counter = |name| crate::counter(&replica, name);
    assert_eq!(counter("blog_procedure_calls_total").await, 1.0);
    assert_eq!(counter("blog_forwarded_stale_answers_total").await, 1.0);
}

/// A replica whose primary runs the version before `blog.posts.patch` (a rolling deploy): the
/// patch runs as an interactive transaction and answers as the procedure does: the fields given
/// changed and the others kept, validation errors with their fields, not found, and a slug
/// another post has as the slug conflict, with nothing written by a refused patch.
#[tokio::test]
async fn a_patch_on_a_primary_without_the_procedure_answers_the_same() {
    // Replication 300 ms late: the fields kept must be the primary's, not the replica's copy.
    let cluster = Cluster::start_with_lag(2, 2, Duration::from_millis(300)).await;
    let previous = Procedures::new()
        .register::<CreatePost>()
        .register::<UpdatePost>()
        .register::<posts::DeletePost>()
        .register::<tags::DeleteTag>();
    let (faults, primary, replica) = nodes(&cluster, previous).await;
    replica.call::<CreatePost>(post("skewed", 2)).await.unwrap();
    replica.call::<CreatePost>(post("taken", 0)).await.unwrap();

    let title = PostPatch {
        title: Some("Retitled on the primary".into()),
        ..Default::default()
    };
    posts::patch(&primary, "skewed", &title, &posts::Expected::Any)
        .await
        .unwrap();
    let before = calls(&faults);
    let body = PostPatch {
        body: Some("Patched through the fallback.".into()),
        ..Default::default()
    };
    let patched = posts::patch(&replica, "skewed", &body, &posts::Expected::Any)
        .await
        .expect("patched");
    assert!(
        calls(&faults) - before > 1,
        "the refused call, then statements"
    );
    assert_eq!(patched.post.title, "Retitled on the primary");
    assert_eq!(patched.post.body, "Patched through the fallback.");
    assert_eq!(patched.tags, ["skewed-tag0", "skewed-tag1"]);

    let invalid = PostPatch {
        title: Some(" ".into()),
        tags: Some(vec!["x,y".into()]),
        ..Default::default()
    };
    match posts::patch(&replica, "skewed", &invalid, &posts::Expected::Any).await {
        Err(BlogError::Validation(fields)) => assert_eq!(
            fields.keys().copied().collect::<Vec<_>>(),
            ["tags", "title"]
        ),
        other => panic!("expected the validation errors, got {other:?}"),
    }
    let missing = posts::patch(&replica, "no-such-post", &body, &posts::Expected::Any).await;
    assert!(
        matches!(missing, Err(BlogError::NotFound)),
        "expected not found, got {missing:?}"
    );
    let clash = PostPatch {
        slug: Some("taken".into()),
        tags: Some(vec![]),
        ..Default::default()
    };
    match posts::patch(&replica, "skewed", &clash, &posts::Expected::Any).await {
        Err(BlogError::Conflict(message)) => {
            assert_eq!(message, "a post with this slug already exists")
        }
        other => panic!("expected the slug conflict, got {other:?}"),
    }
    let unchanged = posts::find_by_slug(&primary, "skewed", Visibility::All)
        .await
        .unwrap();
    assert_eq!(unchanged.post.body, "Patched through the fallback.");
    assert_eq!(unchanged.tags.len(), 2, "the refused patches wrote nothing");
}

/// `blog.posts.update` as the primary ran it before it checked a version (a rolling deploy): it
/// never runs here, its fingerprint only makes the primary refuse the current version.
struct UpdatePostV1;

impl Procedure for UpdatePostV1 {
    const NAME: &'static str = UpdatePost::NAME;
    const VERSION: u32 = 1;
    type Args = (String, PostInput);
    type Output = posts::Saved;
    type Error = BlogError;

    async fn run(_: &ClusterTransaction, _: Self::Args) -> Result<posts::Saved, BlogError> {
        Err(BlogError::Conflict("version 1 of the update ran".into()))
    }
}

/// `blog.posts.patch` as the primary ran it before it took the versions to allow (`If-Match`).
struct PatchPostV1;

impl Procedure for PatchPostV1 {
    const NAME: &'static str = posts::PatchPost::NAME;
    const VERSION: u32 = 1;
    type Args = (String, PostPatch);
    type Output = posts::Saved;
    type Error = BlogError;

    async fn run(_: &ClusterTransaction, _: Self::Args) -> Result<posts::Saved, BlogError> {
        Err(BlogError::Conflict("version 1 of the patch ran".into()))
    }
}

/// `blog.posts.delete` as the primary ran it before it took the versions to allow (`If-Match`).
struct DeletePostV1;

impl Procedure for DeletePostV1 {
    const NAME: &'static str = posts::DeletePost::NAME;
    const VERSION: u32 = 1;
    type Args = String;
    type Output = ();
    type Error = BlogError;

    async fn run(_: &ClusterTransaction, _: Self::Args) -> Result<(), BlogError> {
        Err(BlogError::Conflict("version 1 of the delete ran".into()))
    }
}

/// The edit form's update from a replica, against the version of the post it was opened on:
/// after a change on the primary it is refused with the post as the primary has it, nothing
/// written; against that version it saves. The same on a primary that runs the update as one
/// procedure and on one that runs version 1 of it (a rolling deploy), where the replica runs the
/// body as an interactive transaction and the check is made in that transaction; and the API's
/// PATCH with an `If-Match` of the version before the change, likewise, and a DELETE with it. A tag
/// of the post renamed on the primary, which does not write the post, changes its version too.
/// The replica lags 300 ms: a version read from its copy would be the old one.
#[tokio::test]
async fn a_stale_update_from_a_replica_is_refused_whatever_the_primary_s_version() {
    let cluster = Cluster::start_with_lag(2, 2, Duration::from_millis(300)).await;
    let previous = Procedures::new()
        .register::<CreatePost>()
        .register::<UpdatePostV1>()
        .register::<PatchPostV1>()
        .register::<DeletePostV1>()
        .register::<tags::DeleteTag>();
    for (registry, slug, as_one_rpc) in [
        (blog_procedures(), "checked", true),
        (previous, "checked-in-fallback", false),
    ] {
        let (faults, primary, replica) = nodes(&cluster, registry).await;
        let created = replica.call::<CreatePost>(post(slug, 1)).await.unwrap();
        let id = posts::PostWithTags::from(created).post.id;
        let opened = posts::find_by_id(&primary, id).await.unwrap();
        let changed = PostPatch {
            body: Some("Changed on the primary.".into()),
            ..Default::default()
        };
        posts::patch(&primary, slug, &changed, &posts::Expected::Any)
            .await
            .unwrap();

        let mut edit = post(slug, 1);
        edit.body = "Edited in the form.".into();
        let before = calls(&faults);
        let refused = posts::update(&replica, id, posts::Version::of(&opened), &edit).await;
        let rpcs = calls(&faults) - before;
        let current = match refused {
            Err(BlogError::Changed(current)) => current,
            other => panic!("{slug}: expected the post changed meanwhile, got {other:?}"),
        };
        assert_eq!(current.post.body, "Changed on the primary.", "{slug}");
        assert_eq!(current.tags, [format!("{slug}-tag0")], "{slug}");
        if as_one_rpc {
            assert_eq!(rpcs, 1, "{slug}: one procedure call");
        } else {
            assert!(
                rpcs > 1,
                "{slug}: the refused call, then statements ({rpcs})"
            );
        }
        let kept = posts::find_by_id(&primary, id).await.unwrap();
        assert_eq!(
            kept.post.body, "Changed on the primary.",
            "{slug}: nothing written"
        );
        // The API's PATCH with If-Match naming the version read before the change: the same.
        let stale = posts::Expected::OneOf(vec![(id, posts::Version::of(&opened))]);
        let edit_body = PostPatch {
            body: Some("Patched from an old read.".into()),
            ..Default::default()
        };
        let before = calls(&faults);
        let refused = posts::patch(&replica, slug, &edit_body, &stale).await;
        let rpcs = calls(&faults) - before;
        assert!(
            matches!(&refused, Err(BlogError::Changed(current)) if current.post.body == "Changed on the primary."),
            "{slug}: expected the patch refused, got {refused:?}"
        );
        assert_eq!(rpcs == 1, as_one_rpc, "{slug}: {rpcs} calls");

        let before = calls(&faults);
        let refused = posts::delete(&replica, slug, &stale).await;
        let rpcs = calls(&faults) - before;
        assert!(
            matches!(&refused, Err(BlogError::Changed(current)) if current.post.body == "Changed on the primary."),
            "{slug}: expected the delete refused, got {refused:?}"
        );
        assert_eq!(rpcs == 1, as_one_rpc, "{slug}: {rpcs} calls");

        let saved = posts::update(&replica, id, posts::Version::of(&current), &edit)
            .await
            .unwrap_or_else(|e| panic!("{slug}: saved against the current version: {e:?}"));
        assert_eq!(saved.post.body, "Edited in the form.");
        let on_primary = posts::find_by_id(&primary, id).await.unwrap();
        assert_eq!(on_primary.post.body, "Edited in the form.", "{slug}");

        // A tag of the post renamed meanwhile: the post is not written, its version changes.
        let tag = tags::find_by_label(&primary, &format!("{slug}-tag0"))
            .await
            .unwrap();
        let renamed = TagLabel::parse(&format!("{slug}-renamed")).unwrap();
        tags::rename(&primary, tag.id, &renamed).await.unwrap();
        let refused = posts::update(&replica, id, posts::Version::of(&saved), &edit).await;
        assert!(
            matches!(&refused, Err(BlogError::Changed(current)) if current.tags == [renamed.as_str()]),
            "{slug}: expected the update refused after the rename, got {refused:?}"
        );
        let kept = posts::find_by_id(&primary, id).await.unwrap();
        assert_eq!(kept.tags, [renamed.as_str()], "{slug}: the rename stays");
        let stale = posts::Expected::OneOf(vec![(id, posts::Version::of(&saved))]);
        assert!(
            matches!(
                posts::delete(&replica, slug, &stale).await,
                Err(BlogError::Changed(_))
            ),
            "{slug}: a delete against the version before the rename is refused"
        );
        posts::delete(
            &replica,
            slug,
            &posts::Expected::OneOf(vec![(id, posts::Version::of(&kept))]),
        )
        .await
        .unwrap_or_else(|e| panic!("{slug}: deleted at its current version: {e:?}"));
    }
}

/// A forwarded write answers once this replica has it, so an answered write (not marked stale)
/// is on two machines: the primary lost the moment after the answer (every link of the replica to
/// it cut, data in flight dropped) takes nothing answered with it. Answering as soon as the
/// primary commits, as LiteFS's HTTP proxy does, would not: the same write on another replica,
/// with the catch-up wait turned off, is answered and then is not in that replica's file.
#[tokio::test]
async fn an_answered_write_is_already_on_the_replica_when_the_primary_is_lost() {
    use crate::toxiproxy::{Link, Toxic, rpc_listen};
    let cluster = &Cluster::start_with_links(3).await;
    let links = cluster.links.as_ref().expect("the cluster has links");
    let open = |k: usize, catch_up: bool| {
        cluster
            .options(k)
            .primary_rpc(rpc_listen(k))
            .procedures(procedures::registry())
            .catch_up(catch_up)
            .start()
    };
    let waits = open(2, true).await.expect("node 2 joins");
    let answers_first = open(3, false).await.expect("node 3 joins");
    assert_eq!(waits.role().as_str(), "replica");
    assert_eq!(answers_first.role().as_str(), "replica");

    // Replication reaches both replicas half a second late; their RPC links are healthy.
    for k in [2, 3] {
        let late = Toxic::Latency {
            ms: 500,
            jitter_ms: 0,
        };
        links.inject(k, Link::Replication, late).await;
    }
    let in_file = |k: usize, slug: &'static str| async move {
        let mut db = crate::open_db(cluster.node(k)).await;
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM posts WHERE slug = ?")
            .bind(slug)
            .fetch_one(&mut db)
            .await
            .expect("the replica's file reads")
    };

    posts::create(&waits, &post("kept-on-two", 5))
        .await
        .expect("the write commits and is answered");
    links.cut(2).await;
    assert_eq!(
        in_file(2, "kept-on-two").await,
        1,
        "the answered write is here"
    );

    posts::create(&answers_first, &post("only-on-primary", 5))
        .await
        .expect("the write commits and is answered");
    links.cut(3).await;
    assert_eq!(
        in_file(3, "only-on-primary").await,
        0,
        "answered at the primary's commit, the write had not reached this replica"
    );
    assert_eq!(
        primary_i64(
            cluster,
            "SELECT count(*) FROM posts WHERE slug = ?",
            "only-on-primary"
        )
        .await,
        1,
        "it committed on the primary, and only there"
    );
}
