//! App names as `<label>.local` over mDNS, announced by the box for the app's device: one
//! `_https._tcp` service per name (mdns-sd answers a host name only while a service with that
//! host is registered), whose address is the APP'S DEVICE, not the box. Before a name goes on
//! the wire the network is asked whether someone else already answers it; if so `-2`, `-3`…
//! is tried and the name actually used is returned.
//!
//! Why this works for an address that is not the box's: mdns-sd (0.21.7,
//! `service_daemon.rs` `handle_query` → `answer_hostname_question`, and
//! `service_info.rs` `get_addrs_on_my_intf_v4`) answers A/AAAA questions for a registered
//! service's host with the service's addresses that lie in the SUBNET of the interface the
//! question came in on. It never checks the address is its own. So a device on the box's own
//! network can be named; one on another subnet cannot (mDNS is link-local anyway), and
//! [`Names::announce`] refuses it in words rather than announcing a name nothing answers.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mdns_sd::{HostnameResolutionEvent, ServiceDaemon, ServiceInfo};

/// At most this many names at once: each is a registered service the daemon answers for, so
/// the table and the daemon's memory stay bounded whatever the store holds.
pub const MAX_NAMES: usize = 500;
/// `<label>`, then `<label>-2` … `<label>-9`: after that the owner should choose a name.
pub const MAX_SUFFIX: u32 = 9;
/// How long to listen for someone else answering a name before taking it. RFC 6762 §8.1
/// probes for 750 ms in all and waits only 250 ms after its last probe: a host that owns a
/// name answers for it at once. mdns-sd sends its question 20–120 ms after the start, so 1 s
/// still listens 880 ms for the answer, more than three times the RFC's own wait (and more
/// than the 500 ms a responder may hold back a shared answer). A deploy runs this probe while
/// the app starts (`probe`), so it costs no wait there; taken names try the next label (up to
/// 9 tries: ≤ 9 s when all are taken).
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long to wait for the daemon to confirm a withdrawal (it sends goodbye packets).
const WITHDRAW_TIMEOUT: Duration = Duration::from_secs(2);
/// The service each name hangs on: apps are reached over HTTPS through the device's proxy.
const SERVICE_TYPE: &str = "_https._tcp.local.";
const HTTPS_PORT: u16 = 443;

/// What can go wrong announcing a name. The messages are shown to the owner as they are.
#[derive(Debug, thiserror::Error)]
pub enum MdnsError {
    #[error(
        "“{0}” cannot be a name on your network: use letters a–z, digits and hyphens (not at either end), at most 63 characters, no dots."
    )]
    BadName(String),
    #[error(
        "This box is not announcing names on your network (it was started without that); open the app by its address instead."
    )]
    Off,
    #[error(
        "{0} is not on the same network as this box, so this box cannot give it a .local name; choose another way to name apps on the Network page."
    )]
    NotOnNetwork(IpAddr),
    #[error(
        "Every name from {0}.local to {0}-{max}.local is already used by another device on your network; choose another name.",
        max = MAX_SUFFIX
    )]
    AllTaken(String),
    #[error("This box already announces {max} names; remove an app's name first.", max = MAX_NAMES)]
    TooMany,
    #[error("Announcing names on your network stopped working: {0}")]
    Mdns(#[from] mdns_sd::Error),
}

