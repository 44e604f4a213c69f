//! App names on the DNS the owner chose: which provider (setting `dns.provider`), the name an
//! app gets there (`<slug>.<suffix>`, or `<slug>.local` over mDNS), and putting or removing one
//! record on that provider. Only records Homelab made are ever removed: the caller passes back
//! what `put` returned (kept in the store's `app_names`), never a name it did not make.

use std::net::IpAddr;

use super::adguard::{AdGuard, AdGuardError};
use super::mdns::{MdnsError, Names};
use crate::network::opnsense::{OpnSense, OpnSenseError};
use crate::secrets::{Secret, Vault};
use crate::store::{Store, StoreError};

pub use crate::tls::ca::{DEFAULT_SUFFIX, SUFFIX_SETTING};
/// Which DNS holds app names (the DNS panel writes it, this module reads it).
pub const PROVIDER_SETTING: &str = "dns.provider";
/// Where the connected AdGuard Home and router are (the Network page's panels write them).
pub const ADGUARD_URL_SETTING: &str = "adguard.url";
pub const ADGUARD_USER_SETTING: &str = "adguard.username";
pub const OPNSENSE_URL_SETTING: &str = "opnsense.url";
/// The vault owner and purpose of AdGuard Home's password.
pub const ADGUARD_SECRET: (&str, &str) = ("adguard", "password");

/// Where app names live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// No DNS server: each app is announced as `<slug>.local` by this box.
    Mdns,
    AdGuard,
    OpnSense,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Mdns => "mdns",
            Provider::AdGuard => "adguard",
            Provider::OpnSense => "opnsense",
        }
    }

    pub fn parse(s: &str) -> Option<Provider> {
        match s {
            "mdns" => Some(Provider::Mdns),
            "adguard" => Some(Provider::AdGuard),
            "opnsense" => Some(Provider::OpnSense),
            _ => None,
        }
    }

    /// The provider in the owner's words.
    pub fn words(self) -> &'static str {
        match self {
            Provider::Mdns => "announced on your network by Homelab",
            Provider::AdGuard => "AdGuard Home",
            Provider::OpnSense => "your OPNsense router",
        }
    }
}

