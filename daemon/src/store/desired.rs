//! The desired state as one document: what the owner chose (devices, apps and their settings,
//! names, shared databases, backup destinations and policies, the box's own settings), read in
//! one transaction. Two uses: a revision is taken with every audit record whose change moved
//! it (Settings → History), and an export carries it to another box, where an import writes
//! it back in one transaction.
//!
//! The document is rows as the tables hold them (column name → value), so a column added
//! later travels without code here; which tables, which settings, and which columns are what
//! the box observed rather than what the owner chose are listed below, once.

use std::collections::BTreeMap;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Store, StoreError, now_unix};

/// One row: column → value (text, integer, real or null; none of these tables holds blobs).
pub type Row = BTreeMap<String, serde_json::Value>;

/// A table of the desired state: its rows, the columns that say which row is which, and the
/// columns the box fills in itself (status, measurements), left out of revisions so that only
/// the owner's changes make one.
pub struct Table {
    pub name: &'static str,
    pub key: &'static [&'static str],
    pub observed: &'static [&'static str],
    /// Columns never read: they make sense only on the box that wrote them.
    pub local: &'static [&'static str],
}

/// Every table of the desired state, in the order an import writes them (devices before what
/// runs on them).
pub const TABLES: &[Table] = &[
    Table {
        name: "devices",
        // Ids of removed devices are given again: with when it was added, a row is one device.
        key: &["id", "created_at"],
        observed: &[],
        // A changed host key waiting for the owner's yes is this box's question, not a choice.
        local: &["pending_host_key"],
    },
    Table {
        name: "apps",
        key: &["slug"],
        // `compose`, `url` and `app_dir` follow from the recipe and settings at each deploy.
        observed: &[
            "state",
            "message",
            "compose",
            "url",
            "app_dir",
            "updated_at",
        ],
        local: &[],
    },
    Table {
        name: "app_names",
        key: &["slug"],
        observed: &[
            "answer",
            "reference",
            "record_state",
            "record_message",
            "cert_pem",
            "cert_not_before",
            "cert_not_after",
            "cert_message",
            "updated_at",
        ],
        local: &[],
    },
    Table {
        name: "shared_databases",
        key: &["device_id", "slug"],
        observed: &[],
        local: &[],
    },
    Table {
        name: "backup_destinations",
        key: &["id"],
        observed: &[
            "checked_at",
            "check_ok",
            "check_message",
            "maintained_at",
            "damage",
            "stored_bytes",
            "logical_bytes",
            "disk_total",
            "disk_free",
            "space_at",
        ],
        local: &[],
    },
    Table {
        name: "backup_policies",
        key: &["slug"],
        observed: &["updated_at"],
        local: &[],
    },
];

/// The box's settings that are the owner's choices (the rest are its own bookkeeping: keys,
/// timestamps, what it last saw).
pub const SETTINGS: &[&str] = &[
    "update.channel",
    "host_names",
    "names.suffix",
    "names.public",
    "dns.provider",
    "adguard.url",
    "adguard.username",
    "opnsense.url",
    "opnsense.fingerprint",
];

/// Whether a secret may be carried to another box. Never: this box's setup code, its
/// recovery passphrase (each box sets its own), and its certificate authority. A CA in a file
/// could vouch for any site if it came without its name limits, and checking a foreign one is
/// more than an import should trust; the new box has its own, which the owner installs again
/// (Settings → Trust), and apps get certificates from it at their next deploy.
pub fn portable(owner: &str, purpose: &str) -> bool {
    !matches!(
        (owner, purpose),
        ("system", _) | ("box-recovery", _) | ("ca", _)
    )
}

