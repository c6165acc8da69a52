//! The replica's side of forwarding: one authenticated tarpc connection per primary address,
//! opened on demand, every call under a deadline, "not primary" answers followed.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tarpc::client::RpcError;
use tarpc::context::Context;
use tarpc::tokio_serde::formats::Bincode;
use tokio_util::codec::LengthDelimitedCodec;

use super::ClusterError;
use super::auth;
use super::litefs::{Follower, Role};
use super::metrics;
use super::rpc::{ForwardClient, MAX_FRAME_BYTES, Refusal};

/// How many times a call follows "not primary, ask X" before giving up.
const MAX_REDIRECTS: usize = 3;

struct Connection {
    client: ForwardClient,
    /// Cleared when the connection's dispatch task ends, so a dead connection is not reused.
    alive: Arc<AtomicBool>,
}

/// Sends calls to the primary.
pub struct Forwarder {
    follower: Arc<Follower>,
    /// `{primary}` is replaced by the primary's lease hostname.
    template: String,
    secret: Arc<Vec<u8>>,
    pub timeout: Duration,
    connections: tokio::sync::Mutex<HashMap<String, Connection>>,
}

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
            connections: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    fn address_of(&self, primary: &str) -> Addr {
        self.template.replace("{primary}", primary)
    }

    fn current_primary(&self) -> Result<Addr, ClusterError> {
        match self.follower.role() {
            Role::Replica { primary } => Ok(self.address_of(&primary)),
            // The lease moved to us while the call was being routed: the caller runs it locally
            // next time; this once, go through our own RPC server like any other node would.
            Role::Primary | Role::Standalone => Err(ClusterError::PrimaryMoving {
                last: "this node".into(),
            }),
            Role::NoPrimary => Err(ClusterError::NoPrimary),
        }
    }

    /// Calls the current primary, following "not primary" answers. Returns the answer and the
    /// address that gave it.
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<(T, Addr), ClusterError>
    where
        F: Fn(ForwardClient, Context) -> Fut,
        Fut: Future<Output = Result<Result<T, Refusal>, RpcError>>,
    {
        self.call_with_retry(false, call).await
    }

    /// Like [`Self::call`], for a call the primary deduplicates (an idempotency key): when the
    /// connection fails or the answer does not come, it is sent once more, on a new connection,
    /// within the same overall deadline. The first attempt gets half the time.
    pub async fn call_idempotent<T, F, Fut>(&self, call: F) -> Result<(T, Addr), ClusterError>
    where
        F: Fn(ForwardClient, Context) -> Fut,
        Fut: Future<Output = Result<Result<T, Refusal>, RpcError>>,
    {
        self.call_with_retry(true, call).await
    }

    async fn call_with_retry<T, F, Fut>(
        &self,
        mut retry: bool,
        call: F,
    ) -> Result<(T, Addr), ClusterError>
    where
        F: Fn(ForwardClient, Context) -> Fut,
        Fut: Future<Output = Result<Result<T, Refusal>, RpcError>>,
    {
        let deadline = Instant::now() + self.timeout;
        let mut addr = self.current_primary()?;
        for _ in 0..MAX_REDIRECTS {
            let attempt_deadline = if retry {
                Instant::now() + deadline.saturating_duration_since(Instant::now()) / 2
            } else {
                deadline
            };
            let answer = match self.call_at(&addr, attempt_deadline, &call).await {
                Err(
                    ClusterError::DeadlineExceeded { .. } | ClusterError::PrimaryUnreachable { .. },
                ) if retry => {
                    retry = false;
                    tracing::warn!(primary = %addr, "no answer from the primary: sending the same write again");
                    self.call_at(&addr, deadline, &call).await?
                }
                other => other?,
            };
            match answer {
                Ok(answer) => return Ok((answer, addr)),
                Err(Refusal::NotPrimary {
                    primary: Some(next),
                }) => {
                    tracing::info!(asked = %addr, names = %next, "not primary: following");
                    addr = self.address_of(&next);
                }
                Err(Refusal::NotPrimary { primary: None }) => return Err(ClusterError::NoPrimary),
                Err(Refusal::NoSuchSession { session }) => {
                    return Err(ClusterError::SessionLost(format!(
                        "session {session} not found"
                    )));
                }
                Err(Refusal::Unavailable(reason)) => {
                    return Err(ClusterError::PrimaryUnreachable { addr, reason });
                }
            }
        }
        Err(ClusterError::PrimaryMoving { last: addr })
    }

    /// Calls one address (remote transactions stay with the primary that opened them).
    pub async fn call_pinned<T, F, Fut>(&self, addr: &str, call: F) -> Result<T, ClusterError>
    where
        F: Fn(ForwardClient, Context) -> Fut,
        Fut: Future<Output = Result<Result<T, Refusal>, RpcError>>,
    {
        let answer = self
            .call_at(addr, Instant::now() + self.timeout, &call)
            .await?;
        pinned_answer(addr, answer)
    }

    /// Like [`Self::call_pinned`], for a call the primary answers the same way twice (a commit):
    /// sent once more when no answer comes, within the same deadline.
    pub async fn call_pinned_idempotent<T, F, Fut>(
        &self,
        addr: &str,
        call: F,
    ) -> Result<T, ClusterError>
    where
        F: Fn(ForwardClient, Context) -> Fut,
        Fut: Future<Output = Result<Result<T, Refusal>, RpcError>>,
    {
        let deadline = Instant::now() + self.timeout;
        let first = Instant::now() + self.timeout / 2;
        let answer = match self.call_at(addr, first, &call).await {
            Err(
                ClusterError::DeadlineExceeded { .. } | ClusterError::PrimaryUnreachable { .. },
            ) => {
                tracing::warn!(primary = %addr, "no answer from the primary: sending the same call again");
                self.call_at(addr, deadline, &call).await?
            }
            other => other?,
        };
        pinned_answer(addr, answer)
    }

    async fn call_at<T, F, Fut>(
        &self,
        addr: &str,
        deadline: Instant,
        call: &F,
    ) -> Result<Result<T, Refusal>, ClusterError>
    where
        F: Fn(ForwardClient, Context) -> Fut,
        Fut: Future<Output = Result<Result<T, Refusal>, RpcError>>,
    {
        let client = self.client(addr, deadline).await?;
        let mut ctx = tarpc::context::current();
        ctx.deadline = deadline;
        match call(client, ctx).await {
            Ok(answer) => Ok(answer),
            Err(RpcError::DeadlineExceeded) => {
                metrics::rpc_error("deadline");
                Err(ClusterError::DeadlineExceeded {
                    addr: addr.into(),
                    timeout_ms: self.timeout.as_millis() as u64,
                })
            }
            Err(err) => {
                metrics::rpc_error("transport");
                self.connections.lock().await.remove(addr);
                Err(ClusterError::PrimaryUnreachable {
                    addr: addr.into(),
                    reason: err.to_string(),
                })
            }
        }
    }

    /// A live, authenticated client for `addr`, connecting if there is none.
    async fn client(&self, addr: &str, deadline: Instant) -> Result<ForwardClient, ClusterError> {
        let mut connections = self.connections.lock().await;
        if let Some(conn) = connections.get(addr) {
            if conn.alive.load(Ordering::Acquire) {
                return Ok(conn.client.clone());
            }
            connections.remove(addr);
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let conn = match tokio::time::timeout(remaining, self.connect(addr)).await {
            Ok(result) => result?,
            Err(_) => {
                metrics::rpc_error("deadline");
                return Err(ClusterError::DeadlineExceeded {
                    addr: addr.into(),
                    timeout_ms: self.timeout.as_millis() as u64,
                });
            }
        };
        let client = conn.client.clone();
        connections.insert(addr.to_owned(), conn);
        Ok(client)
    }

    async fn connect(&self, addr: &str) -> Result<Connection, ClusterError> {
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
        match auth::client(&mut stream, &self.secret).await {
            Ok(true) => {}
            Ok(false) => {
                metrics::rpc_error("auth");
                return Err(ClusterError::AuthFailed { addr: addr.into() });
            }
            Err(e) => return Err(unreachable(e.to_string())),
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
        Ok(Connection { client, alive })
    }
}

/// The answer of a call pinned to `addr`, with refusals as errors.
fn pinned_answer<T>(addr: &str, answer: Result<T, Refusal>) -> Result<T, ClusterError> {
    match answer {
        Ok(answer) => Ok(answer),
        Err(Refusal::NoSuchSession { session }) => Err(ClusterError::SessionLost(format!(
            "session {session} is gone on {addr} (idle past its lease, or the primary restarted)"
        ))),
        Err(Refusal::NotPrimary { .. }) => Err(ClusterError::SessionLost(format!(
            "{addr} is no longer primary"
        ))),
        Err(Refusal::Unavailable(reason)) => Err(ClusterError::PrimaryUnreachable {
            addr: addr.into(),
            reason,
        }),
    }
}
