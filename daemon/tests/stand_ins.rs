//! Every catalog recipe deployed through the real daemon onto lab devices, each app's web
//! service played by its stand-in (`homelab-lab/standin-<slug>:1`, lab/stand-ins/), which
//! answers as the upstream version does: redirects, trusted hosts, first admins from variables,
//! setup wizards that move ports, TLS. What the box shows the owner (the account it made, the
//! setup link) must then work against that behaviour. Other services (redis, the database of an
//! app that keeps its own) run on the plain app stand-in; apps that share the device's
//! database (Nextcloud's MariaDB, Paperless-ngx's PostgreSQL) use the real shared servers.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::time::{Duration, Instant};

use common::*;
use homelabd::catalog::{Catalog, Recipe};
use serde_json::{Value, json};

/// A deploy of a present image: files over SSH, `compose up`, one health answer; measured at
/// 3-8 s per app on 2 cores with all ten at once, 20 s under full CPU load. Generous, so load
/// never fails it, yet a stuck deploy ends the run within minutes.
const DEPLOY: Duration = Duration::from_secs(120);
/// A stand-in answers at once; AdGuard's moves its port right after answering the wizard.
const ANSWER: Duration = Duration::from_secs(20);

/// Where each app goes: ports decide (NPM takes 80/443/81, AdGuard 53 and 3000, Home
/// Assistant the device's own 8123), and Immich wants 4 GB free (nas-01 has 3).
fn device_for(slug: &str) -> &'static str {
    match slug {
        // NPM keeps ports 80/443 for itself, so it has a device without named apps.
        "nginx-proxy-manager" => "pi-4",
        "uptime-kuma" | "vaultwarden" | "jellyfin" => "server-01",
        "adguard-home" | "home-assistant" | "nextcloud" | "immich" => "server-02",
        _ => "nas-01",
    }
}

fn http() -> reqwest::Client {
    // Redirects are what is checked, so none is followed; Portainer's certificate is its own.
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// `scheme://host:port` of an address.
fn origin(url: &str) -> String {
    let after = url.find("://").unwrap() + 3;
    match url[after..].find('/') {
        Some(i) => url[..after + i].to_string(),
        None => url.to_string(),
    }
}

async fn status_of(req: reqwest::RequestBuilder) -> Result<(u16, String, String), String> {
    let res = req.send().await.map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    Ok((status, location, res.text().await.unwrap_or_default()))
}

struct Box<'a> {
    api: Api<'a>,
    s: &'a TestServer,
    session: &'a Session,
}

impl Box<'_> {
    /// Deploys `slug` onto device `id`, waits until it runs, and gives its address.
    async fn install(&self, slug: &str, id: i64) -> String {
        let (status, started) = self.api.deploy(slug, json!({"device_id": id})).await;
        assert_eq!(status, 202, "deploy {slug}: {started}");
        let dep = started["deployment_id"].as_i64().unwrap();
        let d = self
            .api
            .wait(dep, &["running", "rolled_back", "failed"], DEPLOY)
            .await;
        assert_eq!(d["state"], "running", "{slug}: {d}");
        let app = self.api.get(&format!("/api/v1/applications/{slug}")).await;
        assert_eq!(app["deployed"]["state"], "running", "{slug}: {app}");
        app["deployed"]["url"].as_str().unwrap().to_string()
    }

    /// The account the box made, as the owner sees it on the app page.
    async fn sign_in(&self, slug: &str) -> (String, String) {
        let html = self
            .s
            .post_htmx(&format!("/apps/{slug}/sign-in"), self.session, &[])
            .await
            .text()
            .await
            .unwrap();
        let password = extract_between(&html, "id=\"sign-in-password\">", "<")
            .unwrap_or_else(|| panic!("{slug}: no password shown: {html}"));
        remember_secret(&password);
        let user = extract_between(&html, "id=\"sign-in-user\">", "<").unwrap_or_default();
        (user, password)
    }

    /// The "Finish setting up" link on the app's page.
    async fn setup_link(&self, slug: &str) -> String {
        let page = self
            .s
            .get(&format!("/apps/{slug}"), self.session)
            .await
            .text()
            .await
            .unwrap();
        let tag = extract_between(&page, "id=\"finish-setup\"", ">")
            .unwrap_or_else(|| panic!("{slug}: no finish-setup link"));
        extract_between(&tag, "href=\"", "\"").unwrap()
    }
}

