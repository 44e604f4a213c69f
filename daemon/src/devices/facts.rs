//! What a poll learns about a device: its facts (from one fixed remote script, `facts.sh`),
//! its containers, and the state the poll decides.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

// The engine's part of the facts is read and typed in `docker/`; a device's facts hold it.
pub use crate::docker::engine::{Container, DockerFacts};

/// What a poll learned about a device.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Facts {
    pub hostname: String,
    pub arch: String,
    pub kernel: String,
    pub os: String,
    pub cpu_model: String,
    pub cores: u32,
    pub mem_total: u64,
    pub mem_available: u64,
    pub load: [f64; 3],
    pub uptime_secs: u64,
    pub disk_path: String,
    pub disk_total: u64,
    pub disk_free: u64,
    /// TCP/UDP ports something listens on (any process), for port-conflict checks.
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Those of `ports` listened on only on loopback addresses (systemd-resolved's
    /// 127.0.0.53:53): no clash for an app that publishes the port on the device's address.
    #[serde(default)]
    pub local_ports: Vec<u16>,
    /// The graphics chips' device files an app could use (`/dev/dri/renderD128`,
    /// `/dev/nvidia0`); empty when there are none. Facts stored before this was gathered read
    /// as none.
    #[serde(default)]
    pub gpu: Vec<String>,
    pub docker: Option<DockerFacts>,
    /// Every container on the device (None when Docker could not be asked). Not stored: read on
    /// every poll and kept in memory beside the stored facts (see `board`), as it is only ever
    /// shown as it is now and would otherwise be rewritten to the disk on every poll.
    #[serde(skip)]
    pub containers: Option<Vec<Container>>,
}

/// A space-separated list of port numbers, sorted and without repeats.
fn port_list(words: Option<&str>) -> Vec<u16> {
    let mut p: Vec<u16> = words
        .map(|v| {
            v.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    p.sort_unstable();
    p.dedup();
    p
}

/// Device status states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Online,
    Degraded,
    Offline,
    Blocked,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Online => "online",
            State::Degraded => "degraded",
            State::Offline => "offline",
            State::Blocked => "blocked",
        }
    }
}

/// Reads everything but Docker in one round trip (`$1`: the path whose disk is measured).
pub(super) const FACTS: &str = include_str!("facts.sh");

pub(super) fn parse_facts(text: &str) -> Facts {
    let kv: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let num = |k: &str| {
        kv.get(k)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let load: Vec<f64> = kv
        .get("load")
        .map(|v| {
            v.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    Facts {
        hostname: kv.get("hostname").unwrap_or(&"").to_string(),
        arch: kv.get("arch").unwrap_or(&"").to_string(),
        kernel: kv.get("kernel").unwrap_or(&"").to_string(),
        os: kv.get("os").unwrap_or(&"").to_string(),
        cpu_model: kv.get("cpu_model").unwrap_or(&"").to_string(),
        cores: num("cores") as u32,
        mem_total: num("mem_total_kb") * 1024,
        mem_available: num("mem_available_kb") * 1024,
        load: [
            load.first().copied().unwrap_or(0.0),
            load.get(1).copied().unwrap_or(0.0),
            load.get(2).copied().unwrap_or(0.0),
        ],
        uptime_secs: kv
            .get("uptime")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as u64,
        disk_path: kv.get("disk_path").unwrap_or(&"").to_string(),
        disk_total: num("disk_total_kb") * 1024,
        disk_free: num("disk_free_kb") * 1024,
        local_ports: port_list(kv.get("local_ports").copied()),
        ports: port_list(kv.get("ports").copied()),
        gpu: kv
            .get("gpu")
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
        docker: None,
        containers: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_facts() {
        let f = parse_facts(
            "ports=8080 22 22 53 \nlocal_ports=53 \nhostname=pi-4\ncores=4\nmem_total_kb=1024\nmem_available_kb=512\nload=0.5 0.25 0.1\nuptime=12.5\ndisk_total_kb=10\ndisk_free_kb=5\nos=Debian GNU/Linux 12 (bookworm)\n",
        );
        assert_eq!(f.hostname, "pi-4");
        assert_eq!(f.cores, 4);
        assert_eq!(f.mem_total, 1024 * 1024);
        assert_eq!(f.load, [0.5, 0.25, 0.1]);
        assert_eq!(f.uptime_secs, 12);
        assert_eq!(f.os, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(f.ports, vec![22, 53, 8080]);
        assert_eq!(f.local_ports, vec![53]);
        assert!(f.gpu.is_empty(), "no gpu line: no graphics chip");
        let f = parse_facts("gpu=/dev/dri/renderD128 /dev/nvidia0 \n");
        assert_eq!(f.gpu, ["/dev/dri/renderD128", "/dev/nvidia0"]);
    }

    /// Facts stored before the graphics chip was gathered still read, as "no graphics chip".
    #[test]
    fn old_stored_facts_read_without_gpu() {
        let old = r#"{"hostname":"pi-4","arch":"aarch64","kernel":"6.1","os":"Debian","cpu_model":"",
            "cores":4,"mem_total":1,"mem_available":1,"load":[0.0,0.0,0.0],"uptime_secs":1,
            "disk_path":"/","disk_total":1,"disk_free":1,"ports":[22],"docker":null}"#;
        let f: Facts = serde_json::from_str(old).unwrap();
        assert_eq!(f.hostname, "pi-4");
        assert!(f.gpu.is_empty());
        let again: Facts = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert!(again.gpu.is_empty());
    }
}
