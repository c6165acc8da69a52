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
mod tests;

/// Fresh-context review of the drain, over a real RPC connection: the replica's own forwarding
/// code ([`crate::client::Forwarder`]) against [`crate::server::serve`].
#[cfg(test)]
mod review_tests;
