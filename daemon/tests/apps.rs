//! The catalog pages and placement over real lab devices: search, categories, and "where it
//! would go" with reasons, including a port taken on the device by something else.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn catalog_search_categories_and_placement_with_reasons() {
    let s = start("apps").await;
    let (session, _) = s.claim().await;

    let page = s.get("/apps", &session).await.text().await.unwrap();
    for name in [
        "Vaultwarden",
        "Immich",
        "Jellyfin",
        "Nextcloud",
        "Home Assistant",
        "AdGuard Home",
        "NGINX Proxy Manager",
        "Portainer",
        "Uptime Kuma",
        "Paperless-ngx",
    ] {
        assert!(page.contains(name), "{name} in the catalog");
    }
    let photos = s
        .get_text_with("/apps/grid?q=photos", &session, &[("hx-request", "true")])
        .await;
    assert!(
        photos.contains("data-app=\"immich\"") && !photos.contains("data-app=\"vaultwarden\""),
        "{photos}"
    );
    let network = s
        .get("/apps?category=Network", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        network.contains("data-app=\"adguard-home\"")
            && network.contains("data-app=\"nginx-proxy-manager\"")
            && !network.contains("data-app=\"immich\"")
    );
    let none = s
        .get_text_with("/apps/grid?q=zzzz", &session, &[("hx-request", "true")])
        .await;
    assert!(none.contains("No app matches"));
    let icon = s.get("/apps/vaultwarden/icon.svg", &session).await;
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");

    // The app page loads its placement after the page ("Analyzing your homelab…").
    let vw = s
        .get("/apps/vaultwarden", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(vw.contains("Analyzing your homelab") && vw.contains("/apps/vaultwarden/plan"));
    // No devices: the placement says what to do first.
    let plan = s
        .get("/apps/vaultwarden/plan", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(plan.contains("Add a device first"), "{plan}");

    add_lab_device(&s, &session, "Big", "server-01").await;
    add_lab_device(&s, &session, "Pi", "pi-4").await;
    // Something else takes Vaultwarden's port on the Pi.
    let _taker = lab::take_port("pi-4", 8222);

    eventually(
        "the Pi's check to see port 8222 taken",
        Duration::from_secs(60),
        || async {
            // "Check now" re-reads the device, listening ports included.
            assert_eq!(
                s.post_htmx("/devices/2/refresh", &session, &[])
                    .await
                    .status(),
                200
            );
            let pi = s.api_get_json(&session, "/api/v1/devices/2").await;
            let ports = pi["facts"]["ports"].as_array().cloned().unwrap_or_default();
            if ports.iter().any(|p| p == 8222) {
                Ok(())
            } else {
                Err(pi.to_string())
            }
        },
    )
    .await;
    let vw = s
        .get("/apps/vaultwarden/plan", &session)
        .await
        .text()
        .await
        .unwrap();
    // The install form leaves the port to Homelab, which moves it to a free one on whichever
    // device runs the app: a taken default port rules no device out.
    assert!(!vw.contains("8222") && !vw.contains("Disqualified"), "{vw}");
    let best = extract_between(&vw, "<li class=\"best\">", "</li>").unwrap();
    assert!(
        best.contains("Big") && best.contains("Best match") && best.contains("Recommended"),
        "{best}"
    );

    // Immich needs 4 GB of RAM; the Pi has 3 GB available.
    let immich = s
        .get("/apps/immich/plan", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        immich.contains("Disqualified: needs 4.0 GB of memory, 3.0 GB free."),
        "{immich}"
    );
}

/// Placement over every lab profile picks the device each app suits, and says why.
#[tokio::test]
async fn placement_picks_the_device_each_profile_suits() {
    let s = start("apps-profiles").await;
    let (session, _) = s.claim().await;
    for (name, device) in [
        ("Server 1", "server-01"), // 8 GB, 4 cores, 100 GB
        ("Server 2", "server-02"), // 16 GB, 2 cores, 500 GB
        ("Pi", "pi-4"),            // 4 GB, 1 core, 32 GB
        ("NAS", "nas-01"),         // 4 GB, 2 cores, 200 GB
    ] {
        add_lab_device(&s, &session, name, device).await;
    }
    let token = s.api_token(&session, "profiles").await;
    let placement = |slug: &'static str| {
        let s = &s;
        let token = token.clone();
        async move {
            eventually(
                &format!("{slug}: every device checked"),
                Duration::from_secs(60),
                || async {
                    let j: serde_json::Value = s
                        .client
                        .get(s.url(&format!("/api/v1/applications/{slug}")))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    let p = j["placement"].as_array().unwrap().clone();
                    if p.iter()
                        .any(|v| v["reason"] == "Disqualified: the device is offline.")
                    {
                        Err(j.to_string())
                    } else {
                        Ok(p)
                    }
                },
            )
            .await
        }
    };
    let reason = |p: &[serde_json::Value], device: &str| {
        p.iter().find(|v| v["device"] == device).unwrap()["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // Immich wants memory above all: the 16 GB server, named for the memory it has left; the
    // 4 GB devices cannot take it.
    let p = placement("immich").await;
    assert_eq!(p[0]["device"], "Server 2", "{p:?}");
    let best = reason(&p, "Server 2");
    assert!(
        best.starts_with("Best match: ") && best.contains("memory"),
        "{best}"
    );
    assert_eq!(
        reason(&p, "Pi"),
        "Disqualified: needs 4.0 GB of memory, 3.0 GB free."
    );
    assert_eq!(
        reason(&p, "NAS"),
        "Disqualified: needs 4.0 GB of memory, 3.0 GB free."
    );
    assert_eq!(p[1]["device"], "Server 1");

    // A media library grows: Jellyfin goes to the 500 GB server with twice the memory, not
    // to the 100 GB one (short of Jellyfin's recommended 100 GB) for its two extra cores;
    // the single-core Pi is out.
    let p = placement("jellyfin").await;
    assert_eq!(p[0]["device"], "Server 2", "{p:?}");
    let best = reason(&p, "Server 2");
    assert!(best.contains("storage for your films and music"), "{best}");
    assert_eq!(reason(&p, "Pi"), "Disqualified: needs 2 processors, has 1.");
    assert!(p.iter().filter(|v| v["eligible"] == true).count() == 3);
}
