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

mod remote;
pub mod render;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::busy::{BusyGuard, BusySet};
use crate::catalog::{Catalog, Recipe};
use crate::config::DeployConfig;
use crate::devices::Devices;
use crate::devices::facts::Facts;
use crate::events::{Event, EventBus, Level};
use crate::placement::{self, Candidate, Need, Verdict};
use crate::secrets::{Vault, VaultError};
use crate::store::{AppRow, DeploymentRow, Store, StoreError, now_unix};
pub use remote::{PROJECT_LABEL, Remote, probe};

/// Compose project names we own: `homelab-<slug>`.
pub const PROJECT_PREFIX: &str = "homelab-";
/// How often unfinished rollbacks are retried and deployed apps are compared with their device.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(15);
/// Progress is written and pushed at most this often while an image downloads.
const PROGRESS_EVERY: Duration = Duration::from_millis(300);

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

/// A journalled step's undo. Each is safe to run twice and safe when its step never acted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "snake_case")]
enum Undo {
    DeleteSecrets { owner: String, names: Vec<String> },
    RemoveDir { dir: String },
    RemoveProject { project: String, volumes: bool },
    DeleteApp { slug: String },
    RestoreCompose { dir: String, project: String },
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

/// Words for each state, for the progress bar.
pub fn state_words(state: &str) -> &'static str {
    match state {
        "validating" => "Checking requirements",
        "preparing" => "Preparing files",
        "pulling" => "Downloading the app",
        "starting" => "Starting the app",
        "configuring" => "Saving the app",
        "health_check" => "Waiting for the app to answer",
        "running" => "Running",
        "failed" => "Failed",
        "rolling_back" => "Undoing the changes",
        "rolled_back" => "Rolled back",
        "removing" => "Removing",
        "done" => "Done",
        _ => "Working",
    }
}

struct Job {
    id: i64,
    /// deploy | update
    kind: &'static str,
    recipe: Recipe,
    device: crate::store::DeviceRow,
    settings: BTreeMap<String, String>,
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

