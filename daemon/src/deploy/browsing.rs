//! Browsing an app's backups: the entries of one folder of one of its snapshots (`restic ls`)
//! and one file streamed out of one (`restic dump`), each run in a one-off restic container on
//! the app's device, so the data goes from the destination through the device to the browser
//! and is never stored on the box.
//!
//! Only the app's own snapshots (restic's listing names the snapshot's host, which a backup
//! sets to the app's slug), and only paths inside what a backup holds: the app's volumes at
//! `/data/<volume key>/…` and its database dump at `/database/…`. Every read is bounded:
//! listings by the box-wide `listings` semaphore, a deadline and an entry cap (restic is
//! stopped once the cap is reached); downloads by a few at once, a deadline, a stall limit and
//! a channel of a few chunks, so a file is never held whole in memory.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, SemaphorePermit, mpsc, oneshot};

use super::{DeployError, Deployer, Remote, Trouble};
use crate::backup::restic::{self, ResticFailure};
use crate::docker::run::{Ended, StreamLimits};
use crate::ssh::{self, HostKeyPolicy, Login};
use crate::store::DestinationRow;

/// Entries of one folder shown at most; a bigger folder is cut short (and says so). restic
/// lists a folder in name order, so these are the first by name.
pub const MAX_ENTRIES: usize = 5000;
/// Longest path asked for, in bytes.
pub const MAX_PATH: usize = 1024;
/// A listing reads the repository's index and one folder's trees: seconds, minutes at worst
/// over a slow link.
const LIST_DEADLINE: Duration = Duration::from_secs(120);
/// A download may be a large video over a slow link; one still running after this is stopped.
const DOWNLOAD_DEADLINE: Duration = Duration::from_secs(6 * 3600);
/// A download whose browser takes nothing for this long is stopped (it went away without
/// closing its connection, or the owner paused it and left).
const STALL: Duration = Duration::from_secs(300);
/// Chunks of restic's output held for the reader (the engine sends up to ~32 KiB at a time):
/// enough to keep the data flowing, small enough that a download costs the box little memory.
const LIST_CHUNKS: usize = 16;
const DOWNLOAD_CHUNKS: usize = 8;
/// Longest line of `restic ls --json` read (a node is a few hundred bytes; restic's names are
/// at most a file system's 255 bytes, paths a few KiB); a longer one is skipped.
const MAX_LINE: usize = 64 * 1024;
/// Downloads running at once, box-wide. Each holds a restic container on a device and an SSH
/// connection for as long as the browser reads, so they do not take the listings' turns.
pub const DOWNLOADS_AT_ONCE: usize = 2;
static DOWNLOADS: Semaphore = Semaphore::const_new(DOWNLOADS_AT_ONCE);

/// What an entry in a backup is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    Dir,
    File,
    Symlink,
    /// Devices, pipes, sockets: listed, never downloaded.
    Other,
}

/// One entry of a folder in a backup.
#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    pub name: String,
    /// Where it is in the backup (what opens or downloads it).
    pub path: String,
    pub kind: EntryKind,
    /// Bytes (files; 0 for the others).
    pub size: u64,
    /// When it last changed (RFC 3339, as restic recorded it).
    pub mtime: String,
    /// Permission bits in octal, as `ls -l` users read them: `0644`, `1777`.
    pub mode: String,
}

/// A folder of a backup, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct Folder {
    pub destination_id: i64,
    pub destination: String,
    /// The snapshot's full id.
    pub snapshot: String,
    pub short_id: String,
    /// When the backup was made (RFC 3339, as restic recorded it).
    pub time: String,
    /// The folder (`/` is the top: the app's volumes and its database).
    pub path: String,
    /// Folders first, then by name.
    pub entries: Vec<FileEntry>,
    /// More than `MAX_ENTRIES` entries: only the first ones (by name) are listed.
    pub cut_short: bool,
}

/// A file out of a backup, as it streams from the device.
pub struct FileDownload {
    /// Its name, as stored (the web layer makes it safe for a header).
    pub name: String,
    /// Bytes, as listed: the stream is exactly this long unless it fails.
    pub size: u64,
    /// Its bytes; ends with an error when restic fails or is stopped part way, so a cut
    /// download never looks complete.
    pub body: Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>,
}

/// The snapshot as `restic ls` names it on its first line.
struct Listed {
    id: String,
    short_id: String,
    time: String,
}

