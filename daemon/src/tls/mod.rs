//! The box's own HTTPS identity: a certificate for `homelab.local`, `<host>.local`, `localhost`
//! and the box's private addresses, issued by the homelab's own authority (`ca.rs`), kept in
//! the database (key sealed in the vault), renewed at two thirds of its life or when the box's
//! addresses change, and swapped into the running HTTPS listener without a restart (the
//! listener asks [`TlsIdentity`]'s resolver for the current certificate on every handshake).

pub mod ca;
pub mod trust;

use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

use crate::secrets::Vault;
use crate::store::{Store, StoreError};
use ca::Authority;

/// Errors making, loading or issuing certificates. Each message says what happened in plain
/// words; the ones an owner may see say what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot generate the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error(
        "this homelab's certificate authority cannot be used: {0}; restore the data folder from a backup, or remove the ca rows from the settings and secrets tables to make a new one (every device must then trust the new one)"
    )]
    Root(String),
    #[error("a certificate needs at least one name or address")]
    NoNames,
    #[error("a certificate can hold at most {0} names and addresses")]
    TooManyNames(usize),
    #[error(
        "the homelab's certificates can only vouch for home names (like name.home.arpa or name.local) and private addresses, not {0}"
    )]
    NotCovered(String),
    #[error("the saved certificate of this box is damaged: {0}")]
    Load(String),
}

/// Setting holding the box's current certificate (PEM, leaf only; public).
const BOX_CERT_SETTING: &str = "tls.box_cert";
/// Vault purpose of the box certificate's key (owner [`ca::OWNER`]).
const BOX_KEY_PURPOSE: &str = "box-key";

/// Colon-separated uppercase hex of the SHA-256 of a DER certificate, as browsers show it.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// What the box's certificate should cover now: its mDNS names, localhost, and every address
/// it has that the authority may vouch for (public addresses are left out; the box is reached
/// by those through other means, if at all). Sorted, so a change is a plain inequality.
pub fn box_subjects(authority: &Authority) -> (Vec<String>, Vec<IpAddr>) {
    let mut names = vec!["homelab.local".to_string(), "localhost".to_string()];
    let host = ca::box_name().to_ascii_lowercase();
    // A host name with dots is already a full name (only `.local` ones are covered); a
    // single label gets its mDNS name.
    let host_local = if host.contains('.') {
        host
    } else {
        format!("{host}.local")
    };
    if authority.covers(&host_local) && !names.contains(&host_local) {
        names.push(host_local);
    }
    let mut ips: Vec<IpAddr> = vec![
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
    ];
    for (_, ip) in crate::discovery::interface_addrs() {
        if authority.covers_ip(&ip) && !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    names.sort();
    ips.sort();
    ips.truncate(ca::MAX_LEAF_NAMES - names.len());
    (names, ips)
}

/// The certificate being served now.
struct Current {
    key: Arc<CertifiedKey>,
    fingerprint: String,
    /// Leaf then root.
    chain_pem: String,
    not_before: i64,
    not_after: i64,
    names: Vec<String>,
    ips: Vec<IpAddr>,
}

/// The box's HTTPS identity; cheap to clone. Its `server_config` resolves the certificate per
/// handshake, so a renewal reaches every new connection at once.
#[derive(Clone)]
pub struct TlsIdentity(Arc<Inner>);

struct Inner {
    authority: Authority,
    store: Store,
    vault: Arc<Vault>,
    provider: Arc<CryptoProvider>,
    current: Arc<RwLock<Arc<Current>>>,
    trouble: RwLock<Option<String>>,
    /// Serialises renewals (the hourly loop and a test hook must not both write).
    renewing: tokio::sync::Mutex<()>,
    server_config: Arc<rustls::ServerConfig>,
}

/// Hands rustls the current certificate on each handshake.
#[derive(Debug)]
struct Resolver(Arc<RwLock<Arc<Current>>>);

impl std::fmt::Debug for Current {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Current")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // A poisoned lock still holds a whole Arc: keep serving it.
        Some(
            self.0
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .key
                .clone(),
        )
    }
}

/// Builds the rustls pair for a chain and key PEM.
fn certified(
    provider: &CryptoProvider,
    chain_pem: &str,
    key_pem: &[u8],
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Load(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Load(e.to_string()))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Load(e.to_string()))?;
    let key = CertifiedKey::new(chain, signing);
    key.keys_match()
        .map_err(|e| TlsError::Load(e.to_string()))?;
    Ok(Arc::new(key))
}

