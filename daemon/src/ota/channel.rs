//! The update channel: a URL serving a small JSON manifest that names the newest update file,
//! and the download of that file — resumable (HTTP ranges), checked against the manifest's
//! size and SHA-256 before RAUC ever sees it.
//!
//! ```json
//! { "version": "0.2.0", "url": "homelab-pc_x86_64-0.2.0.raucb", "size": 128974848,
//!   "sha256": "…64 hex digits…", "notes": "What changed, in plain words." }
//! ```
//!
//! `url` may be relative to the manifest's own address. An optional `compatible` names the kind
//! of box the file is for, so a channel for another board is told apart at once. The checksum
//! guards the download; the bundle's signature (checked by RAUC afterwards) is what makes it
//! trusted, so plain `http://` channels are allowed as well as `https://` (verified against the
//! system's certificate authorities).
//!
//! The transport (TLS, redirects, timeouts, ranges) is [`crate::http_client`]'s; this module
//! words its errors for the owner and owns what a download means: resuming only the same
//! file, the size and the checksum.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub use crate::http_client::shown;
use crate::http_client::{self, HttpClient, HttpError, StatusCode};

/// A manifest is a few hundred bytes; anything much larger is not one.
const MAX_MANIFEST_BYTES: u64 = 64 << 10;

/// What a channel offers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub version: String,
    pub url: String,
    pub size: u64,
    pub sha256: String,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub compatible: Option<String>,
}

/// Errors, in words the owner can act on.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error(
        "The update channel address must start with http:// or https:// and name a host (got “{0}”)."
    )]
    BadUrl(String),
    #[error("Could not reach {host}: {reason}. Is the box online, and is the address right?")]
    Unreachable { host: String, reason: String },
    #[error("{0}")]
    Tls(String),
    #[error("The update channel answered “{status}” for {url}. Check the address.")]
    Status { status: String, url: String },
    #[error(
        "The update channel's file is not a Homelab update manifest ({0}). It needs “version”, “url”, “size” and “sha256”."
    )]
    BadManifest(String),
    #[error(
        "The download stopped at {got} of {size} ({reason}). Try again: it carries on where it stopped."
    )]
    Interrupted {
        got: String,
        size: String,
        reason: String,
    },
    #[error(
        "The downloaded file does not match the channel's checksum, so it was deleted. Try again; if it keeps happening, the channel is serving a damaged file."
    )]
    Mismatch,
    #[error("Could not store the download: {0}")]
    Io(#[from] std::io::Error),
}

fn human(bytes: u64) -> String {
    crate::units::human_bytes(bytes)
}

/// A channel's address split up: checked when it is set, and named (without its query) in the
/// debug log of each request.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    https: bool,
    host: String,
    port: u16,
    /// Path and query, as the request line carries them (logged only through `shown`).
    path: String,
}

impl Target {
    /// The client's own rule (http or https, a host, no user:password@, which would end up
    /// in logs and the activity record), checked before anything is stored or asked.
    fn parse(url: &str) -> Result<Target, ChannelError> {
        let u = http_client::parse_url(url).map_err(|_| ChannelError::BadUrl(url.to_string()))?;
        let https = u.scheme() == "https";
        Ok(Target {
            https,
            host: u
                .host_str()
                .unwrap_or_default()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: u
                .port_or_known_default()
                .unwrap_or(if https { 443 } else { 80 }),
            path: match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_string(),
            },
        })
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Whether `url` can be a channel's address (http or https, a host, no credentials in it).
pub fn check_url(url: &str) -> Result<(), ChannelError> {
    Target::parse(url).map(|_| ())
}

/// A bundle's address as RAUC is given it when it streams: checked like a channel's, and
/// written out as parsed, so RAUC fetches what a download would (the parser drops tabs and
/// line breaks and escapes spaces; RAUC would take them as they are). Whitespace and control
/// characters are refused outright.
pub fn stream_address(url: &str) -> Result<String, ChannelError> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ChannelError::BadUrl(url.to_string()));
    }
    Target::parse(url)?;
    let parsed = http_client::parse_url(url).map_err(|_| ChannelError::BadUrl(url.to_string()))?;
    Ok(parsed.to_string())
}

