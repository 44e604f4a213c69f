//! restic in a one-off container on a device: the container's command line (fixed script,
//! validated names), its secrets on stdin, its JSON output read, its errors put in plain
//! words with the fix.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::{BackupError, Credentials, RESTIC_IMAGE, Target};
use crate::docker::run::{Ended, OneOff, Stream};
use crate::docker::{Docker, DockerError};

/// Reads the secrets from stdin (see `Credentials::stdin`), puts the SSH key and host key in
/// a memory-only folder (`$HOMELAB_SECRETS` on the box itself, see `local`), and hands over
/// to restic with the arguments it was given. The secrets reach restic through its
/// environment, never its arguments. `read` takes a pipe byte by byte, so what follows the
/// lines on stdin (a `backup --stdin`'s data) is left whole for restic.
///
/// A REST server: restic 0.14 reads its login only from the repository's address, so the
/// address is built here, into `RESTIC_REPOSITORY` (no `-r` is given: restic takes the
/// variable), from the server's address and the login, which arrive percent-encoded; a
/// pinned certificate goes beside the SSH files, for `--cacert`.
pub const PRELUDE: &str = r#"IFS= read -r RESTIC_PASSWORD || exit 90
IFS= read -r key_id; IFS= read -r key_secret; IFS= read -r ssh_key; IFS= read -r known
IFS= read -r rest_url; IFS= read -r rest_user; IFS= read -r rest_pass; IFS= read -r rest_cert
export RESTIC_PASSWORD
if [ -n "$key_id" ]; then
  AWS_ACCESS_KEY_ID=$key_id AWS_SECRET_ACCESS_KEY=$key_secret
  export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
fi
dir=${HOMELAB_SECRETS:-/run/homelab}
if [ -n "$ssh_key" ]; then
  umask 077
  printf '%s' "$ssh_key" | base64 -d > "$dir/id" || exit 91
  printf '%s\n' "$known" > "$dir/known_hosts"
fi
if [ -n "$rest_url" ]; then
  if [ -n "$rest_user" ]; then
    RESTIC_REPOSITORY="rest:${rest_url%%://*}://$rest_user:$rest_pass@${rest_url#*://}"
  else
    RESTIC_REPOSITORY="rest:$rest_url"
  fi
  export RESTIC_REPOSITORY
fi
if [ -n "$rest_cert" ]; then
  umask 077
  printf '%s' "$rest_cert" | base64 -d > "$dir/rest-ca.pem" || exit 92
fi
unset key_id key_secret ssh_key known dir rest_url rest_user rest_pass rest_cert
exec "$@"
"#;

/// Asks an SFTP server how big and how full the disk under the folder is (OpenSSH's statvfs
/// extension, through the sftp client in restic's image), with the prelude's key and pinned
/// host key. $1 the folder, $2 login@server, $3 the port (all checked when it was added).
const DISK_FREE: &str = r#"printf 'df %s\n' "$1" | sftp -q -b - -i /run/homelab/id \
  -o UserKnownHostsFile=/run/homelab/known_hosts -o StrictHostKeyChecking=yes \
  -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=15 -P "$3" "$2"
"#;

/// Where the prelude writes the SSH files (a tmpfs: they never touch the device's disk).
const SECRETS_DIR: &str = "/run/homelab";
/// restic's cache on the device (encrypted index and snapshot data, no secrets): kept between
/// runs so a second backup reads little from the destination.
pub const CACHE_VOLUME: &str = "homelab-restic-cache";
/// Label on every one-off restic container.
pub const LABEL: &str = "homelab.backup";
/// Which daemon started a one-off container (random per daemon start): what another start
/// finds with a different value was left behind by a daemon that stopped under it.
pub const OWNER_LABEL: &str = "homelab.backup.owner";

/// The `known_hosts` line for a pinned host key (`[host]:port` when the port is not 22).
pub fn known_hosts_line(host: &str, port: u16, key_openssh: &str) -> String {
    let name = if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    };
    // The key without its comment.
    let key: Vec<&str> = key_openssh.split_whitespace().take(2).collect();
    format!("{name} {}", key.join(" "))
}

