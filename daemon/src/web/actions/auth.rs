//! Signing in and out: claiming the box (the first admin), signing in (a failed attempt is
//! audited too) and signing out.

use crate::auth::{AuthError, NewSession, bounded_username};
use crate::secrets::Secret;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::error::WebError;

/// Creates the first admin and signs them in; audited under the new admin's name.
pub async fn claim(
    state: &AppState,
    who: &Ctx,
    username: &str,
    password: Secret,
    confirm: Secret,
    setup_code: Option<&str>,
) -> super::Refusable<NewSession> {
    let session = match state
        .auth
        .claim(username, password, confirm, setup_code, &who.client)
        .await
    {
        Ok(session) => session,
        Err(e) => return Ok(Err(e)),
    };
    tracing::info!(username = %session.user.username, "the box was claimed");
    who.audit_as(
        state,
        session.user.username.clone(),
        "auth.claim",
        format!("Created the admin account “{}”", session.user.username),
    )
    .await?;
    Ok(Ok(session))
}

/// Signs in; audited under the user's name, and a wrong password under "anonymous" with what
/// was typed as the name (bounded).
pub async fn login(
    state: &AppState,
    who: &Ctx,
    username: &str,
    password: Secret,
) -> super::Refusable<NewSession> {
    match state.auth.login(username, password, &who.client).await {
        Ok(session) => {
            who.audit_as(
                state,
                session.user.username.clone(),
                "auth.login",
                "Signed in".into(),
            )
            .await?;
            Ok(Ok(session))
        }
        Err(AuthError::BadCredentials) => {
            // What the log and the audit row may repeat of what was typed.
            let shown = bounded_username(username);
            tracing::warn!(username = %shown, client = %who.client.addr, "failed sign-in");
            who.audit_as(
                state,
                "anonymous".into(),
                "auth.login_failed",
                format!("Failed sign-in as “{shown}”"),
            )
            .await?;
            Ok(Err(AuthError::BadCredentials))
        }
        Err(e) => Ok(Err(e)),
    }
}

/// Ends the signed-in session; audited.
pub async fn logout(state: &AppState, who: &Ctx) -> Result<(), WebError> {
    let user = who.user()?;
    state.auth.logout(user).await?;
    who.audit(state, "auth.logout", "Signed out".into()).await
}
