//! The deploy and update jobs: starting one, running its steps in the background (secrets,
//! files, image pulls, Compose, the app's record) with live progress, and the outcome.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::journal::Undo;
use super::naming;
use super::plan::placement_record;
use super::{
    DeployError, DeployRequest, Deployer, DeploymentState, Remote, RunState, Started, project_name,
    render, secret_owner,
};
use crate::busy::BusyGuard;
use crate::catalog::Recipe;
use crate::events::{Event, Level};
use crate::store::{AppRow, DeploymentRow, DeviceRow, now_unix};

/// Progress is written and pushed at most this often while an image downloads.
const PROGRESS_EVERY: Duration = Duration::from_millis(300);

/// A deploy or update under way.
pub(super) struct Job {
    pub(super) id: i64,
    /// deploy | update | move-db | backup | restore | move (to another device)
    pub(super) kind: &'static str,
    pub(super) recipe: Recipe,
    pub(super) device: DeviceRow,
    pub(super) settings: BTreeMap<String, String>,
    /// The port setting the pre-flight may move to a free port (`render::movable_port`).
    pub(super) flexible_ports: Vec<String>,
    /// Reachable by address only: no name, no HTTPS through the proxy.
    pub(super) by_address: bool,
    /// The owner asked for the app's own database container, not the shared one.
    pub(super) own_database: bool,
    /// A backup or restore: which destination, which snapshot.
    pub(super) backup: Option<crate::backup::BackupTask>,
}

impl Deployer {
    /// Starts deploying an app (or says it is already there / already under way).
    pub async fn deploy(
        self: &Arc<Self>,
        slug: &str,
        req: DeployRequest,
    ) -> Result<Started, DeployError> {
        let recipe = self.recipe(slug)?.clone();
        // Held until the deployment is recorded (or the request fails): a second request
        // waits here, then finds the first one's deployment in flight.
        let starting = self.start_lock(slug);
        let _starting = starting.lock().await;
        if let Some(app) = self.store.app(slug.to_string()).await? {
            return Ok(Started::AlreadyDeployed(Box::new(app)));
        }
        let guard = match self.claim(slug, &recipe.manifest.name) {
            Ok(g) => g,
            Err(busy) => {
                // Another operation holds the app: a deploy under way is the answer; anything
                // else (a removal, say) is "busy, try again".
                let current = self.store.deployments(Some(slug.to_string()), 1).await?;
                return match current.first() {
                    Some(d) if d.kind == "deploy" && !d.state.is_finished() => {
                        Ok(Started::InFlight(d.id))
                    }
                    _ => Err(busy),
                };
            }
        };
        // A failed earlier attempt is cleaned up first: its undo could otherwise later delete
        // what this deploy reuses (its secrets, its folder).
        for earlier in self.store.unfinished_deployments().await? {
            if earlier.slug == slug && !self.roll_back(earlier.id).await {
                return Err(DeployError::StillUndoing {
                    app: recipe.manifest.name.clone(),
                    device: earlier.device_name,
                });
            }
        }
        let settings =
            render::settings(&recipe, &req.settings).map_err(DeployError::BadSettings)?;
        let flexible_ports = render::movable_port(&recipe, &req.settings)
            .into_iter()
            .collect();
        let (verdicts, device) = self.choose(&recipe, &req.settings, req.device_id).await?;
        let placement_json = placement_record(&verdicts);
        let request = serde_json::to_string(&DeployRequest {
            device_id: Some(device.id),
            settings: settings.clone(),
            by_address: req.by_address,
            own_database: req.own_database,
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
                state: DeploymentState::Validating,
                progress: 0,
                message: format!("Checking requirements on {}…", device.name),
                error: None,
                placement: placement_json,
                request,
                compose: String::new(),
                env_keys: "[]".into(),
                started_at: 0,
                finished_at: None,
                state_at: 0,
            })
            .await?;
        tracing::info!(deployment = id, app = slug, device = %device.name, "deploy started");
        let job = Job {
            id,
            kind: "deploy",
            recipe,
            device,
            settings,
            flexible_ports,
            by_address: req.by_address,
            own_database: req.own_database,
            backup: None,
        };
        self.spawn_job(guard, job);
        Ok(Started::New(id))
    }

