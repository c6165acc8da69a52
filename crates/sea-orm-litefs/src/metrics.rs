//! The cluster layer's Prometheus metrics. Names are part of the interface (see the README).

use std::time::Duration;

pub const FORWARDED_WRITES: &str = "blog_forwarded_writes_total";
pub const FORWARD_DURATION: &str = "blog_forward_duration_seconds";
pub const CATCHUP_DURATION: &str = "blog_catchup_duration_seconds";
pub const REMOTE_TRANSACTIONS: &str = "blog_remote_transactions_total";
pub const RPC_ERRORS: &str = "blog_rpc_errors_total";
pub const STALE_ANSWERS: &str = "blog_forwarded_stale_answers_total";
pub const WRITER_WAIT: &str = "blog_writer_wait_seconds";
/// Write procedures sent from this replica to the primary (one round trip each).
pub const PROCEDURE_CALLS: &str = "blog_procedure_calls_total";
/// Procedures the primary did not know in this version, run as interactive transactions instead.
pub const PROCEDURE_FALLBACKS: &str = "blog_procedure_fallbacks_total";
/// The backstop: a write that reached a replica's `query_only` connection. Must stay 0.
pub const REPLICA_LOCAL_WRITE_ATTEMPTS: &str = "blog_replica_local_write_attempts_total";

/// Registers every series at zero, so that `/metrics` shows them before the first event.
pub fn describe() {
    metrics::describe_counter!(
        FORWARDED_WRITES,
        "Statements forwarded from this replica to the primary"
    );
    metrics::describe_histogram!(
        FORWARD_DURATION,
        metrics::Unit::Seconds,
        "Round trip of a forwarded call, catch-up included"
    );
    metrics::describe_histogram!(
        CATCHUP_DURATION,
        metrics::Unit::Seconds,
        "Time waiting for LiteFS to replicate a forwarded commit here"
    );
    metrics::describe_counter!(
        REMOTE_TRANSACTIONS,
        "Transactions run as sessions on the primary"
    );
    metrics::describe_counter!(
        RPC_ERRORS,
        "Forwarded calls that failed for a reason other than SQL"
    );
    metrics::describe_counter!(
        REPLICA_LOCAL_WRITE_ATTEMPTS,
        "Writes that reached a replica's read-only connection (a bug)"
    );
    metrics::describe_counter!(
        STALE_ANSWERS,
        "Forwarded writes that committed but had not reached this node when answered"
    );
    metrics::describe_histogram!(
        WRITER_WAIT,
        metrics::Unit::Seconds,
        "Time a write waited for the primary's one writer"
    );
    metrics::describe_counter!(
        PROCEDURE_CALLS,
        "Write procedures sent from this replica to the primary"
    );
    metrics::describe_counter!(
        PROCEDURE_FALLBACKS,
        "Write procedures the primary did not know, run as interactive transactions instead"
    );
    for counter in [
        PROCEDURE_CALLS,
        PROCEDURE_FALLBACKS,
        STALE_ANSWERS,
        FORWARDED_WRITES,
        REMOTE_TRANSACTIONS,
        RPC_ERRORS,
        REPLICA_LOCAL_WRITE_ATTEMPTS,
    ] {
        metrics::counter!(counter).increment(0);
    }
}

pub fn forwarded(elapsed: Duration) {
    metrics::counter!(FORWARDED_WRITES).increment(1);
    metrics::histogram!(FORWARD_DURATION).record(elapsed.as_secs_f64());
}

pub fn catch_up(elapsed: Duration) {
    metrics::histogram!(CATCHUP_DURATION).record(elapsed.as_secs_f64());
}

pub fn remote_transaction() {
    metrics::counter!(REMOTE_TRANSACTIONS).increment(1);
}

pub fn rpc_error(kind: &'static str) {
    metrics::counter!(RPC_ERRORS, "kind" => kind).increment(1);
}

pub fn backstop_hit() {
    metrics::counter!(REPLICA_LOCAL_WRITE_ATTEMPTS).increment(1);
}

pub fn stale_answer() {
    metrics::counter!(STALE_ANSWERS).increment(1);
}

pub fn writer_wait(elapsed: Duration) {
    metrics::histogram!(WRITER_WAIT).record(elapsed.as_secs_f64());
}

/// A procedure answered by the primary; `elapsed` includes the catch-up, as for statements.
pub fn procedure_call(elapsed: Duration) {
    metrics::counter!(PROCEDURE_CALLS).increment(1);
    metrics::histogram!(FORWARD_DURATION).record(elapsed.as_secs_f64());
}

pub fn procedure_fallback() {
    metrics::counter!(PROCEDURE_FALLBACKS).increment(1);
}
