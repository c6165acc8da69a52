//! Randomized differential test: generated sequences of SeaORM operations and raw statements give
//! the same results, the same errors and the same final tables on three equal databases:
//!
//! - (a) the reference: plain SeaORM on a plain SQLite file (WAL, foreign keys on), no cluster;
//! - (b) a [`sea_orm_litefs::ClusterConnection`] on the LiteFS primary (the local path);
//! - (c) a `ClusterConnection` on a LiteFS replica (every write forwarded to the primary).
//!
//! (b) and (c) share the primary's database, so they run one after the other, each on freshly
//! recreated `pt_*` tables. Each case is a tree of steps (at most 12 operations): operations, and
//! transactions nested up to depth 3 that end in commit, rollback or drop-without-commit.
//!
//! Running it: `DIFF_CASES` cases (default [`DEFAULT_CASES`], what CI runs) from seed `DIFF_SEED`
//! (default [`DEFAULT_SEED`]); e.g. `DIFF_CASES=500 DIFF_SEED=7 cargo test -p sea-orm-litefs --test litefs
//! differential -- --nocapture`. A failure is shrunk by proptest and printed as the minimal
//! sequence with the three sides' results step by step.
//!
//! A second test runs concurrent batches through group commit: a case is 2 to 12 autocommit writes
//! queued one after another behind a held transaction, so that the primary's writer runs them all
//! as one batch, in that order, on (b) and through (c); the results and the final tables must be
//! those of (a), the same writes run one at a time in that order. Some batches include an
//! `INSERT OR ROLLBACK`, which ends the shared transaction when it conflicts: its neighbours must
//! still commit exactly once. `DIFF_BATCH_CASES` cases (default [`DEFAULT_BATCH_CASES`]).
//!
//! Not compared, because SQLite ties them to the pooled connection rather than to the statement:
//! the `last_insert_id` of a statement that inserted no row (UPDATE, DELETE, an ignored INSERT: it
//! is whatever that connection inserted last) and the `rows_affected` of DDL (whatever the
//! connection's last DML left in `sqlite3_changes()`). The schema setup is the only DDL and its
//! result is not compared at all.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, ExecResult, PaginatorTrait, QueryFilter, QueryOrder, QueryResult, Set,
    SqlxSqliteConnector, Statement, TransactionSession, TransactionTrait, Unchanged, Value,
};

use test_support::cluster::{Cluster, wait_until};

/// Cases CI runs: 7 to 15 s for 128 on a loaded 2-core machine, so about 10 to 25 s for these;
/// with the default seed they exercise every operation kind, constraint violation and
/// transaction end at every depth (checked at the end).
const DEFAULT_CASES: u32 = 200;
const DEFAULT_SEED: u64 = 0x5eed_0009;
/// Concurrent batches CI runs: about 10 s on a loaded 2-core machine.
const DEFAULT_BATCH_CASES: u32 = 96;
/// Deepest transaction nesting generated.
const MAX_DEPTH: u32 = 3;
const MAX_OPS: usize = 12;
/// One side of one case may take this long; more is reported as a hang.
const SIDE_TIMEOUT: Duration = Duration::from_secs(30);

/// The test's own tables, recreated before every side of every case. The trigger makes
/// `rows_affected` (which does not count trigger changes) differ from the rows that changed.
/// `pt_later`'s foreign key is deferred: SQLite checks it at COMMIT, not at the statement.
const SCHEMA: &str = "\
DROP TRIGGER IF EXISTS pt_child_counts; DROP TABLE IF EXISTS pt_later; DROP TABLE IF EXISTS pt_child;
DROP TABLE IF EXISTS pt_parent;
CREATE TABLE pt_parent(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, \
score INTEGER NOT NULL CHECK (score >= 0), kids INTEGER NOT NULL DEFAULT 0);
CREATE TABLE pt_child(id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES pt_parent(id), note TEXT);
CREATE TABLE pt_later(id INTEGER PRIMARY KEY, \
parent_id INTEGER NOT NULL REFERENCES pt_parent(id) DEFERRABLE INITIALLY DEFERRED);
CREATE TRIGGER pt_child_counts AFTER INSERT ON pt_child BEGIN \
UPDATE pt_parent SET kids = kids + 1 WHERE id = NEW.parent_id; END;";

