//! A procedure's database error on the wire: the same `DbErr` on the caller as on the primary.
//! SQLite's errors travel as their extended code and message and are rebuilt as genuine sqlx
//! errors (as forwarded statements' are), so `sql_err()` reads a unique violation wherever it
//! happened; cluster errors travel as they are.

use sea_orm::{DbErr, RuntimeErr};
use serde::{Deserialize, Serialize};

use crate::ClusterError;
use crate::connection::{Node, rebuild_error};
use crate::wire::{self, DbFailure, ErrorPhase};

/// A `DbErr`, as it crosses the network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WireDbErr {
    /// `DbErr::Exec`, `Query` or `Conn` of a statement (the phase says which).
    Sql(DbFailure),
    Cluster(ClusterError),
    RecordNotFound(String),
    RecordNotInserted,
    RecordNotUpdated,
    AttrNotSet(String),
    Type(String),
    Custom(String),
    /// Any other `DbErr`, as text; rebuilt as `DbErr::Custom`.
    Other(String),
}

impl WireDbErr {
    pub fn from_db_err(err: &DbErr) -> WireDbErr {
        if let Some(cluster) = ClusterError::find(err) {
            return WireDbErr::Cluster(cluster.clone());
        }
        let (phase, runtime) = match err {
            DbErr::Exec(runtime) => (ErrorPhase::Exec, runtime),
            DbErr::Query(runtime) => (ErrorPhase::Query, runtime),
            DbErr::Conn(runtime) => (ErrorPhase::Conn, runtime),
            DbErr::RecordNotFound(what) => return WireDbErr::RecordNotFound(what.clone()),
            DbErr::RecordNotInserted => return WireDbErr::RecordNotInserted,
            DbErr::RecordNotUpdated => return WireDbErr::RecordNotUpdated,
            DbErr::AttrNotSet(what) => return WireDbErr::AttrNotSet(what.clone()),
            DbErr::Type(what) => return WireDbErr::Type(what.clone()),
            DbErr::Custom(what) => return WireDbErr::Custom(what.clone()),
            other => return WireDbErr::Other(other.to_string()),
        };
        WireDbErr::Sql(match runtime {
            RuntimeErr::SqlxError(err) => wire::failure_from_sqlx(phase, err),
            other => DbFailure {
                phase,
                sqlite: None,
                message: other.to_string(),
            },
        })
    }

    /// The `DbErr` the primary had.
    pub(crate) async fn rebuild(self, node: &Node) -> DbErr {
        match self {
            WireDbErr::Sql(failure) => {
                let phase = failure.phase;
                rebuild_error(node, failure, phase).await
            }
            WireDbErr::Cluster(err) => err.into_db_err(),
            WireDbErr::RecordNotFound(what) => DbErr::RecordNotFound(what),
            WireDbErr::RecordNotInserted => DbErr::RecordNotInserted,
            WireDbErr::RecordNotUpdated => DbErr::RecordNotUpdated,
            WireDbErr::AttrNotSet(what) => DbErr::AttrNotSet(what),
            WireDbErr::Type(what) => DbErr::Type(what),
            WireDbErr::Custom(what) | WireDbErr::Other(what) => DbErr::Custom(what),
        }
    }
}
