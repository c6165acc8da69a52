use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::ClusterError;
use crate::client::{CallError, Forwarder};
use crate::server::fixtures::{insert, replica_follower, rows, serving_primary};
use crate::server::{Executor, Faults};
use crate::wire::Outcome;
use crate::writer::Writer;

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(2)
}

/// A primary (its executor serving RPC on loopback, table `t`) and a replica's forwarder to it.
async fn primary_and_replica(
    name: &str,
) -> (Arc<Writer>, Arc<Executor>, Arc<Faults>, Arc<Forwarder>) {
    let (writer, executor, faults, addr, secret) = serving_primary(name).await;
    let forwarder = replica_of(name, addr, secret);
    (writer, executor, faults, forwarder)
}

/// A replica's forwarder: its LiteFS names the primary, whose RPC address is `addr`.
fn replica_of(name: &str, addr: String, secret: Arc<Vec<u8>>) -> Arc<Forwarder> {
    let follower = replica_follower(name);
    Arc::new(Forwarder::new(
        follower,
        addr,
        secret,
        Duration::from_secs(2),
    ))
}

/// Replicas keep forwarding writes while the primary drains (a busy cluster during a
/// deploy). Each must get an answer (a refusal: nothing ran) or fail to connect (nothing
/// sent): a write sent and never answered is "lost", and its replica's question about it
/// (`resolve`) finds the primary gone, so its caller is told "outcome unknown", which the
/// drain exists to prevent. Here a remote transaction holds the drain open, replicas' new
/// writes are refused meanwhile, then the transaction commits (the last work).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_no_write_sent_during_the_drain_is_left_without_an_answer() {
    let (writer, executor, faults, forwarder) = primary_and_replica("review-drain-unread").await;

    let (session, at) = forwarder
        .call(deadline(), None, |c, ctx| async move { c.begin(ctx).await })
        .await
        .expect("begun");
    forwarder
        .call(deadline(), Some(&at), |c, ctx| async move {
            c.run_in(ctx, session, insert(0)).await
        })
        .await
        .expect("inserted in the transaction");

    let draining = tokio::spawn(executor.drain.drain(Duration::from_secs(5)));
    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load: Vec<_> = (0..32i64)
        .map(|i| {
            let (forwarder, stop) = (forwarder.clone(), stop.clone());
            let attempts = attempts.clone();
            tokio::spawn(async move {
                let (mut ran, mut refused, mut lost) = (0, 0, Vec::new());
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let key = crate::connection::idempotency_key();
                    // As the replica sends new work: `call_new`.
                    let sent = forwarder
                        .call_new(deadline(), |c, ctx| async move {
                            c.run(ctx, key, insert(1_000_000 * (i + 1) + n)).await
                        })
                        .await;
                    attempts.fetch_add(1, Ordering::Relaxed);
                    // A call refused here without being sent returns at once.
                    tokio::task::yield_now().await;
                    match sent {
                        Ok(_) => ran += 1,
                        // The listener is closed: the primary is gone for this replica.
                        Err(CallError::Failed(ClusterError::PrimaryUnreachable { .. })) => {
                            break;
                        }
                        Err(CallError::Failed(_)) => refused += 1,
                        Err(CallError::Lost { reason, .. }) => lost.push(reason),
                    }
                }
                (ran, refused, lost)
            })
        })
        .collect();
    // Writes are being refused, by the draining primary or, once it said so, here.
    while attempts.load(Ordering::Relaxed) < 300
        || faults.calls_received.load(Ordering::Relaxed) < 3
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let key = crate::connection::idempotency_key();
    let committed = forwarder
        .call(deadline(), Some(&at), |c, ctx| async move {
            c.commit(ctx, session, key).await
        })
        .await;
    let drained = draining.await.unwrap();
    // Every load task ends on its own once the listener is closed; the flag is a backstop.
    let backstop = tokio::spawn({
        let stop = stop.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            stop.store(true, Ordering::Relaxed);
        }
    });
    let (mut ran, mut refused, mut lost) = (0, 0, Vec::new());
    for task in load {
        let (r, f, l) = task.await.unwrap();
        ran += r;
        refused += f;
        lost.extend(l);
    }
    backstop.abort();
    let stored = rows(&writer).await;
    println!(
        "during the drain: {refused} refused, {ran} ran, {} lost; the transaction's COMMIT: \
         {committed:?}; rows stored: {stored}; drained: {drained}",
        lost.len()
    );
    assert!(
        matches!(committed, Ok((Outcome { result: Ok(_), .. }, _))),
        "the open transaction's COMMIT is answered during the drain, yet: {committed:?} \
         (rows stored on the primary: {stored}; 1 is the transaction's: it committed)"
    );
    assert!(drained, "drained within the grace");
    assert_eq!(ran, 0, "new writes ran during the drain");
    assert_eq!(stored, 1, "only the transaction's row committed");
    assert!(
        lost.is_empty(),
        "{} of the writes sent during the drain got no answer (their callers: outcome \
         unknown, the primary gone when asked), {refused} were refused; first: {:?}",
        lost.len(),
        lost.first()
    );
}

