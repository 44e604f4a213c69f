//! Backups: adding, checking and removing destinations, backing an app up now, restoring it.
//! The deploy engine audits destinations and how each job ends.

use crate::backup::Target;
use crate::secrets::Secret;
use crate::web::AppState;
use crate::web::error::WebError;

/// What the owner typed to add a destination: an SSH server (with its login's password,
/// used once) or S3-compatible storage (with its keys).
pub enum NewDestination {
    Sftp {
        target: Target,
        password: Secret,
    },
    S3 {
        target: Target,
        key_id: Secret,
        secret: Secret,
    },
}

/// Adds a destination; returns its id.
pub async fn add_destination(
    state: &AppState,
    name: &str,
    new: NewDestination,
) -> Result<i64, WebError> {
    let id = match new {
        NewDestination::Sftp { target, password } => {
            state
                .deployer
                .add_sftp_destination(name, target, password)
                .await?
        }
        NewDestination::S3 {
            target,
            key_id,
            secret,
        } => {
            state
                .deployer
                .add_s3_destination(name, target, key_id, secret)
                .await?
        }
    };
    super::toast(state, format!("Backups can go to {name} now."));
    Ok(id)
}

/// "Test connection": opens (or makes) the destination's backup store from a device.
pub async fn check_destination(state: &AppState, id: i64) -> Result<String, WebError> {
    Ok(state.deployer.check_destination(id).await?)
}

pub async fn remove_destination(state: &AppState, id: i64) -> Result<(), WebError> {
    state.deployer.remove_destination(id).await?;
    Ok(())
}

/// Starts a backup of the app now (to one destination, or every one); returns its job.
pub async fn back_up(
    state: &AppState,
    slug: &str,
    destination_id: Option<i64>,
) -> Result<i64, WebError> {
    Ok(state.deployer.back_up(slug, destination_id).await?)
}

/// Starts restoring the app in place from a snapshot; returns its job.
pub async fn restore(
    state: &AppState,
    slug: &str,
    destination_id: i64,
    snapshot: &str,
) -> Result<i64, WebError> {
    Ok(state
        .deployer
        .restore(slug, destination_id, snapshot)
        .await?)
}
