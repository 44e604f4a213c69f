//! The shared database steps of a deploy: the device's shared instance started (or reused)
//! and the app's own database and login made in it, each journalled with its undo; the app
//! told where its database is; removal keeping or deleting it; the instance's health, restart
//! and removal once no app needs it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::journal::Undo;
use super::{DeployError, Deployer, DeploymentState, Remote, render};
use crate::catalog::Recipe;
use crate::docker::exec::ExecOutput;
use crate::pool::{self, Engine, sql};
use crate::store::SharedDbRow;

/// How long a new instance may take to accept connections: its first start initialises its
/// data (a few seconds in the lab; a Pi's SD card is several times slower).
const INSTANCE_READY: Duration = Duration::from_secs(120);
/// One SQL script's limit (they are a handful of statements; dropping a big database is the
/// slowest).
const SQL_TIMEOUT: Duration = Duration::from_secs(120);
/// What is kept of an exec's output (per stream).
const SQL_OUTPUT: usize = 16 * 1024;
/// How long a device page's reading of its shared databases is shown again (the page
/// refreshes on every device event; sizes and memory change slowly).
const SHARED_VIEW_FRESH: Duration = Duration::from_secs(20);

/// A device's shared instance, as its page and the API show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SharedInstance {
    pub engine: Engine,
    /// "PostgreSQL" | "MariaDB"
    pub words: &'static str,
    /// The device answered just now (else `running` is not known).
    pub reachable: bool,
    pub running: bool,
    /// Installed apps whose database is in it: (slug, name).
    pub apps: Vec<(String, String)>,
    /// Apps removed "keeping data" whose database it still holds.
    pub kept: Vec<String>,
    /// No installed app uses it: the owner may remove it.
    pub removable: bool,
    /// Bytes of Homelab's databases in it (None when it could not be read now).
    pub size_bytes: Option<u64>,
    /// Memory it uses now (None when not running or not read).
    pub memory_bytes: Option<u64>,
}

/// Where an app's database lives for this deploy.
pub(super) enum DbPlan {
    /// The app has no database, or keeps its own container (its page says why:
    /// `pool::why_own`).
    Own,
    /// The app's database is in the device's shared instance.
    Shared(Engine),
}

impl Remote {
    /// Runs a script in the engine's shared instance (the SQL and any password on stdin;
    /// "What I did" records the command and the stdin's size only).
    pub(super) async fn db_exec(
        &self,
        engine: Engine,
        label: &str,
        script: &sql::Script,
    ) -> Result<ExecOutput, DeployError> {
        let t = Instant::now();
        let out = crate::docker::exec::run(
            &self.docker,
            engine.project(),
            script.user,
            &script.cmd,
            script.stdin.as_bytes(),
            SQL_TIMEOUT,
            SQL_OUTPUT,
        )
        .await;
        let what = format!(
            "{label}: docker exec {} {}  (+{} bytes on stdin)",
            engine.project(),
            script.cmd.join(" "),
            script.stdin.len()
        );
        match out {
            Ok(o) => {
                let outcome = match o.exit_code {
                    Some(c) => format!("exit {c}"),
                    None => "no exit status".into(),
                };
                self.note(what, outcome, t, o.stderr.clone()).await;
                Ok(o)
            }
            Err(e) => {
                self.note(what, format!("failed: {}", e.detail()), t, String::new())
                    .await;
                if e.engine_answered() {
                    Err(DeployError::SharedDbRefused {
                        engine,
                        device: self.device.name.clone(),
                        detail: e.detail(),
                    })
                } else {
                    Err(self.docker_lost(e))
                }
            }
        }
    }

