//! Browsing an app's backups on the real lab (restic 0.14 on nas-01, the backups on
//! server-02 over SFTP): a folder's entries with their sizes and permissions, a nested folder
//! opened, a 3 MB random file downloaded byte for byte, paths outside the backup and another
//! app's snapshot refused in words, an abandoned download's restic container gone within
//! seconds, and every route refused without a session.
//!
//! Only nas-01 runs apps here and only server-02's `homelab-browse-test` folder holds the
//! backups: other tests use the other devices meanwhile, and a daemon removes the backup
//! containers it did not start on the devices it works on.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const STUB: &str = "homelab-lab/app-stub:1";
const DEVICE: &str = "nas-01";
const SERVER: &str = "server-02";
const FOLDER: &str = "/home/homelab/homelab-browse-test";
const SLUG: &str = "lab-browse";
/// Another app whose backup goes to the same place: its snapshot is not `SLUG`'s to open.
const OTHER: &str = "lab-browse-other";
/// A file far bigger than everything between restic and the test's client can hold (the
/// channel, hyper's and the kernel's buffers, the SSH window): a download of it abandoned
/// after its first chunk is still running on the device.
const HUGE: u64 = 64 << 20;

fn in_volume(slug: &str, script: &str) -> String {
    stand_in::in_app_volume(DEVICE, slug, script)
}

/// restic containers (of any daemon) on the device, by name.
fn backup_containers() -> String {
    lab::exec(
        DEVICE,
        &[
            "docker",
            "ps",
            "-a",
            "--filter",
            "label=homelab.backup",
            "--format",
            "{{.Names}} {{.State}}",
        ],
    )
    .trim()
    .to_string()
}

