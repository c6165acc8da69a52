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
            // Its COMMIT (or a rollback) may have ended it since it was looked at.
            if !matches!(*state, State::Open { .. }) {
                continue;
            }
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
mod hardening_tests;

#[cfg(test)]
mod tests;

/// For the unit tests of the primary's side: a table `t(x)`, and a forwarded insert into it.
#[cfg(test)]
pub(crate) mod fixtures;