/// Resolves `reference` (absolute, scheme-relative, host-relative or relative) against the
/// address it was found at: a manifest's bundle URL against the manifest's final address.
pub fn resolve(base: &str, reference: &str) -> String {
    let reference = reference.trim();
    if reference.starts_with("http://") || reference.starts_with("https://") {
        return reference.to_string();
    }
    let Some((scheme, rest)) = base.split_once("://") else {
        return reference.to_string();
    };
    if let Some(r) = reference.strip_prefix("//") {
        return format!("{scheme}://{r}");
    }
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if reference.starts_with('/') {
        return format!("{scheme}://{authority}{reference}");
    }
    // Relative: beside the base's last path segment (its query dropped).
    let path = rest[authority_end..].split(['?', '#']).next().unwrap_or("");
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let dir = if dir.is_empty() { "/" } else { dir };
    format!("{scheme}://{authority}{dir}{reference}")
}

/// Fetches manifests and update files.
#[derive(Clone)]
pub struct Fetcher {
    client: HttpClient,
}

impl Fetcher {
    /// `ca_file`: the PEM bundle of certificate authorities trusted for https channels.
    pub fn new(ca_file: &Path, version: &str) -> Fetcher {
        Fetcher {
            client: HttpClient::new(http_client::Settings::new(ca_file, version)),
        }
    }

    /// One GET, following redirects; `from` asks for the bytes from that offset on.
    async fn get(
        &self,
        url: &str,
        from: Option<u64>,
    ) -> Result<http_client::Response, ChannelError> {
        let t = Target::parse(url)?;
        tracing::debug!(host = %t.host_header(), path = %shown(&t.path), https = t.https, from, "asking the update channel");
        self.client.get(url, from).await.map_err(request_error)
    }

    /// Reads the manifest at `url`; the bundle URL comes back absolute.
    pub async fn manifest(&self, url: &str) -> Result<Manifest, ChannelError> {
        let resp = self.get(url, None).await?;
        let final_url = resp.url().to_string();
        if resp.status() != StatusCode::OK {
            return Err(status_error(resp.status(), &final_url));
        }
        let bytes = resp.bytes(MAX_MANIFEST_BYTES).await.map_err(|e| match e {
            HttpError::TooLarge(_) => ChannelError::BadManifest("it is far too large".into()),
            HttpError::Idle(after) => {
                ChannelError::BadManifest(format!("it did not arrive within {} s", after.as_secs()))
            }
            other => ChannelError::BadManifest(other.to_string()),
        })?;
        let mut m: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| ChannelError::BadManifest(e.to_string()))?;
        m.validate()?;
        m.url = resolve(&final_url, &m.url);
        Target::parse(&m.url)
            .map_err(|_| ChannelError::BadManifest(format!("its url “{}” is not usable", m.url)))?;
        Ok(m)
    }

    /// Downloads the manifest's file into `dir`, carrying on from an earlier interrupted
    /// download of the same file. Returns the complete, checked file. `progress(done, size)`
    /// is called as bytes arrive.
    pub async fn download(
        &self,
        m: &Manifest,
        dir: &Path,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<PathBuf, ChannelError> {
        let part = dir.join("download.part");
        let about = dir.join("download.json");
        // Bytes kept from before are only carried on for the very same file.
        let same_file = std::fs::read(&about)
            .ok()
            .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
            .is_some_and(|old| old.sha256 == m.sha256 && old.size == m.size);
        if !same_file {
            let _ = tokio::fs::remove_file(&part).await;
            super::snapshot::write_durably(&about, &serde_json::to_vec(m).unwrap_or_default())?;
        }
        let mut hasher = Sha256::new();
        let mut have = hash_existing(&part, &mut hasher).await?;
        if have > m.size {
            let _ = tokio::fs::remove_file(&part).await;
            hasher = Sha256::new();
            have = 0;
        }
        progress(have, m.size);
        if have < m.size {
            let resp = self.get(&m.url, (have > 0).then_some(have)).await?;
            let status = resp.status();
            let resumed = resp.resumes_at() == Some(have);
            if !resumed {
                if status != StatusCode::OK {
                    return Err(status_error(status, resp.url().as_str()));
                }
                // The server sends the whole file: start again from its first byte.
                hasher = Sha256::new();
                have = 0;
            }
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(resumed)
                .truncate(!resumed)
                .mode(0o600)
                .open(&part)
                .await?;
            let mut body = resp.stream();
            let interrupted = |got: u64, reason: String| ChannelError::Interrupted {
                got: human(got),
                size: human(m.size),
                reason,
            };
            loop {
                let data = match body.next().await {
                    None => break,
                    Some(Err(e)) => {
                        // What arrived is kept (and synced) for the next try to carry on from;
                        // an idle server reads "nothing arrived for 60 s".
                        file.sync_all().await?;
                        return Err(interrupted(have, e.to_string()));
                    }
                    Some(Ok(data)) => data,
                };
                have += data.len() as u64;
                if have > m.size {
                    drop(file);
                    let _ = tokio::fs::remove_file(&part).await;
                    return Err(ChannelError::Mismatch);
                }
                hasher.update(&data);
                file.write_all(&data).await?;
                progress(have, m.size);
            }
            file.sync_all().await?;
            if have < m.size {
                return Err(interrupted(have, "the connection ended early".into()));
            }
        }
        let digest = hasher.finalize();
        if !hex_eq(&digest, &m.sha256) {
            let _ = tokio::fs::remove_file(&part).await;
            let _ = tokio::fs::remove_file(&about).await;
            return Err(ChannelError::Mismatch);
        }
        let _ = tokio::fs::remove_file(&about).await;
        Ok(part)
    }
}

