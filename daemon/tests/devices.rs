//! Adopting lab devices through the real server: password → key, every failure the user can
//! meet, host key changes, a device without Docker, power loss, resource figures, and shell
//! injection attempts. Real OpenSSH and Docker (lab/lab up).

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::time::Duration;

use common::*;

/// The add-device form as a browser sends it.
fn form<'a>(name: &'a str, host: &'a str, password: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", name),
        ("host", host),
        ("port", "22"),
        ("username", "homelab"),
        ("method", "password"),
        ("password", password),
    ]
}

async fn signed_in(opts: Options) -> (TestServer, Session) {
    let s = start_with(opts).await;
    let (session, _) = s.claim().await;
    (s, session)
}

/// Adds a device and returns its id (from the HX-Redirect).
async fn add(s: &TestServer, session: &Session, name: &str, device: &str) -> i64 {
    let pw = lab::password();
    let ip = lab::ip(device);
    let res = s
        .post_htmx("/devices", session, &form(name, &ip, &pw))
        .await;
    let status = res.status();
    let redirect = res
        .headers()
        .get("hx-redirect")
        .map(|v| v.to_str().unwrap().to_string());
    let body = res.text().await.unwrap();
    assert_eq!(status, 200, "adding {device} failed: {body}");
    redirect
        .unwrap()
        .trim_start_matches("/devices/")
        .parse()
        .unwrap()
}

fn authorized_keys(device: &str) -> String {
    lab::exec(device, &["cat", "/home/homelab/.ssh/authorized_keys"])
}

