//! Over-the-air updates of the appliance, the boring way: the owner brings an update file (a
//! RAUC bundle, signed, verity format) and chooses when to install it; its signature is
//! checked before anything changes; the data is snapshotted; RAUC writes the other root slot
//! and makes it the next boot; the owner restarts when it suits them. The new slot is marked
//! good only once homelabd is healthy on it (homelab-mark-good.service); if it never gets
//! there, the bootloader falls back, and this daemon, started again on the old slot, restores
//! the snapshot before it opens the database ([`snapshot::settle`]).
//!
//! homelabd holds no privilege for any of it: RAUC's service (root) does the installing, and a
//! root path unit (homelab-reboot.path) restarts the box when asked through a file.

pub mod auto;
pub mod channel;
pub mod rauc;
pub mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::io::AsyncWriteExt;

use crate::busy::{BusyGuard, BusySet};
use crate::config::OtaConfig;
use crate::events::{Event, EventBus};
use crate::store::Store;

/// Largest update file accepted (the stand-in's are ~120 MB; a board's well under 1 GB).
pub const MAX_BUNDLE_BYTES: u64 = 2 << 30;
/// The file an uploaded bundle is kept in until it is installed or replaced.
const STAGED: &str = "update.raucb";
/// Where a checked update on the channel is remembered when it is streamed, not downloaded
/// ([`StreamRecord`]); it takes the place of the kept file.
const STREAM_RECORD: &str = "update.stream.json";

/// Where an install is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Idle,
    Snapshot,
    Installing,
    /// Installed; the new version starts at the next restart.
    Installed,
    /// An update file is coming from the update channel.
    Downloading,
    Failed,
}

/// The install in progress (or the last one, until the next starts).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Progress {
    pub phase: Phase,
    pub percent: u8,
    pub words: String,
    pub version: Option<String>,
    pub message: Option<String>,
}

/// An update that passed its signature check and waits to be installed: a file uploaded or
/// downloaded, or the channel's bundle that RAUC streams when it installs.
#[derive(Debug, Clone, Serialize)]
pub struct Staged {
    pub version: String,
    pub size: u64,
    /// Installed by streaming from the channel: nothing is stored on the box meanwhile.
    pub streamed: bool,
}

/// The channel's bundle, checked and waiting to be streamed.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
struct StreamRecord {
    /// The update channel (its manifest's address) it came from: a record of another channel
    /// than the one set now is forgotten.
    channel: String,
    url: String,
    version: String,
    size: u64,
    /// The signed manifest's hash as RAUC saw it when checking: the install requires it.
    manifest_hash: Option<String>,
}

/// Where the update to install comes from.
#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    /// RAUC streams it from the update channel.
    Url(StreamRecord),
}

/// Everything the Updates page shows.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateStatus {
    pub version: String,
    /// Whether this system can install updates (RAUC present).
    pub available: bool,
    /// Updates from the channel are streamed (only what changed is downloaded).
    pub streaming: bool,
    pub unavailable_reason: Option<String>,
    pub booted_slot: Option<String>,
    pub slots: Vec<rauc::Slot>,
    pub staged: Option<Staged>,
    pub progress: Progress,
    pub last_result: Option<snapshot::LastResult>,
    pub channel: auto::ChannelStatus,
}

/// Errors, each in words the owner can act on.
#[derive(Debug, thiserror::Error)]
pub enum OtaError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Busy(String),
    #[error("Updates are not available here: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Rauc(#[from] rauc::RaucError),
    #[error("Could not store the update file: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Channel(#[from] channel::ChannelError),
}

/// Room left for the database and logs while an update file is kept.
const SPACE_TO_SPARE: u64 = 64 << 20;

fn free_space(dir: &Path) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    Some(st.blocks_available() as u64 * st.fragment_size() as u64)
}

fn no_space(size: u64, free: u64) -> OtaError {
    use crate::units::human_bytes;
    OtaError::Invalid(format!(
        "There is not enough room on the box for this update file ({} needed, {} free). Nothing changed.",
        human_bytes(size.saturating_add(SPACE_TO_SPARE)),
        human_bytes(free)
    ))
}

