//! The homelab's own certificate authority: a root made once per box (its key sealed in the
//! vault, its certificate in the settings table) that signs short-lived certificates for the
//! box and its apps. The root carries critical name constraints, so even if someone installs it
//! everywhere it can only vouch for home names (`home.arpa`, `.local`, …) and private
//! addresses; see /work/research-16/name-constraints.md for which clients enforce that.

use std::net::IpAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, SanType, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::{TlsError, fingerprint};
use crate::secrets::{Secret, Vault};
use crate::store::Store;

/// The app-name suffix when the owner has not chosen one (RFC 8375's name for home networks).
pub const DEFAULT_SUFFIX: &str = "home.arpa";
/// Setting holding the app-name suffix (read here; the names module owns changing it).
pub const SUFFIX_SETTING: &str = "names.suffix";
/// Setting holding the root certificate (PEM; public).
const ROOT_PEM_SETTING: &str = "ca.root_pem";
/// Setting holding the box name the root was made with: the issuer name of every leaf must
/// repeat the root's subject byte for byte, and the host name may change later.
const ROOT_NAME_SETTING: &str = "ca.root_name";
/// Owner and purpose of the sealed root key in the vault and the secrets table.
pub const OWNER: &str = "ca";
pub const ROOT_KEY_PURPOSE: &str = "root-key";

/// How long the root lives: long enough that nobody re-installs it during the box's life.
const ROOT_YEARS: i64 = 20;
/// A leaf's validity: 90 days (what browsers accept for public CAs and plenty for renewal).
pub const LEAF_DAYS: i64 = 90;
/// Leaves start an hour back, so a client whose clock is a little behind still accepts them.
const LEAF_BACKDATE: time::Duration = time::Duration::hours(1);
/// At most this many names and addresses in one leaf (bounded work and size).
pub const MAX_LEAF_NAMES: usize = 100;

/// DNS subtrees every root permits: RFC 8375's home.arpa, mDNS's .local, localhost, and the
/// names home routers commonly hand out (`.internal` is ICANN's reserved private TLD, 2024).
pub const HOME_DOMAINS: &[&str] = &["home.arpa", "local", "localhost", "internal", "lan", "home"];

/// Address ranges the root may vouch for: RFC 1918, loopback, link-local, RFC 6598 shared
/// space (CGNAT, Tailscale), IPv6 unique-local, link-local and loopback.
pub const PRIVATE_RANGES: &[(IpAddr, u8)] = &[
    (IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 0)), 8),
    (IpAddr::V4(std::net::Ipv4Addr::new(172, 16, 0, 0)), 12),
    (IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 0, 0)), 16),
    (IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 0)), 8),
    (IpAddr::V4(std::net::Ipv4Addr::new(169, 254, 0, 0)), 16),
    (IpAddr::V4(std::net::Ipv4Addr::new(100, 64, 0, 0)), 10),
    (
        IpAddr::V6(std::net::Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0)),
        7,
    ),
    (
        IpAddr::V6(std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)),
        10,
    ),
    (IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), 128),
];

/// The root: cheap to clone.
#[derive(Clone)]
pub struct Authority(Arc<Inner>);

struct Inner {
    root_pem: String,
    root_der: Vec<u8>,
    fingerprint: String,
    /// The box name the root was made with.
    box_name: String,
    /// The DNS subtrees the root permits (lower case, no dots at either end).
    domains: Vec<String>,
    /// What signing needs: the root's subject and key identifier method, and its key.
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate the root issued, with its key.
pub struct Leaf {
    /// The leaf only.
    pub cert_pem: String,
    /// Leaf then root: what a server sends.
    pub chain_pem: String,
    /// PKCS#8 PEM of the leaf's private key.
    pub key_pem: Secret,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// SHA-256 of the leaf's DER, colon hex.
    pub fingerprint: String,
}

impl std::fmt::Debug for Leaf {
    // The key never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaf")
            .field("fingerprint", &self.fingerprint)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// True once two thirds of the validity has passed (renew then): a 90-day leaf is renewed
/// after 60 days, leaving a month of retries before it expires.
pub fn renewal_due(not_before: i64, not_after: i64, now: i64) -> bool {
    let life = (i128::from(not_after) - i128::from(not_before)).max(0);
    (i128::from(now) - i128::from(not_before)) * 3 >= life * 2
}

/// The box name used in the root's name: the host name, or "homelab".
pub fn box_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .map(|h| h.to_string_lossy().trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "homelab".to_string())
}

/// A DNS name in its compared form: lower case, without a trailing dot.
fn normalise(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// True when `name` is `domain` or a name under it.
fn within(name: &str, domain: &str) -> bool {
    name == domain
        || (name.len() > domain.len()
            && name.ends_with(domain)
            && name.as_bytes()[name.len() - domain.len() - 1] == b'.')
}

/// True when `ip` is in one of [`PRIVATE_RANGES`].
pub fn private_address(ip: &IpAddr) -> bool {
    PRIVATE_RANGES
        .iter()
        .any(|(net, prefix)| in_range(ip, net, *prefix))
}

fn in_range(ip: &IpAddr, net: &IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(*a) & mask == u32::from(*n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(*a) & mask == u128::from(*n) & mask
        }
        _ => false,
    }
}

/// The permitted DNS subtrees for a root made with this suffix.
fn domains_for(suffix: &str) -> Vec<String> {
    let mut out: Vec<String> = HOME_DOMAINS.iter().map(|d| d.to_string()).collect();
    let suffix = normalise(suffix.trim_start_matches('.'));
    if !suffix.is_empty() && !out.iter().any(|d| within(&suffix, d)) {
        out.push(suffix);
    }
    out
}

/// The root's parameters. Signing needs the same subject again later, so this is rebuilt
/// from the stored box name and extra domain instead of parsing the certificate.
fn root_params(name: &str, domains: &[String]) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("Homelab {name} root"));
    dn.push(DnType::OrganizationName, "Homelab");
    params.distinguished_name = dn;
    // Path length 0: the root signs leaves only, never another authority.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut permitted: Vec<GeneralSubtree> = domains
        .iter()
        .map(|d| GeneralSubtree::DnsName(d.clone()))
        .collect();
    permitted.extend(
        PRIVATE_RANGES.iter().map(|(ip, prefix)| {
            GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(*ip, *prefix))
        }),
    );
    // rcgen marks the name-constraints extension critical (RFC 5280 4.2.1.10 requires it).
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: permitted,
        excluded_subtrees: vec![],
    });
    params
}

