//! Shared databases: on each device, at most one PostgreSQL and one MariaDB that Homelab runs
//! for the apps there (its own infrastructure, never in the catalog), and inside it a private
//! database and login for each app. This module knows the engines: their pinned images, the
//! instance's Compose file sized to the device, the override that lets an app reach it, the
//! names of databases and logins, whether a recipe can use the pool (and why not), and the
//! RAM that sharing saves. The SQL it runs is in `sql.rs`; the deploy engine
//! (`deploy/pooling.rs`) runs the steps.

pub mod sql;

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::Recipe;

pub use crate::catalog::OWN_DATABASE_PROFILE;

/// The superuser password's file in the instance's folder (private to the device login),
/// mounted read-only into the container; apps never see it (each has its own login).
pub const SUPERUSER_FILE: &str = "superuser";
/// Where the superuser password file appears inside the container.
const SUPERUSER_IN_CONTAINER: &str = "/run/homelab/superuser";

/// An app's state message when the shared database it uses has stopped (its page offers
/// "Restart the shared database").
pub fn stopped_message(engine: Engine) -> String {
    format!(
        "Needs attention: the shared {} it keeps its data in has stopped.",
        engine.words()
    )
}

/// The database engines Homelab shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Postgres,
    Mariadb,
}

impl Engine {
    pub const ALL: [Engine; 2] = [Engine::Postgres, Engine::Mariadb];

    pub fn parse(s: &str) -> Option<Engine> {
        match s {
            "postgres" => Some(Engine::Postgres),
            "mariadb" => Some(Engine::Mariadb),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mariadb => "mariadb",
        }
    }

    /// The product's name, as the owner knows it.
    pub fn words(self) -> &'static str {
        match self {
            Engine::Postgres => "PostgreSQL",
            Engine::Mariadb => "MariaDB",
        }
    }

    /// The official image, pinned to a major line: patch releases are drop-in, a new major
    /// needs its data converted, so it is never taken silently. PostgreSQL 15 and MariaDB
    /// 10.11 are supported upstream and are what the lab runs from Debian's own packages, so
    /// the tests exercise the server the owner gets.
    pub fn image(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres:15-bookworm",
            Engine::Mariadb => "mariadb:10.11",
        }
    }

    /// The Compose project, its one service's container, and the name apps use to reach it
    /// on its network (one per device and engine, so fixed names are unique there).
    pub fn project(self) -> &'static str {
        match self {
            Engine::Postgres => "homelab-postgres",
            Engine::Mariadb => "homelab-mariadb",
        }
    }

    /// The Docker network the instance listens on (and nothing else: no port is published).
    pub fn network(self) -> &'static str {
        match self {
            Engine::Postgres => "homelab-db-postgres",
            Engine::Mariadb => "homelab-db-mariadb",
        }
    }

    /// The named volume that holds the instance's data (named, so that Compose never
    /// removes it as a side effect of taking the containers down).
    pub fn volume(self) -> &'static str {
        match self {
            Engine::Postgres => "homelab-postgres-data",
            Engine::Mariadb => "homelab-mariadb-data",
        }
    }

    pub fn port(self) -> u16 {
        match self {
            Engine::Postgres => 5432,
            Engine::Mariadb => 3306,
        }
    }

    /// The extensions the pinned image can create in an app's database. The official
    /// PostgreSQL image ships the server's contrib modules; vector search (pgvector,
    /// VectorChord, pgvecto.rs) is not among them.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Engine::Postgres => &[
                "btree_gin",
                "btree_gist",
                "citext",
                "cube",
                "earthdistance",
                "fuzzystrmatch",
                "hstore",
                "pg_trgm",
                "pgcrypto",
                "unaccent",
                "uuid-ossp",
            ],
            Engine::Mariadb => &[],
        }
    }

    /// The folder of the instance's files on the device, beside the apps' folder (as the
    /// proxy's is).
    pub fn dir(self, apps_dir: &str) -> String {
        let apps = apps_dir.trim_end_matches('/');
        match apps.rsplit_once('/') {
            Some((parent, _)) if !parent.is_empty() => format!("{parent}/shared-{}", self.as_str()),
            _ => format!("{apps}/.shared-{}", self.as_str()),
        }
    }

    /// The vault owner of the instance's superuser password on a device.
    pub fn secret_owner(self, device_id: i64) -> String {
        format!("pool:{device_id}:{}", self.as_str())
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.words())
    }
}

