//! The configuration file: the whole desired state as readable JSON, with every secret it
//! needs (device logins, repository passwords, app secrets, the homelab's CA key) sealed
//! under a passphrase the owner chooses (Argon2id + AES-256-GCM, `secrets::passphrase`).
//!
//! The seal also covers the readable part: it holds the SHA-256 of the state, so a file whose
//! settings were edited after the export is refused as changed, not imported half-trusted.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::secrets::Secret;
use crate::secrets::passphrase::{self, PassphraseSealed};
use crate::store::Desired;

/// The `format` field: what this file is, so another JSON file is refused by name.
pub const FORMAT: &str = "homelab-configuration";
/// This file layout's version.
pub const VERSION: u32 = 1;
/// The largest file an import reads: a homelab's state is tens of KB; room for many apps'
/// compose files, never a memory hazard.
pub const MAX_FILE: usize = 2 * 1024 * 1024;
/// The AAD of the seal: a box backup's or the vault's sealed blob does not open as this.
const CONTEXT: &str = "homelab-configuration-1";

/// The file as written.
#[derive(Debug, Serialize, Deserialize)]
pub struct File {
    pub format: String,
    pub version: u32,
    /// Unix seconds.
    pub exported_at: i64,
    /// The Homelab version and database schema that wrote it.
    pub homelab: String,
    pub schema: i64,
    pub state: Desired,
    pub sealed: PassphraseSealed,
}

/// What the seal holds.
#[derive(Serialize, Deserialize)]
struct Inner {
    /// Hex SHA-256 of the readable part (`readable_sha256`).
    state_sha256: String,
    secrets: Vec<SecretEntry>,
}

#[derive(Serialize, Deserialize)]
struct SecretEntry {
    owner: String,
    purpose: String,
    /// base64 of the plaintext.
    value: String,
}

/// Why a file cannot be imported, in words with the fix.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ExportError {
    #[error("{0}")]
    Refused(String),
    #[error(
        "The passphrase does not open this file. Type the passphrase chosen when it was exported."
    )]
    WrongPassphrase,
}

fn refused(words: impl Into<String>) -> ExportError {
    ExportError::Refused(words.into())
}

/// The digest of everything readable in the file (its state and what the preview and the
/// audit say of it: when, by which Homelab, for which schema), so none of it can be edited.
fn readable_sha256(exported_at: i64, homelab: &str, schema: i64, state: &Desired) -> String {
    let json = serde_json::to_vec(&(exported_at, homelab, schema, state)).unwrap_or_default();
    crate::units::hex(&Sha256::digest(&json))
}

/// Writes the file (pretty JSON). CPU- and memory-heavy (Argon2): call from a blocking thread.
pub fn write(
    state: Desired,
    secrets: Vec<(String, String, Secret)>,
    passphrase: &Secret,
    schema: i64,
    now: i64,
) -> Result<Vec<u8>, ExportError> {
    let inner = Inner {
        state_sha256: readable_sha256(now, crate::VERSION, schema, &state),
        secrets: secrets
            .into_iter()
            .map(|(owner, purpose, value)| SecretEntry {
                owner,
                purpose,
                value: B64.encode(value.expose()),
            })
            .collect(),
    };
    let plain = Secret::new(serde_json::to_vec(&inner).map_err(|e| refused(e.to_string()))?);
    let sealed = passphrase::seal(plain.expose(), passphrase, CONTEXT)
        .map_err(|e| refused(format!("The file could not be sealed: {e}")))?;
    let file = File {
        format: FORMAT.into(),
        version: VERSION,
        exported_at: now,
        homelab: crate::VERSION.into(),
        schema,
        state,
        sealed,
    };
    serde_json::to_vec_pretty(&file).map_err(|e| refused(e.to_string()))
}

/// A file read and opened: its state and secrets (owner, purpose, plaintext).
pub struct Opened {
    pub exported_at: i64,
    pub homelab: String,
    pub state: Desired,
    pub secrets: Vec<(String, String, Secret)>,
}

