//! The primary's side of forwarding: runs forwarded statements through the one [`Writer`], holds
//! remote transactions as sessions, answers "what became of this key", and rolls back any session
//! left idle past its lease or open past its lifetime, so a vanished replica never keeps the
//! writer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use sqlx::pool::PoolConnection;
use sqlx::{Executor as _, Sqlite};
use tarpc::context::Context;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tokio::net::TcpListener;
use tokio_util::codec::LengthDelimitedCodec;

use super::drain::{Drain, Work};
use super::litefs::{Follower, Role};
use super::procedure::{self, ProcedureCall, ProcedureOutcome, Procedures};
use super::rpc::{Forward, MAX_FRAME_BYTES, Refusal, Resolution};
use super::statement::{self, Kind};
use super::wire::{self, Outcome, Reply, Request};
use super::writer::{self, Commit, Method, Native, Sql, Writer, WriterGuard, Written};
use super::{auth, dedup};

/// Limits on remote transactions.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    /// A session idle this long is rolled back.
    pub lease: Duration,
    /// A session open this long is rolled back, busy or not.
    pub max_lifetime: Duration,
    /// Sessions open or waiting for the writer at once.
    pub max_sessions: usize,
}

/// One remote transaction.
struct Session {
    state: tokio::sync::Mutex<State>,
    created: Instant,
    /// Last time a call finished with the session; read by the reaper without waiting for a
    /// statement in progress.
    last_used: Mutex<Instant>,
    /// When the session ended; it is kept a while, so that a late call learns what became of it.
    ended: Mutex<Option<Instant>>,
}

enum State {
    Open {
        conn: PoolConnection<Sqlite>,
        /// The pools' generation the connection came from (see [`super::pools`]).
        generation: u64,
        _writer: WriterGuard,
        /// An open transaction is work a draining node waits for.
        _work: Work,
    },
    /// Committed (or its COMMIT failed): what the commit answered, for a commit that arrives twice.
    Committed(Outcome),
    /// Rolled back; says why.
    Ended(&'static str),
}

/// How long an ended session is remembered.
const ENDED_KEPT: Duration = Duration::from_secs(60);

/// Runs what replicas forward. Shared by every RPC connection.
pub struct Executor {
    writer: Arc<Writer>,
    /// `None` on a standalone node (always primary).
    follower: Option<Arc<Follower>>,
    sessions: Mutex<HashMap<u64, Arc<Session>>>,
    /// Begins waiting for the writer: with the open sessions, what the cap counts.
    beginning: std::sync::atomic::AtomicUsize,
    limits: SessionLimits,
    faults: Arc<Faults>,
    /// The write procedures this node runs for replicas.
    procedures: Arc<Procedures>,
    /// The work in progress, for a graceful stop.
    pub(crate) drain: Arc<Drain>,
}

/// Failures a test can inject on the primary's side.
#[derive(Debug, Default)]
pub struct Faults {
    /// The next this many forwarded writes, remote commits or procedure calls commit, but their
    /// reply is never sent, as if the network had lost it.
    pub lose_replies: std::sync::atomic::AtomicUsize,
    /// RPC calls received so far, every method counted: the tests count round trips with it.
    pub calls_received: std::sync::atomic::AtomicUsize,
    /// The next this many questions about a lost answer are refused, as a primary that is
    /// restarting cannot answer them.
    pub refuse_resolves: std::sync::atomic::AtomicUsize,
}

impl Faults {
    fn lose_reply(&self) -> bool {
        take_one(&self.lose_replies)
    }

