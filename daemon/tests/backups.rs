//! Backups on the real lab with real restic (the lab's Debian 0.14.0 under the official
//! image's name): an SSH server (another lab device) added as a destination with its login
//! used once, its backup store made by "Test connection", an app's volume with many files of
//! many sizes, modes and owners backed up from its device, changed, and restored in place
//! byte for byte; a second destination on the same folder (another password) is refused with
//! the reason.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

const STUB: &str = "homelab-lab/app-stub:1";
/// Where the app runs, and the SSH server its backups go to.
const DEVICE: &str = "nas-01";
const SERVER: &str = "server-02";
const FOLDER: &str = "/home/homelab/homelab-backups-test";
const SLUG: &str = "lab-backup";

/// The lab's stub serving its pages from the app's volume: the volume's `health` file is its
/// health check, so a restore of data without it fails the check.
fn recipe(data: &std::path::Path) {
    let dir = data.join("recipes").join(SLUG);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("manifest.yaml"),
        format!(
            "name: {SLUG}\nslug: {SLUG}\nversion: \"1.0\"\ncategory: Test\n\
             description: A lab app with data.\nwebsite: https://example.org\n\
             requirements: {{ram_min_mb: 64, ram_recommended_mb: 128, storage_min_gb: 1, \
             storage_recommended_gb: 1, cpu_min_cores: 1, cpu_recommended_cores: 1}}\n\
             architectures: [amd64, arm64]\n\
             web: {{service: web, port: 8080, path: /}}\n\
             health: {{path: /health, status: 200, timeout: 10}}\n\
             data_volumes: [data]\n\
             settings:\n  - {{name: HTTP_PORT, label: Which port to use, kind: port, default: \"18301\"}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            "services:\n  web:\n    image: example/{SLUG}:1\n    restart: unless-stopped\n    \
             ports:\n      - \"${{HTTP_PORT}}:8080\"\n    volumes:\n      - data:/www\nvolumes:\n  data:\n"
        ),
    )
    .unwrap();
}

/// Runs a fixed script in a throwaway container that mounts the app's volume at /d.
fn in_volume(script: &str) -> String {
    lab::exec(
        DEVICE,
        &[
            "docker",
            "run",
            "--rm",
            "-v",
            &format!("homelab-{SLUG}_data:/d"),
            "--entrypoint",
            "/bin/busybox",
            STUB,
            "sh",
            "-c",
            script,
        ],
    )
}

/// Every entry's path, type, mode, owner, size and content hash, sorted: what "byte for
/// byte, with modes and owners" means here.
fn listing() -> String {
    let out = in_volume(
        "cd /d && find . | sort | while read -r f; do \
           if [ -L \"$f\" ]; then echo \"$f link $(readlink \"$f\")\"; \
           elif [ -f \"$f\" ]; then echo \"$f file $(stat -c '%a %u %g %s' \"$f\") $(md5sum < \"$f\" | cut -d' ' -f1)\"; \
           else echo \"$f dir $(stat -c '%a %u %g' \"$f\")\"; fi; done",
    );
    assert!(out.lines().count() > 300, "the listing is complete: {out}");
    out
}

