//! The update's safety net, kept beside the data and outside the database (a restored database
//! must not roll back the record of the update itself):
//!
//! - `updates/snapshot/`: a consistent copy of the database ([`Store::copy_to`]) with the
//!   vault key and certificate it belongs with, taken before a bundle is installed;
//! - `updates/pending.json`: which update was installed, from which version;
//! - `updates/last.json`: how the last update ended, for the Updates page.
//!
//! At start, before the database is opened, [`settle`] reads the marker: running the new
//! version means the update took; running the old one means the bootloader fell back, so the
//! snapshot is restored and the owner told so.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::OtaError;
use crate::store::{DB_FILE as DB, Store};

/// The files that make up the daemon's state besides the database, relative to the data
/// directory. The store copies the database; these are copied as they are.
pub const CONFIG_FILES: &[&str] = &["secrets/master.key", "tls/cert.pem", "tls/key.pem"];

/// An update installed and waiting for the reboot that starts it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pending {
    pub from_version: String,
    pub to_version: String,
    pub installed_at: i64,
    /// The boot the update was installed in. Until the box restarts, the old version still
    /// running is simply waiting for the restart, not a fallback.
    #[serde(default)]
    pub boot_id: String,
}

/// This boot's identity (the kernel makes a new one at every boot).
pub fn current_boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// How the last update ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LastResult {
    pub ok: bool,
    pub message: String,
    pub at: i64,
    /// The version the update was to, so an update window never retries one that failed.
    #[serde(default)]
    pub version: Option<String>,
}

pub fn updates_dir(data: &Path) -> PathBuf {
    data.join("updates")
}

fn snapshot_dir(data: &Path) -> PathBuf {
    updates_dir(data).join("snapshot")
}

/// Writes a file so that it is either the old or the new content after a power cut. Owner
/// only: these are keys, the database and what is known about updates.
pub fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

pub(super) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let bytes = fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub(super) fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    write_durably(path, &serde_json::to_vec_pretty(value)?)
}

pub fn pending(data: &Path) -> Option<Pending> {
    read_json(&updates_dir(data).join("pending.json"))
}

pub fn set_pending(data: &Path, p: &Pending) -> std::io::Result<()> {
    write_json(&updates_dir(data).join("pending.json"), p)
}

