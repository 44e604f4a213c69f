//! The deploy engine: one click → the best device → live progress → running with a link, or
//! rolled back to exactly where it started.
//!
//! A deployment moves through validating → preparing → pulling → starting → configuring →
//! health_check → running, or failed → rolling_back → rolled_back. Every step that changes
//! something is first written to the journal (SQLite) together with its undo; a failure undoes
//! the journalled steps in reverse. Undos are safe to repeat, so a rollback interrupted by an
//! unplugged device or a restart of this daemon is simply run again later: on start, anything
//! left mid-way is rolled back, and a background task retries unfinished rollbacks until the
//! device is back.
//!
//! Files, by phase (each adds an `impl Deployer` block):
//!
//! | file           | owns |
//! |----------------|------|
//! | `mod.rs`       | the `Deployer` type and its constructor, the public types, helpers every phase uses |
//! | `plan.rs`      | placement candidates, the ranked plan, choosing the device |
//! | `preflight.rs` | fresh checks on the device before anything there changes |
//! | `job.rs`       | the deploy and update jobs: their steps, image pulls, progress, the outcome |
//! | `health.rs`    | the health check after Compose started the app |
//! | `journal.rs`   | steps journalled with their undo, rolling back, recovery after a restart |
//! | `upkeep.rs`    | the housekeeping loop and reconciling apps with their devices |
//! | `manage.rs`    | a deployed app's lifecycle, logs, secrets and removal |
//! | `remote.rs`    | everything done on a device (scripts, Compose, Docker API), each call logged |
//! | `render.rs`    | the values of a recipe's variables and the env file |

mod health;
mod job;
mod journal;
mod manage;
mod plan;
mod preflight;
mod remote;
pub mod render;
mod upkeep;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::busy::{BusyGuard, BusySet};
use crate::catalog::{Catalog, Recipe};
use crate::config::DeployConfig;
use crate::devices::Devices;
use crate::events::EventBus;
use crate::secrets::{Vault, VaultError};
pub use crate::states::{DeploymentState, RunState};
use crate::store::{AppRow, DeviceRow, Store, StoreError};
pub use remote::{PROJECT_LABEL, Remote, probe};

/// Compose project names we own: `homelab-<slug>`.
pub const PROJECT_PREFIX: &str = "homelab-";

/// Errors of the deploy engine; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{0}")]
    Invalid(String),
    #[error("There is no app “{0}” in the catalog.")]
    UnknownApp(String),
    #[error("{0} is not deployed.")]
    NotDeployed(String),
    #[error("No such deployment.")]
    NotFound,
    #[error("{0} did not answer: {1}")]
    Device(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// What the user asked for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeployRequest {
    /// A device chosen by the user instead of the recommendation.
    #[serde(default)]
    pub device_id: Option<i64>,
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// How a deploy request was answered.
#[derive(Debug, Clone)]
pub enum Started {
    /// A new deployment is under way.
    New(i64),
    /// The app is already deployed; nothing was done.
    AlreadyDeployed(Box<AppRow>),
    /// A deployment of this app is already running.
    InFlight(i64),
}

/// The deploy engine.
pub struct Deployer {
    store: Store,
    vault: Arc<Vault>,
    devices: Arc<Devices>,
    catalog: Arc<Catalog>,
    events: EventBus,
    pub config: DeployConfig,
    /// Apps with an operation in flight in this process: one operation per app at a time.
    busy: BusySet,
}

/// Vault owner of an app's generated secrets.
pub fn secret_owner(slug: &str) -> String {
    format!("app:{slug}")
}

pub fn project_name(slug: &str) -> String {
    format!("{PROJECT_PREFIX}{slug}")
}

impl Deployer {
    pub fn new(
        store: Store,
        vault: Arc<Vault>,
        devices: Arc<Devices>,
        catalog: Arc<Catalog>,
        events: EventBus,
        config: DeployConfig,
    ) -> Deployer {
        Deployer {
            store,
            vault,
            devices,
            catalog,
            events,
            config,
            busy: BusySet::default(),
        }
    }

    fn try_busy(&self, slug: &str) -> Option<BusyGuard> {
        self.busy.try_claim(slug)
    }

    /// Marks the app busy, or says it is (`name` is what the user calls it).
    fn claim(&self, slug: &str, name: &str) -> Result<BusyGuard, DeployError> {
        self.try_busy(slug)
            .ok_or_else(|| DeployError::Invalid(format!("{name} is busy; try again in a moment.")))
    }

    fn recipe(&self, slug: &str) -> Result<&Recipe, DeployError> {
        self.catalog
            .recipes
            .get(slug)
            .ok_or_else(|| DeployError::UnknownApp(slug.to_string()))
    }

    pub fn app_dir(&self, slug: &str) -> String {
        format!("{}/{slug}", self.config.apps_dir.trim_end_matches('/'))
    }

    /// The record of a deployed app.
    async fn deployed(&self, slug: &str) -> Result<AppRow, DeployError> {
        self.store
            .app(slug.to_string())
            .await?
            .ok_or_else(|| DeployError::NotDeployed(slug.to_string()))
    }

    /// The device a deployed app runs on.
    async fn app_device(&self, app: &AppRow) -> Result<DeviceRow, DeployError> {
        self.store
            .device(app.device_id)
            .await?
            .ok_or_else(|| DeployError::NotDeployed(app.name.clone()))
    }

    async fn audit(&self, action: &'static str, detail: String) {
        self.events
            .audit_by_homelab(&self.store, action, detail)
            .await;
    }
}

/// How an app is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Containers, networks and the folder go; data volumes and secrets stay for a reinstall.
    KeepData,
    /// Everything goes.
    DeleteData,
    /// Only this box's record goes (the device is gone for good).
    ForgetHere,
}

impl Removal {
    /// From the two choices the remove form and the API offer; forgetting wins.
    pub fn from_choices(forget: bool, delete_data: bool) -> Removal {
        match (forget, delete_data) {
            (true, _) => Removal::ForgetHere,
            (false, true) => Removal::DeleteData,
            (false, false) => Removal::KeepData,
        }
    }
}

/// App lifecycle actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Start,
    Stop,
    Restart,
}

impl Lifecycle {
    pub fn parse(s: &str) -> Option<Lifecycle> {
        match s {
            "start" => Some(Lifecycle::Start),
            "stop" => Some(Lifecycle::Stop),
            "restart" => Some(Lifecycle::Restart),
            _ => None,
        }
    }
    fn verb(self) -> &'static str {
        match self {
            Lifecycle::Start => "start",
            Lifecycle::Stop => "stop",
            Lifecycle::Restart => "restart",
        }
    }
    fn done(self) -> &'static str {
        match self {
            Lifecycle::Start => "started",
            Lifecycle::Stop => "stopped",
            Lifecycle::Restart => "restarted",
        }
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}
