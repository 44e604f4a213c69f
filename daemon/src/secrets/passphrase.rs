//! Sealing with a passphrase instead of the master key, for encrypted exports a user can carry
//! to another box. The key comes from Argon2id; its parameters and salt are stored beside the
//! ciphertext so a later version with stronger defaults still opens old exports.

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Secret, VaultError, random_bytes};

/// Argon2id cost for exports: 64 MiB, 3 passes. Exports are rare, so they can afford more
/// than login hashing.
const M_COST_KIB: u32 = 64 * 1024;
const T_COST: u32 = 3;
const P_COST: u32 = 1;
/// Bounds on parameters read from a file, so a crafted export cannot make the box allocate
/// 4 TB or spend an hour: four times our own cost is room for stronger future defaults.
const MAX_M_COST_KIB: u32 = 256 * 1024;
const MAX_T_COST: u32 = 10;
const MAX_P_COST: u32 = 4;

/// A passphrase-sealed blob with everything needed to open it again (serialisable as JSON).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PassphraseSealed {
    pub kdf: String,
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
    /// base64
    pub salt: String,
    /// base64
    pub nonce: String,
    /// base64, AES-256-GCM ciphertext with tag
    pub ciphertext: String,
}

fn derive(
    passphrase: &[u8],
    salt: &[u8],
    m: u32,
    t: u32,
    p: u32,
) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    let params = Params::new(m, t, p, Some(32)).map_err(|e| VaultError::Kdf(e.to_string()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, key.as_mut())
        .map_err(|e| VaultError::Kdf(e.to_string()))?;
    Ok(key)
}

/// Seals `plaintext` under `passphrase`; `context` is bound as AAD (e.g. "config-export").
/// CPU- and memory-heavy: call from a blocking thread.
pub fn seal(
    plaintext: &[u8],
    passphrase: &Secret,
    context: &str,
) -> Result<PassphraseSealed, VaultError> {
    let (mut sealed, ciphertext) = seal_raw(plaintext, passphrase, context)?;
    sealed.ciphertext = B64.encode(ciphertext);
    Ok(sealed)
}

/// As [`seal`], with the ciphertext apart as bytes (its field left empty): for large blobs
/// (the box's own backup), which base64 would grow by a third.
pub fn seal_raw(
    plaintext: &[u8],
    passphrase: &Secret,
    context: &str,
) -> Result<(PassphraseSealed, Vec<u8>), VaultError> {
    let salt: [u8; 16] = random_bytes();
    let key = derive(passphrase.expose(), &salt, M_COST_KIB, T_COST, P_COST)?;
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key));
    let nonce = Nonce::generate();
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: context.as_bytes(),
            },
        )
        .map_err(|_| VaultError::Format)?;
    let sealed = PassphraseSealed {
        kdf: "argon2id-v19".into(),
        m_cost_kib: M_COST_KIB,
        t_cost: T_COST,
        p_cost: P_COST,
        salt: B64.encode(salt),
        nonce: B64.encode(nonce),
        ciphertext: String::new(),
    };
    Ok((sealed, ciphertext))
}

/// Opens a passphrase-sealed blob. A wrong passphrase, a changed blob or another context all
/// give [`VaultError::Open`].
pub fn open(
    sealed: &PassphraseSealed,
    passphrase: &Secret,
    context: &str,
) -> Result<Secret, VaultError> {
    let ciphertext = B64
        .decode(&sealed.ciphertext)
        .map_err(|_| VaultError::Format)?;
    open_raw(sealed, &ciphertext, passphrase, context)
}

/// Opens what [`seal_raw`] sealed: its header and the ciphertext bytes.
pub fn open_raw(
    sealed: &PassphraseSealed,
    ciphertext: &[u8],
    passphrase: &Secret,
    context: &str,
) -> Result<Secret, VaultError> {
    if sealed.kdf != "argon2id-v19"
        || sealed.m_cost_kib > MAX_M_COST_KIB
        || sealed.t_cost > MAX_T_COST
        || sealed.p_cost > MAX_P_COST
    {
        return Err(VaultError::Format);
    }
    let decode = |s: &str| B64.decode(s).map_err(|_| VaultError::Format);
    let salt = decode(&sealed.salt)?;
    let nonce =
        Nonce::try_from(decode(&sealed.nonce)?.as_slice()).map_err(|_| VaultError::Format)?;
    let key = derive(
        passphrase.expose(),
        &salt,
        sealed.m_cost_kib,
        sealed.t_cost,
        sealed.p_cost,
    )?;
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key));
    let plain = cipher
        .decrypt(
            &nonce,
            Payload {
                msg: ciphertext,
                aad: context.as_bytes(),
            },
        )
        .map_err(|_| VaultError::Open)?;
    Ok(Secret::new(plain))
}
