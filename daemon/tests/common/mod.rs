//! Test harness: starts the real daemon on port 0 with its own data directory, and speaks to
//! it over real HTTP. Data directories, logs and every secret a test used are kept under
//! `tests/artifacts/` so the leak scan (run last) can check none was written in plaintext.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Once;
use std::time::{Duration, Instant};

use homelabd::{Config, Listeners, RunError};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::redirect::Policy;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub mod adguard_fake;
pub mod avahi;
pub mod pebble;
pub mod pooled;
pub mod stand_in;

pub const ADMIN: &str = "admin";

/// Pause between two checks of `eventually`: short, as each check is a cheap local request.
const RECHECK: Duration = Duration::from_millis(200);

/// Waits for a condition with a deadline: `probe` answers `Ok(value)` once the condition
/// holds, or `Err(what it saw)`; after `timeout` the test fails with `what` and that last
/// observation. The one place tests wait — never a bare sleep for readiness.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(seen) => assert!(
                Instant::now() < deadline,
                "{what} did not happen within {timeout:?}; last seen: {seen}"
            ),
        }
        tokio::time::sleep(RECHECK).await;
    }
}

/// `eventually` for synchronous checks (processes, files).
pub fn eventually_blocking<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match probe() {
            Ok(v) => return v,
            Err(seen) => assert!(
                Instant::now() < deadline,
                "{what} did not happen within {timeout:?}; last seen: {seen}"
            ),
        }
        std::thread::sleep(RECHECK);
    }
}

pub fn artifacts() -> PathBuf {
    std::env::var_os("HOMELAB_TEST_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/artifacts"))
}

fn binary_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().to_string()))
        .unwrap_or_else(|| "test".into())
}

static LOG: Once = Once::new();
static CRYPTO: Once = Once::new();

/// The test client uses the same rustls provider (ring) as the daemon.
pub fn install_crypto() {
    CRYPTO.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Sends this test binary's log (debug level: the more it says, the more the leak scan sees)
/// to a file under artifacts/logs.
pub fn init_logging() {
    LOG.call_once(|| {
        let dir = artifacts().join("logs");
        std::fs::create_dir_all(&dir).expect("create log dir");
        let file = std::fs::File::create(dir.join(format!(
            "{}-{}.log",
            binary_name(),
            std::process::id()
        )))
        .expect("log file");
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "debug,hyper=info,h2=info,rustls=info,reqwest=info",
            ))
            .with_writer(std::sync::Mutex::new(file))
            .with_ansi(false)
            .try_init();
    });
}

/// Records a secret a test used, for the leak scan.
pub fn remember_secret(secret: &str) {
    let dir = artifacts().join("secrets");
    std::fs::create_dir_all(&dir).expect("create secrets dir");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{}-{}.txt", binary_name(), std::process::id())))
        .expect("secrets file");
    writeln!(f, "{secret}").expect("write secret");
}

/// A fresh data directory that outlives the test (for the leak scan).
pub fn data_dir(name: &str) -> PathBuf {
    let suffix: u64 = u64::from_le_bytes(homelabd::secrets::random_bytes());
    let dir = artifacts()
        .join("data")
        .join(format!("{name}-{suffix:016x}"));
    std::fs::create_dir_all(&dir).expect("create data dir");
    dir
}

/// A strong password unique to this run, remembered for the leak scan.
pub fn password(label: &str) -> String {
    let n: u64 = u64::from_le_bytes(homelabd::secrets::random_bytes());
    let pw = format!("{label}-Tr0ub4dor-{n:016x}");
    remember_secret(&pw);
    pw
}

pub struct TestServer {
    pub base: String,
    pub https_base: Option<String>,
    pub addr: SocketAddr,
    pub data: PathBuf,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), RunError>>>,
    /// The owner's password from the last claim or sign-in here: what a signed-in owner types
    /// again to make a token (see `api_token`).
    owner_password: std::sync::Mutex<Option<String>>,
}

