//! The desired state's history and the configuration file, on the real lab: every change is
//! a revision with who and what; "Revert to here" makes what it can through the normal
//! actions (and is itself undone the same way), leaving devices and destinations to the
//! owner; an export seals its secrets, and a tampered, foreign, mis-passphrased or
//! not-fresh import is refused with the reason and changes nothing; a fresh box that imports
//! the file starts again as the homelab: its device answers by the imported key and its
//! backup destination opens with the imported password and key.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

/// The device both boxes manage (no app is deployed: only its login matters), and the SSH
/// server the destination is on.
const DEVICE: &str = "pi-4";
const SERVER: &str = "server-02";
const FOLDER: &str = "/home/homelab/homelab-config-test";

async fn save_host_names(s: &TestServer, session: &Session, names: &str) {
    let res = s
        .post_htmx("/settings/names", session, &[("names", names)])
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

async fn revisions(api: &Api<'_>) -> Vec<Value> {
    api.get("/api/v1/config/history")
        .await
        .as_array()
        .unwrap()
        .clone()
}

/// The newest revision whose words are `what`.
async fn revision_id(api: &Api<'_>, what: &str) -> i64 {
    let list = revisions(api).await;
    list.iter()
        .find(|r| r["what"] == what)
        .unwrap_or_else(|| panic!("no revision “{what}” in {list:#?}"))["id"]
        .as_i64()
        .unwrap()
}

fn words(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["words"].as_str().unwrap().to_string())
        .collect()
}

