//! What a deploy writes: the values of a recipe's variables (user settings checked by kind,
//! generated secrets) and the env file that carries them to Compose.
//!
//! The env file is not a Compose `.env` file. Compose v1 and v2 parse `.env` differently
//! (quotes, `$`, `#`, newlines), so values could not survive both exactly. Instead every line
//! is `NAME='value'` quoted for a POSIX shell, and our fixed compose script sources it with
//! `set -a`: the shell reads each value back byte for byte (newlines included) and exports it,
//! and Compose interpolates `${NAME}` from its own environment, which both versions do
//! literally. Nothing in a value is ever executed or re-interpolated.

use std::collections::BTreeMap;

use crate::catalog::Recipe;
use crate::ssh::command::quote;

/// Characters generated secrets are made of: letters and digits are safe in every app's
/// config syntax (URLs, connection strings) while 62^length stays far beyond guessing.
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Checks the user's settings against the recipe and fills in defaults. Unknown names are
/// refused so a typo does not silently deploy with the default.
pub fn settings(
    recipe: &Recipe,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let m = &recipe.manifest;
    if let Some(unknown) = given
        .keys()
        .find(|k| !m.settings.iter().any(|s| &s.name == *k))
    {
        let known: Vec<&str> = m.settings.iter().map(|s| s.name.as_str()).collect();
        return Err(format!(
            "{} has no setting “{}” (its settings: {}).",
            m.name,
            crate::limits::truncate(unknown, crate::limits::WORD),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ));
    }
    let mut out = BTreeMap::new();
    for s in &m.settings {
        let v = given.get(&s.name).unwrap_or(&s.default).clone();
        let bad = |why: &str| Err(format!("“{}”: {why}", s.label));
        let max = crate::limits::SETTING_VALUE;
        if v.chars().count() > max {
            return bad(&format!(
                "is {} characters long; at most {max} are accepted. Shorten it and try again.",
                v.chars().count()
            ));
        }
        if v.contains('\0') {
            return bad("contains a NUL character, which no program can receive.");
        }
        match s.kind.as_str() {
            "port" => match v.trim().parse::<u16>() {
                Ok(p) if p > 0 => {
                    out.insert(s.name.clone(), p.to_string());
                    continue;
                }
                _ => return bad("must be a port number from 1 to 65535."),
            },
            "bool" if v != "true" && v != "false" => return bad("must be true or false."),
            "path" if !v.starts_with('/') => {
                return bad("must be a full path starting with / (for example /srv/media).");
            }
            _ => {}
        }
        out.insert(s.name.clone(), v);
    }
    // A folder setting may be where a bind mount comes from: the chosen folder must not be the
    // device's root, a system folder or the Docker socket, as with the recipe's defaults.
    let mut filled = recipe.default_values();
    filled.extend(out.iter().map(|(k, v)| (k.clone(), v.clone())));
    recipe.check_mounts(&filled)?;
    Ok(out)
}

/// Cost of the bcrypt hashes apps receive: the library's default, which the apps' own tools
/// use too.
const BCRYPT_COST: u32 = 12;

/// The form of a secret an app receives (`catalog::SecretForm`); slow for the hashes.
pub fn hash_secret(
    form: crate::catalog::SecretForm,
    secret: &crate::secrets::Secret,
) -> Result<String, String> {
    use crate::catalog::SecretForm;
    match form {
        SecretForm::Plain => Ok(secret.expose_str().unwrap_or_default().to_string()),
        SecretForm::Argon2 => crate::auth::password::hash(secret),
        SecretForm::Bcrypt => {
            bcrypt::hash_with_salt(secret.expose(), BCRYPT_COST, crate::secrets::random_bytes())
                .map(|h| h.format_for_version(bcrypt::Version::TwoB))
                .map_err(|e| e.to_string())
        }
    }
}

/// A new random secret of `len` characters.
pub fn generate_secret(len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        // Rejection sampling keeps every character equally likely (256 is not a multiple of 62).
        for b in crate::secrets::random_bytes::<64>() {
            let limit = 256 - 256 % SECRET_ALPHABET.len();
            if (b as usize) < limit && out.len() < len {
                out.push(SECRET_ALPHABET[b as usize % SECRET_ALPHABET.len()] as char);
            }
        }
    }
    out
}

