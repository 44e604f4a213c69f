//! One SSH connection per device, shared by everything that talks to it (health polls, Docker
//! calls, deploys). A dead connection is rebuilt on next use, with back-off after failures so
//! an unplugged device is not hammered. Host keys are always pinned: a changed key is recorded
//! for the user to review and blocks the device until they trust it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::keys::PrivateKey;
use tokio::sync::Mutex;

use super::{DeviceError, SECRET_SSH_KEY};
use crate::secrets::Vault;
use crate::ssh::{self, HostKeyPolicy, Login, Session, SshError, keys};
use crate::store::{DeviceRow, Store};

/// Longest wait between reconnect attempts to an unreachable device.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Slot {
    session: Option<Arc<Session>>,
    /// The Docker client on `session`, its API version negotiated once per connection (a
    /// negotiation is a round trip; polls would otherwise make it every time).
    docker: Option<(String, bollard::Docker)>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<SshError>,
}

pub struct Pool {
    store: Store,
    vault: Arc<Vault>,
    // Outer lock: the map only (short). Inner per-device lock: held while (re)connecting, so
    // concurrent users of one device share a single connection attempt.
    slots: std::sync::Mutex<HashMap<i64, Arc<Mutex<Slot>>>>,
}

impl Pool {
    pub fn new(store: Store, vault: Arc<Vault>) -> Pool {
        Pool {
            store,
            vault,
            slots: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, id: i64) -> Arc<Mutex<Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id)
            .or_default()
            .clone()
    }

    /// The device's private key, from the vault.
    pub async fn private_key(&self, device: &DeviceRow) -> Result<PrivateKey, DeviceError> {
        let owner = format!("device:{}", device.id);
        let sealed = self
            .store
            .secret(owner.clone(), SECRET_SSH_KEY)
            .await?
            .ok_or(DeviceError::NotFound)?;
        let text = self.vault.open(&sealed, &owner, SECRET_SSH_KEY)?;
        Ok(keys::decode_private(&text, None)?)
    }

    /// A live session to the device, connecting if needed.
    pub async fn session(&self, device: &DeviceRow) -> Result<Arc<Session>, DeviceError> {
        let slot = self.slot(device.id);
        let mut slot = slot.lock().await;
        if let Some(s) = &slot.session {
            if !s.is_closed() {
                return Ok(s.clone());
            }
            // Gone, or worn out by stranded channels: close it (the Docker client holds it too,
            // so it would otherwise stay open while reconnecting fails).
            s.close().await;
            slot.session = None;
            slot.docker = None;
        }
        if let (Some(at), Some(err)) = (slot.retry_at, &slot.last_error)
            && Instant::now() < at
        {
            return Err(err.clone().into());
        }
        let pinned = keys::parse_public(&device.host_key)?;
        let login = Login::Key {
            user: device.username.clone(),
            key: Arc::new(self.private_key(device).await?),
        };
        match ssh::connect(
            &device.host,
            device.port,
            &login,
            HostKeyPolicy::Pinned(pinned),
        )
        .await
        {
            Ok(s) => {
                let s = Arc::new(s);
                *slot = Slot {
                    session: Some(s.clone()),
                    ..Slot::default()
                };
                Ok(s)
            }
            Err(e) => {
                if let SshError::HostKeyChanged { seen_key, .. } = &e {
                    self.store
                        .set_pending_host_key(device.id, seen_key.clone())
                        .await?;
                }
                slot.failures = slot.failures.saturating_add(1);
                let wait = Duration::from_secs(1 << slot.failures.min(6)).min(MAX_BACKOFF);
                // A changed key needs the user, not a retry; a network failure is retried soon.
                slot.retry_at = match e {
                    SshError::HostKeyChanged { .. } | SshError::AuthFailed { .. } => {
                        Some(Instant::now() + wait)
                    }
                    _ => Some(Instant::now() + wait.min(Duration::from_secs(5))),
                };
                slot.last_error = Some(e.clone());
                Err(e.into())
            }
        }
    }

    /// A connection of its own to the device (not the pooled one), for a stream that must not
    /// share the pooled connection's flow control: a port forwarded back for a backup run,
    /// where a client on the device that stops reading would stall every channel of its
    /// connection (russh waits on a full channel) — it then stalls only this one.
    pub async fn separate_session(&self, device: &DeviceRow) -> Result<Session, DeviceError> {
        let pinned = keys::parse_public(&device.host_key)?;
        let login = Login::Key {
            user: device.username.clone(),
            key: Arc::new(self.private_key(device).await?),
        };
        Ok(ssh::connect(
            &device.host,
            device.port,
            &login,
            HostKeyPolicy::Pinned(pinned),
        )
        .await?)
    }

    /// A Docker client for the device's engine on its pooled connection.
    pub async fn docker(
        &self,
        device: &DeviceRow,
    ) -> Result<(Arc<Session>, bollard::Docker), DeviceError> {
        let session = self.session(device).await?;
        let slot = self.slot(device.id);
        {
            let slot = slot.lock().await;
            if let (Some(current), Some((socket, docker))) = (&slot.session, &slot.docker)
                && Arc::ptr_eq(current, &session)
                && *socket == device.docker_socket
            {
                return Ok((session, docker.clone()));
            }
        }
        // Negotiated without the slot's lock, so a slow engine does not hold up the device's
        // other users; two first users may both negotiate, and the last one is kept.
        let docker = crate::docker::connect(session.clone(), &device.docker_socket).await?;
        let mut slot = slot.lock().await;
        if slot
            .session
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, &session))
        {
            slot.docker = Some((device.docker_socket.clone(), docker.clone()));
        }
        Ok((session, docker))
    }

    /// The devices the pool holds a place for. Read this before the device list that is passed
    /// to `drop_gone`: a place made after it (a device being added) is then never dropped.
    pub fn held(&self) -> Vec<i64> {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// Drops the connections of devices among `held` that are no longer in `current` (a poll
    /// that read a device just before it was removed could otherwise leave its connection open
    /// until the next start).
    pub async fn drop_gone(&self, held: Vec<i64>, current: &std::collections::HashSet<i64>) {
        for id in held.into_iter().filter(|id| !current.contains(id)) {
            self.forget(id).await;
        }
    }

    /// Drops the connection and back-off state (device removed, key re-trusted, "retry now").
    pub async fn forget(&self, id: i64) {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if let Some(slot) = slot
            && let Some(s) = slot.lock().await.session.take()
        {
            s.close().await;
        }
    }
}
