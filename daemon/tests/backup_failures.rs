//! Backups when things go wrong, on the real lab with real restic: an S3 destination (the
//! lab's moto) used through the product from "Test connection" to a byte-exact restore, with
//! an endpoint that does not answer and a bucket name restic would refuse; the app's device
//! unplugged mid-backup; the daemon killed mid-backup; a destination that fills up. Each
//! checks the run recorded, what is left at the destination and on the device, and that the
//! next backup works. (A wrong repository password is `backups.rs`'s.)
//!
//! Apps run on pi-4, SFTP destinations live on server-01 (folders of their own under
//! /home/homelab). Each test has its own daemon, app and folder, but they take turns on pi-4
//! (`PI4`): one unplugs it, and a daemon's first backup work on a device removes every backup
//! container another daemon left there (it cannot tell a dead daemon's from a live one's), so
//! two daemons backing up from pi-4 at once would stop each other's runs.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const STUB: &str = "homelab-lab/app-stub:1";
/// Where the apps run, and the SSH server their backups go to.
const DEVICE: &str = "pi-4";
const SERVER: &str = "server-01";
/// An S3 endpoint where nothing answers: no device has this address, so the device's
/// connection fails with "no route to host" once ARP gives up (measured: restic reports it
/// after 9.9 s, well inside the product's 120 s for a check).
const NOWHERE_S3: &str = "http://10.88.0.9:9000";

/// pi-4, one test at a time (see the header). A tokio lock: tests run on runtimes of their
/// own, and it is not poisoned by a failed test.
static PI4: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Random data (incompressible) for a backup to be cut in the middle. restic sends about
/// 50 MB/s from pi-4 to server-01 here, and its first progress line (the job's message) comes
/// after its first second, at 100 MB or so: 300 MB leaves the unplug some 4 s to land in,
/// where it needs milliseconds (a pulled cable freezes the rest however long it is).
const BIG_BYTES: u64 = 300_000_000;
/// A killed daemon's restic runs on by itself: 1 GB keeps it going some 15 s past the kill,
/// so whether the restart stops it is seen, not raced.
const HUGE_BYTES: u64 = 1_000_000_000;

/// How often a blocking look at the lab is taken while a job runs.
const LOOK_EVERY: Duration = Duration::from_millis(200);

fn recipe(data: &std::path::Path, slug: &str, port: u16) {
    stand_in::volume_app_recipe(data, slug, port);
}

fn in_volume(slug: &str, script: &str) -> String {
    stand_in::in_app_volume(DEVICE, slug, script)
}

/// Every entry's path, type, mode, owner, size and content hash, sorted.
fn listing(slug: &str, at_least: usize) -> String {
    let out = in_volume(
        slug,
        "cd /d && find . | sort | while read -r f; do \
           if [ -L \"$f\" ]; then echo \"$f link $(readlink \"$f\")\"; \
           elif [ -f \"$f\" ]; then echo \"$f file $(stat -c '%a %u %g %s' \"$f\") $(md5sum < \"$f\" | cut -d' ' -f1)\"; \
           else echo \"$f dir $(stat -c '%a %u %g' \"$f\")\"; fi; done",
    );
    assert!(
        out.lines().count() >= at_least,
        "the listing is complete: {out}"
    );
    out
}

/// A random lower-case hex suffix, so buckets and keys of one run never meet another's.
fn hex(n: usize) -> String {
    let b: [u8; 16] = homelabd::secrets::random_bytes();
    b.iter().map(|x| format!("{x:02x}")).collect::<String>()[..n].to_string()
}

/// `lab exec` off the async threads (the in-process daemon shares the runtime).
async fn exec(device: &'static str, args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        lab::exec(device, &a)
    })
    .await
    .unwrap()
}

fn sh(script: &str, args: &[&str]) -> Vec<String> {
    let mut v = vec![
        "sh".to_string(),
        "-c".to_string(),
        script.to_string(),
        "sh".into(),
    ];
    v.extend(args.iter().map(|a| a.to_string()));
    v
}

/// `docker inspect` of every container on the device (running or not).
async fn inspect_all() -> String {
    exec(DEVICE, sh("docker ps -aq | xargs -r docker inspect", &[])).await
}

/// The containers on the device labelled as Homelab's backup runs (running or ended, but
/// not removed): "name state".
async fn backup_containers() -> Vec<String> {
    exec(
        DEVICE,
        vec![
            "docker".into(),
            "ps".into(),
            "-a".into(),
            "--filter".into(),
            "label=homelab.backup".into(),
            "--format".into(),
            "{{.Names}} {{.State}}".into(),
        ],
    )
    .await
    .lines()
    .map(str::to_string)
    .collect()
}

/// Files in an SFTP destination's folder on server-01 (`snapshots`, `locks`): counted
/// without the repository's password.
fn repo_files(folder: &str, sub: &str) -> usize {
    lab::exec(
        SERVER,
        &[
            "sh",
            "-c",
            "ls -1 \"$1\" 2>/dev/null",
            "sh",
            &format!("{folder}/{sub}"),
        ],
    )
    .lines()
    .filter(|l| !l.trim().is_empty())
    .count()
}