/// Whether a secret's owner is something the state holds (a file can carry secrets only for
/// what it brings: a planted secret would otherwise wait for a device, pool or app that is
/// added later and hand it a password the file's author knows).
pub fn owned_by(state: &Desired, owner: &str) -> bool {
    let has = |table: &str, col: &str, value: &str| {
        state.rows(table).iter().any(|r| match r.get(col) {
            Some(serde_json::Value::String(s)) => s == value,
            Some(serde_json::Value::Number(n)) => n.to_string() == value,
            _ => false,
        })
    };
    match owner.split_once(':') {
        None => matches!(owner, "adguard" | "opnsense"),
        Some(("device", id)) => has("devices", "id", id),
        Some(("pool", rest)) => {
            let device = rest.split(':').next().unwrap_or_default();
            has("shared_databases", "device_id", device)
        }
        Some(("backup-destination", id)) => has("backup_destinations", "id", id),
        Some(("name", slug)) => has("app_names", "slug", slug),
        Some(("app", slug)) => has("apps", "slug", slug) || has("shared_databases", "slug", slug),
        Some(_) => false,
    }
}

/// Rows an import takes per table, and the longest text in one: far above a real homelab,
/// far below what would weigh on the box.
pub const MAX_ROWS: usize = 2000;
pub const MAX_TEXT: usize = 256 * 1024;

/// The desired state. `BTreeMap`s keep it in one order, so equal states serialize equally.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Desired {
    pub settings: BTreeMap<String, String>,
    pub tables: BTreeMap<String, Vec<Row>>,
}

impl Desired {
    /// The SHA-256 of its JSON: what revisions compare and an export's seal covers.
    pub fn digest(&self) -> [u8; 32] {
        let json = serde_json::to_vec(self).unwrap_or_default();
        Sha256::digest(&json).into()
    }