    /// Runs a deploy or update in the background; the busy mark ends with it.
    fn spawn_job(self: &Arc<Self>, guard: BusyGuard, job: Job) {
        let this = self.clone();
        tokio::spawn(async move {
            let _guard = guard;
            this.run_job(job).await;
        });
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

    /// Every device as a placement candidate, from its last poll and the apps it runs.
    pub async fn candidates(&self) -> Result<Vec<Candidate>, DeployError> {
        let devices = self.store.devices().await?;
        let statuses = self.store.device_statuses().await?;
        let apps = self.store.apps().await?;
        let uptimes = self.store.uptime_ratios(now_unix() - 24 * 3600).await?;
        let mut out = Vec::with_capacity(devices.len());
        for d in devices {
            let status = statuses.iter().find(|s| s.device_id == d.id);
            let f: Facts = status
                .and_then(|s| serde_json::from_str(&s.facts).ok())
                .unwrap_or_default();
            let state = status.map(|s| s.state.as_str()).unwrap_or("unknown");
            out.push(Candidate {
                id: d.id,
                name: d.name,
                online: state == "online" || state == "degraded",
                docker_ok: f.docker.is_some(),
                arch: f.arch,
                mem_available: f.mem_available,
                disk_free: f.disk_free,
                cores: f.cores,
                load1: f.load[0],
                uptime: uptimes.get(&d.id).copied().unwrap_or(0.0),
                used_ports: f.ports,
                apps: apps
                    .iter()
                    .filter(|a| a.device_id == d.id)
                    .map(|a| a.slug.clone())
                    .collect(),
            });
        }
        Ok(out)
    }

    /// The placement of an app with these settings: every device with its verdict, best first.
    pub async fn plan(
        &self,
        slug: &str,
        settings: &BTreeMap<String, String>,
    ) -> Result<Vec<Verdict>, DeployError> {
        let recipe = self.recipe(slug)?;
        let values = render::settings(recipe, settings).map_err(DeployError::Invalid)?;
        let need = Need::from_recipe(recipe, recipe.host_ports(&values));
        Ok(placement::rank(&need, &self.candidates().await?))
    }

    /// Starts deploying an app (or says it is already there / already under way).
    pub async fn deploy(
        self: &Arc<Self>,
        slug: &str,
        req: DeployRequest,
    ) -> Result<Started, DeployError> {
        let recipe = self.recipe(slug)?.clone();
        if let Some(app) = self.store.app(slug.to_string()).await? {
            return Ok(Started::AlreadyDeployed(Box::new(app)));
        }
        let guard = match self.claim(slug, &recipe.manifest.name) {
            Ok(g) => g,
            Err(busy) => {
                let current = self.store.deployments(Some(slug.to_string()), 1).await?;
                return match current.first() {
                    Some(d) => Ok(Started::InFlight(d.id)),
                    None => Err(busy),
                };
            }
        };
        // A failed earlier attempt is cleaned up first: its undo could otherwise later delete
        // what this deploy reuses (its secrets, its folder).
        for earlier in self.store.unfinished_deployments().await? {
            if earlier.slug == slug && !self.roll_back(earlier.id).await {
                return Err(DeployError::Invalid(format!(
                    "The last attempt to install {} is still being undone on {}, which is not \
                     answering. Turn it on (or remove it from Homelab), then try again.",
                    recipe.manifest.name, earlier.device_name
                )));
            }
        }
        let settings = render::settings(&recipe, &req.settings).map_err(DeployError::Invalid)?;
        let mut verdicts = self.plan(slug, &settings).await?;
        // A device the user picked is judged on its ports by the pre-flight's fresh look
        // (which also names what holds a port and suggests a free one), not by the last poll:
        // that may predate a port being freed or taken.
        if let Some(id) = req.device_id {
            let need = Need::from_recipe(&recipe, vec![]);
            let fresh = placement::rank(&need, &self.candidates().await?);
            if let (Some(v), Some(f)) = (
                verdicts.iter_mut().find(|v| v.device_id == id),
                fresh.into_iter().find(|v| v.device_id == id),
            ) && !v.eligible
                && f.eligible
            {
                *v = f;
            }
        }
        let chosen = match req.device_id {
            Some(id) => {
                let v = verdicts.iter().find(|v| v.device_id == id).ok_or_else(|| {
                    DeployError::Invalid("That device is not one of your devices.".into())
                })?;
                if !v.eligible {
                    return Err(DeployError::Invalid(format!(
                        "{} cannot run {}: {}",
                        v.name,
                        recipe.manifest.name,
                        v.reason.trim_start_matches("Disqualified: ")
                    )));
                }
                v.clone()
            }
            None => match verdicts.first().filter(|v| v.eligible) {
                Some(v) => v.clone(),
                None if verdicts.is_empty() => {
                    return Err(DeployError::Invalid(
                        "Add a device first: apps run on your devices, not on this box.".into(),
                    ));
                }
                None => {
                    let why: Vec<String> = verdicts
                        .iter()
                        .map(|v| {
                            format!(
                                "{} — {}",
                                v.name,
                                v.reason.trim_start_matches("Disqualified: ")
                            )
                        })
                        .collect();
                    return Err(DeployError::Invalid(format!(
                        "No device can run {} right now: {}",
                        recipe.manifest.name,
                        why.join("; ")
                    )));
                }
            },
        };
        let device = self
            .store
            .device(chosen.device_id)
            .await?
            .ok_or_else(|| DeployError::Invalid("That device was just removed.".into()))?;
        let placement_json = serde_json::to_string(
            &verdicts
                .iter()
                .map(|v| {
                    serde_json::json!({
                        "device_id": v.device_id, "device": v.name, "score": v.score.round(),
                        "eligible": v.eligible, "reason": v.reason,
                    })
                })
                .collect::<Vec<_>>(),
        )
        .unwrap_or_else(|_| "[]".into());
        let request = serde_json::to_string(&DeployRequest {
            device_id: Some(device.id),
            settings: settings.clone(),
        })
        .unwrap_or_else(|_| "{}".into());
        let id = self
            .store
            .new_deployment(DeploymentRow {
                id: 0,
                slug: slug.to_string(),
                kind: "deploy".into(),
                device_id: device.id,
                device_name: device.name.clone(),
                state: "validating".into(),
                progress: 0,
                message: format!("Checking requirements on {}…", device.name),
                error: None,
                placement: placement_json,
                request,
                compose: String::new(),
                env_keys: "[]".into(),
                started_at: 0,
                finished_at: None,
            })
            .await?;
        tracing::info!(deployment = id, app = slug, device = %device.name, "deploy started");
        let job = Job {
            id,
            kind: "deploy",
            recipe,
            device,
            settings,
        };
        self.spawn_job(guard, job);
        Ok(Started::New(id))
    }

    async fn progress(&self, id: i64, slug: &str, state: &'static str, pct: i64, msg: String) {
        if let Err(e) = self.store.set_deployment_state(id, state, pct, msg).await {
            tracing::warn!(error = %e, "could not record deploy progress");
        }
        self.events.publish(Event::Deployment {
            id,
            slug: slug.to_string(),
        });
    }

    async fn audit(&self, action: &'static str, detail: String) {
        self.events
            .audit_by_homelab(&self.store, action, detail)
            .await;
    }

    /// Journals a step's undo, then acts.
    async fn step(&self, id: i64, name: &str, undo: &Undo) -> Result<i64, DeployError> {
        let undo = serde_json::to_string(undo).unwrap_or_default();
        Ok(self.store.begin_step(id, name.to_string(), undo).await?)
    }

    async fn run_job(&self, job: Job) {
        let started = Instant::now();
        let slug = job.recipe.manifest.slug.clone();
        let name = job.recipe.manifest.name.clone();
        let update = job.kind == "update";
        let outcome = if update {
            self.update_steps(&job).await
        } else {
            self.deploy_steps(&job).await
        };
        match outcome {
            Ok(url) => {
                self.progress(
                    job.id,
                    &slug,
                    "running",
                    100,
                    format!("{name} is running at {url}"),
                )
                .await;
                tracing::info!(deployment = job.id, app = %slug, kind = job.kind, secs = started.elapsed().as_secs_f64(), "deployment finished");
                let (action, what) = if update {
                    (
                        "app.update",
                        format!(
                            "Updated {name} to {} on {}",
                            job.recipe.manifest.version, job.device.name
                        ),
                    )
                } else {
                    (
                        "app.deploy",
                        format!("Deployed {name} on {}", job.device.name),
                    )
                };
                self.audit(action, what).await;
                self.events.publish(Event::Toast {
                    level: Level::Success,
                    message: format!("{name} is running on {}.", job.device.name),
                });
            }
            Err(e) => {
                let msg = e.to_string();
                tracing::warn!(deployment = job.id, app = %slug, error = %crate::limits::truncate(&msg, crate::limits::DEVICE_OUTPUT), "deploy failed; rolling back");
                if matches!(e, DeployError::Device(..)) {
                    // The connection may be dead: the next use reconnects instead of waiting.
                    self.devices.pool.forget(job.device.id).await;
                }
                let _ = self.store.set_deployment_error(job.id, msg.clone()).await;
                self.progress(job.id, &slug, "failed", 100, msg.clone())
                    .await;
                let verb = if update { "Updating" } else { "Deploying" };
                self.audit(
                    "app.deploy_failed",
                    format!("{verb} {name} on {} failed: {msg}", job.device.name),
                )
                .await;
                self.roll_back(job.id).await;
            }
        }
        // Once a step ran, the device may have changed (containers started, and maybe removed
        // again by the rollback): its page and card show it now. A job stopped by its checks
        // changed nothing there.
        let touched = self
            .store
            .steps(job.id)
            .await
            .map(|s| !s.is_empty())
            .unwrap_or(true);
        if touched {
            self.devices.check_soon(job.device.clone());
        }
    }

    async fn deploy_steps(&self, job: &Job) -> Result<String, DeployError> {
        let (id, recipe, device) = (job.id, &job.recipe, &job.device);
        let m = &recipe.manifest;
        let slug = m.slug.as_str();
        let project = project_name(slug);
        let dir = self.app_dir(slug);
        let remote = Remote::connect(&self.devices, device.clone(), Some(id)).await?;

        // validating: nothing on the device changes until every check has passed.
        let kept_data = self
            .preflight(&remote, recipe, &job.settings, &project, &dir)
            .await?;

        self.progress(
            id,
            slug,
            "preparing",
            15,
            "Preparing the app's files…".into(),
        )
        .await;
        let mut values = job.settings.clone();
        self.fill_secrets(id, recipe, &mut values).await?;
        self.step(id, "files", &Undo::RemoveDir { dir: dir.clone() })
            .await?;
        self.write_files(&remote, id, recipe, &dir, &values).await?;

        self.pull_images(&remote, id, recipe, &values).await?;

        self.progress(id, slug, "starting", 70, format!("Starting {}…", m.name))
            .await;
        self.step(
            id,
            "containers",
            &Undo::RemoveProject {
                project: project.clone(),
                // Data kept from an earlier removal is never deleted by a failed deploy.
                volumes: !kept_data,
            },
        )
        .await?;
        remote
            .compose_up("Start the app", &dir, &project, &m.name)
            .await?;

        self.progress(id, slug, "configuring", 80, format!("Saving {}…", m.name))
            .await;
        let url = app_url(recipe, device, &values);
        self.step(id, "record", &Undo::DeleteApp { slug: slug.into() })
            .await?;
        let settings_json = serde_json::to_string(&job.settings).unwrap_or_default();
        self.store
            .put_app(AppRow {
                slug: slug.into(),
                name: m.name.clone(),
                device_id: device.id,
                version: m.version.clone(),
                state: "starting".into(),
                message: String::new(),
                settings: settings_json,
                url: url.clone(),
                app_dir: dir.clone(),
                compose: recipe.compose_text.clone(),
                created_at: now_unix(),
                updated_at: now_unix(),
            })
            .await?;

        self.health_check(&remote, id, recipe, &values, &project)
            .await?;
        self.store
            .set_app_state(slug.into(), "running", String::new())
            .await?;
        self.finish_steps(id).await?;
        Ok(url)
    }

    /// Writes the app's files on the device and records them for "What I did" (env keys only).
    async fn write_files(
        &self,
        remote: &Remote,
        id: i64,
        recipe: &Recipe,
        dir: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<(), DeployError> {
        remote
            .write_app(dir, &recipe.compose_text, &render::env_file(values))
            .await?;
        let keys: Vec<&String> = values.keys().collect();
        self.store
            .set_deployment_files(
                id,
                recipe.compose_text.clone(),
                serde_json::to_string(&keys).unwrap_or_default(),
            )
            .await?;
        Ok(())
    }

    /// Marks every journalled step of a successful deployment done.
    async fn finish_steps(&self, id: i64) -> Result<(), DeployError> {
        for s in self.store.steps(id).await? {
            self.store.set_step_status(id, s.seq, "done").await?;
        }
        Ok(())
    }

    /// Adds the recipe's secrets to `values`: ones already in the vault (kept from an earlier
    /// removal "keeping data", or from the running version) are reused, because data was made
    /// with them; missing ones are generated and sealed, and only those are undone on failure.
    async fn fill_secrets(
        &self,
        id: i64,
        recipe: &Recipe,
        values: &mut BTreeMap<String, String>,
    ) -> Result<(), DeployError> {
        let owner = secret_owner(&recipe.manifest.slug);
        let kept = self.store.secret_purposes(owner.clone()).await?;
        let names: Vec<String> = recipe
            .manifest
            .secrets
            .iter()
            .filter(|s| !kept.contains(&s.name))
            .map(|s| s.name.clone())
            .collect();
        self.step(
            id,
            "secrets",
            &Undo::DeleteSecrets {
                owner: owner.clone(),
                names,
            },
        )
        .await?;
        for s in &recipe.manifest.secrets {
            let value = match self.store.secret(owner.clone(), s.name.clone()).await? {
                Some(sealed) => self
                    .vault
                    .open(&sealed, &owner, &s.name)?
                    .expose_str()
                    .unwrap_or_default()
                    .to_string(),
                None => {
                    let value = render::generate_secret(s.length);
                    let sealed = self.vault.seal(value.as_bytes(), &owner, &s.name);
                    self.store
                        .put_secret(owner.clone(), s.name.clone(), sealed)
                        .await?;
                    value
                }
            };
            values.insert(s.name.clone(), value);
        }
        Ok(())
    }

    /// Starts updating a deployed app to the catalog's version of its recipe; returns the
    /// deployment that carries the update.
    pub async fn update(self: &Arc<Self>, slug: &str) -> Result<i64, DeployError> {
        let recipe = self.recipe(slug)?.clone();
        let app = self.deployed(slug).await?;
        if app.version == recipe.manifest.version && app.compose == recipe.compose_text {
            return Err(DeployError::Invalid(format!(
                "{} is up to date (version {}).",
                recipe.manifest.name, app.version
            )));
        }
        let guard = self.claim(slug, &recipe.manifest.name)?;
        let device = self.app_device(&app).await?;
        let settings: BTreeMap<String, String> =
            serde_json::from_str(&app.settings).unwrap_or_default();
        // Settings the new version added get their defaults; ones it dropped are ignored.
        let settings: BTreeMap<String, String> = settings
            .into_iter()
            .filter(|(k, _)| recipe.manifest.settings.iter().any(|s| &s.name == k))
            .collect();
        let settings = render::settings(&recipe, &settings).map_err(DeployError::Invalid)?;
        let id = self
            .store
            .new_deployment(DeploymentRow {
                id: 0,
                slug: slug.to_string(),
                kind: "update".into(),
                device_id: device.id,
                device_name: device.name.clone(),
                state: "validating".into(),
                progress: 0,
                message: format!(
                    "Updating {} from {} to {}…",
                    recipe.manifest.name, app.version, recipe.manifest.version
                ),
                error: None,
                placement: "[]".into(),
                request: serde_json::to_string(&DeployRequest {
                    device_id: Some(device.id),
                    settings: settings.clone(),
                })
                .unwrap_or_else(|_| "{}".into()),
                compose: String::new(),
                env_keys: "[]".into(),
                started_at: 0,
                finished_at: None,
            })
            .await?;
        let job = Job {
            id,
            kind: "update",
            recipe,
            device,
            settings,
        };
        self.spawn_job(guard, job);
        Ok(id)
    }

    /// An update: new files beside the previous Compose file, new images, containers
    /// recreated by Compose, health check; on failure the previous file comes back and its
    /// containers are recreated (the previous images are still on the device).
    async fn update_steps(&self, job: &Job) -> Result<String, DeployError> {
        let (id, recipe, device) = (job.id, &job.recipe, &job.device);
        let m = &recipe.manifest;
        let slug = m.slug.as_str();
        let project = project_name(slug);
        let app = self.deployed(slug).await?;
        let dir = app.app_dir.clone();
        let remote = Remote::connect(&self.devices, device.clone(), Some(id)).await?;
        if !matches!(remote.preflight(&dir).await?.0.as_str(), "v1" | "v2") {
            return Err(DeployError::Invalid(format!(
                "Docker Compose is no longer installed on {}.",
                device.name
            )));
        }
        self.progress(
            id,
            slug,
            "preparing",
            15,
            "Preparing the new version…".into(),
        )
        .await;
        let mut values = job.settings.clone();
        self.fill_secrets(id, recipe, &mut values).await?;
        self.step(
            id,
            "files",
            &Undo::RestoreCompose {
                dir: dir.clone(),
                project: project.clone(),
            },
        )
        .await?;
        remote
            .copy_file(&dir, "compose.yaml", "compose.yaml.previous")
            .await?;
        remote
            .copy_file(&dir, "app.env", "app.env.previous")
            .await?;
        self.write_files(&remote, id, recipe, &dir, &values).await?;
        self.pull_images(&remote, id, recipe, &values).await?;
        self.progress(
            id,
            slug,
            "starting",
            70,
            format!("Starting the new {}…", m.name),
        )
        .await;
        remote
            .compose_up(
                "Recreate the app",
                &dir,
                &project,
                &format!("the new {}", m.name),
            )
            .await?;
        self.progress(
            id,
            slug,
            "health_check",
            85,
            format!("Waiting for {} to answer…", m.name),
        )
        .await;
        self.health_check(&remote, id, recipe, &values, &project)
            .await?;
        let url = app_url(recipe, device, &values);
        self.progress(id, slug, "configuring", 99, format!("Saving {}…", m.name))
            .await;
        self.store
            .put_app(AppRow {
                version: m.version.clone(),
                compose: recipe.compose_text.clone(),
                state: "running".into(),
                message: String::new(),
                url: url.clone(),
                settings: serde_json::to_string(&job.settings).unwrap_or_default(),
                updated_at: now_unix(),
                ..app
            })
            .await?;
        self.finish_steps(id).await?;
        Ok(url)
    }

    async fn preflight(
        &self,
        remote: &Remote,
        recipe: &Recipe,
        settings: &BTreeMap<String, String>,
        project: &str,
        dir: &str,
    ) -> Result<bool, DeployError> {
        let m = &recipe.manifest;
        let name = &remote.device.name;
        // Fresh figures, not the last poll: resources, architecture, listening ports. Every
        // question is read-only and independent, so they go out together over the one
        // connection; the answers are then judged in the order a user would fix them.
        let (poll, owners, leftovers, volumes, shell) = tokio::join!(
            self.devices.poll(&remote.device),
            remote.port_owners(),
            remote.project_containers(project),
            remote.project_volumes(project),
            remote.preflight(dir),
        );
        let facts = poll
            .facts
            .ok_or_else(|| DeployError::Device(name.clone(), poll.reason.clone()))?;
        let candidate = Candidate {
            id: remote.device.id,
            name: name.clone(),
            online: true,
            docker_ok: facts.docker.is_some(),
            arch: facts.arch.clone(),
            mem_available: facts.mem_available,
            disk_free: facts.disk_free,
            cores: facts.cores,
            load1: facts.load[0],
            uptime: 1.0,
            used_ports: vec![],
            apps: vec![],
        };
        let ports = recipe.host_ports(settings);
        let need = Need::from_recipe(recipe, ports.clone());
        if let Some(v) = placement::rank(&need, std::slice::from_ref(&candidate))
            .into_iter()
            .find(|v| !v.eligible)
        {
            return Err(DeployError::Invalid(format!(
                "{name} cannot run {}: {}",
                m.name,
                v.reason.trim_start_matches("Disqualified: ")
            )));
        }
        // Ports: anything listening on the device, named when it is a container.
        let owners = owners?;
        let mut taken: Vec<u16> = facts.ports.clone();
        taken.extend(owners.keys());
        if let Some(p) = ports.iter().find(|p| taken.contains(p)) {
            let by = owners
                .get(p)
                .map(|o| format!(" by {o}"))
                .unwrap_or_else(|| " by another program".into());
            let free = (p.saturating_add(1)..=u16::MAX)
                .find(|q| !taken.contains(q) && !ports.contains(q))
                .unwrap_or(0);
            let setting = m
                .settings
                .iter()
                .find(|s| s.kind == "port" && settings.get(&s.name) == Some(&p.to_string()))
                .map(|s| format!(" Change “{}” to {free}.", s.label))
                .unwrap_or_default();
            return Err(DeployError::Invalid(format!(
                "Port {p} is used{by} on {name} — use {free}?{setting}"
            )));
        }
        let (flavour, folder_free) = shell?;
        if flavour != "v1" && flavour != "v2" {
            return Err(DeployError::Invalid(format!(
                "Docker Compose is not installed on {name}. On the device run \
                 `sudo apt-get install docker-compose-plugin` (or `docker-compose`), then try again."
            )));
        }
        // Name clash: containers of this project that we have no record of. (Volumes alone
        // are data kept by "remove, keep data" and are used again.)
        if !leftovers?.is_empty() {
            return Err(DeployError::Invalid(format!(
                "{name} already runs containers of the project {project} that this Homelab does \
                 not know about. Remove them on the device (`docker compose -p {project} down`), \
                 or choose another device."
            )));
        }
        let kept_data = !volumes?.is_empty();
        if !folder_free {
            return Err(DeployError::Invalid(format!(
                "The folder {dir} already exists on {name}. Move it away (or delete it) on the \
                 device, then try again."
            )));
        }
        Ok(kept_data)
    }

    async fn pull_images(
        &self,
        remote: &Remote,
        id: i64,
        recipe: &Recipe,
        values: &BTreeMap<String, String>,
    ) -> Result<(), DeployError> {
        let slug = recipe.manifest.slug.as_str();
        let images = render::images(recipe, values);
        let count = images.len().max(1) as i64;
        for (i, image) in images.iter().enumerate() {
            let base = 20 + 40 * i as i64 / count;
            self.progress(id, slug, "pulling", base, format!("Downloading {image}…"))
                .await;
            let t = Instant::now();
            if remote.image_present(image).await? {
                remote
                    .note(
                        format!("Docker API: is {image} on the device"),
                        "yes — not downloaded again".into(),
                        t,
                        String::new(),
                    )
                    .await;
                continue;
            }
            // The pull streams figures into a watch channel; this side writes them out at a
            // calm pace while the pull runs, and ends when the pull drops its sender.
            let (tx, mut rx) = tokio::sync::watch::channel((0u64, 0u64));
            let report = async {
                let mut last: Option<Instant> = None;
                while rx.changed().await.is_ok() {
                    let (done, total) = *rx.borrow_and_update();
                    if total == 0 || last.is_some_and(|l| l.elapsed() < PROGRESS_EVERY) {
                        continue;
                    }
                    last = Some(Instant::now());
                    let pct = base + (40 * done.min(total) / total) as i64 / count;
                    self.progress(
                        id,
                        slug,
                        "pulling",
                        pct,
                        format!(
                            "Downloaded {} of {} ({image})",
                            crate::units::human_bytes(done),
                            crate::units::human_bytes(total)
                        ),
                    )
                    .await;
                }
            };
            let (pulled, ()) = tokio::join!(remote.pull(image, tx), report);
            pulled?;
        }
        Ok(())
    }

    async fn health_check(
        &self,
        remote: &Remote,
        id: i64,
        recipe: &Recipe,
        values: &BTreeMap<String, String>,
        project: &str,
    ) -> Result<(), DeployError> {
        let m = &recipe.manifest;
        let port = render::web_port(recipe, values);
        let started = Instant::now();
        let timeout = self.config.health_timeout;
        let mut last = String::from("no answer yet");
        loop {
            // The containers' state (from the device) and the app's answer (from here) are
            // asked together; a stopped container wins over whatever the port said.
            let t = Instant::now();
            let asking = async {
                match port {
                    Some(p) => Some(
                        probe(
                            &remote.device.host,
                            p,
                            &m.health.path,
                            m.web.scheme == "https",
                        )
                        .await,
                    ),
                    None => None,
                }
            };
            let (containers, answer) = tokio::join!(remote.project_containers(project), asking);
            let containers = containers?;
            if containers.is_empty() {
                return Err(DeployError::Invalid(format!(
                    "{}'s containers disappeared while it was starting.",
                    m.name
                )));
            }
            if let Some(bad) = containers.iter().find(|c| {
                matches!(
                    c.state.as_ref().map(|s| s.to_string()).as_deref(),
                    Some("exited" | "dead" | "restarting")
                )
            }) {
                let svc = bad
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("com.docker.compose.service"))
                    .cloned()
                    .unwrap_or_default();
                let logs = remote
                    .compose(
                        "Last log lines",
                        &self.app_dir(&m.slug),
                        project,
                        &["logs", "--no-color", "--tail", "15", &svc],
                    )
                    .await
                    .map(|o| last_lines(&o.stdout_text(), 5))
                    .unwrap_or_default();
                return Err(DeployError::Invalid(format!(
                    "{}'s service “{svc}” stopped right after starting ({}). Its last words: {logs}",
                    m.name,
                    bad.status.clone().unwrap_or_default()
                )));
            }
            let ok = match (port, answer) {
                (Some(p), Some(r)) => {
                    let good = matches!(r, Ok(s) if s == m.health.status);
                    last = match &r {
                        Ok(s) => format!("answered {s}"),
                        Err(e) => e.clone(),
                    };
                    if good {
                        remote
                            .note(
                                format!(
                                    "Health check: GET {}:{p}{}",
                                    remote.device.host, m.health.path
                                ),
                                last.clone(),
                                t,
                                String::new(),
                            )
                            .await;
                    }
                    good
                }
                // No web entry published: running containers are all we can check.
                _ => true,
            };
            if ok {
                return Ok(());
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(DeployError::Invalid(format!(
                    "{} did not answer its health check within {} s (last try: {last}). See “What I did” for its output.",
                    m.name,
                    timeout.as_secs()
                )));
            }
            let pct = 85 + (14 * waited.as_millis() / timeout.as_millis().max(1)) as i64;
            self.progress(
                id,
                &m.slug,
                "health_check",
                pct,
                format!("Waiting for {} to answer…", m.name),
            )
            .await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Undoes a deployment's journalled steps in reverse. Safe to call again after a partial
    /// run: finished undos are marked and skipped.
    pub async fn roll_back(&self, id: i64) -> bool {
        let Ok(Some(d)) = self.store.deployment(id).await else {
            return false;
        };
        // A retry keeps the message that says what happened and what is pending.
        if d.state != "rolling_back" {
            let msg = format!(
                "{} Undoing the changes…",
                d.error.clone().unwrap_or_default()
            );
            self.progress(id, &d.slug, "rolling_back", 100, msg.trim().to_string())
                .await;
        }
        let changed = self
            .store
            .steps(id)
            .await
            .map(|s| !s.is_empty())
            .unwrap_or(true);
        match self.undo_all(&d).await {
            Ok(()) => {
                let done = if changed {
                    "Everything was rolled back."
                } else {
                    "Nothing was changed on the device."
                };
                let msg = match &d.error {
                    Some(e) => format!("{e} {done}"),
                    None => done.into(),
                };
                self.progress(id, &d.slug, "rolled_back", 100, msg).await;
                self.audit(
                    "app.rolled_back",
                    format!("Rolled back the deploy of {} on {}", d.slug, d.device_name),
                )
                .await;
                true
            }
            Err(e) => {
                tracing::warn!(deployment = id, error = %e, "rollback could not finish yet");
                self.devices.pool.forget(d.device_id).await;
                let msg = format!(
                    "{} Homelab could not finish cleaning up on {} ({e}); it will finish as soon \
                     as the device is back.",
                    d.error.clone().unwrap_or_default(),
                    d.device_name
                );
                self.progress(id, &d.slug, "rolling_back", 100, msg.trim().to_string())
                    .await;
                false
            }
        }
    }

    async fn undo_all(&self, d: &DeploymentRow) -> Result<(), DeployError> {
        let steps = self.store.steps(d.id).await?;
        let mut remote: Option<Remote> = None;
        for s in steps.iter().rev().filter(|s| s.status != "undone") {
            let undo: Undo = match serde_json::from_str(&s.undo) {
                Ok(u) => u,
                Err(e) => {
                    tracing::error!(deployment = d.id, step = %s.step, error = %e, "unreadable undo; skipped");
                    continue;
                }
            };
            match &undo {
                Undo::DeleteSecrets { owner, names } => {
                    for n in names {
                        self.store.delete_secret(owner.clone(), n.clone()).await?;
                    }
                }
                Undo::DeleteApp { slug } => self.store.delete_app(slug.clone()).await?,
                Undo::RemoveDir { .. }
                | Undo::RemoveProject { .. }
                | Undo::RestoreCompose { .. } => {
                    if remote.is_none() {
                        let Some(device) = self.store.device(d.device_id).await? else {
                            // The user removed the device: nothing there is ours to clean.
                            tracing::info!(deployment = d.id, "device removed; skipping its undo");
                            self.store.set_step_status(d.id, s.seq, "undone").await?;
                            continue;
                        };
                        remote = Some(Remote::connect(&self.devices, device, Some(d.id)).await?);
                    }
                    let r = remote.as_ref().expect("connected above");
                    match &undo {
                        Undo::RemoveDir { dir } => r.remove_dir(dir).await?,
                        Undo::RemoveProject { project, volumes } => {
                            r.remove_project(project, *volumes).await?
                        }
                        Undo::RestoreCompose { dir, project } => {
                            r.copy_file(dir, "compose.yaml.previous", "compose.yaml")
                                .await?;
                            r.copy_file(dir, "app.env.previous", "app.env").await?;
                            r.compose_up(
                                "Start the previous version",
                                dir,
                                project,
                                "the previous version",
                            )
                            .await?;
                        }
                        _ => {}
                    }
                }
            }
            self.store.set_step_status(d.id, s.seq, "undone").await?;
        }
        Ok(())
    }

    /// On start: deployments left mid-way by a previous run are failed and rolled back; later
    /// calls retry rollbacks that could not finish (device offline).
    pub async fn recover(&self) {
        let Ok(unfinished) = self.store.unfinished_deployments().await else {
            return;
        };
        for d in unfinished {
            let Some(_guard) = self.try_busy(&d.slug) else {
                continue; // in flight in this process
            };
            if d.state != "failed" && d.state != "rolling_back" {
                let msg = "Homelab restarted while this deploy was under way, so it was undone. \
                           Deploy again when you are ready.";
                let _ = self.store.set_deployment_error(d.id, msg.into()).await;
                self.progress(d.id, &d.slug, "failed", 100, msg.into())
                    .await;
                self.events.publish(Event::Toast {
                    level: Level::Warning,
                    message: format!(
                        "The deploy of {} was interrupted by a restart and is being rolled back.",
                        d.slug
                    ),
                });
            }
            self.roll_back(d.id).await;
        }
    }

    /// Background upkeep until `stop`: recovery at once, then retries and reconciliation.
    pub fn spawn_housekeeping(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        tokio::spawn(async move {
            self.recover().await;
            let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
            tick.reset();
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        self.recover().await;
                        self.reconcile().await;
                    }
                    _ = crate::shutdown::stopped(&mut stop) => break,
                }
            }
        });
    }

