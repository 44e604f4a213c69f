//! The pre-flight: fresh checks on the device before anything there changes (resources,
//! architecture, ports and who holds them, Compose, leftovers of the project, the app folder).

use std::collections::BTreeMap;

use super::{DeployError, Deployer, Remote, Trouble};
use crate::catalog::Recipe;
use crate::placement::{self, Candidate, Need};

impl Deployer {
    /// Checks the device; a port setting in `flexible` (one the owner did not choose) whose
    /// port is taken there is moved to the next free port in `settings`, and noted.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn preflight(
        &self,
        remote: &Remote,
        recipe: &Recipe,
        settings: &mut BTreeMap<String, String>,
        flexible: &[String],
        project: &str,
        dir: &str,
        named: bool,
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
        let facts = poll.facts.ok_or_else(|| DeployError::Device {
            device: name.clone(),
            trouble: if poll.state == crate::devices::facts::State::Blocked {
                Trouble::Blocked
            } else {
                Trouble::NoAnswer
            },
            detail: poll.reason.clone(),
        })?;
        let candidate = Candidate {
            id: remote.device.id,
            name: name.clone(),
            online: true,
            docker_ok: facts.docker.is_some(),
            arch: facts.arch.clone(),
            mem_available: facts.mem_available,
            disk_free: facts.disk_free,
            cores: facts.cores,
            load: facts.load,
            uptime: 1.0,
            used_ports: vec![],
            apps: vec![],
            gpu: !facts.gpu.is_empty(),
        };
        let need = Need::from_recipe(recipe, vec![]);
        if let Some(why) = placement::rank(&need, std::slice::from_ref(&candidate))
            .into_iter()
            .find_map(|v| v.disqualified().cloned())
        {
            return Err(DeployError::CannotRun {
                device: name.clone(),
                app: m.name.clone(),
                why,
            });
        }
        // Ports: anything listening on the device, named when it is a container.
        let owners = owners?;
        // A port the app publishes on the device's own address does not clash with a program
        // listening on loopback only (systemd-resolved's 127.0.0.53:53 and AdGuard Home's DNS).
        let bound = recipe.address_bound_ports(settings);
        let mut taken: Vec<u16> = facts
            .ports
            .iter()
            .copied()
            .filter(|p| !(bound.contains(p) && facts.local_ports.contains(p)))
            .collect();
        taken.extend(owners.keys());
        // Ports the owner left to Homelab move out of the way by themselves: the next free
        // port above the recipe's default. Ports the owner chose stay and are reported.
        for s in m.settings.iter().filter(|s| s.kind == "port") {
            let Some(p) = settings.get(&s.name).and_then(|v| v.parse::<u16>().ok()) else {
                continue;
            };
            if !flexible.contains(&s.name) || !taken.contains(&p) {
                continue;
            }
            let others = recipe.host_ports(settings);
            let Some(free) = (p.saturating_add(1)..=u16::MAX)
                .find(|q| !taken.contains(q) && !others.contains(q))
            else {
                continue;
            };
            remote
                .note(
                    format!("Port {p} is in use on {name}; “{}” set to {free}", s.label),
                    "ok".into(),
                    std::time::Instant::now(),
                    String::new(),
                )
                .await;
            settings.insert(s.name.clone(), free.to_string());
        }
        // A named app needs the device's ports 80 and 443 for Homelab's proxy: held by the
        // proxy already is fine; held by anything else (the owner's own proxy or web server),
        // Homelab never stops it and says how to go on instead.
        if named {
            for port in [443u16, 80] {
                let holder = owners.get(&port).cloned();
                let ours = holder.as_deref() == Some(crate::proxy::HOLDER);
                if taken.contains(&port) && !ours {
                    return Err(DeployError::ProxyPortTaken {
                        port,
                        device: name.clone(),
                        holder: holder.unwrap_or_else(|| "Another program".into()),
                        app: m.name.clone(),
                    });
                }
            }
        }
        let ports = recipe.host_ports(settings);
        if let Some(p) = ports.iter().find(|p| taken.contains(p)) {
            let free = (p.saturating_add(1)..=u16::MAX)
                .find(|q| !taken.contains(q) && !ports.contains(q))
                .unwrap_or(0);
            let setting = m
                .settings
                .iter()
                .find(|s| s.kind == "port" && settings.get(&s.name) == Some(&p.to_string()))
                .map(|s| s.label.clone());
            return Err(DeployError::PortTaken {
                port: *p,
                device: name.clone(),
                holder: owners.get(p).cloned(),
                free,
                setting,
            });
        }
        let (flavour, folder_free) = shell?;
        if flavour != "v1" && flavour != "v2" {
            return Err(DeployError::ComposeMissing(name.clone()));
        }
        // Name clash: containers of this project that we have no record of. (Volumes alone
        // are data kept by "remove, keep data" and are used again.)
        if !leftovers?.is_empty() {
            return Err(DeployError::ProjectClash {
                device: name.clone(),
                project: project.to_string(),
            });
        }
        let kept_data = !volumes?.is_empty();
        if !folder_free {
            return Err(DeployError::FolderTaken {
                dir: dir.to_string(),
                device: name.clone(),
            });
        }
        Ok(kept_data)
    }
}
