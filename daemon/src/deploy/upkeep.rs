//! Housekeeping in the background: unfinished rollbacks retried, and deployed apps compared
//! with their device (containers stopped or removed behind our back, and coming back, and the
//! shared database an app uses stopping).

use std::sync::Arc;
use std::time::Duration;

use super::{Deployer, Remote, RunState, project_name};
use crate::events::Event;
use crate::pool::Engine;

/// How often unfinished rollbacks are retried and deployed apps are compared with their device.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(15);
/// How long one app's look at its device may take (a healthy device answers in milliseconds).
const LOOK_WAIT: Duration = Duration::from_secs(10);

impl Deployer {
    /// Background upkeep until `stop`: recovery at once, then retries and reconciliation.
    pub fn spawn_housekeeping(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let sweeper = self.clone();
        tokio::spawn(async move { sweeper.sweep_all_backup_leftovers().await });
        tokio::spawn(async move {
            self.recover().await;
            let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
            tick.reset();
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        self.recover().await;
                        self.reconcile().await;
                        self.renew_certificates(crate::store::now_unix()).await;
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
        let shared = self.store.shared_databases().await.unwrap_or_default();
        // Each instance is looked at once per pass, however many apps use it.
        let mut instances: std::collections::BTreeMap<(i64, Engine), bool> = Default::default();
        for app in apps {
            if app.state == RunState::Starting {
                continue;
            }
            // Looked at without holding the app, within a bound: a device that stopped
            // answering (before its connection is known dead) must not keep the app busy,
            // which would refuse a move away from it. What was seen counts only if the app
            // did not change meanwhile (checked below, holding it).
            let look = self.look_at(&app, &shared, &mut instances);
            let Ok(Some((containers, running, pooled, instance_up))) =
                tokio::time::timeout(LOOK_WAIT, look).await
            else {
                continue;
            };
            let Some(_guard) = self.try_busy(&app.slug) else {
                continue;
            };
            match self.store.app(app.slug.clone()).await {
                Ok(Some(now))
                    if now.device_id == app.device_id && now.updated_at == app.updated_at => {}
                _ => continue,
            }
            let (state, message) = if containers.is_empty() {
                (
                    RunState::Missing,
                    "Its containers were removed outside Homelab. Remove the app here, or deploy it again.".to_string(),
                )
            } else if running == containers.len() && !instance_up {
                // Its own parts run, but the database they need does not: degraded, with the
                // fix on its page (Restart the shared database).
                (
                    RunState::Failed,
                    pooled.map(crate::pool::stopped_message).unwrap_or_default(),
                )
            } else if running == containers.len() {
                (RunState::Running, String::new())
            } else if running == 0 {
                (RunState::Stopped, "Stopped.".to_string())
            } else {
                (
                    RunState::Failed,
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
                tracing::info!(app = %app.slug, state = state.as_str(), "app state changed on its device");
                // The device page's shared databases are read again, so the change shows there
                // at once (a stopped or restarted instance is usually why).
                if pooled.is_some() {
                    self.forget_shared_view(app.device_id);
                }
                self.events.publish(Event::AppState {
                    slug: app.slug.clone(),
                });
            }
        }
    }
    /// An app's containers on its device (how many run), its shared database's kind and
    /// whether that instance runs; None when the device does not answer.
    #[allow(clippy::type_complexity)] // what one look found, used once by the caller
    async fn look_at(
        &self,
        app: &crate::store::AppRow,
        shared: &[crate::store::SharedDbRow],
        instances: &mut std::collections::BTreeMap<(i64, Engine), bool>,
    ) -> Option<(
        Vec<bollard::models::ContainerSummary>,
        usize,
        Option<Engine>,
        bool,
    )> {
        let device = self.store.device(app.device_id).await.ok()??;
        // Only online devices: an offline device's apps keep their last known state.
        let remote = Remote::connect(&self.devices, device, None).await.ok()?;
        let containers = remote
            .project_containers(&project_name(&app.slug))
            .await
            .ok()?;
        let running = containers
            .iter()
            .filter(|c| c.state.as_ref().map(|s| s.to_string()).as_deref() == Some("running"))
            .count();
        let pooled = shared
            .iter()
            .find(|r| r.slug == app.slug && r.device_id == app.device_id)
            .and_then(|r| Engine::parse(&r.engine));
        let instance_up = match pooled {
            None => true,
            Some(engine) => match instances.get(&(app.device_id, engine)) {
                Some(up) => *up,
                None => {
                    let up = remote
                        .project_containers(engine.project())
                        .await
                        .map(|cs| {
                            cs.iter().any(|c| {
                                c.state.as_ref().map(|s| s.to_string()).as_deref()
                                    == Some("running")
                            })
                        })
                        .unwrap_or(true);
                    // Its memory now, for what sharing saves (one call per instance).
                    if let Ok(Some(bytes)) =
                        crate::docker::project::memory_in_use(&remote.docker, engine.project())
                            .await
                    {
                        self.note_pool_memory(app.device_id, engine, bytes);
                    }
                    instances.insert((app.device_id, engine), up);
                    up
                }
            },
        };
        Some((containers, running, pooled, instance_up))
    }
}
