//! App state changes: deploying, updating, start/stop/restart, removing, and revealing an app's
//! generated secrets (audited, as any look at a secret is). The deploy engine audits and
//! announces what it does on its own (a deploy finishing, a removal); these audit what the
//! owner asked for, under their name.

use crate::deploy::{DeployRequest, Lifecycle, Removal, Started};
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::error::WebError;

/// Starts a deploy; a new one is audited (one already under way or done is not asked again).
pub async fn deploy(
    state: &AppState,
    who: &Ctx,
    slug: &str,
    req: DeployRequest,
) -> Result<Started, WebError> {
    let started = state.deployer.deploy(slug, req).await?;
    if let Started::New(_) = started {
        who.audit(
            state,
            "app.deploy_requested",
            format!("Asked to deploy {slug}"),
        )
        .await?;
    }
    Ok(started)
}

/// Starts updating an app to the catalog's version; returns the deployment carrying it. The
/// deploy engine audits how the update ends.
pub async fn update(state: &AppState, slug: &str) -> Result<i64, WebError> {
    Ok(state.deployer.update(slug).await?)
}

/// Starts "Move to the shared database" (the job audits its outcome); returns its deployment.
pub async fn move_to_shared(state: &AppState, slug: &str) -> Result<i64, WebError> {
    Ok(state.deployer.move_to_shared(slug).await?)
}

/// The app action that moves its data into the device's shared database.
pub const MOVE_TO_SHARED: &str = "move-to-shared";

/// Starts, stops or restarts an app; audited and announced. Returns what was done, in words.
pub async fn lifecycle(
    state: &AppState,
    who: &Ctx,
    slug: &str,
    action: Lifecycle,
) -> Result<String, WebError> {
    let message = state.deployer.lifecycle(slug, action).await?;
    who.audit(state, "app.lifecycle", message.clone()).await?;
    super::toast(state, message.clone());
    Ok(message)
}

/// Removes an app (the deploy engine audits what it removed); announced. Returns what was
/// done, in words.
pub async fn remove(state: &AppState, slug: &str, how: Removal) -> Result<String, WebError> {
    let message = state.deployer.remove(slug, how).await?;
    super::toast(state, message.clone());
    Ok(message)
}

/// An app's generated secrets (e.g. an admin token), for the owner to copy; audited.
pub async fn reveal_secrets(
    state: &AppState,
    who: &Ctx,
    slug: &str,
) -> Result<Vec<(String, String)>, WebError> {
    state
        .store
        .app(slug.to_string())
        .await?
        .ok_or_else(WebError::not_found)?;
    let secrets = state.deployer.secrets(slug).await?;
    who.audit(
        state,
        "app.secrets_viewed",
        format!("Viewed the generated secrets of {slug}"),
    )
    .await?;
    Ok(secrets)
}

/// The account Homelab made for the owner (user and password), audited like the secrets.
pub async fn reveal_sign_in(
    state: &AppState,
    who: &Ctx,
    slug: &str,
) -> Result<Option<(String, String)>, WebError> {
    let sign_in = state.deployer.sign_in(slug).await?;
    if sign_in.is_some() {
        who.audit(
            state,
            "app.secrets_viewed",
            format!("Viewed the sign-in password of {slug}"),
        )
        .await?;
    }
    Ok(sign_in)
}

/// Places an app's name on the DNS again; audited by the deploy engine, announced.
pub async fn retry_name(state: &AppState, who: &Ctx, slug: &str) -> Result<String, WebError> {
    let name = state.deployer.retry_name(slug).await?;
    who.audit(
        state,
        "app.name_retry",
        format!("Asked to set up the name of {slug} again"),
    )
    .await?;
    super::toast(state, format!("{name} is set up."));
    Ok(name)
}

/// Gives an app another name; audited by the deploy engine, announced.
pub async fn rename(
    state: &AppState,
    who: &Ctx,
    slug: &str,
    label: &str,
) -> Result<String, WebError> {
    let name = state.deployer.rename(slug, label).await?;
    who.audit(
        state,
        "app.rename_requested",
        format!("Asked to rename {slug} to {name}"),
    )
    .await?;
    super::toast(state, format!("It is now at {name}."));
    Ok(name)
}
