//! A restic REST server as a backup destination, on the real lab with real restic (0.14 on a
//! device in the pinned image, and on the box for its own backup) and the lab's REST servers
//! (Debian's `rclone serve restic`: plain, `--append-only`, and https with a certificate of
//! its own; the lab's login has `@:/%` and a space in its password):
//! - added through the API: a server that does not answer, a wrong password and a login
//!   typed into the address are refused in words; the right login works, and "Test
//!   connection" makes the backup store;
//! - an app on server-01 backed up there, listed, and restored in place byte for byte;
//! - an append-only server is noticed when it is added; backups work there and the box never
//!   runs restic forget there (the job says why);
//! - an https server with its own certificate is pinned on first contact (its fingerprint
//!   shown) and used by restic with it; a wrong fingerprint is refused;
//! - the box's own backup goes to all three, and a new box is restored from the REST server;
//! - the REST password never appears in `docker inspect` of restic's containers, in the
//!   daemon's log, or on the recovery sheet.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use serde_json::json;

const STUB: &str = "homelab-lab/app-stub:1";
/// Where the app runs (and restic with it).
const DEVICE: &str = "server-01";
const SLUG: &str = "lab-rest";
const PORT: u16 = 18361;

fn listing() -> String {
    stand_in::volume_listing(DEVICE, SLUG)
}

/// This run's own folder on the lab's REST servers (they serve one folder; each repository
/// is a path under it).
fn folder() -> String {
    let n: u32 = u32::from_le_bytes(homelabd::secrets::random_bytes());
    format!("homelab-test-{}-{n:08x}", std::process::id())
}

