//! The HTTP server loop: hyper's HTTP/1 connections with a header-read timeout (which also closes
//! idle keep-alive connections), a cap on open connections, in all and per client address (so one
//! client cannot hold them all), and a graceful shutdown that lets in-flight requests finish
//! within a bound.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
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
    /// Connections one client address (an IPv6 /64) may hold at once, beyond which it gets the
    /// same 503; loopback peers (this machine) are not counted. `None`: no such cap, as behind a
    /// proxy, where every connection comes from the proxy.
    pub max_connections_per_client: Option<usize>,
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
    let per_client = Arc::new(PerClient::default());
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
            tokio::spawn(refuse(stream, TOO_MANY));
            continue;
        };
        let client_slot = match options.max_connections_per_client {
            Some(max) if !remote.ip().is_loopback() => {
                match PerClient::take(&per_client, remote.ip(), max) {
                    Some(client_slot) => Some(client_slot),
                    None => {
                        tokio::spawn(refuse(stream, TOO_MANY_FROM_CLIENT));
                        continue;
                    }
                }
            }
            _ => None,
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
            drop(client_slot);
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

const TOO_MANY: &str = "too many connections\n";
const TOO_MANY_FROM_CLIENT: &str = "too many connections from your address\n";

/// Over a connection cap: a short 503 instead of a connection that hangs in the backlog.
async fn refuse(mut stream: TcpStream, why: &str) {
    metrics::counter!("blog_http_connections_refused_total").increment(1);
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{why}",
        why.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Open connections by client key (see [`super::throttle::client_key`]); a key leaves the map when
/// its last connection ends, so the map is bounded by the connection cap.
#[derive(Default)]
struct PerClient(Mutex<HashMap<IpAddr, usize>>);

/// One open connection of a client, given back when dropped.
struct ClientSlot {
    table: Arc<PerClient>,
    key: IpAddr,
}

impl PerClient {
    /// A place for one more connection from `ip`, unless its key holds `max` already.
    fn take(table: &Arc<PerClient>, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let key = super::throttle::client_key(Some(ip));
        let mut open = table.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            table: table.clone(),
            key,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The peer address of a request served by this loop (absent in unit tests using `oneshot`).
pub fn client_addr(extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr)
}