/// The repository options every command takes: the address, and for SFTP how to reach it
/// (the pinned host key only, the generated key only, never a prompt).
fn repo_args(target: &Target) -> Vec<String> {
    // A disk on the box is reached as a REST server on the device's loopback, whose address
    // the prelude builds (see `disk_server::Tunnel`), as for a REST server.
    let mut args = match target {
        Target::Disk { .. } => Vec::new(),
        _ => address_args(target, SECRETS_DIR),
    };
    args.push("--cache-dir".into());
    args.push("/cache".into());
    args
}

/// The address, and for SFTP the ssh command with the prelude's files in `secrets_dir` (a
/// path of letters, digits and `/._-` only: restic splits the option at spaces). A REST
/// server's address is not an argument (the prelude puts it, login and all, in
/// `RESTIC_REPOSITORY`); its pinned certificate is, as the file the prelude writes.
pub fn address_args(target: &Target, secrets_dir: &str) -> Vec<String> {
    let mut args = Vec::new();
    match target {
        Target::Rest { certificate, .. } => {
            if !certificate.is_empty() {
                args.push("--cacert".to_string());
                args.push(format!("{secrets_dir}/rest-ca.pem"));
            }
        }
        _ => {
            args.push("-r".to_string());
            args.push(target.repository());
        }
    }
    if let Target::Sftp {
        host, port, user, ..
    } = target
    {
        // One string, as restic's option takes it: restic splits it into arguments itself
        // (no shell reads it), and host and user were checked by `check_target` (letters,
        // digits, `.-:_` only) when the destination was added.
        // `-F /dev/null`: no ssh_config of the machine it runs on changes how it connects.
        args.push("-o".into());
        args.push(format!(
            "sftp.command=ssh -F /dev/null -i {secrets_dir}/id \
             -o UserKnownHostsFile={secrets_dir}/known_hosts \
             -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes \
             -o ConnectTimeout=15 -o ServerAliveInterval=15 -p {port} {user}@{host} -s sftp"
        ));
    }
    args
}

/// A restic command as a one-off container named `name`, with `binds` (volume:path[:ro]).
pub fn spec(name: &str, target: &Target, command: &[&str], binds: Vec<String>) -> OneOff {
    let mut cmd = vec![
        PRELUDE.to_string(),
        "homelab".to_string(),
        "restic".to_string(),
    ];
    cmd.extend(repo_args(target));
    cmd.extend(command.iter().map(|s| s.to_string()));
    let mut spec = one_off(name, cmd, binds);
    if matches!(target, Target::Disk { .. }) {
        // The way back to the box is a port on the device's own loopback.
        spec.network = Some("host".into());
    }
    spec
}

/// The restic arguments a spec made by `spec` for a disk on the box carries (what follows
/// restic's repository options), so the box can run the same command itself.
pub fn command_of(spec: &OneOff) -> Option<Vec<String>> {
    let rest = spec.cmd.get(2..)?;
    match rest {
        [restic, cache, _, command @ ..] if restic == "restic" && cache == "--cache-dir" => {
            Some(command.to_vec())
        }
        _ => None,
    }
}

/// The question "how full is its disk" for an SFTP destination (None for the others: S3
/// storage has no disk to fill).
pub fn disk_spec(name: &str, target: &Target) -> Option<OneOff> {
    let Target::Sftp {
        host,
        port,
        user,
        path,
    } = target
    else {
        return None;
    };
    let cmd = vec![
        PRELUDE.to_string(),
        "homelab".to_string(),
        "sh".to_string(),
        "-c".to_string(),
        DISK_FREE.to_string(),
        "df".to_string(),
        path.clone(),
        // sftp reads `user@fe80::1` as host "fe80": an IPv6 address goes in brackets.
        if host.contains(':') {
            format!("{user}@[{host}]")
        } else {
            format!("{user}@{host}")
        },
        port.to_string(),
    ];
    Some(one_off(name, cmd, Vec::new()))
}

