//! Appliance update state changes: receiving an update file, discarding it, installing it,
//! restarting into it, the update channel (setting it, checking it, downloading from it). The
//! update engine announces its own progress (`Event::Update`).

use crate::ota::Phase;
use crate::ota::Staged;
use crate::ota::auto::{ChannelSettings, Check};
use crate::ota::channel::shown;
use crate::units::human_bytes;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::error::WebError;

/// Receives an update file (checked before it is kept); audited whether kept or refused.
/// `announced` is the size the sender declared.
pub async fn upload<S, E>(
    state: &AppState,
    who: &Ctx,
    body: S,
    announced: Option<u64>,
) -> Result<Staged, WebError>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let staged = state.ota.receive(body, announced).await;
    let what = match &staged {
        Ok(s) => format!(
            "Uploaded update file: Homelab {} ({})",
            s.version,
            human_bytes(s.size)
        ),
        Err(e) => format!("Refused an update file: {e}"),
    };
    who.audit(state, "system.update", what).await?;
    Ok(staged?)
}

/// Removes the kept update file; audited.
pub async fn discard(state: &AppState, who: &Ctx) -> Result<(), WebError> {
    state.ota.discard().await?;
    who.audit(
        state,
        "system.update",
        "Removed an uploaded update file".into(),
    )
    .await
}

/// Starts installing the kept update file; audited. Returns its version.
pub async fn install(state: &AppState, who: &Ctx) -> Result<String, WebError> {
    let version = state.ota.install().await?;
    who.audit(
        state,
        "system.update",
        format!("Started installing update {version}"),
    )
    .await?;
    Ok(version)
}

/// Asks for a restart; audited once it is asked (the log never claims a restart that was not).
/// Returns the version the restart starts, when an update is installed and waiting.
pub async fn reboot(state: &AppState, who: &Ctx) -> Result<Option<String>, WebError> {
    let status = state.ota.status().await;
    let version = (status.progress.phase == Phase::Installed)
        .then(|| status.progress.version.clone())
        .flatten();
    state.ota.reboot().await?;
    who.audit(
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

/// Saves the update channel and window; audited in words. Returns them as stored.
pub async fn set_channel(
    state: &AppState,
    who: &Ctx,
    settings: ChannelSettings,
) -> Result<ChannelSettings, WebError> {
    state.ota.set_channel(settings).await?;
    let saved = state.ota.channel_settings().await;
    let what = match (saved.url.as_deref().map(shown), &saved.window) {
        (None, _) => "Turned the update channel off".to_string(),
        (Some(url), None) => format!("Set the update channel to {url} (updates only by hand)"),
        (Some(url), Some(w)) => format!(
            "Set the update channel to {url}, with automatic updates {}",
            w.describe()
        ),
    };
    who.audit(state, "system.update", what).await?;
    Ok(saved)
}

/// Asks the update channel what it offers now (not audited: it changes nothing but the
/// remembered answer, which the update engine announces).
pub async fn check(state: &AppState) -> Result<Check, WebError> {
    Ok(state.ota.check_channel().await?)
}

/// Starts downloading the channel's update; audited. Returns its version.
pub async fn download(state: &AppState, who: &Ctx) -> Result<String, WebError> {
    let version = state.ota.download().await?;
    who.audit(
        state,
        "system.update",
        format!("Started downloading update {version} from the update channel"),
    )
    .await?;
    Ok(version)
}
