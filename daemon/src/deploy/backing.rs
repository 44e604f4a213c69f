//! Backing up and restoring apps (jobs of kind `backup` and `restore`), and the destinations
//! they use. restic runs on the app's device in a one-off container of the pinned image
//! (`backup::restic`): the app's volumes are mounted read-only for a backup, so the data goes
//! from the device to the destination and never crosses the box.
//!
//! A backup of an app whose database is in the device's shared instance dumps that database
//! first (as the app's own login, into a volume of its own), so the snapshot holds files and
//! database from one moment; an app with its own database container is stopped while its
//! files are read, and started again whatever happens.
//!
//! A restore in place restores into new volumes while the app still runs, then stops it and
//! swaps each volume's data with the restored one (renames on the device's disk, instant and
//! their own inverse), starts it and checks it; a failed check swaps back, so the owner never
//! ends up with neither. The old data goes once the app answers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::job::Job;
use super::journal::Undo;
use super::{DeployError, Deployer, DeploymentState, Remote, project_name};
use crate::backup::restic::{self, BackupLine, ResticFailure};
use crate::backup::{self, BackupTask, Credentials, Target};
use crate::docker::run::{OneOff, Stream};
use crate::secrets::Secret;
use crate::ssh::{self, HostKeyPolicy, Login, RemoteCommand};
use crate::store::DestinationRow;
use crate::units::human_bytes;

/// A backup of one app may read a lot (photos); restic reports progress meanwhile, and a run
/// that outlives this is stopped (a day: a first backup of a terabyte over a slow link).
const BACKUP_DEADLINE: Duration = Duration::from_secs(24 * 3600);
/// Listing snapshots, checking a destination: small reads.
const QUICK_DEADLINE: Duration = Duration::from_secs(120);
/// Dumping a shared database to the device's disk.
const DUMP_DEADLINE: Duration = Duration::from_secs(3 * 3600);
/// Progress is written (and sent to pages) at most this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// restic's forget (the keep rules) runs for an app at a destination at most this often
/// (seconds), not after every backup: each costs a second or more (it locks the repository
/// and reads every snapshot), which hourly policies and "Back up now" paid on every run. A
/// day less some slack, so a backup at a fixed time each day applies the rules every day even
/// when it ends a little earlier than the day before.
///
/// A snapshot kept up to a day beyond its rule is harmless: the rules only say which backups
/// must stay, and a later forget drops the same snapshots an earlier one would have (each rule
/// keeps the newest per hour, day, week or month, and newer snapshots only push older ones
/// out), so the same ones end up kept. Meanwhile the extra one is a sound backup that restores
/// like any other; its data is mostly shared with its neighbours, and what it alone holds is
/// freed only at the weekly prune anyway, so the delay at most moves that to the next prune.
/// The same holds for the app's first backup at a destination, which forgets nothing: the
/// repository holds no earlier backup of the app from this box. A policy change clears this
/// memory (the store), so new rules apply at the next backup.
const FORGET_EVERY: i64 = 20 * 3600;
/// Names of destinations, as the owner sees them.
const MAX_NAME: usize = 60;

/// A snapshot of an app, for its page.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotView {
    pub destination_id: i64,
    pub destination: String,
    pub id: String,
    pub short_id: String,
    /// RFC 3339, as restic recorded it.
    pub time: String,
}

/// Swaps each live volume's data with its staging volume's, or back (see the module header).
/// Before the first rename, the marker beside the live volume's data records the restored
/// data's inode number; renames keep inode numbers, so whichever way a power cut left things,
/// the live data is the restored one exactly when its inode is the recorded one. A swap cut
/// short (its `_swap` folder left) is finished first; running it again is safe. The volumes
/// must be on one file system (a rename, never a copy).
/// $1 forward|back, $2 the job's id, then pairs of volume names: live, staging.
const SWAP: &str = r#"dir=$1; id=$2; shift 2
while [ $# -ge 2 ]; do
  L=/volumes/$1; S=/volumes/$2; shift 2
  m="$L/homelab-restored-$id"
  if [ -e "$L/_swap" ]; then
    [ -e "$L/_data" ] || mv "$S/_data" "$L/_data" || exit 4
    [ -e "$S/_data" ] && { echo "both $L/_swap and $S/_data exist" >&2; exit 4; }
    mv "$L/_swap" "$S/_data" || exit 4
  fi
  [ -d "$L/_data" ] && [ -d "$S/_data" ] || { echo "no data folder in $L or $S" >&2; exit 3; }
  [ "$(stat -c %d "$L/_data")" = "$(stat -c %d "$S/_data")" ] && [ "$(stat -c %d "$L")" = "$(stat -c %d "$S/_data")" ]     || { echo "$L and $S are not on one file system" >&2; exit 5; }
  if [ "$dir" = forward ] && [ ! -e "$m" ]; then
    stat -c %i "$S/_data" > "$m.tmp" && mv "$m.tmp" "$m" && sync || exit 4
  fi
  [ -e "$m" ] || continue
  restored=$(cat "$m")
  live=$(stat -c %i "$L/_data")
  if [ "$dir" = forward ] && [ "$live" = "$restored" ]; then continue; fi
  if [ "$dir" = back ] && [ "$live" != "$restored" ]; then continue; fi
  mv "$L/_data" "$L/_swap" && mv "$S/_data" "$L/_data" && mv "$L/_swap" "$S/_data" || exit 4
done
sync
"#;

/// Makes the folder an SFTP destination's repository lives in, and checks it can be written.
/// $1 the folder.
const MAKE_FOLDER: &str = r#"mkdir -p -- "$1" && test -w "$1" && echo ready"#;

/// An app's database in the shared instance, saved or loaded by the app's own login from a
/// container of the instance's image on its network; the password is the first line on stdin.
/// PostgreSQL's is an archive (`pg_dump -Fc`) that `pg_restore` loads itself, so nothing in
/// the app's data can become a client command; MariaDB's client loads with `--sandbox` for
/// the same reason. Loading is one transaction (PostgreSQL) and stops at the first error.
/// $1 dump|load|has, $2 postgres|mariadb, $3 the instance's host name, $4 the database (and
/// login). `has` only says whether a dump is there (exit 91 when not).
const DATABASE_TOOL: &str = r#"IFS= read -r pw || exit 90
case $1-$2 in
  has-postgres) test -f /dump/database.pgdump || exit 91; exit 0 ;;
  has-mariadb) test -f /dump/database.sql || exit 91; exit 0 ;;
  dump-postgres) PGPASSWORD=$pw exec pg_dump -Fc -h "$3" -U "$4" -d "$4" --no-owner --no-privileges -f /dump/database.pgdump ;;
  dump-mariadb) MYSQL_PWD=$pw exec mariadb-dump -h "$3" -u "$4" --single-transaction --routines --triggers --result-file=/dump/database.sql "$4" ;;
  load-postgres) test -f /dump/database.pgdump || exit 91
    PGPASSWORD=$pw exec pg_restore -h "$3" -U "$4" -d "$4" --no-owner --no-privileges --exit-on-error --single-transaction /dump/database.pgdump ;;
  load-mariadb) test -f /dump/database.sql || exit 91
    MYSQL_PWD=$pw exec mariadb --sandbox -h "$3" -u "$4" "$4" < /dump/database.sql ;;
esac
exit 2
"#;

impl Deployer {
    // ---- destinations ----

    /// Adds an SSH server (a NAS) as a destination: logs in once with the owner's password,
    /// pins the server's key, makes the folder, and installs a key of Homelab's own that may
    /// only use SFTP; the password is not kept.
    pub async fn add_sftp_destination(
        &self,
        name: &str,
        target: Target,
        password: Secret,
    ) -> Result<i64, DeployError> {
        let name = check_name(name)?;
        backup::check_target(&target).map_err(refused)?;
        let Target::Sftp {
            host,
            port,
            user,
            path,
        } = &target
        else {
            return Err(DeployError::BackupRefused("Not an SSH server.".into()));
        };
        let login = Login::Password {
            user: user.clone(),
            password,
        };
        // The owner's words for a login failure, about this server rather than "the device".
        let plain =
            |e: ssh::SshError| DeployError::BackupRefused(e.plain().replace("the device", host));
        let session = ssh::connect(host, *port, &login, HostKeyPolicy::FirstUse)
            .await
            .map_err(plain)?;
        let host_key = session.host_key.to_openssh().unwrap_or_default();
        let made = session
            .exec(
                &RemoteCommand::script(MAKE_FOLDER, [path.as_str()]),
                None,
                ssh::EXEC_TIMEOUT,
            )
            .await
            .map_err(plain)?;
        if made.stdout_text().trim() != "ready" {
            session.close().await;
            return Err(DeployError::BackupRefused(format!(
                "The folder {path} could not be made or written on {host} as {user}. Choose a folder this login owns, or give it write access."
            )));
        }
        // SFTP only: the key cannot run commands, forward ports or open a terminal.
        let (line, private) =
            backup::sftp_only_key("homelab-backup").map_err(DeployError::BackupRefused)?;
        crate::devices::install_key(&session, &line)
            .await
            .map_err(|e| DeployError::BackupRefused(e.to_string()))?;
        let saved = self
            .save_destination(
                &name,
                &target,
                host_key,
                vec![(backup::PURPOSE_SSH_KEY, private.expose().to_vec())],
            )
            .await;
        if saved.is_err() {
            // Nothing half-done: the key goes again.
            let _ = crate::devices::remove_key(&session, &line).await;
        }
        session.close().await;
        saved
    }

