//! The box's own backup: the recovery passphrase, "Back up the box now", and "Restore from a
//! backup" on a new box (which stages the restore and starts the daemon again with it).

use std::time::Duration;

use crate::backup::bundle::Manifest;
use crate::deploy::{BoxBackup, BoxRestore};
use crate::secrets::Secret;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::error::WebError;

/// Sets (or changes) the recovery passphrase, then backs the box up in the background so its
/// backups open with it from now on.
pub async fn set_passphrase(
    state: &AppState,
    passphrase: Secret,
    confirm: Secret,
) -> Result<(), WebError> {
    state
        .deployer
        .set_recovery_passphrase(passphrase, confirm)
        .await?;
    let has_destination = !state.store.backup_destinations().await?.is_empty();
    super::toast(
        state,
        if has_destination {
            "Recovery passphrase set. The box is backing itself up with it now.".into()
        } else {
            "Recovery passphrase set. Add a destination and the box backs itself up there.".into()
        },
    );
    if has_destination {
        let deployer = state.deployer.clone();
        tokio::spawn(async move {
            if let Err(e) = Box::pin(deployer.back_up_box()).await {
                tracing::warn!(error = %e, "the box's backup after a new passphrase did not run");
            }
        });
    }
    Ok(())
}

/// Backs the box's own state up to every destination now, and says how it went.
pub async fn back_up_box(state: &AppState) -> Result<BoxBackup, WebError> {
    // Boxed: restic's runs make a deep future, kept off the worker's stack.
    Ok(Box::pin(state.deployer.back_up_box()).await?)
}

/// On a box nobody has claimed yet (the setup code after the open window, as for creating the
/// owner's account): restores the newest box backup at the place given, then starts the
/// daemon again with it. Nothing changes when anything fails.
pub async fn restore_box(
    state: &AppState,
    who: &Ctx,
    setup_code: Option<&str>,
    req: BoxRestore,
) -> Result<Manifest, WebError> {
    state.auth.setup_gate(setup_code, &who.client).await?;
    let manifest = Box::pin(state.deployer.restore_box(req)).await?;
    tracing::info!(client = %who.client.addr, "a restore from the box's backup was staged");
    // The answer goes out first; then the daemon stops and starts again with the restored
    // state (`restart_wanted`).
    let restart = state.restart.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        restart.notify_one();
    });
    Ok(manifest)
}
