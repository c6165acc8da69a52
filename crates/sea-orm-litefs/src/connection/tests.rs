use super::*;
use crate::litefs::Mount;
use crate::server::fixtures::{insert, replica_follower, rows, serving_primary};

/// The lease moved to this very node while it was asking what became of a write whose
/// forwarded answer was lost (a deploy that stops the primary and promotes this candidate):
/// this node is now the primary, so it can answer the question itself. "Outcome unknown" is
/// only for when no primary can be asked (found by a fresh-context review: every attempt
/// fails with "the primary moved (last named: this node)" until the forward timeout).
#[tokio::test]
async fn review_a_replica_that_became_primary_answers_about_a_lost_answer_itself() {
    let mount = Mount {
        dir: std::env::temp_dir(),
        db_name: "review-resolve.db".into(),
    };
    let follower = Arc::new(Follower::new(mount));
    follower.set_role(true, "");
    let node = Node {
        forwarder: Forwarder::new(
            follower.clone(),
            "127.0.0.1:9".into(),
            Arc::new(b"review".to_vec()),
            Duration::from_millis(300),
        ),
        scratch: Scratch::open().await.unwrap(),
        follower,
        catch_up: false,
        drain: crate::drain::Drain::new(),
    };
    let writer = Writer::on_temp_file("review-resolve", false);
    let asked = resolve(
        &writer,
        &node,
        idempotency_key(),
        "127.0.0.1:9".into(),
        "no answer within 300 ms".into(),
    )
    .await;
    let unknown = asked
        .as_ref()
        .err()
        .and_then(ClusterError::find)
        .is_some_and(ClusterError::outcome_unknown);
    assert!(
        !unknown,
        "this node is the primary and can say what became of the write: {asked:?}",
        asked = asked.map(|o| o.pos)
    );
}

/// A TCP relay in front of the primary's RPC port whose connections can be made half-open: a
/// frozen connection stays open both ways but swallows what it is sent, as when the peer's
/// host or a NAT on the way lost the connection's state without a reset.
struct Relay {
    addr: String,
    /// Connections numbered below this are frozen.
    frozen_below: Arc<std::sync::atomic::AtomicUsize>,
    /// While set, the path is down: every connection swallows, and one opened meanwhile
    /// stays frozen after (its handshake was lost).
    down: Arc<std::sync::atomic::AtomicBool>,
    /// Connections accepted so far (a watch, so a test can wait for one).
    accepted: tokio::sync::watch::Sender<usize>,
    /// Connections numbered below this are slow (see [`Relay::slow_down_open_connections`]).
    slow_below: Arc<std::sync::atomic::AtomicUsize>,
    /// Set once the request held on each slow connection may go on.
    late: tokio::sync::watch::Sender<bool>,
    /// Reads of what the primary sent back on slow connections (a test waits on it).
    answered_late: tokio::sync::watch::Sender<usize>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay {
            addr: listener.local_addr().unwrap().to_string(),
            frozen_below: Arc::new(AtomicUsize::new(0)),
            down: Arc::new(AtomicBool::new(false)),
            accepted: tokio::sync::watch::Sender::new(0),
            slow_below: Arc::new(AtomicUsize::new(0)),
            late: tokio::sync::watch::Sender::new(false),
            answered_late: tokio::sync::watch::Sender::new(0),
        };
        let (frozen_below, down) = (relay.frozen_below.clone(), relay.down.clone());
        let accepted = relay.accepted.clone();
        let (slow_below, late) = (relay.slow_below.clone(), relay.late.clone());
        let answered_late = relay.answered_late.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut n = 0;
                accepted.send_modify(|count| {
                    n = *count;
                    *count += 1;
                });
                let born_down = down.load(Ordering::SeqCst);
                let server = tokio::net::TcpStream::connect(&target).await.unwrap();
                let frozen = {
                    let (frozen_below, down) = (frozen_below.clone(), down.clone());
                    Arc::new(move || {
                        born_down
                            || n < frozen_below.load(Ordering::SeqCst)
                            || down.load(Ordering::SeqCst)
                    })
                };
                let slow = Slow {
                    now: {
                        let slow_below = slow_below.clone();
                        Arc::new(move || n < slow_below.load(Ordering::SeqCst))
                    },
                    late: late.subscribe(),
                    answered: answered_late.clone(),
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let requests = Direction::Requests(slow.clone());
                tokio::spawn(pipe(client_read, server_write, frozen.clone(), requests));
                let answers = Direction::Answers(slow);
                tokio::spawn(pipe(server_read, client_write, frozen, answers));
            }
        });
        relay
    }

    /// Every connection open now goes half-open; new ones work.
    fn freeze_open_connections(&self) {
        let open = *self.accepted.borrow();
        self.frozen_below
            .store(open, std::sync::atomic::Ordering::SeqCst);
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every connection open now becomes a slow link: the next request the replica sends on
    /// it is held (whatever the path does meanwhile) until [`Relay::deliver_late`], then
    /// passed on alone; what the replica sends after it is swallowed. So a request arrives
    /// late, and its cancellation (sent when the replica gave up on it) never overtakes it.
    /// New connections work.
    fn slow_down_open_connections(&self) {
        let open = *self.accepted.borrow();
        self.slow_below
            .store(open, std::sync::atomic::Ordering::SeqCst);
    }

    /// The requests held on slow connections go on.
    fn deliver_late(&self) {
        self.late.send_replace(true);
    }
}

/// What a slow connection does (see [`Relay::slow_down_open_connections`]).
#[derive(Clone)]
struct Slow {
    /// Whether this connection is slow now.
    now: Arc<dyn Fn() -> bool + Send + Sync>,
    /// Set once its held request may go on.
    late: tokio::sync::watch::Receiver<bool>,
    /// Counts what the primary sends back on slow connections.
    answered: tokio::sync::watch::Sender<usize>,
}

/// Which way a [`pipe`] copies, and so what slowness does to it.
enum Direction {
    /// Replica to primary: a slow connection holds the next request.
    Requests(Slow),
    /// Primary to replica: what comes back on a slow connection is counted.
    Answers(Slow),
}

/// Copies `from` to `to`, swallowing what arrives while `frozen()`, and slowed down as
/// `direction` says.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<dyn Fn() -> bool + Send + Sync>,
    direction: Direction,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        match &direction {
            Direction::Requests(slow) if (slow.now)() => {
                return hold_one_request(from, to, buf[..n].to_vec(), slow.late.clone()).await;
            }
            Direction::Answers(slow) if (slow.now)() => {
                slow.answered.send_modify(|reads| *reads += 1);
            }
            _ => {}
        }
        if !frozen() && to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Holds the request that begins with `held` (one frame: a 4-byte big-endian length, then
/// that many bytes) until `late` is set, passes it on, and swallows what follows, keeping
/// the primary's side open.
async fn hold_one_request(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut held: Vec<u8>,
    mut late: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    let frame_len = |held: &[u8]| {
        let prefix: [u8; 4] = held.get(..4)?.try_into().ok()?;
        Some(4 + u32::from_be_bytes(prefix) as usize)
    };
    while frame_len(&held).is_none_or(|len| held.len() < len) {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => held.extend_from_slice(&buf[..n]),
        }
    }
    held.truncate(frame_len(&held).expect("a whole frame"));
    if late.wait_for(|go| *go).await.is_err() || to.write_all(&held).await.is_err() {
        return;
    }
    while matches!(from.read(&mut buf).await, Ok(n) if n > 0) {}
    // The replica closed its side: the primary's side stays open, so the late request is
    // answered rather than cut short by the connection ending.
    std::future::pending::<()>().await;
}