async fn import(api: &Api<'_>, file: &Value, passphrase: &str, apply: bool) -> (u16, Value) {
    api.send(
        Method::POST,
        "/api/v1/config/import",
        Some(json!({"file": file, "passphrase": passphrase, "apply": apply})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_reverts_and_a_configuration_file_carries_the_homelab_to_a_new_box() {
    lab::exec(SERVER, &["rm", "-rf", FOLDER]);
    let old = start("config-old").await;
    let (session, admin_password) = old.claim().await;
    let api = Api {
        token: old.api_token(&session, "config").await,
        s: &old,
    };

    // Four changes, each a revision with who made it.
    save_host_names(&old, &session, "homelab.lan").await;
    let (status, body) = api
        .send(
            Method::PUT,
            "/api/v1/backups/policy",
            Some(json!({"preset": "weekly"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let device_id = add_lab_device(&old, &session, "Pi", DEVICE).await;
    let dest_id = api.add_sftp_destination("Server 2", SERVER, FOLDER).await;
    save_host_names(&old, &session, "homelab.lan\nbox.lan").await;
    let list = revisions(&api).await;
    let first_names = revision_id(&api, "Homelab also answers to homelab.lan").await;
    assert!(
        list.iter()
            .any(|r| r["what"].as_str().unwrap().contains("Backups of every app")),
        "the schedule change is a revision: {list:#?}"
    );
    assert!(list.iter().all(|r| r["actor"] != ""), "{list:#?}");

    // What that revision changed, and what reverting to it would do now.
    let rev = api
        .get(&format!("/api/v1/config/history/{first_names}"))
        .await;
    assert!(
        words(&rev["changed"])
            .iter()
            .any(|w| w == "Other names the box answers to: none → “homelab.lan”"),
        "{rev:#}"
    );
    let plan = &rev["revert"];
    let by_hand: Vec<&Value> = plan
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["by_hand"].is_null())
        .collect();
    assert!(
        by_hand.iter().any(|c| c["words"] == "Device “Pi”: removed"),
        "a device added since is left to the owner: {plan:#}"
    );
    assert!(
        by_hand
            .iter()
            .any(|c| c["words"] == "Backup destination “Server 2”: removed"),
        "{plan:#}"
    );

    // Revert: the names and the schedule go back; the device and destination stay.
    let (status, done) = api
        .send(
            Method::POST,
            &format!("/api/v1/config/history/{first_names}/revert"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert!(done["failed"].as_array().unwrap().is_empty(), "{done:#}");
    assert_eq!(done["made"].as_array().unwrap().len(), 2, "{done:#}");
    assert_eq!(
        db_setting(&old.data, "host_names").as_deref(),
        Some("homelab.lan")
    );
    let policy = api.get("/api/v1/backups/policy").await;
    assert_eq!(policy["preset"], "daily", "{policy}");
    let devices = api.get("/api/v1/devices").await;
    assert_eq!(devices.as_array().unwrap().len(), 1, "{devices}");
    // Nothing left to revert to there now, but the device and destination by hand.
    let again = api
        .get(&format!("/api/v1/config/history/{first_names}"))
        .await;
    assert!(
        again["revert"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| !c["by_hand"].is_null()),
        "{again:#}"
    );
    // The revert is a change like any other: reverting to the state before it undoes it.
    let before_revert = revision_id(&api, "Homelab also answers to homelab.lan, box.lan").await;
    let (status, undone) = api
        .send(
            Method::POST,
            &format!("/api/v1/config/history/{before_revert}/revert"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{undone}");
    assert_eq!(
        db_setting(&old.data, "host_names").as_deref(),
        Some("homelab.lan\nbox.lan")
    );
    assert_eq!(api.get("/api/v1/backups/policy").await["preset"], "weekly");
    let page = old
        .get(&format!("/settings/history/{first_names}"), &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Revert to here"), "{page}");

    // Export: readable settings, sealed secrets.
    let passphrase = password("config-file");
    let res = old
        .client
        .post(old.url("/api/v1/config/export"))
        .bearer_auth(&api.token)
        .json(&json!({"passphrase": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("at least 12 characters"));
    let res = old
        .client
        .post(old.url("/api/v1/config/export"))
        .bearer_auth(&api.token)
        .json(&json!({"passphrase": passphrase}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("homelab-configuration-")
    );
    let text = res.text().await.unwrap();
    // From a browser the owner's own password is asked for too: a session alone (a cookie
    // stolen, a laptop left open) cannot take every secret away.
    for (typed, words) in [
        ("", "Type your password"),
        ("not-the-password", "Your password is not right"),
    ] {
        let form = [
            ("password", typed),
            ("passphrase", passphrase.as_str()),
            ("confirm", passphrase.as_str()),
        ];
        let res = old
            .post_htmx("/settings/configuration/export", &session, &form)
            .await;
        assert_eq!(res.status(), 422, "{typed:?}");
        assert!(res.text().await.unwrap().contains(words), "{typed:?}");
    }
    let res = old
        .post_htmx(
            "/settings/configuration/export",
            &session,
            &[
                ("password", admin_password.as_str()),
                ("passphrase", passphrase.as_str()),
                ("confirm", passphrase.as_str()),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("homelab-configuration"));
    std::fs::write(artifacts().join("config-export.json"), &text).unwrap();
    assert!(text.contains("box.lan") && text.contains("\"Pi\""));
    assert!(!text.contains("PRIVATE KEY"), "keys are sealed");
    assert!(!text.contains(&lab::password()));
    let file: Value = serde_json::from_str(&text).unwrap();

    // Refused with the reason, nothing changed: a wrong passphrase, an edited file, not a
    // configuration, and this box itself (it is not fresh).
    let (status, wrong) = import(&api, &file, "not the passphrase at all", false).await;
    assert_eq!(status, 422, "{wrong}");
    assert!(
        wrong["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not open")
    );
    let edited: Value = serde_json::from_str(&text.replace("box.lan", "evil.lan")).unwrap();
    let (status, tampered) = import(&api, &edited, &passphrase, false).await;
    assert_eq!(status, 422, "{tampered}");
    assert!(
        tampered["error"]["message"]
            .as_str()
            .unwrap()
            .contains("changed after it was exported"),
        "{tampered}"
    );
    let (status, foreign) = import(&api, &json!({"hello": 1}), &passphrase, false).await;
    assert_eq!(status, 422, "{foreign}");
    assert!(
        foreign["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a Homelab")
    );
    let (status, here) = import(&api, &file, &passphrase, true).await;
    assert_eq!(status, 409, "{here}");
    assert!(
        here["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already has 1 device.")
    );
    old.stop().await.unwrap();

    // A fresh box: a dry run says what comes, then the import, and the daemon starts again.
    let new = start("config-new").await;
    let (new_session, new_password) = new.claim().await;
    let new_api = Api {
        token: new.api_token(&new_session, "import").await,
        s: &new,
    };
    let (status, dry) = import(&new_api, &file, &passphrase, false).await;
    assert_eq!(status, 200, "{dry}");
    assert!(dry["refused"].is_null(), "{dry}");
    let changes = words(&dry["changes"]);
    for expected in [
        "Device “Pi”: added",
        "Backup destination “Server 2”: added",
        "Other names the box answers to: none → “homelab.lan, box.lan”",
    ] {
        assert!(
            changes.iter().any(|w| w == expected),
            "{expected}: {changes:#?}"
        );
    }
    assert!(
        new_api
            .get("/api/v1/devices")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (status, applied) = import(&new_api, &file, &passphrase, true).await;
    assert_eq!(status, 202, "{applied}");
    eventually(
        "the daemon stops to start again",
        Duration::from_secs(30),
        || async {
            match new.client.get(new.url("/healthz")).send().await {
                Err(_) => Ok(()),
                Ok(r) => Err(r.status().to_string()),
            }
        },
    )
    .await;
    let data = new.data.clone();
    new.stop().await.unwrap();
    let mut opts = Options::new("config-new");
    opts.data = Some(data);
    let back = start_with(opts).await;
    // The owner of this box stays (an import brings no accounts); the homelab is there.
    let session = back.login(ADMIN, &new_password).await;
    let api = Api {
        token: back.api_token(&session, "after").await,
        s: &back,
    };
    assert_eq!(
        db_setting(&back.data, "host_names").as_deref(),
        Some("homelab.lan\nbox.lan")
    );
    assert_eq!(api.get("/api/v1/backups/policy").await["preset"], "weekly");
    // The device answers this box, by the key the file carried.
    eventually(
        "the imported device online",
        Duration::from_secs(60),
        || async {
            let d = api.get(&format!("/api/v1/devices/{device_id}")).await;
            if d.to_string().contains("\"state\":\"online\"") {
                Ok(())
            } else {
                Err(d.to_string())
            }
        },
    )
    .await;
    // The destination opens with the imported repository password and SSH key.
    let (status, check) = api
        .send(
            Method::POST,
            &format!("/api/v1/backups/destinations/{dest_id}/check"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{check}");
    let list = revisions(&api).await;
    assert!(
        list[0]["what"]
            .as_str()
            .unwrap()
            .starts_with("Imported the configuration"),
        "{list:#?}"
    );
    back.stop().await.unwrap();
    lab::exec(SERVER, &["rm", "-rf", FOLDER]);
}
