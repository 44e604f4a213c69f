//! The JSON face (`/api/v1/...`) and `/healthz`: decodes requests, calls the action layer for
//! state changes (`web::actions`), encodes the answers. One file per area: devices, apps and
//! deployments, appliance updates; health and version here. Errors share one shape,
//! `{ "error": { "code", "message", "request_id" } }`, rendered by the `observe` middleware.

pub mod apps;
pub mod backups;
pub mod devices;
pub mod history;
pub mod recovery;
pub mod updates;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;

use super::AppState;
use super::error::WebError;
use crate::store::SCHEMA_VERSION;

/// Liveness for load balancers and `homelabd healthcheck`: says only ok or not ok.
pub async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "not ok"),
    }
}

#[derive(Serialize)]
pub struct Health {
    pub status: &'static str,
    pub database: &'static str,
    pub uptime_seconds: u64,
}

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let db_ok = state.store.ping().await.is_ok();
    let status = if db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Health {
            status: if db_ok { "ok" } else { "degraded" },
            database: if db_ok { "ok" } else { "unavailable" },
            uptime_seconds: state.started.elapsed().as_secs(),
        }),
    )
}

#[derive(Serialize)]
pub struct Version {
    pub version: &'static str,
    pub schema_version: i64,
}

pub async fn version() -> Json<Version> {
    Json(Version {
        version: crate::VERSION,
        schema_version: SCHEMA_VERSION,
    })
}

pub async fn not_found() -> WebError {
    WebError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "No such API endpoint. The API lives under /api/v1/.",
    )
}