mod pt_parent {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pt_parent")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub name: String,
        pub score: i64,
        /// Children inserted for this parent, kept by a trigger.
        pub kids: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

mod pt_child {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pt_child")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub parent_id: i64,
        pub note: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One operation, on the connection or on the innermost open transaction.
#[derive(Clone, Debug)]
enum Op {
    /// `ActiveModel::insert` (RETURNING); no name violates NOT NULL.
    InsertParent {
        name: Option<&'static str>,
        score: i64,
    },
    /// `ActiveModel::insert` of a child; a missing parent violates the foreign key.
    InsertChild {
        parent: i64,
        note: Option<&'static str>,
    },
    /// `insert_many`: one statement, all rows or none.
    InsertMany(Vec<(&'static str, i64)>),
    /// `INSERT .. ON CONFLICT (name) DO UPDATE SET score` or `DO NOTHING`.
    Upsert {
        name: &'static str,
        score: i64,
        do_nothing: bool,
    },
    /// `ActiveModel::update` by id (RETURNING), `RecordNotUpdated` when there is none.
    UpdateParent {
        id: i64,
        score: i64,
    },
    /// `ActiveModel::delete` by id; a parent with children violates the foreign key.
    DeleteParent {
        id: i64,
    },
    /// `update_many`: `score = score + delta WHERE score >= min`.
    UpdateMany {
        min: i64,
        delta: i64,
    },
    /// `delete_many` of a parent's children.
    DeleteChildren {
        parent: i64,
    },
    FindAll,
    FindByName(&'static str),
    CountChildren,
    /// `query_all`: `INSERT .. RETURNING`.
    InsertReturning {
        name: &'static str,
        score: i64,
    },
    /// `query_all`: `UPDATE .. RETURNING`.
    UpdateReturning {
        min: i64,
        delta: i64,
    },
    /// `execute` with parameters: an INSERT.
    ExecuteInsert {
        parent: i64,
        note: Option<&'static str>,
    },
    /// `execute` with parameters: an UPDATE.
    ExecuteUpdate {
        id: i64,
        delta: i64,
    },
    /// `execute_unprepared` of one statement or several.
    Unprepared(Script),
}

/// Raw SQL for `execute_unprepared`, with literal values.
#[derive(Clone, Debug)]
enum Script {
    InsertParent {
        name: &'static str,
        score: i64,
    },
    AddToScores {
        delta: i64,
    },
    /// Two INSERTs: the parent, then a child of it (fails half-way if the parent does).
    ParentAndChild {
        name: &'static str,
        score: i64,
    },
    /// Two DELETEs: a parent's children, then the parent.
    DeleteFamily {
        id: i64,
    },
    /// A row whose foreign key is deferred: a missing parent fails at COMMIT, so in a batch a
    /// later neighbour inserting that parent must not make it pass (nor a deleted one fail it).
    DeferredChild {
        parent: i64,
    },
    /// `INSERT OR ROLLBACK`: a conflict ends the whole transaction (generated for batches only).
    InsertOrRollback {
        name: &'static str,
        score: i64,
    },
}

#[derive(Clone, Copy, Debug)]
enum End {
    Commit,
    Rollback,
    /// Dropped without commit or rollback.
    Drop,
}

#[derive(Clone, Debug)]
enum Step {
    Op(Op),
    Transaction(Vec<Step>, End),
}

// Small value pools, so that names collide (UNIQUE), ids miss (FOREIGN KEY, not found) and scores
// go negative (CHECK).
fn name() -> impl Strategy<Value = &'static str> {
    select(&["ann", "bob", "cy", "dee"][..])
}
fn score() -> impl Strategy<Value = i64> {
    select(&[-1i64, 0, 1, 2, 7][..])
}
fn id() -> impl Strategy<Value = i64> {
    1i64..=5
}
fn delta() -> impl Strategy<Value = i64> {
    select(&[-3i64, -1, 1, 4][..])
}
fn note() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::of(select(&["n", "ünï ✓", ""][..]))
}

fn script() -> impl Strategy<Value = Script> {
    prop_oneof![
        (name(), score()).prop_map(|(name, score)| Script::InsertParent { name, score }),
        delta().prop_map(|delta| Script::AddToScores { delta }),
        (name(), score()).prop_map(|(name, score)| Script::ParentAndChild { name, score }),
        id().prop_map(|id| Script::DeleteFamily { id }),
        id().prop_map(|parent| Script::DeferredChild { parent }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (prop::option::weighted(0.9, name()), score())
            .prop_map(|(name, score)| Op::InsertParent { name, score }),
        3 => (id(), note()).prop_map(|(parent, note)| Op::InsertChild { parent, note }),
        1 => vec((name(), score()), 1..=3).prop_map(Op::InsertMany),
        2 => (name(), score(), any::<bool>())
            .prop_map(|(name, score, do_nothing)| Op::Upsert { name, score, do_nothing }),
        1 => (id(), score()).prop_map(|(id, score)| Op::UpdateParent { id, score }),
        1 => id().prop_map(|id| Op::DeleteParent { id }),
        1 => (score(), delta()).prop_map(|(min, delta)| Op::UpdateMany { min, delta }),
        1 => id().prop_map(|parent| Op::DeleteChildren { parent }),
        1 => Just(Op::FindAll),
        1 => name().prop_map(Op::FindByName),
        1 => Just(Op::CountChildren),
        2 => (name(), score()).prop_map(|(name, score)| Op::InsertReturning { name, score }),
        1 => (score(), delta()).prop_map(|(min, delta)| Op::UpdateReturning { min, delta }),
        1 => (id(), note()).prop_map(|(parent, note)| Op::ExecuteInsert { parent, note }),
        1 => (id(), delta()).prop_map(|(id, delta)| Op::ExecuteUpdate { id, delta }),
        2 => script().prop_map(Op::Unprepared),
    ]
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![Just(End::Commit), Just(End::Rollback), Just(End::Drop)]
}

fn ops_in(steps: &[Step]) -> usize {
    steps
        .iter()
        .map(|s| match s {
            Step::Op(_) => 1,
            Step::Transaction(body, _) => ops_in(body),
        })
        .sum()
}

/// 1 to 12 operations, in transactions nested up to [`MAX_DEPTH`].
fn program() -> impl Strategy<Value = Vec<Step>> {
    let step = op()
        .prop_map(Step::Op)
        .prop_recursive(MAX_DEPTH, 12, 4, |inner| {
            (vec(inner, 0..=4), end()).prop_map(|(body, end)| Step::Transaction(body, end))
        });
    vec(step, 1..=6).prop_filter("1 to 12 operations", |steps| {
        (1..=MAX_OPS).contains(&ops_in(steps))
    })
}

/// How an error looks to the app: its text and SeaORM's classification.
fn describe_err(err: &DbErr) -> String {
    format!("err {err} / {:?}", err.sql_err())
}

fn show<T: std::fmt::Debug>(result: Result<T, DbErr>) -> String {
    match result {
        Ok(value) => format!("ok {value:?}"),
        Err(err) => describe_err(&err),
    }
}

/// An execute result: `last_insert_id` only when the statement's last INSERT inserted a row (see
/// the module doc).
fn show_exec(result: Result<ExecResult, DbErr>, ends_in_insert: bool) -> String {
    show(result.map(|r| {
        if ends_in_insert && r.rows_affected() > 0 {
            format!("rows {} id {}", r.rows_affected(), r.last_insert_id())
        } else {
            format!("rows {}", r.rows_affected())
        }
    }))
}

fn show_rows(result: Result<Vec<QueryResult>, DbErr>) -> String {
    show(result.map(|rows| {
        rows.iter()
            .map(|r| {
                (0..r.column_names().len())
                    .map(|i| format!("{:?}", r.try_get_by_index::<Option<i64>>(i)))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect::<Vec<_>>()
    }))
}

fn stmt(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

fn parent(name: Option<&str>, score: i64) -> pt_parent::ActiveModel {
    pt_parent::ActiveModel {
        name: name.map_or(sea_orm::NotSet, |n| Set(n.to_owned())),
        score: Set(score),
        ..Default::default()
    }
}

fn score_plus(delta: i64) -> Expr {
    use sea_orm::sea_query::ExprTrait;
    Expr::col(pt_parent::Column::Score).add(delta)
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl Script {
    fn sql(&self) -> String {
        match self {
            Script::InsertParent { name, score } => format!(
                "INSERT INTO pt_parent(name, score) VALUES ({}, {score})",
                literal(name)
            ),
            Script::AddToScores { delta } => {
                format!("UPDATE pt_parent SET score = score + {delta}")
            }
            Script::ParentAndChild { name, score } => format!(
                "INSERT INTO pt_parent(name, score) VALUES ({}, {score}); \
                 INSERT INTO pt_child(parent_id, note) VALUES (last_insert_rowid(), 'both')",
                literal(name)
            ),
            Script::DeleteFamily { id } => format!(
                "DELETE FROM pt_child WHERE parent_id = {id}; DELETE FROM pt_parent WHERE id = {id}"
            ),
            Script::DeferredChild { parent } => {
                format!("INSERT INTO pt_later(parent_id) VALUES ({parent})")
            }
            Script::InsertOrRollback { name, score } => format!(
                "INSERT OR ROLLBACK INTO pt_parent(name, score) VALUES ({}, {score})",
                literal(name)
            ),
        }
    }
    fn ends_in_insert(&self) -> bool {
        matches!(
            self,
            Script::InsertParent { .. }
                | Script::ParentAndChild { .. }
                | Script::DeferredChild { .. }
                | Script::InsertOrRollback { .. }
        )
    }
}

impl Op {
    /// Whether it queues for the primary's writer (reads run at once on the read pool).
    fn is_write(&self) -> bool {
        !matches!(self, Op::FindAll | Op::FindByName(_) | Op::CountChildren)
    }

    /// The variant's name, for the coverage check.
    fn kind(&self) -> String {
        let debug = format!("{self:?}");
        let end = debug.find([' ', '(']).unwrap_or(debug.len());
        match self {
            Op::Unprepared(script) => format!("{script:?}")
                .split([' ', '('])
                .next()
                .map(|s| format!("Unprepared::{s}"))
                .unwrap(),
            _ => debug[..end].to_owned(),
        }
    }

    async fn apply<C: ConnectionTrait>(&self, db: &C) -> String {
        use pt_child::Column as Child;
        use pt_parent::Column as Parent;
        match self {
            Op::InsertParent { name, score } => show(parent(*name, *score).insert(db).await),
            Op::InsertChild { parent, note } => show(
                pt_child::ActiveModel {
                    parent_id: Set(*parent),
                    note: Set(note.map(str::to_owned)),
                    ..Default::default()
                }
                .insert(db)
                .await,
            ),
            Op::InsertMany(rows) => show(
                pt_parent::Entity::insert_many(rows.iter().map(|(n, s)| parent(Some(n), *s)))
                    .exec(db)
                    .await
                    .map(|r| r.last_insert_id),
            ),
            Op::Upsert {
                name,
                score,
                do_nothing: false,
            } => show(
                pt_parent::Entity::insert(parent(Some(name), *score))
                    .on_conflict(
                        OnConflict::column(Parent::Name)
                            .update_column(Parent::Score)
                            .to_owned(),
                    )
                    .exec(db)
                    .await
                    .map(|r| r.last_insert_id),
            ),
            Op::Upsert {
                name,
                score,
                do_nothing: true,
            } => show(
                pt_parent::Entity::insert(parent(Some(name), *score))
                    .on_conflict_do_nothing_on([Parent::Name])
                    .exec(db)
                    .await,
            ),
            Op::UpdateParent { id, score } => show(
                pt_parent::ActiveModel {
                    id: Unchanged(*id),
                    score: Set(*score),
                    ..Default::default()
                }
                .update(db)
                .await,
            ),
            Op::DeleteParent { id } => show(
                pt_parent::ActiveModel {
                    id: Unchanged(*id),
                    ..Default::default()
                }
                .delete(db)
                .await
                .map(|r| r.rows_affected),
            ),
            Op::UpdateMany { min, delta } => show(
                pt_parent::Entity::update_many()
                    .col_expr(Parent::Score, score_plus(*delta))
                    .filter(Parent::Score.gte(*min))
                    .exec(db)
                    .await
                    .map(|r| r.rows_affected),
            ),
            Op::DeleteChildren { parent } => show(
                pt_child::Entity::delete_many()
                    .filter(Child::ParentId.eq(*parent))
                    .exec(db)
                    .await
                    .map(|r| r.rows_affected),
            ),
            Op::FindAll => show(
                pt_parent::Entity::find()
                    .order_by_asc(Parent::Id)
                    .all(db)
                    .await,
            ),
            Op::FindByName(name) => show(
                pt_parent::Entity::find()
                    .filter(Parent::Name.eq(*name))
                    .one(db)
                    .await,
            ),
            Op::CountChildren => show(pt_child::Entity::find().count(db).await),
            Op::InsertReturning { name, score } => show_rows(
                db.query_all_raw(stmt(
                    "INSERT INTO pt_parent(name, score) VALUES (?, ?) RETURNING id, score, kids",
                    [(*name).into(), (*score).into()],
                ))
                .await,
            ),
            Op::UpdateReturning { min, delta } => show_rows(
                db.query_all_raw(stmt(
                    "UPDATE pt_parent SET score = score + ? WHERE score >= ? RETURNING id, score",
                    [(*delta).into(), (*min).into()],
                ))
                .await,
            ),
            Op::ExecuteInsert { parent, note } => show_exec(
                db.execute_raw(stmt(
                    "INSERT INTO pt_child(parent_id, note) VALUES (?, ?)",
                    [(*parent).into(), note.map(str::to_owned).into()],
                ))
                .await,
                true,
            ),
            Op::ExecuteUpdate { id, delta } => show_exec(
                db.execute_raw(stmt(
                    "UPDATE pt_parent SET score = score + ? WHERE id = ?",
                    [(*delta).into(), (*id).into()],
                ))
                .await,
                false,
            ),
            Op::Unprepared(script) => show_exec(
                db.execute_unprepared(&script.sql()).await,
                script.ends_in_insert(),
            ),
        }
    }
}

/// One line per step: what the app was given, in the order it happened.
type Trace = Vec<String>;

/// Runs `steps` on `db` (or on `txn`, the innermost open transaction), recording every result.
/// Boxed because it recurses into nested transactions.
fn run_steps<'a, C>(
    db: &'a C,
    txn: Option<&'a C::Transaction>,
    depth: u32,
    steps: &'a [Step],
    trace: &'a mut Trace,
) -> futures::future::BoxFuture<'a, ()>
where
    C: ConnectionTrait + TransactionTrait + Send,
{
    Box::pin(async move {
        for step in steps {
            match step {
                Step::Op(op) => {
                    let result = match txn {
                        Some(txn) => op.apply(txn).await,
                        None => op.apply(db).await,
                    };
                    trace.push(result);
                }
                Step::Transaction(body, end) => {
                    let depth = depth + 1;
                    let begun = match txn {
                        Some(txn) => txn.begin().await,
                        None => db.begin().await,
                    };
                    let inner = match begun {
                        Ok(inner) => inner,
                        Err(err) => {
                            trace.push(format!("begin depth {depth}: {}", describe_err(&err)));
                            continue;
                        }
                    };
                    trace.push(format!("begin depth {depth}"));
                    run_steps(db, Some(&inner), depth, body, trace).await;
                    let ended = match end {
                        End::Commit => show(inner.commit().await),
                        End::Rollback => show(inner.rollback().await),
                        End::Drop => {
                            drop(inner);
                            "dropped".to_owned()
                        }
                    };
                    trace.push(format!("{end:?} depth {depth}: {ended}"));
                }
            }
        }
    })
}

/// The steps as the trace lists them, for printing next to it.
fn describe_steps(steps: &[Step], depth: usize, out: &mut Vec<String>) {
    let indent = "  ".repeat(depth);
    for step in steps {
        match step {
            Step::Op(op) => out.push(format!("{indent}{op:?}")),
            Step::Transaction(body, end) => {
                out.push(format!("{indent}begin"));
                describe_steps(body, depth + 1, out);
                out.push(format!("{indent}{end:?}"));
            }
        }
    }
}

/// Every row of the test's tables, read on a fresh connection (what is durable, not what a pooled
/// connection may still hold).
async fn contents(path: &Path) -> String {
    use sqlx::ConnectOptions;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .expect("the database opens");
    let parents: Vec<(i64, String, i64, i64)> =
        sqlx::query_as("SELECT id, name, score, kids FROM pt_parent ORDER BY rowid")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let children: Vec<(i64, i64, Option<String>)> =
        sqlx::query_as("SELECT id, parent_id, note FROM pt_child ORDER BY rowid")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let later: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, parent_id FROM pt_later ORDER BY rowid")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    format!("pt_parent {parents:?}\npt_child {children:?}\npt_later {later:?}")
}

/// What one side gave: its trace and its final tables.
#[derive(PartialEq)]
struct Outcome {
    trace: Trace,
    contents: String,
}

async fn run_side<C>(db: &C, steps: &[Step], file: &Path) -> Result<Outcome, String>
where
    C: ConnectionTrait + TransactionTrait + Send,
{
    let mut trace = Vec::new();
    tokio::time::timeout(SIDE_TIMEOUT, run_steps(db, None, 0, steps, &mut trace))
        .await
        .map_err(|_| format!("hung for {SIDE_TIMEOUT:?} after {trace:#?}"))?;
    Ok(Outcome {
        trace,
        contents: contents(file).await,
    })
}

/// A fresh plain SQLite database, as SeaORM opens one without a cluster, on one connection. With
/// several, the reference would not be deterministic: sqlx rolls a dropped transaction back only
/// when its connection goes back to the pool, so the next `begin` may get another connection while
/// the write lock is still held, and a deferred transaction that has read then fails to write
/// with `database is locked` at once (SQLite does not wait to upgrade a read lock). That is
/// timing, not what the operations mean; the cluster's transactions are `BEGIN IMMEDIATE` and wait.
async fn reference_db(path: &Path) -> DatabaseConnection {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("the reference database opens");
    SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)
}

/// The three sides' outcomes side by side, differing steps marked.
fn report(steps: &[Step], sides: &[(&str, &Outcome)]) -> String {
    let mut listing = Vec::new();
    describe_steps(steps, 0, &mut listing);
    let mut out = String::from("sequence:\n");
    for line in &listing {
        writeln!(out, "  {line}").unwrap();
    }
    let len = sides.iter().map(|(_, o)| o.trace.len()).max().unwrap_or(0);
    for i in 0..len {
        let results: Vec<Option<&String>> = sides.iter().map(|(_, o)| o.trace.get(i)).collect();
        let differs = results.iter().any(|r| *r != results[0]);
        writeln!(
            out,
            "step {i}{}",
            if differs { "  <== DIFFERS" } else { "" }
        )
        .unwrap();
        for ((label, _), result) in sides.iter().zip(&results) {
            writeln!(out, "  {label:>9}: {}", result.map_or("(none)", |s| s)).unwrap();
        }
    }
    for (label, outcome) in sides {
        writeln!(out, "final tables, {label}:\n{}", outcome.contents).unwrap();
    }
    out
}

/// What the generated cases exercised, checked at the end so that equality means something.
fn coverage(steps: &[Step], reference: &Outcome, seen: &mut BTreeSet<String>) {
    fn walk(steps: &[Step], depth: u32, seen: &mut BTreeSet<String>) {
        for step in steps {
            match step {
                Step::Op(op) => {
                    seen.insert(op.kind());
                }
                Step::Transaction(body, end) => {
                    seen.insert(format!("{end:?} at depth {}", depth + 1));
                    walk(body, depth + 1, seen);
                }
            }
        }
    }
    walk(steps, 0, seen);
    for line in &reference.trace {
        for violation in ["UNIQUE", "CHECK", "NOT NULL", "FOREIGN KEY"] {
            if line.contains(&format!("{violation} constraint failed")) {
                seen.insert(format!("{violation} violation"));
            }
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} must be a number"))
        })
        .unwrap_or(default)
}

/// A runtime, a 2-node cluster, and a connection on each node (primary, replica).
fn two_nodes() -> (
    tokio::runtime::Runtime,
    Cluster,
    sea_orm_litefs::ClusterConnection,
    sea_orm_litefs::ClusterConnection,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cluster = runtime.block_on(Cluster::start_litefs_only(2));
    let (primary, replica) =
        runtime.block_on(async { (cluster.connect(1).await, cluster.connect(2).await) });
    (runtime, cluster, primary, replica)
}

/// `cases` cases from `seed`, never persisted.
fn runner(cases: u32, seed: u64) -> TestRunner {
    TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        // Each shrink step reruns three sides; bound the time a failure takes to report.
        max_shrink_iters: 400,
        max_shrink_time: 240_000,
        ..Config::default()
    })
}

/// Runs `steps` on a fresh reference database `scratch/<name>.db`, removed afterwards.
async fn reference_side(
    scratch: &Path,
    name: &str,
    steps: &[Step],
) -> Result<Outcome, TestCaseError> {
    let file = scratch.join(format!("{name}.db"));
    let reference_conn = reference_db(&file).await;
    reference_conn.execute_unprepared(SCHEMA).await.unwrap();
    let reference = run_side(&reference_conn, steps, &file).await;
    reference_conn.close().await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    reference.map_err(TestCaseError::fail)
}

/// Recreates the test's tables through the primary, and waits until the replica has them.
async fn fresh_tables_on_both(primary: &sea_orm_litefs::ClusterConnection, cluster: &Cluster) {
    primary.execute_unprepared(SCHEMA).await.unwrap();
    let (primary_node, replica_node) = (cluster.node(1), cluster.node(2));
    wait_until("the replica has the fresh tables", || async {
        (replica_node.txid() >= primary_node.txid()).then_some(())
    })
    .await;
}

/// Passes when the primary's and the replica's outcomes both equal the reference's.
fn compare(
    steps: &[Step],
    reference: (&str, &Outcome),
    local: &Outcome,
    forwarded: &Outcome,
) -> Result<(), TestCaseError> {
    if *local == *reference.1 && *forwarded == *reference.1 {
        return Ok(());
    }
    Err(TestCaseError::fail(report(
        steps,
        &[reference, ("primary", local), ("replica", forwarded)],
    )))
}

#[test]
fn differential_prop_forwarded_and_local_equal_plain_seaorm() {
    let cases = env_or("DIFF_CASES", DEFAULT_CASES);
    let seed = env_or("DIFF_SEED", DEFAULT_SEED);
    let (runtime, cluster, primary, replica) = two_nodes();
    assert_eq!(
        (primary.role().as_str(), replica.role().as_str()),
        ("primary", "replica")
    );
    let shared = cluster.node(1).db_path();
    let scratch = tempdir();
    let seen = Mutex::new(BTreeSet::new());
    let case_number = Mutex::new(0u32);

    let run_case = |steps: Vec<Step>| -> Result<(), TestCaseError> {
        let n = {
            let mut n = case_number.lock().unwrap();
            *n += 1;
            *n
        };
        runtime.block_on(async {
            let reference = reference_side(&scratch, &format!("reference-{n}"), &steps).await?;

            primary.execute_unprepared(SCHEMA).await.unwrap();
            let local = run_side(&primary, &steps, &shared)
                .await
                .map_err(|e| TestCaseError::fail(format!("primary: {e}")))?;

            fresh_tables_on_both(&primary, &cluster).await;
            let forwarded = run_side(&replica, &steps, &shared)
                .await
                .map_err(|e| TestCaseError::fail(format!("replica: {e}")))?;

            coverage(&steps, &reference, &mut seen.lock().unwrap());
            compare(&steps, ("reference", &reference), &local, &forwarded)
        })
    };

    let mut runner = runner(cases, seed);
    let started = Instant::now();
    let result = runner.run(&program(), run_case);
    let elapsed = started.elapsed();
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, _minimal)) => {
            panic!(
                "forwarded or local differs from plain SeaORM (seed {seed}, {cases} cases, \
                 {elapsed:?}); the minimal failing {reason}"
            );
        }
        Err(TestError::Abort(reason)) => panic!("proptest aborted: {reason}"),
    }
    let seen = seen.into_inner().unwrap();
    eprintln!(
        "differential_prop: {cases} cases from seed {seed} passed in {elapsed:?}; covered: {seen:?}"
    );
    let mut expected: Vec<String> = [
        "InsertParent",
        "InsertChild",
        "InsertMany",
        "Upsert",
        "UpdateParent",
        "DeleteParent",
        "UpdateMany",
        "DeleteChildren",
        "FindAll",
        "FindByName",
        "CountChildren",
        "InsertReturning",
        "UpdateReturning",
        "ExecuteInsert",
        "ExecuteUpdate",
        "Unprepared::InsertParent",
        "Unprepared::AddToScores",
        "Unprepared::ParentAndChild",
        "Unprepared::DeleteFamily",
        "Unprepared::DeferredChild",
        "UNIQUE violation",
        "CHECK violation",
        "NOT NULL violation",
        "FOREIGN KEY violation",
    ]
    .map(String::from)
    .to_vec();
    for end in ["Commit", "Rollback", "Drop"] {
        for depth in 1..=MAX_DEPTH {
            expected.push(format!("{end} at depth {depth}"));
        }
    }
    let missing: Vec<&String> = expected.iter().filter(|e| !seen.contains(*e)).collect();
    assert!(
        missing.is_empty(),
        "{cases} cases from seed {seed} never exercised {missing:?}: raise DIFF_CASES"
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

/// A directory for the reference databases (each removed after its case, the directory after the
/// run).
fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("litefs-differential-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A write of a concurrent batch: any generated write, or an `INSERT OR ROLLBACK`.
fn batch_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => op().prop_filter("writes: reads do not queue for the writer", Op::is_write),
        1 => (name(), score())
            .prop_map(|(name, score)| Op::Unprepared(Script::InsertOrRollback { name, score })),
    ]
}

/// Runs `ops` on `db` as one group-commit batch: a transaction holds the writer while the writes
/// queue one after another (each waited for), then ends, and the writer runs them in that order.
async fn run_batch(
    db: &sea_orm_litefs::ClusterConnection,
    queue: &sea_orm_litefs::ClusterConnection,
    ops: &[Op],
    file: &Path,
) -> Result<Outcome, String> {
    let run = async {
        let holder = db.begin().await.expect("a transaction holds the writer");
        let mut writes = Vec::new();
        for (n, op) in ops.iter().enumerate() {
            let (db, op) = (db.clone(), op.clone());
            writes.push(tokio::spawn(async move { op.apply(&db).await }));
            wait_until("the write to queue", || async {
                (queue.writer_queue_depth() > n).then_some(())
            })
            .await;
        }
        holder.commit().await.expect("the holder commits");
        let mut trace = Vec::new();
        for write in writes {
            trace.push(write.await.expect("a write"));
        }
        trace
    };
    let trace = tokio::time::timeout(SIDE_TIMEOUT, run)
        .await
        .map_err(|_| format!("hung for {SIDE_TIMEOUT:?}"))?;
    Ok(Outcome {
        trace,
        contents: contents(file).await,
    })
}

#[test]
fn differential_prop_concurrent_batches_equal_the_writes_run_alone() {
    let cases = env_or("DIFF_BATCH_CASES", DEFAULT_BATCH_CASES);
    let seed = env_or("DIFF_SEED", DEFAULT_SEED);
    let (runtime, cluster, primary, replica) = two_nodes();
    let shared = cluster.node(1).db_path();
    let scratch = tempdir();
    let case_number = Mutex::new(0u32);
    // Cases where an INSERT OR ROLLBACK ended the batch's transaction while a neighbour committed.
    let ended_with_neighbours = Mutex::new(0u32);
    // Cases where a deferred foreign key failed a write at COMMIT while a neighbour committed.
    let deferred_with_neighbours = Mutex::new(0u32);

    let run_case = |ops: Vec<Op>| -> Result<(), TestCaseError> {
        let n = {
            let mut n = case_number.lock().unwrap();
            *n += 1;
            *n
        };
        runtime.block_on(async {
            let steps: Vec<Step> = ops.iter().cloned().map(Step::Op).collect();
            let reference = reference_side(&scratch, &format!("batch-{n}"), &steps).await?;

            primary.execute_unprepared(SCHEMA).await.unwrap();
            let local = run_batch(&primary, &primary, &ops, &shared)
                .await
                .map_err(|e| TestCaseError::fail(format!("primary: {e}")))?;

            fresh_tables_on_both(&primary, &cluster).await;
            let forwarded = run_batch(&replica, &primary, &ops, &shared)
                .await
                .map_err(|e| TestCaseError::fail(format!("replica: {e}")))?;

            let ended = ops.iter().zip(&reference.trace).any(|(op, result)| {
                matches!(op, Op::Unprepared(Script::InsertOrRollback { .. }))
                    && result.contains("constraint failed")
            });
            let committed = reference.trace.iter().any(|r| r.starts_with("ok"));
            if ended && committed {
                *ended_with_neighbours.lock().unwrap() += 1;
            }
            let deferred = ops.iter().zip(&reference.trace).any(|(op, result)| {
                matches!(op, Op::Unprepared(Script::DeferredChild { .. }))
                    && result.contains("FOREIGN KEY")
            });
            if deferred && committed {
                *deferred_with_neighbours.lock().unwrap() += 1;
            }
            compare(&steps, ("alone", &reference), &local, &forwarded)
        })
    };

    let mut runner = runner(cases, seed);
    let started = Instant::now();
    match runner.run(&vec(batch_op(), 2..=12), run_case) {
        Ok(()) => {}
        Err(TestError::Fail(reason, _minimal)) => panic!(
            "a concurrent batch differs from its writes run alone (seed {seed}, {cases} cases); \
             the minimal failing {reason}"
        ),
        Err(TestError::Abort(reason)) => panic!("proptest aborted: {reason}"),
    }
    let ended = ended_with_neighbours.into_inner().unwrap();
    let deferred = deferred_with_neighbours.into_inner().unwrap();
    eprintln!(
        "differential_prop batches: {cases} cases from seed {seed} passed in {:?}; {ended} \
         with a write ending the shared transaction, {deferred} with a deferred foreign key \
         failing a write beside a committed one",
        started.elapsed()
    );
    assert!(
        deferred > 0,
        "no batch had a deferred foreign key fail a write beside a committed one: raise \
         DIFF_BATCH_CASES"
    );
    assert!(
        ended > 0,
        "no batch had an INSERT OR ROLLBACK end its transaction beside a committed write: raise \
         DIFF_BATCH_CASES"
    );
    let _ = std::fs::remove_dir_all(&scratch);
}
