//! Housekeeping in the background: unfinished rollbacks retried, and deployed apps compared
//! with their device (containers stopped or removed behind our back, and coming back).

use std::sync::Arc;
use std::time::Duration;

use super::{Deployer, Remote, RunState, project_name};
use crate::events::Event;

/// How often unfinished rollbacks are retried and deployed apps are compared with their device.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(15);

impl Deployer {
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
        for app in apps {
            if app.state == RunState::Starting {
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
                    RunState::Missing,
                    "Its containers were removed outside Homelab. Remove the app here, or deploy it again.".to_string(),
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
                self.events.publish(Event::AppState {
                    slug: app.slug.clone(),
                });
            }
        }
    }
}
