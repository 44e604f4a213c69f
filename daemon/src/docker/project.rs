//! A Compose project and its images on a device's engine, through the Docker API: the
//! containers, networks and volumes labelled with the project and their removal, whether an
//! image is there, pulling one with its progress, and the running containers (for who holds a
//! port). Removals treat "already gone" as done, so they are safe to repeat.

use std::collections::HashMap;

pub use bollard::models::ContainerSummary;
use bollard::query_parameters::{
    CreateImageOptions, ListContainersOptions, ListNetworksOptions, ListVolumesOptions,
    RemoveContainerOptions, RemoveVolumeOptions,
};
use futures_util::StreamExt;

use super::{Docker, DockerError};

/// Compose's label naming the project a container, network or volume belongs to.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";

/// What a finished pull fetched.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pulled {
    /// Layers downloaded.
    pub fetched: usize,
    /// Layers already on the device.
    pub cached: usize,
    /// Bytes of the downloaded layers.
    pub bytes: u64,
}

/// Whether the image is on the device.
pub async fn image_present(docker: &Docker, image: &str) -> Result<bool, DockerError> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Pulls an image, publishing (bytes done, bytes total) over all layers as it goes. The
/// stream is read to its end here, so it never stalls the SSH connection it shares.
pub async fn pull(
    docker: &Docker,
    image: &str,
    progress: tokio::sync::watch::Sender<(u64, u64)>,
) -> Result<Pulled, DockerError> {
    let (from, tag) = split_tag(image);
    let mut stream = docker.create_image(
        Some(CreateImageOptions {
            from_image: Some(from.to_string()),
            tag: Some(tag.to_string()),
            ..Default::default()
        }),
        None,
        None,
    );
    // Per-layer figures: Docker reports each layer's own current/total.
    let mut layers: HashMap<String, (u64, u64)> = HashMap::new();
    while let Some(item) = stream.next().await {
        let info = item?;
        if let Some(e) = info.error_detail.and_then(|d| d.message) {
            return Err(DockerError::Refused(e));
        }
        // Layer lines carry an id; a layer already on the device never reports sizes.
        if let (Some(id), Some(p)) = (info.id, info.progress_detail) {
            let cur = p.current.unwrap_or(0).max(0) as u64;
            let tot = p.total.unwrap_or(0).max(0) as u64;
            let e = layers.entry(id).or_default();
            *e = (cur.max(e.0), tot.max(e.1));
            let done: u64 = layers.values().map(|l| l.0).sum();
            let total: u64 = layers.values().map(|l| l.1).sum();
            let _ = progress.send((done, total));
        }
    }
    let fetched = layers.values().filter(|l| l.1 > 0).count();
    Ok(Pulled {
        fetched,
        cached: layers.len() - fetched,
        bytes: layers.values().map(|l| l.1).sum(),
    })
}

/// Every container of a Compose project, running or not.
pub async fn project_containers(
    docker: &Docker,
    project: &str,
) -> Result<Vec<ContainerSummary>, DockerError> {
    Ok(docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(label_filter(project)),
            ..Default::default()
        }))
        .await?)
}

/// Names of a project's networks.
pub async fn project_networks(docker: &Docker, project: &str) -> Result<Vec<String>, DockerError> {
    let list = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(label_filter(project)),
        }))
        .await?;
    Ok(list.into_iter().filter_map(|n| n.name).collect())
}

/// Names of a project's volumes.
pub async fn project_volumes(docker: &Docker, project: &str) -> Result<Vec<String>, DockerError> {
    let list = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(label_filter(project)),
        }))
        .await?;
    Ok(list
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .collect())
}

/// Removes a container even when it runs, with its anonymous volumes.
pub async fn remove_container(docker: &Docker, id: &str) -> Result<(), DockerError> {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    Ok(docker
        .remove_container(id, Some(options))
        .await
        .or_else(not_found_ok)?)
}

/// Names of the containers attached to a network (none when it does not exist).
pub async fn network_members(docker: &Docker, name: &str) -> Result<Vec<String>, DockerError> {
    let found = docker
        .inspect_network(
            name,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await;
    match found {
        Ok(n) => Ok(n
            .containers
            .unwrap_or_default()
            .into_values()
            .filter_map(|c| c.name)
            .collect()),
        Err(e) => not_found_ok(e).map(|()| Vec::new()).map_err(Into::into),
    }
}

pub async fn remove_network(docker: &Docker, name: &str) -> Result<(), DockerError> {
    Ok(docker.remove_network(name).await.or_else(not_found_ok)?)
}

/// Removes a volume and the data in it.
pub async fn remove_volume(docker: &Docker, name: &str) -> Result<(), DockerError> {
    Ok(docker
        .remove_volume(name, Some(RemoveVolumeOptions { force: true }))
        .await
        .or_else(not_found_ok)?)
}

/// The memory a container uses now, as `docker stats` shows it: its cgroup's usage less the
/// page cache it could drop (`inactive_file` on cgroup v2, `total_inactive_file` on v1).
/// None when it is not running.
pub async fn memory_in_use(docker: &Docker, container: &str) -> Result<Option<u64>, DockerError> {
    let mut stream = docker.stats(
        container,
        Some(bollard::query_parameters::StatsOptions {
            stream: false,
            one_shot: true,
        }),
    );
    let Some(first) = stream.next().await else {
        return Ok(None);
    };
    let stats = match first {
        Ok(s) => s,
        Err(e) => return not_found_ok(e).map(|()| None).map_err(Into::into),
    };
    let Some(mem) = stats.memory_stats else {
        return Ok(None);
    };
    let Some(usage) = mem.usage.filter(|u| *u > 0) else {
        return Ok(None);
    };
    let cache = mem
        .stats
        .as_ref()
        .and_then(|s| {
            s.get("inactive_file")
                .or_else(|| s.get("total_inactive_file"))
        })
        .copied()
        .unwrap_or(0);
    Ok(Some(usage.saturating_sub(cache)))
}

/// The running containers, of any project or none.
pub async fn running_containers(docker: &Docker) -> Result<Vec<ContainerSummary>, DockerError> {
    Ok(docker
        .list_containers(Some(ListContainersOptions::default()))
        .await?)
}

fn label_filter(project: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![format!("{PROJECT_LABEL}={project}")],
    )])
}

/// Something already gone counts as removed.
fn not_found_ok(e: bollard::errors::Error) -> Result<(), bollard::errors::Error> {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        } => Ok(()),
        e => Err(e),
    }
}

/// `repo:tag` → (`repo`, `tag`); a registry port (`host:5000/x`) is not a tag.
fn split_tag(image: &str) -> (&str, &str) {
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (image, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::split_tag;

    #[test]
    fn tags_and_registry_ports() {
        assert_eq!(split_tag("nginx:1.27"), ("nginx", "1.27"));
        assert_eq!(split_tag("nginx"), ("nginx", "latest"));
        assert_eq!(split_tag("host:5000/app"), ("host:5000/app", "latest"));
        assert_eq!(split_tag("host:5000/app:2"), ("host:5000/app", "2"));
    }
}
