//! The replica's side of forwarding: one authenticated tarpc connection per primary address,
//! opened on demand, every call under a deadline, "not primary" answers followed.
//!
//! A call ends in one of three ways: an answer; a failure before anything was sent (connect or
//! handshake failed: nothing ran); or a lost answer (the request went out, and the deadline passed
//! or the connection broke before the answer came back: it may have run). Callers tell the last
//! apart, because for a write it means "outcome unknown" until the primary is asked.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tarpc::client::RpcError;
use tarpc::context::Context;
use tarpc::tokio_serde::formats::Bincode;
use tokio_util::codec::LengthDelimitedCodec;

use super::ClusterError;
use super::auth::{self, HandshakeError};
use super::litefs::{Follower, Role};
use super::metrics;
use super::rpc::{ForwardClient, MAX_FRAME_BYTES, Refusal};

/// How many times a call follows "not primary, ask X" before giving up.
const MAX_REDIRECTS: usize = 3;

/// How long new work is not sent to a primary that said it is shutting down (see
/// [`Forwarder::call_new`]).
const DRAINING_BACKOFF: Duration = Duration::from_millis(500);

#[derive(Clone)]
struct Connection {
    client: ForwardClient,
    /// Cleared when the connection's dispatch task ends, so a dead connection is not reused.
    alive: Arc<AtomicBool>,
    /// When opening it began: a question asked before then did not go on it (see
    /// [`Forwarder::forget_primary_older_than`]).
    opened: Instant,
}

/// How a call failed.
#[derive(Debug)]
pub enum CallError {
    /// Nothing ran: the request was not sent, or the primary refused it.
    Failed(ClusterError),
    /// The request was sent to `addr` but no answer came back: it may have run.
    Lost { addr: String, reason: String },
}

/// Sends calls to the primary.
pub struct Forwarder {
    follower: Arc<Follower>,
    /// `{primary}` is replaced by the primary's lease hostname.
    template: String,
    secret: Arc<Vec<u8>>,
    pub timeout: Duration,
    connections: Mutex<HashMap<String, Connection>>,
    /// Connections being opened, one per address, which every caller that finds none awaits:
    /// a burst of calls after an eviction opens one connection, not one each.
    connecting: Mutex<HashMap<String, (Instant, Connecting)>>,
    /// Primaries that said they are shutting down, until when no new work goes to them.
    draining: Mutex<HashMap<Addr, Instant>>,
    /// Primaries that refused this node's secret when [`Forwarder::check`] asked, and when.
    auth_refused: Mutex<HashMap<Addr, Instant>>,
}

/// How long [`Forwarder::check`] answers a refusal of this node's secret again without asking:
/// the secret does not change under a running node, and a readiness probe must not become a
/// connection to the primary each time.
const AUTH_REFUSAL_KEPT: Duration = Duration::from_secs(10);

/// A connection being opened (see [`Forwarder::client`]).
type Connecting =
    futures::future::Shared<futures::future::BoxFuture<'static, Result<Connection, ClusterError>>>;

/// Where a call went, for remote transactions that must stay on one primary.
pub type Addr = String;

impl Forwarder {
    pub fn new(
        follower: Arc<Follower>,
        template: String,
        secret: Arc<Vec<u8>>,
        timeout: Duration,
    ) -> Self {
        Forwarder {
            follower,
            template,
            secret,
            timeout,
            connections: Mutex::new(HashMap::new()),
            connecting: Mutex::new(HashMap::new()),
            draining: Mutex::new(HashMap::new()),
            auth_refused: Mutex::new(HashMap::new()),
        }
    }

    /// [`Forwarder::call`] for new work (a write, a procedure, a BEGIN). A primary that said it is
    /// shutting down gets none for a while: the call fails here, not sent (nothing ran), so that
    /// the primary soon hears from no one and can close its connections with no call on the
    /// way (see `crate::drain`).
    pub async fn call_new<T, F, Fut>(
        &self,
        deadline: Instant,
        call: F,
    ) -> Result<(T, Addr), CallError>
    where
        F: Fn(ForwardClient, Context) -> Fut,
        Fut: Future<Output = Result<Result<T, Refusal>, RpcError>>,
    {
        let addr = self.current_primary().map_err(CallError::Failed)?;
        let draining = self.draining.lock().unwrap().get(&addr).copied();
        if draining.is_some_and(|until| Instant::now() < until) {
            let refusal = Refusal::Unavailable(crate::drain::DRAINING.into());
            return Err(CallError::Failed(ClusterError::from_refusal(
                &addr, refusal,
            )));
        }
        self.call(deadline, None, call).await
    }

    /// `addr` said it is shutting down: no new work for it for a while, and its connection is let
    /// go (closed once the calls on it are answered).
    fn draining(&self, addr: &str) {
        let until = Instant::now() + DRAINING_BACKOFF;
        self.draining.lock().unwrap().insert(addr.to_owned(), until);
        self.connections.lock().unwrap().remove(addr);
    }

