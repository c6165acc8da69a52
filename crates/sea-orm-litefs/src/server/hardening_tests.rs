use super::*;

/// The reaper forgetting ended sessions while begins count the open ones, on two threads at
/// once: both take the table's lock and a session's lock, in the same order, so neither waits
/// forever (an inverted order once hung a primary for good).
#[test]
fn forgetting_ended_sessions_never_deadlocks_with_counting_open_ones() {
    // A runtime only to build the executor: it is not driven while the threads run (its
    // reaper sleeps), and it is leaked on failure, so a deadlock fails the test, not hang it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let executor = runtime.block_on(async {
        let (executor, _writer) = executor(SessionLimits {
            lease: Duration::from_secs(60),
            max_lifetime: Duration::from_secs(60),
            max_sessions: 64,
        });
        executor
    });
    // Plain threads: if they deadlock, the test fails at the timeout instead of hanging.
    let (done, finished) = std::sync::mpsc::channel();
    let counting = executor.clone();
    let counted = done.clone();
    std::thread::spawn(move || {
        for _ in 0..200_000 {
            counting.open_sessions();
        }
        let _ = counted.send(());
    });
    let forgetting = executor.clone();
    std::thread::spawn(move || {
        for _ in 0..200_000 {
            let session = Arc::new(Session {
                state: tokio::sync::Mutex::new(State::Ended("test")),
                created: Instant::now(),
                last_used: Mutex::new(Instant::now()),
                ended: Mutex::new(Some(Instant::now())),
            });
            let id = rand::random::<u64>();
            forgetting.sessions.lock().unwrap().insert(id, session);
            forgetting.forget_ended(Duration::ZERO);
        }
        let _ = done.send(());
    });
    for _ in 0..2 {
        if finished.recv_timeout(Duration::from_secs(30)).is_err() {
            std::mem::forget(runtime);
            panic!("the threads did not finish: a deadlock");
        }
    }
}

/// Defect 5 of the review, made deterministic: a statement whose session was looked up just
/// before the reaper rolled it back must not run at all (it used to run in autocommit mode).
#[tokio::test]
async fn a_statement_for_a_session_reaped_meanwhile_never_runs() {
    let (executor, writer) = executor(SessionLimits {
        lease: Duration::from_millis(1),
        max_lifetime: Duration::from_secs(60),
        max_sessions: 64,
    });
    let deadline = || Instant::now() + Duration::from_secs(2);
    super::fixtures::create_t(&writer).await;
    let insert = super::fixtures::insert;
    let id = executor
        .begin(deadline(), executor.drain.continued_work())
        .await
        .unwrap();
    executor.run_in(id, insert(1), deadline()).await.unwrap();
    let looked_up = executor.session(id).unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await; // past the 1 ms lease
    executor.reap().await;
    let late = executor
        .run_in_session(id, looked_up, insert(2), deadline())
        .await;
    assert_eq!(late, Err(Refusal::NoSuchSession { session: id }));
    assert!(executor.commit(id, 7, deadline()).await.is_err());
    let (mut conn, _) = writer.connection().await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(rows, 0, "nothing of the reaped transaction committed");
}