    /// Writes the instance's Compose file and superuser files into `dir`.
    async fn write_pool(
        &self,
        engine: Engine,
        dir: &str,
        compose: &str,
        superuser: &str,
    ) -> Result<(), DeployError> {
        // MariaDB's client reads the superuser's password from this file (never an argument);
        // PostgreSQL's tools use the trusted local socket and ignore it.
        let cnf = format!("[client]\nuser=root\npassword={superuser}\n");
        let mut stdin = Vec::with_capacity(compose.len() + superuser.len() + cnf.len());
        for part in [compose, superuser, cnf.as_str()] {
            stdin.extend_from_slice(part.as_bytes());
        }
        let (len, pw) = (compose.len().to_string(), superuser.len().to_string());
        let out = self
            .run(
                &format!(
                    "Write the shared {}'s compose.yaml and password files",
                    engine.words()
                ),
                crate::ssh::RemoteCommand::script(WRITE_POOL, [dir, len.as_str(), pw.as_str()]),
                Some(&stdin),
                Duration::from_secs(30),
            )
            .await?;
        self.files_written(dir, &out)
    }

    /// Whether a volume exists on the device.
    async fn volume_exists(&self, name: &str) -> Result<bool, DeployError> {
        match self.docker.inspect_volume(name).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(self.docker_lost(e.into())),
        }
    }

    /// Removes the instance's data volume (already gone is fine).
    async fn remove_shared_volume(&self, engine: Engine) -> Result<(), DeployError> {
        crate::docker::project::remove_volume(&self.docker, engine.volume())
            .await
            .map_err(|e| self.docker_lost(e))
    }

    /// Removes one container (already gone is fine).
    pub(super) async fn remove_container(&self, id: &str) -> Result<(), DeployError> {
        crate::docker::project::remove_container(&self.docker, id)
            .await
            .map_err(|e| self.docker_lost(e))
    }

    /// Deletes a file in a folder (already gone is fine).
    pub(super) async fn remove_file(&self, dir: &str, file: &str) -> Result<(), DeployError> {
        let out = self
            .run(
                &format!("Remove {file}"),
                crate::ssh::RemoteCommand::script("rm -f -- \"$1/$2\"", [dir, file]),
                None,
                Duration::from_secs(30),
            )
            .await?;
        match out.success() {
            true => Ok(()),
            false => Err(DeployError::FilesNotWritten {
                dir: dir.to_string(),
                device: self.device.name.clone(),
                detail: out.stderr_text(),
            }),
        }
    }

    /// Whether the instance accepts connections on its network address.
    pub(super) async fn db_ready(&self, engine: Engine) -> bool {
        crate::docker::exec::run(
            &self.docker,
            engine.project(),
            sql::ready(engine).user,
            &sql::ready(engine).cmd,
            b"",
            Duration::from_secs(10),
            1024,
        )
        .await
        .map(|o| o.success())
        .unwrap_or(false)
    }
}

/// The instance's files script (see the script's header).
const WRITE_POOL: &str = include_str!("write_pool.sh");
/// The copy of an app's own database into the shared one (see the script's header).
const MOVE_DB: &str = include_str!("move_db.sh");
/// A copy may take a while for a big database; a stuck one must still end.
const COPY_TIMEOUT: Duration = Duration::from_secs(1800);

/// An app's own database container, and the database and user its app uses in it.
pub(super) struct OwnDb {
    pub container: String,
    pub database: String,
    pub user: String,
}

/// The default a recipe's Compose file gives a variable (`${NAME:-default}`), if any.
fn compose_default(recipe: &Recipe, var: &str) -> Option<String> {
    let text = &recipe.compose_text;
    let start = text.find(&format!("${{{var}:-"))? + var.len() + 4;
    let end = text[start..].find('}')? + start;
    Some(text[start..end].to_string())
}

impl Deployer {
    /// Where the app's database lives for a new deploy: in the device's shared instance when
    /// the recipe allows it, unless data kept from an earlier removal is in its own database
    /// container (then that is used again, as before).
    pub(super) async fn plan_database(
        &self,
        recipe: &Recipe,
        kept_data: bool,
        device_id: i64,
    ) -> Result<DbPlan, DeployError> {
        if recipe.manifest.database.is_none() {
            return Ok(DbPlan::Own);
        }
        let earlier = self
            .store
            .shared_database_of(recipe.manifest.slug.clone(), device_id)
            .await?;
        match pool::can_pool(recipe) {
            Err(_) => Ok(DbPlan::Own),
            Ok(engine) => match earlier {
                Some(_) => Ok(DbPlan::Shared(engine)),
                _ if kept_data => Ok(DbPlan::Own),
                _ => Ok(DbPlan::Shared(engine)),
            },
        }
    }

