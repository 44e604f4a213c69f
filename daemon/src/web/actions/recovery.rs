//! The box's own backup: the recovery passphrase, "Back up the box now", and "Restore from a
//! backup" on a new box (which stages the restore and starts the daemon again with it).

use std::time::Duration;

use crate::auth::AuthError;
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
    who: &Ctx,
    passphrase: Secret,
    confirm: Secret,
    password: Option<Secret>,
) -> Result<(), WebError> {
    // Whoever chooses it can open the box's backups (every secret of the homelab).
    super::confirm_owner(
        state,
        who,
        password,
        "choose the recovery passphrase: it opens the box's backups",
    )
    .await?;
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
            if let Err(e) = deployer.back_up_box().await {
                tracing::warn!(error = %e, "the box's backup after a new passphrase did not run");
            }
        });
    }
    Ok(())
}

/// Backs the box's own state up to every destination now, and says how it went. It runs as
/// a task of its own: a browser that goes away does not stop it half way (its record and
/// toast still come).
pub async fn back_up_box(state: &AppState) -> Result<BoxBackup, WebError> {
    let deployer = state.deployer.clone();
    let run = tokio::spawn(async move { deployer.back_up_box().await });
    Ok(run.await.map_err(WebError::internal)??)
}

/// On a box nobody has claimed yet (and always with the setup code from its console): restores
/// the newest box backup at the place given, then starts the daemon again with it. Nothing
/// changes when anything fails, or when the box was claimed while the backup was fetched.
pub async fn restore_box(
    state: &AppState,
    who: &Ctx,
    setup_code: Option<&str>,
    req: BoxRestore,
) -> Result<Manifest, WebError> {
    state.auth.setup_gate(setup_code, &who.client, true).await?;
    // A task of its own: a browser that goes away mid-way must neither cut the restore short
    // before the key it installed on the SSH server is removed again, nor leave a staged
    // restore without the restart that puts it in place.
    let (deployer, auth, restart) = (
        state.deployer.clone(),
        state.auth.clone(),
        state.restart.clone(),
    );
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let staged = async {
            let fetched = deployer.fetch_box(req).await?;
            // Claimed meanwhile (the owner chose to start anew): that wins.
            if auth.claim_status().await?.claimed {
                return Err(WebError::from(AuthError::AlreadyClaimed));
            }
            Ok::<_, WebError>(deployer.stage_box(fetched).await?)
        }
        .await;
        let restarting = staged.is_ok();
        let _ = tx.send(staged);
        if restarting {
            // The answer goes out first; then the daemon stops and starts again with the
            // restored state.
            tokio::time::sleep(Duration::from_millis(500)).await;
            restart.notify_one();
        }
    });
    let manifest = rx
        .await
        .map_err(|_| WebError::internal("the restore stopped unexpectedly"))??;
    tracing::info!(client = %who.client.addr, "a restore from the box's backup was staged");
    Ok(manifest)
}
