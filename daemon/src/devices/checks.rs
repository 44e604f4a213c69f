//! "Test connection": what a device needs (reachable, login works, Docker usable, Compose) and,
//! for each problem, how to fix it in plain words.

use std::sync::Arc;

use serde::Serialize;

use crate::ssh::{self, RemoteCommand, Session, SshError};

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked, in plain words ("Reach the device").
    pub label: &'static str,
    pub outcome: Outcome,
    pub message: String,
    /// What the user can do, when something is wrong.
    pub fix: Option<String>,
    /// A command to copy, when one fixes it.
    pub command: Option<String>,
    /// The same check in Basic mode's words (no product names, addresses with ports, or
    /// system errors); `None` where the technical wording is already plain.
    #[serde(skip)]
    pub plain: Plain,
}

/// What Basic mode shows of a check instead of its technical wording.
#[derive(Debug, Clone, Default)]
pub struct Plain {
    pub label: Option<&'static str>,
    pub message: Option<String>,
    pub fix: Option<String>,
}

/// The whole report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
    pub host_key_fingerprint: Option<String>,
    pub hostname: Option<String>,
    pub docker_version: Option<String>,
    /// Docker is missing and Homelab can install it ("Install Docker for me").
    pub docker_install: Option<super::install::Assessment>,
}

impl Report {
    /// No check failed (warnings are fine).
    pub fn ok(&self) -> bool {
        !self.checks.iter().any(|c| c.outcome == Outcome::Fail)
    }

    pub fn push(
        &mut self,
        label: &'static str,
        outcome: Outcome,
        message: impl Into<String>,
    ) -> &mut Check {
        self.checks.push(Check {
            label,
            outcome,
            message: message.into(),
            fix: None,
            command: None,
            plain: Plain::default(),
        });
        self.checks.last_mut().expect("just pushed")
    }
}

impl Check {
    pub fn fix(&mut self, fix: impl Into<String>) -> &mut Check {
        self.fix = Some(fix.into());
        self
    }
    pub fn command(&mut self, cmd: impl Into<String>) -> &mut Check {
        self.command = Some(cmd.into());
        self
    }
    /// Basic mode's label and message for this check.
    pub fn plain(&mut self, label: &'static str, message: impl Into<String>) -> &mut Check {
        self.plain.label = Some(label);
        self.plain.message = Some(message.into());
        self
    }
    /// Basic mode's fix (commands are never shown there).
    pub fn plain_fix(&mut self, fix: impl Into<String>) -> &mut Check {
        self.plain.fix = Some(fix.into());
        self
    }
}

/// Adds the failing check for an SSH error.
pub fn connection_failed(report: &mut Report, e: &SshError, user: &str) {
    let plain = e.plain();
    match e {
        SshError::AuthFailed { .. } => {
            report.push("Reach the device", Outcome::Pass, "The device answered.");
            report
                .push("Log in", Outcome::Fail, e.to_string())
                .fix(format!("Check the password or key for “{user}”, and that this user may log in remotely."))
                .plain("Log in", plain)
                .plain_fix(format!("Check the password for “{user}”, and that this user may log in from another computer."));
        }
        SshError::HostKeyChanged { .. } => {
            report.push("Reach the device", Outcome::Pass, "The device answered.");
            report
                .push("Device identity", Outcome::Fail, e.to_string())
                .plain("Device identity", plain);
        }
        SshError::Key(_) => {
            report
                .push("Device login", Outcome::Fail, e.to_string())
                .plain("Device login", plain);
        }
        SshError::Refused { .. } => {
            report
                .push("Reach the device", Outcome::Fail, e.to_string())
                .command(
                    "sudo apt-get install -y openssh-server && sudo systemctl enable --now ssh",
                )
                .plain("Reach the device", plain);
        }
        _ => {
            report
                .push("Reach the device", Outcome::Fail, e.to_string())
                .plain("Reach the device", plain);
        }
    }
}

/// Basic mode's label for every check of the app engine (Docker and Compose).
const READY_FOR_APPS: &str = "Ready for apps";
/// Where Basic mode sends the owner for a command it does not show.
const SEE_ADVANCED: &str = "Advanced mode (in Settings) shows the command to run on the device.";

/// Decides from the device's point of view whether Docker is there, running, usable by this
/// user, and whether Compose is installed. Fixed script; the socket path is data ($1).
const DOCKER_PROBE: &str = include_str!("docker_probe.sh");