    /// Adds S3-compatible storage as a destination, its keys sealed.
    pub async fn add_s3_destination(
        &self,
        name: &str,
        target: Target,
        key_id: Secret,
        secret: Secret,
    ) -> Result<i64, DeployError> {
        let name = check_name(name)?;
        backup::check_target(&target).map_err(refused)?;
        // Each goes on its own line of restic's stdin: a line break would shift the others.
        let bad =
            |s: &Secret| s.expose().is_empty() || s.expose().iter().any(|b| b.is_ascii_control());
        if bad(&key_id) || bad(&secret) {
            return Err(DeployError::BackupRefused(
                "Enter the access key id and the secret key your storage gave you.".into(),
            ));
        }
        self.save_destination(
            &name,
            &target,
            String::new(),
            vec![
                (backup::PURPOSE_S3_KEY_ID, key_id.expose().to_vec()),
                (backup::PURPOSE_S3_SECRET, secret.expose().to_vec()),
            ],
        )
        .await
    }

    /// Adds a restic REST server as a destination: the login is tried there now (a server
    /// that does not answer or refuses it is said at once, not at the first backup), its
    /// certificate pinned when no public authority signed it (or checked against the one the
    /// owner gave, `backup::rest::resolve_certificate`), a server that only lets backups be
    /// added is noted as such (whatever the owner ticked: the box must not try to remove
    /// anything there), and the login sealed.
    pub async fn add_rest_destination(
        &self,
        name: &str,
        target: Target,
        user: Secret,
        password: Secret,
    ) -> Result<i64, DeployError> {
        let name = check_name(name)?;
        backup::check_target(&target).map_err(refused)?;
        let Target::Rest {
            url,
            append_only,
            certificate,
        } = target
        else {
            return Err(DeployError::BackupRefused("Not a REST server.".into()));
        };
        let (Some(u), Some(p)) = (user.expose_str(), password.expose_str()) else {
            return Err(DeployError::BackupRefused(
                "The login name and password must be text.".into(),
            ));
        };
        backup::check_rest_login(u, p).map_err(refused)?;
        let rest_refused = |e: backup::rest::RestError| DeployError::BackupRefused(e.to_string());
        let certificate = backup::rest::resolve_certificate(&url, &certificate, &name)
            .await
            .map_err(rest_refused)?;
        let found = backup::rest::probe(&url, &user, &password, &certificate, &name)
            .await
            .map_err(rest_refused)?;
        let target = Target::Rest {
            url,
            append_only: append_only || found.append_only,
            certificate,
        };
        self.save_destination(
            &name,
            &target,
            String::new(),
            vec![
                (backup::PURPOSE_REST_USER, user.expose().to_vec()),
                (backup::PURPOSE_REST_PASSWORD, password.expose().to_vec()),
            ],
        )
        .await
    }

    /// A REST server's login name, for the recovery sheet (None for other kinds, or when it
    /// cannot be read).
    pub async fn rest_login_name(&self, row: &DestinationRow) -> Option<String> {
        match self.credentials(row).await.ok()?.1.rest {
            Some(r) => r.user.expose_str().map(str::to_string),
            None => None,
        }
    }

    /// "Test connection" for a REST server, asked from the box before restic runs: a server
    /// that does not answer, a refused login or a changed certificate in words; then what
    /// the check adds to "works" (append-only, the pinned certificate).
    async fn ask_rest_server(
        &self,
        row: &DestinationRow,
        target: &Target,
        login: &backup::RestLogin,
    ) -> Result<String, DeployError> {
        let found = backup::rest::probe(
            &login.url,
            &login.user,
            &login.password,
            &login.certificate,
            &row.name,
        )
        .await
        .map_err(|e| DeployError::BackupRefused(e.to_string()))?;
        let mut note = String::new();
        match (target.append_only(), found.append_only) {
            (true, _) => note.push_str(
                " It only lets backups be added, so Homelab never removes old backups there: remove them on the server's side when it fills up.",
            ),
            (false, true) => note.push_str(
                " It only lets backups be added, but was added as a server that lets them be removed: remove the destination and add it again, so Homelab stops trying to remove old backups there.",
            ),
            (false, false) => {}
        }
        if let Some(fp) = backup::rest::fingerprint(&login.certificate) {
            note.push_str(&format!(" Its own certificate is pinned (SHA-256 {fp})."));
        }
        Ok(note)
    }

