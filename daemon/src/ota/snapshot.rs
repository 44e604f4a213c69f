//! The update's safety net, kept beside the data and outside the database (a restored database
//! must not roll back the record of the update itself):
//!
//! - `updates/snapshot/`: a consistent copy of the database (SQLite's `VACUUM INTO`) with the
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

/// The files that make up the daemon's state, relative to the data directory. The database
/// is copied with `VACUUM INTO`; these are copied as they are.
const CONFIG_FILES: &[&str] = &["secrets/master.key", "tls/cert.pem", "tls/key.pem"];
const DB: &str = "homelab.db";

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

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let bytes = fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
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
/// The previous snapshot is replaced only once the new one is complete.
pub fn take(data: &Path, db: &rusqlite::Connection) -> std::io::Result<()> {
    let dir = snapshot_dir(data);
    let fresh = updates_dir(data).join("snapshot.new");
    let _ = fs::remove_dir_all(&fresh);
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&fresh)?;
    }
    let target = fresh.join(DB);
    db.execute("VACUUM INTO ?1", [target.to_string_lossy().as_ref()])
        .map_err(std::io::Error::other)?;
    fs::File::open(&target)?.sync_all()?;
    for name in CONFIG_FILES {
        let from = data.join(name);
        if from.exists() {
            let to = fresh.join(name);
            fs::create_dir_all(to.parent().unwrap_or(&fresh))?;
            fs::copy(&from, &to)?;
            fs::File::open(&to)?.sync_all()?;
        }
    }
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&fresh, &dir)?;
    fs::File::open(updates_dir(data))?.sync_all()
}

/// Puts the snapshot back in place of the current files (the database's WAL files go: they
/// belong to the database being replaced).
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
    for wal in ["homelab.db-wal", "homelab.db-shm"] {
        let _ = fs::remove_file(data.join(wal));
    }
    let bytes = fs::read(dir.join(DB))?;
    write_durably(&data.join(DB), &bytes)
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

    fn data_with_db(value: &str) -> (tempfile::TempDir, rusqlite::Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = rusqlite::Connection::open(dir.path().join(DB)).unwrap();
        conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (v TEXT);")
            .unwrap();
        conn.execute("INSERT INTO t VALUES (?1)", [value]).unwrap();
        fs::create_dir_all(dir.path().join("secrets")).unwrap();
        fs::write(dir.path().join("secrets/master.key"), b"key-1").unwrap();
        (dir, conn)
    }

    /// A data directory with `value` saved and an update from 1.0 to 2.0 installed.
    fn installed_update(value: &str) -> (tempfile::TempDir, rusqlite::Connection) {
        let (dir, conn) = data_with_db(value);
        take(dir.path(), &conn).unwrap();
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
        (dir, conn)
    }

    fn value(data: &Path) -> String {
        let conn = rusqlite::Connection::open(data.join(DB)).unwrap();
        conn.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_fallback_restores_the_snapshot_and_says_so() {
        let (dir, conn) = installed_update("before");
        let data = dir.path();
        // The new version changed the data, then the bootloader fell back.
        conn.execute("UPDATE t SET v = 'after'", []).unwrap();
        drop(conn);
        fs::write(data.join("secrets/master.key"), b"key-2").unwrap();
        assert_eq!(value(data), "after");

        // Only homelabd restarted (same boot): the update still waits, nothing is restored.
        assert_eq!(settle(data, "1.0", "boot-1").unwrap(), Settled::Nothing);
        assert!(pending(data).is_some());
        assert_eq!(value(data), "after");

        // The next boot runs the old version: the bootloader fell back.
        assert_eq!(
            settle(data, "1.0", "boot-2").unwrap(),
            Settled::RolledBack { to: "2.0".into() }
        );
        assert_eq!(value(data), "before");
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

    #[test]
    fn the_new_version_keeps_its_data() {
        let (dir, conn) = installed_update("before");
        let data = dir.path();
        conn.execute("UPDATE t SET v = 'after'", []).unwrap();
        drop(conn);
        assert_eq!(
            settle(data, "2.0", "boot-2").unwrap(),
            Settled::Updated { to: "2.0".into() }
        );
        assert_eq!(value(data), "after");
        assert!(last_result(data).unwrap().ok);
        assert!(held_back(data).is_empty());
    }
}
