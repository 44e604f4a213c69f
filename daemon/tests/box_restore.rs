//! The box's own backup and a new box restored from it, on the real lab with real restic (the
//! host's Debian 0.14.0 runs on the box; the destination is an SSH server in the lab):
//! a homelab with a device, an app (of the owner's own recipe) and a destination sets its
//! recovery passphrase and backs itself up; an empty box given the place and a wrong
//! passphrase refuses and changes nothing; given the right one it starts again as the old
//! box: the owner's account, the device (by the old box's key), the app, the destination (by
//! its own key, from the restored vault), and the key it used for the restore is gone from
//! the server. The repository also opens with the passphrase in plain restic.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

const STUB: &str = "homelab-lab/app-stub:1";
/// The device with the app, and the SSH server the backups go to (the same lab device).
const DEVICE: &str = "server-02";
const FOLDER: &str = "/home/homelab/homelab-box-test";
const SLUG: &str = "lab-box";

/// Where the backups are, as the owner types it into a new box, with the box's setup code.
fn place(passphrase: &str, code: &str) -> serde_json::Value {
    json!({"kind": "sftp", "host": lab::ip(DEVICE), "user": lab::user(),
           "password": lab::password(), "path": FOLDER, "passphrase": passphrase,
           "setup_code": code})
}