/// Checks Docker on a logged-in device; returns the negotiated client when Docker is usable.
pub async fn docker(
    report: &mut Report,
    session: &Arc<Session>,
    socket: &str,
    user: &str,
) -> Option<bollard::Docker> {
    let probe = session
        .exec(
            &RemoteCommand::script(DOCKER_PROBE, [socket]),
            None,
            ssh::EXEC_TIMEOUT,
        )
        .await;
    let verdict = match probe {
        Ok(out) => out.stdout_text().trim().to_string(),
        Err(e) => {
            report
                .push(
                    "Docker",
                    Outcome::Fail,
                    format!("Could not check Docker: {e}"),
                )
                .plain(
                    READY_FOR_APPS,
                    format!(
                        "Could not check whether the device is ready for apps. {}",
                        e.plain()
                    ),
                );
            return None;
        }
    };
    match verdict.as_str() {
        "NO_DOCKER" => {
            let assessment = super::install::assess(session).await.ok();
            let command = assessment
                .as_ref()
                .map(|a| a.family.manual_command(user))
                .unwrap_or_else(|| super::install::Family::Other.manual_command(user));
            let check = report
                .push(
                    "Docker",
                    Outcome::Fail,
                    "Docker is not installed on this device.",
                )
                .command(command)
                .plain(READY_FOR_APPS, "This device is not set up for apps yet.");
            use super::install::{Family, Privilege};
            match &assessment {
                Some(a) if a.family != Family::Other && a.privilege != Privilege::None => {
                    check.fix(format!(
                        "Homelab can install it for you from {}'s own packages, or run this on the device, then test again.",
                        a.system
                    )).plain_fix("Homelab can set it up for you: press “Set it up for apps” below.");
                    report.docker_install = assessment;
                }
                Some(a) if a.privilege == Privilege::None => {
                    check.fix(format!(
                        "“{user}” cannot become root there (no sudo), so Homelab cannot install it. Run this as root, then test again."
                    )).plain_fix(format!(
                        "“{user}” may not make changes to this device, so Homelab cannot set it up. Log in as its administrator instead. {SEE_ADVANCED}"
                    ));
                }
                _ => {
                    check
                        .fix("Install Docker on the device, then test again.")
                        .plain_fix(format!("Homelab does not know how to set up this kind of device. {SEE_ADVANCED}"));
                }
            }
            return None;
        }
        "NOT_RUNNING" => {
            report
                .push(
                    "Docker",
                    Outcome::Fail,
                    format!("Docker is installed but not running (no socket at {socket})."),
                )
                .fix("Start Docker and make it start at boot, then test again.")
                .command("sudo systemctl enable --now docker")
                .plain(READY_FOR_APPS, "The device has what apps need, but it is switched off.")
                .plain_fix(format!("Switch it on and make it start with the device, then test again. {SEE_ADVANCED}"));
            return None;
        }
        "NO_ACCESS" => {
            report
                .push(
                    "Docker",
                    Outcome::Fail,
                    format!("“{user}” is not allowed to use Docker on this device."),
                )
                .fix("Add the user to the docker group, then test again.")
                .command(format!(
                    "sudo usermod -aG docker {}",
                    ssh::command::quote(user)
                ))
                .plain(
                    READY_FOR_APPS,
                    format!("“{user}” may not run apps on this device."),
                )
                .plain_fix(format!(
                    "Allow this login to run apps, then test again. {SEE_ADVANCED}"
                ));
            return None;
        }
        _ => {}
    }
    let docker = match crate::docker::connect(session.clone(), socket).await {
        Ok(d) => d,
        Err(e) => {
            // The socket is there and usable, so the usual cause is sshd refusing to forward it.
            report
                .push("Docker", Outcome::Fail, format!("Docker could not be reached over the device login: {e}"))
                .fix("Allow socket forwarding in the device's SSH server settings, then restart it.")
                .command("echo 'AllowStreamLocalForwarding yes' | sudo tee /etc/ssh/sshd_config.d/homelab.conf && sudo systemctl restart ssh")
                .plain(READY_FOR_APPS, "The device's remote login settings keep Homelab from starting apps there.")
                .plain_fix(format!("Change one remote login setting on the device, then test again. {SEE_ADVANCED}"));
            return None;
        }
    };
    match docker.version().await {
        Ok(v) => {
            let version = v.version.unwrap_or_default();
            report
                .push(
                    "Docker",
                    Outcome::Pass,
                    format!(
                        "Docker {version} is running (API {}).",
                        v.api_version.unwrap_or_default()
                    ),
                )
                .plain(READY_FOR_APPS, "The device is ready for apps.");
            report.docker_version = Some(version);
        }
        Err(e) => {
            report
                .push(
                    "Docker",
                    Outcome::Fail,
                    format!("Docker did not answer: {e}"),
                )
                .plain(
                    READY_FOR_APPS,
                    "The device's app engine did not answer. Try again in a minute.",
                );
            return None;
        }
    }
    match verdict.as_str() {
        "COMPOSE_V2" => {
            report
                .push("Compose", Outcome::Pass, "Docker Compose v2 is installed.")
                .plain("Installing apps", "Homelab can install apps here.");
        }
        "COMPOSE_V1" => {
            report
                .push(
                    "Compose",
                    Outcome::Pass,
                    "docker-compose (v1) is installed.",
                )
                .plain("Installing apps", "Homelab can install apps here.");
        }
        _ => {
            report
                .push("Compose", Outcome::Warn, "Docker Compose is not installed; apps will need it.")
                .fix("Install the Compose plugin.")
                .command("sudo apt-get install -y docker-compose-plugin || sudo apt-get install -y docker-compose")
                .plain("Installing apps", "One part apps need to install is missing on this device.")
                .plain_fix(SEE_ADVANCED);
        }
    }
    Some(docker)
}