/// A replica node whose LiteFS names the primary, reached at `addr`; forward timeout
/// `timeout`.
async fn replica_node(name: &str, addr: String, secret: Arc<Vec<u8>>, timeout: Duration) -> Node {
    let follower = replica_follower(name);
    Node {
        forwarder: Forwarder::new(follower.clone(), addr, secret, timeout),
        scratch: Scratch::open().await.unwrap(),
        follower,
        catch_up: false,
        drain: crate::drain::Drain::new(),
    }
}

/// A primary serving RPC on loopback (see [`serving_primary`]) behind a [`Relay`]: its writer,
/// its executor (keep it alive), its faults, the relay and the RPC secret.
async fn relayed_primary(
    name: &str,
) -> (
    Arc<Writer>,
    Arc<crate::server::Executor>,
    Arc<crate::server::Faults>,
    Relay,
    Arc<Vec<u8>>,
) {
    let (writer, executor, faults, addr, secret) = serving_primary(name).await;
    (writer, executor, faults, Relay::start(addr).await, secret)
}

/// Forwards `INSERT INTO t VALUES (x)` from `forwarder` under `key`, by `deadline`.
async fn forward_insert(
    forwarder: &Forwarder,
    key: u128,
    x: i64,
    deadline: Instant,
) -> Result<(Outcome, crate::client::Addr), CallError> {
    forwarder
        .call(deadline, None, move |c, ctx| async move {
            c.run(ctx, key, insert(x)).await
        })
        .await
}

/// Whether `result` says the write did not commit (and is known not to).
fn not_committed<T>(result: &Result<T, DbErr>) -> bool {
    result
        .as_ref()
        .err()
        .and_then(ClusterError::find)
        .is_some_and(|e| matches!(e, ClusterError::NotCommitted { .. }))
}

/// The connection to the primary went half-open (the path lost its state, no reset came) just
/// as a write was sent: its answer never comes. The question about it must not go down the
/// same dead connection, where it would wait out the whole window and leave the write
/// "unknown": it goes on a new connection, and the primary says the write never ran.
#[tokio::test]
async fn a_question_about_a_lost_answer_does_not_wait_on_a_half_open_connection() {
    let name = "half-open-question";
    let (primary_writer, _executor, _faults, relay, secret) = relayed_primary(name).await;
    let timeout = Duration::from_millis(1500);
    let node = replica_node(name, relay.addr.clone(), secret, timeout).await;
    let send = |key: u128, x: i64| {
        forward_insert(
            &node.forwarder,
            key,
            x,
            Instant::now() + Duration::from_millis(500),
        )
    };
    send(idempotency_key(), 1).await.expect("the link works");

    relay.freeze_open_connections();
    let key = idempotency_key();
    let Err(CallError::Lost { addr, reason }) = send(key, 2).await else {
        panic!("the answer cannot come back over a half-open connection");
    };
    let writer = Writer::on_temp_file(&format!("{name}-replica"), false);
    let started = Instant::now();
    let asked = resolve(&writer, &node, key, addr, reason).await;

    assert!(
        not_committed(&asked),
        "the primary, asked on a new connection, says the write never ran: {:?}",
        asked.map(|o| o.pos)
    );
    assert!(
        started.elapsed() < timeout,
        "answered before the window ended"
    );
    assert_eq!(rows(&primary_writer).await, 1, "only the first write ran");
}

/// The path to the primary is down when a write's answer is lost, and comes back a little
/// later. The first questions cannot get through (a connection opened while the path was down
/// stays dead: its handshake was swallowed); asking again on a fresh connection, within the
/// window, settles the write, rather than one attempt waiting out the whole window.
#[tokio::test]
async fn a_question_asked_while_the_path_is_down_is_asked_again_once_it_is_back() {
    let name = "half-open-outage";
    let (primary_writer, _executor, _faults, relay, secret) = relayed_primary(name).await;
    let timeout = Duration::from_millis(2000);
    let node = replica_node(name, relay.addr.clone(), secret, timeout).await;
    let key = idempotency_key();

    relay.set_down(true);
    // The path comes back once the first question went into the outage.
    let back = tokio::spawn({
        let (down, mut accepted) = (relay.down.clone(), relay.accepted.subscribe());
        async move {
            accepted.wait_for(|n| *n > 0).await.unwrap();
            down.store(false, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let writer = Writer::on_temp_file(&format!("{name}-replica"), false);
    let started = Instant::now();
    let asked = resolve(
        &writer,
        &node,
        key,
        relay.addr.clone(),
        "no answer within 500 ms".into(),
    )
    .await;
    back.await.unwrap();

    assert!(
        not_committed(&asked),
        "once the path is back, the primary says the write never ran: {:?}",
        asked.map(|o| o.pos)
    );
    assert!(
        started.elapsed() < timeout,
        "answered before the window ended"
    );
    assert_eq!(rows(&primary_writer).await, 0);
}

/// REVIEW (half-open, many callers): a half-open peer takes no more data (no ACKs come, so
/// the replica's send buffer fills), as when the primary's host vanished. tarpc only times a
/// call out once its request was written to the transport; calls queued behind the full
/// buffer wait in its channel, past their deadline, until TCP itself gives up (minutes). Every
/// call must end by its deadline, as "lost" (its request may have gone out).
#[tokio::test]
async fn review_calls_queued_behind_a_full_send_buffer_end_by_their_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let name = "review-stalled";
    let (_writer, _executor, _faults, addr, secret) = serving_primary(name).await;
    // A relay whose reading side can stall; small receive buffer, so the stall backs up fast.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(16).unwrap();
    let relay = listener.local_addr().unwrap().to_string();
    let (stall, stalled) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let mut stalled = stalled.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                while stalled.wait_for(|s| !*s).await.is_ok() {
                    match client_read.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if server_write.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
            });
        }
    });
    let node = replica_node(name, relay, secret, Duration::from_secs(2)).await;
    let send = |request: Request, deadline: Instant| {
        node.forwarder.call(deadline, None, move |c, ctx| {
            let request = request.clone();
            async move { c.run(ctx, idempotency_key(), request).await }
        })
    };
    send(insert(1), Instant::now() + Duration::from_millis(500))
        .await
        .expect("the link works");

    stall.send(true).unwrap();
    let big = Request::Execute(wire::Statement {
        sql: "INSERT INTO t VALUES (?)".into(),
        params: vec![wire::Value::Text("x".repeat(1 << 20))],
    });
    let deadline = Instant::now() + Duration::from_millis(500);
    let calls = (0..12).map(|_| send(big.clone(), deadline));
    let ended =
        tokio::time::timeout(Duration::from_secs(5), futures::future::join_all(calls)).await;
    let results = ended
        .expect("every call ends by its deadline (500 ms), none waits on the full send buffer");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(CallError::Lost { .. }))),
        "each call is lost: {:?}",
        results.iter().map(|r| r.as_ref().err()).collect::<Vec<_>>()
    );
    drop(stall);
}

