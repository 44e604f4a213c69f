//! Shared databases on the real lab, with real PostgreSQL 15 and MariaDB 10.11 (lab images
//! built from Debian's packages under the official images' names): apps on one device share
//! one instance, each with its own database and login that reaches nothing else (checked with
//! the real clients from a container on the instance's network); the password never shows in
//! any process's arguments on the device or in `docker inspect`; a failed deploy drops exactly
//! what it made; removal keeps or drops the database; a stopped instance shows its apps
//! degraded until "Restart"; the instance goes only when asked. An app whose needs the pool
//! cannot meet keeps its own database container.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const STUB: &str = "homelab-lab/app-stub:1";
const PG_IMAGE: &str = "postgres:15-bookworm";
const MARIA_IMAGE: &str = "mariadb:10.11";

/// A web app (the lab's stub) with a database of `engine` it may share. `extensions` makes
/// one the pool cannot serve; `health` lets a deploy fail after its database was made.
fn recipe(data: &Path, slug: &str, engine: &str, port: u16, extensions: &str, health: &str) {
    let (host_var, default_port) = match engine {
        "postgres" => ("DB_HOST", 5432),
        _ => ("DB_HOST", 3306),
    };
    let dir = data.join("recipes").join(slug);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("manifest.yaml"),
        format!(
            "name: {slug}\nslug: {slug}\nversion: \"1.0\"\ncategory: Test\n\
             description: A lab app with a database.\nwebsite: https://example.org\n\
             requirements: {{ram_min_mb: 64, ram_recommended_mb: 128, storage_min_gb: 1, \
             storage_recommended_gb: 1, cpu_min_cores: 1, cpu_recommended_cores: 1}}\n\
             architectures: [amd64, arm64]\n\
             web: {{service: web, port: 8080, path: /}}\n\
             health: {{path: {health}, status: 200, timeout: 20}}\n\
             data_volumes: [data]\n\
             database:\n  engine: {engine}\n  service: db\n  extensions: [{extensions}]\n  \
             env: {{host: {host_var}, port: DB_PORT, name: DB_NAME, user: DB_USER, password: DB_PASSWORD}}\n\
             secrets:\n  - {{name: DB_PASSWORD, length: 32}}\n\
             settings:\n  - {{name: HTTP_PORT, label: Which port to use, kind: port, default: \"{port}\"}}\n  \
             - {{name: GREETING, label: A greeting, kind: text, default: hello}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            "services:\n  web:\n    image: example/{slug}:1\n    restart: unless-stopped\n    \
             environment:\n      DB_HOST: ${{DB_HOST:-db}}\n      DB_PORT: ${{DB_PORT:-{default_port}}}\n      \
             DB_NAME: ${{DB_NAME:-app}}\n      DB_USER: ${{DB_USER:-app}}\n      \
             DB_PASSWORD: ${{DB_PASSWORD}}\n      GREETING: ${{GREETING}}\n    \
             ports:\n      - \"${{HTTP_PORT}}:8080\"\n    volumes:\n      - data:/data\n  \
             db:\n    image: example/{slug}-db:1\n    profiles: [own-database]\n    \
             restart: unless-stopped\n    volumes:\n      - dbdata:/var/lib/db\n\
             volumes:\n  data:\n  dbdata:\n"
        ),
    )
    .unwrap();
}

