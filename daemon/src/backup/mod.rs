//! Backups with restic: where they go (destinations, checked and described in plain words),
//! the secrets each needs (sealed in the vault, handed to restic on stdin only), how restic is
//! run on a device (a one-off container of the pinned image that mounts the app's volumes
//! read-only, so the data never crosses the box) and what its JSON output says.
//!
//! The jobs that back up and restore an app are the deploy engine's (`deploy/backing.rs`):
//! they are journalled, show live progress and hold the app like any other change to it.
//! Repositories stay standard restic: `restic -r <the address shown> snapshots` with the
//! password from the recovery sheet opens one, with no Homelab in the way.

pub mod bundle;
pub mod disk;
pub mod disk_server;
pub mod local;
pub mod rest;
pub mod restic;
pub mod schedule;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::secrets::Secret;

/// The pinned official restic image (the lab runs Debian's 0.14.0 under this name). 0.14 is
/// the first with compressed repositories (format 2), which every repository made here uses.
pub const RESTIC_IMAGE: &str = "restic/restic:0.14.0";

/// The vault owner of a destination's secrets.
pub fn secret_owner(destination_id: i64) -> String {
    format!("backup-destination:{destination_id}")
}
/// The repository's own password (generated, 32 characters).
pub const PURPOSE_PASSWORD: &str = "repository";
/// The SSH key devices log in to an SFTP destination with (generated, OpenSSH format).
pub const PURPOSE_SSH_KEY: &str = "ssh-key";
/// An S3 destination's access key id and secret key.
pub const PURPOSE_S3_KEY_ID: &str = "s3-key-id";
pub const PURPOSE_S3_SECRET: &str = "s3-secret";
/// A REST server's login name and password (either may be empty: a server without logins).
pub const PURPOSE_REST_USER: &str = "rest-user";
pub const PURPOSE_REST_PASSWORD: &str = "rest-password";

/// What a backup or restore job works on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupTask {
    /// One destination, or (None, backups only) every destination.
    pub destination_id: Option<i64>,
    /// Restores: the snapshot. A move without one backs the app up first and uses that.
    pub snapshot: Option<String>,
    /// A move: the device the app leaves (the job's own device is where it goes).
    #[serde(default)]
    pub moving_from: Option<i64>,
}

/// Errors of backups, each saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    BadInput(String),
    /// What restic said, in plain words with the fix (see `restic::explain`).
    #[error("{0}")]
    Restic(String),
}

/// Where a destination is. Non-secret; the secrets are sealed apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Target {
    /// Any SSH server (a NAS, another computer): restic's SFTP backend.
    Sftp {
        host: String,
        port: u16,
        user: String,
        /// An absolute folder on the server.
        path: String,
    },
    /// S3-compatible storage (Backblaze B2, Wasabi, MinIO, AWS).
    S3 {
        /// `https://s3.example.com` (or `http://` on a LAN).
        endpoint: String,
        bucket: String,
        /// A folder in the bucket ("" for its root).
        prefix: String,
    },
    /// A restic REST server (restic's rest-server, or `rclone serve restic`). Its login is
    /// sealed apart, like S3 keys: restic 0.14 takes it only inside the address, which the
    /// prelude builds from stdin (`Credentials::stdin`), so it is in no argument.
    Rest {
        /// `https://host[:port][/folder]` (or `http://` on a LAN), without a login in it.
        url: String,
        /// The server only lets backups be added (rest-server or rclone `--append-only`):
        /// the box never forgets, prunes or removes keys there (the server refuses, and a
        /// forget refused retries for minutes and can leave its lock behind); old backups
        /// are removed on the server's side.
        #[serde(default)]
        append_only: bool,
        /// The server's own certificate (PEM), pinned when no public authority signed it:
        /// restic then trusts it alone (`--cacert`). Empty: the usual authorities (or http).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        certificate: String,
    },
    /// A disk plugged into the box (a USB disk). The box runs restic on it directly (its own
    /// backup, a restore onto a new box); devices reach it through the box, over their own
    /// SSH connection, with the rights each run needs (`disk_server`): the data crosses the
    /// LAN once, to the box, and nothing on the network can reach the disk.
    Disk {
        /// The repository's folder on the box (`<where the disk is mounted>/homelab-backups`).
        path: String,
        /// The disk in the owner's words when it was added ("USB disk SanDisk (58 GB)").
        disk: String,
    },
}

