#![doc = include_str!("../README.md")]

// The modules:
// - `litefs`: the role (primary, replica, which primary) and the replication position, followed
//   live from LiteFS's `/events` stream and the files in its mount.
// - `statement`: what a SQL string does (read, write, transaction control, PRAGMA classes...),
//   decided before it runs anywhere.
// - `writer`: the primary's one writer: a FIFO lock every write takes, autocommit writes run
//   atomically with their idempotency key, connections never returned inside a transaction;
//   with group commit, autocommit writes waiting together share one transaction (`group`).
// - `sqlite`: the scratch connection that rebuilds forwarded rows, results and errors as
//   genuine sqlx values. `wire`: what crosses the network (storage classes, positions).
// - `rpc`, `server`, `client`, `auth`, `dedup`: the tarpc service, the primary's
//   executor with its remote-transaction sessions, the replica's forwarder, the secret
//   handshake, and the idempotency keys that make a forwarded write run at most once.
// - `connection`, `transaction`: the SeaORM-facing handle and its transactions.
// - `procedure`: write procedures, a whole transaction run on the primary by name in one RPC.
// - `interruptible`: reads that SQLite stops once nobody waits for them (opt-in, per request).
//
// A write on a replica is sent to the primary, the primary's result is returned as it is, and
// the write is never attempted locally: the replica then waits until LiteFS has brought the
// commit's position here, so the same node reads its own write. A write's outcome is reported
// as one of three: done, failed (did not and will not commit), or unknown (said as such, only
// when the primary cannot be asked).

mod auth;
#[cfg(feature = "axum")]
pub mod axum;
mod builder;
mod client;
mod connection;
mod consistency;
mod dedup;
mod drain;
mod error;
mod group;
#[cfg(test)]
mod hardening;
mod interruptible;
mod litefs;
mod metrics;
mod pools;
mod procedure;
mod rpc;
mod server;
mod sqlite;
mod statement;
#[cfg(feature = "testing")]
pub mod testing;
mod transaction;
mod wire;
mod writer;

pub use builder::{Builder, StartError};
pub use connection::{ClusterConnection, RowStream};
pub use consistency::{Written, track_writes};
pub use error::ClusterError;
pub use interruptible::interruptible_reads;
pub use litefs::Role;
pub use metrics::describe as describe_metrics;
pub use procedure::{Failure, Procedure, ProcedureError, Procedures, fingerprint};
pub use transaction::ClusterTransaction;
pub use wire::Pos;