    /// Notices containers changed or removed behind our back (and coming back).
    pub async fn reconcile(&self) {
        let Ok(apps) = self.store.apps().await else {
            return;
        };
        for app in apps {
            if app.state == "starting" {
                continue;
            }
            let Some(_guard) = self.try_busy(&app.slug) else {
                continue;
            };
            let Ok(Some(device)) = self.store.device(app.device_id).await else {
                continue;
            };
            // Only online devices: an offline device's apps keep their last known state.
            let Ok(remote) = Remote::connect(&self.devices, device, None).await else {
                continue;
            };
            let Ok(containers) = remote.project_containers(&project_name(&app.slug)).await else {
                continue;
            };
            let running = containers
                .iter()
                .filter(|c| c.state.as_ref().map(|s| s.to_string()).as_deref() == Some("running"))
                .count();
            let (state, message) = if containers.is_empty() {
                (
                    "missing",
                    "Its containers were removed outside Homelab. Remove the app here, or deploy it again.".to_string(),
                )
            } else if running == containers.len() {
                ("running", String::new())
            } else if running == 0 {
                ("stopped", "Stopped.".to_string())
            } else {
                (
                    "failed",
                    format!(
                        "{} of {} parts are not running.",
                        containers.len() - running,
                        containers.len()
                    ),
                )
            };
            if self
                .store
                .set_app_state(app.slug.clone(), state, message)
                .await
                .unwrap_or(false)
            {
                tracing::info!(app = %app.slug, state, "app state changed on its device");
                self.events.publish(Event::AppState {
                    slug: app.slug.clone(),
                });
            }
        }
    }

