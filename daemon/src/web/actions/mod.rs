//! The action layer: every state change the web makes, whichever face asked for it (an HTML
//! form in `views`, a JSON call in `api`). An action does the domain call, writes the audit
//! record and publishes the live event, then returns a typed result (or a [`WebError`]) that
//! the face renders as a partial, a redirect or JSON. So the form and the API cannot drift: the
//! same request audits and announces the same thing through either.
//!
//! Actions take who asked (the request's [`Ctx`]: its principal, client address and request
//! id, which the audit record carries) and never look at what kind of answer the client wants.
//!
//! [`WebError`]: super::error::WebError
//! [`Ctx`]: super::context::Ctx

pub mod apps;
pub mod auth;
pub mod backups;
pub mod devices;
pub mod dns;
pub mod history;
pub mod network;
pub mod pool;
pub mod recovery;
pub mod settings;
pub mod updates;

use super::AppState;
use crate::events::{Event, Level};

/// A success message for every open page (the faces share the bus, so an API call shows on
/// the owner's open pages as a form post does).
fn toast(state: &AppState, message: String) {
    state.events.publish(Event::Toast {
        level: Level::Success,
        message,
    });
}

/// Asks a signed-in owner for their own password again before an action a session alone must
/// not do (take every secret, make a credential that outlives the session, choose what seals
/// the box's backups): a cookie stolen or a laptop left open is not enough. An API token is a
/// credential the owner made on purpose and stands on its own. Counted by the sign-in
/// throttle.
pub async fn confirm_owner(
    state: &AppState,
    who: &super::context::Ctx,
    password: Option<crate::secrets::Secret>,
    to_do: &str,
) -> Result<(), super::error::WebError> {
    let Some(super::context::Principal::User(user)) = &who.principal else {
        return Ok(());
    };
    let password = password.filter(|p| !p.expose().is_empty()).ok_or_else(|| {
        super::error::WebError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "password_needed",
            format!("Type your password (the one you sign in with) to {to_do}."),
        )
    })?;
    state
        .auth
        .confirm_password(&user.username, password, &who.client)
        .await?;
    Ok(())
}

/// An action the sign-in code may refuse for a reason the face shows its own way (the page
/// again with the reason, `Retry-After` when waiting helps): the inner `Err`. The outer `Err`
/// is a request that failed.
pub type Refusable<T> = Result<Result<T, crate::auth::AuthError>, super::error::WebError>;