/// REVIEW (capped questions on a busy primary): the primary is busy, not half-open: its
/// writer has a steady queue of about 600 ms, within the forward timeout (1200 ms) but longer
/// than one attempt's share (300 ms). One question with the whole window would reach the
/// writer and be answered; attempts of a share each give up and go to the back of the queue
/// again, so the caller is told "unknown" although the primary could answer in time.
#[tokio::test]
async fn review_a_question_on_a_busy_primary_is_answered_within_the_window() {
    let name = "review-busy-question";
    let (primary_writer, _executor, _faults, addr, secret) = serving_primary(name).await;
    let timeout = Duration::from_millis(1200);
    let node = replica_node(name, addr.clone(), secret, timeout).await;
    // Steady load: a write holding the writer 200 ms arrives every 200 ms, 3 queued ahead.
    let hold = Duration::from_millis(200);
    let load = tokio::spawn({
        let writer = primary_writer.clone();
        async move {
            let mut tick = tokio::time::interval(hold);
            for n in 0.. {
                let writer = writer.clone();
                let burst = if n == 0 { 3 } else { 1 };
                for _ in 0..burst {
                    let writer = writer.clone();
                    tokio::spawn(async move {
                        let guard = writer
                            .acquire(Instant::now() + Duration::from_secs(30))
                            .await;
                        tokio::time::sleep(hold).await;
                        drop(guard);
                    });
                }
                tick.tick().await;
            }
        }
    });
    // The load is queued before the question comes.
    primary_writer.queue_reaches(2).await;
    let writer = Writer::on_temp_file(&format!("{name}-replica"), false);
    let started = Instant::now();
    let asked = resolve(
        &writer,
        &node,
        idempotency_key(),
        addr,
        "no answer within 1200 ms".into(),
    )
    .await;
    load.abort();
    assert!(
        not_committed(&asked),
        "the busy primary answers within the window ({:?} after asking): {:?}",
        started.elapsed(),
        asked.map(|o| o.pos)
    );
}

/// REVIEW (connection storm): callers that find no connection to the primary (the first ones,
/// or all of them after one was evicted for a passed deadline) open one together, not one
/// each: a burst of writes after an eviction must not become a burst of TCP connections and
/// handshakes to an already struggling primary.
#[tokio::test]
async fn review_concurrent_callers_with_no_connection_open_one() {
    let name = "review-storm";
    let (_writer, _executor, _faults, relay, secret) = relayed_primary(name).await;
    let node = replica_node(name, relay.addr.clone(), secret, Duration::from_secs(2)).await;
    let deadline = Instant::now() + Duration::from_secs(1);
    let calls = (0..16).map(|x| forward_insert(&node.forwarder, idempotency_key(), x, deadline));
    for result in futures::future::join_all(calls).await {
        result.expect("the link works");
    }
    assert_eq!(
        *relay.accepted.borrow(),
        1,
        "connections opened for 16 callers"
    );
}
/// REVIEW (connection storm, questions): the path to the primary is down when many writes'
/// answers are lost at once (an outage catches a burst of writes). Every question, once a
/// share of the window passes unanswered, asks again on a new connection, and forgets the
/// connection being opened for the others: 16 questions open one connection each per share
/// (about 16 x 3), rather than one new connection per share between them all, a burst of
/// TCP connections and handshakes to a primary that may already be struggling.
#[tokio::test]
async fn review_concurrent_questions_during_an_outage_share_their_new_connections() {
    let name = "review-question-storm";
    let (_writer, _executor, _faults, relay, secret) = relayed_primary(name).await;
    let timeout = Duration::from_millis(800);
    let node = replica_node(name, relay.addr.clone(), secret, timeout).await;
    relay.set_down(true);
    let writer = Writer::on_temp_file(&format!("{name}-replica"), false);
    let questions = (0..16).map(|_| {
        resolve(
            &writer,
            &node,
            idempotency_key(),
            relay.addr.clone(),
            "no answer within 800 ms".into(),
        )
    });
    let asked = futures::future::join_all(questions).await;
    assert!(
        asked.iter().all(Result::is_err),
        "no answer can come while the path is down"
    );
    // Each says how long its questions went unanswered: the window, not the last one's time.
    for err in asked.iter().filter_map(|a| a.as_ref().err()) {
        let text = err.to_string();
        let waited = text
            .split("asked for ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|ms| ms.parse::<u64>().ok());
        assert!(waited.is_some_and(|ms| ms >= 700), "{text}");
    }
    let opened = *relay.accepted.borrow();
    assert!(
        opened <= 2 * RESOLVE_SHARES as usize,
        "connections opened for 16 questions in one window of {RESOLVE_SHARES} shares: {opened}"
    );
}
/// A replica's connection whose LiteFS names the primary, reached at `addr`.
async fn replica_connection(
    name: &str,
    addr: String,
    secret: Arc<Vec<u8>>,
    timeout: Duration,
) -> ClusterConnection {
    ClusterConnection::new(Inner {
        writer: Writer::on_temp_file(&format!("{name}-replica"), false),
        node: Some(replica_node(name, addr, secret, timeout).await),
        timeout,
        rpc_addr: None,
    })
}

/// A replica's remote transaction on the primary at `addr`, with forward timeout `timeout`,
/// that has inserted one row in its session there.
async fn a_transaction_with_one_row(
    name: &str,
    addr: String,
    secret: Arc<Vec<u8>>,
    timeout: Duration,
) -> crate::ClusterTransaction {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let db = replica_connection(name, addr, secret, timeout).await;
    let txn = db.begin().await.expect("a session opens on the primary");
    txn.execute_unprepared("INSERT INTO t VALUES (1)")
        .await
        .expect("the statement runs in the session");
    txn
}

/// REVIEW (half-open, remote transaction): a replica's transaction runs in a session on the
/// primary, which holds the primary's writer until it ends. Its COMMIT goes down a connection
/// that just went half-open: the answer is lost, and the question about the commit's key goes
/// on a new connection, as it should, but waits for the writer behind the very session whose
/// commit never arrived, until the session's lease ends (10 s here), long past the window.
/// The primary is reachable and nothing committed, yet the caller is told "unknown". (With
/// the default lease, 2 s, below the default forward timeout, 5 s, the primary's reaper ends
/// the session before the question is asked; a lease set at or above the forward timeout
/// makes every such commit "unknown".)
#[tokio::test]
async fn review_a_transaction_whose_commit_is_lost_on_a_half_open_connection_is_known_not_committed()
 {
    use sea_orm::TransactionSession;
    let name = "review-half-open-commit";
    let (primary_writer, _executor, _faults, relay, secret) = relayed_primary(name).await;
    let txn = a_transaction_with_one_row(
        name,
        relay.addr.clone(),
        secret,
        Duration::from_millis(1000),
    )
    .await;

    relay.freeze_open_connections();
    let started = Instant::now();
    let committed = txn.commit().await;

    assert!(
        not_committed(&committed),
        "the primary is reachable on a new connection and the commit never arrived: \
         {committed:?} after {:?}",
        started.elapsed()
    );
    assert_eq!(rows(&primary_writer).await, 0, "nothing committed");
}
/// A remote transaction's COMMIT ran but its answer was lost: the session is rolled back
/// before the question about its key (see the test above), and that rollback must not undo
/// it: the caller is told it committed, and it did.
#[tokio::test]
async fn a_transaction_whose_commit_ran_but_whose_answer_was_lost_is_known_committed() {
    use sea_orm::TransactionSession;
    let name = "lost-commit-answer";
    let (primary_writer, _executor, faults, addr, secret) = serving_primary(name).await;
    let timeout = Duration::from_millis(1000);
    let txn = a_transaction_with_one_row(name, addr, secret, timeout).await;

    faults
        .lose_replies
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let committed = txn.commit().await;

    assert!(committed.is_ok(), "the commit ran: {committed:?}");
    assert_eq!(rows(&primary_writer).await, 1, "it committed, once");
}
/// A remote transaction whose COMMIT goes on a slow link: held there past the replica's
/// deadline (a congested path, a full send buffer), to be passed on to the primary later
/// (see [`deliver_the_late_commit`]). The transaction inserted one row. With `path_down`,
/// every connection opened after the COMMIT left is lost. Returns what its caller was told,
/// and the primary (its writer, its executor: keep it alive) behind the relay.
async fn a_commit_held_on_a_slow_link(
    name: &str,
    path_down: bool,
) -> (
    Result<(), DbErr>,
    Arc<Writer>,
    Arc<crate::server::Executor>,
    Relay,
) {
    use sea_orm::TransactionSession;
    let (primary_writer, executor, _faults, relay, secret) = relayed_primary(name).await;
    let txn = a_transaction_with_one_row(
        name,
        relay.addr.clone(),
        secret,
        Duration::from_millis(1000),
    )
    .await;
    relay.slow_down_open_connections();
    relay.set_down(path_down);
    let committed = txn.commit().await;
    (committed, primary_writer, executor, relay)
}

/// Passes the COMMIT held on the slow link on to the primary, and waits for its answer.
async fn deliver_the_late_commit(relay: &Relay) {
    let mut answered = relay.answered_late.subscribe();
    relay.deliver_late();
    tokio::time::timeout(Duration::from_secs(5), answered.wait_for(|n| *n > 0))
        .await
        .expect("the late COMMIT reaches the primary and is answered")
        .expect("the relay is running");
}

/// REVIEW (a COMMIT late, not lost): a remote transaction's COMMIT is held on a slow link past
/// the replica's deadline. The replica rolls the session back and asks about the key on a new
/// connection, and its caller is told "not committed". Only then does the COMMIT reach the
/// primary (its tarpc deadline travels relative, so it arrives with time to spare): it must
/// find the session ended and commit nothing, or the caller was told a lie.
#[tokio::test]
async fn review_a_commit_that_arrives_after_the_caller_heard_not_committed_never_commits() {
    let (committed, primary_writer, _executor, relay) =
        a_commit_held_on_a_slow_link("review-late-commit", false).await;
    deliver_the_late_commit(&relay).await;
    let rows = rows(&primary_writer).await;
    let (mut conn, _) = primary_writer.connection().await.unwrap();
    let (keys, replies): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(reply) FROM _litefs_forward_keys")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    println!(
        "the caller heard {committed:?}; rows after the late COMMIT: {rows}; keys stored: \
         {keys}, with a reply: {replies}"
    );

    assert!(
        not_committed(&committed),
        "the primary was reachable on a new connection: the caller hears 'not committed'"
    );
    assert_eq!(rows, 0, "the late COMMIT committed after 'not committed'");
    assert_eq!((keys, replies), (1, 0), "the key's tombstone, and no reply");
}

