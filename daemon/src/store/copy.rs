//! Whole-database copies: a consistent copy of the live database (the update's snapshot takes
//! one), and putting such a copy back in place of the database before it is opened.

use std::fs;
use std::io;
use std::path::Path;

use super::{Store, StoreError};

impl Store {
    /// Writes a consistent copy of the database to `target`, synced to disk before it
    /// returns. SQLite's `VACUUM INTO` copies the last commit while the daemon keeps running
    /// (and compacts it); it refuses a `target` that exists and is not empty. Through the
    /// writer's lock, as before, so no change of the daemon's own is half in the copy.
    pub async fn copy_to(&self, target: &Path) -> Result<(), StoreError> {
        let target = target.to_path_buf();
        self.call(move |c| {
            // Not lossy: a mangled name would put the copy somewhere else.
            let name = target.to_str().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is not a UTF-8 path", target.display()),
                )
            })?;
            c.execute("VACUUM INTO ?1", [name])?;
            fs::File::open(&target)?.sync_all()?;
            Ok(())
        })
        .await
    }
}

/// Puts the copy at `copy` in place of the database at `db`. Only while no [`Store`] has `db`
/// open: at start, before [`Store::open`] (a restore after an update that fell back). The
/// database's WAL and shared-memory files go: they belong to the database being replaced, and
/// SQLite would apply the old WAL to the copy.
///
/// Safe to repeat after a power cut at any point: the copy is complete on disk before the old
/// WAL goes, and the rename is atomic; a cut before the rename leaves the old database, to be
/// replaced by the next try.
pub fn restore_copy(db: &Path, copy: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = db.with_extension("db.restore");
    {
        let mut from = fs::File::open(copy)?;
        // Owner only, like every file in the data directory.
        let mut to = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        io::copy(&mut from, &mut to)?;
        to.sync_all()?;
    }
    for suffix in ["-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        match fs::remove_file(&name) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    fs::rename(&tmp, db)?;
    if let Some(dir) = db.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "copy.test";

    async fn value(db: &Path) -> Option<String> {
        let store = Store::open(db).unwrap();
        let v = store.setting(KEY).await.unwrap();
        store.close().await.unwrap();
        v
    }

    #[tokio::test]
    async fn a_copy_taken_while_open_is_put_back_in_place_of_later_changes() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(super::super::DB_FILE);
        let copy = dir.path().join("copy.db");
        let store = Store::open(&db).unwrap();
        store.set_setting(KEY, "before".into()).await.unwrap();
        store.copy_to(&copy).await.unwrap();
        // An existing copy is never overwritten.
        assert!(store.copy_to(&copy).await.is_err());
        store.set_setting(KEY, "after".into()).await.unwrap();
        store.close().await.unwrap();
        assert_eq!(value(&db).await.as_deref(), Some("after"));

        restore_copy(&db, &copy).unwrap();
        assert_eq!(value(&db).await.as_deref(), Some("before"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&db).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(copy.exists(), "the copy stays for another restore");
    }

    #[tokio::test]
    async fn file_trouble_is_reported_as_io() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join(super::super::DB_FILE)).unwrap();
        let odd = dir
            .path()
            .join(std::ffi::OsStr::from_bytes(b"copy-\xff.db"));
        let err = store.copy_to(&odd).await.unwrap_err();
        assert!(matches!(err, StoreError::Io(_)), "{err:?}");
        assert!(!odd.exists());
        assert!(matches!(
            restore_copy(&dir.path().join("x.db"), &dir.path().join("absent.db")),
            Err(e) if e.kind() == io::ErrorKind::NotFound
        ));
    }
}

/// Whether a database copy (a box's own backup, before it may replace this box's) is one this
/// build can start with: SQLite finds it sound, its schema is ours and not newer, and it has
/// an owner (a homelab with no account would leave the box open to whoever claims it next,
/// with the keys of the one who made it). Err: why not, in the owner's words.
pub fn check_copy(copy: &Path) -> Result<(), String> {
    let unreadable = |e: rusqlite::Error| format!("its database cannot be read ({e})");
    let conn = rusqlite::Connection::open_with_flags(
        copy,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(unreadable)?;
    // The schema is only read, never run: no trigger or view of a crafted file executes.
    conn.pragma_update(None, "trusted_schema", "OFF")
        .map_err(unreadable)?;
    let sound: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(unreadable)?;
    if sound != "ok" {
        return Err("its database is damaged".into());
    }
    let version = super::migrations::user_version(&conn).map_err(unreadable)?;
    if version > super::SCHEMA_VERSION {
        return Err(
            "it was made by a newer Homelab: update this box first (Settings → Updates), then restore".into(),
        );
    }
    if version < 1 {
        return Err("it holds no Homelab database".into());
    }
    let owners: i64 = conn
        .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
        .map_err(unreadable)?;
    if owners < 1 {
        return Err("it has no owner account".into());
    }
    Ok(())
}

#[cfg(test)]
mod check_tests {
    use super::*;

    #[tokio::test]
    async fn a_copy_without_an_owner_or_from_a_newer_build_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("live.db")).unwrap();
        let copy = dir.path().join("copy.db");
        store.copy_to(&copy).await.unwrap();
        assert_eq!(check_copy(&copy).unwrap_err(), "it has no owner account");
        store.claim("admin".into(), "hash".into()).await.unwrap();
        let owned = dir.path().join("owned.db");
        store.copy_to(&owned).await.unwrap();
        assert_eq!(check_copy(&owned), Ok(()));
        let newer = rusqlite::Connection::open(&owned).unwrap();
        newer
            .pragma_update(None, "user_version", super::super::SCHEMA_VERSION + 1)
            .unwrap();
        drop(newer);
        assert!(check_copy(&owned).unwrap_err().contains("newer Homelab"));
        std::fs::write(&copy, b"not a database at all, just some bytes").unwrap();
        assert!(check_copy(&copy).is_err());
    }
}