    /// Stores a destination with a new repository password and its other secrets, sealed,
    /// in one transaction.
    async fn save_destination(
        &self,
        name: &str,
        target: &Target,
        host_key: String,
        secrets: Vec<(&'static str, Vec<u8>)>,
    ) -> Result<i64, DeployError> {
        let vault = self.vault.clone();
        let password = super::render::generate_secret(32);
        let id = self
            .store
            .add_backup_destination(
                name.to_string(),
                serde_json::to_string(target).unwrap_or_default(),
                host_key,
                move |id| {
                    let owner = backup::secret_owner(id);
                    let mut all = vec![(
                        owner.clone(),
                        backup::PURPOSE_PASSWORD.to_string(),
                        vault.seal(password.as_bytes(), &owner, backup::PURPOSE_PASSWORD),
                    )];
                    for (purpose, plain) in secrets {
                        all.push((
                            owner.clone(),
                            purpose.to_string(),
                            vault.seal(&plain, &owner, purpose),
                        ));
                    }
                    all
                },
            )
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict(_) => DeployError::BackupRefused(format!(
                    "There is already a destination called “{name}”. Choose another name."
                )),
                e => e.into(),
            })?;
        self.audit(
            "backup.destination_added",
            format!("Added the backup destination {name} ({target})"),
        )
        .await;
        Ok(id)
    }

    /// Removes a destination from Homelab (the backups stay where they are).
    pub async fn remove_destination(&self, id: i64) -> Result<(), DeployError> {
        let row = self.destination(id).await?;
        self.store
            .delete_backup_destination(id, backup::secret_owner(id))
            .await?;
        self.audit(
            "backup.destination_removed",
            format!("Removed the backup destination {}", row.name),
        )
        .await;
        Ok(())
    }

    pub(super) async fn destination(&self, id: i64) -> Result<DestinationRow, DeployError> {
        self.store
            .backup_destination(id)
            .await?
            .ok_or(DeployError::NotFound)
    }

    /// The destination's address and what opens it.
    pub(super) async fn credentials(
        &self,
        row: &DestinationRow,
    ) -> Result<(Target, Credentials), DeployError> {
        let target: Target = serde_json::from_str(&row.target).map_err(|e| {
            DeployError::BackupRefused(format!("The destination is unreadable: {e}"))
        })?;
        let owner = backup::secret_owner(row.id);
        let open = |purpose: &'static str| {
            let owner = owner.clone();
            async move {
                let sealed = self
                    .store
                    .secret(owner.clone(), purpose)
                    .await?
                    .ok_or_else(|| DeployError::SecretNotPrepared(purpose.to_string()))?;
                Ok::<Secret, DeployError>(self.vault.open(&sealed, &owner, purpose)?)
            }
        };
        let password = open(backup::PURPOSE_PASSWORD).await?;
        let (ssh, s3, rest) = match &target {
            Target::Sftp { host, port, .. } => (
                Some((
                    open(backup::PURPOSE_SSH_KEY).await?,
                    restic::known_hosts_line(host, *port, &row.host_key),
                )),
                None,
                None,
            ),
            Target::S3 { .. } => (
                None,
                Some((
                    open(backup::PURPOSE_S3_KEY_ID).await?,
                    open(backup::PURPOSE_S3_SECRET).await?,
                )),
                None,
            ),
            Target::Rest {
                url, certificate, ..
            } => (
                None,
                None,
                Some(backup::RestLogin {
                    url: url.clone(),
                    user: open(backup::PURPOSE_REST_USER).await?,
                    password: open(backup::PURPOSE_REST_PASSWORD).await?,
                    certificate: certificate.clone(),
                }),
            ),
            Target::Disk { .. } => (None, None, None),
        };
        let disk = match &target {
            Target::Disk { path, disk } => {
                self.disk_present(&row.name, path, disk).await?;
                Some(backup::DiskAccess {
                    root: path.into(),
                    may_remove: false,
                })
            }
            _ => None,
        };
        Ok((
            target,
            Credentials {
                password,
                ssh,
                s3,
                rest,
                disk,
            },
        ))
    }

    /// A disk on the box is plugged in (its folder is there, on a disk that is not the box's
    /// own: with the disk unplugged, the folder it was mounted on is empty). On a blocking
    /// thread: a disk that stopped answering must not hold up the runtime.
    pub(super) async fn disk_present(
        &self,
        name: &str,
        path: &str,
        disk: &str,
    ) -> Result<(), DeployError> {
        let folder = std::path::PathBuf::from(path);
        let data = self.box_state.data.clone();
        let unplugged = format!(
            "The backup disk of {name} ({disk}) is not plugged in. Plug it into the box and try again."
        );
        tokio::task::spawn_blocking(move || {
            if !folder.is_dir() {
                return Err(unplugged);
            }
            backup::disk::check_folder(&folder, &data).map(|_| ())
        })
        .await
        .map_err(|e| DeployError::BackupRefused(e.to_string()))?
        .map_err(DeployError::BackupRefused)
    }

    /// The repository folder for a disk (or folder) the owner chose on the box, checked.
    pub(super) async fn box_disk_folder(
        &self,
        chosen: &str,
    ) -> Result<(std::path::PathBuf, backup::disk::BoxDisk), DeployError> {
        let chosen = std::path::PathBuf::from(chosen.trim());
        let data = self.box_state.data.clone();
        tokio::task::spawn_blocking(move || backup::disk::repository_folder(&chosen, &data))
            .await
            .map_err(|e| DeployError::BackupRefused(e.to_string()))?
            .map_err(DeployError::BackupRefused)
    }

    /// The disks plugged into the box that may hold backups (not the box's own card).
    pub async fn box_disks(&self) -> Vec<backup::disk::BoxDisk> {
        let data = self.box_state.data.clone();
        tokio::task::spawn_blocking(move || backup::disk::disks(&data))
            .await
            .unwrap_or_default()
    }

    /// Adds a disk plugged into the box as a destination: the folder `homelab-backups` on it
    /// (or the folder given in Advanced mode), never on the box's own card or disk, made and
    /// checked writable now.
    pub async fn add_disk_destination(&self, name: &str, folder: &str) -> Result<i64, DeployError> {
        let name = check_name(name)?;
        let (folder, checked) = self.box_disk_folder(folder).await?;
        let target = Target::Disk {
            path: folder.to_string_lossy().to_string(),
            disk: checked.words(),
        };
        backup::check_target(&target).map_err(refused)?;
        let probe = folder.join(".homelab-write-test");
        let writable = {
            let folder = folder.clone();
            tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&folder)?;
                std::fs::write(&probe, b"ok")?;
                std::fs::remove_file(&probe)
            })
            .await
            .map_err(|e| DeployError::BackupRefused(e.to_string()))?
        };
        if let Err(e) = writable {
            return Err(DeployError::BackupRefused(format!(
                "Homelab could not write to {}: {e}. If the disk is write-protected, unlock it; otherwise reformat it on a computer and plug it in again.",
                checked.words()
            )));
        }
        self.save_destination(&name, &target, String::new(), Vec::new())
            .await
    }

    /// "Test connection": from a device, opens the destination's repository, or makes it
    /// the first time. Records and returns the outcome in words.
    pub async fn check_destination(&self, id: i64) -> Result<String, DeployError> {
        let row = self.destination(id).await?;
        // Any failure, also before restic runs (no device answers), is this check's outcome.
        let outcome = async {
            let (target, creds) = self.credentials(&row).await?;
            let note = match &creds.rest {
                Some(login) => self.ask_rest_server(&row, &target, login).await?,
                None => String::new(),
            };
            let remote = self.any_device().await?;
            let made = self
                .open_repository(
                    &remote,
                    &row,
                    &target,
                    &creds,
                    &format!("homelab-restic-check-{}", unique()),
                )
                .await?;
            self.measure_space(&remote, &row).await;
            Ok::<(bool, String), DeployError>((made, note))
        }
        .await;
        let (ok, words) = match &outcome {
            Ok((made, note)) if *made => (
                true,
                format!(
                    "{} works: Homelab made its backup store there.{note}",
                    row.name
                ),
            ),
            Ok((_, note)) => (true, format!("{} works.{note}", row.name)),
            Err(e) => (false, e.to_string()),
        };
        self.store
            .set_destination_check(id, ok, words.clone())
            .await?;
        outcome.map(|_| words)
    }

    /// Opens the repository (`cat config`), making it when there is none yet; true when
    /// it was made.
    async fn open_repository(
        &self,
        remote: &Remote,
        row: &DestinationRow,
        target: &Target,
        creds: &Credentials,
        container: &str,
    ) -> Result<bool, DeployError> {
        self.ensure_restic(remote).await?;
        // Without a lock: it only reads, and a destination whose disk is full can still be
        // opened (and then say it is full) where restic could not write its lock file.
        let spec = self.restic_spec(
            container,
            target,
            &["cat", "config", "--no-lock"],
            Vec::new(),
        );
        let opened = self
            .restic_noted(
                remote,
                &spec,
                creds,
                &format!(
                    "Open the backups at {}: restic cat config --no-lock",
                    row.name
                ),
            )
            .await;
        match opened {
            Ok(_) => Ok(false),
            Err(f) if f.no_repository() => {
                let spec = self.restic_spec(
                    container,
                    target,
                    &["init", "--repository-version", "2"],
                    Vec::new(),
                );
                self.restic_noted(
                    remote,
                    &spec,
                    creds,
                    &format!("Make the backup store at {}: restic init", row.name),
                )
                .await
                .map(|_| true)
                .map_err(|f| self.restic_error(remote, f, &row.name))
            }
            Err(f) => Err(self.restic_error(remote, f, &row.name)),
        }
    }

    /// Runs a short restic command and notes it in "What I did".
    pub(super) async fn restic_noted(
        &self,
        remote: &Remote,
        spec: &OneOff,
        creds: &Credentials,
        label: &str,
    ) -> Result<crate::docker::run::Ended, ResticFailure> {
        let t = Instant::now();
        let ran = self
            .run_restic(remote, spec, creds, QUICK_DEADLINE, |_, _| {})
            .await;
        remote
            .note(
                label.to_string(),
                outcome_words(&ran),
                t,
                failure_detail(&ran),
            )
            .await;
        ran
    }

    /// A device to run restic on for work that is not an app's: the first that answers.
    pub(super) async fn any_device(&self) -> Result<Remote, DeployError> {
        let mut last = None;
        for device in self.store.devices().await?.into_iter().take(3) {
            match Remote::connect(&self.devices, device, None).await {
                Ok(r) => return Ok(r),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            DeployError::BackupRefused(
                "Add a device first: backups are made and checked from your devices.".into(),
            )
        }))
    }

    /// The labels of this daemon's one-off backup containers (`what` they are for).
    pub(super) fn backup_labels(&self, what: &str) -> HashMap<String, String> {
        HashMap::from([
            (restic::LABEL.to_string(), what.to_string()),
            (restic::OWNER_LABEL.to_string(), self.backup_owner.clone()),
        ])
    }

    /// Runs restic on the device; a disk on the box is served to it for this run alone
    /// (`disk_server`), with the rights its credentials carry.
    pub(super) async fn run_restic(
        &self,
        remote: &Remote,
        spec: &OneOff,
        creds: &Credentials,
        deadline: std::time::Duration,
        on_line: impl FnMut(crate::docker::run::Stream, &str),
    ) -> Result<crate::docker::run::Ended, ResticFailure> {
        let Some(access) = &creds.disk else {
            return restic::run(&remote.docker, spec, creds, deadline, on_line).await;
        };
        if access.may_remove {
            // Removing (forget, prune, the upkeep's check and unlock) is the box's alone: it
            // runs them on its disk itself, so no device ever holds a login that may remove.
            return self.run_on_box(spec, creds, deadline, on_line).await;
        }
        let device = &remote.device.name;
        // A connection of its own: what connects to the forwarded port can stall only it.
        let session = self
            .devices
            .pool
            .separate_session(&remote.device)
            .await
            .map_err(|e| {
                tracing::warn!(device = %device, error = %e, "no connection for the backup disk");
                ResticFailure::Disk(format!(
                    "{device} did not take a second connection for the backup disk: is it on and connected? Then try again."
                ))
            })?;
        let tunnel = match session.forward_back().await {
            Ok(f) => backup::disk_server::Tunnel::start(Arc::new(session), f, access),
            Err(e) => {
                tracing::warn!(device = %device, error = %e, "the device refused to forward a port back");
                session.close().await;
                return Err(ResticFailure::Disk(format!(
                    "{device} could not reach the backup disk through the box: its remote login does not let Homelab open a way back. Allow it on the device (in its SSH server's settings: AllowTcpForwarding yes), then try again."
                )));
            }
        };
        let through = tunnel.credentials(&creds.password);
        let ran = restic::run(&remote.docker, spec, &through, deadline, on_line).await;
        drop(tunnel);
        ran
    }

    /// A restic command meant for a device, run by the box on a disk of its own instead; what
    /// it prints and how it failed come back as a device's run would give them.
    async fn run_on_box(
        &self,
        spec: &OneOff,
        creds: &Credentials,
        deadline: std::time::Duration,
        mut on_line: impl FnMut(crate::docker::run::Stream, &str),
    ) -> Result<crate::docker::run::Ended, ResticFailure> {
        let (Some(args), Some(access)) = (restic::command_of(spec), &creds.disk) else {
            return Err(ResticFailure::Disk(
                "The box could not run that on its disk.".into(),
            ));
        };
        let target = Target::Disk {
            path: access.root.to_string_lossy().to_string(),
            disk: String::new(),
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let local = backup::local::Local {
            program: &self.box_state.restic,
            data: &self.box_state.data,
            cached: true,
            deadline,
        };
        match local
            .run(&target, creds, "the disk", &args, None, &[], 4 << 20)
            .await
        {
            Ok(out) => {
                for line in String::from_utf8_lossy(&out).lines() {
                    on_line(crate::docker::run::Stream::Out, line);
                }
                Ok(crate::docker::run::Ended {
                    exit_code: Some(0),
                    stderr_tail: Vec::new(),
                })
            }
            Err(f) if f.stderr.is_empty() => Err(ResticFailure::Disk(f.words)),
            Err(f) => Err(ResticFailure::Said(crate::docker::run::Ended {
                exit_code: Some(1),
                stderr_tail: f.stderr,
            })),
        }
    }

    /// A restic run as a one-off container of this daemon's.
    pub(super) fn restic_spec(
        &self,
        name: &str,
        target: &Target,
        command: &[&str],
        binds: Vec<String>,
    ) -> OneOff {
        let mut spec = restic::spec(name, target, command, binds);
        spec.labels = self.backup_labels("restic");
        spec
    }

    /// Once per device since this daemon started: removes the backup containers an earlier
    /// start left there (their runs were closed as failed when it started). A restic still
    /// running there would hold its lock and could still write a snapshot counted as failed.
    pub(super) async fn sweep_backup_leftovers(&self, remote: &Remote) -> Result<(), DeployError> {
        let first = self
            .backup_swept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(remote.device.id);
        if !first {
            return Ok(());
        }
        match crate::docker::run::remove_left_over(
            &remote.docker,
            restic::LABEL,
            restic::OWNER_LABEL,
            &self.backup_owner,
        )
        .await
        {
            Ok(0) => Ok(()),
            Ok(n) => {
                tracing::info!(device = %remote.device.name, n, "removed backup containers left by an earlier start");
                Ok(())
            }
            Err(e) => {
                // Tried again next time.
                self.backup_swept
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&remote.device.id);
                Err(self.docker_error(remote, e))
            }
        }
    }

    /// At start: every device's left-overs swept (those that answer; the others at their
    /// first backup work).
    pub(super) async fn sweep_all_backup_leftovers(&self) {
        for device in self.store.devices().await.unwrap_or_default() {
            if let Ok(remote) = Remote::connect(&self.devices, device, None).await {
                let _ = self.sweep_backup_leftovers(&remote).await;
            }
        }
    }

    /// The lock backups (shared) and the box's upkeep (alone) take on a destination.
    pub(super) fn destination_lock(&self, id: i64) -> Arc<tokio::sync::RwLock<()>> {
        let mut locks = self
            .destination_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Removed destinations' locks go with the next one asked for.
        if locks.len() > 64 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(id).or_default().clone()
    }

    /// Pulls the restic image onto the device unless it is there. The first time since this
    /// daemon started, it also removes backup containers an earlier start left on the device
    /// (their runs were closed as failed when it started): a restic still running there would
    /// hold its lock and read the disk for nothing.
    pub(super) async fn ensure_restic(&self, remote: &Remote) -> Result<(), DeployError> {
        self.sweep_backup_leftovers(remote).await?;
        let present = crate::docker::project::image_present(&remote.docker, backup::RESTIC_IMAGE)
            .await
            .map_err(|e| self.docker_error(remote, e))?;
        if !present {
            let (tx, _rx) = tokio::sync::watch::channel((0, 0));
            let t = Instant::now();
            let pulled =
                crate::docker::project::pull(&remote.docker, backup::RESTIC_IMAGE, tx).await;
            remote
                .note(
                    format!(
                        "Download the backup tool: docker pull {}",
                        backup::RESTIC_IMAGE
                    ),
                    if pulled.is_ok() {
                        "done".into()
                    } else {
                        "failed".into()
                    },
                    t,
                    String::new(),
                )
                .await;
            pulled.map_err(|e| self.docker_error(remote, e))?;
        }
        Ok(())
    }

    /// The device's engine could not run a one-off container: the device went away (cable,
    /// power) or its engine refused; in the words a deploy uses, the cause kept as detail.
    pub(super) fn docker_error(
        &self,
        remote: &Remote,
        e: crate::docker::DockerError,
    ) -> DeployError {
        DeployError::Device {
            device: remote.device.name.clone(),
            trouble: if e.engine_answered() {
                super::Trouble::EngineRefused
            } else {
                super::Trouble::NoAnswer
            },
            detail: e.detail(),
        }
    }

    /// A restic run that failed: restic's own complaint in words, or the device's.
    pub(super) fn restic_error(
        &self,
        remote: &Remote,
        f: ResticFailure,
        destination: &str,
    ) -> DeployError {
        match f {
            ResticFailure::Docker(e) => self.docker_error(remote, e),
            f => failed(&f, destination),
        }
    }

    /// An app's snapshots at every destination that answers, newest first (read from its
    /// device); an error only when none answers.
    pub async fn snapshots(&self, slug: &str) -> Result<Vec<SnapshotView>, DeployError> {
        let (list, mut errors) = self.snapshots_everywhere(slug).await?;
        match (list.is_empty(), errors.is_empty()) {
            (true, false) => Err(errors.remove(0)),
            _ => Ok(list),
        }
    }

    /// An app's snapshots at every destination, and why any destination could not be read.
    pub async fn snapshots_everywhere(
        &self,
        slug: &str,
    ) -> Result<(Vec<SnapshotView>, Vec<DeployError>), DeployError> {
        let app = self.deployed(slug).await?;
        let device = self.app_device(&app).await?;
        // Read from the app's device, or any that answers when it does not: its backups are
        // most wanted when its device is gone (to move it elsewhere).
        let remote = match Remote::connect(&self.devices, device, None).await {
            Ok(r) => r,
            Err(_) => self.any_device().await?,
        };
        self.ensure_restic(&remote).await?;
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for row in self.store.backup_destinations().await? {
            match self.snapshots_at(&remote, &row, slug).await {
                Ok(found) => out.extend(found),
                Err(e) => errors.push(e),
            }
        }
        out.sort_by(|a, b| b.time.cmp(&a.time));
        Ok((out, errors))
    }

    /// The app's snapshots at one destination (none when it holds no backups yet), read
    /// from `remote`. At most `LISTINGS` run at once, box-wide: each is a container.
    pub(super) async fn snapshots_at(
        &self,
        remote: &Remote,
        row: &DestinationRow,
        slug: &str,
    ) -> Result<Vec<SnapshotView>, DeployError> {
        let _turn = self
            .listings
            .acquire()
            .await
            .map_err(|_| DeployError::NotFound)?;
        let (target, creds) = self.credentials(row).await?;
        // Its own name: a listing never touches the app's backup or restore run.
        let spec = self.restic_spec(
            &format!("homelab-restic-list-{slug}-{}", unique()),
            &target,
            // No lock: a listing must never stop a backup's forget or the weekly prune.
            &["snapshots", "--no-lock", "--json", "--host", slug],
            Vec::new(),
        );
        let mut stdout = String::new();
        let listed = self
            .run_restic(remote, &spec, &creds, QUICK_DEADLINE, |s, l| {
                if s == Stream::Out && stdout.len() < 8 << 20 {
                    stdout.push_str(l);
                    stdout.push('\n');
                }
            })
            .await;
        match listed {
            Ok(_) => {}
            Err(f) if f.no_repository() => return Ok(Vec::new()),
            Err(f) => return Err(self.restic_error(remote, f, &row.name)),
        }
        let found = restic::snapshots(&stdout).map_err(|_| {
            DeployError::BackupRefused(format!(
                "The list of backups at {} could not be read.",
                row.name
            ))
        })?;
        Ok(found
            .into_iter()
            // Ids go into links and restic's arguments: only what a snapshot id looks like
            // (a device answering anything cannot smuggle a path in).
            .filter(|s| restic::valid_snapshot_id(&s.id))
            .map(|s| SnapshotView {
                destination_id: row.id,
                destination: row.name.clone(),
                id: s.id,
                short_id: s.short_id,
                time: s.time,
            })
            .collect())
    }

    // ---- jobs ----

    /// Starts a backup of an app to one destination, or to every one.
    pub async fn back_up(
        self: &Arc<Self>,
        slug: &str,
        destination_id: Option<i64>,
    ) -> Result<i64, DeployError> {
        if let Some(id) = destination_id {
            self.destination(id).await?;
        } else if self.store.backup_destinations().await?.is_empty() {
            return Err(DeployError::BackupRefused(
                "Add a place for backups first (Backups → Add a destination).".into(),
            ));
        }
        let task = BackupTask {
            destination_id,
            snapshot: None,
            moving_from: None,
        };
        self.start_backup_job(slug, "backup", task, "Backing up")
            .await
    }

    /// Starts restoring an app in place from a snapshot.
    pub async fn restore(
        self: &Arc<Self>,
        slug: &str,
        destination_id: i64,
        snapshot: &str,
    ) -> Result<i64, DeployError> {
        if !restic::valid_snapshot_id(snapshot) {
            return Err(DeployError::BackupRefused(
                "That is not a backup's id: choose one from the list.".into(),
            ));
        }
        let row = self.destination(destination_id).await?;
        let app = self.deployed(slug).await?;
        // Only one of this app's own backups: another app's (or a made-up id) would swap in
        // empty or foreign data.
        let remote = Remote::connect(&self.devices, self.app_device(&app).await?, None).await?;
        self.ensure_restic(&remote).await?;
        let own = self.snapshots_at(&remote, &row, slug).await?;
        if !own
            .iter()
            .any(|s| s.id == snapshot || (snapshot.len() >= 8 && s.id.starts_with(snapshot)))
        {
            return Err(DeployError::BackupRefused(format!(
                "{} holds no backup of {slug} with that id: choose one from the app's list.",
                row.name
            )));
        }
        let task = BackupTask {
            destination_id: Some(destination_id),
            snapshot: Some(snapshot.to_string()),
            moving_from: None,
        };
        self.start_backup_job(slug, "restore", task, "Restoring")
            .await
    }

    async fn start_backup_job(
        self: &Arc<Self>,
        slug: &str,
        kind: &'static str,
        task: BackupTask,
        verb: &str,
    ) -> Result<i64, DeployError> {
        let recipe = self.recipe(slug)?.clone();
        let app = self.deployed(slug).await?;
        let guard = self.claim_for_owner(slug, &recipe.manifest.name).await?;
        // An earlier job of the app still undoing (a restore's switch back, a reload of its
        // database) finishes first: this one could otherwise remove or overwrite what that
        // undo brings back.
        for earlier in self.store.unfinished_deployments().await? {
            if earlier.slug == slug && !self.roll_back(earlier.id).await {
                return Err(DeployError::StillUndoing {
                    app: recipe.manifest.name.clone(),
                    device: earlier.device_name,
                });
            }
        }
        let device = self.app_device(&app).await?;
        let named = self.store.name_of(slug.to_string()).await?.is_some();
        let settings: BTreeMap<String, String> =
            serde_json::from_str(&app.settings).unwrap_or_default();
        let message = format!("{verb} {}…", recipe.manifest.name);
        self.start_on_installed(
            guard,
            kind,
            recipe,
            device,
            settings,
            named,
            message,
            Some(task),
        )
        .await
    }

    /// The app's data volumes on the device, by their key in the recipe: (key, volume name).
    async fn data_volumes(
        &self,
        remote: &Remote,
        job: &Job,
    ) -> Result<Vec<(String, String)>, DeployError> {
        let project = project_name(&job.recipe.manifest.slug);
        let mut out = Vec::new();
        for key in &job.recipe.manifest.data_volumes {
            let name = format!("{project}_{key}");
            if crate::docker::run::volume_exists(&remote.docker, &name)
                .await
                .map_err(|e| self.docker_error(remote, e))?
            {
                out.push((key.clone(), name));
            }
        }
        Ok(out)
    }

    /// A backup job. When it fails before any destination's run began (the device does not
    /// answer, the database dump failed), each destination still gets a failed run, so the
    /// app's history and the dashboard say so.
    pub(super) async fn backup_steps(&self, job: &Job) -> Result<String, DeployError> {
        let result = self.backup_app(job).await;
        if let Err(e) = &result {
            let slug = job.recipe.manifest.slug.clone();
            let began = self
                .store
                .backup_runs(slug.clone(), 1)
                .await
                .ok()
                .and_then(|r| r.into_iter().next())
                .is_some_and(|r| r.deployment_id == job.id);
            if !began {
                let destinations: Vec<i64> =
                    match job.backup.as_ref().and_then(|t| t.destination_id) {
                        Some(d) => vec![d],
                        None => self
                            .store
                            .backup_destinations()
                            .await
                            .unwrap_or_default()
                            .iter()
                            .map(|d| d.id)
                            .collect(),
                    };
                for d in destinations {
                    if let Ok(run) = self
                        .store
                        .begin_backup_run(slug.clone(), d, job.device.id, job.id)
                        .await
                    {
                        let _ = self
                            .store
                            .finish_backup_run(run, false, String::new(), 0, 0, 0, e.to_string())
                            .await;
                    }
                }
            }
        }
        result
    }

    async fn backup_app(&self, job: &Job) -> Result<String, DeployError> {
        let (id, recipe) = (job.id, &job.recipe);
        let m = &recipe.manifest;
        let slug = m.slug.as_str();
        let project = project_name(slug);
        let task = job.backup.clone().unwrap_or(BackupTask {
            destination_id: None,
            snapshot: None,
            moving_from: None,
        });
        let destinations: Vec<DestinationRow> = match task.destination_id {
            Some(d) => vec![self.destination(d).await?],
            None => self.store.backup_destinations().await?,
        };
        // Every destination's shared lock first, while the app still runs: a weekly check
        // holding one never keeps the app stopped or its dump waiting.
        let mut guards = Vec::new();
        for row in &destinations {
            let lock = self.destination_lock(row.id);
            let guard = match lock.clone().try_read_owned() {
                Ok(g) => g,
                Err(_) => {
                    self.progress(
                        id,
                        slug,
                        DeploymentState::Preparing,
                        3,
                        format!("Waiting for the check of {} to finish…", row.name),
                    )
                    .await;
                    lock.read_owned().await
                }
            };
            guards.push(Some(guard));
        }
        let (app, remote, values, _) = self.installed_app(job).await?;
        self.ensure_restic(&remote).await?;
        self.progress(
            id,
            slug,
            DeploymentState::Preparing,
            5,
            format!("Preparing {}'s backup…", m.name),
        )
        .await;
        let (binds, dump_volume) = self.backup_sources(&remote, job, &values).await?;
        let shared = dump_volume.is_some();

        // Its own database container's files are only consistent while it is stopped.
        let own_db_running = !shared
            && m.database.is_some()
            && remote
                .project_containers(&project)
                .await?
                .iter()
                .any(|c| c.state.as_ref().map(|s| s.to_string()).as_deref() == Some("running"));
        if own_db_running {
            self.step(
                id,
                "backup-stop",
                &Undo::StartApp {
                    dir: app.app_dir.clone(),
                    project: project.clone(),
                },
            )
            .await?;
            remote
                .compose(
                    "Stop the app while its files are read",
                    &app.app_dir,
                    &project,
                    &["stop"],
                )
                .await?;
        }

        let mut done = Vec::new();
        let mut failures = Vec::new();
        let mut reached = Vec::new();
        let share = 85 / destinations.len().max(1) as i64;
        for (n, (row, guard)) in destinations.iter().zip(guards.iter_mut()).enumerate() {
            let base = 10 + share * n as i64;
            match self
                .back_up_to(&remote, job, row, guard.take(), &binds, base, share)
                .await
            {
                Ok((words, _)) => {
                    done.push(words);
                    reached.push(row);
                }
                Err(e) => failures.push(e),
            }
        }
        if own_db_running {
            remote
                .compose_up("Start the app again", &app.app_dir, &project, &m.name)
                .await?;
        }
        if let Some(dump) = &dump_volume {
            let _ = remote.remove_volume(dump).await;
        }
        // What the destinations hold now, once the app runs again (never while it waits).
        for row in reached {
            self.measure_space_if_due(&remote, row).await;
        }
        if let Some(first) = failures.into_iter().next() {
            return Err(first);
        }
        self.finish_steps(id).await?;
        Ok(format!("Backed up {}: {}.", m.name, done.join("; ")))
    }

    /// What a backup reads on the app's device: its data volumes (read-only) and, for an app
    /// in the shared database, a dump of it made now by its own login. Returns restic's binds
    /// and the dump's volume, for the caller to remove once restic has read it.
    pub(super) async fn backup_sources(
        &self,
        remote: &Remote,
        job: &Job,
        values: &BTreeMap<String, String>,
    ) -> Result<(Vec<String>, Option<String>), DeployError> {
        let m = &job.recipe.manifest;
        let slug = m.slug.as_str();
        let volumes = self.data_volumes(remote, job).await?;
        let mut binds: Vec<String> = volumes
            .iter()
            .map(|(key, name)| format!("{name}:/data/{key}:ro"))
            .collect();
        let shared = self
            .store
            .shared_database_of(slug.to_string(), remote.device.id)
            .await?;
        let Some(db) = shared else {
            return Ok((binds, None));
        };
        let engine = crate::pool::Engine::parse(&db.engine).ok_or_else(|| {
            DeployError::BackupRefused(format!("Unknown database kind {}", db.engine))
        })?;
        // Outside Compose's names (`<project>_<volume>`), so no recipe's volume can be it.
        let dump_volume = format!("homelab-dump-{slug}");
        self.step_at(
            (job.id, job.device.id),
            remote,
            "backup-dump",
            Undo::RemoveVolumes {
                volumes: vec![dump_volume.clone()],
            },
        )
        .await?;
        self.progress(
            job.id,
            slug,
            DeploymentState::Preparing,
            8,
            format!("Saving {}'s database…", m.name),
        )
        .await;
        let password: String = match &m.database {
            Some(d) => values.get(&d.env.password).cloned().unwrap_or_default(),
            None => String::new(),
        };
        self.dump_database(remote, slug, engine, &db.database, &dump_volume, &password)
            .await?;
        binds.push(format!("{dump_volume}:/database:ro"));
        Ok((binds, Some(dump_volume)))
    }

    /// One destination's run: the repository opened (made the first time), restic backup
    /// with live progress, the run recorded as done or failed.
    #[allow(clippy::too_many_arguments)] // the run's parts, each once
    pub(super) async fn back_up_to(
        &self,
        remote: &Remote,
        job: &Job,
        row: &DestinationRow,
        // The destination's shared lock, taken before the app stopped.
        shared: Option<tokio::sync::OwnedRwLockReadGuard<()>>,
        binds: &[String],
        base: i64,
        share: i64,
    ) -> Result<(String, String), DeployError> {
        let slug = job.recipe.manifest.slug.as_str();
        let lock = self.destination_lock(row.id);
        let run = self
            .store
            .begin_backup_run(slug.to_string(), row.id, remote.device.id, job.id)
            .await?;
        let outcome = async {
            let (target, creds) = self.credentials(row).await?;
            let container = format!("homelab-restic-{slug}");
            // A destination that worked last time has its repository: the backup goes
            // straight to it (opening first costs a second or more per run). If it has gone
            // since, restic says so, and the repository is made and the backup run again.
            let mut opened = !(row.check_ok && row.checked_at > 0);
            if opened {
                self.open_repository(remote, row, &target, &creds, &container)
                    .await?;
            }
            let (ran, summary) = loop {
                let mut args = vec!["backup", "--json", "--host", slug, "--tag", "homelab", "/data"];
                if binds.iter().any(|b| b.contains(":/database")) {
                    args.push("/database");
                }
                let spec = self.restic_spec(&container, &target, &args, binds.to_vec());
                let (tx, mut rx) = tokio::sync::watch::channel::<Option<BackupLine>>(None);
                let mut summary = None;
                let mut last_sent = Instant::now() - PROGRESS_EVERY;
                let t = Instant::now();
                let ran = {
                    let run_it = self.run_restic(remote, &spec, &creds, BACKUP_DEADLINE, |s, l| {
                        if s != Stream::Out {
                            return;
                        }
                        match restic::backup_line(l) {
                            Some(line @ BackupLine::Summary { .. }) => summary = Some(line),
                            Some(line @ BackupLine::Status { .. }) if last_sent.elapsed() >= PROGRESS_EVERY => {
                                last_sent = Instant::now();
                                let _ = tx.send(Some(line));
                            }
                            _ => {}
                        }
                    });
                    tokio::pin!(run_it);
                    // Progress goes to the page while restic runs.
                    loop {
                        tokio::select! {
                            r = &mut run_it => break r,
                            Ok(()) = rx.changed() => {
                                let line = rx.borrow_and_update().clone();
                                if let Some(BackupLine::Status { percent_done, bytes_done, total_bytes, .. }) = line {
                                    let pct = base + (percent_done.clamp(0.0, 1.0) * share as f64) as i64;
                                    self.progress(
                                        job.id,
                                        slug,
                                        DeploymentState::Starting,
                                        pct,
                                        format!(
                                            "Backing up to {}: {} of {}…",
                                            row.name,
                                            human_bytes(bytes_done),
                                            human_bytes(total_bytes)
                                        ),
                                    )
                                    .await;
                                }
                            }
                        }
                    }
                };
                // restic's own time beside the note's (which adds the container's start and
                // end): where a backup's time goes.
                let detail = match (&ran, &summary) {
                    (Ok(_), Some(BackupLine::Summary { total_duration, .. })) => {
                        format!("restic's own time: {total_duration:.1} s")
                    }
                    _ => failure_detail(&ran),
                };
                remote
                    .note(
                        format!("Back up to {}: restic backup /data (volumes read-only)", row.name),
                        outcome_words(&ran),
                        t,
                        detail,
                    )
                    .await;
                match &ran {
                    Err(f) if !opened && f.no_repository() => {
                        self.open_repository(remote, row, &target, &creds, &container)
                            .await?;
                        opened = true;
                    }
                    _ => break (ran, summary),
                }
            };
            ran.map_err(|f| self.restic_error(remote, f, &row.name))?;
            match summary {
                Some(BackupLine::Summary {
                    snapshot_id,
                    total_files_processed,
                    total_bytes_processed,
                    data_added,
                    ..
                }) => Ok((snapshot_id, total_files_processed, total_bytes_processed, data_added)),
                _ => Err(DeployError::BackupFailed {
                    message: format!(
                        "The backup to {} did not say it finished, so it is not counted.",
                        row.name
                    ),
                    detail: String::new(),
                }),
            }
        }
        .await;
        match outcome {
            Ok((snapshot, files, bytes, added)) => {
                drop(shared);
                self.forget_if_due(remote, row, slug, &lock).await;
                self.store
                    .finish_backup_run(
                        run,
                        true,
                        snapshot.clone(),
                        files as i64,
                        bytes as i64,
                        added as i64,
                        String::new(),
                    )
                    .await?;
                let _ = self
                    .store
                    .set_destination_check(row.id, true, format!("{} works.", row.name))
                    .await;
                let words = format!(
                    "{} files, {} ({} new) to {}",
                    files,
                    human_bytes(bytes),
                    human_bytes(added),
                    row.name
                );
                Ok((words, snapshot))
            }
            Err(e) => {
                self.store
                    .finish_backup_run(run, false, String::new(), 0, 0, 0, e.to_string())
                    .await?;
                Err(e)
            }
        }
    }

    /// After a backup: the app's keep rules at the destination, when they are due there
    /// (`keep_rules`) and no other backup to it runs now (restic's forget needs the
    /// repository alone; else a later backup applies them). Recorded only when restic's
    /// forget worked, so a failed or skipped one leaves the next backup to try.
    async fn forget_if_due(
        &self,
        remote: &Remote,
        row: &DestinationRow,
        slug: &str,
        lock: &tokio::sync::RwLock<()>,
    ) {
        // A server that only lets backups be added refuses restic's forget (which retries
        // for minutes and can leave its lock behind): old backups go on the server's side.
        if serde_json::from_str::<Target>(&row.target).is_ok_and(|t| t.append_only()) {
            remote
                .note(
                    format!(
                        "Keep the backups the rules keep at {}: not here, the server only lets backups be added (old ones are removed on its side)",
                        row.name
                    ),
                    "skipped".into(),
                    Instant::now(),
                    String::new(),
                )
                .await;
            return;
        }
        // Unreadable memory counts as due: the rules run (as after every backup before).
        let (last, before) = self
            .store
            .backup_forgot_at(slug.to_string(), row.id)
            .await
            .unwrap_or((None, true));
        let now = crate::store::now_unix();
        // No "restic" in the notes of what did not run (tests read those as restic's runs).
        let skipped = match keep_rules(last, before, now) {
            KeepRules::Apply => None,
            KeepRules::FirstBackup => {
                self.remember_forget(slug, row).await;
                Some(format!(
                    "Keep the backups the rules keep at {}: nothing to forget yet (the app's first backup there)",
                    row.name
                ))
            }
            KeepRules::AppliedAgo(ago) => Some(format!(
                "Keep the backups the rules keep at {}: not yet, applied {} ago (once a day)",
                row.name,
                ago_words(ago),
            )),
        };
        if let Some(what) = skipped {
            remote
                .note(what, "skipped".into(), Instant::now(), String::new())
                .await;
            return;
        }
        let Ok(_alone) = lock.try_write() else {
            return;
        };
        if self.forget_old(remote, row, slug).await {
            self.remember_forget(slug, row).await;
        }
    }

    /// Records that the app's keep rules hold at the destination now.
    async fn remember_forget(&self, slug: &str, row: &DestinationRow) {
        if let Err(e) = self.store.set_backup_forgot(slug.to_string(), row.id).await {
            // The next backup applies the rules again: harmless.
            tracing::warn!(error = %e, slug, "could not record the keep rules' run");
        }
    }

    /// Applies the app's keep rules at the destination: restic forgets the snapshots no rule
    /// keeps (the newest always stays); the data they alone held goes at the weekly prune. A
    /// failure here leaves the new backup good, and a later run tries again, so it is noted
    /// and not raised. True when restic's forget worked.
    async fn forget_old(&self, remote: &Remote, row: &DestinationRow, slug: &str) -> bool {
        let policy = self.backup_policy(slug).await;
        let Ok((target, mut creds)) = self.credentials(row).await else {
            return false;
        };
        // Forgetting is the box's work: this run may remove (on a disk on the box too).
        creds.allow_removal();
        let keep = policy.forget_args();
        let mut args = vec![
            "forget",
            "--host",
            slug,
            "--tag",
            "homelab",
            "--group-by",
            "host",
        ];
        args.extend(keep.iter().map(String::as_str));
        let spec = self.restic_spec(
            &format!("homelab-restic-{slug}"),
            &target,
            &args,
            Vec::new(),
        );
        self.restic_noted(
            remote,
            &spec,
            &creds,
            &format!(
                "Keep the backups the rules keep at {}: restic forget {}",
                row.name,
                keep.join(" ")
            ),
        )
        .await
        .is_ok()
    }

    /// Dumps the app's shared database into `volume` (made fresh) as `database.sql`.
    async fn dump_database(
        &self,
        remote: &Remote,
        slug: &str,
        engine: crate::pool::Engine,
        database: &str,
        volume: &str,
        password: &str,
    ) -> Result<(), DeployError> {
        let _ = remote.remove_volume(volume).await;
        crate::docker::run::create_volume(&remote.docker, volume, self.backup_labels("dump"))
            .await
            .map_err(|e| self.docker_error(remote, e))?;
        let ran = self
            .database_tool(remote, slug, engine, database, volume, password, "dump")
            .await?;
        if !ran.success() {
            return Err(DeployError::BackupFailed {
                message: format!(
                    "The app's database could not be saved, so nothing was backed up. Is the shared {} running?",
                    engine.words()
                ),
                detail: ran.stderr_tail.join("\n"),
            });
        }
        Ok(())
    }

    /// Replaces the app's database in the shared instance with the one saved in `volume`:
    /// dropped, made again empty for its login (same password, same extensions), and loaded
    /// by that login. The app must be stopped.
    #[allow(clippy::too_many_arguments)] // the database, each once
    pub(super) async fn reload_database(
        &self,
        remote: &Remote,
        engine: crate::pool::Engine,
        slug: &str,
        database: &str,
        password: &str,
        extensions: &[String],
        volume: &str,
    ) -> Result<(), DeployError> {
        let refused = |detail: String| DeployError::SharedDbRefused {
            engine,
            device: remote.device.name.clone(),
            detail,
        };
        // Nothing is dropped unless there is a dump to load.
        let has = self
            .database_tool(remote, slug, engine, database, volume, password, "has")
            .await?;
        if !has.success() {
            return Err(DeployError::BackupFailed {
                message: "This backup holds no database Homelab can load (it was made by an older version). Its database/ folder can be restored by hand.".into(),
                detail: has.stderr_tail.join("\n"),
            });
        }
        let script = crate::pool::sql::drop(engine, database, database, true, false)
            .map_err(|e| refused(e.to_string()))?;
        let out = remote
            .db_exec(engine, "Empty the app's database", &script)
            .await?;
        if !out.success() {
            return Err(refused(out.stderr));
        }
        let script = crate::pool::sql::provision(engine, database, database, password, extensions)
            .map_err(|e| refused(e.to_string()))?;
        let out = remote
            .db_exec(engine, "Make the app's database again", &script)
            .await?;
        if !out.success() {
            return Err(refused(out.stderr));
        }
        let ran = self
            .database_tool(remote, slug, engine, database, volume, password, "load")
            .await?;
        if !ran.success() {
            let message = if ran.exit_code == Some(91) {
                "This backup holds no database Homelab can load (it was made by an older version). Its database/ folder can be restored by hand.".to_string()
            } else {
                format!(
                    "The backup's database could not be loaded into the shared {}.",
                    engine.words()
                )
            };
            return Err(DeployError::BackupFailed {
                message,
                detail: ran.stderr_tail.join("\n"),
            });
        }
        self.forget_shared_view(remote.device.id);
        Ok(())
    }

    /// Runs `DATABASE_TOOL` (`action` dump or load) against the app's database, with its
    /// dump in `volume` at /dump, and notes it.
    #[allow(clippy::too_many_arguments)] // the database, each once
    async fn database_tool(
        &self,
        remote: &Remote,
        slug: &str,
        engine: crate::pool::Engine,
        database: &str,
        volume: &str,
        password: &str,
        action: &str,
    ) -> Result<crate::docker::run::Ended, DeployError> {
        let spec = OneOff {
            name: format!("homelab-db-{action}-{slug}"),
            image: engine.image().to_string(),
            entrypoint: vec!["/bin/sh".into(), "-c".into()],
            cmd: vec![
                DATABASE_TOOL.to_string(),
                "database".into(),
                action.into(),
                engine.as_str().into(),
                engine.project().into(),
                database.to_string(),
            ],
            binds: vec![format!("{volume}:/dump")],
            network: Some(engine.network().to_string()),
            labels: self.backup_labels(action),
            ..Default::default()
        };
        let t = Instant::now();
        let stdin = Secret::from_string(format!("{password}\n"));
        let ran = crate::docker::run::run(
            &remote.docker,
            &spec,
            stdin.expose(),
            DUMP_DEADLINE,
            |_, _| {},
        )
        .await
        .map_err(|e| self.docker_error(remote, e))?;
        remote
            .note(
                format!(
                    "{} the app's database: {} {action} of {database}, as its own login",
                    match action {
                        "dump" => "Save",
                        "load" => "Load",
                        _ => "Look for",
                    },
                    engine.words()
                ),
                exit_words(ran.exit_code),
                t,
                ran.stderr_tail.join("\n"),
            )
            .await;
        Ok(ran)
    }

    pub(super) async fn restore_steps(&self, job: &Job) -> Result<String, DeployError> {
        let (id, recipe) = (job.id, &job.recipe);
        let m = &recipe.manifest;
        let slug = m.slug.as_str();
        let project = project_name(slug);
        let task = job.backup.clone().ok_or(DeployError::NotFound)?;
        let (Some(dest_id), Some(snapshot)) = (task.destination_id, task.snapshot.clone()) else {
            return Err(DeployError::NotFound);
        };
        let row = self.destination(dest_id).await?;
        // Held while restic reads the repository, so the weekly prune waits for it.
        let lock = self.destination_lock(dest_id);
        let _reading = lock.read().await;
        let (app, remote, values, _) = self.installed_app(job).await?;
        self.ensure_restic(&remote).await?;
        let volumes = self.data_volumes(&remote, job).await?;
        // Its database, when it is in the shared instance: restored from the backup's dump.
        let shared = self
            .store
            .shared_database_of(slug.to_string(), app.device_id)
            .await?;
        let engine = match &shared {
            Some(db) => Some(crate::pool::Engine::parse(&db.engine).ok_or_else(|| {
                DeployError::BackupRefused(format!("Unknown database kind {}", db.engine))
            })?),
            None => None,
        };
        if volumes.is_empty() && shared.is_none() {
            return Err(DeployError::BackupRefused(format!(
                "{} keeps no data to restore.",
                m.name
            )));
        }
        let root = if volumes.is_empty() {
            String::new()
        } else {
            self.volumes_root(&remote, &volumes).await?
        };
        let pairs: Vec<(String, String)> = volumes
            .iter()
            .map(|(_, live)| (live.clone(), format!("{live}-restore")))
            .collect();
        let mut staging: Vec<String> = pairs.iter().map(|(_, s)| s.clone()).collect();
        // The backup's database, and the current one kept until the app answers.
        let db_staging = format!("homelab-restore-db-{id}");
        let db_kept = format!("homelab-kept-db-{id}");
        if shared.is_some() {
            staging.push(db_staging.clone());
        }
        let mut made = staging.clone();
        if shared.is_some() {
            made.push(db_kept.clone());
        }

        // Restored beside the live data while the app still runs.
        self.step(
            id,
            "restore-volumes",
            &Undo::RemoveVolumes {
                volumes: made.clone(),
            },
        )
        .await?;
        for s in &staging {
            let _ = remote.remove_volume(s).await;
            crate::docker::run::create_volume(
                &remote.docker,
                s,
                HashMap::from([(restic::LABEL.to_string(), "restore".to_string())]),
            )
            .await
            .map_err(|e| self.docker_error(&remote, e))?;
        }
        self.progress(
            id,
            slug,
            DeploymentState::Pulling,
            20,
            format!("Restoring {}'s data from {}…", m.name, row.name),
        )
        .await;
        let into: Vec<(String, String)> = volumes
            .iter()
            .zip(&staging)
            .map(|((key, _), s)| (key.clone(), s.clone()))
            .collect();
        let db_into = shared.is_some().then_some(db_staging.as_str());
        self.restore_snapshot(&remote, slug, &row, &snapshot, &into, db_into)
            .await?;

        // The switch: stopped, swapped, started, checked; undone in reverse on failure.
        self.progress(
            id,
            slug,
            DeploymentState::Starting,
            70,
            format!("Switching {} to the restored data…", m.name),
        )
        .await;
        self.step(
            id,
            "restore-stop",
            &Undo::StartApp {
                dir: app.app_dir.clone(),
                project: project.clone(),
            },
        )
        .await?;
        remote
            .compose(
                "Stop the app for the switch",
                &app.app_dir,
                &project,
                &["stop"],
            )
            .await?;
        if let (Some(db), Some(engine)) = (&shared, engine) {
            let password = m
                .database
                .as_ref()
                .and_then(|d| values.get(&d.env.password))
                .cloned()
                .unwrap_or_default();
            let extensions = m
                .database
                .as_ref()
                .map(|d| d.extensions.clone())
                .unwrap_or_default();
            // The database as it is now, saved first: a failed load or health check puts it back.
            self.dump_database(&remote, slug, engine, &db.database, &db_kept, &password)
                .await?;
            self.step(
                id,
                "restore-database",
                &Undo::ReloadDatabase {
                    engine,
                    slug: slug.to_string(),
                    database: db.database.clone(),
                    volume: db_kept.clone(),
                    dir: app.app_dir.clone(),
                    project: project.clone(),
                },
            )
            .await?;
            self.progress(
                id,
                slug,
                DeploymentState::Starting,
                75,
                format!("Loading {}'s database from the backup…", m.name),
            )
            .await;
            self.reload_database(
                &remote,
                engine,
                slug,
                &db.database,
                &password,
                &extensions,
                &db_staging,
            )
            .await?;
        }
        if !pairs.is_empty() {
            self.step(
                id,
                "restore-switch",
                &Undo::SwapVolumes {
                    job: id,
                    root: root.clone(),
                    pairs: pairs.clone(),
                    dir: app.app_dir.clone(),
                    project: project.clone(),
                },
            )
            .await?;
            self.swap_volumes(&remote, &root, id, "forward", &pairs)
                .await?;
        }
        remote
            .compose_up(
                "Start the app on the restored data",
                &app.app_dir,
                &project,
                &m.name,
            )
            .await?;
        self.progress(
            id,
            slug,
            DeploymentState::HealthCheck,
            85,
            format!("Waiting for {} to answer…", m.name),
        )
        .await;
        self.health_check(&remote, id, recipe, &values, &project)
            .await?;
        self.finish_steps(id).await?;
        // Recorded as done before the data from before the restore goes: a restart from here
        // on finds nothing to undo, so it can never "undo" by deleting that data.
        self.progress(
            id,
            slug,
            DeploymentState::Running,
            99,
            format!("{} answers on the restored data.", m.name),
        )
        .await;
        for s in &made {
            let _ = remote.remove_volume(s).await;
        }
        Ok(format!(
            "Restored {} from its backup {} at {}.",
            m.name,
            &snapshot[..8.min(snapshot.len())],
            row.name
        ))
    }

    /// restic restore of one of the app's snapshots into volumes made for it on the device:
    /// each data volume's folder by its key in the recipe, and the database's dump.
    pub(super) async fn restore_snapshot(
        &self,
        remote: &Remote,
        slug: &str,
        row: &DestinationRow,
        snapshot: &str,
        into: &[(String, String)],
        db_into: Option<&str>,
    ) -> Result<(), DeployError> {
        let (target, creds) = self.credentials(row).await?;
        let mut binds: Vec<String> = into
            .iter()
            .map(|(key, volume)| format!("{volume}:/restore/data/{key}"))
            .collect();
        let mut args = vec!["restore", snapshot, "--target", "/restore"];
        if !into.is_empty() {
            args.extend(["--include", "/data"]);
        }
        if let Some(volume) = db_into {
            binds.push(format!("{volume}:/restore/database"));
            args.extend(["--include", "/database"]);
        }
        let spec = self.restic_spec(&format!("homelab-restic-{slug}"), &target, &args, binds);
        let t = Instant::now();
        let restored = self
            .run_restic(remote, &spec, &creds, BACKUP_DEADLINE, |_, _| {})
            .await;
        remote
            .note(
                format!(
                    "Restore {snapshot} from {} into new volumes: restic restore",
                    row.name
                ),
                outcome_words(&restored),
                t,
                failure_detail(&restored),
            )
            .await;
        restored.map_err(|f| self.restic_error(remote, f, &row.name))?;
        Ok(())
    }

    /// Where the device's engine keeps volumes, after checking every volume is a plain local
    /// folder there (the swap renames inside it).
    async fn volumes_root(
        &self,
        remote: &Remote,
        volumes: &[(String, String)],
    ) -> Result<String, DeployError> {
        let info = remote
            .docker
            .info()
            .await
            .map_err(|e| self.docker_error(remote, e.into()))?;
        let root = format!(
            "{}/volumes",
            info.docker_root_dir
                .unwrap_or_else(|| "/var/lib/docker".into())
        );
        for (_, name) in volumes {
            let v = remote
                .docker
                .inspect_volume(name)
                .await
                .map_err(|e| self.docker_error(remote, e.into()))?;
            // A local volume with options is a mount of something else (NFS, a bind): its
            // folder here is only where that is mounted while a container runs.
            let options = !v.options.is_empty();
            if v.driver != "local" || options || v.mountpoint != format!("{root}/{name}/_data") {
                return Err(DeployError::BackupRefused(format!(
                    "The volume {name} is not a plain folder on the device (driver {}), so it cannot be restored in place.",
                    v.driver
                )));
            }
        }
        Ok(root)
    }

    /// Runs the swap script in a one-off container that sees the engine's volume folder.
    pub(super) async fn swap_volumes(
        &self,
        remote: &Remote,
        root: &str,
        job: i64,
        direction: &str,
        pairs: &[(String, String)],
    ) -> Result<(), DeployError> {
        let mut cmd = vec![
            SWAP.to_string(),
            "swap".into(),
            direction.into(),
            job.to_string(),
        ];
        for (live, staging) in pairs {
            cmd.push(live.clone());
            cmd.push(staging.clone());
        }
        let spec = OneOff {
            name: format!("homelab-swap-{job}"),
            image: backup::RESTIC_IMAGE.into(),
            entrypoint: vec!["/bin/sh".into(), "-c".into()],
            cmd,
            binds: vec![format!("{root}:/volumes")],
            labels: self.backup_labels("swap"),
            ..Default::default()
        };
        let t = Instant::now();
        let ran = crate::docker::run::run(&remote.docker, &spec, b"", QUICK_DEADLINE, |_, _| {})
            .await
            .map_err(|e| self.docker_error(remote, e))?;
        remote
            .note(
                format!("Swap the app's data with the restored data ({direction})"),
                exit_words(ran.exit_code),
                t,
                ran.stderr_tail.join("\n"),
            )
            .await;
        if !ran.success() {
            return Err(DeployError::BackupFailed {
                message: "The app's data could not be switched on the device.".into(),
                detail: ran.stderr_tail.join("\n"),
            });
        }
        Ok(())
    }
}

