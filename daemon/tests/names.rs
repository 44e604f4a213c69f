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
    for (device, slugs) in [
        ("server-01", &["lab-named", "lab-misrouted"][..]),
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
    let env = lab::exec(
        "server-01",
        &[
            "sh",
            "-c",
            "docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' \
             $(docker ps -q --filter label=com.docker.compose.project=homelab-lab-named)",
        ],
    );
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
