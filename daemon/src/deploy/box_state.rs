//! The box's own backup and its restore onto a new box.
//!
//! The box's state (database, vault key, certificate: `backup::bundle`) is sealed with the
//! owner's recovery passphrase and stored in each destination's restic repository as a
//! snapshot of the host `homelab-box`, by restic running on the box itself (`backup::local`).
//! The passphrase is also added to each repository as a restic key of its own, so that:
//! - a new box, told only where the backups are and the passphrase, opens the repository,
//!   finds the newest box backup and opens it (the repository's own password was in the lost
//!   box's vault);
//! - the owner can open every backup with plain `restic` and the passphrase, no Homelab in
//!   the way.
//!
//! The passphrase itself is kept sealed in the vault: the box needs it to seal each night's
//! backup and to add it to destinations added later. Whoever holds the vault's key holds
//! every repository's password anyway; the passphrase guards the backups from those who do
//! not (the devices, which know a repository's password, and the storage).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{DeployError, Deployer};
use crate::backup::bundle::{self, BOX_HOST, BUNDLE_NAME, Manifest};
use crate::backup::local::Local;
use crate::backup::restic::{self, Why};
use crate::backup::{self, Credentials, Target};
use crate::secrets::Secret;
use crate::ssh::{self, HostKeyPolicy, Login};
use crate::store::DestinationRow;

/// The vault owner and purpose of the recovery passphrase.
const OWNER: &str = "box-recovery";
const PURPOSE: &str = "passphrase";
/// When the passphrase was last set (unix seconds): a destination's keys of earlier
/// passphrases go only once a box backup sealed with this one is stored there.
const SET_AT: &str = "recovery.set_at";
/// The last box backup (`BoxBackup` as JSON).
const LAST: &str = "recovery.last";
/// The restore this box started from (`Restored` as JSON), shown until dismissed.
const RESTORED: &str = "recovery.restored";
/// restic's user name on the recovery keys, so a new passphrase's key replaces the old one's.
const KEY_USER: &str = "homelab-recovery";
/// Shortest passphrase: it guards every secret of the homelab, offline, for years.
pub const MIN_PASSPHRASE: usize = 12;
const MAX_PASSPHRASE: usize = 256;

/// What the box keeps for its own backups: where its data is, the restic it runs, and one
/// box backup or restore at a time.
pub struct BoxState {
    pub data: PathBuf,
    pub restic: PathBuf,
    one: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl BoxState {
    pub fn new(data: PathBuf, restic: PathBuf) -> BoxState {
        BoxState {
            data,
            restic,
            one: Default::default(),
        }
    }
}

/// How the last box backup went, per destination.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BoxBackup {
    pub at: i64,
    pub ok: bool,
    pub destinations: Vec<BoxBackupAt>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BoxBackupAt {
    pub id: i64,
    pub name: String,
    pub ok: bool,
    /// "Backed up (1.2 MB)" or what went wrong, with the fix.
    pub words: String,
    #[serde(default)]
    pub snapshot: String,
}

/// The restore a box started from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Restored {
    /// When the backup was made, and by which version.
    pub made_at: i64,
    pub version: String,
    /// When this box started with it.
    pub at: i64,
}

/// What the owner gives a new box to restore from: where the backups are (with a login to
/// read them: the SSH server's password, used once, the storage's keys, or a REST server's
/// login name in `key_id` and its password in `password`) and the passphrase.
pub struct BoxRestore {
    pub target: Target,
    pub password: Secret,
    pub key_id: Secret,
    pub secret: Secret,
    pub passphrase: Secret,
}

fn refused(words: impl Into<String>) -> DeployError {
    DeployError::BackupRefused(words.into())
}

fn failed(words: impl Into<String>) -> DeployError {
    DeployError::BackupFailed {
        message: words.into(),
        detail: String::new(),
    }
}