/// A tmpfs of a given size mounted over a folder on server-01, in the device's own mount
/// namespace (where its sshd, and so every SFTP session, runs; `lab exec` enters it), owned
/// by the device login. Unmounted when dropped, so a failing test leaves no small disk behind.
struct SmallDisk(&'static str);

impl SmallDisk {
    fn mount(folder: &'static str, size: &str) -> SmallDisk {
        const MOUNT: &str = "mkdir -p \"$1\" && mount -t tmpfs \
            -o \"size=$2,mode=0755,uid=$(id -u homelab),gid=$(id -g homelab)\" tmpfs \"$1\"";
        assert!(lab::exec_ok(
            SERVER,
            &["sh", "-c", MOUNT, "sh", folder, size]
        ));
        SmallDisk(folder)
    }

    /// More room on the same disk: what was written stays.
    fn grow(&self, size: &str) {
        const GROW: &str = "mount -o \"remount,size=$2\" \"$1\"";
        assert!(lab::exec_ok(
            SERVER,
            &["sh", "-c", GROW, "sh", self.0, size]
        ));
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        lab::exec(SERVER, &["umount", self.0]);
    }
}

/// What a test found wrong with the product, gathered so that one run goes through every
/// step (the later ones still say whether they work) and fails at its end with all of them.
/// Only what the next steps do not depend on is checked this way.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            let what = what.into();
            eprintln!("PROBLEM: {what}");
            self.0.push(what);
        }
    }

    fn none(self) {
        assert!(self.0.is_empty(), "{}", self.0.join("\n"));
    }
}

/// Like `eventually`, but says how it went instead of failing the test: Ok(when) once
/// `probe` holds, or Err(last seen) at the deadline.
async fn within<F, Fut>(timeout: Duration, mut probe: F) -> Result<Duration, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let start = Instant::now();
    loop {
        match probe().await {
            Ok(()) => return Ok(start.elapsed()),
            Err(seen) if start.elapsed() >= timeout => return Err(seen),
            Err(_) => tokio::time::sleep(LOOK_EVERY).await,
        }
    }
}

/// Whatever a test leaves of its app on pi-4 (its containers, its volumes, a restic run
/// still going) and its folder on server-01, removed when the test ends however it ends:
/// the big volumes and repositories would otherwise stay on the lab's disk.
struct Leftovers {
    slug: &'static str,
    folder: Option<&'static str>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        lab::exec(
            DEVICE,
            &[
                "docker",
                "rm",
                "-f",
                &format!("homelab-restic-{}", self.slug),
            ],
        );
        lab::clean_app(DEVICE, self.slug);
        if let Some(folder) = self.folder {
            lab::exec(SERVER, &["rm", "-rf", "--", folder]);
        }
    }
}

/// A daemon under test, its owner signed in, pi-4 added, the app deployed there.
struct Setup {
    s: TestServer,
    token: String,
}

impl Setup {
    fn api(&self) -> Api<'_> {
        Api {
            s: &self.s,
            token: self.token.clone(),
        }
    }
}

/// Prepares pi-4 for `slug` (nothing left of an earlier run, the stub under the recipe's
/// image name) and the destination folder on server-01 (removed).
fn fresh(slug: &str, folder: Option<&str>) {
    lab::clean_app(DEVICE, slug);
    assert!(lab::exec_ok(
        DEVICE,
        &["docker", "tag", STUB, &format!("example/{slug}:1")]
    ));
    if let Some(folder) = folder {
        lab::exec(
            SERVER,
            &[
                "sh",
                "-c",
                "umount \"$1\" 2>/dev/null; rm -rf -- \"$1\"",
                "sh",
                folder,
            ],
        );
    }
}

/// Claims the daemon, adds pi-4 and deploys the app there; returns the API token.
async fn claim_and_deploy(s: &TestServer, slug: &str, label: &str) -> String {
    let (session, _) = s.claim().await;
    let token = s.api_token(&session, label).await;
    let pi = add_lab_device(s, &session, "Pi", DEVICE).await;
    let api = Api {
        s,
        token: token.clone(),
    };
    let d = api
        .deploy_to_end(slug, json!({"device_id": pi, "by_address": true}))
        .await;
    assert_eq!(d["state"], "running", "{d}");
    token
}

async fn start_in_process(name: &'static str, slug: &str, port: u16) -> Setup {
    let data = data_dir(name);
    recipe(&data, slug, port);
    let mut opts = Options::new(name);
    opts.data = Some(data);
    // No periodic device checks in the middle of what the test looks at.
    opts.poll_interval = Duration::from_secs(3600);
    let s = start_with(opts).await;
    let token = claim_and_deploy(&s, slug, name).await;
    Setup { s, token }
}

/// The daemon as a process of its own (so it can be killed, and its log holds whatever it
/// printed, panics included); its settings as in `start_in_process`.
const PROCESS_ENV: [(&str, &str); 3] = [
    ("HOMELAB_POLL_INTERVAL", "3600"),
    ("HOMELAB_HEALTH_TIMEOUT", "60"),
    // A panic's log lines say where.
    ("RUST_BACKTRACE", "1"),
];

/// A line of a daemon's own log that says a thread of it panicked.
fn panics(d: &Daemon) -> Vec<String> {
    std::fs::read_to_string(&d.log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("panicked at"))
        .map(str::to_string)
        .collect()
}

