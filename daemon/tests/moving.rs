//! Moving an app to another device on the real lab (real restic, OpenSSH, Docker and Caddy):
//! an app with a name and many files is moved from one device to another through an SSH
//! server's backup store. A move that fails on the new device leaves the app where it was,
//! running and answering by its name, with nothing left on the new device; a move that works
//! has the data byte for byte on the new device, the name answering there over HTTPS, and
//! nothing of the app left on the old one. A move back from an older backup (as when the old
//! device is gone) brings exactly that backup's data.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::json;

const STUB: &str = "homelab-lab/app-stub:1";
const FROM: &str = "server-01";
const TO: &str = "pi-4";
/// The SSH server the data travels through.
const SERVER: &str = "server-02";
const FOLDER: &str = "/home/homelab/homelab-move-test";
const SLUG: &str = "lab-move";
const NAME: &str = "lab-move.local";

/// GET https://NAME/health at a device's address, trusting only the homelab's root.
fn https_health(ip: &str, root: &Path) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--resolve"])
        .arg(format!("{NAME}:443:{ip}"))
        .arg("--cacert")
        .arg(root)
        .arg(format!("https://{NAME}/health"))
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

/// What of the app is on a device: its containers, volumes and folder.
fn traces(device: &str) -> String {
    // A fixed script; the label and folder arrive as its arguments.
    const TRACES: &str = "docker ps -aq --filter \"$1\"; docker volume ls -q --filter name=\"$2\"; \
        ls -d \"$3\" 2>/dev/null; true";
    lab::exec(
        device,
        &[
            "sh",
            "-c",
            TRACES,
            "traces",
            &format!("label=com.docker.compose.project=homelab-{SLUG}"),
            &format!("homelab-{SLUG}_"),
            &format!("/opt/homelab/apps/{SLUG}"),
        ],
    )
    .trim()
    .to_string()
}

/// Starts a move and waits for its end: undone, or done with the old copy removed (the
/// job says "running" once the app runs on the new device, then removes the old copy).
async fn move_to_end(api: &Api<'_>, body: serde_json::Value) -> serde_json::Value {
    let (status, started) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/backups/apps/{SLUG}/move"),
            Some(body),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    let id = started["deployment_id"].as_i64().unwrap();
    api.wait_for(id, "the move's end", Duration::from_secs(300), |d| {
        matches!(d["state"].as_str(), Some("rolled_back" | "failed"))
            || (d["state"] == "running" && d["progress"] == 100)
    })
    .await
}

fn clean(device: &str) {
    lab::clean_app(device, SLUG);
    const CLEAN: &str = "docker ps -aq --filter label=com.docker.compose.project=homelab-proxy \
        | xargs -r docker rm -f; rm -rf /opt/homelab/proxy; true";
    lab::exec(device, &["sh", "-c", CLEAN]);
}

