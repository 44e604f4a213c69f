//! The desired state's history and its travels: what changed between two states, in the
//! owner's words (Settings → History), the steps that take the box back to an earlier state
//! ("Revert to here": each through its normal engine, see `web/actions/history.rs`), and the
//! configuration file (`export`): the state with its secrets sealed under a passphrase.
//!
//! The state itself is read and written by `store` (`store::Desired`).

pub mod export;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::backup::schedule::Policy;
use crate::ota::auto::ChannelSettings;
use crate::store::{Desired, Row, TABLES};

/// One difference between two states.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// What part of the homelab: "Devices", "Apps", "Names", "Backups", "Settings".
    pub area: &'static str,
    /// In words: "Device “Server 1”: name “Server 1” → “NAS”".
    pub words: String,
    /// How a revert makes it so again.
    pub step: Step,
}

/// What "Revert to here" does about one change. Only changes an engine can make again without
/// losing data or needing a secret are made; the rest are said, with where to do them by hand.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A box setting set (or cleared) through its own page's action.
    Setting { key: String, value: Option<String> },
    /// An app's backup policy (`None`: it follows the default) or the default's (slug "").
    Policy {
        slug: String,
        policy: Option<Policy>,
    },
    /// A device's name and address, as the device's Edit does.
    Device {
        id: i64,
        name: String,
        host: String,
        port: u16,
    },
    /// An app's name (the label before the suffix), as its Rename does.
    AppName { slug: String, label: String },
    /// Not made by a revert: the words say what to do instead.
    ByHand(String),
}

impl Step {
    pub fn by_hand(&self) -> Option<&str> {
        match self {
            Step::ByHand(w) => Some(w),
            _ => None,
        }
    }
}

/// Settings a revert sets through their own actions; others are changed by hand.
const REVERTIBLE_SETTINGS: &[&str] = &["update.channel", "host_names", "names.suffix"];

fn setting_name(key: &str) -> &'static str {
    match key {
        "update.channel" => "Update channel",
        "host_names" => "Other names the box answers to",
        "names.suffix" => "Ending of app names",
        "names.public" => "Public domain",
        "dns.provider" => "Where app names are kept",
        "adguard.url" => "AdGuard Home address",
        "adguard.username" => "AdGuard Home login",
        "opnsense.url" => "OPNsense address",
        "opnsense.fingerprint" => "OPNsense certificate",
        "ca.root_pem" | "ca.root_name" => "The homelab's certificate authority",
        _ => "A setting",
    }
}

/// Where the owner changes a setting by hand.
fn setting_page(key: &str) -> &'static str {
    match key {
        "names.public"
        | "names.suffix"
        | "dns.provider"
        | "adguard.url"
        | "adguard.username"
        | "opnsense.url"
        | "opnsense.fingerprint" => "Network",
        "update.channel" => "Updates",
        _ => "Settings",
    }
}

fn short(v: &str) -> String {
    let one_line = v.replace('\n', ", ");
    if one_line.chars().count() > 60 {
        format!("{}…", one_line.chars().take(59).collect::<String>())
    } else {
        one_line
    }
}

fn setting_words(key: &str, value: Option<&str>) -> String {
    match (key, value) {
        ("update.channel", None | Some("")) => "off".into(),
        (_, None) | (_, Some("")) => "none".into(),
        ("update.channel", Some(v)) => match serde_json::from_str::<ChannelSettings>(v) {
            Ok(s) => match (s.url, s.window) {
                (None, _) => "off".into(),
                (Some(u), None) => format!("{} (updates by hand)", short(u.as_str())),
                (Some(u), Some(w)) => format!("{} ({})", short(u.as_str()), w.describe()),
            },
            Err(_) => "(unreadable)".into(),
        },
        ("ca.root_pem", Some(_)) => "a certificate".into(),
        (_, Some(v)) => format!("“{}”", short(v)),
    }
}

fn text<'a>(row: &'a Row, col: &str) -> &'a str {
    row.get(col).and_then(Value::as_str).unwrap_or("")
}

fn int(row: &Row, col: &str) -> i64 {
    row.get(col).and_then(Value::as_i64).unwrap_or(0)
}

fn value_words(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "none".into(),
        Some(Value::String(s)) if s.is_empty() => "none".into(),
        Some(Value::String(s)) => format!("“{}”", short(s)),
        Some(other) => other.to_string(),
    }
}