pub fn clear_pending(data: &Path) -> std::io::Result<()> {
    match fs::remove_file(updates_dir(data).join("pending.json")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

pub fn last_result(data: &Path) -> Option<LastResult> {
    read_json(&updates_dir(data).join("last.json"))
}

pub fn set_last_result(
    data: &Path,
    ok: bool,
    version: &str,
    message: impl Into<String>,
) -> std::io::Result<()> {
    write_json(
        &updates_dir(data).join("last.json"),
        &LastResult {
            ok,
            message: message.into(),
            at: crate::store::now_unix(),
            version: Some(version.to_string()),
        },
    )
}

/// Copies the database (consistently, while the daemon runs) and its key and certificate.
/// The previous snapshot is replaced only once the new one is complete. File work goes
/// through tokio::fs, so nothing here blocks the runtime.
pub async fn take(data: &Path, store: &Store) -> Result<(), OtaError> {
    let dir = snapshot_dir(data);
    let fresh = updates_dir(data).join("snapshot.new");
    let _ = tokio::fs::remove_dir_all(&fresh).await;
    tokio::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&fresh)
        .await?;
    store.copy_to(&fresh.join(DB)).await?;
    for name in CONFIG_FILES {
        let from = data.join(name);
        if tokio::fs::try_exists(&from).await? {
            let to = fresh.join(name);
            tokio::fs::create_dir_all(to.parent().unwrap_or(&fresh)).await?;
            tokio::fs::copy(&from, &to).await?;
            tokio::fs::File::open(&to).await?.sync_all().await?;
        }
    }
    let _ = tokio::fs::remove_dir_all(&dir).await;
    tokio::fs::rename(&fresh, &dir).await?;
    tokio::fs::File::open(updates_dir(data))
        .await?
        .sync_all()
        .await?;
    Ok(())
}

/// Puts the snapshot back in place of the current files. Runs before the database is opened
/// (the store replaces its own file, see [`crate::store::restore_copy`]).
pub fn restore(data: &Path) -> std::io::Result<()> {
    let dir = snapshot_dir(data);
    if !dir.join(DB).exists() {
        return Err(std::io::Error::other("there is no snapshot to restore"));
    }
    for name in CONFIG_FILES {
        let from = dir.join(name);
        if from.exists() {
            let bytes = fs::read(&from)?;
            write_durably(&data.join(name), &bytes)?;
        }
    }
    crate::store::restore_copy(&data.join(DB), &dir.join(DB))
}

/// Versions the update window must not install by itself again (they were rolled back, or
/// the channel's file for them would not install); the owner can still install them by hand.
pub fn held_back(data: &Path) -> Vec<String> {
    read_json(&updates_dir(data).join("held-back.json")).unwrap_or_default()
}

pub fn hold_back(data: &Path, version: &str) -> std::io::Result<()> {
    let mut held = held_back(data);
    if !held.iter().any(|v| v == version) {
        held.push(version.to_string());
    }
    // A handful is all that can matter; the oldest go first.
    let excess = held.len().saturating_sub(20);
    held.drain(..excess);
    write_json(&updates_dir(data).join("held-back.json"), &held)
}

/// What [`settle`] did, for the log.
#[derive(Debug, PartialEq)]
pub enum Settled {
    Nothing,
    Updated { to: String },
    RolledBack { to: String },
}

/// Runs before the database is opened: finishes the story of an installed update.
/// `boot_id` is this boot's ([`current_boot_id`]).
pub fn settle(data: &Path, running_version: &str, boot_id: &str) -> std::io::Result<Settled> {
    let Some(p) = pending(data) else {
        return Ok(Settled::Nothing);
    };
    if p.boot_id == boot_id {
        // homelabd restarted before the box did: the update still waits for its restart.
        return Ok(Settled::Nothing);
    }
    if running_version == p.to_version {
        set_last_result(
            data,
            true,
            &p.to_version,
            format!("Updated from {} to {}.", p.from_version, p.to_version),
        )?;
        clear_pending(data)?;
        return Ok(Settled::Updated { to: p.to_version });
    }
    if running_version == p.from_version {
        restore(data)?;
        hold_back(data, &p.to_version)?;
        set_last_result(
            data,
            false,
            &p.to_version,
            format!(
                "The update to {} failed and was rolled back — your data is as it was.",
                p.to_version
            ),
        )?;
        clear_pending(data)?;
        return Ok(Settled::RolledBack { to: p.to_version });
    }
    Ok(Settled::Nothing)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A setting stands for the data: whatever the store holds, it is copied and restored
    /// as a whole.
    const KEY: &str = "snapshot.test";

    async fn data_with_db(value: &str) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join(DB)).unwrap();
        store.set_setting(KEY, value.into()).await.unwrap();
        fs::create_dir_all(dir.path().join("secrets")).unwrap();
        fs::write(dir.path().join("secrets/master.key"), b"key-1").unwrap();
        (dir, store)
    }

    /// A data directory with `value` saved and an update from 1.0 to 2.0 installed.
    async fn installed_update(value: &str) -> (tempfile::TempDir, Store) {
        let (dir, store) = data_with_db(value).await;
        take(dir.path(), &store).await.unwrap();
        set_pending(
            dir.path(),
            &Pending {
                from_version: "1.0".into(),
                to_version: "2.0".into(),
                installed_at: 1,
                boot_id: "boot-1".into(),
            },
        )
        .unwrap();
        (dir, store)
    }

    async fn value(data: &Path) -> String {
        let store = Store::open(&data.join(DB)).unwrap();
        let v = store.setting(KEY).await.unwrap().unwrap();
        store.close().await.unwrap();
        v
    }

    #[tokio::test]
    async fn a_fallback_restores_the_snapshot_and_says_so() {
        let (dir, store) = installed_update("before").await;
        let data = dir.path();
        // The new version changed the data, then the bootloader fell back.
        store.set_setting(KEY, "after".into()).await.unwrap();
        store.close().await.unwrap();
        fs::write(data.join("secrets/master.key"), b"key-2").unwrap();
        assert_eq!(value(data).await, "after");

        // Only homelabd restarted (same boot): the update still waits, nothing is restored.
        assert_eq!(settle(data, "1.0", "boot-1").unwrap(), Settled::Nothing);
        assert!(pending(data).is_some());
        assert_eq!(value(data).await, "after");

        // The next boot runs the old version: the bootloader fell back.
        assert_eq!(
            settle(data, "1.0", "boot-2").unwrap(),
            Settled::RolledBack { to: "2.0".into() }
        );
        assert_eq!(value(data).await, "before");
        assert_eq!(fs::read(data.join("secrets/master.key")).unwrap(), b"key-1");
        let last = last_result(data).unwrap();
        assert!(!last.ok);
        assert!(last.message.contains("rolled back"), "{}", last.message);
        assert!(pending(data).is_none());
        assert_eq!(
            held_back(data),
            vec!["2.0".to_string()],
            "never retried by itself"
        );
        // Safe to repeat: nothing pending, nothing done.
        assert_eq!(settle(data, "1.0", "boot-3").unwrap(), Settled::Nothing);
        assert_eq!(held_back(data).len(), 1);
    }

    #[tokio::test]
    async fn the_new_version_keeps_its_data() {
        let (dir, store) = installed_update("before").await;
        let data = dir.path();
        store.set_setting(KEY, "after".into()).await.unwrap();
        store.close().await.unwrap();
        assert_eq!(
            settle(data, "2.0", "boot-2").unwrap(),
            Settled::Updated { to: "2.0".into() }
        );
        assert_eq!(value(data).await, "after");
        assert!(last_result(data).unwrap().ok);
        assert!(held_back(data).is_empty());
    }

    #[tokio::test]
    async fn a_second_snapshot_replaces_the_first() {
        let (dir, store) = installed_update("first").await;
        store.set_setting(KEY, "second".into()).await.unwrap();
        take(dir.path(), &store).await.unwrap();
        store.set_setting(KEY, "later".into()).await.unwrap();
        store.close().await.unwrap();
        restore(dir.path()).unwrap();
        assert_eq!(value(dir.path()).await, "second");
        assert!(!updates_dir(dir.path()).join("snapshot.new").exists());
    }
}