/// What a backup does about the app's keep rules at a destination.
#[derive(Debug, PartialEq, Eq)]
enum KeepRules {
    /// restic forget runs.
    Apply,
    /// Applied this long ago (seconds): not again yet.
    AppliedAgo(i64),
    /// The app's first backup there: a repository without an earlier backup of it from this
    /// box has nothing of it to forget (the rules are due `FORGET_EVERY` from now).
    FirstBackup,
}

/// The keep rules' turn, `now`: `last` is when they last held for the app at the destination
/// (unix seconds; None: never, or its policy changed since), `before` whether the app has a
/// finished backup there from before this one. Due again `FORGET_EVERY` after the last time,
/// or at once when the clock went back behind it.
fn keep_rules(last: Option<i64>, before: bool, now: i64) -> KeepRules {
    match last {
        None if !before => KeepRules::FirstBackup,
        Some(at) if at <= now && now - at < FORGET_EVERY => KeepRules::AppliedAgo(now - at),
        _ => KeepRules::Apply,
    }
}

/// "3 h", "40 min": how long ago, for "What I did".
fn ago_words(secs: i64) -> String {
    if secs >= 3600 {
        format!("{} h", secs / 3600)
    } else {
        format!("{} min", (secs / 60).max(0))
    }
}

/// A suffix that keeps one-off containers started at the same time apart.
pub(super) fn unique() -> String {
    let b = crate::secrets::random_bytes::<4>();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn check_name(name: &str) -> Result<String, DeployError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(DeployError::BackupRefused(format!(
            "Give the destination a name of up to {MAX_NAME} characters, like “NAS” or “Cloud”."
        )));
    }
    Ok(name.to_string())
}