/// One line of `restic ls --json`: the snapshot first, then one per node.
#[derive(Debug, Default, Deserialize)]
struct LsLine {
    #[serde(default)]
    struct_type: String,
    // The snapshot's line.
    #[serde(default)]
    id: String,
    #[serde(default)]
    short_id: String,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    time: String,
    // A node's line.
    #[serde(default)]
    name: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    size: u64,
    /// Go's `os.FileMode`: permission bits, and type and special bits high up.
    #[serde(default)]
    mode: u64,
    #[serde(default)]
    mtime: String,
}

impl LsLine {
    fn kind(&self) -> EntryKind {
        match self.kind.as_str() {
            "dir" => EntryKind::Dir,
            "file" => EntryKind::File,
            "symlink" => EntryKind::Symlink,
            _ => EntryKind::Other,
        }
    }

    fn entry(self) -> FileEntry {
        let kind = self.kind();
        FileEntry {
            size: if kind == EntryKind::File {
                self.size
            } else {
                0
            },
            mode: unix_mode(self.mode),
            name: self.name,
            path: self.path,
            kind,
            mtime: self.mtime,
        }
    }
}

/// Go's `os.FileMode` as Unix permission bits in octal (`0644`, `4755`, `1777`).
fn unix_mode(go: u64) -> String {
    let mut mode = go & 0o777;
    for (bit, unix) in [(1 << 23, 0o4000), (1 << 22, 0o2000), (1 << 20, 0o1000)] {
        if go & bit != 0 {
            mode |= unix;
        }
    }
    format!("{mode:04o}")
}

/// Checks a path asked for in a backup and returns it tidied (`//` and a trailing `/` gone).
/// `/` (the top of the backup) only when `top` is allowed (listings).
pub fn check_path(path: &str, top: bool) -> Result<String, DeployError> {
    let refused = |why: &str| Err(DeployError::BackupRefused(why.to_string()));
    if path.len() > MAX_PATH {
        return refused(&format!(
            "That path is too long (at most {MAX_PATH} characters). Open its folders one by one from the list."
        ));
    }
    if path.chars().any(char::is_control) {
        return refused(
            "A path cannot hold line breaks or other control characters. Choose a file or folder from the list.",
        );
    }
    if !path.starts_with('/') {
        return refused(
            "Paths in a backup start with /, like /data/… for the app's files. Choose a file or folder from the list.",
        );
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == ".." || *p == ".") {
        return refused(
            "A path cannot step out of its folder (no “..” or “.” in it). Choose a file or folder from the list.",
        );
    }
    match parts.first() {
        None if top => Ok("/".to_string()),
        None => refused("Choose a file to download, not the whole backup."),
        Some(&"data" | &"database") => Ok(format!("/{}", parts.join("/"))),
        Some(_) => refused(&format!(
            "A backup holds only the app's files (/data/…) and its database (/database/…), so {path} is not in it. Choose a file or folder from the list."
        )),
    }
}

fn check_snapshot(snapshot: &str) -> Result<(), DeployError> {
    if restic::valid_snapshot_id(snapshot) {
        Ok(())
    } else {
        Err(DeployError::BackupRefused(
            "That is not a backup's id: choose one from the app's list.".into(),
        ))
    }
}

