//! Stopping the primary's side of forwarding gracefully ([`crate::ClusterConnection::drain`]).
//!
//! A primary stopped in the middle of a forwarded write (a deploy, `fly machine stop`: LiteFS
//! passes the signal to the app) would leave the replica that sent it without an answer. The
//! write may have committed, so the replica must ask the primary what became of it, and a
//! primary that is gone cannot say: the replica's caller is told "outcome unknown". Draining
//! avoids that:
//!
//! 1. New work (a forwarded write, a procedure, a remote transaction's BEGIN) is refused as not
//!    committed, which is true, and the replica's caller can say so at once. Work that continues
//!    what was begun (a statement or COMMIT of an open remote transaction, a question about a
//!    lost answer) is still taken.
//! 2. A replica told "shutting down" sends that primary no new work for a while and lets go of
//!    its connection (`client::Forwarder::call_new`), so calls stop arriving.
//! 3. The work begun runs to its end: [`Drain`] counts every call's work from before it starts
//!    until it ends (in its detached task, which goes on if the caller gives up), and every
//!    remote transaction until it ends.
//! 4. Once no work is left and no call has arrived for [`QUIET`], every RPC connection still
//!    open stops reading requests, sends the answers it holds and closes ([`UntilDrained`];
//!    tarpc closes a connection whose requests have ended only once every answer is written and
//!    flushed), and the listener closes. A connection setting up counts as work. The quiet
//!    period keeps the calls of replicas that were told from being on their way when their
//!    connection closes: unread, a call gets no answer, and a connection closed with unread data
//!    is reset, which can destroy answers already sent. A replica not yet told that sends in
//!    the last instant can still lose its answer (it then asks about it, as for any lost
//!    answer).
//!
//! All within the caller's grace period: work still running then is cut as before, and its
//! replica asks about it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::{Sink, Stream};
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::rpc::Refusal;

/// What a replica is told of work that arrives while this node drains.
pub(crate) const DRAINING: &str = "the primary is shutting down: nothing ran (try again once it is back, or once another node has the lease)";

/// Whether `refusal` says the primary is draining (a replica then sends it no new work for a
/// while, and lets go of its connection: see `client::Forwarder`).
pub(crate) fn is_draining(refusal: &Refusal) -> bool {
    matches!(refusal, Refusal::Unavailable(why) if why == DRAINING)
}

/// How long no call must have arrived, once the work is done, before the connections are ended:
/// replicas that were told "draining" stop sending, and a connection is never ended with calls
/// on their way (unanswered, their callers could only be told "unknown").
const QUIET: Duration = Duration::from_millis(100);

/// The forwarded work in progress on this node, and whether it is draining.
pub(crate) struct Drain {
    draining: AtomicBool,
    /// Calls running, and remote transactions open.
    work: watch::Sender<usize>,
    /// RPC connections open.
    connections: watch::Sender<usize>,
    /// Cancelled once the work is done: every connection then stops reading.
    work_done: CancellationToken,
    /// When the last call arrived.
    last_call: std::sync::Mutex<Instant>,
}

/// One unit of work counted by [`Drain`], until dropped.
pub(crate) struct Work(Arc<Drain>);

impl Drop for Work {
    fn drop(&mut self) {
        self.0.work.send_modify(|n| *n -= 1);
    }
}

/// One RPC connection counted by [`Drain`], until dropped.
pub(crate) struct Connection(Arc<Drain>);

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.connections.send_modify(|n| *n -= 1);
    }
}

impl Drain {
    pub fn new() -> Arc<Drain> {
        Arc::new(Drain {
            draining: AtomicBool::new(false),
            work: watch::Sender::new(0),
            connections: watch::Sender::new(0),
            work_done: CancellationToken::new(),
            last_call: std::sync::Mutex::new(Instant::now()),
        })
    }

