//! JSON API for the configuration file and the history of the desired state.
//!
//! - `POST /api/v1/config/export` `{passphrase}` → the configuration file.
//! - `POST /api/v1/config/import` `{file, passphrase, apply}` → the changes it makes (a dry
//!   run unless `apply`); applying restarts the daemon.
//! - `GET /api/v1/config/history`, `GET …/history/{id}`, `POST …/history/{id}/revert`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::desired::Change;
use crate::secrets::Secret;
use crate::web::AppState;
use crate::web::actions::history as act;
use crate::web::context::Ctx;
use crate::web::error::WebError;

#[derive(Deserialize)]
pub struct ExportBody {
    passphrase: String,
    /// A signed-in user's own password (not needed with an API token).
    #[serde(default)]
    password: Option<String>,
}

pub async fn export(
    State(state): State<AppState>,
    ctx: Ctx,
    Json(b): Json<ExportBody>,
) -> Result<Response, WebError> {
    let bytes = act::export(
        &state,
        &ctx,
        b.password.map(Secret::from_string),
        Secret::from_string(b.passphrase.clone()),
        Secret::from_string(b.passphrase),
    )
    .await?;
    Ok(crate::web::views::history::file_response(bytes))
}

fn changes_json(changes: &[Change]) -> Vec<Value> {
    changes
        .iter()
        .map(|c| {
            json!({
                "area": c.area,
                "words": c.words,
                "by_hand": c.step.by_hand(),
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct ImportBody {
    /// The file as exported (a JSON object, or its text).
    file: Value,
    passphrase: String,
    #[serde(default)]
    apply: bool,
}

/// The body is read here (up to the largest configuration file), not by the router's form
/// limit, which is far smaller than a homelab with many apps.
pub async fn import(
    State(state): State<AppState>,
    ctx: Ctx,
    body: Body,
) -> Result<Response, WebError> {
    let bytes = crate::web::views::history::read_file(body).await?;
    let b: ImportBody = serde_json::from_slice(&bytes).map_err(|e| {
        WebError::bad_request(format!(
            "Send {{\"file\": <the exported file>, \"passphrase\": \"…\", \"apply\": false}} ({e})."
        ))
    })?;
    let file = match b.file {
        Value::String(text) => text.into_bytes(),
        other => serde_json::to_vec(&other).map_err(WebError::internal)?,
    };
    act::upload(&state, file).await?;
    let preview = act::preview(&state, Secret::from_string(b.passphrase)).await?;
    let mut answer = json!({
        "exported_at": preview.exported_at,
        "homelab": preview.homelab,
        "changes": changes_json(&preview.changes),
        "refused": preview.refused,
        "applied": false,
    });
    if !b.apply {
        return Ok(Json(answer).into_response());
    }
    if let Some(why) = preview.refused {
        return Err(WebError::new(StatusCode::CONFLICT, "not_fresh", why));
    }
    let words = act::apply(&state, &ctx).await?;
    answer["applied"] = true.into();
    answer["message"] = words.into();
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

pub async fn revisions(State(state): State<AppState>) -> Result<Response, WebError> {
    let list: Vec<Value> = act::revisions(&state, 200)
        .await?
        .into_iter()
        .map(|r| json!({"id": r.id, "at": r.at, "actor": r.actor, "what": r.what}))
        .collect();
    Ok(Json(list).into_response())
}

pub async fn revision(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let v = act::revision(&state, id).await?;
    Ok(Json(json!({
        "id": v.revision.id,
        "at": v.revision.at,
        "actor": v.revision.actor,
        "what": v.revision.what,
        "changed": changes_json(&v.changed),
        "revert": changes_json(&v.revert),
    }))
    .into_response())
}

pub async fn revert(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let r = act::revert(&state, &ctx, id).await?;
    let pairs = |v: &[(String, String)]| -> Vec<Value> {
        v.iter()
            .map(|(w, why)| json!({"words": w, "why": why}))
            .collect()
    };
    Ok(Json(json!({
        "made": r.made,
        "by_hand": pairs(&r.by_hand),
        "failed": pairs(&r.failed),
    }))
    .into_response())
}
