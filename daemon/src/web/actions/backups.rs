//! Backups: adding, checking and removing destinations, backing an app up now, restoring it.
//! The deploy engine audits destinations and how each job ends.

use crate::backup::Target;
use crate::backup::schedule::Policy;
use crate::secrets::Secret;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::error::WebError;

/// What the owner typed to add a destination: an SSH server (with its login's password,
/// used once), S3-compatible storage (with its keys) or a restic REST server (with its
/// login, kept sealed).
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
    Rest {
        target: Target,
        user: Secret,
        password: Secret,
    },
    /// A disk plugged into the box: where it is mounted, or a folder on it.
    Disk {
        folder: String,
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
        NewDestination::Rest {
            target,
            user,
            password,
        } => {
            state
                .deployer
                .add_rest_destination(name, target, user, password)
                .await?
        }
        NewDestination::Disk { folder } => {
            state.deployer.add_disk_destination(name, &folder).await?
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

/// Starts moving the app to another device, its data carried by a backup; returns its job.
pub async fn move_app(
    state: &AppState,
    slug: &str,
    req: crate::deploy::MoveRequest,
) -> Result<i64, WebError> {
    Ok(state.deployer.move_app(slug, req).await?)
}

/// How a policy is changed: a preset, an own schedule and keep rules, or (apps) back to the
/// default.
pub enum PolicyChoice {
    Preset(String),
    Own(Policy),
    FollowDefault,
}

/// Sets the default policy (`slug` None) or an app's; audited.
pub async fn set_policy(
    state: &AppState,
    who: &Ctx,
    slug: Option<&str>,
    choice: PolicyChoice,
) -> Result<(), WebError> {
    let policy = match choice {
        PolicyChoice::Preset(name) => Some(Policy::preset(&name).ok_or_else(|| {
            WebError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "bad_policy",
                "Choose daily, hourly, weekly or off.",
            )
        })?),
        PolicyChoice::Own(p) => Some(p),
        PolicyChoice::FollowDefault => None,
    };
    let words = policy.as_ref().map(Policy::words);
    state.deployer.set_backup_policy(slug, policy).await?;
    let whose = slug.unwrap_or("every app");
    let words = match words {
        Some(w) => format!("Backups of {whose}: {w}."),
        None => format!("Backups of {whose} follow the default schedule."),
    };
    who.audit(state, "backup.policy", words.clone()).await?;
    super::toast(state, words);
    Ok(())
}

/// A policy as the pages and the API show it: the rules, in words, whether it is the app's
/// own, and the next scheduled time in the box's time zone.
pub async fn policy(state: &AppState, slug: Option<&str>) -> Result<serde_json::Value, WebError> {
    let rows = state.store.backup_policies().await?;
    let (policy, own) = crate::deploy::policy_for(&rows, slug.unwrap_or_default());
    let next = crate::backup::schedule::parse(&policy.schedule)
        .ok()
        .flatten()
        .and_then(|c| crate::backup::schedule::next(&c, &chrono::Local::now()))
        .map(|t| t.timestamp());
    Ok(serde_json::json!({
        "schedule": policy.schedule,
        "keep_within_days": policy.keep_within_days,
        "keep_hourly": policy.keep_hourly,
        "keep_daily": policy.keep_daily,
        "keep_weekly": policy.keep_weekly,
        "keep_monthly": policy.keep_monthly,
        "preset": policy.preset_name(),
        "words": policy.words(),
        "own": own,
        "next_at": next,
    }))
}

/// Prunes and checks a destination now, in the background (all its data when `full`).
pub async fn maintain_destination(state: &AppState, id: i64, full: bool) -> Result<(), WebError> {
    let row = state
        .store
        .backup_destination(id)
        .await?
        .ok_or_else(WebError::not_found)?;
    let deployer = state.deployer.clone();
    let events = state.clone();
    let week = (!full).then(|| chrono::Datelike::iso_week(&chrono::Local::now()).week());
    tokio::spawn(async move {
        let words = match deployer.maintain_destination(id, week).await {
            Ok(w) => w,
            Err(e) => WebError::from(e).message,
        };
        super::toast(&events, words);
    });
    super::toast(state, format!("Checking the backups at {}…", row.name));
    Ok(())
}
