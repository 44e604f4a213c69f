//! The JSON API for apps and deployments (`/api/v1/applications`, `/api/v1/deployments`),
//! shaped like the other API resources: list and show apps with where they run, deploy (with an
//! optional device), lifecycle actions, logs, removal, and deployments with their steps and
//! "What I did".

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::deploy::{DeployRequest, Lifecycle, Removal, Started};
use crate::store::{AppRow, DeploymentRow};
use crate::web::AppState;
use crate::web::actions;
use crate::web::context::Ctx;
use crate::web::error::WebError;

#[derive(Serialize)]
pub struct DeployedJson {
    pub state: String,
    pub message: String,
    pub device_id: i64,
    pub url: String,
    pub version: String,
    pub app_dir: String,
}

#[derive(Serialize)]
pub struct ApplicationJson {
    pub slug: String,
    pub name: String,
    pub version: String,
    pub category: String,
    pub description: String,
    pub deployed: Option<DeployedJson>,
}

fn deployed_json(a: &AppRow) -> DeployedJson {
    DeployedJson {
        state: a.state.to_string(),
        message: a.message.clone(),
        device_id: a.device_id,
        url: a.url.clone(),
        version: a.version.clone(),
        app_dir: a.app_dir.clone(),
    }
}

pub async fn applications(
    State(state): State<AppState>,
) -> Result<Json<Vec<ApplicationJson>>, WebError> {
    let apps = state.store.apps().await?;
    Ok(Json(
        state
            .catalog
            .recipes
            .values()
            .map(|r| ApplicationJson {
                slug: r.manifest.slug.clone(),
                name: r.manifest.name.clone(),
                version: r.manifest.version.clone(),
                category: r.manifest.category.clone(),
                description: r.manifest.description.clone(),
                deployed: apps
                    .iter()
                    .find(|a| a.slug == r.manifest.slug)
                    .map(deployed_json),
            })
            .collect(),
    ))
}

pub async fn application(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<serde_json::Value>, WebError> {
    let r = state
        .catalog
        .recipes
        .get(&slug)
        .ok_or_else(WebError::not_found)?;
    let app = state.store.app(slug.clone()).await?;
    let placement = state
        .deployer
        .plan(&slug, &Default::default())
        .await?
        .into_iter()
        .map(|v| {
            serde_json::json!({
                "device_id": v.device_id, "device": v.name, "score": v.score().round(),
                "eligible": v.eligible(), "reason": v.reason(),
            })
        })
        .collect::<Vec<_>>();
    let m = &r.manifest;
    Ok(Json(serde_json::json!({
        "slug": m.slug,
        "name": m.name,
        "version": m.version,
        "category": m.category,
        "description": m.description,
        "requirements": {
            "ram_min_mb": m.requirements.ram_min_mb,
            "ram_recommended_mb": m.requirements.ram_recommended_mb,
            "storage_min_gb": m.requirements.storage_min_gb,
            "storage_recommended_gb": m.requirements.storage_recommended_gb,
            "cpu_min_cores": m.requirements.cpu_min_cores,
            "cpu_recommended_cores": m.requirements.cpu_recommended_cores,
        },
        "architectures": m.architectures,
        "settings": m.settings.iter().map(|s| serde_json::json!({
            "name": s.name, "label": s.label, "kind": s.kind, "default": s.default,
        })).collect::<Vec<_>>(),
        "placement": placement,
        "deployed": app.as_ref().map(deployed_json),
    })))
}

pub async fn deploy(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(slug): Path<String>,
    body: Option<Json<DeployRequest>>,
) -> Result<Response, WebError> {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    Ok(
        match actions::apps::deploy(&state, &ctx, &slug, req).await? {
            Started::New(id) => accepted(id),
            Started::InFlight(id) => {
                Json(serde_json::json!({"deployment_id": id, "in_progress": true})).into_response()
            }
            Started::AlreadyDeployed(app) => Json(serde_json::json!({
                "already_deployed": true,
                "deployed": deployed_json(&app),
            }))
            .into_response(),
        },
    )
}

/// 202 with the deployment to follow.
fn accepted(id: i64) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"deployment_id": id, "state": "validating"})),
    )
        .into_response()
}

pub async fn action(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((slug, action)): Path<(String, String)>,
) -> Result<Response, WebError> {
    if action == "update" {
        return Ok(accepted(actions::apps::update(&state, &slug).await?));
    }
    if action == actions::apps::MOVE_TO_SHARED {
        return Ok(accepted(
            actions::apps::move_to_shared(&state, &slug).await?,
        ));
    }
    let action = Lifecycle::parse(&action).ok_or_else(|| {
        WebError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Unknown action; use start, stop, restart, update or move-to-shared.",
        )
    })?;
    let message = actions::apps::lifecycle(&state, &ctx, &slug, action).await?;
    Ok(Json(serde_json::json!({ "message": message })).into_response())
}

#[derive(Deserialize)]
pub struct RemoveQuery {
    #[serde(default)]
    delete_data: bool,
    /// The device is gone for good: forget the app here without touching it.
    #[serde(default)]
    forget: bool,
}

pub async fn remove(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> Result<Json<serde_json::Value>, WebError> {
    let how = Removal::from_choices(q.forget, q.delete_data);
    let message = actions::apps::remove(&state, &slug, how).await?;
    Ok(Json(serde_json::json!({ "message": message })))
}

#[derive(Deserialize)]
pub struct LogsQuery {
    #[serde(default = "default_lines")]
    lines: u32,
}

fn default_lines() -> u32 {
    200
}

pub async fn logs(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Json<serde_json::Value>, WebError> {
    let logs = state.deployer.logs(&slug, q.lines.clamp(1, 5000)).await?;
    Ok(Json(serde_json::json!({ "logs": logs })))
}

fn deployment_summary(d: &DeploymentRow) -> serde_json::Value {
    serde_json::json!({
        "id": d.id, "slug": d.slug, "kind": d.kind, "device_id": d.device_id,
        "device": d.device_name, "state": d.state.as_str(), "progress": d.progress,
        "message": d.message, "error": d.error, "started_at": d.started_at,
        "finished_at": d.finished_at,
    })
}

pub async fn deployments(
    State(state): State<AppState>,
) -> Result<Json<Vec<serde_json::Value>>, WebError> {
    let list = state.store.deployments(None, 200).await?;
    Ok(Json(list.iter().map(deployment_summary).collect()))
}

pub async fn deployment(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, WebError> {
    let d = state
        .store
        .deployment(id)
        .await?
        .ok_or_else(WebError::not_found)?;
    let steps = state.store.steps(id).await?;
    let actions = state.store.actions(id).await?;
    let mut j = deployment_summary(&d);
    j["placement"] = serde_json::from_str(&d.placement).unwrap_or_default();
    j["compose"] = d.compose.clone().into();
    // Names only: values (settings and secrets alike) are never sent back.
    j["env_keys"] = serde_json::from_str(&d.env_keys).unwrap_or_default();
    j["steps"] = steps
        .iter()
        .map(|s| serde_json::json!({"seq": s.seq, "step": s.step, "status": s.status}))
        .collect();
    j["actions"] = actions
        .iter()
        .map(|a| {
            serde_json::json!({
                "what": a.what, "outcome": a.outcome, "millis": a.millis,
                "at": a.at, "output": a.output,
            })
        })
        .collect();
    Ok(Json(j))
}
