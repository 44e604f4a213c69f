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

/// An action the sign-in code may refuse for a reason the face shows its own way (the page
/// again with the reason, `Retry-After` when waiting helps): the inner `Err`. The outer `Err`
/// is a request that failed.
pub type Refusable<T> = Result<Result<T, crate::auth::AuthError>, super::error::WebError>;
