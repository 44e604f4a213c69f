//! The health check after Compose started the app: its containers must stay up and its web
//! entry must answer as the recipe says, within the configured time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{DeployError, Deployer, DeploymentState, Remote, last_lines, probe, render};
use crate::catalog::Recipe;

impl Deployer {
    pub(super) async fn health_check(
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
                DeploymentState::HealthCheck,
                pct,
                format!("Waiting for {} to answer…", m.name),
            )
            .await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
