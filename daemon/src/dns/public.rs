//! A public domain the owner owns (`home.example.com`): apps named under it get certificates
//! from a public authority over ACME (Let's Encrypt unless the owner names another, such as
//! their own step-ca), which Homelab's proxy on each device obtains and renews itself. Names
//! under the homelab's own home names (home.arpa, .internal, …) keep the homelab's CA.
//!
//! What the owner must do outside Homelab, said on the form: the authority checks that it can
//! reach the name from the internet (port 80 or 443 forwarded from the router to the app's
//! device, the name on public DNS pointing at the router), while the owner's own DNS (AdGuard
//! Home or the router, the provider Homelab writes to) points the name at the device inside
//! the home.

use serde::{Deserialize, Serialize};

use super::records::{self, Provider};
use crate::proxy::caddy::AcmeIssuer;
use crate::store::{Store, StoreError};
use crate::tls::trust::{self, Trust};

/// The setting holding the whole public-domain choice as one JSON value (one write: it is
/// never half-saved).
pub const SETTING: &str = "names.public";
/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Where the authority's own roots file lives for the proxy: in its config folder
/// (`<proxy dir>/config`, mounted at `/config`).
pub const ROOTS_FILE: &str = "homelab-acme-roots.pem";
pub const ROOTS_IN_CONTAINER: &str = "/config/homelab-acme-roots.pem";

/// Why the public domain was refused; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PublicError {
    #[error("“{0}” is not a domain name: use the domain you own, like home.example.com.")]
    BadDomain(String),
    #[error(
        "“{0}” is a home name, which no public authority vouches for: the homelab's own \
         certificates already cover it. Use a domain you own on the internet."
    )]
    HomeName(String),
    #[error("“{0}” is not an email address: the authority keeps it as your account's contact.")]
    BadEmail(String),
    #[error(
        "The authority's address must start with https:// (Let's Encrypt's is {LETS_ENCRYPT})."
    )]
    BadDirectory,
    #[error("The authority's root certificates {0}.")]
    BadRoots(String),
    #[error(
        "App names are announced as .local names now, which cannot be under your domain. \
         Choose AdGuard Home or your OPNsense router for names first (above), so that names \
         under {0} point at your devices inside your home."
    )]
    NeedsDns(String),
    #[error(
        "{0} still have names under {1}. Rename or remove them first, so that no app is left \
         with a certificate nobody renews."
    )]
    StillUsed(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The owner's public domain and the authority its names' certificates come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicDomain {
    pub domain: String,
    pub email: String,
    pub directory: String,
    /// PEM roots of a private authority's own address (and of what it issues), if not public.
    pub roots_pem: Option<String>,
}

impl PublicDomain {
    /// Checks what the owner typed. `home`: whether the homelab's own CA covers a name (home
    /// names are refused: no public authority issues for them).
    pub fn new(
        domain: &str,
        email: &str,
        directory: &str,
        roots_pem: &str,
        home: impl Fn(&str) -> bool,
    ) -> Result<PublicDomain, PublicError> {
        let shown = |s: &str| crate::limits::truncate(s.trim(), 80).into_owned();
        let domain = records::valid_suffix(domain)
            .ok()
            .filter(|d| d.contains('.'))
            .ok_or_else(|| PublicError::BadDomain(shown(domain)))?;
        if home(&format!("x.{domain}")) || domain.ends_with(".local") {
            return Err(PublicError::HomeName(domain));
        }
        let email = email.trim();
        if !valid_email(email) {
            return Err(PublicError::BadEmail(shown(email)));
        }
        let directory = match directory.trim() {
            "" => LETS_ENCRYPT.to_string(),
            d if valid_directory(d) => d.to_string(),
            _ => return Err(PublicError::BadDirectory),
        };
        let roots_pem = match roots_pem.trim() {
            "" => None,
            pem => Some(trust::to_pem(
                &trust::parse_roots(pem).map_err(PublicError::BadRoots)?,
            )),
        };
        Ok(PublicDomain {
            domain,
            email: email.to_string(),
            directory,
            roots_pem,
        })
    }

    /// Whether `name` is under this domain (its certificate then comes from the authority).
    pub fn covers(&self, name: &str) -> bool {
        name.strip_suffix(&self.domain)
            .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
    }

    /// What the proxy is told about the authority.
    pub fn issuer(&self) -> AcmeIssuer {
        AcmeIssuer {
            directory: self.directory.clone(),
            email: self.email.clone(),
            roots_file: self
                .roots_pem
                .as_ref()
                .map(|_| ROOTS_IN_CONTAINER.to_string()),
        }
    }

    /// The roots the box checks these names' certificates against.
    pub fn trust(&self) -> Result<Trust, String> {
        Trust::public(self.roots_pem.as_deref())
    }

    /// The authority in the owner's words: its host name ("acme-v02.api.letsencrypt.org").
    pub fn authority(&self) -> String {
        if self.directory == LETS_ENCRYPT {
            return "Let's Encrypt".into();
        }
        let rest = self.directory.trim_start_matches("https://");
        rest.split(['/', ':']).next().unwrap_or(rest).to_string()
    }

    /// The stored choice (None: no public domain).
    pub async fn load(store: &Store) -> Option<PublicDomain> {
        let text = store.setting(SETTING).await.ok().flatten()?;
        serde_json::from_str(&text).ok()
    }

    /// Stores the choice and makes the domain the ending of new apps' names. Names need a DNS
    /// Homelab writes to (not `.local` announcements). Another domain replaces the current one
    /// only once no app has a name under it; the authority, email and roots of the same domain
    /// can change at any time (the caller applies them to the apps named under it).
    pub async fn save(&self, store: &Store, provider: Provider) -> Result<(), PublicError> {
        if provider == Provider::Mdns {
            return Err(PublicError::NeedsDns(self.domain.clone()));
        }
        if let Some(current) = PublicDomain::load(store).await
            && current.domain != self.domain
        {
            current.unused(store).await?;
        }
        let json = serde_json::to_string(self).unwrap_or_default();
        store.set_setting(SETTING, json).await?;
        store
            .set_setting(records::SUFFIX_SETTING, self.domain.clone())
            .await?;
        Ok(())
    }

    /// Forgets the public domain, unless apps still have names under it. New apps' names end
    /// in the default home suffix again when they ended in the domain.
    pub async fn clear(store: &Store) -> Result<(), PublicError> {
        let Some(current) = PublicDomain::load(store).await else {
            return Ok(());
        };
        current.unused(store).await?;
        store.delete_setting(SETTING).await?;
        if store.setting(records::SUFFIX_SETTING).await?.as_deref() == Some(&current.domain) {
            store.delete_setting(records::SUFFIX_SETTING).await?;
        }
        Ok(())
    }
}

impl PublicDomain {
    /// Refuses while apps have names under the domain (their certificates would be left with
    /// nobody to renew them).
    async fn unused(&self, store: &Store) -> Result<(), PublicError> {
        let named: Vec<String> = store
            .names()
            .await?
            .into_iter()
            .filter(|n| self.covers(&n.name))
            .map(|n| n.name)
            .collect();
        if named.is_empty() {
            return Ok(());
        }
        Err(PublicError::StillUsed(
            named.join(", "),
            self.domain.clone(),
        ))
    }
}

/// `someone@example.com`: one @, a dotted domain, nothing that could be read as more than one
/// address.
fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    e.len() <= 254
        && !local.is_empty()
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._%+-".contains(&b))
        && domain.contains('.')
        && records::valid_suffix(domain).is_ok()
}