    /// Counts new work, or refuses it (nothing ran) once draining.
    pub fn new_work(self: &Arc<Self>) -> Result<Work, Refusal> {
        // Counted before the check: a drain that starts in between then waits for it.
        let work = self.continued_work();
        if self.draining.load(Ordering::SeqCst) {
            return Err(Refusal::Unavailable(DRAINING.into()));
        }
        Ok(work)
    }

    /// Counts work that continues what was begun: taken while draining too.
    pub fn continued_work(self: &Arc<Self>) -> Work {
        self.work.send_modify(|n| *n += 1);
        *self.last_call.lock().unwrap() = Instant::now();
        Work(self.clone())
    }

    /// Counts an RPC connection; its requests end (see [`UntilDrained`]) once the work is done.
    pub fn connection<T>(self: &Arc<Self>, transport: T) -> (Connection, UntilDrained<T>) {
        self.connections.send_modify(|n| *n += 1);
        let done = Box::pin(self.work_done.clone().cancelled_owned());
        let transport = UntilDrained {
            inner: transport,
            done,
            ended: false,
        };
        (Connection(self.clone()), transport)
    }

    /// Until a drain has seen the work done.
    pub async fn work_done(&self) {
        self.work_done.cancelled().await;
    }

    /// Drains (see the module docs), for at most `grace`: new work is refused from this call on;
    /// the future waits for the rest and resolves to whether everything ended in time.
    pub fn drain(self: &Arc<Self>, grace: Duration) -> impl Future<Output = bool> + Send + 'static {
        let deadline = tokio::time::Instant::from_std(Instant::now() + grace);
        self.draining.store(true, Ordering::SeqCst);
        let drain = self.clone();
        async move {
            let worked = loop {
                if !until_none(&drain.work, deadline).await {
                    break false;
                }
                // Quiet: no call for a while (one may have begun work meanwhile: checked again).
                let quiet_at = *drain.last_call.lock().unwrap() + QUIET;
                if Instant::now() >= quiet_at && *drain.work.borrow() == 0 {
                    break true;
                }
                let quiet_at = tokio::time::Instant::from_std(quiet_at);
                if quiet_at > deadline {
                    tokio::time::sleep_until(deadline).await;
                    break false;
                }
                tokio::time::sleep_until(quiet_at).await;
            };
            drain.work_done.cancel();
            let closed = until_none(&drain.connections, deadline).await;
            worked && closed
        }
    }
}

/// Waits until `count` is 0, at most until `deadline`; whether it got there.
async fn until_none(count: &watch::Sender<usize>, deadline: tokio::time::Instant) -> bool {
    let mut count = count.subscribe();
    let zero = tokio::time::timeout_at(deadline, count.wait_for(|n| *n == 0)).await;
    matches!(zero, Ok(Ok(_)))
}

/// A connection's transport whose requests end once the node's work is done: tarpc then writes
/// and flushes every answer it holds and closes the connection.
pub(crate) struct UntilDrained<T> {
    inner: T,
    done: Pin<Box<WaitForCancellationFutureOwned>>,
    ended: bool,
}