/// App names this box announces. Cheap to clone; all clones share one table and one daemon.
#[derive(Clone)]
pub struct Names {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` when the box runs without mDNS: every announce says so in words.
    daemon: Option<ServiceDaemon>,
    /// The interfaces the daemon answers on (`None` = every non-virtual one), to check an
    /// address is on one of their subnets before announcing it.
    only: Option<Vec<String>>,
    /// Used label → what it points at. A std mutex: held only to read or write the map,
    /// never across an await.
    table: Mutex<BTreeMap<String, Entry>>,
    /// One announce or withdraw at a time, so two apps probing at once cannot both pick the
    /// same free name. Held across the probe (≤ 1.5 s per try), which is why it is tokio's.
    ops: tokio::sync::Mutex<()>,
}

#[derive(Debug, Clone)]
struct Entry {
    /// The label the caller asked for (`vaultwarden` for `vaultwarden-2`): asking again
    /// for it finds this entry, so re-announcing is idempotent.
    asked: String,
    ip: IpAddr,
}

/// The names own the daemon: when the last clone goes (a runtime closing, a test ending) it
/// is shut down, sending goodbyes for every name and for `homelab.local` if that shares it,
/// so no responder thread outlives the daemon that made it.
impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(d) = &self.daemon {
            let _ = d.shutdown();
        }
    }
}

/// One DNS label (RFC 1123): a–z, 0–9 and hyphens, 1–63 characters, no hyphen at either end.
/// Upper-case ASCII is folded (names are case-insensitive); anything else is refused.
pub fn valid_label(label: &str) -> Result<String, MdnsError> {
    let l = label.to_ascii_lowercase();
    let ok = !l.is_empty()
        && l.len() <= 63
        && l.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-');
    if ok {
        Ok(l)
    } else {
        Err(MdnsError::BadName(
            crate::limits::truncate(label, 80).into_owned(),
        ))
    }
}

/// `label`, then `label-2` … `label-9`, each trimmed so it stays a valid 63-character label.
fn candidates(label: &str) -> Vec<String> {
    let mut out = vec![label.to_string()];
    for n in 2..=MAX_SUFFIX {
        let suffix = format!("-{n}");
        let room = 63 - suffix.len();
        let base = label[..label.len().min(room)].trim_end_matches('-');
        out.push(format!("{base}{suffix}"));
    }
    out
}

fn fullname(label: &str) -> String {
    format!("{label}.{SERVICE_TYPE}")
}

fn host(label: &str) -> String {
    format!("{label}.local.")
}

/// `vaultwarden.local`, `vaultwarden.local.` or `vaultwarden` → `vaultwarden`.
fn label_of(name: &str) -> String {
    let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
    n.strip_suffix(".local").map(str::to_string).unwrap_or(n)
}

impl Names {
    /// Names announced on `daemon` (made by `discovery::lan_daemon(only)` with the same
    /// `only`; hand a clone to `discovery::Announcer::on` so `homelab.local` shares it);
    /// `None` when mDNS is off. The names own the daemon: the last clone shuts it down.
    pub fn new(daemon: Option<ServiceDaemon>, only: Option<Vec<String>>) -> Names {
        Names {
            inner: Arc::new(Inner {
                daemon,
                only,
                table: Mutex::new(BTreeMap::new()),
                ops: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The interfaces names are announced (and asked) on; None: every LAN interface.
    pub fn interfaces(&self) -> Option<Vec<String>> {
        self.inner.only.clone()
    }

    /// Names on a daemon of their own made from the LAN interfaces (`only`, when given).
    /// [`Names::daemon`] hands it to the announcer of `homelab.local`.
    pub fn start(only: Option<Vec<String>>) -> Result<Names, crate::discovery::DiscoveryError> {
        let daemon = crate::discovery::lan_daemon(only.as_deref())?;
        Ok(Names::new(Some(daemon), only))
    }

    /// Names that are never announced: every announce answers [`MdnsError::Off`].
    pub fn off() -> Names {
        Names::new(None, None)
    }

    /// The daemon these names are announced on, to share (e.g. with `homelab.local`'s).
    pub fn daemon(&self) -> Option<ServiceDaemon> {
        self.inner.daemon.clone()
    }

    /// Announces `<label>.local` → `ip`; returns the name used (`<label>-2.local` … when the
    /// network already has `<label>.local`). Asking again for the same label re-announces
    /// (with the new address, if it moved) and returns the same name.
    pub async fn announce(&self, label: &str, ip: IpAddr) -> Result<String, MdnsError> {
        self.announce_probed(label, ip, None).await
    }

    /// Whether `<label>.local` is free for `ip` on the network now (not answered by anyone
    /// else). Nothing is announced: a deploy asks this while the app starts and then hands
    /// the answer to [`Names::announce_probed`], so the usual case (free) waits for nothing.
    pub async fn probe(&self, label: &str, ip: IpAddr) -> Result<bool, MdnsError> {
        let label = valid_label(label)?;
        let daemon = self.inner.daemon.clone().ok_or(MdnsError::Off)?;
        // One question per name at a time: mdns-sd keeps one listener per host name.
        let _one = self.inner.ops.lock().await;
        Ok(!answered_elsewhere(&daemon, &label, ip).await?)
    }

    /// [`Names::announce`], with what a [`Names::probe`] of `label` itself found (`None`:
    /// not probed; ask now). Later labels (`-2`, …) are always probed here.
    pub async fn announce_probed(
        &self,
        label: &str,
        ip: IpAddr,
        free: Option<bool>,
    ) -> Result<String, MdnsError> {
        let label = valid_label(label)?;
        let daemon = self.inner.daemon.clone().ok_or(MdnsError::Off)?;
        let _one = self.inner.ops.lock().await;
        let (mine, used_by_us, count) = {
            let t = self.table();
            let mine = t
                .iter()
                .find(|(_, e)| e.asked == label)
                .map(|(used, _)| used.clone());
            (mine, t.keys().cloned().collect::<Vec<_>>(), t.len())
        };
        if mine.is_none() && count >= MAX_NAMES {
            return Err(MdnsError::TooMany);
        }
        if !on_lan(ip, self.inner.only.as_deref()) {
            return Err(MdnsError::NotOnNetwork(ip));
        }
        if let Some(used) = mine {
            // Ours already: registering again is idempotent in mdns-sd (it re-announces).
            register(&daemon, &used, ip)?;
            self.table()
                .insert(used.clone(), Entry { asked: label, ip });
            return Ok(format!("{used}.local"));
        }
        for candidate in candidates(&label) {
            if used_by_us.contains(&candidate) {
                continue;
            }
            let taken = match free {
                Some(free) if candidate == label => !free,
                _ => answered_elsewhere(&daemon, &candidate, ip).await?,
            };
            if taken {
                tracing::info!(name = %candidate, "name already answered on the network; trying the next");
                continue;
            }
            register(&daemon, &candidate, ip)?;
            self.table().insert(
                candidate.clone(),
                Entry {
                    asked: label.clone(),
                    ip,
                },
            );
            tracing::info!(name = %candidate, %ip, "announcing an app name over mDNS");
            return Ok(format!("{candidate}.local"));
        }
        Err(MdnsError::AllTaken(label))
    }

    /// Stops announcing `name` (`x.local` or `x`, as [`Names::announce`] returned it).
    /// A name this box does not announce is fine: nothing to do.
    pub async fn withdraw(&self, name: &str) -> Result<(), MdnsError> {
        let label = label_of(name);
        let Some(daemon) = self.inner.daemon.clone() else {
            return Ok(());
        };
        let _one = self.inner.ops.lock().await;
        if !self.table().contains_key(&label) {
            return Ok(());
        }
        let status = daemon.unregister(&fullname(&label))?;
        // The daemon confirms once the goodbye packets are queued; bounded, since a stuck
        // daemon must not stall the caller (the name is gone from our table either way).
        let _ = tokio::time::timeout(WITHDRAW_TIMEOUT, status.recv_async()).await;
        self.table().remove(&label);
        tracing::info!(name = %label, "stopped announcing an app name");
        Ok(())
    }

    /// Every name announced now (`x.local`, the address it answers), sorted by name.
    pub fn announced(&self) -> Vec<(String, IpAddr)> {
        self.table()
            .iter()
            .map(|(l, e)| (format!("{l}.local"), e.ip))
            .collect()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        // A panic while holding it left a plain map behind, still consistent: keep going.
        self.inner.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn register(daemon: &ServiceDaemon, label: &str, ip: IpAddr) -> Result<(), MdnsError> {
    let info = ServiceInfo::new(
        SERVICE_TYPE,
        label,
        &host(label),
        ip,
        HTTPS_PORT,
        None::<HashMap<String, String>>,
    )?;
    daemon.register(info)?;
    Ok(())
}

/// Whether someone else on the network answers `<label>.local` with an address other than
/// `ip`. The same address is not a clash (RFC 6762 §9: identical records are no conflict),
/// which also keeps a name we ourselves withdrew a moment ago, still in the daemon's cache,
/// from counting as taken when it is announced again for the same device.
async fn answered_elsewhere(
    daemon: &ServiceDaemon,
    label: &str,
    ip: IpAddr,
) -> Result<bool, MdnsError> {
    let hostname = host(label);
    let timeout_ms = PROBE_TIMEOUT.as_millis() as u64;
    let rx = daemon.resolve_hostname(&hostname, Some(timeout_ms))?;
    let deadline = tokio::time::Instant::now() + PROBE_TIMEOUT;
    let mut taken = false;
    while let Ok(Ok(event)) = tokio::time::timeout_at(deadline, rx.recv_async()).await {
        match event {
            HostnameResolutionEvent::AddressesFound(_, addrs)
                if addrs.iter().any(|a| a.to_ip_addr() != ip) =>
            {
                taken = true;
                break;
            }
            HostnameResolutionEvent::SearchTimeout(_)
            | HostnameResolutionEvent::SearchStopped(_) => {
                break;
            }
            _ => {}
        }
    }
    let _ = daemon.stop_resolve_hostname(&hostname);
    Ok(taken)
}

/// Whether `ip` lies in the subnet of one of the LAN interfaces the daemon answers on (the
/// only addresses mdns-sd will put in an answer; see the module note).
fn on_lan(ip: IpAddr, only: Option<&[String]>) -> bool {
    let lan: Vec<String> = crate::discovery::lan_interfaces(only)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return false;
    };
    for ifa in addrs {
        if !lan.contains(&ifa.interface_name) {
            continue;
        }
        let (Some(addr), Some(mask)) = (ifa.address, ifa.netmask) else {
            continue;
        };
        match (ip, addr.as_sockaddr_in(), mask.as_sockaddr_in()) {
            (IpAddr::V4(ip), Some(a), Some(m)) => {
                let m = u32::from(m.ip());
                if u32::from(ip) & m == u32::from(a.ip()) & m {
                    return true;
                }
            }
            _ => {
                if let (IpAddr::V6(ip), Some(a), Some(m)) =
                    (ip, addr.as_sockaddr_in6(), mask.as_sockaddr_in6())
                {
                    let m = u128::from(m.ip());
                    if u128::from(ip) & m == u128::from(a.ip()) & m {
                        return true;
                    }
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_checked_before_anything_goes_on_the_wire() {
        let long = "a".repeat(64);
        for bad in [
            "a..b",
            "-x",
            "x-",
            "x.y",
            "",
            "ümlaut",
            "snow☃",
            "a b",
            "a_b",
            long.as_str(),
        ] {
            assert!(
                matches!(valid_label(bad), Err(MdnsError::BadName(_))),
                "{bad:?}"
            );
        }
        assert_eq!(valid_label("Vault-Warden2").unwrap(), "vault-warden2");
        assert_eq!(valid_label(&"a".repeat(63)).unwrap().len(), 63);
    }

    #[test]
    fn suffixed_names_stay_valid_labels() {
        let c = candidates("vaultwarden");
        assert_eq!(c.len(), MAX_SUFFIX as usize);
        assert_eq!(c[0], "vaultwarden");
        assert_eq!(c[1], "vaultwarden-2");
        assert_eq!(c[8], "vaultwarden-9");
        let long = format!("{}-{}", "a".repeat(60), "b");
        for c in candidates(&long) {
            assert!(valid_label(&c).is_ok(), "{c}");
        }
    }

    #[test]
    fn names_are_read_with_or_without_local() {
        assert_eq!(label_of("vaultwarden.local"), "vaultwarden");
        assert_eq!(label_of("Vaultwarden.local."), "vaultwarden");
        assert_eq!(label_of("vaultwarden"), "vaultwarden");
    }

    #[tokio::test]
    async fn at_most_max_names_are_announced() {
        // A daemon on no interface at all: nothing goes on any wire.
        let daemon = ServiceDaemon::new().unwrap();
        daemon.disable_interface(mdns_sd::IfKind::All).unwrap();
        let n = Names::new(Some(daemon), Some(vec![]));
        let ip: IpAddr = "10.88.0.12".parse().unwrap();
        for i in 0..MAX_NAMES {
            n.table().insert(
                format!("app{i}"),
                Entry {
                    asked: format!("app{i}"),
                    ip,
                },
            );
        }
        assert!(matches!(
            n.announce("one-more", ip).await,
            Err(MdnsError::TooMany)
        ));
        // A name already held is not a new one: it gets past the bound (and here stops at
        // the network check, since this daemon has no network).
        assert!(matches!(
            n.announce("app7", ip).await,
            Err(MdnsError::NotOnNetwork(_))
        ));
        assert_eq!(n.announced().len(), MAX_NAMES);
    }

    #[tokio::test]
    async fn without_mdns_every_announce_says_so_and_withdraw_is_fine() {
        let n = Names::off();
        let ip: IpAddr = "10.88.0.12".parse().unwrap();
        assert!(matches!(
            n.announce("vaultwarden", ip).await,
            Err(MdnsError::Off)
        ));
        assert!(matches!(
            n.announce("a..b", ip).await,
            Err(MdnsError::BadName(_))
        ));
        n.withdraw("vaultwarden.local").await.unwrap();
        assert!(n.announced().is_empty());
    }
}