/// The key of a row, as a string that tells rows apart.
fn key_of(table: &str, row: &Row) -> String {
    let key = TABLES
        .iter()
        .find(|t| t.name == table)
        .map(|t| t.key)
        .unwrap_or(&[]);
    key.iter()
        .map(|k| row.get(*k).map(Value::to_string).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("/")
}

fn by_key<'a>(table: &str, rows: &'a [Row]) -> BTreeMap<String, &'a Row> {
    rows.iter().map(|r| (key_of(table, r), r)).collect()
}

/// How a row is named to the owner.
fn subject(table: &str, row: &Row, devices: &BTreeMap<i64, String>) -> String {
    match table {
        "devices" => format!("Device “{}”", text(row, "name")),
        "apps" => format!("App “{}”", text(row, "name")),
        "app_names" => format!("The name of {}", text(row, "slug")),
        "shared_databases" => format!(
            "The shared {} database of {} on {}",
            text(row, "engine"),
            text(row, "slug"),
            devices
                .get(&int(row, "device_id"))
                .cloned()
                .unwrap_or_else(|| "a removed device".into())
        ),
        "backup_destinations" => format!("Backup destination “{}”", text(row, "name")),
        _ => table.into(),
    }
}

fn area(table: &str) -> &'static str {
    match table {
        "devices" => "Devices",
        "apps" | "shared_databases" => "Apps",
        "app_names" => "Names",
        _ => "Backups",
    }
}

fn policy_of(row: &Row) -> Policy {
    let n = |c: &str| u32::try_from(int(row, c)).unwrap_or(0);
    Policy {
        schedule: text(row, "schedule").to_string(),
        keep_within_days: n("keep_within_days"),
        keep_hourly: n("keep_hourly"),
        keep_daily: n("keep_daily"),
        keep_weekly: n("keep_weekly"),
        keep_monthly: n("keep_monthly"),
    }
}

/// The step that makes a changed or removed row of `to` so again (`to_row` None: the row
/// is not in `to`).
fn row_step(table: &str, from_row: Option<&Row>, to_row: Option<&Row>) -> Step {
    // A device edit and an app rename set only their own fields: another difference (a
    // device's pinned identity, where a name lives) is not made by them, so it is not offered.
    let differs = |cols: &[&str]| {
        from_row
            .is_some_and(|f| to_row.is_some_and(|t| cols.iter().any(|c| f.get(*c) != t.get(*c))))
    };
    match (table, from_row, to_row) {
        ("devices", Some(_), Some(_)) if !differs(&["name", "host", "port"]) => Step::ByHand(
            "Open the device's page under Devices: this is not something a revert sets.".into(),
        ),
        ("app_names", Some(_), Some(_)) if !differs(&["name"]) => Step::ByHand(
            "This follows the app's other changes (where it runs, its certificate).".into(),
        ),
        ("devices", Some(_), Some(r)) => Step::Device {
            id: int(r, "id"),
            name: text(r, "name").to_string(),
            host: text(r, "host").to_string(),
            port: u16::try_from(int(r, "port")).unwrap_or(22),
        },
        ("app_names", Some(_), Some(r)) => Step::AppName {
            slug: text(r, "slug").to_string(),
            label: text(r, "name")
                .split('.')
                .next()
                .unwrap_or_default()
                .to_string(),
        },
        ("devices", Some(_), None) => {
            Step::ByHand("Remove the device on its page if you no longer want it.".into())
        }
        ("devices", None, Some(_)) => {
            Step::ByHand("Add the device again (Devices → Add a device).".into())
        }
        ("apps", Some(_), None) => Step::ByHand(
            "Remove the app on its page if you no longer want it (its data can be kept).".into(),
        ),
        ("apps", None, Some(_)) => Step::ByHand(
            "Install the app again from the catalog; restore its data from a backup.".into(),
        ),
        ("apps", Some(_), Some(_)) => {
            Step::ByHand("Change it on the app's page (Move to another device, or Update).".into())
        }
        ("backup_destinations", _, _) => {
            Step::ByHand("Change backup destinations in Backups.".into())
        }
        _ => Step::ByHand("This follows the app's other changes.".into()),
    }
}