impl<T: Stream + Unpin> Stream for UntilDrained<T> {
    type Item = T::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T::Item>> {
        if self.ended || self.done.as_mut().poll(cx).is_ready() {
            self.ended = true;
            return Poll::Ready(None);
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl<T: Sink<I> + Unpin, I> Sink<I> for UntilDrained<T> {
    type Error = T::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), T::Error>> {
        Pin::new(&mut self.inner).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: I) -> Result<(), T::Error> {
        Pin::new(&mut self.inner).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), T::Error>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), T::Error>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use futures::{SinkExt, StreamExt};

    use super::*;

    const GRACE: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn new_work_is_refused_from_the_drain_call_on_and_continued_work_is_not() {
        let drain = Drain::new();
        let before = drain.new_work().expect("taken before the drain");
        let draining = drain.drain(GRACE);
        // Refused at once: the drain future has not even been polled.
        assert!(matches!(drain.new_work(), Err(Refusal::Unavailable(why)) if why == DRAINING));
        let continued = drain.continued_work();
        drop((before, continued));
        assert!(draining.await, "nothing left: drained");
    }

    #[tokio::test]
    async fn the_drain_waits_for_the_work_then_ends_every_connection() {
        let drain = Drain::new();
        let work = drain.new_work().unwrap();
        let (open, mut requests) = drain.connection(futures::stream::pending::<u32>());
        let draining = tokio::spawn(drain.drain(GRACE));
        tokio::task::yield_now().await;
        assert!(!draining.is_finished(), "it waits for the work");
        // Requests are still read while the work runs (a COMMIT that continues it may come).
        let still_read = tokio::time::timeout(Duration::from_millis(20), requests.next()).await;
        assert!(still_read.is_err(), "the connection still reads");
        drop(work);
        assert_eq!(
            requests.next().await,
            None,
            "requests end once the work is done"
        );
        assert!(
            !draining.is_finished(),
            "it waits for the connection to close"
        );
        drop(open);
        assert!(draining.await.unwrap(), "drained in time");
    }

    #[tokio::test]
    async fn work_still_running_at_the_end_of_the_grace_is_reported() {
        let drain = Drain::new();
        let _work = drain.new_work().unwrap();
        assert!(
            !drain.drain(Duration::from_millis(50)).await,
            "the grace ran out with work left"
        );
        // The connections are ended anyway: the process is about to exit.
        let (_open, mut requests) = drain.connection(futures::stream::pending::<u32>());
        assert_eq!(requests.next().await, None);
    }

    #[tokio::test]
    async fn answers_still_go_out_after_the_requests_end() {
        let drain = Drain::new();
        let (sink, mut sent) = futures::channel::mpsc::unbounded::<u32>();
        let (open, mut transport) = drain.connection(SinkAndStream {
            sink,
            stream: futures::stream::pending::<u32>(),
        });
        let draining = tokio::spawn(drain.drain(GRACE));
        assert_eq!(transport.next().await, None);
        transport.send(7).await.unwrap();
        assert_eq!(sent.next().await, Some(7));
        drop(open);
        assert!(draining.await.unwrap());
    }

    /// A transport made of a sink and a stream.
    struct SinkAndStream<K, S> {
        sink: K,
        stream: S,
    }

    impl<K: Unpin, S: Stream + Unpin> Stream for SinkAndStream<K, S> {
        type Item = S::Item;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
            Pin::new(&mut self.stream).poll_next(cx)
        }
    }

    impl<I, K: Sink<I> + Unpin, S: Unpin> Sink<I> for SinkAndStream<K, S> {
        type Error = K::Error;
        fn poll_ready(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), K::Error>> {
            Pin::new(&mut self.sink).poll_ready(cx)
        }
        fn start_send(mut self: Pin<&mut Self>, item: I) -> Result<(), K::Error> {
            Pin::new(&mut self.sink).start_send(item)
        }
        fn poll_flush(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), K::Error>> {
            Pin::new(&mut self.sink).poll_flush(cx)
        }
        fn poll_close(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), K::Error>> {
            Pin::new(&mut self.sink).poll_close(cx)
        }
    }
}

/// Fresh-context review of the drain, over a real RPC connection: the replica's own forwarding
/// code ([`crate::client::Forwarder`]) against [`crate::server::serve`].
#[cfg(test)]
mod review_tests {
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
        let (writer, executor, faults, forwarder) =
            primary_and_replica("review-drain-unread").await;

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
        let (writer, executor, faults, forwarder) =
            primary_and_replica("review-drain-cancelled").await;
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

        let (writer, executor, _faults, addr, secret) =
            serving_primary("review-drain-handshake").await;
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
        let (writer, executor, faults, forwarder) =
            primary_and_replica("review-drain-resolve").await;
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
}
