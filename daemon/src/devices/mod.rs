//! Devices: adopting Linux servers over SSH (agentless: nothing but Docker on them), keeping one
//! connection per device, and watching their health.
//!
//! Adoption with a password: check everything, make this controller's own ed25519 key, add its
//! public key to the device's `authorized_keys` (idempotently, with a comment naming this
//! controller), prove key login works with the host key pinned, then store the device with the
//! private key sealed in the vault and forget the password (unless asked to keep it, sealed).
//! Any failure after the key was installed removes it again.

pub mod board;
pub mod checks;
pub mod facts;
pub mod health;
pub mod install;
pub mod pool;

use std::sync::Arc;

use crate::events::EventBus;
use crate::limits;
use crate::secrets::{Secret, Vault, VaultError};
use crate::ssh::{self, HostKeyPolicy, Login, RemoteCommand, SshError, keys};
use crate::store::{DeviceRow, NewDevice, Store, StoreError};
use checks::{Outcome, Report};

/// Vault purposes for a device's secrets (owner `device:<id>`).
pub const SECRET_SSH_KEY: &str = "ssh-key";
pub const SECRET_SSH_PASSWORD: &str = "ssh-password";
/// Where Docker listens unless the user says otherwise.
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// Errors from device operations, each with a message a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("This device is not ready to be added; see the checks.")]
    NotReady(Box<Report>),
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("No such device.")]
    NotFound,
    #[error(transparent)]
    Docker(#[from] crate::docker::DockerError),
}

/// How the user logs in to the device.
pub enum Credential {
    Password(Secret),
    Key {
        private_key: Secret,
        passphrase: Option<Secret>,
    },
}

/// What the add-device form (or API) sends.
pub struct DeviceInput {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub credential: Credential,
    /// Keep the password (sealed) after adoption; by default it is forgotten.
    pub keep_password: bool,
    pub docker_socket: String,
}

/// The devices service.
pub struct Devices {
    pub store: Store,
    pub vault: Arc<Vault>,
    pub pool: pool::Pool,
    pub events: EventBus,
    /// Names this controller in the comment of its authorized_keys lines.
    controller_name: String,
    /// Addresses where "Install Docker for me" is under way (one install per device).
    installing: crate::busy::BusySet,
    /// Polls begun since start (for /metrics and the memory tests).
    polls: std::sync::atomic::AtomicU64,
    /// Devices (by id) whose poll from an earlier cycle is still under way: the next cycle
    /// skips them instead of piling a second poll onto a device that does not answer.
    polling: crate::busy::BusySet,
    /// The queue of the task that writes poll results in batches (see `health`); started on
    /// first use, as it needs the runtime.
    recorder: std::sync::OnceLock<tokio::sync::mpsc::Sender<health::RecordJob>>,
    /// What pages and the API show of every device, rebuilt once per change.
    board: board::BoardCache,
    /// Numbers polls in the order they begin, so an older result never overwrites a newer one.
    sequence: std::sync::atomic::AtomicU64,
}