/// The same late COMMIT while the primary cannot be asked (every new connection is lost): the
/// session cannot be rolled back nor the key asked about, so the caller is told "unknown",
/// and then the COMMIT arrives and commits. (Also shows that a late COMMIT does reach a
/// session still open, which the test above relies on.)
#[tokio::test]
async fn a_commit_late_while_the_primary_cannot_be_asked_is_unknown_and_may_commit() {
    let (committed, primary_writer, _executor, relay) =
        a_commit_held_on_a_slow_link("late-commit-unreachable", true).await;
    deliver_the_late_commit(&relay).await;

    let unknown = committed
        .as_ref()
        .err()
        .and_then(ClusterError::find)
        .is_some_and(ClusterError::outcome_unknown);
    assert!(unknown, "the primary could not be asked: {committed:?}");
    assert_eq!(rows(&primary_writer).await, 1, "the late COMMIT committed");
}
/// REVIEW (eviction and an open remote transaction): a write sent while a replica's
/// transaction is open gets no answer (lost on the way back), and the connection they shared
/// is evicted. The transaction is a session on the primary, not tied to that connection: its
/// next statement and its commit go on the new one and commit.
#[tokio::test]
async fn review_a_transaction_outlives_the_eviction_of_its_connection() {
    use sea_orm::{ConnectionTrait, TransactionSession, TransactionTrait};
    let name = "review-evicted-session";
    let (primary_writer, _executor, faults, relay, secret) = relayed_primary(name).await;
    let timeout = Duration::from_millis(1000);
    let db = replica_connection(name, relay.addr.clone(), secret, timeout).await;
    let forwarder = &db.inner.node.as_ref().unwrap().forwarder;
    let txn = db.begin().await.expect("a session opens on the primary");
    txn.execute_unprepared("INSERT INTO t VALUES (1)")
        .await
        .expect("the statement runs in the session");

    faults
        .lose_replies
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let queued = forward_insert(
        forwarder,
        idempotency_key(),
        9,
        Instant::now() + Duration::from_millis(300),
    )
    .await;
    assert!(
        matches!(queued, Err(CallError::Lost { .. })),
        "the write's answer is lost: {:?}",
        queued.err()
    );
    txn.execute_unprepared("INSERT INTO t VALUES (2)")
        .await
        .expect("the session goes on over a new connection");
    txn.commit().await.expect("and commits");

    assert_eq!(*relay.accepted.borrow(), 2, "the connection was evicted");
    assert_eq!(rows(&primary_writer).await, 2, "the transaction's two rows");
}
/// REVIEW (stale eviction): two calls wait on a connection gone half-open; the first's deadline
/// passes, the connection is evicted, and the next call opens a working one. The second call's
/// deadline then passes on the old connection: it must not evict the new one, which later
/// calls go on reusing.
#[tokio::test]
async fn review_a_call_on_an_evicted_connection_does_not_evict_its_successor() {
    let name = "review-stale-eviction";
    let (_writer, _executor, _faults, relay, secret) = relayed_primary(name).await;
    let node = replica_node(name, relay.addr.clone(), secret, Duration::from_secs(2)).await;
    let send = |x: i64, within: Duration| {
        forward_insert(
            &node.forwarder,
            idempotency_key(),
            x,
            Instant::now() + within,
        )
    };
    send(1, Duration::from_millis(500))
        .await
        .expect("the link works");
    relay.freeze_open_connections();
    let first = send(2, Duration::from_millis(200));
    let second = send(3, Duration::from_millis(700));
    let later = async {
        let lost = first.await;
        assert!(
            matches!(lost, Err(CallError::Lost { .. })),
            "on the frozen connection"
        );
        send(4, Duration::from_millis(400))
            .await
            .expect("a new connection works");
    };
    let (lost, ()) = tokio::join!(second, later);
    assert!(
        matches!(lost, Err(CallError::Lost { .. })),
        "on the frozen connection"
    );
    send(5, Duration::from_millis(400))
        .await
        .expect("the new connection works");
    assert_eq!(
        *relay.accepted.borrow(),
        2,
        "the old connection and the new one, reused after the stale call ended"
    );
}
/// REVIEW (exactly once across an eviction): a write reached the primary and waits there for
/// the writer when its connection goes half-open. The question about it goes on a new
/// connection while the write has still not run; it must not be told "not committed" (and
/// leave a tombstone the write then meets) nor see the write run twice: it waits its turn
/// behind the write, which commits, and hears so.
#[tokio::test]
async fn review_a_question_asked_while_the_write_waits_on_the_primary_hears_it_committed() {
    let name = "review-question-overtakes";
    let (primary_writer, _executor, _faults, relay, secret) = relayed_primary(name).await;
    let timeout = Duration::from_millis(1500);
    let node = replica_node(name, relay.addr.clone(), secret, timeout).await;
    let send = |key: u128, x: i64| {
        forward_insert(
            &node.forwarder,
            key,
            x,
            Instant::now() + Duration::from_millis(1000),
        )
    };
    send(idempotency_key(), 1).await.expect("the link works");

    let held = primary_writer
        .acquire(Instant::now() + Duration::from_secs(30))
        .await
        .unwrap();
    let key = idempotency_key();
    let writer = Writer::on_temp_file(&format!("{name}-replica"), false);
    let (sent, asked, ()) = tokio::join!(
        send(key, 2),
        async {
            primary_writer.queue_reaches(1).await;
            relay.freeze_open_connections();
            let reason = "the connection went half-open".into();
            resolve(&writer, &node, key, relay.addr.clone(), reason).await
        },
        async {
            // The question, asked again on a new connection, waits behind the write.
            primary_writer.queue_reaches(2).await;
            drop(held);
        }
    );

    assert!(
        matches!(sent, Err(CallError::Lost { .. })),
        "the write's answer is swallowed"
    );
    assert!(
        asked.is_ok(),
        "the write committed, and the question says so: {:?}",
        asked.err()
    );
    assert_eq!(rows(&primary_writer).await, 2, "it ran once");
}
/// REVIEW (deadline arithmetic): with a forward timeout under a millisecond per share (3 ms,
/// and 0), a question during an outage ends at once as "unknown": no attempt outlives the
/// window, and the shares do not become a loop of new connections.
#[tokio::test]
async fn review_questions_with_tiny_timeouts_end_promptly_without_a_storm() {
    let name = "review-tiny-timeout";
    let (_writer, _executor, _faults, relay, secret) = relayed_primary(name).await;
    relay.set_down(true);
    for timeout in [Duration::from_millis(3), Duration::ZERO] {
        let node = replica_node(name, relay.addr.clone(), secret.clone(), timeout).await;
        let writer = Writer::on_temp_file(&format!("{name}-replica"), false);
        let started = Instant::now();
        let reason = "no answer".into();
        let asked = resolve(
            &writer,
            &node,
            idempotency_key(),
            relay.addr.clone(),
            reason,
        );
        let asked = asked.await;
        let unknown = asked
            .as_ref()
            .err()
            .and_then(ClusterError::find)
            .is_some_and(ClusterError::outcome_unknown);
        assert!(unknown, "{timeout:?}: {:?}", asked.map(|o| o.pos));
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "{timeout:?}: ended after {:?}",
            started.elapsed()
        );
    }
    assert!(
        *relay.accepted.borrow() <= 8,
        "connections opened: {}",
        *relay.accepted.borrow()
    );
}