/// The disk's usable size and free bytes from the sftp client's `df` (1 KiB blocks: Size,
/// Used, Avail, …). Usable is Used + Avail, as plain `df` counts it: blocks kept for root
/// (or lost to a thin volume) are never the login's to fill, so counting them as free
/// would call a nearly full disk half empty, and counting them as used the other way.
pub fn parse_disk_free(out: &str) -> Option<(u64, u64)> {
    out.lines().rev().find_map(|line| {
        let n: Vec<u64> = line
            .split_whitespace()
            .take(3)
            .map(|w| w.parse().ok())
            .collect::<Option<_>>()?;
        let usable = n.get(1)?.checked_add(*n.get(2)?)?.checked_mul(1024)?;
        let free = n[2].checked_mul(1024)?;
        (n.len() == 3 && n[0] > 0 && usable > 0).then_some((usable, free))
    })
}

/// `restic stats --json`'s total size.
pub fn parse_stats(out: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct Stats {
        total_size: u64,
    }
    out.lines()
        .find_map(|l| serde_json::from_str::<Stats>(l.trim()).ok())
        .map(|s| s.total_size)
}

fn one_off(name: &str, cmd: Vec<String>, binds: Vec<String>) -> OneOff {
    let mut all_binds = vec![format!("{CACHE_VOLUME}:/cache")];
    all_binds.extend(binds);
    OneOff {
        name: name.to_string(),
        image: RESTIC_IMAGE.to_string(),
        entrypoint: vec!["/bin/sh".into(), "-c".into()],
        cmd,
        binds: all_binds,
        tmpfs: vec![SECRETS_DIR.into()],
        // One progress line a second in JSON mode (restic's default is 60).
        env: vec!["RESTIC_PROGRESS_FPS=1".into()],
        labels: HashMap::from([(LABEL.to_string(), "1".to_string())]),
        network: None,
    }
}

/// Runs a restic command to its end; a failure is explained in plain words (`explain`).
pub async fn run(
    docker: &Docker,
    spec: &OneOff,
    creds: &Credentials,
    deadline: Duration,
    on_line: impl FnMut(Stream, &str),
) -> Result<Ended, ResticFailure> {
    let stdin = creds.stdin();
    let mut ended = crate::docker::run::run(docker, spec, stdin.expose(), deadline, on_line)
        .await
        .map_err(ResticFailure::Docker)?;
    // What restic said goes to "What I did" and into words: never a password in it.
    for line in &mut ended.stderr_tail {
        *line = creds.scrub(line);
    }
    if ended.success() {
        return Ok(ended);
    }
    Err(ResticFailure::Said(ended))
}

/// Why a restic run failed: the device's engine could not run it, or restic ran and said no.
#[derive(Debug)]
pub enum ResticFailure {
    Docker(DockerError),
    Said(Ended),
    /// A disk on the box could not be reached from the device (its words say why and what
    /// to do).
    Disk(String),
}

impl ResticFailure {
    /// The plain words for the owner.
    pub fn words(&self, destination: &str) -> String {
        match self {
            // The engine's own words go to "What I did" (`failure_detail`), not to the owner.
            ResticFailure::Docker(_) => {
                "The device's app engine could not run the backup tool. Check the device's page, then try again.".into()
            }
            ResticFailure::Said(ended) => match ended.exit_code {
                None => "The backup tool did not finish in time and was stopped.".into(),
                Some(_) => explain(&ended.stderr_tail.join("\n"), destination).words(),
            },
            ResticFailure::Disk(words) => words.clone(),
        }
    }

    /// What restic's complaint means (None when it did not get to say: the engine failed,
    /// or the run was stopped at its deadline).
    pub fn why(&self) -> Option<Why> {
        match self {
            ResticFailure::Said(e) if e.exit_code.is_some() => {
                Some(explain(&e.stderr_tail.join("\n"), "").kind)
            }
            _ => None,
        }
    }

    /// True when the repository is not there yet (so `init` makes it).
    pub fn no_repository(&self) -> bool {
        // restic's init makes a missing bucket too.
        matches!(self, ResticFailure::Said(e) if matches!(explain(&e.stderr_tail.join("\n"), "").kind, Why::NoRepository | Why::NoBucket))
    }
}

impl From<ResticFailure> for BackupError {
    fn from(f: ResticFailure) -> Self {
        BackupError::Restic(f.words("the destination"))
    }
}