    pub fn rows(&self, table: &str) -> &[Row] {
        self.tables.get(table).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// A revision of the desired state.
#[derive(Debug, Clone)]
pub struct Revision {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    /// The audit record's words for the change that made it.
    pub what: String,
}

/// Revisions kept: the newest this many (each a few KB: no compose files, no secrets).
pub const REVISIONS_KEEP: i64 = 200;

/// Reads the desired state. `observed` adds the columns the box fills in itself (an export
/// carries them, so an imported app keeps its compose and certificate).
pub fn read(c: &Connection, observed: bool) -> Result<Desired, StoreError> {
    let mut out = Desired::default();
    for key in SETTINGS {
        let value: Option<String> = c
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(v) = value {
            out.settings.insert(key.to_string(), v);
        }
    }
    for table in TABLES {
        let order = table.key.join(", ");
        // Table and column names come from `TABLES`, never from input.
        let mut st = c.prepare(&format!("SELECT * FROM {} ORDER BY {order}", table.name))?;
        let names: Vec<String> = st.column_names().map(|s| s.to_string()).collect();
        let mut rows = st.query([])?;
        let mut list = Vec::new();
        while let Some(r) = rows.next()? {
            let mut row = Row::new();
            for (i, name) in names.iter().enumerate() {
                if table.local.contains(&name.as_str())
                    || (!observed && table.observed.contains(&name.as_str()))
                {
                    continue;
                }
                let value = match r.get_ref(i)? {
                    ValueRef::Null => serde_json::Value::Null,
                    ValueRef::Integer(n) => n.into(),
                    ValueRef::Real(f) => f.into(),
                    ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
                    ValueRef::Blob(_) => continue,
                };
                row.insert(name.clone(), value);
            }
            list.push(row);
        }
        out.tables.insert(table.name.to_string(), list);
    }
    Ok(out)
}

/// Audited actions that never change the desired state (sign-ins, sessions, tokens, the
/// display mode), so their records skip the read.
pub(super) fn never_a_revision(action: &str) -> bool {
    action.starts_with("auth.") || action.starts_with("api_token.") || action == "settings.mode"
}

/// Takes a revision when the desired state differs from the newest one; `what` names the
/// change (the audit record's detail). Runs in the caller's transaction or connection.
pub(super) fn note_revision(c: &Connection, actor: &str, what: &str) -> Result<(), StoreError> {
    let state = read(c, false)?;
    let digest = state.digest();
    let last: Option<Vec<u8>> = c
        .query_row(
            "SELECT digest FROM revisions ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if last.as_deref() == Some(&digest[..]) {
        return Ok(());
    }
    let json = serde_json::to_string(&state).map_err(std::io::Error::other)?;
    c.execute(
        "INSERT INTO revisions(at, actor, what, document, digest) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![now_unix(), actor, what, json, &digest[..]],
    )?;
    let id = c.last_insert_rowid();
    c.execute(
        "DELETE FROM revisions WHERE id <= ?1",
        [id - REVISIONS_KEEP],
    )?;
    Ok(())
}

/// What an import writes: the state with the columns the box fills in, and the secrets it
/// carries, each already sealed by this box's vault for its owner and purpose.
pub struct Import {
    pub state: Desired,
    pub secrets: Vec<(String, String, Vec<u8>)>,
}

/// Why the box is not one an import may fill.
pub fn not_fresh(c: &Connection) -> Result<Option<String>, StoreError> {
    for (table, one, many) in [
        ("devices", "device", "devices"),
        ("apps", "app", "apps"),
        (
            "backup_destinations",
            "backup destination",
            "backup destinations",
        ),
    ] {
        let n: i64 = c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
        if n > 0 {
            let noun = if n == 1 { one } else { many };
            return Ok(Some(format!(
                "This box already has {n} {noun}. A configuration is imported onto a fresh box \
                 (one with no devices, apps or backup destinations yet): use a new box, or \
                 remove them here first."
            )));
        }
    }
    Ok(None)
}

fn columns(c: &Connection, table: &str) -> Result<Vec<String>, StoreError> {
    let st = c.prepare(&format!("SELECT * FROM {table} LIMIT 0"))?;
    Ok(st.column_names().map(|s| s.to_string()).collect())
}

fn sql_value(v: &serde_json::Value) -> Result<rusqlite::types::Value, String> {
    use rusqlite::types::Value;
    Ok(match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Integer(i64::from(*b)),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::Integer(i),
            (None, Some(f)) => Value::Real(f),
            _ => return Err(format!("the number {n} is out of range")),
        },
        serde_json::Value::String(s) => Value::Text(s.clone()),
        _ => return Err("a value is a list or an object where a plain value belongs".into()),
    })
}

/// Why a row cannot be what an export wrote: text too long, or an app folder that is not the
/// app's own (the folder "Remove, delete data" deletes).
fn unsound(table: &str, row: &Row) -> Option<String> {
    if row
        .values()
        .any(|v| v.as_str().is_some_and(|s| s.len() > MAX_TEXT))
    {
        return Some(format!(
            "A value in {table} is too long: the file was not made by Homelab's export."
        ));
    }
    if table == "apps" {
        let slug = row.get("slug").and_then(|v| v.as_str()).unwrap_or_default();
        let dir = row
            .get("app_dir")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        // The app's own folder under an apps folder (`/opt/homelab/apps/<slug>`): never a
        // top-level or home folder that merely ends in the slug.
        let own = dir.is_empty()
            || (dir.ends_with(&format!("/{slug}"))
                && !dir.split('/').any(|p| p == "..")
                && dir.split('/').filter(|p| !p.is_empty()).count() >= 3);
        if slug.is_empty() || !own {
            return Some(format!(
                "The app “{slug}” has the folder “{dir}”, which is not its own: the file was not made by Homelab's export."
            ));
        }
    }
    None
}

