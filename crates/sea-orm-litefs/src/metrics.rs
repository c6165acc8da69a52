//! The Prometheus metrics this crate records, through the `metrics` facade (the app installs the
//! recorder). Names are `<prefix>_<name>`; the prefix is set by [`crate::Builder::metric_prefix`]
//! and is the same for every node in a process, since a recorder is process-wide.

use std::sync::OnceLock;
use std::time::Duration;

use crate::StartError;

pub const DEFAULT_PREFIX: &str = "litefs";

/// Every series this crate records.
#[derive(Clone, Copy)]
enum Series {
    ForwardedWrites,
    ForwardDuration,
    CatchUpDuration,
    RemoteTransactions,
    RpcErrors,
    StaleAnswers,
    WriterWait,
    WriterQueueDepth,
    WriterBatchSize,
    WriterBatchReruns,
    ReplicaLocalWriteAttempts,
    ProcedureCalls,
    ProcedureFallbacks,
    ReadsAbandoned,
}

/// What kind of series, as the facade describes it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    /// A histogram of seconds.
    Seconds,
    /// A histogram of counts.
    Histogram,
}

impl Series {
    const ALL: [Series; 14] = [
        Series::ForwardedWrites,
        Series::ForwardDuration,
        Series::CatchUpDuration,
        Series::RemoteTransactions,
        Series::RpcErrors,
        Series::StaleAnswers,
        Series::WriterWait,
        Series::WriterQueueDepth,
        Series::WriterBatchSize,
        Series::WriterBatchReruns,
        Series::ReplicaLocalWriteAttempts,
        Series::ProcedureCalls,
        Series::ProcedureFallbacks,
        Series::ReadsAbandoned,
    ];

    /// The name after the prefix, its kind, and its help text.
    fn describe(self) -> (&'static str, Kind, &'static str) {
        match self {
            Series::ForwardedWrites => (
                "forwarded_writes_total",
                Kind::Counter,
                "Statements forwarded from this replica to the primary",
            ),
            Series::ForwardDuration => (
                "forward_duration_seconds",
                Kind::Seconds,
                "Round trip of a forwarded call, catch-up included",
            ),
            Series::CatchUpDuration => (
                "catchup_duration_seconds",
                Kind::Seconds,
                "Time waiting for LiteFS to replicate a forwarded commit here",
            ),
            Series::RemoteTransactions => (
                "remote_transactions_total",
                Kind::Counter,
                "Transactions run as sessions on the primary",
            ),
            Series::RpcErrors => (
                "rpc_errors_total",
                Kind::Counter,
                "Forwarded calls that failed for a reason other than SQL",
            ),
            Series::StaleAnswers => (
                "forwarded_stale_answers_total",
                Kind::Counter,
                "Forwarded writes that committed but had not reached this node when answered",
            ),
            Series::WriterWait => (
                "writer_wait_seconds",
                Kind::Seconds,
                "Time a write waited for the primary's one writer",
            ),
            Series::WriterQueueDepth => (
                "writer_queue_depth",
                Kind::Gauge,
                "Writes and transactions waiting for the primary's one writer",
            ),
            Series::WriterBatchSize => (
                "writer_batch_size",
                Kind::Histogram,
                "Autocommit writes committed together by one group commit (1: a write alone)",
            ),
            Series::WriterBatchReruns => (
                "writer_batch_reruns_total",
                Kind::Counter,
                "Group-commit members run again because a neighbour ended or expired their transaction",
            ),
            Series::ReplicaLocalWriteAttempts => (
                "replica_local_write_attempts_total",
                Kind::Counter,
                "Writes that reached a replica's read-only connection (a bug: must stay 0)",
            ),
            Series::ProcedureCalls => (
                "procedure_calls_total",
                Kind::Counter,
                "Write procedures sent from this replica to the primary (one round trip each)",
            ),
            Series::ProcedureFallbacks => (
                "procedure_fallbacks_total",
                Kind::Counter,
                "Write procedures the primary did not know, run as interactive transactions instead",
            ),
            Series::ReadsAbandoned => (
                "reads_abandoned_total",
                Kind::Counter,
                "Reads in `interruptible_reads` whose caller went away before taking their answer \
                 (any still running is interrupted)",
            ),
        }
    }
}

/// The full names, in the order of [`Series::ALL`].
struct Names {
    prefix: String,
    full: Vec<&'static str>,
}