/// The box variables (`catalog::BOX_VARIABLES`) for an app on a device reached at `host`,
/// whose IP address is `ip`, with `values` (settings and secrets) already settled: the web
/// port is read from the recipe with them filled in.
pub fn box_values(
    recipe: &Recipe,
    host: &str,
    ip: &str,
    values: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut filled = values.clone();
    filled.insert("HOMELAB_DEVICE_IP".into(), ip.to_string());
    filled.insert("HOMELAB_TZ".into(), time_zone());
    // The port may be published on the device's address, so it is read with the IP known.
    let port = web_port(recipe, &filled);
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let scheme = &recipe.manifest.web.scheme;
    let url = match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    };
    let mut out = BTreeMap::new();
    out.insert("HOMELAB_DEVICE_IP".into(), ip.to_string());
    out.insert("HOMELAB_TZ".into(), time_zone());
    out.insert(
        "HOMELAB_APP_PORT".into(),
        port.map(|p| p.to_string()).unwrap_or_default(),
    );
    out.insert(
        "HOMELAB_APP_ADDRESS".into(),
        match port {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        },
    );
    out.insert("HOMELAB_APP_HOST".into(), host);
    out.insert("HOMELAB_APP_URL".into(), url);
    out
}

/// The box variables of an app reached by its name through Homelab's proxy: the name is its
/// host, over HTTPS on the standard port.
pub fn named_values(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("HOMELAB_APP_HOST".to_string(), name.to_string()),
        ("HOMELAB_APP_PORT".to_string(), "443".to_string()),
        ("HOMELAB_APP_URL".to_string(), format!("https://{name}")),
    ])
}

/// The box's time zone as a zone name (`Europe/Berlin`): `TZ`, else `/etc/timezone`, else where
/// `/etc/localtime` links to; `Etc/UTC` when none says. Only a plain zone name is passed on.
pub fn time_zone() -> String {
    let from_link = || {
        let target = std::fs::read_link("/etc/localtime").ok()?;
        let target = target.to_string_lossy().to_string();
        target
            .split_once("zoneinfo/")
            .map(|(_, zone)| zone.to_string())
    };
    let zone = std::env::var("TZ")
        .ok()
        .map(|z| z.trim_start_matches(':').to_string())
        .or_else(|| {
            std::fs::read_to_string("/etc/timezone")
                .ok()
                .map(|z| z.trim().to_string())
        })
        .or_else(from_link)
        .unwrap_or_default();
    // The same zones under zoneinfo's posix/ and right/ folders have their plain names.
    let zone = zone
        .strip_prefix("posix/")
        .or_else(|| zone.strip_prefix("right/"))
        .unwrap_or(&zone)
        .to_string();
    let zoneinfo = std::path::Path::new("/usr/share/zoneinfo");
    if zone_name(&zone) && (!zoneinfo.is_dir() || zoneinfo.join(&zone).is_file()) {
        zone
    } else {
        "Etc/UTC".into()
    }
}

/// Whether `zone` reads as a zone name apps know (`Europe/Berlin`, `UTC`, `Etc/GMT+1`), not a
/// POSIX rule (`CET-1CEST`, `UTC0`) that Paperless and others refuse: letters first, digits only
/// after a slash.
fn zone_name(zone: &str) -> bool {
    let mut parts = zone.split('/');
    let first = parts.next().unwrap_or_default();
    !zone.is_empty()
        && zone.len() <= 64
        && !zone.contains("..")
        && first.starts_with(|c: char| c.is_ascii_uppercase())
        && first
            .chars()
            .all(|c| c.is_ascii_alphabetic() || "_+-".contains(c))
        && parts.all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c))
        })
}

/// The env file: one `NAME='value'` line per variable, shell-quoted.
pub fn env_file(values: &BTreeMap<String, String>) -> String {
    let mut out = String::from(
        "# Written by Homelab. Values are shell-quoted; read with `set -a; . ./app.env`.\n",
    );
    for (k, v) in values {
        out.push_str(k);
        out.push('=');
        // Always quoted, even when plain: the file must never depend on the allowlist.
        if v.is_empty() || quote(v) == *v {
            out.push('\'');
            out.push_str(v);
            out.push('\'');
        } else {
            out.push_str(&quote(v));
        }
        out.push('\n');
    }
    out
}