/// Writes an import in one transaction: all of it or none. Rows keep their ids (the box is
/// fresh, so none is taken), so the secrets' owners (`device:3`) still name them.
fn write_import(c: &mut Connection, import: &Import) -> Result<Result<(), String>, StoreError> {
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if let Some(why) = not_fresh(&tx)? {
        return Ok(Err(why));
    }
    if let Some(v) = import.state.settings.values().find(|v| v.len() > MAX_TEXT) {
        return Ok(Err(format!(
            "A setting in the file is {} KB long: it was not made by Homelab's export.",
            v.len() / 1024
        )));
    }
    for key in SETTINGS {
        match import.state.settings.get(*key) {
            Some(v) => tx.execute(
                "INSERT INTO settings(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, v],
            )?,
            None => tx.execute("DELETE FROM settings WHERE key = ?1", [key])?,
        };
    }
    for table in TABLES {
        let known = columns(&tx, table.name)?;
        tx.execute(&format!("DELETE FROM {}", table.name), [])?;
        if import.state.rows(table.name).len() > MAX_ROWS {
            return Ok(Err(format!(
                "The file has more than {MAX_ROWS} rows of {}: it was not made by Homelab's export.",
                table.name
            )));
        }
        for row in import.state.rows(table.name) {
            if let Some(why) = unsound(table.name, row) {
                return Ok(Err(why));
            }
            let mut names = Vec::new();
            let mut values = Vec::new();
            for (name, value) in row {
                // Only this schema's own column names reach the SQL text.
                if !known.contains(name) || table.local.contains(&name.as_str()) {
                    return Ok(Err(format!(
                        "The file names a column “{name}” in {} that this Homelab does not have.",
                        table.name
                    )));
                }
                names.push(name.as_str());
                match sql_value(value) {
                    Ok(v) => values.push(v),
                    Err(e) => return Ok(Err(format!("In {}: {e}.", table.name))),
                }
            }
            let marks = vec!["?"; names.len()].join(", ");
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({marks})",
                table.name,
                names.join(", ")
            );
            if let Err(e) = tx.execute(&sql, rusqlite::params_from_iter(values.iter())) {
                return Ok(Err(format!(
                    "A row of {} does not fit this Homelab ({e}).",
                    table.name
                )));
            }
        }
    }
    for (owner, purpose, sealed) in &import.secrets {
        if !owned_by(&import.state, owner) {
            return Ok(Err(format!(
                "The file carries a secret for “{owner}”, which it does not contain: it was not made by Homelab's export."
            )));
        }
        if !portable(owner, purpose) {
            return Ok(Err(
                "The file carries a secret that belongs to one box only (a setup code, a recovery passphrase or an HTTPS key): it was not made by Homelab's export.".into(),
            ));
        }
        tx.execute(
            "INSERT INTO secrets(owner, purpose, sealed, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(owner, purpose) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
            params![owner, purpose, sealed, now_unix()],
        )?;
    }
    tx.commit()?;
    Ok(Ok(()))
}

impl Store {
    /// The desired state now; with the columns the box fills in when `observed`.
    pub async fn desired(&self, observed: bool) -> Result<Desired, StoreError> {
        self.read(move |c| read(c, observed)).await
    }

    /// Every sealed secret another box may take over (owner, purpose, sealed by this vault).
    pub async fn portable_secrets(&self) -> Result<Vec<(String, String, Vec<u8>)>, StoreError> {
        self.read(|c| {
            let mut st =
                c.prepare("SELECT owner, purpose, sealed FROM secrets ORDER BY owner, purpose")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            let all = rows.collect::<Result<Vec<(String, String, Vec<u8>)>, _>>()?;
            Ok(all
                .into_iter()
                .filter(|(owner, purpose, _)| portable(owner, purpose))
                .collect())
        })
        .await
    }

    /// Why an import may not fill this box (`None`: it may).
    pub async fn import_refused(&self) -> Result<Option<String>, StoreError> {
        self.read(not_fresh).await
    }

    /// Writes an import (see `write_import`); the inner `Err` is why it was refused, in words.
    pub async fn import_desired(&self, import: Import) -> Result<Result<(), String>, StoreError> {
        self.call_devices(move |c| write_import(c, &import)).await
    }