    /// Stops reusing the connection to the current primary (calls on it keep it until they
    /// end) if opening it began before `since`: it may be half-open, and the next call gets a new
    /// one. One that began since is kept: another caller just opened it, and callers that waited
    /// on the same silence share it rather than each opening its own.
    pub fn forget_primary_older_than(&self, since: Instant) {
        if let Ok(addr) = self.current_primary() {
            let mut connections = self.connections.lock().unwrap();
            if connections.get(&addr).is_some_and(|c| c.opened < since) {
                connections.remove(&addr);
            }
            drop(connections);
            let mut connecting = self.connecting.lock().unwrap();
            if connecting
                .get(&addr)
                .is_some_and(|(began, _)| *began < since)
            {
                connecting.remove(&addr);
            }
        }
    }

    fn address_of(&self, primary: &str) -> Addr {
        self.template.replace("{primary}", primary)
    }

    /// The primary's RPC address as this node's LiteFS knows it.
    fn current_primary(&self) -> Result<Addr, ClusterError> {
        match self.follower.role() {
            Role::Replica { primary } => Ok(self.address_of(&primary)),
            // The lease moved here while the call was being routed: the caller runs it locally
            // next time; this one fails before anything was sent.
            Role::Primary | Role::Standalone => Err(ClusterError::PrimaryMoving {
                last: "this node".into(),
            }),
            Role::NoPrimary => Err(ClusterError::NoPrimary),
        }
    }

    /// Opens (or finds) an authenticated connection to the current primary within `deadline`:
    /// whether it is there and accepts this node's secret. The connection is kept for calls.
    pub async fn check(&self, deadline: Instant) -> Result<(), ClusterError> {
        let addr = self.current_primary()?;
        let refused_at = self.auth_refused.lock().unwrap().get(&addr).copied();
        if refused_at.is_some_and(|at| at.elapsed() < AUTH_REFUSAL_KEPT) {
            return Err(ClusterError::AuthFailed { addr });
        }
        let checked = self.client(&addr, deadline).await.map(drop);
        let mut refused = self.auth_refused.lock().unwrap();
        match &checked {
            Err(ClusterError::AuthFailed { .. }) => refused.insert(addr, Instant::now()),
            _ => refused.remove(&addr),
        };
        checked
    }

    /// Calls the current primary within `deadline`, following "not primary" answers. With
    /// `pinned`, calls that address only (a remote transaction stays where it began). Returns the
    /// answer and the address that gave it.
    pub async fn call<T, F, Fut>(
        &self,
        deadline: Instant,
        pinned: Option<&str>,
        call: F,
    ) -> Result<(T, Addr), CallError>
    where
        F: Fn(ForwardClient, Context) -> Fut,
        Fut: Future<Output = Result<Result<T, Refusal>, RpcError>>,
    {
        let mut addr = match pinned {
            Some(addr) => addr.to_owned(),
            None => self.current_primary().map_err(CallError::Failed)?,
        };
        for _ in 0..MAX_REDIRECTS {
            match self.call_at(&addr, deadline, &call).await? {
                Ok(answer) => return Ok((answer, addr)),
                Err(Refusal::NotPrimary {
                    primary: Some(next),
                }) if pinned.is_none() => {
                    tracing::info!(asked = %addr, names = %next, "not primary: following");
                    addr = self.address_of(&next);
                }
                Err(Refusal::NotPrimary { primary: None }) => {
                    return Err(CallError::Failed(ClusterError::NoPrimary));
                }
                Err(refusal) => {
                    if crate::drain::is_draining(&refusal) {
                        self.draining(&addr);
                    }
                    return Err(CallError::Failed(ClusterError::from_refusal(
                        &addr, refusal,
                    )));
                }
            }
        }
        Err(CallError::Failed(ClusterError::PrimaryMoving {
            last: addr,
        }))
    }

