//! The deploy engine against real lab devices, real Docker engines and real Compose (Debian's
//! `docker-compose` v1 on the lab devices).
//!
//! No registry can be reached here, so the harness stands a local image in for each recipe's
//! image: it tags the lab's `homelab-lab/app-stub:1` (busybox serving the catalog's web ports
//! and health paths) under the recipe's image name inside the device's engine. Test recipes
//! live in the data directory's `recipes/` folder, as a user's own recipes would.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;

const STUB: &str = "homelab-lab/app-stub:1";
/// A device re-check after a change runs one poll, which gives up after 20 s (`POLL_TIMEOUT`),
/// then stores it; 10 s more for that and for reading the page.
const DEVICE_RECHECK: Duration = Duration::from_secs(30);

/// The row of a device page's container table that names `name`, if it is listed.
fn container_row<'a>(page: &'a str, name: &str) -> Option<&'a str> {
    page.split("<tr>")
        .find(|row| row.contains(name))
        .and_then(|row| row.split("</tr>").next())
}

/// Writes a user recipe into a data directory (before the daemon starts).
fn recipe(data: &Path, slug: &str, manifest_extra: &str, compose: &str) {
    let dir = data.join("recipes").join(slug);
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = format!(
        "name: {slug}\nslug: {slug}\nversion: \"1.0\"\ncategory: Test\n\
         description: A lab stand-in app.\nwebsite: https://example.org\n\
         requirements: {{ram_min_mb: 64, ram_recommended_mb: 128, storage_min_gb: 1, \
         storage_recommended_gb: 1, cpu_min_cores: 1, cpu_recommended_cores: 1}}\n\
         architectures: [amd64, arm64]\n{manifest_extra}"
    );
    std::fs::write(dir.join("manifest.yaml"), manifest).unwrap();
    std::fs::write(dir.join("compose.yaml"), compose).unwrap();
}

/// A web app on `port_default` with a text setting and a generated secret.
fn web_recipe(data: &Path, slug: &str, image: &str, port_default: u16, health: &str) {
    recipe(
        data,
        slug,
        &format!(
            "web: {{service: web, port: 8080, path: /}}\n\
             health: {{path: {health}, status: 200}}\n\
             data_volumes: [data]\n\
             secrets:\n  - {{name: TOKEN, length: 32}}\n  - {{name: ADMIN, length: 24, form: argon2}}\n\
             settings:\n  - {{name: HTTP_PORT, label: Which port to use, kind: port, default: \"{port_default}\"}}\n  \
             - {{name: GREETING, label: Greeting, kind: text, default: hello}}\n\
             sign_in: {{user: \"${{GREETING}}-admin\", password: ADMIN}}\n"
        ),
        &format!(
            "services:\n  web:\n    image: {image}\n    restart: unless-stopped\n    environment:\n      \
             GREETING: ${{GREETING}}\n      TOKEN: ${{TOKEN}}\n      ADMIN: ${{ADMIN}}\n      \
             WHERE: ${{HOMELAB_APP_URL}}\n      ZONE: ${{HOMELAB_TZ}}\n    ports:\n      - \"${{HTTP_PORT}}:8080\"\n    \
             volumes:\n      - data:/data\nvolumes:\n  data:\n"
        ),
    );
}

/// Tags the stand-in image under `image` on a device.
fn stand_in(device: &str, image: &str) {
    assert!(
        lab::exec_ok(device, &["docker", "tag", STUB, image]),
        "tag {image} on {device}"
    );
}

/// Removes whatever an earlier, interrupted run of a test left of an app on a device.
fn fresh(device: &str, slugs: &[&str]) {
    // A fixed script; the label and folder arrive as its arguments.
    const CLEAN: &str = "docker ps -aq --filter \"$1\" | xargs -r docker rm -f; \
        docker volume ls -q --filter \"$1\" | xargs -r docker volume rm; \
        docker network ls -q --filter \"$1\" | xargs -r docker network rm; \
        rm -rf -- \"$2\"";
    for slug in slugs {
        let label = format!("label=com.docker.compose.project=homelab-{slug}");
        let dir = format!("/opt/homelab/apps/{slug}");
        lab::exec(device, &["sh", "-c", CLEAN, "fresh", &label, &dir]);
    }
}

