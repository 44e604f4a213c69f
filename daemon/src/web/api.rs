//! The JSON API (`/api/v1/...`) and `/healthz`. Errors share one shape,
//! `{ "error": { "code", "message", "request_id" } }`, rendered by the `observe` middleware.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
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

// ---- Devices ----------------------------------------------------------------------------

use axum::extract::{Path, Query};
use serde::Deserialize;

use super::context::Ctx;
use crate::devices::board::Entry;
use crate::devices::{Credential, DeviceInput};
use crate::secrets::Secret;

#[derive(Serialize)]
pub struct DeviceJson {
    pub id: i64,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub docker_socket: String,
    /// online | degraded | offline | blocked | unknown (not checked yet)
    pub state: String,
    pub reason: String,
    pub last_seen_at: Option<i64>,
    pub checked_at: Option<i64>,
    /// Share of the last 24 h the device was reachable (0..1; None before the first check).
    pub uptime_24h: Option<f64>,
    /// The last poll's facts (`devices::facts::Facts`), passed through as stored: parsing and
    /// re-encoding them per device was most of the list's cost with 100 devices.
    pub facts: Option<Box<serde_json::value::RawValue>>,
}

fn device_json(e: &Entry) -> DeviceJson {
    let (d, s) = (&e.device, e.status.as_ref());
    DeviceJson {
        id: d.id,
        name: d.name.clone(),
        host: d.host.clone(),
        port: d.port,
        username: d.username.clone(),
        docker_socket: d.docker_socket.clone(),
        state: s
            .map(|s| s.state.clone())
            .unwrap_or_else(|| "unknown".into()),
        reason: s.map(|s| s.reason.clone()).unwrap_or_default(),
        last_seen_at: s.and_then(|s| s.last_seen_at),
        checked_at: s.map(|s| s.checked_at),
        uptime_24h: e.uptime_24h,
        facts: s.and_then(|s| serde_json::value::RawValue::from_string(s.facts.clone()).ok()),
    }
}

pub async fn devices(State(state): State<AppState>) -> Result<Response, WebError> {
    let board = state.devices.board().await?;
    let body = state.device_list.get_or(board.generation(), || {
        let list: Vec<DeviceJson> = board.entries.iter().map(device_json).collect();
        serde_json::to_vec(&list)
            .map(Bytes::from)
            .map_err(WebError::internal)
    })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

pub async fn device(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<DeviceJson>, WebError> {
    let board = state.devices.board().await?;
    let entry = board.entry(id).ok_or_else(WebError::not_found)?;
    Ok(Json(device_json(entry)))
}

/// JSON body for adding or testing a device: a password or a private key.
#[derive(Deserialize)]
pub struct DeviceBody {
    name: String,
    host: String,
    #[serde(default)]
    port: Option<u16>,
    username: String,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    private_key: Option<String>,
    #[serde(default)]
    passphrase: Option<String>,
    #[serde(default)]
    keep_password: bool,
    #[serde(default)]
    docker_socket: Option<String>,
}

impl DeviceBody {
    fn into_input(self) -> Result<DeviceInput, WebError> {
        let credential = match (self.password, self.private_key) {
            (Some(p), None) => Credential::Password(Secret::from_string(p)),
            (None, Some(k)) => Credential::Key {
                private_key: Secret::from_string(k),
                passphrase: self.passphrase.map(Secret::from_string),
            },
            _ => {
                return Err(WebError::bad_request(
                    "Send exactly one of `password` or `private_key`.",
                ));
            }
        };
        Ok(DeviceInput {
            name: self.name,
            host: self.host,
            port: self.port.unwrap_or(22),
            username: self.username,
            credential,
            keep_password: self.keep_password,
            docker_socket: self.docker_socket.unwrap_or_default(),
        })
    }
}

pub async fn test_device(
    State(state): State<AppState>,
    Json(body): Json<DeviceBody>,
) -> Result<Json<crate::devices::checks::Report>, WebError> {
    let input = body.into_input()?;
    Ok(Json(state.devices.test_connection(&input).await?))
}

/// "Install Docker for me" over the API: the device body plus, optionally, the password sudo
/// wants (defaults to the login password) and the fingerprint the caller's test showed.
#[derive(Deserialize)]
pub struct InstallDockerBody {
    #[serde(flatten)]
    device: DeviceBody,
    #[serde(default)]
    sudo_password: Option<String>,
    #[serde(default)]
    host_key_fingerprint: Option<String>,
}

#[derive(Serialize)]
pub struct InstallDockerJson {
    installed: bool,
    seconds: Option<f64>,
    steps: Vec<String>,
    error: Option<String>,
    log: Option<String>,
    /// The checks run again after the install.
    report: crate::devices::checks::Report,
}

pub async fn install_docker(
    State(state): State<AppState>,
    ctx: Ctx,
    Json(body): Json<InstallDockerBody>,
) -> Result<Json<InstallDockerJson>, WebError> {
    let input = body.device.into_input()?;
    let (outcome, report) = super::views::devices::run_docker_install(
        &state,
        &ctx,
        input,
        body.sudo_password.unwrap_or_default(),
        body.host_key_fingerprint.unwrap_or_default(),
    )
    .await?;
    Ok(Json(match outcome {
        Ok(done) => InstallDockerJson {
            installed: true,
            seconds: Some(done.seconds),
            steps: done.steps,
            error: None,
            log: None,
            report,
        },
        Err(e) => InstallDockerJson {
            installed: false,
            seconds: None,
            steps: Vec::new(),
            error: Some(e.to_string()),
            log: e.log().map(str::to_string),
            report,
        },
    }))
}

pub async fn add_device(
    State(state): State<AppState>,
    ctx: Ctx,
    Json(body): Json<DeviceBody>,
) -> Result<(StatusCode, Json<DeviceJson>), WebError> {
    let d = state.devices.adopt(body.into_input()?).await?;
    ctx.audit(
        &state,
        "device.add",
        format!(
            "Added device “{}” ({}@{}:{})",
            d.name, d.username, d.host, d.port
        ),
    )
    .await?;
    // Its first figures right away rather than at the next poll.
    state.devices.check_soon(d.clone());
    let added = Entry {
        device: d,
        status: None,
        facts: None,
        uptime_24h: None,
        containers: None,
    };
    Ok((StatusCode::CREATED, Json(device_json(&added))))
}

#[derive(Deserialize)]
pub struct RemoveQuery {
    #[serde(default)]
    clean: bool,
}

pub async fn remove_device(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    Query(q): Query<RemoveQuery>,
) -> Result<StatusCode, WebError> {
    let name = state.devices.remove(id, q.clean).await?;
    ctx.audit(&state, "device.remove", format!("Removed device “{name}”"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct PollSummary {
    pub devices: usize,
    pub online: usize,
    /// Devices that have not answered yet (unreachable ones take up to the poll timeout); their
    /// results are stored and announced to open pages when they come.
    pub waiting: usize,
    pub millis: u128,
}

/// Checks every device now (as the poller would) and says how long the devices that answer
/// took; it does not wait for the ones that do not.
pub async fn refresh_devices(State(state): State<AppState>) -> Result<Json<PollSummary>, WebError> {
    let started = std::time::Instant::now();
    let cycle = state.devices.poll_all().await?;
    Ok(Json(PollSummary {
        devices: cycle.checked.len() + cycle.waiting,
        online: cycle
            .checked
            .iter()
            .filter(|(_, s)| *s == crate::devices::facts::State::Online)
            .count(),
        waiting: cycle.waiting,
        millis: started.elapsed().as_millis(),
    }))
}
