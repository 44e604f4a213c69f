//! The JSON API for devices (`/api/v1/devices`): the list (encoded once per board change),
//! one device, adding, testing a login, "Install Docker for me", checking all now, removing,
//! and its shared databases (listed, restarted, removed).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::{Path, Query};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::Serialize;

use crate::devices::board::Entry;
use crate::devices::{Credential, DeviceError, DeviceInput};
use crate::secrets::Secret;
use crate::web::AppState;
use crate::web::actions;
use crate::web::context::Ctx;
use crate::web::error::WebError;

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
    let (outcome, report) = actions::devices::install_docker(
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
    let d = match actions::devices::add(&state, &ctx, body.into_input()?).await? {
        actions::devices::Added::Device(d) => d,
        // The same 422 as any device error: the failed checks in words.
        actions::devices::Added::NotReady(report) => {
            return Err(DeviceError::NotReady(report).into());
        }
    };
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
    actions::devices::remove(&state, &ctx, id, q.clean).await?;
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
    let cycle = actions::devices::check_all(&state).await?;
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

#[derive(Serialize)]
pub struct SharedDatabasesJson {
    pub shared_databases: Vec<crate::deploy::SharedInstance>,
}

/// The device's shared databases: engine, running, the apps using each, databases kept for
/// removed apps, size and memory now.
pub async fn shared_databases(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<SharedDatabasesJson>, WebError> {
    state
        .store
        .device(id)
        .await?
        .ok_or_else(WebError::not_found)?;
    Ok(Json(SharedDatabasesJson {
        shared_databases: state.deployer.shared_instances(id, true).await?,
    }))
}

#[derive(Serialize)]
pub struct MessageJson {
    pub message: String,
}

pub async fn restart_shared_database(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, engine)): Path<(i64, String)>,
) -> Result<Json<MessageJson>, WebError> {
    let engine = actions::pool::engine(&engine)?;
    let message = actions::pool::restart(&state, &ctx, id, engine).await?;
    Ok(Json(MessageJson { message }))
}

pub async fn remove_shared_database(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, engine)): Path<(i64, String)>,
) -> Result<Json<MessageJson>, WebError> {
    let engine = actions::pool::engine(&engine)?;
    let message = actions::pool::remove(&state, &ctx, id, engine).await?;
    Ok(Json(MessageJson { message }))
}
