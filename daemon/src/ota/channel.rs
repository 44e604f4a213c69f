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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, Uri};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A manifest is a few hundred bytes; anything much larger is not one.
const MAX_MANIFEST_BYTES: usize = 64 << 10;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// A download that receives nothing for this long is treated as cut off (and resumes later).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_REDIRECTS: usize = 5;

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

/// A URL split into what a request needs.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    https: bool,
    host: String,
    port: u16,
    /// Path and query, as sent in the request line.
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, ChannelError> {
        let bad = || ChannelError::BadUrl(url.to_string());
        let uri: Uri = url.trim().parse().map_err(|_| bad())?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad()),
        };
        let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(bad)?;
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            // user:password@host would end up in logs and the activity record.
            return Err(bad());
        }
        Ok(Target {
            https,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: uri.port_u16().unwrap_or(if https { 443 } else { 80 }),
            path: uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/".into()),
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

/// The address as shown in messages and the activity log: a query string (which can carry an
/// access token for a private channel) is left out.
pub fn shown(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_string(),
    }
}

/// Resolves `reference` (absolute, scheme-relative, host-relative or relative) against the
/// address it was found at: a manifest's bundle URL or a redirect's Location.
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

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Fetches manifests and update files.
#[derive(Clone)]
pub struct Fetcher {
    /// None when no certificate authorities could be read: https then says why.
    tls: Option<Arc<rustls::ClientConfig>>,
    tls_problem: String,
    user_agent: String,
}

impl Fetcher {
    /// `ca_file`: the PEM bundle of certificate authorities trusted for https channels.
    pub fn new(ca_file: &Path, version: &str) -> Fetcher {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let user_agent = format!("homelabd/{version}");
        let mut roots = rustls::RootCertStore::empty();
        let certs: Vec<_> = match CertificateDer::pem_file_iter(ca_file) {
            Ok(iter) => iter.filter_map(Result::ok).collect(),
            Err(_) => Vec::new(),
        };
        let (added, _ignored) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Fetcher {
                tls: None,
                tls_problem: format!(
                    "No trusted certificate authorities were found in {}, so https channels cannot be checked. Use an http:// channel (update files are signed, so that is safe) or install the system's CA certificates.",
                    ca_file.display()
                ),
                user_agent,
            };
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        match rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
        {
            Ok(b) => Fetcher {
                tls: Some(Arc::new(
                    b.with_root_certificates(roots).with_no_client_auth(),
                )),
                tls_problem: String::new(),
                user_agent,
            },
            Err(e) => Fetcher {
                tls: None,
                tls_problem: format!("TLS could not be set up: {e}"),
                user_agent,
            },
        }
    }

    async fn connect(&self, t: &Target) -> Result<Box<dyn Io>, ChannelError> {
        let unreachable = |reason: String| ChannelError::Unreachable {
            host: t.host_header(),
            reason,
        };
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect((t.host.as_str(), t.port)),
        )
        .await
        .map_err(|_| unreachable("no answer within 15 s".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
        if !t.https {
            return Ok(Box::new(tcp));
        }
        let Some(tls) = &self.tls else {
            return Err(ChannelError::Tls(self.tls_problem.clone()));
        };
        let name = rustls::pki_types::ServerName::try_from(t.host.clone())
            .map_err(|_| ChannelError::BadUrl(t.host.clone()))?;
        let stream = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| {
                ChannelError::Tls(format!(
                    "The secure connection to {} failed: {e}. The channel's certificate must be valid for that name and issued by an authority this box trusts.",
                    t.host_header()
                ))
            })?;
        Ok(Box::new(stream))
    }

    /// One GET, following redirects; `from` asks for the bytes from that offset on. Returns
    /// the response and the address it finally came from.
    async fn get(
        &self,
        url: &str,
        from: Option<u64>,
    ) -> Result<(Response<Incoming>, String), ChannelError> {
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let t = Target::parse(&url)?;
            let io = self.connect(&t).await?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
                    .await
                    .map_err(|e| ChannelError::Unreachable {
                        host: t.host_header(),
                        reason: e.to_string(),
                    })?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let mut req = Request::get(t.path.as_str())
                .header(hyper::header::HOST, t.host_header())
                .header(hyper::header::USER_AGENT, &self.user_agent)
                .header(hyper::header::ACCEPT_ENCODING, "identity");
            if let Some(from) = from {
                req = req.header(hyper::header::RANGE, format!("bytes={from}-"));
            }
            let req = req
                .body(Empty::<Bytes>::new())
                .map_err(|_| ChannelError::BadUrl(url.clone()))?;
            let resp = tokio::time::timeout(IDLE_TIMEOUT, sender.send_request(req))
                .await
                .map_err(|_| ChannelError::Unreachable {
                    host: t.host_header(),
                    reason: "no answer within 60 s".into(),
                })?
                .map_err(|e| ChannelError::Unreachable {
                    host: t.host_header(),
                    reason: e.to_string(),
                })?;
            if resp.status().is_redirection()
                && let Some(location) = resp
                    .headers()
                    .get(hyper::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
            {
                url = resolve(&url, location);
                continue;
            }
            return Ok((resp, url));
        }
        Err(ChannelError::Status {
            status: "too many redirects".into(),
            url: shown(&url),
        })
    }

    /// Reads the manifest at `url`; the bundle URL comes back absolute.
    pub async fn manifest(&self, url: &str) -> Result<Manifest, ChannelError> {
        let (resp, final_url) = self.get(url, None).await?;
        if resp.status() != StatusCode::OK {
            return Err(status_error(resp.status(), &final_url));
        }
        let mut body = resp.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) = tokio::time::timeout(IDLE_TIMEOUT, body.frame())
            .await
            .map_err(|_| ChannelError::BadManifest("it did not arrive within 60 s".into()))?
        {
            let frame = frame.map_err(|e| ChannelError::BadManifest(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                bytes.extend_from_slice(&data);
            }
            if bytes.len() > MAX_MANIFEST_BYTES {
                return Err(ChannelError::BadManifest("it is far too large".into()));
            }
        }
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
            let (resp, final_url) = self.get(&m.url, (have > 0).then_some(have)).await?;
            let status = resp.status();
            let resumed =
                status == StatusCode::PARTIAL_CONTENT && content_range_start(&resp) == Some(have);
            if !resumed {
                if status != StatusCode::OK {
                    return Err(status_error(status, &final_url));
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
            let mut body = resp.into_body();
            let interrupted = |got: u64, reason: String| ChannelError::Interrupted {
                got: human(got),
                size: human(m.size),
                reason,
            };
            loop {
                let frame = match tokio::time::timeout(IDLE_TIMEOUT, body.frame()).await {
                    Err(_) => {
                        file.sync_all().await?;
                        return Err(interrupted(have, "nothing arrived for 60 s".into()));
                    }
                    Ok(None) => break,
                    Ok(Some(Err(e))) => {
                        file.sync_all().await?;
                        return Err(interrupted(have, e.to_string()));
                    }
                    Ok(Some(Ok(frame))) => frame,
                };
                let Ok(data) = frame.into_data() else {
                    continue;
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

/// The first byte of a 206 answer (`Content-Range: bytes 100-199/200`).
fn content_range_start(resp: &Response<Incoming>) -> Option<u64> {
    let v = resp
        .headers()
        .get(hyper::header::CONTENT_RANGE)?
        .to_str()
        .ok()?;
    let range = v.strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
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
    fn a_query_string_is_never_shown() {
        assert_eq!(shown("https://h/m.json?token=s3cret"), "https://h/m.json?…");
        assert_eq!(shown("https://h/m.json"), "https://h/m.json");
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