/// A passphrase as typed: spaces at its ends dropped (restic drops them from a password
/// file), checked for length and for what cannot go on one line.
pub fn check_passphrase(typed: &Secret) -> Result<Secret, DeployError> {
    let text = typed
        .expose_str()
        .ok_or_else(|| refused("The passphrase is not valid text."))?
        .trim();
    if text.chars().count() < MIN_PASSPHRASE {
        return Err(refused(format!(
            "Use at least {MIN_PASSPHRASE} characters for the recovery passphrase: a few words together work well."
        )));
    }
    if text.len() > MAX_PASSPHRASE || text.chars().any(char::is_control) {
        return Err(refused(format!(
            "Use at most {MAX_PASSPHRASE} characters, on one line."
        )));
    }
    Ok(Secret::from_string(text.to_string()))
}

fn copy(s: &Secret) -> Secret {
    Secret::new(s.expose().to_vec())
}

/// The same way into the repository, opened with `password` (the recovery passphrase).
fn with_password(creds: &Credentials, password: &Secret) -> Credentials {
    Credentials {
        password: copy(password),
        ssh: creds.ssh.as_ref().map(|(k, h)| (copy(k), h.clone())),
        s3: creds.s3.as_ref().map(|(i, s)| (copy(i), copy(s))),
        rest: creds.rest.as_ref().map(backup::RestLogin::copy),
        disk: creds.disk.clone(),
    }
}

/// How many of the newest box backups a restore tries before it gives up.
const TRIED_SNAPSHOTS: usize = 3;

/// A box backup fetched and checked, held until it is staged (with the one-at-a-time lock).
pub struct FetchedBox {
    manifest: Manifest,
    files: bundle::Files,
    _one: tokio::sync::OwnedMutexGuard<()>,
}

