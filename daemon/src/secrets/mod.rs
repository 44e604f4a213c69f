//! The vault: every credential the product holds is sealed here before it reaches the database.
//!
//! - The master key is 32 random bytes in `<data>/secrets/master.key`, created atomically with
//!   mode 0600; a key readable by group or others stops the start (the fix is in the message).
//! - `seal`/`open` use AES-256-GCM with a fresh random nonce per value and AAD binding the value
//!   to its owner and purpose, so a blob copied into another row does not open.
//! - `passphrase` seals exports with a key derived by Argon2id (parameters and salt kept beside
//!   the blob).
//!
//! Plaintext only ever lives in [`Secret`], which zeroizes on drop and never prints.

pub mod passphrase;
mod secret;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use zeroize::Zeroizing;

pub use secret::Secret;

/// First byte of every sealed blob, so the format can change later without guessing.
const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;

/// Errors from the vault.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "the vault key {path} can be read by other users (mode {mode:o}); fix it with: chmod 600 {path}"
    )]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error(
        "the vault key {path} is damaged (expected 32 bytes, found {len}); restore it from a backup"
    )]
    KeyLength { path: PathBuf, len: u64 },
    #[error("cannot read or create the vault key {path}: {source}")]
    KeyIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "a stored secret could not be opened: it was changed, moved, or sealed with another key"
    )]
    Open,
    #[error("a stored secret has an unknown format")]
    Format,
    #[error("key derivation failed: {0}")]
    Kdf(String),
}

/// Holds the master key for the life of the daemon.
pub struct Vault {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault([redacted])")
    }
}

impl Vault {
    /// Opens the vault of a data directory, creating the master key on first start.
    pub fn open_or_create(data_dir: &Path) -> Result<Vault, VaultError> {
        let dir = data_dir.join("secrets");
        let path = dir.join("master.key");
        let io = |source| VaultError::KeyIo {
            path: path.clone(),
            source,
        };
        if !path.exists() {
            fs::create_dir_all(&dir).map_err(io)?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
            create_key_file(&dir, &path).map_err(io)?;
            tracing::info!(path = %path.display(), "created a new vault key");
        }
        let meta = fs::metadata(&path).map_err(io)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(VaultError::KeyPermissions { path, mode });
        }
        if meta.len() != KEY_LEN as u64 {
            return Err(VaultError::KeyLength {
                path,
                len: meta.len(),
            });
        }
        let bytes = Zeroizing::new(fs::read(&path).map_err(io)?);
        let key =
            Key::<Aes256Gcm>::try_from(bytes.as_slice()).map_err(|_| VaultError::KeyLength {
                path: path.clone(),
                len: bytes.len() as u64,
            })?;
        Ok(Vault {
            cipher: Aes256Gcm::new(&key),
        })
    }

    /// Seals `plaintext` for `owner` and `purpose` (e.g. owner "device:3", purpose "ssh-key").
    pub fn seal(&self, plaintext: &[u8], owner: &str, purpose: &str) -> Vec<u8> {
        let nonce = Nonce::generate();
        let aad = aad(owner, purpose);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            // AES-GCM only fails for messages over 64 GiB; nothing we seal comes close.
            .expect("AES-GCM sealing of a small value cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Opens a blob sealed for exactly this `owner` and `purpose`.
    pub fn open(&self, sealed: &[u8], owner: &str, purpose: &str) -> Result<Secret, VaultError> {
        let (&version, rest) = sealed.split_first().ok_or(VaultError::Format)?;
        if version != FORMAT_V1 || rest.len() < NONCE_LEN {
            return Err(VaultError::Format);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| VaultError::Format)?;
        let aad = aad(owner, purpose);
        let plain = self
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Open)?;
        Ok(Secret::new(plain))
    }
}

/// The associated data: a domain tag plus owner and purpose, length-prefixed so that
/// ("a:b", "c") and ("a", "b:c") cannot collide.
fn aad(owner: &str, purpose: &str) -> Vec<u8> {
    let mut aad = b"homelab-vault-v1".to_vec();
    for part in [owner, purpose] {
        aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

/// Writes a fresh key to a temporary file with mode 0600 from the moment it exists, syncs it,
/// then links it into place: the key file is complete or absent, never half-written, and a
/// second process racing us keeps whichever key landed first.
fn create_key_file(dir: &Path, path: &Path) -> std::io::Result<()> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::fill(key.as_mut()).map_err(std::io::Error::other)?;
    let tmp = dir.join(format!("master.key.tmp.{}", std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(key.as_ref())?;
    file.sync_all()?;
    drop(file);
    let linked = fs::hard_link(&tmp, path);
    fs::remove_file(&tmp)?;
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    fs::File::open(dir)?.sync_all()
}

/// Fills a buffer with random bytes from the OS.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // getrandom only fails when the OS has no entropy source at all; nothing can run then.
    getrandom::fill(&mut buf).expect("the operating system's random number generator failed");
    buf
}
