//! Placement: which device should run an app, and why. Hard constraints first (online, Docker
//! usable, architecture, RAM and storage minimums, the app's host ports free, not already
//! running it); then a weighted score — RAM against the recommendation 40 %, storage 30 %,
//! CPU 15 %, current load 10 %, uptime 5 % — where every factor is a ratio clamped to 0..1 (no
//! unbounded CPU score, no division by zero, no integer division). Deterministic: ties go to
//! the device name, then its id. Every device gets a reason in plain words.

use crate::units::human_bytes;

const MB: u64 = 1024 * 1024;
const GB: u64 = 1024 * MB;

/// What an app needs (from its recipe and chosen settings).
#[derive(Debug, Clone)]
pub struct Need {
    pub slug: String,
    pub ram_min: u64,
    pub ram_recommended: u64,
    pub storage_min: u64,
    pub storage_recommended: u64,
    pub cpu_min: u32,
    pub cpu_recommended: u32,
    /// Docker platform names: amd64, arm64, armv7.
    pub architectures: Vec<String>,
    pub host_ports: Vec<u16>,
}

impl Need {
    pub fn from_recipe(r: &crate::catalog::Recipe, host_ports: Vec<u16>) -> Need {
        let q = &r.manifest.requirements;
        Need {
            slug: r.manifest.slug.clone(),
            ram_min: q.ram_min_mb * MB,
            ram_recommended: q.ram_recommended_mb * MB,
            storage_min: q.storage_min_gb * GB,
            storage_recommended: q.storage_recommended_gb * GB,
            cpu_min: q.cpu_min_cores,
            cpu_recommended: q.cpu_recommended_cores,
            architectures: r.manifest.architectures.clone(),
            host_ports,
        }
    }
}

/// What we know about a device right now.
#[derive(Debug, Clone, Default)]
pub struct Candidate {
    pub id: i64,
    pub name: String,
    pub online: bool,
    pub docker_ok: bool,
    /// `uname -m` (x86_64, aarch64, armv7l, …).
    pub arch: String,
    pub mem_available: u64,
    pub disk_free: u64,
    pub cores: u32,
    pub load1: f64,
    /// Share of the recent window the device was reachable, 0..1.
    pub uptime: f64,
    /// Ports something listens on, on the device (any process, not only our apps).
    pub used_ports: Vec<u16>,
    /// Apps (recipe slugs) this device already runs.
    pub apps: Vec<String>,
}

/// Why a device cannot take an app. Shown as the words after "Disqualified: " and after
/// "<device> cannot run <app>: ".
#[derive(Debug, Clone, PartialEq)]
pub enum Disqualified {
    Offline,
    DockerUnusable,
    /// The app has no image for this processor (Docker's name for it).
    WrongArch(String),
    AlreadyRunsIt,
    NotEnoughRam {
        need: u64,
        free: u64,
    },
    NotEnoughStorage {
        need: u64,
        free: u64,
    },
    TooFewCores {
        need: u32,
        has: u32,
    },
    PortInUse(u16),
}

impl std::fmt::Display for Disqualified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Disqualified::Offline => write!(f, "the device is offline."),
            Disqualified::DockerUnusable => write!(f, "Docker is not usable on it."),
            Disqualified::WrongArch(arch) => {
                write!(f, "the app does not run on {arch} processors.")
            }
            Disqualified::AlreadyRunsIt => write!(f, "it already runs this app."),
            Disqualified::NotEnoughRam { need, free } => write!(
                f,
                "needs {} RAM, {} free.",
                human_bytes(*need),
                human_bytes(*free)
            ),
            Disqualified::NotEnoughStorage { need, free } => write!(
                f,
                "needs {} of storage, {} free.",
                human_bytes(*need),
                human_bytes(*free)
            ),
            Disqualified::TooFewCores { need, has } => {
                write!(f, "needs {need} processor cores, has {has}.")
            }
            Disqualified::PortInUse(p) => write!(f, "port {p} is already in use there."),
        }
    }
}

/// How one device fits an app.
#[derive(Debug, Clone, PartialEq)]
pub enum Fit {
    /// It can run the app: a score of 0..100 and why, in words.
    Eligible {
        score: f64,
        reason: String,
    },
    Disqualified(Disqualified),
}

/// The verdict for one device.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub device_id: i64,
    pub name: String,
    pub fit: Fit,
}

impl Verdict {
    pub fn eligible(&self) -> bool {
        matches!(self.fit, Fit::Eligible { .. })
    }

    /// 0..100; 0 when disqualified.
    pub fn score(&self) -> f64 {
        match self.fit {
            Fit::Eligible { score, .. } => score,
            Fit::Disqualified(_) => 0.0,
        }
    }

