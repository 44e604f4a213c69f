//! The SSH and Docker-over-SSH layers against the lab's real OpenSSH servers and Docker
//! engines (`lab/lab up` first; tests/run-all does it).

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::sync::Arc;

use common::lab;
use homelabd::secrets::Secret;
use homelabd::ssh::{self, HostKeyPolicy, Login, RemoteCommand, SshError};

fn password_login() -> Login {
    Login::Password {
        user: lab::user(),
        password: Secret::from_string(lab::password()),
    }
}

#[tokio::test]
async fn password_login_runs_escaped_commands_with_stdin() {
    let s = ssh::connect(
        &lab::ip("server-01"),
        22,
        &password_login(),
        HostKeyPolicy::FirstUse,
    )
    .await
    .unwrap();
    let out = s
        .exec(&RemoteCommand::new("hostname"), None, ssh::EXEC_TIMEOUT)
        .await
        .unwrap();
    assert!(out.success());
    assert_eq!(out.stdout_text().trim(), "server-01");
    // Data with every shell metacharacter arrives as data.
    let nasty = "a b'c\"d$(id)`id`;|&<>\\\n*?~#";
    let out = s
        .exec(
            &RemoteCommand::script("printf '%s' \"$1\"; cat", [nasty]),
            Some(b"from stdin"),
            ssh::EXEC_TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), format!("{nasty}from stdin"));
    let out = s
        .exec(
            &RemoteCommand::new("sh").arg("-c").arg("exit 3"),
            None,
            ssh::EXEC_TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(out.status, Some(3));
}

#[tokio::test]
async fn docker_over_ssh_sees_the_devices_own_engine() {
    let s = Arc::new(
        ssh::connect(
            &lab::ip("server-02"),
            22,
            &password_login(),
            HostKeyPolicy::FirstUse,
        )
        .await
        .unwrap(),
    );
    let docker = homelabd::docker::connect(s.clone(), "/var/run/docker.sock")
        .await
        .unwrap();
    let info = docker.info().await.unwrap();
    assert_eq!(info.name.as_deref(), Some("server-02"));
    assert_eq!(info.mem_total, Some(16384 * 1024 * 1024));
    let images = docker
        .list_images(None::<bollard::query_parameters::ListImagesOptions>)
        .await
        .unwrap();
    assert!(
        images
            .iter()
            .any(|i| i.repo_tags.iter().any(|t| t == "homelab-lab/http-stub:1"))
    );
    // Many calls at once over the one SSH connection.
    let calls = (0..50).map(|_| docker.ping());
    for r in futures_util::future::join_all(calls).await {
        r.unwrap();
    }
}

#[tokio::test]
async fn failures_are_classified() {
    let wrong = Login::Password {
        user: lab::user(),
        password: Secret::from_string("not-the-password".into()),
    };
    let e = ssh::connect(&lab::ip("server-01"), 22, &wrong, HostKeyPolicy::FirstUse)
        .await
        .err()
        .unwrap();
    assert!(matches!(e, SshError::AuthFailed { .. }), "{e:?}");
    let e = ssh::connect(
        &lab::ip("server-01"),
        2222,
        &password_login(),
        HostKeyPolicy::FirstUse,
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(e, SshError::Refused { .. }), "{e:?}");
    assert!(e.to_string().contains("SSH"));
    // Nobody has this address on the lab bridge (lab::ip above made sure the bridge is up, so
    // this stays on the machine).
    let e = ssh::connect(
        lab::NOTHING_THERE,
        22,
        &password_login(),
        HostKeyPolicy::FirstUse,
    )
    .await
    .err()
    .unwrap();
    assert!(
        matches!(e, SshError::Unreachable { .. } | SshError::Timeout { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("powered on"));
}

#[tokio::test]
async fn a_pinned_host_key_is_enforced() {
    let first = ssh::connect(
        &lab::ip("server-01"),
        22,
        &password_login(),
        HostKeyPolicy::FirstUse,
    )
    .await
    .unwrap();
    let pinned = first.host_key.clone();
    ssh::connect(
        &lab::ip("server-01"),
        22,
        &password_login(),
        HostKeyPolicy::Pinned(pinned.clone()),
    )
    .await
    .unwrap();
    // Another device's key is not this one's.
    let e = ssh::connect(
        &lab::ip("server-02"),
        22,
        &password_login(),
        HostKeyPolicy::Pinned(pinned),
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(e, SshError::HostKeyChanged { .. }), "{e:?}");
    assert!(e.to_string().contains("Nothing was sent"));
}

#[tokio::test]
async fn a_connection_piling_up_commands_that_outran_their_time_is_replaced() {
    let s = ssh::connect(
        &lab::ip("nas-01"),
        22,
        &password_login(),
        HostKeyPolicy::FirstUse,
    )
    .await
    .unwrap();
    // Each leaves a command running on the device and its channel open; the pool takes a
    // connection that reports itself closed out of use.
    let mut timeouts = 0;
    while !s.is_closed() {
        let e = s
            .exec(
                &RemoteCommand::new("sleep").arg("30"),
                None,
                std::time::Duration::from_millis(50),
            )
            .await
            .err()
            .unwrap();
        assert!(matches!(e, SshError::CommandTimeout(_)), "{e:?}");
        timeouts += 1;
        assert!(
            timeouts <= 32,
            "still in use after {timeouts} timed-out commands"
        );
    }
    assert!(
        timeouts >= 8,
        "replaced after only {timeouts} timed-out commands"
    );
    s.close().await;
}