/// `https://host[:port]/path`, printable without spaces or quotes, and no user or password in
/// it (the address is shown and logged).
fn valid_directory(d: &str) -> bool {
    d.len() <= 300
        && d.strip_prefix("https://").is_some_and(|rest| {
            !rest.is_empty()
                && !rest.starts_with('/')
                && !rest.split('/').next().unwrap_or("").contains('@')
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home(n: &str) -> bool {
        n.ends_with(".home.arpa") || n.ends_with(".internal")
    }

    #[test]
    fn what_the_owner_types_is_checked_and_refusals_say_what_to_do() {
        let p = PublicDomain::new(" Home.Example.com. ", "me@example.com", "", "", home).unwrap();
        assert_eq!(p.domain, "home.example.com");
        assert_eq!(p.directory, LETS_ENCRYPT);
        assert_eq!(p.authority(), "Let's Encrypt");
        assert!(p.issuer().roots_file.is_none());
        assert!(p.covers("vault.home.example.com"));
        assert!(p.covers("home.example.com"));
        assert!(!p.covers("vault.myhome.example.com.evil"));
        assert!(!p.covers("xhome.example.com"));
        let e = |d: &str, m: &str, dir: &str, r: &str| {
            PublicDomain::new(d, m, dir, r, home).unwrap_err()
        };
        assert!(matches!(
            e("com", "me@example.com", "", ""),
            PublicError::BadDomain(_)
        ));
        assert!(matches!(
            e("a b.com", "me@example.com", "", ""),
            PublicError::BadDomain(_)
        ));
        assert!(matches!(
            e("lab.home.arpa", "me@example.com", "", ""),
            PublicError::HomeName(_)
        ));
        assert!(matches!(
            e("x.local", "me@example.com", "", ""),
            PublicError::HomeName(_)
        ));
        for bad in [
            "",
            "me",
            "me@x",
            "a,b@example.com",
            "me@example.com\nBcc: x",
            "<me@example.com>",
        ] {
            assert!(
                matches!(e("example.com", bad, "", ""), PublicError::BadEmail(_)),
                "{bad}"
            );
        }
        for bad in [
            "http://ca/dir",
            "https://",
            "https:///x",
            "https://ca/\"x",
            "https://user:pw@ca/dir",
        ] {
            assert!(
                matches!(
                    e("example.com", "me@example.com", bad, ""),
                    PublicError::BadDirectory
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            e("example.com", "me@example.com", "", "junk"),
            PublicError::BadRoots(_)
        ));
        let own = PublicDomain::new(
            "example.com",
            "me@example.com",
            "https://ca.lan:9000/acme/acme/directory",
            "",
            home,
        )
        .unwrap();
        assert_eq!(own.authority(), "ca.lan");
    }

    #[test]
    fn only_the_roots_certificates_are_kept_never_what_was_pasted_beside_them() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let root = params.self_signed(&key).unwrap();
        let pasted = format!("{}\n{}", key.serialize_pem(), root.pem());
        let p = PublicDomain::new(
            "example.com",
            "me@example.com",
            "https://ca.lan/dir",
            &pasted,
            home,
        )
        .unwrap();
        let kept = p.roots_pem.unwrap();
        assert!(!kept.contains("PRIVATE KEY"), "{kept}");
        let again = trust::parse_roots(&kept).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].as_ref(), root.der().as_ref());
    }
}