/// REVIEW (a late COMMIT, every order): on the primary, a remote transaction's COMMIT, the
/// replica's rollback of its session and the question about the COMMIT's key may come in any
/// order (the COMMIT late on a slow link, the other two on a new connection). In each, the
/// COMMIT commits if and only if it comes before the rollback, and the question's answer says
/// the same: one asked while the session is open waits for the session to end.
#[tokio::test]
async fn review_a_commit_a_rollback_and_a_question_agree_in_every_order() {
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Event {
        Commit,
        Rollback,
        Question,
    }
    use Event::{Commit, Question, Rollback};
    let orders = [
        [Commit, Rollback, Question],
        [Commit, Question, Rollback],
        [Rollback, Commit, Question],
        [Rollback, Question, Commit],
        [Question, Commit, Rollback],
        [Question, Rollback, Commit],
    ];
    let deadline = || Instant::now() + Duration::from_secs(5);
    for order in orders {
        let (executor, writer, id) = open_session().await;
        executor
            .run_in(id, super::fixtures::insert(1), deadline())
            .await
            .unwrap();
        let key = crate::connection::idempotency_key();
        let (mut committed, mut ended, mut question) = (None, false, None);
        for event in order {
            match event {
                Commit => {
                    let answer = executor.commit(id, key, deadline()).await;
                    committed = Some(matches!(answer, Ok(Outcome { result: Ok(_), .. })));
                    ended = true;
                }
                Rollback => {
                    executor.rollback(id).await.unwrap();
                    ended = true;
                }
                Question => {
                    let asking = writer.clone();
                    let asked = tokio::spawn(async move { asking.resolve(key, deadline()).await });
                    // Asked while the session is open, it waits for the writer the session
                    // holds before the next event comes.
                    while !ended && writer.queue_depth() < 1 && !asked.is_finished() {
                        tokio::task::yield_now().await;
                    }
                    question = Some(asked);
                }
            }
        }
        let answer = question.unwrap().await.unwrap().unwrap();
        let rows = super::fixtures::rows(&writer).await;
        let position = |wanted| order.iter().position(|e| *e == wanted);
        let commit_first = position(Commit) < position(Rollback);
        assert_eq!(
            committed,
            Some(commit_first),
            "{order:?}: the COMMIT's answer"
        );
        assert_eq!(rows, i64::from(commit_first), "{order:?}: rows committed");
        assert_eq!(
            matches!(answer, Resolution::Committed(_)),
            commit_first,
            "{order:?}: the question's answer, {answer:?}"
        );
    }
}

/// A rollback that arrives after its session's COMMIT (a replica that lost the COMMIT's
/// answer rolls back while it asks) leaves the session committed: a COMMIT that comes again
/// gets the same answer, not "rolled back".
#[tokio::test]
async fn a_rollback_after_the_commit_leaves_the_session_committed() {
    let deadline = || Instant::now() + Duration::from_secs(5);
    let (executor, writer, id) = open_session().await;
    executor
        .run_in(id, super::fixtures::insert(1), deadline())
        .await
        .unwrap();
    let key = crate::connection::idempotency_key();
    let first = executor.commit(id, key, deadline()).await;
    assert!(
        matches!(first, Ok(Outcome { result: Ok(_), .. })),
        "{first:?}"
    );
    executor.rollback(id).await.unwrap();
    let again = executor.commit(id, key, deadline()).await;
    assert_eq!(again, first, "the COMMIT asked again after the rollback");
    assert_eq!(super::fixtures::rows(&writer).await, 1);
}

/// REVIEW (the key table, a failed remote COMMIT): on a database with no key table yet, the
/// first keyed write is a remote transaction's COMMIT, which creates the table inside the
/// session's transaction, and SQLite then refuses the COMMIT (a deferred foreign key is
/// violated). The table is rolled back with the rest, so the writer must not count it as
/// created: every keyed write after it would fail on the missing table, until LiteFS
/// remounts.
#[tokio::test]
async fn review_a_remote_commit_that_fails_leaves_the_key_table_to_be_created() {
    let (executor, writer) = executor(SessionLimits {
        lease: Duration::from_secs(60),
        max_lifetime: Duration::from_secs(60),
        max_sessions: 64,
    });
    let deadline = || Instant::now() + Duration::from_secs(5);
    super::fixtures::create_t(&writer).await;
    let (mut conn, _) = writer.connection().await.unwrap();
    conn.execute(
        "CREATE TABLE p(id INTEGER PRIMARY KEY); \
         CREATE TABLE c(p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)",
    )
    .await
    .unwrap();
    drop(conn);
    let id = executor
        .begin(deadline(), executor.drain.continued_work())
        .await
        .unwrap();
    let orphan = Request::ExecuteUnprepared("INSERT INTO c VALUES (99)".into());
    executor.run_in(id, orphan, deadline()).await.unwrap();
    let key = crate::connection::idempotency_key();
    let committed = executor.commit(id, key, deadline()).await;
    assert!(
        matches!(committed, Ok(Outcome { result: Err(_), .. })),
        "SQLite refuses the COMMIT: {committed:?}"
    );

    let key = crate::connection::idempotency_key();
    let written = executor
        .run(key, super::fixtures::insert(1), deadline())
        .await;
    assert!(
        matches!(written, Ok(Outcome { result: Ok(_), .. })),
        "a keyed write after it: {written:?}"
    );
    assert_eq!(super::fixtures::rows(&writer).await, 1);
}