    /// The record of a deployed app.
    async fn deployed(&self, slug: &str) -> Result<AppRow, DeployError> {
        self.store
            .app(slug.to_string())
            .await?
            .ok_or_else(|| DeployError::NotDeployed(slug.to_string()))
    }

    /// The device a deployed app runs on.
    async fn app_device(&self, app: &AppRow) -> Result<crate::store::DeviceRow, DeployError> {
        self.store
            .device(app.device_id)
            .await?
            .ok_or_else(|| DeployError::NotDeployed(app.name.clone()))
    }

    /// start | stop | restart an app.
    pub async fn lifecycle(&self, slug: &str, action: Lifecycle) -> Result<String, DeployError> {
        let app = self.deployed(slug).await?;
        let _guard = self.claim(slug, &app.name)?;
        let device = self.app_device(&app).await?;
        let remote = Remote::connect(&self.devices, device.clone(), None).await?;
        let verb = action.verb();
        let out = match remote
            .compose(verb, &app.app_dir, &project_name(slug), &[verb])
            .await
        {
            Ok(out) => out,
            Err(e) => {
                // It may have partly run, and the device may not answer: re-read it later.
                self.devices.check_soon(device);
                return Err(e);
            }
        };
        // The device re-read before answering, so the page shown next and the next placement
        // see the app as it now is.
        self.devices.check(&device).await;
        if !out.success() {
            return Err(DeployError::Invalid(format!(
                "Could not {verb} {}: {}",
                app.name,
                last_lines(&out.stderr_text(), 4)
            )));
        }
        let (state, msg) = match action {
            Lifecycle::Stop => ("stopped", "Stopped."),
            _ => ("running", ""),
        };
        self.store
            .set_app_state(slug.into(), state, msg.into())
            .await?;
        self.events.publish(Event::AppState { slug: slug.into() });
        Ok(format!("{} {}.", app.name, action.done()))
    }