/// What restic's complaint means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    WrongPassword,
    NoRepository,
    Unreachable,
    KeyRefused,
    HostKeyChanged,
    Full,
    Locked,
    NoBucket,
    S3Denied,
    /// A REST server refused the login (401).
    LoginRefused,
    /// A REST server refused a request (403): the login may not use the folder, or the server
    /// only lets backups be added and something tried to remove one.
    Forbidden,
    /// An https server's certificate is not one the device trusts (no public authority
    /// signed it, and none is pinned, or the pinned one was replaced).
    CertUntrusted,
    /// An https server's certificate does not fit (made for another name, out of date) or
    /// the server speaks plain http.
    CertOther,
    /// `check` found stored data that does not match its hash, or missing pieces.
    Damaged,
    Other,
}

/// restic's words, understood.
pub struct Explained {
    pub kind: Why,
    destination: String,
    last: String,
}

impl Explained {
    pub fn words(&self) -> String {
        let d = &self.destination;
        match self.kind {
            Why::WrongPassword => format!(
                "The backup password does not open the backups at {d}. If you changed or reset this box, use “Restore from a backup” with your recovery sheet; otherwise the folder holds someone else's backups: choose an empty folder."
            ),
            Why::NoRepository => format!("There are no backups at {d} yet."),
            Why::Unreachable => format!(
                "The device could not reach {d}. Is it switched on and on the network? Check its address."
            ),
            Why::KeyRefused => format!(
                "{d} refused Homelab's backup key. Remove the destination and add it again with the server's login, so Homelab can install its key."
            ),
            Why::HostKeyChanged => format!(
                "{d} identifies itself with a different key than when it was added. If you reinstalled it, remove the destination and add it again; otherwise someone may be impersonating it."
            ),
            Why::Full => format!(
                "{d} is full (or the folder there is not writable). Free some space there, or choose another destination."
            ),
            Why::Locked => "Another backup of the same destination is still running (or stopped without finishing). Try again in a few minutes.".to_string(),
            Why::NoBucket => format!(
                "The bucket of {d} does not exist. Create it in your storage's console first."
            ),
            Why::S3Denied => format!(
                "{d} refused the access key. Check the key id and secret, and that the key may read and write this bucket."
            ),
            Why::LoginRefused => format!(
                "{d} refused the login. Check the login name and password: they are the ones the backup server was set up with."
            ),
            Why::Forbidden => format!(
                "{d} refused the request: the login may not use this folder there, or the server only lets backups be added. Check the server's settings for this login and folder."
            ),
            Why::CertUntrusted => format!(
                "{d} shows a certificate that is not the one Homelab trusts for it (no public authority signed it, or it was replaced). If the server got a new certificate, remove the destination and add it again: Homelab then shows and pins the new one."
            ),
            Why::CertOther => format!(
                "{d}'s secure connection did not work ({}). Use the address the server's certificate is made for, or http:// if the server does not use https.",
                self.last.trim_end_matches('.')
            ),
            Why::Damaged => format!(
                "Some backup data at {d} is damaged: the check found pieces that no longer match what was stored. Make a new backup of each app now (Back up now), so a sound copy exists; if this comes back, the disk there may be failing."
            ),
            Why::Other => format!("The backup tool said: {}", self.last),
        }
    }
}

