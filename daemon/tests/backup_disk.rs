//! A disk plugged into the box as a backup destination, on the real lab with real restic (in
//! the pinned image on a device, and on the box for its own backup). The "USB disk" is a real
//! ext4 file system on a loop device, mounted on the machine the daemon runs on:
//! - the Backups page offers it, and never the disk the box runs from; that disk, a folder in
//!   memory and a relative path are refused in words;
//! - added, "Test connection" makes a standard restic repository in `homelab-backups` on it;
//! - an app on server-01 backed up there (restic on the device reaching the disk through the
//!   box, over the device's own SSH connection), and restored in place byte for byte; the
//!   box forgets old backups there (its own right; devices only add);
//! - the disk unplugged: "Test connection" and a backup say so, and work again once it is
//!   back;
//! - the box's own backup to it; plain restic opens the repository with the recovery
//!   passphrase; a new box is restored from the disk alone.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::json;

const STUB: &str = "homelab-lab/app-stub:1";
const DEVICE: &str = "server-01";
const SLUG: &str = "lab-disk";
const PORT: u16 = 18362;

fn listing() -> String {
    stand_in::volume_listing(DEVICE, SLUG)
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A 512 MB ext4 "USB disk" on a loop device, mounted at `mount`; unplugged (unmounted and
/// its image removed) when dropped.
struct UsbDisk {
    image: PathBuf,
    mount: PathBuf,
}

impl UsbDisk {
    fn new() -> UsbDisk {
        let base = std::env::temp_dir().join(format!("homelab-usb-{}", std::process::id()));
        let image = base.with_extension("img");
        let mount = base;
        let _ = Command::new("umount").arg(&mount).status();
        std::fs::create_dir_all(&mount).unwrap();
        let f = std::fs::File::create(&image).unwrap();
        f.set_len(512 << 20).unwrap();
        run("mkfs.ext4", &["-q", "-F", image.to_str().unwrap()]);
        let disk = UsbDisk { image, mount };
        disk.plug();
        disk
    }

    fn plug(&self) {
        run(
            "mount",
            &[
                "-o",
                "loop",
                self.image.to_str().unwrap(),
                self.mount.to_str().unwrap(),
            ],
        );
    }

    fn unplug(&self) {
        run("umount", &[self.mount.to_str().unwrap()]);
    }

    fn folder(&self) -> PathBuf {
        self.mount.join("homelab-backups")
    }
}

impl Drop for UsbDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
        let _ = std::fs::remove_file(&self.image);
        let _ = std::fs::remove_dir(&self.mount);
    }
}