async fn restore(s: &TestServer, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let res = s
        .client
        .post(s.url("/api/v1/setup/restore"))
        .headers(s.origin())
        .json(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_box_restored_from_the_old_ones_backup_is_the_same_homelab() {
    let old_data = data_dir("box-old");
    stand_in::volume_app_recipe(&old_data, SLUG, 18341);
    lab::clean_app(DEVICE, SLUG);
    lab::exec(DEVICE, &["rm", "-rf", FOLDER]);
    assert!(lab::exec_ok(
        DEVICE,
        &["docker", "tag", STUB, &format!("example/{SLUG}:1")]
    ));
    let mut opts = Options::new("box-old");
    opts.data = Some(old_data);
    let old = start_with(opts).await;
    let (_, owner_password, api, _) =
        claimed_with_app(&old, "box", "Server Two", DEVICE, SLUG).await;
    let dest_id = api.add_sftp_destination("Server 2", DEVICE, FOLDER).await;

    // No passphrase yet: the box's backup says what to do first.
    let (status, refused) = api
        .send(reqwest::Method::POST, "/api/v1/backups/box", None)
        .await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused.to_string().contains("recovery passphrase"),
        "{refused}"
    );
    let (status, short) = api
        .send(
            reqwest::Method::PUT,
            "/api/v1/backups/box/passphrase",
            Some(json!({"passphrase": "too short", "confirm": "too short"})),
        )
        .await;
    assert_eq!(status, 422, "{short}");
    let passphrase = password("recovery");
    api.set_recovery_passphrase(&passphrase).await;
    // Setting it starts a box backup at once; its record says how it went.
    let first: serde_json::Value = eventually(
        "the box's first backup",
        Duration::from_secs(120),
        || async {
            let st = api.get("/api/v1/backups/box").await;
            if st["last"].is_null() {
                Err(format!("{st}"))
            } else {
                Ok(st)
            }
        },
    )
    .await;
    assert_eq!(first["passphrase_set"], true, "{first}");
    assert_eq!(first["last"]["ok"], true, "{first}");
    // Wait for the background run to let go, then back up again by hand.
    let done = api.back_up_box().await;
    assert_eq!(done["ok"], true, "{done}");
    let at = &done["destinations"][0];
    assert_eq!(at["id"].as_i64(), Some(dest_id), "{done}");
    let snapshot = at["snapshot"].as_str().unwrap();
    assert!(
        snapshot.len() >= 8 && snapshot.chars().all(|c| c.is_ascii_hexdigit()),
        "{done}"
    );

    // A new passphrase: from the next backup on it opens the box's backups and the old one
    // no longer does (its key is removed once a backup sealed with the new one is stored).
    let old_passphrase = passphrase;
    let passphrase = password("recovery-2");
    api.set_recovery_passphrase(&passphrase).await;
    let again = api.back_up_box().await;
    assert_eq!(again["ok"], true, "{again}");

    // The repository opens with the passphrase in plain restic (no Homelab in the way), and
    // holds the box's file, sealed: its own header, no database in the clear.
    let env = format!("RESTIC_PASSWORD={passphrase}");
    let volume = format!("{FOLDER}:/repo");
    let plain = lab::exec(
        DEVICE,
        &[
            "docker",
            "run",
            "--rm",
            "--entrypoint",
            "/bin/sh",
            "-e",
            &env,
            "-v",
            &volume,
            "restic/restic:0.14.0",
            "-c",
            "restic -r /repo --no-cache snapshots --host homelab.box --json && \
             restic -r /repo --no-cache dump latest /homelab-box.sealed | head -c 13",
        ],
    );
    assert!(plain.contains("\"hostname\":\"homelab.box\""), "{plain}");
    assert!(plain.ends_with("HOMELAB-BOX 1"), "{plain}");
    old.stop().await.unwrap();

    // A new, empty box. A restore needs its setup code even in the open window (it brings
    // keys whoever made the backup knows).
    let new = start("box-new").await;
    let code = homelabd::setup_code(homelabd::Config::new(&new.data))
        .await
        .unwrap()
        .unwrap();
    let (status, no_code) = restore(&new, &place(&passphrase, "")).await;
    assert_eq!(status, 403, "{no_code}");
    // The old passphrase: refused in words; nothing staged, nobody can sign in.
    let (status, wrong) = restore(&new, &place(&old_passphrase, &code)).await;
    assert_eq!(status, 422, "{wrong}");
    assert!(
        wrong.to_string().contains("does not open the backups"),
        "{wrong}"
    );
    assert!(!new.data.join("recovery/staged").exists());
    let keys = lab::exec(DEVICE, &["cat", "/home/homelab/.ssh/authorized_keys"]);
    assert!(
        !keys.contains("homelab-restore"),
        "the restore's key went again: {keys}"
    );
    // A place with no backups.
    let mut elsewhere = place(&passphrase, &code);
    elsewhere["path"] = json!("/home/homelab/homelab-box-test-empty");
    lab::exec(
        DEVICE,
        &["mkdir", "-p", "/home/homelab/homelab-box-test-empty"],
    );
    let (status, empty) = restore(&new, &elsewhere).await;
    assert_eq!(status, 422, "{empty}");
    assert!(empty.to_string().contains("no Homelab backups"), "{empty}");

    let (status, restored) = restore(&new, &place(&passphrase, &code)).await;
    assert_eq!(status, 202, "{restored}");
    assert_eq!(restored["restarting"], true, "{restored}");
    let keys = lab::exec(DEVICE, &["cat", "/home/homelab/.ssh/authorized_keys"]);
    assert!(!keys.contains("homelab-restore"), "{keys}");
    // The daemon stops by itself to start with the restored state (the binary starts again
    // at once; here the test does).
    let data = new.data.clone();
    new.wait_stopped_itself().await;
    assert!(homelabd::restart_wanted(&data));
    new.stop().await.unwrap();
    let mut opts = Options::new("box-new");
    opts.data = Some(data.clone());
    let back = start_with(opts).await;
    assert!(!homelabd::restart_wanted(&data));
    // The old owner signs in with the old password.
    let session = back.login(ADMIN, &owner_password).await;
    let api = Api {
        token: back.api_token(&session, "box-after").await,
        s: &back,
    };
    let status = api.get("/api/v1/backups/box").await;
    assert!(
        status["restored"]["made_at"].as_i64().unwrap() > 0,
        "{status}"
    );
    assert_eq!(status["passphrase_set"], true, "{status}");
    let devices = api.get("/api/v1/devices").await;
    assert!(devices.to_string().contains("Server Two"), "{devices}");
    eventually(
        "the device answers the new box",
        Duration::from_secs(90),
        || async {
            let devices = api.get("/api/v1/devices").await;
            if devices.to_string().contains("\"online\"") {
                Ok(())
            } else {
                Err(devices.to_string())
            }
        },
    )
    .await;
    let app = api.get(&format!("/api/v1/applications/{SLUG}")).await;
    assert!(app.to_string().contains("running"), "{app}");
    // The destination works with its own key, opened from the restored vault.
    let (status, checked) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/backups/destinations/{dest_id}/check"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{checked}");
    // Claimed again: a second restore is refused, its page sends to sign-in, and the box's
    // backup pages need a session.
    let (status, again) = restore(&back, &place(&passphrase, &code)).await;
    assert!(status == 403 || status == 409, "{status} {again}");
    let page = back
        .client
        .get(back.url("/setup/restore"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/login");
    for path in ["/backups/box", "/backups/recovery-sheet"] {
        let res = back.client.get(back.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 303, "{path} without a session");
    }
    // The recovery sheet names the place and never the passphrase.
    let sheet = back
        .client
        .get(back.url("/backups/recovery-sheet"))
        .header("cookie", &session.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        sheet.contains(FOLDER) && sheet.contains("Restore from a backup"),
        "{sheet}"
    );
    assert!(!sheet.contains(&passphrase));
    lab::clean_app(DEVICE, SLUG);
    lab::exec(
        DEVICE,
        &["rm", "-rf", FOLDER, "/home/homelab/homelab-box-test-empty"],
    );
}
