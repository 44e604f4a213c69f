//! Every app gets a name and trusted HTTPS, on the real lab: the daemon starts Homelab's proxy
//! (real Caddy) on a device, announces `<slug>.local` over mDNS on the lab's network, issues a
//! certificate from the homelab's own CA, and routes the name to the app. Checked from outside
//! with `curl --resolve … --cacert <our root>` (never `-k`): the app answers over HTTPS, plain
//! HTTP redirects, a failed deploy leaves no route, certificate or record, a device whose port
//! 443 is someone else's is caught before anything changes (and the app can still be installed
//! by address), renewal with the clock moved forward serves a new certificate, and removal
//! takes the name away (and the proxy with the last one).

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::json;

/// The lab's stand-in app (busybox serving a page on 8080).
const STUB: &str = "homelab-lab/app-stub:1";

fn recipe(data: &Path, slug: &str, web_port: u16, host_port: u16) {
    // An app whose web port is not published cannot be told its address (the catalog refuses).
    let environment = if web_port == 8080 {
        "    environment:\n      WHERE: ${HOMELAB_APP_URL}\n"
    } else {
        ""
    };
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
             web: {{service: web, port: {web_port}, path: /}}\n\
             health: {{path: /alive, status: 200}}\n\
             data_volumes: [data]\n\
             settings:\n  - {{name: HTTP_PORT, label: Which port to use, kind: port, default: \"{host_port}\"}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            "services:\n  web:\n    image: example/{slug}:1\n    restart: unless-stopped\n\
             {environment}    ports:\n      \
             - \"${{HTTP_PORT}}:8080\"\n    volumes:\n      - data:/data\nvolumes:\n  data:\n"
        ),
    )
    .unwrap();
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl is installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// GET https://NAME/PATH at the device, trusting only our root.
fn https_get(name: &str, ip: &str, root: &Path, path: &str) -> (bool, String) {
    curl(&[
        "--resolve",
        &format!("{name}:443:{ip}"),
        "--cacert",
        root.to_str().unwrap(),
        &format!("https://{name}{path}"),
    ])
}

/// The certificate the device serves for NAME: SHA-256 fingerprint and start date (openssl).
fn served_certificate(name: &str, ip: &str) -> String {
    let script = "openssl s_client -connect \"$1:443\" -servername \"$2\" </dev/null 2>/dev/null \
                  | openssl x509 -noout -fingerprint -sha256 -startdate";
    let out = Command::new("sh")
        .args(["-c", script, "cert", ip, name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The environment of an app's running containers on a device, a variable a line.
fn app_env(device: &str, slug: &str) -> String {
    // A fixed script; the project's label arrives as its argument.
    const ENV: &str = "docker ps -q --filter \"$1\" \
        | xargs -r docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}'";
    let label = format!("label=com.docker.compose.project=homelab-{slug}");
    lab::exec(device, &["sh", "-c", ENV, "env", &label])
}

fn proxy_containers(device: &str) -> String {
    lab::exec(
        device,
        &[
            "docker",
            "ps",
            "-q",
            "--filter",
            "label=com.docker.compose.project=homelab-proxy",
        ],
    )
}

fn clean(device: &str, slugs: &[&str]) {
    for slug in slugs {
        lab::clean_app(device, slug);
    }
    // A proxy an interrupted earlier run left behind (with its routes) goes too.
    const CLEAN: &str = "docker ps -aq --filter label=com.docker.compose.project=homelab-proxy \
        | xargs -r docker rm -f; docker rm -f someone-elses-proxy >/dev/null 2>&1; \
        rm -rf /opt/homelab/proxy; true";
    lab::exec(device, &["sh", "-c", CLEAN]);
}

#[tokio::test]
async fn apps_get_names_and_trusted_https_through_the_proxy() {
    let data = data_dir("names");
    recipe(&data, "lab-named", 8080, 18090);
    // The proxy is sent to a container port nothing listens on: the app answers by address,
    // but not through the proxy, so the deploy fails after its route and certificate exist.
    recipe(&data, "lab-misrouted", 9999, 18091);
    recipe(&data, "lab-crowded", 8080, 18092);
    recipe(&data, "lab-taken", 8080, 18096);
    for (device, slugs) in [
        (
            "server-01",
            &["lab-named", "lab-misrouted", "lab-taken"][..],
        ),
        ("pi-4", &["lab-crowded"][..]),
    ] {
        clean(device, slugs);
        for slug in slugs {
            assert!(lab::exec_ok(
                device,
                &["docker", "tag", STUB, &format!("example/{slug}:1")]
            ));
        }
    }
    let mut opts = Options::new("names");
    opts.data = Some(data.clone());
    opts.poll_interval = Duration::from_secs(3600);
    // The box announces names on the lab's network, as it would on a home LAN.
    opts.mdns_interfaces = Some(vec!["hlab0".into()]);
    let s = start_with(opts).await;
    let (session, owner_pw) = s.claim().await;
    let api = Api {
        token: s.api_token(&session, "names-test").await,
        s: &s,
    };
    let server = add_lab_device(&s, &session, "Server 1", "server-01").await;
    let pi = add_lab_device(&s, &session, "Pi", "pi-4").await;
    let ip1 = lab::ip("server-01");

    // The homelab's root, as the Trust page hands it out (a session is needed).
    let root_pem = s
        .get("/settings/trust/homelab-root.pem", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        root_pem.starts_with("-----BEGIN CERTIFICATE-----"),
        "{root_pem}"
    );
    let root = data.join("homelab-root.pem");
    std::fs::write(&root, &root_pem).unwrap();

    // 1. Installed: named, secured, routed.
    let d = api
        .deploy_to_end(
            "lab-named",
            json!({"device_id": server, "settings": {"HTTP_PORT": "18090"}}),
        )
        .await;
    assert_eq!(d["state"], "running", "{d}");
    let steps: Vec<&str> = d["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "secrets",
            "proxy",
            "name",
            "files",
            "containers",
            "record",
            "route"
        ],
        "{d}"
    );
    let app = api.get("/api/v1/applications/lab-named").await;
    assert_eq!(
        app["deployed"]["url"], "https://lab-named.local/",
        "the success link is the name: {app}"
    );
    let (ok, body) = https_get("lab-named.local", &ip1, &root, "/");
    assert!(ok, "trusted HTTPS through the proxy: {body}");
    assert!(body.contains("homelab lab app"), "{body}");
    // Plain HTTP goes to HTTPS.
    let (_, redirect) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        "--resolve",
        &format!("lab-named.local:80:{ip1}"),
        "http://lab-named.local/some/page?x=1",
    ]);
    assert_eq!(redirect, "308 https://lab-named.local/some/page?x=1");
    // The app was told its address.
    let env = app_env("server-01", "lab-named");
    assert!(env.contains("WHERE=https://lab-named.local"), "{env}");
    // A name the proxy does not serve gets no certificate from it.
    let (ok, _) = https_get("other.local", &ip1, &root, "/");
    assert!(!ok, "an unknown name must not be served");
    // The Network page lists it, ready.
    let panel = s.get_text_with("/network/names", &session, &[]).await;
    assert!(
        panel.contains("lab-named.local") && panel.contains("Ready"),
        "{panel}"
    );
    // Deploying again is safe: the same deployment answer, no second route.
    let (status, again) = api.deploy("lab-named", json!({"device_id": server})).await;
    assert_eq!(status, 200, "{again}");

    // 1b. A name someone else on the network already answers (Avahi on the Pi): the app was
    //     started with the name it asked for while the network was asked, then gets
    //     `lab-taken-2.local` and is told that address.
    let pi_ip = lab::ip("pi-4");
    // Avahi runs in both devices (this test must not rely on another having started it).
    lab::run(&["mdns", "server-01"]);
    lab::run(&["mdns", "pi-4"]);
    let _theirs = common::avahi::publish("pi-4", "lab-taken.local", &pi_ip);
    eventually(
        "Avahi on the Pi answering lab-taken.local",
        Duration::from_secs(30),
        || async {
            let out = common::avahi::avahi("server-01", "lab-taken.local");
            if out.contains(&pi_ip) {
                Ok(())
            } else {
                Err(out)
            }
        },
    )
    .await;
    let d = api
        .deploy_to_end(
            "lab-taken",
            json!({"device_id": server, "settings": {"HTTP_PORT": "18096"}}),
        )
        .await;
    assert_eq!(d["state"], "running", "{d}");
    let app = api.get("/api/v1/applications/lab-taken").await;
    assert_eq!(
        app["deployed"]["url"], "https://lab-taken-2.local/",
        "{app}"
    );
    let (ok, body) = https_get("lab-taken-2.local", &ip1, &root, "/");
    assert!(ok && body.contains("homelab lab app"), "{body}");
    let env = app_env("server-01", "lab-taken");
    assert!(env.contains("WHERE=https://lab-taken-2.local"), "{env}");
    let (status, removed) = api
        .delete("/api/v1/applications/lab-taken?delete_data=true")
        .await;
    assert!(status == 200 || status == 202, "{status} {removed}");

    // 2. A deploy that fails after its route and certificate were made leaves neither, and
    //    no record; the proxy stays for the app that still uses it.
    let d = api
        .deploy_to_end(
            "lab-misrouted",
            json!({"device_id": server, "settings": {"HTTP_PORT": "18091"}}),
        )
        .await;
    assert_eq!(d["state"], "rolled_back", "{d}");
    assert!(
        d["error"]
            .as_str()
            .unwrap_or("")
            .contains("https://lab-misrouted.local"),
        "{d}"
    );
    let (ok, err) = https_get("lab-misrouted.local", &ip1, &root, "/");
    assert!(!ok, "no certificate is left for a failed deploy: {err}");
    let names = s.get_text_with("/network/names", &session, &[]).await;
    assert!(!names.contains("lab-misrouted"), "{names}");
    assert!(!proxy_containers("server-01").trim().is_empty());
    let (ok, _) = https_get("lab-named.local", &ip1, &root, "/");
    assert!(ok, "the other app is untouched");

    // 3. Someone else's proxy on the Pi's port 443: caught in the pre-flight, nothing changed,
    //    and "by address only" is the way out.
    assert!(lab::exec_ok(
        "pi-4",
        &[
            "docker",
            "run",
            "-d",
            "--name",
            "someone-elses-proxy",
            "-p",
            "443:8080",
            STUB
        ]
    ));
    let d = api
        .deploy_to_end(
            "lab-crowded",
            json!({"device_id": pi, "settings": {"HTTP_PORT": "18092"}}),
        )
        .await;
    assert_eq!(d["state"], "rolled_back", "{d}");
    let why = d["error"].as_str().unwrap_or("");
    assert!(
        why.contains("someone-elses-proxy already uses port 443") && why.contains("address only"),
        "{why}"
    );
    assert!(
        d["steps"].as_array().unwrap().is_empty(),
        "nothing changed: {d}"
    );
    assert!(proxy_containers("pi-4").trim().is_empty());
    let d = api
        .deploy_to_end(
            "lab-crowded",
            json!({"device_id": pi, "by_address": true, "settings": {"HTTP_PORT": "18092"}}),
        )
        .await;
    assert_eq!(d["state"], "running", "{d}");
    let app = api.get("/api/v1/applications/lab-crowded").await;
    assert_eq!(
        app["deployed"]["url"],
        format!("http://{}:18092/", lab::ip("pi-4")),
        "{app}"
    );
    assert!(proxy_containers("pi-4").trim().is_empty());

    // 4. Renewal, with the clock moved forward past two thirds of the certificate's life: the
    //    proxy serves a new certificate (the daemon stopped; its runtime opened on its data).
    let before = served_certificate("lab-named.local", &ip1);
    assert!(before.contains("Fingerprint"), "{before}");
    let data_dir = s.data.clone();
    s.stop().await.unwrap();
    let mut config = homelabd::config::Config::new(&data_dir);
    config.mdns = false;
    let rt = homelabd::open_runtime(config).await.unwrap();
    let later = homelabd::store::now_unix() + 61 * 86_400;
    assert_eq!(rt.deployer.renew_certificates(later).await, 1);
    assert_eq!(
        rt.deployer.renew_certificates(later).await,
        0,
        "a renewed certificate is not due again"
    );
    let after = served_certificate("lab-named.local", &ip1);
    assert!(
        after.contains("Fingerprint") && after != before,
        "{before} → {after}"
    );
    drop(rt);

    // 5. Removal takes the name away, and the proxy with the last name on the device.
    let mut opts = Options::new("names");
    opts.data = Some(data_dir.clone());
    opts.poll_interval = Duration::from_secs(3600);
    opts.mdns_interfaces = Some(vec!["hlab0".into()]);
    let s = start_with(opts).await;
    let session = s.login(ADMIN, &owner_pw).await;
    let api = Api {
        token: s.api_token(&session, "names-test-2").await,
        s: &s,
    };
    let (status, removed) = api
        .delete("/api/v1/applications/lab-named?delete_data=true")
        .await;
    assert!(status == 200 || status == 202, "{status} {removed}");
    eventually(
        "the proxy leaves server-01",
        Duration::from_secs(30),
        || async {
            let left = proxy_containers("server-01");
            if left.trim().is_empty() {
                Ok(())
            } else {
                Err(left)
            }
        },
    )
    .await;
    let (ok, _) = https_get("lab-named.local", &ip1, &root, "/");
    assert!(!ok, "a removed app's name is no longer served");
    let (status, removed) = api
        .delete("/api/v1/applications/lab-crowded?delete_data=true")
        .await;
    assert!(status == 200 || status == 202, "{status} {removed}");
    assert!(lab::exec_ok(
        "pi-4",
        &["docker", "rm", "-f", "someone-elses-proxy"]
    ));
    s.stop().await.unwrap();
}

/// What the device's proxy holds for public certificates: its ACME policies' ids and the names
/// it manages (read over its admin socket, on the device).
fn acme_state(device: &str) -> (Vec<String>, Vec<String>) {
    let get = |path: &str| {
        let out = lab::exec(
            device,
            &[
                "curl",
                "-sS",
                "--unix-socket",
                "/opt/homelab/proxy/admin/caddy.sock",
                &format!("http://caddy{path}"),
            ],
        );
        serde_json::from_str::<serde_json::Value>(&out).unwrap_or(serde_json::Value::Null)
    };
    let policies = get("/config/apps/tls/automation/policies");
    let ids = policies
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["@id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let managed = get("/config/apps/tls/certificates/automate");
    let names = managed
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    (ids, names)
}

/// The owner's own domain: apps named under it get their certificates from a public authority
/// over ACME (Pebble, Let's Encrypt's test server, really validating the device's proxy over
/// HTTP-01), checked from outside against the authority's root only; a deploy whose
/// certificate cannot come yet still installs the app and says what to do on the router, and
/// the page follows once it comes; a failed deploy and a removal leave no policy behind.
#[tokio::test]
async fn names_under_the_owners_domain_get_certificates_from_a_public_authority() {
    const DEVICE: &str = "nas-01";
    const DOMAIN: &str = "homelab.example.com";
    let data = data_dir("names-public");
    recipe(&data, "lab-public", 8080, 18093);
    recipe(&data, "lab-pubwait", 8080, 18094);
    // Its route leads to a port nothing listens on: the certificate comes, the app's answer
    // through the proxy does not.
    recipe(&data, "lab-pubmis", 9999, 18095);
    let slugs = ["lab-public", "lab-pubwait", "lab-pubmis"];
    clean(DEVICE, &slugs);
    for slug in slugs {
        assert!(lab::exec_ok(
            DEVICE,
            &["docker", "tag", STUB, &format!("example/{slug}:1")]
        ));
    }
    let ip = lab::ip(DEVICE);
    // The authority on the lab's host (the device's proxy reaches it there); every name it
    // looks up resolves to the device, as the owner's public DNS and router would make it.
    let host = "10.88.0.1";
    let pebble = common::pebble::Pebble::start(host, &ip, 80, 443);
    let roots = |p: &common::pebble::Pebble| {
        format!(
            "{}{}",
            std::fs::read_to_string(p.dir_ca_pem()).unwrap(),
            p.issuing_root_pem()
        )
    };
    let agh = common::adguard_fake::fake(json!({
        "users": [{"name": "admin", "password": "fake-admin-password"}]
    }));

    let mut opts = Options::new("names-public");
    opts.data = Some(data.clone());
    opts.poll_interval = Duration::from_secs(3600);
    // Measured: Pebble issues within ~1.5 s of the proxy asking (4 runs); a certificate that
    // cannot come is waited for this long before the deploy goes on without it (steps 2 and 3
    // need theirs within it, so it leaves a loaded machine ten times the room).
    opts.certificate_wait = Duration::from_secs(15);
    let s = start_with(opts).await;
    let (session, _) = s.claim().await;
    let api = Api {
        token: s.api_token(&session, "names-public-test").await,
        s: &s,
    };
    let nas = add_lab_device(&s, &session, "NAS", DEVICE).await;
    let res = s
        .post_htmx("/settings/mode", &session, &[("mode", "advanced")])
        .await;
    assert!(res.status().is_success() || res.status().is_redirection());
    let public = |domain: &str, email: &str, directory: &str, roots: &str| {
        [
            ("domain", domain.to_string()),
            ("email", email.to_string()),
            ("directory", directory.to_string()),
            ("roots", roots.to_string()),
        ]
    };
    let post_public = |form: [(&'static str, String); 4]| {
        let s = &s;
        let session = &session;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let res = s.post_htmx("/network/names/public", session, &form).await;
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };

    // 1. Names announced over mDNS cannot be under a public domain: refused with the way out.
    let (status, body) = post_public(public(DOMAIN, "me@example.com", &pebble.directory, "")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Choose AdGuard Home"), "{body}");
    for (path, form) in [
        (
            "/network/dns/save",
            vec![
                ("url", agh.url.as_str()),
                ("username", "admin"),
                ("password", "fake-admin-password"),
            ],
        ),
        ("/network/dns/provider", vec![("provider", "adguard")]),
    ] {
        let res = s.post_htmx(path, &session, &form).await;
        assert_eq!(res.status(), 200, "{path}");
    }
    // A home name and a malformed email are refused, saying what to do.
    let (status, body) = post_public(public("lab.home.arpa", "me@example.com", "", "")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Use a domain you own"), "{body}");
    let (status, body) = post_public(public(DOMAIN, "me@example.com\nBcc: x", "", "")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("is not an email address"), "{body}");
    let (status, body) = post_public(public(
        DOMAIN,
        "me@example.com",
        &pebble.directory,
        &roots(&pebble),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!(
            "names now end in .{DOMAIN}, with certificates from {host}"
        )),
        "{body}"
    );

    // 2. Installed: the proxy obtains the name's certificate from the authority; from outside
    //    it is trusted with the authority's root alone, and the app answers.
    let d = api
        .deploy_to_end(
            "lab-public",
            json!({"device_id": nas, "settings": {"HTTP_PORT": "18093"}}),
        )
        .await;
    assert_eq!(d["state"], "running", "{d}\n{}", pebble.log());
    let name = format!("lab-public.{DOMAIN}");
    let app = api.get("/api/v1/applications/lab-public").await;
    assert_eq!(app["deployed"]["url"], format!("https://{name}/"), "{app}");
    let root = data.join("pebble-root.pem");
    std::fs::write(&root, pebble.issuing_root_pem()).unwrap();
    let (ok, body) = https_get(&name, &ip, &root, "/");
    assert!(ok, "the authority's certificate, trusted: {body}");
    assert!(body.contains("homelab lab app"), "{body}");
    let (ids, managed) = acme_state(DEVICE);
    assert_eq!(ids, ["acme-lab-public"], "{managed:?}");
    assert_eq!(managed, [name.as_str()]);
    let panel = s.get_text_with("/network/names", &session, &[]).await;
    assert!(
        panel.contains(&name) && panel.contains("certificate kept up to date by 10.88.0.1"),
        "{panel}"
    );
    // Another domain, or none, while an app is named under this one: refused.
    let (status, body) = post_public(public("other.example.com", "me@example.com", "", "")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains(&format!("{name} still have names under {DOMAIN}")),
        "{body}"
    );
    let res = s
        .post_htmx("/network/names/public/clear", &session, &[])
        .await;
    assert_eq!(res.status(), 400);

    // 3. A deploy whose route leads nowhere fails once the certificate is there, and leaves
    //    no policy and no managed name behind.
    let d = api
        .deploy_to_end(
            "lab-pubmis",
            json!({"device_id": nas, "settings": {"HTTP_PORT": "18095"}}),
        )
        .await;
    assert_eq!(d["state"], "rolled_back", "{d}");
    assert_eq!(
        acme_state(DEVICE),
        (vec!["acme-lab-public".to_string()], vec![name.clone()])
    );

    // 4. The authority cannot be reached: the app is still installed, and says what to do.
    drop(pebble);
    let d = api
        .deploy_to_end(
            "lab-pubwait",
            json!({"device_id": nas, "settings": {"HTTP_PORT": "18094"}}),
        )
        .await;
    assert_eq!(d["state"], "running", "{d}");
    let waiting = format!("lab-pubwait.{DOMAIN}");
    let page = s.get_text_with("/apps/lab-pubwait", &session, &[]).await;
    assert!(
        page.contains(&format!("has not issued the certificate for {waiting} yet"))
            && page.contains(&format!("it must reach NAS ({ip}) on port 80 or 443")),
        "{page}"
    );
    // Until then its link is its address, not a name without a certificate.
    let app = api.get("/api/v1/applications/lab-pubwait").await;
    assert_eq!(
        app["deployed"]["url"],
        format!("http://{ip}:18094/"),
        "{app}"
    );
    let panel = s.get_text_with("/network/names", &session, &[]).await;
    assert!(panel.contains("Waiting for its certificate"), "{panel}");
    // The owner's authority is back (at a new address, with new roots): saving it tells every
    // proxy, the certificate comes, and the page follows without anyone asking.
    let pebble = common::pebble::Pebble::start(host, &ip, 80, 443);
    let (status, body) = post_public(public(
        DOMAIN,
        "me@example.com",
        &pebble.directory,
        &roots(&pebble),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    std::fs::write(&root, pebble.issuing_root_pem()).unwrap();
    eventually(
        "the waiting app's certificate comes and its page says so",
        Duration::from_secs(60),
        || async {
            let page = s.get_text_with("/apps/lab-pubwait", &session, &[]).await;
            let (ok, body) = https_get(&waiting, &ip, &root, "/");
            let app = api.get("/api/v1/applications/lab-pubwait").await;
            let linked = app["deployed"]["url"] == format!("https://{waiting}/");
            if ok && linked && !page.contains("has not issued") {
                Ok(())
            } else {
                Err(format!("{body}\n{}", pebble.log()))
            }
        },
    )
    .await;

    // 5. Removal takes each policy and name off the proxy, and the proxy with the last one.
    let (status, removed) = api
        .delete("/api/v1/applications/lab-pubwait?delete_data=true")
        .await;
    assert!(status == 200 || status == 202, "{status} {removed}");
    eventually("lab-pubwait is gone", Duration::from_secs(30), || async {
        match acme_state(DEVICE) {
            (ids, names) if ids == ["acme-lab-public"] && names == [name.clone()] => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let (status, removed) = api
        .delete("/api/v1/applications/lab-public?delete_data=true")
        .await;
    assert!(status == 200 || status == 202, "{status} {removed}");
    eventually(
        "the proxy leaves the NAS",
        Duration::from_secs(30),
        || async {
            let left = proxy_containers(DEVICE);
            if left.trim().is_empty() {
                Ok(())
            } else {
                Err(left)
            }
        },
    )
    .await;
    // Nothing is named under the domain now: the owner can stop using it.
    let res = s
        .post_htmx("/network/names/public/clear", &session, &[])
        .await;
    assert_eq!(res.status(), 200);
    s.stop().await.unwrap();
}
