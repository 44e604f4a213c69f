//! Shared databases on a device: restarting a stopped one and removing one no app uses (each
//! audited and announced, for the device page's buttons and the API alike).

use super::AppState;
use crate::events::Event;
use crate::pool::Engine;
use crate::web::context::Ctx;
use crate::web::error::WebError;

/// The engine named in a path ("postgres" | "mariadb"); anything else is not found.
pub fn engine(word: &str) -> Result<Engine, WebError> {
    Engine::parse(word).ok_or_else(WebError::not_found)
}

/// Starts a stopped shared instance again and re-checks its apps.
pub async fn restart(
    state: &AppState,
    who: &Ctx,
    device_id: i64,
    engine: Engine,
) -> Result<String, WebError> {
    let message = state.deployer.restart_shared_db(device_id, engine).await?;
    who.audit(state, "pool.restart", message.clone()).await?;
    state.events.publish(Event::DeviceStatus { device_id });
    super::toast(state, message.clone());
    Ok(message)
}

/// Removes a shared instance no installed app uses (with data kept for removed apps: the
/// owner confirmed).
pub async fn remove(
    state: &AppState,
    who: &Ctx,
    device_id: i64,
    engine: Engine,
) -> Result<String, WebError> {
    let message = state.deployer.remove_shared_db(device_id, engine).await?;
    who.audit(state, "pool.remove", message.clone()).await?;
    state.events.publish(Event::DeviceStatus { device_id });
    super::toast(state, message.clone());
    Ok(message)
}