/// Opens a sealed box backup and checks its database can be started from (`check_copy`).
/// Blocking (Argon2id, SQLite). Err: why not, in words.
fn open_checked(
    sealed: &[u8],
    passphrase: &Secret,
    scratch: &std::path::Path,
) -> Result<(Manifest, bundle::Files), String> {
    let plain = bundle::open(sealed, passphrase).map_err(|e| e.to_string())?;
    let (manifest, files) = bundle::unpack(plain.expose()).map_err(|e| e.to_string())?;
    drop(plain);
    let db = files
        .iter()
        .find(|(n, _)| n == crate::store::DB_FILE)
        .map(|(_, b)| b.as_slice())
        .unwrap_or_default();
    std::fs::create_dir_all(scratch).map_err(|e| e.to_string())?;
    let path = scratch.join(format!(
        "restore-check-{}.db",
        crate::secrets::random_bytes::<8>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    let checked = std::fs::write(&path, db)
        .map_err(|e| e.to_string())
        .and_then(|()| crate::store::check_copy(&path));
    let _ = std::fs::remove_file(&path);
    checked.map_err(|why| format!("{why}."))?;
    Ok((manifest, files))
}

impl Deployer {
    /// restic on the box, with its cache for the box's own backups (`cached`), without one for
    /// a restore onto a new box.
    fn local(&self, cached: bool) -> Local<'_> {
        Local {
            program: &self.box_state.restic,
            data: &self.box_state.data,
            cached,
            deadline: crate::backup::local::DEADLINE,
        }
    }

    /// Whether the owner has set a recovery passphrase (the box's backups need one).
    pub async fn recovery_set(&self) -> bool {
        matches!(self.store.secret(OWNER.into(), PURPOSE).await, Ok(Some(_)))
    }

    async fn passphrase(&self) -> Result<Secret, DeployError> {
        let sealed = self
            .store
            .secret(OWNER.into(), PURPOSE)
            .await?
            .ok_or_else(|| {
                refused("Set a recovery passphrase first (Backups → This box), so the box's own backup can be opened by you alone.")
            })?;
        Ok(self.vault.open(&sealed, OWNER, PURPOSE)?)
    }

    /// Sets (or changes) the recovery passphrase. The repositories get it as a key at the
    /// next box backup, which the caller starts; the old passphrase's keys go once that
    /// backup is stored (`tidy_box`).
    pub async fn set_recovery_passphrase(
        &self,
        passphrase: Secret,
        confirm: Secret,
    ) -> Result<(), DeployError> {
        let passphrase = check_passphrase(&passphrase)?;
        if passphrase.expose() != confirm.expose_str().unwrap_or_default().trim().as_bytes() {
            return Err(refused(
                "The two passphrases do not match. Type the same passphrase twice.",
            ));
        }
        let sealed = self.vault.seal(passphrase.expose(), OWNER, PURPOSE);
        self.store.put_secret(OWNER.into(), PURPOSE, sealed).await?;
        self.store
            .set_setting(SET_AT, crate::store::now_unix().to_string())
            .await?;
        self.audit(
            "recovery.passphrase",
            "The recovery passphrase was set.".into(),
        )
        .await;
        Ok(())
    }

    async fn set_at(&self) -> i64 {
        self.store
            .setting(SET_AT)
            .await
            .ok()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// How the last box backup went (None before the first).
    pub async fn box_backup_status(&self) -> Option<BoxBackup> {
        let text = self.store.setting(LAST).await.ok().flatten()?;
        serde_json::from_str(&text).ok()
    }

    /// The restore this box started from, when it did and the owner has not dismissed it.
    pub async fn restored_from(&self) -> Option<Restored> {
        let text = self.store.setting(RESTORED).await.ok().flatten()?;
        serde_json::from_str(&text).ok()
    }

    pub async fn dismiss_restored(&self) -> Result<(), DeployError> {
        Ok(self.store.delete_setting(RESTORED).await?)
    }

    /// At the first start after a restore: remembers it for the dashboard, and ends the
    /// sessions the backup brought back (the browsers they belong to sign in again).
    pub async fn note_restored(&self, manifest: &Manifest) -> Result<(), DeployError> {
        let restored = Restored {
            made_at: manifest.made_at,
            version: manifest.version.clone(),
            at: crate::store::now_unix(),
        };
        self.store
            .set_setting(
                RESTORED,
                serde_json::to_string(&restored).unwrap_or_default(),
            )
            .await?;
        self.store.purge_idle_sessions(-1).await?;
        self.audit(
            "recovery.restored",
            format!(
                "The box started from its backup of {} (Homelab {}).",
                crate::units::date_utc(manifest.made_at),
                manifest.version
            ),
        )
        .await;
        Ok(())
    }

    /// Backs the box's own state up to every destination, now. Returns how it went (also
    /// kept for the Backups page). One at a time: a second call while one runs is refused.
    pub async fn back_up_box(&self) -> Result<BoxBackup, DeployError> {
        let _one = self.box_state.one.try_lock().map_err(|_| {
            refused("The box is already being backed up (or restored). Try again in a minute.")
        })?;
        let passphrase = self.passphrase().await?;
        let destinations = self.store.backup_destinations().await?;
        if destinations.is_empty() {
            return Err(refused(
                "Add a destination first: the box's backup goes where the apps' backups go.",
            ));
        }
        let mut result = BoxBackup {
            at: crate::store::now_unix(),
            ok: true,
            destinations: Vec::new(),
        };
        let sealed = match self.sealed_state(&passphrase).await {
            Ok(sealed) => sealed,
            Err(e) => {
                // Said on the card and the dashboard like a failure at each destination.
                result.ok = false;
                result.destinations = destinations
                    .iter()
                    .map(|row| BoxBackupAt {
                        id: row.id,
                        name: row.name.clone(),
                        ok: false,
                        words: e.to_string(),
                        snapshot: String::new(),
                    })
                    .collect();
                self.finish_box_backup(&result).await?;
                return Err(e);
            }
        };
        for row in &destinations {
            let append_only =
                serde_json::from_str::<Target>(&row.target).is_ok_and(|t| t.append_only());
            let at = match self.box_to(row, &sealed, &passphrase).await {
                Ok(snapshot) => BoxBackupAt {
                    id: row.id,
                    name: row.name.clone(),
                    ok: true,
                    words: format!(
                        "Backed up to {} ({}).{}",
                        row.name,
                        crate::units::human_bytes(sealed.len() as u64),
                        if append_only {
                            " It only lets backups be added: old box backups, and the keys of earlier passphrases, stay there until removed on the server's side."
                        } else {
                            ""
                        }
                    ),
                    snapshot,
                },
                Err(words) => {
                    result.ok = false;
                    BoxBackupAt {
                        id: row.id,
                        name: row.name.clone(),
                        ok: false,
                        words,
                        snapshot: String::new(),
                    }
                }
            };
            result.destinations.push(at);
        }
        self.finish_box_backup(&result).await?;
        Ok(result)
    }

    /// Keeps how a box backup went, and tells the owner (audit, toast).
    async fn finish_box_backup(&self, result: &BoxBackup) -> Result<(), DeployError> {
        self.store
            .set_setting(LAST, serde_json::to_string(result).unwrap_or_default())
            .await?;
        let words = if result.ok {
            "The box's own settings and keys were backed up.".to_string()
        } else {
            let bad: Vec<&str> = result
                .destinations
                .iter()
                .filter(|d| !d.ok)
                .map(|d| d.words.as_str())
                .collect();
            format!("The box's own backup failed: {}", bad.join(" "))
        };
        self.audit("recovery.backup", words.clone()).await;
        self.events.publish(crate::events::Event::Toast {
            level: if result.ok {
                crate::events::Level::Success
            } else {
                crate::events::Level::Error
            },
            message: words,
        });
        Ok(())
    }

    /// The box's state, packed and sealed (Argon2id and the sealing off the runtime).
    async fn sealed_state(&self, passphrase: &Secret) -> Result<Vec<u8>, DeployError> {
        let data = self.box_state.data.clone();
        let scratch = data.join("tmp");
        tokio::fs::create_dir_all(&scratch)
            .await
            .map_err(|e| failed(format!("The box could not copy its settings: {e}")))?;
        let plain = bundle::collect(&data, &self.store, &scratch)
            .await
            .map_err(|e| failed(format!("The box could not copy its settings: {e}")))?;
        let pass = copy(passphrase);
        tokio::task::spawn_blocking(move || bundle::seal(&plain, &pass))
            .await
            .map_err(|e| failed(e.to_string()))?
            .map_err(|e| failed(e.to_string()))
    }

    /// One destination: its repository made when there is none, the passphrase added as a
    /// key when it does not open it (checked every time: a repository made again, or a
    /// destination added again under the same id, must never be taken for one that has it),
    /// the sealed state stored; then, when no app's backup uses the repository, the keys of
    /// earlier passphrases removed and the rules applied (`tidy_box`; else the weekly upkeep
    /// does it). Err: the owner's words.
    async fn box_to(
        &self,
        row: &DestinationRow,
        sealed: &[u8],
        passphrase: &Secret,
    ) -> Result<String, String> {
        let (target, creds) = self.credentials(row).await.map_err(|e| e.to_string())?;
        let local = self.local(true);
        let name = row.name.as_str();
        // Shared with the apps' backups; the weekly prune and check wait for it.
        let lock = self.destination_lock(row.id);
        let shared = lock.read().await;
        self.ensure_recovery_key(&target, &creds, name, passphrase)
            .await?;
        let out = local
            .run(
                &target,
                &creds,
                name,
                &[
                    "backup",
                    "--json",
                    "--stdin",
                    "--stdin-filename",
                    BUNDLE_NAME,
                    "--host",
                    BOX_HOST,
                    "--tag",
                    BOX_HOST,
                ],
                Some(sealed),
                &[],
                4 << 20,
            )
            .await
            .map_err(|f| f.words)?;
        let snapshot = String::from_utf8_lossy(&out)
            .lines()
            .find_map(|l| match restic::backup_line(l) {
                Some(restic::BackupLine::Summary { snapshot_id, .. }) => Some(snapshot_id),
                _ => None,
            })
            .ok_or_else(|| {
                format!("The backup to {name} did not say it finished, so it is not counted. Try “Back up the box now” again.")
            })?;
        drop(shared);
        if let Ok(_alone) = lock.try_write() {
            self.tidy_box(&target, &creds, name, passphrase).await;
        }
        Ok(snapshot)
    }

    /// The repository's keys (JSON), opened with the passphrase: answers at once (no index
    /// read), and fails with `WrongPassword` when the passphrase is not a key there.
    async fn list_keys(
        &self,
        target: &Target,
        creds: &Credentials,
        name: &str,
        passphrase: &Secret,
    ) -> Result<Vec<u8>, backup::local::Failed> {
        self.local(true)
            .run(
                target,
                &with_password(creds, passphrase),
                name,
                &["key", "list", "--json", "--no-lock"],
                None,
                &[],
                1 << 20,
            )
            .await
    }

    /// The passphrase as a key of the repository: `key list` opened with it answers at once
    /// (no index read); when it does not open, the key is added (the repository made first
    /// when there is none).
    async fn ensure_recovery_key(
        &self,
        target: &Target,
        creds: &Credentials,
        name: &str,
        passphrase: &Secret,
    ) -> Result<(), String> {
        let local = self.local(true);
        let opened = self.list_keys(target, creds, name, passphrase).await;
        match opened {
            Ok(_) => return Ok(()),
            Err(f) if f.why == Why::WrongPassword => {}
            Err(f) if matches!(f.why, Why::NoRepository | Why::NoBucket) => {
                local
                    .run(
                        target,
                        creds,
                        name,
                        &["init", "--repository-version", "2"],
                        None,
                        &[],
                        1 << 20,
                    )
                    .await
                    .map_err(|f| f.words)?;
            }
            Err(f) => return Err(f.words),
        }
        local
            .run(
                target,
                creds,
                name,
                &[
                    "key",
                    "add",
                    "--user",
                    KEY_USER,
                    "--host",
                    BOX_HOST,
                    "--new-password-file",
                    "{dir}/new-password",
                ],
                None,
                &[("new-password", passphrase.expose())],
                1 << 20,
            )
            .await
            .map_err(|f| f.words)
            .map(|_| ())
    }

    /// With the repository to itself (restic's `key remove` and `forget` lock it alone):
    /// removes the recovery keys of earlier passphrases (the one this passphrase opens is
    /// restic's `current`), then keeps the last 3 box backups and 7 daily, 4 weekly and 6
    /// monthly ones (the weekly prune frees what only forgotten ones held). Failures are
    /// noted: the backup itself is good, and the next run tries again.
    async fn tidy_box(
        &self,
        target: &Target,
        creds: &Credentials,
        name: &str,
        passphrase: &Secret,
    ) {
        if target.append_only() {
            // The server refuses removals (`Target::Rest`'s append_only); the box backup's
            // words say so to the owner.
            tracing::info!(destination = %name, "old box backups and recovery keys stay: the server only lets backups be added");
            return;
        }
        let local = self.local(true);
        #[derive(Deserialize)]
        struct Key {
            current: bool,
            id: String,
            #[serde(rename = "userName", default)]
            user: String,
        }
        match self.list_keys(target, creds, name, passphrase).await {
            Ok(listed) => {
                let text = String::from_utf8_lossy(&listed);
                let keys: Vec<Key> = text
                    .lines()
                    .find_map(|l| serde_json::from_str(l.trim()).ok())
                    .unwrap_or_default();
                let stale = keys.iter().filter(|k| {
                    !k.current
                        && k.user == KEY_USER
                        && !k.id.is_empty()
                        && k.id.chars().all(|c| c.is_ascii_hexdigit())
                });
                for k in stale {
                    if let Err(f) = local
                        .run(
                            target,
                            creds,
                            name,
                            &["key", "remove", &k.id],
                            None,
                            &[],
                            1 << 20,
                        )
                        .await
                    {
                        tracing::warn!(destination = %name, error = %f.words, "an old recovery key stays for now");
                    }
                }
            }
            Err(f) => {
                tracing::warn!(destination = %name, error = %f.words, "the recovery keys could not be listed")
            }
        }
        let _ = local
            .run(
                target,
                creds,
                name,
                &[
                    "forget",
                    "--host",
                    BOX_HOST,
                    "--tag",
                    BOX_HOST,
                    "--keep-last",
                    "3",
                    "--keep-daily",
                    "7",
                    "--keep-weekly",
                    "4",
                    "--keep-monthly",
                    "6",
                ],
                None,
                &[],
                1 << 20,
            )
            .await;
    }

    /// The weekly upkeep's part for the box's own backups at a destination (it holds the
    /// repository alone): `tidy_box`, once a box backup sealed with the current passphrase
    /// is stored there (never before: the old passphrase's key is the only way in until then).
    pub(super) async fn box_upkeep(&self, row: &DestinationRow) {
        let Ok(passphrase) = self.passphrase().await else {
            return;
        };
        let Some(last) = self.box_backup_status().await else {
            return;
        };
        let stored = last.at >= self.set_at().await
            && last.destinations.iter().any(|d| d.id == row.id && d.ok);
        if !stored {
            return;
        }
        let Ok((target, creds)) = self.credentials(row).await else {
            return;
        };
        self.tidy_box(&target, &creds, &row.name, &passphrase).await;
    }

    /// A new box: finds the newest box backup where the owner says that opens with the
    /// passphrase and can be started from, and returns it, still held in memory. Nothing in
    /// the data directory changes here ([`Deployer::stage_box`] does, once the caller has
    /// checked the box is still nobody's). An SSH server gets a key for the time of the
    /// restore (installed with the login's password, removed after, whatever happens).
    pub async fn fetch_box(&self, req: BoxRestore) -> Result<FetchedBox, DeployError> {
        let one = self
            .box_state
            .one
            .clone()
            .try_lock_owned()
            .map_err(|_| {
                refused("A restore is already running: wait a minute. When it works, the box starts again by itself; then sign in.")
            })?;
        backup::check_target(&req.target).map_err(|e| refused(e.to_string()))?;
        let passphrase = check_passphrase(&req.passphrase)?;
        let place = req.target.words();
        let mut temporary = None;
        let mut target = req.target.clone();
        let (ssh, s3, rest) = match &req.target {
            Target::Sftp {
                host, port, user, ..
            } => {
                let login = Login::Password {
                    user: user.clone(),
                    password: copy(&req.password),
                };
                // Everything that can fail before the key is on the server, first.
                let (line, private) = backup::sftp_only_key("homelab-restore").map_err(refused)?;
                let plain =
                    |e: ssh::SshError| refused(e.plain().replace("the device", host.as_str()));
                let session = ssh::connect(host, *port, &login, HostKeyPolicy::FirstUse)
                    .await
                    .map_err(plain)?;
                let known = restic::known_hosts_line(
                    host,
                    *port,
                    &session.host_key.to_openssh().unwrap_or_default(),
                );
                if let Err(e) = crate::devices::install_key(&session, &line).await {
                    session.close().await;
                    return Err(refused(e.to_string()));
                }
                temporary = Some((session, line));
                (Some((private, known)), None, None)
            }
            Target::S3 { .. } => {
                let bad = |s: &Secret| {
                    s.expose().is_empty() || s.expose().iter().any(|b| b.is_ascii_control())
                };
                if bad(&req.key_id) || bad(&req.secret) {
                    return Err(refused(
                        "Enter the access key id and the secret key of the storage.",
                    ));
                }
                (None, Some((copy(&req.key_id), copy(&req.secret))), None)
            }
            Target::Rest {
                url,
                append_only,
                certificate,
            } => {
                // The login name comes in `key_id` (see `BoxRestore`).
                let user = req
                    .key_id
                    .expose_str()
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                let password = req.password.expose_str().unwrap_or_default();
                backup::check_rest_login(&user, password).map_err(|e| refused(e.to_string()))?;
                let user = Secret::from_string(user);
                let rest_refused = |e: backup::rest::RestError| refused(e.to_string());
                let certificate = backup::rest::resolve_certificate(url, certificate, &place)
                    .await
                    .map_err(rest_refused)?;
                let found = backup::rest::probe(url, &user, &req.password, &certificate, &place)
                    .await
                    .map_err(rest_refused)?;
                if !found.repository {
                    return Err(refused(format!(
                        "There are no Homelab backups at {place}. Check the address and folder against your recovery sheet."
                    )));
                }
                target = Target::Rest {
                    url: url.clone(),
                    append_only: *append_only,
                    certificate: certificate.clone(),
                };
                let login = backup::RestLogin {
                    url: url.clone(),
                    user,
                    password: copy(&req.password),
                    certificate,
                };
                (None, None, Some(login))
            }
            Target::Disk { path, .. } => {
                // The box reads the disk itself (`-r <folder>`): nothing to open first.
                let (folder, checked) = self.box_disk_folder(path).await?;
                target = Target::Disk {
                    path: folder.to_string_lossy().to_string(),
                    disk: checked.words(),
                };
                if !folder.join("config").is_file() {
                    return Err(refused(format!(
                        "There are no Homelab backups on {} (nothing at {}). Plug in the disk your recovery sheet names, and choose it.",
                        checked.words(),
                        folder.display()
                    )));
                }
                (None, None, None)
            }
        };
        let creds = Credentials {
            password: copy(&passphrase),
            ssh,
            s3,
            rest,
            disk: None,
        };
        let result = self.newest_box(&target, &creds, &place, &passphrase).await;
        if let Some((session, line)) = temporary {
            // The restored database brings the old box's own key for this server back.
            let _ = crate::devices::remove_key(&session, &line).await;
            session.close().await;
        }
        let (manifest, files) = result?;
        Ok(FetchedBox {
            manifest,
            files,
            _one: one,
        })
    }

    /// Writes a fetched box backup beside the data, to be put in place at the next start.
    pub async fn stage_box(&self, fetched: FetchedBox) -> Result<Manifest, DeployError> {
        let data = self.box_state.data.clone();
        let manifest = fetched.manifest.clone();
        tokio::task::spawn_blocking(move || {
            bundle::stage(&data, &fetched.manifest, &fetched.files)
        })
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(format!("The box could not keep the restored files: {e}")))?;
        tracing::info!(
            made_at = manifest.made_at,
            "the box's backup is restored; starting again with it"
        );
        Ok(manifest)
    }

    /// The newest box backup at the place that opens with the passphrase and can be started
    /// from. Any device can write to the repository, so a newer snapshot that does not open
    /// (planted, or damaged) does not hide an older good one: the few newest are tried.
    async fn newest_box(
        &self,
        target: &Target,
        creds: &Credentials,
        place: &str,
        passphrase: &Secret,
    ) -> Result<(Manifest, bundle::Files), DeployError> {
        let local = self.local(false);
        let explain = |f: backup::local::Failed| match f.why {
            Why::WrongPassword => refused(format!(
                "This recovery passphrase does not open the backups at {place}. Check it against your recovery sheet (capitals count), and that this is the place its backups went."
            )),
            Why::NoRepository | Why::NoBucket => refused(format!(
                "There are no Homelab backups at {place}. Check the address and folder against your recovery sheet."
            )),
            _ => failed(f.words),
        };
        let out = local
            .run(
                target,
                creds,
                place,
                &[
                    "snapshots",
                    "--json",
                    "--no-lock",
                    "--host",
                    BOX_HOST,
                    "--tag",
                    BOX_HOST,
                ],
                None,
                &[],
                8 << 20,
            )
            .await
            .map_err(explain)?;
        let mut list =
            restic::snapshots(&String::from_utf8_lossy(&out)).map_err(|e| failed(e.to_string()))?;
        list.retain(|s| restic::valid_snapshot_id(&s.id));
        list.sort_by_key(|s| {
            std::cmp::Reverse(
                chrono::DateTime::parse_from_rfc3339(&s.time)
                    .map(|t| t.timestamp())
                    .unwrap_or(0),
            )
        });
        if list.is_empty() {
            return Err(refused(format!(
                "The backups at {place} hold no backup of a Homelab box yet. Choose the place your old box backed itself up to."
            )));
        }
        let mut why = String::new();
        for snapshot in list.iter().take(TRIED_SNAPSHOTS) {
            let dumped = local
                .run(
                    target,
                    creds,
                    place,
                    &[
                        "dump",
                        "--no-lock",
                        &snapshot.id,
                        &format!("/{BUNDLE_NAME}"),
                    ],
                    None,
                    &[],
                    bundle::MAX_BUNDLE + 4096,
                )
                .await;
            // One that cannot be read (damaged, or not a box backup at all) does not stop the
            // older ones being tried.
            let sealed = match dumped {
                Ok(sealed) => sealed,
                Err(f) => {
                    tracing::info!(snapshot = %snapshot.short_id, why = %f.words, "a box backup that cannot be read");
                    if why.is_empty() {
                        why = f.words;
                    }
                    continue;
                }
            };
            let pass = copy(passphrase);
            let scratch = self.box_state.data.join("tmp");
            let opened =
                tokio::task::spawn_blocking(move || open_checked(&sealed, &pass, &scratch))
                    .await
                    .map_err(|e| failed(e.to_string()))?;
            match opened {
                Ok(found) => return Ok(found),
                Err(words) => {
                    tracing::info!(snapshot = %snapshot.short_id, why = %words, "a box backup that cannot be restored");
                    if why.is_empty() {
                        why = words;
                    }
                }
            }
        }
        Err(refused(format!(
            "The newest box backups at {place} cannot be restored. The newest one: {why}"
        )))
    }

    /// The scheduled box backup: at the default schedule's times, once a passphrase is set,
    /// in the background (restic runs on the box, so it never waits for an app's backup).
    pub(super) async fn box_backup_due<Tz: chrono::TimeZone>(
        self: &std::sync::Arc<Self>,
        now: &chrono::DateTime<Tz>,
        schedule: &str,
        handled: Option<i64>,
    ) {
        if !self.recovery_set().await {
            return;
        }
        let Ok(Some(cron)) = crate::backup::schedule::parse(schedule) else {
            return;
        };
        use crate::backup::schedule::Due;
        let t = match crate::backup::schedule::due(&cron, handled, now) {
            Due::Wait => return,
            Due::Remember(t) => {
                let _ = self
                    .store
                    .set_backup_schedule_handled(BOX_HOST.to_string(), t.timestamp())
                    .await;
                return;
            }
            Due::Run(t) => t,
        };
        let _ = self
            .store
            .set_backup_schedule_handled(BOX_HOST.to_string(), t.timestamp())
            .await;
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.back_up_box().await {
                tracing::warn!(error = %e, "the box's scheduled backup did not run");
            }
        });
    }
}