/// An executor with long limits (60 s of lease and lifetime), table `t`, and one session open.
async fn open_session() -> (Arc<Executor>, Arc<Writer>, u64) {
    let (executor, writer) = executor(SessionLimits {
        lease: Duration::from_secs(60),
        max_lifetime: Duration::from_secs(60),
        max_sessions: 64,
    });
    super::fixtures::create_t(&writer).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let begun = executor.begin(deadline, executor.drain.continued_work());
    let id = begun.await.expect("a session opens");
    (executor, writer, id)
}

fn executor(limits: SessionLimits) -> (Arc<Executor>, Arc<Writer>) {
    let writer = Writer::on_temp_file("review-server", true);
    let executor = Executor::new(writer.clone(), None, limits, Arc::default(), Arc::default());
    (executor, writer)
}

/// a statement that runs long inside a remote session keeps the writer past the session's
/// lease and maximum lifetime: the reaper skips a session whose statement is in progress, and
/// nothing interrupts the statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_statement_is_interrupted_at_the_session_lifetime() {
    let (executor, writer) = executor(SessionLimits {
        lease: Duration::from_millis(200),
        max_lifetime: Duration::from_millis(500),
        max_sessions: 64,
    });
    let id = executor
        .begin(
            Instant::now() + Duration::from_secs(2),
            executor.drain.continued_work(),
        )
        .await
        .unwrap();
    let running = executor.clone();
    let started = Instant::now();
    let statement = tokio::spawn(async move {
        running
            .run_in(
                id,
                Request::QueryAll(wire::Statement {
                    sql: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                          WHERE x < 30000000) SELECT count(*) FROM c"
                        .into(),
                    params: vec![],
                }),
                Instant::now() + Duration::from_secs(60),
            )
            .await
    });
    // Wait until the statement runs: it holds its session's state.
    let session = executor.session(id).unwrap();
    while session.state.try_lock().is_ok() {
        tokio::task::yield_now().await;
    }
    let acquired = writer
        .acquire(Instant::now() + Duration::from_secs(3))
        .await
        .is_ok();
    println!(
        "session max lifetime 500 ms; writer free for another write within 3.1 s: {acquired}; \
         statement still running: {}",
        !statement.is_finished()
    );
    let _ = statement.await;
    println!("the statement finished after {:?}", started.elapsed());
    assert!(
        acquired,
        "the writer was held past the session's maximum lifetime"
    );
}

/// A statement in a remote transaction still running when its caller gives up (the RPC's
/// deadline) is interrupted there, not at the session's lifetime: nobody waits for it, and
/// it held the primary's one writer. Interrupted, the write rolls its transaction back, which
/// ends the session and frees the writer.
#[tokio::test]
async fn a_statement_still_running_at_its_callers_deadline_is_interrupted() {
    let (executor, writer, id) = open_session().await;
    // Billions of rows: minutes, were it not stopped.
    let endless = Request::Execute(wire::Statement {
        sql: "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
              WHERE x < 3000000000) SELECT x FROM c"
            .into(),
        params: vec![],
    });
    let started = Instant::now();
    let ran = executor
        .run_in(id, endless, started + Duration::from_millis(300))
        .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "ran for {took:?}");
    let failed = matches!(&ran, Ok(Outcome { result: Err(_), .. }));
    assert!(failed, "interrupted, it fails: {ran:?}");
    // The session ended with it: the writer is free, and nothing was written.
    let acquired = writer
        .acquire(Instant::now() + Duration::from_secs(1))
        .await;
    assert!(acquired.is_ok(), "the writer is still held");
    drop(acquired);
    assert_eq!(super::fixtures::rows(&writer).await, 0);
}

