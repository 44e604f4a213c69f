//! This controller's SSH keys: generation, encoding, fingerprints.

use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::{HashAlg, PrivateKey, PublicKey};
use zeroize::Zeroizing;

use super::SshError;
use crate::secrets::{Secret, random_bytes};

/// A fresh ed25519 key pair; `comment` names this controller in `authorized_keys`.
pub fn generate(comment: &str) -> Result<PrivateKey, SshError> {
    let seed = Zeroizing::new(random_bytes::<32>());
    let pair = Ed25519Keypair::from_seed(&seed);
    let mut key = PrivateKey::new(KeypairData::Ed25519(pair), comment)
        .map_err(|e| SshError::Key(e.to_string()))?;
    key.set_comment(comment);
    Ok(key)
}

/// OpenSSH private key text, for sealing in the vault.
pub fn encode_private(key: &PrivateKey) -> Result<Secret, SshError> {
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| SshError::Key(e.to_string()))?;
    Ok(Secret::new(text.as_bytes().to_vec()))
}

/// Parses a private key a user pasted or uploaded, decrypting it with `passphrase` if needed.
pub fn decode_private(text: &Secret, passphrase: Option<&Secret>) -> Result<PrivateKey, SshError> {
    let pem = text
        .expose_str()
        .ok_or_else(|| SshError::Key("the key is not text".into()))?;
    let key = PrivateKey::from_openssh(pem.trim()).map_err(|_| {
        SshError::Key("That is not an OpenSSH private key. Paste the whole file, from -----BEGIN to -----END.".into())
    })?;
    if key.is_encrypted() {
        let pass = passphrase.and_then(Secret::expose_str).ok_or_else(|| {
            SshError::Key("This key is protected by a passphrase; enter it too.".into())
        })?;
        return key
            .decrypt(pass)
            .map_err(|_| SshError::Key("The key's passphrase is not right.".into()));
    }
    Ok(key)
}

/// The `authorized_keys` line for a public key (algorithm, base64, comment).
pub fn authorized_line(key: &PublicKey) -> Result<String, SshError> {
    key.to_openssh().map_err(|e| SshError::Key(e.to_string()))
}

/// `SHA256:…`, as `ssh-keygen -l` shows it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

pub fn parse_public(text: &str) -> Result<PublicKey, SshError> {
    PublicKey::from_openssh(text).map_err(|e| SshError::Key(e.to_string()))
}
