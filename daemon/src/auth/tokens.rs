//! Random tokens (sessions, API tokens, setup codes) and how they are stored and compared.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use sha2::{Digest, Sha256};

use crate::secrets::{Secret, random_bytes};

/// Prefix of API tokens, so a leaked one is recognisable (e.g. by secret scanners).
pub const API_TOKEN_PREFIX: &str = "hlt_";

/// A fresh 256-bit token, base64url-encoded, with an optional prefix.
pub fn new_token(prefix: &str) -> Secret {
    let bytes: [u8; 32] = random_bytes();
    Secret::from_string(format!("{prefix}{}", B64URL.encode(bytes)))
}

/// True for what `new_token("")` makes (43 base64url characters); anything else a client sends
/// in its place is ignored before it reaches the database.
pub fn is_token_shaped(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What the database keeps instead of a token: its SHA-256.
pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The CSRF token of a session, derived from the session token so it needs no storage; without
/// the (HttpOnly) session token nobody can compute it.
pub fn csrf_for(session_token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"homelab-csrf-v1:");
    h.update(session_token.as_bytes());
    B64URL.encode(h.finalize())
}

/// Compares two strings in time independent of where they differ.
pub fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Letters and digits that cannot be mistaken for each other when read off a console.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A setup code such as `K7QM-3XTP` (40 bits; guessing is throttled).
pub fn new_setup_code() -> Secret {
    let bytes: [u8; 8] = random_bytes();
    let mut code = String::with_capacity(9);
    for (i, b) in bytes.iter().enumerate() {
        if i == 4 {
            code.push('-');
        }
        // 256 is a multiple of 32, so the modulo introduces no bias.
        code.push(CODE_ALPHABET[(*b as usize) % CODE_ALPHABET.len()] as char);
    }
    Secret::from_string(code)
}

/// Normalises what a user typed: case, spaces and dashes do not matter.
pub fn normalise_setup_code(input: &str) -> String {
    input
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_long() {
        let a = new_token("");
        let b = new_token("");
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 43);
    }

    #[test]
    fn csrf_depends_on_session() {
        assert_ne!(csrf_for("a"), csrf_for("b"));
        assert_eq!(csrf_for("a"), csrf_for("a"));
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "ab"));
    }

    #[test]
    fn setup_code_shape_and_normalising() {
        let code = new_setup_code();
        let s = code.expose_str().unwrap();
        assert_eq!(s.len(), 9);
        assert_eq!(&s[4..5], "-");
        assert_eq!(
            normalise_setup_code(&s.to_lowercase().replace('-', " ")),
            s.replace('-', "")
        );
    }
}
