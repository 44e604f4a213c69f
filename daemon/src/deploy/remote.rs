//! Everything a deploy does on a device, each call logged for "What I did": fixed shell
//! scripts with user data as positional parameters (files arrive on stdin), Compose through a
//! script that picks v2 or v1, and Docker API calls (images, the containers/networks/volumes of
//! our Compose project, through `docker::project`) over the device's SSH connection.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{DeployError, Trouble};
use crate::devices::Devices;
pub use crate::docker::project::PROJECT_LABEL;
use crate::docker::project::{self as engine, ContainerSummary};
use crate::docker::{Docker, DockerError};
use crate::ssh::{Output, RemoteCommand, Session};
use crate::store::{DeviceRow, Store};

/// Time for a Compose command (starting containers can take a while on a small device).
const COMPOSE_TIMEOUT: Duration = Duration::from_secs(300);
/// Time to reach a device and its Docker engine before an operation gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Time for a small file or folder command.
const SMALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Time for one Docker API call made while watching (a dead link must not hang a deploy).
pub const WATCH_TIMEOUT: Duration = Duration::from_secs(8);
/// Output kept per action for "What I did".
const KEEP_OUTPUT: usize = 8 * 1024;

// The scripts run on the device by `sh -c`, user data only ever as their positional
// parameters; each file says what it does and what its parameters are.

/// Runs Compose in the app's folder (v2 or v1, whichever the device has).
const COMPOSE: &str = include_str!("compose.sh");
/// Which Compose is installed and whether the app folder is free, in one round trip.
const PREFLIGHT: &str = include_str!("preflight.sh");
/// Creates the app folder if needed and writes compose.yaml and app.env (from stdin).
const WRITE_APP: &str = include_str!("write_app.sh");
/// Removes an app folder (never one less than two levels deep).
const REMOVE_DIR: &str = include_str!("remove_dir.sh");
/// Copies a file within a folder if it exists.
const COPY_FILE: &str = include_str!("copy_file.sh");
/// Creates the proxy's private folder and writes its Compose file and starting configuration.
const WRITE_PROXY: &str = include_str!("write_proxy.sh");
/// Writes a private authority's roots in the proxy's config folder.
const WRITE_ROOTS: &str = include_str!("write_roots.sh");

/// A device, connected, with every action logged to one deployment.
pub struct Remote {
    pub device: DeviceRow,
    /// The Compose the pre-flight found, so each Compose call skips looking again.
    pub flavour: std::sync::OnceLock<String>,
    session: Arc<Session>,
    pub docker: Docker,
    store: Store,
    log_to: Option<i64>,
}

fn tail(s: &str) -> String {
    if s.len() <= KEEP_OUTPUT {
        return s.to_string();
    }
    let mut start = s.len() - KEEP_OUTPUT;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &s[start..])
}