#[tokio::test]
async fn an_apps_data_is_backed_up_from_its_device_and_restored_in_place_byte_for_byte() {
    let data = data_dir("backups");
    recipe(&data);
    lab::clean_app(DEVICE, SLUG);
    lab::exec(SERVER, &["rm", "-rf", FOLDER, &format!("{FOLDER}-2")]);
    assert!(lab::exec_ok(
        DEVICE,
        &["docker", "tag", STUB, &format!("example/{SLUG}:1")]
    ));
    let mut opts = Options::new("backups");
    opts.data = Some(data);
    opts.poll_interval = Duration::from_secs(3600);
    let s = start_with(opts).await;
    let (session, _) = s.claim().await;
    let api = Api {
        token: s.api_token(&session, "backups").await,
        s: &s,
    };
    let nas = add_lab_device(&s, &session, "NAS", DEVICE).await;
    let d = api
        .deploy_to_end(SLUG, json!({"device_id": nas, "by_address": true}))
        .await;
    assert_eq!(d["state"], "running", "{d}");

    // Many files: sizes from empty to 3 MB, modes, owners, nested folders, a link.
    in_volume(
        "cd /d && mkdir -p a/b/c empty && i=0; while [ $i -lt 300 ]; do \
           head -c $((i * i * 37 % 200000)) /dev/urandom > a/f$i; i=$((i+1)); done; \
         head -c 3000000 /dev/urandom > a/b/c/big; : > a/zero; \
         chmod 600 a/f1; chmod 755 a/f2; chmod 1777 empty; chown 1000:1000 a/f3; \
         chown 33:33 a/b; ln -s ../a/f4 a/b/link",
    );
    let before = listing();

    // An SSH server as the destination: its login once, then a key of Homelab's own.
    let pw = lab::password();
    let (status, dest) = api
        .send(
            reqwest::Method::POST,
            "/api/v1/backups/destinations",
            Some(
                json!({"name": "Server 2", "kind": "sftp", "host": lab::ip(SERVER),
                        "user": lab::user(), "password": pw, "path": FOLDER}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{dest}");
    let dest_id = dest["id"].as_i64().unwrap();
    assert!(
        dest["repository"]
            .as_str()
            .unwrap()
            .starts_with("sftp:homelab@"),
        "{dest}"
    );
    assert!(!dest.to_string().contains(&pw), "the login is not kept");
    let keys = lab::exec(SERVER, &["cat", "/home/homelab/.ssh/authorized_keys"]);
    assert!(
        keys.contains("restrict,command=\"internal-sftp\" ssh-ed25519"),
        "an SFTP-only key: {keys}"
    );
    let (status, checked) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/backups/destinations/{dest_id}/check"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{checked}");
    assert!(
        checked["message"]
            .as_str()
            .unwrap()
            .contains("made its backup store"),
        "{checked}"
    );
    assert!(
        lab::exec_ok(SERVER, &["test", "-f", &format!("{FOLDER}/config")]),
        "a standard restic repository"
    );
    // Checked again, it opens what is there.
    let (status, again) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/backups/destinations/{dest_id}/check"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["message"], "Server 2 works.");

    // Backed up now.
    let b = api
        .run_to_end(&format!("/api/v1/backups/apps/{SLUG}"), json!({}))
        .await;
    assert_eq!(b["state"], "running", "{b}");
    assert!(b["message"].as_str().unwrap().contains("Backed up"), "{b}");
    let listed = api.get(&format!("/api/v1/backups/apps/{SLUG}")).await;
    let snapshots = listed["snapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 1, "{listed}");
    let snapshot = snapshots[0]["id"].as_str().unwrap().to_string();
    let run = &listed["runs"][0];
    assert_eq!(run["state"], "done", "{listed}");
    // restic 0.14's summary names the snapshot by its short id.
    assert!(
        snapshot.starts_with(run["snapshot_id"].as_str().unwrap()),
        "{listed}"
    );
    assert!(run["files"].as_i64().unwrap() >= 302, "{run}");

    // A second backup of data the app cannot start with (its health page gone), then the
    // data changes on: restoring that backup fails the check and switches back.
    in_volume("rm /d/health");
    let broken = api
        .run_to_end(&format!("/api/v1/backups/apps/{SLUG}"), json!({}))
        .await;
    assert_eq!(broken["state"], "running", "{broken}");
    in_volume("echo ok > /d/health && echo later > /d/later");
    let current = listing();
    let listed = api.get(&format!("/api/v1/backups/apps/{SLUG}")).await;
    let snapshots = listed["snapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 2, "{listed}");
    let bad = snapshots
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .find(|id| *id != snapshot)
        .unwrap()
        .to_string();
    let r = api
        .run_to_end(
            &format!("/api/v1/backups/apps/{SLUG}/restore"),
            json!({"destination_id": dest_id, "snapshot": bad}),
        )
        .await;
    assert_eq!(r["state"], "rolled_back", "{r}");
    assert_eq!(listing(), current, "switched back to the data it had");
    let app = api.get(&format!("/api/v1/applications/{SLUG}")).await;
    assert_eq!(app["deployed"]["state"], "running", "{app}");

    // The data changes (files gone, changed, added), then comes back as it was.
    in_volume(
        "rm -rf /d/a/b && echo changed > /d/a/f5 && echo new > /d/added && chmod 777 /d/a/f1",
    );
    assert_ne!(listing(), before);
    let r = api
        .run_to_end(
            &format!("/api/v1/backups/apps/{SLUG}/restore"),
            json!({"destination_id": dest_id, "snapshot": snapshot}),
        )
        .await;
    assert_eq!(r["state"], "running", "{r}");
    assert_eq!(
        listing(),
        before,
        "restored byte for byte, with modes and owners"
    );
    let app = api.get(&format!("/api/v1/applications/{SLUG}")).await;
    assert_eq!(app["deployed"]["state"], "running", "{app}");
    // The data from before the restore goes once the app answers (just after the job says
    // it is done).
    eventually(
        "the data from before the restore is gone",
        Duration::from_secs(30),
        || async {
            let volumes = lab::exec(DEVICE, &["docker", "volume", "ls", "-q"]);
            if volumes.contains(&format!("homelab-{SLUG}_data-restore")) {
                Err(volumes)
            } else {
                Ok(())
            }
        },
    )
    .await;

    // A bad snapshot id never reaches a command line.
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/backups/apps/{SLUG}/restore"),
            Some(json!({"destination_id": dest_id, "snapshot": "--target=/"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");

    // A second destination on the same folder has a password of its own: it cannot open
    // the first one's backups, and says so.
    let (status, other) = api
        .send(
            reqwest::Method::POST,
            "/api/v1/backups/destinations",
            Some(
                json!({"name": "Same folder", "kind": "sftp", "host": lab::ip(SERVER),
                        "user": lab::user(), "password": pw, "path": FOLDER}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{other}");
    let (status, refused) = api
        .send(
            reqwest::Method::POST,
            &format!(
                "/api/v1/backups/destinations/{}/check",
                other["id"].as_i64().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("does not open"),
        "{refused}"
    );

    let (status, body) = api
        .delete(&format!("/api/v1/applications/{SLUG}?delete_data=true"))
        .await;
    assert_eq!(status, 200, "{body}");
    lab::exec(SERVER, &["rm", "-rf", FOLDER]);
}