/// The server's memory settings for a device with `ram_mb` of RAM: small on a Pi, more on a
/// big server, never more than a slice of the device, since the apps need the rest.
pub fn server_args(engine: Engine, ram_mb: i64) -> Vec<String> {
    let ram = ram_mb.max(512);
    match engine {
        Engine::Postgres => {
            // PostgreSQL's own guidance is a quarter of RAM on a database server; here the
            // database shares the device with the apps, so 1/32 (16–256 MB).
            let shared = (ram / 32).clamp(16, 256);
            let cache = (ram / 8).clamp(64, 2048);
            vec![
                "postgres".into(),
                "-c".into(),
                format!("shared_buffers={shared}MB"),
                "-c".into(),
                format!("effective_cache_size={cache}MB"),
                "-c".into(),
                "max_connections=100".into(),
                // A failing statement is logged with its text by default, and the statement
                // that sets a login's password carries it: such text is never logged.
                "-c".into(),
                "log_min_error_statement=panic".into(),
            ]
        }
        Engine::Mariadb => {
            // The buffer pool is MariaDB's main cost: 1/16 of RAM (32–512 MB).
            let pool = (ram / 16).clamp(32, 512);
            vec![
                "mariadbd".into(),
                format!("--innodb-buffer-pool-size={pool}M"),
                "--max-connections=100".into(),
                // What Nextcloud asks of its MariaDB (its admin manual), harmless for others.
                "--transaction-isolation=READ-COMMITTED".into(),
                "--binlog-format=ROW".into(),
                "--character-set-server=utf8mb4".into(),
                "--collation-server=utf8mb4_general_ci".into(),
                "--skip-name-resolve".into(),
            ]
        }
    }
}

/// The instance's Compose file: the pinned image, its data volume, the superuser password as
/// a read-only file, its own network and no published port, restarted with the device, and
/// logs bounded (devices boot from SD cards too).
pub fn compose(engine: Engine, dir: &str, ram_mb: i64) -> String {
    let q = |s: &str| Value::String(s.to_string()).to_string();
    let dir = dir.trim_end_matches('/');
    let args: Vec<String> = server_args(engine, ram_mb).iter().map(|a| q(a)).collect();
    let (password_env, data) = match engine {
        Engine::Postgres => ("POSTGRES_PASSWORD_FILE", "/var/lib/postgresql/data"),
        Engine::Mariadb => ("MARIADB_ROOT_PASSWORD_FILE", "/var/lib/mysql"),
    };
    format!(
        "# Homelab's shared {words}, written by Homelab: changes here are replaced.\n\
         services:\n\
         \x20 {service}:\n\
         \x20   image: {image}\n\
         \x20   container_name: {container}\n\
         \x20   command: [{args}]\n\
         \x20   restart: unless-stopped\n\
         \x20   environment:\n\
         \x20     {password_env}: {secret_in}\n\
         {root_host}\
         \x20   volumes:\n\
         \x20     - {data}\n\
         \x20     - {secret}\n\
         {client}\
         \x20   logging:\n\
         \x20     driver: json-file\n\
         \x20     options:\n\
         \x20       max-size: \"1m\"\n\
         \x20       max-file: \"2\"\n\
         \x20   networks:\n\
         \x20     - db\n\
         networks:\n\
         \x20 db:\n\
         \x20   name: {network}\n\
         volumes:\n\
         \x20 data:\n\
         \x20   name: {volume}\n",
        words = engine.words(),
        service = engine.as_str(),
        image = q(engine.image()),
        container = q(engine.project()),
        args = args.join(", "),
        secret_in = q(SUPERUSER_IN_CONTAINER),
        data = q(&format!("data:{data}")),
        secret = q(&format!(
            "{dir}/{SUPERUSER_FILE}:{SUPERUSER_IN_CONTAINER}:ro"
        )),
        // MariaDB's superuser only from inside its container (the apps' network never
        // reaches it).
        root_host = match engine {
            Engine::Mariadb => "      MARIADB_ROOT_HOST: localhost\n",
            Engine::Postgres => "",
        },
        // MariaDB's own tools read the superuser's password from a client settings file.
        client = match engine {
            Engine::Mariadb => format!(
                "      - {}\n",
                q(&format!(
                    "{dir}/client.cnf:{}:ro",
                    sql::CLIENT_CNF_IN_CONTAINER
                ))
            ),
            Engine::Postgres => String::new(),
        },
        network = engine.network(),
        volume = engine.volume(),
    )
}

