//! The update channel against a real HTTP(S) server on this machine (a small one written here,
//! so a test can cut a download off, ignore ranges or misbehave on purpose): the manifest over
//! https (certificate checked against the CA the daemon is told to trust, redirects, relative
//! file address), a download cut off half-way that resumes with a Range request and ends
//! byte-identical, a server that ignores ranges, checksum and size mismatches, and the errors
//! an owner sees. Then the daemon: the channel is off by default; setting it, checking it and
//! the Updates page; the window's settings; a download refused where updates cannot install.
//! Downloading into real slots and the automatic update window run under qemu
//! (tests/image/ota-test.sh).

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::*;
use homelabd::config::OtaConfig;
use homelabd::ota::channel::{ChannelError, Fetcher, Manifest};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the file server does, changeable while it runs.
#[derive(Default)]
struct Behaviour {
    files: HashMap<String, Vec<u8>>,
    redirects: HashMap<String, String>,
    /// Cut the next answer for this path off after so many body bytes.
    cut_after: Option<(String, usize)>,
    ignore_ranges: bool,
    /// The Range headers received, in order.
    ranges: Vec<Option<String>>,
}

struct FileServer {
    base: String,
    state: Arc<Mutex<Behaviour>>,
}

impl FileServer {
    /// Serves over http, or https with `tls` (a certificate for "localhost").
    async fn start(tls: Option<Arc<rustls::ServerConfig>>) -> FileServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let state = Arc::new(Mutex::new(Behaviour::default()));
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(cfg) => {
                            if let Ok(s) = tokio_rustls::TlsAcceptor::from(cfg).accept(tcp).await {
                                serve_one(s, st).await;
                            }
                        }
                        None => serve_one(tcp, st).await,
                    }
                });
            }
        });
        FileServer {
            base: format!("{scheme}://localhost:{port}"),
            state,
        }
    }

    fn put(&self, path: &str, bytes: Vec<u8>) {
        self.state
            .lock()
            .unwrap()
            .files
            .insert(path.to_string(), bytes);
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Answers one request, then closes the connection (the client opens a new one for the next).
async fn serve_one<S>(mut s: S, state: Arc<Mutex<Behaviour>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let range = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("range")
            .then(|| v.trim().to_string())
    });
    let (status, headers, body, cut) = {
        let mut b = state.lock().unwrap();
        b.ranges.push(range.clone());
        if let Some(to) = b.redirects.get(&path) {
            ("302 Found", format!("Location: {to}\r\n"), Vec::new(), None)
        } else if let Some(file) = b.files.get(&path).cloned() {
            let cut = match &b.cut_after {
                Some((p, n)) if *p == path => Some(*n),
                _ => None,
            };
            if cut.is_some() {
                b.cut_after = None;
            }
            let from: Option<usize> = range
                .as_deref()
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|n| n.parse().ok())
                .filter(|_| !b.ignore_ranges);
            match from {
                Some(from) if from < file.len() => (
                    "206 Partial Content",
                    format!(
                        "Content-Range: bytes {from}-{}/{}\r\n",
                        file.len() - 1,
                        file.len()
                    ),
                    file[from..].to_vec(),
                    cut,
                ),
                _ => ("200 OK", String::new(), file, cut),
            }
        } else {
            ("404 Not Found", String::new(), b"not here".to_vec(), None)
        }
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
        body.len()
    );
    if s.write_all(reply.as_bytes()).await.is_err() {
        return;
    }
    let sent = cut.unwrap_or(body.len()).min(body.len());
    let _ = s.write_all(&body[..sent]).await;
    let _ = s.flush().await;
    let _ = s.shutdown().await;
}

/// A certificate authority and a "localhost" certificate it issued; returns the server's
/// TLS settings and the CA file a client should trust.
fn test_tls(dir: &Path, name: &str) -> (Arc<rustls::ServerConfig>, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    install_crypto();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} test CA"));
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let ca_file = dir.join(format!("{name}-ca.pem"));
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    (Arc::new(config), ca_file)
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Bytes that do not compress or repeat, like a real bundle.
fn payload(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut block = Sha256::digest(b"homelab").to_vec();
    while out.len() < len {
        block = Sha256::digest(&block).to_vec();
        out.extend_from_slice(&block);
    }
    out.truncate(len);
    out
}

fn manifest_for(url: String, bytes: &[u8], version: &str) -> Manifest {
    Manifest {
        version: version.into(),
        url,
        size: bytes.len() as u64,
        sha256: sha256_hex(bytes),
        notes: String::new(),
        compatible: None,
    }
}