fn refused(e: backup::BackupError) -> DeployError {
    DeployError::BackupRefused(e.to_string())
}

pub(super) fn failed(f: &ResticFailure, destination: &str) -> DeployError {
    DeployError::BackupFailed {
        message: f.words(destination),
        detail: failure_text(f),
    }
}

fn failure_text(f: &ResticFailure) -> String {
    match f {
        ResticFailure::Docker(e) => e.detail(),
        ResticFailure::Said(e) => e.stderr_tail.join("\n"),
        ResticFailure::Disk(words) => words.clone(),
    }
}

pub(super) fn outcome_words<T>(r: &Result<T, ResticFailure>) -> String {
    match r {
        Ok(_) => "exit 0".into(),
        Err(ResticFailure::Said(e)) => exit_words(e.exit_code),
        Err(ResticFailure::Docker(_) | ResticFailure::Disk(_)) => "failed".into(),
    }
}

/// How a one-off container ended, for "What I did".
fn exit_words(code: Option<i64>) -> String {
    match code {
        Some(c) => format!("exit {c}"),
        None => "stopped: too slow".into(),
    }
}

pub(super) fn failure_detail<T>(r: &Result<T, ResticFailure>) -> String {
    match r {
        Ok(_) => String::new(),
        Err(f) => failure_text(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keep_rules_are_due_once_a_day_per_app_and_destination() {
        let now = 1_800_000_000;
        let hour = 3600;
        // The app's first backup there: nothing to forget.
        assert_eq!(keep_rules(None, false, now), KeepRules::FirstBackup);
        // Backed up there before, rules never applied (or its policy changed since): due.
        assert_eq!(keep_rules(None, true, now), KeepRules::Apply);
        // "Back up now" and hourly runs within the day: not again.
        assert_eq!(keep_rules(Some(now), true, now), KeepRules::AppliedAgo(0));
        assert_eq!(
            keep_rules(Some(now - hour), true, now),
            KeepRules::AppliedAgo(hour)
        );
        assert_eq!(
            keep_rules(Some(now - 19 * hour), true, now),
            KeepRules::AppliedAgo(19 * hour)
        );
        // A daily backup that ends a little earlier than yesterday's still applies them.
        assert_eq!(
            keep_rules(Some(now - 20 * hour), true, now),
            KeepRules::Apply
        );
        assert_eq!(
            keep_rules(Some(now - 24 * hour + 300), true, now),
            KeepRules::Apply
        );
        assert_eq!(
            keep_rules(Some(now - 3 * 24 * hour), true, now),
            KeepRules::Apply
        );
        // A clock that went back behind the last time: due (not skipped for as long).
        assert_eq!(keep_rules(Some(now + 60), true, now), KeepRules::Apply);
        assert_eq!(ago_words(3 * hour + 59), "3 h");
        assert_eq!(ago_words(40 * 60 + 5), "40 min");
        assert_eq!(ago_words(0), "0 min");
    }
}
