//! The SQLite database: the only code in the daemon that touches SQL.
//!
//! Two connections, each owned behind a mutex and only ever used from `spawn_blocking`, so no
//! query blocks the async runtime: the writer (every change, and reads that decide a change) and
//! one query-only reader for what pages and the API show. WAL lets the reader see the last commit
//! while the writer is inside a transaction or waiting for its fsync, so a page load never queues
//! behind a poll cycle's write. SQLite serialises writers anyway, and one reader keeps the number
//! of connections (and their page caches) fixed: simpler than a pool, and fast enough (issue 12).

mod apps;
mod audit;
mod backups;
mod browsers;
mod copy;
mod desired;
mod devices;
mod migrations;
mod names;
mod pools;
mod sessions;
mod settings;
mod tokens;
mod users;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;

pub use apps::{ActionRow, AppRow, DeploymentRow, StepRow};
pub use audit::AuditEntry;
pub use backups::{BackupRunRow, DestinationRow, PolicyRow, Space};
pub use copy::{check_copy, restore_copy};
pub use desired::{Desired, Import, Revision, Row, TABLES, owned_by};
pub use devices::{DeviceRow, HistoryPolicy, NewDevice, PollRecord, Recorded, Sample, StatusRow};
pub use migrations::SCHEMA_VERSION;
pub use names::NameRow;
pub use pools::SharedDbRow;
pub use sessions::SessionRow;
pub use tokens::ApiTokenRow;
pub use users::{UiMode, User};

/// The database's file name in the data directory.
pub const DB_FILE: &str = "homelab.db";

/// Errors from the database layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "the database at {path} was written by a newer homelabd (schema {found}, this version \
         knows up to {known}); it was not touched. Install the newer homelabd again, or restore \
         the backup taken before the update"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("the database is closed (the daemon is shutting down)")]
    Closed,
    #[error("database task failed: {0}")]
    Join(String),
    /// The database's files, as files: a copy that cannot be written or synced.
    #[error("database file error: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Conflict(&'static str),
}

/// A cheap-to-clone handle on the database.
#[derive(Clone)]
pub struct Store {
    // `Option` so `close()` can drop the connection (checkpointing the WAL) while handles exist.
    conn: Arc<Mutex<Option<Connection>>>,
    /// The query-only connection for `read`; its own lock, so reads wait only for other reads
    /// (each a few milliseconds), never for the writer's transaction.
    reader: Arc<Mutex<Option<Connection>>>,
    /// Counts the times sessions were deleted (sign-out, sign-out everywhere, a password
    /// change, idle expiry), so open event streams re-check theirs at once instead of serving
    /// a signed-out page. A watch, not a queue: a burst of deletions wakes each stream once.
    sessions_ended: Arc<tokio::sync::watch::Sender<u64>>,
    /// Bumped after every committed change to devices, their status or history, so what is
    /// built from them once (the devices board) knows when it is out of date.
    devices_changed: Arc<std::sync::atomic::AtomicU64>,
}

/// Each connection's page cache, in KiB (SQLite's convention for a negative `cache_size`):
/// half SQLite's default. Pages beyond it come from the kernel's file cache, which costs a
/// system call, not a disk read, and is not this process's memory; the hot pages (the latest
/// samples, statuses, rollups) fit.
const CACHE_KIB: i64 = -1024;

/// How long a statement waits for a lock held by another process (e.g. `homelabd setup-code`
/// reading while the daemon writes) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl Store {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    /// Blocking: call before the server starts or from `spawn_blocking`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Refuse a newer schema before changing anything, not even the journal mode.
        migrations::check_not_newer(&conn, path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // FULL: every commit reaches the disk before it is reported done. The appliance loses
        // power without warning; NORMAL could then forget the last commits (a claim, a deploy
        // journal step). Writes here are few and small, so the cost is not felt.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "cache_size", CACHE_KIB)?;
        migrations::migrate(&mut conn, path)?;
        // Opened after the migrations, so it never sees an older schema. Read-write at the file
        // level (a read-only WAL connection needs the -shm file to exist already), but
        // `query_only` refuses any change made through it.
        let reader = Connection::open(path)?;
        reader.busy_timeout(BUSY_TIMEOUT)?;
        reader.pragma_update(None, "query_only", true)?;
        reader.pragma_update(None, "cache_size", CACHE_KIB)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(Some(conn))),
            reader: Arc::new(Mutex::new(Some(reader))),
            sessions_ended: Arc::new(tokio::sync::watch::Sender::new(0)),
            devices_changed: Default::default(),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub(crate) async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
            // back on drop), so a poisoned lock is safe to keep using.
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_mut() {
                Some(c) => f(c),
                None => Err(StoreError::Closed),
            }
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }

    /// `call` for a change to devices, their status or history: on success the devices
    /// generation moves on, after the commit (whoever sees the new number reads the change) and
    /// on the blocking thread itself, so a caller that stops waiting (a client that left) cannot
    /// leave a committed change unannounced.
    pub(crate) async fn call_devices<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let changed = self.devices_changed.clone();
        self.call(move |c| {
            let out = f(c);
            if out.is_ok() {
                changed.fetch_add(1, std::sync::atomic::Ordering::Release);
            }
            out
        })
        .await
    }

    /// Runs the read-only `f` with the reader connection on the blocking pool. It sees every
    /// transaction committed before the call, never one in progress.
    pub(crate) async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let conn = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            // Poisoning is harmless here too: the reader holds no transaction across calls.
            let guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_ref() {
                Some(c) => f(c),
                None => Err(StoreError::Closed),
            }
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }

    /// How many changes to devices, their status or history were committed since start.
    pub fn devices_generation(&self) -> u64 {
        self.devices_changed
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Cheap liveness probe for `/healthz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.call(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .await
            .map(|_| ())
    }

    /// Checkpoints the WAL and closes the connection. Later calls fail with `Closed`.
    pub async fn close(&self) -> Result<(), StoreError> {
        let conn = self.conn.clone();
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            // The reader first: a checkpoint that truncates the WAL needs no reader inside it.
            if let Some(r) = reader.lock().unwrap_or_else(|p| p.into_inner()).take() {
                r.close().map_err(|(_, e)| e)?;
            }
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = guard.take() {
                c.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
                c.close().map_err(|(_, e)| e)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }

    /// The schema version of the open database.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        self.call(|c| Ok(migrations::user_version(c)?)).await
    }
}

/// Seconds since the Unix epoch; the database stores every time this way.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
