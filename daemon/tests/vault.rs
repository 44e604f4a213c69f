//! The vault on real files: sealing, tamper detection, key file permissions.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use homelabd::secrets::{Secret, Vault, VaultError, passphrase};

#[test]
fn seal_and_open_round_trip() {
    let dir = data_dir("vault-roundtrip");
    let vault = Vault::open_or_create(&dir).unwrap();
    let secret = password("vault");
    let sealed = vault.seal(secret.as_bytes(), "device:1", "ssh-password");
    assert!(
        !sealed.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "ciphertext contains the plaintext"
    );
    let opened = vault.open(&sealed, "device:1", "ssh-password").unwrap();
    assert_eq!(opened.expose(), secret.as_bytes());
    // Fresh nonce each time: sealing twice gives different blobs.
    assert_ne!(
        sealed,
        vault.seal(secret.as_bytes(), "device:1", "ssh-password")
    );
    // Reopening the same data directory reads the same key.
    let again = Vault::open_or_create(&dir).unwrap();
    assert_eq!(
        again
            .open(&sealed, "device:1", "ssh-password")
            .unwrap()
            .expose(),
        secret.as_bytes()
    );
    // Secrets never print.
    assert_eq!(format!("{opened:?}"), "Secret([redacted])");
    assert_eq!(format!("{again:?}"), "Vault([redacted])");
}

#[test]
fn tampering_swapping_and_wrong_keys_all_fail() {
    let vault = Vault::open_or_create(&data_dir("vault-tamper")).unwrap();
    let sealed = vault.seal(b"hunter2-but-longer", "device:1", "ssh-password");

    for i in [0usize, 1, 13, sealed.len() - 1] {
        let mut bad = sealed.clone();
        bad[i] ^= 0x01;
        assert!(
            vault.open(&bad, "device:1", "ssh-password").is_err(),
            "flipped byte {i} went unnoticed"
        );
    }
    assert!(matches!(
        vault.open(&sealed[..sealed.len() - 1], "device:1", "ssh-password"),
        Err(VaultError::Open)
    ));
    // The same blob in another row (other owner or purpose) does not open.
    assert!(matches!(
        vault.open(&sealed, "device:2", "ssh-password"),
        Err(VaultError::Open)
    ));
    assert!(matches!(
        vault.open(&sealed, "device:1", "db-password"),
        Err(VaultError::Open)
    ));
    // Length-prefixed AAD: moving a separator does not collide.
    let s2 = vault.seal(b"x", "a:b", "c");
    assert!(vault.open(&s2, "a", "b:c").is_err());
    // Another box's key cannot open it.
    let other = Vault::open_or_create(&data_dir("vault-other")).unwrap();
    assert!(matches!(
        other.open(&sealed, "device:1", "ssh-password"),
        Err(VaultError::Open)
    ));
    assert!(matches!(
        vault.open(&[], "device:1", "ssh-password"),
        Err(VaultError::Format)
    ));
}

#[test]
fn master_key_is_private_and_a_readable_key_stops_the_start() {
    let dir = data_dir("vault-mode");
    Vault::open_or_create(&dir).unwrap();
    let key = dir.join("secrets/master.key");
    let meta = std::fs::metadata(&key).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);
    assert_eq!(
        std::fs::metadata(dir.join("secrets"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Vault::open_or_create(&dir).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, VaultError::KeyPermissions { .. }));
    assert!(
        msg.contains("chmod 600"),
        "the message says how to fix it: {msg}"
    );

    // The whole daemon refuses to start too.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let result = rt.block_on(async {
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        homelabd::run(
            homelabd::Config::new(&dir),
            homelabd::Listeners { http, https: None },
            async {},
        )
        .await
    });
    assert!(matches!(
        result,
        Err(homelabd::RunError::Vault(VaultError::KeyPermissions { .. }))
    ));

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(Vault::open_or_create(&dir).is_ok());
}

#[test]
fn passphrase_sealing_for_exports() {
    let pass = password("export");
    let sealed = passphrase::seal(
        b"the whole config",
        &Secret::from_string(pass.clone()),
        "config-export",
    )
    .unwrap();
    assert_eq!(sealed.kdf, "argon2id-v19");
    assert!(sealed.m_cost_kib >= 19 * 1024);
    // Survives a JSON round trip (the export file format).
    let json = serde_json::to_string(&sealed).unwrap();
    assert!(!json.contains(&pass));
    let back: passphrase::PassphraseSealed = serde_json::from_str(&json).unwrap();
    let opened =
        passphrase::open(&back, &Secret::from_string(pass.clone()), "config-export").unwrap();
    assert_eq!(opened.expose(), b"the whole config");
    assert!(
        passphrase::open(
            &back,
            &Secret::from_string("wrong passphrase".into()),
            "config-export"
        )
        .is_err()
    );
    assert!(passphrase::open(&back, &Secret::from_string(pass.clone()), "other-context").is_err());
    let mut tampered = back.clone();
    tampered.m_cost_kib = 4 * 1024 * 1024;
    assert!(matches!(
        passphrase::open(&tampered, &Secret::from_string(pass), "config-export"),
        Err(VaultError::Format)
    ));
}