/// Why a name could not be placed or removed; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error(
        "“{0}” cannot be a name: use letters a–z, digits and hyphens (not at either end), at most 63 characters per part."
    )]
    BadName(String),
    #[error("The name suffix “{0}” is not valid: use something like home.arpa.")]
    BadSuffix(String),
    #[error(
        "{0} is not connected: set it up on the Network page, or choose another way to name apps there."
    )]
    NotConnected(&'static str),
    #[error("{0}")]
    AdGuard(#[from] AdGuardError),
    #[error("{0}")]
    OpnSense(#[from] OpnSenseError),
    #[error("{0}")]
    Mdns(#[from] MdnsError),
    #[error("Homelab's database: {0}")]
    Store(#[from] StoreError),
    #[error("A stored DNS credential could not be opened; enter it again on the Network page.")]
    Vault,
}

/// A record Homelab placed: what to keep to remove exactly it later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub provider: Provider,
    /// The name actually used (mDNS may add `-2` when the name is taken on the network).
    pub name: String,
    /// The provider's id for the record (OPNsense's uuid), or empty.
    pub reference: String,
}

/// Places and removes app names on the chosen provider.
#[derive(Clone)]
pub struct Records {
    store: Store,
    vault: std::sync::Arc<Vault>,
    mdns: Names,
}

/// One DNS label: a–z, 0–9 and hyphens, 1–63 characters, no hyphen at either end.
pub fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// A full DNS name (labels joined by dots, at most 253 characters), lower-cased.
pub fn valid_name(name: &str) -> Result<String, DnsError> {
    let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
    if n.len() > 253 || n.split('.').count() < 2 || !n.split('.').all(valid_label) {
        return Err(DnsError::BadName(
            crate::limits::truncate(name, 80).into_owned(),
        ));
    }
    Ok(n)
}

/// A suffix for app names (`home.arpa`, `lab.example.com`): one or more labels.
pub fn valid_suffix(suffix: &str) -> Result<String, DnsError> {
    let s = suffix.trim().trim_matches('.').to_ascii_lowercase();
    if s.is_empty() || s.len() > 200 || !s.split('.').all(valid_label) || s == "local" {
        return Err(DnsError::BadSuffix(
            crate::limits::truncate(suffix, 80).into_owned(),
        ));
    }
    Ok(s)
}

/// The name an app gets by default on a provider.
pub fn default_name(provider: Provider, label: &str, suffix: &str) -> String {
    match provider {
        Provider::Mdns => format!("{label}.local"),
        _ => format!("{label}.{suffix}"),
    }
}

impl Records {
    pub fn new(store: Store, vault: std::sync::Arc<Vault>, mdns: Names) -> Records {
        Records { store, vault, mdns }
    }

    /// The provider the owner chose (mDNS until they choose one).
    pub async fn provider(&self) -> Provider {
        self.store
            .setting(PROVIDER_SETTING)
            .await
            .ok()
            .flatten()
            .as_deref()
            .and_then(Provider::parse)
            .unwrap_or(Provider::Mdns)
    }

    pub async fn suffix(&self) -> String {
        self.store
            .setting(SUFFIX_SETTING)
            .await
            .ok()
            .flatten()
            .and_then(|s| valid_suffix(&s).ok())
            .unwrap_or_else(|| DEFAULT_SUFFIX.to_string())
    }

    /// Puts `name` → `ip` on `provider`; `slug` marks the record as Homelab's where the
    /// provider has room for that (OPNsense's description).
    pub async fn put(
        &self,
        provider: Provider,
        name: &str,
        ip: IpAddr,
        slug: &str,
    ) -> Result<Placed, DnsError> {
        self.put_probed(provider, name, ip, slug, None).await
    }

    /// Whether an mDNS name (`x.local`) is free for `ip` on the network now; nothing is
    /// announced (see [`crate::dns::mdns::Names::probe`]).
    pub async fn probe_mdns(&self, name: &str, ip: IpAddr) -> Result<bool, DnsError> {
        let name = valid_name(name)?;
        let label = name.strip_suffix(".local").unwrap_or(&name);
        Ok(self.mdns.probe(label, ip).await?)
    }

    /// [`Records::put`], with what [`Records::probe_mdns`] found for the name (mDNS only;
    /// `None`: not probed).
    pub async fn put_probed(
        &self,
        provider: Provider,
        name: &str,
        ip: IpAddr,
        slug: &str,
        free: Option<bool>,
    ) -> Result<Placed, DnsError> {
        let name = valid_name(name)?;
        match provider {
            Provider::Mdns => {
                let label = name.strip_suffix(".local").unwrap_or(&name);
                let used = self.mdns.announce_probed(label, ip, free).await?;
                Ok(Placed {
                    provider,
                    name: used,
                    reference: String::new(),
                })
            }
            Provider::AdGuard => {
                self.adguard()
                    .await?
                    .add_rewrite(&name, &ip.to_string())
                    .await?;
                Ok(Placed {
                    provider,
                    name,
                    reference: String::new(),
                })
            }
            Provider::OpnSense => {
                let (host, domain) = name.split_once('.').unwrap_or((&name, ""));
                let router = self.opnsense().await?;
                let uuid = router
                    .put_host_override(host, domain, &ip.to_string(), &marker(slug))
                    .await?;
                router.apply().await?;
                Ok(Placed {
                    provider,
                    name,
                    reference: uuid,
                })
            }
        }
    }

    /// Points an existing name (ours, answering `from` with `reference`) at `to`: a moved app.
    /// Each provider the way it changes in place: mDNS withdraws and announces again without a
    /// new probe (the name is already ours on the network), AdGuard Home gets the new rewrite
    /// before the old one goes (never a moment without an answer), OPNsense's override (one
    /// per app, found by its marker) is updated where it is.
    pub async fn repoint(
        &self,
        provider: Provider,
        name: &str,
        from: &str,
        reference: &str,
        to: IpAddr,
        slug: &str,
    ) -> Result<Placed, DnsError> {
        match provider {
            Provider::Mdns => {
                self.remove(provider, name, from, reference).await?;
                self.put_probed(provider, name, to, slug, Some(true)).await
            }
            Provider::AdGuard => {
                let placed = self.put(provider, name, to, slug).await?;
                if from != to.to_string() {
                    self.remove(provider, name, from, reference).await?;
                }
                Ok(placed)
            }
            Provider::OpnSense => self.put(provider, name, to, slug).await,
        }
    }

    /// Removes a record `put` made. Absent already is fine.
    pub async fn remove(
        &self,
        provider: Provider,
        name: &str,
        answer: &str,
        reference: &str,
    ) -> Result<(), DnsError> {
        match provider {
            Provider::Mdns => Ok(self.mdns.withdraw(name).await?),
            Provider::AdGuard => Ok(self.adguard().await?.delete_rewrite(name, answer).await?),
            Provider::OpnSense => {
                if reference.is_empty() {
                    return Ok(());
                }
                let router = self.opnsense().await?;
                router.delete_host_override(reference).await?;
                Ok(router.apply().await?)
            }
        }
    }

    /// On start: mDNS names live in this process only, so the stored ones are announced again.
    pub async fn announce_stored(&self) {
        let Ok(names) = self.store.names().await else {
            return;
        };
        for n in names.iter().filter(|n| n.provider == "mdns") {
            let (Some(label), Ok(ip)) = (n.name.strip_suffix(".local"), n.answer.parse()) else {
                continue;
            };
            if let Err(e) = self.mdns.announce(label, ip).await {
                tracing::warn!(name = %n.name, error = %e, "could not announce an app name again");
            }
        }
    }

    pub fn mdns(&self) -> &Names {
        &self.mdns
    }

    /// Checks from the box that `name` resolves to `ip` and answers over HTTPS with a
    /// certificate `trust` accepts (`.local` names asked on the interfaces names go out on).
    pub async fn check(
        &self,
        name: &str,
        ip: IpAddr,
        trust: &crate::tls::trust::Trust,
    ) -> super::check::NameCheck {
        let only = self.mdns.interfaces();
        super::check::check_on(only.as_deref(), name, ip, trust, 443).await
    }

    async fn secret(&self, owner: &str, purpose: &str) -> Result<Secret, DnsError> {
        let sealed = self
            .store
            .secret(owner.to_string(), purpose.to_string())
            .await?
            .ok_or(DnsError::Vault)?;
        self.vault
            .open(&sealed, owner, purpose)
            .map_err(|_| DnsError::Vault)
    }

    /// The AdGuard Home the owner connected on the Network page.
    pub async fn adguard(&self) -> Result<AdGuard, DnsError> {
        let url = self.store.setting(ADGUARD_URL_SETTING).await?;
        let user = self.store.setting(ADGUARD_USER_SETTING).await?;
        let (Some(url), Some(user)) = (url, user) else {
            return Err(DnsError::NotConnected("AdGuard Home"));
        };
        let password = self.secret(ADGUARD_SECRET.0, ADGUARD_SECRET.1).await?;
        Ok(AdGuard::new(&url, &user, password)?)
    }

    /// The OPNsense router the owner connected on the Network page.
    pub async fn opnsense(&self) -> Result<OpnSense, DnsError> {
        let Some(url) = self.store.setting(OPNSENSE_URL_SETTING).await? else {
            return Err(DnsError::NotConnected("Your router"));
        };
        let pin = self.store.setting("opnsense.fingerprint").await?;
        let key = self.secret("opnsense", "api-key").await?;
        let secret = self.secret("opnsense", "api-secret").await?;
        Ok(OpnSense::new(&url, key, secret, pin)?)
    }
}

/// How Homelab marks its records where the provider keeps a description.
pub fn marker(slug: &str) -> String {
    format!("Homelab: {slug}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_anything_goes_out() {
        assert_eq!(
            valid_name("Vaultwarden.Home.Arpa.").unwrap(),
            "vaultwarden.home.arpa"
        );
        for bad in [
            "a..b",
            "-x.home.arpa",
            "x-.home.arpa",
            "single",
            "x y.home.arpa",
            "x;rm -rf.home.arpa",
            "ünï.home.arpa",
            "x\n.home.arpa",
            "x_y.home.arpa",
        ] {
            assert!(valid_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(valid_name(&format!("{}.home.arpa", "a".repeat(64))).is_err());
        assert!(valid_name(&format!("{}.home.arpa", "a".repeat(63))).is_ok());
        assert_eq!(valid_suffix(" Home.Arpa ").unwrap(), "home.arpa");
        assert!(valid_suffix("local").is_err(), ".local belongs to mDNS");
        assert!(valid_suffix("").is_err());
        assert_eq!(
            default_name(Provider::Mdns, "jellyfin", "home.arpa"),
            "jellyfin.local"
        );
        assert_eq!(
            default_name(Provider::AdGuard, "jellyfin", "lab.example"),
            "jellyfin.lab.example"
        );
    }
}
