//! Moving an app to another device (restoring it elsewhere): its data carried by a backup
//! (made now with the app stopped, or one the owner picks when the old device is gone), the
//! app deployed on the new device with the same settings and secrets, its data restored
//! before it starts, a health check, its name pointed at the new device, and only then the
//! old copy removed. Every step before that is journalled, so a failure anywhere leaves the
//! app where it was, started again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::job::Job;
use super::journal::Undo;
use super::pooling::DbPlan;
use super::{DeployError, Deployer, DeploymentState, Remote, project_name, render};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::backup::{BackupTask, restic};
use crate::store::DeviceRow;

/// What the owner asked for: where to, through which destination, from which backup.
#[derive(Debug, Clone, Default)]
pub struct MoveRequest {
    pub device_id: i64,
    /// The destination the data travels through (None: the first one).
    pub destination_id: Option<i64>,
    /// A backup to restore instead of making one now (the old device is gone or broken).
    pub snapshot: Option<String>,
}

impl Deployer {
    /// Starts moving an app to another device; returns the job that carries the move.
    pub async fn move_app(
        self: &Arc<Self>,
        slug: &str,
        req: MoveRequest,
    ) -> Result<i64, DeployError> {
        let recipe = self.recipe(slug)?.clone();
        let app = self.deployed(slug).await?;
        let name = recipe.manifest.name.clone();
        if req.device_id == app.device_id {
            return Err(DeployError::BackupRefused(format!(
                "{name} already runs there: choose another device."
            )));
        }
        // The new device gets the catalog's files for it: they must be the version that runs
        // (an update has its own checks, and comes first).
        if app.version != recipe.manifest.version || app.compose != recipe.compose_text {
            return Err(DeployError::BackupRefused(format!(
                "Update {name} to version {} first; then move it.",
                recipe.manifest.version
            )));
        }
        let row = match req.destination_id {
            Some(id) => self.destination(id).await?,
            None => self
                .store
                .backup_destinations()
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    DeployError::BackupRefused(
                        "A move carries the app's data through a backup: add a place for \
                         backups first (Backups → Add a destination)."
                            .into(),
                    )
                })?,
        };
        if let Some(snapshot) = &req.snapshot
            && !restic::valid_snapshot_id(snapshot)
        {
            return Err(DeployError::BackupRefused(
                "That is not a backup's id: copy one from the app's backups.".into(),
            ));
        }
        if req.snapshot.is_some() && self.device_answers(app.device_id).await {
            // Its data there is newer than any backup: the move makes its last backup itself.
            return Err(DeployError::BackupRefused(format!(
                "{name}'s device answers, so its data there is newer than any backup: move it \
                 without choosing a backup. Choose one only when that device is gone."
            )));
        }
        let settings: BTreeMap<String, String> =
            serde_json::from_str(&app.settings).unwrap_or_default();
        // The new device must be able to run it, judged as for a deploy there. Its web page's
        // port moves out of the way there when taken (as the pre-flight does below), so it
        // rules no device out.
        let mut given = settings.clone();
        if let Some(port) = render::movable_port(&recipe, &BTreeMap::new()) {
            given.remove(&port);
        }
        let (_, target) = self.choose(&recipe, &given, Some(req.device_id)).await?;
        if let Some(snapshot) = &req.snapshot {
            // Only one of this app's own backups (listed from the new device: the old one
            // may be the reason for the move).
            let remote = Remote::connect(&self.devices, target.clone(), None).await?;
            self.ensure_restic(&remote).await?;
            let own = self.snapshots_at(&remote, &row, slug).await?;
            if !own.iter().any(|s| {
                s.id == *snapshot || (snapshot.len() >= 8 && s.id.starts_with(snapshot.as_str()))
            }) {
                return Err(DeployError::BackupRefused(format!(
                    "{} holds no backup of {name} with that id: copy one from the app's backups.",
                    row.name
                )));
            }
        }
        let guard = self.claim_for_owner(slug, &name).await?;
        for earlier in self.store.unfinished_deployments().await? {
            if earlier.slug == slug && !self.roll_back(earlier.id).await {
                return Err(DeployError::StillUndoing {
                    app: name,
                    device: earlier.device_name,
                });
            }
        }
        let named = self.store.name_of(slug.to_string()).await?.is_some();
        let message = format!("Moving {name} to {}…", target.name);
        let task = BackupTask {
            destination_id: Some(row.id),
            snapshot: req.snapshot,
            moving_from: Some(app.device_id),
        };
        self.start_on_installed(
            guard,
            "move",
            recipe,
            target,
            settings,
            named,
            message,
            Some(task),
        )
        .await
    }

    /// The move, on the job's device (where the app goes) and the one it leaves.
    pub(super) async fn relocate_steps(&self, job: &Job) -> Result<String, DeployError> {
        let (id, recipe, target) = (job.id, &job.recipe, &job.device);
        let m = &recipe.manifest;
        let slug = m.slug.as_str();
        let project = project_name(slug);
        let dir = self.app_dir(slug);
        let task = job.backup.clone().ok_or(DeployError::NotFound)?;
        let (Some(dest_id), Some(from)) = (task.destination_id, task.moving_from) else {
            return Err(DeployError::NotFound);
        };
        let app = self.deployed(slug).await?;
        if app.device_id != from {
            return Err(DeployError::BackupRefused(format!(
                "{} moved since this was asked: look at its page again.",
                m.name
            )));
        }
        let source = self
            .store
            .device(from)
            .await?
            .ok_or(DeployError::DeviceRemoved)?;
        let row = self.destination(dest_id).await?;
        let name_row = match job.by_address {
            true => None,
            false => self.store.name_of(slug.to_string()).await?,
        };
        let source_db = self
            .store
            .shared_database_of(slug.to_string(), from)
            .await?;

        // Checked on the new device before anything changes anywhere.
        let remote = Remote::connect(&self.devices, target.clone(), Some(id)).await?;
        let mut settings = job.settings.clone();
        let flexible: Vec<String> = render::movable_port(recipe, &BTreeMap::new())
            .into_iter()
            .collect();
        let kept = self
            .preflight(
                &remote,
                recipe,
                &mut settings,
                &flexible,
                &project,
                &dir,
                name_row.is_some(),
            )
            .await?;
        let kept_db = self
            .store
            .shared_database_of(slug.to_string(), target.id)
            .await?
            .is_some();
        if kept || kept_db {
            return Err(DeployError::BackupRefused(format!(
                "{} still holds {}'s data from an earlier removal, which a move would not \
                 overwrite. Choose another device, or delete that data on {} first \
                 (Advanced: its Docker volumes homelab-{slug}_… and its database in the \
                 shared one).",
                target.name, m.name, target.name
            )));
        }
        // The volumes the move makes there: one of those names already there is someone's
        // data (the pre-flight only sees the ones Compose labelled). Refused now, before
        // anything changes, so no undo ever removes it.
        let volumes: Vec<(String, String)> = m
            .data_volumes
            .iter()
            .map(|key| (key.clone(), format!("{project}_{key}")))
            .collect();
        for (_, volume) in &volumes {
            if crate::docker::run::volume_exists(&remote.docker, volume)
                .await
                .map_err(|e| self.docker_error(&remote, e))?
            {
                return Err(DeployError::BackupRefused(format!(
                    "{} already has a volume named {volume}: remove it there (if you do not \
                     need it), or choose another device.",
                    target.name
                )));
            }
        }
        self.ensure_restic(&remote).await?;

        // The app on the new device, while it still runs on the old one (its images are
        // downloaded meanwhile): same settings, same secrets (the vault's, by app).
        self.progress(
            id,
            slug,
            DeploymentState::Preparing,
            16,
            format!("Preparing {} on {}…", m.name, target.name),
        )
        .await;
        let mut values = settings.clone();
        self.fill_secrets(id, recipe, &mut values).await?;
        super::job::fill_box_values(target, recipe, &mut values).await?;
        // Its database stays the kind it was: the backup holds a dump for a shared one, the
        // database container's own files otherwise.
        let plan = match &source_db {
            Some(db) => {
                DbPlan::Shared(crate::pool::Engine::parse(&db.engine).ok_or_else(|| {
                    DeployError::BackupRefused(format!("Unknown database kind {}", db.engine))
                })?)
            }
            None => DbPlan::Own,
        };
        let pool_override = self
            .prepare_database(&remote, id, recipe, &plan, &mut values, true)
            .await?;
        if let Some(n) = &name_row {
            values.extend(render::named_values(&n.name));
            self.ensure_proxy(&remote, id).await?;
        }
        self.step(id, "files", &Undo::RemoveDir { dir: dir.clone() })
            .await?;
        self.write_files(
            &remote,
            id,
            recipe,
            &dir,
            &values,
            name_row.is_some(),
            &pool_override,
        )
        .await?;
        self.pull_images(&remote, id, recipe, &values).await?;

        // The data: a backup made now with the app stopped (it stays stopped, so nothing
        // written after the backup is lost), or the one the owner picked.
        let snapshot = match task.snapshot.clone() {
            Some(s) => s,
            None => self.final_backup(job, &source, &row, &app.app_dir).await?,
        };

        // Its data, restored into the volumes Compose will use (made with Compose's labels,
        // so it takes them as its own), and its database loaded, before it first starts.
        let db_staging = format!("homelab-restore-db-{id}");
        let mut made: Vec<String> = volumes.iter().map(|(_, v)| v.clone()).collect();
        if source_db.is_some() {
            made.push(db_staging.clone());
        }
        self.step(
            id,
            "move-volumes",
            &Undo::RemoveVolumes {
                volumes: made.clone(),
            },
        )
        .await?;
        for (key, volume) in &volumes {
            let labels = HashMap::from([
                ("com.docker.compose.project".to_string(), project.clone()),
                ("com.docker.compose.volume".to_string(), key.clone()),
            ]);
            self.make_volume(&remote, volume, labels).await?;
        }
        if source_db.is_some() {
            let labels = HashMap::from([(restic::LABEL.to_string(), "restore".to_string())]);
            self.make_volume(&remote, &db_staging, labels).await?;
        }
        self.progress(
            id,
            slug,
            DeploymentState::Pulling,
            78,
            format!(
                "Restoring {}'s data on {} from {}…",
                m.name, target.name, row.name
            ),
        )
        .await;
        {
            let lock = self.destination_lock(row.id);
            let _reading = lock.read().await;
            let db_into = source_db.is_some().then_some(db_staging.as_str());
            self.restore_snapshot(&remote, slug, &row, &snapshot, &volumes, db_into)
                .await?;
        }
        if let (DbPlan::Shared(engine), Some(db)) = (&plan, &m.database) {
            let database = crate::pool::database_name(slug).unwrap_or_default();
            let password = values.get(&db.env.password).cloned().unwrap_or_default();
            self.reload_database(
                &remote,
                *engine,
                slug,
                &database,
                &password,
                &db.extensions,
                &db_staging,
            )
            .await?;
            let _ = remote.remove_volume(&db_staging).await;
        }

        self.progress(
            id,
            slug,
            DeploymentState::Starting,
            85,
            format!("Starting {} on {}…", m.name, target.name),
        )
        .await;
        self.step(
            id,
            "containers",
            &Undo::RemoveProject {
                project: project.clone(),
                volumes: true,
            },
        )
        .await?;
        remote
            .compose_up("Start the app", &dir, &project, &m.name)
            .await?;
        self.health_check(&remote, id, recipe, &values, &project)
            .await?;

        // Its name now points at the new device, with its route on the proxy there.
        let mut url = super::job::app_url(recipe, target, &values);
        if let Some(old) = name_row {
            let row = self.point_name(&remote, job, &old, recipe, &values).await?;
            url = super::naming::named_url(recipe, &row, url);
        }
        self.step(
            id,
            "record",
            &Undo::AppBack {
                slug: slug.to_string(),
                device_id: from,
                url: app.url.clone(),
                settings: app.settings.clone(),
            },
        )
        .await?;
        // Its settings as they are on the new device (the pre-flight may have moved its port).
        let settings_json = serde_json::to_string(&settings).unwrap_or_default();
        self.store
            .move_app(slug.to_string(), target.id, url, settings_json)
            .await?;
        self.store
            .set_app_state(slug.into(), crate::states::RunState::Running, String::new())
            .await?;
        self.finish_steps(id).await?;

        // Recorded as done before the old copy goes, checked (not a progress note that may
        // fail quietly): a restart from here on finds nothing to undo, so it can never undo
        // the move after the old copy is gone.
        let words = format!("{} runs on {}; removing the old copy…", m.name, target.name);
        self.store
            .set_deployment_state(id, DeploymentState::Running, 95, words)
            .await?;
        self.events.publish(crate::events::Event::Deployment {
            id,
            slug: slug.to_string(),
        });
        // A backup chosen by the owner (its device gone) may be older than the data there:
        // that data is kept, only the containers and files go.
        let keep_data = task.snapshot.is_some();
        let left = match self
            .remove_old_copy(&source, slug, &project, &app.app_dir, keep_data)
            .await
        {
            Ok(()) if keep_data => format!(
                " Its data on {} is kept (the backup may be older): remove it there when you \
                 no longer need it.",
                source.name
            ),
            Ok(()) => String::new(),
            Err(e) => {
                tracing::warn!(app = %slug, device = %source.name, error = %e, "could not remove a moved app's old copy");
                format!(
                    " Its old copy on {} could not be removed ({e}): if that device comes \
                     back, stop the app there by hand; Homelab no longer uses it.",
                    source.name
                )
            }
        };
        self.devices.check_soon(source);
        Ok(format!(
            "Moved {} to {} with its data from {}.{left}",
            m.name, target.name, row.name
        ))
    }

    /// The move's own backup on the device the app leaves: the app stopped (and started
    /// again if the move fails), its data and database read, the snapshot's id returned.
    async fn final_backup(
        &self,
        job: &Job,
        source: &DeviceRow,
        row: &crate::store::DestinationRow,
        app_dir: &str,
    ) -> Result<String, DeployError> {
        let m = &job.recipe.manifest;
        let slug = m.slug.as_str();
        let project = project_name(slug);
        let lock = self.destination_lock(row.id);
        let guard = lock.clone().read_owned().await;
        let remote = Remote::connect(&self.devices, source.clone(), Some(job.id)).await?;
        self.ensure_restic(&remote).await?;
        let mut values = job.settings.clone();
        self.fill_secrets(job.id, &job.recipe, &mut values).await?;
        self.progress(
            job.id,
            slug,
            DeploymentState::Preparing,
            60,
            format!(
                "Stopping {} on {} for its last backup there…",
                m.name, source.name
            ),
        )
        .await;
        self.step_at(
            (job.id, job.device.id),
            &remote,
            "move-stop",
            Undo::StartApp {
                dir: app_dir.to_string(),
                project: project.clone(),
            },
        )
        .await?;
        remote
            .compose("Stop the app for the move", app_dir, &project, &["stop"])
            .await?;
        let (binds, dump) = self.backup_sources(&remote, job, &values).await?;
        let done = self
            .back_up_to(&remote, job, row, Some(guard), &binds, 62, 14)
            .await;
        if let Some(dump) = &dump {
            let _ = remote.remove_volume(dump).await;
        }
        let (_, snapshot) = done?;
        Ok(snapshot)
    }

    /// Points the app's name at the new device: the record moved (undone by putting it
    /// back), then a certificate and route on the new device's proxy, checked through it.
    async fn point_name(
        &self,
        remote: &Remote,
        job: &Job,
        old: &crate::store::NameRow,
        recipe: &crate::catalog::Recipe,
        values: &BTreeMap<String, String>,
    ) -> Result<crate::store::NameRow, DeployError> {
        let ip = self.named_ip(&remote.device).await?;
        let provider = crate::dns::records::Provider::parse(&old.provider)
            .unwrap_or(crate::dns::records::Provider::Mdns);
        // The certificate's key as it is: `secure` below issues a new one, and a failed move
        // puts this one back with the old certificate.
        let key = self
            .store
            .secret(super::key_owner(&old.slug), "key")
            .await?
            .map(|k| B64.encode(k));
        let undo = |reference: &str| Undo::PointNameBack {
            row: Box::new(old.clone()),
            new_answer: ip.to_string(),
            new_reference: reference.to_string(),
            key: key.clone(),
        };
        let seq = self.step(job.id, "name", &undo(&old.reference)).await?;
        let t = std::time::Instant::now();
        let (reference, state, message) = match self
            .records
            .repoint(
                provider,
                &old.name,
                &old.answer,
                &old.reference,
                ip,
                &old.slug,
            )
            .await
        {
            Ok(p) => (p.reference, "ok", String::new()),
            Err(e) => (old.reference.clone(), "failed", e.to_string()),
        };
        remote
            .note(
                format!("Name {} → {ip} ({})", old.name, provider.as_str()),
                match state {
                    "ok" => "ok".into(),
                    _ => message.clone(),
                },
                t,
                String::new(),
            )
            .await;
        if reference != old.reference {
            let undo = serde_json::to_string(&undo(&reference)).unwrap_or_default();
            self.store.set_step_undo(job.id, seq, undo).await?;
        }
        let named = super::naming::Named {
            provider,
            name: old.name.clone(),
            reference,
            record_state: state,
            record_message: message,
            probe: None,
            seq,
            ip,
            slug: old.slug.clone(),
        };
        self.secure(remote, job.id, recipe, values, &named, ip)
            .await
    }

    /// The old copy on the device the app left: its route, containers, data, folder and
    /// database there. Only after the move succeeded; the device may not answer (that may
    /// be why the app moved), which the caller reports.
    async fn remove_old_copy(
        &self,
        source: &DeviceRow,
        slug: &str,
        project: &str,
        dir: &str,
        keep_data: bool,
    ) -> Result<(), DeployError> {
        let remote = Remote::connect(&self.devices, source.clone(), None).await?;
        if let Err(e) = self.take_route_off(&remote, slug).await {
            tracing::info!(app = %slug, error = %e, "no route to take off the old device");
        }
        remote.remove_project(project, !keep_data).await?;
        remote.remove_dir(dir).await?;
        if keep_data {
            return self.remove_proxy_if_idle(&remote, None).await;
        }
        if let Some(db) = self
            .store
            .shared_database_of(slug.to_string(), source.id)
            .await?
            && let Some(engine) = crate::pool::Engine::parse(&db.engine)
        {
            self.drop_database(&remote, engine, slug, &db.database, true, true)
                .await?;
            self.remove_shared_db_if_idle(&remote, engine, false)
                .await?;
        }
        self.remove_proxy_if_idle(&remote, None).await
    }

    /// Makes a volume for restored data (its name was found free before anything changed).
    async fn make_volume(
        &self,
        remote: &Remote,
        name: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), DeployError> {
        crate::docker::run::create_volume(&remote.docker, name, labels)
            .await
            .map_err(|e| self.docker_error(remote, e))
    }
}

/// How long "does the old device answer" may take before it counts as gone.
const ANSWER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Deployer {
    /// Whether a device answers now (a fresh look, not its last poll), within `ANSWER_WAIT`.
    async fn device_answers(&self, device_id: i64) -> bool {
        let Ok(Some(device)) = self.store.device(device_id).await else {
            return false;
        };
        match tokio::time::timeout(ANSWER_WAIT, self.devices.poll(&device)).await {
            Ok(poll) => poll.facts.is_some(),
            Err(_) => false,
        }
    }
}