    fn refuse_resolve(&self) -> bool {
        take_one(&self.refuse_resolves)
    }
}

/// Takes one from `count` if it is not 0; whether it did.
fn take_one(count: &std::sync::atomic::AtomicUsize) -> bool {
    count
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok()
}

impl Executor {
    pub fn new(
        writer: Arc<Writer>,
        follower: Option<Arc<Follower>>,
        limits: SessionLimits,
        faults: Arc<Faults>,
        procedures: Arc<Procedures>,
    ) -> Arc<Self> {
        let executor = Arc::new(Executor {
            writer,
            follower,
            sessions: Mutex::new(HashMap::new()),
            beginning: std::sync::atomic::AtomicUsize::new(0),
            limits,
            faults,
            procedures,
            drain: Drain::new(),
        });
        let reaper = Arc::downgrade(&executor);
        let every = (executor.limits.lease / 10).max(Duration::from_millis(20));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            while let Some(executor) = reaper.upgrade() {
                executor.reap().await;
                drop(executor);
                tick.tick().await;
            }
        });
        executor
    }

    fn check_primary(&self) -> Result<(), Refusal> {
        match self.follower.as_ref().map(|f| f.role()) {
            None | Some(Role::Primary) | Some(Role::Standalone) => Ok(()),
            Some(Role::Replica { primary }) => Err(Refusal::NotPrimary {
                primary: Some(primary),
            }),
            Some(Role::NoPrimary) => Err(Refusal::NotPrimary { primary: None }),
        }
    }

    /// Whether the lease has left this node, and where to: as LiteFS says right now (its
    /// `.primary` file, which cannot lag behind a lease that just moved as the role can), or as
    /// the role says.
    fn moved_away(&self) -> Option<Refusal> {
        let follower = self.follower.as_ref()?;
        if let Some(primary) = follower.mount.named_primary() {
            return Some(Refusal::NotPrimary {
                primary: (!primary.is_empty()).then_some(primary),
            });
        }
        self.check_primary().err()
    }

    async fn run(
        &self,
        key: u128,
        request: Request,
        deadline: Instant,
    ) -> Result<Outcome, Refusal> {
        self.check_primary()?;
        let (sql, method) = split(request);
        let phase = phase_of(method);
        let pools = self.pools()?;
        let kind = pools.classifier.classify(sql.text()).await;
        if let Some(why) = statement::refusal(&kind, false) {
            return Err(Refusal::Refused(why));
        }
        let written = match kind {
            Kind::Read => {
                let mut conn = pools
                    .ro
                    .get_sqlite_connection_pool()
                    .acquire()
                    .await
                    .map_err(|e| Refusal::Unavailable(e.to_string()))?;
                Written::Fresh(writer::run_native(&mut conn, &sql, method).await, None)
            }
            Kind::WriteAlone => {
                self.writer
                    .autocommit(sql, method, None, true, deadline)
                    .await?
            }
            _ => {
                self.writer
                    .autocommit(sql, method, Some(key), false, deadline)
                    .await?
            }
        };
        if let Written::Unconfirmed(why) = &written {
            return withheld(why);
        }
        // LiteFS refused the write because the lease left this node while it ran: nothing
        // committed and its key is unspent, so the replica sends it on to the new primary.
        if let Written::Fresh(Err(err), _) = &written
            && crate::connection::refused_by_litefs(err)
            && let Some(moved) = self.moved_away()
        {
            tracing::info!(error = %err, "a forwarded write met the lease moving away: sent on");
            return Err(moved);
        }
        Ok(outcome(written, phase))
    }

    async fn begin(&self, deadline: Instant, work: Work) -> Result<u64, Refusal> {
        self.check_primary()?;
        // Counted and checked as one step, so that concurrent begins cannot all pass the check.
        let limit = self.limits.max_sessions;
        let open = self.open_sessions();
        if self
            .beginning
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |waiting| {
                (open + waiting < limit).then_some(waiting + 1)
            })
            .is_err()
        {
            return Err(Refusal::TooManyTransactions { limit });
        }
        let guard = self.writer.acquire(deadline).await;
        self.beginning.fetch_sub(1, Ordering::AcqRel);
        let guard = guard?;
        if Instant::now() >= deadline {
            return Err(Refusal::Expired);
        }
        let (mut conn, generation) = self.writer.connection().await?;
        if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
            writer::release(conn).await;
            return Err(Refusal::Unavailable(format!("cannot begin: {e}")));
        }
        // Random, not sequential: after a restart of the primary, a replica still holding an old
        // id must not land in someone else's new transaction.
        let id = rand::random::<u64>();
        let now = Instant::now();
        let session = Arc::new(Session {
            state: tokio::sync::Mutex::new(State::Open {
                conn,
                generation,
                _writer: guard,
                _work: work,
            }),
            created: now,
            last_used: Mutex::new(now),
            ended: Mutex::new(None),
        });
        self.sessions.lock().unwrap().insert(id, session);
        Ok(id)
    }

    fn pools(&self) -> Result<Arc<super::pools::Pools>, Refusal> {
        self.writer
            .databases
            .pools()
            .map_err(|e| Refusal::Unavailable(e.to_string()))
    }

    /// The session `id`, if LiteFS is here: while it is away a session's connection must not be
    /// touched (the session stays as it is until LiteFS is back).
    fn session(&self, id: u64) -> Result<Arc<Session>, Refusal> {
        self.pools()?;
        self.sessions
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .ok_or(Refusal::NoSuchSession { session: id })
    }

    fn open_sessions(&self) -> usize {
        self.sessions
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.ended.lock().unwrap().is_none())
            .count()
    }

    /// Ends an open session: rolls it back (or, on abandoned pools, leaks its connection without
    /// touching it) and releases the writer. A session that has ended already keeps its state: a
    /// rollback that comes after the COMMIT leaves it committed, with the COMMIT's answer kept.
    async fn end(&self, session: &Session, state: &mut State, why: &'static str) {
        if !matches!(state, State::Open { .. }) {
            return;
        }
        if let State::Open {
            conn, generation, ..
        } = std::mem::replace(state, State::Ended(why))
        {
            if generation == self.writer.databases.generation() {
                writer::release(conn).await;
            } else {
                std::mem::forget(conn.detach());
            }
        }
        *session.ended.lock().unwrap() = Some(Instant::now());
    }

    /// Runs a statement in session `id`; a statement still running at `deadline` (its caller's)
    /// is interrupted.
    async fn run_in(
        &self,
        id: u64,
        request: Request,
        deadline: Instant,
    ) -> Result<Outcome, Refusal> {
        let session = self.session(id)?;
        self.run_in_session(id, session, request, deadline).await
    }

    /// Runs a statement in `session`, which may have ended since it was looked up: its state,
    /// read under its lock, decides.
    async fn run_in_session(
        &self,
        id: u64,
        session: Arc<Session>,
        request: Request,
        deadline: Instant,
    ) -> Result<Outcome, Refusal> {
        let mut state = session.state.lock().await;
        let (conn, generation) = match &mut *state {
            State::Open {
                conn, generation, ..
            } => (conn, generation),
            ended => return Err(gone(id, ended)),
        };
        if *generation != self.writer.databases.generation() {
            tracing::warn!(session = id, "remote transaction lost to a LiteFS remount");
            self.end(&session, &mut state, "LiteFS remounted").await;
            return Err(Refusal::NoSuchSession { session: id });
        }
        let (sql, method) = split(request);
        if let Some(why) = statement::refusal(&statement::classify_lexically(sql.text()), true) {
            return Err(Refusal::Refused(why));
        }
        // A statement still running when its caller gives up, or when the session's lifetime
        // ends, is interrupted: nobody waits for its answer, and it holds the one writer. (An
        // interrupted write rolls its transaction back, which ends the session below.)
        let stop = deadline.min(session.created + self.limits.max_lifetime);
        let alarm = writer::Alarm::set(conn, stop).await;
        let result = writer::run_native(conn, &sql, method).await;
        alarm.unset();
        if !writer::in_transaction(conn).await {
            // The statement ended the transaction itself (a trigger's RAISE(ROLLBACK), INSERT OR
            // ROLLBACK): it was rolled back, and no later statement may run outside it.
            self.end(&session, &mut state, "a statement rolled it back")
                .await;
        }
        *session.last_used.lock().unwrap() = Instant::now();
        Ok(outcome(Written::Fresh(result, None), phase_of(method)))
    }

    async fn commit(&self, id: u64, key: u128, deadline: Instant) -> Result<Outcome, Refusal> {
        let session = self.session(id)?;
        let mut state = session.state.lock().await;
        let (conn, generation) = match &mut *state {
            State::Committed(outcome) => return Ok(outcome.clone()),
            ended @ State::Ended(_) => return Err(gone(id, ended)),
            State::Open {
                conn, generation, ..
            } => (conn, *generation),
        };
        if generation != self.writer.databases.generation() {
            self.end(&session, &mut state, "LiteFS remounted").await;
            return Err(Refusal::NoSuchSession { session: id });
        }
        if Instant::now() >= deadline {
            self.end(&session, &mut state, "its commit came past the deadline")
                .await;
            return Err(Refusal::Expired);
        }
        let done = Reply::Exec {
            rows_affected: 0,
            last_insert_rowid: 0,
        };
        // Inside the session's transaction: marked created only if the COMMIT stands.
        let created = match self.writer.create_key_table_in(conn, generation).await {
            Ok(created) => created,
            Err(e) => {
                self.end(&session, &mut state, "its key could not be stored")
                    .await;
                return Err(e);
            }
        };
        if let Err(e) = dedup::store(conn, key, Some(&done)).await {
            self.end(&session, &mut state, "its key could not be stored")
                .await;
            return Err(Refusal::Unavailable(format!("cannot store the key: {e}")));
        }
        let outcome = match self.writer.commit(conn).await {
            Commit::Done(pos) => {
                if created {
                    self.writer.mark_key_table_ready(generation);
                }
                Outcome {
                    result: Ok(done),
                    pos,
                }
            }
            Commit::Failed(err) => Outcome {
                result: Err(wire::failure_from_sqlx(wire::ErrorPhase::Exec, &err)),
                pos: None,
            },
            Commit::Unconfirmed(why) => {
                self.end(&session, &mut state, "committed, unconfirmed by LiteFS")
                    .await;
                drop(state);
                return withheld(&why);
            }
        };
        self.end(&session, &mut state, "committed").await;
        *state = State::Committed(outcome.clone());
        Ok(outcome)
    }

    async fn rollback(&self, id: u64) -> Result<(), Refusal> {
        self.pools()?;
        let Ok(session) = self.session(id) else {
            return Ok(()); // gone already: rolled back by its lease, or by a restart
        };
        let mut state = session.state.lock().await;
        self.end(&session, &mut state, "rolled back").await;
        Ok(())
    }

    /// Forgets sessions that ended more than `kept` ago. Locks are always taken in this order:
    /// the table, then a session's `ended` (a reaper that held `ended` while taking the table
    /// deadlocked against `open_sessions`, found by the fault lab's soak).
    fn forget_ended(&self, kept: Duration) {
        self.sessions.lock().unwrap().retain(|_, s| {
            s.ended
                .lock()
                .unwrap()
                .is_none_or(|at| at.elapsed() <= kept)
        });
    }

    /// Rolls back sessions past their lease or lifetime; forgets ended ones after a while.
    async fn reap(&self) {
        if self.writer.databases.suspended() {
            return;
        }
        self.forget_ended(ENDED_KEPT);
        let sessions: Vec<(u64, Arc<Session>)> = self
            .sessions
            .lock()
            .unwrap()
            .iter()
            .map(|(id, s)| (*id, s.clone()))
            .collect();
        for (id, session) in sessions {
            let ended = session.ended.lock().unwrap().is_some();
            if ended {
                continue;
            }
            let idle = session.last_used.lock().unwrap().elapsed() > self.limits.lease;
            let old = session.created.elapsed() > self.limits.max_lifetime;
            if !(idle || old) {
                continue;
            }
            // A statement in progress holds the state: the session is not idle, try next time.
            let Ok(mut state) = session.state.try_lock() else {
                continue;
            };
            let why = if old {
                "open past its maximum lifetime"
            } else {
                "idle past its lease"
            };
            tracing::warn!(session = id, "remote transaction {why}: rolled back");
            self.end(&session, &mut state, why).await;
        }
    }
}

