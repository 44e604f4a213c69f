//! Settings state changes: the display mode, the admin password, signing out everywhere, API
//! tokens, and the extra names the box answers to.

use crate::auth::NewSession;
use crate::secrets::Secret;
use crate::store::{ApiTokenRow, UiMode};
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::error::WebError;
use crate::web::hosts::NameError;

/// Switches the signed-in user's display mode; audited.
pub async fn set_mode(state: &AppState, who: &Ctx, mode: UiMode) -> Result<(), WebError> {
    let user = who.user()?;
    state.store.set_ui_mode(user.user_id, mode).await?;
    who.audit(
        state,
        "settings.mode",
        format!("Switched the display to {}", mode.as_str()),
    )
    .await
}

/// Changes the admin password (every session ends, this one too); audited. Returns the new
/// session for this browser.
pub async fn change_password(
    state: &AppState,
    who: &Ctx,
    current: Secret,
    new: Secret,
    confirm: Secret,
) -> super::Refusable<NewSession> {
    let user = who.user()?;
    let session = match state
        .auth
        .change_password(&user.username, current, new, confirm, &who.client)
        .await
    {
        Ok(session) => session,
        Err(e) => return Ok(Err(e)),
    };
    who.audit(
        state,
        "auth.password_changed",
        "Changed the admin password; all other sessions were signed out".into(),
    )
    .await?;
    Ok(Ok(session))
}

/// Ends every session of the signed-in user; audited. Returns how many ended.
pub async fn sign_out_everywhere(state: &AppState, who: &Ctx) -> Result<usize, WebError> {
    let user = who.user()?;
    let n = state.auth.logout_everywhere(user.user_id).await?;
    who.audit(
        state,
        "auth.sign_out_everywhere",
        format!("Signed out everywhere ({n} sessions ended)"),
    )
    .await?;
    Ok(n)
}

/// Creates an API token; audited and announced. The value is returned this once.
pub async fn create_token(
    state: &AppState,
    who: &Ctx,
    name: &str,
    password: Option<Secret>,
) -> Result<(ApiTokenRow, Secret), WebError> {
    let user = who.user()?;
    // A token outlives the session that makes it.
    super::confirm_owner(state, who, password, "create a token").await?;
    let (row, token) = state.auth.create_api_token(name, user.user_id).await?;
    who.audit(
        state,
        "api_token.create",
        format!("Created API token “{}” ({}…)", row.name, row.prefix),
    )
    .await?;
    super::toast(state, format!("API token “{}” created.", row.name));
    Ok((row, token))
}

/// Revokes an API token; audited when there was one to revoke (revoking twice is fine: the
/// second time there is simply nothing left).
pub async fn revoke_token(state: &AppState, who: &Ctx, id: i64) -> Result<(), WebError> {
    if let Some(name) = state.store.revoke_api_token(id).await? {
        who.audit(
            state,
            "api_token.revoke",
            format!("Revoked API token “{name}”"),
        )
        .await?;
    }
    Ok(())
}

/// Saves the extra names the box answers to (the DNS-rebinding allow-list); audited. Returns
/// the names as saved and what now holds, in words.
pub async fn save_host_names(
    state: &AppState,
    who: &Ctx,
    input: &str,
) -> Result<(Vec<String>, String), WebError> {
    let names = match state.hosts.save(&state.store, input).await {
        Ok(names) => names,
        Err(NameError::Store(e)) => return Err(e.into()),
        Err(e) => return Err(WebError::bad_request(e.to_string())),
    };
    let detail = if names.is_empty() {
        "Homelab answers only to its built-in names and addresses".to_string()
    } else {
        format!("Homelab also answers to {}", names.join(", "))
    };
    who.audit(state, "settings.host_names", detail.clone())
        .await?;
    Ok((names, detail))
}