/// The device port the app's web entry is published on, with these values.
/// The port setting Homelab may move to a free port when its default is taken on the chosen
/// device: the one that publishes the app's web page, when the owner left it at its default
/// (not sent, as Basic mode's form does, or sent unchanged, as Advanced mode's does). Ports
/// whose number is their meaning (DNS on 53, a proxy on 80 and 443) are never moved, and an
/// app on the host's network cannot move any.
pub fn movable_port(recipe: &Recipe, given: &BTreeMap<String, String>) -> Option<String> {
    // Box variables take example values: a port published on the device's address moves too.
    let mut defaults = crate::catalog::example_box_values();
    defaults.extend(settings(recipe, &BTreeMap::new()).ok()?);
    // The setting whose value becomes the web page's host port.
    const PROBE: &str = "65001";
    let s = recipe
        .manifest
        .settings
        .iter()
        .filter(|s| s.kind == "port")
        .find(|s| {
            let mut v = defaults.clone();
            v.insert(s.name.clone(), PROBE.into());
            web_port(recipe, &v) == PROBE.parse().ok()
        })?;
    let left_alone = given
        .get(&s.name)
        .is_none_or(|v| v.trim() == s.default.trim());
    left_alone.then(|| s.name.clone())
}

pub fn web_port(recipe: &Recipe, values: &BTreeMap<String, String>) -> Option<u16> {
    recipe.web_port(values)
}

/// Every image the app uses, with variables filled in.
/// The services Compose does not start with these values: as Compose does, a service under
/// profiles runs only when one of them is active (`COMPOSE_PROFILES`). A pooled app's own
/// database is one: its image is not needed, and a container of it left from before (a move
/// to the shared database) is not part of the app.
pub fn inactive_services(recipe: &Recipe, values: &BTreeMap<String, String>) -> Vec<String> {
    let active: Vec<&str> = values
        .get("COMPOSE_PROFILES")
        .map(|p| p.split(',').map(str::trim).collect())
        .unwrap_or_default();
    recipe
        .compose
        .services
        .0
        .iter()
        .filter(|(_, s)| {
            s.as_ref().is_some_and(|s| {
                !s.profiles.is_empty() && !s.profiles.iter().any(|p| active.contains(&p.as_str()))
            })
        })
        .map(|(name, _)| name.clone())
        .collect()
}

