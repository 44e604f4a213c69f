//! The journal: each step that changes something is recorded with its undo before it acts;
//! a failure (or a restart mid-way) undoes the recorded steps in reverse, and undos that could
//! not finish are retried.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use super::{DeployError, Deployer, DeploymentState, Remote, sentences};
use crate::events::{Event, Level};
use crate::store::DeploymentRow;

/// A journalled step's undo. Each is safe to run twice and safe when its step never acted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "snake_case")]
pub(super) enum Undo {
    DeleteSecrets {
        owner: String,
        names: Vec<String>,
    },
    RemoveDir {
        dir: String,
    },
    RemoveProject {
        project: String,
        volumes: bool,
    },
    DeleteApp {
        slug: String,
    },
    RestoreCompose {
        dir: String,
        project: String,
    },
    /// Homelab's proxy was started on the device: removed again if nothing else uses it.
    RemoveProxy {
        device_id: i64,
    },
    /// The app's route and certificate on the proxy.
    RemoveRoute {
        slug: String,
    },
    /// "Move to the shared database" switched the app's files: the previous ones come back
    /// (its own database again) and it starts as before.
    RestoreOwnDatabase {
        dir: String,
        project: String,
    },
    /// The device's shared database instance was started: removed again while no database
    /// is in it.
    RemoveSharedDb {
        device_id: i64,
        engine: crate::pool::Engine,
    },
    /// The app's database and login in the shared instance: dropped only where this deploy
    /// made them (a database kept from an earlier removal is never dropped by a failed one).
    DropSharedDatabase {
        device_id: i64,
        engine: crate::pool::Engine,
        slug: String,
        database: String,
        drop_database: bool,
        drop_login: bool,
    },
    /// Volumes a backup or restore made on the device (a database dump, restored data).
    RemoveVolumes {
        volumes: Vec<String>,
    },
    /// The app was stopped (for a consistent backup, or a restore's switch): started again.
    StartApp {
        dir: String,
        project: String,
    },
    /// A restore swapped the app's volumes with the restored ones: stopped, swapped back
    /// (the swap knows which way it is, so running it twice is safe).
    SwapVolumes {
        job: i64,
        root: String,
        pairs: Vec<(String, String)>,
        dir: String,
        project: String,
    },
    /// A restore replaced the app's database in the shared instance: the app stopped, and
    /// the database as it was before (saved in `volume`) loaded again.
    ReloadDatabase {
        engine: crate::pool::Engine,
        slug: String,
        database: String,
        volume: String,
        dir: String,
        project: String,
    },
    /// A step on another device than the job's own (a move acts on the device the app
    /// leaves as well as on the one it goes to): undone there.
    OnDevice {
        device_id: i64,
        then: Box<Undo>,
    },
    /// A move pointed the app's name at its new device: the record goes back to the old
    /// device's address and the name's row as it was (the old device's proxy still holds
    /// its route until the move has succeeded).
    PointNameBack {
        row: Box<crate::store::NameRow>,
        new_answer: String,
        new_reference: String,
        /// The certificate's key as it was (sealed, base64): the move issued a new one.
        #[serde(default)]
        key: Option<String>,
    },
    /// A move recorded the app on its new device: back on the old one, at its old address
    /// with its old settings (JSON).
    AppBack {
        slug: String,
        device_id: i64,
        url: String,
        settings: String,
    },
    /// The app's name: its DNS record (exactly the one made), its row and certificate key.
    RemoveName {
        slug: String,
        provider: String,
        name: String,
        answer: String,
        reference: String,
    },
}

impl Deployer {
    /// Journals a step's undo, then acts.
    pub(super) async fn step(&self, id: i64, name: &str, undo: &Undo) -> Result<i64, DeployError> {
        let undo = serde_json::to_string(undo).unwrap_or_default();
        Ok(self.store.begin_step(id, name.to_string(), undo).await?)
    }

    /// Journals a step of job `id` (whose own device is `home`) that acts on `remote`'s
    /// device, which may be another one (a move acts on the device the app leaves too): the
    /// undo then names its device.
    pub(super) async fn step_at(
        &self,
        (id, home): (i64, i64),
        remote: &Remote,
        name: &str,
        undo: Undo,
    ) -> Result<i64, DeployError> {
        let undo = match remote.device.id == home {
            true => undo,
            false => Undo::OnDevice {
                device_id: remote.device.id,
                then: Box::new(undo),
            },
        };
        self.step(id, name, &undo).await
    }