static NAMES: OnceLock<Names> = OnceLock::new();

fn names_for(prefix: &str) -> Names {
    Names {
        prefix: prefix.to_owned(),
        // Built once per process; `'static` names are what the facade records cheapest.
        full: Series::ALL
            .iter()
            .map(|series| {
                let name = series.describe().0;
                &*Box::leak(format!("{prefix}_{name}").into_boxed_str())
            })
            .collect(),
    }
}

/// Fixes the prefix for this process; a second, different prefix is an error.
pub(crate) fn use_prefix(prefix: &str) -> Result<(), StartError> {
    let refuse = |why: String| StartError::MetricPrefix {
        wanted: prefix.to_owned(),
        why,
    };
    let valid = prefix
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(refuse(
            "a Prometheus name starts with a letter or `_` and has only letters, digits and `_`"
                .into(),
        ));
    }
    let names = NAMES.get_or_init(|| names_for(prefix));
    if names.prefix != prefix {
        return Err(refuse(format!(
            "this process already records its metrics as {}_*",
            names.prefix
        )));
    }
    Ok(())
}

fn name(series: Series) -> &'static str {
    NAMES.get_or_init(|| names_for(DEFAULT_PREFIX)).full[series as usize]
}

/// Describes every series and registers the counters at zero, so that a scrape shows them before
/// the first event. Call it again after installing a recorder installed after start-up.
pub fn describe() {
    for series in Series::ALL {
        let (_, kind, help) = series.describe();
        let name = name(series);
        match kind {
            Kind::Counter => {
                metrics::describe_counter!(name, help);
                metrics::counter!(name).increment(0);
            }
            Kind::Gauge => {
                metrics::describe_gauge!(name, help);
                metrics::gauge!(name).set(0.0);
            }
            Kind::Seconds => metrics::describe_histogram!(name, metrics::Unit::Seconds, help),
            Kind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
}

pub fn forwarded(elapsed: Duration) {
    metrics::counter!(name(Series::ForwardedWrites)).increment(1);
    metrics::histogram!(name(Series::ForwardDuration)).record(elapsed.as_secs_f64());
}

pub fn catch_up(elapsed: Duration) {
    metrics::histogram!(name(Series::CatchUpDuration)).record(elapsed.as_secs_f64());
}

pub fn remote_transaction() {
    metrics::counter!(name(Series::RemoteTransactions)).increment(1);
}

pub fn rpc_error(kind: &'static str) {
    metrics::counter!(name(Series::RpcErrors), "kind" => kind).increment(1);
}

pub fn stale_answer() {
    metrics::counter!(name(Series::StaleAnswers)).increment(1);
}

pub fn writer_wait(elapsed: Duration) {
    metrics::histogram!(name(Series::WriterWait)).record(elapsed.as_secs_f64());
}

/// A procedure answered by the primary; `elapsed` includes the catch-up, as for statements.
pub fn procedure_call(elapsed: Duration) {
    metrics::counter!(name(Series::ProcedureCalls)).increment(1);
    metrics::histogram!(name(Series::ForwardDuration)).record(elapsed.as_secs_f64());
}

pub fn procedure_fallback() {
    metrics::counter!(name(Series::ProcedureFallbacks)).increment(1);
}

pub fn read_abandoned() {
    metrics::counter!(name(Series::ReadsAbandoned)).increment(1);
}

pub fn backstop_hit() {
    metrics::counter!(name(Series::ReplicaLocalWriteAttempts)).increment(1);
}

pub fn writer_queue_depth(depth: usize) {
    metrics::gauge!(name(Series::WriterQueueDepth)).set(depth as f64);
}

pub fn writer_batch(size: usize) {
    metrics::histogram!(name(Series::WriterBatchSize)).record(size as f64);
}

pub fn writer_batch_rerun(members: usize) {
    metrics::counter!(name(Series::WriterBatchReruns)).increment(members as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_must_be_a_prometheus_name_and_one_per_process() {
        for bad in ["", "1x", "a-b", "a b"] {
            assert!(
                matches!(use_prefix(bad), Err(StartError::MetricPrefix { .. })),
                "{bad:?}"
            );
        }
        let first = NAMES.get_or_init(|| names_for("first")).prefix.clone();
        assert!(use_prefix(&first).is_ok());
        assert!(use_prefix(&format!("{first}_other")).is_err());
        assert!(name(Series::ForwardedWrites).starts_with(&format!("{first}_")));
    }
}
