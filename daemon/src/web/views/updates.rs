//! Settings → Updates: the running version and the A/B slots, uploading an update file,
//! installing it with live progress, restarting into it, and how the last update ended.

use askama::Template;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::{Section, format_time, page};
use crate::devices::health::human_bytes;
use crate::ota::{Phase, Staged, UpdateStatus};
use crate::store::UiMode;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::error::WebError;

#[derive(Template)]
#[template(path = "partials/update_panel.html")]
struct Panel {
    s: UpdateStatus,
    advanced: bool,
    last_when: String,
    staged_size: String,
}

#[derive(Template)]
#[template(path = "pages/updates.html")]
struct UpdatesPage {
    panel: String,
}

#[derive(Template)]
#[template(path = "partials/update_restarting.html")]
struct Restarting {
    version: Option<String>,
}

async fn panel_html(state: &AppState, ctx: &Ctx) -> Result<String, WebError> {
    let s = state.ota.status().await;
    let advanced = ctx.user()?.ui_mode == UiMode::Advanced;
    Ok(Panel {
        last_when: s
            .last_result
            .as_ref()
            .map(|l| format_time(l.at))
            .unwrap_or_default(),
        staged_size: s
            .staged
            .as_ref()
            .map(|st| human_bytes(st.size))
            .unwrap_or_default(),
        s,
        advanced,
    }
    .render()?)
}

pub async fn show(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let panel = panel_html(&state, &ctx).await?;
    page(
        &ctx,
        Section::Settings,
        "Updates",
        UpdatesPage { panel }.render()?,
    )
}

pub async fn panel(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    Ok(Html(panel_html(&state, &ctx).await?).into_response())
}

pub async fn install(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    start_install(&state, &ctx).await?;
    panel(State(state), ctx).await
}

pub async fn discard(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    state.ota.discard().await?;
    ctx.audit(
        &state,
        "system.update",
        "Removed an uploaded update file".into(),
    )
    .await?;
    panel(State(state), ctx).await
}

pub async fn reboot(State(state): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let version = request_reboot(&state, &ctx).await?;
    Ok(Html(Restarting { version }.render()?).into_response())
}

async fn start_install(state: &AppState, ctx: &Ctx) -> Result<String, WebError> {
    let version = state.ota.install().await?;
    ctx.audit(
        state,
        "system.update",
        format!("Started installing update {version}"),
    )
    .await?;
    Ok(version)
}

/// Returns the version the restart starts, when an update is installed and waiting.
async fn request_reboot(state: &AppState, ctx: &Ctx) -> Result<Option<String>, WebError> {
    let status = state.ota.status().await;
    let version = (status.progress.phase == Phase::Installed)
        .then(|| status.progress.version.clone())
        .flatten();
    // Asked first, audited once it is asked: the log never claims a restart that was not.
    state.ota.reboot().await?;
    ctx.audit(
        state,
        "system.reboot",
        match &version {
            Some(v) => format!("Restarted the box to start Homelab {v}"),
            None => "Restarted the box".into(),
        },
    )
    .await?;
    Ok(version)
}

// ---- JSON API ---------------------------------------------------------------------------

pub async fn api_status(State(state): State<AppState>) -> Json<UpdateStatus> {
    Json(state.ota.status().await)
}

/// The update file as the request body (application/octet-stream), checked before it is kept.
pub async fn api_upload(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Staged>), WebError> {
    let announced = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let staged = state.ota.receive(body.into_data_stream(), announced).await;
    let what = match &staged {
        Ok(s) => format!(
            "Uploaded update file: Homelab {} ({})",
            s.version,
            human_bytes(s.size)
        ),
        Err(e) => format!("Refused an update file: {e}"),
    };
    ctx.audit(&state, "system.update", what).await?;
    Ok((StatusCode::CREATED, Json(staged?)))
}

#[derive(serde::Serialize)]
pub struct Started {
    version: String,
}

pub async fn api_install(
    State(state): State<AppState>,
    ctx: Ctx,
) -> Result<(StatusCode, Json<Started>), WebError> {
    let version = start_install(&state, &ctx).await?;
    Ok((StatusCode::ACCEPTED, Json(Started { version })))
}

pub async fn api_reboot(State(state): State<AppState>, ctx: Ctx) -> Result<StatusCode, WebError> {
    request_reboot(&state, &ctx).await?;
    Ok(StatusCode::ACCEPTED)
}
