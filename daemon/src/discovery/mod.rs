//! Finding things on the LAN. The box announces itself as `homelab.local` over mDNS (an
//! `_http._tcp` service, which is what makes mdns-sd answer for the host name), only on real
//! LAN interfaces; and "Scan my network" lists likely devices from mDNS (SSH / workstation
//! services) and the kernel's neighbour table, each with a quick check of its SSH port.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};
use serde::Serialize;

/// Errors from mDNS.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("mDNS is not available: {0}")]
    Mdns(#[from] mdns_sd::Error),
    #[error("no LAN interface to announce on (looked at: {0})")]
    NoInterface(String),
}

/// The host name users type.
pub const HOST_NAME: &str = "homelab.local.";
/// Services that mean "a computer you can log in to".
const BROWSE_TYPES: [&str; 3] = [
    "_ssh._tcp.local.",
    "_sftp-ssh._tcp.local.",
    "_workstation._tcp.local.",
];
/// How long a port-22 probe may take per address.
const PROBE_TIMEOUT: Duration = Duration::from_millis(800);

/// Interfaces that are not the LAN: loopback, container bridges and veths, VPN tunnels.
fn is_virtual(name: &str) -> bool {
    name == "lo"
        || [
            "docker",
            "veth",
            "br-",
            "virbr",
            "cni",
            "flannel",
            "cali",
            "tun",
            "tap",
            "wg",
            "zt",
            "tailscale",
        ]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Every interface address (IPv4 and global IPv6; link-local IPv6 is skipped since it is
/// useless in a URL), with its interface name.
pub fn interface_addrs() -> Vec<(String, IpAddr)> {
    let mut out = Vec::new();
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return out;
    };
    for ifa in addrs {
        let Some(addr) = ifa.address else { continue };
        let ip = if let Some(v4) = addr.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            let ip = v6.ip();
            if (ip.segments()[0] & 0xffc0) == 0xfe80 {
                continue;
            }
            IpAddr::V6(ip)
        } else {
            continue;
        };
        out.push((ifa.interface_name.clone(), ip));
    }
    out
}

/// LAN interfaces and their addresses. `only`, when given, restricts to those interface names;
/// otherwise loopback and virtual interfaces are left out.
pub fn lan_interfaces(only: Option<&[String]>) -> Vec<(String, IpAddr)> {
    interface_addrs()
        .into_iter()
        .filter(|(name, ip)| {
            !ip.is_loopback()
                && match only {
                    Some(list) => list.contains(name),
                    None => !is_virtual(name),
                }
        })
        .collect()
}

/// One mdns-sd daemon answering only on LAN interfaces (`only`, when given, names them).
/// The box keeps ONE of these: `homelab.local` ([`Announcer::on`]) and the app names
/// (`dns::mdns::Names`) share it, so there is one responder per interface, one socket pair and
/// one thread, however many names are announced.
pub fn lan_daemon(only: Option<&[String]>) -> Result<ServiceDaemon, DiscoveryError> {
    let ifaces = lan_interfaces(only);
    if ifaces.is_empty() {
        let looked = only
            .map(|l| l.join(", "))
            .unwrap_or_else(|| "all non-virtual interfaces".into());
        return Err(DiscoveryError::NoInterface(looked));
    }
    let daemon = ServiceDaemon::new()?;
    // mdns-sd binds everything by default (docker0, veths…): answer only on the LAN.
    daemon.disable_interface(IfKind::All)?;
    let mut names: Vec<String> = ifaces.iter().map(|(n, _)| n.clone()).collect();
    names.dedup();
    for n in &names {
        daemon.enable_interface(IfKind::Name(n.clone()))?;
    }
    tracing::debug!(interfaces = ?names, "mDNS responder restricted to LAN interfaces");
    Ok(daemon)
}

/// Keeps `homelab.local` announced while alive.
pub struct Announcer {
    daemon: ServiceDaemon,
    /// Another owner (the app names) uses the same daemon: on drop only our service goes,
    /// the daemon stays up.
    shared: bool,
}

/// The instance name of the box's own service (its full name is derived from it).
const INSTANCE: &str = "Homelab";
const HTTP_TYPE: &str = "_http._tcp.local.";

impl Announcer {
    /// Announces `homelab.local` with an `_http._tcp` service on `port`, on a daemon of its own.
    pub fn start(port: u16, only: Option<&[String]>) -> Result<Announcer, DiscoveryError> {
        let daemon = lan_daemon(only)?;
        let mut a = Announcer::on(daemon, port, only)?;
        a.shared = false;
        Ok(a)
    }

