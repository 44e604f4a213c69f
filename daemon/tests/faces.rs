//! The two faces of one action: doing a state change through the HTML form and through the JSON
//! API must leave the same audit record (actor, action, detail) and send open pages the same
//! live events, since both go through the web's action layer. Events are read from the page's
//! own stream (`/events`); the audit records arrive on it too (Settings appends them live).
//!
//! To know when an action's events are all in, each step ends with a marker: switching the
//! display mode, whose audit record comes after everything the action published.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;

/// The marker's detail: the mode stays Advanced, so every record shows its action code.
const MARKER: &str = "Switched the display to advanced";

/// A signed-in page's event stream, read event by event.
struct Events {
    stream: reqwest::Response,
    buf: String,
}

impl Events {
    /// Switches the session to Advanced (a stream takes the mode it opens with; Advanced audit
    /// rows carry the action code) and opens the stream.
    async fn open(s: &TestServer, session: &Session) -> Events {
        let res = s
            .post_htmx("/settings/mode", session, &[("mode", "advanced")])
            .await;
        assert_eq!(res.status(), 200);
        let stream = s.get("/events", session).await;
        assert_eq!(stream.status(), 200);
        let mut events = Events {
            stream,
            buf: String::new(),
        };
        // Every stream opens with where each topic stands (pages compare it with their own).
        let (name, _) = events.next(Instant::now() + Duration::from_secs(10)).await;
        assert_eq!(name, "hello");
        events
    }

    /// The next whole event: (name, data). Keep-alive comments are skipped.
    async fn next(&mut self, deadline: Instant) -> (String, String) {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if !name.is_empty() {
                    return (name, data);
                }
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.stream.chunk())
                .await
                .unwrap_or_else(|_| panic!("no event in time; unread: {}", self.buf))
                .unwrap()
                .expect("the event stream stays open");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Reads events until one's data contains `text`; returns all read, that one included.
    async fn until(&mut self, text: &str) -> Vec<(String, String)> {
        self.until_event(|_, data| data.contains(text)).await
    }

    /// Reads events until `this(name, data)` holds for one; returns all read, that one
    /// included.
    async fn until_event(&mut self, this: impl Fn(&str, &str) -> bool) -> Vec<(String, String)> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut seen = Vec::new();
        loop {
            let e = self.next(deadline).await;
            let done = this(&e.0, &e.1);
            seen.push(e);
            if done {
                return seen;
            }
        }
    }

    /// Sends the marker and returns every event before it.
    async fn mark(&mut self, s: &TestServer, session: &Session) -> Vec<(String, String)> {
        let res = s
            .post_htmx("/settings/mode", session, &[("mode", "advanced")])
            .await;
        assert_eq!(res.status(), 200, "the marker");
        let mut seen = self.until(MARKER).await;
        seen.pop();
        seen
    }
}

/// Text without tags, whitespace collapsed.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Ids of this run, as (event name, id, what the comparison calls it): each face adds its own
/// device and deployment.
type Ids = [(&'static str, i64, &'static str)];

/// One event as the comparison sees it: an audit record as actor, action and detail (its time
/// dropped); a toast as its words; an id of this run as the name given in `ids`.
fn normal(name: &str, data: &str, ids: &Ids) -> String {
    match name {
        "audit" => {
            let cells: Vec<&str> = data.split("<td>").skip(2).collect();
            assert_eq!(cells.len(), 3, "an audit row: {data}");
            let (detail, action) = cells[1]
                .split_once("<code class=\"muted\">")
                .unwrap_or_else(|| panic!("the row shows its action (Advanced): {data}"));
            format!(
                "audit [{}] {}: {}",
                text(action),
                text(cells[0]),
                text(detail)
            )
        }
        "toast" => format!("toast {}", text(data)),
        _ => {
            let data = ids
                .iter()
                .find(|(event, id, _)| *event == name && id.to_string() == data)
                .map_or(data, |(_, _, as_)| as_);
            format!("{name} {data}")
        }
    }
}

/// The events of one step, normalised and without repeats (a device re-check may be announced
/// more than once).
fn normalised(events: &[(String, String)], ids: &Ids) -> BTreeSet<String> {
    events.iter().map(|(n, d)| normal(n, d, ids)).collect()
}

/// Matches the event announcing a check of device `id` (the first check after an add, the
/// re-check after a deploy: both run in the background).
fn checked(id: i64) -> impl Fn(&str, &str) -> bool {
    move |name, data| name == "devices" && data == id.to_string()
}

