use super::*;
use crate::litefs::Mount;
use crate::pools::Databases;

/// A call's work cut short (here a panic; a cancelled task at shutdown takes the same path)
/// may have committed: it must get no answer, never a refusal, which would say it did not.
#[tokio::test]
async fn work_cut_short_is_not_answered_as_refused() {
    let cut_short = detached::<()>(async { panic!("cut short after its COMMIT") });
    let answered = tokio::time::timeout(Duration::from_millis(200), cut_short).await;
    assert!(
        answered.is_err(),
        "work that stopped halfway was answered {answered:?}"
    );
}

/// A forwarded write that LiteFS refuses (SQLite's read-only error, as on a node that just
/// lost the lease) is answered "not primary, ask node2" once LiteFS names another primary:
/// nothing committed, so the replica sends it on with the same key. While this node is still
/// primary the same error is the write's own answer.
#[tokio::test]
async fn a_write_refused_by_litefs_after_the_lease_moved_is_sent_on() {
    let (dir, options) = writer::temp_database("server-moved");
    let path = dir.join("t.db");
    {
        use sqlx::ConnectOptions;
        let mut conn = options.connect().await.unwrap();
        conn.execute("CREATE TABLE t(x)").await.unwrap();
        conn.execute(dedup::CREATE_TABLE).await.unwrap();
    }
    // Every write fails as LiteFS makes it fail on a node that is not primary.
    let databases = Arc::new(Databases::open(&path, options.pragma("query_only", "ON")));
    let follower = Arc::new(Follower::new(Mount {
        dir: dir.clone(),
        db_name: "t.db".into(),
    }));
    follower.set_role(true, "");
    let writer = Arc::new(Writer::new(databases, Some(follower.clone()), 64, true));
    let limits = SessionLimits {
        lease: Duration::from_secs(5),
        max_lifetime: Duration::from_secs(30),
        max_sessions: 4,
    };
    let executor = Executor::new(
        writer,
        Some(follower),
        limits,
        Arc::default(),
        Arc::new(Procedures::new()),
    );
    let insert = || Request::ExecuteUnprepared("INSERT INTO t VALUES (1)".into());
    let deadline = || Instant::now() + Duration::from_secs(5);

    let here = executor.run(1, insert(), deadline()).await;
    assert!(
        matches!(&here, Ok(Outcome { result: Err(_), .. })),
        "still primary: the write's own error, {here:?}"
    );
    std::fs::write(dir.join(".primary"), "node2\n").unwrap();
    let moved = executor.run(2, insert(), deadline()).await;
    assert_eq!(
        moved,
        Err(Refusal::NotPrimary {
            primary: Some("node2".into())
        })
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Inserts one row.
struct InsertOne;

impl crate::Procedure for InsertOne {
    const NAME: &'static str = "insert_one";
    const VERSION: u32 = 1;
    type Args = ();
    type Output = ();
    type Error = sea_orm::DbErr;

    async fn run(txn: &crate::ClusterTransaction, (): ()) -> Result<(), sea_orm::DbErr> {
        use sea_orm::ConnectionTrait;
        txn.execute_unprepared("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
            .await?;
        txn.execute_unprepared("INSERT INTO t VALUES (1)").await?;
        Ok(())
    }
}

/// A forwarded procedure whose COMMIT SQLite returned but LiteFS did not confirm (LiteFS
/// stopped as it committed) may or may not stand: like a forwarded statement or a remote
/// COMMIT in that state, it must get no answer, so that the replica asks about its key once
/// a primary can say. Answered "outcome unknown" at once, the caller is told "unknown" while
/// a primary could still be asked, which the README says never happens (found by a
/// fresh-context review).
#[tokio::test]
async fn review_a_procedure_whose_commit_litefs_did_not_confirm_gets_no_answer() {
    let writer = Writer::on_temp_file_litefs_gone("server-procedure-unconfirmed", false);
    let limits = SessionLimits {
        lease: Duration::from_secs(5),
        max_lifetime: Duration::from_secs(30),
        max_sessions: 4,
    };
    let procedures = Arc::new(Procedures::new().register::<InsertOne>());
    let executor = Executor::new(writer, None, limits, Arc::default(), procedures);
    let call = ProcedureCall {
        name: <InsertOne as crate::Procedure>::NAME.into(),
        fingerprint: procedure::fingerprint::<InsertOne>(),
        args: bincode::serialize(&()).unwrap(),
    };
    let mut ctx = tarpc::context::current();
    ctx.deadline = Instant::now() + Duration::from_secs(5);
    let answered = tokio::time::timeout(
        Duration::from_secs(1),
        ForwardServer(executor).call(ctx, 1, call),
    )
    .await;
    assert!(
        answered.is_err(),
        "a procedure whose outcome is unknown here was answered {answered:?}"
    );
}