fn md5(bytes: &[u8]) -> String {
    let mut child = std::process::Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The entries of a listing by name: (kind, size, mode).
fn by_name(folder: &Value) -> std::collections::BTreeMap<String, (String, u64, String)> {
    folder["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                (
                    e["kind"].as_str().unwrap().to_string(),
                    e["size"].as_u64().unwrap(),
                    e["mode"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

fn query(path: &str) -> String {
    format!("path={}", path.replace('/', "%2F").replace('.', "%2E"))
}

#[tokio::test]
async fn an_apps_backup_is_browsed_and_one_file_downloaded_byte_for_byte() {
    let data = data_dir("backup-browse");
    stand_in::volume_app_recipe(&data, SLUG, 18331);
    stand_in::volume_app_recipe(&data, OTHER, 18332);
    lab::exec(SERVER, &["rm", "-rf", FOLDER]);
    for slug in [SLUG, OTHER] {
        lab::clean_app(DEVICE, slug);
        assert!(lab::exec_ok(
            DEVICE,
            &["docker", "tag", STUB, &format!("example/{slug}:1")]
        ));
    }
    let mut opts = Options::new("backup-browse");
    opts.data = Some(data);
    opts.poll_interval = Duration::from_secs(3600);
    let s = start_with(opts).await;
    let (session, _) = s.claim().await;
    let api = Api {
        token: s.api_token(&session, "browse").await,
        s: &s,
    };
    let nas = add_lab_device(&s, &session, "NAS", DEVICE).await;
    for slug in [SLUG, OTHER] {
        let d = api
            .deploy_to_end(slug, json!({"device_id": nas, "by_address": true}))
            .await;
        assert_eq!(d["state"], "running", "{d}");
    }
    stand_in::fill_volume(DEVICE, SLUG);
    in_volume(SLUG, &format!("head -c {HUGE} /dev/urandom > /d/huge"));
    in_volume(OTHER, "echo other > /d/only-other");
    let big_md5 = in_volume(SLUG, "md5sum /d/a/b/c/big");
    let big_md5 = big_md5.split_whitespace().next().unwrap().to_string();
    let health_size: u64 = in_volume(SLUG, "stat -c %s /d/health")
        .trim()
        .parse()
        .unwrap();

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
    let dest_id = dest["id"].as_i64().unwrap();
    remember_sealed(&s.data, &format!("backup-destination:{dest_id}"));
    let mut snapshot_of = std::collections::HashMap::new();
    for slug in [SLUG, OTHER] {
        let b = api
            .run_to_end(&format!("/api/v1/backups/apps/{slug}"), json!({}))
            .await;
        assert_eq!(b["state"], "running", "{b}");
        let listed = api.get(&format!("/api/v1/backups/apps/{slug}")).await;
        let snapshots = listed["snapshots"].as_array().unwrap();
        assert_eq!(snapshots.len(), 1, "{listed}");
        snapshot_of.insert(slug, snapshots[0]["id"].as_str().unwrap().to_string());
    }
    let snapshot = snapshot_of[SLUG].clone();
    let api_files = |path: &str| {
        format!(
            "/api/v1/backups/apps/{SLUG}/snapshots/{dest_id}/{snapshot}/files?{}",
            query(path)
        )
    };
    let web = |what: &str, path: &str| {
        format!(
            "/apps/{SLUG}/snapshots/{dest_id}/{snapshot}/{what}?{}",
            query(path)
        )
    };

    // The snapshot list says what each backup holds, with "Browse files".
    let list = s
        .get_text_with(
            &format!("/apps/{SLUG}/snapshots"),
            &session,
            &[("hx-request", "true")],
        )
        .await;
    assert!(list.contains("Browse files"), "{list}");
    assert!(list.contains(" files)") && list.contains(" new"), "{list}");

    // The top: the app's volume (no database: it keeps none).
    let top = api.get(&api_files("/")).await;
    assert_eq!(top["path"], "/", "{top}");
    assert_eq!(top["snapshot"], snapshot.as_str(), "{top}");
    let names: Vec<&str> = top["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["/data/data"], "{top}");

    // The volume's own folder: folders first, each file with its size.
    let volume = api.get(&api_files("/data/data")).await;
    assert_eq!(volume["cut_short"], false, "{volume}");
    let entries = by_name(&volume);
    let kinds: Vec<&str> = volume["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    let first_file = kinds.iter().position(|k| *k != "dir").unwrap();
    assert!(
        kinds[first_file..].iter().all(|k| *k != "dir"),
        "folders first: {kinds:?}"
    );
    assert_eq!(entries["a"].0, "dir");
    assert_eq!(entries["empty"], ("dir".into(), 0, "1777".into()));
    assert_eq!(entries["huge"], ("file".into(), HUGE, "0644".into()));
    assert_eq!(entries["health"].1, health_size);

    // A folder of 300 files of known sizes, and the permissions they were stored with.
    let a = by_name(&api.get(&api_files("/data/data/a/")).await);
    assert_eq!(a.len(), 302, "300 files, `zero` and `b`: {a:?}");
    for i in 0..300u64 {
        let (kind, size, _) = &a[&format!("f{i}")];
        assert_eq!(
            (kind.as_str(), *size),
            ("file", i * i * 37 % 200_000),
            "f{i}"
        );
    }
    assert_eq!(a["zero"], ("file".into(), 0, "0644".into()));
    assert_eq!(a["f1"].2, "0600");
    assert_eq!(a["f2"].2, "0755");
    assert_eq!(a["b"].0, "dir");

    // A nested folder opens in the page (htmx), its file with "Download", in Basic words.
    let part = |path: &str| {
        let url = web("files", path);
        let session = &session;
        let s = &s;
        async move {
            let res = s
                .client
                .get(s.url(&url))
                .header("cookie", &session.cookie)
                .header("hx-request", "true")
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let (status, html) = part("/").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(">Your files</a>"), "{html}");
    let (status, html) = part("/data/data/a/b").await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("Your files</a> › <a") && html.contains(">a</a>"),
        "breadcrumbs: {html}"
    );
    assert!(html.contains("(a link)"), "{html}");
    let (status, html) = part("/data/data/a/b/c").await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("2.9 MB") && html.contains("3000000 bytes"),
        "{html}"
    );
    let download = web("file", "/data/data/a/b/c/big");
    assert!(
        html.contains(&download.replace("%2E", ".").replace('&', "&amp;")),
        "{download} in {html}"
    );
    // The same folder as a page of its own.
    let res = s.get(&web("files", "/data/data/a/b/c"), &session).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("<!doctype html>") && page.contains("Files in lab-browse's backup"),
        "{page}"
    );

    // A download abandoned after its first chunk: its restic container goes within seconds.
    let mut res = s.get(&web("file", "/data/data/huge"), &session).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-length"], HUGE.to_string().as_str());
    let first = res.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    let running = backup_containers();
    assert!(
        running.contains("homelab-restic-dump-lab-browse-") && running.contains("running"),
        "the download's restic runs while it is read: {running}"
    );
    drop(res);
    eventually(
        "the abandoned download's container is removed",
        Duration::from_secs(10),
        || async {
            let left = backup_containers();
            if left.is_empty() { Ok(()) } else { Err(left) }
        },
    )
    .await;

    // A 3 MB random file, byte for byte.
    let res = s.get(&download, &session).await;
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["content-type"], "application/octet-stream");
    assert_eq!(h["content-disposition"], "attachment; filename=\"big\"");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-length"], "3000000");
    let body = res.bytes().await.unwrap();
    assert_eq!(body.len(), 3_000_000);
    assert_eq!(md5(&body), big_md5, "the file as it is in the volume");
    // The body is whole once its last byte is sent; its container goes just after.
    eventually(
        "the finished download's container is removed",
        Duration::from_secs(10),
        || async {
            let left = backup_containers();
            if left.is_empty() { Ok(()) } else { Err(left) }
        },
    )
    .await;

    // Outside the backup, a folder, a made-up id and another app's backup: refused in words.
    for (path, words) in [
        ("/etc/passwd", "/etc/passwd is not in it"),
        ("/data/../etc", "step out of its folder"),
        (
            "/data/data/nothing-here",
            "no folder /data/data/nothing-here",
        ),
    ] {
        let (status, body) = api.send(reqwest::Method::GET, &api_files(path), None).await;
        assert_eq!(status, 422, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{path}: {message}");
    }
    for (path, words) in [
        ("/etc/passwd", "/etc/passwd is not in it"),
        ("/data/../etc", "step out of its folder"),
        ("/data/data/a", "is a folder: open it"),
    ] {
        let res = s.get(&web("file", path), &session).await;
        assert_eq!(res.status(), 422, "{path}");
        let page = res.text().await.unwrap();
        assert!(page.contains(words), "{path}: {page}");
    }
    let other = format!(
        "/api/v1/backups/apps/{SLUG}/snapshots/{dest_id}/{}/files?path=%2F",
        snapshot_of[OTHER]
    );
    let (status, body) = api.send(reqwest::Method::GET, &other, None).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("holds no backup of lab-browse with that id"),
        "{body}"
    );
    let res = s
        .get(
            &format!(
                "/apps/{SLUG}/snapshots/{dest_id}/{}/file?path=%2Fdata%2Fdata%2Fonly-other",
                snapshot_of[OTHER]
            ),
            &session,
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("holds no backup of lab-browse")
    );
    let (status, body) = api
        .send(
            reqwest::Method::GET,
            &format!("/api/v1/backups/apps/{SLUG}/snapshots/{dest_id}/--target=x/files"),
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(backup_containers().is_empty(), "{}", backup_containers());

    // Without a session (or token), nothing.
    for url in [
        web("files", "/data/data"),
        web("file", "/data/data/a/b/c/big"),
    ] {
        let res = s.client.get(s.url(&url)).send().await.unwrap();
        let refused = res.status() == 401
            || (res.status() == 303
                && res.headers()["location"]
                    .to_str()
                    .unwrap()
                    .starts_with("/login"));
        assert!(refused, "{url}: {}", res.status());
    }
    let res = s
        .client
        .get(s.url(&api_files("/data/data")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // An API token opens the JSON listing only, not the browser's download.
    let res = s
        .client
        .get(s.url(&download))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert!(
        [401, 403, 303].contains(&res.status().as_u16()),
        "{}",
        res.status()
    );

    // The destination worked, so backups go straight to it without opening it first; its
    // repository gone since (emptied on the server), the next backup makes it again and runs.
    lab::exec(SERVER, &["rm", "-rf", FOLDER]);
    let again = api
        .run_to_end(&format!("/api/v1/backups/apps/{SLUG}"), json!({}))
        .await;
    assert_eq!(again["state"], "running", "{again}");
    let opened = again["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["what"].as_str().unwrap().starts_with("Open the backups"))
        .count();
    assert_eq!(
        opened, 1,
        "opened (made) once, after restic found none: {again}"
    );
    assert!(lab::exec_ok(
        SERVER,
        &["test", "-f", &format!("{FOLDER}/config")]
    ));

    for slug in [SLUG, OTHER] {
        let (status, body) = api
            .delete(&format!("/api/v1/applications/{slug}?delete_data=true"))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    lab::exec(SERVER, &["rm", "-rf", FOLDER]);
}