/// The refusal for a call to a session that has ended, with why in the log.
fn gone(id: u64, state: &State) -> Refusal {
    let why = match state {
        State::Ended(why) => why,
        _ => "committed",
    };
    tracing::info!(session = id, why, "a call for an ended remote transaction");
    Refusal::NoSuchSession { session: id }
}

fn split(request: Request) -> (Sql, Method) {
    match request {
        Request::Execute(stmt) => (Sql::Wire(stmt), Method::Execute),
        Request::ExecuteUnprepared(sql) => (Sql::Raw(sql), Method::Execute),
        Request::QueryOne(stmt) => (Sql::Wire(stmt), Method::QueryOne),
        Request::QueryAll(stmt) => (Sql::Wire(stmt), Method::QueryAll),
    }
}

fn phase_of(method: Method) -> wire::ErrorPhase {
    match method {
        Method::Execute => wire::ErrorPhase::Exec,
        Method::QueryOne | Method::QueryAll => wire::ErrorPhase::Query,
    }
}

/// Never answers a call whose write's outcome is unknown here (LiteFS stopped as it committed,
/// see `Writer::commit`): no answer is the one true thing to say. The replica's deadline passes,
/// and it asks about the write's key (`resolve`) once LiteFS is back, which is definite, or
/// reports the outcome unknown. The task ends after [`MAX_DEADLINE`], when no caller is listening
/// any more: what it returns then is never read.
async fn withhold_answer<T>(why: &str) -> Result<T, Refusal> {
    tracing::warn!(%why, "withholding the answer to a write whose outcome is unknown");
    tokio::time::sleep(MAX_DEADLINE).await;
    Err(Refusal::Unavailable(format!("unanswered: {why}")))
}