/// Every difference from `from` to `to`, each with the step that makes `to` so again.
pub fn changes(from: &Desired, to: &Desired) -> Vec<Change> {
    let mut out = Vec::new();
    let mut keys: Vec<&String> = from.settings.keys().chain(to.settings.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (a, b) = (from.settings.get(key), to.settings.get(key));
        if a == b || key == "ca.root_name" {
            continue;
        }
        let step = if REVERTIBLE_SETTINGS.contains(&key.as_str()) {
            Step::Setting {
                key: key.clone(),
                value: b.cloned(),
            }
        } else {
            Step::ByHand(format!("Change it in {}.", setting_page(key)))
        };
        out.push(Change {
            area: "Settings",
            words: format!(
                "{}: {} → {}",
                setting_name(key),
                setting_words(key, a.map(String::as_str)),
                setting_words(key, b.map(String::as_str))
            ),
            step,
        });
    }
    // Device names by id, from both states, so a row of a removed device still reads well.
    let mut devices = BTreeMap::new();
    for state in [from, to] {
        for d in state.rows("devices") {
            devices.insert(int(d, "id"), text(d, "name").to_string());
        }
    }
    policy_changes(from, to, &mut out);
    for table in TABLES {
        if table.name == "backup_policies" {
            continue;
        }
        let (a, b) = (
            by_key(table.name, from.rows(table.name)),
            by_key(table.name, to.rows(table.name)),
        );
        for (key, row) in &a {
            if !b.contains_key(key) {
                out.push(Change {
                    area: area(table.name),
                    words: format!("{}: removed", subject(table.name, row, &devices)),
                    step: row_step(table.name, Some(row), None),
                });
            }
        }
        for (key, row) in &b {
            let Some(before) = a.get(key) else {
                let place = match table.name {
                    "apps" => format!(
                        " on {}",
                        devices
                            .get(&int(row, "device_id"))
                            .cloned()
                            .unwrap_or_default()
                    ),
                    _ => String::new(),
                };
                out.push(Change {
                    area: area(table.name),
                    words: format!("{}: added{place}", subject(table.name, row, &devices)),
                    step: row_step(table.name, None, Some(row)),
                });
                continue;
            };
            // Columns on both sides only: one a later Homelab added is not a change the
            // owner made (an old revision simply predates it).
            let cols: Vec<&String> = before.keys().filter(|c| row.contains_key(*c)).collect();
            let mut what = Vec::new();
            for col in cols {
                if table.observed.contains(&col.as_str()) {
                    continue;
                }
                let (x, y) = (before.get(col), row.get(col));
                if x == y {
                    continue;
                }
                what.push(match (table.name, col.as_str()) {
                    ("apps", "device_id") => format!(
                        "moved from {} to {}",
                        devices.get(&int(before, col)).cloned().unwrap_or_default(),
                        devices.get(&int(row, col)).cloned().unwrap_or_default()
                    ),
                    ("apps", "settings") => "its settings changed".into(),
                    ("devices", "host_key") => "its identity key changed".into(),
                    (_, col) => format!(
                        "{} {} → {}",
                        col.replace('_', " "),
                        value_words(x),
                        value_words(y)
                    ),
                });
            }
            if !what.is_empty() {
                out.push(Change {
                    area: area(table.name),
                    words: format!(
                        "{}: {}",
                        subject(table.name, before, &devices),
                        what.join("; ")
                    ),
                    step: row_step(table.name, Some(before), Some(row)),
                });
            }
        }
    }
    out
}

/// Each app's own backup policy and the default's, as they apply: the default is the
/// built-in one until the owner first changes it (no row), an app without a row follows it.
fn policies(state: &Desired) -> BTreeMap<String, Policy> {
    let mut all: BTreeMap<String, Policy> = state
        .rows("backup_policies")
        .iter()
        .map(|r| (text(r, "slug").to_string(), policy_of(r)))
        .collect();
    all.entry(String::new()).or_default();
    all
}

fn policy_words(p: Option<&Policy>) -> String {
    match p {
        None => "the default schedule".into(),
        Some(p) => format!(
            "{} (keeps {} daily, {} weekly, {} monthly)",
            p.words(),
            p.keep_daily,
            p.keep_weekly,
            p.keep_monthly
        ),
    }
}