/// A statement of a replica's remote transaction that is still running at its caller's deadline
/// is interrupted on the primary, and an interrupted write rolls its whole transaction back,
/// which ends the session. The transaction's next call, and its commit, must say that, not
/// "past its lease, or the primary restarted", which sends whoever reads the log the wrong way.
#[tokio::test]
async fn a_transaction_whose_statement_was_interrupted_says_so_when_it_is_gone() {
    use sea_orm::{ConnectionTrait, TransactionSession, TransactionTrait};
    let name = "interrupted-session-reason";
    let (primary_writer, _executor, _faults, addr, secret) = serving_primary(name).await;
    let db = replica_connection(name, addr, secret, SESSION_DEADLINE).await;
    let txn = db.begin().await.expect("a session opens on the primary");
    // Billions of rows: minutes, were it not interrupted at the deadline.
    let endless = txn
        .execute_unprepared(
            "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
             WHERE x < 3000000000) SELECT x FROM c",
        )
        .await;
    let interrupted = endless
        .expect_err("interrupted at the deadline")
        .to_string();
    assert!(interrupted.contains("interrupt"), "{interrupted}");

    let next = txn.execute_unprepared("INSERT INTO t VALUES (1)").await;
    let next = next.expect_err("the session is gone").to_string();
    println!("the next statement: {next}");
    assert!(
        next.contains("interrupted") && !next.contains("past its lease"),
        "the next statement is told why the transaction is gone: {next}"
    );
    let committed = txn.commit().await;
    let committed = committed.expect_err("nothing to commit").to_string();
    println!("the commit: {committed}");
    assert!(
        committed.contains("interrupted") && !committed.contains("past its lease"),
        "the commit is told why the transaction is gone: {committed}"
    );
    assert_eq!(rows(&primary_writer).await, 0, "nothing committed");
}

/// The forward timeout of the replicas in the tests of interrupted sessions: the endless
/// statement is interrupted at it, and every other call of the test (opening the session,
/// its first row, the commit) must end well within it. 400 ms failed under a load average of 11.
const SESSION_DEADLINE: Duration = Duration::from_millis(1500);

/// A statement that runs for minutes until it is interrupted: `write` inserts what it counts, a
/// read only counts.
fn endless(write: bool) -> sea_orm::Statement {
    let counted = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                   WHERE x < 3000000000) SELECT x FROM c";
    let sql = if write {
        format!("INSERT INTO t {counted}")
    } else {
        format!("SELECT count(*) FROM ({counted})")
    };
    sea_orm::Statement::from_string(sea_orm::DbBackend::Sqlite, sql)
}