    /// The last lines of an app's logs, all services.
    pub async fn logs(&self, slug: &str, lines: u32) -> Result<String, DeployError> {
        let app = self.deployed(slug).await?;
        let device = self.app_device(&app).await?;
        let remote = Remote::connect(&self.devices, device, None).await?;
        let out = remote
            .compose(
                "logs",
                &app.app_dir,
                &project_name(slug),
                &["logs", "--no-color", "--tail", &lines.to_string()],
            )
            .await?;
        Ok(format!("{}{}", out.stdout_text(), out.stderr_text()))
    }

    /// The secrets generated for an app, opened from the vault (for the owner to copy).
    pub async fn secrets(&self, slug: &str) -> Result<Vec<(String, String)>, DeployError> {
        let owner = secret_owner(slug);
        let mut out = Vec::new();
        for name in self.store.secret_purposes(owner.clone()).await? {
            if let Some(sealed) = self.store.secret(owner.clone(), name.clone()).await? {
                let value = self.vault.open(&sealed, &owner, &name)?;
                out.push((name, value.expose_str().unwrap_or_default().to_string()));
            }
        }
        Ok(out)
    }

    /// What removing an app deletes, in words, for the confirmation.
    pub async fn removal_plan(&self, slug: &str) -> Result<Vec<String>, DeployError> {
        let app = self.deployed(slug).await?;
        let recipe = self.recipe(slug).ok();
        let mut out: Vec<String> = recipe
            .map(|r| {
                r.manifest
                    .data_volumes
                    .iter()
                    .map(|v| format!("the data volume {}_{v}", project_name(slug)))
                    .collect()
            })
            .unwrap_or_default();
        out.push(format!("the folder {}", app.app_dir));
        Ok(out)
    }

