//! "Install Docker for me": Docker from the device's own distribution packages (signed, from
//! the mirrors the device already trusts, never a script piped from the internet), started and
//! enabled at boot, with the device login added to the docker group. It runs as root through
//! the login itself, `sudo -n`, or sudo with the password sent over stdin. Every step is
//! idempotent (an install of what is installed changes nothing), so an install that failed or
//! was cut short is finished by running it again; nothing is removed on failure because a
//! package manager stopped half-way is repaired by going forward, not back.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::secrets::Secret;
use crate::ssh::{RemoteCommand, Session, SshError};

/// Package installs can be slow on a Pi with a slow mirror.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// How a login can become root on its device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Privilege {
    Root,
    /// sudo without a password.
    Sudo,
    /// sudo that asks for the user's password.
    SudoPassword,
    /// Neither root nor sudo.
    None,
}

/// What the device is and what its login may do, for the offer and the shown command.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    /// The distribution, as os-release names it ("Debian GNU/Linux 12 (bookworm)").
    pub system: String,
    pub family: Family,
    pub privilege: Privilege,
}

/// Package families the installer knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Debian,
    Fedora,
    Alpine,
    Arch,
    Other,
}

impl Family {
    fn from_os_release(id: &str, id_like: &str) -> Family {
        let words: Vec<&str> = id
            .split_whitespace()
            .chain(id_like.split_whitespace())
            .collect();
        let has = |w: &str| words.contains(&w);
        if has("debian") || has("ubuntu") || has("raspbian") {
            Family::Debian
        } else if has("fedora") {
            Family::Fedora
        } else if has("alpine") {
            Family::Alpine
        } else if has("arch") {
            Family::Arch
        } else {
            Family::Other
        }
    }

    /// The command a user would type to do the same by hand.
    pub fn manual_command(self, user: &str) -> String {
        let group = format!(
            " && sudo usermod -aG docker {}",
            crate::ssh::command::quote(user)
        );
        match self {
            Family::Debian => format!(
                "sudo apt-get update && sudo apt-get install -y docker.io docker-compose{group}"
            ),
            Family::Fedora => format!(
                "sudo dnf install -y moby-engine docker-compose && sudo systemctl enable --now docker{group}"
            ),
            Family::Alpine => {
                "sudo apk add docker docker-cli-compose && sudo rc-update add docker && sudo service docker start".to_string()
                    + &group
            }
            Family::Arch => format!(
                "sudo pacman -S --needed docker docker-compose && sudo systemctl enable --now docker{group}"
            ),
            Family::Other => "curl -fsSL https://get.docker.com | sudo sh".to_string() + &group,
        }
    }
}

/// Reads os-release and whether this login is root, may sudo freely, or must give sudo a
/// password. Fixed script, no parameters.
const ASSESS: &str = include_str!("assess.sh");

pub async fn assess(session: &Session) -> Result<Assessment, SshError> {
    let out = session
        .exec(
            &RemoteCommand::script(ASSESS, [""; 0]),
            None,
            crate::ssh::EXEC_TIMEOUT,
        )
        .await?;
    let text = out.stdout_text();
    let mut lines = text.lines().map(str::trim);
    let id = lines.next().unwrap_or_default();
    let id_like = lines.next().unwrap_or_default();
    let system = lines.next().unwrap_or("unknown Linux").to_string();
    let privilege = match lines.next().unwrap_or_default() {
        "root" => Privilege::Root,
        "sudo" => Privilege::Sudo,
        "sudo-password" => Privilege::SudoPassword,
        _ => Privilege::None,
    };
    Ok(Assessment {
        system,
        family: Family::from_os_release(id, id_like),
        privilege,
    })
}

/// The install, run as root. $1 is the device login to add to the docker group, $2 the Docker
/// socket to wait for. Progress lines start with "STEP "; only a run that reaches "DONE" worked.
/// Packages keep any configuration the owner already has (confold); stdin is closed so no
/// prompt can wait forever.
const INSTALL: &str = include_str!("install_docker.sh");

/// Why an install did not happen or did not finish, in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(
        "Homelab does not know how to install Docker on {0}. Install it by hand with Docker's instructions, then test again."
    )]
    Unsupported(String),
    #[error(
        "“{0}” cannot become root on this device (it is not root and sudo is not installed). Log in as root, or install Docker by hand."
    )]
    NoPrivilege(String),
    #[error(
        "sudo on this device asks for “{0}”'s password. Enter it in “Password for sudo” and try again."
    )]
    PasswordNeeded(String),
    #[error("sudo did not accept the password for “{0}”. Check it and try again.")]
    WrongPassword(String),
    #[error(
        "“{0}” may not use sudo on this device. Add it to the sudo group (as root: usermod -aG sudo {0}), or log in as root."
    )]
    NotSudoer(String),
    #[error(
        "Installing Docker failed while {step}. Nothing else was changed; fix the cause shown below and try again."
    )]
    Failed { step: String, log: String },
    #[error(transparent)]
    Ssh(#[from] SshError),
}

