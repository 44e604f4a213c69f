//! Planning: every device as a placement candidate, the ranked verdicts for an app, and the
//! choice of the device a deploy goes to.

use std::collections::BTreeMap;

use super::{DeployError, Deployer, render};
use crate::catalog::Recipe;
use crate::devices::facts::Facts;
use crate::placement::{self, Candidate, Need, Verdict};
use crate::store::{DeviceRow, now_unix};

impl Deployer {
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
                load: f.load,
                uptime: uptimes.get(&d.id).copied().unwrap_or(0.0),
                used_ports: f.ports,
                gpu: !f.gpu.is_empty(),
                apps: apps
                    .iter()
                    .filter(|a| a.device_id == d.id)
                    .map(|a| a.slug.clone())
                    .collect(),
            });
        }
        Ok(out)
    }

    /// The placement of an app with the settings the owner gave: every device with its
    /// verdict, best first. The web page's port, when left to Homelab, rules no device out: it
    /// moves to a free port on whichever device is chosen (see `render::movable_port`).
    pub async fn plan(
        &self,
        slug: &str,
        given: &BTreeMap<String, String>,
    ) -> Result<Vec<Verdict>, DeployError> {
        let recipe = self.recipe(slug)?;
        let values = render::settings(recipe, given).map_err(DeployError::BadSettings)?;
        let movable: Option<u16> =
            render::movable_port(recipe, given).and_then(|name| values.get(&name)?.parse().ok());
        let mut fixed = recipe.host_ports(&values);
        fixed.retain(|p| Some(*p) != movable);
        let need = Need::from_recipe(recipe, fixed);
        Ok(placement::rank(&need, &self.candidates().await?))
    }

    /// The device an app goes to: the one the user picked if it can take the app, else the
    /// best ranked; with every device's verdict (kept with the deployment).
    pub(super) async fn choose(
        &self,
        recipe: &Recipe,
        given: &BTreeMap<String, String>,
        device_id: Option<i64>,
    ) -> Result<(Vec<Verdict>, DeviceRow), DeployError> {
        let slug = recipe.manifest.slug.as_str();
        let mut verdicts = self.plan(slug, given).await?;
        // A device the user picked is judged on its ports by the pre-flight's fresh look
        // (which also names what holds a port and suggests a free one), not by the last poll:
        // that may predate a port being freed or taken.
        if let Some(id) = device_id {
            let need = Need::from_recipe(recipe, vec![]);
            let fresh = placement::rank(&need, &self.candidates().await?);
            if let (Some(v), Some(f)) = (
                verdicts.iter_mut().find(|v| v.device_id == id),
                fresh.into_iter().find(|v| v.device_id == id),
            ) && !v.eligible()
                && f.eligible()
            {
                *v = f;
            }
        }
        let chosen = match device_id {
            Some(id) => {
                let v = verdicts
                    .iter()
                    .find(|v| v.device_id == id)
                    .ok_or(DeployError::UnknownDevice)?;
                if let Some(why) = v.disqualified() {
                    return Err(DeployError::CannotRun {
                        device: v.name.clone(),
                        app: recipe.manifest.name.clone(),
                        why: why.clone(),
                    });
                }
                v.clone()
            }
            None => match verdicts.first().filter(|v| v.eligible()) {
                Some(v) => v.clone(),
                None if verdicts.is_empty() => return Err(DeployError::NoDevices),
                // Eligible devices rank first, so here every device is disqualified.
                None => {
                    return Err(DeployError::NoDeviceFits {
                        app: recipe.manifest.name.clone(),
                        why: verdicts
                            .iter()
                            .filter_map(|v| Some((v.name.clone(), v.disqualified()?.clone())))
                            .collect(),
                    });
                }
            },
        };
        let device = self
            .store
            .device(chosen.device_id)
            .await?
            .ok_or(DeployError::DeviceRemoved)?;
        Ok((verdicts, device))
    }
}

/// Every device's verdict as stored with a deployment (shown on its page).
pub(super) fn placement_record(verdicts: &[Verdict]) -> String {
    serde_json::to_string(
        &verdicts
            .iter()
            .map(|v| {
                serde_json::json!({
                    "device_id": v.device_id, "device": v.name, "score": v.score().round(),
                    "eligible": v.eligible(), "reason": v.reason(), "detail": v.detail(),
                })
            })
            .collect::<Vec<_>>(),
    )
    .unwrap_or_else(|_| "[]".into())
}