/// A positive random serial of 16 bytes (CA/B Forum asks for at least 64 random bits).
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = crate::secrets::random_bytes();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

fn unix(t: time::OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

impl Authority {
    /// Loads the root, making it on first start. `suffix` is the app-name suffix; when it is
    /// not under one of the home domains the new root permits it too (an existing root keeps
    /// what it was made with).
    pub async fn load_or_create(
        store: &Store,
        vault: &Vault,
        suffix: &str,
    ) -> Result<Authority, TlsError> {
        let pem = store.setting(ROOT_PEM_SETTING).await?;
        let sealed = store.secret(OWNER.into(), ROOT_KEY_PURPOSE).await?;
        let name = store.setting(ROOT_NAME_SETTING).await?;
        match (pem, sealed, name) {
            (Some(pem), Some(sealed), Some(name)) => {
                let key = vault
                    .open(&sealed, OWNER, ROOT_KEY_PURPOSE)
                    .map_err(|e| TlsError::Root(format!("its key cannot be opened ({e})")))?;
                let key_pem = key
                    .expose_str()
                    .ok_or_else(|| TlsError::Root("its key is damaged".into()))?;
                let key = KeyPair::from_pem(key_pem)
                    .map_err(|e| TlsError::Root(format!("its key is damaged ({e})")))?;
                let domains = stored_domains(&name);
                Authority::assemble(pem, &name, domains, key)
            }
            (None, None, None) => {
                let name = box_name();
                let domains = domains_for(suffix);
                let key = KeyPair::generate()?;
                let mut params = root_params(&name, &domains);
                let now = time::OffsetDateTime::now_utc();
                params.not_before = now - time::Duration::days(1);
                params.not_after = now + time::Duration::days(365 * ROOT_YEARS + ROOT_YEARS / 4);
                params.serial_number = Some(random_serial());
                let cert = params.self_signed(&key)?;
                let pem = cert.pem();
                // The key first (sealed), the name next, the certificate last: the certificate's
                // presence marks a finished root, and a half-made one is refused below.
                let sealed = vault.seal(key.serialize_pem().as_bytes(), OWNER, ROOT_KEY_PURPOSE);
                store
                    .put_secret(OWNER.into(), ROOT_KEY_PURPOSE, sealed)
                    .await?;
                store
                    .set_setting(ROOT_NAME_SETTING, encode_name(&name, &domains))
                    .await?;
                store.set_setting(ROOT_PEM_SETTING, pem.clone()).await?;
                tracing::info!(name = %name, "made this homelab's own certificate authority");
                Authority::assemble(pem, &encode_name(&name, &domains), domains, key)
            }
            _ => Err(TlsError::Root(
                "it is only half saved (an earlier start stopped while making it)".into(),
            )),
        }
    }

    fn assemble(
        pem: String,
        stored_name: &str,
        domains: Vec<String>,
        key: KeyPair,
    ) -> Result<Authority, TlsError> {
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| TlsError::Root(format!("its certificate is damaged ({e})")))?;
        let name = stored_name.split('\n').next().unwrap_or_default();
        let issuer = Issuer::new(root_params(name, &domains), key);
        Ok(Authority(Arc::new(Inner {
            box_name: name.to_string(),
            fingerprint: fingerprint(&der),
            root_der: der.to_vec(),
            root_pem: pem,
            domains,
            issuer,
        })))
    }

    /// The root certificate, PEM.
    pub fn root_pem(&self) -> &str {
        &self.0.root_pem
    }

    /// The root certificate, DER (what phones install by tapping a `.crt`).
    pub fn root_der(&self) -> &[u8] {
        &self.0.root_der
    }

    /// SHA-256 of the root's DER, colon hex.
    pub fn fingerprint(&self) -> &str {
        &self.0.fingerprint
    }

    /// The root's common name, as devices list it ("Homelab <box> root").
    pub fn common_name(&self) -> String {
        format!("Homelab {} root", self.0.box_name)
    }

    /// The DNS subtrees the root permits.
    pub fn domains(&self) -> &[String] {
        &self.0.domains
    }

    /// True when `dns_name` is inside one of the permitted DNS subtrees.
    pub fn covers(&self, dns_name: &str) -> bool {
        let name = normalise(dns_name);
        !name.is_empty() && self.0.domains.iter().any(|d| within(&name, d))
    }

    /// True when `ip` is inside one of the permitted address ranges.
    pub fn covers_ip(&self, ip: &IpAddr) -> bool {
        private_address(ip)
    }

    /// A leaf for these names/addresses, valid from now-1h to now+90 days.
    pub fn issue(
        &self,
        dns_names: &[String],
        ips: &[IpAddr],
        now: time::OffsetDateTime,
    ) -> Result<Leaf, TlsError> {
        if dns_names.is_empty() && ips.is_empty() {
            return Err(TlsError::NoNames);
        }
        if dns_names.len() + ips.len() > MAX_LEAF_NAMES {
            return Err(TlsError::TooManyNames(MAX_LEAF_NAMES));
        }
        let mut params = CertificateParams::default();
        let mut sans = Vec::with_capacity(dns_names.len() + ips.len());
        for name in dns_names {
            let name = normalise(name);
            if !self.covers(&name) {
                return Err(TlsError::NotCovered(name));
            }
            let ia5 = name
                .clone()
                .try_into()
                .map_err(|_| TlsError::NotCovered(name.clone()))?;
            sans.push(SanType::DnsName(ia5));
        }
        for ip in ips {
            if !self.covers_ip(ip) {
                return Err(TlsError::NotCovered(ip.to_string()));
            }
            sans.push(SanType::IpAddress(*ip));
        }
        params.subject_alt_names = sans;
        let mut dn = DistinguishedName::new();
        // Only a DNS name goes into the common name: verifiers that still read the common name
        // as a host name (OpenSSL when no DNS names are present) would check an address there
        // against the DNS constraints.
        if let Some(first) = dns_names.first() {
            dn.push(DnType::CommonName, normalise(first));
        }
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        let not_before = now - LEAF_BACKDATE;
        let not_after = now + time::Duration::days(LEAF_DAYS);
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.0.issuer)?;
        let cert_pem = cert.pem();
        Ok(Leaf {
            chain_pem: format!("{cert_pem}{}", self.0.root_pem),
            fingerprint: fingerprint(cert.der()),
            cert_pem,
            key_pem: Secret::from_string(key.serialize_pem()),
            not_before: unix(not_before),
            not_after: unix(not_after),
        })
    }
}