/// What can be told of a file before its passphrase: that it is ours, whole, and not from a
/// newer Homelab (so the owner is not asked for a passphrase for the wrong file).
pub fn check(bytes: &[u8], our_schema: i64) -> Result<File, ExportError> {
    if bytes.len() > MAX_FILE {
        return Err(refused(format!(
            "This file is larger than a configuration can be ({} MB at most): choose the file \
             Homelab exported.",
            MAX_FILE / (1024 * 1024)
        )));
    }
    // Its name first, read without building the rest (another JSON file can be large).
    #[derive(Deserialize)]
    struct Probe {
        format: Option<String>,
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|_| {
        refused("This is not a Homelab configuration file (it is not JSON): choose the file Homelab exported.")
    })?;
    if probe.format.as_deref() != Some(FORMAT) {
        return Err(refused(
            "This is not a Homelab configuration file: choose the file Homelab exported (its name starts with homelab-configuration).",
        ));
    }
    let file: File = serde_json::from_slice(bytes).map_err(|e| {
        refused(format!(
            "This configuration file is damaged ({e}): export it again."
        ))
    })?;
    if file.version > VERSION || file.schema > our_schema {
        return Err(refused(format!(
            "This configuration comes from a newer Homelab ({}): update this box first, then import it.",
            file.homelab
        )));
    }
    Ok(file)
}

/// Reads a file and opens its seal. Argon2: call from a blocking thread.
pub fn read(bytes: &[u8], passphrase: &Secret, our_schema: i64) -> Result<Opened, ExportError> {
    let file = check(bytes, our_schema)?;
    let plain = passphrase::open(&file.sealed, passphrase, CONTEXT)
        .map_err(|_| ExportError::WrongPassphrase)?;
    let inner: Inner = serde_json::from_slice(plain.expose())
        .map_err(|_| refused("This configuration file is damaged: export it again."))?;
    if inner.state_sha256
        != readable_sha256(file.exported_at, &file.homelab, file.schema, &file.state)
    {
        return Err(refused(
            "This file was changed after it was exported (its settings no longer match its seal), \
             so nothing of it was used. Export the configuration again and import that file unchanged.",
        ));
    }
    let mut secrets = Vec::with_capacity(inner.secrets.len());
    for s in inner.secrets {
        let value = B64
            .decode(s.value.as_bytes())
            .map_err(|_| refused("This configuration file is damaged: export it again."))?;
        secrets.push((s.owner, s.purpose, Secret::new(value)));
    }
    Ok(Opened {
        exported_at: file.exported_at,
        homelab: file.homelab,
        state: file.state,
        secrets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Desired, Vec<(String, String, Secret)>) {
        let mut state = Desired::default();
        state.settings.insert("host_names".into(), "nas.lan".into());
        let secrets = vec![(
            "device:1".to_string(),
            "ssh-key".to_string(),
            Secret::from_string("PRIVATE KEY".into()),
        )];
        (state, secrets)
    }

    #[test]
    fn a_file_opens_with_its_passphrase_only_and_keeps_its_secrets_sealed() {
        let (state, secrets) = sample();
        let pass = Secret::from_string("correct horse battery".into());
        let bytes = write(state.clone(), secrets, &pass, 13, 1).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("nas.lan"), "the state is readable");
        assert!(!text.contains("PRIVATE KEY"), "secrets are sealed");
        let opened = read(&bytes, &pass, 13).unwrap();
        assert_eq!(opened.state, state);
        assert_eq!(opened.secrets[0].2.expose(), b"PRIVATE KEY");
        let wrong = Secret::from_string("wrong horse battery".into());
        assert_eq!(
            read(&bytes, &wrong, 13).err(),
            Some(ExportError::WrongPassphrase)
        );
    }

    #[test]
    fn tampered_foreign_or_newer_files_are_refused_with_the_reason() {
        let (state, secrets) = sample();
        let pass = Secret::from_string("correct horse battery".into());
        let bytes = write(state, secrets, &pass, 13, 1).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let edited = text.replace("nas.lan", "evil.lan");
        let err = read(edited.as_bytes(), &pass, 13).err().unwrap();
        assert!(
            err.to_string().contains("changed after it was exported"),
            "{err}"
        );
        // What the preview and the audit say of the file is sealed too.
        let when = format!("\"exported_at\": {}", 1);
        assert!(text.contains(&when), "{text}");
        let redated = text.replace(&when, "\"exported_at\": 2");
        let err = read(redated.as_bytes(), &pass, 13).err().unwrap();
        assert!(
            err.to_string().contains("changed after it was exported"),
            "{err}"
        );
        let err = read(b"{\"hello\": 1}", &pass, 13).err().unwrap();
        assert!(
            err.to_string().contains("not a Homelab configuration"),
            "{err}"
        );
        let err = read(b"not json", &pass, 13).err().unwrap();
        assert!(err.to_string().contains("not JSON"), "{err}");
        let err = read(text.as_bytes(), &pass, 12).err().unwrap();
        assert!(err.to_string().contains("newer Homelab"), "{err}");
        let big = vec![b' '; MAX_FILE + 1];
        assert!(read(&big, &pass, 13).is_err());
    }
}