impl TlsIdentity {
    /// Loads the box's certificate from the database, or issues one when there is none, it is
    /// due for renewal, it was issued by another root, or the box's names/addresses changed.
    pub async fn load_or_create(
        store: Store,
        vault: Arc<Vault>,
        authority: Authority,
    ) -> Result<TlsIdentity, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let now = time::OffsetDateTime::now_utc();
        let (names, ips) = box_subjects(&authority);
        let saved = load_saved(&store, &vault, &authority, &provider).await;
        let current = match saved {
            Ok(Some(c))
                if c.names == names
                    && c.ips == ips
                    && !ca::renewal_due(c.not_before, c.not_after, now.unix_timestamp()) =>
            {
                c
            }
            other => {
                if let Err(e) = other {
                    tracing::warn!(error = %e, "making a new certificate for this box");
                }
                issue_and_save(&store, &vault, &authority, &provider, names, ips, now).await?
            }
        };
        let current = Arc::new(RwLock::new(Arc::new(current)));
        let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Load(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(current.clone())));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsIdentity(Arc::new(Inner {
            authority,
            store,
            vault,
            provider,
            current,
            trouble: RwLock::new(None),
            renewing: tokio::sync::Mutex::new(()),
            server_config: Arc::new(config),
        })))
    }

    fn current(&self) -> Arc<Current> {
        self.0
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// rustls configuration for the HTTPS listener (resolves the current certificate).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.0.server_config.clone()
    }

    /// The authority that issued it.
    pub fn authority(&self) -> &Authority {
        &self.0.authority
    }

    /// SHA-256 of the current certificate (DER), colon hex.
    pub fn fingerprint(&self) -> String {
        self.current().fingerprint.clone()
    }

    /// The current chain (leaf, then root), PEM.
    pub fn chain_pem(&self) -> String {
        self.current().chain_pem.clone()
    }

    /// When the current certificate expires (unix seconds).
    pub fn not_after(&self) -> i64 {
        self.current().not_after
    }

    /// The names and addresses the current certificate covers.
    pub fn subjects(&self) -> (Vec<String>, Vec<IpAddr>) {
        let c = self.current();
        (c.names.clone(), c.ips.clone())
    }

    /// A plain sentence with the fix when the last renewal failed; `None` while all is well.
    pub fn renewal_trouble(&self) -> Option<String> {
        self.0
            .trouble
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The hourly check: renews when two thirds of the validity have passed or the box's
    /// names/addresses changed. Returns whether it renewed. A failure keeps the old
    /// certificate in service and is remembered for [`renewal_trouble`](Self::renewal_trouble).
    pub async fn check(&self, now: time::OffsetDateTime) -> Result<bool, TlsError> {
        let (names, ips) = box_subjects(&self.0.authority);
        let c = self.current();
        if c.names == names
            && c.ips == ips
            && !ca::renewal_due(c.not_before, c.not_after, now.unix_timestamp())
        {
            return Ok(false);
        }
        self.renew_with(names, ips, now).await.map(|_| true)
    }

    /// Issues a new certificate now (with `now` as the issue time) and serves it to new
    /// connections; returns its fingerprint. Used by [`check`](Self::check) and tests.
    pub async fn renew(&self, now: time::OffsetDateTime) -> Result<String, TlsError> {
        let (names, ips) = box_subjects(&self.0.authority);
        self.renew_with(names, ips, now).await
    }

    async fn renew_with(
        &self,
        names: Vec<String>,
        ips: Vec<IpAddr>,
        now: time::OffsetDateTime,
    ) -> Result<String, TlsError> {
        let _one = self.0.renewing.lock().await;
        let result = issue_and_save(
            &self.0.store,
            &self.0.vault,
            &self.0.authority,
            &self.0.provider,
            names,
            ips,
            now,
        )
        .await;
        let mut trouble = self
            .0
            .trouble
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(next) => {
                let fp = next.fingerprint.clone();
                *self
                    .0
                    .current
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
                *trouble = None;
                tracing::info!(fingerprint = %fp, "renewed this box's HTTPS certificate");
                Ok(fp)
            }
            Err(e) => {
                let until = time::OffsetDateTime::from_unix_timestamp(self.not_after())
                    .map(|t| t.date().to_string())
                    .unwrap_or_default();
                tracing::warn!(error = %e, "could not renew this box's HTTPS certificate; still serving the current one");
                *trouble = Some(format!(
                    "The box could not renew its secure-connection certificate ({e}). The current one works until {until}. Restart the box; if this stays, check that its disk is not full."
                ));
                Err(e)
            }
        }
    }
}

