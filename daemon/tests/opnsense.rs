//! The OPNsense client against the faithful fake (`lab/fakes/opnsense.py`) for each of 25.1
//! and 26.1: certificate pinning on first use, a changed certificate, a wrong key, the
//! overview with string numbers, traffic rates, Homelab's host overrides; the fake checked
//! by independent clients (`check_opnsense.py`); and the Router panel, connect flow and
//! dashboard card through the real server.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use homelabd::network::opnsense::{LeaseServer, OpnSense, OpnSenseError};
use homelabd::secrets::Secret;

const VERSIONS: [&str; 2] = ["25.1", "26.1"];

fn fakes() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../lab/fakes")
}

/// The fake router, stopped when dropped.
struct Fake {
    child: Child,
    port: u16,
    dir: PathBuf,
    cert_dir: PathBuf,
    key: String,
    secret: String,
    version: &'static str,
}

impl Fake {
    fn start(version: &'static str) -> Fake {
        let dir = common::data_dir(&format!("opnsense-fake-{version}"));
        let (key, secret) = (common::password("opnkey"), common::password("opnsecret"));
        Fake::start_in(version, dir.clone(), dir.join("cert"), 0, key, secret)
    }

    fn start_in(
        version: &'static str,
        dir: PathBuf,
        cert_dir: PathBuf,
        port: u16,
        key: String,
        secret: String,
    ) -> Fake {
        let mut child = Command::new("python3")
            .arg(fakes().join("opnsense.py"))
            .args(["--port", &port.to_string(), "--version", version])
            .arg("--state")
            .arg(dir.join("state.json"))
            .arg("--cert-dir")
            .arg(&cert_dir)
            .env("OPNSENSE_FAKE_KEY", &key)
            .env("OPNSENSE_FAKE_SECRET", &secret)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the fake router");
        // The fake prints "ready PORT" once it listens; a dead fake closes stdout instead.
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the fake router said it is ready");
        let port = line
            .trim()
            .strip_prefix("ready ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the fake router did not start: {line:?}"));
        Fake {
            child,
            port,
            dir,
            cert_dir,
            key,
            secret,
            version,
        }
    }

    /// The same router (port, state, key) restarted; `new_cert` gives it a fresh certificate.
    fn restart(mut self, new_cert: bool) -> Fake {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let cert_dir = if new_cert {
            self.dir.join("cert-2")
        } else {
            self.cert_dir.clone()
        };
        let (dir, key, secret) = (self.dir.clone(), self.key.clone(), self.secret.clone());
        Fake::start_in(self.version, dir, cert_dir, self.port, key, secret)
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The certificate's SHA-256 fingerprint as the openssl CLI computes it (independently
    /// of the daemon's code).
    fn openssl_fingerprint(&self) -> String {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(self.cert_dir.join("cert.pem"))
            .output()
            .expect("openssl");
        let text = String::from_utf8(out.stdout).unwrap();
        text.trim()
            .split_once('=')
            .map(|(_, fp)| fp.to_string())
            .unwrap()
    }

    fn client(&self, pin: &str) -> OpnSense {
        OpnSense::new(
            &self.url(),
            Secret::from_string(self.key.clone()),
            Secret::from_string(self.secret.clone()),
            Some(pin.to_string()),
        )
        .unwrap()
    }

    fn state(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.dir.join("state.json")).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or_default()
    }

    fn seed(dir: &Path, state: serde_json::Value) {
        std::fs::write(dir.join("state.json"), state.to_string()).unwrap();
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_certificate_is_pinned_on_first_contact_and_a_new_one_stops_everything() {
    for version in VERSIONS {
        let fake = Fake::start(version);
        let seen = OpnSense::first_contact(&fake.url())
            .await
            .unwrap()
            .expect("an https router shows a certificate");
        assert_eq!(seen, fake.openssl_fingerprint(), "{version}");

        let system = fake.client(&seen).check().await.unwrap();
        assert!(system.version.starts_with(version), "{system:?}");
        // Any spelling of the same fingerprint pins the same certificate.
        let lower = seen.to_lowercase().replace(':', "");
        fake.client(&lower).check().await.unwrap();

        // The same certificate after a restart is still trusted.
        let fake = fake.restart(false);
        fake.client(&seen).check().await.unwrap();

        // A new certificate: its own error, naming both, until the owner accepts it.
        let fake = fake.restart(true);
        let new = fake.openssl_fingerprint();
        assert_ne!(new, seen);
        let err = fake.client(&seen).overview().await.unwrap_err();
        match &err {
            OpnSenseError::CertChanged { pinned, seen: now } => {
                assert_eq!(pinned, &seen);
                assert_eq!(now, &new);
            }
            other => panic!("{version}: expected a changed certificate, got {other:?}"),
        }
        assert!(
            err.plain().contains("different identity"),
            "{}",
            err.plain()
        );
        fake.client(&new).check().await.unwrap();
    }
}

#[tokio::test]
async fn a_wrong_key_is_a_plain_error() {
    for version in VERSIONS {
        let fake = Fake::start(version);
        let pin = OpnSense::first_contact(&fake.url()).await.unwrap().unwrap();
        let client = OpnSense::new(
            &fake.url(),
            Secret::from_string(fake.key.clone()),
            Secret::from_string("not-the-secret".into()),
            Some(pin),
        )
        .unwrap();
        let err = client.overview().await.unwrap_err();
        assert!(matches!(err, OpnSenseError::Unauthorized), "{err:?}");
        let plain = err.plain();
        assert!(plain.contains("did not accept the key"), "{plain}");
        assert!(!plain.contains("401") && !plain.contains("API"), "{plain}");
    }
}

#[tokio::test]
async fn a_router_that_is_gone_is_unreachable_within_the_timeout() {
    let port = common::free_port();
    let started = std::time::Instant::now();
    let err = OpnSense::first_contact(&format!("https://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(6));
}

#[tokio::test]
async fn the_overview_reads_both_versions_string_numbers_included() {
    for version in VERSIONS {
        let fake = Fake::start(version);
        let pin = OpnSense::first_contact(&fake.url()).await.unwrap().unwrap();
        let o = fake.client(&pin).overview().await.unwrap();
        assert!(o.missing.is_empty(), "{version}: {:?}", o.missing);
        assert!(o.system.version.starts_with(version), "{:?}", o.system);
        assert_eq!(o.system.name, "OPNsense.localdomain");
        // "total" is a string, "used" a float in the router's answer.
        assert_eq!(o.system.memory_total, Some(8 * 1024 * 1024 * 1024));
        assert_eq!(o.system.memory_used, Some(3 * 1024 * 1024 * 1024));
        assert!(o.system.uptime_secs.unwrap() >= 3 * 86400, "{:?}", o.system);
        assert!(o.system.cpu.as_deref().unwrap().contains("4 cores"));
        let wan = o.wan().expect("a WAN interface");
        assert!(wan.up && wan.addr4 == "198.51.100.2/24", "{wan:?}");
        assert!(o.internet_up());
        assert_eq!(o.gateways.len(), 1);
        assert!(o.gateways[0].online);
        assert_eq!(o.gateways[0].delay_ms, Some(1.2));
        let expected = if version == "25.1" {
            LeaseServer::Isc
        } else {
            LeaseServer::Kea
        };
        assert_eq!(o.leases.server, expected, "{version}");
        assert_eq!(o.leases.total, 3);
        assert_eq!(o.leases.active(), if version == "25.1" { 2 } else { 3 });
        assert_eq!(o.blocks.len(), 2);
        assert_eq!(o.blocks[0].port, "22");
    }
}

#[tokio::test]
async fn a_wan_without_carrier_reads_as_internet_down() {
    let dir = common::data_dir("opnsense-fake-wan-down");
    Fake::seed(&dir, serde_json::json!({"wan_up": false}));
    let fake = Fake::start_in(
        "26.1",
        dir.clone(),
        dir.join("cert"),
        0,
        common::password("opnkey"),
        common::password("opnsecret"),
    );
    let pin = OpnSense::first_contact(&fake.url()).await.unwrap().unwrap();
    let o = fake.client(&pin).overview().await.unwrap();
    let wan = o.wan().unwrap();
    assert!(!wan.up && wan.status == "no carrier", "{wan:?}");
    assert!(!o.internet_up());
    assert!(!o.gateways[0].online);
}

#[tokio::test]
async fn traffic_rates_come_from_two_samples() {
    let fake = Fake::start("26.1");
    let pin = OpnSense::first_contact(&fake.url()).await.unwrap().unwrap();
    let client = fake.client(&pin);
    let first = client.traffic().await.unwrap();
    let second = common::eventually("half a second of traffic", Duration::from_secs(10), || {
        let client = &client;
        let first = &first;
        async move {
            let s = client.traffic().await.map_err(|e| e.to_string())?;
            if s.time - first.time >= 0.5 {
                Ok(s)
            } else {
                Err(format!("{} s apart", s.time - first.time))
            }
        }
    })
    .await;
    let rates = second.rates_since(&first);
    let wan = rates.iter().find(|r| r.id == "wan").unwrap();
    // The fake's WAN grows by 6 MB/s in (48 Mbit/s) and 1 MB/s out (8 Mbit/s); the router's
    // clock and its counters are read at slightly different instants.
    assert!((wan.in_bps / 48e6 - 1.0).abs() < 0.1, "{wan:?}");
    assert!((wan.out_bps / 8e6 - 1.0).abs() < 0.1, "{wan:?}");
    assert_eq!(wan.name, "WAN");
}

#[tokio::test]
async fn homelabs_host_overrides_are_idempotent_and_the_owners_are_never_touched() {
    for version in VERSIONS {
        let fake = Fake::start(version);
        let pin = OpnSense::first_contact(&fake.url()).await.unwrap().unwrap();
        let c = fake.client(&pin);
        let before = c.host_overrides().await.unwrap();
        let owners: Vec<_> = before.iter().filter(|o| !o.is_ours()).cloned().collect();
        assert_eq!(owners.len(), 1, "the fake seeds one of the owner's");

        let uuid = c
            .put_host_override("jellyfin", "home.arpa", "192.168.1.30", "Homelab: jellyfin")
            .await
            .unwrap();
        let again = c
            .put_host_override("jellyfin", "home.arpa", "192.168.1.30", "Homelab: jellyfin")
            .await
            .unwrap();
        assert_eq!(uuid, again, "{version}: re-adding must not duplicate");
        let moved = c
            .put_host_override("jellyfin", "home.arpa", "192.168.1.31", "Homelab: jellyfin")
            .await
            .unwrap();
        assert_eq!(uuid, moved, "a new address updates the same entry");
        let now = c.host_overrides().await.unwrap();
        assert_eq!(now.len(), before.len() + 1, "{now:?}");
        let ours = now.iter().find(|o| o.uuid == uuid).unwrap();
        assert_eq!(
            (ours.host.as_str(), ours.server.as_str()),
            ("jellyfin", "192.168.1.31")
        );

        // Not Homelab's: refused before anything is sent.
        let err = c
            .put_host_override("nas", "home.arpa", "10.0.0.9", "my own entry")
            .await
            .unwrap_err();
        assert!(matches!(err, OpnSenseError::NotOurs), "{err:?}");
        let err = c.delete_host_override(&owners[0].uuid).await.unwrap_err();
        assert!(matches!(err, OpnSenseError::NotOurs), "{err:?}");
        // Injection in a name is refused locally.
        let err = c
            .put_host_override("a;b", "home.arpa", "10.0.0.9", "Homelab: x")
            .await
            .unwrap_err();
        assert!(matches!(err, OpnSenseError::BadEntry(_)), "{err:?}");

        let applied = fake.state()["reconfigures"].as_i64().unwrap_or(0);
        c.apply().await.unwrap();
        assert_eq!(fake.state()["reconfigures"].as_i64(), Some(applied + 1));

        c.delete_host_override(&uuid).await.unwrap();
        c.delete_host_override(&uuid).await.unwrap();
        let after = c.host_overrides().await.unwrap();
        assert_eq!(
            after, before,
            "{version}: only Homelab's entry came and went"
        );
    }
}

#[test]
fn independent_clients_find_the_fake_faithful() {
    for version in VERSIONS {
        let fake = Fake::start(version);
        let out = Command::new("python3")
            .arg(fakes().join("check_opnsense.py"))
            .args(["--url", &fake.url(), "--version", version])
            .args(["--key", &fake.key, "--secret", &fake.secret])
            .arg("--ca")
            .arg(fake.cert_dir.join("cert.pem"))
            .output()
            .expect("run check_opnsense.py");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{version}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for check in [
            "firmware info",
            "interfaces export",
            "host overrides",
            "gateway",
            "leases",
            "wrong secret",
        ] {
            assert!(
                stdout.contains(check),
                "{version}: {check} not checked: {stdout}"
            );
        }
    }
}

// --- Through the real server ---------------------------------------------------------------

/// The confirmation handle in a confirm partial.
fn handle_in(html: &str) -> String {
    common::extract_between(html, "name=\"handle\" value=\"", "\"").expect(html)
}

#[tokio::test]
async fn the_router_is_connected_after_the_owner_confirms_its_certificate() {
    for version in VERSIONS {
        let fake = Fake::start(version);
        let s = common::start("opnsense-web").await;
        let (session, _) = s.claim().await;

        // Not connected: the panel is the form, the dashboard a line pointing to it.
        let panel = s
            .get_text_with("/network/router", &session, &[("hx-request", "true")])
            .await;
        assert!(panel.contains("id=\"router-connect\""), "{panel}");
        let card = s
            .get_text_with("/dashboard/network", &session, &[("hx-request", "true")])
            .await;
        assert!(card.contains("Connect your router"), "{card}");
        let dash = s.get_text_with("/", &session, &[]).await;
        assert!(dash.contains("hx-get=\"/dashboard/network\""), "{dash}");

        // Step one: the certificate, in plain words, for the owner to compare.
        let res = s
            .post_htmx(
                "/network/router/connect",
                &session,
                &[
                    ("url", &fake.url()),
                    ("key", &fake.key),
                    ("secret", &fake.secret),
                ],
            )
            .await;
        assert_eq!(res.status(), 200);
        let confirm = res.text().await.unwrap();
        assert!(confirm.contains(&fake.openssl_fingerprint()), "{confirm}");
        assert!(confirm.contains("identity code"), "{confirm}");
        assert!(
            !confirm.contains(&fake.secret),
            "the secret must not come back"
        );
        // Nothing stored before the owner confirms.
        let card = s
            .get_text_with("/dashboard/network", &session, &[("hx-request", "true")])
            .await;
        assert!(card.contains("Connect your router"), "{card}");

        // Step two: confirmed, checked, stored; the panel shows the router.
        let handle = handle_in(&confirm);
        let res = s
            .post_htmx("/network/router/confirm", &session, &[("handle", &handle)])
            .await;
        let panel = res.text().await.unwrap();
        assert!(panel.contains("id=\"router-version\">OPNsense "), "{panel}");
        assert!(panel.contains(&format!("OPNsense {version}")), "{panel}");
        assert!(panel.contains("Internet: connected"), "{panel}");
        assert!(
            panel.contains("3 devices on your network")
                || panel.contains("2 devices on your network"),
            "{panel}"
        );
        // A handle is good once.
        let again = s
            .post_htmx("/network/router/confirm", &session, &[("handle", &handle)])
            .await
            .text()
            .await
            .unwrap();
        assert!(again.contains("expired"), "{again}");

        // The traffic part: a rate once two samples are in.
        let traffic = common::eventually("a traffic rate", Duration::from_secs(15), || {
            let (s, session) = (&s, &session);
            async move {
                let t = s
                    .get_text_with(
                        "/network/router/traffic",
                        session,
                        &[("hx-request", "true")],
                    )
                    .await;
                if t.contains("up right now") && t.contains("<svg") {
                    Ok(t)
                } else {
                    Err(t)
                }
            }
        })
        .await;
        assert!(traffic.contains("Mbit/s down"), "{traffic}");

        // The dashboard card.
        let card = common::eventually(
            "the Network card with a speed",
            Duration::from_secs(15),
            || {
                let (s, session) = (&s, &session);
                async move {
                    let c = s
                        .get_text_with("/dashboard/network", session, &[("hx-request", "true")])
                        .await;
                    if c.contains("Internet: connected") && c.contains("down right now") {
                        Ok(c)
                    } else {
                        Err(c)
                    }
                }
            },
        )
        .await;
        assert!(card.contains("devices on your network now"), "{card}");

        // Basic pages speak plain words (the words tests/plain_words.rs also refuses).
        for (path, html) in [
            ("panel", &panel),
            ("traffic", &traffic),
            ("card", &card),
            ("confirm", &confirm),
        ] {
            assert_plain(path, html);
        }

        // Advanced mode: the technical detail.
        s.post_htmx("/settings/mode", &session, &[("mode", "advanced")])
            .await;
        let adv = s
            .get_text_with("/network/router", &session, &[("hx-request", "true")])
            .await;
        assert!(adv.contains(&fake.openssl_fingerprint()), "{adv}");
        assert!(
            adv.contains("4 cores") && adv.contains("Load average"),
            "{adv}"
        );
        assert!(
            adv.contains("WAN_DHCP") && adv.contains("198.51.100.2/24"),
            "{adv}"
        );
        let server = if version == "25.1" {
            "ISC DHCP"
        } else {
            "Kea DHCP"
        };
        assert!(adv.contains(server), "{adv}");
        s.post_htmx("/settings/mode", &session, &[("mode", "basic")])
            .await;

        // The secrets are sealed: never in the database in the clear.
        let db = std::fs::read(s.data.join("homelab.db")).unwrap_or_default();
        let db = String::from_utf8_lossy(&db);
        assert!(!db.contains(&fake.secret) && !db.contains(&fake.key));

        // A router that stops answering: the panel says so, never an error page.
        drop(fake);
        let down = common::eventually(
            "the panel to report the router down",
            Duration::from_secs(30),
            || {
                let (s, session) = (&s, &session);
                async move {
                    let res = s
                        .client
                        .get(s.url("/network/router"))
                        .header("cookie", &session.cookie)
                        .header("hx-request", "true")
                        .send()
                        .await
                        .unwrap();
                    let status = res.status();
                    let body = res.text().await.unwrap();
                    if status == 200 && body.contains("not answering") {
                        Ok(body)
                    } else {
                        Err(format!("{status}: {body}"))
                    }
                }
            },
        )
        .await;
        assert!(down.contains("Check that it is on"), "{down}");
        let card = s
            .get_text_with("/dashboard/network", &session, &[("hx-request", "true")])
            .await;
        assert!(card.contains("not answering"), "{card}");

        // Forget: back to the form.
        let res = s.post_htmx("/network/router/forget", &session, &[]).await;
        assert!(res.text().await.unwrap().contains("id=\"router-connect\""));
        let card = s
            .get_text_with("/dashboard/network", &session, &[("hx-request", "true")])
            .await;
        assert!(card.contains("Connect your router"), "{card}");
        s.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_changed_certificate_and_a_wrong_key_are_said_plainly() {
    let fake = Fake::start("26.1");
    let s = common::start("opnsense-web-cert").await;
    let (session, _) = s.claim().await;

    // A wrong secret: refused at confirmation, nothing stored.
    let confirm = s
        .post_htmx(
            "/network/router/connect",
            &session,
            &[
                ("url", &fake.url()),
                ("key", &fake.key),
                ("secret", "wrong-secret"),
            ],
        )
        .await
        .text()
        .await
        .unwrap();
    let refused = s
        .post_htmx(
            "/network/router/confirm",
            &session,
            &[("handle", &handle_in(&confirm))],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(refused.contains("did not accept the key"), "{refused}");
    assert!(refused.contains("id=\"router-connect\""), "{refused}");

    let confirm = s
        .post_htmx(
            "/network/router/connect",
            &session,
            &[
                ("url", &fake.url()),
                ("key", &fake.key),
                ("secret", &fake.secret),
            ],
        )
        .await
        .text()
        .await
        .unwrap();
    s.post_htmx(
        "/network/router/confirm",
        &session,
        &[("handle", &handle_in(&confirm))],
    )
    .await;

    // The router comes back with another certificate: everything stops, in plain words.
    let fake = fake.restart(true);
    let panel = common::eventually(
        "the panel to report a changed certificate",
        Duration::from_secs(30),
        || {
            let (s, session) = (&s, &session);
            async move {
                let p = s
                    .get_text_with("/network/router", session, &[("hx-request", "true")])
                    .await;
                if p.contains("different identity") {
                    Ok(p)
                } else {
                    Err(p)
                }
            }
        },
    )
    .await;
    assert!(panel.contains("Forget this router"), "{panel}");
    let traffic = s
        .get_text_with(
            "/network/router/traffic",
            &session,
            &[("hx-request", "true")],
        )
        .await;
    assert!(
        !traffic.contains("<svg"),
        "no figures through an unconfirmed certificate"
    );

    // The owner looks at the new identity and accepts it: the stored key is reused.
    let confirm = s
        .post_htmx("/network/router/check-again", &session, &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(confirm.contains(&fake.openssl_fingerprint()), "{confirm}");
    let panel = s
        .post_htmx(
            "/network/router/confirm",
            &session,
            &[("handle", &handle_in(&confirm))],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        panel.contains("id=\"router-version\">OPNsense 26.1"),
        "{panel}"
    );
    assert!(!panel.contains("different identity"), "{panel}");
    drop(fake);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn injection_in_the_address_or_key_is_refused_and_shown_escaped() {
    let s = common::start("opnsense-web-inject").await;
    let (session, _) = s.claim().await;
    let cases: [(&str, &str, &str); 5] = [
        ("https://192.168.1.1\"><script>alert(1)</script>", "k", "s"),
        ("javascript:alert(1)", "k", "s"),
        ("https://192.168.1.1/api/../../etc", "k", "s"),
        ("https://192.168.1.1", "k\r\nX-Injected: 1", "s"),
        ("https://192.168.1.1", "<img src=x onerror=alert(1)>", "s"),
    ];
    for (url, key, secret) in cases {
        let res = s
            .post_htmx(
                "/network/router/connect",
                &session,
                &[("url", url), ("key", key), ("secret", secret)],
            )
            .await;
        assert_eq!(res.status(), 200, "{url:?}");
        let html = res.text().await.unwrap();
        assert!(
            html.contains("alert alert-error"),
            "{url:?} {key:?}: {html}"
        );
        assert!(
            !html.contains("<script>alert") && !html.contains("<img src=x"),
            "{html}"
        );
        assert!(!html.contains("name=\"handle\""), "{url:?} was accepted");
    }
    s.stop().await.unwrap();
}

/// Fails on the technical words Basic mode must not show (a subset of tests/plain_words.rs),
/// in the page's visible text.
fn assert_plain(what: &str, html: &str) {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .map(str::to_lowercase)
        .collect();
    for jargon in [
        "api",
        "fingerprint",
        "port",
        "load",
        "core",
        "cores",
        "token",
        "sha-256",
        "tls",
        "dns",
        "dhcp",
        "mac",
    ] {
        assert!(
            !words.iter().any(|w| w == jargon),
            "{what}: “{jargon}” in Basic: {text}"
        );
    }
    assert!(
        !text.contains("127.0.0.1:"),
        "{what}: an address with a port in Basic: {text}"
    );
}