/// Reads restic's standard error (the last lines) for the reason it failed.
pub fn explain(stderr: &str, destination: &str) -> Explained {
    let has = |s: &str| stderr.contains(s);
    // The specific causes first: restic adds "unable to open config file" and "Is there a
    // repository…?" to any failure to read the repository, refusals included.
    let kind = if has("wrong password or no key found") {
        Why::WrongPassword
    } else if has("Host key verification failed") || has("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        Why::HostKeyChanged
    } else if has("Permission denied (publickey") {
        Why::KeyRefused
    } else if has("InvalidAccessKeyId")
        || has("SignatureDoesNotMatch")
        || has("does not match the signature you provided")
        || has("Access Key Id you provided does not exist")
        || has("security token included in the request is invalid")
        || has("Access Denied")
        || has("AccessDenied")
    {
        // Before "no bucket" and "no repository": a refused key reads as "does not exist" too.
        Why::S3Denied
    } else if has("(401)") || has("401 Unauthorized") {
        // A REST server's refusal, before "no repository" (restic adds its question).
        Why::LoginRefused
    } else if has("x509: certificate signed by unknown authority")
        || has("certificate signed by unknown authority")
    {
        Why::CertUntrusted
    } else if has("x509: ") || has("server gave HTTP response to HTTPS client") {
        Why::CertOther
    } else if has("NoSuchBucket") || has("bucket does not exist") {
        Why::NoBucket
    } else if has("no space left on device")
        || has("No space left on device")
        // OpenSSH's SFTP server answers a write to a full disk with a bare "Failure".
        || (has("SSH_FX_FAILURE") && (has("Write") || has("save")))
    {
        Why::Full
    } else if has("repository contains errors")
        || has("Pack ID does not match")
        || has("packs from index missing in repo")
        || has("pack file cannot be listed")
    {
        Why::Damaged
    } else if has("repository is already locked") {
        Why::Locked
    } else if has("403 Forbidden") || has("(403)") {
        Why::Forbidden
    } else if has("repository does not exist")
        || has("The specified key does not exist")
        || (has("unable to open config file")
            && (has("stat: file does not exist")
                || has("Stat: file does not exist")
                || has("no such file")
                // A REST server's answer for a folder with no repository.
                || has("<config/> does not exist")))
    {
        Why::NoRepository
    } else if has("No route to host")
        || has("Connection refused")
        || has("Connection timed out")
        || has("connection timed out")
        || has("Could not resolve hostname")
        || has("no such host")
        || has("i/o timeout")
        || has("Client.Timeout exceeded")
        || has("connect: ")
        || has("Connection closed by")
        || has("subprocess ssh: exit status 255")
    {
        Why::Unreachable
    } else {
        Why::Other
    };
    // A certificate's trouble is said in Go's words ("certificate is valid for a, not b"),
    // which restic puts in the middle of its complaint.
    let cert_reason = stderr.lines().find_map(|l| {
        l.split_once("x509: ")
            .map(|(_, r)| r)
            .or_else(|| l.split_once("http: ").map(|(_, r)| r))
    });
    let last = match (kind, cert_reason) {
        (Why::CertOther, Some(reason)) => reason,
        _ => stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or(""),
    }
    .chars()
    .take(300)
    .collect();
    Explained {
        kind,
        destination: destination.to_string(),
        last,
    }
}

/// One line of `restic backup --json`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "message_type", rename_all = "snake_case")]
pub enum BackupLine {
    Status {
        #[serde(default)]
        percent_done: f64,
        #[serde(default)]
        total_files: u64,
        #[serde(default)]
        files_done: u64,
        #[serde(default)]
        total_bytes: u64,
        #[serde(default)]
        bytes_done: u64,
    },
    Summary {
        #[serde(default)]
        files_new: u64,
        #[serde(default)]
        files_changed: u64,
        #[serde(default)]
        files_unmodified: u64,
        #[serde(default)]
        data_added: u64,
        #[serde(default)]
        total_files_processed: u64,
        #[serde(default)]
        total_bytes_processed: u64,
        #[serde(default)]
        total_duration: f64,
        snapshot_id: String,
    },
    Error {
        #[serde(default)]
        item: String,
        #[serde(default)]
        during: String,
    },
    #[serde(other)]
    Other,
}

/// Parses a line of backup output (None for anything that is not restic's JSON).
pub fn backup_line(line: &str) -> Option<BackupLine> {
    let line = line.trim();
    if !line.starts_with('{') {
        return None;
    }
    serde_json::from_str(line).ok()
}

/// A snapshot as `restic snapshots --json` lists it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Snapshot {
    pub id: String,
    pub short_id: String,
    /// RFC 3339.
    pub time: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub paths: Vec<String>,
}

/// Parses `restic snapshots --json` (one JSON array on one line).
pub fn snapshots(stdout: &str) -> Result<Vec<Snapshot>, BackupError> {
    let text = stdout
        .lines()
        .find(|l| l.trim_start().starts_with('['))
        .unwrap_or("[]");
    serde_json::from_str(text)
        .map_err(|e| BackupError::Restic(format!("The list of backups could not be read: {e}")))
}