impl Devices {
    pub fn new(store: Store, vault: Arc<Vault>, events: EventBus) -> Devices {
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().to_string())
            .unwrap_or_default();
        Devices {
            pool: pool::Pool::new(store.clone(), vault.clone()),
            store,
            vault,
            events,
            controller_name: sanitize_comment(&format!("homelab-controller@{host}")),
            installing: Default::default(),
            polls: Default::default(),
            polling: Default::default(),
            recorder: Default::default(),
            board: Default::default(),
            sequence: Default::default(),
        }
    }

    /// Every device with its status, facts, uptime and containers, as of the latest committed
    /// change (see `board`).
    pub async fn board(&self) -> Result<Arc<board::Board>, StoreError> {
        self.board.get(&self.store).await
    }

    /// How many device polls have begun since start.
    pub fn polls(&self) -> u64 {
        self.polls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs every check without changing anything on the device or here.
    pub async fn test_connection(&self, input: &DeviceInput) -> Result<Report, DeviceError> {
        let mut report = Report::default();
        let valid = validate(input)?;
        let login = match self.login_for(input) {
            Ok(l) => l,
            Err(DeviceError::Ssh(e)) => {
                checks::connection_failed(&mut report, &e, &valid.username);
                return Ok(report);
            }
            Err(e) => return Err(e),
        };
        self.probe(&valid, &login, &mut report).await;
        Ok(report)
    }

    /// "Install Docker for me" on a device being added, then the checks again. `fingerprint`
    /// is the identity the user saw in their test: root commands go only to that device.
    /// `sudo_password` defaults to the login's password, which is sudo's on most systems.
    pub async fn install_docker(
        &self,
        input: &DeviceInput,
        sudo_password: Option<Secret>,
        fingerprint: Option<&str>,
    ) -> Result<(Result<install::Installed, install::InstallError>, Report), DeviceError> {
        let v = validate(input)?;
        if let Some(pw) = &sudo_password
            && pw.expose().len() > limits::SECRET
        {
            return Err(DeviceError::Invalid(format!(
                "The sudo password is longer than {} bytes; check that you typed the right one.",
                limits::SECRET
            )));
        }
        if let Some(f) = fingerprint {
            limits::check("host key fingerprint", f, limits::WORD * 2)
                .map_err(DeviceError::Invalid)?;
        }
        let login = self.login_for(input)?;
        let session = ssh::connect(&v.host, v.port, &login, HostKeyPolicy::FirstUse).await?;
        let seen = keys::fingerprint(&session.host_key);
        if let Some(expected) = fingerprint.filter(|f| !f.is_empty())
            && expected != seen
        {
            session.close().await;
            return Err(DeviceError::Invalid(format!(
                "The device at {} now identifies itself as {seen}, not {expected} as when you \
                 tested it. Nothing was installed. Test the connection again and make sure it \
                 is the right device.",
                session.addr
            )));
        }
        let Some(_installing) = self.installing.try_claim(&session.addr) else {
            session.close().await;
            return Err(DeviceError::Conflict(
                "Docker is already being installed on this device; wait for it to finish.".into(),
            ));
        };
        let password = sudo_password.or_else(|| match &input.credential {
            Credential::Password(pw) => Some(Secret::new(pw.expose().to_vec())),
            Credential::Key { .. } => None,
        });
        let outcome = async {
            let assessment = install::assess(&session).await?;
            install::install(
                &session,
                &assessment,
                &v.username,
                &v.docker_socket,
                password.as_ref(),
            )
            .await
        }
        .await;
        session.close().await;
        // A fresh login: group membership granted by the install counts from the next session.
        let report = self.test_connection(input).await?;
        Ok((outcome, report))
    }

    /// Connects (first use: the device's key is pinned from here on) and runs the checks.
    async fn probe(
        &self,
        v: &Valid,
        login: &Login,
        report: &mut Report,
    ) -> Option<Arc<ssh::Session>> {
        let session = match ssh::connect(&v.host, v.port, login, HostKeyPolicy::FirstUse).await {
            Ok(s) => Arc::new(s),
            Err(e) => {
                checks::connection_failed(report, &e, &v.username);
                return None;
            }
        };
        report.host_key_fingerprint = Some(keys::fingerprint(&session.host_key));
        report
            .push(
                "Reach the device",
                Outcome::Pass,
                format!("The device at {} answered.", session.addr),
            )
            .plain("Reach the device", "The device answered.");
        report.push(
            "Log in",
            Outcome::Pass,
            format!("Logged in as “{}”.", v.username),
        );
        if let Ok(out) = session
            .exec(&RemoteCommand::new("hostname"), None, ssh::EXEC_TIMEOUT)
            .await
        {
            report.hostname = Some(out.stdout_text().trim().to_string());
        }
        checks::docker(report, &session, &v.docker_socket, &v.username).await;
        Some(session)
    }

    fn login_for(&self, input: &DeviceInput) -> Result<Login, DeviceError> {
        let user = input.username.trim().to_string();
        Ok(match &input.credential {
            Credential::Password(pw) => Login::Password {
                user,
                password: Secret::new(pw.expose().to_vec()),
            },
            Credential::Key {
                private_key,
                passphrase,
            } => Login::Key {
                user,
                key: Arc::new(keys::decode_private(private_key, passphrase.as_ref())?),
            },
        })
    }

    /// The key this controller will log in with from now on: the user's own key, or (after a
    /// password login) a fresh key of ours, installed on the device. Returns the key, the
    /// `authorized_keys` line we added (to undo on failure) and its comment.
    async fn key_to_use(
        &self,
        login: &Login,
        session: &ssh::Session,
        device_name: &str,
    ) -> Result<(russh::keys::PrivateKey, Option<String>, String), DeviceError> {
        match login {
            Login::Key { key, .. } => Ok(((**key).clone(), None, String::new())),
            Login::Password { .. } => {
                let comment =
                    sanitize_comment(&format!("{} device:{device_name}", self.controller_name));
                let key = keys::generate(&comment)?;
                let line = keys::authorized_line(key.public_key())?;
                install_key(session, &line).await?;
                Ok((key, Some(line), comment))
            }
        }
    }

    /// Adopts a device. Safe to repeat: an address already adopted is reported, not duplicated.
    pub async fn adopt(&self, input: DeviceInput) -> Result<DeviceRow, DeviceError> {
        let v = validate(&input)?;
        if let Some(existing) = self.store.device_by_address(v.host.clone(), v.port).await? {
            return Err(DeviceError::Conflict(format!(
                "This device is already added as “{}”.",
                existing.name
            )));
        }
        let login = self.login_for(&input)?;
        let mut report = Report::default();
        let Some(session) = self.probe(&v, &login, &mut report).await else {
            return Err(DeviceError::NotReady(Box::new(report)));
        };
        if !report.ok() {
            return Err(DeviceError::NotReady(Box::new(report)));
        }
        let host_key = session.host_key.clone();

        // The key this controller will use from now on.
        let (key, installed_line, comment) = self.key_to_use(&login, &session, &v.name).await?;
        let result = self
            .finish_adoption(&v, &input, &key, &host_key, comment)
            .await;
        if result.is_err()
            && let Some(line) = &installed_line
        {
            // Roll back: leave the device's authorized_keys as we found it.
            if let Err(e) = remove_key(&session, line).await {
                tracing::warn!(error = %e, device = %v.name, "could not remove our key after a failed adoption");
            }
        }
        session.close().await;
        result
    }

    async fn finish_adoption(
        &self,
        v: &Valid,
        input: &DeviceInput,
        key: &russh::keys::PrivateKey,
        host_key: &russh::keys::PublicKey,
        comment: String,
    ) -> Result<DeviceRow, DeviceError> {
        // Prove the key works, with the host key pinned, before relying on it.
        let check = Login::Key {
            user: v.username.clone(),
            key: Arc::new(key.clone()),
        };
        let s = ssh::connect(
            &v.host,
            v.port,
            &check,
            HostKeyPolicy::Pinned(host_key.clone()),
        )
        .await?;
        s.close().await;

        let private = keys::encode_private(key)?;
        let password = match (&input.credential, input.keep_password) {
            (Credential::Password(pw), true) => Some(Secret::new(pw.expose().to_vec())),
            _ => None,
        };
        let vault = self.vault.clone();
        let new = NewDevice {
            name: v.name.clone(),
            host: v.host.clone(),
            port: v.port,
            username: v.username.clone(),
            host_key: host_key
                .to_openssh()
                .map_err(|e| DeviceError::Invalid(e.to_string()))?,
            docker_socket: v.docker_socket.clone(),
            key_comment: comment,
        };
        let row = self
            .store
            .add_device(new, move |id| {
                let owner = format!("device:{id}");
                let mut sealed = vec![(
                    SECRET_SSH_KEY,
                    vault.seal(private.expose(), &owner, SECRET_SSH_KEY),
                )];
                if let Some(pw) = password {
                    sealed.push((
                        SECRET_SSH_PASSWORD,
                        vault.seal(pw.expose(), &owner, SECRET_SSH_PASSWORD),
                    ));
                }
                sealed
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(m) => DeviceError::Conflict(format!("Cannot add: {m}.")),
                other => other.into(),
            })?;
        Ok(row)
    }

    /// Forgets a device (its keys go with it); with `clean_device`, first removes this
    /// controller's line from the device's `authorized_keys`.
    pub async fn remove(&self, id: i64, clean_device: bool) -> Result<String, DeviceError> {
        let device = self.store.device(id).await?.ok_or(DeviceError::NotFound)?;
        let apps = self.store.apps_on_device(id).await?;
        if !apps.is_empty() {
            return Err(DeviceError::Conflict(format!(
                "{} still runs {}. Remove those apps first (or keep the device).",
                device.name,
                apps.join(", ")
            )));
        }
        // A job under way there (an app moving to it, say) still has work on it: the
        // device stays until that is over.
        if let Some(job) = self
            .store
            .unfinished_deployments()
            .await?
            .into_iter()
            // Undo work waiting for a device that is gone does not hold it: removing it is
            // how the owner lets that go (the undo then skips it).
            .find(|d| {
                d.device_id == id
                    && !matches!(
                        d.state,
                        crate::states::DeploymentState::Failed
                            | crate::states::DeploymentState::RollingBack
                    )
            })
        {
            return Err(DeviceError::Conflict(format!(
                "Homelab is still working with {} on {} (its page shows how far it is). \
                 Remove the device when that is done.",
                job.slug, device.name
            )));
        }
        if clean_device && !device.key_comment.is_empty() {
            let cleaned = async {
                let session = self.pool.session(&device).await?;
                let key = self.pool.private_key(&device).await?;
                let line = keys::authorized_line(key.public_key())?;
                remove_key(&session, &line).await
            };
            // An unreachable device must not trap the user: say how to remove it anyway.
            if let Err(e) = cleaned.await {
                return Err(DeviceError::Invalid(format!(
                    "Homelab's key could not be taken off the device ({e}). Nothing was removed. \
                     Untick “Also remove Homelab's key” to remove the device anyway."
                )));
            }
        }
        self.pool.forget(id).await;
        let removed = self
            .store
            .delete_device(id)
            .await?
            .ok_or(DeviceError::NotFound);
        // Now, not at the next board build: a device added next may get the same id.
        self.board.forget(id);
        removed
    }

    /// Renames a device and/or moves it to a new address. A new address must answer with the
    /// pinned identity and our key before it is saved. Returns (before, after) descriptions.
    pub async fn edit(
        &self,
        id: i64,
        name: &str,
        host: &str,
        port: u16,
    ) -> Result<(String, String), DeviceError> {
        let device = self.store.device(id).await?.ok_or(DeviceError::NotFound)?;
        let v = validate(&DeviceInput {
            name: name.into(),
            host: host.into(),
            port,
            username: device.username.clone(),
            credential: Credential::Password(Secret::from_string(String::new())),
            keep_password: false,
            docker_socket: device.docker_socket.clone(),
        })?;
        let moved = v.host != device.host || v.port != device.port;
        if moved {
            let key = self.pool.private_key(&device).await?;
            let login = Login::Key {
                user: device.username.clone(),
                key: Arc::new(key),
            };
            let pinned = keys::parse_public(&device.host_key)?;
            let s = ssh::connect(&v.host, v.port, &login, HostKeyPolicy::Pinned(pinned)).await?;
            s.close().await;
        }
        self.store
            .update_device(id, v.name.clone(), v.host.clone(), v.port)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(m) => DeviceError::Conflict(format!("Cannot save: {m}.")),
                other => other.into(),
            })?;
        if moved {
            self.pool.forget(id).await;
        }
        let describe = |n: &str, h: &str, p: u16| format!("“{n}” at {h}:{p}");
        Ok((
            describe(&device.name, &device.host, device.port),
            describe(&v.name, &v.host, v.port),
        ))
    }

    /// Changes how this controller logs in to a device (another user, a new password or key).
    /// The new login is proven against the pinned identity before anything is stored; with a
    /// password, a fresh key of ours is installed for that user and the old one removed.
    pub async fn change_login(
        &self,
        id: i64,
        username: &str,
        credential: Credential,
        keep_password: bool,
    ) -> Result<(), DeviceError> {
        let device = self.store.device(id).await?.ok_or(DeviceError::NotFound)?;
        let input = DeviceInput {
            name: device.name.clone(),
            host: device.host.clone(),
            port: device.port,
            username: username.into(),
            credential,
            keep_password,
            docker_socket: device.docker_socket.clone(),
        };
        let v = validate(&input)?;
        let login = self.login_for(&input)?;
        let pinned = keys::parse_public(&device.host_key)?;
        let session = ssh::connect(
            &v.host,
            v.port,
            &login,
            HostKeyPolicy::Pinned(pinned.clone()),
        )
        .await?;
        let old_key = self.pool.private_key(&device).await.ok();
        let (key, installed, comment) = self.key_to_use(&login, &session, &v.name).await?;
        let stored = async {
            let check = Login::Key {
                user: v.username.clone(),
                key: Arc::new(key.clone()),
            };
            ssh::connect(&v.host, v.port, &check, HostKeyPolicy::Pinned(pinned))
                .await?
                .close()
                .await;
            let owner = format!("device:{id}");
            let private = keys::encode_private(&key)?;
            let mut sealed = vec![(
                SECRET_SSH_KEY,
                self.vault.seal(private.expose(), &owner, SECRET_SSH_KEY),
            )];
            if let (Credential::Password(pw), true) = (&input.credential, keep_password) {
                sealed.push((
                    SECRET_SSH_PASSWORD,
                    self.vault.seal(pw.expose(), &owner, SECRET_SSH_PASSWORD),
                ));
            }
            self.store
                .set_device_login(id, v.username.clone(), comment, sealed)
                .await?;
            Ok::<(), DeviceError>(())
        }
        .await;
        match (&stored, &installed) {
            (Err(_), Some(line)) => {
                let _ = remove_key(&session, line).await;
            }
            (Ok(()), _) if !device.key_comment.is_empty() && device.username == v.username => {
                // Our previous key for this same user is no longer needed.
                if let Some(old) = old_key
                    && let Ok(line) = keys::authorized_line(old.public_key())
                    && installed.as_deref() != Some(line.as_str())
                {
                    let _ = remove_key(&session, &line).await;
                }
            }
            _ => {}
        }
        session.close().await;
        stored?;
        self.pool.forget(id).await;
        Ok(())
    }

    /// Pins the changed host key the device presented (after a reinstall).
    pub async fn trust_new_host_key(&self, id: i64) -> Result<bool, DeviceError> {
        let ok = self.store.trust_pending_host_key(id).await?;
        self.pool.forget(id).await;
        Ok(ok)
    }
}

