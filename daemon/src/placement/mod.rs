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

/// The verdict for one device.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub device_id: i64,
    pub name: String,
    /// 0..100; 0 when disqualified.
    pub score: f64,
    pub eligible: bool,
    pub reason: String,
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
fn disqualify(n: &Need, c: &Candidate) -> Option<String> {
    if !c.online {
        return Some("Disqualified: the device is offline.".into());
    }
    if !c.docker_ok {
        return Some("Disqualified: Docker is not usable on it.".into());
    }
    let arch = docker_arch(&c.arch);
    if !n.architectures.iter().any(|a| a == arch) {
        return Some(format!(
            "Disqualified: the app does not run on {arch} processors."
        ));
    }
    if c.apps.contains(&n.slug) {
        return Some("Disqualified: it already runs this app.".into());
    }
    if c.mem_available < n.ram_min {
        return Some(format!(
            "Disqualified: needs {} RAM, {} free.",
            human_bytes(n.ram_min),
            human_bytes(c.mem_available)
        ));
    }
    if c.disk_free < n.storage_min {
        return Some(format!(
            "Disqualified: needs {} of storage, {} free.",
            human_bytes(n.storage_min),
            human_bytes(c.disk_free)
        ));
    }
    if c.cores < n.cpu_min {
        return Some(format!(
            "Disqualified: needs {} processor cores, has {}.",
            n.cpu_min, c.cores
        ));
    }
    if let Some(p) = n.host_ports.iter().find(|p| c.used_ports.contains(p)) {
        return Some(format!("Disqualified: port {p} is already in use there."));
    }
    None
}

/// Scores every device; eligible devices first, best first.
pub fn rank(need: &Need, candidates: &[Candidate]) -> Vec<Verdict> {
    let mut out: Vec<Verdict> = candidates
        .iter()
        .map(|c| match disqualify(need, c) {
            Some(reason) => Verdict {
                device_id: c.id,
                name: c.name.clone(),
                score: 0.0,
                eligible: false,
                reason,
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
                    score,
                    eligible: true,
                    reason,
                }
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.eligible
            .cmp(&a.eligible)
            .then(b.score.total_cmp(&a.score))
            .then_with(|| a.name.cmp(&b.name))
            .then(a.device_id.cmp(&b.device_id))
    });
    if let Some(best) = out.first_mut().filter(|v| v.eligible) {
        best.reason.push_str(" — best match");
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
                assert!(v.eligible, "{label}: {v:?}");
            } else {
                assert!(!v.eligible && v.score == 0.0, "{label}");
                assert!(
                    v.reason.starts_with("Disqualified:") && v.reason.contains(words),
                    "{label}: {}",
                    v.reason
                );
            }
        }
    }

    #[test]
    fn weights_and_reasons() {
        let mut small = dev(1, "small");
        small.mem_available = 256 * MB; // half the recommendation
        let big = dev(2, "big");
        let v = rank(&need(), &[small, big]);
        assert_eq!(v[0].name, "big");
        assert!((v[0].score - 99.0).abs() < 0.01, "{}", v[0].score); // 40+30+15+10*(1-0.1)+5
        assert!(v[0].reason.ends_with("best match"), "{}", v[0].reason);
        assert!((v[1].score - 79.0).abs() < 0.01, "{}", v[1].score); // RAM factor 0.5 → 20
        assert!(!v[1].reason.contains("best"));
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
            v.score.is_finite() && v.score <= 100.0 && v.score >= 0.0,
            "{}",
            v.score
        );
        let mut z = dev(2, "z");
        z.cores = 0;
        let v = &rank(&n, &[z])[0];
        assert!(v.score.is_finite());
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