    /// The reason shown beside the device: its figures, or "Disqualified: " and why.
    pub fn reason(&self) -> String {
        match &self.fit {
            Fit::Eligible { reason, .. } => reason.clone(),
            Fit::Disqualified(why) => format!("Disqualified: {why}"),
        }
    }

    /// Why the device cannot take the app, if it cannot.
    pub fn disqualified(&self) -> Option<&Disqualified> {
        match &self.fit {
            Fit::Eligible { .. } => None,
            Fit::Disqualified(why) => Some(why),
        }
    }
}

/// Docker's name for a kernel architecture.
pub fn docker_arch(uname_m: &str) -> &str {
    match uname_m {
        "x86_64" | "amd64" => "amd64",
        "aarch64" | "arm64" => "arm64",
        "armv7l" | "armv7" | "armhf" => "armv7",
        "i386" | "i686" => "386",
        other => other,
    }
}

fn ratio(have: f64, want: f64) -> f64 {
    if want <= 0.0 {
        1.0
    } else {
        (have / want).clamp(0.0, 1.0)
    }
}

/// Why a device cannot take the app, if it cannot.
fn disqualify(n: &Need, c: &Candidate) -> Option<Disqualified> {
    if !c.online {
        return Some(Disqualified::Offline);
    }
    if !c.docker_ok {
        return Some(Disqualified::DockerUnusable);
    }
    let arch = docker_arch(&c.arch);
    if !n.architectures.iter().any(|a| a == arch) {
        return Some(Disqualified::WrongArch(arch.to_string()));
    }
    if c.apps.contains(&n.slug) {
        return Some(Disqualified::AlreadyRunsIt);
    }
    if c.mem_available < n.ram_min {
        return Some(Disqualified::NotEnoughRam {
            need: n.ram_min,
            free: c.mem_available,
        });
    }
    if c.disk_free < n.storage_min {
        return Some(Disqualified::NotEnoughStorage {
            need: n.storage_min,
            free: c.disk_free,
        });
    }
    if c.cores < n.cpu_min {
        return Some(Disqualified::TooFewCores {
            need: n.cpu_min,
            has: c.cores,
        });
    }
    if let Some(p) = n.host_ports.iter().find(|p| c.used_ports.contains(p)) {
        return Some(Disqualified::PortInUse(*p));
    }
    None
}

