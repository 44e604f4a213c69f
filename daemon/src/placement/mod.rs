//! Placement: which device should run an app, and why. Hard constraints first (online, Docker
//! usable, architecture, RAM and storage minimums, the app's host ports free, not already
//! running it); then a score out of 100 in the seed's frame — memory 40, storage 30,
//! processing 15, how busy the device is 10, uptime 5 — where memory, storage and processor
//! count what is left after placing the app, not only whether its recommendation is met (see
//! [`headroom`]); then, among devices whose scores are [`CLOSE`], the one running fewest apps.
//! Deterministic: ties go to the device name, then its id. Every device gets a reason in plain
//! words naming what decided it, and a technical [`Detail`] for Advanced mode.

use std::fmt;

use crate::catalog::{DataGrowth, Hardware};
use crate::units::human_bytes;

const MB: u64 = 1024 * 1024;
const GB: u64 = 1024 * MB;

// The seed's weights, kept as the frame: the points each factor can give, out of 100.
const W_MEMORY: f64 = 40.0;
const W_STORAGE: f64 = 30.0;
const W_PROCESSOR: f64 = 15.0;
/// Taken out of the processor's 15 for an app that can use a graphics chip (video
/// transcoding, photo recognition): the chip does that work many times faster than processor
/// cores. More than [`CLOSE`], so between otherwise equal devices the chip wins over
/// spreading.
const W_GRAPHICS: f64 = 5.0;
const W_CALM: f64 = 10.0;
const W_UPTIME: f64 = 5.0;

/// For an app whose data grows, storage left after the recommendation is measured in units
/// of this many recommendations (a library a few years old is several times its start), so
/// the curve still tells 1 TB from 2 TB for photos, where for a settings-sized app both are
/// simply plenty.
const GROWTH_ROOM: f64 = 4.0;

/// Scores closer than this (out of 100) are a near tie, broken by spreading apps over
/// devices. 3 points is about what the figures wobble between two polls of an unchanged device
/// (how busy it is alone is worth 10 points; free memory moves as programs cache and free it),
/// so choosing by it would be arbitrary; real differences are larger: the first
/// recommendation's worth of memory left is 10 points, a graphics chip the app can use 5.
pub const CLOSE: f64 = 3.0;

/// A factor is named as deciding when it gives at least this many points more (a smaller
/// difference is not worth a user's attention).
const DECIDES: f64 = 1.0;

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
    /// What data keeps growing, if any: storage beyond the recommendation then counts more,
    /// and the reason names the data.
    pub data_grows: Option<DataGrowth>,
    /// The app can put a graphics chip to use.
    pub uses_gpu: bool,
}

impl Need {
    pub fn from_recipe(r: &crate::catalog::Recipe, host_ports: Vec<u16>) -> Need {
        let m = &r.manifest;
        let q = &m.requirements;
        Need {
            slug: m.slug.clone(),
            ram_min: q.ram_min_mb * MB,
            ram_recommended: q.ram_recommended_mb * MB,
            storage_min: q.storage_min_gb * GB,
            storage_recommended: q.storage_recommended_gb * GB,
            cpu_min: q.cpu_min_cores,
            cpu_recommended: q.cpu_recommended_cores,
            architectures: m.architectures.clone(),
            host_ports,
            data_grows: m.data_grows,
            uses_gpu: m.hardware.contains(&Hardware::Gpu),
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
    /// Load averages over 1, 5 and 15 minutes. Placement counts the lowest: a device is busy
    /// only if it has been busy all along, so a spike of a minute does not move an app.
    pub load: [f64; 3],
    /// Share of the recent window the device was reachable, 0..1.
    pub uptime: f64,
    /// Ports something listens on, on the device (any process, not only our apps).
    pub used_ports: Vec<u16>,
    /// Apps (recipe slugs) this device already runs.
    pub apps: Vec<String>,
    /// The device has a graphics chip an app could use (a `/dev/dri` render node or NVIDIA).
    pub gpu: bool,
}

/// Why a device cannot take an app. Shown as the words after "Disqualified: " and after
/// "<device> cannot run <app>: ": plain words there ([`fmt::Display`]), the technical ones in
/// Advanced mode ([`Disqualified::technical`]).
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

impl fmt::Display for Disqualified {
    /// Plain words, for everyone (Basic mode, error messages).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disqualified::Offline => write!(f, "the device is offline."),
            Disqualified::DockerUnusable => write!(f, "the app engine is not ready on it."),
            Disqualified::WrongArch(_) => {
                write!(f, "its processor is not supported by this app.")
            }
            Disqualified::AlreadyRunsIt => write!(f, "it already runs this app."),
            Disqualified::NotEnoughRam { need, free } => write!(
                f,
                "needs {} of memory, {} free.",
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
                write!(f, "needs {need} processors, has {has}.")
            }
            Disqualified::PortInUse(p) => write!(
                f,
                "another program there already uses {p}, the number this app answers on."
            ),
        }
    }
}