    /// Marks every journalled step of a successful deployment done.
    pub(super) async fn finish_steps(&self, id: i64) -> Result<(), DeployError> {
        for s in self.store.steps(id).await? {
            self.store.set_step_status(id, s.seq, "done").await?;
        }
        Ok(())
    }

    /// Undoes a deployment's journalled steps in reverse. Safe to call again after a partial
    /// run: finished undos are marked and skipped.
    pub async fn roll_back(&self, id: i64) -> bool {
        let Ok(Some(d)) = self.store.deployment(id).await else {
            return false;
        };
        // A retry keeps the message that says what happened and what is pending.
        if d.state != DeploymentState::RollingBack {
            let msg = sentences(d.error.as_deref().unwrap_or(""), "Undoing the changes…");
            self.progress(id, &d.slug, DeploymentState::RollingBack, 100, msg)
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
                    format!("Everything it changed on {} was undone.", d.device_name)
                } else {
                    format!("Nothing was changed on {}.", d.device_name)
                };
                let msg = sentences(d.error.as_deref().unwrap_or(""), &done);
                self.progress(id, &d.slug, DeploymentState::RolledBack, 100, msg)
                    .await;
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
                let msg = sentences(
                    d.error.as_deref().unwrap_or(""),
                    &format!(
                        "Homelab could not finish cleaning up on {}; it will finish by itself \
                         as soon as the device answers again.",
                        d.device_name
                    ),
                );
                self.progress(id, &d.slug, DeploymentState::RollingBack, 100, msg)
                    .await;
                false
            }
        }
    }

    async fn undo_all(&self, d: &DeploymentRow) -> Result<(), DeployError> {
        let steps = self.store.steps(d.id).await?;
        // One connection per device the job touched, made when its first undo needs it.
        let mut remotes: std::collections::HashMap<i64, Remote> = std::collections::HashMap::new();
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
                Undo::RemoveName {
                    slug,
                    provider,
                    name,
                    answer,
                    reference,
                } => {
                    if let Some(p) = crate::dns::records::Provider::parse(provider) {
                        // A provider that cannot be reached must not strand the rollback: the
                        // record is reported and the rest is undone (the Network page lists
                        // names it cannot match to an app).
                        if let Err(e) = self.records.remove(p, name, answer, reference).await {
                            tracing::warn!(deployment = d.id, name = %name, error = %e, "could not remove a record while undoing");
                        }
                    }
                    self.store.delete_name(slug.clone()).await?;
                    self.store.delete_secrets_of(super::key_owner(slug)).await?;
                }
                Undo::PointNameBack {
                    row,
                    new_answer,
                    new_reference,
                    key,
                } => {
                    let mut row = (**row).clone();
                    if let (Some(p), Ok(ip)) = (
                        crate::dns::records::Provider::parse(&row.provider),
                        row.answer.parse(),
                    ) {
                        // As in RemoveName: an unreachable provider is reported, not fatal.
                        match self
                            .records
                            .repoint(p, &row.name, new_answer, new_reference, ip, &row.slug)
                            .await
                        {
                            Ok(placed) => row.reference = placed.reference,
                            Err(e) => {
                                tracing::warn!(deployment = d.id, name = %row.name, error = %e, "could not point a name back while undoing")
                            }
                        }
                    }
                    if let Some(sealed) = key.as_deref().and_then(|k| B64.decode(k).ok()) {
                        self.store
                            .put_secret(super::key_owner(&row.slug), "key", sealed)
                            .await?;
                    }
                    self.store.put_name(row).await?;
                }
                Undo::AppBack {
                    slug,
                    device_id,
                    url,
                    settings,
                } => {
                    self.store
                        .move_app(slug.clone(), *device_id, url.clone(), settings.clone())
                        .await?
                }
                device_undo => {
                    let (device_id, undo) = match device_undo {
                        Undo::OnDevice { device_id, then } => (*device_id, &**then),
                        other => (d.device_id, other),
                    };
                    if let std::collections::hash_map::Entry::Vacant(slot) =
                        remotes.entry(device_id)
                    {
                        let Some(device) = self.store.device(device_id).await? else {
                            // The user removed the device: nothing there is ours to clean.
                            tracing::info!(deployment = d.id, "device removed; skipping its undo");
                            self.store.set_step_status(d.id, s.seq, "undone").await?;
                            continue;
                        };
                        slot.insert(Remote::connect(&self.devices, device, Some(d.id)).await?);
                    }
                    let r = remotes.get(&device_id).expect("connected above");
                    self.undo_on_device(d, r, undo).await?;
                }
            }
            self.store.set_step_status(d.id, s.seq, "undone").await?;
        }
        Ok(())
    }

    /// Runs one undo that acts on a device, over that device's connection.
    async fn undo_on_device(
        &self,
        d: &DeploymentRow,
        r: &Remote,
        undo: &Undo,
    ) -> Result<(), DeployError> {
        match undo {
            Undo::RemoveDir { dir } => r.remove_dir(dir).await?,
            Undo::RemoveProject { project, volumes } => r.remove_project(project, *volumes).await?,
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
            Undo::RemoveRoute { slug } => self.take_route_off(r, slug).await?,
            Undo::RemoveProxy { .. } => self.remove_proxy_if_idle(r, Some(d.id)).await?,
            Undo::RestoreOwnDatabase { dir, project } => {
                r.copy_file(dir, "compose.yaml.previous", "compose.yaml")
                    .await?;
                r.copy_file(dir, "app.env.previous", "app.env").await?;
                r.remove_file(dir, "compose.pool.yaml").await?;
                r.compose_up(
                    "Start the app on its own database again",
                    dir,
                    project,
                    "the app with its own database",
                )
                .await?;
            }
            Undo::RemoveVolumes { volumes } => {
                for v in volumes {
                    r.remove_volume(v).await?;
                }
            }
            Undo::StartApp { dir, project } => {
                r.compose_up("Start the app again", dir, project, "the app")
                    .await?
            }
            Undo::SwapVolumes {
                job,
                root,
                pairs,
                dir,
                project,
            } => {
                r.compose("Stop the app to switch back", dir, project, &["stop"])
                    .await?;
                self.swap_volumes(r, root, *job, "back", pairs).await?;
            }
            Undo::ReloadDatabase {
                engine,
                slug,
                database,
                volume,
                dir,
                project,
            } => {
                r.compose(
                    "Stop the app to load its database back",
                    dir,
                    project,
                    &["stop"],
                )
                .await?;
                let recipe = self.recipe(slug)?.clone();
                let db = recipe.manifest.database.clone();
                let mut values = BTreeMap::new();
                self.fill_secrets(d.id, &recipe, &mut values).await?;
                let password = db
                    .as_ref()
                    .and_then(|db| values.get(&db.env.password))
                    .cloned()
                    .unwrap_or_default();
                let extensions = db.map(|db| db.extensions).unwrap_or_default();
                self.reload_database(r, *engine, slug, database, &password, &extensions, volume)
                    .await?;
            }
            Undo::RemoveSharedDb { engine, .. } => {
                self.remove_shared_db_if_idle(r, *engine, false).await?;
            }
            Undo::DropSharedDatabase {
                engine,
                slug,
                database,
                drop_database,
                drop_login,
                ..
            } => {
                self.drop_database(r, *engine, slug, database, *drop_database, *drop_login)
                    .await?
            }
            _ => {}
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
            if d.state != DeploymentState::Failed && d.state != DeploymentState::RollingBack {
                let msg = "Homelab restarted while this deploy was under way, so it was undone. \
                           Deploy again when you are ready.";
                let _ = self.store.set_deployment_error(d.id, msg.into()).await;
                self.progress(d.id, &d.slug, DeploymentState::Failed, 100, msg.into())
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
        // A backup's run whose job ended without it (a restart mid-way) failed; after the
        // rollbacks above, so the runs of jobs they just closed are included.
        if let Err(e) = self
            .store
            .fail_orphaned_backup_runs(
                "Homelab restarted while this backup ran, so it did not finish. The next one will."
                    .into(),
            )
            .await
        {
            tracing::warn!(error = %e, "could not close interrupted backup runs");
        }
    }
}