/// Scores every device; eligible devices first, best first.
pub fn rank(need: &Need, candidates: &[Candidate]) -> Vec<Verdict> {
    let mut out: Vec<Verdict> = candidates
        .iter()
        .map(|c| match disqualify(need, c) {
            Some(why) => Verdict {
                device_id: c.id,
                name: c.name.clone(),
                fit: Fit::Disqualified(why),
            },
            None => {
                let load_share = if c.cores == 0 {
                    1.0
                } else {
                    (c.load1 / c.cores as f64).clamp(0.0, 1.0)
                };
                let score = 40.0 * ratio(c.mem_available as f64, need.ram_recommended as f64)
                    + 30.0 * ratio(c.disk_free as f64, need.storage_recommended as f64)
                    + 15.0 * ratio(c.cores as f64, need.cpu_recommended as f64)
                    + 10.0 * (1.0 - load_share)
                    + 5.0 * c.uptime.clamp(0.0, 1.0);
                let reason = format!(
                    "{} free, {:.0} % load",
                    human_bytes(c.mem_available),
                    load_share * 100.0
                );
                Verdict {
                    device_id: c.id,
                    name: c.name.clone(),
                    fit: Fit::Eligible { score, reason },
                }
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.eligible()
            .cmp(&a.eligible())
            .then(b.score().total_cmp(&a.score()))
            .then_with(|| a.name.cmp(&b.name))
            .then(a.device_id.cmp(&b.device_id))
    });
    if let Some(Fit::Eligible { reason, .. }) = out.first_mut().map(|v| &mut v.fit) {
        reason.push_str(" — best match");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need() -> Need {
        Need {
            slug: "vaultwarden".into(),
            ram_min: 128 * MB,
            ram_recommended: 512 * MB,
            storage_min: GB,
            storage_recommended: 5 * GB,
            cpu_min: 1,
            cpu_recommended: 1,
            architectures: vec!["amd64".into(), "arm64".into()],
            host_ports: vec![8222],
        }
    }

    fn dev(id: i64, name: &str) -> Candidate {
        Candidate {
            id,
            name: name.into(),
            online: true,
            docker_ok: true,
            arch: "x86_64".into(),
            mem_available: 8 * GB,
            disk_free: 100 * GB,
            cores: 4,
            load1: 0.4,
            uptime: 1.0,
            used_ports: vec![22],
            apps: vec![],
        }
    }

    /// (label, how the device differs, words expected in the reason; empty: still eligible)
    type Case = (&'static str, Box<dyn Fn(&mut Candidate)>, &'static str);

    #[test]
    fn hard_constraints_table() {
        let cases: Vec<Case> = vec![
            ("offline", Box::new(|c| c.online = false), "offline"),
            ("no docker", Box::new(|c| c.docker_ok = false), "Docker"),
            ("arch", Box::new(|c| c.arch = "riscv64".into()), "riscv64"),
            ("arm ok", Box::new(|c| c.arch = "aarch64".into()), ""),
            (
                "ram",
                Box::new(|c| c.mem_available = 100 * MB),
                "needs 128 MB RAM, 100 MB free",
            ),
            ("disk", Box::new(|c| c.disk_free = GB / 2), "storage"),
            ("cores", Box::new(|c| c.cores = 0), "cores"),
            ("port", Box::new(|c| c.used_ports.push(8222)), "port 8222"),
            (
                "already",
                Box::new(|c| c.apps.push("vaultwarden".into())),
                "already runs",
            ),
        ];
        for (label, change, words) in cases {
            let mut c = dev(1, "a");
            change(&mut c);
            let v = &rank(&need(), &[c])[0];
            if words.is_empty() {
                assert!(v.eligible(), "{label}: {v:?}");
            } else {
                assert!(!v.eligible() && v.score() == 0.0, "{label}");
                assert!(
                    v.reason().starts_with("Disqualified:") && v.reason().contains(words),
                    "{label}: {}",
                    v.reason()
                );
            }
        }
    }

    /// The words users (and the lab tests) read after "Disqualified: ".
    #[test]
    fn disqualified_words() {
        let cases = [
            (Disqualified::Offline, "the device is offline."),
            (Disqualified::DockerUnusable, "Docker is not usable on it."),
            (
                Disqualified::WrongArch("riscv64".into()),
                "the app does not run on riscv64 processors.",
            ),
            (Disqualified::AlreadyRunsIt, "it already runs this app."),
            (
                Disqualified::NotEnoughRam {
                    need: 128 * MB,
                    free: 100 * MB,
                },
                "needs 128 MB RAM, 100 MB free.",
            ),
            (
                Disqualified::NotEnoughStorage {
                    need: GB,
                    free: GB / 2,
                },
                "needs 1.0 GB of storage, 512 MB free.",
            ),
            (
                Disqualified::TooFewCores { need: 2, has: 1 },
                "needs 2 processor cores, has 1.",
            ),
            (
                Disqualified::PortInUse(8222),
                "port 8222 is already in use there.",
            ),
        ];
        for (why, words) in cases {
            assert_eq!(why.to_string(), words);
        }
        let mut c = dev(1, "a");
        c.online = false;
        assert_eq!(
            rank(&need(), &[c])[0].reason(),
            "Disqualified: the device is offline."
        );
    }

    #[test]
    fn weights_and_reasons() {
        let mut small = dev(1, "small");
        small.mem_available = 256 * MB; // half the recommendation
        let big = dev(2, "big");
        let v = rank(&need(), &[small, big]);
        assert_eq!(v[0].name, "big");
        assert!((v[0].score() - 99.0).abs() < 0.01, "{}", v[0].score()); // 40+30+15+10*(1-0.1)+5
        assert!(v[0].reason().ends_with("best match"), "{}", v[0].reason());
        assert!((v[1].score() - 79.0).abs() < 0.01, "{}", v[1].score()); // RAM factor 0.5 → 20
        assert!(!v[1].reason().contains("best"));
    }

    #[test]
    fn no_division_by_zero_and_bounded_cpu() {
        let mut n = need();
        n.ram_recommended = 0;
        n.storage_recommended = 0;
        n.cpu_recommended = 0;
        n.cpu_min = 0;
        let mut c = dev(1, "a");
        c.cores = 64; // many cores must not push the score past 100
        c.load1 = 1000.0;
        let v = &rank(&n, &[c])[0];
        assert!(
            v.score().is_finite() && v.score() <= 100.0 && v.score() >= 0.0,
            "{}",
            v.score()
        );
        let mut z = dev(2, "z");
        z.cores = 0;
        let v = &rank(&n, &[z])[0];
        assert!(v.score().is_finite());
    }

    #[test]
    fn deterministic_ties() {
        let devices = vec![dev(3, "b"), dev(1, "a"), dev(2, "a")];
        let first = rank(&need(), &devices);
        let ids: Vec<i64> = first.iter().map(|v| v.device_id).collect();
        assert_eq!(ids, vec![1, 2, 3]);
        let mut reversed = devices.clone();
        reversed.reverse();
        assert_eq!(rank(&need(), &reversed), first);
    }
}