/// Starts [`withhold_answer`] from a call's detached work: the work ends at once (so a drain stops
/// counting it: nothing of it runs any more), and [`detached`] withholds the answer.
pub(crate) fn withheld<T>(why: &str) -> Result<T, Refusal> {
    Err(Refusal::Unavailable(format!("{WITHHELD}{why}")))
}

/// What [`withheld`] marks its refusal with; never sent.
const WITHHELD: &str = "withheld: ";

/// The wire form of a write's result.
fn outcome(written: Written, phase: wire::ErrorPhase) -> Outcome {
    let fail = |e: &sqlx::Error| wire::failure_from_sqlx(phase, e);
    match written {
        Written::Fresh(Ok(native), pos) => Outcome {
            result: Native::to_reply(&native).map_err(|e| fail(&e)),
            pos,
        },
        Written::Fresh(Err(err), _) => Outcome {
            result: Err(fail(&err)),
            pos: None,
        },
        Written::Stored(reply, pos) => Outcome {
            result: Ok(reply),
            pos,
        },
        Written::Unconfirmed(_) => unreachable!("an unconfirmed write is never answered"),
    }
}

#[derive(Clone)]
struct ForwardServer(Arc<Executor>);

/// The longest a caller's deadline is honoured, whatever it asks.
const MAX_DEADLINE: Duration = Duration::from_secs(60);