    async fn call_at<T, F, Fut>(
        &self,
        addr: &str,
        deadline: Instant,
        call: &F,
    ) -> Result<Result<T, Refusal>, CallError>
    where
        F: Fn(ForwardClient, Context) -> Fut,
        Fut: Future<Output = Result<Result<T, Refusal>, RpcError>>,
    {
        let (client, alive) = self
            .client(addr, deadline)
            .await
            .map_err(CallError::Failed)?;
        let mut ctx = tarpc::context::current();
        ctx.deadline = deadline;
        let sent = Instant::now();
        // tarpc times a request out only once it is written to the transport: one still queued
        // behind a full send buffer (a half-open peer that takes no more data) would wait until
        // TCP gives up, minutes later. Past the deadline it is lost either way (it may have been
        // written just then).
        let answered = tokio::time::timeout_at(deadline.into(), call(client, ctx))
            .await
            .unwrap_or(Err(RpcError::DeadlineExceeded));
        match answered {
            Ok(answer) => Ok(answer),
            Err(RpcError::DeadlineExceeded) => {
                metrics::rpc_error("deadline");
                // A connection that let a deadline pass may be half-open (the peer's host or a
                // NAT lost its state, and no reset came): the next call, such as the question
                // about this one, gets a new connection rather than the same silence. Calls
                // already on this one keep it until they end.
                self.evict(addr, &alive);
                Err(CallError::Lost {
                    addr: addr.into(),
                    reason: format!("no answer within {} ms", sent.elapsed().as_millis()),
                })
            }
            Err(err) => {
                metrics::rpc_error("transport");
                self.evict(addr, &alive);
                Err(CallError::Lost {
                    addr: addr.into(),
                    reason: err.to_string(),
                })
            }
        }
    }

    /// Stops reusing the connection to `addr` whose liveness flag is `alive`, if it is still the
    /// one kept (another call may already have replaced it with a working one).
    fn evict(&self, addr: &str, alive: &Arc<AtomicBool>) {
        let mut connections = self.connections.lock().unwrap();
        if connections
            .get(addr)
            .is_some_and(|conn| Arc::ptr_eq(&conn.alive, alive))
        {
            connections.remove(addr);
        }
    }

    /// A live, authenticated client for `addr`, connecting if there is none. The map is not
    /// locked while connecting, so a dead address never holds up calls to another.
    async fn client(
        &self,
        addr: &str,
        deadline: Instant,
    ) -> Result<(ForwardClient, Arc<AtomicBool>), ClusterError> {
        {
            let mut connections = self.connections.lock().unwrap();
            if let Some(conn) = connections.get(addr) {
                if conn.alive.load(Ordering::Acquire) {
                    return Ok((conn.client.clone(), conn.alive.clone()));
                }
                connections.remove(addr);
            }
        }
        use futures::FutureExt;
        let connecting = self
            .connecting
            .lock()
            .unwrap()
            .entry(addr.to_owned())
            .or_insert_with(|| {
                let began = Instant::now();
                let opening = connect(addr.to_owned(), self.secret.clone(), began);
                (began, opening.boxed().shared())
            })
            .1
            .clone();
        let ours = |entry: Option<&(Instant, Connecting)>| {
            entry.is_some_and(|(_, c)| c.ptr_eq(&connecting))
        };
        let opened = tokio::time::timeout_at(deadline.into(), connecting.clone()).await;
        let mut pending = self.connecting.lock().unwrap();
        if ours(pending.get(addr)) {
            // Done, failed, or past a deadline (a handshake gone silent): the next caller that
            // finds no connection starts a new one.
            pending.remove(addr);
        }
        drop(pending);
        let conn = match opened {
            Ok(result) => result?,
            Err(_) => {
                metrics::rpc_error("connect");
                return Err(ClusterError::PrimaryUnreachable {
                    addr: addr.into(),
                    reason: "connecting took past the deadline".into(),
                });
            }
        };
        let kept = (conn.client.clone(), conn.alive.clone());
        let mut connections = self.connections.lock().unwrap();
        if !connections
            .get(addr)
            .is_some_and(|c| c.alive.load(Ordering::Acquire))
        {
            connections.insert(addr.to_owned(), conn);
        }
        Ok(kept)
    }
}

/// Opens an authenticated connection to `addr`.
async fn connect(
    addr: String,
    secret: Arc<Vec<u8>>,
    opened: Instant,
) -> Result<Connection, ClusterError> {
    let addr = addr.as_str();
    let unreachable = |reason: String| {
        metrics::rpc_error("connect");
        ClusterError::PrimaryUnreachable {
            addr: addr.into(),
            reason,
        }
    };
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    match auth::client(&mut stream, &secret).await {
        Ok(()) => {}
        Err(HandshakeError::Rejected) => {
            metrics::rpc_error("auth");
            return Err(ClusterError::AuthFailed { addr: addr.into() });
        }
        Err(HandshakeError::Io(e)) => return Err(unreachable(format!("handshake: {e}"))),
    }
    let framed = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME_BYTES)
        .new_framed(stream);
    let transport = tarpc::serde_transport::new(framed, Bincode::default());
    let tarpc::client::NewClient { client, dispatch } =
        ForwardClient::new(tarpc::client::Config::default(), transport);
    let alive = Arc::new(AtomicBool::new(true));
    let flag = alive.clone();
    tokio::spawn(async move {
        if let Err(err) = dispatch.await {
            tracing::debug!(error = %err, "RPC connection ended");
        }
        flag.store(false, Ordering::Release);
    });
    Ok(Connection {
        client,
        alive,
        opened,
    })
}
