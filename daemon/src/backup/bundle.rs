//! The box's own state as one sealed file, for its backup: a consistent copy of the database
//! with the vault key and the certificate it belongs with (the update snapshot's set of files,
//! `ota::snapshot::CONFIG_FILES`), sealed with the owner's recovery passphrase (Argon2id,
//! AES-256-GCM, as the vault's exports are).
//!
//! The file goes into the destination's restic repository like an app's data, so it is
//! sealed twice: restic's encryption keeps it from the storage, the passphrase from the
//! devices (they hold the repository's password to back their apps up, and the bundle holds
//! every secret of the homelab).
//!
//! A restore never writes into the live data directory: the files are staged
//! (`recovery/staged/`) and put in place at the next start, before the database is opened
//! ([`apply_staged`]), as an update's rollback does.
//!
//! Layout: `HOMELAB-BOX 1\n`, the sealing's header as one line of JSON, the ciphertext. The
//! plaintext is a line of JSON naming each file and its size, then the files' bytes in order.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ota::snapshot::{CONFIG_FILES, write_durably};
use crate::secrets::Secret;
use crate::secrets::passphrase::{self, PassphraseSealed};
use crate::store::{DB_FILE, Store};

/// restic's host name for the box's own snapshots. Apps' snapshots carry their slug, which
/// never has a dot (lower-case letters, digits and dashes), so neither can take the other's.
pub const BOX_HOST: &str = "homelab.box";
/// The file's name inside those snapshots.
pub const BUNDLE_NAME: &str = "homelab-box.sealed";
const MAGIC: &[u8] = b"HOMELAB-BOX 1\n";
/// Bound into the sealing, so no other passphrase-sealed file of ours opens as a bundle.
const CONTEXT: &str = "homelab-box-state";
/// The largest bundle made or read: a box's database is a few MB; this bounds what a
/// restore downloads and what a backup or restore holds in memory while it packs, seals or
/// opens one (a few copies at once).
pub const MAX_BUNDLE: usize = 128 << 20;
/// The most a bundle's sealing may ask of Argon2id (ours asks 64 MiB and 3 passes): a
/// crafted header must not make a restore allocate a gigabyte or run for minutes.
const MAX_KDF_KIB: u32 = 256 * 1024;
const MAX_KDF_PASSES: u32 = 10;

/// A bundle's files: each name (relative to the data directory) and its bytes.
pub type Files = Vec<(String, Vec<u8>)>;