/// The caller's deadline, less a margin for the answer to travel back: work given up at this
/// deadline is reported as refused before the caller stops listening.
fn deadline_of(ctx: &Context) -> Instant {
    let now = Instant::now();
    let remaining = ctx
        .deadline
        .saturating_duration_since(now)
        .min(MAX_DEADLINE);
    now + remaining - (remaining / 10).min(Duration::from_millis(200))
}

/// Runs a call's database work in its own task: tarpc drops a call's future when its deadline
/// passes, and dropped halfway the work could leave a session's state half-changed. Detached, it
/// always finishes (and itself gives up at the deadline before committing).
///
/// Unless the task itself is cut short: cancelled (the runtime shutting down as the app stops)
/// or panicked. It may have committed by then, so no refusal is answered (a refusal says nothing
/// committed): no answer, and the replica asks about the write's key instead.
async fn detached<T: Send + 'static>(
    work: impl Future<Output = Result<T, Refusal>> + Send + 'static,
) -> Result<T, Refusal> {
    match tokio::spawn(work).await {
        Ok(Err(Refusal::Unavailable(why))) if why.starts_with(WITHHELD) => {
            withhold_answer(&why[WITHHELD.len()..]).await
        }
        Ok(result) => result,
        Err(err) => {
            withhold_answer(&format!("the primary's task stopped before its end: {err}")).await
        }
    }
}

/// [`detached`] for work that commits nothing (a session's BEGIN, statement or ROLLBACK): cut
/// short, it is refused at once, which is true.
async fn detached_no_commit<T: Send + 'static>(
    work: impl Future<Output = Result<T, Refusal>> + Send + 'static,
) -> Result<T, Refusal> {
    tokio::spawn(work).await.unwrap_or_else(|e| {
        Err(Refusal::Unavailable(format!(
            "the primary's task failed: {e}"
        )))
    })
}

impl ForwardServer {
    async fn lose_reply_maybe(&self) {
        if self.0.faults.lose_reply() {
            tracing::warn!("fault injected: the reply to a write is lost");
            std::future::pending::<()>().await;
        }
    }
}

