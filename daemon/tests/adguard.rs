//! AdGuard Home: our client (`dns::adguard`) against the fake (lab/fakes/adguard.py), the fake
//! against the independent client (lab/fakes/check_adguard.py, PyPI `adguardhome`), and the
//! DNS panel of the Network page through the real server.

mod common;

use common::adguard_fake::{Fake, fake, repo};

use std::process::Command;
use std::time::Duration;

use homelabd::dns::adguard::{AdGuard, AdGuardError, QueryFilter, Rewrite};
use homelabd::secrets::Secret;

const PASSWORD: &str = "fake-admin-password";

/// The text a reader sees: tags dropped (attribute values with them).
fn visible(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

fn seeded() -> serde_json::Value {
    let log: Vec<_> = (0..30)
        .map(|i| {
            serde_json::json!({
                "time": format!("2026-12-05T10:{:02}:00.5Z", 59 - i),
                "question": {"name": format!("host{i}.example"), "type": "A", "class": "IN"},
                "client": if i % 2 == 0 { "192.168.1.20" } else { "192.168.1.10" },
                "reason": if i % 3 == 0 { "FilteredBlackList" } else { "NotFilteredNotFound" },
                "status": "NOERROR",
                "elapsedMs": "0.25",
            })
        })
        .collect();
    serde_json::json!({
        "users": [{"name": "admin", "password": PASSWORD}],
        "querylog": log,
        "stats": {"num_dns_queries": 1204, "num_blocked_filtering": 144},
        "rewrites": [{"domain": "nas.lan", "answer": "192.168.1.5"}],
    })
}

fn agh(f: &Fake, password: &str) -> AdGuard {
    AdGuard::new(&f.url, "admin", Secret::from_string(password.into())).expect("a usable address")
}

/// A loopback web server handing out a blocklist whose text the test can change.
async fn list_server(rules: std::sync::Arc<std::sync::Mutex<String>>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/list.txt", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let rules = rules.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let body = rules.lock().expect("lock").clone();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body.as_bytes()).await;
            });
        }
    });
    url
}