/// REVIEW (the deadline's alarm, a statement that starts late): a statement whose caller's
/// deadline has passed when it starts (it waited for its session's lock, or the call came with
/// no time left) is interrupted too. `sqlite3_interrupt` stops only a statement already running:
/// SQLite forgets an interrupt that comes before the statement starts, and a statement prepared
/// before (sqlx caches them) starts after the alarm about one time in three: it then ran on,
/// holding the one writer, until the session's lifetime. Twenty tries, each of which must fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_a_statement_that_starts_past_its_callers_deadline_is_interrupted() {
    let (executor, writer) = executor(SessionLimits {
        lease: Duration::from_secs(60),
        max_lifetime: Duration::from_secs(60),
        max_sessions: 64,
    });
    super::fixtures::create_t(&writer).await;
    // A tenth of a second or so when not stopped; the same text each time, so prepared once.
    let long = || {
        Request::Execute(wire::Statement {
            sql: "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                  WHERE x < 300000) SELECT x FROM c"
                .into(),
            params: vec![],
        })
    };
    let mut ran_on = Vec::new();
    for attempt in 0..20 {
        let id = executor
            .begin(
                Instant::now() + Duration::from_secs(2),
                executor.drain.continued_work(),
            )
            .await
            .unwrap();
        let passed = Instant::now() - Duration::from_millis(1);
        let ran = executor.run_in(id, long(), passed).await;
        if matches!(&ran, Ok(Outcome { result: Ok(_), .. })) {
            ran_on.push(attempt);
        }
        executor.rollback(id).await.unwrap();
    }
    assert!(
        ran_on.is_empty(),
        "these tries ran to their end past their deadline: {ran_on:?}"
    );
    assert_eq!(super::fixtures::rows(&writer).await, 0);
}

/// REVIEW (the deadline's alarm, the wrong statement): an alarm that goes off just as its
/// statement ends (before `unset`, or while SQLite finishes it) leaves an interrupt pending on
/// the session's connection. It must not fail the session's next statement or its COMMIT: SQLite
/// clears a pending interrupt when a statement starts while none is active, and sqlx resets each
/// statement when it is done with it, the first row of a QueryOne included (it stops early).
/// (With a statement of the connection left active, the next one fails: seen with one stepped
/// by hand.)
#[tokio::test]
async fn review_an_interrupt_left_after_a_statement_never_fails_the_next_or_the_commit() {
    let deadline = || Instant::now() + Duration::from_secs(5);
    let (executor, writer, id) = open_session().await;
    for x in 1..=3 {
        executor
            .run_in(id, super::fixtures::insert(x), deadline())
            .await
            .unwrap();
    }
    let first = Request::QueryOne(wire::Statement {
        sql: "SELECT x FROM t ORDER BY x".into(),
        params: vec![],
    });
    let read = executor.run_in(id, first, deadline()).await;
    assert!(
        matches!(read, Ok(Outcome { result: Ok(_), .. })),
        "{read:?}"
    );
    // The alarm going off late: what `interrupt` does, now that the statement has ended.
    {
        let session = executor.session(id).unwrap();
        let mut state = session.state.lock().await;
        let State::Open { conn, .. } = &mut *state else {
            panic!("the session ended");
        };
        let mut handle = conn.lock_handle().await.unwrap();
        // SAFETY: the handle is locked, and the connection open.
        unsafe { libsqlite3_sys::sqlite3_interrupt(handle.as_raw_handle().as_ptr()) };
    }
    let next = executor
        .run_in(id, super::fixtures::insert(4), deadline())
        .await;
    assert!(
        matches!(next, Ok(Outcome { result: Ok(_), .. })),
        "the next statement: {next:?}"
    );
    let committed = executor
        .commit(id, crate::connection::idempotency_key(), deadline())
        .await;
    assert!(
        matches!(committed, Ok(Outcome { result: Ok(_), .. })),
        "the COMMIT: {committed:?}"
    );
    assert_eq!(super::fixtures::rows(&writer).await, 4);
}

