//! Admin password policy and Argon2id hashing.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::secrets::Secret;

/// Shorter passwords are refused; 10 characters is where a random-looking password stops being
/// cheap to brute-force offline, and passphrases pass easily.
pub const MIN_LEN: usize = 10;
/// Argon2 accepts long input, but hashing megabytes per login attempt would be a DoS.
pub const MAX_LEN: usize = 256;

/// Passwords attackers try first: well-known leaked-list leaders plus product-specific guesses.
const COMMON: &str = include_str!("common_passwords.txt");

/// Why a password was refused, in words for the user.
pub fn check_policy(password: &str, username: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Err(format!(
            "Use at least {MIN_LEN} characters — a few words together work well."
        ));
    }
    if password.len() > MAX_LEN {
        return Err(format!("Use at most {MAX_LEN} characters."));
    }
    let lower = password.to_lowercase();
    if !username.is_empty() && lower.contains(&username.to_lowercase()) {
        return Err("The password must not contain the username.".into());
    }
    if COMMON
        .lines()
        .map(str::trim)
        .any(|c| !c.is_empty() && c == lower)
    {
        return Err(
            "That password is on lists attackers try first. Pick something less common.".into(),
        );
    }
    if password.chars().all(|c| password.starts_with(c)) {
        return Err("A password of one repeated character is too easy to guess.".into());
    }
    Ok(())
}

/// Argon2id memory cost in KiB: OWASP's first recommendation (m=46 MiB, t=1, p=1). Also the
/// memory fix: glibc serves allocations above its mmap threshold with mmap and unmaps them on
/// free, but it raises that threshold after each freed mmapped chunk, up to 32 MiB on 64-bit.
/// The older 19 MiB buffers therefore came from malloc arenas after the first hash and were
/// never returned to the system (a burst of sign-ins left the daemon at ~2 GB); 46 MiB stays
/// above the threshold's ceiling, so every buffer is mmapped and returned when the hash is done.
pub const M_COST_KIB: u32 = 47_104;
/// One pass: OWASP pairs it with m=46 MiB; the work equals the old m=19 MiB, t=2 roughly.
const T_COST: u32 = 1;
/// One lane: the box's few cores are shared with everything else it runs.
const P_COST: u32 = 1;

/// The hasher with this build's parameters. Verification uses the parameters in each stored
/// hash, so hashes made with older parameters keep working (and are upgraded on sign-in).
fn argon2() -> Argon2<'static> {
    // The constants are valid Argon2 parameters; the fallback is only there to avoid a panic.
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password to a PHC string. Slow on purpose: call from a blocking thread.
pub fn hash(password: &Secret) -> Result<String, String> {
    argon2()
        .hash_password(password.expose())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Checks a password against a PHC string. Slow on purpose: call from a blocking thread.
pub fn verify(password: &Secret, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2().verify_password(password.expose(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// True when a stored hash was made with other parameters (or another algorithm) than this
/// build's, so a successful sign-in should store a fresh hash.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return true;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return true;
    };
    parsed.algorithm.as_str() != "argon2id"
        || parsed.version != Some(Version::V0x13.into())
        || params.m_cost() != M_COST_KIB
        || params.t_cost() != T_COST
        || params.p_cost() != P_COST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert!(check_policy("short", "admin").is_err());
        assert!(check_policy("password123", "admin").is_err());
        assert!(check_policy("admin-is-me-2026", "admin").is_err());
        assert!(check_policy("aaaaaaaaaaaa", "admin").is_err());
        assert!(check_policy("correct horse battery", "admin").is_ok());
    }

    #[test]
    fn hash_and_verify() {
        let pw = Secret::from_string("correct horse battery".into());
        let phc = hash(&pw).unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify(&pw, &phc));
        assert!(!verify(
            &Secret::from_string("wrong horse battery".into()),
            &phc
        ));
        assert!(!verify(&pw, "not a hash"));
        assert!(
            !needs_rehash(&phc),
            "a fresh hash has this build's parameters"
        );
    }

    #[test]
    fn hashes_with_older_parameters_still_verify_and_ask_for_an_upgrade() {
        let pw = Secret::from_string("correct horse battery".into());
        let old = Argon2::default()
            .hash_password(pw.expose())
            .unwrap()
            .to_string();
        assert!(old.contains("m=19456,t=2,p=1"), "{old}");
        assert!(verify(&pw, &old));
        assert!(needs_rehash(&old));
        assert!(needs_rehash("not a hash"));
    }
}