pub struct Options {
    pub name: &'static str,
    pub claim_window: Duration,
    pub poll_interval: Duration,
    pub mdns_interfaces: Option<Vec<String>>,
    pub https: bool,
    pub data: Option<PathBuf>,
    /// How long a deployed app gets to answer its health check.
    pub health_timeout: Duration,
    /// How long a deploy waits for a public domain's certificate.
    pub certificate_wait: Duration,
    /// RAUC and the restart request (updates).
    pub ota: homelabd::config::OtaConfig,
    /// Connection bounds; floods in tests are sized against small ones so they run in seconds.
    pub connections: homelabd::ConnectionLimits,
    /// Scheduled backups start this long after the daemon; None (the default here): off, so
    /// no test meets a backup at 02:00.
    pub backup_schedule_after: Option<Duration>,
}

impl Options {
    pub fn new(name: &'static str) -> Options {
        Options {
            name,
            claim_window: Duration::from_secs(1800),
            poll_interval: Duration::from_secs(30),
            mdns_interfaces: None,
            https: false,
            data: None,
            health_timeout: Duration::from_secs(60),
            certificate_wait: homelabd::config::DEFAULT_CERTIFICATE_WAIT,
            ota: homelabd::config::OtaConfig::default(),
            connections: homelabd::ConnectionLimits::default(),
            backup_schedule_after: None,
        }
    }
}

pub async fn start(name: &'static str) -> TestServer {
    start_with(Options::new(name)).await
}

pub async fn start_with(opts: Options) -> TestServer {
    init_logging();
    let data = opts.data.clone().unwrap_or_else(|| data_dir(opts.name));
    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = http.local_addr().expect("addr");
    let https = if opts.https {
        Some(
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind tls"),
        )
    } else {
        None
    };
    let https_base = https
        .as_ref()
        .map(|l| format!("https://127.0.0.1:{}", l.local_addr().expect("addr").port()));
    let mut config = Config::new(&data);
    config.claim_window = opts.claim_window;
    config.poll_interval = opts.poll_interval;
    config.mdns = opts.mdns_interfaces.is_some();
    config.mdns_interfaces = opts.mdns_interfaces.clone();
    config.deploy.health_timeout = opts.health_timeout;
    config.deploy.certificate_wait = opts.certificate_wait;
    config.deploy.backup_schedule_after = opts.backup_schedule_after;
    config.ota = opts.ota.clone();
    config.connections = opts.connections.clone();
    config.https_redirect_port = https.as_ref().map(|l| l.local_addr().expect("addr").port());
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(homelabd::run(
        config,
        Listeners { http, https },
        async move {
            let _ = rx.await;
        },
    ));
    let server = TestServer {
        base: format!("http://{addr}"),
        https_base,
        addr,
        data,
        client: client(),
        stop: Some(tx),
        handle: Some(handle),
        owner_password: Default::default(),
    };
    server.wait_ready().await;
    server
}

/// Claims a daemon at `base` with any client (HTTP or HTTPS); returns the full Set-Cookie
/// header, after remembering the session token for the leak scan.
pub async fn claim_at(client: &reqwest::Client, base: &str, label: &str) -> String {
    let pw = password(label);
    let res = client
        .post(format!("{base}/setup"))
        .header("origin", base)
        .form(&[
            ("username", ADMIN),
            ("password", pw.as_str()),
            ("password_confirm", pw.as_str()),
        ])
        .send()
        .await
        .expect("setup");
    assert_eq!(res.status(), 303, "claim failed");
    let set_cookie = res.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_string();
    remember_secret(
        set_cookie
            .split(';')
            .next()
            .and_then(|p| p.split_once('='))
            .expect("cookie")
            .1,
    );
    set_cookie
}

/// A setting of a data directory's database, read-only (the daemon may be running: SQLite's
/// WAL lets a reader in beside it).
pub fn db_setting(data: &std::path::Path, key: &str) -> Option<String> {
    use rusqlite::OptionalExtension;
    let conn = rusqlite::Connection::open_with_flags(
        data.join(homelabd::store::DB_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
        r.get(0)
    })
    .optional()
    .unwrap()
}

/// The homelab's root certificate (PEM) of a data directory.
pub fn root_pem(data: &std::path::Path) -> String {
    db_setting(data, "ca.root_pem").expect("the root certificate is saved")
}