impl Remote {
    pub async fn connect(
        devices: &Devices,
        device: DeviceRow,
        log_to: Option<i64>,
    ) -> Result<Remote, DeployError> {
        let connecting = async {
            let session = devices
                .pool
                .session(&device)
                .await
                .map_err(|e| DeployError::Device {
                    device: device.name.clone(),
                    trouble: Trouble::of_device(&e),
                    detail: e.to_string(),
                })?;
            let docker = crate::docker::connect(session.clone(), &device.docker_socket)
                .await
                .map_err(|e| DeployError::Device {
                    device: device.name.clone(),
                    trouble: Trouble::of_docker(&e),
                    detail: e.detail(),
                })?;
            Ok::<_, DeployError>((session, docker))
        };
        // A pooled connection to a device that was just unplugged looks alive until its
        // keepalive gives up (~45 s); do not make the user wait that long.
        let (session, docker) = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(r) => r?,
            Err(_) => {
                devices.pool.forget(device.id).await;
                return Err(DeployError::Device {
                    device: device.name.clone(),
                    trouble: Trouble::NoAnswer,
                    detail: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                });
            }
        };
        Ok(Remote {
            device,
            flavour: std::sync::OnceLock::new(),
            session,
            docker,
            store: devices.store.clone(),
            log_to,
        })
    }

    /// Records an action in "What I did" (when this remote logs to a deployment).
    pub async fn note(&self, what: String, outcome: String, started: Instant, output: String) {
        if let Some(id) = self.log_to {
            let ms = started.elapsed().as_millis() as i64;
            if let Err(e) = self
                .store
                .add_action(id, what, outcome, ms, tail(&output))
                .await
            {
                tracing::warn!(error = %e, "could not record a deploy action");
            }
        }
    }

    pub(super) fn lost(&self, trouble: Trouble, detail: impl std::fmt::Display) -> DeployError {
        DeployError::Device {
            device: self.device.name.clone(),
            trouble,
            detail: detail.to_string(),
        }
    }

    /// Runs a command; `stdin` is never logged (only its size).
    pub async fn run(
        &self,
        label: &str,
        cmd: RemoteCommand,
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, DeployError> {
        let started = Instant::now();
        let what = match stdin {
            Some(b) => format!("{label}: {cmd}  (+{} bytes on stdin)", b.len()),
            None => format!("{label}: {cmd}"),
        };
        match self.session.exec(&cmd, stdin, timeout).await {
            Ok(out) => {
                let outcome = match out.status {
                    Some(s) => format!("exit {s}"),
                    None => "no exit status".into(),
                };
                let text = format!("{}{}", out.stdout_text(), out.stderr_text());
                self.note(what, outcome, started, text).await;
                Ok(out)
            }
            Err(e) => {
                self.note(what, format!("failed: {e}"), started, String::new())
                    .await;
                Err(self.lost(Trouble::of_ssh(&e), e))
            }
        }
    }

    /// (Compose flavour `v2` | `v1` | `none`, whether `dir` is free), in one round trip.
    pub async fn preflight(&self, dir: &str) -> Result<(String, bool), DeployError> {
        let out = self
            .run(
                "Which Compose is installed, is the app folder free",
                RemoteCommand::script(PREFLIGHT, [self.device.docker_socket.as_str(), dir]),
                None,
                SMALL_TIMEOUT,
            )
            .await?;
        let text = out.stdout_text();
        let value = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k))
                .unwrap_or("")
                .to_string()
        };
        let flavour = value("compose=");
        let _ = self.flavour.set(flavour.clone());
        Ok((flavour, value("folder=") == "free"))
    }

    /// Runs Compose for the project in `dir`.
    pub async fn compose(
        &self,
        label: &str,
        dir: &str,
        project: &str,
        args: &[&str],
    ) -> Result<Output, DeployError> {
        let flavour = self.flavour.get().map(String::as_str).unwrap_or("");
        let mut params = vec![dir, project, self.device.docker_socket.as_str(), flavour];
        params.extend_from_slice(args);
        self.run(
            label,
            RemoteCommand::script(COMPOSE, params),
            None,
            COMPOSE_TIMEOUT,
        )
        .await
    }

    /// `compose up -d` for the project; a failure says what did not start, with Compose's words.
    pub async fn compose_up(
        &self,
        label: &str,
        dir: &str,
        project: &str,
        what: &str,
    ) -> Result<(), DeployError> {
        let out = self
            .compose(
                label,
                dir,
                project,
                &["up", "-d", "--no-build", "--remove-orphans"],
            )
            .await?;
        if out.success() {
            return Ok(());
        }
        let words = super::last_lines(&out.stderr_text(), 6);
        Err(DeployError::StartFailed {
            what: what.to_string(),
            device: self.device.name.clone(),
            detail: match out.status {
                Some(code) if words.is_empty() => format!("Compose ended with exit code {code}"),
                _ => words,
            },
        })
    }

    /// Writes the app's Compose file, its proxy override (empty: none) and env file into `dir`
    /// (created if needed), atomically.
    pub async fn write_app(
        &self,
        dir: &str,
        compose: &str,
        proxy_override: &str,
        pool_override: &str,
        env: &str,
    ) -> Result<(), DeployError> {
        let mut stdin = Vec::with_capacity(
            compose.len() + proxy_override.len() + pool_override.len() + env.len(),
        );
        for part in [compose, proxy_override, pool_override, env] {
            stdin.extend_from_slice(part.as_bytes());
        }
        let len = compose.len().to_string();
        let over = proxy_override.len().to_string();
        let pool = pool_override.len().to_string();
        let mut files = vec!["compose.yaml"];
        if !proxy_override.is_empty() {
            files.push("compose.proxy.yaml");
        }
        if !pool_override.is_empty() {
            files.push("compose.pool.yaml");
        }
        files.push("app.env");
        let label = format!("Write {}", files.join(", "));
        let out = self
            .run(
                &label,
                RemoteCommand::script(WRITE_APP, [dir, len.as_str(), over.as_str(), pool.as_str()]),
                Some(&stdin),
                SMALL_TIMEOUT,
            )
            .await?;
        self.files_written(dir, &out)
    }

    /// What a file-writing script (write_app.sh, write_proxy.sh) said: written, or why not.
    pub(super) fn files_written(&self, dir: &str, out: &Output) -> Result<(), DeployError> {
        match out.stdout_text().trim() {
            "created" | "existed" if out.success() => Ok(()),
            "cannot-create" => Err(DeployError::FolderNotCreatable {
                dir: dir.to_string(),
                device: self.device.name.clone(),
                login: self.device.username.clone(),
            }),
            _ => Err(DeployError::FilesNotWritten {
                dir: dir.to_string(),
                device: self.device.name.clone(),
                detail: out.stderr_text(),
            }),
        }
    }

    /// Copies a file within a folder if it exists.
    pub async fn copy_file(&self, dir: &str, from: &str, to: &str) -> Result<(), DeployError> {
        let out = self
            .run(
                &format!("Keep {from} as {to}"),
                RemoteCommand::script(COPY_FILE, [dir, from, to]),
                None,
                SMALL_TIMEOUT,
            )
            .await?;
        out.success()
            .then_some(())
            .ok_or_else(|| DeployError::CopyFailed {
                file: from.to_string(),
                detail: out.stderr_text(),
            })
    }

    pub async fn remove_dir(&self, dir: &str) -> Result<(), DeployError> {
        let out = self
            .run(
                "Remove the app folder",
                RemoteCommand::script(REMOVE_DIR, [dir]),
                None,
                SMALL_TIMEOUT,
            )
            .await?;
        out.success()
            .then_some(())
            .ok_or_else(|| DeployError::RemoveFailed {
                dir: dir.to_string(),
                device: self.device.name.clone(),
                detail: out.stderr_text(),
            })
    }

    /// A Docker API failure: the device's trouble in words, Docker's own as the detail.
    pub(super) fn docker_lost(&self, e: DockerError) -> DeployError {
        self.lost(Trouble::of_docker(&e), e.detail())
    }

    /// Whether the image is already on the device.
    pub async fn image_present(&self, image: &str) -> Result<bool, DeployError> {
        engine::image_present(&self.docker, image)
            .await
            .map_err(|e| self.docker_lost(e))
    }

    /// Pulls an image, publishing (bytes done, bytes total) over all layers as it goes.
    pub async fn pull(
        &self,
        image: &str,
        progress: tokio::sync::watch::Sender<(u64, u64)>,
    ) -> Result<(), DeployError> {
        let started = Instant::now();
        let what = format!("Docker API: pull image {image}");
        match engine::pull(&self.docker, image, progress).await {
            Ok(pulled) => {
                let summary = format!(
                    "{} layer(s) downloaded ({}), {} already on the device",
                    pulled.fetched,
                    crate::units::human_bytes(pulled.bytes),
                    pulled.cached
                );
                self.note(what, "ok".into(), started, summary).await;
                Ok(())
            }
            Err(e) => {
                let detail = e.detail();
                self.note(what, format!("failed: {detail}"), started, String::new())
                    .await;
                Err(DeployError::PullFailed {
                    image: image.to_string(),
                    device: self.device.name.clone(),
                    detail,
                })
            }
        }
    }

    /// Removes a volume (nothing if it is not there).
    pub async fn remove_volume(&self, name: &str) -> Result<(), DeployError> {
        let started = Instant::now();
        let out = engine::remove_volume(&self.docker, name).await;
        self.note(
            format!("Remove the volume {name}"),
            if out.is_ok() {
                "done".into()
            } else {
                "failed".into()
            },
            started,
            String::new(),
        )
        .await;
        out.map_err(|e| self.docker_lost(e))
    }

    /// Every container of a Compose project, running or not.
    pub async fn project_containers(
        &self,
        project: &str,
    ) -> Result<Vec<ContainerSummary>, DeployError> {
        tokio::time::timeout(
            WATCH_TIMEOUT,
            engine::project_containers(&self.docker, project),
        )
        .await
        .map_err(|_| self.lost(Trouble::NoAnswer, "no answer within the watch time"))?
        .map_err(|e| self.docker_lost(e))
    }

    /// Removes a project's containers and networks (and its volumes when `volumes`) through
    /// the Docker API, so it works even when the Compose files are gone.
    pub async fn remove_project(&self, project: &str, volumes: bool) -> Result<(), DeployError> {
        let started = Instant::now();
        let mut removed = Vec::new();
        for c in self.project_containers(project).await? {
            let Some(id) = c.id else { continue };
            engine::remove_container(&self.docker, &id)
                .await
                .map_err(|e| self.docker_lost(e))?;
            removed.push(format!(
                "container {}",
                c.names
                    .and_then(|n| n.first().cloned())
                    .unwrap_or(id)
                    .trim_start_matches('/')
            ));
        }
        let networks = engine::project_networks(&self.docker, project)
            .await
            .map_err(|e| self.docker_lost(e))?;
        for name in networks {
            engine::remove_network(&self.docker, &name)
                .await
                .map_err(|e| self.docker_lost(e))?;
            removed.push(format!("network {name}"));
        }
        if volumes {
            for v in self.project_volumes(project).await? {
                engine::remove_volume(&self.docker, &v)
                    .await
                    .map_err(|e| self.docker_lost(e))?;
                removed.push(format!("volume {v}"));
            }
        }
        self.note(
            format!(
                "Docker API: remove project {project}{}",
                if volumes { " with its volumes" } else { "" }
            ),
            "ok".into(),
            started,
            removed.join("\n"),
        )
        .await;
        Ok(())
    }

    /// Names of the containers on a network (the proxy's: who still uses it).
    pub async fn network_members(&self, network: &str) -> Result<Vec<String>, DeployError> {
        engine::network_members(&self.docker, network)
            .await
            .map_err(|e| self.docker_lost(e))
    }

    /// Names of a project's volumes.
    pub async fn project_volumes(&self, project: &str) -> Result<Vec<String>, DeployError> {
        engine::project_volumes(&self.docker, project)
            .await
            .map_err(|e| self.docker_lost(e))
    }

    /// Who holds each published port on the device: our apps by project, others by container.
    pub async fn port_owners(&self) -> Result<BTreeMap<u16, String>, DeployError> {
        let list = engine::running_containers(&self.docker)
            .await
            .map_err(|e| self.docker_lost(e))?;
        let mut owners = BTreeMap::new();
        for c in list {
            let project = c
                .labels
                .as_ref()
                .and_then(|l| l.get(PROJECT_LABEL))
                .cloned();
            let name = match project {
                // Homelab's own proxy, in words a port clash can name.
                Some(p) if p == crate::proxy::PROJECT => crate::proxy::HOLDER.to_string(),
                Some(p) => p
                    .strip_prefix(super::PROJECT_PREFIX)
                    .unwrap_or(&p)
                    .to_string(),
                None => c
                    .names
                    .as_ref()
                    .and_then(|n| n.first())
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
            };
            for p in c.ports.unwrap_or_default() {
                if let Some(public) = p.public_port {
                    owners.insert(public, name.clone());
                }
            }
        }
        Ok(owners)
    }
}

