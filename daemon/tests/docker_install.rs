//! "Install Docker for me" on bare-01, a lab device that is a fresh Debian without Docker: its
//! login may use sudo with its password, and its apt knows only the lab's package mirror. The
//! install is real (apt, Debian's docker.io, its init script, the docker group); `lab reset`
//! puts the device back as it was, before and after.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use common::*;

const DEVICE: &str = "bare-01";

/// Puts bare-01 back without Docker when dropped, so later tests (and runs) see it bare.
struct ResetAfter;

impl Drop for ResetAfter {
    fn drop(&mut self) {
        lab::run(&["reset", DEVICE]);
    }
}

fn docker_on_device() -> bool {
    lab::exec_ok(DEVICE, &["sh", "-c", "command -v dockerd >/dev/null"])
}

#[tokio::test]
async fn docker_is_installed_for_the_user_then_the_device_is_added() {
    if docker_on_device() {
        lab::run(&["reset", DEVICE]);
    }
    let _reset = ResetAfter;
    assert!(!docker_on_device(), "bare-01 starts without Docker");

    let s = start_with(Options::new("docker-install")).await;
    let (session, _) = s.claim().await;
    // Advanced mode: this test reads the technical detail (system, commands, sudo's words).
    let res = s
        .post_htmx("/settings/mode", &session, &[("mode", "advanced")])
        .await;
    assert_eq!(res.status(), 200);
    let pw = lab::password();
    let ip = lab::ip(DEVICE);
    let form = |extra: &[(&'static str, String)]| {
        let mut f: Vec<(&str, String)> = vec![
            ("name", "Bare".to_string()),
            ("host", ip.clone()),
            ("username", "homelab".to_string()),
            ("method", "password".to_string()),
            ("password", pw.clone()),
        ];
        f.extend(extra.iter().cloned());
        f
    };
    let post = |path: &'static str, f: Vec<(&'static str, String)>| {
        let s = &s;
        let session = &session;
        async move {
            let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let res = s.post_htmx(path, session, &pairs).await;
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };

    // The test offers the install and names the device's identity.
    let (status, html) = post("/devices/test", form(&[])).await;
    assert_eq!(status, 200);
    assert!(html.contains("Install Docker for me"), "{html}");
    assert!(
        html.contains("Debian GNU/Linux"),
        "names the system: {html}"
    );
    let fingerprint = extract_between(&html, "name=\"fingerprint\" value=\"", "\"").unwrap();
    assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");

    // Another identity than the tested one: refused before anything runs.
    let (status, html) = post(
        "/devices/install-docker",
        form(&[("fingerprint", "SHA256:not-the-device".to_string())]),
    )
    .await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("Nothing was installed"), "{html}");
    assert!(!docker_on_device());

    // A wrong sudo password: sudo refuses, the device is untouched.
    let (status, html) = post(
        "/devices/install-docker",
        form(&[
            ("fingerprint", fingerprint.clone()),
            ("sudo_password", "not-the-password".to_string()),
        ]),
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("sudo did not accept the password for “homelab”"),
        "{html}"
    );
    assert!(html.contains("Not ready yet"), "{html}");
    assert!(
        !docker_on_device(),
        "nothing installed after a refused sudo"
    );

    // The real install: sudo with the login's password, apt from the mirror, Docker started.
    let (status, html) = post(
        "/devices/install-docker",
        form(&[("fingerprint", fingerprint.clone())]),
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Docker is installed"), "{html}");
    assert!(
        html.contains("Installing Docker</li>"),
        "steps listed: {html}"
    );
    assert!(
        html.contains("Ready to add"),
        "the checks pass afterwards: {html}"
    );
    assert!(html.contains("Docker 20."), "{html}");
    assert!(docker_on_device());
    assert!(
        lab::exec_ok(DEVICE, &["test", "-S", "/run/docker.sock"]),
        "the engine is running"
    );
    // Started at boot from now on (sysvinit links, as this device has no systemd).
    assert!(lab::exec_ok(
        DEVICE,
        &["sh", "-c", "ls /etc/rc2.d | grep -q docker"]
    ));

    // Again, over the API: safe to repeat, nothing left to install.
    s.post_htmx("/settings/mode", &session, &[("mode", "advanced")])
        .await;
    let token = s.api_token(&session, "install").await;
    let res = s
        .client
        .post(s.url("/api/v1/devices/install-docker"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "name": "Bare", "host": ip, "username": "homelab", "password": pw,
            "host_key_fingerprint": fingerprint,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let j: serde_json::Value = res.json().await.unwrap();
    assert_eq!(j["installed"], true, "{j}");
    assert!(
        !j["steps"].to_string().contains("Compose"),
        "Compose was already there: {j}"
    );
    assert!(
        j["report"]["docker_version"]
            .as_str()
            .unwrap()
            .starts_with("20."),
        "{j}"
    );

    // Now it can be added, and it is polled like any other device.
    let id = add_lab_device(&s, &session, "Bare", DEVICE).await;
    let body = s
        .get(&format!("/api/v1/devices/{id}"), &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains("\"state\":\"online\""), "{body}");

    // Every attempt is in the audit log, the refusal included.
    let audit = s.get("/settings", &session).await.text().await.unwrap();
    assert!(audit.contains("Installed Docker on homelab@"), "{audit}");
    assert!(
        audit.contains("failed: sudo did not accept the password"),
        "{audit}"
    );
}