impl Disqualified {
    /// The same, in technical words (Advanced mode).
    pub fn technical(&self) -> String {
        match self {
            Disqualified::DockerUnusable => "Docker is not usable on it.".into(),
            Disqualified::WrongArch(arch) => format!("the app has no image for {arch}."),
            Disqualified::NotEnoughRam { need, free } => format!(
                "needs {} RAM, {} available.",
                human_bytes(*need),
                human_bytes(*free)
            ),
            Disqualified::TooFewCores { need, has } => {
                format!("needs {need} processor cores, has {has}.")
            }
            Disqualified::PortInUse(p) => format!("port {p} is already in use there."),
            Disqualified::Offline
            | Disqualified::AlreadyRunsIt
            | Disqualified::NotEnoughStorage { .. } => self.to_string(),
        }
    }
}

/// How one device fits an app.
#[derive(Debug, Clone, PartialEq)]
pub enum Fit {
    /// It can run the app: a score of 0..100, why in plain words, and the figures behind it.
    Eligible {
        score: f64,
        reason: String,
        detail: Detail,
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

    /// The reason shown beside the device in plain words: what decided it, or
    /// "Disqualified: " and why.
    pub fn reason(&self) -> String {
        match &self.fit {
            Fit::Eligible { reason, .. } => reason.clone(),
            Fit::Disqualified(why) => format!("Disqualified: {why}"),
        }
    }

    /// The technical figures behind the verdict (Advanced mode): the score factor by factor,
    /// or why it is disqualified in technical words.
    pub fn detail(&self) -> String {
        match &self.fit {
            Fit::Eligible { detail, .. } => detail.to_string(),
            Fit::Disqualified(why) => format!("Disqualified: {}", why.technical()),
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

/// What goes into a score, one entry per factor (see [`Detail::points`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Factor {
    Memory,
    Storage,
    Processor,
    Graphics,
    Calm,
    Uptime,
}

const FACTORS: [Factor; 6] = [
    Factor::Memory,
    Factor::Storage,
    Factor::Processor,
    Factor::Graphics,
    Factor::Calm,
    Factor::Uptime,
];

/// The figures behind an eligible device's score. Kept as numbers and formatted only when a
/// view asks ([`Verdict::detail`]), so ranking thousands of devices writes one line each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detail {
    score: f64,
    /// Points per factor, in the order of `FACTORS`; they add up to `score`.
    points: [f64; 6],
    mem_free: u64,
    mem_want: u64,
    disk_free: u64,
    disk_want: u64,
    cores: u32,
    /// The lowest of the three load averages, per core, 0..1.
    busy: f64,
    gpu: bool,
    uses_gpu: bool,
    uptime: f64,
    apps: usize,
}

impl Detail {
    fn points(&self, f: Factor) -> f64 {
        self.points[f as usize]
    }

    /// Memory left once the app has its recommendation; None when the device is short of it.
    fn mem_left(&self) -> Option<u64> {
        self.mem_free.checked_sub(self.mem_want)
    }

    fn disk_left(&self) -> Option<u64> {
        self.disk_free.checked_sub(self.disk_want)
    }
}

impl fmt::Display for Detail {
    /// Technical words, for Advanced mode.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let left = |l: Option<u64>| match l {
            Some(l) => format!("{} left", human_bytes(l)),
            None => "short of the recommendation".into(),
        };
        write!(
            f,
            "score {:.0}: RAM {:.1}/{W_MEMORY:.0} ({} available, {}), storage {:.1}/{W_STORAGE:.0} \
             ({} free, {}), CPU {:.1}/{:.0} ({} cores)",
            self.score,
            self.points(Factor::Memory),
            human_bytes(self.mem_free),
            left(self.mem_left()),
            self.points(Factor::Storage),
            human_bytes(self.disk_free),
            left(self.disk_left()),
            self.points(Factor::Processor),
            if self.uses_gpu {
                W_PROCESSOR - W_GRAPHICS
            } else {
                W_PROCESSOR
            },
            self.cores,
        )?;
        if self.uses_gpu {
            let gpu = if self.gpu { "present" } else { "none" };
            write!(
                f,
                ", GPU {:.0}/{W_GRAPHICS:.0} ({gpu})",
                self.points(Factor::Graphics)
            )?;
        }
        write!(
            f,
            ", load {:.1}/{W_CALM:.0} ({:.0} % per core, lowest of 1/5/15 min), uptime {:.1}/{W_UPTIME:.0} \
             ({:.0} %), apps running: {}",
            self.points(Factor::Calm),
            self.busy * 100.0,
            self.points(Factor::Uptime),
            self.uptime * 100.0,
            self.apps,
        )
    }
}