/// One HTTP GET from this controller to the app; its answer, or why there was none.
pub async fn probe(host: &str, port: u16, path: &str, https: bool) -> Result<Answer, String> {
    let addr = crate::units::host_port(host, port);
    let tcp = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    .map_err(|_| "no answer".to_string())?
    .map_err(|e| e.to_string())?;
    if https {
        let tls = tokio::time::timeout(Duration::from_secs(5), app_tls(host, tcp))
            .await
            .map_err(|_| "no answer to the secure handshake".to_string())??;
        return ask(tls, &addr, path).await;
    }
    ask(tcp, &addr, path).await
}

/// One GET over an open connection; the answer, or why there was none.
async fn ask<S>(io: S, addr: &str, path: &str) -> Result<Answer, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, addr)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(5), sender.send_request(req))
        .await
        .map_err(|_| "no answer".to_string())?
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    // The start of the body, for checks that read it (bounded: an app's page can be large,
    // and a slow one must not hold the check).
    let mut body = resp.into_body();
    let mut start = Vec::new();
    let read = async {
        use http_body_util::BodyExt;
        while start.len() < PROBE_BODY
            && let Some(Ok(frame)) = body.frame().await
        {
            if let Ok(data) = frame.into_data() {
                start.extend_from_slice(&data);
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    start.truncate(PROBE_BODY);
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&start).into_owned(),
    })
}

