//! restic on the box itself, for the box's own backup and for a restore onto a new box (which
//! has no device yet to run it on). The same prelude as on devices reads the secrets from
//! stdin, so they never appear in an argument list; the SSH key and host key (or a REST
//! server's pinned certificate) go into a private folder made for the run and removed after
//! it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::restic::{self, PRELUDE};
use super::{Credentials, Target};

/// The longest a box-side restic run may take (the box's state is a few MB; the repository's
/// index is read first, which on a slow link takes a while).
pub const DEADLINE: Duration = Duration::from_secs(300);
/// What is kept of restic's standard error to explain a failure.
const STDERR_LINES: usize = 20;

/// A restic command on the box.
pub struct Local<'a> {
    /// The restic program (`--restic`, default `restic` from PATH).
    pub program: &'a Path,
    /// The data directory: the run's private folder is made under it.
    pub data: &'a Path,
    /// Keep restic's cache in the data directory (`cache/restic`). Its own nightly backup
    /// then reads only what changed of a repository's index, not all of it (an app
    /// repository's index is tens of MB); the cache holds nothing readable without the
    /// repository's key. A restore onto a new box reads once, without one.
    pub cached: bool,
    /// The longest the run may take (`DEADLINE` for the box's own backup; a prune or check of
    /// a disk on the box, longer).
    pub deadline: Duration,
}

/// How a run ended, with restic's complaint explained for `destination`.
#[derive(Debug)]
pub struct Failed {
    pub why: restic::Why,
    pub words: String,
    /// restic's last lines of standard error (scrubbed; empty when it did not get to run).
    pub stderr: Vec<String>,
}

impl Local<'_> {
    /// Runs `restic <address> <args>` with `creds` on stdin, then `input` (a `backup --stdin`'s
    /// data); returns at most `max_out` bytes of its standard output. `extra` files are put in
    /// the run's private folder first (a new key's password for `key add`), named as given.
    #[allow(clippy::too_many_arguments)]
    pub async fn run(
        &self,
        target: &Target,
        creds: &Credentials,
        destination: &str,
        args: &[&str],
        input: Option<&[u8]>,
        extra: &[(&str, &[u8])],
        max_out: usize,
    ) -> Result<Vec<u8>, Failed> {
        let failed = |words: String| Failed {
            why: restic::Why::Other,
            words,
            stderr: Vec::new(),
        };
        let dir = Private::make(self.data)
            .map_err(|e| failed(format!("The box could not prepare the backup tool: {e}")))?;
        let dir_text = dir.text().ok_or_else(|| {
            failed(
                "The box's data folder has spaces or quotes in its path; start it with a plain path (letters, digits, / . _ -).".into(),
            )
        })?;
        for (name, bytes) in extra {
            write_private(&dir.0.join(name), bytes)
                .map_err(|e| failed(format!("The box could not prepare the backup tool: {e}")))?;
        }
        let mut command = tokio::process::Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(PRELUDE)
            .arg("homelab")
            .arg(self.program)
            .args(restic::address_args(target, &dir_text))
            .args(self.cache_args())
            .args(args.iter().map(|a| a.replace("{dir}", &dir_text)))
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &dir_text)
            .env("HOMELAB_SECRETS", &dir_text)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| {
            failed(format!(
                "The box could not start its backup tool ({}): {e}",
                self.program.display()
            ))
        })?;
        let mut stdin = child.stdin.take();
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let secrets = creds.stdin();
        // Each part ends with Err at the first reason to stop: try_join! then drops the rest,
        // and dropping the child kills restic at once (its ssh ends with its pipes).
        let feed = async {
            if let Some(w) = stdin.as_mut() {
                // A restic that stopped early closes its end: what it said explains why.
                let _ = w.write_all(secrets.expose()).await;
                if let Some(data) = input {
                    let _ = w.write_all(data).await;
                }
            }
            drop(stdin.take());
            Ok::<(), String>(())
        };
        let read_out = async {
            let mut out = Vec::new();
            if let Some(r) = stdout.as_mut() {
                // On the heap: a buffer in the future would make every caller's future as big.
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match r.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) if out.len() + n > max_out => {
                            return Err(
                                "The backup tool answered with more than the box expected, so it was stopped."
                                    .to_string(),
                            );
                        }
                        Ok(n) => out.extend_from_slice(&buf[..n]),
                    }
                }
            }
            Ok(out)
        };
        let read_err = async {
            let mut text = String::new();
            if let Some(r) = stderr.as_mut() {
                // Bounded: the last lines are what explain a failure.
                let mut all = Vec::new();
                let _ = r.take(1 << 20).read_to_end(&mut all).await;
                text = String::from_utf8_lossy(&all).into_owned();
            }
            let lines: Vec<&str> = text.lines().collect();
            Ok(lines[lines.len().saturating_sub(STDERR_LINES)..].join("\n"))
        };
        let all = async {
            let ((), out, err) = tokio::try_join!(feed, read_out, read_err)?;
            let status = child.wait().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((out, err, status))
        };
        let (out, err, status) = match tokio::time::timeout(self.deadline, all).await {
            Ok(Ok(done)) => done,
            Ok(Err(words)) => return Err(failed(words)),
            // Dropping the child kills restic (kill_on_drop); the folder goes with `dir`.
            Err(_) => {
                return Err(failed(
                    "The backup tool did not finish in time and was stopped.".into(),
                ));
            }
        };
        match status {
            s if s.success() => Ok(out),
            _ => {
                // Never a password in the log or the words (see `Credentials::scrub`).
                let err = creds.scrub(&err);
                let explained = restic::explain(&err, destination);
                tracing::debug!(stderr = %err, "restic on the box failed");
                Err(Failed {
                    why: explained.kind,
                    words: explained
                        .words()
                        .replace("The device could", "The box could"),
                    stderr: err.lines().map(str::to_string).collect(),
                })
            }
        }
    }
}

impl Local<'_> {
    fn cache_args(&self) -> Vec<std::ffi::OsString> {
        match std::path::absolute(self.data) {
            Ok(data) if self.cached => vec![
                "--cache-dir".into(),
                data.join("cache").join("restic").into_os_string(),
            ],
            _ => vec!["--no-cache".into()],
        }
    }
}

/// A folder only the daemon can read, for one run's SSH files; removed when dropped.
struct Private(PathBuf);

impl Private {
    fn make(data: &Path) -> std::io::Result<Private> {
        use std::os::unix::fs::DirBuilderExt;
        // On the appliance systemd gives the daemon a memory-only folder of its own
        // (RuntimeDirectory=homelabd): the keys never touch the SD card there. Elsewhere the
        // data folder (owner only), swept at each start.
        let base = match std::env::var("RUNTIME_DIRECTORY") {
            Ok(dirs) if dirs.starts_with('/') => {
                PathBuf::from(dirs.split(':').next().unwrap_or_default())
            }
            _ => std::path::absolute(data)?.join("tmp"),
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&base)?;
        let name: String = crate::secrets::random_bytes::<8>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let dir = base.join(format!("restic-{name}"));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(Private(dir))
    }

    /// The path as text restic's option and the shell take unquoted (None when it is not).
    fn text(&self) -> Option<String> {
        let t = self.0.to_str()?;
        t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'))
            .then(|| t.to_string())
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

/// Removes what runs that died with the daemon left in the data directory's `tmp` (keys of
/// destinations among them). Called at start.
pub fn sweep(data: &Path) {
    let Ok(entries) = std::fs::read_dir(data.join("tmp")) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with("restic-") {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