/// The folder a path is in (`/` for the top ones).
fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// A suffix that keeps one-off containers started at the same time apart.
fn unique() -> String {
    let b = crate::secrets::random_bytes::<4>();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Cuts `buf` into whole lines for `on_line`; a line longer than `MAX_LINE` is skipped (its
/// rest up to the next line end too). False when `on_line` asked to stop.
fn lines(
    buf: &mut Vec<u8>,
    skipping: &mut bool,
    chunk: &[u8],
    on_line: &mut impl FnMut(&[u8]) -> bool,
) -> bool {
    let scanned = buf.len();
    buf.extend_from_slice(chunk);
    let mut from = 0;
    let mut search = scanned;
    while let Some(end) = buf[search..].iter().position(|b| *b == b'\n') {
        let end = search + end;
        let line = &buf[from..end];
        let go_on = if std::mem::take(skipping) {
            true
        } else {
            on_line(line)
        };
        from = end + 1;
        search = from;
        if !go_on {
            buf.clear();
            return false;
        }
    }
    buf.drain(..from);
    if buf.len() > MAX_LINE {
        buf.clear();
        *skipping = true;
    }
    true
}

impl Deployer {
    /// The entries of one folder of one of the app's snapshots at a destination (`/`: the
    /// top, the app's volumes and its database), folders first. Read from the app's device.
    pub async fn snapshot_folder(
        &self,
        slug: &str,
        destination_id: i64,
        snapshot: &str,
        path: &str,
    ) -> Result<Folder, DeployError> {
        let path = check_path(path, true)?;
        check_snapshot(snapshot)?;
        let row = self.destination(destination_id).await?;
        let remote = self.app_remote(slug).await?;
        let top = path == "/";
        let asked: Vec<&str> = if top {
            vec!["/data", "/database"]
        } else {
            vec![path.as_str()]
        };
        let mut entries = Vec::new();
        let (mut cut_short, mut is_folder, mut not_folder) = (false, top, false);
        let listed = self
            .restic_ls(&remote, &row, slug, snapshot, &asked, |node| {
                if node.path == path {
                    is_folder = node.kind() == EntryKind::Dir;
                    not_folder = !is_folder;
                    return true;
                }
                // restic lists the folder's own entries only, but a newer one may list more:
                // only the direct children count.
                let parent = parent_of(&node.path);
                let wanted = if top {
                    parent == "/data" || node.path == "/database"
                } else {
                    parent == path
                };
                if !wanted {
                    return true;
                }
                if entries.len() == MAX_ENTRIES {
                    cut_short = true;
                    return false;
                }
                entries.push(node.entry());
                true
            })
            .await?;
        if not_folder {
            return Err(DeployError::BackupRefused(format!(
                "{path} is a file in this backup, not a folder: download it instead."
            )));
        }
        if !is_folder {
            return Err(DeployError::BackupRefused(format!(
                "This backup has no folder {path}: it may have been made before that folder existed. Choose a folder from the list."
            )));
        }
        entries.sort_by(|a, b| {
            (a.kind != EntryKind::Dir)
                .cmp(&(b.kind != EntryKind::Dir))
                .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(Folder {
            destination_id: row.id,
            destination: row.name.clone(),
            snapshot: listed.id,
            short_id: listed.short_id,
            time: listed.time,
            path,
            entries,
            cut_short,
        })
    }

    /// One file of one of the app's snapshots at a destination, streamed from the app's
    /// device as restic reads it. It answers once the first bytes are there (or restic
    /// ended), so a failure before any data is an error in words, not a broken download.
    pub async fn snapshot_file(
        &self,
        slug: &str,
        destination_id: i64,
        snapshot: &str,
        path: &str,
    ) -> Result<FileDownload, DeployError> {
        let path = check_path(path, false)?;
        check_snapshot(snapshot)?;
        let turn = DOWNLOADS.try_acquire().map_err(|_| {
            DeployError::BackupRefused(format!(
                "{DOWNLOADS_AT_ONCE} downloads from backups are under way already. Wait for one to finish, then try again."
            ))
        })?;
        let row = self.destination(destination_id).await?;
        let remote = self.app_remote(slug).await?;

        // What it is, and that the snapshot is the app's: its listing.
        let mut found = None;
        let listed = self
            .restic_ls(&remote, &row, slug, snapshot, &[&path], |node| {
                if node.path == path {
                    found = Some(node);
                    return false;
                }
                true
            })
            .await?;
        let node = found.ok_or_else(|| {
            DeployError::BackupRefused(format!(
                "This backup has no file {path}: it may have been made before that file existed. Choose a file from the list."
            ))
        })?;
        match node.kind() {
            EntryKind::File => {}
            EntryKind::Dir => {
                return Err(DeployError::BackupRefused(format!(
                    "{path} is a folder: open it to see the files in it."
                )));
            }
            EntryKind::Symlink => {
                return Err(DeployError::BackupRefused(format!(
                    "{path} is a link to another file and holds no data of its own: download the file it points to."
                )));
            }
            EntryKind::Other => {
                return Err(DeployError::BackupRefused(format!(
                    "{path} is not a plain file (a device, pipe or socket), so it cannot be downloaded."
                )));
            }
        }

        // Its bytes on a connection of their own: a browser that reads slowly (or pauses)
        // holds up that connection only, never the device's shared one.
        let (session, reader) = self.own_connection(&remote).await?;
        let (target, creds) = self.credentials(&row).await?;
        let spec = self.restic_spec(
            &format!("homelab-restic-dump-{slug}-{}", unique()),
            &target,
            // No lock: a download must never stop a backup's forget or the weekly prune.
            &["dump", "--no-lock", &listed.id, &path],
            Vec::new(),
        );
        let stdin = creds.stdin();
        let started = crate::docker::run::run_streaming(
            &remote.docker,
            &reader,
            &spec,
            stdin.expose(),
            StreamLimits {
                deadline: DOWNLOAD_DEADLINE,
                stall: STALL,
                bound: DOWNLOAD_CHUNKS,
            },
        )
        .await;
        let streaming = match started {
            Ok(s) => s,
            Err(e) => {
                session.close().await;
                return Err(self.docker_error(&remote, e));
            }
        };
        let mut out = streaming.out;
        let running = streaming.ended;
        // Once the container is gone, its connection goes too; the outcome goes to the body.
        let (ended_tx, ended) = oneshot::channel();
        tokio::spawn(async move {
            let ran = running.await;
            session.close().await;
            let _ = ended_tx.send(ran);
        });
        let first = out.recv().await;
        if first.is_none() {
            match received(ended.await) {
                Ok(e) if e.success() => {}
                Ok(e) => return Err(self.restic_error(&remote, ResticFailure::Said(e), &row.name)),
                Err(e) => return Err(e),
            }
            return Ok(FileDownload {
                name: node.name,
                size: node.size,
                body: Box::pin(futures_util::stream::empty()),
            });
        }
        Ok(FileDownload {
            name: node.name,
            size: node.size,
            body: Box::pin(body(first, out, ended, turn)),
        })
    }

    /// The app's device, connected, with the restic image there.
    async fn app_remote(&self, slug: &str) -> Result<Remote, DeployError> {
        let app = self.deployed(slug).await?;
        let remote = Remote::connect(&self.devices, self.app_device(&app).await?, None).await?;
        self.ensure_restic(&remote).await?;
        Ok(remote)
    }

    /// Runs `restic ls --json` of `paths` in `snapshot` and reads it as it comes: the
    /// snapshot's own line first, refused unless the backup is the app's, then each node to
    /// `on_node` until it answers false (restic is then stopped). At most `LISTINGS` run at
    /// once, box-wide.
    async fn restic_ls(
        &self,
        remote: &Remote,
        row: &DestinationRow,
        slug: &str,
        snapshot: &str,
        paths: &[&str],
        mut on_node: impl FnMut(LsLine) -> bool,
    ) -> Result<Listed, DeployError> {
        let _turn = self
            .listings
            .acquire()
            .await
            .map_err(|_| DeployError::NotFound)?;
        let (target, creds) = self.credentials(row).await?;
        let mut args = vec!["ls", "--no-lock", "--json", snapshot];
        args.extend(paths);
        let spec = self.restic_spec(
            &format!("homelab-restic-browse-{slug}-{}", unique()),
            &target,
            &args,
            Vec::new(),
        );
        let stdin = creds.stdin();
        let streaming = crate::docker::run::run_streaming(
            &remote.docker,
            &remote.docker,
            &spec,
            stdin.expose(),
            StreamLimits {
                deadline: LIST_DEADLINE,
                stall: LIST_DEADLINE,
                bound: LIST_CHUNKS,
            },
        )
        .await
        .map_err(|e| self.docker_error(remote, e))?;
        let foreign = || {
            DeployError::BackupRefused(format!(
                "{} holds no backup of {slug} with that id: choose one from the app's list.",
                row.name
            ))
        };
        let mut out = streaming.out;
        let mut listed: Option<Listed> = None;
        let mut refused = false;
        let (mut buf, mut skipping) = (Vec::new(), false);
        let mut on_line = |line: &[u8]| {
            let Ok(line) = serde_json::from_slice::<LsLine>(line) else {
                return true;
            };
            match (line.struct_type.as_str(), &listed) {
                ("snapshot", None) => {
                    // Its id goes on `dump`'s command line: restic's hex only.
                    if line.hostname != slug || !restic::valid_snapshot_id(&line.id) {
                        refused = true;
                        return false;
                    }
                    listed = Some(Listed {
                        id: line.id,
                        short_id: line.short_id,
                        time: line.time,
                    });
                    true
                }
                ("node", Some(_)) => on_node(line),
                // Nodes before the snapshot's line: not restic's order, nothing to trust.
                ("node", None) => {
                    refused = true;
                    false
                }
                _ => true,
            }
        };
        let mut whole = true;
        while let Some(chunk) = out.recv().await {
            if !lines(&mut buf, &mut skipping, &chunk, &mut on_line) {
                whole = false;
                break;
            }
        }
        if whole && !buf.is_empty() && !skipping {
            let rest = std::mem::take(&mut buf);
            on_line(&rest);
        }
        // Stopped early: dropping the output stops restic; waited for, so its container is
        // gone when this answers.
        drop(out);
        let ended = outcome(streaming.ended.await);
        if refused {
            return Err(foreign());
        }
        if whole {
            let ended = ended?;
            if !ended.success() {
                return Err(self.restic_error(remote, ResticFailure::Said(ended), &row.name));
            }
        }
        // restic says "no matching ID found" and lists nothing for an id it does not have.
        listed.ok_or_else(foreign)
    }

    /// A connection of its own to the app's device (for a download's output), its Docker
    /// client with it. Closed by the caller when done.
    async fn own_connection(
        &self,
        remote: &Remote,
    ) -> Result<(Arc<ssh::Session>, crate::docker::Docker), DeployError> {
        let device = &remote.device;
        let failed = |trouble: Trouble, detail: String| DeployError::Device {
            device: device.name.clone(),
            trouble,
            detail,
        };
        let key = self
            .devices
            .pool
            .private_key(device)
            .await
            .map_err(|e| failed(Trouble::of_device(&e), e.to_string()))?;
        let pinned = ssh::keys::parse_public(&device.host_key)
            .map_err(|e| failed(Trouble::of_ssh(&e), e.to_string()))?;
        let login = Login::Key {
            user: device.username.clone(),
            key: Arc::new(key),
        };
        let session = ssh::connect(
            &device.host,
            device.port,
            &login,
            HostKeyPolicy::Pinned(pinned),
        )
        .await
        .map_err(|e| failed(Trouble::of_ssh(&e), e.to_string()))?;
        let session = Arc::new(session);
        match crate::docker::connect(session.clone(), &device.docker_socket).await {
            Ok(docker) => Ok((session, docker)),
            Err(e) => {
                session.close().await;
                Err(failed(Trouble::of_docker(&e), e.detail()))
            }
        }
    }
}

/// How a streamed container's task ended.
type Ran = Result<Result<Ended, crate::docker::DockerError>, tokio::task::JoinError>;

/// How a streamed container ended, from its task's outcome (an engine failure, or the task
/// itself failing, in words for "What I did").
fn outcome(ran: Ran) -> Result<Ended, DeployError> {
    match ran {
        Ok(Ok(ended)) => Ok(ended),
        Ok(Err(e)) => Err(stopped(e.detail())),
        Err(e) => Err(stopped(e.to_string())),
    }
}

/// `outcome`, passed on by the task that closes a download's connection.
fn received(ran: Result<Ran, oneshot::error::RecvError>) -> Result<Ended, DeployError> {
    ran.map_err(|e| stopped(e.to_string())).and_then(outcome)
}

fn stopped(detail: String) -> DeployError {
    DeployError::BackupFailed {
        message: "The backup tool stopped before it finished. Try again.".into(),
        detail,
    }
}

/// A download's bytes: the first chunk, the rest as restic sends them, then an error unless
/// restic finished well. Holds its download's turn until it is done or dropped (a browser
/// that went away drops it, which stops restic and removes its container).
fn body(
    first: Option<Bytes>,
    out: mpsc::Receiver<Bytes>,
    ended: oneshot::Receiver<Ran>,
    turn: SemaphorePermit<'static>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
    struct State {
        first: Option<Bytes>,
        out: mpsc::Receiver<Bytes>,
        ended: Option<oneshot::Receiver<Ran>>,
        _turn: SemaphorePermit<'static>,
    }
    let state = State {
        first,
        out,
        ended: Some(ended),
        _turn: turn,
    };
    futures_util::stream::unfold(state, |mut s| async move {
        if let Some(first) = s.first.take() {
            return Some((Ok(first), s));
        }
        if let Some(chunk) = s.out.recv().await {
            return Some((Ok(chunk), s));
        }
        let ended = s.ended.take()?;
        match received(ended.await) {
            Ok(e) if e.success() => None,
            Ok(e) => {
                tracing::info!(exit = ?e.exit_code, stderr = %e.stderr_tail.join(" / "), "a download from a backup did not finish");
                Some((
                    Err(std::io::Error::other(
                        "the backup tool did not finish the file",
                    )),
                    s,
                ))
            }
            Err(e) => {
                tracing::info!(error = %e, "a download from a backup did not finish");
                Some((Err(std::io::Error::other(e.to_string())), s))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(path: &str, top: bool) -> String {
        match check_path(path, top) {
            Err(DeployError::BackupRefused(words)) => words,
            other => panic!("{path} was not refused: {other:?}"),
        }
    }

    #[test]
    fn only_paths_inside_a_backup_are_taken() {
        assert_eq!(check_path("/data/data/a", false).unwrap(), "/data/data/a");
        assert_eq!(check_path("/data//data/a/", false).unwrap(), "/data/data/a");
        assert_eq!(check_path("/database", false).unwrap(), "/database");
        assert_eq!(check_path("/", true).unwrap(), "/");
        assert!(refused("/", false).contains("not the whole backup"));
        assert!(refused("/etc/passwd", true).contains("/etc/passwd is not in it"));
        assert!(refused("/data/../etc", true).contains(".."));
        assert!(refused("/data/./x", true).contains(".."));
        assert!(refused("data/x", true).contains("start with /"));
        assert!(refused("/data/a\nb", true).contains("line breaks"));
        assert!(refused("/data/a\0b", true).contains("control characters"));
        assert!(refused("/databases/x", true).contains("not in it"));
        let long = format!("/data/{}", "a".repeat(MAX_PATH));
        assert!(refused(&long, true).contains("too long"));
        let just = format!("/data/{}", "a".repeat(MAX_PATH - 6));
        assert_eq!(check_path(&just, false).unwrap().len(), MAX_PATH);
    }

    #[test]
    fn parents_and_modes_read_as_restic_means_them() {
        assert_eq!(parent_of("/data"), "/");
        assert_eq!(parent_of("/data/data/a"), "/data/data");
        assert_eq!(unix_mode(420), "0644");
        // A folder (Go's ModeDir) with the sticky bit and 777.
        assert_eq!(unix_mode((1 << 31) | (1 << 20) | 0o777), "1777");
        assert_eq!(unix_mode((1 << 23) | 0o755), "4755");
    }

    #[test]
    fn restics_lines_are_cut_whole_and_long_ones_skipped() {
        let mut seen = Vec::new();
        let (mut buf, mut skipping) = (Vec::new(), false);
        let mut keep = |l: &[u8]| {
            seen.push(String::from_utf8_lossy(l).to_string());
            true
        };
        assert!(lines(&mut buf, &mut skipping, b"one\ntw", &mut keep));
        assert!(lines(&mut buf, &mut skipping, b"o\n", &mut keep));
        let long = vec![b'x'; MAX_LINE + 1];
        assert!(lines(&mut buf, &mut skipping, &long, &mut keep));
        assert!(lines(&mut buf, &mut skipping, b"xx\nthree\n", &mut keep));
        assert_eq!(seen, ["one", "two", "three"]);
        let mut n = 0;
        let mut stop_at_two = |_: &[u8]| {
            n += 1;
            n < 2
        };
        assert!(!lines(
            &mut buf,
            &mut skipping,
            b"a\nb\nc\n",
            &mut stop_at_two
        ));
        assert_eq!(n, 2);
    }

    #[test]
    fn nodes_become_entries() {
        let line: LsLine = serde_json::from_str(
            r#"{"name":"x","type":"file","path":"/data/data/x","uid":0,"gid":0,"size":3,"mode":420,"permissions":"-rw-r--r--","mtime":"2026-12-07T00:29:10.622291694Z","struct_type":"node"}"#,
        )
        .unwrap();
        let e = line.entry();
        assert_eq!(
            (e.name.as_str(), e.kind, e.size, e.mode.as_str()),
            ("x", EntryKind::File, 3, "0644")
        );
        let dir: LsLine = serde_json::from_str(
            r#"{"name":"a","type":"dir","path":"/data/data/a","mode":2147484141,"struct_type":"node"}"#,
        )
        .unwrap();
        assert_eq!(dir.entry().kind, EntryKind::Dir);
    }
}
