//! Admin password policy and Argon2id hashing.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

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

/// Hashes a password to a PHC string. Slow on purpose: call from a blocking thread.
pub fn hash(password: &Secret) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.expose())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Checks a password against a PHC string. Slow on purpose: call from a blocking thread.
pub fn verify(password: &Secret, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.expose(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
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
    }
}