impl Manifest {
    fn validate(&self) -> Result<(), ChannelError> {
        let bad = |what: &str| Err(ChannelError::BadManifest(what.to_string()));
        let v = self.version.trim();
        if v.is_empty() || v.len() > 64 || v.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return bad("its version is empty or not a version");
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return bad("its sha256 is not 64 hexadecimal digits");
        }
        if self.size == 0 || self.size > super::MAX_BUNDLE_BYTES {
            return bad("its size is not that of an update file");
        }
        if self.url.trim().is_empty() {
            return bad("its url is empty");
        }
        Ok(())
    }
}

fn status_error(status: StatusCode, url: &str) -> ChannelError {
    ChannelError::Status {
        status: status.to_string(),
        url: shown(url),
    }
}

/// The client's errors for a request that got no answer, in the owner's words (the same as
/// before the client existed, which the tests and the Updates page rely on).
fn request_error(e: HttpError) -> ChannelError {
    match e {
        HttpError::BadUrl(url) => ChannelError::BadUrl(url),
        HttpError::Unreachable { host, reason } => ChannelError::Unreachable { host, reason },
        HttpError::Tls { host, reason } => ChannelError::Tls(format!(
            "The secure connection to {host} failed: {reason}. The channel's certificate must be valid for that name and issued by an authority this box trusts."
        )),
        HttpError::NoTrust(file) => ChannelError::Tls(format!(
            "No trusted certificate authorities were found in {}, so https channels cannot be checked. Use an http:// channel (update files are signed, so that is safe) or install the system's CA certificates.",
            file.display()
        )),
        HttpError::Setup(reason) => ChannelError::Tls(format!("TLS could not be set up: {reason}")),
        HttpError::TooManyRedirects { url } => ChannelError::Status {
            status: "too many redirects".into(),
            url,
        },
        // Body errors come from reading a body, where they are worded in place; a request
        // never returns them, but if one did, this is still true and actionable.
        e @ (HttpError::Idle(_) | HttpError::Cut(_) | HttpError::TooLarge(_)) => {
            ChannelError::Unreachable {
                host: "the update channel".into(),
                reason: e.to_string(),
            }
        }
    }
}

/// Feeds what an earlier download left into the hash; returns its length.
async fn hash_existing(part: &Path, hasher: &mut Sha256) -> Result<u64, ChannelError> {
    let mut file = match tokio::fs::File::open(part).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(total);
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
}

/// Whether the file at `path` is the one with this SHA-256 (a kept update file may be an
/// upload of the same version, damaged or not, rather than the channel's).
pub async fn file_matches(path: &Path, sha256: &str) -> bool {
    let mut hasher = Sha256::new();
    match hash_existing(path, &mut hasher).await {
        Ok(len) if len > 0 => hex_eq(&hasher.finalize(), sha256),
        _ => false,
    }
}