/// Asserts an answer is a refusal with this status whose message says `says`.
async fn refused(res: reqwest::Response, status: u16, says: &str) {
    assert_eq!(res.status(), status);
    let body = res.text().await.unwrap();
    assert!(body.contains(says), "expected “{says}”: {body}");
}

fn work_dir(name: &str) -> PathBuf {
    let dir = artifacts().join("update-channel").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn the_manifest_comes_over_https_through_redirects_with_a_relative_file_address() {
    let dir = work_dir("https");
    let (tls, ca) = test_tls(&dir, "channel");
    let server = FileServer::start(Some(tls)).await;
    let manifest = serde_json::json!({
        "version": "0.9.0",
        "url": "homelab-0.9.0.raucb",
        "size": 1234,
        "sha256": "ab".repeat(32),
        "notes": "Faster dashboard.\nFixes the backup schedule."
    });
    server.put(
        "/stable/manifest.json",
        serde_json::to_vec(&manifest).unwrap(),
    );
    server
        .state
        .lock()
        .unwrap()
        .redirects
        .insert("/latest".into(), "/stable/manifest.json".into());

    let fetcher = Fetcher::new(&ca, "test");
    let m = fetcher.manifest(&server.url("/latest")).await.unwrap();
    assert_eq!(m.version, "0.9.0");
    assert_eq!(m.size, 1234);
    assert_eq!(m.notes, "Faster dashboard.\nFixes the backup schedule.");
    assert_eq!(m.url, server.url("/stable/homelab-0.9.0.raucb"));

    // The same server is refused by a client trusting another authority.
    let (_, other_ca) = test_tls(&dir, "other");
    let err = Fetcher::new(&other_ca, "test")
        .manifest(&server.url("/latest"))
        .await
        .unwrap_err();
    assert!(matches!(err, ChannelError::Tls(_)), "{err:?}");
    assert!(err.to_string().contains("certificate"), "{err}");

    // No CA file at all: https says why and how to carry on.
    let err = Fetcher::new(&dir.join("missing.pem"), "test")
        .manifest(&server.url("/latest"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("No trusted certificate authorities"),
        "{err}"
    );
}

#[tokio::test]
async fn a_broken_channel_says_what_is_wrong() {
    let dir = work_dir("errors");
    let server = FileServer::start(None).await;
    let fetcher = Fetcher::new(&dir.join("none.pem"), "test");

    let err = fetcher
        .manifest(&server.url("/nothing.json"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");

    server.put("/page.json", b"<html>hello</html>".to_vec());
    let err = fetcher
        .manifest(&server.url("/page.json"))
        .await
        .unwrap_err();
    assert!(matches!(err, ChannelError::BadManifest(_)), "{err:?}");
    assert!(err.to_string().contains("needs “version”"), "{err}");

    server.put(
        "/short.json",
        br#"{"version": "1.0", "url": "a.raucb", "size": 10}"#.to_vec(),
    );
    let err = fetcher
        .manifest(&server.url("/short.json"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("sha256"), "{err}");

    // Nothing listens on the port any more.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = fetcher
        .manifest(&format!("http://127.0.0.1:{closed}/m.json"))
        .await
        .unwrap_err();
    assert!(matches!(err, ChannelError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("Is the box online"), "{err}");

    let err = fetcher
        .manifest("ftp://127.0.0.1/m.json")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("http:// or https://"), "{err}");
}

#[tokio::test]
async fn a_download_cut_off_half_way_resumes_where_it_stopped() {
    let dir = work_dir("resume");
    let server = FileServer::start(None).await;
    let bytes = payload(3 << 20);
    server.put("/u.raucb", bytes.clone());
    let m = manifest_for(server.url("/u.raucb"), &bytes, "1.0");
    server.state.lock().unwrap().cut_after = Some(("/u.raucb".into(), 1 << 20));
    let fetcher = Fetcher::new(&dir.join("none.pem"), "test");

    let mut seen = Vec::new();
    let err = fetcher
        .download(&m, &dir, |done, size| seen.push((done, size)))
        .await
        .unwrap_err();
    assert!(matches!(err, ChannelError::Interrupted { .. }), "{err:?}");
    assert!(
        err.to_string().contains("carries on where it stopped"),
        "{err}"
    );
    let kept = std::fs::metadata(dir.join("download.part")).unwrap().len();
    assert!(kept > 0 && kept <= 1 << 20, "kept {kept} bytes");
    assert!(seen.iter().all(|&(_, size)| size == bytes.len() as u64));

    let mut last = 0;
    let file = fetcher
        .download(&m, &dir, |done, _| last = done)
        .await
        .unwrap();
    assert_eq!(last, bytes.len() as u64);
    assert_eq!(
        server.state.lock().unwrap().ranges,
        vec![None, Some(format!("bytes={kept}-"))],
        "the second request asks only for the rest"
    );
    assert!(
        std::fs::read(&file).unwrap() == bytes,
        "the file is not the one served"
    );
    assert!(!dir.join("download.json").exists());
    // A kept file is known for the channel's only by its checksum.
    assert!(homelabd::ota::channel::file_matches(&file, &m.sha256).await);
    assert!(!homelabd::ota::channel::file_matches(&file, &sha256_hex(b"other")).await);
    assert!(!homelabd::ota::channel::file_matches(&dir.join("absent"), &m.sha256).await);

    // Another file with the same name: what was kept of the first is not carried on.
    std::fs::remove_file(&file).unwrap();
    let other = payload(1 << 20).into_iter().rev().collect::<Vec<_>>();
    server.put("/u.raucb", other.clone());
    server.state.lock().unwrap().cut_after = Some(("/u.raucb".into(), 1000));
    let m2 = manifest_for(server.url("/u.raucb"), &other, "1.1");
    fetcher.download(&m2, &dir, |_, _| {}).await.unwrap_err();
    let file = fetcher.download(&m2, &dir, |_, _| {}).await.unwrap();
    assert!(std::fs::read(&file).unwrap() == other);
}

#[tokio::test]
async fn a_server_without_ranges_sends_the_whole_file_again() {
    let dir = work_dir("no-ranges");
    let server = FileServer::start(None).await;
    let bytes = payload(2 << 20);
    server.put("/u.raucb", bytes.clone());
    {
        let mut b = server.state.lock().unwrap();
        b.ignore_ranges = true;
        b.cut_after = Some(("/u.raucb".into(), 700_000));
    }
    let m = manifest_for(server.url("/u.raucb"), &bytes, "1.0");
    let fetcher = Fetcher::new(&dir.join("none.pem"), "test");
    fetcher.download(&m, &dir, |_, _| {}).await.unwrap_err();
    let file = fetcher.download(&m, &dir, |_, _| {}).await.unwrap();
    assert!(
        std::fs::read(&file).unwrap() == bytes,
        "restarted from zero, not appended"
    );
}

#[tokio::test]
async fn a_file_that_does_not_match_the_manifest_is_deleted() {
    let dir = work_dir("mismatch");
    let server = FileServer::start(None).await;
    let bytes = payload(500_000);
    server.put("/u.raucb", bytes.clone());
    let fetcher = Fetcher::new(&dir.join("none.pem"), "test");

    let mut wrong_sum = manifest_for(server.url("/u.raucb"), &bytes, "1.0");
    wrong_sum.sha256 = sha256_hex(b"something else");
    let err = fetcher
        .download(&wrong_sum, &dir, |_, _| {})
        .await
        .unwrap_err();
    assert!(matches!(err, ChannelError::Mismatch), "{err:?}");
    assert!(!dir.join("download.part").exists());

    // The server sends more than the manifest says.
    let mut too_small = manifest_for(server.url("/u.raucb"), &bytes, "1.0");
    too_small.size = 400_000;
    let err = fetcher
        .download(&too_small, &dir, |_, _| {})
        .await
        .unwrap_err();
    assert!(matches!(err, ChannelError::Mismatch), "{err:?}");
    assert!(!dir.join("download.part").exists());
}

#[tokio::test]
async fn the_channel_is_off_until_set_and_says_what_it_offers() {
    let data = data_dir("update-channel-daemon");
    let work = work_dir("daemon");
    let mut o = Options::new("update-channel-daemon");
    o.data = Some(data.clone());
    o.ota = OtaConfig {
        rauc: PathBuf::from("/nonexistent/rauc"),
        reboot_request: data.join("run/reboot"),
        ca_certs: work.join("none.pem"),
        stream: false,
    };
    let s = start_with(o).await;
    let (session, _) = s.claim().await;
    let server = FileServer::start(None).await;
    const CHANNEL: &str = "/api/v1/system/update/channel";
    const CHECK: &str = "/api/v1/system/update/check";
    let put_channel = |body: serde_json::Value| {
        s.api(&session, reqwest::Method::PUT, CHANNEL)
            .json(&body)
            .send()
    };
    let post = |path: &'static str| s.api(&session, reqwest::Method::POST, path).send();

    // Off by default: nothing set, nothing asked, and the page offers no check.
    let settings = s.api_get_json(&session, CHANNEL).await;
    assert_eq!(settings, serde_json::json!({"url": null, "window": null}));
    let page = s.get_text_with("/settings/updates", &session, &[]).await;
    assert!(!page.contains("id=\"update-check\""), "{page}");
    assert!(
        page.contains("id=\"update-channel\""),
        "the settings form is there"
    );
    refused(post(CHECK).await.unwrap(), 422, "No update channel is set").await;
    assert!(
        server.state.lock().unwrap().ranges.is_empty(),
        "nothing was asked of any server"
    );

    // Bad settings are refused with how to fix them, and nothing is stored.
    for (body, says) in [
        (
            serde_json::json!({"url": "updates.example.org/m.json"}),
            "http:// or https://",
        ),
        (
            serde_json::json!({"url": null, "window": {"start": "03:00", "end": "05:00"}}),
            "need an update channel",
        ),
        (
            serde_json::json!({"url": server.url("/m.json"), "window": {"start": "3am", "end": "05:00"}}),
            "HH:MM",
        ),
    ] {
        refused(put_channel(body).await.unwrap(), 422, says).await;
    }
    let settings = s.api_get_json(&session, CHANNEL).await;
    assert_eq!(settings["url"], serde_json::Value::Null);

    // A channel offering a newer version, set from the page's form (window ticked, the
    // browser's offset UTC+02:00).
    server.put(
        "/m.json",
        serde_json::to_vec(&serde_json::json!({
            "version": "99.0.0",
            "url": "homelab-99.0.0.raucb",
            "size": 150_000_000u64,
            "sha256": "cd".repeat(32),
            "notes": "Backups to a second disk."
        }))
        .unwrap(),
    );
    let res = s
        .post_htmx(
            "/settings/updates/channel",
            &session,
            &[
                ("url", &server.url("/m.json")),
                ("automatic", "on"),
                ("start", "02:30"),
                ("end", "04:00"),
                ("utc_offset", "120"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Saved."));
    let settings = s.api_get_json(&session, CHANNEL).await;
    assert_eq!(settings["url"], server.url("/m.json"));
    assert_eq!(
        settings["window"],
        serde_json::json!({"start": 150, "end": 240, "utc_offset": 120})
    );

    let check: serde_json::Value = post(CHECK).await.unwrap().json().await.unwrap();
    assert_eq!(check["state"], "available", "{check}");
    assert_eq!(check["manifest"]["version"], "99.0.0");
    assert_eq!(
        check["manifest"]["url"],
        server.url("/homelab-99.0.0.raucb")
    );
    let page = s.get_text_with("/settings/updates", &session, &[]).await;
    assert!(
        page.contains("Homelab <strong>99.0.0</strong> is available (143 MB)"),
        "{page}"
    );
    assert!(page.contains("Backups to a second disk."), "{page}");
    assert!(
        page.contains("automatic updates 02:30–04:00 (UTC+02:00)"),
        "{page}"
    );
    assert!(
        !page.contains("update-download-button"),
        "no download offered where updates cannot install"
    );
    refused(
        post("/api/v1/system/update/download").await.unwrap(),
        501,
        "Updates are not available here",
    )
    .await;

    // The channel catches up with this box: up to date.
    server.put(
        "/m.json",
        serde_json::to_vec(&serde_json::json!({
            "version": homelabd::ota::system_version(),
            "url": "same.raucb",
            "size": 1,
            "sha256": "cd".repeat(32)
        }))
        .unwrap(),
    );
    let check: serde_json::Value = post(CHECK).await.unwrap().json().await.unwrap();
    assert_eq!(check["state"], "up_to_date", "{check}");
    // A channel that went away: the page says so (and the box carries on).
    server.put("/m.json", b"{}".to_vec());
    let res = s.post_htmx("/settings/updates/check", &session, &[]).await;
    let panel = res.text().await.unwrap();
    assert!(panel.contains("id=\"update-check-failed\""), "{panel}");

    // Turned off again; all of it audited.
    let res = put_channel(serde_json::json!({"url": null})).await.unwrap();
    assert_eq!(res.status(), 200);
    let settings = s.get_text_with("/settings", &session, &[]).await;
    assert!(settings.contains("Set the update channel to"), "{settings}");
    assert!(
        settings.contains("Turned the update channel off"),
        "{settings}"
    );
}