    /// Runs a deploy or update in the background; the busy mark ends with it.
    fn spawn_job(self: &Arc<Self>, guard: BusyGuard, job: Job) {
        let this = self.clone();
        tokio::spawn(async move {
            let _guard = guard;
            this.run_job(job).await;
        });
    }

    pub(super) async fn progress(
        &self,
        id: i64,
        slug: &str,
        state: DeploymentState,
        pct: i64,
        msg: String,
    ) {
        if let Err(e) = self.store.set_deployment_state(id, state, pct, msg).await {
            tracing::warn!(error = %e, "could not record deploy progress");
        }
        self.events.publish(Event::Deployment {
            id,
            slug: slug.to_string(),
        });
    }

    async fn run_job(&self, job: Job) {
        let started = Instant::now();
        let slug = job.recipe.manifest.slug.clone();
        let name = job.recipe.manifest.name.clone();
        let update = job.kind == "update";
        let outcome = match job.kind {
            "update" => self.update_steps(&job).await,
            "move-db" => self.move_steps(&job).await,
            "backup" => self.backup_steps(&job).await,
            "restore" => self.restore_steps(&job).await,
            "move" => self.relocate_steps(&job).await,
            _ => self.deploy_steps(&job).await,
        };
        match outcome {
            // A backup or restore says what it did in its own words.
            Ok(words) if matches!(job.kind, "backup" | "restore" | "move") => {
                self.progress(job.id, &slug, DeploymentState::Running, 100, words.clone())
                    .await;
                tracing::info!(deployment = job.id, app = %slug, kind = job.kind, secs = started.elapsed().as_secs_f64(), "{} finished", job.kind);
                let action = match job.kind {
                    "backup" => "app.backup",
                    "move" => "app.move",
                    _ => "app.restore",
                };
                self.audit(action, words.clone()).await;
                self.events.publish(Event::AppState { slug: slug.clone() });
                self.events.publish(Event::Toast {
                    level: Level::Success,
                    message: words,
                });
            }
            Ok(url) => {
                self.progress(
                    job.id,
                    &slug,
                    DeploymentState::Running,
                    100,
                    format!("{name} is running on {}.", job.device.name),
                )
                .await;
                tracing::info!(deployment = job.id, app = %slug, kind = job.kind, url = %url, secs = started.elapsed().as_secs_f64(), "deployment finished");
                let (action, what) = if job.kind == "move-db" {
                    (
                        "app.move_database",
                        format!(
                            "Moved {name}'s data into the shared database on {}",
                            job.device.name
                        ),
                    )
                } else if update {
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
                // Pages that count apps (the dashboard, its first-run list) follow apps.
                self.events.publish(Event::AppState { slug: slug.clone() });
                self.events.publish(Event::Toast {
                    level: Level::Success,
                    message: format!("{name} is running on {}.", job.device.name),
                });
            }
            Err(e) => {
                let msg = e.to_string();
                let detail = e.detail().unwrap_or_default();
                tracing::warn!(deployment = job.id, app = %slug, error = %crate::limits::truncate(&msg, crate::limits::DEVICE_OUTPUT), detail = %crate::limits::truncate(&detail, crate::limits::DEVICE_OUTPUT), "deploy failed; rolling back");
                if !detail.is_empty() {
                    // The technical cause, for Advanced mode's "What I did".
                    if let Err(e) = self
                        .store
                        .add_action(job.id, "Why it stopped".into(), "failed".into(), 0, detail)
                        .await
                    {
                        tracing::warn!(error = %e, "could not record why a deploy stopped");
                    }
                }
                if matches!(e, DeployError::Device { .. }) {
                    // The connection may be dead: the next use reconnects instead of waiting.
                    self.devices.pool.forget(job.device.id).await;
                }
                let _ = self.store.set_deployment_error(job.id, msg.clone()).await;
                self.progress(job.id, &slug, DeploymentState::Failed, 100, msg.clone())
                    .await;
                let verb = match job.kind {
                    "update" => "Updating",
                    "move-db" => "Moving the data of",
                    "backup" => "Backing up",
                    "restore" => "Restoring",
                    "move" => "Moving",
                    _ => "Deploying",
                };
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
        let named = naming::wants_name(recipe, &job.settings, job.by_address);
        let chosen = match named {
            true => Some(self.choose_name(slug).await?),
            false => None,
        };
        // An mDNS name is asked about on the network while the deploy goes on (a free name,
        // the usual case, then costs no wait); it only listens, so nothing needs undoing.
        let mut probe = match &chosen {
            Some((provider, name)) => self.start_probe(*provider, name, device).await,
            None => None,
        };
        let mut settings = job.settings.clone();
        let kept_data = self
            .preflight(
                &remote,
                recipe,
                &mut settings,
                &job.flexible_ports,
                &project,
                &dir,
                named,
            )
            .await?;

        self.progress(
            id,
            slug,
            DeploymentState::Preparing,
            15,
            "Preparing the app's files…".into(),
        )
        .await;
        let mut values = settings.clone();
        self.fill_secrets(id, recipe, &mut values).await?;
        fill_box_values(device, recipe, &mut values).await?;
        let db_plan = match job.own_database {
            true => super::pooling::DbPlan::Own,
            false => self.plan_database(recipe, kept_data, device.id).await?,
        };
        let pool_override = self
            .prepare_database(&remote, id, recipe, &db_plan, &mut values, true)
            .await?;
        // The name comes before the files: the app is told its address (HOMELAB_APP_URL).
        let name = match chosen {
            Some((provider, name)) => {
                self.ensure_proxy(&remote, id).await?;
                let ip = self.named_ip(device).await?;
                let placed = self
                    .give_name(&remote, id, slug, provider, &name, ip, probe.take())
                    .await?;
                values.extend(render::named_values(&placed.name));
                Some((placed, ip))
            }
            None => None,
        };
        self.step(id, "files", &Undo::RemoveDir { dir: dir.clone() })
            .await?;
        self.write_files(
            &remote,
            id,
            recipe,
            &dir,
            &values,
            name.is_some(),
            &pool_override,
        )
        .await?;

        self.pull_images(&remote, id, recipe, &values).await?;

        self.progress(
            id,
            slug,
            DeploymentState::Starting,
            70,
            format!("Starting {}…", m.name),
        )
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

        self.progress(
            id,
            slug,
            DeploymentState::Configuring,
            80,
            format!("Saving {}…", m.name),
        )
        .await;
        let url = app_url(recipe, device, &values);
        self.step(id, "record", &Undo::DeleteApp { slug: slug.into() })
            .await?;
        let settings_json = serde_json::to_string(&settings).unwrap_or_default();
        self.store
            .put_app(AppRow {
                slug: slug.into(),
                name: m.name.clone(),
                device_id: device.id,
                version: m.version.clone(),
                state: RunState::Starting,
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
        let url = match name {
            Some((mut placed, ip)) => {
                if self.settle_name(&remote, id, &mut placed).await? {
                    // Someone on the network already answers the name: the app gets the next
                    // one and is told its new address.
                    values.extend(render::named_values(&placed.name));
                    self.write_files(&remote, id, recipe, &dir, &values, true, &pool_override)
                        .await?;
                    remote
                        .compose_up("Start the app with its name", &dir, &project, &m.name)
                        .await?;
                    self.health_check(&remote, id, recipe, &values, &project)
                        .await?;
                }
                let row = self
                    .secure(&remote, id, recipe, &values, &placed, ip)
                    .await?;
                let named_url = naming::named_url(recipe, &row, url);
                self.store
                    .set_app_url(slug.into(), named_url.clone())
                    .await?;
                named_url
            }
            None => url,
        };
        self.store
            .set_app_state(slug.into(), RunState::Running, String::new())
            .await?;
        self.finish_steps(id).await?;
        Ok(url)
    }

    /// Writes the app's files on the device and records them for "What I did" (env keys only).
    #[allow(clippy::too_many_arguments)] // the app's files: each argument is one of its parts
    pub(super) async fn write_files(
        &self,
        remote: &Remote,
        id: i64,
        recipe: &Recipe,
        dir: &str,
        values: &BTreeMap<String, String>,
        named: bool,
        pool_override: &str,
    ) -> Result<(), DeployError> {
        let m = &recipe.manifest;
        // A named app's web service joins the proxy's network; one on the host's network is
        // reached through the device itself and needs nothing.
        let proxy_override = if named && !m.host_network {
            crate::proxy::app_override(&m.web.service, &naming::alias(&m.slug))
        } else {
            String::new()
        };
        remote
            .write_app(
                dir,
                &recipe.compose_text,
                &proxy_override,
                pool_override,
                &render::env_file(values),
            )
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

    /// Adds the recipe's secrets to `values`: ones already in the vault (kept from an earlier
    /// removal "keeping data", or from the running version) are reused, because data was made
    /// with them; missing ones are generated and sealed, and only those are undone on failure.
    pub(super) async fn fill_secrets(
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
            let value = match s.form {
                crate::catalog::SecretForm::Plain => value,
                // The app keeps only a hash; a fresh salt at each deploy or update is fine, the
                // secret it verifies stays the same. Hashing is slow on purpose: off the runtime.
                form => {
                    let secret = crate::secrets::Secret::from_string(value);
                    tokio::task::spawn_blocking(move || render::hash_secret(form, &secret))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r)
                        .map_err(|e| {
                            tracing::warn!(secret = %s.name, error = %e, "could not hash a secret");
                            DeployError::SecretNotPrepared(s.name.clone())
                        })?
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
            return Err(DeployError::UpToDate {
                app: recipe.manifest.name.clone(),
                version: app.version,
            });
        }
        if let Some(refused) = update_refused(&recipe, &app.version) {
            return Err(refused);
        }
        let guard = self.claim_for_owner(slug, &recipe.manifest.name).await?;
        let device = self.app_device(&app).await?;
        let named = self.store.name_of(slug.to_string()).await?.is_some();
        let settings: BTreeMap<String, String> =
            serde_json::from_str(&app.settings).unwrap_or_default();
        // Settings the new version added get their defaults; ones it dropped are ignored.
        let settings: BTreeMap<String, String> = settings
            .into_iter()
            .filter(|(k, _)| recipe.manifest.settings.iter().any(|s| &s.name == k))
            .collect();
        let settings = render::settings(&recipe, &settings).map_err(DeployError::BadSettings)?;
        let message = format!(
            "Updating {} from {} to {}…",
            recipe.manifest.name, app.version, recipe.manifest.version
        );
        // An update keeps the app where it is, on the ports it has, with its name.
        self.start_on_installed(
            guard, "update", recipe, device, settings, named, message, None,
        )
        .await
    }

    /// Starts "Move to the shared database" for an app that runs with its own database
    /// container: a job like an update, with its own progress, journal and rollback.
    pub async fn move_to_shared(self: &Arc<Self>, slug: &str) -> Result<i64, DeployError> {
        let recipe = self.recipe(slug)?.clone();
        let app = self.deployed(slug).await?;
        crate::pool::movable(&recipe).map_err(DeployError::CannotShare)?;
        // The move writes the catalog's files: it must be the version that runs (an update
        // has its own checks, and comes first).
        if app.version != recipe.manifest.version || app.compose != recipe.compose_text {
            return Err(DeployError::CannotShare(format!(
                "Update {} to version {} first; then move its data.",
                recipe.manifest.name, recipe.manifest.version
            )));
        }
        if self
            .store
            .shared_database_of(slug.to_string(), app.device_id)
            .await?
            .is_some()
        {
            return Err(DeployError::CannotShare(format!(
                "{} already keeps its data in the shared database.",
                recipe.manifest.name
            )));
        }
        let guard = self.claim_for_owner(slug, &recipe.manifest.name).await?;
        let device = self.app_device(&app).await?;
        let named = self.store.name_of(slug.to_string()).await?.is_some();
        let settings: BTreeMap<String, String> =
            serde_json::from_str(&app.settings).unwrap_or_default();
        let message = format!(
            "Moving {}'s data into the shared database…",
            recipe.manifest.name
        );
        self.start_on_installed(
            guard, "move-db", recipe, device, settings, named, message, None,
        )
        .await
    }

    /// Records and starts a job on an installed app (an update, a move): it stays on its
    /// device, on the ports it has, with its name if it has one.
    #[allow(clippy::too_many_arguments)] // the job's parts, each once
    pub(super) async fn start_on_installed(
        self: &Arc<Self>,
        guard: BusyGuard,
        kind: &'static str,
        recipe: Recipe,
        device: DeviceRow,
        settings: BTreeMap<String, String>,
        named: bool,
        message: String,
        backup: Option<crate::backup::BackupTask>,
    ) -> Result<i64, DeployError> {
        let id = self
            .store
            .new_deployment(DeploymentRow {
                id: 0,
                slug: recipe.manifest.slug.clone(),
                kind: kind.into(),
                device_id: device.id,
                device_name: device.name.clone(),
                state: DeploymentState::Validating,
                progress: 0,
                message,
                error: None,
                placement: "[]".into(),
                request: serde_json::to_string(&DeployRequest {
                    device_id: Some(device.id),
                    settings: settings.clone(),
                    by_address: !named,
                    own_database: false,
                })
                .unwrap_or_else(|_| "{}".into()),
                compose: String::new(),
                env_keys: "[]".into(),
                started_at: 0,
                finished_at: None,
                state_at: 0,
            })
            .await?;
        let job = Job {
            id,
            kind,
            recipe,
            device,
            settings,
            flexible_ports: Vec::new(),
            by_address: !named,
            own_database: false,
            backup,
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
        self.progress(
            id,
            slug,
            DeploymentState::Preparing,
            15,
            "Preparing the new version…".into(),
        )
        .await;
        let (app, remote, mut values, name) = self.installed_app(job).await?;
        let dir = app.app_dir.clone();
        // The database stays where it is: shared, or the app's own container.
        let db_plan = self.current_database(recipe, device.id).await?;
        let pool_override = self
            .prepare_database(&remote, id, recipe, &db_plan, &mut values, false)
            .await?;
        self.step(
            id,
            "files",
            &Undo::RestoreCompose {
                dir: dir.clone(),
                project: project.clone(),
            },
        )
        .await?;
        self.keep_previous_files(&remote, &dir).await?;
        self.write_files(
            &remote,
            id,
            recipe,
            &dir,
            &values,
            name.is_some(),
            &pool_override,
        )
        .await?;
        self.pull_images(&remote, id, recipe, &values).await?;
        self.progress(
            id,
            slug,
            DeploymentState::Starting,
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
            DeploymentState::HealthCheck,
            85,
            format!("Waiting for {} to answer…", m.name),
        )
        .await;
        self.health_check(&remote, id, recipe, &values, &project)
            .await?;
        let url = match &name {
            // The new version may listen elsewhere: the route follows it.
            Some(n) => {
                self.refresh_route(&remote, recipe, &values, n).await?;
                naming::named_url(recipe, n, app_url(recipe, device, &values))
            }
            None => app_url(recipe, device, &values),
        };
        self.progress(
            id,
            slug,
            DeploymentState::Configuring,
            99,
            format!("Saving {}…", m.name),
        )
        .await;
        self.store
            .put_app(AppRow {
                version: m.version.clone(),
                compose: recipe.compose_text.clone(),
                state: RunState::Running,
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

    /// "Move to the shared database": the app's database made in the shared instance, the
    /// app's clients stopped, its data copied over on the device, the app switched to it and
    /// checked; on failure everything returns to its own database container (which is only
    /// removed once the app answers on the shared one; its data volume stays).
    async fn move_steps(&self, job: &Job) -> Result<String, DeployError> {
        let (id, recipe, device) = (job.id, &job.recipe, &job.device);
        let m = &recipe.manifest;
        let slug = m.slug.as_str();
        let project = project_name(slug);
        let engine = crate::pool::movable(recipe).map_err(DeployError::CannotShare)?;
        let (app, remote, mut values, name) = self.installed_app(job).await?;
        let dir = app.app_dir.clone();
        // Where the data is now: the app's own database container, and the names it uses.
        let source = self.own_database(&remote, recipe, &project).await?;
        let plan = super::pooling::DbPlan::Shared(engine);
        let pool_override = self
            .prepare_database(&remote, id, recipe, &plan, &mut values, true)
            .await?;
        self.step(
            id,
            "files",
            &Undo::RestoreOwnDatabase {
                dir: dir.clone(),
                project: project.clone(),
            },
        )
        .await?;
        self.keep_previous_files(&remote, &dir).await?;
        self.progress(
            id,
            slug,
            DeploymentState::Preparing,
            40,
            format!(
                "Copying {}'s data into the shared {}…",
                m.name,
                engine.words()
            ),
        )
        .await;
        // Nothing may write while the copy is made.
        let clients = recipe.database_clients();
        let mut stop: Vec<&str> = vec!["stop"];
        stop.extend(clients.iter().map(String::as_str));
        remote
            .compose(
                "Stop the app while its data is copied",
                &dir,
                &project,
                &stop,
            )
            .await?;
        let password = m
            .database
            .as_ref()
            .and_then(|d| values.get(&d.env.password))
            .cloned()
            .unwrap_or_default();
        self.copy_to_shared(&remote, recipe, engine, &source, &password)
            .await?;
        // Its own database stops too, so the check below proves the app uses the shared one
        // (an app still pointed at the old one fails it). Undoing starts it again.
        let own_service = recipe
            .manifest
            .database
            .as_ref()
            .map(|d| d.service.clone())
            .unwrap_or_default();
        remote
            .compose(
                "Stop its own database",
                &dir,
                &project,
                &["stop", own_service.as_str()],
            )
            .await?;
        self.write_files(
            &remote,
            id,
            recipe,
            &dir,
            &values,
            name.is_some(),
            &pool_override,
        )
        .await?;
        self.progress(
            id,
            slug,
            DeploymentState::Starting,
            70,
            format!("Starting {} on the shared {}…", m.name, engine.words()),
        )
        .await;
        // Not `--remove-orphans`: the own database container stays until the app answers.
        let out = remote
            .compose(
                "Start the app on the shared database",
                &dir,
                &project,
                &["up", "-d", "--no-build"],
            )
            .await?;
        if !out.success() {
            return Err(DeployError::StartFailed {
                what: m.name.clone(),
                device: device.name.clone(),
                detail: super::last_lines(&out.stderr_text(), 6),
            });
        }
        self.health_check(&remote, id, recipe, &values, &project)
            .await?;
        self.progress(
            id,
            slug,
            DeploymentState::Configuring,
            95,
            "Removing its own database container…".into(),
        )
        .await;
        self.store
            .set_app_state(slug.into(), RunState::Running, String::new())
            .await?;
        self.finish_steps(id).await?;
        // Only now, and best effort: the move is done; a container left behind is only that
        // (its data volume stays either way).
        if let Err(e) = remote.remove_container(&source.container).await {
            tracing::warn!(app = %slug, error = %e, "could not remove the old database container");
        }
        Ok(app.url)
    }

    /// What a job on an installed app (an update, a move) starts from: its record and
    /// folder, the device's connection with Compose checked, and its values (settings,
    /// secrets, box variables, its name's address when it keeps one).
    pub(super) async fn installed_app(
        &self,
        job: &Job,
    ) -> Result<
        (
            AppRow,
            Remote,
            BTreeMap<String, String>,
            Option<crate::store::NameRow>,
        ),
        DeployError,
    > {
        let (id, recipe, device) = (job.id, &job.recipe, &job.device);
        let slug = recipe.manifest.slug.as_str();
        let app = self.deployed(slug).await?;
        let remote = Remote::connect(&self.devices, device.clone(), Some(id)).await?;
        if !matches!(
            remote.preflight(&app.app_dir).await?.0.as_str(),
            "v1" | "v2"
        ) {
            return Err(DeployError::ComposeGone(device.name.clone()));
        }
        let mut values = job.settings.clone();
        self.fill_secrets(id, recipe, &mut values).await?;
        fill_box_values(device, recipe, &mut values).await?;
        // The app keeps its name: it is told the same address.
        let name = match job.by_address {
            true => None,
            false => self.store.name_of(slug.to_string()).await?,
        };
        if let Some(n) = &name {
            values.extend(render::named_values(&n.name));
        }
        Ok((app, remote, values, name))
    }

    /// Keeps the app's files as `.previous`, for the undo that brings them back.
    async fn keep_previous_files(&self, remote: &Remote, dir: &str) -> Result<(), DeployError> {
        remote
            .copy_file(dir, "compose.yaml", "compose.yaml.previous")
            .await?;
        remote.copy_file(dir, "app.env", "app.env.previous").await
    }

    pub(super) async fn pull_images(
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
            self.progress(
                id,
                slug,
                DeploymentState::Pulling,
                base,
                format!("Downloading {image}…"),
            )
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
                        DeploymentState::Pulling,
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
}

/// Why the catalog's version of an app cannot replace the installed one directly, if it
/// cannot: the recipe records the oldest version upstream supports updating from.
pub fn update_refused(recipe: &Recipe, installed: &str) -> Option<DeployError> {
    let m = &recipe.manifest;
    let u = m.update_from.as_ref()?;
    crate::catalog::older_than(installed, &u.min).then(|| DeployError::UpdateUnsupported {
        app: m.name.clone(),
        from: installed.to_string(),
        to: m.version.clone(),
        reason: u.reason.clone(),
        otherwise: u.otherwise.clone(),
    })
}

/// Adds the box variables to `values` (settings and secrets settled). A recipe that binds to
/// the device's address needs a real one: a name that does not resolve here, or a loopback
/// address (a device added as `localhost`), would bind nothing the network can reach.
pub(super) async fn fill_box_values(
    device: &DeviceRow,
    recipe: &Recipe,
    values: &mut BTreeMap<String, String>,
) -> Result<(), DeployError> {
    let ip = super::device_ip(&device.host).await;
    let uses_ip = crate::catalog::variables(&recipe.compose_text)
        .unwrap_or_default()
        .iter()
        .any(|v| v.name == "HOMELAB_DEVICE_IP");
    let usable = ip
        .parse::<std::net::IpAddr>()
        .is_ok_and(|a| !a.is_loopback() && !a.is_unspecified());
    if uses_ip && !usable {
        return Err(DeployError::NoDeviceAddress {
            device: device.name.clone(),
            app: recipe.manifest.name.clone(),
            host: device.host.clone(),
        });
    }
    let filled = render::box_values(recipe, &device.host, &ip, values);
    values.extend(filled);
    Ok(())
}

/// The link to the app.
pub(super) fn app_url(
    recipe: &Recipe,
    device: &DeviceRow,
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