/// The override that puts an app's database clients on the instance's network.
pub fn app_override(engine: Engine, clients: &[String]) -> String {
    let q = |s: &str| Value::String(s.to_string()).to_string();
    let network = engine.network();
    let mut out = format!(
        "# This app reaches Homelab's shared {} on its network; written by Homelab.\nservices:\n",
        engine.words()
    );
    for c in clients {
        out.push_str(&format!(
            "  {}:\n    networks:\n      default: {{}}\n      {network}: {{}}\n",
            q(c)
        ));
    }
    out.push_str(&format!(
        "networks:\n  {network}:\n    external: true\n    name: {network}\n"
    ));
    out
}

/// The name of an app's database and login: derived from its slug (letters, digits and
/// dashes, checked by the catalog), with the dashes made underscores so that neither engine
/// needs them quoted by hand, and a prefix that sets them apart from anything the owner makes.
pub fn database_name(slug: &str) -> Option<String> {
    let ok = !slug.is_empty()
        && slug.len() <= 48
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    ok.then(|| format!("hl_{}", slug.replace('-', "_")))
}

/// Why an app cannot use the shared database, in one sentence for its page; `Ok` with the
/// engine when it can.
pub fn can_pool(recipe: &Recipe) -> Result<Engine, String> {
    let m = &recipe.manifest;
    let Some(db) = &m.database else {
        return Err(format!("{} needs no database.", m.name));
    };
    let Some(engine) = Engine::parse(&db.engine) else {
        return Err(format!(
            "{} uses a database Homelab does not share.",
            m.name
        ));
    };
    if db.service.is_empty() {
        return Err(format!(
            "{} keeps its own database: its recipe does not let it be shared.",
            m.name
        ));
    }
    if let Some(missing) = db
        .extensions
        .iter()
        .find(|e| !engine.extensions().contains(&e.as_str()))
    {
        return Err(format!(
            "{} keeps its own database: it needs the “{missing}” extension, which the shared {} does not have.",
            m.name,
            engine.words()
        ));
    }
    Ok(engine)
}

/// The major version of an image's tag (`postgres:18` → 18, `mariadb:10.11` → 10.11), as a
/// number to compare.
fn major_of(image: &str) -> Option<f64> {
    let tag = image.rsplit_once(':')?.1;
    let digits: String = tag
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = digits.split('.').filter(|p| !p.is_empty());
    let major: f64 = parts.next()?.parse().ok()?;
    // MariaDB's series are major.minor (10.11, 11.4); PostgreSQL's are one number.
    let minor: f64 = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0.0);
    Some(major + minor / 100.0)
}

/// Whether an app running with its own database container can move into the shared one, or
/// why not in one sentence: the shared server must be the same or a newer version than its
/// own (data never moves to an older server), and the app must read its settings at start.
pub fn movable(recipe: &Recipe) -> Result<Engine, String> {
    let engine = can_pool(recipe)?;
    let m = &recipe.manifest;
    let db = m
        .database
        .as_ref()
        .ok_or_else(|| format!("{} needs no database.", m.name))?;
    if db.settings_fixed_at_install {
        return Err(format!(
            "{} keeps its own database: it wrote where its database is into its own settings when it was installed, so it cannot be moved.",
            m.name
        ));
    }
    let own = recipe
        .compose
        .services
        .0
        .get(&db.service)
        .and_then(|s| s.as_ref())
        .and_then(|s| s.image.as_deref())
        .and_then(major_of);
    let shared = major_of(engine.image());
    match (own, shared) {
        (Some(own), Some(shared)) if own <= shared => Ok(engine),
        _ => Err(format!(
            "{} keeps its own database: it runs a newer {} than the shared one, and data cannot move to an older version.",
            m.name,
            engine.words()
        )),
    }
}