/// The environment an app's container for `service` runs with.
fn service_env(
    device: &str,
    slug: &str,
    service: &str,
) -> std::collections::BTreeMap<String, String> {
    let name = lab::exec(
        device,
        &[
            "docker",
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project=homelab-{slug}"),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
        ],
    );
    assert!(!name.trim().is_empty(), "{slug}'s {service} runs");
    let raw = lab::exec(
        device,
        &[
            "docker",
            "inspect",
            "-f",
            "{{range .Config.Env}}{{println .}}{{end}}",
            name.trim(),
        ],
    );
    raw.lines()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The environment of a test recipe's web container.
fn app_env(device: &str, slug: &str) -> std::collections::BTreeMap<String, String> {
    service_env(device, slug, "web")
}

/// Runs the real client in a throwaway container on the instance's network, as `login`
/// with `password`, against `database`; the password reaches it through the environment of
/// this test's own `docker run` (a lab-side process, not the product).
fn connect(
    device: &str,
    engine: &str,
    login: &str,
    password: &str,
    database: &str,
    sql: &str,
) -> (bool, String) {
    let (image, network, env, cmd): (&str, &str, String, Vec<String>) = match engine {
        "postgres" => (
            PG_IMAGE,
            "homelab-db-postgres",
            format!("PGPASSWORD={password}"),
            [
                "psql",
                "-X",
                "-At",
                "-h",
                "homelab-postgres",
                "-U",
                login,
                "-d",
                database,
                "-c",
                sql,
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ),
        _ => (
            MARIA_IMAGE,
            "homelab-db-mariadb",
            format!("MYSQL_PWD={password}"),
            [
                "mariadb",
                "-h",
                "homelab-mariadb",
                "-u",
                login,
                "-N",
                "-B",
                database,
                "-e",
                sql,
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ),
    };
    let mut args: Vec<String> = [
        "docker",
        "run",
        "--rm",
        "--network",
        network,
        "--entrypoint",
        "",
        "-e",
        &env,
        image,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(cmd);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = std::process::Command::new(env!("CARGO_MANIFEST_DIR").to_string() + "/../lab/lab")
        .arg("exec")
        .arg(device)
        .args(&args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// As the instance's superuser, inside it (the trusted local socket).
fn superuser(device: &str, engine: &str, sql: &str) -> String {
    match engine {
        "postgres" => lab::exec(
            device,
            &[
                "docker",
                "exec",
                "-u",
                "postgres",
                "homelab-postgres",
                "psql",
                "-X",
                "-At",
                "-c",
                sql,
            ],
        ),
        _ => lab::exec(
            device,
            &[
                "docker",
                "exec",
                "homelab-mariadb",
                "mariadb",
                "--defaults-extra-file=/run/homelab/client.cnf",
                "-N",
                "-B",
                "-e",
                sql,
            ],
        ),
    }
}

fn instance_containers(device: &str, engine: &str) -> Vec<String> {
    lab::exec(
        device,
        &[
            "docker",
            "ps",
            "-a",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project=homelab-{engine}"),
        ],
    )
    .lines()
    .map(str::to_string)
    .collect()
}

fn clean(device: &str, slugs: &[&str]) {
    for slug in slugs {
        lab::clean_app(device, slug);
    }
    const CLEAN: &str = "for e in postgres mariadb; do \
        docker ps -aq --filter label=com.docker.compose.project=homelab-$e | xargs -r docker rm -f; \
        docker volume rm -f homelab-$e-data >/dev/null 2>&1; \
        docker network rm homelab-db-$e >/dev/null 2>&1; \
        rm -rf /opt/homelab/shared-$e; done; true";
    lab::exec(device, &["sh", "-c", CLEAN]);
}

/// Every command line on this machine (the lab's devices are namespaces of it), sampled
/// until stopped: the password must never be among them.
struct ArgvSampler {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<BTreeSet<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ArgvSampler {
    fn start() -> ArgvSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let (s, v) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                    if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
                        let line = String::from_utf8_lossy(&cmd).replace('\0', " ");
                        let mut set = v.lock().unwrap();
                        if set.len() < 200_000 {
                            set.insert(line);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        });
        ArgvSampler {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> BTreeSet<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// An app's database password, as its container got it (remembered for the leak scan).
fn password_of(device: &str, slug: &str) -> String {
    password_in(device, slug, "web", "DB_PASSWORD")
}

/// A catalog app's database password, from its `service`'s variable `var`.
fn password_in(device: &str, slug: &str, service: &str, var: &str) -> String {
    let pw = service_env(device, slug, service)[var].clone();
    assert_eq!(pw.len(), 32, "{slug} got its generated password");
    remember_secret(&pw);
    pw
}

/// Every app's login reaches its own database and none of the others' (`logins`: database
/// and login name, password).
fn only_their_own(device: &str, engine: &str, logins: &[(&str, &str)]) {
    let denied = match engine {
        "postgres" => "permission denied",
        _ => "Access denied",
    };
    for (login, pw) in logins {
        let (ok, out) = connect(device, engine, login, pw, login, "SELECT 1");
        assert!(ok && out.trim() == "1", "{login} reaches its own: {out}");
        for (other, _) in logins.iter().filter(|(o, _)| o != login) {
            let (ok, out) = connect(device, engine, login, pw, other, "SELECT 1");
            assert!(
                !ok && out.contains(denied),
                "{login} cannot reach {other}: {out}"
            );
        }
    }
}

/// The shared instance's own log, kept for the leak scan (which reads every test log), after
/// checking here that no password is in it.
fn keep_instance_log(device: &str, engine: &str, passwords: &[&str]) {
    let out = std::process::Command::new(env!("CARGO_MANIFEST_DIR").to_string() + "/../lab/lab")
        .args([
            "exec",
            device,
            "docker",
            "logs",
            &format!("homelab-{engine}"),
        ])
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && !log.is_empty(), "{log}");
    for pw in passwords {
        assert!(!log.contains(pw), "a password in the {engine} log");
    }
    let dir = artifacts().join("logs");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("pool-{device}-{engine}.log")), log).unwrap();
}

/// A rendered page's text, signed in.
async fn html_of(s: &TestServer, session: &Session, path: &str) -> String {
    let res = s.get(path, session).await;
    assert_eq!(res.status(), 200, "{path}");
    res.text().await.unwrap()
}

/// The device page's shared-databases card, as the browser gets it: the page loads it into
/// its slot as soon as it shows.
async fn shared_card(s: &TestServer, session: &Session, device: i64) -> String {
    let device_page = html_of(s, session, &format!("/devices/{device}")).await;
    let fetch = format!("hx-get=\"/devices/{device}/shared\" hx-trigger=\"load\"");
    assert!(device_page.contains(&fetch), "{device_page}");
    let part = html_of(s, session, &format!("/devices/{device}/shared")).await;
    card(&part, "shared-databases").to_string()
}

/// The part of `html` from the element with `id` to its card's end (the next card).
fn card<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let rest = &html[start..];
    let end = rest[1..].find("class=\"card").map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

/// Cuts the power of the device and boots it: the instance (and the apps) come back by
/// their restart policies, with their data.
async fn reboot_and_wait(device: &'static str, engine: &'static str) {
    lab::run(&["reboot", device]);
    eventually(
        "the shared instance runs again after the boot",
        Duration::from_secs(60),
        || async {
            let running = lab::exec(
                device,
                &[
                    "docker",
                    "inspect",
                    "-f",
                    "{{.State.Running}}",
                    &format!("homelab-{engine}"),
                ],
            );
            if running.trim() == "true" {
                Ok(())
            } else {
                Err(running)
            }
        },
    )
    .await;
}

/// Deploys `slug`, whose health check never answers: it is rolled back after its database
/// step, and `left` (as the superuser; counts of its database and its login) finds nothing.
async fn failed_deploy_leaves_nothing(
    api: &Api<'_>,
    server: i64,
    device: &str,
    engine: &str,
    slug: &str,
    left: &str,
) {
    let f = api
        .deploy_to_end(slug, json!({"device_id": server, "by_address": true}))
        .await;
    assert_eq!(f["state"], "rolled_back", "{f}");
    assert!(steps(&f).contains(&"database".to_string()), "{f}");
    let counts = superuser(device, engine, left);
    assert_eq!(
        counts.trim(),
        "0\n0",
        "the failed app's database and login were dropped"
    );
    assert_eq!(instance_containers(device, engine).len(), 1);
}

/// Deploys and waits, noting how long it took as the client saw it (to the 200 ms its
/// polling adds at most) as `client_ms`, for `report`.
async fn timed_deploy(api: &Api<'_>, slug: &str, body: Value) -> Value {
    let t = std::time::Instant::now();
    let mut d = api.deploy_to_end(slug, body).await;
    d["client_ms"] = json!(t.elapsed().as_millis() as u64);
    d
}

/// The figures a deployment's "What I did" records, for the benchmark report (printed; the
/// goals are checked by reading them, not by this test).
fn report(label: &str, d: &Value) {
    let millis = |part: &str| -> i64 {
        d["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["what"].as_str().unwrap_or("").contains(part))
            .map(|a| a["millis"].as_i64().unwrap_or(0))
            .sum()
    };
    eprintln!(
        "pool figures: {label}: provisioning {} ms (check {} ms), instance start {} ms, compose up {} ms, whole deploy {} ms",
        millis("Make the app's database"),
        millis("Is the app's database there"),
        millis("Start the shared"),
        millis("Start the app"),
        d["client_ms"].as_u64().unwrap_or(0),
    );
}

/// The real daemon on its own data folder (recipes in it), claimed, with an API token.
async fn daemon(name: &'static str, data: &Path) -> (TestServer, Session, String) {
    let mut opts = Options::new(name);
    opts.data = Some(data.to_path_buf());
    opts.poll_interval = Duration::from_secs(3600);
    let s = start_with(opts).await;
    let (session, _) = s.claim().await;
    let token = s.api_token(&session, "pool-test").await;
    (s, session, token)
}

/// The lab loaded the real database server image into the device.
fn assert_image(device: &str, image: &str) {
    assert!(
        !lab::exec(
            device,
            &["docker", "image", "inspect", "-f", "{{.Id}}", image]
        )
        .trim()
        .is_empty(),
        "the lab's {image} image is missing on {device}: run lab/lab up"
    );
}

fn steps(d: &Value) -> Vec<String> {
    d["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn apps_share_one_postgres_each_with_a_database_only_it_can_reach() {
    const DEVICE: &str = "server-01";
    let data = data_dir("pool-pg");
    // Two test recipes and the catalog's Paperless-ngx (on its stand-in, lab/stand-ins/)
    // share the device's PostgreSQL.
    let slugs = [
        "lab-pg-a",
        "lab-pg-b",
        "lab-pg-fail",
        "lab-pg-vector",
        "paperless-ngx",
    ];
    recipe(&data, "lab-pg-a", "postgres", 18201, "", "/alive");
    recipe(&data, "lab-pg-b", "postgres", 18202, "pg_trgm", "/alive");
    // Its health path never answers: the deploy fails after its database was made.
    recipe(&data, "lab-pg-fail", "postgres", 18203, "", "/never-there");
    // Needs what the shared PostgreSQL does not have: it keeps its own database container.
    recipe(
        &data,
        "lab-pg-vector",
        "postgres",
        18204,
        "vchord",
        "/alive",
    );
    clean(DEVICE, &slugs);
    for slug in &slugs[..4] {
        assert!(lab::exec_ok(
            DEVICE,
            &["docker", "tag", STUB, &format!("example/{slug}:1")]
        ));
        assert!(lab::exec_ok(
            DEVICE,
            &["docker", "tag", STUB, &format!("example/{slug}-db:1")]
        ));
    }
    let catalog = homelabd::catalog::Catalog::load(None);
    stand_in::tag_images(DEVICE, &catalog.recipes["paperless-ngx"]);
    assert_image(DEVICE, PG_IMAGE);
    let (s, session, token) = daemon("pool-pg", &data).await;
    let api = Api { token, s: &s };
    let server = add_lab_device(&s, &session, "Server 1", "server-01").await;

    // 1. Two apps share one instance; the second reuses it.
    let sampler = ArgvSampler::start();
    let a = timed_deploy(
        &api,
        "lab-pg-a",
        json!({"device_id": server, "by_address": true}),
    )
    .await;
    assert_eq!(a["state"], "running", "{a}");
    assert_eq!(
        steps(&a),
        [
            "secrets",
            "shared-database",
            "database",
            "files",
            "containers",
            "record"
        ],
        "{a}"
    );
    let b = timed_deploy(
        &api,
        "lab-pg-b",
        json!({"device_id": server, "by_address": true,
                   "settings": {"GREETING": "x'; DROP DATABASE hl_lab_pg_a; --"}}),
    )
    .await;
    assert_eq!(b["state"], "running", "{b}");
    assert_eq!(
        steps(&b),
        ["secrets", "database", "files", "containers", "record"],
        "{b}"
    );
    let p = timed_deploy(
        &api,
        "paperless-ngx",
        json!({"device_id": server, "by_address": true,
                   "settings": {"HTTP_PORT": "18205"}}),
    )
    .await;
    assert_eq!(p["state"], "running", "{p}");
    assert!(steps(&p).contains(&"database".to_string()), "{p}");
    report("first pooled app (starts the instance)", &a);
    report("second pooled app", &b);
    report("third pooled app (Paperless-ngx)", &p);
    let argv = sampler.finish();
    assert_eq!(
        instance_containers(DEVICE, "postgres").len(),
        1,
        "one shared PostgreSQL for the three"
    );
    let pw_a = password_of(DEVICE, "lab-pg-a");
    let pw_b = password_of(DEVICE, "lab-pg-b");
    let pw_p = password_in(DEVICE, "paperless-ngx", "webserver", "PAPERLESS_DBPASS");
    let env_p = service_env(DEVICE, "paperless-ngx", "webserver");
    assert_eq!(
        (
            env_p["PAPERLESS_DBHOST"].as_str(),
            env_p["PAPERLESS_DBNAME"].as_str()
        ),
        ("homelab-postgres", "hl_paperless_ngx"),
        "Paperless-ngx is told its database in the shared one"
    );
    let own_db_of_paperless = lab::exec(
        DEVICE,
        &[
            "docker",
            "ps",
            "-aq",
            "--filter",
            "label=com.docker.compose.project=homelab-paperless-ngx",
            "--filter",
            "label=com.docker.compose.service=db",
        ],
    );
    assert!(
        own_db_of_paperless.trim().is_empty(),
        "Paperless-ngx's own database container is not started"
    );
    for pw in [&pw_a, &pw_b, &pw_p] {
        assert!(
            !argv.iter().any(|l| l.contains(pw.as_str())),
            "a password showed in a process's arguments"
        );
    }
    assert!(
        argv.iter().any(|l| l.contains("psql")),
        "the sampler saw the provisioning run"
    );
    let inspect = lab::exec(DEVICE, &["docker", "inspect", "homelab-postgres"]);
    assert!(
        !inspect.contains(&pw_a) && !inspect.contains(&pw_b) && !inspect.contains(&pw_p),
        "a password in docker inspect"
    );
    assert!(
        lab::exec(DEVICE, &["docker", "port", "homelab-postgres"])
            .trim()
            .is_empty(),
        "the shared PostgreSQL publishes no port"
    );

    // 2. Each app is told its own database, and its login reaches that one only.
    let env_a = app_env(DEVICE, "lab-pg-a");
    assert_eq!(env_a["DB_HOST"], "homelab-postgres");
    assert_eq!(env_a["DB_PORT"], "5432");
    assert_eq!(env_a["DB_NAME"], "hl_lab_pg_a");
    assert_eq!(env_a["DB_USER"], "hl_lab_pg_a");
    assert_eq!(env_a["DB_PASSWORD"], pw_a);
    let (ok, out) = connect(
        DEVICE,
        "postgres",
        "hl_lab_pg_a",
        &pw_a,
        "hl_lab_pg_a",
        "CREATE TABLE IF NOT EXISTS notes (n text); INSERT INTO notes VALUES ('kept'); SELECT count(*) FROM notes",
    );
    assert!(ok, "app A uses its own database: {out}");
    only_their_own(
        DEVICE,
        "postgres",
        &[
            ("hl_lab_pg_a", &pw_a),
            ("hl_lab_pg_b", &pw_b),
            ("hl_paperless_ngx", &pw_p),
        ],
    );
    let (ok, out) = connect(
        DEVICE,
        "postgres",
        "hl_lab_pg_b",
        &pw_b,
        "postgres",
        "SELECT 1",
    );
    assert!(
        !ok && out.contains("permission denied"),
        "B cannot connect to the server's own: {out}"
    );
    let (ok, out) = connect(
        DEVICE,
        "postgres",
        "hl_lab_pg_b",
        &pw_a,
        "hl_lab_pg_b",
        "SELECT 1",
    );
    assert!(
        !ok && out.contains("password authentication failed"),
        "A's password is not B's: {out}"
    );
    let (ok, out) = connect(
        DEVICE,
        "postgres",
        "hl_lab_pg_b",
        &pw_b,
        "hl_lab_pg_b",
        "CREATE ROLE sneaky; SELECT 1",
    );
    assert!(
        !ok && out.contains("permission denied"),
        "B cannot make roles: {out}"
    );
    let (ok, out) = connect(
        DEVICE,
        "postgres",
        "hl_lab_pg_b",
        &pw_b,
        "hl_lab_pg_b",
        "SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'",
    );
    assert!(
        ok && out.trim() == "pg_trgm",
        "B's extension was made for it: {out}"
    );
    let roles = superuser(
        DEVICE,
        "postgres",
        "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname LIKE 'hl\\_%' ORDER BY 1",
    );
    assert_eq!(
        roles.trim(),
        "hl_lab_pg_a|f|f|f\nhl_lab_pg_b|f|f|f\nhl_paperless_ngx|f|f|f",
        "{roles}"
    );
    // The device page shows the shared database, who uses it, its size and memory.
    let shared = shared_card(&s, &session, server).await;
    for words in [
        "PostgreSQL",
        "Running",
        "Used by ",
        "lab-pg-a",
        "lab-pg-b",
        "Paperless-ngx",
        "Data ",
        "Memory ",
    ] {
        assert!(shared.contains(words), "{words} in {shared}");
    }
    assert!(!shared.contains("Restart the shared"), "{shared}");
    // A setting with SQL in it reaches the app as text, byte for byte (settings never reach
    // SQL: names come from the slug only).
    assert_eq!(
        app_env(DEVICE, "lab-pg-b")["GREETING"],
        "x'; DROP DATABASE hl_lab_pg_a; --"
    );

    // 3. A failed deploy drops exactly what it made; the instance and the others stay.
    failed_deploy_leaves_nothing(
        &api,
        server,
        DEVICE,
        "postgres",
        "lab-pg-fail",
        "SELECT count(*) FROM pg_database WHERE datname = 'hl_lab_pg_fail' UNION ALL SELECT count(*) FROM pg_roles WHERE rolname = 'hl_lab_pg_fail'",
    )
    .await;

    // 4. An app the pool cannot serve keeps its own database container, and its page says why.
    let v = timed_deploy(
        &api,
        "lab-pg-vector",
        json!({"device_id": server, "by_address": true}),
    )
    .await;
    assert_eq!(v["state"], "running", "{v}");
    report("app with its own database container", &v);
    let own_db = lab::exec(
        DEVICE,
        &[
            "docker",
            "ps",
            "-q",
            "--filter",
            "label=com.docker.compose.project=homelab-lab-pg-vector",
            "--filter",
            "label=com.docker.compose.service=db",
        ],
    );
    assert!(!own_db.trim().is_empty(), "its own database container runs");
    assert_eq!(app_env(DEVICE, "lab-pg-vector")["DB_HOST"], "db");
    let page = s
        .get("/apps/lab-pg-vector", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("it needs the “vchord” extension"), "{page}");
    let page = s
        .get("/apps/lab-pg-a", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("shared PostgreSQL"), "{page}");

    // 5. The instance stopped: its apps show degraded, Restart brings it back.
    assert!(lab::exec_ok(
        DEVICE,
        &["docker", "kill", "homelab-postgres"]
    ));
    let app = eventually("app A degraded", Duration::from_secs(60), || async {
        let app = api.get("/api/v1/applications/lab-pg-a").await;
        let msg = app["deployed"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if msg.contains("shared PostgreSQL") {
            Ok(app)
        } else {
            Err(app.to_string())
        }
    })
    .await;
    assert_eq!(app["deployed"]["state"], "failed", "{app}");
    // The app page says so and offers the button; the device page too.
    let app_page = html_of(&s, &session, "/apps/lab-pg-a").await;
    let restart = format!("hx-post=\"/devices/{server}/shared/postgres/restart\"");
    assert!(
        app_page.contains("id=\"restart-shared\"") && app_page.contains(&restart),
        "{app_page}"
    );
    assert!(app_page.contains("shared PostgreSQL"), "{app_page}");
    let shared = shared_card(&s, &session, server).await;
    assert!(
        shared.contains("Stopped") && shared.contains(&restart),
        "{shared}"
    );
    // The owner presses it.
    let res = s
        .post_htmx(
            &format!("/devices/{server}/shared/postgres/restart"),
            &session,
            &[],
        )
        .await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    eventually("app A running again", Duration::from_secs(60), || async {
        let app = api.get("/api/v1/applications/lab-pg-a").await;
        if app["deployed"]["state"] == "running" {
            Ok(())
        } else {
            Err(app.to_string())
        }
    })
    .await;
    let (ok, out) = connect(
        DEVICE,
        "postgres",
        "hl_lab_pg_a",
        &pw_a,
        "hl_lab_pg_a",
        "SELECT n FROM notes",
    );
    assert!(
        ok && out.contains("kept"),
        "data survived the restart: {out}"
    );

    // The device loses power and boots: the instance and the apps start again by themselves,
    // with the data.
    reboot_and_wait(DEVICE, "postgres").await;
    let (ok, out) = eventually(
        "the shared PostgreSQL answers after the boot",
        Duration::from_secs(60),
        || async {
            let (ok, out) = connect(
                DEVICE,
                "postgres",
                "hl_lab_pg_a",
                &pw_a,
                "hl_lab_pg_a",
                "SELECT n FROM notes",
            );
            if ok { Ok((ok, out)) } else { Err(out) }
        },
    )
    .await;
    assert!(
        ok && out.contains("kept"),
        "data survived the power cut: {out}"
    );
    for slug in ["lab-pg-a", "lab-pg-b"] {
        assert!(
            !app_env(DEVICE, slug).is_empty(),
            "{slug} started again after the boot"
        );
    }

    // A compromised app plants a function where the superuser would find it first when
    // Homelab provisions its database again: the superuser's search path ignores it.
    let (ok, out) = connect(
        DEVICE,
        "postgres",
        "hl_lab_pg_a",
        &pw_a,
        "hl_lab_pg_a",
        "ALTER DATABASE hl_lab_pg_a SET search_path = public, pg_catalog; \
         CREATE FUNCTION public.string_to_array(text, text) RETURNS text[] LANGUAGE plpgsql \
         AS $$ BEGIN EXECUTE 'ALTER ROLE hl_lab_pg_a SUPERUSER'; RETURN ARRAY[]::text[]; END $$",
    );
    assert!(ok, "the app may do this in its own database: {out}");

    // 6. Removed keeping data: the database stays and comes back with a redeploy.
    let (status, body) = api.delete("/api/v1/applications/lab-pg-a").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        superuser(DEVICE, "postgres", "SELECT datname FROM pg_database").contains("hl_lab_pg_a")
    );
    let again = api
        .deploy_to_end("lab-pg-a", json!({"device_id": server, "by_address": true}))
        .await;
    assert_eq!(again["state"], "running", "{again}");
    assert_eq!(password_of(DEVICE, "lab-pg-a"), pw_a, "the same login");
    let (ok, out) = connect(
        DEVICE,
        "postgres",
        "hl_lab_pg_a",
        &pw_a,
        "hl_lab_pg_a",
        "SELECT n FROM notes",
    );
    assert!(
        ok && out.contains("kept"),
        "the kept database is used again: {out}"
    );
    assert_eq!(
        superuser(
            DEVICE,
            "postgres",
            "SELECT rolsuper FROM pg_roles WHERE rolname = 'hl_lab_pg_a'"
        )
        .trim(),
        "f",
        "the planted function never ran as the superuser"
    );

    // 7. Removed with its data: database and login dropped. The last one leaves the instance
    // in place until the owner removes it.
    keep_instance_log(DEVICE, "postgres", &[&pw_a, &pw_b, &pw_p]);
    for slug in ["lab-pg-a", "lab-pg-b", "lab-pg-vector", "paperless-ngx"] {
        let (status, body) = api
            .delete(&format!("/api/v1/applications/{slug}?delete_data=true"))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let left = superuser(
        DEVICE,
        "postgres",
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'hl\\_%' UNION ALL SELECT count(*) FROM pg_roles WHERE rolname LIKE 'hl\\_%'",
    );
    assert_eq!(left.trim(), "0\n0", "{left}");
    assert_eq!(
        instance_containers(DEVICE, "postgres").len(),
        1,
        "kept until the owner says"
    );
    let list = api
        .get(&format!("/api/v1/devices/{server}/shared-databases"))
        .await;
    assert_eq!(list["shared_databases"][0]["engine"], "postgres", "{list}");
    assert_eq!(list["shared_databases"][0]["removable"], true, "{list}");
    let (status, body) = api
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/devices/{server}/shared-databases/postgres"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(instance_containers(DEVICE, "postgres").is_empty());
    assert!(!lab::exec_ok(
        DEVICE,
        &["docker", "volume", "inspect", "homelab-postgres-data"]
    ));
    clean(DEVICE, &slugs);
}

#[tokio::test]
async fn apps_share_one_mariadb_with_a_database_each() {
    const DEVICE: &str = "server-02";
    let data = data_dir("pool-maria");
    // Two test recipes and the catalog's Nextcloud (on its stand-in) share the device's
    // MariaDB; one fails its health check after its database was made; two keep their own
    // real MariaDB until moved.
    let slugs = [
        "lab-maria-a",
        "lab-maria-b",
        "lab-maria-fail",
        "lab-maria-move",
        "lab-maria-trigger",
        "nextcloud",
    ];
    recipe(&data, "lab-maria-a", "mariadb", 18211, "", "/alive");
    recipe(&data, "lab-maria-b", "mariadb", 18212, "", "/alive");
    recipe(
        &data,
        "lab-maria-fail",
        "mariadb",
        18213,
        "",
        "/never-there",
    );
    recipe_with_real_db(&data, "lab-maria-move", "mariadb", 18214);
    recipe_with_real_db(&data, "lab-maria-trigger", "mariadb", 18215);
    clean(DEVICE, &slugs);
    for slug in &slugs[..5] {
        assert!(lab::exec_ok(
            DEVICE,
            &["docker", "tag", STUB, &format!("example/{slug}:1")]
        ));
    }
    let catalog = homelabd::catalog::Catalog::load(None);
    stand_in::tag_images(DEVICE, &catalog.recipes["nextcloud"]);
    assert_image(DEVICE, MARIA_IMAGE);
    let (s, session, token) = daemon("pool-maria", &data).await;
    let api = Api { token, s: &s };
    let server = add_lab_device(&s, &session, "Server 2", "server-02").await;
    let sampler = ArgvSampler::start();
    for (slug, port) in [
        ("lab-maria-a", "18211"),
        ("lab-maria-b", "18212"),
        ("nextcloud", "18216"),
    ] {
        let d = timed_deploy(
            &api,
            slug,
            json!({"device_id": server, "by_address": true,
                   "settings": {"HTTP_PORT": port}}),
        )
        .await;
        assert_eq!(d["state"], "running", "{d}");
        report(&format!("MariaDB, {slug}"), &d);
    }
    let argv = sampler.finish();
    assert_eq!(
        instance_containers(DEVICE, "mariadb").len(),
        1,
        "one shared MariaDB for the three"
    );
    let pw_a = password_of(DEVICE, "lab-maria-a");
    let pw_b = password_of(DEVICE, "lab-maria-b");
    let pw_n = password_in(DEVICE, "nextcloud", "nextcloud", "MYSQL_PASSWORD");
    for pw in [&pw_a, &pw_b, &pw_n] {
        assert!(
            !argv.iter().any(|l| l.contains(pw.as_str())),
            "a password showed in a process's arguments"
        );
    }
    assert!(
        argv.iter().any(|l| l.contains("mariadb")),
        "the sampler saw the provisioning run"
    );
    let inspect = lab::exec(DEVICE, &["docker", "inspect", "homelab-mariadb"]);
    assert!(!inspect.contains(&pw_a) && !inspect.contains(&pw_b) && !inspect.contains(&pw_n));
    let env = app_env(DEVICE, "lab-maria-a");
    assert_eq!(
        (env["DB_HOST"].as_str(), env["DB_PORT"].as_str()),
        ("homelab-mariadb", "3306")
    );
    let env_n = service_env(DEVICE, "nextcloud", "nextcloud");
    assert_eq!(
        (
            env_n["MYSQL_HOST"].as_str(),
            env_n["MYSQL_DATABASE"].as_str(),
            env_n["MYSQL_USER"].as_str()
        ),
        ("homelab-mariadb", "hl_nextcloud", "hl_nextcloud"),
        "Nextcloud is told its database in the shared one"
    );
    let (ok, out) = connect(
        DEVICE,
        "mariadb",
        "hl_lab_maria_a",
        &pw_a,
        "hl_lab_maria_a",
        "CREATE TABLE t (n INT); INSERT INTO t VALUES (1); SELECT COUNT(*) FROM t",
    );
    assert!(ok && out.trim() == "1", "A uses its own database: {out}");
    only_their_own(
        DEVICE,
        "mariadb",
        &[
            ("hl_lab_maria_a", &pw_a),
            ("hl_lab_maria_b", &pw_b),
            ("hl_nextcloud", &pw_n),
        ],
    );
    let (ok, out) = connect(
        DEVICE,
        "mariadb",
        "hl_lab_maria_b",
        &pw_b,
        "mysql",
        "SELECT 1",
    );
    assert!(
        !ok && out.contains("Access denied"),
        "B cannot reach the server's own: {out}"
    );
    // (The client's batch mode shows the escaping backslash doubled.)
    // Exactly: nothing on the server but USAGE, everything on its own database only, with
    // `_` escaped (a bare `_` in a GRANT would also match hl_labxmaria_b and the like).
    let grants = superuser(DEVICE, "mariadb", "SHOW GRANTS FOR 'hl_lab_maria_b'@'%'");
    let lines: Vec<&str> = grants.lines().collect();
    assert_eq!(lines.len(), 2, "two grants");
    assert!(
        lines[0].starts_with("GRANT USAGE ON *.* TO `hl_lab_maria_b`@`%`"),
        "the server: USAGE only"
    );
    assert_eq!(
        lines[1], "GRANT ALL PRIVILEGES ON `hl\\\\_lab\\\\_maria\\\\_b`.* TO `hl_lab_maria_b`@`%`",
        "its own database only"
    );

    // What sharing saves, on the dashboard: the lab-measured baseline of three separate
    // MariaDB containers less what the shared one uses now (read by the device page).
    let shared = shared_card(&s, &session, server).await;
    for words in ["lab-maria-a", "lab-maria-b", "Nextcloud", "Memory "] {
        assert!(shared.contains(words), "{words} in {shared}");
    }
    let instance_mb = megabytes(&shared[shared.find("Memory ").unwrap()..]);
    let expected = homelabd::pool::saved_mib(homelabd::pool::Engine::Mariadb, 3, instance_mb);
    assert!(expected > 1.0, "three MariaDB apps save memory: {expected}");
    let dashboard = html_of(&s, &session, "/").await;
    let line = card(&dashboard, "sharing-saves");
    let line = &line[..line.find("</p>").unwrap()];
    assert!(
        line.contains("3 apps keep their data in 1 shared database")
            && line.contains("for MariaDB, as measured idle"),
        "how it is worked out, on hover: {line}"
    );
    let words = &line[line.find("Sharing databases saves").expect(line)..];
    let shown = megabytes(words);
    // Housekeeping may read the instance again in between: a few MB either way.
    assert!(
        (shown - expected).abs() <= 5.0,
        "the dashboard shows {shown} MB saved, the figures give {expected}"
    );
    let res = s
        .post_htmx("/settings/mode", &session, &[("mode", "advanced")])
        .await;
    assert!(res.status().is_success() || res.status().is_redirection());
    let dashboard = html_of(&s, &session, "/").await;
    let line = card(&dashboard, "sharing-saves");
    assert!(
        line.contains("<span class=\"muted\">3 apps keep their data"),
        "Advanced mode says how, on the page: {line}"
    );

    // A failed deploy drops exactly what it made.
    failed_deploy_leaves_nothing(
        &api,
        server,
        DEVICE,
        "mariadb",
        "lab-maria-fail",
        "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'hl_lab_maria_fail'; \
         SELECT COUNT(*) FROM mysql.user WHERE User = 'hl_lab_maria_fail'",
    )
    .await;

    // The instance stopped: its apps show degraded, Restart brings it back with the data.
    assert!(lab::exec_ok(DEVICE, &["docker", "kill", "homelab-mariadb"]));
    eventually("app A degraded", Duration::from_secs(60), || async {
        let app = api.get("/api/v1/applications/lab-maria-a").await;
        let msg = app["deployed"]["message"].as_str().unwrap_or("");
        if app["deployed"]["state"] == "failed" && msg.contains("shared MariaDB") {
            Ok(())
        } else {
            Err(app.to_string())
        }
    })
    .await;
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/devices/{server}/shared-databases/mariadb/restart"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    eventually("app A running again", Duration::from_secs(60), || async {
        let app = api.get("/api/v1/applications/lab-maria-a").await;
        if app["deployed"]["state"] == "running" {
            Ok(())
        } else {
            Err(app.to_string())
        }
    })
    .await;

    // Removed keeping its data: the database and login stay and serve the redeploy.
    let (status, body) = api.delete("/api/v1/applications/lab-maria-a").await;
    assert_eq!(status, 200, "{body}");
    let again = api
        .deploy_to_end(
            "lab-maria-a",
            json!({"device_id": server, "by_address": true}),
        )
        .await;
    assert_eq!(again["state"], "running", "{again}");
    assert_eq!(password_of(DEVICE, "lab-maria-a"), pw_a, "the same login");
    let (ok, out) = connect(
        DEVICE,
        "mariadb",
        "hl_lab_maria_a",
        &pw_a,
        "hl_lab_maria_a",
        "SELECT COUNT(*) FROM t",
    );
    assert!(
        ok && out.trim() == "1",
        "the kept database is used again: {out}"
    );

    // An app with its own MariaDB moves in, every row with it.
    for slug in ["lab-maria-move", "lab-maria-trigger"] {
        let d = api
            .deploy_to_end(
                slug,
                json!({"device_id": server, "by_address": true, "own_database": true}),
            )
            .await;
        assert_eq!(d["state"], "running", "{d}");
        assert_eq!(app_env(DEVICE, slug)["DB_HOST"], "db");
    }
    own_db_ready(DEVICE, "lab-maria-move", "mariadb").await;
    own_db_ready(DEVICE, "lab-maria-trigger", "mariadb").await;
    const CHECKSUM: &str =
        "SELECT COUNT(*), SUM(id), MD5(GROUP_CONCAT(body ORDER BY id SEPARATOR ',')) FROM notes";
    own_db(
        DEVICE,
        "lab-maria-move",
        "mariadb",
        "app",
        "CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT NOT NULL); \
         INSERT INTO notes (body) SELECT CONCAT('note ', seq) FROM seq_1_to_500; \
         CREATE INDEX body ON notes (body(20))",
    );
    let before = own_db(DEVICE, "lab-maria-move", "mariadb", "app", CHECKSUM);
    assert!(before.starts_with("500\t"), "{before}");
    // The id the next row gets (InnoDB hands out ids in blocks to INSERT ... SELECT).
    let next_id = own_db(
        DEVICE,
        "lab-maria-move",
        "mariadb",
        "app",
        "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_NAME = 'notes'",
    );
    let moved = api
        .run_to_end(
            "/api/v1/applications/lab-maria-move/move-to-shared",
            json!({}),
        )
        .await;
    assert_eq!(moved["state"], "running", "{moved}");
    assert_eq!(
        app_env(DEVICE, "lab-maria-move")["DB_HOST"],
        "homelab-mariadb"
    );
    let pw_m = password_of(DEVICE, "lab-maria-move");
    let (ok, after) = connect(
        DEVICE,
        "mariadb",
        "hl_lab_maria_move",
        &pw_m,
        "hl_lab_maria_move",
        CHECKSUM,
    );
    assert!(ok, "{after}");
    assert_eq!(after.trim(), before.trim(), "every row arrived");
    let (ok, out) = connect(
        DEVICE,
        "mariadb",
        "hl_lab_maria_move",
        &pw_m,
        "hl_lab_maria_move",
        "INSERT INTO notes (body) VALUES ('after the move'); SELECT LAST_INSERT_ID()",
    );
    assert!(
        ok && out.trim() == next_id.trim(),
        "the app's login writes what was copied, its ids going on: {out} vs {next_id}"
    );

    // A trigger that would run as the server's superuser is not made by a move: the app's own
    // login restores, so the move is undone and the app keeps its own database and data.
    own_db(
        DEVICE,
        "lab-maria-trigger",
        "mariadb",
        "root",
        "CREATE TABLE kept (n INT); INSERT INTO kept VALUES (7); \
         CREATE DEFINER='root'@'localhost' TRIGGER as_root BEFORE INSERT ON kept \
         FOR EACH ROW SET NEW.n = NEW.n",
    );
    let failed = api
        .run_to_end(
            "/api/v1/applications/lab-maria-trigger/move-to-shared",
            json!({}),
        )
        .await;
    assert_eq!(failed["state"], "rolled_back", "{failed}");
    assert_eq!(app_env(DEVICE, "lab-maria-trigger")["DB_HOST"], "db");
    assert_eq!(
        own_db(
            DEVICE,
            "lab-maria-trigger",
            "mariadb",
            "app",
            "SELECT n FROM kept"
        )
        .trim(),
        "7"
    );
    let left = superuser(
        DEVICE,
        "mariadb",
        "SELECT COUNT(*) FROM information_schema.TRIGGERS; \
         SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'hl_lab_maria_trigger'; \
         SELECT COUNT(*) FROM mysql.user WHERE User = 'hl_lab_maria_trigger'",
    );
    assert_eq!(left.trim(), "0\n0\n0", "nothing of the failed move is left");

    keep_instance_log(DEVICE, "mariadb", &[&pw_a, &pw_b, &pw_n, &pw_m]);
    for slug in [
        "lab-maria-a",
        "lab-maria-b",
        "nextcloud",
        "lab-maria-move",
        "lab-maria-trigger",
    ] {
        let (status, body) = api
            .delete(&format!("/api/v1/applications/{slug}?delete_data=true"))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let left = superuser(
        DEVICE,
        "mariadb",
        "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'hl\\_%'; SELECT COUNT(*) FROM mysql.user WHERE User LIKE 'hl\\_%'",
    );
    assert_eq!(left.trim(), "0\n0", "{left}");
    let (status, body) = api
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/devices/{server}/shared-databases/mariadb"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(instance_containers(DEVICE, "mariadb").is_empty());
    clean(DEVICE, &slugs);
}

/// A recipe whose own database is the real server of `engine` (so its data can be moved).
fn recipe_with_real_db(data: &Path, slug: &str, engine: &str, port: u16) {
    recipe(data, slug, engine, port, "", "/alive");
    let compose = data.join("recipes").join(slug).join("compose.yaml");
    let own = match engine {
        "postgres" => format!(
            "    image: {PG_IMAGE}\n    profiles: [own-database]\n    restart: unless-stopped\n    \
             environment:\n      POSTGRES_USER: ${{DB_USER:-app}}\n      POSTGRES_DB: ${{DB_NAME:-app}}\n      \
             POSTGRES_PASSWORD: ${{DB_PASSWORD}}\n    volumes:\n      - dbdata:/var/lib/postgresql/data\n"
        ),
        _ => format!(
            "    image: {MARIA_IMAGE}\n    profiles: [own-database]\n    restart: unless-stopped\n    \
             environment:\n      MARIADB_USER: ${{DB_USER:-app}}\n      MARIADB_DATABASE: ${{DB_NAME:-app}}\n      \
             MARIADB_PASSWORD: ${{DB_PASSWORD}}\n      MARIADB_ROOT_PASSWORD: ${{DB_PASSWORD}}\n    \
             volumes:\n      - dbdata:/var/lib/mysql\n"
        ),
    };
    let text = std::fs::read_to_string(&compose).unwrap().replace(
        &format!("    image: example/{slug}-db:1\n    profiles: [own-database]\n    restart: unless-stopped\n    volumes:\n      - dbdata:/var/lib/db\n"),
        &own,
    );
    assert!(text.contains(PG_IMAGE) || text.contains(MARIA_IMAGE));
    std::fs::write(compose, text).unwrap();
}

/// In the app's own database container: PostgreSQL as its user (the official image trusts
/// its socket), MariaDB as `user` (`app` or `root`) with the password from the container's
/// environment.
fn own_db(device: &str, slug: &str, engine: &str, user: &str, sql: &str) -> String {
    let id = lab::exec(
        device,
        &[
            "docker",
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project=homelab-{slug}"),
            "--filter",
            "label=com.docker.compose.service=db",
        ],
    );
    assert!(!id.trim().is_empty(), "{slug}'s own database runs");
    match engine {
        "postgres" => lab::exec(
            device,
            &[
                "docker",
                "exec",
                "-u",
                "postgres",
                id.trim(),
                "psql",
                "-X",
                "-At",
                "-U",
                user,
                "-d",
                "app",
                "-c",
                sql,
            ],
        ),
        // A fixed script: the user and the SQL arrive as its arguments.
        _ => lab::exec(
            device,
            &[
                "docker",
                "exec",
                id.trim(),
                "sh",
                "-c",
                "MYSQL_PWD=$MARIADB_PASSWORD exec mariadb -u\"$1\" -N -B app -e \"$2\"",
                "own",
                user,
                sql,
            ],
        ),
    }
}

/// Waits until the app's own database answers.
async fn own_db_ready(device: &'static str, slug: &'static str, engine: &'static str) {
    eventually(
        "its own database answers",
        Duration::from_secs(90),
        || async {
            let out = own_db(device, slug, engine, "app", "SELECT 1");
            if out.trim() == "1" { Ok(()) } else { Err(out) }
        },
    )
    .await
}

/// A number before " MB" in `text` (as the pages write sizes).
fn megabytes(text: &str) -> f64 {
    let end = text
        .find(" MB")
        .unwrap_or_else(|| panic!("no MB in {text}"));
    let start = text[..end]
        .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or(0, |i| i + 1);
    text[start..end].parse().unwrap()
}

#[tokio::test]
async fn an_app_with_its_own_database_moves_into_the_shared_one_or_stays_as_it_was() {
    const DEVICE: &str = "pi-4";
    let data = data_dir("pool-move");
    let slugs = ["lab-move", "lab-move-fail"];
    recipe_with_real_db(&data, "lab-move", "postgres", 18221);
    recipe_with_real_db(&data, "lab-move-fail", "postgres", 18222);
    clean(DEVICE, &slugs);
    for slug in slugs {
        assert!(lab::exec_ok(
            DEVICE,
            &["docker", "tag", STUB, &format!("example/{slug}:1")]
        ));
    }
    let (s, session, token) = daemon("pool-move", &data).await;
    let api = Api { token, s: &s };
    let pi = add_lab_device(&s, &session, "Pi", DEVICE).await;
    for slug in slugs {
        let d = timed_deploy(
            &api,
            slug,
            json!({"device_id": pi, "by_address": true, "own_database": true}),
        )
        .await;
        assert_eq!(d["state"], "running", "{d}");
        report(&format!("{slug}, its own real PostgreSQL container"), &d);
        assert_eq!(
            app_env(DEVICE, slug)["DB_HOST"],
            "db",
            "{slug} uses its own database"
        );
    }
    let page = s
        .get("/apps/lab-move", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"move-to-shared\""), "{page}");
    // Data of its own, made with its own login: 500 rows, a sequence, an index.
    own_db_ready(DEVICE, "lab-move", "postgres").await;
    own_db_ready(DEVICE, "lab-move-fail", "postgres").await;
    own_db(
        DEVICE,
        "lab-move",
        "postgres",
        "app",
        "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL); \
        INSERT INTO notes (body) SELECT 'note ' || g FROM generate_series(1, 500) g; CREATE INDEX ON notes (body)",
    );
    let before = own_db(
        DEVICE,
        "lab-move",
        "postgres",
        "app",
        "SELECT count(*), sum(id), md5(string_agg(body, ',' ORDER BY id)) FROM notes",
    );

    let moved = api
        .run_to_end("/api/v1/applications/lab-move/move-to-shared", json!({}))
        .await;
    assert_eq!(moved["state"], "running", "{moved}");
    let env = app_env(DEVICE, "lab-move");
    assert_eq!(
        env["DB_HOST"], "homelab-postgres",
        "the app now uses the shared one"
    );
    let pw = password_of(DEVICE, "lab-move");
    let (ok, after) = connect(
        DEVICE,
        "postgres",
        "hl_lab_move",
        &pw,
        "hl_lab_move",
        "SELECT count(*), sum(id), md5(string_agg(body, ',' ORDER BY id)) FROM notes",
    );
    assert!(ok, "{after}");
    assert_eq!(after.trim(), before.trim(), "every row arrived");
    let (ok, out) = connect(
        DEVICE,
        "postgres",
        "hl_lab_move",
        &pw,
        "hl_lab_move",
        "INSERT INTO notes (body) VALUES ('after the move') RETURNING id",
    );
    assert!(
        ok && out.lines().next() == Some("501"),
        "the app's login owns what was copied: {out}"
    );
    let own = lab::exec(
        DEVICE,
        &[
            "docker",
            "ps",
            "-aq",
            "--filter",
            "label=com.docker.compose.project=homelab-lab-move",
            "--filter",
            "label=com.docker.compose.service=db",
        ],
    );
    assert!(
        own.trim().is_empty(),
        "its own database container was removed after success"
    );
    let page = s
        .get("/apps/lab-move", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Keeps its data in the shared PostgreSQL")
            && !page.contains("id=\"move-to-shared\""),
        "{page}"
    );

    // Something only a superuser may make cannot be copied by the app's login: the move is
    // undone and the app runs on its own database, as before, with its data.
    own_db(
        DEVICE,
        "lab-move-fail",
        "postgres",
        "app",
        "CREATE TABLE kept (n int); INSERT INTO kept VALUES (7); \
        CREATE FUNCTION nothing() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$; \
        CREATE EVENT TRIGGER needs_superuser ON ddl_command_start EXECUTE FUNCTION nothing()",
    );
    let failed = api
        .run_to_end(
            "/api/v1/applications/lab-move-fail/move-to-shared",
            json!({}),
        )
        .await;
    assert_eq!(failed["state"], "rolled_back", "{failed}");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("keeps its own database"),
        "{failed}"
    );
    assert_eq!(app_env(DEVICE, "lab-move-fail")["DB_HOST"], "db");
    assert_eq!(
        own_db(
            DEVICE,
            "lab-move-fail",
            "postgres",
            "app",
            "SELECT n FROM kept"
        )
        .trim(),
        "7"
    );
    let app = api.get("/api/v1/applications/lab-move-fail").await;
    assert_eq!(app["deployed"]["state"], "running", "{app}");
    let left = superuser(
        DEVICE,
        "postgres",
        "SELECT count(*) FROM pg_database WHERE datname = 'hl_lab_move_fail' UNION ALL SELECT count(*) FROM pg_roles WHERE rolname = 'hl_lab_move_fail'",
    );
    assert_eq!(left.trim(), "0\n0", "what the failed move made is dropped");
    for slug in slugs {
        let (status, body) = api
            .delete(&format!("/api/v1/applications/{slug}?delete_data=true"))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    clean(DEVICE, &slugs);
}