/// How much of an answer's body the health check reads.
const PROBE_BODY: usize = 4096;

/// What an app answered to the health check.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The first few KB of the body.
    pub body: String,
}

/// A TLS connection to an app that serves HTTPS with its own certificate (Portainer makes a
/// self-signed one on its first start): nothing here can vouch for that certificate, so it is
/// not checked, but the handshake and the answer are real. The probe sends no credentials and
/// only decides whether the app is up (from its status and the start of its answer), so a
/// certificate it cannot check costs nothing.
async fn app_tls(
    host: &str,
    tcp: tokio::net::TcpStream,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("“{host}” as a TLS name: {e}"))?;
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("secure handshake failed: {e}"))
}

/// Accepts the app's certificate, whatever it is, while still checking that the server holds
/// its key (the handshake signatures are verified).
#[derive(Debug)]
struct AnyCertificate(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The device login's user and group ids, one per line.
const LOGIN_IDS: &str = "id -u && id -g";

/// Homelab's proxy on the device: its files, and its admin API reached through the admin
/// socket over this SSH connection (never over the network).
impl Remote {
    /// The device login's user and group ids: the proxy runs as them, so its admin socket
    /// belongs to the login and to nobody else on the device.
    pub async fn login_ids(&self) -> Result<(u32, u32), DeployError> {
        let out = self
            .run(
                "Read the device login's ids",
                RemoteCommand::script(LOGIN_IDS, Vec::<String>::new()),
                None,
                SMALL_TIMEOUT,
            )
            .await?;
        let text = out.stdout_text();
        let mut ids = text.lines().map(|l| l.trim().parse::<u32>());
        match (out.success(), ids.next(), ids.next()) {
            (true, Some(Ok(uid)), Some(Ok(gid))) => Ok((uid, gid)),
            _ => Err(self.lost(Trouble::EngineRefused, format!("id: {text}"))),
        }
    }

    /// Writes the proxy's Compose file and starting configuration into `dir`.
    pub async fn write_proxy(
        &self,
        dir: &str,
        compose: &str,
        config: &str,
    ) -> Result<(), DeployError> {
        let mut stdin = Vec::with_capacity(compose.len() + config.len());
        stdin.extend_from_slice(compose.as_bytes());
        stdin.extend_from_slice(config.as_bytes());
        let len = compose.len().to_string();
        let out = self
            .run(
                "Write the proxy's compose.yaml and caddy.json",
                RemoteCommand::script(WRITE_PROXY, [dir, len.as_str()]),
                Some(&stdin),
                SMALL_TIMEOUT,
            )
            .await?;
        self.files_written(dir, &out)
    }

    /// Puts a private authority's roots where the proxy reads them. `dir`: the proxy's folder.
    /// The caller holds the device's proxy lock.
    pub async fn write_acme_roots(&self, dir: &str, pem: &str) -> Result<(), DeployError> {
        let config = format!("{dir}/config");
        let out = self
            .run(
                "Write the authority's root certificates for the proxy",
                RemoteCommand::script(
                    WRITE_ROOTS,
                    [config.as_str(), crate::dns::public::ROOTS_FILE],
                ),
                Some(pem.as_bytes()),
                SMALL_TIMEOUT,
            )
            .await?;
        match out.stdout_text().trim() {
            "written" if out.success() => Ok(()),
            _ => Err(DeployError::FilesNotWritten {
                dir: config,
                device: self.device.name.clone(),
                detail: out.stderr_text(),
            }),
        }
    }

    /// The proxy's admin socket on the device, as a connector for the admin API client.
    fn admin(&self, socket: &str) -> crate::proxy::caddy::Admin {
        crate::proxy::caddy::Admin::over_ssh(self.session.clone(), socket.to_string())
    }

    /// The app routes the proxy holds (empty when it is not running).
    pub async fn proxy_route_ids(&self, socket: &str) -> Result<Vec<String>, DeployError> {
        let ids = self
            .admin(socket)
            .ids()
            .await
            .map_err(|e| self.proxy_refused(e))?;
        Ok(ids.into_iter().filter(|i| i.starts_with("app-")).collect())
    }

    /// Whether the proxy's admin API answers.
    pub async fn proxy_admin_ready(&self, socket: &str) -> bool {
        self.admin(socket).ids().await.is_ok()
    }

    /// Puts the app's certificate and route on the proxy (replacing earlier ones).
    pub async fn proxy_put(
        &self,
        socket: &str,
        slug: &str,
        name: &str,
        chain_pem: &str,
        key_pem: &crate::secrets::Secret,
        upstream: &crate::proxy::Upstream,
    ) -> Result<(), DeployError> {
        let admin = self.admin(socket);
        let t = Instant::now();
        let cert_id = super::cert_id(slug);
        let done = admin.put_certificate(&cert_id, chain_pem, key_pem).await;
        self.proxy_noted(format!("Proxy: certificate {cert_id} for {name}"), t, done)
            .await?;
        self.put_route(&admin, slug, name, upstream).await
    }

    async fn put_route(
        &self,
        admin: &crate::proxy::caddy::Admin,
        slug: &str,
        name: &str,
        upstream: &crate::proxy::Upstream,
    ) -> Result<(), DeployError> {
        let t = Instant::now();
        let route = crate::proxy::caddy::Route {
            id: super::route_id(slug),
            hosts: vec![name.to_string()],
            upstream: upstream.clone(),
        };
        let done = admin.put_route(&route).await;
        self.proxy_noted(
            format!("Proxy: route {} {name} → {}", route.id, upstream),
            t,
            done,
        )
        .await
    }

    /// Has the proxy obtain the app's certificate from the owner's public authority (ACME) and
    /// route the name to the app. A certificate Homelab pushed earlier for the app goes. The
    /// caller holds the device's proxy lock (the managed-names list is edited by position).
    pub async fn proxy_put_acme(
        &self,
        socket: &str,
        slug: &str,
        name: &str,
        issuer: &crate::proxy::caddy::AcmeIssuer,
        upstream: &crate::proxy::Upstream,
    ) -> Result<(), DeployError> {
        let admin = self.admin(socket);
        let t = Instant::now();
        let id = super::acme_id(slug);
        let done = async {
            admin.put_acme(&id, name, issuer).await?;
            admin.delete_certificate(&super::cert_id(slug)).await
        }
        .await;
        self.proxy_noted(
            format!("Proxy: {name}'s certificate from {}", issuer.directory),
            t,
            done,
        )
        .await?;
        self.put_route(&admin, slug, name, upstream).await
    }

    /// Takes the app's route and certificate (or its public certificate's policy) off the
    /// proxy; a proxy that is not there (any more) has nothing to take off. The caller holds
    /// the device's proxy lock.
    pub async fn proxy_delete(&self, socket: &str, slug: &str) -> Result<(), DeployError> {
        let admin = self.admin(socket);
        if admin.ids().await.is_err() {
            let running = self
                .project_containers(crate::proxy::PROJECT)
                .await?
                .iter()
                .any(|c| c.state.as_ref().map(|s| s.to_string()).as_deref() == Some("running"));
            if !running {
                return Ok(());
            }
        }
        let t = Instant::now();
        let done = async {
            admin.delete_route(&super::route_id(slug)).await?;
            admin.delete_certificate(&super::cert_id(slug)).await?;
            admin.delete_acme(&super::acme_id(slug)).await
        }
        .await;
        self.proxy_noted(
            format!("Proxy: remove the route and certificate of {slug}"),
            t,
            done,
        )
        .await
    }

    /// Notes a proxy call and its outcome in the deploy's log; a refusal becomes the plain
    /// error.
    async fn proxy_noted(
        &self,
        what: String,
        t: Instant,
        done: Result<(), crate::proxy::caddy::CaddyError>,
    ) -> Result<(), DeployError> {
        let outcome = match &done {
            Ok(()) => "ok".to_string(),
            Err(e) => e.to_string(),
        };
        self.note(what, outcome, t, String::new()).await;
        done.map_err(|e| self.proxy_refused(e))
    }

    fn proxy_refused(&self, e: crate::proxy::caddy::CaddyError) -> DeployError {
        DeployError::ProxyRefused {
            device: self.device.name.clone(),
            detail: e.to_string(),
        }
    }
}

/// One GET through Homelab's proxy on `addr` for `name`, trusting only `trust` (the
/// homelab's root, or a public domain's authorities): the answer, or why there was none.
pub async fn probe_named(
    addr: &str,
    name: &str,
    path: &str,
    trust: &crate::tls::trust::Trust,
) -> Result<Answer, String> {
    let target = crate::units::host_port(addr, 443);
    let tcp = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(&target),
    )
    .await
    .map_err(|_| "no answer".to_string())?
    .map_err(|e| e.to_string())?;
    let server =
        rustls::pki_types::ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    let tls = tokio::time::timeout(
        Duration::from_secs(5),
        trust.connector().connect(server, tcp),
    )
    .await
    .map_err(|_| "no answer to the secure handshake".to_string())?
    .map_err(|e| format!("the secure handshake failed: {e}"))?;
    ask(tls, name, path).await
}