    /// Takes a revision if the desired state moved since the newest one without an audit
    /// record saying so (at start: the first state, a restore, an older build's changes).
    pub async fn note_revision(
        &self,
        actor: &'static str,
        what: &'static str,
    ) -> Result<(), StoreError> {
        self.call(move |c| note_revision(c, actor, what)).await
    }

    /// The newest revisions first, at most `limit`.
    pub async fn revisions(&self, limit: i64) -> Result<Vec<Revision>, StoreError> {
        self.read(move |c| {
            let mut st =
                c.prepare("SELECT id, at, actor, what FROM revisions ORDER BY id DESC LIMIT ?1")?;
            let rows = st.query_map([limit], |r| {
                Ok(Revision {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    what: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// A revision's state, and the state of the one before it (`None` for the first kept).
    pub async fn revision_states(
        &self,
        id: i64,
    ) -> Result<Option<(Revision, Desired, Option<Desired>)>, StoreError> {
        self.read(move |c| {
            let found = c
                .query_row(
                    "SELECT id, at, actor, what, document FROM revisions WHERE id = ?1",
                    [id],
                    |r| {
                        Ok((
                            Revision {
                                id: r.get(0)?,
                                at: r.get(1)?,
                                actor: r.get(2)?,
                                what: r.get(3)?,
                            },
                            r.get::<_, String>(4)?,
                        ))
                    },
                )
                .optional()?;
            let Some((rev, doc)) = found else {
                return Ok(None);
            };
            let before: Option<String> = c
                .query_row(
                    "SELECT document FROM revisions WHERE id < ?1 ORDER BY id DESC LIMIT 1",
                    [id],
                    |r| r.get(0),
                )
                .optional()?;
            let parse = |s: &str| serde_json::from_str::<Desired>(s).map_err(std::io::Error::other);
            let before = match before {
                Some(b) => Some(parse(&b)?),
                None => None,
            };
            Ok(Some((rev, parse(&doc)?, before)))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("homelab.db")).unwrap();
        (dir, store)
    }

    /// An audit record, as an action writes one with its change.
    async fn audit(store: &Store, what: &str) {
        store
            .audit(
                "admin".into(),
                "test",
                what.into(),
                "127.0.0.1".into(),
                "r".into(),
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_revision_is_taken_only_when_the_desired_state_moved() {
        let (_d, store) = store().await;
        audit(&store, "first").await;
        let first = store.revisions(10).await.unwrap();
        assert_eq!(first.len(), 1, "the state as first seen");
        audit(&store, "nothing changed").await;
        assert_eq!(store.revisions(10).await.unwrap().len(), 1);
        // The box's own bookkeeping is not a revision.
        store
            .set_setting("recovery.last", "{}".into())
            .await
            .unwrap();
        audit(&store, "bookkeeping").await;
        assert_eq!(store.revisions(10).await.unwrap().len(), 1);
        store
            .set_setting("host_names", "nas.lan".into())
            .await
            .unwrap();
        audit(&store, "Homelab also answers to nas.lan").await;
        let revs = store.revisions(10).await.unwrap();
        assert_eq!(revs.len(), 2);
        assert_eq!(revs[0].what, "Homelab also answers to nas.lan");
        let (_, now, before) = store.revision_states(revs[0].id).await.unwrap().unwrap();
        assert_eq!(now.settings.get("host_names").unwrap(), "nas.lan");
        assert!(!before.unwrap().settings.contains_key("host_names"));
    }

    #[tokio::test]
    async fn an_import_fills_a_fresh_box_whole_or_not_at_all() {
        let (_d, store) = store().await;
        let mut state = Desired::default();
        state
            .settings
            .insert("host_names".into(), "homelab.lan".into());
        let device: Row = serde_json::from_value(serde_json::json!({
            "id": 7, "name": "Server 1", "host": "10.0.0.5", "port": 22, "username": "me",
            "host_key": "ssh-ed25519 AAAA", "docker_socket": "/var/run/docker.sock",
            "key_comment": "homelab", "created_at": 1
        }))
        .unwrap();
        state.tables.insert("devices".into(), vec![device.clone()]);
        // A row naming a column this schema lacks: refused, and nothing written.
        let mut bad = state.clone();
        let mut odd = device.clone();
        odd.insert("id; DROP TABLE users".into(), 1.into());
        bad.tables.insert("devices".into(), vec![odd]);
        let why = store
            .import_desired(Import {
                state: bad,
                secrets: vec![("device:7".into(), "ssh-key".into(), vec![1, 2])],
            })
            .await
            .unwrap()
            .unwrap_err();
        assert!(why.contains("does not have"), "{why}");
        let after = store.desired(true).await.unwrap();
        assert!(after.rows("devices").is_empty());
        assert!(!after.settings.contains_key("host_names"));
        assert!(
            store
                .secret("device:7".into(), "ssh-key")
                .await
                .unwrap()
                .is_none()
        );

        // A secret for something the file does not bring (it would wait for a device or app
        // added later), and an app whose folder is not its own (the folder "Remove, delete
        // data" deletes): refused, nothing written.
        let app: Row = serde_json::from_value(serde_json::json!({
            "slug": "jellyfin", "name": "Jellyfin", "device_id": 7, "app_dir": "/home/me"
        }))
        .unwrap();
        for (bad, secrets, words) in [
            (
                state.clone(),
                vec![("device:8".to_string(), "ssh-key".to_string(), vec![1, 2])],
                "which it does not contain",
            ),
            (
                state.clone(),
                vec![("app:jellyfin".to_string(), "API_KEY".to_string(), vec![1])],
                "which it does not contain",
            ),
            (
                {
                    let mut s = state.clone();
                    s.tables.insert("apps".into(), vec![app]);
                    s
                },
                vec![],
                "not its own",
            ),
        ] {
            let why = store
                .import_desired(Import {
                    state: bad,
                    secrets,
                })
                .await
                .unwrap()
                .unwrap_err();
            assert!(why.contains(words), "{why}");
            assert!(
                store
                    .desired(true)
                    .await
                    .unwrap()
                    .rows("devices")
                    .is_empty()
            );
        }

        store
            .import_desired(Import {
                state: state.clone(),
                secrets: vec![("device:7".into(), "ssh-key".into(), vec![1, 2])],
            })
            .await
            .unwrap()
            .unwrap();
        let after = store.desired(true).await.unwrap();
        assert_eq!(after.rows("devices"), &[device][..], "the id is kept");
        assert_eq!(after.settings.get("host_names").unwrap(), "homelab.lan");
        assert_eq!(
            store.secret("device:7".into(), "ssh-key").await.unwrap(),
            Some(vec![1, 2])
        );
        // Now it has a device: a second import is refused with the reason.
        let why = store
            .import_desired(Import {
                state,
                secrets: vec![],
            })
            .await
            .unwrap()
            .unwrap_err();
        assert!(why.contains("already has 1 device."), "{why}");

        // An app's health changing (what the box observes) is not a revision.
        store
            .call(|c| {
                c.execute(
                    "INSERT INTO apps(slug, name, device_id, version, state, settings, url, app_dir, compose, created_at, updated_at)
                     VALUES ('whoami', 'Whoami', 7, '1', 'running', '{}', '', '/opt/homelab/apps/whoami', '', 1, 1)",
                    [],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        audit(&store, "Installed Whoami").await;
        let taken = store.revisions(10).await.unwrap().len();
        store
            .set_app_state(
                "whoami".into(),
                crate::states::RunState::Failed,
                "it stopped".into(),
            )
            .await
            .unwrap();
        audit(&store, "Backed up whoami").await;
        assert_eq!(store.revisions(10).await.unwrap().len(), taken);
    }
}
