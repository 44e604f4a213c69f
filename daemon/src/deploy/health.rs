//! The health check after Compose started the app: its containers must stay up and its web
//! entry must answer as the recipe says, within the configured time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{DeployError, Deployer, DeploymentState, Remote, last_lines, probe, render};
use crate::catalog::Recipe;

/// Why an app that Compose started did not pass its health check.
#[derive(Debug, thiserror::Error)]
pub enum HealthFailure {
    #[error("{app}'s containers disappeared while it was starting.")]
    Vanished { app: String },
    #[error(
        "{app} stopped right after starting. Try again; if it stops again, switch to Advanced \
         mode and open “What I did” for its last words."
    )]
    Stopped {
        app: String,
        service: String,
        /// Docker's words for the container's state ("Exited (1) 2 seconds ago").
        status: String,
        logs: String,
    },
    #[error(
        "{app} started but did not answer within {}. Try again; if it happens again, switch to \
         Advanced mode and open “What I did” for its output.",
        crate::units::human_duration(*secs)
    )]
    NoAnswer {
        app: String,
        secs: u64,
        last: String,
    },
}

impl HealthFailure {
    /// The technical side: which service, Docker's words for its state, its last log lines,
    /// the last answer of the health check.
    pub fn detail(&self) -> Option<String> {
        match self {
            HealthFailure::Vanished { .. } => None,
            HealthFailure::Stopped {
                service,
                status,
                logs,
                ..
            } => Some(format!(
                "service “{service}” ({status}); last words: {logs}"
            )),
            HealthFailure::NoAnswer { secs, last, .. } => Some(format!(
                "no healthy answer within {secs} s; last try: {last}"
            )),
        }
    }
}

/// After this long the page says what the app is busy with, and for how long it has been.
const SAY_WHY_AFTER: Duration = Duration::from_secs(20);

/// The progress message while the check waits: short at first; once it runs long, what the app
/// does meanwhile (the recipe's words) and how long it has been waiting.
fn waiting_words(recipe: &Recipe, waited: Duration) -> String {
    let m = &recipe.manifest;
    if waited < SAY_WHY_AFTER {
        return format!("Waiting for {} to answer…", m.name);
    }
    let so_far = crate::units::human_duration(waited.as_secs() - waited.as_secs() % 10);
    if m.health.waiting.trim().is_empty() {
        format!("Still waiting for {} to answer ({so_far} so far)…", m.name)
    } else {
        format!(
            "Still waiting for {} to answer ({so_far} so far). {}",
            m.name,
            m.health.waiting.trim()
        )
    }
}

impl Deployer {
    /// How long the health check waits for this app: the daemon's limit, or the recipe's own
    /// when it is longer (apps that set themselves up on their first start). An owner who
    /// raised the daemon's limit for a slow board keeps it for every app.
    pub fn health_timeout(&self, recipe: &Recipe) -> Duration {
        let own = recipe.manifest.health.timeout.map(Duration::from_secs);
        own.unwrap_or_default().max(self.config.health_timeout)
    }

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
        let timeout = self.health_timeout(recipe);
        let mut last = String::from("no answer yet");
        // Services not started with these values are not part of the app.
        let inactive = render::inactive_services(recipe, values);
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
                return Err(HealthFailure::Vanished {
                    app: m.name.clone(),
                }
                .into());
            }
            let service_of = |c: &crate::docker::project::ContainerSummary| {
                c.labels
                    .as_ref()
                    .and_then(|l| l.get("com.docker.compose.service"))
                    .cloned()
                    .unwrap_or_default()
            };
            if let Some(bad) = containers.iter().find(|c| {
                matches!(
                    c.state.as_ref().map(|s| s.to_string()).as_deref(),
                    Some("exited" | "dead" | "restarting")
                ) && !inactive.contains(&service_of(c))
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
                return Err(HealthFailure::Stopped {
                    app: m.name.clone(),
                    service: svc,
                    status: bad.status.clone().unwrap_or_default(),
                    logs,
                }
                .into());
            }
            let ok = match (port, answer) {
                (Some(p), Some(r)) => {
                    let good = matches!(&r, Ok(a) if m.health.status.contains(&a.status)
                        && m.health.body.as_ref().is_none_or(|b| a.body.contains(b.as_str())));
                    last = match &r {
                        // The app's own words, one line of plain characters.
                        Ok(a) if m.health.body.is_some() => format!(
                            "answered {}: {}",
                            a.status,
                            crate::limits::truncate(
                                &a.body
                                    .trim()
                                    .chars()
                                    .map(|c| if c.is_control() { ' ' } else { c })
                                    .collect::<String>(),
                                80
                            )
                        ),
                        Ok(a) => format!("answered {}", a.status),
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
                return Err(HealthFailure::NoAnswer {
                    app: m.name.clone(),
                    secs: timeout.as_secs(),
                    last,
                }
                .into());
            }
            let pct = 85 + (14 * waited.as_millis() / timeout.as_millis().max(1)) as i64;
            self.progress(
                id,
                &m.slug,
                DeploymentState::HealthCheck,
                pct,
                waiting_words(recipe, waited),
            )
            .await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