/// Adds a public key line to `~/.ssh/authorized_keys` unless it is already there, or removes
/// exactly that line (keeping everything else and the file's mode); one edit at a time.
const AUTHORIZED_KEY: &str = include_str!("authorized_key.sh");

pub async fn install_key(session: &ssh::Session, line: &str) -> Result<(), DeviceError> {
    let out = session
        .exec(
            &RemoteCommand::script(AUTHORIZED_KEY, ["add", line]),
            None,
            ssh::EXEC_TIMEOUT,
        )
        .await?;
    if !out.success() {
        return Err(DeviceError::Invalid(format!(
            "Could not add this controller's key to the device's login settings: {}",
            out.stderr_text()
        )));
    }
    Ok(())
}

pub async fn remove_key(session: &ssh::Session, line: &str) -> Result<(), DeviceError> {
    let out = session
        .exec(
            &RemoteCommand::script(AUTHORIZED_KEY, ["remove", line]),
            None,
            ssh::EXEC_TIMEOUT,
        )
        .await?;
    if !out.success() {
        return Err(DeviceError::Invalid(format!(
            "Could not remove this controller's key: {}",
            out.stderr_text()
        )));
    }
    Ok(())
}

/// Comments end up in a one-line file: keep only characters that cannot break the line.
fn sanitize_comment(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | ':') {
                c
            } else {
                '-'
            }
        })
        .take(100)
        .collect()
}