/// The version of the system this daemon runs on: the image's (os-release of the appliance),
/// or the daemon's own when it runs on an ordinary Linux host.
pub fn system_version() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim_matches('"').to_string())
    };
    match (field("ID="), field("VERSION_ID=")) {
        (Some(id), Some(version)) if id == "homelab" => version,
        _ => env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// The updates service.
pub struct Ota {
    data: PathBuf,
    cfg: OtaConfig,
    store: Store,
    events: EventBus,
    version: String,
    busy: BusySet,
    progress: Arc<Mutex<Progress>>,
    /// What the kept update file is, read from it once (RAUC checks its signature to say).
    staged: Mutex<Option<Staged>>,
    fetcher: channel::Fetcher,
    /// What the update channel said when it was last asked.
    last_check: Mutex<Option<auto::Check>>,
    /// Wakes the update window's loop at once (the settings changed).
    wake: tokio::sync::Notify,
    /// After an automatic update stopped on an error, the window waits until then to retry.
    auto_retry_after: Mutex<i64>,
}

impl Ota {
    pub fn new(data: &Path, cfg: OtaConfig, store: Store, events: EventBus) -> Ota {
        let version = system_version();
        Ota {
            data: data.to_path_buf(),
            fetcher: channel::Fetcher::new(&cfg.ca_certs, &version),
            cfg,
            store,
            events,
            version,
            last_check: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            auto_retry_after: Mutex::default(),
            busy: BusySet::default(),
            progress: Arc::default(),
            staged: Mutex::default(),
        }
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    fn staged_path(&self) -> PathBuf {
        snapshot::updates_dir(&self.data).join(STAGED)
    }

    fn stream_record_path(&self) -> PathBuf {
        snapshot::updates_dir(&self.data).join(STREAM_RECORD)
    }

    /// The checked bundle waiting to be streamed, while it still applies: streaming is on and
    /// the channel it came from is still the one set (else it is forgotten).
    async fn stream_record(&self) -> Option<StreamRecord> {
        let record: StreamRecord = snapshot::read_json(&self.stream_record_path())?;
        if self.cfg.stream && self.channel_settings().await.url.as_ref() == Some(&record.channel) {
            return Some(record);
        }
        let _ = self.forget_kept().await;
        None
    }

    /// Forgets the update waiting to be installed, whichever kind it is.
    async fn forget_kept(&self) -> std::io::Result<()> {
        self.set_staged(None);
        for path in [self.staged_path(), self.stream_record_path()] {
            match tokio::fs::remove_file(path).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Remembers the channel's checked bundle for streaming; it replaces a kept file.
    async fn keep_stream(&self, record: &StreamRecord) -> Result<(), OtaError> {
        self.forget_kept().await?;
        snapshot::write_json(&self.stream_record_path(), record)?;
        Ok(())
    }

    /// The update waiting to be installed, if any.
    async fn kept_source(&self) -> Option<Source> {
        if let Some(r) = self.stream_record().await {
            return Some(Source::Url(r));
        }
        let file = self.staged_path();
        file.exists().then_some(Source::File(file))
    }

    /// The install under way or just finished; after a restart of homelabd alone (the box
    /// not yet restarted), an installed update is known from its marker on disk.
    fn progress(&self) -> Progress {
        let p = self
            .progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match snapshot::pending(&self.data) {
            Some(pending) if p.phase == Phase::Idle && pending.from_version == self.version => {
                Progress {
                    phase: Phase::Installed,
                    percent: 100,
                    words: "Installed".into(),
                    version: Some(pending.to_version),
                    message: None,
                }
            }
            _ => p,
        }
    }

    fn set_staged(&self, staged: Option<Staged>) {
        *self.staged.lock().unwrap_or_else(|p| p.into_inner()) = staged;
    }

    /// The kept update file, if any.
    async fn staged(&self) -> Option<Staged> {
        let cached = self
            .staged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(c) = cached
            && !c.streamed
        {
            return Some(c);
        }
        // Its signature was checked when it was kept; install checks it again. Read again
        // each time: the channel may have changed since.
        if let Some(r) = self.stream_record().await {
            let staged = Staged {
                version: r.version,
                size: r.size,
                streamed: true,
            };
            self.set_staged(Some(staged.clone()));
            return Some(staged);
        }
        let size = tokio::fs::metadata(self.staged_path()).await.ok()?.len();
        let info = rauc::info(&self.cfg.rauc, &self.staged_path()).await.ok()?;
        let staged = Staged {
            version: info.version,
            size,
            streamed: false,
        };
        self.set_staged(Some(staged.clone()));
        Some(staged)
    }

    fn claim(&self) -> Result<BusyGuard, OtaError> {
        self.busy.try_claim("update").ok_or_else(|| {
            OtaError::Busy(
                "An update file is being received or installed; wait for it to finish.".into(),
            )
        })
    }

    pub async fn status(&self) -> UpdateStatus {
        let (available, reason, booted, slots) = match rauc::status(&self.cfg.rauc).await {
            Ok(s) => (true, None, Some(s.booted), s.slots),
            Err(rauc::RaucError::Failed(m)) => (
                false,
                Some(format!("This system is not set up for A/B updates ({m}).")),
                None,
                Vec::new(),
            ),
            Err(e) => (false, Some(e.to_string()), None, Vec::new()),
        };
        let staged = if available { self.staged().await } else { None };
        UpdateStatus {
            version: self.version.clone(),
            available,
            streaming: self.cfg.stream,
            unavailable_reason: reason,
            booted_slot: booted,
            slots,
            staged,
            progress: self.progress(),
            last_result: snapshot::last_result(&self.data),
            channel: self.channel_status().await,
        }
    }

    /// Receives an update file and checks its signature at once; a refused file is not kept.
    /// `announced` is the size the sender declared, checked against the free space first.
    pub async fn receive<S, E>(
        &self,
        mut body: S,
        announced: Option<u64>,
    ) -> Result<Staged, OtaError>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        use futures_util::StreamExt;
        let _guard = self.claim()?;
        // Before reading a large body: where updates cannot work, say so at once.
        self.rauc_status().await?;
        let dir = snapshot::updates_dir(&self.data);
        tokio::fs::create_dir_all(&dir).await?;
        let part = dir.join("upload.part");
        // An earlier upload's leftovers (an interrupted one, the file being replaced) first.
        let _ = tokio::fs::remove_file(&part).await;
        self.forget_kept().await?;
        let free = free_space(&dir);
        if let (Some(size), Some(free)) = (announced, free)
            && size.saturating_add(SPACE_TO_SPARE) > free
        {
            return Err(no_space(size, free));
        }
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&part)
            .await?;
        let mut size: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = tokio::fs::remove_file(&part).await;
                    return Err(OtaError::Invalid(format!(
                        "The upload was interrupted ({e}). Nothing changed; try again."
                    )));
                }
            };
            size += chunk.len() as u64;
            if size > MAX_BUNDLE_BYTES {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(OtaError::Invalid(
                    "This file is far larger than any Homelab update (over 2 GB); it is not one."
                        .into(),
                ));
            }
            if let Err(e) = file.write_all(&chunk).await {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(match e.kind() {
                    std::io::ErrorKind::StorageFull => no_space(size, free.unwrap_or(0)),
                    _ => e.into(),
                });
            }
        }
        file.sync_all().await?;
        drop(file);
        if size == 0 {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(OtaError::Invalid("The update file is empty.".into()));
        }
        let checked = self.check(&Source::File(part.clone())).await;
        match checked {
            Ok(info) => {
                tokio::fs::rename(&part, self.staged_path()).await?;
                let staged = Staged {
                    version: info.version,
                    size,
                    streamed: false,
                };
                self.set_staged(Some(staged.clone()));
                Ok(staged)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                Err(e)
            }
        }
    }

    /// The signature, the device kind and the version, before anything is written.
    async fn rauc_status(&self) -> Result<rauc::Status, OtaError> {
        rauc::status(&self.cfg.rauc).await.map_err(|e| match e {
            rauc::RaucError::Missing => OtaError::Unavailable(
                "RAUC is not installed (this is not the Homelab appliance).".into(),
            ),
            rauc::RaucError::Failed(m)
            | rauc::RaucError::Refused(m)
            | rauc::RaucError::Unreachable(m) => {
                OtaError::Unavailable(format!("this system is not set up for A/B updates ({m})."))
            }
        })
    }

    async fn check(&self, source: &Source) -> Result<rauc::BundleInfo, OtaError> {
        let status = self.rauc_status().await?;
        let info = match source {
            Source::File(bundle) => rauc::info(&self.cfg.rauc, bundle).await?,
            Source::Url(record) => rauc::inspect_url(&record.url).await?,
        };
        if info.compatible != status.compatible {
            return Err(OtaError::Invalid(format!(
                "This update is for “{}” and this box is “{}”, so it was not installed.",
                info.compatible, status.compatible
            )));
        }
        if info.version == self.version {
            return Err(OtaError::Invalid(format!(
                "This box already runs Homelab {}.",
                self.version
            )));
        }
        Ok(info)
    }

    /// Installs the staged update in the background; progress goes to the Updates page.
    pub async fn install(self: &Arc<Self>) -> Result<String, OtaError> {
        let (guard, source, info) = self.start_install().await?;
        let version = info.version.clone();
        let this = self.clone();
        tokio::spawn(async move {
            let _ = this.finish_install(guard, source, info).await;
        });
        Ok(version)
    }

    /// Claims the updates service and checks the kept update again (a file could have been
    /// replaced since it arrived; the channel could serve another file now).
    async fn start_install(&self) -> Result<(BusyGuard, Source, rauc::BundleInfo), OtaError> {
        let guard = self.claim()?;
        let Some(source) = self.kept_source().await else {
            return Err(OtaError::Invalid(
                "There is no update file to install. Upload one first.".into(),
            ));
        };
        let info = self.check(&source).await?;
        if let Source::Url(record) = &source
            && info.version != record.version
        {
            let _ = self.forget_kept().await;
            return Err(OtaError::Invalid(format!(
                "The update channel now serves Homelab {} instead of {}. Get the update ready again.",
                info.version, record.version
            )));
        }
        self.set_progress(
            Phase::Snapshot,
            0,
            "Saving a copy of your data",
            Some(&info.version),
            None,
        );
        Ok((guard, source, info))
    }

    /// Installs, records the outcome (page, last result, activity) and returns it.
    async fn finish_install(
        &self,
        _guard: BusyGuard,
        source: Source,
        info: rauc::BundleInfo,
    ) -> Result<(), OtaError> {
        match self.run_install(&source, &info).await {
            Ok(()) => {
                self.set_progress(
                    Phase::Installed,
                    100,
                    "Installed",
                    Some(&info.version),
                    None,
                );
                let _ = snapshot::set_last_result(
                    &self.data,
                    true,
                    &info.version,
                    format!(
                        "Homelab {} is installed and starts at the next restart.",
                        info.version
                    ),
                );
                self.audit(format!(
                    "Installed update {} (restart to start it)",
                    info.version
                ))
                .await;
                Ok(())
            }
            Err(e) => {
                // No restart will start it: the marker goes, the old slot stays the boot.
                let _ = snapshot::clear_pending(&self.data);
                let message = e.to_string();
                self.set_progress(
                    Phase::Failed,
                    0,
                    "Not installed",
                    Some(&info.version),
                    Some(&message),
                );
                let _ =
                    snapshot::set_last_result(&self.data, false, &info.version, message.clone());
                self.audit(format!("Update {} not installed: {message}", info.version))
                    .await;
                Err(e)
            }
        }
    }

    async fn run_install(&self, source: &Source, info: &rauc::BundleInfo) -> Result<(), OtaError> {
        // Audited before the snapshot, so a rolled-back update still shows it was tried.
        self.audit(format!(
            "Installing update {} (data saved first)",
            info.version
        ))
        .await;
        snapshot::take(&self.data, &self.store).await?;
        snapshot::set_pending(
            &self.data,
            &snapshot::Pending {
                from_version: self.version.clone(),
                to_version: info.version.clone(),
                installed_at: crate::store::now_unix(),
                boot_id: snapshot::current_boot_id(),
            },
        )?;
        self.set_progress(
            Phase::Installing,
            0,
            "Installing",
            Some(&info.version),
            None,
        );
        let progress = self.progress.clone();
        let events = self.events.clone();
        let report = move |pct, words| {
            let mut p = progress.lock().unwrap_or_else(|p| p.into_inner());
            p.percent = pct;
            p.words = words;
            drop(p);
            events.publish(Event::Update);
        };
        let bundle = match source {
            Source::File(file) => rauc::Bundle::File(file),
            Source::Url(record) => rauc::Bundle::Url {
                url: &record.url,
                manifest_hash: record.manifest_hash.as_deref(),
            },
        };
        rauc::install(&self.cfg.rauc, bundle, report).await?;
        let _ = self.forget_kept().await;
        Ok(())
    }

    /// Asks the system to restart (into the new slot, when one was installed).
    pub async fn reboot(&self) -> Result<(), OtaError> {
        let request = async {
            if let Some(dir) = self.cfg.reboot_request.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            tokio::fs::write(&self.cfg.reboot_request, b"reboot\n").await
        };
        request.await.map_err(|e| {
            OtaError::Unavailable(format!(
                "the restart could not be asked for ({e}: {}). On the appliance \
                 homelab-reboot.path watches that file; elsewhere restart the machine yourself.",
                self.cfg.reboot_request.display()
            ))
        })
    }

    /// Forgets an uploaded update file that the owner decided not to install.
    pub async fn discard(&self) -> Result<(), OtaError> {
        let _guard = self.claim()?;
        Ok(self.forget_kept().await?)
    }

    fn set_progress(
        &self,
        phase: Phase,
        percent: u8,
        words: &str,
        version: Option<&str>,
        message: Option<&str>,
    ) {
        *self.progress.lock().unwrap_or_else(|p| p.into_inner()) = Progress {
            phase,
            percent,
            words: words.to_string(),
            version: version.map(str::to_string),
            message: message.map(str::to_string),
        };
        self.events.publish(Event::Update);
    }

    /// Records what the update did on its own (the owner's requests are audited by the
    /// routes, under their name).
    pub async fn audit(&self, what: String) {
        tracing::info!(what, "update");
        self.events
            .audit_by_homelab(&self.store, "system.update", what)
            .await;
    }
}
