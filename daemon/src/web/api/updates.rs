//! The JSON API for appliance updates (`/api/v1/system/update...`): status, uploading an
//! update file, installing it, restarting into it, and the update channel.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;

use crate::ota::auto::{ChannelSettings, Check, Window};
use crate::ota::{Staged, UpdateStatus};
use crate::web::AppState;
use crate::web::actions;
use crate::web::context::Ctx;
use crate::web::error::WebError;

pub async fn status(State(state): State<AppState>) -> Json<UpdateStatus> {
    Json(state.ota.status().await)
}

/// The update file as the request body (application/octet-stream), checked before it is kept.
pub async fn upload(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Staged>), WebError> {
    let announced = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let staged = actions::updates::upload(&state, &ctx, body.into_data_stream(), announced).await?;
    Ok((StatusCode::CREATED, Json(staged)))
}

#[derive(serde::Serialize)]
pub struct Started {
    version: String,
}

pub async fn install(
    State(state): State<AppState>,
    ctx: Ctx,
) -> Result<(StatusCode, Json<Started>), WebError> {
    let version = actions::updates::install(&state, &ctx).await?;
    Ok((StatusCode::ACCEPTED, Json(Started { version })))
}

pub async fn reboot(State(state): State<AppState>, ctx: Ctx) -> Result<StatusCode, WebError> {
    actions::updates::reboot(&state, &ctx).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn channel(State(state): State<AppState>) -> Json<ChannelSettings> {
    Json(state.ota.channel_settings().await)
}

/// `{"url": "https://…/manifest.json", "window": {"start": "03:00", "end": "05:00",
/// "utc_offset": 60}}`; `window` null or absent: updates only by hand; `url` null: off.
#[derive(serde::Deserialize)]
pub struct ChannelInput {
    url: Option<String>,
    window: Option<WindowInput>,
}

#[derive(serde::Deserialize)]
pub struct WindowInput {
    start: String,
    end: String,
    #[serde(default)]
    utc_offset: i16,
}

pub async fn set_channel(
    State(state): State<AppState>,
    ctx: Ctx,
    Json(input): Json<ChannelInput>,
) -> Result<Json<ChannelSettings>, WebError> {
    let window = match input.window {
        Some(w) => Some(Window::parse(&w.start, &w.end, w.utc_offset)?),
        None => None,
    };
    let saved = actions::updates::set_channel(
        &state,
        &ctx,
        ChannelSettings {
            url: input.url,
            window,
        },
    )
    .await?;
    Ok(Json(saved))
}

pub async fn check(State(state): State<AppState>) -> Result<Json<Check>, WebError> {
    Ok(Json(actions::updates::check(&state).await?))
}

pub async fn download(
    State(state): State<AppState>,
    ctx: Ctx,
) -> Result<(StatusCode, Json<Started>), WebError> {
    let version = actions::updates::download(&state, &ctx).await?;
    Ok((StatusCode::ACCEPTED, Json(Started { version })))
}