    /// The plan for an update: the app stays where its database is.
    pub(super) async fn current_database(
        &self,
        recipe: &Recipe,
        device_id: i64,
    ) -> Result<DbPlan, DeployError> {
        let row = self
            .store
            .shared_database_of(recipe.manifest.slug.clone(), device_id)
            .await?;
        Ok(match row.and_then(|r| Engine::parse(&r.engine)) {
            Some(engine) => DbPlan::Shared(engine),
            None => DbPlan::Own,
        })
    }

    /// Makes the app's database ready as planned and adds what the app needs to `values`: the
    /// connection to the shared one, or the profile that starts its own. Returns the override
    /// that joins the app's database clients to the shared instance's network ("" for none).
    pub(super) async fn prepare_database(
        &self,
        remote: &Remote,
        id: i64,
        recipe: &Recipe,
        plan: &DbPlan,
        values: &mut BTreeMap<String, String>,
        create: bool,
    ) -> Result<String, DeployError> {
        let Some(db) = &recipe.manifest.database else {
            return Ok(String::new());
        };
        let engine = match plan {
            DbPlan::Own => {
                if !db.service.is_empty() {
                    values.insert("COMPOSE_PROFILES".into(), pool::OWN_DATABASE_PROFILE.into());
                }
                return Ok(String::new());
            }
            DbPlan::Shared(engine) => *engine,
        };
        let slug = recipe.manifest.slug.as_str();
        self.progress(
            id,
            slug,
            DeploymentState::Preparing,
            17,
            format!("Preparing its database in the shared {}…", engine.words()),
        )
        .await;
        // Held until the app's database is recorded: a removal or a failed deploy's undo on
        // the same device cannot take the instance away in between.
        let lock = self.pool_lock(remote.device.id, engine);
        let _held = lock.lock().await;
        self.ensure_instance(remote, id, engine).await?;
        let name = pool::database_name(slug).ok_or_else(|| DeployError::SharedDbRefused {
            engine,
            device: remote.device.name.clone(),
            detail: format!("no database name for “{slug}”"),
        })?;
        let password = values.get(&db.env.password).cloned().unwrap_or_default();
        if create {
            self.provision(remote, id, slug, engine, &name, &password, &db.extensions)
                .await?;
        }
        self.forget_shared_view(remote.device.id);
        values.extend(pool::connection_values(recipe, engine));
        Ok(pool::app_override(engine, &recipe.database_clients()))
    }

    /// Starts the device's shared instance unless it already runs and answers (the caller
    /// holds the device's pool lock: two deploys must not both create it). Its removal is
    /// journalled only when this makes it new: an existing one (stopped, or slow after a
    /// reboot) holds data and is only started again.
    async fn ensure_instance(
        &self,
        remote: &Remote,
        id: i64,
        engine: Engine,
    ) -> Result<(), DeployError> {
        let t = Instant::now();
        if remote.db_ready(engine).await {
            remote
                .note(
                    format!("The shared {} is running on the device", engine.words()),
                    "yes — reused".into(),
                    t,
                    String::new(),
                )
                .await;
            return Ok(());
        }
        if !remote.volume_exists(engine.volume()).await? {
            self.step(
                id,
                "shared-database",
                &Undo::RemoveSharedDb {
                    device_id: remote.device.id,
                    engine,
                },
            )
            .await?;
        }
        let superuser = self.superuser_password(remote.device.id, engine).await?;
        let dir = engine.dir(&self.config.apps_dir);
        let ram_mb = self.device_ram_mb(remote.device.id).await;
        let compose = pool::compose(engine, &dir, ram_mb);
        remote
            .write_pool(engine, &dir, &compose, &superuser)
            .await?;
        if !remote.image_present(engine.image()).await? {
            let (tx, _rx) = tokio::sync::watch::channel((0u64, 0u64));
            remote.pull(engine.image(), tx).await?;
        }
        self.start_instance(remote, engine).await
    }