#[tokio::test]
async fn an_app_moves_to_another_device_with_its_data_and_its_name() {
    let data = data_dir("moving");
    stand_in::volume_app_recipe(&data, SLUG, 18321);
    for device in [FROM, TO] {
        clean(device);
    }
    lab::exec(SERVER, &["rm", "-rf", FOLDER]);
    // On the new device the app's image is first one that never answers (restic's, which
    // exits at once): the first move fails there after the app stopped on the old one.
    assert!(lab::exec_ok(
        FROM,
        &["docker", "tag", STUB, &format!("example/{SLUG}:1")]
    ));
    assert!(lab::exec_ok(
        TO,
        &[
            "docker",
            "tag",
            "restic/restic:0.14.0",
            &format!("example/{SLUG}:1")
        ]
    ));
    let mut opts = Options::new("moving");
    opts.data = Some(data.clone());
    opts.poll_interval = Duration::from_secs(3600);
    opts.health_timeout = Duration::from_secs(20);
    // The box announces names on the lab's network, as it would on a home LAN.
    opts.mdns_interfaces = Some(vec!["hlab0".into()]);
    let s = start_with(opts).await;
    let (session, _) = s.claim().await;
    let api = Api {
        token: s.api_token(&session, "moving").await,
        s: &s,
    };
    let from = add_lab_device(&s, &session, "Server 1", FROM).await;
    let to = add_lab_device(&s, &session, "Pi", TO).await;
    let root_pem = s
        .get("/settings/trust/homelab-root.pem", &session)
        .await
        .text()
        .await
        .unwrap();
    let root = data.join("homelab-root.pem");
    std::fs::write(&root, &root_pem).unwrap();

    let d = api.deploy_to_end(SLUG, json!({"device_id": from})).await;
    assert_eq!(d["state"], "running", "{d}");
    stand_in::fill_volume(FROM, SLUG);
    let before = stand_in::volume_listing(FROM, SLUG);
    let (ok, body) = https_health(&lab::ip(FROM), &root);
    assert!(ok && body.trim() == "ok", "named on the old device: {body}");

    // Without a place for backups there is no move, and it says what to do.
    let path = format!("/api/v1/backups/apps/{SLUG}/move");
    let (status, refused) = api
        .send(reqwest::Method::POST, &path, Some(json!({"device_id": to})))
        .await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused
            .to_string()
            .contains("add a place for backups first"),
        "{refused}"
    );
    let (status, dest) = api
        .send(
            reqwest::Method::POST,
            "/api/v1/backups/destinations",
            Some(
                json!({"name": "Server 2", "kind": "sftp", "host": lab::ip(SERVER),
                        "user": lab::user(), "password": lab::password(), "path": FOLDER}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{dest}");
    // Moving to where it already is is refused.
    let (status, same) = api
        .send(
            reqwest::Method::POST,
            &path,
            Some(json!({"device_id": from})),
        )
        .await;
    assert_eq!(status, 422, "{same}");

    // 1. It does not start on the new device: the move is undone, the app runs on the old
    //    device again under its name, and nothing of it stays on the new one.
    let failed = move_to_end(&api, json!({"device_id": to})).await;
    assert_eq!(failed["state"], "rolled_back", "{failed}");
    let stopped_and_started = failed["steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["step"] == "move-stop" && s["status"] == "undone");
    assert!(
        stopped_and_started,
        "stopped there, started again: {failed}"
    );
    let app = api.get(&format!("/api/v1/applications/{SLUG}")).await;
    assert_eq!(app["deployed"]["device_id"], from, "{app}");
    assert_eq!(app["deployed"]["state"], "running", "{app}");
    assert_eq!(traces(TO), "", "nothing left on the new device");
    assert_eq!(stand_in::volume_listing(FROM, SLUG), before);
    let (ok, body) = https_health(&lab::ip(FROM), &root);
    assert!(ok, "answers by its name on the old device again: {body}");

    // A volume of the app's name on the new device that Compose did not make (someone's
    // data) stops the move before anything changes, and is left as it was.
    let volume = format!("homelab-{SLUG}_data");
    assert!(lab::exec_ok(TO, &["docker", "volume", "create", &volume]));
    let taken = move_to_end(&api, json!({"device_id": to})).await;
    assert_eq!(taken["state"], "rolled_back", "{taken}");
    assert!(
        taken["message"]
            .as_str()
            .unwrap()
            .contains("already has a volume named"),
        "{taken}"
    );
    assert!(lab::exec_ok(TO, &["docker", "volume", "inspect", &volume]));
    assert!(lab::exec_ok(TO, &["docker", "volume", "rm", &volume]));
    let app = api.get(&format!("/api/v1/applications/{SLUG}")).await;
    assert_eq!(app["deployed"]["state"], "running", "{app}");

    // 2. With the right image there, it moves: data byte for byte, the name answers on the new
    //    device, and the old copy is gone.
    assert!(lab::exec_ok(
        TO,
        &["docker", "tag", STUB, &format!("example/{SLUG}:1")]
    ));
    let moved = move_to_end(&api, json!({"device_id": to})).await;
    assert_eq!(moved["state"], "running", "{moved}");
    assert!(
        moved["message"].as_str().unwrap().starts_with("Moved"),
        "{moved}"
    );
    let app = api.get(&format!("/api/v1/applications/{SLUG}")).await;
    assert_eq!(app["deployed"]["device_id"], to, "{app}");
    assert_eq!(app["deployed"]["url"], format!("https://{NAME}/"), "{app}");
    assert_eq!(stand_in::volume_listing(TO, SLUG), before, "byte for byte");
    let (ok, body) = https_health(&lab::ip(TO), &root);
    assert!(ok && body.trim() == "ok", "named on the new device: {body}");
    assert_eq!(traces(FROM), "", "the old copy is removed");
    let (ok, _) = https_health(&lab::ip(FROM), &root);
    assert!(!ok, "the old device no longer serves the name");
    let backups = api.get(&format!("/api/v1/backups/apps/{SLUG}")).await;
    let moved_with = backups["runs"][0]["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();

    // 3. Changed on the new device. A move from a chosen backup is refused while that device
    //    answers (its data is newer than any backup)...
    stand_in::in_app_volume(TO, SLUG, "echo later > /d/later && rm -rf /d/a/b");
    let changed = stand_in::volume_listing(TO, SLUG);
    let (status, refused) = api
        .send(
            reqwest::Method::POST,
            &path,
            Some(json!({"device_id": from, "snapshot": moved_with})),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused.to_string().contains("device answers"), "{refused}");
    //    ... and once the device is gone (its cable pulled), the move brings exactly that
    //    backup's data back elsewhere and says what stays on the lost device.
    let cable = lab::unplug(TO);
    let back = move_to_end(&api, json!({"device_id": from, "snapshot": moved_with})).await;
    assert_eq!(back["state"], "running", "{back}");
    assert!(
        back["message"]
            .as_str()
            .unwrap()
            .contains("could not be removed"),
        "{back}"
    );
    assert_eq!(stand_in::volume_listing(FROM, SLUG), before);
    let (ok, body) = https_health(&lab::ip(FROM), &root);
    assert!(ok, "named on the old device again: {body}");
    // Back on the network, the lost device still has its copy and its newer data: nothing
    // there was deleted.
    cable.on();
    assert_eq!(stand_in::volume_listing(TO, SLUG), changed);
    clean(TO);

    let (status, body) = api
        .delete(&format!("/api/v1/applications/{SLUG}?delete_data=true"))
        .await;
    assert_eq!(status, 200, "{body}");
    lab::exec(SERVER, &["rm", "-rf", FOLDER]);
}

#[tokio::test]
async fn an_app_in_the_shared_database_moves_row_for_row() {
    // Devices of its own: each daemon clears backup containers it did not start.
    const FROM_DB: &str = "nas-01";
    const TO_DB: &str = "server-02";
    const FOLDER_DB: &str = "/home/homelab/homelab-move-db-test";
    const PG: &str = "lab-move-pg";
    const DB: &str = "hl_lab_move_pg";
    let data = data_dir("moving-db");
    pooled::recipe(&data, PG, "postgres", 18322);
    for device in [FROM_DB, TO_DB] {
        lab::clean_app(device, PG);
        assert!(lab::exec_ok(
            device,
            &["docker", "tag", STUB, &format!("example/{PG}:1")]
        ));
    }
    lab::exec(SERVER, &["rm", "-rf", FOLDER_DB]);
    let mut opts = Options::new("moving-db");
    opts.data = Some(data);
    opts.poll_interval = Duration::from_secs(3600);
    let s = start_with(opts).await;
    let (session, _) = s.claim().await;
    let api = Api {
        token: s.api_token(&session, "moving-db").await,
        s: &s,
    };
    let from = add_lab_device(&s, &session, "NAS", FROM_DB).await;
    let to = add_lab_device(&s, &session, "Server 2", TO_DB).await;
    let (status, dest) = api
        .send(
            reqwest::Method::POST,
            "/api/v1/backups/destinations",
            Some(
                json!({"name": "Server 2's disk", "kind": "sftp", "host": lab::ip(SERVER),
                        "user": lab::user(), "password": lab::password(), "path": FOLDER_DB}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{dest}");
    let d = api
        .deploy_to_end(PG, json!({"device_id": from, "by_address": true}))
        .await;
    assert_eq!(d["state"], "running", "{d}");
    // A database kept from an earlier run of this test is emptied first.
    for device in [FROM_DB, TO_DB] {
        pooled::app_sql(device, "postgres", DB, "DROP TABLE IF EXISTS items;");
    }
    pooled::app_sql(
        FROM_DB,
        "postgres",
        DB,
        "CREATE TABLE items (id serial PRIMARY KEY, v text); \
         INSERT INTO items (v) SELECT md5(i::text) FROM generate_series(1, 500) i;",
    );
    let before = pooled::fingerprint(FROM_DB, "postgres", DB);
    assert!(before.starts_with("500 125250 "), "{before}");

    let path = format!("/api/v1/backups/apps/{PG}/move");
    let (status, started) = api
        .send(reqwest::Method::POST, &path, Some(json!({"device_id": to})))
        .await;
    assert_eq!(status, 202, "{started}");
    let id = started["deployment_id"].as_i64().unwrap();
    let moved = api
        .wait_for(id, "the move's end", Duration::from_secs(300), |d| {
            matches!(d["state"].as_str(), Some("rolled_back" | "failed"))
                || (d["state"] == "running" && d["progress"] == 100)
        })
        .await;
    assert_eq!(moved["state"], "running", "{moved}");
    assert_eq!(
        pooled::fingerprint(TO_DB, "postgres", DB),
        before,
        "row for row on the new device"
    );
    let owner = pooled::app_sql(
        TO_DB,
        "postgres",
        DB,
        "SELECT tableowner FROM pg_tables WHERE tablename = 'items'",
    );
    assert_eq!(owner, DB, "the app's login owns its tables there");
    let app = api.get(&format!("/api/v1/applications/{PG}")).await;
    assert_eq!(app["deployed"]["device_id"], to, "{app}");
    assert_eq!(app["deployed"]["state"], "running", "{app}");
    // Its database is gone from the old device's shared instance.
    let left = lab::exec(
        FROM_DB,
        &[
            "docker",
            "exec",
            "-u",
            "postgres",
            "homelab-postgres",
            "psql",
            "-XAt",
            "-c",
            "SELECT count(*) FROM pg_database WHERE datname = 'hl_lab_move_pg'",
        ],
    );
    assert!(left.trim() == "0" || left.trim().is_empty(), "{left}");
    let (status, body) = api
        .delete(&format!("/api/v1/applications/{PG}?delete_data=true"))
        .await;
    assert_eq!(status, 200, "{body}");
    // The shared instance it started on server-02 goes too: later tests (the browser walk)
    // count what runs there.
    let (status, body) = api
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/devices/{to}/shared-databases/postgres"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    lab::exec(SERVER, &["rm", "-rf", FOLDER_DB]);
}
