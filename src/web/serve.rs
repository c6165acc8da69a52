//! The HTTP server loop: hyper's HTTP/1 connections with a header-read timeout (which also closes
//! idle keep-alive connections), a cap on open connections, and a graceful shutdown that lets
//! in-flight requests finish within a bound.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// Bounds of the server loop.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// A client must send a request's headers within this time (also: idle keep-alive bound).
    pub header_read_timeout: Duration,
    /// Connections served at once; beyond it a connection is answered 503 and closed.
    pub max_connections: usize,
    /// How long in-flight requests may take to finish after shutdown starts.
    pub shutdown_grace: Duration,
}

/// Starts graceful shutdown of a server spawned by [`spawn`].
#[derive(Clone)]
pub struct ShutdownHandle(Arc<watch::Sender<bool>>);

impl ShutdownHandle {
    /// Stops accepting connections; in-flight requests finish (within the grace period).
    pub fn shutdown(&self) {
        let _ = self.0.send(true);
    }
}

/// Serves `app` on `listener` until [`ShutdownHandle::shutdown`].
pub fn spawn(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
) -> (tokio::task::JoinHandle<std::io::Result<()>>, ShutdownHandle) {
    let (stop, stopped) = watch::channel(false);
    let stop = Arc::new(stop);
    // The loop keeps a sender too, so dropping the handle does not look like a shutdown.
    let task = tokio::spawn(serve(listener, app, options, stop.clone(), stopped));
    (task, ShutdownHandle(stop))
}

async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    _stop: Arc<watch::Sender<bool>>,
    mut stopped: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let service = app
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(remote));
                request
            });
        let connection = http.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(service.map_err(|never: Infallible| match never {})),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%err, %remote, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!("shutting down: draining in-flight requests");
    if tokio::time::timeout(options.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace = ?options.shutdown_grace,
            "requests still in flight after the grace period; exiting anyway"
        );
    }
    Ok(())
}

/// Over the connection cap: a short 503 instead of a connection that hangs in the backlog.
async fn refuse(mut stream: TcpStream) {
    metrics::counter!("blog_http_connections_refused_total").increment(1);
    let _ = stream
        .write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\n\
              Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n",
        )
        .await;
    let _ = stream.shutdown().await;
}

/// The peer address of a request served by this loop (absent in unit tests using `oneshot`).
pub fn client_addr(extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr)
}