/// Why a deployed app with a database keeps its own container, in one sentence for its page
/// (None when it has no database or uses the shared one).
pub fn why_own(recipe: &Recipe, shared: bool) -> Option<String> {
    recipe.manifest.database.as_ref()?;
    if shared {
        return None;
    }
    Some(match movable(recipe) {
        Err(why) => why,
        Ok(engine) => format!(
            "{} keeps its own database: it was installed with it. Moving it to the shared {} saves the memory that one uses.",
            recipe.manifest.name,
            engine.words()
        ),
    })
}

/// The connection values an app gets when pooled: the manifest's `database.env` names filled
/// with the instance's address and the app's own database and login (the password is the
/// app's own secret, already among its values).
pub fn connection_values(recipe: &Recipe, engine: Engine) -> Vec<(String, String)> {
    let Some(db) = &recipe.manifest.database else {
        return Vec::new();
    };
    let Some(name) = database_name(&recipe.manifest.slug) else {
        return Vec::new();
    };
    let mut out = vec![
        (db.env.host.clone(), engine.project().to_string()),
        (db.env.name.clone(), name.clone()),
        (db.env.user.clone(), name),
    ];
    if let Some(port) = &db.env.port {
        out.push((port.clone(), engine.port().to_string()));
    }
    out
}

/// RAM, in MiB, that one app's own database container uses idle: what each pooled app no
/// longer runs. Measured in the lab (server-01, Debian's PostgreSQL 15.20 and MariaDB
/// 10.11.19 under the official images' names, one app database each, 60 s idle after start,
/// as `docker stats` counts it: two runs, 32.0/34.4 and 84.8/82.6 MiB; lab/db-baseline.md has
/// the date, the commands and the figures after a load, which are several times higher). The
/// idle figure is the low end, so the saving shown is never overstated.
pub fn separate_baseline_mib(engine: Engine) -> f64 {
    match engine {
        Engine::Postgres => BASELINE_POSTGRES_MIB,
        Engine::Mariadb => BASELINE_MARIADB_MIB,
    }
}
const BASELINE_POSTGRES_MIB: f64 = 33.0;
const BASELINE_MARIADB_MIB: f64 = 83.0;

/// What sharing saves on one device and engine: the separate containers the apps would run
/// (the measured baseline each) minus what the shared instance uses now. Never below zero
/// (a shared instance busier than the baseline saves nothing, and is shown as such).
pub fn saved_mib(engine: Engine, apps: usize, instance_mib: f64) -> f64 {
    (separate_baseline_mib(engine) * apps as f64 - instance_mib).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_slugs_only() {
        assert_eq!(database_name("paperless-ngx").unwrap(), "hl_paperless_ngx");
        for bad in ["", "a;b", "x'y", "A", "a b", "a\"b", "é", &"a".repeat(49)] {
            assert!(database_name(bad).is_none(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn the_instance_publishes_no_port_and_keeps_its_data_in_a_named_volume() {
        let c = compose(Engine::Postgres, "/opt/shared-postgres", 8192);
        assert!(!c.contains("ports"), "{c}");
        assert!(c.contains("name: homelab-postgres-data"), "{c}");
        assert!(c.contains("\"shared_buffers=256MB\""), "{c}");
        assert!(
            c.contains("/opt/shared-postgres/superuser:/run/homelab/superuser:ro"),
            "{c}"
        );
        let small = compose(Engine::Mariadb, "/opt/shared-mariadb", 1024);
        assert!(small.contains("--innodb-buffer-pool-size=64M"), "{small}");
        assert!(
            small.contains("/opt/shared-mariadb/client.cnf:/run/homelab/client.cnf:ro"),
            "{small}"
        );
    }

    #[test]
    fn versions_are_read_from_image_tags() {
        assert_eq!(major_of("docker.io/library/postgres:18"), Some(18.0));
        assert_eq!(major_of("postgres:15-bookworm"), Some(15.0));
        assert_eq!(major_of("mariadb:10.11"), Some(10.11));
        assert!(major_of("mariadb:11.4").unwrap() > major_of("mariadb:10.11").unwrap());
        assert_eq!(major_of("postgres"), None);
    }

    #[test]
    fn savings_never_go_negative() {
        assert_eq!(saved_mib(Engine::Postgres, 1, 500.0), 0.0);
        assert!(saved_mib(Engine::Mariadb, 3, 100.0) > 0.0);
    }
}