async fn add(api: &Api<'_>, path: &Path) -> (u16, serde_json::Value) {
    api.add_destination(json!({"name": "USB disk", "kind": "disk", "path": path}))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_usb_disk_on_the_box_takes_app_and_box_backups_and_gives_them_back() {
    let disk = UsbDisk::new();
    let data = data_dir("backup-disk");
    stand_in::volume_app_recipe(&data, SLUG, PORT);
    lab::clean_app(DEVICE, SLUG);
    assert!(lab::exec_ok(
        DEVICE,
        &["docker", "tag", STUB, &format!("example/{SLUG}:1")]
    ));
    let mut opts = Options::new("backup-disk");
    opts.data = Some(data.clone());
    opts.poll_interval = Duration::from_secs(3600);
    let s = start_with(opts).await;
    let (session, owner_password, api, _) =
        claimed_with_app(&s, "disk", "Server One", DEVICE, SLUG).await;
    stand_in::fill_volume(DEVICE, SLUG);
    let before = listing();

    // The page offers the disk in plain words; the disk the box runs from is not offered.
    let page = s.get("/backups", &session).await.text().await.unwrap();
    assert!(
        page.contains("A USB disk plugged into this box</label>"),
        "{page}"
    );
    let offered = format!("name=\"disk\" value=\"{}\"", disk.mount.display());
    assert!(page.contains(&offered), "the disk is offered: {page}");
    assert!(
        !page.contains("name=\"disk\" value=\"/\""),
        "the box's own disk is not: {page}"
    );

    // Refused in words, nothing kept: the disk the box runs from, memory, a relative path.
    for (path, words) in [
        (
            std::fs::canonicalize(&data).unwrap().join("backups"),
            "runs from",
        ),
        (PathBuf::from("/dev/shm/homelab-backups"), "in memory"),
        (PathBuf::from("backups"), "starting with /"),
    ] {
        let (status, body) = add(&api, &path).await;
        assert_eq!(status, 422, "{path:?}: {body}");
        assert!(error_words(&body).contains(words), "{path:?}: {body}");
    }
    assert!(
        api.get("/api/v1/backups/destinations").await["destinations"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The disk as a whole: its backups go in a folder of their own; Test connection makes a
    // standard restic repository there.
    let (status, dest) = add(&api, &disk.mount).await;
    assert_eq!(status, 201, "{dest}");
    let id = dest["id"].as_i64().unwrap();
    assert_eq!(
        dest["repository"],
        disk.folder().to_str().unwrap(),
        "{dest}"
    );
    assert_eq!(
        remember_sealed_purposes(
            &s.data,
            &format!("backup-destination:{id}"),
            &["repository"]
        ),
        1
    );
    let (status, words) = api.check_destination(id).await;
    assert_eq!(status, 200, "{words}");
    assert!(words.contains("made its backup store"), "{words}");
    assert!(disk.folder().join("config").is_file());
    assert!(
        disk.folder().join("data/00").is_dir(),
        "restic's own layout"
    );
    let (status, words) = api.check_destination(id).await;
    assert_eq!((status, words.as_str()), (200, "USB disk works."));

    // The app backed up (restic on the device, through the box); then rules that keep one a
    // day: the next backup's forget (a run of the box's own, which may remove through the
    // box) leaves one. Devices' own runs only add (see disk_server's tests).
    let back_up = || async {
        let b = api
            .run_to_end(
                &format!("/api/v1/backups/apps/{SLUG}"),
                json!({"destination_id": id}),
            )
            .await;
        assert_eq!(b["state"], "running", "{b}");
        b["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| {
                a["what"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("restic forget")
                    && a["outcome"] == "exit 0"
            })
            .count()
    };
    assert_eq!(back_up().await, 0, "nothing to forget at the first");
    assert_eq!(back_up().await, 0, "once a day");
    let listed = api.get(&format!("/api/v1/backups/apps/{SLUG}")).await;
    assert_eq!(listed["snapshots"].as_array().unwrap().len(), 2, "{listed}");
    let (status, own) = api
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/backups/apps/{SLUG}/policy"),
            Some(
                json!({"schedule": "30 3 * * *", "keep_within_days": 0, "keep_daily": 1,
                        "keep_weekly": 0, "keep_monthly": 0}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(back_up().await, 1, "the new rules are applied");
    let listed = api.get(&format!("/api/v1/backups/apps/{SLUG}")).await;
    let snapshots = listed["snapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 1, "one a day is kept: {listed}");
    let snapshot = snapshots[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        std::fs::read_dir(disk.folder().join("locks"))
            .unwrap()
            .count(),
        0,
        "restic removed its own locks"
    );

    // Restored in place, byte for byte.
    stand_in::in_app_volume(
        DEVICE,
        SLUG,
        "rm -rf /d/a/b && echo changed > /d/a/f5 && chmod 777 /d/a/f1",
    );
    assert_ne!(listing(), before);
    let r = api
        .run_to_end(
            &format!("/api/v1/backups/apps/{SLUG}/restore"),
            json!({"destination_id": id, "snapshot": snapshot}),
        )
        .await;
    assert_eq!(r["state"], "running", "{r}");
    assert_eq!(listing(), before, "restored byte for byte");

    // The weekly upkeep, all data read (prune and check: the box's own runs on its disk);
    // then a pack damaged on the disk is found by it.
    let maintain_path = format!("/api/v1/backups/destinations/{id}/maintain");
    let maintain = |full: bool| {
        api.send(
            reqwest::Method::POST,
            &maintain_path,
            Some(json!({"full": full})),
        )
    };
    let (status, body) = maintain(true).await;
    assert_eq!(status, 202, "{body}");
    let checked = eventually("the upkeep ends", Duration::from_secs(120), || async {
        let list = api.get("/api/v1/backups/destinations").await;
        let d = list["destinations"][0].clone();
        match d["maintained_at"].as_i64() {
            Some(_) => Ok(d),
            None => Err(d.to_string()),
        }
    })
    .await;
    assert_eq!(
        checked["damage"].as_str().unwrap_or_default(),
        "",
        "{checked}"
    );
    let pack = std::fs::read_dir(disk.folder().join("data"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0xff;
    }
    std::fs::write(&pack, bytes).unwrap();
    let (status, body) = maintain(true).await;
    assert_eq!(status, 202, "{body}");
    let damaged = eventually("the damage is found", Duration::from_secs(120), || async {
        let list = api.get("/api/v1/backups/destinations").await;
        let d = list["destinations"][0].clone();
        match d["damage"].as_str() {
            Some(w) if !w.is_empty() => Ok(w.to_string()),
            _ => Err(d.to_string()),
        }
    })
    .await;
    assert!(damaged.contains("is damaged"), "{damaged}");

    // Unplugged: said, and nothing runs; plugged in again: works.
    disk.unplug();
    let (status, words) = api.check_destination(id).await;
    assert_eq!(status, 422, "{words}");
    assert!(words.contains("is not plugged in"), "{words}");
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/backups/apps/{SLUG}"),
            Some(json!({"destination_id": id})),
        )
        .await;
    let said = if status == 202 {
        let job = body["deployment_id"].as_i64().unwrap();
        let d = api
            .wait_for(job, "ended", Duration::from_secs(120), |d| {
                d["finished_at"].as_i64().is_some()
            })
            .await;
        d.to_string()
    } else {
        body.to_string()
    };
    assert!(said.contains("is not plugged in"), "{said}");
    disk.plug();
    let (status, words) = api.check_destination(id).await;
    assert_eq!((status, words.as_str()), (200, "USB disk works."));

    // The box's own backup to the disk (restic on the box), opened by plain restic with the
    // recovery passphrase.
    let passphrase = password("recovery-disk");
    api.set_recovery_passphrase(&passphrase).await;
    let done = api.back_up_box().await;
    assert_eq!(done["ok"], true, "{done}");
    let plain = Command::new("restic")
        .args(["-r", disk.folder().to_str().unwrap(), "--no-cache"])
        .args(["snapshots", "--json"])
        .env("RESTIC_PASSWORD", &passphrase)
        .output()
        .unwrap();
    let plain = String::from_utf8_lossy(&plain.stdout).to_string();
    assert!(plain.contains("\"hostname\":\"homelab.box\""), "{plain}");
    assert!(
        plain.contains(&format!("\"hostname\":\"{SLUG}\"")),
        "{plain}"
    );

    // The recovery sheet names the disk and how plain restic opens it.
    let sheet = s
        .get("/backups/recovery-sheet", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(sheet.contains("A USB disk plugged into the box"), "{sheet}");
    assert!(
        sheet.contains(&format!(
            "restic -r &#39;{}&#39; snapshots",
            disk.folder().display()
        )) || sheet.contains(&format!(
            "restic -r '{}' snapshots",
            disk.folder().display()
        )),
        "{sheet}"
    );
    s.stop().await.unwrap();

    // A new box, restored from the disk alone (chosen as a whole, as the restore page offers
    // it).
    let new = start("backup-disk-new").await;
    let code = homelabd::setup_code(homelabd::Config::new(&new.data))
        .await
        .unwrap()
        .unwrap();
    let post = |passphrase: &str| {
        new.client
            .post(new.url("/api/v1/setup/restore"))
            .headers(new.origin())
            .json(
                &json!({"kind": "disk", "path": disk.mount, "passphrase": passphrase,
                          "setup_code": code}),
            )
            .send()
    };
    let res = post("not the passphrase at all").await.unwrap();
    assert_eq!(res.status(), 422);
    let res = post(&passphrase).await.unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    let data = new.data.clone();
    new.wait_stopped_itself().await;
    new.stop().await.unwrap();
    let mut opts = Options::new("backup-disk-new");
    opts.data = Some(data);
    let back = start_with(opts).await;
    let session = back.login(ADMIN, &owner_password).await;
    let api = Api {
        token: back.api_token(&session, "disk-after").await,
        s: &back,
    };
    let (status, words) = api.check_destination(id).await;
    assert_eq!((status, words.as_str()), (200, "USB disk works."));
    let listed = api.get(&format!("/api/v1/backups/apps/{SLUG}")).await;
    assert_eq!(listed["snapshots"].as_array().unwrap().len(), 1, "{listed}");
    let (status, body) = api
        .delete(&format!("/api/v1/applications/{SLUG}?delete_data=true"))
        .await;
    assert_eq!(status, 200, "{body}");
    back.stop().await.unwrap();
    lab::clean_app(DEVICE, SLUG);
}
