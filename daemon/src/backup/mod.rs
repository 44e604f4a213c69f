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
pub mod local;
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
        }
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
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Target::Sftp { .. } => "sftp",
            Target::S3 { .. } => "s3",
        }
    }
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
}

impl Credentials {
    /// The lines the prelude reads: password, S3 key id, S3 secret, SSH key (base64 of the
    /// OpenSSH text, one line), known_hosts line. Empty lines for what does not apply.
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
        Secret::from_string(format!(
            "{}\n{key_id}\n{secret}\n{key}\n{known}\n",
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
        };
        assert_eq!(c.stdin().expose_str().unwrap(), "pw\nid\nsec\n\n\n");
    }
}