/// What each stand-in checks beyond "it runs": the box's account works, a wrong password
/// does not, the setup link leads where the app ends up.
async fn behaves(b: &Box<'_>, r: &Recipe, url: &str, device: &str) {
    let slug = r.manifest.slug.as_str();
    let c = http();
    let base = origin(url);
    // The health answer, as the daemon asked it.
    let (status, _, _) = status_of(c.get(format!("{base}{}", r.manifest.health.path)))
        .await
        .unwrap();
    assert!(
        r.manifest.health.status.contains(&status),
        "{slug}: health {status}"
    );
    match slug {
        "nextcloud" => {
            let (ok, _, body) = status_of(c.get(format!("{base}/status.php")))
                .await
                .unwrap();
            assert_eq!(ok, 200, "{slug}: the box's own address is trusted: {body}");
            assert!(body.contains("\"installed\":true"), "{body}");
            let (bad, _, _) = status_of(
                c.get(format!("{base}/status.php"))
                    .header("host", "untrusted.example"),
            )
            .await
            .unwrap();
            assert_eq!(bad, 400, "{slug}: another host is not trusted");
            let (user, pw) = b.sign_in(slug).await;
            let ocs = |p: &str| {
                c.get(format!("{base}/ocs/v2.php/cloud/user?format=json"))
                    .header("OCS-APIRequest", "true")
                    .basic_auth(&user, Some(p))
            };
            assert_eq!(status_of(ocs(&pw)).await.unwrap().0, 200, "{slug} sign-in");
            assert_eq!(status_of(ocs("wrong")).await.unwrap().0, 401);
        }
        "nginx-proxy-manager" => {
            let (user, pw) = b.sign_in(slug).await;
            let login = |p: &str| {
                c.post(format!("{base}/api/tokens"))
                    .json(&json!({"identity": user, "secret": p}))
            };
            let (ok, _, body) = status_of(login(&pw)).await.unwrap();
            assert_eq!(ok, 200, "{slug} sign-in: {body}");
            assert_eq!(status_of(login("changeme")).await.unwrap().0, 400);
            let (_, _, api) = status_of(c.get(format!("{base}/api/"))).await.unwrap();
            assert!(api.contains("\"setup\":true"), "{slug}: {api}");
        }
        "paperless-ngx" => {
            let (user, pw) = b.sign_in(slug).await;
            let login = |p: &str| {
                c.post(format!("{base}/api/token/"))
                    .form(&[("username", user.as_str()), ("password", p)])
            };
            assert_eq!(status_of(login(&pw)).await.unwrap().0, 200, "{slug}");
            assert_eq!(status_of(login("wrong")).await.unwrap().0, 400);
        }
        "vaultwarden" => {
            let (_, token) = b.sign_in(slug).await;
            let link = b.setup_link(slug).await;
            assert_eq!(link, format!("{base}/admin"));
            let login = |t: &str| c.post(&link).form(&[("token", t)]);
            let (ok, _, _) = status_of(login(&token)).await.unwrap();
            assert_eq!(ok, 200, "{slug}: the admin page takes the token shown");
            assert_eq!(status_of(login("wrong")).await.unwrap().0, 401);
        }
        "adguard-home" => {
            let link = b.setup_link(slug).await;
            let (s, _, _) = status_of(c.get(&link)).await.unwrap();
            assert_eq!(s, 200, "{slug}: {link}");
            let (_, loc, _) = status_of(c.get(format!("{base}/"))).await.unwrap();
            assert_eq!(loc, "/install.html");
            // The owner keeps the ports the wizard suggests.
            let (_, _, addrs) = status_of(c.get(format!("{base}/control/install/get_addresses")))
                .await
                .unwrap();
            let addrs: Value = serde_json::from_str(&addrs).unwrap();
            let pw = password("adguard");
            let (s, _, _) = status_of(c.post(format!("{base}/control/install/configure")).json(
                &json!({
                    "web": {"ip": "0.0.0.0", "port": addrs["web_port"]},
                    "dns": {"ip": "0.0.0.0", "port": addrs["dns_port"]},
                    "username": "owner", "password": pw,
                }),
            ))
            .await
            .unwrap();
            assert_eq!(s, 200);
            // Its page is then where the link pointed, signed out.
            let setup_origin = origin(&link);
            eventually("AdGuard Home's page after its setup", ANSWER, || async {
                match status_of(c.get(format!("{setup_origin}/"))).await {
                    Ok((302, loc, _)) if loc == "/login.html" => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            })
            .await;
            let login = |p: &str| {
                c.post(format!("{setup_origin}/control/login"))
                    .json(&json!({"name": "owner", "password": p}))
            };
            assert_eq!(status_of(login(&pw)).await.unwrap().0, 200);
            assert_eq!(status_of(login("wrong")).await.unwrap().0, 403);
        }
        "uptime-kuma" => {
            let (_, loc, _) = status_of(c.get(format!("{base}/"))).await.unwrap();
            assert_eq!(loc, "/dashboard", "{slug}: no database-choice page");
            let link = b.setup_link(slug).await;
            assert_eq!(link, format!("{base}/setup"));
            assert_eq!(status_of(c.get(&link)).await.unwrap().0, 200);
        }
        "portainer" => {
            assert!(base.starts_with("https://"), "{base}");
            assert_eq!(status_of(c.get(format!("{base}/"))).await.unwrap().0, 200);
            // The admin exists from the first start (no five-minute window for anyone else),
            // and it is the one the box shows: Portainer got only a bcrypt hash of it.
            let (s, _, _) = status_of(c.get(format!("{base}/api/users/admin/check")))
                .await
                .unwrap();
            assert_eq!(s, 204, "{slug}: an admin exists");
            let (user, pw) = b.sign_in(slug).await;
            assert_eq!(user, "admin");
            let login = |p: &str| {
                c.post(format!("{base}/api/auth"))
                    .json(&json!({"Username": user, "Password": p}))
            };
            let (ok, _, body) = status_of(login(&pw)).await.unwrap();
            assert_eq!(ok, 200, "{slug} sign-in: {body}");
            assert_eq!(status_of(login("wrong")).await.unwrap().0, 422);
        }
        "home-assistant" => {
            // The device's own network: its port is the device's.
            let ip = lab::ip(device);
            let (s, _, _) = status_of(c.get(format!("http://{ip}:8123/manifest.json")))
                .await
                .unwrap();
            assert_eq!(s, 200);
            // Until onboarding is done, visitors go there; the setup link goes straight there.
            let (_, loc, _) = status_of(c.get(format!("http://{ip}:8123/")))
                .await
                .unwrap();
            assert_eq!(loc, "/onboarding.html");
            let link = b.setup_link(slug).await;
            assert_eq!(link, format!("http://{ip}:8123/onboarding.html"));
            assert_eq!(status_of(c.get(&link)).await.unwrap().0, 200);
        }
        "immich" => {
            let (_, _, body) = status_of(c.get(format!("{base}/api/server/ping")))
                .await
                .unwrap();
            assert_eq!(body, r#"{"res":"pong"}"#);
            // The setup link leads to the app, whose first sign-up becomes the admin.
            let link = b.setup_link(slug).await;
            assert_eq!(link, format!("{base}/"));
            assert_eq!(status_of(c.get(&link)).await.unwrap().0, 200);
        }
        "jellyfin" => {
            // Installed means past its "Degraded" start: the check read the body.
            let (_, _, body) = status_of(c.get(format!("{base}/health"))).await.unwrap();
            assert_eq!(body, "Healthy");
            let link = b.setup_link(slug).await;
            assert_eq!(status_of(c.get(&link)).await.unwrap().0, 200, "{link}");
        }
        _ => {}
    }
    // Whatever the recipe promises, the page shows: its account or its setup link.
    if let Some(setup) = &r.manifest.setup {
        let link = b.setup_link(slug).await;
        assert!(link.ends_with(&setup.path), "{slug}: {link}");
    }
}

#[tokio::test]
async fn every_catalog_recipe_installs_and_behaves_on_its_stand_in() {
    let started = Instant::now();
    let catalog = Catalog::load(None);
    // The lab's engines cannot grant a privileged container its capabilities (no
    // CAP_SYS_ADMIN here), so Home Assistant runs from a copy of its recipe without
    // `privileged: true`, the only change: its network, port, health check and setup page are
    // the built-in recipe's.
    let data = data_dir("stand-ins");
    let ha = data.join("recipes/home-assistant");
    std::fs::create_dir_all(&ha).unwrap();
    let builtin = &catalog.recipes["home-assistant"];
    let compose = builtin.compose_text.replace("    privileged: true\n", "");
    assert_ne!(
        compose, builtin.compose_text,
        "the recipe asks for privileged mode"
    );
    std::fs::write(ha.join("compose.yaml"), compose).unwrap();
    std::fs::write(
        ha.join("manifest.yaml"),
        include_str!("../../recipes/home-assistant/manifest.yaml"),
    )
    .unwrap();
    let mut opts = Options::new("stand-ins");
    opts.data = Some(data);
    // No background poll: deploys re-check their device themselves.
    opts.poll_interval = Duration::from_secs(3600);
    let s = start_with(opts).await;
    let (session, _) = s.claim().await;
    let b = Box {
        api: Api {
            s: &s,
            token: s.api_token(&session, "stand-ins").await,
        },
        s: &s,
        session: &session,
    };
    let mut ids = std::collections::BTreeMap::new();
    for device in ["server-01", "server-02", "nas-01", "pi-4"] {
        for slug in catalog.recipes.keys() {
            lab::clean_app(device, slug);
        }
        ids.insert(device, add_lab_device(&s, &session, device, device).await);
    }
    for (slug, r) in &catalog.recipes {
        stand_in::tag_images(device_for(slug), r);
    }
    // A local resolver on AdGuard Home's device, as systemd-resolved holds 127.0.0.53:53 on
    // Debian and Ubuntu: AdGuard publishes DNS on the device's address, so it must not clash.
    // A fixed name: one left by an interrupted run goes first.
    let resolver = "stand-ins-resolver";
    let adguard_device = device_for("adguard-home");
    lab::exec(adguard_device, &["docker", "rm", "-f", resolver]);
    assert!(lab::exec_ok(
        adguard_device,
        &[
            "docker",
            "run",
            "-d",
            "--name",
            resolver,
            "--network",
            "host",
            "homelab-lab/http-stub:1",
            "/bin/busybox",
            "httpd",
            "-f",
            "-p",
            "127.0.0.53:53",
        ],
    ));
    // All at once, as an owner clicking through the catalog would; each waits for its own.
    let urls = futures_util::future::join_all(
        catalog
            .recipes
            .keys()
            .map(|slug| b.install(slug, ids[device_for(slug)])),
    )
    .await;
    eprintln!("stand-ins: all installed after {:?}", started.elapsed());
    for ((slug, r), url) in catalog.recipes.iter().zip(&urls) {
        behaves(&b, r, url, device_for(slug)).await;
    }
    for slug in catalog.recipes.keys() {
        let (status, body) = b
            .api
            .delete(&format!("/api/v1/applications/{slug}?delete_data=true"))
            .await;
        assert_eq!(status, 200, "remove {slug}: {body}");
    }
    // With their apps gone, the shared databases (Nextcloud's MariaDB, Paperless-ngx's
    // PostgreSQL) are offered for removal, and go when the owner says so.
    let mut removed = Vec::new();
    for id in ids.values() {
        let list = b
            .api
            .get(&format!("/api/v1/devices/{id}/shared-databases"))
            .await;
        for i in list["shared_databases"].as_array().unwrap() {
            assert_eq!(i["removable"], true, "no app uses it any more: {i}");
            let engine = i["engine"].as_str().unwrap();
            let (status, body) = b
                .api
                .delete(&format!("/api/v1/devices/{id}/shared-databases/{engine}"))
                .await;
            assert_eq!(status, 200, "{body}");
            removed.push(engine.to_string());
        }
    }
    removed.sort();
    assert_eq!(
        removed,
        ["mariadb", "postgres"],
        "Nextcloud and Paperless-ngx shared theirs"
    );
    lab::exec(adguard_device, &["docker", "rm", "-f", resolver]);
    eprintln!("stand-ins: done after {:?}", started.elapsed());
}