/// Asserts nothing of the app is left on the device: containers, networks, volumes, folder.
fn assert_nothing_left(device: &str, slug: &str) {
    let label = format!("label=com.docker.compose.project=homelab-{slug}");
    for what in [
        vec!["docker", "ps", "-aq", "--filter", &label],
        vec!["docker", "network", "ls", "-q", "--filter", &label],
        vec!["docker", "volume", "ls", "-q", "--filter", &label],
    ] {
        let out = lab::exec(device, &what);
        assert!(out.trim().is_empty(), "{what:?} on {device}: {out}");
    }
    let dir = format!("/opt/homelab/apps/{slug}");
    assert!(
        !lab::exec_ok(device, &["test", "-e", &dir]),
        "{dir} left on {device}"
    );
}

/// Vault entries of an app, counted in the database file.
fn app_secrets(data: &Path, slug: &str) -> i64 {
    let out = std::process::Command::new("sqlite3")
        .arg(data.join("homelab.db"))
        .arg(format!(
            "SELECT count(*) FROM secrets WHERE owner = 'app:{slug}';"
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// A container's environment exactly as its main process received it.
fn container_env(device: &str, slug: &str) -> Vec<(String, String)> {
    let id = lab::exec(
        device,
        &[
            "docker",
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project=homelab-{slug}"),
        ],
    );
    let id = id.trim();
    assert!(!id.is_empty(), "no running container for {slug}");
    let raw = std::process::Command::new(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../lab/lab"),
    )
    .args([
        "exec",
        device,
        "docker",
        "exec",
        id,
        "/bin/busybox",
        "cat",
        "/proc/1/environ",
    ])
    .output()
    .unwrap()
    .stdout;
    raw.split(|b| *b == 0)
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let kv = String::from_utf8(kv.to_vec()).unwrap();
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[tokio::test]
async fn deploys_end_to_end_exact_settings_idempotent_lifecycle_and_removal() {
    let data = data_dir("deploy-e2e");
    let slug = "lab-web";
    web_recipe(&data, slug, "example/lab-web:1.0", 18080, "/alive");
    let mut opts = Options::new("deploy-e2e");
    opts.data = Some(data.clone());
    // No background poll: what the device page shows after a change comes from the re-check
    // the change itself asks for.
    opts.poll_interval = Duration::from_secs(3600);
    let s = start_with(opts).await;
    let (session, _) = s.claim().await;
    let api = Api {
        token: s.api_token(&session, "deploy-test").await,
        s: &s,
    };
    fresh("nas-01", &[slug]);
    stand_in("nas-01", "example/lab-web:1.0");
    let nas = add_lab_device(&s, &session, "NAS", "nas-01").await;

    // Placement through the API: the only device, with its reason.
    let app = api.get(&format!("/api/v1/applications/{slug}")).await;
    assert_eq!(app["placement"][0]["device"], "NAS");
    assert_eq!(app["placement"][0]["eligible"], true, "{app}");

    // Shell and Compose metacharacters, quotes, a newline: all must arrive byte for byte.
    let canary = format!("/tmp/homelab-canary-{}", std::process::id());
    let greeting = format!(
        "it's \"quoted\" $HOME ${{TOKEN}} $$ `touch {canary}` $(touch {canary}) ; touch {canary} # not a comment\nline two\twith  spaces \\ end"
    );
    // Install pressed five times at once (a double click, two tabs, a script): one
    // deployment, and every request answers with it — never "busy".
    let body = serde_json::json!({"settings": {"GREETING": greeting, "HTTP_PORT": "18080"}});
    let answers =
        futures_util::future::join_all((0..5).map(|_| api.deploy(slug, body.clone()))).await;
    let ids: Vec<i64> = answers
        .iter()
        .map(|(status, a)| {
            assert!(
                *status == 202 || (*status == 200 && a["in_progress"] == true),
                "{status} {a}"
            );
            a["deployment_id"]
                .as_i64()
                .unwrap_or_else(|| panic!("{status} {a}"))
        })
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{answers:?}");
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 202).count(),
        1,
        "{answers:?}"
    );
    let d = api
        .wait(
            ids[0],
            &["running", "rolled_back"],
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(d["state"], "running", "{d}");
    assert_eq!(d["progress"], 100);
    assert_eq!(d["device"], "NAS");
    // The journal and "What I did": every remote step recorded, the env file never shown.
    let steps: Vec<&str> = d["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    // The name and HTTPS steps each journalled with their undo (mDNS is off in this test, so
    // the record is noted as not placed and the app keeps its address as its link).
    // ("proxy" only when this deploy started Homelab's proxy: another test on the device may
    // have started it first.)
    let steps: Vec<&str> = steps.into_iter().filter(|s| *s != "proxy").collect();
    assert_eq!(
        steps,
        ["secrets", "name", "files", "containers", "record", "route"]
    );
    let actions = d["actions"].to_string();
    assert!(
        actions.contains("Start the app") && actions.contains("Health check"),
        "{actions}"
    );
    assert!(
        actions.contains("not downloaded again"),
        "a present image is not pulled"
    );
    assert!(
        !actions.contains("line two"),
        "setting values never appear in the log"
    );
    assert_eq!(
        d["env_keys"],
        serde_json::json!([
            "ADMIN",
            "GREETING",
            "HOMELAB_APP_ADDRESS",
            "HOMELAB_APP_HOST",
            "HOMELAB_APP_PORT",
            "HOMELAB_APP_URL",
            "HOMELAB_DEVICE_IP",
            "HOMELAB_TZ",
            "HTTP_PORT",
            "TOKEN"
        ])
    );

    // On the device: running under our project, answering on the chosen port.
    let env = container_env("nas-01", slug);
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("GREETING").as_deref(), Some(greeting.as_str()));
    let token = get("TOKEN").unwrap();
    remember_secret(&token);
    assert_eq!(token.len(), 32);
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
    // The box told the app where it lives.
    let ip = lab::ip("nas-01");
    // The app is told its name (its address stays in HOMELAB_APP_ADDRESS).
    assert_eq!(get("WHERE"), Some("https://lab-web.local".to_string()));
    assert!(get("ZONE").is_some_and(|z| !z.is_empty() && !z.contains(' ')));
    assert!(!Path::new(&canary).exists(), "a setting was executed");
    assert!(!lab::exec_ok("nas-01", &["test", "-e", &canary]));
    let mode = lab::exec(
        "nas-01",
        &["stat", "-c", "%a", "/opt/homelab/apps/lab-web/app.env"],
    );
    assert_eq!(mode.trim(), "600");
    // The owner can read the generated secret on the app page (audited); nobody else.
    let shown = s
        .post_htmx(&format!("/apps/{slug}/secrets"), &session, &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(shown.contains(&token), "{shown}");
    // The app received only an Argon2id hash of its admin secret; the owner is shown the
    // secret itself, and it is the one the hash verifies.
    let hash = get("ADMIN").unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let admin = extract_between(&shown, "<dt>ADMIN</dt><dd><code>", "</code>")
        .unwrap_or_else(|| panic!("the admin secret on the page: {shown}"));
    remember_secret(&admin);
    assert!(!shown.contains(&hash));
    assert!(homelabd::auth::password::verify(
        &homelabd::secrets::Secret::from_string(admin.clone()),
        &hash
    ));
    // The account Homelab made, as the owner's "Show the password" reveals it: the user with
    // the chosen settings filled in, and the secret itself.
    let account = s
        .post_htmx(&format!("/apps/{slug}/sign-in"), &session, &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        account.contains(&format!("<code id=\"sign-in-password\">{admin}</code>")),
        "{account}"
    );
    assert!(
        account.contains("id=\"sign-in-user\">it&#39;s"),
        "{account}"
    );
    let anonymous = s
        .client
        .post(s.url(&format!("/apps/{slug}/secrets")))
        .headers(s.origin())
        .send()
        .await
        .unwrap();
    assert!(!anonymous.text().await.unwrap().contains(&token));
    assert_eq!(app_secrets(&data, slug), 2);
    let page = s
        .client
        .get(format!("http://{ip}:18080/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let listed = api.get("/api/v1/applications").await;
    let ours = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["slug"] == slug)
        .unwrap();
    assert_eq!(ours["deployed"]["state"], "running");
    assert_eq!(ours["deployed"]["url"], format!("http://{ip}:18080/"));
    assert_eq!(ours["deployed"]["device_id"], nas);
    let pool = s
        .get("/dashboard/pool", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(pool.contains("1 apps running"), "{pool}");
    // The device's page shows the app's container without anyone pressing "Check now": the
    // deploy re-checks the device (its page lists containers from the last check).
    let device_page = || async {
        s.get(&format!("/devices/{nas}"), &session)
            .await
            .text()
            .await
            .unwrap()
    };
    eventually(
        "the device page listing the app",
        DEVICE_RECHECK,
        || async {
            let page = device_page().await;
            // Compose v1 names it homelab-lab-web_web_1, v2 homelab-lab-web-web-1.
            if container_row(&page, "homelab-lab-web").is_some_and(|r| r.contains("badge-online")) {
                Ok(())
            } else {
                Err(page)
            }
        },
    )
    .await;

    // Deploying again returns what runs; nothing new starts.
    let (status, again) = api.deploy(slug, serde_json::json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(again["already_deployed"], true, "{again}");
    assert_eq!(
        api.get("/api/v1/deployments")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The device cannot be removed while it runs an app.
    let (status, body) = api.delete(&format!("/api/v1/devices/{nas}")).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("still runs lab-web"));

    // Lifecycle: stop, start, restart; logs.
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/applications/{slug}/stop"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let state = lab::exec(
        "nas-01",
        &[
            "docker",
            "ps",
            "-a",
            "--filter",
            "label=com.docker.compose.project=homelab-lab-web",
            "--format",
            "{{.State}}",
        ],
    );
    assert_eq!(state.trim(), "exited");
    let app = api.get(&format!("/api/v1/applications/{slug}")).await;
    assert_eq!(app["deployed"]["state"], "stopped");
    // The stop answered after re-reading the device: the page shown next has it stopped.
    let page = device_page().await;
    assert!(
        container_row(&page, "homelab-lab-web").is_some_and(|r| r.contains("Exited (")),
        "{page}"
    );
    for action in ["start", "restart"] {
        let (status, body) = api
            .send(
                reqwest::Method::POST,
                &format!("/api/v1/applications/{slug}/{action}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{action}: {body}");
    }
    let state = lab::exec(
        "nas-01",
        &[
            "docker",
            "ps",
            "--filter",
            "label=com.docker.compose.project=homelab-lab-web",
            "--format",
            "{{.State}}",
        ],
    );
    assert_eq!(state.trim(), "running");
    let logs = api
        .get(&format!("/api/v1/applications/{slug}/logs?lines=20"))
        .await;
    // Compose names the app's container in its log output.
    assert!(
        logs["logs"].as_str().unwrap().contains("homelab-lab-web"),
        "{logs}"
    );

    // Reconciliation notices a container removed behind our back.
    lab::exec(
        "nas-01",
        &[
            "sh",
            "-c",
            "docker ps -aq --filter label=com.docker.compose.project=homelab-lab-web | xargs -r docker rm -f",
        ],
    );
    eventually(
        "the app marked missing",
        Duration::from_secs(60),
        || async {
            let app = api.get(&format!("/api/v1/applications/{slug}")).await;
            if app["deployed"]["state"] == "missing" {
                Ok(())
            } else {
                Err(app["deployed"].to_string())
            }
        },
    )
    .await;

    // Remove keeping data: the volume and the secret stay; a new deploy reuses both.
    let (status, body) = api.delete(&format!("/api/v1/applications/{slug}")).await;
    assert_eq!(status, 200, "{body}");
    let vols = lab::exec(
        "nas-01",
        &[
            "docker",
            "volume",
            "ls",
            "-q",
            "--filter",
            "label=com.docker.compose.project=homelab-lab-web",
        ],
    );
    assert_eq!(vols.trim(), "homelab-lab-web_data");
    assert_eq!(app_secrets(&data, slug), 2);
    let d = api.deploy_to_end(slug, serde_json::json!({})).await;
    assert_eq!(d["state"], "running", "{d}");
    let env = container_env("nas-01", slug);
    assert!(
        env.contains(&("TOKEN".to_string(), token.clone())),
        "the kept secret is reused"
    );

    // Remove with its data: nothing left anywhere.
    let (status, body) = api
        .delete(&format!("/api/v1/applications/{slug}?delete_data=true"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_nothing_left("nas-01", slug);
    assert_eq!(app_secrets(&data, slug), 0);
    let (status, _) = api.delete(&format!("/api/v1/applications/{slug}")).await;
    assert_eq!(status, 404, "removing twice says it is not deployed");

    // A device that is gone: removing says so and how to proceed; forgetting works.
    let d = api.deploy_to_end(slug, serde_json::json!({})).await;
    assert_eq!(d["state"], "running", "{d}");
    let nas_cable = lab::unplug("nas-01");
    let (status, body) = api
        .delete(&format!("/api/v1/applications/{slug}?delete_data=true"))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.to_string().contains("Nothing was removed")
            && body.to_string().contains("Forget it here only"),
        "{body}"
    );
    let (status, body) = api
        .delete(&format!("/api/v1/applications/{slug}?forget=true"))
        .await;
    assert_eq!(status, 200, "{body}");
    let app = api.get(&format!("/api/v1/applications/{slug}")).await;
    assert!(app["deployed"].is_null(), "{app}");
    nas_cable.on();
    // Forgetting touched nothing on the device: its container is still there.
    let left = lab::exec(
        "nas-01",
        &[
            "docker",
            "ps",
            "-aq",
            "--filter",
            "label=com.docker.compose.project=homelab-lab-web",
        ],
    );
    assert!(
        !left.trim().is_empty(),
        "forgetting must not touch the device"
    );
    fresh("nas-01", &[slug]);
}

#[tokio::test]
async fn failures_roll_back_completely_and_port_conflicts_are_caught_first() {
    let data = data_dir("deploy-fail");
    web_recipe(
        &data,
        "lab-missing",
        "example/not-here:1.0",
        18101,
        "/alive",
    );
    web_recipe(
        &data,
        "lab-unhealthy",
        "example/lab-web:1.0",
        18102,
        "/no-such-page",
    );
    web_recipe(&data, "lab-ports", "example/lab-web:1.0", 18103, "/alive");
    recipe(
        &data,
        "lab-crash",
        "web: {service: web, port: 8080, path: /}\nhealth: {path: /alive, status: 200}\ndata_volumes: []\n",
        "services:\n  web:\n    image: example/lab-web:1.0\n    command: [\"/bin/sh\", \"-c\", \"echo starting; echo broken config >&2; exit 3\"]\n    ports:\n      - \"18104:8080\"\n",
    );
    recipe(
        &data,
        "lab-compose-error",
        "web: {service: web, port: 8080, path: /}\nhealth: {path: /alive, status: 200}\ndata_volumes: [data]\nsecrets:\n  - {name: TOKEN, length: 16}\n",
        "services:\n  web:\n    image: example/lab-web:1.0\n    environment:\n      TOKEN: ${TOKEN}\n    depends_on: [ghost]\n    ports:\n      - \"18105:8080\"\n    volumes:\n      - data:/data\nvolumes:\n  data:\n",
    );
    let mut opts = Options::new("deploy-fail");
    opts.data = Some(data.clone());
    opts.health_timeout = Duration::from_secs(8);
    // No background poll: the port takers below start after the last check, so only the
    // deploy's own pre-flight can see them.
    opts.poll_interval = Duration::from_secs(3600);
    let s = start_with(opts).await;
    let (session, _) = s.claim().await;
    let api = Api {
        token: s.api_token(&session, "deploy-fail").await,
        s: &s,
    };
    fresh(
        "server-02",
        &[
            "lab-missing",
            "lab-unhealthy",
            "lab-ports",
            "lab-crash",
            "lab-compose-error",
        ],
    );
    stand_in("server-02", "example/lab-web:1.0");
    add_lab_device(&s, &session, "Server 2", "server-02").await;

    for (slug, expect) in [
        ("lab-missing", "Server 2 could not download the app."),
        ("lab-unhealthy", "started but did not answer within 8 s."),
        ("lab-crash", "stopped right after starting."),
        (
            "lab-compose-error",
            "lab-compose-error did not start on Server 2.",
        ),
    ] {
        let d = api.deploy_to_end(slug, serde_json::json!({})).await;
        assert_eq!(d["state"], "rolled_back", "{slug}: {d}");
        let msg = d["message"].as_str().unwrap();
        assert!(msg.contains(expect), "{slug}: {msg}");
        assert!(
            msg.contains("Everything it changed on Server 2 was undone."),
            "{slug}: {msg}"
        );
        // One plain sentence for the owner; the app's and Compose's own words are kept for
        // "What I did" (Advanced mode), never lost.
        let why = d["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["what"] == "Why it stopped")
            .unwrap_or_else(|| panic!("{slug}: no “Why it stopped”: {d}"));
        assert!(!why["output"].as_str().unwrap().is_empty(), "{slug}: {why}");
        assert!(
            d["steps"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["status"] == "undone"),
            "{slug}: {d}"
        );
        assert_nothing_left("server-02", slug);
        assert_eq!(app_secrets(&data, slug), 0, "{slug}: vault entries left");
        let app = api.get(&format!("/api/v1/applications/{slug}")).await;
        assert!(app["deployed"].is_null(), "{slug}");
    }
    let crash = api.get("/api/v1/deployments").await;
    let crash_id = crash
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["slug"] == "lab-crash")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let crash = api.get(&format!("/api/v1/deployments/{crash_id}")).await;
    assert!(
        crash["actions"].to_string().contains("broken config"),
        "the crash's last words are kept: {crash}"
    );

    // Ports taken after the last poll: by a container, and by a plain program on the device.
    let taker = lab::take_port("server-02", 18110);
    assert!(lab::exec_ok(
        "server-02",
        &["busybox", "httpd", "-p", "18111", "-h", "/"]
    ));
    struct StopHttpd;
    impl Drop for StopHttpd {
        fn drop(&mut self) {
            lab::exec("server-02", &["pkill", "-f", "httpd -p 18111"]);
        }
    }
    let _httpd = StopHttpd;
    for (port, by) in [
        ("18110", format!("by {}", taker.name)),
        ("18111", "by another program".to_string()),
    ] {
        let d = api
            .deploy_to_end(
                "lab-ports",
                serde_json::json!({"settings": {"HTTP_PORT": port}}),
            )
            .await;
        let msg = d["message"].as_str().unwrap();
        // The suggestion skips every port in use, whoever holds it.
        let next = 18112;
        assert!(
            msg.contains(&format!(
                "Port {port} is used {by} on Server 2 — use {next}?"
            )) && msg.contains("Nothing was changed"),
            "{msg}"
        );
        assert!(
            d["steps"].as_array().unwrap().is_empty(),
            "nothing journalled: {d}"
        );
        assert_nothing_left("server-02", "lab-ports");
    }

    // A port the owner left to Homelab (Basic mode's install form has no port field) moves
    // out of the way by itself: the recipe's default 18103 is taken, the app gets the next
    // port that is free (18104), and "What I did" says so.
    let _default_taker = lab::take_port("server-02", 18103);
    let d = api.deploy_to_end("lab-ports", serde_json::json!({})).await;
    assert_eq!(d["state"], "running", "{d}");
    assert!(
        d["actions"]
            .to_string()
            .contains("Port 18103 is in use on Server 2; “Which port to use” set to 18104"),
        "{d}"
    );
    let app = api.get("/api/v1/applications/lab-ports").await;
    assert!(
        app["deployed"]["url"]
            .as_str()
            .unwrap()
            .ends_with(":18104/"),
        "{app}"
    );
    let (status, body) = api
        .delete("/api/v1/applications/lab-ports?delete_data=true")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_nothing_left("server-02", "lab-ports");
}

#[tokio::test]
async fn a_device_powered_off_mid_deploy_fails_clearly_and_is_cleaned_once_back() {
    let data = data_dir("deploy-power");
    // Never healthy, so the deploy is still waiting when the device goes away.
    web_recipe(&data, "lab-power", "example/lab-web:1.0", 18120, "/never");
    let mut opts = Options::new("deploy-power");
    opts.data = Some(data.clone());
    opts.health_timeout = Duration::from_secs(300);
    let s = start_with(opts).await;
    let (session, _) = s.claim().await;
    let api = Api {
        token: s.api_token(&session, "deploy-power").await,
        s: &s,
    };
    fresh("pi-4", &["lab-power"]);
    stand_in("pi-4", "example/lab-web:1.0");
    add_lab_device(&s, &session, "Pi", "pi-4").await;
    let (_, started) = api.deploy("lab-power", serde_json::json!({})).await;
    let id = started["deployment_id"].as_i64().unwrap();
    api.wait(id, &["health_check"], Duration::from_secs(120))
        .await;
    let pi_ip = lab::ip("pi-4");
    let pi_cable = lab::unplug("pi-4");
    let d = api
        .wait_for(
            id,
            "cleanup waiting for the device",
            Duration::from_secs(90),
            |d| {
                d["state"] == "rolling_back"
                    && d["message"]
                        .as_str()
                        .unwrap_or("")
                        .contains("as soon as the device answers again")
            },
        )
        .await;
    let msg = d["message"].as_str().unwrap();
    // One reason, in the owner's words, and sentences that do not run together.
    assert!(
        msg.starts_with("Pi stopped answering: it may be off, unplugged or restarting."),
        "{msg}"
    );
    assert!(
        msg.contains(
            "then try again. Homelab could not finish cleaning up on Pi; it will \
                      finish by itself as soon as the device answers again."
        ),
        "{msg}"
    );
    for leak in ["os error", ":22", "SSH", "Docker", pi_ip.as_str()] {
        assert!(!msg.contains(leak), "“{leak}” in {msg}");
    }
    // Trying again first finishes the earlier attempt's cleanup, which cannot happen yet.
    let (status, again) = api.deploy("lab-power", serde_json::json!({})).await;
    assert_eq!(status, 422, "{again}");
    assert!(
        again.to_string().contains("still being undone on Pi"),
        "{again}"
    );
    pi_cable.on();
    let d = api
        .wait(id, &["rolled_back"], Duration::from_secs(120))
        .await;
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("Everything it changed on Pi was undone."),
        "{d}"
    );
    assert_nothing_left("pi-4", "lab-power");
    assert_eq!(app_secrets(&data, "lab-power"), 0);
}

#[tokio::test]
async fn a_daemon_killed_mid_deploy_rolls_back_when_it_starts_again() {
    let data = data_dir("deploy-kill");
    web_recipe(&data, "lab-kill", "example/lab-web:1.0", 18130, "/never");
    let env = [("HOMELAB_HEALTH_TIMEOUT", "300")];
    let d = spawn_daemon("deploy-kill", &data, &env);
    let s = TestServer::attach(&d, data.clone());
    let (session, _) = s.claim().await;
    let token = s.api_token(&session, "deploy-kill").await;
    fresh("server-01", &["lab-kill"]);
    stand_in("server-01", "example/lab-web:1.0");
    add_lab_device(&s, &session, "Server 1", "server-01").await;
    let api = Api {
        s: &s,
        token: token.clone(),
    };
    let (_, started) = api.deploy("lab-kill", serde_json::json!({})).await;
    let id = started["deployment_id"].as_i64().unwrap();
    api.wait(id, &["health_check"], Duration::from_secs(120))
        .await;
    // Running on the device, half-way: now the daemon dies without any chance to clean up.
    let running = lab::exec(
        "server-01",
        &[
            "docker",
            "ps",
            "-q",
            "--filter",
            "label=com.docker.compose.project=homelab-lab-kill",
        ],
    );
    assert!(!running.trim().is_empty());
    let mut d = d;
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    drop(d);

    let d2 = spawn_daemon("deploy-kill-2", &data, &env);
    let s2 = TestServer::attach(&d2, data.clone());
    let api = Api { s: &s2, token };
    let dep = api
        .wait(id, &["rolled_back"], Duration::from_secs(90))
        .await;
    let msg = dep["message"].as_str().unwrap();
    assert!(
        msg.contains("Homelab restarted while this deploy was under way"),
        "{msg}"
    );
    assert_nothing_left("server-01", "lab-kill");
    assert_eq!(app_secrets(&data, "lab-kill"), 0);
}

#[tokio::test]
async fn pulls_from_a_registry_updates_and_rolls_a_failed_update_back() {
    let data = data_dir("deploy-update");
    let registry = lab::registry();
    let pulled = format!("{registry}/lab/app:1");
    web_recipe(&data, "lab-upd", &pulled, 18140, "/alive");
    fresh("server-01", &["lab-upd"]);
    // Not on the device yet: the deploy must pull it from the lab registry.
    lab::exec("server-01", &["docker", "rmi", &pulled]);
    stand_in("server-01", "example/lab-upd:2.0");
    // The same data directory each time the daemon starts (a new recipe needs a restart).
    let options = || {
        let mut opts = Options::new("deploy-update");
        opts.data = Some(data.clone());
        opts.health_timeout = Duration::from_secs(20);
        opts
    };
    let s = start_with(options()).await;
    let (session, password) = s.claim().await;
    let token = s.api_token(&session, "deploy-update").await;
    add_lab_device(&s, &session, "Server 1", "server-01").await;
    let api = Api {
        s: &s,
        token: token.clone(),
    };
    let d = api.deploy_to_end("lab-upd", serde_json::json!({})).await;
    assert_eq!(d["state"], "running", "{d}");
    let pull = d["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| {
            a["what"]
                .as_str()
                .unwrap()
                .contains(&format!("pull image {pulled}"))
        })
        .unwrap_or_else(|| panic!("no pull in {d}"))
        .clone();
    assert_eq!(pull["outcome"], "ok");
    assert!(
        pull["output"]
            .as_str()
            .unwrap()
            .contains("1 layer(s) downloaded (1.9 MB)"),
        "{pull}"
    );
    assert!(lab::exec_ok(
        "server-01",
        &["docker", "image", "inspect", &pulled]
    ));
    s.stop().await.unwrap();

    // A new version of the recipe: the app page offers the update, which recreates it.
    let image_of = || {
        lab::exec(
            "server-01",
            &[
                "docker",
                "ps",
                "--filter",
                "label=com.docker.compose.project=homelab-lab-upd",
                "--format",
                "{{.Image}}",
            ],
        )
        .trim()
        .to_string()
    };
    let restart = |version: &str, compose_extra: &str| {
        web_recipe(&data, "lab-upd", "example/lab-upd:2.0", 18140, "/alive");
        let m = data.join("recipes/lab-upd/manifest.yaml");
        let text = std::fs::read_to_string(&m)
            .unwrap()
            .replace("version: \"1.0\"", &format!("version: \"{version}\""));
        std::fs::write(&m, text).unwrap();
        let c = data.join("recipes/lab-upd/compose.yaml");
        let text = std::fs::read_to_string(&c)
            .unwrap()
            .replace("    restart: unless-stopped\n", compose_extra);
        std::fs::write(&c, text).unwrap();
    };
    restart("2.0", "    restart: unless-stopped\n");
    // Version 2.0 makes its account from a new secret: the installed app made its account
    // with 1.0's, so after the update the page must not offer the new one.
    let m = data.join("recipes/lab-upd/manifest.yaml");
    let text = std::fs::read_to_string(&m)
        .unwrap()
        .replace("password: ADMIN}", "password: FRESH}")
        .replace("secrets:\n", "secrets:\n  - {name: FRESH, length: 20}\n");
    std::fs::write(&m, text).unwrap();
    let s = start_with(options()).await;
    let session = s.login(ADMIN, &password).await;
    let page = s.get("/apps/lab-upd", &session).await.text().await.unwrap();
    assert!(page.contains("Update to version 2.0"), "{page}");
    let api = Api {
        s: &s,
        token: token.clone(),
    };
    let d = api
        .run_to_end("/api/v1/applications/lab-upd/update", Value::Null)
        .await;
    assert_eq!(d["state"], "running", "{d}");
    assert_eq!(image_of(), "example/lab-upd:2.0");
    let app = api.get("/api/v1/applications/lab-upd").await;
    assert_eq!(app["deployed"]["version"], "2.0");
    let page = s.get("/apps/lab-upd", &session).await.text().await.unwrap();
    assert!(!page.contains("id=\"show-sign-in\""), "{page}");
    let reveal = s.post_htmx("/apps/lab-upd/sign-in", &session, &[]).await;
    assert_eq!(
        reveal.status(),
        404,
        "no account to reveal after the update"
    );
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/v1/applications/lab-upd/update",
            None,
        )
        .await;
    assert_eq!(status, 422, "already up to date: {body}");
    s.stop().await.unwrap();

    // A broken new version: the update fails its check and the working version comes back.
    restart(
        "3.0",
        "    command: [\"/bin/sh\", \"-c\", \"echo bad release >&2; exit 4\"]\n",
    );
    let s = start_with(options()).await;
    let api = Api {
        s: &s,
        token: token.clone(),
    };
    let d = api
        .run_to_end("/api/v1/applications/lab-upd/update", Value::Null)
        .await;
    assert_eq!(d["state"], "rolled_back", "{d}");
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("stopped right after starting"),
        "{d}"
    );
    let app = api.get("/api/v1/applications/lab-upd").await;
    assert_eq!(app["deployed"]["version"], "2.0");
    assert_eq!(app["deployed"]["state"], "running");
    let ip = lab::ip("server-01");
    eventually(
        "the previous version answering again",
        Duration::from_secs(30),
        || async {
            match s
                .client
                .get(format!("http://{ip}:18140/alive"))
                .send()
                .await
            {
                Ok(r) if r.status() == 200 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let state = lab::exec(
        "server-01",
        &[
            "docker",
            "ps",
            "-a",
            "--filter",
            "label=com.docker.compose.project=homelab-lab-upd",
            "--format",
            "{{.State}}",
        ],
    );
    assert_eq!(
        state.trim(),
        "running",
        "only the previous version's container, running"
    );
    s.stop().await.unwrap();

    // A version upstream cannot reach from 2.0 directly: Update is refused with the reason and
    // what to do, nothing starts, and the app page says so instead of offering the button.
    restart("5.0", "    restart: unless-stopped\n");
    let m = data.join("recipes/lab-upd/manifest.yaml");
    let mut text = std::fs::read_to_string(&m).unwrap();
    text.push_str(
        "update_from: {min: \"4.0\", reason: Lab Web updates through 4 first., \
         otherwise: Keep the version you have.}\n",
    );
    std::fs::write(&m, text).unwrap();
    let s = start_with(options()).await;
    let session = s.login(ADMIN, &password).await;
    let api = Api { s: &s, token };
    let before = api.get("/api/v1/deployments").await;
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/v1/applications/lab-upd/update",
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.to_string().contains(
            "lab-upd 2.0 cannot update straight to 5.0. Lab Web updates through 4 first. Keep the version you have."
        ),
        "{body}"
    );
    assert_eq!(
        api.get("/api/v1/deployments").await,
        before,
        "no deployment started"
    );
    let page = s.get("/apps/lab-upd", &session).await.text().await.unwrap();
    assert!(
        page.contains("id=\"update-refused\"") && !page.contains("id=\"app-update\""),
        "{page}"
    );
    assert_eq!(image_of(), "example/lab-upd:2.0");
    let (status, _) = api
        .delete("/api/v1/applications/lab-upd?delete_data=true")
        .await;
    assert_eq!(status, 200);
    assert_nothing_left("server-01", "lab-upd");
}
