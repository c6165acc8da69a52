//! Liveness, readiness and metrics.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use sea_orm::{ConnectionTrait, Statement};

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up.
async fn healthz() -> &'static str {
    "ok\n"
}

/// The database answers and has the blog's schema.
async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    let probe =
        Statement::from_string(state.db.get_database_backend(), "SELECT count(*) FROM tags");
    match state.db.query_one_raw(probe).await {
        Ok(_) => (
            StatusCode::OK,
            format!("ready ({})\n", state.db.role().as_str()),
        ),
        Err(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {err}\n"),
        ),
    }
}

async fn metrics(State(state): State<AppState>) -> String {
    state.metrics.render()
}