/// REVIEW (the deadline's alarm, half a transaction): a write interrupted at its caller's
/// deadline inside a savepoint (a replica's nested transaction) takes the whole transaction
/// with it, as SQLite rolls it all back: the session ends, so the savepoint's rollback and the
/// COMMIT that follow are refused, and nothing commits, the write before the savepoint
/// included. The COMMIT's key is not spent either: asked about, it did not commit. (With the
/// session left open, the COMMIT stored its key outside any transaction: "committed" for what
/// did not.)
#[tokio::test]
async fn review_a_write_interrupted_inside_a_savepoint_commits_nothing_of_its_transaction() {
    let deadline = || Instant::now() + Duration::from_secs(5);
    let (executor, writer, id) = open_session().await;
    let raw = |sql: &str| Request::ExecuteUnprepared(sql.into());
    for step in [super::fixtures::insert(1), raw("SAVEPOINT sp1")] {
        let ran = executor.run_in(id, step, deadline()).await;
        assert!(matches!(ran, Ok(Outcome { result: Ok(_), .. })), "{ran:?}");
    }
    let endless = Request::Execute(wire::Statement {
        sql: "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
              WHERE x < 3000000000) SELECT x FROM c"
            .into(),
        params: vec![],
    });
    let at = Instant::now() + Duration::from_millis(200);
    let interrupted = executor.run_in(id, endless, at).await;
    assert!(
        matches!(&interrupted, Ok(Outcome { result: Err(_), .. })),
        "{interrupted:?}"
    );
    let back = executor
        .run_in(id, raw("ROLLBACK TO sp1; RELEASE sp1"), deadline())
        .await;
    assert_eq!(back, Err(Refusal::NoSuchSession { session: id }));
    let key = crate::connection::idempotency_key();
    let committed = executor.commit(id, key, deadline()).await;
    assert!(
        !matches!(committed, Ok(Outcome { result: Ok(_), .. })),
        "the COMMIT: {committed:?}"
    );
    assert_eq!(super::fixtures::rows(&writer).await, 0);
    let asked = writer.resolve(key, deadline()).await;
    assert!(matches!(asked, Ok(Resolution::NotCommitted)), "{asked:?}");
}

/// REVIEW (the deadline's alarm, an interrupted read): SQLite does not roll a transaction back
/// for an interrupted read, so the session goes on as it was: the replica hears that the read
/// failed, its later statements run (no interrupt left pending), and its COMMIT commits exactly
/// the writes it was told succeeded.
#[tokio::test]
async fn review_a_read_interrupted_at_its_deadline_leaves_its_transaction_as_it_was() {
    let deadline = || Instant::now() + Duration::from_secs(5);
    let (executor, writer, id) = open_session().await;
    let first = executor
        .run_in(id, super::fixtures::insert(1), deadline())
        .await;
    assert!(
        matches!(first, Ok(Outcome { result: Ok(_), .. })),
        "{first:?}"
    );
    let endless = Request::QueryAll(wire::Statement {
        sql: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
              WHERE x < 3000000000) SELECT count(*) FROM c"
            .into(),
        params: vec![],
    });
    let started = Instant::now();
    let read = executor
        .run_in(id, endless, started + Duration::from_millis(200))
        .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "read for {took:?}");
    let interrupted = matches!(
        &read,
        Ok(Outcome { result: Err(failure), .. }) if failure.sqlite.as_ref().map(|s| s.0) == Some(9)
    );
    assert!(interrupted, "the read fails as interrupted: {read:?}");
    let second = executor
        .run_in(id, super::fixtures::insert(2), deadline())
        .await;
    assert!(
        matches!(second, Ok(Outcome { result: Ok(_), .. })),
        "{second:?}"
    );
    let committed = executor
        .commit(id, crate::connection::idempotency_key(), deadline())
        .await;
    assert!(
        matches!(committed, Ok(Outcome { result: Ok(_), .. })),
        "{committed:?}"
    );
    assert_eq!(super::fixtures::rows(&writer).await, 2);
}

/// the cap on remote transactions counts every write waiting for the writer, so a burst of
/// autocommit writes refuses transactions as "too many" while none is open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autocommit_writes_waiting_do_not_count_against_the_transaction_cap() {
    let (executor, writer) = executor(SessionLimits {
        lease: Duration::from_secs(5),
        max_sessions: 4,
        max_lifetime: Duration::from_secs(30),
    });
    let held = writer
        .acquire(Instant::now() + Duration::from_secs(1))
        .await
        .unwrap();
    let mut waiting = Vec::new();
    for _ in 0..4 {
        let w = writer.clone();
        waiting.push(tokio::spawn(async move {
            w.acquire(Instant::now() + Duration::from_secs(2))
                .await
                .map(drop)
        }));
    }
    // Wait until the four are queued for the writer.
    writer.queue_reaches(4).await;
    let begun = tokio::time::timeout(
        Duration::from_millis(100),
        executor.begin(
            Instant::now() + Duration::from_secs(2),
            executor.drain.continued_work(),
        ),
    )
    .await;
    println!(
        "open sessions: {}; writes waiting: {}; begin: {:?}",
        executor.open_sessions(),
        writer.queue_depth(),
        begun
    );
    drop(held);
    assert!(
        !matches!(begun, Ok(Err(Refusal::TooManyTransactions { .. }))),
        "refused as too many transactions with none open"
    );
}
