//! The `homelabd` binary itself: subcommands, JSON logs, setup code, graceful SIGTERM.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn version_subcommand() {
    let out = Command::new(BIN).arg("version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("homelabd {}", homelabd::VERSION)
    );
}

#[test]
fn healthcheck_fails_when_nothing_listens() {
    let out = Command::new(BIN)
        .args([
            "healthcheck",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not healthy"));
}

#[tokio::test]
async fn runs_logs_json_prints_the_setup_code_and_stops_gracefully_on_sigterm() {
    let data = data_dir("cli");
    let mut d = spawn_daemon("run", &data, &[]);

    // setup-code prints the code the daemon logged at start.
    let out = Command::new(BIN)
        .args(["setup-code", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(code.len(), 9);
    let log = std::fs::read_to_string(&d.log).unwrap();
    assert!(
        log.contains(&format!("\"setup_code\":\"{code}\"")),
        "start log names the code"
    );
    let fingerprint_logged = log.lines().any(|l| l.contains("\"fingerprint\":"));
    assert!(fingerprint_logged);

    // Claim, then hold an event stream open while the daemon is told to stop.
    let client = client();
    let base = format!("http://{}", d.listen);
    let cookie = claim_at(&client, &base, "cli")
        .await
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let stream = client
        .get(format!("{base}/events"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);

    // Every line is JSON, and request lines carry their request id.
    let log = std::fs::read_to_string(&d.log).unwrap();
    for line in log.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    assert!(
        log.lines()
            .any(|l| l.contains("\"path\":\"/setup\"") && l.contains("\"id\":"))
    );

    // Once claimed, setup-code says so.
    let out = Command::new(BIN)
        .args(["setup-code", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already set up"));

    let status = Command::new("kill")
        .args(["-TERM", &d.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = eventually_blocking(
        "the daemon stopping on SIGTERM",
        Duration::from_secs(15),
        || {
            d.child
                .try_wait()
                .unwrap()
                .ok_or_else(|| "still running".to_string())
        },
    );
    assert!(exit.success(), "exit status {exit}");
    drop(stream);
    let log = std::fs::read_to_string(&d.log).unwrap();
    assert!(log.contains("database closed cleanly"));
    assert!(!healthcheck(&d.listen));
}

#[test]
fn console_banner_shows_the_code_and_fingerprint_until_claimed() {
    let data = data_dir("cli-banner");
    let banner = Command::new(BIN)
        .args(["console-banner", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(banner.status.success());
    let text = String::from_utf8(banner.stdout).unwrap();
    let code = Command::new(BIN)
        .args(["setup-code", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let code = String::from_utf8(code.stdout).unwrap().trim().to_string();
    assert!(text.contains(&format!("Setup code: {code}")), "{text}");
    assert!(text.contains("http://homelab.local"));
    // The fingerprint shown is the certificate's (its hex pairs, as the daemon logs them).
    let fingerprint = text
        .lines()
        .skip_while(|l| !l.contains("Certificate fingerprint"))
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    // Both fingerprints, computed by openssl from what the database holds: the box's
    // certificate and the homelab's root.
    let openssl = |pem: String| {
        let mut child = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(pem.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .rsplit('=')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(openssl(box_cert_pem(&data)), fingerprint, "{text}");
    let root = text
        .lines()
        .skip_while(|l| !l.contains("Homelab root fingerprint"))
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(openssl(root_pem(&data)), root, "{text}");
}

#[tokio::test]
async fn a_username_cannot_forge_lines_in_the_text_log() {
    let data = data_dir("cli-log-injection");
    let d = spawn_daemon("log-injection", &data, &[("HOMELAB_LOG_FORMAT", "text")]);
    let base = format!("http://{}", d.listen);
    let client = client();
    claim_at(&client, &base, "log-injection").await;
    // What an attacker types as a username to forge a line that looks like the daemon's own.
    let forged = "FORGED INFO homelabd: the admin password was reset";
    let res = client
        .post(format!("{base}/login"))
        .header("origin", &base)
        .form(&[
            ("username", format!("x\n{forged}\r\u{1b}[2J").as_str()),
            ("password", "wrong-password-guess"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let log = eventually(
        "the failed sign-in to be logged",
        Duration::from_secs(10),
        || {
            let log = std::fs::read_to_string(&d.log).unwrap_or_default();
            async move {
                if log.contains("failed sign-in") {
                    Ok(log)
                } else {
                    Err(log)
                }
            }
        },
    )
    .await;
    let line = log.lines().find(|l| l.contains("failed sign-in")).unwrap();
    assert!(
        line.contains("x\\nFORGED"),
        "the newline is shown escaped: {line}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with(forged)),
        "no line of the log starts with the forged text"
    );
    assert!(
        !log.contains('\u{1b}'),
        "no terminal escape reaches the log"
    );
}