/// Every call is counted as work while it runs (see [`crate::drain`]): new work (a write, a
/// BEGIN, a procedure) is refused once the node drains; work that continues what was begun, and
/// the question about a lost answer, are still taken.
impl Forward for ForwardServer {
    async fn run(self, ctx: Context, key: u128, request: Request) -> Result<Outcome, Refusal> {
        // A node that is not primary names the primary, draining or not.
        self.0.check_primary()?;
        let work = self.0.drain.new_work()?;
        let executor = self.0.clone();
        let deadline = deadline_of(&ctx);
        let outcome = detached(async move {
            let _work = work;
            executor.run(key, request, deadline).await
        })
        .await;
        self.lose_reply_maybe().await;
        outcome
    }
    async fn resolve(self, ctx: Context, key: u128) -> Result<Resolution, Refusal> {
        let work = self.0.drain.continued_work();
        if self.0.faults.refuse_resolve() {
            tracing::warn!("fault injected: a question about a lost answer is refused");
            return Err(Refusal::Unavailable(
                "fault injected: cannot answer yet".into(),
            ));
        }
        self.0.check_primary()?;
        let deadline = deadline_of(&ctx);
        // Counted until the answer is stored, even if the asker gives up meanwhile.
        detached_no_commit(async move {
            let _work = work;
            self.0.writer.resolve(key, deadline).await
        })
        .await
    }
    async fn begin(self, ctx: Context) -> Result<u64, Refusal> {
        self.0.check_primary()?;
        // Held by the transaction once it is open, until it ends.
        let work = self.0.drain.new_work()?;
        let deadline = deadline_of(&ctx);
        detached_no_commit(async move { self.0.begin(deadline, work).await }).await
    }
    async fn run_in(
        self,
        ctx: Context,
        session: u64,
        request: Request,
    ) -> Result<Outcome, Refusal> {
        let work = self.0.drain.continued_work();
        let deadline = deadline_of(&ctx);
        detached_no_commit(async move {
            let _work = work;
            self.0.run_in(session, request, deadline).await
        })
        .await
    }
    async fn commit(self, ctx: Context, session: u64, key: u128) -> Result<Outcome, Refusal> {
        let work = self.0.drain.continued_work();
        let executor = self.0.clone();
        let deadline = deadline_of(&ctx);
        let outcome = detached(async move {
            let _work = work;
            executor.commit(session, key, deadline).await
        })
        .await;
        self.lose_reply_maybe().await;
        outcome
    }
    async fn rollback(self, _: Context, session: u64) -> Result<(), Refusal> {
        let work = self.0.drain.continued_work();
        detached_no_commit(async move {
            let _work = work;
            self.0.rollback(session).await
        })
        .await
    }
    async fn call(
        self,
        ctx: Context,
        key: u128,
        call: ProcedureCall,
    ) -> Result<ProcedureOutcome, Refusal> {
        self.0.check_primary()?;
        let work = self.0.drain.new_work()?;
        let executor = self.0.clone();
        let deadline = deadline_of(&ctx);
        let outcome = detached(async move {
            let _work = work;
            let (writer, procedures) = (&executor.writer, &executor.procedures);
            let moved_away = || executor.moved_away();
            procedure::run(writer, procedures, key, call, deadline, moved_away).await
        })
        .await;
        self.lose_reply_maybe().await;
        outcome
    }
}

/// Connections that have not finished the handshake, at most.
const MAX_UNAUTHENTICATED: usize = 64;

/// Accepts RPC connections until the process ends, or until a drain has seen the work done
/// (a replica then fails to connect: nothing sent, nothing ran). Each must pass the secret
/// handshake first; at most [`MAX_UNAUTHENTICATED`] may be trying at once.
pub async fn serve(listener: TcpListener, executor: Arc<Executor>, secret: Arc<Vec<u8>>) {
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_UNAUTHENTICATED));
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = executor.drain.work_done() => return,
        };
        let (mut stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = Duration::from_millis(10);
                accepted
            }
            Err(err) => {
                // EMFILE and friends: retrying at once would spin.
                tracing::warn!(error = %err, ?backoff, "RPC accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "too many RPC handshakes in progress: connection closed");
            continue;
        };
        let executor = executor.clone();
        let secret = secret.clone();
        // A connection setting up counts as work for a drain: its first call may be on its way.
        let setting_up = executor.drain.continued_work();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let handshake =
                tokio::time::timeout(auth::HANDSHAKE_TIMEOUT, auth::server(&mut stream, &secret))
                    .await;
            drop(permit);
            // Set up: the quiet a drain waits for starts now.
            drop(setting_up);
            drop(executor.drain.continued_work());
            match handshake {
                Ok(Ok(())) => {}
                Ok(Err(auth::HandshakeError::Rejected)) => {
                    tracing::warn!(%peer, "RPC peer does not know the cluster secret: connection closed, nothing executed");
                    return;
                }
                Ok(Err(auth::HandshakeError::Io(err))) => {
                    tracing::info!(%peer, error = %err, "RPC handshake broken off");
                    return;
                }
                Err(_) => {
                    tracing::info!(%peer, "RPC handshake timed out");
                    return;
                }
            }
            let framed = LengthDelimitedCodec::builder()
                .max_frame_length(MAX_FRAME_BYTES)
                .new_framed(stream);
            let transport = tarpc::serde_transport::new(framed, Bincode::default());
            let (_open, transport) = executor.drain.connection(transport);
            let faults = executor.faults.clone();
            BaseChannel::with_defaults(transport)
                .execute(ForwardServer(executor).serve())
                .for_each(|call| {
                    faults.calls_received.fetch_add(1, Ordering::Relaxed);
                    async move {
                        tokio::spawn(call);
                    }
                })
                .await;
        });
    }
}

