//! `/api/v1/backups/box`: the box's own backup (its state, the recovery passphrase, back up
//! now) and `/api/v1/setup/restore`: a new box restored from it. Secrets go in, never out.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::backups::DestinationBody;
use crate::deploy::BoxRestore;
use crate::secrets::Secret;
use crate::web::AppState;
use crate::web::actions::recovery as act;
use crate::web::context::Ctx;
use crate::web::error::WebError;

/// Whether a passphrase is set, the last box backup, the restore this box started from.
pub async fn status(State(state): State<AppState>) -> Result<Response, WebError> {
    Ok(Json(serde_json::json!({
        "passphrase_set": state.deployer.recovery_set().await,
        "last": state.deployer.box_backup_status().await,
        "restored": state.deployer.restored_from().await,
    }))
    .into_response())
}

pub async fn back_up(State(state): State<AppState>) -> Result<Response, WebError> {
    let done = act::back_up_box(&state).await?;
    Ok(Json(done).into_response())
}

#[derive(Deserialize)]
pub struct PassphraseBody {
    passphrase: String,
    confirm: String,
    /// A signed-in user's own password (not needed with an API token).
    #[serde(default)]
    password: Option<String>,
}

pub async fn set_passphrase(
    State(state): State<AppState>,
    ctx: Ctx,
    Json(b): Json<PassphraseBody>,
) -> Result<Response, WebError> {
    act::set_passphrase(
        &state,
        &ctx,
        Secret::from_string(b.passphrase),
        Secret::from_string(b.confirm),
        b.password.map(Secret::from_string),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
pub struct RestoreBody {
    #[serde(flatten)]
    place: DestinationBody,
    passphrase: String,
    #[serde(default)]
    setup_code: Option<String>,
}

/// Restores a new box from the newest box backup at the place given; the daemon starts
/// again with it once the answer is out.
pub async fn restore(
    State(state): State<AppState>,
    ctx: Ctx,
    Json(b): Json<RestoreBody>,
) -> Result<Response, WebError> {
    let (_, target, password, key_id, secret) = b.place.into_parts()?;
    let req = BoxRestore {
        target,
        password,
        key_id,
        secret,
        passphrase: Secret::from_string(b.passphrase),
    };
    let manifest = act::restore_box(&state, &ctx, b.setup_code.as_deref(), req).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({
            "made_at": manifest.made_at,
            "version": manifest.version,
            "restarting": true,
        })),
    )
        .into_response())
}