/// Watches the device's restic containers while it runs: `docker inspect` of each one seen.
struct Inspector {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Inspector {
    fn start() -> Inspector {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let out = lab::exec(
                    DEVICE,
                    &[
                        "sh",
                        "-c",
                        "docker ps -q --filter label=homelab.backup | xargs -r docker inspect",
                    ],
                );
                if out.contains("\"Id\"") {
                    seen.push(out);
                }
            }
            seen
        });
        Inspector {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// What a job noted about the keep rules: restic forget's runs and the notes of why not.
fn keep_rule_notes(job: &serde_json::Value) -> (Vec<String>, Vec<String>) {
    let mut ran = Vec::new();
    let mut skipped = Vec::new();
    for a in job["actions"].as_array().unwrap() {
        let what = a["what"].as_str().unwrap_or_default();
        if what.contains("restic forget") {
            ran.push(format!("{what} → {}", a["outcome"]));
        } else if what.starts_with("Keep the backups") {
            assert_eq!(a["outcome"], "skipped", "{a}");
            skipped.push(what.to_string());
        }
    }
    (ran, skipped)
}

async fn check(api: &Api<'_>, id: i64) -> String {
    let (status, words) = api.check_destination(id).await;
    assert_eq!(status, 200, "{words}");
    words
}

/// The SHA-256 fingerprint of the lab's https REST server, as openssl prints it.
fn lab_fingerprint() -> String {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(lab::rest("LAB_REST_TLS_CERT"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.trim().split('=').nth(1).unwrap().to_uppercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_server_takes_app_and_box_backups_and_gives_them_back() {
    let (plain_url, append_url, tls_url) = (
        lab::rest("LAB_REST"),
        lab::rest("LAB_REST_APPEND"),
        lab::rest("LAB_REST_TLS"),
    );
    let (user, pw) = (lab::rest("LAB_REST_USER"), lab::rest("LAB_REST_PASSWORD"));
    let escaped = url_escaped(&pw);
    let folder = folder();
    let on_disk = std::path::PathBuf::from(lab::rest("LAB_REST_DATA")).join(&folder);

    let data = data_dir("backup-rest");
    stand_in::volume_app_recipe(&data, SLUG, PORT);
    lab::clean_app(DEVICE, SLUG);
    assert!(lab::exec_ok(
        DEVICE,
        &["docker", "tag", STUB, &format!("example/{SLUG}:1")]
    ));
    let mut opts = Options::new("backup-rest");
    opts.data = Some(data);
    opts.poll_interval = Duration::from_secs(3600);
    let s = start_with(opts).await;
    let (session, owner_password, api, _) =
        claimed_with_app(&s, "rest", "Server One", DEVICE, SLUG).await;
    stand_in::fill_volume(DEVICE, SLUG);
    let before = listing();

    // Refused in words, nothing kept: a server that does not answer, a wrong password, the
    // login typed into the address.
    let place = |url: &str, password: &str| {
        json!({"name": "Backup server", "kind": "rest", "url": url, "user": user,
               "password": password})
    };
    let (status, body) = api
        .add_destination(place(&format!("http://10.88.0.1:8199/{folder}/x"), &pw))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(error_words(&body).contains("could not reach"), "{body}");
    let (status, body) = api
        .add_destination(place(
            &format!("{plain_url}/{folder}/plain"),
            "not-the-password",
        ))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(error_words(&body).contains("refused the login"), "{body}");
    let with_login = plain_url.replace("http://", &format!("http://{user}:x@"));
    let (status, body) = api
        .add_destination(place(&format!("{with_login}/{folder}/p"), &pw))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(error_words(&body).contains("Leave the login out"), "{body}");
    assert!(
        api.get("/api/v1/backups/destinations").await["destinations"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The right login: added, its store made by "Test connection".
    let (status, dest) = api
        .add_destination(place(&format!("{plain_url}/{folder}/plain/"), &pw))
        .await;
    assert_eq!(status, 201, "{dest}");
    let plain = dest["id"].as_i64().unwrap();
    let owner = format!("backup-destination:{plain}");
    assert_eq!(
        remember_sealed_purposes(&s.data, &owner, &["repository", "rest-password"]),
        2
    );
    assert_eq!(
        dest["repository"],
        format!("rest:{plain_url}/{folder}/plain"),
        "no login in it: {dest}"
    );
    assert_eq!(dest["target"]["append_only"], false, "{dest}");
    assert!(!dest.to_string().contains(&pw) && !dest.to_string().contains(&user));
    let watch = Inspector::start();
    assert!(
        check(&api, plain).await.contains("made its backup store"),
        "the first test makes it"
    );
    assert!(
        on_disk.join("plain/config").is_file(),
        "a standard restic repository"
    );
    assert_eq!(check(&api, plain).await, "Backup server works.");

    // The app backed up there, listed and restored byte for byte.
    let b = api
        .run_to_end(
            &format!("/api/v1/backups/apps/{SLUG}"),
            json!({"destination_id": plain}),
        )
        .await;
    assert_eq!(b["state"], "running", "{b}");
    let listed = api.get(&format!("/api/v1/backups/apps/{SLUG}")).await;
    let snapshots = listed["snapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 1, "{listed}");
    let snapshot = snapshots[0]["id"].as_str().unwrap().to_string();
    stand_in::in_app_volume(
        DEVICE,
        SLUG,
        "rm -rf /d/a/b && echo changed > /d/a/f5 && chmod 777 /d/a/f1",
    );
    assert_ne!(listing(), before);
    let r = api
        .run_to_end(
            &format!("/api/v1/backups/apps/{SLUG}/restore"),
            json!({"destination_id": plain, "snapshot": snapshot}),
        )
        .await;
    assert_eq!(r["state"], "running", "{r}");
    assert_eq!(
        listing(),
        before,
        "restored byte for byte, with modes and owners"
    );

    // An append-only server, not ticked: noticed when added. Backups work there (restic makes
    // and removes its lock files); restic forget never runs there.
    let mut body = place(&format!("{append_url}/{folder}/append"), &pw);
    body["name"] = json!("Append only");
    let (status, dest) = api.add_destination(body).await;
    assert_eq!(status, 201, "{dest}");
    let append = dest["id"].as_i64().unwrap();
    assert_eq!(dest["target"]["append_only"], true, "noticed: {dest}");
    let words = check(&api, append).await;
    assert!(
        words.contains("made its backup store") && words.contains("only lets backups be added"),
        "{words}"
    );
    for round in 0..2 {
        let b = api
            .run_to_end(
                &format!("/api/v1/backups/apps/{SLUG}"),
                json!({"destination_id": append}),
            )
            .await;
        assert_eq!(b["state"], "running", "round {round}: {b}");
        let (forgot, skipped) = keep_rule_notes(&b);
        assert!(forgot.is_empty(), "{forgot:?}");
        assert_eq!(skipped.len(), 1, "{b}");
        assert!(
            skipped[0].contains("only lets backups be added"),
            "{skipped:?}"
        );
    }
    assert_eq!(
        std::fs::read_dir(on_disk.join("append/locks"))
            .unwrap()
            .count(),
        0,
        "restic removed its locks there"
    );

    // https with the server's own certificate: pinned when added (its fingerprint shown),
    // then restic on the device trusts it alone. A fingerprint that is not the server's is
    // refused.
    let fingerprint = lab_fingerprint();
    let mut body = place(&format!("{tls_url}/{folder}/tls"), &pw);
    body["name"] = json!("Secure server");
    body["certificate"] = json!(
        "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"
    );
    let (status, refused) = api.add_destination(body.clone()).await;
    assert_eq!(status, 422, "{refused}");
    assert!(error_words(&refused).contains(&fingerprint), "{refused}");
    body["certificate"] = json!("");
    let (status, dest) = api.add_destination(body).await;
    assert_eq!(status, 201, "{dest}");
    let tls = dest["id"].as_i64().unwrap();
    assert_eq!(
        dest["certificate_fingerprint"],
        fingerprint.as_str(),
        "{dest}"
    );
    let words = check(&api, tls).await;
    assert!(
        words.contains("made its backup store") && words.contains(&fingerprint),
        "{words}"
    );
    let b = api
        .run_to_end(
            &format!("/api/v1/backups/apps/{SLUG}"),
            json!({"destination_id": tls}),
        )
        .await;
    assert_eq!(b["state"], "running", "{b}");
    let inspected = watch.finish();
    assert!(!inspected.is_empty(), "restic's containers were seen");
    for seen in &inspected {
        for secret in [pw.as_str(), escaped.as_str()] {
            assert!(
                !seen.contains(secret),
                "docker inspect shows {secret}: {seen}"
            );
        }
    }

    // The box's own backup, to all three (restic on the box, the pinned certificate too).
    let passphrase = password("recovery-rest");
    api.set_recovery_passphrase(&passphrase).await;
    let done = api.back_up_box().await;
    assert_eq!(done["ok"], true, "{done}");
    let at_append = done["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"].as_i64() == Some(append))
        .unwrap();
    assert!(
        at_append["words"]
            .as_str()
            .unwrap()
            .contains("only lets backups be added"),
        "{at_append}"
    );

    // The recovery sheet: the address and login, the password's place marked, never the
    // password.
    let sheet = s
        .get("/backups/recovery-sheet", &session)
        .await
        .text()
        .await
        .unwrap();
    let plain_host = plain_url.trim_start_matches("http://");
    assert!(
        sheet.contains(&format!(
            "RESTIC_REPOSITORY=&#39;rest:http://{user}:PASSWORD@{plain_host}/{folder}/plain&#39;"
        )) || sheet.contains(&format!(
            "RESTIC_REPOSITORY='rest:http://{user}:PASSWORD@{plain_host}/{folder}/plain'"
        )),
        "{sheet}"
    );
    assert!(
        sheet.contains(&fingerprint),
        "the pinned certificate: {sheet}"
    );
    assert!(!sheet.contains(&pw) && !sheet.contains(&escaped));
    let page = s.get("/backups", &session).await.text().await.unwrap();
    assert!(page.contains("A backup server</label>"), "basic words");
    // Basic mode names no tool, with REST destinations on the page too.
    assert!(
        !page.to_lowercase().contains("restic"),
        "Basic mode shows restic: {page}"
    );
    assert!(
        page.contains(&format!("id=\"destination-{append}-append-only\"")),
        "the page says old backups go on the server's side: {page}"
    );
    s.stop().await.unwrap();

    // A new box, restored from the REST server.
    let new = start("backup-rest-new").await;
    let code = homelabd::setup_code(homelabd::Config::new(&new.data))
        .await
        .unwrap()
        .unwrap();
    let restore = |password: &str| {
        json!({"kind": "rest", "url": format!("{plain_url}/{folder}/plain"), "user": user,
               "password": password, "passphrase": passphrase, "setup_code": code})
    };
    let post = |body: serde_json::Value| {
        new.client
            .post(new.url("/api/v1/setup/restore"))
            .headers(new.origin())
            .json(&body)
            .send()
    };
    let res = post(restore("not-the-password")).await.unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("refused the login"));
    let res = post(restore(&pw)).await.unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    let data = new.data.clone();
    new.wait_stopped_itself().await;
    new.stop().await.unwrap();
    let mut opts = Options::new("backup-rest-new");
    opts.data = Some(data);
    let back = start_with(opts).await;
    let session = back.login(ADMIN, &owner_password).await;
    let api = Api {
        token: back.api_token(&session, "rest-after").await,
        s: &back,
    };
    let list = api.get("/api/v1/backups/destinations").await;
    assert_eq!(list["destinations"].as_array().unwrap().len(), 3, "{list}");
    // Its login and pinned certificate came back with the vault.
    assert_eq!(check(&api, plain).await, "Backup server works.");
    assert!(check(&api, tls).await.contains(&fingerprint));
    let app = api.get(&format!("/api/v1/applications/{SLUG}")).await;
    assert!(app.to_string().contains("running"), "{app}");

    let (status, body) = api
        .delete(&format!("/api/v1/applications/{SLUG}?delete_data=true"))
        .await;
    assert_eq!(status, 200, "{body}");
    back.stop().await.unwrap();

    // Nothing of the REST password in the daemons' log (debug level, restic's complaints
    // included).
    let logs = artifacts().join("logs");
    let suffix = format!("-{}.log", std::process::id());
    let mut read = 0;
    for entry in std::fs::read_dir(&logs).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("backup_rest") && name.ends_with(&suffix) {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            assert!(!text.contains(&pw) && !text.contains(&escaped), "{name}");
            read += text.len();
        }
    }
    assert!(read > 0, "the daemon's log was read");
    let _ = std::fs::remove_dir_all(&on_disk);
    lab::clean_app(DEVICE, SLUG);
}