/// What a bundle holds, besides the bytes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    /// The daemon version that made it.
    pub version: String,
    /// Unix seconds.
    pub made_at: i64,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Wrong passphrase, or a file changed since it was sealed: AES-GCM cannot tell which.
    #[error(
        "This recovery passphrase does not open the box's backup. Check it against what you wrote on your recovery sheet (capitals count)."
    )]
    WrongPassphrase,
    #[error("The box's backup is not one Homelab can read ({0}). Choose another backup.")]
    Unreadable(&'static str),
    #[error("The box's backup is larger than {} MB, more than a box's state can be.", MAX_BUNDLE >> 20)]
    TooLarge,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// The owner's own app recipes, beside the database (`recipes/<app>/<file>`).
const RECIPES: &str = "recipes";
/// Bounds on what of the recipes folder goes in: a recipe is a manifest, a Compose file and
/// an icon or two.
const MAX_RECIPE_FILES: usize = 2000;
const MAX_RECIPE_FILE: u64 = 4 << 20;

/// A plain name: what a recipe's folder and files are called (no dot files, no `..`).
fn plain(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= 128
        && !part.starts_with('.')
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The names a bundle may hold (and a restore may write): nothing else in the data directory.
fn allowed(name: &str) -> bool {
    if name == DB_FILE || CONFIG_FILES.contains(&name) {
        return true;
    }
    let parts: Vec<&str> = name.split('/').collect();
    parts.len() == 3 && parts[0] == RECIPES && plain(parts[1]) && plain(parts[2])
}

/// The owner's recipes, file by file (bounded; anything odd in the folder is left out).
fn recipe_files(data: &Path) -> io::Result<Files> {
    let mut files = Vec::new();
    let mut total = 0u64;
    let Ok(apps) = fs::read_dir(data.join(RECIPES)) else {
        return Ok(files);
    };
    for app in apps.flatten() {
        let app_name = app.file_name().to_string_lossy().into_owned();
        if !plain(&app_name) || !app.file_type()?.is_dir() {
            continue;
        }
        for file in fs::read_dir(app.path())?.flatten() {
            let name = format!(
                "{RECIPES}/{app_name}/{}",
                file.file_name().to_string_lossy()
            );
            let meta = file.metadata()?;
            if !allowed(&name) || !meta.is_file() || meta.len() > MAX_RECIPE_FILE {
                continue;
            }
            // Bounded before anything is read: the count and what they add up to.
            total += meta.len();
            if files.len() >= MAX_RECIPE_FILES || total > (MAX_BUNDLE / 4) as u64 {
                return Err(io::Error::other(
                    "the recipes folder holds more than a box's backup takes: remove what is not a recipe from it",
                ));
            }
            files.push((name, fs::read(file.path())?));
        }
    }
    Ok(files)
}

/// Copies the box's state into memory: the database through SQLite's own copy (taken while
/// the daemon runs, into `scratch`), the key and certificate files as they are.
pub async fn collect(data: &Path, store: &Store, scratch: &Path) -> Result<Vec<u8>, BundleError> {
    let db = scratch.join(DB_FILE);
    let _ = tokio::fs::remove_file(&db).await;
    store
        .copy_to(&db)
        .await
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut files = vec![(DB_FILE.to_string(), tokio::fs::read(&db).await?)];
    let _ = tokio::fs::remove_file(&db).await;
    for name in CONFIG_FILES {
        match tokio::fs::read(data.join(name)).await {
            Ok(bytes) => files.push((name.to_string(), bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    let folder = data.to_path_buf();
    let recipes = tokio::task::spawn_blocking(move || recipe_files(&folder))
        .await
        .map_err(io::Error::other)??;
    files.extend(recipes);
    pack(&files, crate::store::now_unix())
}

/// The plaintext: the manifest line, then each file's bytes.
pub fn pack(files: &[(String, Vec<u8>)], made_at: i64) -> Result<Vec<u8>, BundleError> {
    let manifest = Manifest {
        format: 1,
        version: crate::VERSION.to_string(),
        made_at,
        files: files
            .iter()
            .map(|(name, bytes)| FileEntry {
                name: name.clone(),
                size: bytes.len() as u64,
            })
            .collect(),
    };
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();
    if total > MAX_BUNDLE {
        return Err(BundleError::TooLarge);
    }
    let mut out = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
    out.push(b'\n');
    out.reserve(total);
    for (_, bytes) in files {
        out.extend_from_slice(bytes);
    }
    Ok(out)
}

/// Reads a plaintext back: the manifest and each file, checked (known names only, each
/// once, the database present, sizes that add up to what is there).
pub fn unpack(plain: &[u8]) -> Result<(Manifest, Files), BundleError> {
    let end = plain
        .iter()
        .position(|b| *b == b'\n')
        .ok_or(BundleError::Unreadable("no contents list"))?;
    let manifest: Manifest = serde_json::from_slice(&plain[..end])
        .map_err(|_| BundleError::Unreadable("contents list unreadable"))?;
    if manifest.format != 1 {
        return Err(BundleError::Unreadable(
            "made by a newer Homelab: update this box first",
        ));
    }
    let mut rest = &plain[end + 1..];
    let mut files = Vec::new();
    for f in &manifest.files {
        if !allowed(&f.name) || files.iter().any(|(n, _)| n == &f.name) {
            return Err(BundleError::Unreadable("unexpected file"));
        }
        let size = usize::try_from(f.size).map_err(|_| BundleError::TooLarge)?;
        if size > rest.len() {
            return Err(BundleError::Unreadable("cut short"));
        }
        let (bytes, tail) = rest.split_at(size);
        files.push((f.name.clone(), bytes.to_vec()));
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(BundleError::Unreadable("extra bytes"));
    }
    if !files.iter().any(|(n, _)| n == DB_FILE) {
        return Err(BundleError::Unreadable("no database"));
    }
    Ok((manifest, files))
}

/// Seals a plaintext with the passphrase. Argon2id (64 MiB): call from a blocking thread.
pub fn seal(plain: &[u8], passphrase: &Secret) -> Result<Vec<u8>, BundleError> {
    let (header, ciphertext) = passphrase::seal_raw(plain, passphrase, CONTEXT)
        .map_err(|_| BundleError::Unreadable("sealing failed"))?;
    let mut out = MAGIC.to_vec();
    out.extend(serde_json::to_vec(&header).map_err(io::Error::other)?);
    out.push(b'\n');
    out.extend(ciphertext);
    Ok(out)
}

/// Opens a sealed bundle with the passphrase. Argon2id: call from a blocking thread.
pub fn open(sealed: &[u8], passphrase: &Secret) -> Result<Secret, BundleError> {
    if sealed.len() > MAX_BUNDLE + 4096 {
        return Err(BundleError::TooLarge);
    }
    let body = sealed
        .strip_prefix(MAGIC)
        .ok_or(BundleError::Unreadable("not a Homelab box backup"))?;
    let end = body
        .iter()
        .position(|b| *b == b'\n')
        .ok_or(BundleError::Unreadable("no header"))?;
    let header: PassphraseSealed = serde_json::from_slice(&body[..end])
        .map_err(|_| BundleError::Unreadable("header unreadable"))?;
    if header.m_cost_kib > MAX_KDF_KIB || header.t_cost > MAX_KDF_PASSES || header.p_cost > 4 {
        return Err(BundleError::Unreadable(
            "its sealing asks too much of this box",
        ));
    }
    passphrase::open_raw(&header, &body[end + 1..], passphrase, CONTEXT).map_err(|e| match e {
        crate::secrets::VaultError::Open => BundleError::WrongPassphrase,
        _ => BundleError::Unreadable("sealing unknown"),
    })
}

fn recovery_dir(data: &Path) -> PathBuf {
    data.join("recovery")
}

fn staged_dir(data: &Path) -> PathBuf {
    recovery_dir(data).join("staged")
}

/// Whether a restored state waits for the next start to be put in place.
pub fn staged(data: &Path) -> bool {
    staged_dir(data).join(DB_FILE).exists()
}

/// Writes a bundle's files beside the data, to be put in place at the next start. The set
/// appears whole or not at all (written apart, then renamed), so a power cut never leaves
/// half of one to apply.
pub fn stage(
    data: &Path,
    manifest: &Manifest,
    files: &[(String, Vec<u8>)],
) -> Result<(), BundleError> {
    use std::os::unix::fs::DirBuilderExt;
    let fresh = recovery_dir(data).join("staged.new");
    let _ = fs::remove_dir_all(&fresh);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&fresh)?;
    for (name, bytes) in files {
        let path = fresh.join(name);
        if let Some(dir) = path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        write_durably(&path, bytes)?;
    }
    write_durably(
        &fresh.join("manifest.json"),
        &serde_json::to_vec(manifest).map_err(io::Error::other)?,
    )?;
    let dir = staged_dir(data);
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&fresh, &dir)?;
    fs::File::open(recovery_dir(data))?.sync_all()?;
    Ok(())
}

/// At start, before the vault and the database are opened: puts a staged restore in place
/// (the key and certificate files, then the database), and returns its manifest. Safe to
/// repeat after a power cut at any point: the staged set goes only once all of it is in place.
pub fn apply_staged(data: &Path) -> io::Result<Option<Manifest>> {
    let dir = staged_dir(data);
    if !dir.join(DB_FILE).exists() {
        return Ok(None);
    }
    let manifest: Option<Manifest> = fs::read(dir.join("manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    for name in CONFIG_FILES {
        let from = dir.join(name);
        if from.exists() {
            let to = data.join(name);
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent)?;
            }
            write_durably(&to, &fs::read(&from)?)?;
        }
    }
    // The owner's recipes as they were: the restored apps need theirs.
    if let Some(m) = &manifest {
        for f in m.files.iter().filter(|f| f.name.starts_with(RECIPES)) {
            if !allowed(&f.name) {
                continue;
            }
            let to = data.join(&f.name);
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent)?;
            }
            write_durably(&to, &fs::read(dir.join(&f.name))?)?;
        }
    }
    crate::store::restore_copy(&data.join(DB_FILE), &dir.join(DB_FILE))?;
    if let Some(m) = &manifest {
        write_durably(
            &recovery_dir(data).join("restored.json"),
            &serde_json::to_vec(m).map_err(io::Error::other)?,
        )?;
    }
    fs::remove_dir_all(&dir)?;
    Ok(manifest)
}

/// A restore put in place and not yet noted in the database (kept until
/// [`clear_restored`], so a start cut short after the restore notes it at the next one).
pub fn restored(data: &Path) -> Option<Manifest> {
    fs::read(recovery_dir(data).join("restored.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

pub fn clear_restored(data: &Path) {
    let _ = fs::remove_file(recovery_dir(data).join("restored.json"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<(String, Vec<u8>)> {
        vec![
            (DB_FILE.into(), b"SQLite format 3\0rows".to_vec()),
            ("secrets/master.key".into(), vec![7u8; 32]),
            (
                "recipes/my-app/manifest.yaml".into(),
                b"name: Mine".to_vec(),
            ),
        ]
    }

    #[test]
    fn a_bundle_opens_only_with_its_passphrase_and_unpacks_to_its_files() {
        let plain = pack(&files(), 1_800_000_000).unwrap();
        let pass = Secret::from_string("correct horse battery staple".into());
        let sealed = seal(&plain, &pass).unwrap();
        assert!(sealed.starts_with(MAGIC));
        // The files' bytes are not readable in the sealed file.
        assert!(!sealed.windows(6).any(|w| w == b"SQLite"));
        let opened = open(&sealed, &pass).unwrap();
        let (manifest, back) = unpack(opened.expose()).unwrap();
        assert_eq!(back, files());
        assert_eq!(manifest.made_at, 1_800_000_000);
        let wrong = Secret::from_string("correct horse battery stapler".into());
        assert!(matches!(
            open(&sealed, &wrong),
            Err(BundleError::WrongPassphrase)
        ));
        // One byte changed anywhere in the ciphertext: refused the same way.
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(
            open(&tampered, &pass),
            Err(BundleError::WrongPassphrase)
        ));
        assert!(matches!(
            open(b"PK\x03\x04zip", &pass),
            Err(BundleError::Unreadable(_))
        ));
    }

    #[test]
    fn a_plaintext_naming_other_files_or_sizes_that_do_not_add_up_is_refused() {
        let entry = |name: &str, size: u64| FileEntry {
            name: name.into(),
            size,
        };
        let with = |entries: Vec<FileEntry>, body: &[u8]| {
            let m = Manifest {
                format: 1,
                version: "x".into(),
                made_at: 0,
                files: entries,
            };
            let mut v = serde_json::to_vec(&m).unwrap();
            v.push(b'\n');
            v.extend_from_slice(body);
            unpack(&v)
        };
        assert!(with(vec![entry("../../etc/passwd", 1)], b"x").is_err());
        assert!(with(vec![entry("secrets/other.key", 1)], b"x").is_err());
        assert!(with(vec![entry(DB_FILE, 5)], b"abc").is_err(), "cut short");
        assert!(
            with(vec![entry(DB_FILE, 1)], b"abc").is_err(),
            "extra bytes"
        );
        assert!(
            with(vec![entry(DB_FILE, 1), entry(DB_FILE, 1)], b"ab").is_err(),
            "twice"
        );
        assert!(
            with(vec![entry("secrets/master.key", 1)], b"a").is_err(),
            "no database"
        );
        assert!(with(vec![entry("recipes/../x", 1), entry(DB_FILE, 1)], b"ab").is_err());
        assert!(with(vec![entry("recipes/.ssh/x", 1), entry(DB_FILE, 1)], b"ab").is_err());
        assert!(with(vec![entry("recipes/a/b/c", 1), entry(DB_FILE, 1)], b"ab").is_err());
        assert!(with(vec![entry(DB_FILE, 3)], b"abc").is_ok());
        assert!(
            with(
                vec![entry(DB_FILE, 1), entry("recipes/my-app/manifest.yaml", 1)],
                b"ab"
            )
            .is_ok()
        );
    }

    #[test]
    fn a_staged_restore_is_put_in_place_once_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        fs::create_dir_all(data.join("secrets")).unwrap();
        fs::write(data.join("secrets/master.key"), b"new-box-key").unwrap();
        fs::write(data.join(DB_FILE), b"new box database").unwrap();
        fs::write(data.join(format!("{DB_FILE}-wal")), b"new box wal").unwrap();
        let plain = pack(&files(), 42).unwrap();
        let (manifest, files) = unpack(&plain).unwrap();
        stage(data, &manifest, &files).unwrap();
        assert!(staged(data));
        // Nothing in place yet.
        assert_eq!(fs::read(data.join(DB_FILE)).unwrap(), b"new box database");
        let applied = apply_staged(data).unwrap().unwrap();
        assert_eq!(applied.made_at, 42);
        assert_eq!(fs::read(data.join(DB_FILE)).unwrap(), files[0].1);
        assert_eq!(
            fs::read(data.join("secrets/master.key")).unwrap(),
            files[1].1
        );
        assert_eq!(
            fs::read(data.join("recipes/my-app/manifest.yaml")).unwrap(),
            files[2].1
        );
        assert!(
            !data.join(format!("{DB_FILE}-wal")).exists(),
            "the old WAL went"
        );
        assert!(!staged(data));
        assert_eq!(apply_staged(data).unwrap(), None, "once");
        assert_eq!(restored(data).unwrap().made_at, 42);
        clear_restored(data);
        assert_eq!(restored(data), None);
    }
}