pub fn images(recipe: &Recipe, values: &BTreeMap<String, String>) -> Vec<String> {
    let inactive = inactive_services(recipe, values);
    let mut out: Vec<String> = recipe
        .compose
        .services
        .0
        .iter()
        .filter(|(name, _)| !inactive.contains(name))
        .filter_map(|(_, s)| s.as_ref())
        .filter_map(|s| s.image.as_deref())
        .filter_map(|i| crate::catalog::interpolate(i, values).ok())
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_quotes_everything() {
        let v = BTreeMap::from([
            ("A".to_string(), "plain".to_string()),
            (
                "B".to_string(),
                "it's $HOME #x\nline2 \"q\" `id`".to_string(),
            ),
            ("C".to_string(), String::new()),
        ]);
        let f = env_file(&v);
        assert!(f.contains("A='plain'\n"));
        assert!(f.contains("B='it'\\''s $HOME #x\nline2 \"q\" `id`'\n"));
        assert!(f.contains("C=''\n"));
    }

    /// Only the web page's port moves, and only when the owner left it alone.
    #[test]
    fn only_a_web_port_left_alone_may_move() {
        let catalog = crate::catalog::Catalog::load(None);
        let recipe = |slug: &str| catalog.recipes.get(slug).expect("a built-in recipe");
        let given = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let cases: [(&str, BTreeMap<String, String>, Option<&str>); 6] = [
            ("vaultwarden", given(&[]), Some("HTTP_PORT")),
            // The Advanced form sends the default back unchanged: still left alone.
            (
                "vaultwarden",
                given(&[("HTTP_PORT", "8222")]),
                Some("HTTP_PORT"),
            ),
            ("vaultwarden", given(&[("HTTP_PORT", "18222")]), None),
            // DNS answers on 53 or not at all: never moved; the web page's port may.
            ("adguard-home", given(&[]), Some("HTTP_PORT")),
            // A proxy's 80 and 443 mean something; its admin page's port does not.
            ("nginx-proxy-manager", given(&[]), Some("ADMIN_PORT")),
            // On the host's network nothing can be remapped.
            ("home-assistant", given(&[]), None),
        ];
        for (slug, given, movable) in cases {
            assert_eq!(
                movable_port(recipe(slug), &given).as_deref(),
                movable,
                "{slug} {given:?}"
            );
        }
    }

    #[test]
    fn a_chosen_folder_may_not_be_a_system_folder() {
        let catalog = crate::catalog::Catalog::load(None);
        let Some(jellyfin) = catalog.recipes.get("jellyfin") else {
            panic!("the built-in Jellyfin recipe");
        };
        let with = |media: &str| {
            settings(
                jellyfin,
                &BTreeMap::from([("MEDIA_PATH".to_string(), media.to_string())]),
            )
        };
        assert!(with("/srv/media").is_ok());
        for bad in ["/", "/etc", "/srv/../root"] {
            let Err(e) = with(bad) else {
                panic!("{bad} accepted as the media folder");
            };
            assert!(
                e.contains(bad) && e.contains("services.jellyfin.volumes"),
                "{e}"
            );
        }
    }

    /// The box tells an app where it lives: the port is read with the settings chosen (a moved
    /// port included), the address as a browser writes it.
    #[test]
    fn box_values_say_where_the_app_lives() {
        let catalog = crate::catalog::Catalog::load(None);
        let Some(vw) = catalog.recipes.get("vaultwarden") else {
            panic!("the built-in Vaultwarden recipe");
        };
        let settings =
            settings(vw, &BTreeMap::from([("HTTP_PORT".into(), "18222".into())])).unwrap();
        let v = box_values(vw, "10.0.0.5", "10.0.0.5", &settings);
        assert_eq!(v["HOMELAB_DEVICE_IP"], "10.0.0.5");
        assert_eq!(v["HOMELAB_APP_PORT"], "18222");
        assert_eq!(v["HOMELAB_APP_HOST"], "10.0.0.5");
        assert_eq!(v["HOMELAB_APP_URL"], "http://10.0.0.5:18222");
        assert!(!v["HOMELAB_TZ"].is_empty());
        // A device known by name keeps its name in the address; an IPv6 one is bracketed.
        let named = box_values(vw, "nas.lan", "192.168.1.4", &settings);
        assert_eq!(named["HOMELAB_APP_URL"], "http://nas.lan:18222");
        assert_eq!(named["HOMELAB_DEVICE_IP"], "192.168.1.4");
        let v6 = box_values(vw, "fd00::4", "fd00::4", &settings);
        assert_eq!(v6["HOMELAB_APP_URL"], "http://[fd00::4]:18222");
        // Every box variable is filled, and only those.
        let names: Vec<&str> = crate::catalog::BOX_VARIABLES
            .iter()
            .map(|(n, _)| *n)
            .collect();
        let mut filled: Vec<&str> = v.keys().map(String::as_str).collect();
        filled.sort_unstable();
        let mut expected = names.clone();
        expected.sort_unstable();
        assert_eq!(filled, expected);
    }

    /// Each hashed form verifies the secret with the algorithm the apps use.
    #[test]
    fn hashed_secrets_verify() {
        use crate::catalog::SecretForm;
        let secret = crate::secrets::Secret::from_string(generate_secret(20));
        let b = hash_secret(SecretForm::Bcrypt, &secret).unwrap();
        assert!(b.starts_with("$2b$12$"), "{b}");
        assert!(bcrypt::verify(secret.expose(), &b).unwrap());
        let a = hash_secret(SecretForm::Argon2, &secret).unwrap();
        assert!(crate::auth::password::verify(&secret, &a));
        assert_eq!(
            hash_secret(SecretForm::Plain, &secret).unwrap().as_bytes(),
            secret.expose()
        );
    }

    #[test]
    fn only_zone_names_are_passed_on() {
        for good in [
            "Europe/Berlin",
            "UTC",
            "Etc/GMT+1",
            "America/Argentina/Buenos_Aires",
        ] {
            assert!(zone_name(good), "{good}");
        }
        for bad in [
            "",
            "CET-1CEST",
            "UTC0",
            "/etc/x",
            "Europe/../x",
            "europe/berlin",
            "A//B",
        ] {
            assert!(!zone_name(bad), "{bad}");
        }
    }

    #[test]
    fn secrets_are_random_and_sized() {
        let a = generate_secret(48);
        let b = generate_secret(48);
        assert_eq!(a.len(), 48);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| SECRET_ALPHABET.contains(&c)));
    }
}