    /// Removes an app: its containers and networks, its data volumes when `delete_data`, its
    /// folder and secrets. Works when the device's copy is already partly gone.
    pub async fn remove(&self, slug: &str, how: Removal) -> Result<String, DeployError> {
        let app = self.deployed(slug).await?;
        let _guard = self.claim(slug, &app.name)?;
        let device = self.app_device(&app).await?;
        let delete_data = how == Removal::DeleteData;
        if how == Removal::ForgetHere {
            // The device is gone for good: nothing can be cleaned there. Its secrets stay
            // sealed here until the app is removed with its data, like kept data does.
            self.store.delete_app(slug.into()).await?;
            self.events.publish(Event::AppState { slug: slug.into() });
            self.audit(
                "app.forget",
                format!(
                    "Forgot {} on {} without touching the device",
                    app.name, device.name
                ),
            )
            .await;
            return Ok(format!(
                "{} was forgotten here; anything of it still on {} was left as it was.",
                app.name, device.name
            ));
        }
        let remote = match Remote::connect(&self.devices, device.clone(), None).await {
            Ok(r) => r,
            Err(e) => {
                return Err(DeployError::Invalid(format!(
                    "{e} Nothing was removed. Turn {} on and try again — or, if it is gone for \
                     good, choose “Forget it here only”.",
                    device.name
                )));
            }
        };
        let removed = remote
            .remove_project(&project_name(slug), delete_data)
            .await;
        match removed {
            // Re-read before answering: an install right after must see the app's port free
            // (placement judges by the last check).
            Ok(()) => {
                self.devices.check(&device).await;
            }
            // Some of it may be gone; the device may not answer: re-read in the background.
            Err(e) => {
                self.devices.check_soon(device.clone());
                return Err(e);
            }
        }
        remote.remove_dir(&app.app_dir).await?;
        // Kept data (volumes) was made with these secrets; they go only with the data.
        if delete_data {
            self.store.delete_secrets_of(secret_owner(slug)).await?;
        }
        self.store.delete_app(slug.into()).await?;
        self.events.publish(Event::AppState { slug: slug.into() });
        let how_words = if delete_data {
            " with its data"
        } else {
            " (data kept)"
        };
        self.audit(
            "app.remove",
            format!("Removed {} from {}{how_words}", app.name, device.name),
        )
        .await;
        Ok(if delete_data {
            format!("{} and its data were removed.", app.name)
        } else {
            format!(
                "{} was removed; its data volumes stay on {} and come back if you deploy it there again.",
                app.name, device.name
            )
        })
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

/// The link to the app.
fn app_url(
    recipe: &Recipe,
    device: &crate::store::DeviceRow,
    values: &BTreeMap<String, String>,
) -> String {
    let m = &recipe.manifest;
    let host = if device.host.contains(':') {
        format!("[{}]", device.host)
    } else {
        device.host.clone()
    };
    match render::web_port(recipe, values) {
        Some(p) => format!("{}://{host}:{p}{}", m.web.scheme, m.web.path),
        None => format!("{}://{host}{}", m.web.scheme, m.web.path),
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}
