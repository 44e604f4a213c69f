//! Backups on the real lab with real restic (the lab's Debian 0.14.0 under the official
//! image's name): an SSH server (another lab device) added as a destination with its login
//! used once, its backup store made by "Test connection", an app's volume with many files of
//! many sizes, modes and owners backed up from its device, changed, and restored in place
//! byte for byte; a second destination on the same folder (another password) is refused with
//! the reason. The keep rules (restic forget) run at most once a day per app and destination:
//! not after the app's first backup there, nor after another one the same day.

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
/// Where the apps with shared databases run (their own device: each daemon clears backup
/// containers it did not start, so two daemons must not back up on one device at once).
const DB_DEVICE: &str = "server-01";

fn recipe(data: &std::path::Path) {
    stand_in::volume_app_recipe(data, SLUG, 18301);
}

/// Runs a fixed script in a throwaway container that mounts the app's volume at /d.
fn in_volume(script: &str) -> String {
    stand_in::in_app_volume(DEVICE, SLUG, script)
}

/// The app's volume, entry by entry (see `stand_in::volume_listing`).
fn listing() -> String {
    stand_in::volume_listing(DEVICE, SLUG)
}

/// What a job noted about the keep rules: restic forget's runs (with their outcome) and the
/// times it was not due.
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
    // The restores meant to fail wait this long for the stub, which answers within 2 s.
    opts.health_timeout = Duration::from_secs(20);
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
    stand_in::fill_volume(DEVICE, SLUG);
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
    // Its repository password and key are the daemon's own: the leak scan looks for them too.
    assert_eq!(
        remember_sealed(&s.data, &format!("backup-destination:{dest_id}")),
        2
    );
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
    // The app's first backup there: nothing to forget yet, so restic forget does not run.
    let (forgot, skipped) = keep_rule_notes(&b);
    assert!(forgot.is_empty(), "{forgot:?}");
    assert_eq!(skipped.len(), 1, "{b}");
    assert!(skipped[0].contains("first backup"), "{skipped:?}");
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
    // Tested again: what it holds by restic's own figures, and the server's disk.
    let (status, _) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/backups/destinations/{dest_id}/check"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let list = api.get("/api/v1/backups/destinations").await;
    let space = &list["destinations"][0]["space"];
    let (stored, logical) = (
        space["stored"].as_i64().unwrap(),
        space["logical"].as_i64().unwrap(),
    );
    assert!(
        logical >= run["bytes"].as_i64().unwrap() && stored > 0,
        "{list}"
    );
    assert!(
        space["disk_total"].as_i64().unwrap() > space["disk_free"].as_i64().unwrap()
            && space["disk_free"].as_i64().unwrap() > 0,
        "the SSH server's disk: {list}"
    );
    // The lab's disk is this machine's, so how full it is depends on the machine: the
    // words follow the figures (the threshold itself is tested in backup_failures.rs).
    let (total, free) = (
        space["disk_total"].as_i64().unwrap(),
        space["disk_free"].as_i64().unwrap(),
    );
    assert_eq!(
        list["destinations"][0]["filling_up"].is_null(),
        free * 100 > total * 10,
        "{list}"
    );

    // A second backup of data the app cannot start with (its health page gone), then the
    // data changes on: restoring that backup fails the check and switches back.
    in_volume("rm /d/health");
    let broken = api
        .run_to_end(&format!("/api/v1/backups/apps/{SLUG}"), json!({}))
        .await;
    assert_eq!(broken["state"], "running", "{broken}");
    // A second backup within the day: the keep rules are not due, restic forget does not run.
    let (forgot, skipped) = keep_rule_notes(&broken);
    assert!(forgot.is_empty(), "{forgot:?}");
    assert_eq!(skipped.len(), 1, "{broken}");
    assert!(skipped[0].contains("not yet"), "{skipped:?}");
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
        .delete(&format!(
            "/api/v1/backups/destinations/{}",
            other["id"].as_i64().unwrap()
        ))
        .await;
    assert_eq!(status, 200, "{body}");

    let token = api.token.clone();
    let s = schedules_retention_and_upkeep(s, &token, dest_id).await;
    let api = Api { token, s: &s };
    let (status, body) = api
        .delete(&format!("/api/v1/applications/{SLUG}?delete_data=true"))
        .await;
    assert_eq!(status, 200, "{body}");
    lab::exec(SERVER, &["rm", "-rf", FOLDER]);
}

