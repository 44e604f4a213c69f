//! Disks plugged into the box as backup destinations: which are there (a USB disk, or another
//! disk the box did not start from), and whether a folder may hold backups: never on the card
//! or disk Homelab itself runs from (a backup there is lost with it, and backups' writes wear
//! an SD card out), never in memory or on a network share (add that as a NAS instead).
//! Read from the kernel's own tables (`/proc/self/mountinfo`, `/sys/dev/block`).

use std::path::{Path, PathBuf};

/// The repository's folder on a disk the owner chose (beside whatever else the disk holds).
pub const FOLDER: &str = "homelab-backups";

/// A disk with a file system the box can write to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxDisk {
    /// Where its file system is mounted.
    pub mount: PathBuf,
    /// The kernel's name of the whole disk (`sda`, `mmcblk0`, `loop3`).
    pub name: String,
    /// Plugged in over USB.
    pub usb: bool,
    /// Its maker's model name, when it says one.
    pub model: String,
    pub total: u64,
    pub free: u64,
}

impl BoxDisk {
    /// "USB disk SanDisk Cruzer (58 GB)".
    pub fn words(&self) -> String {
        let what = if self.usb { "USB disk" } else { "Disk" };
        let model = if self.model.is_empty() {
            &self.name
        } else {
            &self.model
        };
        format!("{what} {model} ({})", crate::units::human_bytes(self.total))
    }
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone)]
struct Mount {
    /// `major:minor` as the file system gives it (major 0: no disk, e.g. tmpfs, overlay, NFS,
    /// or a disk whose file system numbers itself: see `block`).
    dev: (u32, u32),
    /// The folder of its file system mounted here (`/` unless it is a bind mount).
    root: String,
    point: PathBuf,
    fstype: String,
    /// What was mounted (`/dev/sdb1`, or a name for what is no device).
    source: String,
}

impl Mount {
    /// The block device under it: its own number, or for a file system that numbers itself
    /// anonymously (btrfs: major 0) the device it was mounted from.
    fn block(&self) -> Option<(u32, u32)> {
        if self.dev.0 != 0 {
            return Some(self.dev);
        }
        if !self.source.starts_with("/dev/") {
            return None;
        }
        let st = nix::sys::stat::stat(self.source.as_str()).ok()?;
        let kind = nix::sys::stat::SFlag::from_bits_truncate(st.st_mode);
        if !kind.contains(nix::sys::stat::SFlag::S_IFBLK) {
            return None;
        }
        let rdev = st.st_rdev;
        Some((
            u32::try_from(nix::sys::stat::major(rdev)).ok()?,
            u32::try_from(nix::sys::stat::minor(rdev)).ok()?,
        ))
    }
}

/// Undoes mountinfo's octal escapes (`\040` is a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let (major, minor) = f.get(2)?.split_once(':')?;
            Some(Mount {
                dev: (major.parse().ok()?, minor.parse().ok()?),
                root: unescape(f.get(3)?),
                point: PathBuf::from(unescape(f.get(4)?)),
                fstype: right.split(' ').next()?.to_string(),
                source: unescape(right.split(' ').nth(1).unwrap_or_default()),
            })
        })
        .collect()
}

fn mounts() -> Vec<Mount> {
    parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
}

/// The mount a path is on: the longest mount point it is under (the last mounted wins).
fn mount_of<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| path.starts_with(&m.point))
        .max_by_key(|(i, m)| (m.point.components().count(), *i))
        .map(|(_, m)| m)
}

/// The whole disk's sysfs folder for a device (a partition's parent).
fn whole_disk(dev: (u32, u32)) -> Option<PathBuf> {
    let sys = std::fs::canonicalize(format!("/sys/dev/block/{}:{}", dev.0, dev.1)).ok()?;
    if sys.join("partition").exists() {
        sys.parent().map(Path::to_path_buf)
    } else {
        Some(sys)
    }
}