/// The box's current HTTPS certificate (PEM, leaf only) of a data directory.
pub fn box_cert_pem(data: &std::path::Path) -> String {
    db_setting(data, "tls.box_cert").expect("the box certificate is saved")
}

/// An HTTPS client that trusts exactly the test server's own root (the homelab's authority).
pub fn tls_client(s: &TestServer) -> reqwest::Client {
    let pem = root_pem(&s.data);
    install_crypto();
    reqwest::Client::builder()
        .redirect(Policy::none())
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .build()
        .unwrap()
}

pub fn client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Waits until /healthz answers.
    async fn wait_ready(&self) {
        eventually("the server start", Duration::from_secs(20), || async {
            if let Some(h) = &self.handle {
                assert!(!h.is_finished(), "server exited during start");
            }
            match self.client.get(self.url("/healthz")).send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(r.status().to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
    }

    /// Waits until the daemon has stopped by itself (after a restore it stops to start again
    /// on the restored state; the binary starts again at once, a test does it itself).
    pub async fn wait_stopped_itself(&self) {
        eventually(
            "the new box stops to restart",
            Duration::from_secs(20),
            || async {
                match self.client.get(self.url("/healthz")).send().await {
                    Err(_) => Ok(()),
                    Ok(r) => Err(r.status().to_string()),
                }
            },
        )
        .await;
    }

    /// Stops the server gracefully and returns how `run` ended.
    pub async fn stop(mut self) -> Result<(), RunError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.handle.take().expect("running").await.expect("join")
    }

    /// Same-origin headers a browser would send with a form post.
    pub fn origin(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("origin", HeaderValue::from_str(&self.base).expect("origin"));
        h
    }

    /// Posts the setup form.
    pub async fn post_setup(
        &self,
        username: &str,
        password: &str,
        code: Option<&str>,
    ) -> reqwest::Response {
        let mut form = vec![
            ("username", username),
            ("password", password),
            ("password_confirm", password),
        ];
        if let Some(c) = code {
            form.push(("setup_code", c));
        }
        self.client
            .post(self.url("/setup"))
            .headers(self.origin())
            .form(&form)
            .send()
            .await
            .expect("setup")
    }

    /// Claims the box as `admin` and returns the signed-in session.
    pub async fn claim(&self) -> (Session, String) {
        let pw = password("owner");
        let res = self.post_setup(ADMIN, &pw, None).await;
        assert_eq!(
            res.status(),
            303,
            "claim failed: {}",
            res.text().await.unwrap_or_default()
        );
        let session = self.session_from(&res).await;
        *self.owner_password.lock().unwrap() = Some(pw.clone());
        (session, pw)
    }

    pub async fn post_login(&self, username: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/login"))
            .headers(self.origin())
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .expect("login")
    }

    pub async fn login(&self, username: &str, password: &str) -> Session {
        let res = self.post_login(username, password).await;
        assert_eq!(res.status(), 303, "login failed");
        *self.owner_password.lock().unwrap() = Some(password.to_string());
        self.session_from(&res).await
    }

    /// Reads the session cookie from a response and fetches the page's CSRF token.
    pub async fn session_from(&self, res: &reqwest::Response) -> Session {
        let set_cookie = res
            .headers()
            .get("set-cookie")
            .expect("set-cookie")
            .to_str()
            .expect("ascii")
            .to_string();
        let cookie = set_cookie
            .split(';')
            .next()
            .expect("cookie pair")
            .to_string();
        let token = cookie.split_once('=').expect("pair").1.to_string();
        remember_secret(&token);
        let page = self
            .client
            .get(self.url("/settings"))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("settings")
            .text()
            .await
            .expect("body");
        let csrf = extract_between(&page, "name=\"csrf_token\" value=\"", "\"")
            .expect("csrf token on page");
        Session {
            cookie,
            csrf,
            set_cookie,
        }
    }

    pub async fn get(&self, path: &str, s: &Session) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header("cookie", &s.cookie)
            .send()
            .await
            .expect("get")
    }

    /// GET with extra headers (e.g. htmx's), returning the body.
    pub async fn get_text_with(&self, path: &str, s: &Session, headers: &[(&str, &str)]) -> String {
        let mut req = self.client.get(self.url(path)).header("cookie", &s.cookie);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("get").text().await.expect("body")
    }

    /// A JSON-API request as the signed-in browser makes it: cookie, CSRF header, same Origin.
    pub fn api(&self, s: &Session, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .headers(self.origin())
            .header("cookie", &s.cookie)
            .header("x-csrf-token", &s.csrf)
    }

    /// A GET on the JSON API, its body parsed.
    pub async fn api_get_json(&self, s: &Session, path: &str) -> serde_json::Value {
        let res = self
            .api(s, reqwest::Method::GET, path)
            .send()
            .await
            .expect("get");
        assert!(res.status().is_success(), "GET {path}: {}", res.status());
        res.json().await.expect("JSON body")
    }

    /// A state-changing request the way htmx sends it: cookie, CSRF header, same Origin.
    pub async fn post_htmx(
        &self,
        path: &str,
        s: &Session,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .headers(self.origin())
            .header("cookie", &s.cookie)
            .header("x-csrf-token", &s.csrf)
            .header("hx-request", "true")
            .form(form)
            .send()
            .await
            .expect("post")
    }

    /// Presses "Check now" on a device's page until `pred` holds (deadline); the page that
    /// comes back.
    pub async fn wait_page(
        &self,
        session: &Session,
        id: i64,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        eventually(
            &format!("device {id} becoming {what}"),
            Duration::from_secs(60),
            || async {
                let page = self
                    .post_htmx(&format!("/devices/{id}/refresh"), session, &[])
                    .await
                    .text()
                    .await
                    .unwrap();
                if pred(&page) { Ok(page) } else { Err(page) }
            },
        )
        .await
    }

    /// The Prometheus text of /metrics, read with an API token.
    pub async fn metrics(&self, token: &str) -> String {
        let res = self
            .client
            .get(self.url("/metrics"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "/metrics");
        res.text().await.unwrap()
    }

    /// Creates an API token through Settings (Advanced mode) and returns its value.
    /// The owner types their password again (a token outlives the session).
    pub async fn api_token(&self, s: &Session, name: &str) -> String {
        let password = self
            .owner_password
            .lock()
            .unwrap()
            .clone()
            .expect("api_token: claim or sign in through this TestServer first (its password is typed again)");
        let res = self
            .post_htmx(
                "/settings/tokens",
                s,
                &[("name", name), ("password", &password)],
            )
            .await;
        assert_eq!(res.status(), 200);
        let html = res.text().await.expect("body");
        let token = extract_between(&html, "id=\"new-token\">", "<").expect("token shown once");
        remember_secret(&token);
        token
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The `homelabd` binary, for tests of the process itself (signals, being killed).
pub const BIN: &str = env!("CARGO_BIN_EXE_homelabd");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `homelabd run` child process; killed when dropped.
pub struct Daemon {
    pub child: std::process::Child,
    pub log: PathBuf,
    pub listen: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn healthcheck(listen: &str) -> bool {
    std::process::Command::new(BIN)
        .args(["healthcheck", "--listen", listen])
        .output()
        .unwrap()
        .status
        .success()
}

/// Starts the binary on a free port with `data`, JSON logs into the artifacts, extra env.
pub fn spawn_daemon(name: &str, data: &std::path::Path, env: &[(&str, &str)]) -> Daemon {
    let listen = format!("127.0.0.1:{}", free_port());
    let logs = artifacts().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log = logs.join(format!(
        "bin-{name}-{}-{}.log",
        std::process::id(),
        free_port()
    ));
    let out = std::fs::File::create(&log).unwrap();
    // JSON logs unless the test asks for another format.
    let format = env
        .iter()
        .find(|(k, _)| *k == "HOMELAB_LOG_FORMAT")
        .map_or("json", |(_, v)| *v);
    let child = std::process::Command::new(BIN)
        .args(["run", "--listen", &listen, "--log-format", format])
        .env("HOMELAB_DATA", data)
        .env("RUST_LOG", "debug")
        .env("HOMELAB_MDNS", "off")
        .envs(env.iter().copied())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let d = Daemon { child, log, listen };
    eventually_blocking("the daemon start", Duration::from_secs(30), || {
        if healthcheck(&d.listen) {
            Ok(())
        } else {
            Err(std::fs::read_to_string(&d.log).unwrap_or_default())
        }
    });
    d
}

impl TestServer {
    /// Speaks to a daemon running as its own process (see [`spawn_daemon`]).
    pub fn attach(d: &Daemon, data: PathBuf) -> TestServer {
        TestServer {
            base: format!("http://{}", d.listen),
            https_base: None,
            addr: d.listen.parse().unwrap(),
            data,
            client: client(),
            stop: None,
            handle: None,
            owner_password: Default::default(),
        }
    }
}

/// Adds a lab device through the UI (by password) and waits for its first check to find it
/// online; returns its id.
pub async fn add_lab_device(s: &TestServer, session: &Session, name: &str, device: &str) -> i64 {
    let pw = lab::password();
    let ip = lab::ip(device);
    let res = s
        .post_htmx(
            "/devices",
            session,
            &[
                ("name", name),
                ("host", ip.as_str()),
                ("username", "homelab"),
                ("method", "password"),
                ("password", pw.as_str()),
            ],
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let target = res.headers()["hx-redirect"].to_str().unwrap().to_string();
    let id: i64 = target.rsplit('/').next().unwrap().parse().unwrap();
    // Its first check runs right after adding; placement needs it online.
    eventually(
        "the device's first check",
        Duration::from_secs(60),
        || async {
            let body = s
                .get(&format!("/api/v1/devices/{id}"), session)
                .await
                .text()
                .await
                .unwrap();
            if body.contains("\"state\":\"online\"") {
                Ok(())
            } else {
                Err(body)
            }
        },
    )
    .await;
    id
}

pub struct Session {
    /// "name=value" for the Cookie header.
    pub cookie: String,
    pub csrf: String,
    /// The full Set-Cookie header the server sent.
    pub set_cookie: String,
}

pub fn extract_between(haystack: &str, start: &str, end: &str) -> Option<String> {
    let from = haystack.find(start)? + start.len();
    let len = haystack[from..].find(end)?;
    Some(haystack[from..from + len].to_string())
}

/// A claimed daemon with a lab device added and `slug` deployed on it by address: the
/// owner's session and password, the API (token named `label`), and the device's id.
pub async fn claimed_with_app<'a>(
    s: &'a TestServer,
    label: &str,
    device_name: &str,
    device: &str,
    slug: &str,
) -> (Session, String, Api<'a>, i64) {
    let (session, password) = s.claim().await;
    let api = Api {
        token: s.api_token(&session, label).await,
        s,
    };
    let id = add_lab_device(s, &session, device_name, device).await;
    let d = api
        .deploy_to_end(
            slug,
            serde_json::json!({"device_id": id, "by_address": true}),
        )
        .await;
    assert_eq!(d["state"], "running", "{d}");
    (session, password, api, id)
}

/// The daemon's JSON API with an API token: deployments started and waited for.
pub struct Api<'a> {
    pub s: &'a TestServer,
    pub token: String,
}

impl Api<'_> {
    /// Adds a backup destination (`POST /api/v1/backups/destinations`): status and answer.
    pub async fn add_destination(&self, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.send(
            reqwest::Method::POST,
            "/api/v1/backups/destinations",
            Some(body),
        )
        .await
    }

    /// "Test connection": its status and its words (the message, or the error's).
    pub async fn check_destination(&self, id: i64) -> (u16, String) {
        let (status, checked) = self
            .send(
                reqwest::Method::POST,
                &format!("/api/v1/backups/destinations/{id}/check"),
                None,
            )
            .await;
        let words = checked["message"]
            .as_str()
            .or(checked["error"]["message"].as_str())
            .unwrap_or_default()
            .to_string();
        (status, words)
    }

    /// Sets the box's recovery passphrase (which starts a box backup at once).
    pub async fn set_recovery_passphrase(&self, passphrase: &str) {
        let (status, set) = self
            .send(
                reqwest::Method::PUT,
                "/api/v1/backups/box/passphrase",
                Some(serde_json::json!({"passphrase": passphrase, "confirm": passphrase})),
            )
            .await;
        assert_eq!(status, 204, "{set}");
    }

    /// "Back up the box now", once the run a new passphrase started has let go (two cannot
    /// run at once; each takes a few seconds).
    pub async fn back_up_box(&self) -> serde_json::Value {
        eventually("back up the box now", Duration::from_secs(180), || async {
            let (status, done) = self
                .send(reqwest::Method::POST, "/api/v1/backups/box", None)
                .await;
            match status {
                200 => Ok(done),
                422 if done.to_string().contains("already") => Err(done.to_string()),
                _ => panic!("back up the box: {status} {done}"),
            }
        })
        .await
    }

    pub async fn get(&self, path: &str) -> serde_json::Value {
        let res = self
            .s
            .client
            .get(self.s.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        assert!(status.is_success(), "GET {path}: {status} {body}");
        serde_json::from_str(&body).unwrap()
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .s
            .client
            .request(method, self.s.url(path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// Adds the lab SSH server `server`'s `folder` as a backup destination (the lab login's
    /// password, used once); returns its id.
    pub async fn add_sftp_destination(&self, name: &str, server: &str, folder: &str) -> i64 {
        let (status, dest) = self
            .send(
                reqwest::Method::POST,
                "/api/v1/backups/destinations",
                Some(
                    serde_json::json!({"name": name, "kind": "sftp", "host": lab::ip(server),
                        "user": lab::user(), "password": lab::password(), "path": folder}),
                ),
            )
            .await;
        assert_eq!(status, 201, "{dest}");
        dest["id"].as_i64().unwrap()
    }

    pub async fn delete(&self, path: &str) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    pub async fn deploy(&self, slug: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.send(
            reqwest::Method::POST,
            &format!("/api/v1/applications/{slug}/deploy"),
            Some(body),
        )
        .await
    }

    /// POSTs something that starts a deployment (a deploy or an update), expects 202, and
    /// waits until it ends: running, or rolled back.
    pub async fn run_to_end(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let (status, started) = self.send(reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(status, 202, "POST {path}: {started}");
        self.wait(
            started["deployment_id"].as_i64().unwrap(),
            &["running", "rolled_back"],
            Duration::from_secs(120),
        )
        .await
    }

    pub async fn deploy_to_end(&self, slug: &str, body: serde_json::Value) -> serde_json::Value {
        self.run_to_end(&format!("/api/v1/applications/{slug}/deploy"), body)
            .await
    }

    /// Waits until the deployment reaches one of `states`.
    pub async fn wait(&self, id: i64, states: &[&str], timeout: Duration) -> serde_json::Value {
        self.wait_for(id, &format!("{states:?}"), timeout, |d| {
            states.contains(&d["state"].as_str().unwrap_or(""))
        })
        .await
    }

    /// Waits until the deployment satisfies `done`.
    pub async fn wait_for(
        &self,
        id: i64,
        what: &str,
        timeout: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        eventually(&format!("deployment {id}: {what}"), timeout, || async {
            let d = self.get(&format!("/api/v1/deployments/{id}")).await;
            if done(&d) {
                Ok(d)
            } else {
                Err(format!("{} — {}", d["state"], d["message"]))
            }
        })
        .await
    }
}

/// The lab's devices (see lab/README.md). Tests that need them fail with a hint when the lab
/// is not up.
/// A web app recipe in the data directory (before the daemon starts), on the lab's stand-in
/// image.
pub fn stand_in_recipe(data: &std::path::Path, slug: &str, image: &str, port: u16) {
    let dir = data.join("recipes").join(slug);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("manifest.yaml"),
        format!(
            "name: {slug}\nslug: {slug}\nversion: \"1.0\"\ncategory: Test\n\
             description: A lab stand-in app.\nwebsite: https://example.org\n\
             requirements: {{ram_min_mb: 64, ram_recommended_mb: 128, storage_min_gb: 1, \
             storage_recommended_gb: 1, cpu_min_cores: 1, cpu_recommended_cores: 1}}\n\
             architectures: [amd64, arm64]\n\
             web: {{service: web, port: 8080, path: /}}\n\
             health: {{path: /, status: 200}}\n\
             data_volumes: [data]\n\
             settings:\n  - {{name: HTTP_PORT, label: Which port to use, kind: port, default: \"{port}\"}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            "services:\n  web:\n    image: {image}\n    restart: unless-stopped\n    ports:\n      \
             - \"${{HTTP_PORT}}:8080\"\n    volumes:\n      - data:/data\nvolumes:\n  data:\n"
        ),
    )
    .unwrap();
}

pub mod lab {
    /// Removes what an interrupted earlier run left of an app on a device.
    pub fn clean_app(device: &str, slug: &str) {
        // A fixed script; the label and folder arrive as its arguments.
        const CLEAN: &str = "docker ps -aq --filter \"$1\" | xargs -r docker rm -f; \
            docker volume ls -q --filter \"$1\" | xargs -r docker volume rm; \
            docker network ls -q --filter \"$1\" | xargs -r docker network rm; \
            rm -rf -- \"$2\"";
        let label = format!("label=com.docker.compose.project=homelab-{slug}");
        let dir = format!("/opt/homelab/apps/{slug}");
        exec(device, &["sh", "-c", CLEAN, "fresh", &label, &dir]);
    }

    use std::process::Command;

    fn script() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../lab/lab")
    }

    fn env_value(key: &str) -> String {
        let out = Command::new(script())
            .arg("env")
            .output()
            .expect("run lab/lab env");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("lab/lab env has no {key}"))
    }

    pub fn user() -> String {
        env_value("LAB_USER")
    }

    /// A `LAB_REST*` value of `lab/lab env` (the lab's restic REST servers, see
    /// lab/README.md); the password is remembered for the leak scan, as typed and as it goes
    /// into an address. Fails with the fix when the lab has no REST server running.
    pub fn rest(key: &str) -> String {
        let value = env_value(key);
        if key == "LAB_REST_PASSWORD" {
            super::remember_secret(&value);
            super::remember_secret(&super::url_escaped(&value));
        }
        if key.starts_with("LAB_REST") && value.starts_with("http") {
            let hostport = value.split("://").nth(1).unwrap_or_default();
            assert!(
                std::net::TcpStream::connect_timeout(
                    &hostport.parse().expect("the REST server's address"),
                    std::time::Duration::from_secs(2)
                )
                .is_ok(),
                "the lab's REST server {value} does not answer: run `lab/lab up` (as root) first"
            );
        }
        value
    }

    /// The lab registry (host:port) every device's engine trusts.
    pub fn registry() -> String {
        env_value("LAB_REGISTRY")
    }

    pub fn password() -> String {
        let pw = env_value("LAB_PASSWORD");
        super::remember_secret(&pw);
        pw
    }

    /// An address in the lab's network where no device ever answers: devices are at
    /// .11 and up (the benchmark's extra nodes too), the host is .1.
    pub const NOTHING_THERE: &str = "10.88.0.9";

    pub fn ip(device: &str) -> String {
        let key = format!("LAB_IP_{}", device.to_uppercase().replace('-', "_"));
        let ip = env_value(&key);
        // Checked locally, never by connecting: with the lab down, lab addresses would be
        // routed off this machine, and no test traffic may ever leave it.
        let status = Command::new(script())
            .arg("status")
            .output()
            .expect("lab status");
        let up = String::from_utf8_lossy(&status.stdout).lines().any(|l| {
            l.split_whitespace().take(3).collect::<Vec<_>>() == [device, ip.as_str(), "up"]
        });
        assert!(
            up,
            "lab device {device} ({ip}) is not up: run `lab/lab up` (as root) first"
        );
        ip
    }

    /// Runs `lab/lab ARGS…` and asserts it worked.
    pub fn run(args: &[&str]) {
        let st = Command::new(script())
            .args(args)
            .status()
            .expect("run lab/lab");
        assert!(st.success(), "lab/lab {args:?} failed");
    }

    /// Runs a command inside a device and says whether it succeeded.
    pub fn exec_ok(device: &str, args: &[&str]) -> bool {
        Command::new(script())
            .arg("exec")
            .arg(device)
            .args(args)
            .status()
            .expect("lab exec")
            .success()
    }

    /// Unplugs a device's network cable; plugged back in by `on()` or when dropped (so a
    /// failing test never leaves the lab half-down).
    pub struct Unplugged(String);

    pub fn unplug(device: &str) -> Unplugged {
        run(&["power", device, "off"]);
        Unplugged(device.to_string())
    }

    impl Unplugged {
        pub fn on(&self) {
            run(&["power", &self.0, "on"]);
        }
    }

    impl Drop for Unplugged {
        fn drop(&mut self) {
            self.on();
        }
    }

    /// A stand-in container publishing `port` on a device (something else holding a port);
    /// removed when dropped.
    pub struct PortTaker {
        device: String,
        pub name: String,
    }

    pub fn take_port(device: &str, port: u16) -> PortTaker {
        let name = format!("port-taker-{}-{port}", std::process::id());
        let publish = format!("{port}:8080");
        assert!(
            exec_ok(
                device,
                &[
                    "docker",
                    "run",
                    "-d",
                    "--name",
                    &name,
                    "-p",
                    &publish,
                    "homelab-lab/http-stub:1"
                ]
            ),
            "start a container on {device} holding port {port}"
        );
        PortTaker {
            device: device.to_string(),
            name,
        }
    }

    impl Drop for PortTaker {
        fn drop(&mut self) {
            exec(&self.device, &["docker", "rm", "-f", &self.name]);
        }
    }

    /// Runs a command inside a device and returns its stdout.
    pub fn exec(device: &str, args: &[&str]) -> String {
        let out = Command::new(script())
            .arg("exec")
            .arg(device)
            .args(args)
            .output()
            .expect("lab exec");
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}

/// `text` percent-encoded as an address's login carries it (everything but letters, digits
/// and `-._~`).
/// An API error's words.
pub fn error_words(body: &serde_json::Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn url_escaped(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Remembers for the leak scan the secrets the daemon sealed for `owner` under `purposes`
/// (as `remember_sealed`, for owners that also keep something short that is no secret, such
/// as a REST server's login name). Returns how many it found.
pub fn remember_sealed_purposes(data: &std::path::Path, owner: &str, purposes: &[&str]) -> usize {
    let vault = homelabd::secrets::Vault::open_or_create(data).expect("vault");
    let conn = rusqlite::Connection::open_with_flags(
        data.join(homelabd::store::DB_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("db");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    let mut found = 0;
    for purpose in purposes {
        let sealed: Option<Vec<u8>> = conn
            .query_row(
                "SELECT sealed FROM secrets WHERE owner = ?1 AND purpose = ?2",
                [owner, purpose],
                |r| r.get(0),
            )
            .ok();
        if let Some(sealed) = sealed {
            let secret = vault.open(&sealed, owner, purpose).expect("unseal");
            let text = String::from_utf8_lossy(secret.expose()).to_string();
            assert!(text.len() >= 8, "{owner}/{purpose} is a real secret");
            remember_secret(&text);
            found += 1;
        }
    }
    found
}

/// Remembers for the leak scan every secret the daemon sealed for `owner` in a data directory
/// (a backup destination's repository password and keys, which no test typed): the leak scan
/// then fails if any of them appears in a log or file. Of a key file (several lines) its
/// longest line is remembered, which no header shares.
pub fn remember_sealed(data: &std::path::Path, owner: &str) -> usize {
    let vault = homelabd::secrets::Vault::open_or_create(data).expect("vault");
    let conn = rusqlite::Connection::open_with_flags(
        data.join(homelabd::store::DB_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("db");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    let mut st = conn
        .prepare("SELECT purpose, sealed FROM secrets WHERE owner = ?1")
        .expect("query");
    let rows: Vec<(String, Vec<u8>)> = st
        .query_map([owner], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    for (purpose, sealed) in &rows {
        let secret = vault.open(sealed, owner, purpose).expect("unseal");
        let text = String::from_utf8_lossy(secret.expose()).to_string();
        let line = text
            .lines()
            .max_by_key(|l| l.len())
            .unwrap_or_default()
            .to_string();
        assert!(line.len() >= 16, "{owner}/{purpose} is a real secret");
        remember_secret(&line);
    }
    rows.len()
}