    /// Announces `homelab.local` on a daemon made by [`lan_daemon`] that others share; dropping
    /// the announcer withdraws the service but leaves the daemon running.
    pub fn on(
        daemon: ServiceDaemon,
        port: u16,
        only: Option<&[String]>,
    ) -> Result<Announcer, DiscoveryError> {
        let ifaces = lan_interfaces(only);
        let ips: Vec<IpAddr> = ifaces.iter().map(|(_, ip)| *ip).collect();
        let info = ServiceInfo::new(
            HTTP_TYPE,
            INSTANCE,
            HOST_NAME,
            &ips[..],
            port,
            &[("path", "/")][..],
        )?;
        daemon.register(info)?;
        let names: Vec<&String> = ifaces.iter().map(|(n, _)| n).collect();
        tracing::info!(interfaces = ?names, "announcing homelab.local over mDNS");
        Ok(Announcer {
            daemon,
            shared: true,
        })
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        if self.shared {
            let _ = self.daemon.unregister(&format!("{INSTANCE}.{HTTP_TYPE}"));
        } else {
            let _ = self.daemon.shutdown();
        }
    }
}

/// Something on the network that might be a device.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// A name when mDNS gave one, else the address.
    pub name: String,
    pub address: IpAddr,
    /// Where we learned of it: "mDNS" or "network neighbour".
    pub source: &'static str,
    /// Port 22 answered.
    pub ssh: bool,
}

/// Browses mDNS for `listen` and reads the neighbour table, then probes port 22 on every
/// address found. Takes about `listen` plus one probe timeout.
pub async fn scan(listen: Duration, only: Option<Vec<String>>) -> Vec<Candidate> {
    let mut found: BTreeMap<IpAddr, (String, &'static str)> = BTreeMap::new();
    let ifaces: Vec<String> = lan_interfaces(only.as_deref())
        .into_iter()
        .map(|(n, _)| n)
        .collect();

    let only_for_mdns = only.clone();
    let mdns = tokio::task::spawn_blocking(move || browse(listen, only_for_mdns.as_deref()))
        .await
        .unwrap_or_default();
    for (ip, name) in mdns {
        found.insert(ip, (name, "mDNS"));
    }
    for ip in neighbours(&ifaces) {
        found
            .entry(IpAddr::V4(ip))
            .or_insert_with(|| (ip.to_string(), "network neighbour"));
    }
    let probes = found.into_iter().map(|(ip, (name, source))| async move {
        let ssh = matches!(
            tokio::time::timeout(
                PROBE_TIMEOUT,
                tokio::net::TcpStream::connect(SocketAddr::new(ip, 22))
            )
            .await,
            Ok(Ok(_))
        );
        Candidate {
            name,
            address: ip,
            source,
            ssh,
        }
    });
    futures_util::future::join_all(probes).await
}

/// mDNS browse for computers; returns (address, instance name).
fn browse(listen: Duration, only: Option<&[String]>) -> Vec<(IpAddr, String)> {
    let Ok(daemon) = ServiceDaemon::new() else {
        return vec![];
    };
    if let Some(list) = only {
        let _ = daemon.disable_interface(IfKind::All);
        for n in list {
            let _ = daemon.enable_interface(IfKind::Name(n.clone()));
        }
    }
    let receivers: Vec<_> = BROWSE_TYPES
        .iter()
        .filter_map(|t| daemon.browse(t).ok())
        .collect();
    let deadline = std::time::Instant::now() + listen;
    let mut out = Vec::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        let slice = left.min(Duration::from_millis(100)) / receivers.len().max(1) as u32;
        for rx in &receivers {
            if let Ok(ServiceEvent::ServiceResolved(svc)) = rx.recv_timeout(slice) {
                let name = svc
                    .fullname
                    .split('.')
                    .next()
                    .unwrap_or(&svc.host)
                    .replace("\\032", " ");
                for a in &svc.addresses {
                    let ip = a.to_ip_addr();
                    if !out.iter().any(|(o, _)| *o == ip) {
                        out.push((ip, name.clone()));
                    }
                }
            }
        }
    }
    let _ = daemon.shutdown();
    out
}

/// IPv4 neighbours the kernel knows on the given interfaces (from /proc/net/arp).
fn neighbours(ifaces: &[String]) -> Vec<Ipv4Addr> {
    let Ok(text) = std::fs::read_to_string("/proc/net/arp") else {
        return vec![];
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            // IP, HW type, Flags (0x2 = complete), HW address, Mask, Device
            if cols.len() < 6 || cols[2] == "0x0" || !ifaces.iter().any(|i| i == cols[5]) {
                return None;
            }
            cols[0].parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_interfaces_are_skipped() {
        for n in ["lo", "docker0", "veth12ab", "br-5f2", "wg0", "tailscale0"] {
            assert!(is_virtual(n), "{n}");
        }
        for n in ["eth0", "enp3s0", "wlan0", "end0", "hlab0"] {
            assert!(!is_virtual(n), "{n}");
        }
    }
}
