//! Poll results are stored in batches, and a device that does not answer holds back nobody
//! (issue 12). A test binary of its own: it unplugs a lab device for about half a minute, which
//! would disturb the device tests that run beside each other in one binary. Real OpenSSH and
//! Docker (lab/lab up).

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::time::Duration;

use common::*;

/// With its cable pulled while a pooled connection is open, a device's poll hangs until the
/// poll timeout. Meanwhile "refresh all" answers, the other device's result is stored and
/// announced, its page and "Check now" work, and the late result is stored on its own when the
/// poll gives up.
#[tokio::test]
async fn an_unplugged_device_does_not_hold_back_the_others_results() {
    let mut opts = Options::new("no-waiting");
    // Only this test's requests poll (the poller's cycles would blur which one stored what).
    opts.poll_interval = Duration::from_secs(3600);
    let s = start_with(opts).await;
    let (session, _) = s.claim().await;
    // server-02 is unplugged: no other test powers it off (pi-4 is theirs).
    let up = add_lab_device(&s, &session, "Stays", "server-01").await;
    let down = add_lab_device(&s, &session, "Unplugged", "server-02").await;
    let device = |id: i64| {
        let (s, session) = (&s, &session);
        async move {
            s.api_get_json(session, &format!("/api/v1/devices/{id}"))
                .await
        }
    };
    let last_result = device(down).await["checked_at"].as_i64().unwrap();
    let mut events = s.get("/events", &session).await;
    assert_eq!(events.status(), 200);
    let pulled = lab::unplug("server-02");
    let asked_at = homelabd::store::now_unix();
    let res = s
        .api(&session, reqwest::Method::POST, "/api/v1/devices/refresh")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let summary: serde_json::Value = res.json().await.unwrap();
    assert_eq!(summary["devices"], 2, "{summary}");
    assert_eq!(summary["online"], 1, "{summary}");
    assert_eq!(
        summary["waiting"], 1,
        "the answer did not wait for the unplugged device: {summary}"
    );

    // The answering device's result was stored and announced...
    let mut seen = String::new();
    let wanted = format!("event: devices\ndata: {up}\n");
    while !seen.contains(&wanted) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), events.chunk())
            .await
            .expect("a status event in time")
            .unwrap()
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        !seen.contains(&format!("event: devices\ndata: {down}\n")),
        "nothing stored for the unplugged device yet: {seen}"
    );
    let d = device(up).await;
    assert!(d["checked_at"].as_i64().unwrap() >= asked_at, "{d}");
    // ...while the unplugged device's poll is still under way (its last result stands).
    let d = device(down).await;
    assert_eq!(d["state"], "online", "{d}");
    assert_eq!(d["checked_at"], last_result, "{d}");
    // The other device's page and "Check now" answer meanwhile.
    let page = s.get(&format!("/devices/{up}"), &session).await;
    assert_eq!(page.status(), 200);
    let page = s
        .wait_page(&session, up, "the other device online", |p| {
            p.contains("badge-online")
        })
        .await;
    assert!(page.contains("Stays"));
    // The unplugged device's own page answers too, without its container list: it does not hang
    // on the dead connection (bollard's 60 s, the keepalive's ~45 s) but gives up on the list
    // after 2 s; 6 s leaves room for a busy machine.
    let page = tokio::time::timeout(
        Duration::from_secs(6),
        s.get(&format!("/devices/{down}"), &session),
    )
    .await
    .expect("the unplugged device's page answered without waiting for its connection");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Unplugged"));

    // The late result comes in its own batch once the poll gives up.
    let d = eventually(
        "the unplugged device stored as offline",
        Duration::from_secs(60),
        || async {
            let d = device(down).await;
            if d["state"] == "offline" {
                Ok(d)
            } else {
                Err(d.to_string())
            }
        },
    )
    .await;
    assert!(d["checked_at"].as_i64().unwrap() >= asked_at, "{d}");
    pulled.on();
    s.wait_page(&session, down, "the device back online", |p| {
        p.contains("badge-online")
    })
    .await;
}