/// The stored name setting: the box name, then the extra domain (if any) on the next line.
fn encode_name(name: &str, domains: &[String]) -> String {
    let mut out = name.to_string();
    for d in domains.iter().skip(HOME_DOMAINS.len()) {
        out.push('\n');
        out.push_str(d);
    }
    out
}

fn stored_domains(stored: &str) -> Vec<String> {
    let mut out: Vec<String> = HOME_DOMAINS.iter().map(|d| d.to_string()).collect();
    out.extend(stored.split('\n').skip(1).map(normalise));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_at_two_thirds() {
        assert!(!renewal_due(0, 90, 59));
        assert!(renewal_due(0, 90, 60));
        assert!(renewal_due(0, 90, 91));
        assert!(!renewal_due(1000, 1000 + 3 * 86400, 1000 + 2 * 86400 - 1));
        assert!(renewal_due(1000, 1000 + 3 * 86400, 1000 + 2 * 86400));
        // A broken validity (end before start) is always due.
        assert!(renewal_due(100, 50, 100));
    }

    #[test]
    fn names_are_matched_by_whole_labels() {
        assert!(within("a.home.arpa", "home.arpa"));
        assert!(within("home.arpa", "home.arpa"));
        assert!(!within("evilhome.arpa", "home.arpa"));
        assert!(!within("arpa", "home.arpa"));
        assert_eq!(domains_for("home.arpa").len(), HOME_DOMAINS.len());
        assert_eq!(
            domains_for("lab.example.org").last().unwrap(),
            "lab.example.org"
        );
        assert_eq!(domains_for("x.lan").len(), HOME_DOMAINS.len());
    }

    #[test]
    fn only_private_addresses_are_covered() {
        for ip in [
            "10.1.2.3",
            "172.31.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "100.100.1.1",
            "fd00::1",
            "fe80::1",
            "::1",
            "169.254.3.3",
        ] {
            assert!(private_address(&ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2001:db8::1",
            "::2",
            "11.0.0.1",
        ] {
            assert!(!private_address(&ip.parse().unwrap()), "{ip}");
        }
    }
}
