//! `/api/v1/backups`: destinations (add, list, check, remove) and an app's backups (back up
//! now, list its snapshots and runs, the files in one of them, restore one). Secrets go in,
//! never out.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::backup::Target;
use crate::secrets::Secret;
use crate::web::AppState;
use crate::web::actions::backups::{self as act, NewDestination};
use crate::web::context::Ctx;
use crate::web::error::WebError;

#[derive(Deserialize)]
pub struct DestinationBody {
    #[serde(default)]
    name: String,
    /// sftp | s3 | rest
    kind: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    bucket: String,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    key_id: String,
    #[serde(default)]
    secret: String,
    /// A REST server: its address (`https://host:port/folder`, no login in it), whether it
    /// only lets backups be added, and its certificate (PEM or SHA-256 fingerprint; empty:
    /// the box pins the server's own when no public authority signed it). Its login goes in
    /// `user` and `password`.
    #[serde(default)]
    url: String,
    #[serde(default)]
    append_only: bool,
    #[serde(default)]
    certificate: String,
}

fn destination_json(d: &crate::store::DestinationRow) -> serde_json::Value {
    let target: Option<Target> = serde_json::from_str(&d.target).ok();
    serde_json::json!({
        "id": d.id,
        "name": d.name,
        "target": target,
        "repository": target.as_ref().map(Target::repository),
        "certificate_fingerprint": match &target {
            Some(Target::Rest { certificate, .. }) => crate::backup::rest::fingerprint(certificate),
            _ => None,
        },
        "host_key": d.host_key,
        "checked_at": d.checked_at,
        "check_ok": d.check_ok,
        "check_message": d.check_message,
        "maintained_at": d.maintained_at,
        "damage": d.damage,
        "space": {
            "stored": d.space.stored, "logical": d.space.logical,
            "disk_total": d.space.disk_total, "disk_free": d.space.disk_free,
            "measured_at": d.space.at,
        },
        "filling_up": crate::deploy::filling_up(&d.name, &d.space),
    })
}

pub async fn destinations(State(state): State<AppState>) -> Result<Response, WebError> {
    let list = state.store.backup_destinations().await?;
    let list: Vec<_> = list.iter().map(destination_json).collect();
    Ok(Json(serde_json::json!({ "destinations": list })).into_response())
}

/// The disks plugged into the box that may hold backups (never the one it runs from).
pub async fn disks(State(state): State<AppState>) -> Result<Response, WebError> {
    let list: Vec<_> = state
        .deployer
        .box_disks()
        .await
        .into_iter()
        .map(|d| {
            serde_json::json!({
                "path": d.mount, "words": d.words(), "usb": d.usb, "model": d.model,
                "name": d.name, "total_bytes": d.total, "free_bytes": d.free,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "disks": list })).into_response())
}

impl DestinationBody {
    /// Where it is, as typed (checked by the action), and its secrets: the SSH login's
    /// password, the storage's key id and secret, or a REST server's password and (in the
    /// key id's place) its login name.
    pub fn into_parts(self) -> Result<(String, Target, Secret, Secret, Secret), WebError> {
        let target = match self.kind.as_str() {
            "sftp" => Target::Sftp {
                host: self.host.trim().to_string(),
                port: self.port.unwrap_or(22),
                user: self.user.trim().to_string(),
                path: self.path.trim().to_string(),
            },
            "s3" => Target::S3 {
                endpoint: self.endpoint.trim().to_string(),
                bucket: self.bucket.trim().to_string(),
                prefix: self.prefix.trim().trim_matches('/').to_string(),
            },
            "disk" => Target::Disk {
                path: self.path.trim().to_string(),
                disk: String::new(),
            },
            "rest" => {
                let target = Target::Rest {
                    url: crate::backup::rest_url(&self.url),
                    append_only: self.append_only,
                    certificate: self.certificate.trim().to_string(),
                };
                return Ok((
                    self.name,
                    target,
                    Secret::from_string(self.password),
                    Secret::from_string(self.user.trim().to_string()),
                    Secret::new(Vec::new()),
                ));
            }
            _ => {
                return Err(WebError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "bad_kind",
                    "kind is sftp (an SSH server or NAS), s3 (S3-compatible storage), rest (a restic REST server) or disk (a disk plugged into the box: path is where it is mounted, or a folder on it).",
                ));
            }
        };
        Ok((
            self.name,
            target,
            Secret::from_string(self.password),
            Secret::from_string(self.key_id),
            Secret::from_string(self.secret),
        ))
    }
}