/// An interrupted *read* does not roll its transaction back (SQLite rolls back only for an
/// interrupted write): the session lives on. When it is lost later for another reason (here a
/// LiteFS remount on the primary; idle past its lease or a restart are the same), the
/// interruption must not be named as the reason: that sends whoever reads the log the wrong way.
#[tokio::test]
async fn review_an_interrupted_read_is_not_blamed_for_a_later_loss_of_its_session() {
    use sea_orm::{ConnectionTrait, TransactionSession};
    let name = "interrupted-read-then-remount";
    let (primary_writer, _executor, _faults, addr, secret) = serving_primary(name).await;
    let timeout = SESSION_DEADLINE;
    let txn = a_transaction_with_one_row(name, addr, secret, timeout).await;
    let read = txn.query_one_raw(endless(false)).await;
    let read = read.expect_err("interrupted at the deadline").to_string();
    assert!(read.contains("interrupt"), "{read}");

    // LiteFS remounts on the primary: the session is abandoned with the old mount.
    primary_writer.databases.suspend();
    primary_writer.databases.resume(true);
    let next = txn.execute_unprepared("INSERT INTO t VALUES (2)").await;
    let next = next.expect_err("the session is gone").to_string();
    println!("the next statement: {next}");
    assert!(
        !next.contains("interrupted"),
        "the interrupted read did not end the transaction: {next}"
    );
    let committed = txn
        .commit()
        .await
        .expect_err("nothing to commit")
        .to_string();
    assert!(!committed.contains("interrupted"), "{committed}");
    assert_eq!(rows(&primary_writer).await, 0, "nothing committed");
}

/// An interrupted *read* leaves its transaction open on the primary: the statements after it
/// run in it, and its commit commits them all (the replica must not take the interruption for
/// the end of the transaction).
#[tokio::test]
async fn review_a_transaction_goes_on_and_commits_after_an_interrupted_read() {
    use sea_orm::{ConnectionTrait, TransactionSession};
    let name = "interrupted-read-then-commit";
    let (primary_writer, _executor, _faults, addr, secret) = serving_primary(name).await;
    let timeout = SESSION_DEADLINE;
    let txn = a_transaction_with_one_row(name, addr, secret, timeout).await;
    let read = txn.query_one_raw(endless(false)).await;
    let read = read.expect_err("interrupted at the deadline").to_string();
    assert!(read.contains("interrupt"), "{read}");
    txn.execute_unprepared("INSERT INTO t VALUES (2)")
        .await
        .expect("the session outlived the interrupted read");
    txn.commit().await.expect("both rows commit");
    assert_eq!(rows(&primary_writer).await, 2);
}

/// The primary ends a session for reasons it does not send ("no such session" is all a
/// replica hears): idle past its lease, open past its maximum lifetime, rolled back by one of
/// its statements, abandoned with its mount as LiteFS remounted, or lost as the primary
/// restarted. The message lists the reasons: each must be there, or the log sends whoever
/// reads it the wrong way (here a LiteFS remount, which the list left out).
#[tokio::test]
async fn review_a_session_lost_to_a_litefs_remount_is_told_among_the_reasons() {
    use sea_orm::ConnectionTrait;
    let name = "remount-session-reason";
    let (primary_writer, _executor, _faults, addr, secret) = serving_primary(name).await;
    let timeout = SESSION_DEADLINE;
    let txn = a_transaction_with_one_row(name, addr, secret, timeout).await;
    primary_writer.databases.suspend();
    primary_writer.databases.resume(true);
    let next = txn.execute_unprepared("INSERT INTO t VALUES (2)").await;
    let next = next.expect_err("the session is gone").to_string();
    println!("the next statement: {next}");
    assert!(next.contains("remount"), "{next}");
    assert!(next.contains("lifetime"), "{next}");
}

/// A write interrupted inside a nested transaction (a savepoint) rolls the whole transaction
/// back on the primary. The nested transaction is dropped, so the outer one's next statement
/// first sends the savepoint's rollback (the pending rollbacks): that call is the one told the
/// session is gone, and it, and the commit after it, must still say why.
#[tokio::test]
async fn review_a_write_interrupted_in_a_savepoint_is_told_through_the_pending_rollback() {
    use sea_orm::{ConnectionTrait, TransactionSession, TransactionTrait};
    let name = "interrupted-savepoint-reason";
    let (primary_writer, _executor, _faults, addr, secret) = serving_primary(name).await;
    let timeout = SESSION_DEADLINE;
    let txn = a_transaction_with_one_row(name, addr, secret, timeout).await;
    let nested = txn.begin().await.expect("a savepoint opens");
    let write = nested.execute_raw(endless(true)).await;
    let write = write.expect_err("interrupted at the deadline").to_string();
    assert!(write.contains("interrupt"), "{write}");
    drop(nested);

    let next = txn.execute_unprepared("INSERT INTO t VALUES (2)").await;
    let next = next.expect_err("the session is gone").to_string();
    println!("the next statement: {next}");
    assert!(next.contains("interrupted"), "{next}");
    let committed = txn
        .commit()
        .await
        .expect_err("nothing to commit")
        .to_string();
    assert!(committed.contains("interrupted"), "{committed}");
    assert_eq!(rows(&primary_writer).await, 0, "nothing committed");
}