#[tokio::test]
async fn adopting_by_password_installs_our_key_and_forgets_the_password() {
    let (s, session) = signed_in(Options::new("adopt")).await;
    // Lines an earlier run left (one cut short) are not ours: ours is the one the add makes.
    let earlier = authorized_keys("server-01");
    let id = add(&s, &session, "Server One", "server-01").await;
    let keys = authorized_keys("server-01");
    let ours: Vec<&str> = keys
        .lines()
        .filter(|l| l.contains("device:Server-One") && !earlier.lines().any(|e| e == *l))
        .collect();
    assert!(!ours.is_empty(), "our key is in authorized_keys: {keys}");
    assert!(ours[0].starts_with("ssh-ed25519 ") && ours[0].contains("homelab-controller@"));

    // Only our private key is kept, sealed; the password is forgotten.
    {
        let db = rusqlite::Connection::open_with_flags(
            s.data.join("homelab.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let mut stmt = db
            .prepare("SELECT purpose FROM secrets WHERE owner = ?1 ORDER BY purpose")
            .unwrap();
        let purposes: Vec<String> = stmt
            .query_map([format!("device:{id}")], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(purposes, vec!["ssh-key".to_string()]);
    }
    // The page shows the device online with its figures, read over key login.
    let page = s
        .wait_page(&session, id, "online", |p| p.contains("badge-online"))
        .await;
    assert!(page.contains("Server One"));
    let sshd_log =
        std::fs::read_to_string("/var/tmp/homelab-lab/dev/server-01/sshd.log").unwrap_or_default();
    assert!(
        sshd_log.contains("Accepted publickey for homelab"),
        "later logins use the key"
    );

    // The dashboard counts it.
    let dash = s.get("/", &session).await.text().await.unwrap();
    assert!(dash.contains("8.0 GB memory"), "pool summary: {dash}");
    // Advanced mode counts cores too.
    for mode in ["advanced", "basic"] {
        let res = s
            .post_htmx("/settings/mode", &session, &[("mode", mode)])
            .await;
        assert_eq!(res.status(), 200);
        if mode == "advanced" {
            let dash = s.get("/", &session).await.text().await.unwrap();
            assert!(dash.contains("8.0 GB RAM, 4 cores"), "pool summary: {dash}");
        }
    }

    // Adding the same address again is refused and says under which name it exists.
    let pw = lab::password();
    let res = s
        .post_htmx(
            "/devices",
            &session,
            &form("Again", &lab::ip("server-01"), &pw),
        )
        .await;
    assert_eq!(res.status(), 409);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("already added as “Server One”")
    );

    // Removing with clean-up takes exactly our line out again.
    let res = s
        .post_htmx(
            &format!("/devices/{id}/remove"),
            &session,
            &[("clean", "on")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let after = authorized_keys("server-01");
    assert!(!after.contains(ours[0]), "our line was removed");
    assert!(
        !s.get("/devices/cards", &session)
            .await
            .text()
            .await
            .unwrap()
            .contains("Server One")
    );
    let audit = s.get("/settings", &session).await.text().await.unwrap();
    assert!(
        audit.contains("Added device “Server One”")
            && audit.contains("Removed device “Server One”")
    );
}

#[tokio::test]
async fn each_connection_problem_is_explained() {
    let (s, session) = signed_in(Options::new("adopt-failures")).await;
    let pw = lab::password();
    let server = lab::ip("server-01");
    let cases = [
        (
            form("A", &server, "wrong-password-for-sure"),
            "wrong password or key",
        ),
        (
            vec![
                ("name", "B"),
                ("host", server.as_str()),
                ("port", "2222"),
                ("username", "homelab"),
                ("method", "password"),
                ("password", pw.as_str()),
            ],
            "does not accept remote logins",
        ),
        (form("C", lab::NOTHING_THERE, &pw), "powered on"),
    ];
    for (f, expected) in cases {
        let res = s.post_htmx("/devices/test", &session, &f).await;
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        assert!(
            html.contains("Not ready yet") && html.contains(expected),
            "expected “{expected}” in {html}"
        );
        assert!(html.contains("Try again"));
        // Adding fails the same way and creates nothing.
        let res = s.post_htmx("/devices", &session, &f).await;
        assert_eq!(res.status(), 422);
    }
    assert!(
        s.get("/devices", &session)
            .await
            .text()
            .await
            .unwrap()
            .contains("No devices yet")
    );
    // A good test passes every check.
    let html = s
        .post_htmx("/devices/test", &session, &form("E", &server, &pw))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Ready to add"), "{html}");
    assert!(html.contains("The device is ready for apps."), "{html}");
    // Advanced mode names the engine and its version.
    let res = s
        .post_htmx("/settings/mode", &session, &[("mode", "advanced")])
        .await;
    assert_eq!(res.status(), 200);
    let html = s
        .post_htmx("/devices/test", &session, &form("E", &server, &pw))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Docker 20.") || html.contains("Docker 2"),
        "{html}"
    );
}

#[tokio::test]
async fn a_device_without_docker_is_reported_with_the_fix() {
    let (s, session) = signed_in(Options::new("no-docker")).await;
    let pw = lab::password();
    let html = s
        .post_htmx(
            "/devices/test",
            &session,
            &form("Bare", &lab::ip("bare-01"), &pw),
        )
        .await
        .text()
        .await
        .unwrap();
    // Basic mode says what it means, and offers to set it up.
    assert!(
        html.contains("This device is not set up for apps yet."),
        "{html}"
    );
    assert!(html.contains("Set it up for apps"), "{html}");
    assert!(html.contains("Password to make changes"), "{html}");
    assert!(
        !html.contains("apt-get"),
        "no commands in Basic mode: {html}"
    );
    // Advanced mode names Docker and shows the command.
    let res = s
        .post_htmx("/settings/mode", &session, &[("mode", "advanced")])
        .await;
    assert_eq!(res.status(), 200);
    let html = s
        .post_htmx(
            "/devices/test",
            &session,
            &form("Bare", &lab::ip("bare-01"), &pw),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Docker is not installed on this device."),
        "{html}"
    );
    // The command for its distribution (bare-01 is Debian), and the offer to do it: the
    // login may use sudo with its password. The install itself: tests/docker_install.rs.
    assert!(
        html.contains("sudo apt-get install -y docker.io docker-compose"),
        "the install command is shown: {html}"
    );
    assert!(html.contains("Install Docker for me"), "{html}");
    assert!(html.contains("Password for sudo"), "{html}");
    assert_eq!(
        s.post_htmx(
            "/devices",
            &session,
            &form("Bare", &lab::ip("bare-01"), &pw)
        )
        .await
        .status(),
        422
    );
}

#[tokio::test]
async fn figures_match_the_devices_profile() {
    let (s, session) = signed_in(Options::new("figures")).await;
    let id = add(&s, &session, "Big", "server-02").await;
    s.wait_page(&session, id, "online", |p| p.contains("badge-online"))
        .await;
    let token = {
        s.post_htmx("/settings/mode", &session, &[("mode", "advanced")])
            .await;
        s.api_token(&session, "figures").await
    };
    let res = s
        .client
        .get(s.url(&format!("/api/v1/devices/{id}")))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let d: serde_json::Value = res.json().await.unwrap();
    let f = &d["facts"];
    assert_eq!(d["state"], "online");
    assert_eq!(d["uptime_24h"], 1.0);
    assert_eq!(f["hostname"], "server-02");
    assert_eq!(f["cores"], 2);
    assert!(
        f["ports"].as_array().unwrap().iter().any(|p| p == 22),
        "listening ports are seen: {}",
        f["ports"]
    );
    assert_eq!(f["mem_total"], 16384u64 * 1024 * 1024);
    let disk = f["disk_total"].as_u64().unwrap() as f64;
    let expected = 500.0 * 1024.0 * 1024.0 * 1024.0;
    assert!(
        (disk - expected).abs() / expected < 0.03,
        "disk {disk} vs 500 GB"
    );
    assert!(f["docker"]["version"].as_str().unwrap().starts_with("20."));

    // The device page lists its containers as the last check saw them (advanced mode shows
    // the image): one started behind Homelab's back appears at the next check ("Check now"
    // here), and goes again at the check after it is removed.
    let cname = format!("figures-{}", std::process::id());
    lab::exec(
        "server-02",
        &[
            "docker",
            "run",
            "-d",
            "--name",
            &cname,
            "homelab-lab/http-stub:1",
        ],
    );
    let check_now = || async {
        s.post_htmx(&format!("/devices/{id}/refresh"), &session, &[])
            .await
            .text()
            .await
            .unwrap()
    };
    let checked = check_now().await;
    let page = s
        .get(&format!("/devices/{id}"), &session)
        .await
        .text()
        .await
        .unwrap();
    lab::exec("server-02", &["docker", "rm", "-f", &cname]);
    for page in [&checked, &page] {
        assert!(
            page.contains(&cname) && page.contains("homelab-lab/http-stub:1"),
            "containers listed: {page}"
        );
    }
    let after = check_now().await;
    assert!(
        !after.contains(&cname) && !after.contains("Not known right now"),
        "a removed container goes, and the list is there: {after}"
    );

    // Rename; moving to an address where another device answers is refused (its identity differs).
    let res = s
        .post_htmx(
            &format!("/devices/{id}/edit"),
            &session,
            &[
                ("name", "Big Two"),
                ("host", &lab::ip("server-02")),
                ("port", "22"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Big Two"));
    let res = s
        .post_htmx(
            &format!("/devices/{id}/edit"),
            &session,
            &[
                ("name", "Big Two"),
                ("host", &lab::ip("server-01")),
                ("port", "22"),
            ],
        )
        .await;
    assert_eq!(res.status(), 502);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("identifies itself differently than before")
    );
    let d: serde_json::Value = s
        .client
        .get(s.url(&format!("/api/v1/devices/{id}")))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        d["host"],
        lab::ip("server-02"),
        "a refused move changes nothing"
    );
    assert_eq!(d["name"], "Big Two");
}

#[tokio::test]
async fn a_powered_off_device_goes_offline_and_comes_back() {
    let mut opts = Options::new("power");
    opts.poll_interval = Duration::from_secs(1);
    let (s, session) = signed_in(opts).await;
    let id = add(&s, &session, "Pi", "pi-4").await;
    let cards = || async {
        let html = s
            .get("/devices/cards", &session)
            .await
            .text()
            .await
            .unwrap();
        Ok::<String, String>(html)
    };
    let state_is = |badge: &'static str| {
        let cards = &cards;
        move || async move {
            let html = cards().await?;
            if html.contains(badge) {
                Ok(html)
            } else {
                Err(html)
            }
        }
    };
    eventually(
        "the Pi online",
        Duration::from_secs(30),
        state_is("badge-online"),
    )
    .await;
    let pi = lab::unplug("pi-4");
    // Keepalive and poll timeouts notice within a bounded time, without anyone clicking.
    let html = eventually(
        "the unplugged Pi going offline",
        Duration::from_secs(60),
        state_is("badge-offline"),
    )
    .await;
    assert!(html.contains("Offline"));
    // An unreachable device cannot have our key taken off it: the user is told how to proceed,
    // and nothing is removed.
    let res = s
        .post_htmx(
            &format!("/devices/{id}/remove"),
            &session,
            &[("clean", "on")],
        )
        .await;
    assert_eq!(res.status(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Untick “Also remove Homelab")
    );
    assert!(
        s.get("/devices/cards", &session)
            .await
            .text()
            .await
            .unwrap()
            .contains("data-device=\"Pi\"")
    );
    pi.on();
    eventually(
        "the Pi coming back",
        Duration::from_secs(60),
        state_is("badge-online"),
    )
    .await;
}

#[tokio::test]
async fn a_changed_host_key_blocks_the_device_until_trusted() {
    let (s, session) = signed_in(Options::new("rekey")).await;
    let id = add(&s, &session, "NAS", "nas-01").await;
    s.wait_page(&session, id, "online", |p| p.contains("badge-online"))
        .await;
    lab::run(&["rekey", "nas-01"]);
    let page = s
        .wait_page(&session, id, "blocked", |p| p.contains("badge-blocked"))
        .await;
    assert!(page.contains("This device's identity changed"));
    assert!(page.contains("trust its new identity"));
    let res = s
        .post_htmx(&format!("/devices/{id}/trust-key"), &session, &[])
        .await;
    assert_eq!(res.status(), 200);
    s.wait_page(&session, id, "online again", |p| p.contains("badge-online"))
        .await;
    let audit = s.get("/settings", &session).await.text().await.unwrap();
    assert!(audit.contains("Trusted the new identity key of “NAS”"));
}

#[tokio::test]
async fn shell_metacharacters_in_user_fields_are_never_executed() {
    let (s, session) = signed_in(Options::new("injection")).await;
    let pw = lab::password();
    let server = lab::ip("server-01");
    let canary = format!("/tmp/homelab-canary-{}", std::process::id());
    let payloads = [
        format!("$(touch {canary})"),
        format!("`touch {canary}`"),
        format!("x; touch {canary}"),
        format!("x\ntouch {canary}"),
        format!("x' ; touch {canary} ; '"),
    ];
    for p in &payloads {
        // Name (goes into the key comment on the device) and socket path (a remote argument).
        let socket = format!("/var/run/docker.sock{p}");
        let f = vec![
            ("name", p.as_str()),
            ("host", server.as_str()),
            ("username", "homelab"),
            ("method", "password"),
            ("password", pw.as_str()),
            ("docker_socket", socket.as_str()),
        ];
        s.post_htmx("/devices/test", &session, &f).await;
        // Username and address are validated before anything is sent.
        let res = s
            .post_htmx(
                "/devices/test",
                &session,
                &[
                    ("name", "n"),
                    ("host", server.as_str()),
                    ("username", p.as_str()),
                    ("method", "password"),
                    ("password", pw.as_str()),
                ],
            )
            .await;
        assert_eq!(res.status(), 400);
        let res = s
            .post_htmx(
                "/devices/test",
                &session,
                &[
                    ("name", "n"),
                    ("host", p.as_str()),
                    ("username", "homelab"),
                    ("method", "password"),
                    ("password", pw.as_str()),
                ],
            )
            .await;
        assert_eq!(res.status(), 400);
    }
    // A name full of metacharacters can even be adopted: it only ever travels as data.
    let name = format!("evil $(touch {canary}) `id`");
    let res = s
        .post_htmx("/devices", &session, &form(&name, &server, &pw))
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert!(
        authorized_keys("server-01")
            .lines()
            // Homelab's SFTP-only backup keys (the backup tests' destinations) also stand here.
            .all(|l| l.starts_with("ssh-")
                || l.starts_with("restrict,command=\"internal-sftp\" ssh-")
                || l.is_empty()),
        "one key per line"
    );
    assert!(
        !std::path::Path::new(&canary).exists(),
        "an injection ran on this machine"
    );
    assert!(
        !lab::exec_ok("server-01", &["test", "-e", &canary]),
        "an injection ran on the device"
    );
}

#[tokio::test]
async fn the_login_can_be_changed_to_a_users_own_key() {
    let (s, session) = signed_in(Options::new("change-login")).await;
    let id = add(&s, &session, "Login", "server-01").await;
    let key = std::fs::read_to_string("/var/tmp/homelab-lab/keys/root_ed25519").unwrap();
    for line in key.lines().filter(|l| !l.starts_with("-----")) {
        remember_secret(line);
    }
    // A wrong password changes nothing.
    let res = s
        .post_htmx(
            &format!("/devices/{id}/login"),
            &session,
            &[
                ("username", "homelab"),
                ("method", "password"),
                ("password", "wrong-password-here"),
            ],
        )
        .await;
    assert!(res.status().is_client_error() || res.status().is_server_error());
    assert!(res.text().await.unwrap().contains("wrong password or key"));
    // The user's own key for root: proven against the pinned identity, then used by polls.
    let res = s
        .post_htmx(
            &format!("/devices/{id}/login"),
            &session,
            &[
                ("username", "root"),
                ("method", "key"),
                ("private_key", key.as_str()),
            ],
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let page = s
        .wait_page(&session, id, "online as root", |p| {
            p.contains("badge-online")
        })
        .await;
    assert!(
        page.contains("Homelab logs in as “root” with the key you gave it"),
        "{page}"
    );
    let audit = s.get("/settings", &session).await.text().await.unwrap();
    assert!(audit.contains("Changed the login of “Login” (now “root”)"));
}
