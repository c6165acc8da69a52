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
    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), K::Error>> {
        Pin::new(&mut self.sink).poll_ready(cx)
    }
    fn start_send(mut self: Pin<&mut Self>, item: I) -> Result<(), K::Error> {
        Pin::new(&mut self.sink).start_send(item)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), K::Error>> {
        Pin::new(&mut self.sink).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), K::Error>> {
        Pin::new(&mut self.sink).poll_close(cx)
    }
}