/// The app's own schedule (a bad one refused with the fix), three nights missed while the
/// box was off made up by one backup soon after it starts, the keep rules applied to it, the
/// destination's weekly upkeep (prune and check) run by the scheduler, and damaged data
/// found by a full check and shown with the fix. Returns the restarted daemon.
async fn schedules_retention_and_upkeep(s: TestServer, token: &str, dest_id: i64) -> TestServer {
    let api = Api {
        token: token.to_string(),
        s: &s,
    };
    let policy_path = format!("/api/v1/backups/apps/{SLUG}/policy");
    let (status, refused) = api
        .send(
            reqwest::Method::PUT,
            &policy_path,
            Some(json!({"schedule": "* 3 * * *"})),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused.to_string().contains("at most once an hour"),
        "{refused}"
    );
    let (status, own) = api
        .send(
            reqwest::Method::PUT,
            &policy_path,
            Some(json!({"schedule": "30 3 * * *", "keep_within_days": 0, "keep_daily": 1, "keep_weekly": 0, "keep_monthly": 0})),
        )
        .await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["own"], true, "{own}");
    assert!(
        own["next_at"].as_i64().unwrap() > chrono::Utc::now().timestamp(),
        "{own}"
    );
    let default = api.get("/api/v1/backups/policy").await;
    assert_eq!(default["words"], "Every day at 02:00", "{default}");
    assert_eq!(default["own"], false, "{default}");
    let before = api.get(&format!("/api/v1/backups/apps/{SLUG}")).await;
    assert_eq!(before["snapshots"].as_array().unwrap().len(), 2, "{before}");
    let last_run = before["runs"][0]["id"].as_i64().unwrap();

    // The box is off through three nights: its memory of the last scheduled backup is older.
    let data = s.data.clone();
    s.stop().await.unwrap();
    let three_nights_ago = chrono::Utc::now().timestamp() - 3 * 24 * 3600;
    {
        let conn = rusqlite::Connection::open(data.join(homelabd::store::DB_FILE)).unwrap();
        conn.execute(
            "INSERT INTO backup_schedule (slug, handled_at) VALUES (?1, ?2)
             ON CONFLICT (slug) DO UPDATE SET handled_at = ?2",
            rusqlite::params![SLUG, three_nights_ago],
        )
        .unwrap();
    }
    let mut opts = Options::new("backups");
    opts.data = Some(data.clone());
    opts.poll_interval = Duration::from_secs(3600);
    opts.backup_schedule_after = Some(Duration::from_secs(1));
    let s = start_with(opts).await;
    let api = Api {
        token: token.to_string(),
        s: &s,
    };
    // Measured: the backup job takes ~10 s here; the scheduler looks within a second.
    let listed = eventually(
        "the missed backup is made after the start",
        Duration::from_secs(120),
        || async {
            let listed = api.get(&format!("/api/v1/backups/apps/{SLUG}")).await;
            let run = &listed["runs"][0];
            if run["id"].as_i64().unwrap_or(0) > last_run && run["state"] == "done" {
                Ok(listed)
            } else {
                Err(listed.to_string())
            }
        },
    )
    .await;
    // One run for three missed nights; and the keep rule (one a day) left only it: the new
    // policy made the rules due again, so restic forget ran after it, and that is remembered.
    let runs = listed["runs"].as_array().unwrap();
    let scheduled = api
        .get(&format!(
            "/api/v1/deployments/{}",
            runs[0]["deployment_id"].as_i64().unwrap()
        ))
        .await;
    let (forgot, skipped) = keep_rule_notes(&scheduled);
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(forgot.len(), 1, "{scheduled}");
    assert!(forgot[0].ends_with("→ \"exit 0\""), "{forgot:?}");
    assert_eq!(
        runs.iter()
            .filter(|r| r["id"].as_i64().unwrap() > last_run)
            .count(),
        1,
        "{listed}"
    );
    let snapshots = listed["snapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 1, "forgotten by the keep rules: {listed}");
    assert!(
        snapshots[0]["id"]
            .as_str()
            .unwrap()
            .starts_with(runs[0]["snapshot_id"].as_str().unwrap()),
        "{listed}"
    );
    let handled: i64 = {
        let conn = rusqlite::Connection::open_with_flags(
            data.join(homelabd::store::DB_FILE),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        conn.query_row(
            "SELECT handled_at FROM backup_schedule WHERE slug = ?1",
            [SLUG],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert!(
        handled > three_nights_ago + 2 * 24 * 3600,
        "the latest time is handled"
    );
    let forgot_at: i64 = {
        let conn = rusqlite::Connection::open_with_flags(
            data.join(homelabd::store::DB_FILE),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        conn.query_row(
            "SELECT forgot_at FROM backup_forgets WHERE slug = ?1 AND destination_id = ?2",
            rusqlite::params![SLUG, dest_id],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert!(
        forgot_at >= runs[0]["started_at"].as_i64().unwrap(),
        "the forget is remembered: {forgot_at} {listed}"
    );

    // The destination's first weekly upkeep follows once the backup is done.
    let destination = || async {
        let list = api.get("/api/v1/backups/destinations").await;
        list["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == dest_id)
            .cloned()
            .unwrap()
    };
    let upkept = eventually(
        "the weekly prune and check",
        Duration::from_secs(120),
        || async {
            let d = destination().await;
            if d["maintained_at"].as_i64().unwrap() > 0 {
                Ok(d)
            } else {
                Err(d.to_string())
            }
        },
    )
    .await;
    assert_eq!(upkept["damage"], "", "{upkept}");

    // "Back up now" the same day: the rules are not due again, so the scheduled backup's
    // snapshot stays beside the new one for now although the rule keeps one a day (the next
    // day's forget drops it; see deploy/backing.rs's FORGET_EVERY).
    let now = api
        .run_to_end(&format!("/api/v1/backups/apps/{SLUG}"), json!({}))
        .await;
    assert_eq!(now["state"], "running", "{now}");
    let (forgot, skipped) = keep_rule_notes(&now);
    assert!(forgot.is_empty(), "{forgot:?}");
    assert!(
        skipped.len() == 1 && skipped[0].contains("not yet"),
        "{now}"
    );
    let listed = api.get(&format!("/api/v1/backups/apps/{SLUG}")).await;
    assert_eq!(listed["snapshots"].as_array().unwrap().len(), 2, "{listed}");

    // Damage on the server's disk: bytes in the middle of a pack change.
    // Fixed scripts; the folder and the pack arrive as their arguments.
    let pack = lab::exec(
        SERVER,
        &[
            "sh",
            "-c",
            "find \"$1/data\" -type f -size +1000k | head -n 1",
            "sh",
            FOLDER,
        ],
    );
    let pack = pack.trim();
    assert!(!pack.is_empty(), "a pack of the backup's data");
    assert!(lab::exec_ok(
        SERVER,
        &[
            "sh",
            "-c",
            "head -c 64 /dev/urandom | dd of=\"$1\" bs=1 seek=500000 conv=notrunc 2>/dev/null",
            "sh",
            pack,
        ]
    ));
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/backups/destinations/{dest_id}/maintain"),
            Some(json!({"full": true})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let damaged = eventually(
        "the full check finds the damage",
        Duration::from_secs(120),
        || async {
            let d = destination().await;
            if d["damage"].as_str().unwrap_or_default().is_empty() {
                Err(d.to_string())
            } else {
                Ok(d)
            }
        },
    )
    .await;
    let words = damaged["damage"].as_str().unwrap();
    assert!(
        words.contains("is damaged") && words.contains("Back up now"),
        "{words}"
    );
    s
}

fn app_sql(engine: &str, db: &str, sql: &str) -> String {
    pooled::app_sql(DB_DEVICE, engine, db, sql)
}

fn fingerprint(engine: &str, db: &str) -> String {
    pooled::fingerprint(DB_DEVICE, engine, db)
}

fn pooled_recipe(data: &std::path::Path, slug: &str, engine: &str, port: u16) {
    pooled::recipe(data, slug, engine, port)
}

#[tokio::test]
async fn apps_in_the_shared_databases_are_restored_row_for_row() {
    const FOLDER_DB: &str = "/home/homelab/homelab-backups-db-test";
    let data = data_dir("backups-db");
    let engines = [
        ("postgres", "lab-backup-pg", 18311),
        ("mariadb", "lab-backup-maria", 18312),
    ];
    for (engine, slug, port) in engines {
        pooled_recipe(&data, slug, engine, port);
        lab::clean_app(DB_DEVICE, slug);
        assert!(lab::exec_ok(
            DB_DEVICE,
            &["docker", "tag", STUB, &format!("example/{slug}:1")]
        ));
    }
    lab::exec(SERVER, &["rm", "-rf", FOLDER_DB]);
    let mut opts = Options::new("backups-db");
    opts.data = Some(data);
    opts.poll_interval = Duration::from_secs(3600);
    // The restores meant to fail wait this long for the stub, which answers within 2 s.
    opts.health_timeout = Duration::from_secs(20);
    let s = start_with(opts).await;
    let (session, _) = s.claim().await;
    let api = Api {
        token: s.api_token(&session, "backups-db").await,
        s: &s,
    };
    let server = add_lab_device(&s, &session, "Server 1", DB_DEVICE).await;
    let (status, dest) = api
        .send(
            reqwest::Method::POST,
            "/api/v1/backups/destinations",
            Some(
                json!({"name": "Server 2", "kind": "sftp", "host": lab::ip(SERVER),
                        "user": lab::user(), "password": lab::password(), "path": FOLDER_DB}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{dest}");
    let dest_id = dest["id"].as_i64().unwrap();

    for (engine, slug, _) in engines {
        let db = format!("hl_{}", slug.replace('-', "_"));
        let d = api
            .deploy_to_end(slug, json!({"device_id": server, "by_address": true}))
            .await;
        assert_eq!(d["state"], "running", "{d}");
        let create = match engine {
            "postgres" => {
                "CREATE TABLE items (id serial PRIMARY KEY, v text); \
                 INSERT INTO items (v) SELECT md5(i::text) FROM generate_series(1, 500) i;"
            }
            _ => {
                "CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, v TEXT); \
                 INSERT INTO items (v) SELECT MD5(seq) FROM seq_1_to_500;"
            }
        };
        // A database kept from an earlier run of this test is emptied first.
        app_sql(
            engine,
            &db,
            "DROP TABLE IF EXISTS items; DROP TABLE IF EXISTS extra;",
        );
        app_sql(engine, &db, create);
        let at_a = fingerprint(engine, &db);
        assert!(at_a.starts_with("500 125250 "), "{at_a}");
        let a = api
            .run_to_end(
                &format!("/api/v1/backups/apps/{slug}"),
                json!({"destination_id": dest_id}),
            )
            .await;
        assert_eq!(a["state"], "running", "{engine}: {a}");

        // A second backup with more rows and without the health page: restoring it fails.
        app_sql(
            engine,
            &db,
            "INSERT INTO items (v) VALUES ('later'), ('later still');",
        );
        stand_in::in_app_volume(DB_DEVICE, slug, "rm /d/health");
        let b = api
            .run_to_end(
                &format!("/api/v1/backups/apps/{slug}"),
                json!({"destination_id": dest_id}),
            )
            .await;
        assert_eq!(b["state"], "running", "{engine}: {b}");
        stand_in::in_app_volume(DB_DEVICE, slug, "echo ok > /d/health");
        let listed = api.get(&format!("/api/v1/backups/apps/{slug}")).await;
        let runs = listed["runs"].as_array().unwrap();
        let (snap_b, snap_a) = (
            runs[0]["snapshot_id"].as_str().unwrap().to_string(),
            runs[1]["snapshot_id"].as_str().unwrap().to_string(),
        );

        // The data changes on: rows go, a table comes.
        app_sql(
            engine,
            &db,
            "DELETE FROM items WHERE id < 100; CREATE TABLE extra (x INT);",
        );
        let now = fingerprint(engine, &db);
        let r = api
            .run_to_end(
                &format!("/api/v1/backups/apps/{slug}/restore"),
                json!({"destination_id": dest_id, "snapshot": snap_b}),
            )
            .await;
        assert_eq!(r["state"], "rolled_back", "{engine}: {r}");
        assert_eq!(
            fingerprint(engine, &db),
            now,
            "{engine}: the database as it was"
        );
        let tables = match engine {
            "postgres" => {
                "SELECT string_agg(tablename || ':' || tableowner, ' ' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'"
            }
            _ => {
                "SELECT GROUP_CONCAT(table_name ORDER BY table_name SEPARATOR ' ') FROM information_schema.tables WHERE table_schema = DATABASE()"
            }
        };
        assert!(app_sql(engine, &db, tables).contains("extra"), "{engine}");

        let r = api
            .run_to_end(
                &format!("/api/v1/backups/apps/{slug}/restore"),
                json!({"destination_id": dest_id, "snapshot": snap_a}),
            )
            .await;
        assert_eq!(r["state"], "running", "{engine}: {r}");
        assert_eq!(fingerprint(engine, &db), at_a, "{engine}: row for row");
        let after = app_sql(engine, &db, tables);
        assert!(!after.contains("extra"), "{engine}: {after}");
        if engine == "postgres" {
            assert_eq!(
                after,
                format!("items:{db}"),
                "the app's login owns what came back"
            );
        }
        let app = api.get(&format!("/api/v1/applications/{slug}")).await;
        assert_eq!(app["deployed"]["state"], "running", "{app}");
        let volumes = lab::exec(DB_DEVICE, &["docker", "volume", "ls", "-q"]);
        assert!(
            !volumes.contains("homelab-restore-db-") && !volumes.contains("homelab-kept-db-"),
            "{volumes}"
        );
        let (status, body) = api
            .delete(&format!("/api/v1/applications/{slug}?delete_data=true"))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    lab::exec(SERVER, &["rm", "-rf", FOLDER_DB]);
}