/// `x` within 0..1; NaN (a figure we could not read) counts as 0.
fn unit_interval(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}

/// How well a device's `have` suits an app that recommends `want`, 0..1. Short of
/// the recommendation, up to half, in proportion. Beyond it, the other half is earned by what
/// is left after placing the app, on the saturating curve `left / (left + unit)`: the first
/// `unit` of room left is worth a quarter, each further one less, so a 2 TB disk still beats
/// a 1 TB one but no amount gives unbounded points (the seed stopped counting at the
/// recommendation, so a box with eight times the room scored the same as one just big
/// enough). Nothing recommended: every device is plenty.
fn headroom(have: f64, want: f64, unit: f64) -> f64 {
    if want <= 0.0 || unit <= 0.0 {
        return 1.0;
    }
    let f = if have < want {
        0.5 * have / want
    } else {
        let left = have - want;
        0.5 + 0.5 * left / (left + unit)
    };
    unit_interval(f)
}

/// The score of a device that passed the hard constraints, factor by factor.
fn assess(n: &Need, c: &Candidate) -> Detail {
    let mem = headroom(
        c.mem_available as f64,
        n.ram_recommended as f64,
        n.ram_recommended as f64,
    );
    let storage_unit = match n.data_grows {
        Some(_) => GROWTH_ROOM * n.storage_recommended as f64,
        None => n.storage_recommended as f64,
    };
    let storage = headroom(
        c.disk_free as f64,
        n.storage_recommended as f64,
        storage_unit,
    );
    let cores = headroom(
        c.cores as f64,
        n.cpu_recommended as f64,
        n.cpu_recommended as f64,
    );
    // Per core; no cores known counts as fully busy. `f64::min` skips NaN, and all three
    // unreadable stays infinite, which clamps to fully busy.
    let lowest = c.load.iter().copied().fold(f64::INFINITY, f64::min);
    let busy = if c.cores == 0 {
        1.0
    } else {
        unit_interval(lowest / c.cores as f64)
    };
    let uptime = unit_interval(c.uptime);
    let (w_cores, graphics) = if n.uses_gpu {
        let chip = if c.gpu { W_GRAPHICS } else { 0.0 };
        (W_PROCESSOR - W_GRAPHICS, chip)
    } else {
        (W_PROCESSOR, 0.0)
    };
    let points = [
        W_MEMORY * mem,
        W_STORAGE * storage,
        w_cores * cores,
        graphics,
        W_CALM * (1.0 - busy),
        W_UPTIME * uptime,
    ];
    Detail {
        score: points.iter().sum::<f64>().clamp(0.0, 100.0),
        points,
        mem_free: c.mem_available,
        mem_want: n.ram_recommended,
        disk_free: c.disk_free,
        disk_want: n.storage_recommended,
        cores: c.cores,
        busy,
        gpu: c.gpu,
        uses_gpu: n.uses_gpu,
        uptime,
        apps: c.apps.len(),
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

/// What a graphics chip does for this app, in plain words.
fn chip_use(n: &Need) -> &'static str {
    match n.data_grows {
        Some(DataGrowth::Media) => "a graphics chip for video",
        Some(DataGrowth::Photos) => "a graphics chip for photo recognition",
        _ => "a graphics chip this app can use",
    }
}

/// "your photos" etc., or nothing for an app whose data stays small.
fn for_data(n: &Need) -> String {
    n.data_grows
        .map(|g| format!(" for your {}", g.words()))
        .unwrap_or_default()
}

/// What `best` has over `other` on factor `f`, in words (after "Best match: ").
fn advantage(n: &Need, f: Factor, best: &Detail, other: &str, o: &Detail) -> String {
    match f {
        Factor::Memory => match (best.mem_left(), o.mem_left()) {
            (Some(b), Some(r)) if r > 0 && b >= 2 * r => format!(
                "{:.0}× the memory left of {other} ({} after installing)",
                b as f64 / r as f64,
                human_bytes(b)
            ),
            (Some(b), Some(r)) if r > 0 => format!(
                "more memory left than {other} ({} after installing, against {})",
                human_bytes(b),
                human_bytes(r)
            ),
            (Some(b), Some(_)) => format!(
                "{} of memory to spare after installing, where {other} would have none",
                human_bytes(b)
            ),
            (Some(b), None) => format!(
                "{} of memory to spare after installing, where {other} has less than this \
                 app is best with",
                human_bytes(b)
            ),
            (None, _) => format!(
                "more free memory than {other} ({} against {})",
                human_bytes(best.mem_free),
                human_bytes(o.mem_free)
            ),
        },
        Factor::Storage => format!(
            "more free storage{}: {}, against {} on {other}",
            for_data(n),
            human_bytes(best.disk_free),
            human_bytes(o.disk_free)
        ),
        Factor::Processor => format!(
            "more processing power than {other} ({} processors against {})",
            best.cores, o.cores
        ),
        Factor::Graphics => format!("{}, which {other} lacks", chip_use(n)),
        Factor::Calm => format!("less busy than {other}"),
        Factor::Uptime => format!("online more reliably than {other} over the last day"),
    }
}

/// What `d` lacks next to the best device on factor `f`, in words.
fn shortfall(n: &Need, f: Factor, d: &Detail) -> String {
    match f {
        Factor::Memory => match d.mem_left() {
            Some(l) => format!("Less memory left: {} after installing.", human_bytes(l)),
            None => format!(
                "Less memory than this app is best with: {} free.",
                human_bytes(d.mem_free)
            ),
        },
        Factor::Storage => format!(
            "Less free storage{}: {}.",
            for_data(n),
            human_bytes(d.disk_free)
        ),
        Factor::Processor => format!("Less processing power: {} processors.", d.cores),
        Factor::Graphics => format!("No {}.", chip_use(n).trim_start_matches("a ")),
        Factor::Calm => "Busier right now.".into(),
        Factor::Uptime => "Online less of the last day.".into(),
    }
}

/// The factors on which `a` beats `b`, largest gain first (ties in the order of `FACTORS`,
/// so the words are deterministic).
fn gains(a: &Detail, b: &Detail) -> Vec<(Factor, f64)> {
    let mut gains: Vec<(Factor, f64)> = FACTORS
        .iter()
        .map(|&f| (f, a.points(f) - b.points(f)))
        .filter(|&(_, g)| g > 0.0)
        .collect();
    gains.sort_by(|x, y| y.1.total_cmp(&x.1));
    gains
}

/// The factor on which `a` beats `b` most, if by at least [`DECIDES`] (no allocation: this
/// runs once per device).
fn largest_gain(a: &Detail, b: &Detail) -> Option<Factor> {
    FACTORS
        .iter()
        .map(|&f| (f, a.points(f) - b.points(f)))
        .filter(|&(_, g)| g >= DECIDES)
        // The first of equal gains, as in `gains`.
        .reduce(|x, y| if y.1 > x.1 { y } else { x })
        .map(|(f, _)| f)
}

/// Why the first device is the best match, compared with the runner-up.
fn best_reason(n: &Need, best: &Detail, runner: Option<(&str, &Detail)>, spread: bool) -> String {
    let Some((other, o)) = runner else {
        return format!(
            "Best match: the only device that can run it, with {} of memory and {} of \
             storage free.",
            human_bytes(best.mem_free),
            human_bytes(best.disk_free)
        );
    };
    if spread {
        return format!(
            "Best match: about as good as {other}, and it runs fewer apps ({} against {}), \
             which spreads the work.",
            best.apps, o.apps
        );
    }
    let gains = gains(best, o);
    let words: Vec<String> = gains
        .iter()
        .filter(|(_, g)| *g >= DECIDES)
        .take(2)
        .map(|&(f, _)| advantage(n, f, best, other, o))
        .collect();
    match gains.first() {
        _ if !words.is_empty() => format!("Best match: {}.", words.join(", and ")),
        Some(&(f, _)) => format!(
            "Best match: by a small margin, {}.",
            advantage(n, f, best, other, o)
        ),
        None => format!("Best match: as good as {other}, and first by name."),
    }
}

/// A short reason for a device that is not the best match.
fn other_reason(n: &Need, d: &Detail, best_name: &str, best: &Detail, spread: bool) -> String {
    if spread && d.apps > best.apps && best.score - d.score < CLOSE {
        return format!(
            "About as good as {best_name}, but it runs more apps ({}).",
            d.apps
        );
    }
    match largest_gain(best, d) {
        Some(f) => shortfall(n, f, d),
        None => format!("About as good as {best_name}."),
    }
}

/// Scores every device; eligible devices first, best first.
pub fn rank(need: &Need, candidates: &[Candidate]) -> Vec<Verdict> {
    let mut eligible: Vec<(&Candidate, Detail)> = Vec::new();
    let mut out: Vec<Verdict> = Vec::with_capacity(candidates.len());
    for c in candidates {
        match disqualify(need, c) {
            Some(why) => out.push(Verdict {
                device_id: c.id,
                name: c.name.clone(),
                fit: Fit::Disqualified(why),
            }),
            None => eligible.push((c, assess(need, c))),
        }
    }
    eligible.sort_by(|(a, da), (b, db)| {
        db.score
            .total_cmp(&da.score)
            .then_with(|| a.name.cmp(&b.name))
            .then(a.id.cmp(&b.id))
    });
    // Spread: among the devices within CLOSE of the top score, the one running fewest apps
    // goes first (the earliest in score order on a tie, so an equal count changes nothing).
    let spread = match eligible.first() {
        Some((_, top)) => {
            let top = top.score;
            let pick = eligible
                .iter()
                .enumerate()
                .take_while(|(_, (_, d))| top - d.score < CLOSE)
                .min_by_key(|(i, (_, d))| (d.apps, *i))
                .map_or(0, |(i, _)| i);
            eligible[..=pick].rotate_right(1);
            pick > 0
        }
        None => false,
    };
    let mut ranked: Vec<Verdict> = Vec::with_capacity(candidates.len());
    if let Some(&(best_c, best)) = eligible.first() {
        let runner = eligible.get(1).map(|(c, d)| (c.name.as_str(), d));
        for (i, &(c, d)) in eligible.iter().enumerate() {
            let reason = if i == 0 {
                best_reason(need, &best, runner, spread)
            } else {
                other_reason(need, &d, &best_c.name, &best, spread)
            };
            ranked.push(Verdict {
                device_id: c.id,
                name: c.name.clone(),
                fit: Fit::Eligible {
                    score: d.score,
                    reason,
                    detail: d,
                },
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name).then(a.device_id.cmp(&b.device_id)));
    ranked.append(&mut out);
    ranked
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
            data_grows: None,
            uses_gpu: false,
        }
    }

    /// Immich and Jellyfin as their recipes say (requirements, growth, graphics chip).
    fn immich() -> Need {
        Need {
            slug: "immich".into(),
            ram_min: 4 * GB,
            ram_recommended: 6 * GB,
            storage_min: 20 * GB,
            storage_recommended: 250 * GB,
            cpu_min: 2,
            cpu_recommended: 4,
            architectures: vec!["amd64".into(), "arm64".into()],
            host_ports: vec![2283],
            data_grows: Some(DataGrowth::Photos),
            uses_gpu: true,
        }
    }

    fn jellyfin() -> Need {
        Need {
            slug: "jellyfin".into(),
            ram_min: GB,
            ram_recommended: 4 * GB,
            storage_min: 10 * GB,
            storage_recommended: 100 * GB,
            cpu_min: 2,
            cpu_recommended: 4,
            architectures: vec!["amd64".into(), "arm64".into()],
            host_ports: vec![8096],
            data_grows: Some(DataGrowth::Media),
            uses_gpu: true,
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
            load: [0.4, 0.4, 0.4],
            uptime: 1.0,
            used_ports: vec![22],
            apps: vec![],
            gpu: false,
        }
    }

    /// The profiles: a 2 TB, 8-core media box, busy (30 %), and a 245 GB mini PC,
    /// nearly idle (10 %), with the same memory.
    fn media_box() -> Candidate {
        Candidate {
            disk_free: 1843 * GB, // 1.8 TB
            cores: 8,
            mem_available: 12 * GB,
            load: [2.4, 2.4, 2.4],
            ..dev(1, "Media box")
        }
    }

    /// The media box under another name and id.
    fn media_box_twin(id: i64, name: &str) -> Candidate {
        Candidate {
            id,
            name: name.into(),
            ..media_box()
        }
    }

    fn mini_pc() -> Candidate {
        Candidate {
            disk_free: 245 * GB,
            cores: 4,
            mem_available: 12 * GB,
            load: [0.4, 0.4, 0.4],
            ..dev(2, "Mini PC")
        }
    }

    /// Technical words Basic mode must not show (whole words, any case).
    const JARGON: [&str; 15] = [
        "linux",
        "docker",
        "private key",
        "api",
        "compose",
        "load",
        "cores",
        "score",
        "port",
        "amd64",
        "arm64",
        "armv7",
        "volume",
        "ssh",
        "fingerprint",
    ];

    fn jargon(text: &str) -> Option<&'static str> {
        let lower = text.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        JARGON.into_iter().find(|j| {
            if j.contains(' ') {
                lower.contains(j)
            } else {
                let singular = j.strip_suffix('s').unwrap_or(j);
                words
                    .iter()
                    .any(|w| *w == *j || *w == singular || *w == format!("{singular}s"))
            }
        })
    }

    #[test]
    fn the_jargon_check_can_fail() {
        assert_eq!(jargon("port 8222 is in use"), Some("port"));
        assert_eq!(jargon("needs 2 processor cores"), Some("cores"));
        assert_eq!(jargon("30 % load"), Some("load"));
        assert_eq!(jargon("its processor is not supported by this app."), None);
    }

    /// How a test device differs from `dev`.
    type Change = Box<dyn Fn(&mut Candidate)>;

    /// (label, how the device differs, words expected in the reason; empty: still eligible)
    type Case = (&'static str, Change, &'static str);

    #[test]
    fn hard_constraints_table() {
        let cases: Vec<Case> = vec![
            ("offline", Box::new(|c| c.online = false), "offline"),
            ("no docker", Box::new(|c| c.docker_ok = false), "app engine"),
            (
                "arch",
                Box::new(|c| c.arch = "riscv64".into()),
                "processor is not supported",
            ),
            ("arm ok", Box::new(|c| c.arch = "aarch64".into()), ""),
            (
                "ram",
                Box::new(|c| c.mem_available = 100 * MB),
                "needs 128 MB of memory, 100 MB free",
            ),
            ("disk", Box::new(|c| c.disk_free = GB / 2), "storage"),
            ("cores", Box::new(|c| c.cores = 0), "needs 1 processors"),
            ("port", Box::new(|c| c.used_ports.push(8222)), "uses 8222"),
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
                assert_eq!(jargon(&v.reason()), None, "{label}: {}", v.reason());
                assert!(v.detail().starts_with("Disqualified:"), "{label}");
            }
        }
    }

    /// The words users (and the lab tests) read after "Disqualified: ", plain and technical.
    #[test]
    fn disqualified_words() {
        let cases = [
            (
                Disqualified::Offline,
                "the device is offline.",
                "the device is offline.",
            ),
            (
                Disqualified::DockerUnusable,
                "the app engine is not ready on it.",
                "Docker is not usable on it.",
            ),
            (
                Disqualified::WrongArch("armv7".into()),
                "its processor is not supported by this app.",
                "the app has no image for armv7.",
            ),
            (
                Disqualified::AlreadyRunsIt,
                "it already runs this app.",
                "it already runs this app.",
            ),
            (
                Disqualified::NotEnoughRam {
                    need: 128 * MB,
                    free: 100 * MB,
                },
                "needs 128 MB of memory, 100 MB free.",
                "needs 128 MB RAM, 100 MB available.",
            ),
            (
                Disqualified::NotEnoughStorage {
                    need: GB,
                    free: GB / 2,
                },
                "needs 1.0 GB of storage, 512 MB free.",
                "needs 1.0 GB of storage, 512 MB free.",
            ),
            (
                Disqualified::TooFewCores { need: 2, has: 1 },
                "needs 2 processors, has 1.",
                "needs 2 processor cores, has 1.",
            ),
            (
                Disqualified::PortInUse(8222),
                "another program there already uses 8222, the number this app answers on.",
                "port 8222 is already in use there.",
            ),
        ];
        for (why, plain, technical) in cases {
            assert_eq!(why.to_string(), plain);
            assert_eq!(jargon(plain), None, "{plain}");
            assert_eq!(why.technical(), technical);
        }
        let mut c = dev(1, "a");
        c.online = false;
        assert_eq!(
            rank(&need(), &[c])[0].reason(),
            "Disqualified: the device is offline."
        );
    }

    /// Which device wins, and the words its reason must hold.
    struct Profile {
        label: &'static str,
        need: Need,
        devices: Vec<Candidate>,
        winner: &'static str,
        best_words: &'static [&'static str],
        /// (device, words in its reason)
        other_words: &'static [(&'static str, &'static str)],
    }

    fn profiles() -> Vec<Profile> {
        let gpu = |mut c: Candidate| {
            c.gpu = true;
            c
        };
        let apps = |mut c: Candidate, n: usize| {
            c.apps = (0..n).map(|i| format!("app-{i}")).collect();
            c
        };
        let twin = |id, name: &str| Candidate {
            mem_available: 16 * GB,
            disk_free: 500 * GB,
            cores: 4,
            ..dev(id, name)
        };
        vec![
            Profile {
                label: "photos go to the 2 TB box though it is busier",
                need: immich(),
                devices: vec![media_box(), mini_pc()],
                winner: "Media box",
                best_words: &[
                    "more free storage for your photos: 1.8 TB, against 245 GB on Mini PC",
                ],
                other_words: &[("Mini PC", "Less free storage for your photos: 245 GB.")],
            },
            Profile {
                label: "media go to the 2 TB box though it is busier",
                need: jellyfin(),
                devices: vec![mini_pc(), media_box()],
                winner: "Media box",
                best_words: &["more free storage for your films and music: 1.8 TB"],
                other_words: &[("Mini PC", "Less free storage")],
            },
            Profile {
                // Counting this minute's load alone, the 500 GB box would win by 3 points.
                label: "a spike of a minute does not outweigh 4× the storage",
                need: immich(),
                devices: vec![
                    Candidate {
                        load: [8.0, 3.0, 0.8], // all 8 busy this minute, 10 % before
                        ..media_box()
                    },
                    Candidate {
                        disk_free: 500 * GB,
                        load: [0.8; 3],
                        ..media_box_twin(2, "Server")
                    },
                ],
                winner: "Media box",
                best_words: &["more free storage for your photos: 1.8 TB, against 500 GB"],
                other_words: &[("Server", "Less free storage for your photos: 500 GB.")],
            },
            Profile {
                // Measured against the recommendation alone, 1.8 TB and 800 GB would be a
                // near tie, and spreading would pick the emptier box.
                label: "photos want room to grow: 1.8 TB over 800 GB, though it runs more apps",
                need: immich(),
                devices: vec![
                    apps(media_box(), 2),
                    Candidate {
                        disk_free: 800 * GB,
                        ..media_box_twin(2, "Server")
                    },
                ],
                winner: "Media box",
                best_words: &["more free storage for your photos: 1.8 TB, against 800 GB"],
                other_words: &[("Server", "Less free storage for your photos: 800 GB.")],
            },
            Profile {
                label: "a password manager does not need room to grow: the emptier box",
                need: need(),
                devices: vec![
                    apps(media_box(), 2),
                    Candidate {
                        disk_free: 800 * GB,
                        ..media_box_twin(2, "Server")
                    },
                ],
                winner: "Server",
                best_words: &["about as good as Media box, and it runs fewer apps (0 against 2)"],
                other_words: &[("Media box", "runs more apps (2)")],
            },
            Profile {
                label: "3× the memory left decides",
                need: immich(),
                devices: vec![
                    Candidate {
                        mem_available: 12 * GB, // 6 GB left after Immich's 6 GB
                        load: [0.0; 3],
                        ..twin(1, "Server 2")
                    },
                    Candidate {
                        mem_available: 24 * GB, // 18 GB left
                        load: [1.6; 3],         // 40 % busy, all along
                        ..twin(2, "Server 1")
                    },
                ],
                winner: "Server 1",
                best_words: &["3× the memory left of Server 2 (18.0 GB after installing)"],
                other_words: &[("Server 2", "Less memory left: 6.0 GB after installing.")],
            },
            Profile {
                label: "a graphics chip wins Jellyfin when otherwise close, over spreading",
                need: jellyfin(),
                devices: vec![twin(1, "Plain"), apps(gpu(twin(2, "With chip")), 2)],
                winner: "With chip",
                best_words: &["a graphics chip for video, which Plain lacks"],
                other_words: &[("Plain", "No graphics chip for video.")],
            },
            Profile {
                label: "a graphics chip wins Immich when otherwise close",
                need: immich(),
                devices: vec![twin(1, "Plain"), gpu(twin(2, "With chip"))],
                winner: "With chip",
                best_words: &["a graphics chip for photo recognition, which Plain lacks"],
                other_words: &[("Plain", "No graphics chip for photo recognition.")],
            },
            Profile {
                label: "a graphics chip does not decide Vaultwarden (first by name)",
                need: need(),
                devices: vec![gpu(twin(2, "B with chip")), twin(1, "A plain")],
                winner: "A plain",
                best_words: &["as good as B with chip, and first by name"],
                other_words: &[("B with chip", "About as good as A plain.")],
            },
            Profile {
                label: "a graphics chip does not outweigh much more memory and storage",
                need: jellyfin(),
                devices: vec![
                    gpu(Candidate {
                        mem_available: 6 * GB,
                        disk_free: 120 * GB,
                        ..twin(1, "Small with chip")
                    }),
                    twin(2, "Big"),
                ],
                winner: "Big",
                best_words: &["memory left", "storage"],
                other_words: &[],
            },
            Profile {
                label: "close scores: the device running fewer apps",
                need: need(),
                devices: vec![
                    apps(twin(1, "Server 1"), 3),
                    apps(
                        Candidate {
                            mem_available: 15 * GB,
                            ..twin(2, "Server 2")
                        },
                        1,
                    ),
                ],
                winner: "Server 2",
                best_words: &["runs fewer apps (1 against 3)"],
                other_words: &[("Server 1", "runs more apps (3)")],
            },
            Profile {
                label: "a near tie on the same number of apps: the small margin is named",
                need: need(),
                devices: vec![
                    Candidate {
                        mem_available: 15 * GB,
                        ..twin(1, "Server 1")
                    },
                    twin(2, "Server 2"),
                ],
                winner: "Server 2",
                best_words: &[
                    "Best match: by a small margin, more memory left than Server 1 (15.5 GB after \
                     installing, against 14.5 GB).",
                ],
                other_words: &[("Server 1", "About as good as Server 2.")],
            },
            Profile {
                label: "not close: more apps do not outweigh memory",
                need: immich(),
                devices: vec![
                    apps(
                        Candidate {
                            mem_available: 24 * GB,
                            ..twin(1, "Server 1")
                        },
                        3,
                    ),
                    Candidate {
                        mem_available: 8 * GB,
                        ..twin(2, "Server 2")
                    },
                ],
                winner: "Server 1",
                best_words: &["9× the memory left of Server 2"],
                other_words: &[],
            },
            Profile {
                label: "the only device",
                need: need(),
                devices: vec![
                    twin(1, "Alone"),
                    Candidate {
                        online: false,
                        ..twin(2, "Off")
                    },
                ],
                winner: "Alone",
                best_words: &["the only device that can run it, with 16.0 GB of memory"],
                other_words: &[("Off", "Disqualified: the device is offline.")],
            },
        ]
    }

    #[test]
    fn profiles_table() {
        for p in profiles() {
            let v = rank(&p.need, &p.devices);
            let label = p.label;
            let all: Vec<String> = v
                .iter()
                .map(|v| format!("{} {:.1}: {}", v.name, v.score(), v.reason()))
                .collect();
            assert_eq!(v[0].name, p.winner, "{label}: {all:#?}");
            let best = v[0].reason();
            assert!(best.starts_with("Best match: "), "{label}: {best}");
            for words in p.best_words {
                assert!(best.contains(words), "{label}: “{words}” in {best}");
            }
            for (device, words) in p.other_words {
                let r = v.iter().find(|v| v.name == *device).unwrap().reason();
                assert!(r.contains(words), "{label}: “{words}” in {device}: {r}");
            }
            for v in &v {
                assert_eq!(jargon(&v.reason()), None, "{label}: {}", v.reason());
                if v.eligible() {
                    assert!(v.detail().starts_with("score "), "{label}: {}", v.detail());
                }
                assert!((0.0..=100.0).contains(&v.score()), "{label}");
            }
        }
    }

    /// Headroom counts beyond the recommendation, with less and less weight; short of it,
    /// in proportion; never past the factor's weight.
    #[test]
    fn headroom_curve() {
        let cases = [
            // (have, want, unit, expected)
            (0.0, 4.0, 4.0, 0.0),
            (2.0, 4.0, 4.0, 0.25),
            (4.0, 4.0, 4.0, 0.5),
            (8.0, 4.0, 4.0, 0.75),
            (16.0, 4.0, 4.0, 0.5 + 0.5 * 12.0 / 16.0),
            (5.0, 0.0, 0.0, 1.0),
        ];
        for (have, want, unit, expected) in cases {
            let got = headroom(have, want, unit);
            assert!((got - expected).abs() < 1e-9, "{have}/{want}: {got}");
        }
        assert!(headroom(2000.0, 250.0, 1000.0) > headroom(1000.0, 250.0, 1000.0));
        assert!(headroom(1e18, 1.0, 1.0) <= 1.0);
    }

    #[test]
    fn weights_and_detail() {
        // Exactly the recommendation everywhere, idle, always online: half of memory,
        // storage and processor, all of calm and uptime.
        let mut c = dev(1, "exact");
        c.mem_available = 512 * MB;
        c.disk_free = 5 * GB;
        c.cores = 1;
        c.load = [0.0; 3];
        let v = &rank(&need(), &[c])[0];
        assert!((v.score() - 57.5).abs() < 0.01, "{}", v.score()); // 20+15+7.5+10+5
        let d = v.detail();
        assert!(
            d.starts_with("score 58: RAM 20.0/40") && d.contains("load 10.0/10"),
            "{d}"
        );
        assert!(!d.contains("GPU"), "Vaultwarden cannot use a GPU: {d}");
        let mut c = dev(1, "gpu");
        c.gpu = true;
        let d = rank(&jellyfin(), &[c])[0].detail();
        assert!(d.contains("GPU 5/5 (present)"), "{d}");
    }

    #[test]
    fn no_nan_or_infinity_with_zero_or_odd_figures() {
        let mut zero = need();
        zero.ram_min = 0;
        zero.ram_recommended = 0;
        zero.storage_min = 0;
        zero.storage_recommended = 0;
        zero.cpu_recommended = 0;
        zero.cpu_min = 0;
        let odd: Vec<Change> = vec![
            Box::new(|c| c.cores = 0),
            Box::new(|c| c.mem_available = 0),
            Box::new(|c| c.disk_free = 0),
            Box::new(|c| c.cores = 64),
            Box::new(|c| c.load = [1000.0; 3]),
            Box::new(|c| c.load = [f64::NAN; 3]),
            Box::new(|c| c.load = [f64::INFINITY, -1.0, f64::NAN]),
            Box::new(|c| c.uptime = f64::NAN),
            Box::new(|c| c.uptime = 7.0),
            Box::new(|c| c.mem_available = u64::MAX),
        ];
        for n in [zero, need(), immich()] {
            for (i, change) in odd.iter().enumerate() {
                let mut c = dev(1, "a");
                change(&mut c);
                let mut other = dev(2, "b");
                change(&mut other);
                other.disk_free = other.disk_free.saturating_add(GB);
                for v in rank(&n, &[c, other]) {
                    let s = v.score();
                    assert!(s.is_finite() && (0.0..=100.0).contains(&s), "{i}: {s}");
                    assert!(
                        !v.reason().contains("NaN") && !v.reason().contains("inf"),
                        "{i}"
                    );
                    assert!(!v.detail().contains("NaN"), "{i}: {}", v.detail());
                }
            }
        }
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