/// An app's state that derives `Debug` holds these: each says what it is, without its secrets
/// (`Procedures` shows its names already).
#[tokio::test]
async fn the_handle_its_transactions_and_procedures_show_what_they_are() {
    use sea_orm::TransactionTrait;
    let dir = std::env::temp_dir().join(format!("debug-handle-{}", std::process::id()));
    let db = crate::Builder::new(dir.join("app.db"))
        .secret("not-shown")
        .start()
        .await
        .unwrap();
    let shown = format!("{db:?}");
    assert!(shown.contains("standalone"), "{shown}");
    assert!(!shown.contains("not-shown"), "{shown}");
    let txn = db.begin().await.unwrap();
    let shown = format!("{txn:?}");
    assert!(shown.contains("local"), "{shown}");
    drop(txn);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Inside `interruptible_reads`, a read whose caller gives up (a request timed out, a client
/// gone) stops: its statement is interrupted, and its connection goes back to the pool free.
/// Eight abandoned reads that would each run for minutes would otherwise hold every connection
/// of the read pool.
#[tokio::test]
async fn an_abandoned_read_is_interrupted_and_frees_its_connection() {
    use sea_orm::{ConnectionTrait, Statement};
    let dir = std::env::temp_dir().join(format!("abandoned-read-{}", std::process::id()));
    let db = crate::Builder::new(dir.join("app.db"))
        .start()
        .await
        .unwrap();
    // Billions of rows to count: minutes of one core each, unless interrupted.
    let slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                WHERE x < 4000000000) SELECT count(*) AS n FROM c";
    let sqlite = sea_orm::DbBackend::Sqlite;
    let abandoned = (0..crate::pools::READ_POOL_SIZE).map(|_| {
        let db = db.clone();
        async move {
            let read = db.query_one_raw(Statement::from_string(sqlite, slow));
            tokio::time::timeout(Duration::from_millis(100), crate::interruptible_reads(read)).await
        }
    });
    for gave_up in futures::future::join_all(abandoned).await {
        assert!(
            gave_up.is_err(),
            "the slow read ended by itself: {gave_up:?}"
        );
    }
    // Every connection of the read pool ran one of those reads. A new read gets one at once.
    let quick = db.query_one_raw(Statement::from_string(sqlite, "SELECT 1 AS one"));
    let answered = tokio::time::timeout(Duration::from_secs(10), quick).await;
    assert!(
        matches!(answered, Ok(Ok(Some(_)))),
        "a read after eight abandoned ones: {answered:?}"
    );
    drop(db);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Review (interruptible reads): polls `read` until it has been pending `pendings` times, then
/// drops it; `Some` if it ended first.
async fn review_abandon_after<F: Future>(read: F, pendings: usize) -> Option<F::Output> {
    let mut read = std::pin::pin!(read);
    let mut seen = 0;
    std::future::poll_fn(|cx| match read.as_mut().poll(cx) {
        std::task::Poll::Ready(out) => std::task::Poll::Ready(Some(out)),
        std::task::Poll::Pending => {
            seen += 1;
            match seen >= pendings {
                true => std::task::Poll::Ready(None),
                false => std::task::Poll::Pending,
            }
        }
    })
    .await
}

/// Review (interruptible reads): waits at most `within` for every connection of the read pool
/// to be back in it, idle; how many were still out otherwise.
async fn review_read_pool_back(db: &ClusterConnection, within: Duration) -> Result<(), u32> {
    let pool = db
        .inner
        .writer
        .databases
        .pools()
        .unwrap()
        .ro
        .get_sqlite_connection_pool()
        .clone();
    let deadline = Instant::now() + within;
    loop {
        let out = pool.size() - pool.num_idle() as u32;
        if out == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(out);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A read abandoned at any moment after it was armed (its connection's handle taken, the
/// metric counting it as abandoned) is interrupted: in particular one dropped just after its
/// statement was handed to the connection's thread, before the thread began it.
/// `sqlite3_interrupt` called before a statement starts is cleared by SQLite when it starts
/// (no statement active), so such a read ran to its end, holding its connection and a core for
/// nobody, until the interrupt was rung again until the statement ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_a_read_abandoned_just_after_it_was_sent_is_interrupted_too() {
    use sea_orm::{ConnectionTrait, Statement};
    let dir = std::env::temp_dir().join(format!("review-sent-read-{}", std::process::id()));
    let db = crate::Builder::new(dir.join("app.db"))
        .start()
        .await
        .unwrap();
    // About 3 s of one core, unless interrupted.
    let slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                WHERE x < 30000000) SELECT count(*) AS n FROM c";
    let sqlite = sea_orm::DbBackend::Sqlite;
    let mut armed = 0;
    for round in 0..30 {
        // The read waits for a connection, for its handle, then for its row: drop it at the
        // first wait where dropping it interrupts (counted), that is as soon as it was sent.
        for pendings in 1..=4 {
            let read = db.query_one_raw(Statement::from_string(sqlite, slow));
            let mut read = Box::pin(crate::interruptible_reads(read));
            if review_abandon_after(read.as_mut(), pendings)
                .await
                .is_some()
            {
                break; // Dropped too late: the read ended by itself (seconds); next round.
            }
            let recorder = ReviewInterruptions::default();
            ::metrics::with_local_recorder(&recorder, || drop(read));
            if recorder.0.load(std::sync::atomic::Ordering::Acquire) == 0 {
                // Dropped before it was armed: nothing ran.
                assert!(
                    review_read_pool_back(&db, Duration::from_secs(1))
                        .await
                        .is_ok()
                );
                continue;
            }
            armed += 1;
            let dropped = Instant::now();
            if review_read_pool_back(&db, Duration::from_secs(1))
                .await
                .is_err()
            {
                let back = review_read_pool_back(&db, Duration::from_secs(30)).await;
                panic!(
                    "round {round}: a read dropped at its wait {pendings}, counted as \
                     abandoned, held its connection {:?} (back: {back:?}): it ran to its end",
                    dropped.elapsed()
                );
            }
            break;
        }
    }
    // 8 to 10 of the 30 were, in runs on 2 cores; the others ended or were dropped unarmed.
    assert!(armed >= 5, "only {armed} of 30 reads were dropped armed");
    drop(db);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Review (interruptible reads): counts `reads_abandoned_total` recorded on this thread.
#[derive(Default)]
struct ReviewInterruptions(Arc<std::sync::atomic::AtomicU64>);

impl ::metrics::Recorder for ReviewInterruptions {
    fn describe_counter(
        &self,
        _: ::metrics::KeyName,
        _: Option<::metrics::Unit>,
        _: ::metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: ::metrics::KeyName,
        _: Option<::metrics::Unit>,
        _: ::metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: ::metrics::KeyName,
        _: Option<::metrics::Unit>,
        _: ::metrics::SharedString,
    ) {
    }
    fn register_counter(
        &self,
        key: &::metrics::Key,
        _: &::metrics::Metadata<'_>,
    ) -> ::metrics::Counter {
        match key.name().ends_with("reads_abandoned_total") {
            true => ::metrics::Counter::from_arc(self.0.clone()),
            false => ::metrics::Counter::noop(),
        }
    }
    fn register_gauge(&self, _: &::metrics::Key, _: &::metrics::Metadata<'_>) -> ::metrics::Gauge {
        ::metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &::metrics::Key,
        _: &::metrics::Metadata<'_>,
    ) -> ::metrics::Histogram {
        ::metrics::Histogram::noop()
    }
}

/// A read whose statement had already ended (its row sent back, its statement reset, its
/// connection's thread idle) when its caller dropped it: the interrupts rung for it must not
/// reach the reads after it on that connection. Here the read's row has arrived (its waker
/// fired) but the future was not polled again before being dropped, as when a request's
/// timeout and the answer come together. (Premise changed: the review also expected such a read
/// not to be counted as interrupted; the counter now counts reads abandoned, which is what the
/// caller can know, and such a read was abandoned: its answer was never taken.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_a_read_that_had_ended_leaves_later_reads_alone() {
    use sea_orm::{ConnectionTrait, Statement};
    let dir = std::env::temp_dir().join(format!("review-ended-read-{}", std::process::id()));
    let db = crate::Builder::new(dir.join("app.db"))
        .start()
        .await
        .unwrap();
    // Some 20 ms: long enough to be waited for, short enough to end.
    let read = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                WHERE x < 200000) SELECT count(*) AS n FROM c";
    let sqlite = sea_orm::DbBackend::Sqlite;
    let mut row_waits = 0;
    let rounds = 20;
    for _ in 0..rounds {
        // Its waits: for a connection, for its handle, for its row (the last). After each, let
        // the wake come, then drop it without polling: at the row's wait, the wake means the
        // row is there, the statement over.
        for pendings in 1..=4 {
            let read = db.query_one_raw(Statement::from_string(sqlite, read));
            let mut read = Box::pin(crate::interruptible_reads(read));
            let mut seen = 0;
            let ended = std::future::poll_fn(|cx| {
                if seen == pendings {
                    return std::task::Poll::Ready(false);
                }
                match read.as_mut().poll(cx) {
                    std::task::Poll::Ready(_) => std::task::Poll::Ready(true),
                    std::task::Poll::Pending => {
                        seen += 1;
                        std::task::Poll::Pending
                    }
                }
            })
            .await;
            if ended {
                row_waits += usize::from(pendings > 1);
                break;
            }
            drop(read);
            assert!(
                review_read_pool_back(&db, Duration::from_secs(5))
                    .await
                    .is_ok()
            );
        }
    }
    // 9 to 17 of the 20 did, in runs on 2 cores.
    assert!(
        row_waits >= 3,
        "only {row_waits} of {rounds} reads waited for their row"
    );
    // Whatever the connections were left with (an interrupt pending on an idle one), later
    // reads on each of them answer.
    for _ in 0..4 * crate::pools::READ_POOL_SIZE {
        let one = db
            .query_one_raw(Statement::from_string(sqlite, "SELECT 1 AS one"))
            .await;
        assert!(matches!(one, Ok(Some(_))), "a read after them: {one:?}");
    }
    drop(db);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Many reads abandoned at random moments (waiting for a connection, for its handle, for the
/// row, with the row arrived but not taken) on the eight connections of the read pool, among
/// reads that run to their end inside and outside `interruptible_reads`: no read that was
/// waited for ever fails (an interrupt meant for an abandoned read landing on a later one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_reads_waited_for_are_never_interrupted_among_abandoned_ones() {
    use sea_orm::{ConnectionTrait, Statement};
    let dir = std::env::temp_dir().join(format!("review-mixed-reads-{}", std::process::id()));
    let db = crate::Builder::new(dir.join("app.db"))
        .start()
        .await
        .unwrap();
    let read = |n: u32| {
        Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            format!(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                 WHERE x < {n}) SELECT count(*) AS n FROM c"
            ),
        )
    };
    let tasks = (0..12u64).map(|task| {
        let db = db.clone();
        tokio::spawn(async move {
            let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (task + 1).wrapping_mul(0x2545_f491);
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let (mut abandoned, mut waited) = (0, 0);
            for _ in 0..250 {
                let n = 1 + (next() % 30_000) as u32;
                match next() % 3 {
                    0 => {
                        let answer = db.query_one_raw(read(n)).await;
                        let got = answer
                            .as_ref()
                            .ok()
                            .and_then(|r| r.as_ref())
                            .and_then(|r| r.try_get::<i64>("", "n").ok());
                        assert_eq!(got, Some(i64::from(n)), "a read outside: {answer:?}");
                        waited += 1;
                    }
                    1 => {
                        let answer = crate::interruptible_reads(db.query_all_raw(read(n))).await;
                        let got = answer
                            .as_ref()
                            .ok()
                            .and_then(|r| r.first())
                            .and_then(|r| r.try_get::<i64>("", "n").ok());
                        assert_eq!(got, Some(i64::from(n)), "a read inside: {answer:?}");
                        waited += 1;
                    }
                    _ => {
                        let pendings = 1 + (next() % 4) as usize;
                        let late = next() % 2 == 0;
                        let mut fut =
                            Box::pin(crate::interruptible_reads(db.query_one_raw(read(n))));
                        let mut seen = 0;
                        std::future::poll_fn(|cx| {
                            if late && seen == pendings {
                                return std::task::Poll::Ready(());
                            }
                            match fut.as_mut().poll(cx) {
                                std::task::Poll::Ready(_) => std::task::Poll::Ready(()),
                                std::task::Poll::Pending => {
                                    seen += 1;
                                    match !late && seen == pendings {
                                        true => std::task::Poll::Ready(()),
                                        false => std::task::Poll::Pending,
                                    }
                                }
                            }
                        })
                        .await;
                        drop(fut);
                        abandoned += 1;
                    }
                }
            }
            (abandoned, waited)
        })
    });
    let mut total = (0, 0);
    for done in futures::future::join_all(tasks).await {
        let (a, w) = done.expect("a task panicked");
        total = (total.0 + a, total.1 + w);
    }
    assert!(total.0 > 500 && total.1 > 1000, "{total:?}");
    drop(db);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Review two (interruptible reads): a watched read dropped where there is no Tokio runtime to
/// wait in (its future moved out of the runtime that polled it, then dropped on a plain thread)
/// is, by `WatchedRead`'s own words, interrupted once and left at that ("the one interrupt is
/// all this drop can do"). The drop must not panic: a panic in a destructor during unwinding
/// aborts the process.
#[test]
fn review_two_a_watched_read_dropped_outside_a_runtime_does_not_panic() {
    use sea_orm::{ConnectionTrait, Statement};
    let dir = std::env::temp_dir().join(format!("review-two-no-rt-{}", std::process::id()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let db = rt
        .block_on(crate::Builder::new(dir.join("app.db")).start())
        .unwrap();
    // About 3 s of one core, unless interrupted.
    let slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                WHERE x < 30000000) SELECT count(*) AS n FROM c";
    let sqlite = sea_orm::DbBackend::Sqlite;
    let read_db = db.clone();
    let mut read = Box::pin(crate::interruptible_reads(async move {
        read_db
            .query_one_raw(Statement::from_string(sqlite, slow))
            .await
    }));
    // Polled on the runtime until it waits for its row (its connection taken and watched).
    let ended = rt.block_on(async {
        tokio::time::timeout(Duration::from_millis(300), read.as_mut())
            .await
            .is_ok()
    });
    assert!(!ended, "the slow read ended within 300 ms");
    // Now dropped on this thread, outside any runtime.
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(read)));
    let panic = dropped.err().map(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default()
    });
    rt.block_on(async { drop(db) });
    drop(rt);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        panic, None,
        "dropping an abandoned watched read outside a runtime panicked"
    );
}