fn hex_eq(digest: &[u8], hex: &str) -> bool {
    let ours: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    ours.eq_ignore_ascii_case(hex)
}

/// Orders version strings the way people read them: runs of digits compare as numbers, the
/// rest as text, and a version that carries on past another's end is the newer one
/// (0.1.0 < 0.1.0-2 < 0.1.1 < 0.10.0).
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    fn pieces(s: &str) -> Vec<Result<u64, String>> {
        let mut out = Vec::new();
        let mut chars = s.chars().peekable();
        while let Some(&c) = chars.peek() {
            let digit = c.is_ascii_digit();
            let mut run = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_digit() != digit {
                    break;
                }
                run.push(c);
                chars.next();
            }
            out.push(if digit {
                Ok(run.parse().unwrap_or(u64::MAX))
            } else {
                Err(run)
            });
        }
        out
    }
    let (a, b) = (pieces(a), pieces(b));
    for (x, y) in a.iter().zip(b.iter()) {
        let o = match (x, y) {
            (Ok(x), Ok(y)) => x.cmp(y),
            (Err(x), Err(y)) => x.cmp(y),
            // A number sorts after text at the same place.
            (Ok(_), Err(_)) => std::cmp::Ordering::Greater,
            (Err(_), Ok(_)) => std::cmp::Ordering::Less,
        };
        if o.is_ne() {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn versions_compare_as_people_read_them() {
        assert_eq!(compare_versions("0.1.0", "0.1.0"), Equal);
        assert_eq!(compare_versions("0.1.0", "0.1.1"), Less);
        assert_eq!(compare_versions("0.9.0", "0.10.0"), Less);
        assert_eq!(compare_versions("0.1.0-ota2", "0.1.0"), Greater);
        assert_eq!(compare_versions("0.1.0-ota2", "0.1.0-ota3-broken"), Less);
        assert_eq!(compare_versions("1.0", "1.0.1"), Less);
        assert_eq!(compare_versions("2026.11.1", "2026.2.9"), Greater);
    }

    #[test]
    fn addresses_resolve_like_a_browser() {
        let base = "https://updates.example.org/homelab/stable/manifest.json?x=1";
        assert_eq!(
            resolve(base, "homelab-0.2.0.raucb"),
            "https://updates.example.org/homelab/stable/homelab-0.2.0.raucb"
        );
        assert_eq!(
            resolve(base, "/files/a.raucb"),
            "https://updates.example.org/files/a.raucb"
        );
        assert_eq!(
            resolve(base, "//cdn.example.org/a.raucb"),
            "https://cdn.example.org/a.raucb"
        );
        assert_eq!(resolve(base, "http://other/a"), "http://other/a");
        assert_eq!(resolve("http://h:8080", "m.json"), "http://h:8080/m.json");
    }

    #[test]
    fn only_plain_web_addresses_are_channels() {
        for bad in [
            "ftp://h/m.json",
            "h/m.json",
            "",
            "http://",
            "http://user:pw@h/m.json",
            "file:///etc/passwd",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad} accepted");
        }
        let t = Target::parse("http://[fd00::1]:8080/m.json").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("fd00::1", 8080));
        assert_eq!(t.host_header(), "[fd00::1]:8080");
        let t = Target::parse("https://updates.example.org").unwrap();
        assert_eq!((t.port, t.path.as_str()), (443, "/"));
    }

    #[test]
    fn a_manifest_must_be_complete() {
        let good = Manifest {
            version: "0.2.0".into(),
            url: "a.raucb".into(),
            size: 10,
            sha256: "ab".repeat(32),
            notes: String::new(),
            compatible: None,
        };
        assert!(good.validate().is_ok());
        for broken in [
            Manifest {
                sha256: "xyz".into(),
                ..good.clone()
            },
            Manifest {
                size: 0,
                ..good.clone()
            },
            Manifest {
                version: "0.2 0".into(),
                ..good.clone()
            },
            Manifest {
                url: " ".into(),
                ..good.clone()
            },
        ] {
            assert!(broken.validate().is_err(), "{broken:?} accepted");
        }
    }
}
