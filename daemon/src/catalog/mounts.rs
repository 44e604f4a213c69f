//! Which folders of the device a recipe may mount into its containers. A bind mount of `/`,
//! of a system folder or of the Docker socket hands the app the device itself, so a recipe (a
//! user recipe, an imported store) may not do that by accident or on purpose; the one app
//! that needs the Docker socket says so in its manifest (`docker_socket: true`).
//!
//! Checked on the Compose file with its variables filled in: at load with the defaults, and
//! again at deploy with the values the owner chose (a folder setting may be the mount source).

use std::path::{Component, Path, PathBuf};

/// Folders of the device no recipe may mount, nor anything below them: the operating system,
/// its configuration, kernel interfaces, devices, root's home, and the container engines'
/// own state (whoever writes there controls every container).
const SYSTEM_FOLDERS: [&str; 16] = [
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/root",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/usr",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/run/containerd",
    "/var/run/containerd",
];

/// Files below a system folder that apps commonly read to learn the device's time zone; allowed
/// read-only (Home Assistant and Immich mount /etc/localtime).
const READ_ONLY_EXCEPTIONS: [&str; 2] = ["/etc/localtime", "/etc/timezone"];

/// One bind mount to check: its source on the device as written (variables filled in) and
/// whether it is read-only.
pub struct BindMount<'a> {
    pub source: &'a str,
    pub read_only: bool,
}

/// Why a mount source is refused, in words for the recipe's author, or `Ok` when it is fine.
pub fn check(mount: &BindMount<'_>, docker_socket_declared: bool) -> Result<(), String> {
    let source = mount.source.trim();
    if source.starts_with('~') {
        return Err(format!(
            "mounts “{source}”, the home folder of the device's login (its SSH keys live there); \
             mount a folder of the app's own, such as /srv/<app>"
        ));
    }
    if !source.starts_with('/') {
        // Relative to the app's folder on the device; fine unless it climbs out of it.
        if Path::new(source)
            .components()
            .any(|c| c == Component::ParentDir)
        {
            return Err(format!(
                "mounts “{source}”, which climbs out of the app's folder with “..”; \
                 use a folder inside it or an absolute path such as /srv/<app>"
            ));
        }
        return Ok(());
    }
    let path = normalize(source);
    if path == Path::new("/") {
        return Err(format!(
            "mounts “{source}”, the whole file system of the device; mount only the folder the \
             app needs, such as /srv/<app>"
        ));
    }
    if is_docker_socket(&path) {
        if docker_socket_declared {
            return Ok(());
        }
        return Err(format!(
            "mounts “{source}”, the Docker socket, which gives the app full control of the \
             device; a recipe that really needs it says `docker_socket: true` in manifest.yaml"
        ));
    }
    if mount.read_only && READ_ONLY_EXCEPTIONS.iter().any(|e| path == Path::new(e)) {
        return Ok(());
    }
    if let Some(system) = SYSTEM_FOLDERS.iter().find(|s| path.starts_with(s)) {
        return Err(format!(
            "mounts “{source}”, inside the device's system folder {system}; that lets the app \
             read or change the device itself. Mount a folder of the app's own, such as \
             /srv/<app>"
        ));
    }
    Ok(())
}

/// The Docker socket under any of its usual names (`/var/run/docker.sock`, `/run/docker.sock`,
/// a rootless `/run/user/1000/docker.sock`), or the folder holding it.
fn is_docker_socket(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with("docker.sock"))
        || path == Path::new("/run/docker")
        || path == Path::new("/var/run/docker")
        || path == Path::new("/run")
        || path == Path::new("/var/run")
}

/// `path` with `.`, `..` and repeated slashes resolved as text (the device's links are not
/// visible from here): `/srv/../etc//x` is `/etc/x`.
fn normalize(path: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in Path::new(path).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(source: &str) -> Result<(), String> {
        check(
            &BindMount {
                source,
                read_only: false,
            },
            false,
        )
    }

    #[test]
    fn system_folders_and_the_root_are_refused() {
        for bad in [
            "/",
            "//",
            "/etc",
            "/etc/",
            "/etc/shadow",
            "/srv/../etc",
            "/proc",
            "/sys/fs/cgroup",
            "/dev/sda",
            "/boot",
            "/root/.ssh",
            "/usr/bin",
            "/var/lib/docker/volumes",
            "/run/containerd/containerd.sock",
        ] {
            let e = rw(bad).expect_err(bad);
            assert!(e.contains(bad), "{e}");
        }
        assert!(rw("/").unwrap_err().contains("whole file system"));
        assert!(rw("/srv/../etc").unwrap_err().contains("/etc"));
    }

    #[test]
    fn the_docker_socket_needs_a_declaration() {
        for sock in [
            "/var/run/docker.sock",
            "/run/docker.sock",
            "/run/user/1000/docker.sock",
            "/var/run",
        ] {
            let m = BindMount {
                source: sock,
                read_only: true,
            };
            assert!(
                check(&m, false)
                    .unwrap_err()
                    .contains("docker_socket: true")
            );
            assert!(check(&m, true).is_ok(), "{sock}");
        }
    }

    #[test]
    fn ordinary_folders_and_the_time_zone_are_fine() {
        for ok in [
            "/srv/media",
            "/mnt/usb/photos",
            "/home/pi/media",
            "/run/dbus",
            "./config",
        ] {
            assert!(rw(ok).is_ok(), "{ok}");
        }
        let tz = BindMount {
            source: "/etc/localtime",
            read_only: true,
        };
        assert!(check(&tz, false).is_ok());
        assert!(
            rw("/etc/localtime").is_err(),
            "writable, it is a system file"
        );
        assert!(rw("~/.ssh").unwrap_err().contains("home folder"));
        assert!(rw("../../etc").unwrap_err().contains(".."));
    }
}