impl InstallError {
    /// The same news for Basic mode, without product or command names.
    pub fn plain(&self) -> String {
        match self {
            InstallError::Unsupported(_) => "Homelab does not know how to set up this kind of device for apps. Advanced mode (in Settings) shows what to do by hand.".into(),
            InstallError::NoPrivilege(user) | InstallError::NotSudoer(user) => format!(
                "“{user}” may not make changes to this device, so Homelab cannot set it up. Log in as the device's administrator instead."
            ),
            InstallError::PasswordNeeded(user) => format!(
                "The device asks for “{user}”'s password before making changes. Enter it in “Password to make changes” and try again."
            ),
            InstallError::WrongPassword(user) => format!(
                "The device did not accept the password for “{user}”. Check it and try again."
            ),
            InstallError::Failed { .. } => "Setting the device up for apps did not finish. Nothing else was changed; Advanced mode (in Settings) shows what the device said. Try again.".into(),
            InstallError::Ssh(e) => e.plain(),
        }
    }

    /// The device's own words, for the page (the package manager's output).
    pub fn log(&self) -> Option<&str> {
        match self {
            InstallError::Failed { log, .. } => Some(log),
            _ => None,
        }
    }
}

/// A finished install.
#[derive(Debug, Clone, Serialize)]
pub struct Installed {
    pub seconds: f64,
    /// Each step the device reported, in order.
    pub steps: Vec<String>,
}

/// Installs Docker. `sudo_password` is needed only when sudo asks for one; it goes over stdin.
pub async fn install(
    session: &Session,
    assessment: &Assessment,
    user: &str,
    socket: &str,
    sudo_password: Option<&Secret>,
) -> Result<Installed, InstallError> {
    if assessment.family == Family::Other {
        return Err(InstallError::Unsupported(assessment.system.clone()));
    }
    let script = RemoteCommand::script(INSTALL, [user, socket]);
    let mut stdin = None;
    let command = match assessment.privilege {
        Privilege::Root => script,
        Privilege::Sudo => script.run_as_root(false),
        Privilege::SudoPassword => {
            let password = sudo_password
                .filter(|p| !p.expose().is_empty())
                .ok_or_else(|| InstallError::PasswordNeeded(user.to_string()))?;
            let mut line = password.expose().to_vec();
            line.push(b'\n');
            stdin = Some(Secret::new(line));
            script.run_as_root(true)
        }
        Privilege::None => return Err(InstallError::NoPrivilege(user.to_string())),
    };
    let started = Instant::now();
    let out = session
        .exec(
            &command,
            stdin.as_ref().map(|s| s.expose()),
            INSTALL_TIMEOUT,
        )
        .await?;
    let stdout = out.stdout_text();
    let steps: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("STEP "))
        .map(str::to_string)
        .collect();
    if out.success() && stdout.lines().any(|l| l == "DONE") {
        return Ok(Installed {
            seconds: started.elapsed().as_secs_f64(),
            steps,
        });
    }
    let stderr = out.stderr_text();
    if steps.is_empty() && !stdout.contains("UNSUPPORTED") {
        // sudo itself refused: the script never started.
        if stderr.contains("incorrect password") || stderr.contains("Sorry, try again") {
            return Err(InstallError::WrongPassword(user.to_string()));
        }
        if stderr.contains("not in the sudoers") || stderr.contains("may not run sudo") {
            return Err(InstallError::NotSudoer(user.to_string()));
        }
        if stderr.contains("password is required") {
            return Err(InstallError::PasswordNeeded(user.to_string()));
        }
    }
    if let Some(system) = stdout.lines().find_map(|l| l.strip_prefix("UNSUPPORTED ")) {
        return Err(InstallError::Unsupported(system.to_string()));
    }
    let step = match steps.last() {
        Some(s) if stdout.contains("NOSOCKET") => {
            format!("{} (Docker did not open {socket})", s.to_lowercase())
        }
        Some(s) => s.to_lowercase(),
        None => "starting".to_string(),
    };
    Err(InstallError::Failed {
        step,
        log: tail(&format!("{stdout}{stderr}"), 30),
    })
}

/// The last `n` lines, the part of a package manager's output that says what went wrong.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        assert_eq!(Family::from_os_release("debian", ""), Family::Debian);
        assert_eq!(Family::from_os_release("ubuntu", "debian"), Family::Debian);
        assert_eq!(
            Family::from_os_release("raspbian", "debian"),
            Family::Debian
        );
        assert_eq!(
            Family::from_os_release("linuxmint", "ubuntu debian"),
            Family::Debian
        );
        assert_eq!(Family::from_os_release("fedora", ""), Family::Fedora);
        assert_eq!(Family::from_os_release("alpine", ""), Family::Alpine);
        assert_eq!(Family::from_os_release("endeavouros", "arch"), Family::Arch);
        assert_eq!(
            Family::from_os_release("rhel", "centos fedora"),
            Family::Fedora
        );
        assert_eq!(Family::from_os_release("nixos", ""), Family::Other);
    }

    #[test]
    fn manual_command_quotes_the_user() {
        let c = Family::Debian.manual_command("bob; touch /tmp/x");
        assert!(c.ends_with("usermod -aG docker 'bob; touch /tmp/x'"), "{c}");
    }

    #[test]
    fn tail_keeps_the_end() {
        assert_eq!(tail("a\n\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