/// Asserts both faces of an action did the same, and that it did something visible.
fn same(what: &str, form: &BTreeSet<String>, api: &BTreeSet<String>, expect: &[&str]) {
    assert_eq!(
        form, api,
        "{what}: the form and the API audit and announce the same"
    );
    for e in expect {
        assert!(
            form.iter().any(|x| x.contains(e)),
            "{what}: “{e}” among {form:#?}"
        );
    }
}

#[tokio::test]
async fn update_settings_do_the_same_through_the_form_and_the_api() {
    let data = data_dir("faces-updates");
    let mut o = Options::new("faces-updates");
    o.data = Some(data.clone());
    o.ota = homelabd::config::OtaConfig {
        rauc: PathBuf::from("/nonexistent/rauc"),
        reboot_request: data.join("run/reboot"),
        ..homelabd::config::OtaConfig::default()
    };
    let s = start_with(o).await;
    let (session, _) = s.claim().await;
    let mut events = Events::open(&s, &session).await;
    // Nothing answers there: the check the new address triggers fails at once.
    let url = "http://127.0.0.1:1/manifest.json";

    let res = s
        .post_htmx("/settings/updates/channel", &session, &[("url", url)])
        .await;
    assert_eq!(res.status(), 200);
    let form = normalised(&events.mark(&s, &session).await, &[]);
    let res = s
        .api(&session, Method::PUT, "/api/v1/system/update/channel")
        .json(&serde_json::json!({"url": url, "window": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let api = normalised(&events.mark(&s, &session).await, &[]);
    same(
        "setting the update channel",
        &form,
        &api,
        &[
            "audit [system.update] admin: Set the update channel to http://127.0.0.1:1/manifest.json (updates only by hand)",
            "update changed",
        ],
    );

    let res = s.post_htmx("/settings/updates/check", &session, &[]).await;
    assert_eq!(res.status(), 200);
    let form = normalised(&events.mark(&s, &session).await, &[]);
    let res = s
        .api(&session, Method::POST, "/api/v1/system/update/check")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let api = normalised(&events.mark(&s, &session).await, &[]);
    same("checking the channel", &form, &api, &["update changed"]);

    let res = s.post_htmx("/settings/updates/reboot", &session, &[]).await;
    assert_eq!(res.status(), 200);
    let form = normalised(&events.mark(&s, &session).await, &[]);
    let res = s
        .api(&session, Method::POST, "/api/v1/system/update/reboot")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let api = normalised(&events.mark(&s, &session).await, &[]);
    same(
        "restarting",
        &form,
        &api,
        &["audit [system.reboot] admin: Restarted the box"],
    );
}

#[tokio::test]
async fn adding_and_removing_a_device_do_the_same_through_the_form_and_the_api() {
    const DEVICE: &str = "server-02";
    let mut o = Options::new("faces-devices");
    // No background poll: a device is announced only when an action re-checks it.
    o.poll_interval = Duration::from_secs(3600);
    let s = start_with(o).await;
    let (session, _) = s.claim().await;
    let mut events = Events::open(&s, &session).await;

    // Through the form (waiting for the first check, which the add asks for).
    let id = add_lab_device(&s, &session, "Faces", DEVICE).await;
    let ids = [("devices", id, "{device}")];
    let mut seen = events.until_event(checked(id)).await;
    seen.extend(events.mark(&s, &session).await);
    let form_add = normalised(&seen, &ids);
    let res = s
        .post_htmx(
            &format!("/devices/{id}/remove"),
            &session,
            &[("clean", "on")],
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let form_remove = normalised(&events.mark(&s, &session).await, &ids);

    // Through the API.
    let res = s
        .api(&session, Method::POST, "/api/v1/devices")
        .json(&serde_json::json!({
            "name": "Faces", "host": lab::ip(DEVICE), "username": "homelab",
            "password": lab::password(),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id: i64 = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    eventually("the first check", Duration::from_secs(60), || async {
        let d = s
            .api_get_json(&session, &format!("/api/v1/devices/{id}"))
            .await;
        if d["state"] == "online" {
            Ok(())
        } else {
            Err(d.to_string())
        }
    })
    .await;
    let ids = [("devices", id, "{device}")];
    let mut seen = events.until_event(checked(id)).await;
    seen.extend(events.mark(&s, &session).await);
    let api_add = normalised(&seen, &ids);
    let res = s
        .api(
            &session,
            Method::DELETE,
            &format!("/api/v1/devices/{id}?clean=true"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let api_remove = normalised(&events.mark(&s, &session).await, &ids);

    let ip = lab::ip(DEVICE);
    same(
        "adding a device",
        &form_add,
        &api_add,
        &[
            &format!("audit [device.add] admin: Added device “Faces” (homelab@{ip}:22)"),
            "devices {device}",
        ],
    );
    same(
        "removing a device",
        &form_remove,
        &api_remove,
        &[
            "audit [device.remove] admin: Removed device “Faces” and removed its key from the device",
            "devices {device}",
        ],
    );
}

#[tokio::test]
async fn app_actions_do_the_same_through_the_form_and_the_api() {
    const DEVICE: &str = "nas-01";
    let slug = "faces-web";
    let image = "example/faces-web:1.0";
    let data = data_dir("faces-apps");
    stand_in_recipe(&data, slug, image, 18090);
    let mut o = Options::new("faces-apps");
    o.data = Some(data.clone());
    o.poll_interval = Duration::from_secs(3600);
    let s = start_with(o).await;
    let (session, _) = s.claim().await;
    lab::clean_app(DEVICE, slug);
    assert!(
        lab::exec_ok(DEVICE, &["docker", "tag", "homelab-lab/app-stub:1", image]),
        "tag {image} on {DEVICE}"
    );
    let device = add_lab_device(&s, &session, "Faces NAS", DEVICE).await;
    let mut events = Events::open(&s, &session).await;
    let running = format!("{slug} is running on Faces NAS.");
    let wait_running = |id: i64| {
        let s = &s;
        let session = &session;
        async move {
            eventually("the deployment", Duration::from_secs(120), || async {
                let d = s
                    .api_get_json(session, &format!("/api/v1/deployments/{id}"))
                    .await;
                if d["state"] == "running" {
                    Ok(())
                } else {
                    Err(d.to_string())
                }
            })
            .await
        }
    };

    // Deploy through the form; its events are all in once the engine says it runs.
    let device_field = device.to_string();
    let res = s
        .post_htmx(
            &format!("/apps/{slug}/deploy"),
            &session,
            &[("device", device_field.as_str())],
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let target = res.headers()["hx-redirect"].to_str().unwrap().to_string();
    let form_id: i64 = target.rsplit('/').next().unwrap().parse().unwrap();
    wait_running(form_id).await;
    let mut seen = events.until(&running).await;
    // The engine re-checks the device last, in the background.
    seen.extend(events.until_event(checked(device)).await);
    seen.extend(events.mark(&s, &session).await);
    let ids = [
        ("devices", device, "{device}"),
        ("deploy", form_id, "{deployment}"),
    ];
    let form_deploy = normalised(&seen, &ids);

    let res = s
        .post_htmx(&format!("/apps/{slug}/action/restart"), &session, &[])
        .await;
    assert_eq!(res.status(), 200);
    let form_restart = normalised(&events.mark(&s, &session).await, &ids);
    let res = s
        .api(
            &session,
            Method::POST,
            &format!("/api/v1/applications/{slug}/restart"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let api_restart = normalised(&events.mark(&s, &session).await, &ids);

    let res = s
        .post_htmx(
            &format!("/apps/{slug}/remove"),
            &session,
            &[("delete_data", "on")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let form_remove = normalised(&events.mark(&s, &session).await, &ids);

    // Deploy and remove through the API.
    let res = s
        .api(
            &session,
            Method::POST,
            &format!("/api/v1/applications/{slug}/deploy"),
        )
        .json(&serde_json::json!({"device_id": device}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let api_id = res.json::<serde_json::Value>().await.unwrap()["deployment_id"]
        .as_i64()
        .unwrap();
    wait_running(api_id).await;
    let mut seen = events.until(&running).await;
    // The engine re-checks the device last, in the background.
    seen.extend(events.until_event(checked(device)).await);
    seen.extend(events.mark(&s, &session).await);
    let ids = [
        ("devices", device, "{device}"),
        ("deploy", api_id, "{deployment}"),
    ];
    let api_deploy = normalised(&seen, &ids);
    let res = s
        .api(
            &session,
            Method::DELETE,
            &format!("/api/v1/applications/{slug}?delete_data=true"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let api_remove = normalised(&events.mark(&s, &session).await, &ids);
    // Homelab's key off the lab device again.
    let res = s
        .api(
            &session,
            Method::DELETE,
            &format!("/api/v1/devices/{device}?clean=true"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);

    same(
        "deploying",
        &form_deploy,
        &api_deploy,
        &[
            &format!("audit [app.deploy_requested] admin: Asked to deploy {slug}"),
            "deploy {deployment}",
        ],
    );
    same(
        "restarting an app",
        &form_restart,
        &api_restart,
        &[
            &format!("audit [app.lifecycle] admin: {slug} restarted."),
            &format!("Done: {slug} restarted."),
        ],
    );
    same(
        "removing an app",
        &form_remove,
        &api_remove,
        &[
            &format!("apps {slug}"),
            &format!("Done: {slug} and its data were removed."),
        ],
    );
}
