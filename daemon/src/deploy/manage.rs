//! Managing a deployed app: start/stop/restart, its logs, its generated secrets, and removing
//! it (what removal deletes, in words, and the removal itself).

use super::{
    DeployError, Deployer, DeploymentState, Lifecycle, Remote, Removal, RunState, last_lines,
    project_name, secret_owner,
};
use std::collections::BTreeMap;

use crate::events::Event;

impl Deployer {
    /// start | stop | restart an app.
    pub async fn lifecycle(&self, slug: &str, action: Lifecycle) -> Result<String, DeployError> {
        let app = self.deployed(slug).await?;
        let _guard = self.claim_for_owner(slug, &app.name).await?;
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
            return Err(DeployError::LifecycleFailed {
                verb,
                app: app.name,
                detail: last_lines(&out.stderr_text(), 4),
            });
        }
        let (state, msg) = match action {
            Lifecycle::Stop => (RunState::Stopped, "Stopped."),
            _ => (RunState::Running, ""),
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

    /// The account Homelab made for the owner (the recipe's `sign_in`): the user name with
    /// the app's settings filled in, and its password from the vault. None when the recipe
    /// makes none.
    pub async fn sign_in(&self, slug: &str) -> Result<Option<(String, String)>, DeployError> {
        let app = self.deployed(slug).await?;
        let recipe = self.recipe(slug)?;
        let Some(sign_in) = &recipe.manifest.sign_in else {
            return Ok(None);
        };
        if !self.account_made(&app).await? {
            return Ok(None);
        }
        let mut values = recipe.default_values();
        let settings: BTreeMap<String, String> =
            serde_json::from_str(&app.settings).unwrap_or_default();
        values.extend(settings);
        let user = crate::catalog::interpolate(&sign_in.user, &values).unwrap_or_default();
        let password = self
            .secrets(slug)
            .await?
            .into_iter()
            .find(|(name, _)| *name == sign_in.password)
            .map(|(_, value)| value)
            .unwrap_or_default();
        Ok(Some((user, password)))
    }

    /// Whether the app's account was made from the recipe's `sign_in` password: true when the
    /// install that put the app there (the last deploy that reached running) gave it that
    /// secret. Apps make the account on their first start only; one added by an update (from
    /// a version without it) was never used, as the app had its admin already, so showing it
    /// would hand the owner a password that fails.
    pub async fn account_made(&self, app: &crate::store::AppRow) -> Result<bool, DeployError> {
        let Some(sign_in) = self
            .recipe(&app.slug)
            .ok()
            .and_then(|r| r.manifest.sign_in.as_ref())
        else {
            return Ok(false);
        };
        // An app's deployments are few (one per install or update); the install is among the
        // last ones unless it was updated dozens of times, when no account is shown.
        let installed = self
            .store
            .deployments(Some(app.slug.clone()), 50)
            .await?
            .into_iter()
            .find(|d| d.kind == "deploy" && d.state == DeploymentState::Running);
        Ok(installed.is_some_and(|d| {
            serde_json::from_str::<Vec<String>>(&d.env_keys)
                .unwrap_or_default()
                .contains(&sign_in.password)
        }))
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
        let _guard = self.claim_for_owner(slug, &app.name).await?;
        let device = self.app_device(&app).await?;
        let delete_data = how == Removal::DeleteData;
        if how == Removal::ForgetHere {
            // The device is gone for good: nothing can be cleaned there. Its secrets stay
            // sealed here until the app is removed with its data, like kept data does. Its
            // name goes (the record on the DNS too), so nobody is sent to a dead address.
            self.unname(None, slug).await?;
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
                return Err(DeployError::RemovalNeedsDevice {
                    device: device.name,
                    cause: Box::new(e),
                });
            }
        };
        // The name first: nobody is sent to an app that is going.
        self.unname(Some(&remote), slug).await?;
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
        // The last named app on the device takes Homelab's proxy with it.
        self.remove_proxy_if_idle(&remote, None).await?;
        // Its database in the shared instance is data too: kept with it (and its login, whose
        // password is one of the app's secrets), or dropped with it.
        let shared = self
            .store
            .shared_database_of(slug.into(), device.id)
            .await?;
        let mut shared_engine = None;
        if let Some(row) = shared
            && let Some(engine) = crate::pool::Engine::parse(&row.engine)
        {
            if delete_data {
                self.drop_database(&remote, engine, slug, &row.database, true, true)
                    .await?;
            }
            shared_engine = Some(engine);
        }
        // Kept data (volumes) was made with these secrets; they go only with the data.
        if delete_data {
            self.store.delete_secrets_of(secret_owner(slug)).await?;
        }
        self.store.delete_app(slug.into()).await?;
        let idle_instance = match shared_engine {
            Some(engine) if !self.shared_db_in_use(device.id, engine).await? => Some(engine),
            _ => None,
        };
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
        let done = if delete_data {
            format!("{} and its data were removed.", app.name)
        } else {
            format!(
                "{} was removed; its data stays on {} and comes back if you deploy it there again.",
                app.name, device.name
            )
        };
        // The instance itself goes only when the owner says so (the device's page asks).
        Ok(match idle_instance {
            Some(engine) => format!(
                "{done} No app uses the shared {} on {} any more: you can remove it from the device's page.",
                engine.words(),
                device.name
            ),
            None => done,
        })
    }
}
