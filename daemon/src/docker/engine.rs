//! What a device's Docker engine runs: its version and counts, and every container with its
//! state, read through the API in one round of two parallel calls (the health poll's part).

use bollard::Docker;
use bollard::query_parameters::ListContainersOptions;
use serde::{Deserialize, Serialize};

/// A container as the last poll saw it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub running: bool,
    /// Its health check fails.
    pub unhealthy: bool,
    /// Docker's own words, e.g. "Up 5 minutes (healthy)" or "Exited (0) 2 hours ago".
    pub status: String,
    /// The Compose project it belongs to ("" if none).
    pub project: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DockerFacts {
    pub version: String,
    pub api_version: String,
    pub running: u64,
    pub stopped: u64,
    pub unhealthy: u64,
}

/// What one poll reads from the device's Docker engine.
pub struct EngineRead {
    /// Where the engine keeps its data (its disk is the one measured).
    pub root_dir: String,
    pub facts: DockerFacts,
    /// Sorted by name, at most `max_containers`.
    pub containers: Vec<Container>,
}

/// The engine's version and container counts, and its containers (all of them counted for
/// `unhealthy`, at most `max_containers` kept: a bound on memory per device).
pub async fn read(d: &Docker, max_containers: usize) -> Result<EngineRead, String> {
    // Two independent calls, each on its own channel of the one connection: in parallel. The
    // engine's version is in `info`; the API version was negotiated when the client was made.
    // The whole container list (not only the unhealthy ones) costs the engine no more and
    // spares the device page its own call over SSH on every load.
    let (info, list) = tokio::try_join!(
        d.info(),
        d.list_containers(Some(ListContainersOptions {
            all: true,
            ..Default::default()
        }))
    )
    .map_err(|e| e.to_string())?;
    let mut containers: Vec<Container> = list
        .into_iter()
        .map(|c| {
            let status = c.status.unwrap_or_default();
            Container {
                name: c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                image: c.image.unwrap_or_default(),
                running: c
                    .state
                    .is_some_and(|s| s == bollard::models::ContainerSummaryStateEnum::RUNNING),
                unhealthy: status.contains("(unhealthy)"),
                status,
                project: c
                    .labels
                    .unwrap_or_default()
                    .remove("com.docker.compose.project")
                    .unwrap_or_default(),
            }
        })
        .collect();
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    let unhealthy = containers.iter().filter(|c| c.unhealthy).count() as u64;
    containers.truncate(max_containers);
    let running = info.containers_running.unwrap_or(0).max(0) as u64;
    let total = info.containers.unwrap_or(0).max(0) as u64;
    Ok(EngineRead {
        root_dir: info.docker_root_dir.unwrap_or_else(|| "/".into()),
        facts: DockerFacts {
            version: info.server_version.unwrap_or_default(),
            api_version: d.client_version().to_string(),
            running,
            stopped: total.saturating_sub(running),
            unhealthy,
        },
        containers,
    })
}