/// Inputs checked and trimmed.
struct Valid {
    name: String,
    host: String,
    port: u16,
    username: String,
    docker_socket: String,
}

fn validate(input: &DeviceInput) -> Result<Valid, DeviceError> {
    let name = input.name.trim();
    // Each wrong name gets its own reason: a name of 57 characters with a line break in it
    // is not "too long", and saying so sends the owner counting characters.
    if name.chars().any(char::is_control) {
        return Err(DeviceError::Invalid(
            "A device name is one line of text: remove the line break or tab from it and try \
             again."
                .into(),
        ));
    }
    if name.is_empty() || name.chars().count() > limits::NAME {
        return Err(DeviceError::Invalid(format!(
            "Give the device a name of 1 to {} characters, e.g. “Living room NAS”.",
            limits::NAME
        )));
    }
    let host = input
        .host
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']');
    limits::check("device address", host, limits::ADDRESS).map_err(DeviceError::Invalid)?;
    let host_ok = !host.is_empty()
        && !host.starts_with('-')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    if !host_ok {
        return Err(DeviceError::Invalid(
            "Enter the device's address: an IP address like 192.168.1.20 or a name like nas.local."
                .into(),
        ));
    }
    if input.port == 0 {
        return Err(DeviceError::Invalid(
            "The port must be between 1 and 65535 (usually 22).".into(),
        ));
    }
    let username = input.username.trim();
    limits::check("user name", username, limits::LOGIN).map_err(DeviceError::Invalid)?;
    let user_ok = !username.is_empty()
        && !username.starts_with('-')
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !user_ok {
        return Err(DeviceError::Invalid(
            "Enter the user name you log in to the device with (letters, digits, . _ -).".into(),
        ));
    }
    let socket = input.docker_socket.trim();
    let socket = if socket.is_empty() {
        DEFAULT_DOCKER_SOCKET
    } else {
        socket
    };
    limits::check("Docker socket path", socket, limits::DOCKER_SOCKET)
        .map_err(DeviceError::Invalid)?;
    if !socket.starts_with('/') || socket.chars().any(char::is_control) {
        return Err(DeviceError::Invalid(
            "The Docker socket must be an absolute path, like /var/run/docker.sock.".into(),
        ));
    }
    // Credentials are sealed and stored (a kept password, the key): bounded like every input.
    let secret_len = |what: &str, secret: &Secret, max: usize| {
        let n = secret.expose().len();
        if n > max {
            return Err(DeviceError::Invalid(format!(
                "The {what} is {n} bytes long; at most {max} are accepted. Check that you pasted \
                 the right thing."
            )));
        }
        Ok(())
    };
    match &input.credential {
        Credential::Password(pw) => secret_len("password", pw, limits::SECRET)?,
        Credential::Key {
            private_key,
            passphrase,
        } => {
            secret_len("private key", private_key, limits::PRIVATE_KEY)?;
            if let Some(p) = passphrase {
                secret_len("key passphrase", p, limits::SECRET)?;
            }
        }
    }
    Ok(Valid {
        name: name.to_string(),
        host: host.to_string(),
        port: input.port,
        username: username.to_string(),
        docker_socket: socket.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, host: &str, user: &str, socket: &str) -> DeviceInput {
        DeviceInput {
            name: name.into(),
            host: host.into(),
            port: 22,
            username: user.into(),
            credential: Credential::Password(Secret::from_string("x".into())),
            keep_password: false,
            docker_socket: socket.into(),
        }
    }

    #[test]
    fn validation() {
        assert!(validate(&input("NAS", "192.168.1.5", "pi", "")).is_ok());
        assert_eq!(
            validate(&input("NAS", "[fd00::1]", "pi", "")).unwrap().host,
            "fd00::1"
        );
        assert!(validate(&input("", "192.168.1.5", "pi", "")).is_err());
        assert!(validate(&input("a\nb", "192.168.1.5", "pi", "")).is_err());
        assert!(validate(&input("NAS", "x;touch /tmp/p", "pi", "")).is_err());
        assert!(validate(&input("NAS", "-oProxyCommand=x", "pi", "")).is_err());
        assert!(validate(&input("NAS", "h", "$(id)", "")).is_err());
        assert!(validate(&input("NAS", "h", "pi", "relative.sock")).is_err());
        assert_eq!(
            validate(&input("NAS", "h", "pi", ""))
                .unwrap()
                .docker_socket,
            DEFAULT_DOCKER_SOCKET
        );
    }

    #[test]
    fn every_stored_field_is_bounded_and_the_refusal_says_the_limit() {
        let long = |n: usize| "a".repeat(n);
        let refused = |i: DeviceInput, words: &str| match validate(&i) {
            Err(DeviceError::Invalid(m)) => assert!(m.contains(words), "{m}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted {words}"),
        };
        refused(input(&long(65), "h", "pi", ""), "1 to 64 characters");
        refused(
            input(&format!("{}\n{}", long(28), long(28)), "h", "pi", ""),
            "one line of text: remove the line break",
        );
        refused(input("NAS", &long(254), "pi", ""), "at most 253");
        refused(input("NAS", "h", &long(33), ""), "at most 32");
        refused(
            input("NAS", "h", "pi", &format!("/{}", long(300))),
            "at most 256",
        );
        let mut i = input("NAS", "h", "pi", "");
        i.credential = Credential::Password(Secret::from_string(long(2000)));
        refused(i, "at most 1024");
        let mut i = input("NAS", "h", "pi", "");
        i.credential = Credential::Key {
            private_key: Secret::from_string(long(20_000)),
            passphrase: None,
        };
        refused(i, "private key");
        assert!(validate(&input(&long(64), &long(253), &long(32), "")).is_ok());
    }

    #[test]
    fn comments_stay_on_one_line() {
        assert_eq!(
            sanitize_comment("homelab@box device:My NAS\n$(x)"),
            "homelab@box-device:My-NAS---x-"
        );
    }
}