#[test]
fn the_fake_is_faithful_to_the_independent_client() {
    let out = Command::new("python3")
        .arg(repo().join("lab/fakes/check_adguard.py"))
        .output()
        .expect("python3 runs check_adguard.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "check_adguard.py failed:\n{text}");
    assert!(text.contains("PASS"), "{text}");
}

#[tokio::test]
async fn test_reports_version_and_protection_and_a_wrong_password_plainly() {
    let f = fake(seeded());
    let status = agh(&f, PASSWORD).test().await.unwrap();
    assert_eq!(status.version, "v0.107.71");
    assert!(status.protection_enabled && status.running);

    let err = agh(&f, "wrong").test().await.unwrap_err();
    assert!(matches!(err, AdGuardError::WrongLogin { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("refused the user name or password")
    );

    // Basic auth on any other call: refused, with the way to find out why.
    let err = agh(&f, "wrong").stats().await.unwrap_err();
    assert!(matches!(err, AdGuardError::LoginRefused { .. }), "{err:?}");
}

#[tokio::test]
async fn five_wrong_passwords_lock_homelab_out_for_fifteen_minutes() {
    // internal/home/authratelimiter.go with the defaults auth_attempts: 5, block_auth_min: 15.
    let f = fake(seeded());
    for attempt in 1..=5 {
        let err = agh(&f, "wrong").test().await.unwrap_err();
        assert!(
            matches!(err, AdGuardError::WrongLogin { .. }),
            "attempt {attempt}: {err:?}"
        );
    }
    // Now even the right password is refused, and the message says for how long.
    let err = agh(&f, PASSWORD).test().await.unwrap_err();
    let AdGuardError::LockedOut { seconds, .. } = &err else {
        panic!("{err:?}");
    };
    assert!((14 * 60..=15 * 60).contains(seconds), "{seconds}");
    assert!(err.to_string().contains("about 15 minutes"), "{err}");
}

#[tokio::test]
async fn unreachable_and_not_set_up_say_what_to_do() {
    let port = common::free_port();
    let err = AdGuard::new(
        &format!("http://127.0.0.1:{port}"),
        "admin",
        Secret::from_string("x".into()),
    )
    .unwrap()
    .test()
    .await
    .unwrap_err();
    assert!(matches!(err, AdGuardError::Unreachable { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("Homelab could not reach AdGuard Home at http://127.0.0.1:{port}: check the address and that it is running")),
        "{err}"
    );

    let f = fake(serde_json::json!({"configured": false, "users": []}));
    let err = agh(&f, PASSWORD).test().await.unwrap_err();
    assert!(matches!(err, AdGuardError::NotSetUp { .. }), "{err:?}");
}

#[tokio::test]
async fn rewrites_are_idempotent_never_touch_others_and_report_conflicts() {
    let f = fake(seeded());
    let a = agh(&f, PASSWORD);
    let theirs = Rewrite {
        domain: "nas.lan".into(),
        answer: "192.168.1.5".into(),
        enabled: true,
    };

    a.add_rewrite("Jellyfin.home.arpa", "10.0.0.7")
        .await
        .unwrap();
    a.add_rewrite("jellyfin.home.arpa", "10.0.0.7")
        .await
        .unwrap();
    let ours = Rewrite {
        domain: "jellyfin.home.arpa".into(),
        answer: "10.0.0.7".into(),
        enabled: true,
    };
    assert_eq!(a.rewrites().await.unwrap(), vec![theirs.clone(), ours]);

    // The owner's own record for a name: a conflict, left as it is.
    let err = a.add_rewrite("nas.lan", "10.0.0.9").await.unwrap_err();
    let AdGuardError::Conflict { domain, answer } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        (domain.as_str(), answer.as_str()),
        ("nas.lan", "192.168.1.5")
    );

    // Moving: old → new, twice; then the old answer is gone.
    a.update_rewrite("jellyfin.home.arpa", "10.0.0.7", "10.0.0.8")
        .await
        .unwrap();
    a.update_rewrite("jellyfin.home.arpa", "10.0.0.7", "10.0.0.8")
        .await
        .unwrap();
    let moved = Rewrite {
        domain: "jellyfin.home.arpa".into(),
        answer: "10.0.0.8".into(),
        enabled: true,
    };
    assert_eq!(a.rewrites().await.unwrap(), vec![theirs.clone(), moved]);

    // Deleting what is named only; twice is fine; a different answer is not ours to delete.
    a.delete_rewrite("nas.lan", "10.9.9.9").await.unwrap();
    a.delete_rewrite("jellyfin.home.arpa", "10.0.0.8")
        .await
        .unwrap();
    a.delete_rewrite("jellyfin.home.arpa", "10.0.0.8")
        .await
        .unwrap();
    assert_eq!(a.rewrites().await.unwrap(), vec![theirs]);

    let err = a.add_rewrite("bad name!", "1.2.3.4").await.unwrap_err();
    assert!(matches!(err, AdGuardError::BadInput(_)), "{err:?}");
}

#[tokio::test]
async fn protection_stats_and_the_query_log() {
    let f = fake(seeded());
    let a = agh(&f, PASSWORD);

    a.set_protection(false).await.unwrap();
    let s = a.status().await.unwrap();
    assert!(!s.protection_enabled && s.protection_paused_for.is_none());
    a.pause_protection(Duration::from_secs(600)).await.unwrap();
    let paused = a.status().await.unwrap().protection_paused_for.unwrap();
    assert!(paused > Duration::from_secs(590), "{paused:?}");
    a.set_protection(true).await.unwrap();
    assert!(a.status().await.unwrap().protection_enabled);

    let stats = a.stats().await.unwrap();
    assert_eq!((stats.queries, stats.blocked), (1204, 144));
    assert!((stats.blocked_percent() - 11.96).abs() < 0.01);

    let page = a
        .querylog(&QueryFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.rows.len(), 10);
    assert_eq!(page.rows[0].domain, "host0.example");
    let next = a
        .querylog(&QueryFilter {
            limit: 10,
            older_than: page.oldest.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(next.rows[0].domain, "host10.example");

    let blocked = a
        .querylog(&QueryFilter {
            blocked_only: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(blocked.rows.len(), 10, "every third of 30");
    assert!(blocked.rows.iter().all(|r| r.blocked));
    assert!(blocked.oldest.is_none(), "a short page is the last");

    let found = a
        .querylog(&QueryFilter {
            search: Some("HOST2".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let names: Vec<_> = found.rows.iter().map(|r| r.domain.as_str()).collect();
    assert_eq!(
        names,
        [
            "host2.example",
            "host20.example",
            "host21.example",
            "host22.example",
            "host23.example",
            "host24.example",
            "host25.example",
            "host26.example",
            "host27.example",
            "host28.example",
            "host29.example"
        ]
    );
    let err = a
        .querylog(&QueryFilter {
            search: Some("x".repeat(101)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, AdGuardError::BadInput(_)), "{err:?}");

    // The cap holds whatever the caller asks for.
    let all = a
        .querylog(&QueryFilter {
            limit: 5000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.rows.len(), 30);
}

#[tokio::test]
async fn blocklists_add_disable_refresh_remove() {
    let f = fake(seeded());
    let a = agh(&f, PASSWORD);
    let rules = std::sync::Arc::new(std::sync::Mutex::new(
        "||ads.example^\n||t.example^\n".to_string(),
    ));
    let url = list_server(rules.clone()).await;

    a.add_filter(&url, "Ads").await.unwrap();
    let lists = a.filters().await.unwrap().lists;
    assert_eq!(lists.len(), 1);
    assert_eq!(
        (
            lists[0].name.as_str(),
            lists[0].rules_count,
            lists[0].enabled
        ),
        ("Ads", 2, true)
    );
    let err = a.add_filter(&url, "Again").await.unwrap_err();
    assert!(matches!(err, AdGuardError::Refused { .. }), "{err:?}");

    a.set_filter_enabled(&url, false).await.unwrap();
    assert!(!a.filters().await.unwrap().lists[0].enabled);
    a.set_filter_enabled(&url, true).await.unwrap();

    assert_eq!(a.refresh_filters().await.unwrap(), 0);
    rules.lock().unwrap().push_str("||new.example^\n");
    assert_eq!(a.refresh_filters().await.unwrap(), 1);
    assert_eq!(a.filters().await.unwrap().lists[0].rules_count, 3);

    a.remove_filter(&url).await.unwrap();
    a.remove_filter(&url).await.unwrap();
    assert!(a.filters().await.unwrap().lists.is_empty());

    let err = a.add_filter("javascript:alert(1)", "x").await.unwrap_err();
    assert!(matches!(err, AdGuardError::BadInput(_)), "{err:?}");
}

#[tokio::test]
async fn first_run_setup_once() {
    let f = fake(serde_json::json!({"configured": false, "users": []}));
    let short = AdGuard::set_up_fresh(&f.url, "admin", Secret::from_string("short".into()))
        .await
        .unwrap_err();
    assert!(matches!(short, AdGuardError::BadInput(_)), "{short:?}");

    let a = AdGuard::set_up_fresh(&f.url, "admin", Secret::from_string(PASSWORD.into()))
        .await
        .unwrap();
    assert!(a.test().await.unwrap().running);

    let again = AdGuard::set_up_fresh(&f.url, "admin", Secret::from_string(PASSWORD.into()))
        .await
        .unwrap_err();
    assert!(
        matches!(again, AdGuardError::AlreadySetUp { .. }),
        "{again:?}"
    );
}

/// The DNS panel through the real server, against the fake.
#[tokio::test]
async fn the_dns_panel_connects_shows_and_changes_adguard_home() {
    let f = fake(seeded());
    let s = common::start("adguard-panel").await;
    let (session, _) = s.claim().await;
    let htmx = [("hx-request", "true")];

    let panel = s.get_text_with("/network/dns", &session, &htmx).await;
    assert!(panel.contains("Ad blocking and app names"), "{panel}");
    assert!(!panel.contains("✓ Connected"), "{panel}");
    let text = visible(&panel);
    for word in ["DNS", "API", "rewrite", "port", "token", "HTTP", "URL"] {
        assert!(!text.contains(word), "Basic panel says {word:?}: {text}");
    }

    // A wrong password: the plain error, and nothing saved.
    let res = s
        .post_htmx(
            "/network/dns/save",
            &session,
            &[
                ("url", &f.url),
                ("username", "admin"),
                ("password", "wrong"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(body.contains("refused the user name or password"), "{body}");
    assert!(!body.contains("✓ Connected"), "{body}");

    // "Test connection" does not save either.
    let body = s
        .post_htmx(
            "/network/dns/test",
            &session,
            &[
                ("url", &f.url),
                ("username", "admin"),
                ("password", PASSWORD),
            ],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("AdGuard Home answers. Save to use it."),
        "{body}"
    );
    assert!(!body.contains("✓ Connected"), "{body}");

    // The right one: saved, and the dashboard shows in plain words.
    let body = s
        .post_htmx(
            "/network/dns/save",
            &session,
            &[
                ("url", &f.url),
                ("username", "admin"),
                ("password", PASSWORD),
            ],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains("Connected and saved."), "{body}");
    assert!(body.contains("✓ Connected"), "{body}");
    assert!(
        body.contains("Blocking ads and trackers: <strong>on</strong>"),
        "{body}"
    );
    assert!(body.contains("1,204 lookups today, 12 % blocked"), "{body}");
    assert!(
        body.contains("nas.lan"),
        "the owner's own rewrite is listed"
    );
    // Basic mode shows no address with a port (the form's value is not shown text).
    assert!(!body.contains(&format!("<code>{}</code>", f.url)), "{body}");
    assert!(!body.contains(PASSWORD), "the password is never sent back");

    // Toggling protection shows the new state, and AdGuard Home has it.
    let body = s
        .post_htmx("/network/dns/protection", &session, &[("on", "false")])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("Blocking ads and trackers: <strong>off</strong>"),
        "{body}"
    );
    assert!(!agh(&f, PASSWORD).status().await.unwrap().protection_enabled);
    let body = s
        .post_htmx("/network/dns/protection", &session, &[("on", "true")])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("Blocking ads and trackers: <strong>on</strong>"),
        "{body}"
    );

    // The query log: blocked only, and a search.
    let log = s
        .get_text_with("/network/dns/querylog?blocked=1&search=", &session, &htmx)
        .await;
    assert_eq!(log.matches(">Blocked</span>").count(), 10, "{log}");
    assert!(!log.contains("Allowed"), "{log}");
    let log = s
        .get_text_with("/network/dns/querylog?search=host7.", &session, &htmx)
        .await;
    assert!(
        log.contains("host7.example") && !log.contains("host8.example"),
        "{log}"
    );

    // App names can now live in AdGuard Home; then the connection cannot be removed.
    let body = s
        .post_htmx(
            "/network/dns/provider",
            &session,
            &[("provider", "adguard")],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains(r#"value="adguard" checked"#), "{body}");
    let body = s
        .post_htmx("/network/dns/forget", &session, &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("choose another way to name them first"),
        "{body}"
    );
    assert!(body.contains("✓ Connected"), "{body}");
    // Basic words only in the panel's text (tags and attribute values left out).
    let text = visible(&body);
    for word in ["DNS", "API", "rewrite", "Rewrite", "port", "token", "HTTP"] {
        assert!(!text.contains(word), "Basic panel says {word:?}: {text}");
    }
    // Advanced mode: the technical detail, and the warning about plain http.
    let res = s
        .post_htmx("/settings/mode", &session, &[("mode", "advanced")])
        .await;
    assert!(res.status().is_success() || res.status().is_redirection());
    let body = s.get_text_with("/network/dns", &session, &htmx).await;
    assert!(body.contains("AdGuard Home v0.107.71"), "{body}");
    assert!(body.contains(&format!("<code>{}</code>", f.url)), "{body}");
    assert!(body.contains("crosses your network unencrypted"), "{body}");
    assert!(
        body.contains("FilteredBlackList"),
        "the reason, in Advanced: {body}"
    );
    // OPNsense is not connected: refused with where to do it.
    let body = s
        .post_htmx(
            "/network/dns/provider",
            &session,
            &[("provider", "opnsense")],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains("Router panel first"), "{body}");

    s.stop().await.unwrap();
}

#[tokio::test]
async fn the_dns_panel_refuses_injection_in_the_address_and_user_name() {
    let s = common::start("adguard-inject").await;
    let (session, _) = s.claim().await;
    let long = format!("http://h/{}", "a".repeat(10 * 1024));
    let huge_user = "a".repeat(10 * 1024);
    let cases: [(&str, &str, &str); 6] = [
        ("javascript:alert(1)", "admin", "write it like"),
        (
            "http://10.0.0.2:3000\r\nX-Evil: 1",
            "admin",
            "write it like",
        ),
        (&long, "admin", "write it like"),
        (
            "data:text/html,<script>alert(1)</script>",
            "admin",
            "write it like",
        ),
        ("http://10.0.0.2:3000", "ad\nmin", "no line breaks"),
        ("http://10.0.0.2:3000", &huge_user, "at most 255 characters"),
    ];
    for (url, user, says) in cases {
        let res = s
            .post_htmx(
                "/network/dns/save",
                &session,
                &[
                    ("url", url),
                    ("username", user),
                    ("password", "pw-for-test"),
                ],
            )
            .await;
        assert_eq!(res.status(), 200, "{url:.40}");
        let body = res.text().await.unwrap();
        assert!(
            body.contains("alert-error") && body.contains(says),
            "{url:.40}: {body:.2000}"
        );
        assert!(!body.contains("<script>alert"), "escaped: {body:.2000}");
        assert!(!body.contains("✓ Connected"));
    }
    s.stop().await.unwrap();
}

/// An AdGuard Home Homelab installed and nobody set up: "Set it up and use it".
#[tokio::test]
async fn the_dns_panel_sets_up_the_adguard_home_homelab_installed() {
    let f = fake(serde_json::json!({"configured": false, "users": []}));
    let s = common::start("adguard-set-up").await;
    let (session, _) = s.claim().await;
    let htmx = [("hx-request", "true")];

    // What a deploy leaves behind, written straight into the daemon's database (a second
    // connection; the lab is not needed for this part).
    let store = homelabd::store::Store::open(&s.data.join(homelabd::store::DB_FILE))
        .expect("the daemon's database");
    let device = store
        .add_device(
            homelabd::store::NewDevice {
                name: "dns-box".into(),
                host: "127.0.0.9".into(),
                port: 22,
                username: "homelab".into(),
                host_key: String::new(),
                docker_socket: "/var/run/docker.sock".into(),
                key_comment: String::new(),
            },
            |_| Vec::new(),
        )
        .await
        .unwrap();
    store
        .put_app(homelabd::store::AppRow {
            slug: "adguard-home".into(),
            name: "AdGuard Home".into(),
            device_id: device.id,
            version: "0.107.79".into(),
            state: homelabd::states::RunState::Running,
            message: String::new(),
            settings: "{}".into(),
            url: f.url.clone(),
            app_dir: "/opt/homelab/apps/adguard-home".into(),
            compose: String::new(),
            created_at: 0,
            updated_at: 0,
        })
        .await
        .unwrap();

    let panel = s.get_text_with("/network/dns", &session, &htmx).await;
    assert!(panel.contains("Set it up and use it"), "{panel}");

    let body = s
        .post_htmx("/network/dns/set-up", &session, &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains("AdGuard Home is set up, connected"), "{body}");
    assert!(body.contains("✓ Connected"), "{body}");
    assert!(body.contains(r#"value="adguard" checked"#), "{body}");
    assert!(
        body.contains("Blocking ads and trackers: <strong>on</strong>"),
        "{body}"
    );
    assert!(!body.contains("Set it up and use it"), "{body}");

    // The generated password is sealed in the vault, never in the settings.
    let sealed = store
        .secret("adguard".into(), "password")
        .await
        .unwrap()
        .expect("sealed password");
    assert!(!sealed.is_empty());
    assert_eq!(
        store.setting("adguard.username").await.unwrap().as_deref(),
        Some("homelab")
    );
    // AdGuard Home now wants a login: the wizard ran once.
    let err = agh(&f, "anything").test().await.unwrap_err();
    assert!(matches!(err, AdGuardError::WrongLogin { .. }), "{err:?}");

    s.stop().await.unwrap();
}