/// Once a call's cancel has had time to reach the primary (the work count may stay above 0
/// meanwhile: that is what the callers test), starts a drain: what it said if it ended within
/// 300 ms, and the drain itself, going on.
async fn drain_after_a_cancel(
    executor: &Executor,
) -> (Option<bool>, tokio::task::JoinHandle<bool>) {
    let mut waited = Duration::ZERO;
    while *executor.drain.work.borrow() > 0 && waited < Duration::from_millis(500) {
        tokio::time::sleep(Duration::from_millis(5)).await;
        waited += Duration::from_millis(5);
    }
    let mut drain = tokio::spawn(executor.drain.drain(Duration::from_secs(5)));
    let early = tokio::time::timeout(Duration::from_millis(300), &mut drain).await;
    (early.ok().map(|ended| ended.unwrap()), drain)
}

/// A replica's caller gives up on a forwarded write (its HTTP client went away, its future
/// dropped: tarpc sends a cancel) while the write waits on the primary for the writer. The
/// primary's work goes on (it is detached: it may commit), but the drain stops counting it
/// the moment tarpc drops the call's handler. So the drain reports everything ended, the
/// process exits, and a write it had begun commits after, or is cut halfway.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_the_drain_waits_for_a_forwarded_write_whose_caller_gave_up() {
    let (writer, executor, faults, forwarder) = primary_and_replica("review-drain-cancelled").await;
    let held = writer.acquire(deadline()).await.unwrap();
    let key = crate::connection::idempotency_key();
    let gave_up = tokio::time::timeout(
        Duration::from_millis(200),
        forwarder.call(deadline(), None, |c, ctx| async move {
            c.run(ctx, key, insert(1)).await
        }),
    )
    .await;
    assert!(
        gave_up.is_err(),
        "the write waits for the writer: {gave_up:?}"
    );
    assert_eq!(faults.calls_received.load(Ordering::Relaxed), 1);
    // The cancel reaches the primary and tarpc drops the call's handler. The write's own work
    // still runs (it waits for the writer): a drain must keep counting it, so the count may
    // never reach 0 here; this waits for it at most a while.
    let (ended_early, drain) = drain_after_a_cancel(&executor).await;
    drop(held);
    let mut committed = 0;
    for _ in 0..200 {
        committed = rows(&writer).await;
        if committed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        ended_early.is_none(),
        "the drain said all forwarded work had ended ({ended_early:?}) while a write it had \
         begun was still waiting for the writer; that write then committed: {committed} row(s)"
    );
    assert!(drain.await.unwrap(), "drained once the write is done");
}