impl Target {
    /// The repository address restic takes (`-r`), also shown on the recovery sheet.
    pub fn repository(&self) -> String {
        match self {
            Target::Sftp {
                host,
                port,
                user,
                path,
            } => {
                // restic reads `sftp:user@host:/path`, or with another port than 22
                // `sftp://user@host:port//path`; an IPv6 host needs brackets.
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                if *port == 22 {
                    format!("sftp:{user}@{host}:{path}")
                } else {
                    format!("sftp://{user}@{host}:{port}/{path}")
                }
            }
            Target::S3 {
                endpoint,
                bucket,
                prefix,
            } => {
                let base = format!("s3:{}/{bucket}", endpoint.trim_end_matches('/'));
                if prefix.is_empty() {
                    base
                } else {
                    format!("{base}/{prefix}")
                }
            }
            // Without the login: restic gets that through the prelude (`rest_repository`).
            Target::Rest { url, .. } => format!("rest:{url}"),
            // A local repository: plain `restic -r <folder>` on the box, or on any computer
            // the disk is plugged into.
            Target::Disk { path, .. } => path.clone(),
        }
    }

    /// Whether the box may remove anything there (forget, prune, key remove): not on a
    /// server that only lets backups be added.
    pub fn append_only(&self) -> bool {
        matches!(
            self,
            Target::Rest {
                append_only: true,
                ..
            }
        )
    }

    /// In the owner's words: "the SSH server nas.lan, folder /backups".
    pub fn words(&self) -> String {
        match self {
            Target::Sftp { host, path, .. } => format!("{host}, folder {path}"),
            Target::S3 {
                endpoint, bucket, ..
            } => {
                let host = endpoint
                    .split("://")
                    .nth(1)
                    .unwrap_or(endpoint)
                    .trim_end_matches('/');
                format!("bucket {bucket} at {host}")
            }
            Target::Rest { url, .. } => {
                let rest = url.split("://").nth(1).unwrap_or(url);
                match rest.split_once('/') {
                    Some((host, folder)) if !folder.is_empty() => {
                        format!("backup server {host}, folder /{folder}")
                    }
                    _ => format!("backup server {}", rest.trim_end_matches('/')),
                }
            }
            Target::Disk { disk, path } => format!("{disk} on this box, folder {path}"),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Target::Sftp { .. } => "sftp",
            Target::S3 { .. } => "s3",
            Target::Rest { .. } => "rest",
            Target::Disk { .. } => "disk",
        }
    }
}

/// A REST server's address as restic 0.14 reads it, with the login in it:
/// `rest:https://user:password@host:port/folder`, user and password percent-encoded (what the
/// prelude builds; the recovery sheet shows it with `PASSWORD` in the password's place).
pub fn rest_repository(url: &str, user: &str, password: &str) -> String {
    if user.is_empty() {
        return format!("rest:{url}");
    }
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    format!("rest:{scheme}://{user}:{password}@{rest}")
}

/// Percent-encodes everything but letters, digits and `-._~` (RFC 3986's unreserved), so a
/// login or password holds anything (`@:/%`, spaces) and still reads back whole from an
/// address's user part.
pub fn url_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A REST server's address as the owner typed it, made plain: spaces and a trailing `/`
/// dropped (restic adds its own).
pub fn rest_url(typed: &str) -> String {
    typed.trim().trim_end_matches('/').to_string()
}

/// Checks a REST server's login as typed: the name may not hold a colon (HTTP's login puts
/// one between name and password) and neither may hold line breaks (each goes on a line of
/// restic's stdin); a password needs a name.
pub fn check_rest_login(user: &str, password: &str) -> Result<(), BackupError> {
    let bad = |m: &str| Err(BackupError::BadInput(m.to_string()));
    if user.len() > 256 || user.contains(':') || user.chars().any(char::is_control) {
        return bad("The login name may not hold a colon or line breaks (256 characters at most).");
    }
    if password.len() > 1024 || password.chars().any(char::is_control) {
        return bad("The password may not hold line breaks (1024 characters at most).");
    }
    if user.is_empty() && !password.is_empty() {
        return bad(
            "Enter the login name that goes with the password (or leave both empty for a server without logins).",
        );
    }
    Ok(())
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.words())
    }
}