pub async fn add_destination(
    State(state): State<AppState>,
    Json(b): Json<DestinationBody>,
) -> Result<Response, WebError> {
    let (name, target, password, key_id, secret) = b.into_parts()?;
    let new = match target {
        Target::Sftp { .. } => NewDestination::Sftp { target, password },
        Target::S3 { .. } => NewDestination::S3 {
            target,
            key_id,
            secret,
        },
        // The login name comes in the key id's place (`into_parts`).
        Target::Rest { .. } => NewDestination::Rest {
            target,
            user: key_id,
            password,
        },
        Target::Disk { path, .. } => NewDestination::Disk { folder: path },
    };
    let id = act::add_destination(&state, &name, new).await?;
    let row = state
        .store
        .backup_destination(id)
        .await?
        .ok_or_else(WebError::not_found)?;
    Ok((StatusCode::CREATED, Json(destination_json(&row))).into_response())
}

pub async fn check_destination(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let message = act::check_destination(&state, id).await?;
    Ok(Json(serde_json::json!({ "message": message })).into_response())
}

pub async fn remove_destination(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    act::remove_destination(&state, id).await?;
    Ok(Json(serde_json::json!({ "removed": id })).into_response())
}

#[derive(Deserialize, Default)]
pub struct BackUpBody {
    #[serde(default)]
    destination_id: Option<i64>,
}

pub async fn back_up(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    body: Option<Json<BackUpBody>>,
) -> Result<Response, WebError> {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let id = act::back_up(&state, &slug, body.destination_id).await?;
    Ok(accepted(id))
}

/// The app's snapshots at every destination (read from its device) and its runs here.
pub async fn app_backups(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Response, WebError> {
    let (snapshots, errors) = state.deployer.snapshots_everywhere(&slug).await?;
    let errors: Vec<String> = errors
        .into_iter()
        .map(|e| WebError::from(e).message)
        .collect();
    let runs = state.store.backup_runs(slug.clone(), 50).await?;
    let runs: Vec<_> = runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id, "destination_id": r.destination_id, "deployment_id": r.deployment_id,
                "started_at": r.started_at, "finished_at": r.finished_at, "state": r.state,
                "snapshot_id": r.snapshot_id, "files": r.files, "bytes": r.bytes,
                "added": r.added, "message": r.message,
            })
        })
        .collect();
    let policy = act::policy(&state, Some(&slug)).await?;
    Ok(
        Json(serde_json::json!({ "snapshots": snapshots, "errors": errors, "runs": runs, "policy": policy }))
            .into_response(),
    )
}

/// `?path=` of a snapshot's folder (its top when missing).
#[derive(Deserialize)]
pub struct FolderQuery {
    #[serde(default)]
    path: Option<String>,
}

/// A folder of one of the app's snapshots (read from its device): its entries, folders
/// first, at most `MAX_ENTRIES` of them (`cut_short` says when there are more).
pub async fn snapshot_files(
    State(state): State<AppState>,
    Path((slug, dest, snapshot)): Path<(String, i64, String)>,
    Query(q): Query<FolderQuery>,
) -> Result<Response, WebError> {
    let path = q.path.unwrap_or_else(|| "/".into());
    let folder = state
        .deployer
        .snapshot_folder(&slug, dest, &snapshot, &path)
        .await?;
    Ok(Json(folder).into_response())
}