fn policy_changes(from: &Desired, to: &Desired, out: &mut Vec<Change>) {
    let (a, b) = (policies(from), policies(to));
    let mut slugs: Vec<&String> = a.keys().chain(b.keys()).collect();
    slugs.sort();
    slugs.dedup();
    for slug in slugs {
        let (x, y) = (a.get(slug), b.get(slug));
        if x == y {
            continue;
        }
        let whose = if slug.is_empty() {
            "The default backup schedule".to_string()
        } else {
            format!("The backup schedule of {slug}")
        };
        out.push(Change {
            area: "Backups",
            words: format!("{whose}: {} → {}", policy_words(x), policy_words(y)),
            step: Step::Policy {
                slug: slug.clone(),
                policy: y.cloned(),
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(v: serde_json::Value) -> Row {
        serde_json::from_value(v).unwrap()
    }

    fn state() -> Desired {
        let mut s = Desired::default();
        s.settings.insert("host_names".into(), "nas.lan".into());
        s.settings
            .insert("names.public".into(), "example.org".into());
        s.tables.insert(
            "devices".into(),
            vec![row(
                serde_json::json!({"id": 1, "name": "Server 1", "host": "10.0.0.5", "port": 22, "host_key": "ssh-ed25519 AAAA"}),
            )],
        );
        s.tables.insert(
            "apps".into(),
            vec![row(serde_json::json!({"slug": "vaultwarden", "name": "Vaultwarden", "device_id": 1, "settings": "{}"}))],
        );
        s.tables.insert(
            "backup_policies".into(),
            vec![row(serde_json::json!({"slug": "", "schedule": "0 2 * * *", "keep_within_days": 2, "keep_hourly": 0, "keep_daily": 7, "keep_weekly": 4, "keep_monthly": 6}))],
        );
        s
    }

    #[test]
    fn the_same_state_has_no_changes() {
        assert!(changes(&state(), &state()).is_empty());
    }

    #[test]
    fn changes_are_in_words_with_the_step_that_undoes_them() {
        let old = state();
        let mut new = state();
        new.settings
            .insert("host_names".into(), "nas.lan\nbox.lan".into());
        new.settings.remove("names.public");
        new.tables.get_mut("devices").unwrap()[0].insert("name".into(), "NAS".into());
        new.tables.get_mut("backup_policies").unwrap()[0].insert("schedule".into(), "off".into());
        new.tables.get_mut("apps").unwrap().push(row(
            serde_json::json!({"slug": "jellyfin", "name": "Jellyfin", "device_id": 1}),
        ));
        // From the new state back to the old: what a revert to `old` does.
        let back = changes(&new, &old);
        let words: Vec<&str> = back.iter().map(|c| c.words.as_str()).collect();
        assert!(
            words.contains(&"Other names the box answers to: “nas.lan, box.lan” → “nas.lan”"),
            "{words:?}"
        );
        assert!(
            words.contains(&"Public domain: none → “example.org”"),
            "{words:?}"
        );
        assert!(
            words.contains(&"Device “NAS”: name “NAS” → “Server 1”"),
            "{words:?}"
        );
        assert!(words.contains(&"App “Jellyfin”: removed"), "{words:?}");
        let step = |w: &str| &back.iter().find(|c| c.words.starts_with(w)).unwrap().step;
        assert_eq!(
            step("Other names"),
            &Step::Setting {
                key: "host_names".into(),
                value: Some("nas.lan".into())
            }
        );
        assert!(step("Public domain").by_hand().unwrap().contains("Network"));
        assert_eq!(
            step("Device"),
            &Step::Device {
                id: 1,
                name: "Server 1".into(),
                host: "10.0.0.5".into(),
                port: 22
            }
        );
        match step("The default backup schedule") {
            Step::Policy { slug, policy } => {
                assert_eq!(slug, "");
                assert_eq!(policy.as_ref().unwrap().schedule, "0 2 * * *");
            }
            other => panic!("{other:?}"),
        }
        // An app added since is never removed by a revert: its data would go with it.
        assert!(step("App “Jellyfin”").by_hand().is_some());

        // A device that differs only in what its edit does not set (its pinned identity) is
        // not offered as an edit: the revert could not make it so.
        let mut rekeyed = state();
        rekeyed.tables.get_mut("devices").unwrap()[0]
            .insert("host_key".into(), "ssh-ed25519 BBBB".into());
        let back = changes(&rekeyed, &state());
        assert_eq!(back.len(), 1, "{back:?}");
        assert!(back[0].step.by_hand().is_some(), "{back:?}");

        // A column only one side has (added by a later Homelab) is not a change.
        let mut newer = state();
        newer.tables.get_mut("devices").unwrap()[0].insert("labels".into(), "".into());
        assert!(changes(&state(), &newer).is_empty());
    }
}