/// Review two (interruptible reads): a runtime shut down while a task of it waits on a watched
/// read drops that read during the shutdown; that must not panic. (Holds.)
#[test]
fn review_two_a_watched_read_in_flight_at_runtime_shutdown_does_not_panic() {
    use sea_orm::{ConnectionTrait, Statement};
    let dir = std::env::temp_dir().join(format!("review-two-shutdown-{}", std::process::id()));
    for flavor in ["current", "multi"] {
        let rt = match flavor {
            "current" => tokio::runtime::Builder::new_current_thread(),
            _ => tokio::runtime::Builder::new_multi_thread(),
        }
        .enable_all()
        .build()
        .unwrap();
        let db = rt
            .block_on(crate::Builder::new(dir.join(format!("{flavor}.db"))).start())
            .unwrap();
        let slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                    WHERE x < 30000000) SELECT count(*) AS n FROM c";
        let sqlite = sea_orm::DbBackend::Sqlite;
        let read_db = db.clone();
        let task = rt.spawn(crate::interruptible_reads(async move {
            read_db
                .query_one_raw(Statement::from_string(sqlite, slow))
                .await
        }));
        rt.block_on(async {
            // Polled until it waits for its row.
            let _ = tokio::time::timeout(Duration::from_millis(300), async {
                while !task.is_finished() {
                    tokio::task::yield_now().await;
                }
            })
            .await;
        });
        assert!(
            !task.is_finished(),
            "{flavor}: the slow read ended within 300 ms"
        );
        let shut = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            std::mem::forget(db); // Its own drop is not what is tested.
            drop(rt);
        }));
        assert!(
            shut.is_ok(),
            "{flavor}: shutting down with a watched read in flight panicked"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