/// A policy as sent: a preset (`daily`, `hourly`, `weekly`, `off`), or a schedule with keep
/// rules (missing ones are the default's), or for an app `{"follow_default": true}`.
#[derive(Deserialize, Default)]
pub struct PolicyBody {
    #[serde(default)]
    preset: Option<String>,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    keep_within_days: Option<u32>,
    #[serde(default)]
    keep_hourly: Option<u32>,
    #[serde(default)]
    keep_daily: Option<u32>,
    #[serde(default)]
    keep_weekly: Option<u32>,
    #[serde(default)]
    keep_monthly: Option<u32>,
    #[serde(default)]
    follow_default: bool,
}

impl PolicyBody {
    fn into_choice(self) -> Result<act::PolicyChoice, WebError> {
        if self.follow_default {
            return Ok(act::PolicyChoice::FollowDefault);
        }
        if let Some(p) = self.preset {
            return Ok(act::PolicyChoice::Preset(p));
        }
        let d = crate::backup::schedule::Policy::default();
        let Some(schedule) = self.schedule else {
            return Err(WebError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_policy",
                "Send a preset (daily, hourly, weekly, off) or a schedule like \"0 2 * * *\".",
            ));
        };
        Ok(act::PolicyChoice::Own(crate::backup::schedule::Policy {
            schedule,
            keep_within_days: self.keep_within_days.unwrap_or(d.keep_within_days),
            keep_hourly: self.keep_hourly.unwrap_or(d.keep_hourly),
            keep_daily: self.keep_daily.unwrap_or(d.keep_daily),
            keep_weekly: self.keep_weekly.unwrap_or(d.keep_weekly),
            keep_monthly: self.keep_monthly.unwrap_or(d.keep_monthly),
        }))
    }
}

/// The default policy every app without its own follows.
pub async fn default_policy(State(state): State<AppState>) -> Result<Response, WebError> {
    Ok(Json(act::policy(&state, None).await?).into_response())
}

pub async fn set_default_policy(
    State(state): State<AppState>,
    ctx: Ctx,
    Json(b): Json<PolicyBody>,
) -> Result<Response, WebError> {
    act::set_policy(&state, &ctx, None, b.into_choice()?).await?;
    Ok(Json(act::policy(&state, None).await?).into_response())
}

pub async fn set_app_policy(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(slug): Path<String>,
    Json(b): Json<PolicyBody>,
) -> Result<Response, WebError> {
    act::set_policy(&state, &ctx, Some(&slug), b.into_choice()?).await?;
    Ok(Json(act::policy(&state, Some(&slug)).await?).into_response())
}

#[derive(Deserialize, Default)]
pub struct MaintainBody {
    /// Read all the stored data, not this week's quarter.
    #[serde(default)]
    full: bool,
}

/// "Check backup data": prune and check now, in the background; the destination's
/// `maintained_at` and `damage` say when it is done and what it found.
pub async fn maintain_destination(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Option<Json<MaintainBody>>,
) -> Result<Response, WebError> {
    let full = body.map(|Json(b)| b.full).unwrap_or_default();
    act::maintain_destination(&state, id, full).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "checking": id })),
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct RestoreBody {
    destination_id: i64,
    snapshot: String,
}

pub async fn restore(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Json(b): Json<RestoreBody>,
) -> Result<Response, WebError> {
    let id = act::restore(&state, &slug, b.destination_id, &b.snapshot).await?;
    Ok(accepted(id))
}

#[derive(Deserialize)]
pub struct MoveBody {
    device_id: i64,
    #[serde(default)]
    destination_id: Option<i64>,
    #[serde(default)]
    snapshot: Option<String>,
}

/// Moves the app to another device (`snapshot`: from that backup instead of one made now).
pub async fn move_app(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Json(b): Json<MoveBody>,
) -> Result<Response, WebError> {
    let req = crate::deploy::MoveRequest {
        device_id: b.device_id,
        destination_id: b.destination_id,
        snapshot: b.snapshot.filter(|s| !s.trim().is_empty()),
    };
    let id = act::move_app(&state, &slug, req).await?;
    Ok(accepted(id))
}

fn accepted(id: i64) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"deployment_id": id, "state": "validating"})),
    )
        .into_response()
}
