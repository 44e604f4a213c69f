//! Docker on a device, through bollard over the device's SSH connection: every API call opens
//! a stream-local channel to the device's Docker socket and speaks HTTP/1.1 on it.
//! Nothing is forwarded to a local socket and no `docker` binary runs on this box.
//! `engine.rs` reads what an engine runs (the health poll); `project.rs` holds the calls made
//! on a Compose project and its images (deploys, removals); `exec.rs` runs a command in a
//! container with data on its stdin (the shared databases); `run.rs` runs one-off containers
//! fed secrets on stdin and followed line by line (the backups' restic).

pub mod engine;
pub mod exec;
pub mod project;
pub mod run;

use std::sync::Arc;

pub use bollard::Docker;
use bollard::{API_DEFAULT_VERSION, BollardRequest};
use hyper_util::rt::TokioIo;

use crate::ssh::Session;

/// Seconds bollard waits for one API call.
const API_TIMEOUT_SECS: u64 = 60;

/// Errors from a device's Docker engine.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("Docker on the device did not answer: {0}")]
    Api(#[from] bollard::errors::Error),
    /// The engine answered but would not do it (its own words), e.g. an image it cannot pull.
    #[error("Docker on the device refused: {0}")]
    Refused(String),
}

impl DockerError {
    /// True when the engine itself answered (and refused); false when it could not be
    /// reached at all (the connection to the device is the trouble).
    pub fn engine_answered(&self) -> bool {
        matches!(
            self,
            DockerError::Refused(_)
                | DockerError::Api(bollard::errors::Error::DockerResponseServerError { .. })
        )
    }

    /// The engine's or the connection's own words, for a message that names the device itself.
    pub fn detail(&self) -> String {
        match self {
            DockerError::Api(e) => e.to_string(),
            DockerError::Refused(words) => words.clone(),
        }
    }
}

/// A Docker client for the engine behind `socket` on the device of `session`, with the API
/// version negotiated (Debian's engine speaks 1.41; bollard's default is newer and refused).
pub async fn connect(session: Arc<Session>, socket: &str) -> Result<Docker, DockerError> {
    let socket = socket.to_string();
    let transport = move |req: BollardRequest| {
        let session = session.clone();
        let socket = socket.clone();
        Box::pin(async move { send(&session, &socket, req).await })
            as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>
    };
    let docker = Docker::connect_with_custom_transport(
        transport,
        Some("http://docker"),
        API_TIMEOUT_SECS,
        API_DEFAULT_VERSION,
    )?;
    Ok(docker.negotiate_version().await?)
}

async fn send(
    session: &Session,
    socket: &str,
    req: BollardRequest,
) -> Result<hyper::Response<hyper::body::Incoming>, bollard::errors::Error> {
    let stream = session
        .open_socket(socket)
        .await
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::NotConnected, e.to_string()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection task owns the channel and drains it until the response body is consumed,
    // so a long stream (logs, events, pull progress) never blocks the SSH connection.
    // With upgrades: an attached exec turns the connection into a raw stream (its stdin and
    // output), which hyper hands over only when the connection allows it.
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "docker API connection ended with an error");
        }
    });
    let (mut parts, body) = req.into_parts();
    // HTTP/1.1 wants origin-form targets and a Host header; the socket needs no real host.
    if let Some(pq) = parts.uri.path_and_query().cloned() {
        parts.uri = hyper::Uri::from(pq);
    }
    parts.headers.insert(
        hyper::header::HOST,
        hyper::header::HeaderValue::from_static("docker"),
    );
    Ok(sender
        .send_request(BollardRequest::from_parts(parts, body))
        .await?)
}
