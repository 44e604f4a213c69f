//! Updates on a host that is not the appliance (no A/B slots here): the page and API say so
//! and refuse an update file without keeping it; a restart request reaches the file the
//! appliance's homelab-reboot.path watches; and the rollback at start: a daemon that finds an
//! update it installed never took (it runs the old version again) restores the data saved
//! before it, even over a database the failed version damaged. Installing real bundles into
//! real slots is tested under qemu (tests/image/ota-test.sh).

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::path::PathBuf;

use common::*;
use homelabd::config::OtaConfig;
use homelabd::ota::{snapshot, system_version};

/// A server on `data` (kept between restarts) where RAUC is absent, as on any Linux host.
async fn server(name: &'static str, data: &std::path::Path) -> TestServer {
    let mut o = Options::new(name);
    o.data = Some(data.to_path_buf());
    o.ota = OtaConfig {
        rauc: PathBuf::from("/nonexistent/rauc"),
        reboot_request: data.join("run/reboot"),
        ..OtaConfig::default()
    };
    start_with(o).await
}

#[tokio::test]
async fn off_the_appliance_updates_are_refused_with_a_reason_and_restart_requests_work() {
    let data = data_dir("updates-host");
    let s = server("updates-host", &data).await;
    let (session, _) = s.claim().await;

    let page = s.get_text_with("/settings/updates", &session, &[]).await;
    assert!(
        page.contains(&format!("id=\"update-version\">{}<", system_version())),
        "{page}"
    );
    assert!(page.contains("RAUC is not installed"), "{page}");
    assert!(
        !page.contains("Upload update file"),
        "no upload offered where it cannot work"
    );

    let status: serde_json::Value = s
        .get("/api/v1/system/update", &session)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["available"], false, "{status}");

    let res = s
        .api(
            &session,
            reqwest::Method::POST,
            "/api/v1/system/update/bundle",
        )
        .header("content-type", "application/octet-stream")
        .body(vec![7u8; 100_000])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 501);
    let body = res.text().await.unwrap();
    assert!(body.contains("Updates are not available here"), "{body}");
    let kept: Vec<_> = std::fs::read_dir(data.join("updates"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(kept.is_empty(), "a refused file is not kept: {kept:?}");

    // Without CSRF the same request is refused (every state change is).
    let res = s
        .client
        .post(s.url("/api/v1/system/update/reboot"))
        .headers(s.origin())
        .header("cookie", &session.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(!data.join("run/reboot").exists());

    let res = s
        .api(
            &session,
            reqwest::Method::POST,
            "/api/v1/system/update/reboot",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert!(
        data.join("run/reboot").exists(),
        "the restart request file is written"
    );
    let audit = s.get_text_with("/settings", &session, &[]).await;
    assert!(audit.contains("Restarted the box"), "audited");
}

#[tokio::test]
async fn a_fallen_back_update_restores_the_data_saved_before_it() {
    let data = data_dir("updates-rollback");
    let s = server("updates-rollback", &data).await;
    let (session, password) = s.claim().await;
    s.post_htmx("/settings/mode", &session, &[("mode", "advanced")])
        .await;
    s.api_token(&session, "before-update").await;
    s.stop().await.unwrap();

    // What an install does first: the snapshot and the marker (from this version to a newer).
    {
        let store = homelabd::store::Store::open(&data.join("homelab.db")).unwrap();
        snapshot::take(&data, &store).await.unwrap();
        store.close().await.unwrap();
    }
    snapshot::set_pending(
        &data,
        &snapshot::Pending {
            from_version: system_version(),
            to_version: "99.0-broken".into(),
            installed_at: 0,
            // Installed in an earlier boot: this start is after the restart.
            boot_id: "an-earlier-boot".into(),
        },
    )
    .unwrap();
    // The new version changed data, then damaged the database, and never got healthy.
    {
        let conn = rusqlite::Connection::open(data.join("homelab.db")).unwrap();
        conn.execute("UPDATE api_tokens SET name = 'during-update'", [])
            .unwrap();
    }
    let mut db = std::fs::read(data.join("homelab.db")).unwrap();
    db[..16].copy_from_slice(b"broken update!!\0");
    std::fs::write(data.join("homelab.db"), db).unwrap();

    // The bootloader fell back: the old version starts again.
    let s = server("updates-rollback", &data).await;
    let session = s.login("admin", &password).await;
    let settings = s.get_text_with("/settings", &session, &[]).await;
    assert!(
        settings.contains("before-update"),
        "data from before the update is back"
    );
    assert!(
        !settings.contains("during-update"),
        "the failed version's changes are gone"
    );
    assert!(
        settings.contains("did not start properly; the box went back to"),
        "the rollback is in the activity log"
    );
    let page = s.get_text_with("/settings/updates", &session, &[]).await;
    assert!(
        page.contains(
            "The update to 99.0-broken failed and was rolled back — your data is as it was."
        ),
        "{page}"
    );
    assert!(snapshot::pending(&data).is_none(), "settled once");
}