async fn load_saved(
    store: &Store,
    vault: &Vault,
    authority: &Authority,
    provider: &CryptoProvider,
) -> Result<Option<Current>, TlsError> {
    let Some(cert_pem) = store.setting(BOX_CERT_SETTING).await? else {
        return Ok(None);
    };
    let Some(sealed) = store.secret(ca::OWNER.into(), BOX_KEY_PURPOSE).await? else {
        return Ok(None);
    };
    let key = vault
        .open(&sealed, ca::OWNER, BOX_KEY_PURPOSE)
        .map_err(|e| TlsError::Load(e.to_string()))?;
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|e| TlsError::Load(e.to_string()))?;
    let Some(meta) = store.setting(BOX_META_SETTING).await? else {
        return Ok(None);
    };
    let meta = Meta::decode(&meta).ok_or_else(|| TlsError::Load("its record is damaged".into()))?;
    // Issued by this root? (A restored or re-made root makes the old leaf useless.)
    if !issued_by(&der, authority, meta.not_before) {
        return Ok(None);
    }
    let chain_pem = format!("{cert_pem}{}", authority.root_pem());
    Ok(Some(Current {
        key: certified(provider, &chain_pem, key.expose())?,
        fingerprint: fingerprint(&der),
        chain_pem,
        not_before: meta.not_before,
        not_after: meta.not_after,
        names: meta.names,
        ips: meta.ips,
    }))
}

/// Setting holding what the box certificate was issued for and when: "not_before not_after",
/// then the names, then the addresses, a line each (space-separated). Kept beside the
/// certificate so a start compares plain values instead of parsing the certificate.
const BOX_META_SETTING: &str = "tls.box_meta";

struct Meta {
    not_before: i64,
    not_after: i64,
    names: Vec<String>,
    ips: Vec<IpAddr>,
}

impl Meta {
    fn encode(&self) -> String {
        let ips: Vec<String> = self.ips.iter().map(IpAddr::to_string).collect();
        format!(
            "{} {}\n{}\n{}",
            self.not_before,
            self.not_after,
            self.names.join(" "),
            ips.join(" ")
        )
    }

    fn decode(s: &str) -> Option<Meta> {
        let mut lines = s.lines();
        let (nb, na) = lines.next()?.split_once(' ')?;
        let mut names: Vec<String> = lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let mut ips: Vec<IpAddr> = lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        names.sort();
        ips.sort();
        Some(Meta {
            not_before: nb.parse().ok()?,
            not_after: na.parse().ok()?,
            names,
            ips,
        })
    }
}

/// True when the root verifies `leaf` for server use now (or would have at its start).
fn issued_by(leaf: &CertificateDer<'_>, authority: &Authority, not_before: i64) -> bool {
    let root = CertificateDer::from(authority.root_der().to_vec());
    let Ok(anchor) = webpki::anchor_from_trusted_cert(&root) else {
        return false;
    };
    let Ok(cert) = webpki::EndEntityCert::try_from(leaf) else {
        return false;
    };
    // Checked at its own start time: expiry is the renewal's business, not this check's.
    let at = rustls::pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(not_before.max(0)).unwrap_or_default() + 60,
    ));
    cert.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &[],
        at,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .is_ok()
}

async fn issue_and_save(
    store: &Store,
    vault: &Vault,
    authority: &Authority,
    provider: &CryptoProvider,
    names: Vec<String>,
    ips: Vec<IpAddr>,
    now: time::OffsetDateTime,
) -> Result<Current, TlsError> {
    let leaf = authority.issue(&names, &ips, now)?;
    let key = certified(provider, &leaf.chain_pem, leaf.key_pem.expose())?;
    let sealed = vault.seal(leaf.key_pem.expose(), ca::OWNER, BOX_KEY_PURPOSE);
    let meta = Meta {
        not_before: leaf.not_before,
        not_after: leaf.not_after,
        names,
        ips,
    };
    // Key first, then the record, then the certificate: a crash in between leaves a
    // certificate that does not match its key (or record), which the next start notices
    // (`keys_match`, the comparison with the box's names) and replaces.
    store
        .put_secret(ca::OWNER.into(), BOX_KEY_PURPOSE, sealed)
        .await?;
    store.set_setting(BOX_META_SETTING, meta.encode()).await?;
    store
        .set_setting(BOX_CERT_SETTING, leaf.cert_pem.clone())
        .await?;
    Ok(Current {
        key,
        fingerprint: leaf.fingerprint,
        chain_pem: leaf.chain_pem,
        not_before: meta.not_before,
        not_after: meta.not_after,
        names: meta.names,
        ips: meta.ips,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_record_round_trips() {
        let meta = Meta {
            not_before: 10,
            not_after: 20,
            names: vec!["homelab.local".into(), "localhost".into()],
            ips: vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
        };
        let back = Meta::decode(&meta.encode()).unwrap();
        assert_eq!((back.not_before, back.not_after), (10, 20));
        assert_eq!(back.names, meta.names);
        assert_eq!(back.ips, meta.ips);
        // No addresses is a valid record; a damaged one is refused.
        assert!(Meta::decode("1 2\nlocalhost\n").unwrap().ips.is_empty());
        assert!(Meta::decode("garbage").is_none());
        assert!(Meta::decode("1 2\nx\nnot-an-address").is_none());
    }
}