/// A host name or address: letters, digits, dots, dashes and colons (IPv6), nothing a shell
/// or an SSH option could read as more.
pub fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && !host.starts_with('-')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
}

/// A login name as Linux allows it (and nothing an SSH command line could misread).
pub fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 32
        && !user.starts_with('-')
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// An absolute folder without `..`, quotes or spaces at its ends: restic and the SSH server
/// both read it as given.
pub fn valid_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() <= 255
        && !path.split('/').any(|p| p == "..")
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '.'))
}

/// An S3 bucket name (the AWS rules: 3–63 lower-case letters, digits, dots and dashes).
pub fn valid_bucket(bucket: &str) -> bool {
    (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-'))
        && !bucket.starts_with(['.', '-'])
}

/// Checks a target as the owner typed it, with the fix in the message.
pub fn check_target(target: &Target) -> Result<(), BackupError> {
    let bad = |m: &str| Err(BackupError::BadInput(m.to_string()));
    match target {
        Target::Sftp {
            host,
            port,
            user,
            path,
        } => {
            if !valid_host(host) {
                return bad("Enter the server's name or address, like nas.lan or 192.168.1.20.");
            }
            if *port == 0 {
                return bad("The SSH port is a number from 1 to 65535 (usually 22).");
            }
            if !valid_user(user) {
                return bad("Enter the login name on that server (letters, digits, _ - .).");
            }
            if !valid_path(path) {
                return bad(
                    "Enter the folder as a full path starting with /, like /srv/backups (letters, digits, / _ - .).",
                );
            }
        }
        Target::S3 {
            endpoint,
            bucket,
            prefix,
        } => {
            let scheme_ok = endpoint.starts_with("https://") || endpoint.starts_with("http://");
            let host = endpoint.split("://").nth(1).unwrap_or("");
            let host = host.trim_end_matches('/');
            let (name, port) = match host.rsplit_once(':') {
                Some((n, p)) if p.chars().all(|c| c.is_ascii_digit()) => (n, Some(p)),
                _ => (host, None),
            };
            if !scheme_ok
                || !valid_host(name)
                || port.is_some_and(|p| p.parse::<u16>().is_err())
                || host.contains('/')
            {
                return bad(
                    "Enter the storage's address, like https://s3.eu-central-003.backblazeb2.com (no folder after it).",
                );
            }
            if !valid_bucket(bucket) {
                return bad(
                    "Enter the bucket's name: 3 to 63 lower-case letters, digits, dots or dashes.",
                );
            }
            if !prefix.is_empty() && (!valid_path(&format!("/{prefix}")) || prefix.ends_with('/')) {
                return bad(
                    "The folder in the bucket may hold letters, digits, / _ - . (or leave it empty).",
                );
            }
        }
        Target::Rest { url, .. } => check_rest_url(url)?,
        Target::Disk { path, .. } => {
            if !path.starts_with('/')
                || path.len() > 1024
                || path.split('/').any(|p| p == "..")
                || path.chars().any(char::is_control)
            {
                return bad("Choose a disk plugged into this box.");
            }
        }
    }
    Ok(())
}

/// A REST server's address: http or https, a host (a name, an IPv4 or a bracketed IPv6
/// address) and a port, an optional folder of letters, digits and `/_-.`; no login (that has
/// its own fields, sealed), no `?` or `#`.
fn check_rest_url(url: &str) -> Result<(), BackupError> {
    let bad = |m: &str| Err(BackupError::BadInput(m.to_string()));
    let Some((scheme, rest)) = url.split_once("://") else {
        return bad(
            "Enter the server's address with http:// or https://, like https://backup.lan:8000/homelab.",
        );
    };
    if rest.contains('@') {
        return bad(
            "Leave the login out of the address: enter the login name and password in their own fields below.",
        );
    }
    if !matches!(scheme, "http" | "https") {
        return bad(
            "Enter the server's address with http:// or https://, like https://backup.lan:8000/homelab.",
        );
    }
    let (authority, folder) = match rest.split_once('/') {
        Some((a, f)) => (a, f),
        None => (rest, ""),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) if h.contains(':') => (h, p.strip_prefix(':')),
            _ => ("", None),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port_ok = match port {
        None => true,
        Some(p) => p.parse::<u16>().is_ok_and(|p| p > 0),
    };
    if !valid_host(host) || !port_ok || url.len() > 255 {
        return bad(
            "Enter the server's address like https://backup.lan:8000/homelab (a name or address, a port if it is not the usual one, and a folder if the server keeps several).",
        );
    }
    if !folder.is_empty() && !valid_path(&format!("/{folder}")) {
        return bad(
            "The folder after the server's address may hold letters, digits, / _ - . only.",
        );
    }
    Ok(())
}

/// A new key for an SFTP server: its `authorized_keys` line, which may only use SFTP (no
/// commands, forwarding or terminal), and its private half (OpenSSH format).
pub fn sftp_only_key(comment: &str) -> Result<(String, Secret), String> {
    let key = crate::ssh::keys::generate(comment).map_err(|e| e.to_string())?;
    let public = crate::ssh::keys::authorized_line(key.public_key()).map_err(|e| e.to_string())?;
    let private = crate::ssh::keys::encode_private(&key).map_err(|e| e.to_string())?;
    Ok((
        format!("restrict,command=\"internal-sftp\" {public}"),
        private,
    ))
}

/// What restic needs to open a repository, as it reaches the container: one line each on
/// stdin, read by `restic::PRELUDE` before restic starts (never in its arguments or
/// configuration).
pub struct Credentials {
    pub password: Secret,
    /// An SFTP destination's private key (OpenSSH format) and its pinned host key line
    /// (`host keytype base64`, as `known_hosts` has it).
    pub ssh: Option<(Secret, String)>,
    /// An S3 destination's access key id and secret.
    pub s3: Option<(Secret, Secret)>,
    /// A REST server: its address, login and pinned certificate.
    pub rest: Option<RestLogin>,
    /// A disk on the box: its folder, reached by a run on a device through the box.
    pub disk: Option<DiskAccess>,
}

/// What a run on a device may do with a disk on the box (see `disk_server::Grant`).
#[derive(Debug, Clone)]
pub struct DiskAccess {
    pub root: std::path::PathBuf,
    /// Only the box's upkeep (forget, prune) removes anything; backups and restores add.
    pub may_remove: bool,
}

/// How restic reaches a REST server.
pub struct RestLogin {
    /// As in `Target::Rest` (no login in it).
    pub url: String,
    /// Empty for a server without logins.
    pub user: Secret,
    pub password: Secret,
    /// The pinned certificate (PEM), or empty.
    pub certificate: String,
}

impl RestLogin {
    pub fn copy(&self) -> RestLogin {
        RestLogin {
            url: self.url.clone(),
            user: Secret::new(self.user.expose().to_vec()),
            password: Secret::new(self.password.expose().to_vec()),
            certificate: self.certificate.clone(),
        }
    }
}

impl Credentials {
    /// For the box's upkeep (forget, prune): a disk on the box lets this run remove too.
    pub fn allow_removal(&mut self) {
        if let Some(d) = &mut self.disk {
            d.may_remove = true;
        }
    }

    /// `text` with the REST server's password (as typed and as it goes into the address)
    /// replaced by `***`: restic and Go hide it in the addresses they print, and this makes
    /// sure for anything else that quotes it before it reaches a note or a log.
    pub fn scrub(&self, text: &str) -> String {
        let Some(rest) = &self.rest else {
            return text.to_string();
        };
        let plain = rest.password.expose_str().unwrap_or_default();
        let mut out = text.to_string();
        // Short ones would blank out ordinary words; no server takes a password this short
        // seriously, and restic prints none of it anyway.
        if plain.len() >= 4 {
            out = out.replace(plain, "***");
            let escaped = url_escape(plain);
            if escaped != plain {
                out = out.replace(&escaped, "***");
            }
        }
        out
    }

    /// The lines the prelude reads: password, S3 key id, S3 secret, SSH key (base64 of the
    /// OpenSSH text, one line), known_hosts line, then (added later, so the first five stay
    /// where they were) the REST server's address, its login name and password
    /// (percent-encoded: they go into the address as they are), and its pinned certificate
    /// (base64 of the PEM, one line). Empty lines for what does not apply.
    pub fn stdin(&self) -> Secret {
        use base64::Engine;
        let text = |s: &Secret| s.expose_str().unwrap_or_default().to_string();
        let (key_id, secret) = match &self.s3 {
            Some((id, secret)) => (text(id), text(secret)),
            None => (String::new(), String::new()),
        };
        let (key, known) = match &self.ssh {
            Some((key, known)) => (
                base64::engine::general_purpose::STANDARD.encode(key.expose()),
                known.clone(),
            ),
            None => (String::new(), String::new()),
        };
        let (url, user, password, certificate) = match &self.rest {
            Some(r) => (
                r.url.clone(),
                url_escape(&text(&r.user)),
                url_escape(&text(&r.password)),
                if r.certificate.is_empty() {
                    String::new()
                } else {
                    base64::engine::general_purpose::STANDARD.encode(r.certificate.as_bytes())
                },
            ),
            None => Default::default(),
        };
        Secret::from_string(format!(
            "{}\n{key_id}\n{secret}\n{key}\n{known}\n{url}\n{user}\n{password}\n{certificate}\n",
            text(&self.password)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_addresses_are_what_restic_reads() {
        let sftp = Target::Sftp {
            host: "nas.lan".into(),
            port: 22,
            user: "backup".into(),
            path: "/srv/restic".into(),
        };
        assert_eq!(sftp.repository(), "sftp:backup@nas.lan:/srv/restic");
        let v6 = Target::Sftp {
            host: "fd00::5".into(),
            port: 22,
            user: "b".into(),
            path: "/r".into(),
        };
        assert_eq!(v6.repository(), "sftp:b@[fd00::5]:/r");
        let other_port = Target::Sftp {
            host: "nas.lan".into(),
            port: 2222,
            user: "backup".into(),
            path: "/srv/restic".into(),
        };
        assert_eq!(
            other_port.repository(),
            "sftp://backup@nas.lan:2222//srv/restic"
        );
        let s3 = Target::S3 {
            endpoint: "https://s3.example.com/".into(),
            bucket: "photos".into(),
            prefix: "homelab".into(),
        };
        assert_eq!(s3.repository(), "s3:https://s3.example.com/photos/homelab");
    }

    #[test]
    fn targets_with_anything_a_command_line_could_misread_are_refused() {
        for (host, user, path) in [
            ("-oProxyCommand=x", "u", "/r"),
            ("nas.lan", "-l", "/r"),
            ("nas.lan", "u", "relative"),
            ("nas.lan", "u", "/a/../b"),
            ("nas.lan", "u", "/a b"),
            ("nas;reboot", "u", "/r"),
        ] {
            let t = Target::Sftp {
                host: host.into(),
                port: 22,
                user: user.into(),
                path: path.into(),
            };
            assert!(check_target(&t).is_err(), "{t:?}");
        }
        for (endpoint, bucket) in [
            ("s3.example.com", "b1b"),
            ("https://s3.example.com/x", "b1b"),
            ("https://s3.example.com", "B"),
            ("https://s3.example.com:99999", "bucket"),
        ] {
            let t = Target::S3 {
                endpoint: endpoint.into(),
                bucket: bucket.into(),
                prefix: String::new(),
            };
            assert!(check_target(&t).is_err(), "{t:?}");
        }
        assert!(
            check_target(&Target::S3 {
                endpoint: "http://10.88.0.1:9000".into(),
                bucket: "lab".into(),
                prefix: "homelab/apps".into(),
            })
            .is_ok()
        );
    }

    #[test]
    fn credentials_are_lines_in_a_fixed_order() {
        let c = Credentials {
            password: Secret::new(b"pw".to_vec()),
            ssh: None,
            s3: Some((Secret::new(b"id".to_vec()), Secret::new(b"sec".to_vec()))),
            rest: None,
            disk: None,
        };
        // The REST server's four lines come after the first five, empty here.
        assert_eq!(c.stdin().expose_str().unwrap(), "pw\nid\nsec\n\n\n\n\n\n\n");
        let c = Credentials {
            password: Secret::new(b"pw".to_vec()),
            ssh: None,
            s3: None,
            rest: Some(RestLogin {
                url: "http://10.0.0.5:8000/r".into(),
                user: Secret::new(b"me".to_vec()),
                password: Secret::new(b"a b@c".to_vec()),
                certificate: String::new(),
            }),
            disk: None,
        };
        assert_eq!(
            c.stdin().expose_str().unwrap(),
            "pw\n\n\n\n\nhttp://10.0.0.5:8000/r\nme\na%20b%40c\n\n"
        );
    }

    #[test]
    fn a_rest_servers_address_is_checked_and_shown_without_its_login() {
        let rest = |url: &str| Target::Rest {
            url: rest_url(url),
            append_only: false,
            certificate: String::new(),
        };
        for good in [
            "https://backup.lan:8000/homelab",
            "http://10.88.0.1:8100/",
            "http://[fd00::5]:8000/a/b",
            "https://backup.example.org",
        ] {
            assert!(check_target(&rest(good)).is_ok(), "{good}");
        }
        let refused = |url: &str| match check_target(&rest(url)) {
            Err(BackupError::BadInput(words)) => words,
            other => panic!("{url}: {other:?}"),
        };
        assert!(refused("https://me:pw@backup.lan:8000/x").contains("Leave the login out"));
        assert!(refused("https://me@backup.lan/x").contains("Leave the login out"));
        for bad in [
            "backup.lan:8000",
            "ftp://backup.lan/x",
            "https://backup.lan:99999/x",
            "https://backup.lan/x?y=1",
            "https://backup.lan/a b",
            "https://backup.lan/a/../b",
            "https://-oProxy/x",
            "https://[nope]/x",
        ] {
            refused(bad);
        }
        let t = rest(" https://backup.lan:8000/homelab/ ");
        assert_eq!(t.repository(), "rest:https://backup.lan:8000/homelab");
        assert_eq!(t.words(), "backup server backup.lan:8000, folder /homelab");
        assert_eq!(rest("http://nas:8000").words(), "backup server nas:8000");
        assert!(!t.append_only());
        assert_eq!(
            rest_repository("https://h:8000/r", "me", "PASSWORD"),
            "rest:https://me:PASSWORD@h:8000/r"
        );
        assert_eq!(rest_repository("https://h/r", "", ""), "rest:https://h/r");
    }

    #[test]
    fn rest_logins_are_escaped_whole_and_checked() {
        assert_eq!(url_escape("Az09-._~"), "Az09-._~");
        assert_eq!(url_escape("p a@:/%x"), "p%20a%40%3A%2F%25x");
        assert_eq!(url_escape("é"), "%C3%A9");
        assert!(check_rest_login("me", "any thing @:/%").is_ok());
        assert!(check_rest_login("", "").is_ok(), "a server without logins");
        assert!(
            check_rest_login("", "pw").is_err(),
            "a password needs a name"
        );
        assert!(check_rest_login("a:b", "pw").is_err());
        assert!(check_rest_login("me", "two\nlines").is_err());
    }

    #[test]
    fn the_rest_password_is_scrubbed_from_what_restic_said() {
        let c = Credentials {
            password: Secret::new(b"pw".to_vec()),
            ssh: None,
            s3: None,
            rest: Some(RestLogin {
                url: "http://h/r".into(),
                user: Secret::new(b"me".to_vec()),
                password: Secret::new(b"s3cret pw@x".to_vec()),
                certificate: String::new(),
            }),
            disk: None,
        };
        assert_eq!(
            c.scrub("rest:http://me:s3cret%20pw%40x@h/r and s3cret pw@x"),
            "rest:http://me:***@h/r and ***"
        );
    }
}