/// A snapshot id as restic prints it: 64 (or the short 8) lower-case hex digits. Anything
/// else from a request is refused before it reaches a command line.
pub fn valid_snapshot_id(id: &str) -> bool {
    (id.len() == 64 || id.len() == 8)
        && id
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_box_reads_back_what_a_disk_run_would_do() {
        let disk = Target::Disk {
            path: "/run/media/x/homelab-backups".into(),
            disk: "USB disk".into(),
        };
        let spec = spec(
            "n",
            &disk,
            &["forget", "--prune", "--keep-daily", "1"],
            Vec::new(),
        );
        assert_eq!(spec.network.as_deref(), Some("host"));
        assert_eq!(
            command_of(&spec).unwrap(),
            ["forget", "--prune", "--keep-daily", "1"]
        );
        assert!(!spec.cmd.iter().any(|a| a == "-r"), "{:?}", spec.cmd);
    }
    use crate::secrets::Secret;

    #[test]
    fn restics_complaints_are_read_for_what_they_mean() {
        for (stderr, why) in [
            (
                "Fatal: unable to open config file: Stat: The request signature we calculated does not match the signature you provided. Check your key and signing method.",
                Why::S3Denied,
            ),
            (
                "Fatal: unable to open config file: Stat: The AWS Access Key Id you provided does not exist in our records.\nIs there a repository at the following location?",
                Why::S3Denied,
            ),
            (
                "Fatal: unable to open config file: Lstat: file does not exist\nIs there a repository at the following location?",
                Why::NoRepository,
            ),
            (
                "Fatal: unable to open config file: Stat: The specified key does not exist.\nIs there a repository at the following location?",
                Why::NoRepository,
            ),
            ("Fatal: packs from index missing in repo", Why::Damaged),
            (
                "pack 3f2a: Pack ID does not match, want 3f2a, got 77c1\nFatal: repository contains errors",
                Why::Damaged,
            ),
            (
                "Fatal: unable to save snapshot: Write: sftp: \"Failure\" (SSH_FX_FAILURE)",
                Why::Full,
            ),
            (
                "unable to create lock in backend: repository is already locked by PID 1 on 6b5a36ce836a",
                Why::Locked,
            ),
        ] {
            assert_eq!(explain(stderr, "NAS").kind, why, "{stderr}");
        }
    }

    #[test]
    fn backup_output_is_understood() {
        let s = backup_line(
            r#"{"message_type":"status","percent_done":0.5,"total_files":10,"files_done":5,"total_bytes":1000,"bytes_done":500}"#,
        );
        assert_eq!(
            s,
            Some(BackupLine::Status {
                percent_done: 0.5,
                total_files: 10,
                files_done: 5,
                total_bytes: 1000,
                bytes_done: 500
            })
        );
        let sum = backup_line(
            r#"{"message_type":"summary","files_new":3,"files_changed":0,"files_unmodified":0,"dirs_new":1,"dirs_changed":0,"dirs_unmodified":0,"data_blobs":3,"tree_blobs":2,"data_added":1234,"total_files_processed":3,"total_bytes_processed":999,"total_duration":0.5,"snapshot_id":"abcd"}"#,
        );
        assert!(
            matches!(sum, Some(BackupLine::Summary { data_added: 1234, ref snapshot_id, .. }) if snapshot_id == "abcd")
        );
        assert_eq!(backup_line("not json"), None);
        assert_eq!(
            backup_line(r#"{"message_type":"verbose_status"}"#),
            Some(BackupLine::Other)
        );
    }

    #[test]
    fn failures_are_explained_with_the_fix() {
        let e = explain("Fatal: wrong password or no key found\n", "nas");
        assert_eq!(e.kind, Why::WrongPassword);
        assert!(e.words().contains("recovery sheet"));
        assert_eq!(
            explain("Fatal: unable to open config file: Stat: file does not exist\nIs there a repository at the following location?", "x").kind,
            Why::NoRepository
        );
        assert_eq!(
            explain("Fatal: unable to open config file: Stat: Access Denied.\nIs there a repository at the following location?", "x").kind,
            Why::S3Denied,
            "a refusal is not an empty destination"
        );
        assert_eq!(
            explain("ssh: connect to host 10.0.0.9 port 22: No route to host\nsubprocess ssh: exit status 255", "x").kind,
            Why::Unreachable
        );
        assert_eq!(
            explain("homelab@10.0.0.9: Permission denied (publickey).", "x").kind,
            Why::KeyRefused
        );
        assert_eq!(
            explain("something new", "x").words(),
            "The backup tool said: something new"
        );
    }

    #[test]
    fn snapshot_ids_are_hex_only() {
        assert!(valid_snapshot_id("0123abcd"));
        assert!(!valid_snapshot_id("0123ABCD"));
        assert!(!valid_snapshot_id("latest"));
        assert!(!valid_snapshot_id("--target=/"));
    }

    /// Runs the prelude with /bin/sh (a POSIX sh script, as in restic's image), `creds` and
    /// `more` on stdin, and `sh -c script` after it; returns what that printed.
    fn through_prelude(creds: &Credentials, more: &[u8], script: &str) -> String {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!(
            "homelab-prelude-{}-{}",
            std::process::id(),
            crate::secrets::random_bytes::<4>()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", PRELUDE, "homelab", "sh", "-c", script])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOMELAB_SECRETS", &dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(creds.stdin().expose()).unwrap();
        stdin.write_all(more).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    fn percent_decoded(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    const SHOW: &str = r#"printf 'repo=%s\n' "${RESTIC_REPOSITORY-unset}"
printf 'aws=%s\n' "${AWS_ACCESS_KEY_ID-unset}"
printf 'pw=%s\n' "$RESTIC_PASSWORD"
if [ -f "$HOMELAB_SECRETS/rest-ca.pem" ]; then printf 'ca=%s\n' "$(cat "$HOMELAB_SECRETS/rest-ca.pem")"; fi
printf 'rest=%s\n' "$(cat)""#;

    #[test]
    fn the_prelude_builds_a_rest_servers_address_with_its_login_whole() {
        let password = "p a@:/%x 2 % @@";
        let creds = Credentials {
            password: Secret::new(b"repo pw".to_vec()),
            ssh: None,
            s3: None,
            rest: Some(crate::backup::RestLogin {
                url: "https://10.88.0.1:8102/lab/a".into(),
                user: Secret::new(b"u@ser".to_vec()),
                password: Secret::new(password.as_bytes().to_vec()),
                certificate: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
                    .into(),
            }),
            disk: None,
        };
        let out = through_prelude(&creds, b"data after the lines", SHOW);
        let repo = out.lines().find_map(|l| l.strip_prefix("repo=")).unwrap();
        let rest = repo.strip_prefix("rest:https://").unwrap();
        let (login, at) = rest.rsplit_once('@').unwrap();
        assert_eq!(at, "10.88.0.1:8102/lab/a");
        let (user, pass) = login.split_once(':').unwrap();
        assert_eq!(percent_decoded(user), "u@ser");
        assert_eq!(
            percent_decoded(pass),
            password,
            "the password survives whole"
        );
        assert!(
            !pass.contains(['@', ':', '/', ' ']),
            "nothing in it ends the login early: {pass}"
        );
        // What restic reads is an address the url parser reads the same way.
        let parsed = reqwest::Url::parse(repo.strip_prefix("rest:").unwrap()).unwrap();
        assert_eq!(parsed.host_str(), Some("10.88.0.1"));
        assert_eq!(parsed.port(), Some(8102));
        assert_eq!(parsed.path(), "/lab/a");
        assert_eq!(percent_decoded(parsed.password().unwrap()), password);
        assert!(out.contains("aws=unset\n"), "{out}");
        assert!(out.contains("pw=repo pw\n"), "{out}");
        assert!(
            out.contains("ca=-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"),
            "{out}"
        );
        assert!(
            out.ends_with("rest=data after the lines\n"),
            "the rest is restic's: {out}"
        );

        // A server without logins: the address alone.
        let open = Credentials {
            password: Secret::new(b"pw".to_vec()),
            ssh: None,
            s3: None,
            rest: Some(crate::backup::RestLogin {
                url: "http://nas:8000".into(),
                user: Secret::new(Vec::new()),
                password: Secret::new(Vec::new()),
                certificate: String::new(),
            }),
            disk: None,
        };
        let out = through_prelude(&open, b"", SHOW);
        assert!(out.contains("repo=rest:http://nas:8000\n"), "{out}");
        assert!(!out.contains("ca="), "{out}");
    }

    #[test]
    fn the_prelude_still_reads_the_other_kinds_as_before() {
        let creds = Credentials {
            password: Secret::new(b"pw".to_vec()),
            ssh: None,
            s3: Some((Secret::new(b"KEYID".to_vec()), Secret::new(b"sec".to_vec()))),
            rest: None,
            disk: None,
        };
        let out = through_prelude(&creds, b"tail", SHOW);
        assert!(out.contains("repo=unset\n"), "no address from stdin: {out}");
        assert!(out.contains("aws=KEYID\n"), "{out}");
        assert!(out.ends_with("rest=tail\n"), "{out}");
    }

    #[test]
    fn a_rest_server_is_no_argument_and_its_pin_is_the_prelude_file() {
        let pinned = Target::Rest {
            url: "https://h:8000/r".into(),
            append_only: true,
            certificate: "PEM".into(),
        };
        assert_eq!(
            address_args(&pinned, "/run/homelab"),
            ["--cacert", "/run/homelab/rest-ca.pem"]
        );
        let plain = Target::Rest {
            url: "http://h:8000/r".into(),
            append_only: false,
            certificate: String::new(),
        };
        assert!(address_args(&plain, "/run/homelab").is_empty());
        let spec = spec("c", &pinned, &["snapshots"], Vec::new());
        assert!(
            !spec.cmd.iter().any(|a| a == "-r" || a.contains("h:8000")),
            "{:?}",
            spec.cmd
        );
        assert!(spec.env.iter().all(|e| !e.contains("RESTIC_REPOSITORY")));
    }

    #[test]
    fn a_rest_servers_answers_are_read_for_what_they_mean() {
        for (stderr, why) in [
            (
                "Fatal: unable to open config file: unexpected HTTP response (401): 401 Unauthorized\nIs there a repository at the following location?\nrest:http://u1:***@10.88.0.1:8100/x/",
                Why::LoginRefused,
            ),
            (
                "Fatal: create repository at rest:http://u1:***@h/x/ failed: Fatal: server response unexpected: 401 Unauthorized (401)",
                Why::LoginRefused,
            ),
            (
                "Fatal: unable to open config file: <config/> does not exist\nIs there a repository at the following location?\nrest:http://u1:***@h/x/",
                Why::NoRepository,
            ),
            (
                "Remove(<snapshot/8f6e6a973a>) returned error, retrying after 552ms: blob not removed, server response: 403 Forbidden (403)",
                Why::Forbidden,
            ),
            (
                "Fatal: unable to open config file: client.Head: Head \"https://u1:***@h:8102/x/config\": x509: certificate signed by unknown authority\nIs there a repository at the following location?",
                Why::CertUntrusted,
            ),
            (
                "Fatal: unable to open config file: client.Head: Head \"https://h/x/config\": dial tcp 10.88.0.9:8100: connect: connection refused",
                Why::Unreachable,
            ),
        ] {
            assert_eq!(explain(stderr, "Backup server").kind, why, "{stderr}");
        }
        let e = explain(
            "Fatal: unable to open config file: client.Head: Head \"https://u1:***@localhost:8102/x/config\": x509: certificate is not valid for any names, but wanted to match localhost\nIs there a repository at the following location?\nrest:https://u1:***@localhost:8102/x/",
            "Backup server",
        );
        assert_eq!(e.kind, Why::CertOther);
        assert!(
            e.words()
                .contains("certificate is not valid for any names, but wanted to match localhost"),
            "{}",
            e.words()
        );
    }

    #[test]
    fn known_hosts_lines_name_the_port_when_not_22() {
        assert_eq!(
            known_hosts_line("nas", 2222, "ssh-ed25519 AAAA comment"),
            "[nas]:2222 ssh-ed25519 AAAA"
        );
        assert_eq!(
            known_hosts_line("nas", 22, "ssh-ed25519 AAAA"),
            "nas ssh-ed25519 AAAA"
        );
    }
}