/// Adds server-01's `folder` as an SFTP destination and makes its repository.
async fn add_sftp(api: &Api<'_>, name: &str, folder: &str) -> i64 {
    let (status, dest) = api
        .send(
            reqwest::Method::POST,
            "/api/v1/backups/destinations",
            Some(
                json!({"name": name, "kind": "sftp", "host": lab::ip(SERVER),
                        "user": lab::user(), "password": lab::password(), "path": folder}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{dest}");
    let id = dest["id"].as_i64().unwrap();
    let (status, checked) = check(api, id).await;
    assert_eq!(status, 200, "{checked}");
    assert!(
        checked["message"]
            .as_str()
            .unwrap()
            .contains("made its backup store"),
        "{checked}"
    );
    id
}

async fn check(api: &Api<'_>, id: i64) -> (u16, Value) {
    api.send(
        reqwest::Method::POST,
        &format!("/api/v1/backups/destinations/{id}/check"),
        None,
    )
    .await
}

/// Starts a backup of `slug` to `dest`; the job's id.
async fn start_backup(api: &Api<'_>, slug: &str, dest: i64) -> i64 {
    let (status, started) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/backups/apps/{slug}"),
            Some(json!({"destination_id": dest})),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    started["deployment_id"].as_i64().unwrap()
}

/// Waits until the job shows restic's progress ("Backing up to …: X of Y…" with X past
/// zero): restic is reading and sending the data.
async fn wait_backing_up(api: &Api<'_>, id: i64, timeout: Duration) -> Value {
    api.wait_for(id, "restic's progress", timeout, |d| {
        let m = d["message"].as_str().unwrap_or("");
        m.starts_with("Backing up to") && !m.contains(": 0 B of")
    })
    .await
}

/// The app's backups as the API lists them (snapshots read at the destinations, runs here).
async fn backups_of(api: &Api<'_>, slug: &str) -> Value {
    api.get(&format!("/api/v1/backups/apps/{slug}")).await
}

fn snapshots_at(listed: &Value, dest: i64) -> Vec<String> {
    listed["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["destination_id"] == dest)
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

/// The run recorded for job `id`.
fn run_of(listed: &Value, id: i64) -> Value {
    listed["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["deployment_id"] == id)
        .unwrap_or_else(|| panic!("no run for job {id}: {listed}"))
        .clone()
}

/// A backup that must work: done, its run recorded with the snapshot the destination lists.
async fn backup_works(api: &Api<'_>, slug: &str, dest: i64, timeout: Duration) -> String {
    backup_job_works(api, slug, dest, timeout).await.1
}

/// `backup_works`, also giving the job's id.
async fn backup_job_works(
    api: &Api<'_>,
    slug: &str,
    dest: i64,
    timeout: Duration,
) -> (i64, String) {
    let id = start_backup(api, slug, dest).await;
    let b = api.wait(id, &["running", "rolled_back"], timeout).await;
    assert_eq!(b["state"], "running", "{b}");
    assert!(b["message"].as_str().unwrap().contains("Backed up"), "{b}");
    let listed = backups_of(api, slug).await;
    let run = run_of(&listed, id);
    assert_eq!(run["state"], "done", "{listed}");
    let short = run["snapshot_id"].as_str().unwrap().to_string();
    let snapshot = snapshots_at(&listed, dest)
        .into_iter()
        .find(|s| s.starts_with(&short) && !short.is_empty())
        .unwrap_or_else(|| panic!("the destination lists the run's snapshot: {listed}"));
    (id, snapshot)
}

/// The restic commands of a job ("What I did") that did not end well: "what → outcome".
async fn restic_refusals(api: &Api<'_>, job: i64) -> Vec<String> {
    let d = api.get(&format!("/api/v1/deployments/{job}")).await;
    d["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["what"].as_str().unwrap_or("").contains("restic"))
        .filter(|a| a["outcome"] != "exit 0")
        .map(|a| format!("{} → {}: {}", a["what"], a["outcome"], a["output"]))
        .collect()
}

/// The in-process daemon's log file (this test binary's, see `common::init_logging`).
fn own_log() -> String {
    let stem = std::env::current_exe()
        .unwrap()
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let path = artifacts()
        .join("logs")
        .join(format!("{stem}-{}.log", std::process::id()));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Objects in the lab's S3 server under `bucket/prefix`, listed without keys (moto checks
/// none): an independent look at what the product wrote there.
async fn s3_keys(bucket: &str, prefix: &str) -> Vec<String> {
    let url = format!("{}/{bucket}?list-type=2&prefix={prefix}", lab_s3());
    let body = client()
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    body.split("<Key>")
        .skip(1)
        .filter_map(|p| p.split("</Key>").next())
        .map(str::to_string)
        .collect()
}

/// A request to the lab's S3 server as a client with keys makes it. moto checks no
/// signature, but answers an unsigned object deletion 403 (anonymous), so a made-up one goes.
fn s3_request(method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    client()
        .request(method, format!("{}/{path}", lab_s3()))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=lab/20260101/us-east-1/s3/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
}

/// Makes a bucket in the lab's S3 server, as the owner would in their storage's console.
async fn s3_make_bucket(bucket: &str) {
    let res = s3_request(reqwest::Method::PUT, bucket)
        .send()
        .await
        .unwrap();
    assert!(
        res.status().is_success(),
        "make bucket {bucket}: {}",
        res.status()
    );
}

/// Empties and removes a bucket (moto keeps everything in memory).
async fn s3_remove_bucket(bucket: &str) {
    for key in s3_keys(bucket, "").await {
        let res = s3_request(reqwest::Method::DELETE, &format!("{bucket}/{key}"))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "delete {key}: {}", res.status());
    }
    let res = s3_request(reqwest::Method::DELETE, bucket)
        .send()
        .await
        .unwrap();
    // A bucket never made (the product refused to make it) is no leftover either.
    assert!(
        res.status().is_success() || res.status() == 404,
        "delete bucket {bucket}: {}",
        res.status()
    );
}

async fn s3_buckets() -> String {
    client()
        .get(format!("{}/", lab_s3()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn lab_s3() -> String {
    let out = std::process::Command::new(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../lab/lab"),
    )
    .arg("env")
    .output()
    .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("LAB_S3="))
        .expect("lab/lab env has LAB_S3")
        .trim_matches('"')
        .to_string()
}

// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_destination_backs_up_and_restores_byte_for_byte_and_keeps_its_keys_secret() {
    let _pi = PI4.lock().await;
    let t0 = Instant::now();
    const SLUG: &str = "lab-bf-s3";
    fresh(SLUG, None);
    let _leftovers = Leftovers {
        slug: SLUG,
        folder: None,
    };
    let setup = start_in_process("backup-failures-s3", SLUG, 18311).await;
    let api = setup.api();
    // Every answer the API gives, for the key scan at the end.
    let mut answers: Vec<String> = Vec::new();

    // Small data with modes, owners, nesting and a link.
    in_volume(
        SLUG,
        "cd /d && mkdir -p a/b empty && i=0; while [ $i -lt 40 ]; do \
           head -c $((i * i * 131 % 70000)) /dev/urandom > a/f$i; i=$((i+1)); done; \
         head -c 1500000 /dev/urandom > a/b/big; : > a/zero; \
         chmod 600 a/f1; chmod 755 a/f2; chmod 1777 empty; chown 1000:1000 a/f3; \
         chown 33:33 a/b; ln -s ../f4 a/b/link",
    );
    let before = listing(SLUG, 45);

    let key_id = format!("AKIABF{}", hex(14).to_uppercase());
    let secret = password("s3-secret");
    remember_secret(&key_id);
    let lab_s3 = lab_s3();

    // A bucket with capitals (AWS refuses them; restic would fail later in words the owner
    // cannot act on) is refused before anything is saved or run.
    let (status, refused) = api
        .send(
            reqwest::Method::POST,
            "/api/v1/backups/destinations",
            Some(json!({"name": "Shouting", "kind": "s3", "endpoint": lab_s3,
                        "bucket": "Homelab-Failures-Caps", "prefix": "x",
                        "key_id": key_id, "secret": secret})),
        )
        .await;
    answers.push(refused.to_string());
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("lower-case"),
        "{refused}"
    );
    let list = api.get("/api/v1/backups/destinations").await;
    answers.push(list.to_string());
    assert_eq!(list["destinations"], json!([]), "nothing saved: {list}");
    assert!(
        !s3_buckets()
            .await
            .to_lowercase()
            .contains("homelab-failures-caps"),
        "no bucket made"
    );

    // The real one: a folder in a bucket the owner made (a bucket made by "Test connection"
    // is the next test's).
    let bucket = format!("homelab-failures-{}", hex(10));
    s3_make_bucket(&bucket).await;
    let (status, dest) = api
        .send(
            reqwest::Method::POST,
            "/api/v1/backups/destinations",
            Some(json!({"name": "Cloud", "kind": "s3", "endpoint": lab_s3,
                        "bucket": bucket, "prefix": "/lab/apps/",
                        "key_id": key_id, "secret": secret})),
        )
        .await;
    answers.push(dest.to_string());
    assert_eq!(status, 201, "{dest}");
    let dest_id = dest["id"].as_i64().unwrap();
    assert_eq!(
        dest["repository"],
        format!("s3:{lab_s3}/{bucket}/lab/apps"),
        "{dest}"
    );
    let (status, checked) = check(&api, dest_id).await;
    answers.push(checked.to_string());
    assert_eq!(status, 200, "{checked}");
    assert!(
        checked["message"]
            .as_str()
            .unwrap()
            .contains("made its backup store"),
        "{checked}"
    );
    let objects = s3_keys(&bucket, "lab/apps/").await;
    assert!(
        objects.iter().any(|k| k == "lab/apps/config")
            && objects.iter().any(|k| k.starts_with("lab/apps/keys/")),
        "a standard restic repository in the bucket's folder: {objects:?}"
    );

    // Backed up, listed, recorded.
    let t = Instant::now();
    let snapshot = backup_works(&api, SLUG, dest_id, Duration::from_secs(120)).await;
    eprintln!("[s3] backup took {:?}", t.elapsed());
    let listed = backups_of(&api, SLUG).await;
    answers.push(listed.to_string());
    assert_eq!(
        snapshots_at(&listed, dest_id),
        vec![snapshot.clone()],
        "{listed}"
    );
    let in_bucket: Vec<String> = s3_keys(&bucket, "lab/apps/snapshots/").await;
    assert_eq!(
        in_bucket,
        vec![format!("lab/apps/snapshots/{snapshot}")],
        "the bucket holds that one snapshot"
    );

    // Changed, then restored byte for byte.
    in_volume(
        SLUG,
        "rm -rf /d/a/b && echo changed > /d/a/f5 && echo new > /d/added && chmod 777 /d/a/f1 \
         && chown 5:5 /d/a/f2",
    );
    assert_ne!(listing(SLUG, 40), before);
    let (status, started) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/backups/apps/{SLUG}/restore"),
            Some(json!({"destination_id": dest_id, "snapshot": snapshot})),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    let r = api
        .wait(
            started["deployment_id"].as_i64().unwrap(),
            &["running", "rolled_back"],
            Duration::from_secs(120),
        )
        .await;
    answers.push(r.to_string());
    assert_eq!(r["state"], "running", "{r}");
    assert_eq!(
        listing(SLUG, 45),
        before,
        "restored from S3 byte for byte, with modes and owners"
    );

    // An endpoint that does not answer: the owner is told the device could not reach it,
    // and what to check. The check's restic container is looked at while it runs.
    let (status, nowhere) = api
        .send(
            reqwest::Method::POST,
            "/api/v1/backups/destinations",
            Some(
                json!({"name": "Nowhere", "kind": "s3", "endpoint": NOWHERE_S3,
                        "bucket": bucket, "prefix": "",
                        "key_id": key_id, "secret": secret}),
            ),
        )
        .await;
    answers.push(nowhere.to_string());
    assert_eq!(status, 201, "{nowhere}");
    let nowhere_id = nowhere["id"].as_i64().unwrap();
    let t = Instant::now();
    let checking = check(&api, nowhere_id);
    tokio::pin!(checking);
    let mut seen_running: Vec<String> = Vec::new();
    let (status, unreachable) = loop {
        tokio::select! {
            r = &mut checking => break r,
            () = tokio::time::sleep(LOOK_EVERY) => {
                let running = exec(
                    DEVICE,
                    sh("docker ps -q --filter label=homelab.backup | xargs -r docker inspect", &[]),
                )
                .await;
                if running.contains(NOWHERE_S3) {
                    seen_running.push(running);
                }
            }
        }
    };
    eprintln!("[s3] unreachable check took {:?}", t.elapsed());
    answers.push(unreachable.to_string());
    assert_eq!(status, 422, "{unreachable}");
    let words = unreachable["error"]["message"].as_str().unwrap_or("");
    assert!(
        words.contains("could not reach Nowhere") && words.contains("Check its address"),
        "{unreachable}"
    );
    assert!(
        !seen_running.is_empty(),
        "the check's restic container was seen running (it takes ~10 s)"
    );
    let list = api.get("/api/v1/backups/destinations").await;
    answers.push(list.to_string());
    let d = list["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == nowhere_id)
        .unwrap()
        .clone();
    assert_eq!(d["check_ok"], false, "{d}");

    // The keys are nowhere to be read: not in any answer, not in any container's
    // configuration on the device (while restic ran, and what is left), not in the log.
    let left = inspect_all().await;
    let log = own_log();
    for k in [&key_id, &secret] {
        for a in &answers {
            assert!(!a.contains(k.as_str()), "a key in an API answer: {a}");
        }
        for i in seen_running.iter().chain([&left]) {
            assert!(!i.contains(k.as_str()), "a key in docker inspect");
        }
        assert!(!log.contains(k.as_str()), "a key in the daemon's log");
    }
    let apps = api.get(&format!("/api/v1/applications/{SLUG}")).await;
    assert!(!apps.to_string().contains(&secret));

    let (status, body) = api
        .delete(&format!("/api/v1/applications/{SLUG}?delete_data=true"))
        .await;
    assert_eq!(status, 200, "{body}");
    s3_remove_bucket(&bucket).await;
    eprintln!("[s3] whole test {:?}", t0.elapsed());
}

/// The lab README and the brief: restic's `init` makes a missing bucket, so "Test connection"
/// on a new bucket makes both the bucket and the backup store, as it makes an SFTP folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_makes_a_missing_s3_bucket_and_its_backup_store() {
    let _pi = PI4.lock().await;
    let t0 = Instant::now();
    let mut opts = Options::new("backup-failures-s3-new");
    opts.poll_interval = Duration::from_secs(3600);
    let s = start_with(opts).await;
    let (session, _) = s.claim().await;
    let api = Api {
        token: s.api_token(&session, "backup-failures-s3-new").await,
        s: &s,
    };
    // The device "Test connection" runs restic on.
    add_lab_device(&s, &session, "Pi", DEVICE).await;
    let key_id = format!("AKIABF{}", hex(14).to_uppercase());
    let secret = password("s3-secret");
    remember_secret(&key_id);
    let bucket = format!("homelab-failures-new-{}", hex(10));
    let (status, dest) = api
        .send(
            reqwest::Method::POST,
            "/api/v1/backups/destinations",
            Some(
                json!({"name": "New bucket", "kind": "s3", "endpoint": lab_s3(),
                        "bucket": bucket, "prefix": "homelab",
                        "key_id": key_id, "secret": secret}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{dest}");
    let (status, checked) = check(&api, dest["id"].as_i64().unwrap()).await;
    s3_remove_bucket(&bucket).await;
    eprintln!("[s3-new] whole test {:?}", t0.elapsed());
    assert_eq!(status, 200, "{checked}");
    assert!(
        checked["message"]
            .as_str()
            .unwrap()
            .contains("made its backup store"),
        "{checked}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_unplugged_mid_backup_fails_the_run_leaves_no_snapshot_and_the_next_works() {
    let _pi = PI4.lock().await;
    let t0 = Instant::now();
    const SLUG: &str = "lab-bf-unplug";
    const FOLDER: &str = "/home/homelab/homelab-backups-failures-unplug";
    fresh(SLUG, Some(FOLDER));
    let _leftovers = Leftovers {
        slug: SLUG,
        folder: Some(FOLDER),
    };
    let mut problems = Problems::default();
    let data = data_dir("backup-failures-unplug");
    recipe(&data, SLUG, 18312);
    let d = spawn_daemon("backup-failures-unplug", &data, &PROCESS_ENV);
    let s = TestServer::attach(&d, data.clone());
    let token = claim_and_deploy(&s, SLUG, "backup-failures-unplug").await;
    let api = Api { s: &s, token };
    let dest = add_sftp(&api, "Server 1", FOLDER).await;
    in_volume(SLUG, &format!("head -c {BIG_BYTES} /dev/urandom > /d/big"));

    let pi_ip = lab::ip(DEVICE); // read while the lab still calls it up
    let id = start_backup(&api, SLUG, dest).await;
    let seen = wait_backing_up(&api, id, Duration::from_secs(120)).await;
    let cable = lab::unplug(DEVICE);
    let unplugged = Instant::now();
    eprintln!("[unplug] unplugged at: {}", seen["message"]);

    // It ends, failed, without hanging. The daemon hears nothing more from the device and
    // notices by SSH keepalive: 3 unanswered every 15 s, so 45–60 s after the last packet
    // (measured: 59.9–60.0 s). 90 s is that worst case plus 30 s for the rest under load.
    let ended = api
        .wait(id, &["running", "rolled_back"], Duration::from_secs(90))
        .await;
    eprintln!(
        "[unplug] the job ended {:?} after the cable was pulled: {}",
        unplugged.elapsed(),
        ended["message"]
    );
    assert_eq!(ended["state"], "rolled_back", "{ended}");
    // In the owner's words, as a deploy says it when its device goes away ("Pi stopped
    // answering: it may be off, unplugged or restarting"): the job's error (its message
    // adds "Everything it changed on Pi was undone.") names the device, has none of the
    // plumbing, and does not send the owner to Docker (the app engine), which is fine.
    let words = ended["error"].as_str().unwrap_or("").to_string();
    problems.check(
        words.contains("Pi"),
        format!("the error does not name the device: {words}"),
    );
    for wrong in ["SSH", ":22", "Channel", "Docker", "engine", pi_ip.as_str()] {
        problems.check(
            !words.contains(wrong),
            format!("“{wrong}” in the job's error: {words}"),
        );
    }

    // restic on the device gives up by itself (its SSH to server-01 has the same keepalive:
    // ServerAliveInterval 15 × 3; measured 60.5 s). Only then does the cable go back: a
    // restic that hears from server-01 again could still finish.
    let restic = format!("homelab-restic-{SLUG}");
    let gave_up = eventually_blocking(
        "restic on the unplugged device giving up",
        Duration::from_secs(120),
        || {
            let running = lab::exec(
                DEVICE,
                &[
                    "docker",
                    "ps",
                    "-q",
                    "--filter",
                    &format!("name=^{restic}$"),
                ],
            );
            if running.trim().is_empty() {
                Ok(unplugged.elapsed())
            } else {
                Err(running)
            }
        },
    );
    eprintln!("[unplug] restic on the device stopped {gave_up:?} after the cable was pulled");
    cable.on();

    // Recorded as failed; the destination has no snapshot of it (the API's list, and the
    // folder's snapshots/ read on the server without the password). The list asks restic on
    // the app's device, so it is read once the device answers again: the box finds out
    // that its old connection died and makes a new one (a few seconds; 90 s bound).
    let listed = eventually("Pi answering again", Duration::from_secs(90), || async {
        let (status, body) = api
            .send(
                reqwest::Method::GET,
                &format!("/api/v1/backups/apps/{SLUG}"),
                None,
            )
            .await;
        if status == 200 {
            Ok(body)
        } else {
            Err(format!("{status} {body}"))
        }
    })
    .await;
    let run = run_of(&listed, id);
    problems.check(
        run["state"] == "failed",
        format!("the run is not failed: {run}"),
    );
    problems.check(
        !run["message"].as_str().unwrap_or("").is_empty(),
        format!("the failed run says nothing: {run}"),
    );
    problems.check(
        snapshots_at(&listed, dest).is_empty(),
        format!("a snapshot of the cut run is listed: {listed}"),
    );
    problems.check(
        repo_files(FOLDER, "snapshots") == 0,
        "a snapshot file of the cut run is at the destination",
    );

    // Plugged back in, the next backup works.
    let t = Instant::now();
    let snapshot = backup_works(&api, SLUG, dest, Duration::from_secs(180)).await;
    eprintln!("[unplug] the next backup took {:?}", t.elapsed());
    let listed = backups_of(&api, SLUG).await;
    assert_eq!(snapshots_at(&listed, dest), vec![snapshot], "{listed}");
    assert_eq!(repo_files(FOLDER, "snapshots"), 1);

    let (status, body) = api
        .delete(&format!("/api/v1/applications/{SLUG}?delete_data=true"))
        .await;
    assert_eq!(status, 200, "{body}");
    // Losing the device mid-run is an error to report, never a crash of a part of the box.
    let panicked = panics(&d);
    problems.check(
        panicked.is_empty(),
        format!(
            "the daemon panicked (see {}): {panicked:?}",
            d.log.display()
        ),
    );
    eprintln!("[unplug] whole test {:?}", t0.elapsed());
    problems.none();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_backup_closes_the_run_leaves_nothing_running_and_the_next_works() {
    let _pi = PI4.lock().await;
    let t0 = Instant::now();
    const SLUG: &str = "lab-bf-kill";
    const FOLDER: &str = "/home/homelab/homelab-backups-failures-kill";
    fresh(SLUG, Some(FOLDER));
    let _leftovers = Leftovers {
        slug: SLUG,
        folder: Some(FOLDER),
    };
    let mut problems = Problems::default();
    let data = data_dir("backup-failures-kill");
    recipe(&data, SLUG, 18313);
    let d = spawn_daemon("backup-failures-kill", &data, &PROCESS_ENV);
    let s = TestServer::attach(&d, data.clone());
    let token = claim_and_deploy(&s, SLUG, "backup-failures-kill").await;
    let api = Api {
        s: &s,
        token: token.clone(),
    };
    let dest = add_sftp(&api, "Server 1", FOLDER).await;
    in_volume(SLUG, &format!("head -c {HUGE_BYTES} /dev/urandom > /d/big"));

    let id = start_backup(&api, SLUG, dest).await;
    let seen = wait_backing_up(&api, id, Duration::from_secs(120)).await;
    // The daemon dies without a chance to clean up (SIGKILL).
    let mut d = d;
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    let killed = Instant::now();
    drop(d);
    eprintln!("[kill] killed at: {}", seen["message"]);
    let restic = format!("homelab-restic-{SLUG} running");
    assert!(
        backup_containers().await.contains(&restic),
        "restic was running when the daemon died"
    );

    let d2 = spawn_daemon("backup-failures-kill-2", &data, &PROCESS_ENV);
    let s2 = TestServer::attach(&d2, data.clone());
    eprintln!(
        "[kill] answering again {:?} after the kill",
        killed.elapsed()
    );
    let api = Api { s: &s2, token };

    // The job is closed as failed, in words (read from the box alone: nothing so far asks
    // the device for anything, so no backup work cleans up on the way).
    let ended = api
        .wait(id, &["rolled_back"], Duration::from_secs(60))
        .await;
    let closed = Instant::now();
    assert!(
        ended["message"].as_str().unwrap().contains("restarted"),
        "{ended}"
    );

    // Nothing of the dead run is left on the device once the box is back: restic left
    // running would finish a backup the box counts as failed, hold its lock and read the
    // disk. 10 s after the start is a device round trip with ample room (the box reaches
    // pi-4 in well under a second), and short of the ~15 s restic still had to do.
    let swept = within(Duration::from_secs(10), || async {
        let left = backup_containers().await;
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    })
    .await;
    eprintln!("[kill] backup containers gone after the restart: {swept:?}");
    problems.check(
        swept.is_ok(),
        format!("a backup container is left on pi-4 10 s after the restart: {swept:?}"),
    );

    // Its run is shown failed, in words, as its job is: both are closed by the same pass of
    // the start's recovery, so 5 s covers the gap (the pass after it comes 15 s later;
    // looked at for 20 s to say when it came).
    let run_closed = within(Duration::from_secs(20), || async {
        let listed = backups_of(&api, SLUG).await;
        let run = run_of(&listed, id);
        if run["state"] == "failed" {
            Ok(())
        } else {
            Err(run.to_string())
        }
    })
    .await
    .map(|_| closed.elapsed());
    eprintln!("[kill] the run shown failed {run_closed:?} after its job");
    problems.check(
        run_closed
            .as_ref()
            .is_ok_and(|t| *t <= Duration::from_secs(5)),
        format!("the killed run is shown failed only {run_closed:?} after its job"),
    );
    let listed = backups_of(&api, SLUG).await;
    let run = run_of(&listed, id);
    problems.check(
        run["message"]
            .as_str()
            .unwrap()
            .contains("restarted while this backup ran"),
        format!("the run does not say why: {run}"),
    );

    // A stopped run made no snapshot, and its lock stays behind at the destination.
    problems.check(
        snapshots_at(&listed, dest).is_empty() && repo_files(FOLDER, "snapshots") == 0,
        format!("the killed run's backup finished after all: {listed}"),
    );
    let locks = repo_files(FOLDER, "locks");
    eprintln!("[kill] locks left at the destination: {locks}");
    problems.check(
        locks >= 1,
        "no stale lock at the destination (restic was not stopped: it finished)",
    );

    // The next backup works, a stale lock notwithstanding. restic only takes a lock for
    // stale when it is 30 minutes old or its process is gone from the same host, and each
    // container is a host of its own: so the keep rules' forget, which needs the repository
    // alone, may be refused for "locked" until then (the next backup applies them); every
    // other restic command must go through.
    let t = Instant::now();
    let (job, snapshot) = backup_job_works(&api, SLUG, dest, Duration::from_secs(180)).await;
    eprintln!("[kill] the next backup took {:?}", t.elapsed());
    let listed = backups_of(&api, SLUG).await;
    assert!(snapshots_at(&listed, dest).contains(&snapshot), "{listed}");
    let refused: Vec<String> = restic_refusals(&api, job)
        .await
        .into_iter()
        .filter(|r| !(r.contains("restic forget") && r.contains("already locked")))
        .collect();
    problems.check(
        refused.is_empty(),
        format!("the next backup's restic commands were refused: {refused:?}"),
    );

    let (status, body) = api
        .delete(&format!("/api/v1/applications/{SLUG}?delete_data=true"))
        .await;
    assert_eq!(status, 200, "{body}");
    let panicked = panics(&d2);
    problems.check(
        panicked.is_empty(),
        format!(
            "the daemon panicked (see {}): {panicked:?}",
            d2.log.display()
        ),
    );
    eprintln!("[kill] whole test {:?}", t0.elapsed());
    problems.none();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_destination_fails_the_backup_with_the_fix_and_the_app_keeps_running() {
    let _pi = PI4.lock().await;
    let t0 = Instant::now();
    const SLUG: &str = "lab-bf-full";
    const FOLDER: &str = "/home/homelab/homelab-backups-failures-full";
    fresh(SLUG, Some(FOLDER));
    let _leftovers = Leftovers {
        slug: SLUG,
        folder: Some(FOLDER),
    };
    let mut problems = Problems::default();
    // A 20 MB disk of its own under the destination folder.
    let disk = SmallDisk::mount(FOLDER, "20m");
    let setup = start_in_process("backup-failures-full", SLUG, 18314).await;
    let api = setup.api();
    let dest = add_sftp(&api, "Small disk", FOLDER).await;
    // 60 MB of random data cannot fit in 20 MB.
    in_volume(SLUG, "head -c 60000000 /dev/urandom > /d/big");

    let t = Instant::now();
    let id = start_backup(&api, SLUG, dest).await;
    // restic retries each failed write with a growing pause for about a minute before it
    // gives up (measured: 60.7 s for its run, 61–62 s for the job): 180 s.
    let ended = api
        .wait(id, &["running", "rolled_back"], Duration::from_secs(180))
        .await;
    eprintln!(
        "[full] the failed backup took {:?}: {}",
        t.elapsed(),
        ended["message"]
    );
    assert_eq!(ended["state"], "rolled_back", "{ended}");
    let words = ended["message"].as_str().unwrap();
    problems.check(
        words.contains("Small disk") && words.contains("full") && words.contains("Free some space"),
        format!("not the “full” words with the fix: {words}"),
    );
    problems.check(!words.contains("SSH_FX"), format!("jargon: {words}"));
    // restic removed what it could not finish; something else then fills the disk up:
    // tested again, the destination says it is filling up.
    const FILL: &str =
        "head -c 30000000 /dev/zero > \"$1/someone-elses-file\"; test -s \"$1/someone-elses-file\"";
    assert!(lab::exec_ok(SERVER, &["sh", "-c", FILL, "sh", FOLDER]));
    let (status, checked) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/backups/destinations/{dest}/check"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{checked}");
    let filling = |list: &serde_json::Value| {
        list["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == dest)
            .map(|d| d["filling_up"].clone())
            .unwrap()
    };
    let list = api.get("/api/v1/backups/destinations").await;
    let warned = filling(&list);
    problems.check(
        warned
            .as_str()
            .is_some_and(|w| w.starts_with("Small disk is filling up")),
        format!("no filling-up warning: {list}"),
    );
    let listed = backups_of(&api, SLUG).await;
    assert_eq!(run_of(&listed, id)["state"], "failed", "{listed}");
    assert_eq!(
        snapshots_at(&listed, dest),
        Vec::<String>::new(),
        "{listed}"
    );

    // The app was never stopped.
    let app = api.get(&format!("/api/v1/applications/{SLUG}")).await;
    assert_eq!(app["deployed"]["state"], "running", "{app}");
    let state = lab::exec(
        DEVICE,
        &[
            "docker",
            "ps",
            "--filter",
            &format!("label=com.docker.compose.project=homelab-{SLUG}"),
            "--format",
            "{{.State}}",
        ],
    );
    assert_eq!(state.trim(), "running", "the app's container runs on");

    // Room made (the same disk, grown): the next backup works.
    disk.grow("400m");
    let t = Instant::now();
    let snapshot = backup_works(&api, SLUG, dest, Duration::from_secs(180)).await;
    eprintln!("[full] the next backup took {:?}", t.elapsed());
    let listed = backups_of(&api, SLUG).await;
    assert_eq!(snapshots_at(&listed, dest), vec![snapshot], "{listed}");
    // Measured again after that backup: no longer filling up, and it holds the backup.
    let list = api.get("/api/v1/backups/destinations").await;
    assert!(filling(&list).is_null(), "{list}");

    let (status, body) = api
        .delete(&format!("/api/v1/applications/{SLUG}?delete_data=true"))
        .await;
    assert_eq!(status, 200, "{body}");
    eprintln!("[full] whole test {:?}", t0.elapsed());
    problems.none();
}