    /// `compose up` of the instance's folder, then waits until it answers.
    async fn start_instance(&self, remote: &Remote, engine: Engine) -> Result<(), DeployError> {
        let what = format!("the shared {}", engine.words());
        remote
            .compose_up(
                &format!("Start the shared {}", engine.words()),
                &engine.dir(&self.config.apps_dir),
                engine.project(),
                &what,
            )
            .await?;
        let deadline = Instant::now() + INSTANCE_READY;
        while !remote.db_ready(engine).await {
            if Instant::now() >= deadline {
                return Err(DeployError::SharedDbNotReady {
                    engine,
                    device: remote.device.name.clone(),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(())
    }

    /// The instance's superuser password: sealed in the vault, made once per device and engine.
    async fn superuser_password(
        &self,
        device_id: i64,
        engine: Engine,
    ) -> Result<String, DeployError> {
        let owner = engine.secret_owner(device_id);
        if let Some(sealed) = self.store.secret(owner.clone(), "superuser").await? {
            let s = self.vault.open(&sealed, &owner, "superuser")?;
            return Ok(s.expose_str().unwrap_or_default().to_string());
        }
        let pw = render::generate_secret(32);
        let sealed = self.vault.seal(pw.as_bytes(), &owner, "superuser");
        self.store.put_secret(owner, "superuser", sealed).await?;
        Ok(pw)
    }

    /// Makes the app's database and login (or reuses them with the stored password), after
    /// journalling exactly what it is about to create.
    #[allow(clippy::too_many_arguments)]
    async fn provision(
        &self,
        remote: &Remote,
        id: i64,
        slug: &str,
        engine: Engine,
        name: &str,
        password: &str,
        extensions: &[String],
    ) -> Result<(), DeployError> {
        let refused = |detail: String| DeployError::SharedDbRefused {
            engine,
            device: remote.device.name.clone(),
            detail,
        };
        let check = sql::exists(engine, name, name).map_err(|e| refused(e.to_string()))?;
        let out = remote
            .db_exec(engine, "Is the app's database there", &check)
            .await?;
        let (db_there, login_there) = sql::parse_exists(&out.stdout)
            .filter(|_| out.success())
            .ok_or_else(|| refused(out.stderr.clone()))?;
        self.step(
            id,
            "database",
            &Undo::DropSharedDatabase {
                device_id: remote.device.id,
                engine,
                slug: slug.to_string(),
                database: name.to_string(),
                drop_database: !db_there,
                drop_login: !login_there,
            },
        )
        .await?;
        let script = sql::provision(engine, name, name, password, extensions)
            .map_err(|e| refused(e.to_string()))?;
        let out = remote
            .db_exec(engine, "Make the app's database and login", &script)
            .await?;
        if !out.success() {
            return Err(refused(out.stderr));
        }
        self.store
            .put_shared_database(SharedDbRow {
                device_id: remote.device.id,
                engine: engine.as_str().into(),
                slug: slug.into(),
                database: name.into(),
                login: name.into(),
                created_at: 0,
            })
            .await?;
        Ok(())
    }

    /// Drops an app's database and/or login in the shared instance (rollback, or removal
    /// deleting the app's data), and forgets it.
    pub(super) async fn drop_database(
        &self,
        remote: &Remote,
        engine: Engine,
        slug: &str,
        name: &str,
        drop_database: bool,
        drop_login: bool,
    ) -> Result<(), DeployError> {
        if drop_database || drop_login {
            if !remote.db_ready(engine).await {
                // Nothing can be dropped from an instance that is not there (removed with the
                // device's data, say); anything else is retried by the caller.
                if remote
                    .project_containers(engine.project())
                    .await?
                    .is_empty()
                    && !remote.volume_exists(engine.volume()).await?
                {
                    self.store
                        .delete_shared_database(slug.into(), remote.device.id)
                        .await?;
                    return Ok(());
                }
                return Err(DeployError::SharedDbNotReady {
                    engine,
                    device: remote.device.name.clone(),
                });
            }
            let script = sql::drop(engine, name, name, drop_database, drop_login).map_err(|e| {
                DeployError::SharedDbRefused {
                    engine,
                    device: remote.device.name.clone(),
                    detail: e.to_string(),
                }
            })?;
            let out = remote
                .db_exec(engine, "Drop the app's database and login", &script)
                .await?;
            if !out.success() {
                return Err(DeployError::SharedDbRefused {
                    engine,
                    device: remote.device.name.clone(),
                    detail: out.stderr,
                });
            }
        }
        self.forget_shared_view(remote.device.id);
        if drop_database {
            self.store
                .delete_shared_database(slug.into(), remote.device.id)
                .await?;
        }
        Ok(())
    }

    /// Removes the shared instance (its container, network and data) when no app's database
    /// is recorded in it; returns whether it was removed. `force` also drops the databases
    /// of apps removed earlier "keeping data" (the owner was asked).
    pub async fn remove_shared_db_if_idle(
        &self,
        remote: &Remote,
        engine: Engine,
        force: bool,
    ) -> Result<bool, DeployError> {
        let lock = self.pool_lock(remote.device.id, engine);
        let _held = lock.lock().await;
        let rows = self.shared_dbs_in(remote.device.id, engine).await?;
        let in_use = self.shared_db_in_use(remote.device.id, engine).await?;
        if in_use || (!rows.is_empty() && !force) {
            return Ok(false);
        }
        remote.remove_project(engine.project(), true).await?;
        remote.remove_shared_volume(engine).await?;
        remote
            .remove_dir(&engine.dir(&self.config.apps_dir))
            .await?;
        for r in rows {
            self.store
                .delete_shared_database(r.slug, remote.device.id)
                .await?;
        }
        self.store
            .delete_secrets_of(engine.secret_owner(remote.device.id))
            .await?;
        Ok(true)
    }

    /// The shared instances on a device: those holding a recorded database and those running
    /// (even with none, after the last app left), with live size and memory when `live`.
    pub async fn shared_instances(
        &self,
        device_id: i64,
        live: bool,
    ) -> Result<Vec<SharedInstance>, DeployError> {
        let apps = self.store.apps().await?;
        // A page refreshes on every device event: a recent reading is shown again rather
        // than asking the device each time.
        if live
            && let Some((at, list)) = self
                .shared_view
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&device_id)
            && at.elapsed() < SHARED_VIEW_FRESH
        {
            return Ok(list.clone());
        }
        let remote = match (live, self.store.device(device_id).await?) {
            (true, Some(device)) => Remote::connect(&self.devices, device, None).await.ok(),
            _ => None,
        };
        let mut out = Vec::new();
        for engine in Engine::ALL {
            let rows = self.shared_dbs_in(device_id, engine).await?;
            let containers = match &remote {
                Some(r) => r
                    .project_containers(engine.project())
                    .await
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            let running = containers
                .iter()
                .any(|c| c.state.as_ref().map(|s| s.to_string()).as_deref() == Some("running"));
            if rows.is_empty() && containers.is_empty() {
                continue;
            }
            let (mut users, mut kept) = (Vec::new(), Vec::new());
            for r in &rows {
                match apps
                    .iter()
                    .find(|a| a.slug == r.slug && a.device_id == device_id)
                {
                    Some(a) => users.push((a.slug.clone(), a.name.clone())),
                    None => kept.push(r.slug.clone()),
                }
            }
            let (mut size_bytes, mut memory_bytes) = (None, None);
            if let Some(r) = remote.as_ref().filter(|_| running) {
                let sizes = crate::docker::exec::run(
                    &r.docker,
                    engine.project(),
                    sql::sizes(engine).user,
                    &sql::sizes(engine).cmd,
                    sql::sizes(engine).stdin.as_bytes(),
                    Duration::from_secs(5),
                    SQL_OUTPUT,
                )
                .await;
                if let Some(o) = sizes.ok().filter(|o| o.success()) {
                    size_bytes = Some(sql::parse_sizes(&o.stdout).iter().map(|(_, b)| b).sum());
                }
                memory_bytes = crate::docker::project::memory_in_use(&r.docker, engine.project())
                    .await
                    .ok()
                    .flatten();
                if let Some(m) = memory_bytes {
                    self.note_pool_memory(device_id, engine, m);
                }
            }
            out.push(SharedInstance {
                engine,
                words: engine.words(),
                reachable: remote.is_some(),
                running,
                removable: users.is_empty(),
                apps: users,
                kept,
                size_bytes,
                memory_bytes,
            });
        }
        if remote.is_some() {
            self.shared_view
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(device_id, (Instant::now(), out.clone()));
        }
        Ok(out)
    }

    /// Forgets the device's cached shared-database reading (after a change to them).
    pub(super) fn forget_shared_view(&self, device_id: i64) {
        self.shared_view
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&device_id);
    }

    /// Starts a stopped shared instance again ("Restart" on a degraded app's page), then
    /// looks at its apps at once.
    pub async fn restart_shared_db(
        &self,
        device_id: i64,
        engine: Engine,
    ) -> Result<String, DeployError> {
        let device = self
            .store
            .device(device_id)
            .await?
            .ok_or(DeployError::NotFound)?;
        if self.shared_dbs_in(device_id, engine).await?.is_empty() {
            return Err(DeployError::NotFound);
        }
        let remote = Remote::connect(&self.devices, device.clone(), None).await?;
        {
            let lock = self.pool_lock(device_id, engine);
            let _held = lock.lock().await;
            self.start_instance(&remote, engine).await?;
        }
        self.forget_shared_view(device_id);
        self.reconcile().await;
        self.devices.check_soon(device.clone());
        Ok(format!(
            "The shared {} on {} is running again.",
            engine.words(),
            device.name
        ))
    }

    /// Removes a shared instance no installed app uses, with the databases kept for removed
    /// apps (the owner was asked: their data goes with it).
    pub async fn remove_shared_db(
        &self,
        device_id: i64,
        engine: Engine,
    ) -> Result<String, DeployError> {
        let device = self
            .store
            .device(device_id)
            .await?
            .ok_or(DeployError::NotFound)?;
        if self.shared_db_in_use(device_id, engine).await? {
            return Err(DeployError::SharedDbInUse {
                engine,
                device: device.name.clone(),
            });
        }
        let remote = Remote::connect(&self.devices, device.clone(), None).await?;
        self.remove_shared_db_if_idle(&remote, engine, true).await?;
        self.forget_pool_memory(device_id, engine);
        self.forget_shared_view(device_id);
        self.devices.check_soon(device.clone());
        Ok(format!(
            "The shared {} was removed from {}.",
            engine.words(),
            device.name
        ))
    }

    /// What sharing saves across the homelab, from the last memory read of each instance
    /// (see `pool::saved_mib`): (MiB saved, instances counted, apps sharing).
    pub async fn sharing_saves(&self) -> Result<(f64, usize, usize), DeployError> {
        let apps = self.store.apps().await?;
        let rows = self.store.shared_databases().await?;
        let memory = self
            .pool_memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (mut saved, mut instances, mut sharing) = (0.0, 0, 0);
        for ((device_id, engine), bytes) in memory {
            let users = rows
                .iter()
                .filter(|r| r.device_id == device_id && r.engine == engine.as_str())
                // A database kept for an app now installed on another device saves nothing.
                .filter(|r| {
                    apps.iter()
                        .any(|a| a.slug == r.slug && a.device_id == r.device_id)
                })
                .count();
            if users == 0 {
                continue;
            }
            instances += 1;
            sharing += users;
            saved += pool::saved_mib(engine, users, bytes as f64 / (1024.0 * 1024.0));
        }
        Ok((saved, instances, sharing))
    }

    /// Remembers an instance's memory (read by housekeeping and the device page).
    pub(super) fn note_pool_memory(&self, device_id: i64, engine: Engine, bytes: u64) {
        let mut m = self.pool_memory.lock().unwrap_or_else(|e| e.into_inner());
        m.insert((device_id, engine), bytes);
    }

    fn forget_pool_memory(&self, device_id: i64, engine: Engine) {
        let mut m = self.pool_memory.lock().unwrap_or_else(|e| e.into_inner());
        m.remove(&(device_id, engine));
    }

    /// The app's own database container (running), and the database and user its app was
    /// given by the recipe's defaults.
    pub(super) async fn own_database(
        &self,
        remote: &Remote,
        recipe: &Recipe,
        project: &str,
    ) -> Result<OwnDb, DeployError> {
        let m = &recipe.manifest;
        let db = m
            .database
            .as_ref()
            .ok_or_else(|| DeployError::CannotShare(format!("{} has no database.", m.name)))?;
        let container = remote
            .project_containers(project)
            .await?
            .into_iter()
            .find(|c| {
                c.labels
                    .as_ref()
                    .and_then(|l| l.get("com.docker.compose.service"))
                    .is_some_and(|s| *s == db.service)
                    && c.state.as_ref().map(|s| s.to_string()).as_deref() == Some("running")
            })
            .and_then(|c| c.id)
            .ok_or_else(|| {
                DeployError::CannotShare(format!(
                    "{}'s own database is not running, so there is nothing to move. Start the app first.",
                    m.name
                ))
            })?;
        let known = |var: &str| compose_default(recipe, var);
        match (known(&db.env.name), known(&db.env.user)) {
            (Some(database), Some(user)) => Ok(OwnDb {
                container,
                database,
                user,
            }),
            _ => Err(DeployError::CannotShare(format!(
                "{}'s recipe does not say which database its own container holds, so Homelab cannot move it.",
                m.name
            ))),
        }
    }

    /// Copies the app's own database into its database in the shared instance, on the device.
    pub(super) async fn copy_to_shared(
        &self,
        remote: &Remote,
        recipe: &Recipe,
        engine: Engine,
        source: &OwnDb,
        password: &str,
    ) -> Result<(), DeployError> {
        let target = pool::database_name(&recipe.manifest.slug).unwrap_or_default();
        // The shared MariaDB's side restores as the app's login, which needs its password.
        let stdin = format!("{password}\n");
        let out = remote
            .run(
                "Copy the app's data into the shared database",
                crate::ssh::RemoteCommand::script(
                    MOVE_DB,
                    [
                        engine.as_str(),
                        remote.device.docker_socket.as_str(),
                        source.container.as_str(),
                        source.database.as_str(),
                        source.user.as_str(),
                        engine.project(),
                        target.as_str(),
                    ],
                ),
                Some(stdin.as_bytes()),
                COPY_TIMEOUT,
            )
            .await?;
        let said = out.stdout_text();
        if out.success() && said.trim() == "copied" {
            return Ok(());
        }
        let why = match said.trim() {
            "dump-failed" => "Its own database could not be read.",
            _ => {
                "The shared database did not take it all (something in it needs more rights than an app gets)."
            }
        };
        Err(DeployError::CopyToSharedFailed {
            app: recipe.manifest.name.clone(),
            engine,
            why: why.to_string(),
            detail: super::last_lines(&out.stderr_text(), 6),
        })
    }

    /// The databases recorded in a device's instance (of installed apps, and kept ones).
    pub async fn shared_dbs_in(
        &self,
        device_id: i64,
        engine: Engine,
    ) -> Result<Vec<SharedDbRow>, DeployError> {
        Ok(self
            .store
            .shared_databases()
            .await?
            .into_iter()
            .filter(|r| r.device_id == device_id && r.engine == engine.as_str())
            .collect())
    }

    /// Whether an installed app uses the device's instance.
    pub async fn shared_db_in_use(
        &self,
        device_id: i64,
        engine: Engine,
    ) -> Result<bool, DeployError> {
        let apps = self.store.apps().await?;
        Ok(self
            .shared_dbs_in(device_id, engine)
            .await?
            .iter()
            .any(|r| apps.iter().any(|a| a.slug == r.slug)))
    }

    /// The device's RAM from its last poll (a small default when it has not been read yet:
    /// the instance then starts with modest settings).
    async fn device_ram_mb(&self, device_id: i64) -> i64 {
        let facts = self
            .store
            .device_statuses()
            .await
            .ok()
            .and_then(|all| all.into_iter().find(|s| s.device_id == device_id))
            .and_then(|s| serde_json::from_str::<crate::devices::facts::Facts>(&s.facts).ok());
        match facts {
            Some(f) if f.mem_total > 0 => (f.mem_total / (1024 * 1024)) as i64,
            _ => 1024,
        }
    }

    fn pool_lock(&self, device_id: i64, engine: Engine) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.pool_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry((device_id, engine)).or_default().clone()
    }
}