/// Resolves `host:port` (a name such as `fly-local-6pn` is looked up) to one address.
pub async fn resolve(addr: &str) -> std::io::Result<SocketAddr> {
    tokio::net::lookup_host(addr).await?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{addr} resolves to nothing"),
        )
    })
}

#[cfg(test)]
mod hardening_tests {
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
            let (executor, writer) = executor(SessionLimits {
                lease: Duration::from_secs(60),
                max_lifetime: Duration::from_secs(60),
                max_sessions: 64,
            });
            super::fixtures::create_t(&writer).await;
            let id = executor
                .begin(deadline(), executor.drain.continued_work())
                .await
                .unwrap();
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
                        let asked =
                            tokio::spawn(async move { asking.resolve(key, deadline()).await });
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
        let (executor, writer) = executor(SessionLimits {
            lease: Duration::from_secs(60),
            max_lifetime: Duration::from_secs(60),
            max_sessions: 64,
        });
        let deadline = || Instant::now() + Duration::from_secs(5);
        super::fixtures::create_t(&writer).await;
        let id = executor
            .begin(deadline(), executor.drain.continued_work())
            .await
            .unwrap();
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
        let (executor, writer) = executor(SessionLimits {
            lease: Duration::from_secs(60),
            max_lifetime: Duration::from_secs(60),
            max_sessions: 64,
        });
        super::fixtures::create_t(&writer).await;
        let id = executor
            .begin(
                Instant::now() + Duration::from_secs(2),
                executor.drain.continued_work(),
            )
            .await
            .unwrap();
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::litefs::Mount;
    use crate::pools::Databases;

    /// A call's work cut short (here a panic; a cancelled task at shutdown takes the same path)
    /// may have committed: it must get no answer, never a refusal, which would say it did not.
    #[tokio::test]
    async fn work_cut_short_is_not_answered_as_refused() {
        let cut_short = detached::<()>(async { panic!("cut short after its COMMIT") });
        let answered = tokio::time::timeout(Duration::from_millis(200), cut_short).await;
        assert!(
            answered.is_err(),
            "work that stopped halfway was answered {answered:?}"
        );
    }