/// Second fresh-context review. A replica connects to the primary just before the drain
/// closes (its handshake is under way when the quiet period ends: one or two round trips,
/// 80-160 ms between regions, longer than the quiet period itself). The accept is not a call,
/// so it does not hold the quiet; the connection is then registered after the work is done,
/// its requests end at once, and the replica's first call, sent after its handshake, is never
/// read: "lost" (it may have run, as far as the replica knows), and the replica's question
/// about it finds the primary gone. The docs say a replica trying again after the close
/// "fails to connect (nothing sent, nothing ran)"; it should get that or an answer (here the
/// "shutting down" refusal). A relay holds the replica's handshake proof until the drain has
/// seen quiet, standing in for the round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_a_call_on_a_connection_accepted_before_the_close_is_answered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (writer, executor, _faults, addr, secret) = serving_primary("review-drain-handshake").await;
    let relay = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_addr = relay.local_addr().unwrap().to_string();
    let (open, mut opened) = tokio::sync::watch::channel(false);
    let replied = Arc::new(tokio::sync::Notify::new());
    tokio::spawn({
        let replied = replied.clone();
        async move {
            let (client, _) = relay.accept().await.unwrap();
            let upstream = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let (mut from_client, mut to_client) = client.into_split();
            let (mut from_server, mut to_server) = upstream.into_split();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(n) = from_server.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    // The primary's first bytes (its handshake reply): it has accepted.
                    replied.notify_one();
                    if to_client.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = to_client.shutdown().await;
            });
            // The replica's hello goes at once; its proof and calls once the gate opens.
            let mut hello = [0u8; 40];
            from_client.read_exact(&mut hello).await.unwrap();
            to_server.write_all(&hello).await.unwrap();
            let _ = opened.wait_for(|open| *open).await;
            let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
            let _ = to_server.shutdown().await;
        }
    });
    let forwarder = replica_of("review-drain-handshake", relay_addr, secret);
    let key = crate::connection::idempotency_key();
    let call = tokio::spawn(async move {
        forwarder
            .call_new(deadline(), |c, ctx| async move {
                c.run(ctx, key, insert(1)).await
            })
            .await
    });
    replied.notified().await;
    let draining = tokio::spawn(executor.drain.drain(Duration::from_secs(5)));
    // The primary has seen quiet: it stops reading and closes its listener. (A primary that
    // holds the quiet for a connection being set up does not get there: the handshake goes on
    // after a second, and its call must then be answered.)
    let _ = tokio::time::timeout(Duration::from_secs(1), executor.drain.work_done()).await;
    open.send(true).unwrap();
    let sent = call.await.unwrap();
    let drained = draining.await.unwrap();
    let stored = rows(&writer).await;
    assert_eq!(stored, 0, "nothing ran");
    assert!(drained);
    assert!(
        !matches!(sent, Err(CallError::Lost { .. })),
        "a write sent on a connection the draining primary had accepted got no answer (its \
         replica: outcome unknown until someone can say): {sent:?}"
    );
}

/// Second fresh-context review. A replica asks what became of a lost answer (`resolve`,
/// taken while draining) and gives up before the answer comes (its deadline, or its caller
/// went away: tarpc drops the handler). The question's own work goes on (the writer's
/// `resolve` runs in a task of its own: it waits for the writer, then stores and commits a
/// "not committed" mark for the key), but the drain stopped counting it with the handler, as
/// it did for writes before the fix. So the drain reports everything ended while it still
/// waits to write; the process exits under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_the_drain_waits_for_a_question_whose_asker_gave_up() {
    let (writer, executor, faults, forwarder) = primary_and_replica("review-drain-resolve").await;
    let held = writer.acquire(deadline()).await.unwrap();
    let key = crate::connection::idempotency_key();
    let gave_up = tokio::time::timeout(
        Duration::from_millis(200),
        forwarder.call(deadline(), None, |c, ctx| async move {
            c.resolve(ctx, key).await
        }),
    )
    .await;
    assert!(gave_up.is_err(), "the question waits for the writer");
    assert_eq!(faults.calls_received.load(Ordering::Relaxed), 1);
    // The cancel reaches the primary and tarpc drops the call's handler; the question's task
    // still waits for the writer, so a drain must keep counting it (waited for at most a
    // while here).
    let (ended_early, drain) = drain_after_a_cancel(&executor).await;
    drop(held);
    assert!(
        ended_early.is_none(),
        "the drain said all forwarded work had ended ({ended_early:?}) while a question it had \
         taken was still waiting for the writer to write its answer"
    );
    assert!(drain.await.unwrap(), "drained once the question is done");
}
