//! Which roots a certificate served under an app's name must chain to when the box checks it:
//! the homelab's own root for home names, or — for names under a public domain the owner
//! owns — the publicly trusted roots of this system plus, for a private ACME server (step-ca),
//! the roots the owner gave for it.

use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

/// The largest roots file the owner may give (a handful of certificates).
pub const MAX_ROOTS_PEM: usize = 64 * 1024;

/// Roots to verify against, ready as a TLS client configuration.
#[derive(Clone, Debug)]
pub struct Trust(Arc<ClientConfig>);

impl Trust {
    /// Only this root (DER): the homelab's own.
    pub fn only(root_der: &[u8]) -> Result<Trust, String> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(root_der.to_vec()))
            .map_err(|e| e.to_string())?;
        Trust::from_roots(roots)
    }

    /// The system's publicly trusted roots (read once, then kept: a public domain's names are
    /// checked every time the Network page opens) and the owner's extra roots (PEM).
    pub fn public(extra_pem: Option<&str>) -> Result<Trust, String> {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(system_roots().iter().cloned());
        if let Some(pem) = extra_pem {
            for cert in parse_roots(pem)? {
                roots.add(cert).map_err(|e| e.to_string())?;
            }
        }
        Trust::from_roots(roots)
    }

    fn from_roots(roots: RootCertStore) -> Result<Trust, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Trust(Arc::new(config)))
    }

    pub fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(self.0.clone())
    }
}

/// This system's trusted roots (`/etc/ssl/certs` on Debian and the appliance); none when they
/// cannot be read, so nothing public is trusted rather than everything.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "could not read some of the system's trusted roots");
        }
        found.certs
    })
}

/// The certificates of a PEM text: at least one, each a well-formed certificate a root store
/// accepts, the text no larger than [`MAX_ROOTS_PEM`].
pub fn parse_roots(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    if pem.len() > MAX_ROOTS_PEM {
        return Err(format!(
            "is larger than {} KB; paste only the root certificates",
            MAX_ROOTS_PEM / 1024
        ));
    }
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("could not be read as PEM certificates ({e})"))?;
    if certs.is_empty() {
        return Err("holds no certificate (-----BEGIN CERTIFICATE----- … )".into());
    }
    for c in &certs {
        webpki::anchor_from_trusted_cert(c)
            .map_err(|e| format!("holds a certificate that cannot be a root ({e})"))?;
    }
    Ok(certs)
}

/// The certificates as PEM text, re-encoded from their DER: only certificates leave the box
/// (anything else pasted beside them, a private key by mistake, is dropped).
pub fn to_pem(certs: &[CertificateDer<'_>]) -> String {
    use base64::Engine;
    let mut out = String::new();
    for c in certs {
        let b64 = base64::engine::general_purpose::STANDARD.encode(c.as_ref());
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_read_and_bad_text_refused_with_the_reason() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let root = p.self_signed(&key).unwrap().pem();
        assert_eq!(parse_roots(&format!("{root}{root}")).unwrap().len(), 2);
        assert!(Trust::public(Some(&root)).is_ok());
        assert!(parse_roots("hello").unwrap_err().contains("no certificate"));
        let broken = root.replace("MII", "MIX");
        assert!(parse_roots(&broken).is_err());
        assert!(
            parse_roots(&"x".repeat(MAX_ROOTS_PEM + 1))
                .unwrap_err()
                .contains("KB")
        );
    }
}