    /// A forwarded write that LiteFS refuses (SQLite's read-only error, as on a node that just
    /// lost the lease) is answered "not primary, ask node2" once LiteFS names another primary:
    /// nothing committed, so the replica sends it on with the same key. While this node is still
    /// primary the same error is the write's own answer.
    #[tokio::test]
    async fn a_write_refused_by_litefs_after_the_lease_moved_is_sent_on() {
        let (dir, options) = writer::temp_database("server-moved");
        let path = dir.join("t.db");
        {
            use sqlx::ConnectOptions;
            let mut conn = options.connect().await.unwrap();
            conn.execute("CREATE TABLE t(x)").await.unwrap();
            conn.execute(dedup::CREATE_TABLE).await.unwrap();
        }
        // Every write fails as LiteFS makes it fail on a node that is not primary.
        let databases = Arc::new(Databases::open(&path, options.pragma("query_only", "ON")));
        let follower = Arc::new(Follower::new(Mount {
            dir: dir.clone(),
            db_name: "t.db".into(),
        }));
        follower.set_role(true, "");
        let writer = Arc::new(Writer::new(databases, Some(follower.clone()), 64, true));
        let limits = SessionLimits {
            lease: Duration::from_secs(5),
            max_lifetime: Duration::from_secs(30),
            max_sessions: 4,
        };
        let executor = Executor::new(
            writer,
            Some(follower),
            limits,
            Arc::default(),
            Arc::new(Procedures::new()),
        );
        let insert = || Request::ExecuteUnprepared("INSERT INTO t VALUES (1)".into());
        let deadline = || Instant::now() + Duration::from_secs(5);

        let here = executor.run(1, insert(), deadline()).await;
        assert!(
            matches!(&here, Ok(Outcome { result: Err(_), .. })),
            "still primary: the write's own error, {here:?}"
        );
        std::fs::write(dir.join(".primary"), "node2\n").unwrap();
        let moved = executor.run(2, insert(), deadline()).await;
        assert_eq!(
            moved,
            Err(Refusal::NotPrimary {
                primary: Some("node2".into())
            })
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Inserts one row.
    struct InsertOne;

    impl crate::Procedure for InsertOne {
        const NAME: &'static str = "insert_one";
        const VERSION: u32 = 1;
        type Args = ();
        type Output = ();
        type Error = sea_orm::DbErr;

        async fn run(txn: &crate::ClusterTransaction, (): ()) -> Result<(), sea_orm::DbErr> {
            use sea_orm::ConnectionTrait;
            txn.execute_unprepared("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
                .await?;
            txn.execute_unprepared("INSERT INTO t VALUES (1)").await?;
            Ok(())
        }
    }

    /// A forwarded procedure whose COMMIT SQLite returned but LiteFS did not confirm (LiteFS
    /// stopped as it committed) may or may not stand: like a forwarded statement or a remote
    /// COMMIT in that state, it must get no answer, so that the replica asks about its key once
    /// a primary can say. Answered "outcome unknown" at once, the caller is told "unknown" while
    /// a primary could still be asked, which the README says never happens (found by a
    /// fresh-context review).
    #[tokio::test]
    async fn review_a_procedure_whose_commit_litefs_did_not_confirm_gets_no_answer() {
        let writer = Writer::on_temp_file_litefs_gone("server-procedure-unconfirmed", false);
        let limits = SessionLimits {
            lease: Duration::from_secs(5),
            max_lifetime: Duration::from_secs(30),
            max_sessions: 4,
        };
        let procedures = Arc::new(Procedures::new().register::<InsertOne>());
        let executor = Executor::new(writer, None, limits, Arc::default(), procedures);
        let call = ProcedureCall {
            name: <InsertOne as crate::Procedure>::NAME.into(),
            fingerprint: procedure::fingerprint::<InsertOne>(),
            args: bincode::serialize(&()).unwrap(),
        };
        let mut ctx = tarpc::context::current();
        ctx.deadline = Instant::now() + Duration::from_secs(5);
        let answered = tokio::time::timeout(
            Duration::from_secs(1),
            ForwardServer(executor).call(ctx, 1, call),
        )
        .await;
        assert!(
            answered.is_err(),
            "a procedure whose outcome is unknown here was answered {answered:?}"
        );
    }
}

/// For the unit tests of the primary's side: a table `t(x)`, and a forwarded insert into it.
#[cfg(test)]
pub(crate) mod fixtures {
    use std::time::{Duration, Instant};

    use std::sync::Arc;

    use crate::wire::{self, Request};
    use crate::writer::{Method, Sql, Writer};

    /// Creates `t(x)` through `writer`.
    pub async fn create_t(writer: &Arc<Writer>) {
        let deadline = Instant::now() + Duration::from_secs(2);
        let sql = Sql::Raw("CREATE TABLE t(x)".into());
        writer
            .autocommit(sql, Method::Execute, None, false, deadline)
            .await
            .unwrap();
    }

    /// A primary serving RPC on loopback (its executor, table `t`): its writer, executor and
    /// faults, its RPC address and secret.
    pub async fn serving_primary(
        name: &str,
    ) -> (
        Arc<Writer>,
        Arc<super::Executor>,
        Arc<super::Faults>,
        String,
        Arc<Vec<u8>>,
    ) {
        let writer = Writer::on_temp_file(name, true);
        create_t(&writer).await;
        let faults = Arc::new(super::Faults::default());
        let executor = super::Executor::new(
            writer.clone(),
            None,
            super::SessionLimits {
                lease: Duration::from_secs(10),
                max_lifetime: Duration::from_secs(30),
                max_sessions: 64,
            },
            faults.clone(),
            Arc::default(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let secret = Arc::new(format!("{name}-secret").into_bytes());
        tokio::spawn(super::serve(listener, executor.clone(), secret.clone()));
        (writer, executor, faults, addr, secret)
    }

    /// A replica's view of LiteFS: it names "primary" as the primary (its address is the
    /// forwarder's).
    pub fn replica_follower(name: &str) -> Arc<crate::litefs::Follower> {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let follower = Arc::new(crate::litefs::Follower::new(crate::litefs::Mount {
            dir,
            db_name: "t.db".into(),
        }));
        follower.set_role(false, "primary");
        follower
    }

    /// How many rows `t` holds.
    pub async fn rows(writer: &Writer) -> i64 {
        let (mut conn, _) = writer.connection().await.unwrap();
        sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
    }

    /// `INSERT INTO t VALUES (x)`, as a replica forwards it.
    pub fn insert(x: i64) -> Request {
        Request::Execute(wire::Statement {
            sql: "INSERT INTO t VALUES (?)".into(),
            params: vec![wire::Value::Integer(x)],
        })
    }
}