/// The disk (or, for a file system on no disk, the file system) holding `path`.
fn identity(mounts: &[Mount], path: &Path) -> Option<Identity> {
    let m = mount_of(mounts, path)?;
    Some(match m.block().and_then(whole_disk) {
        Some(disk) => Identity::Disk(disk),
        None => Identity::NoDisk(m.dev),
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Identity {
    Disk(PathBuf),
    NoDisk((u32, u32)),
}

/// The nearest folder of `path` that exists (a folder to be made is judged by where it goes).
fn existing(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    loop {
        if let Ok(c) = std::fs::canonicalize(&p) {
            return c;
        }
        if !p.pop() {
            return PathBuf::from("/");
        }
    }
}

fn describe(m: &Mount, disk: &Path) -> BoxDisk {
    let read = |f: &str| {
        std::fs::read_to_string(disk.join(f))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let (total, free) = space(&m.point).unwrap_or((0, 0));
    BoxDisk {
        mount: m.point.clone(),
        name: disk
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        usb: disk.to_string_lossy().contains("/usb"),
        model: read("device/model"),
        total,
        free,
    }
}

/// A file system's usable size and free bytes (as `df` counts them: what the owner may fill).
pub fn space(path: &Path) -> Option<(u64, u64)> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    let block = s.fragment_size() as u64;
    let free = s.blocks_available() as u64 * block;
    let used = (s.blocks() as u64).saturating_sub(s.blocks_free() as u64) * block;
    Some((used + free, free))
}

/// File systems that hold nothing across a restart, or belong to the system.
const NOT_FOR_BACKUPS: [&str; 9] = [
    "tmpfs", "ramfs", "devtmpfs", "proc", "sysfs", "squashfs", "overlay", "iso9660", "autofs",
];

/// The disks the owner can choose: mounted, writable kinds, not the one holding `data`.
pub fn disks(data: &Path) -> Vec<BoxDisk> {
    let all = mounts();
    let ours = identity(&all, &existing(data));
    let root = identity(&all, Path::new("/"));
    let mut seen = Vec::new();
    let mut found = Vec::new();
    for m in &all {
        let Some(dev) = m.block() else {
            continue;
        };
        if m.root != "/"
            || NOT_FOR_BACKUPS.contains(&m.fstype.as_str())
            || ["/proc", "/sys", "/dev", "/boot", "/efi"]
                .iter()
                .any(|p| m.point.starts_with(p))
            || seen.contains(&dev)
        {
            continue;
        }
        let Some(disk) = whole_disk(dev) else {
            continue;
        };
        let id = Some(Identity::Disk(disk.clone()));
        if id == ours || id == root {
            continue;
        }
        seen.push(dev);
        found.push(describe(m, &disk));
    }
    found
}

/// Whether `folder` may hold backups, and the disk it is on; the refusal says why and what to
/// do instead.
pub fn check_folder(folder: &Path, data: &Path) -> Result<BoxDisk, String> {
    if !folder.is_absolute() {
        return Err("Give the whole path of a folder on the disk, starting with /.".into());
    }
    if folder
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err("Give the folder's path without “..” in it.".into());
    }
    let all = mounts();
    let at = existing(folder);
    let Some(m) = mount_of(&all, &at) else {
        return Err("That folder is on no disk this box knows.".into());
    };
    let block = m.block();
    if block.is_none() || NOT_FOR_BACKUPS.contains(&m.fstype.as_str()) {
        return Err(format!(
            "{} is not on a disk plugged into this box (it is {}). Plug in a USB disk and choose it; a shared folder on another computer is added as a NAS instead.",
            folder.display(),
            if matches!(m.fstype.as_str(), "tmpfs" | "ramfs") {
                "in memory, gone at every restart".to_string()
            } else {
                format!("a {} file system", m.fstype)
            }
        ));
    }
    let ours = identity(&all, &existing(data));
    let here = identity(&all, &at);
    if here.is_some() && (here == ours || here == identity(&all, Path::new("/"))) {
        return Err(
            "That is the card (or disk) Homelab itself runs from: a backup there is lost with it, and backups wear an SD card out. Plug in a USB disk and choose it instead."
                .into(),
        );
    }
    let Some(disk) = block.and_then(whole_disk) else {
        return Err(format!(
            "{} is on no disk this box knows.",
            folder.display()
        ));
    };
    Ok(describe(m, &disk))
}

/// The repository's folder for what the owner chose: a disk as a whole (where it is mounted)
/// keeps its backups in `homelab-backups` on it; a folder given is taken as it is. Checked as
/// `check_folder` is.
pub fn repository_folder(chosen: &Path, data: &Path) -> Result<(PathBuf, BoxDisk), String> {
    let disk = check_folder(chosen, data)?;
    let folder = if chosen == disk.mount {
        chosen.join(FOLDER)
    } else {
        chosen.to_path_buf()
    };
    Ok((folder, disk))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 22 0:21 / /tmp rw shared:5 - tmpfs tmpfs rw
31 22 8:1 / /media/My\\040Disk rw,nosuid shared:9 - exfat /dev/sda1 rw
32 22 8:1 /photos /srv/photos rw shared:9 - exfat /dev/sda1 rw
";

    #[test]
    fn mounts_are_read_with_their_escapes() {
        let m = parse_mountinfo(INFO);
        assert_eq!(m.len(), 4);
        assert_eq!(m[2].point, PathBuf::from("/media/My Disk"));
        assert_eq!(m[2].dev, (8, 1));
        assert_eq!(m[3].root, "/photos");
        assert_eq!(m[2].source, "/dev/sda1");
        assert_eq!(m[1].fstype, "tmpfs");
        let on = mount_of(&m, Path::new("/media/My Disk/homelab-backups")).unwrap();
        assert_eq!(on.point, PathBuf::from("/media/My Disk"));
        assert_eq!(mount_of(&m, Path::new("/tmp/x")).unwrap().fstype, "tmpfs");
        assert_eq!(
            mount_of(&m, Path::new("/media")).unwrap().point,
            PathBuf::from("/")
        );
    }

    #[test]
    fn a_file_system_that_numbers_itself_is_traced_to_its_device() {
        // As btrfs shows in mountinfo (major 0), from a mount of a real disk on this machine.
        let disk = mounts()
            .into_iter()
            .find(|m| {
                m.dev.0 != 0 && m.source.starts_with("/dev/") && Path::new(&m.source).exists()
            })
            .expect("a file system mounted from a disk");
        let anonymous = Mount {
            dev: (0, 99),
            ..disk.clone()
        };
        assert_eq!(anonymous.block(), disk.block(), "{disk:?}");
        let memory = Mount {
            dev: (0, 99),
            source: "/dev/null".into(),
            ..disk
        };
        assert_eq!(memory.block(), None, "not a block device");
    }

    #[test]
    fn memory_and_relative_folders_are_refused_with_the_reason() {
        let data = std::env::temp_dir();
        let e = check_folder(Path::new("backups"), &data).unwrap_err();
        assert!(e.contains("starting with /"), "{e}");
        let e = check_folder(Path::new("/media/../etc"), &data).unwrap_err();
        assert!(e.contains(".."), "{e}");
        // /dev/shm is memory on every Linux this runs on.
        if Path::new("/dev/shm").exists() {
            let e = check_folder(Path::new("/dev/shm/homelab-backups"), &data).unwrap_err();
            assert!(e.contains("not on a disk plugged into this box"), "{e}");
        }
    }
}
