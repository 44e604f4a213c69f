//! The SQL Homelab runs in a shared instance, as a command and the text for its stdin. The
//! command's arguments are fixed; names and passwords travel on stdin only, checked against a
//! strict alphabet first, and reach SQL as data: psql variables interpolated by psql itself
//! (`:'x'` as a literal, `format('%I')` as an identifier), MariaDB user variables passed
//! through `QUOTE()` and backtick quoting with doubled backticks. Nothing the owner types is
//! ever part of this text: names come from app slugs, passwords from Homelab's generator.

use super::Engine;

/// A command to run in the instance's container, and what to write to its stdin.
#[derive(Debug, Clone)]
pub struct Script {
    /// The container user the command runs as.
    pub user: &'static str,
    pub cmd: Vec<&'static str>,
    /// Holds passwords: never logged (only its size).
    pub stdin: String,
}

/// A value that failed the alphabet check (a bug upstream, never owner input).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SqlError {
    #[error("“{0}” is not a name Homelab gives a database or login")]
    BadName(String),
    #[error("a database password must be 16–128 letters and digits")]
    BadPassword,
    #[error("the shared {engine} cannot add the “{extension}” extension")]
    BadExtension { engine: Engine, extension: String },
}

/// Inside the container, the file holding the superuser's client settings (MariaDB's
/// `[client]` section with the root password; see `deploy/pooling.rs`).
pub const CLIENT_CNF_IN_CONTAINER: &str = "/run/homelab/client.cnf";

fn check_name(name: &str) -> Result<&str, SqlError> {
    let ok = name.len() > 3
        && name.len() <= 63
        && name.starts_with("hl_")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    ok.then_some(name)
        .ok_or_else(|| SqlError::BadName(name.to_string()))
}

fn check_password(pw: &str) -> Result<&str, SqlError> {
    let ok = (16..=128).contains(&pw.len()) && pw.chars().all(|c| c.is_ascii_alphanumeric());
    ok.then_some(pw).ok_or(SqlError::BadPassword)
}

fn base(engine: Engine, stdin: String) -> Script {
    match engine {
        // As the server's own OS user over the local socket (trusted inside the container,
        // as in the official image); stops at the first error.
        Engine::Postgres => Script {
            user: "postgres",
            cmd: vec![
                "psql",
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                "postgres",
                "-f",
                "-",
            ],
            stdin,
        },
        // The superuser's password comes from a read-only file, never an argument.
        Engine::Mariadb => Script {
            user: "mysql",
            cmd: vec![
                "mariadb",
                "--defaults-extra-file=/run/homelab/client.cnf",
                "--batch",
                "--skip-column-names",
            ],
            stdin,
        },
    }
}

/// Whether the server accepts connections on its network address (not only the temporary
/// socket-only server the image runs while it initialises its data).
pub fn ready(engine: Engine) -> Script {
    match engine {
        Engine::Postgres => Script {
            user: "postgres",
            cmd: vec!["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"],
            stdin: String::new(),
        },
        // Answering on the network (not the socket-only server of the first start), and
        // letting Homelab in with its password (a lost one shows here, not later).
        Engine::Mariadb => Script {
            user: "mysql",
            cmd: vec![
                "sh",
                "-c",
                "mariadb-admin --defaults-extra-file=/run/homelab/client.cnf --protocol=tcp \
                 --host=127.0.0.1 --port=3306 ping >/dev/null && \
                 mariadb --defaults-extra-file=/run/homelab/client.cnf -e 'SELECT 1' >/dev/null",
            ],
            stdin: String::new(),
        },
    }
}

fn pg_vars(vars: &[(&str, &str)]) -> String {
    // psql's `\set name 'value'`: the values passed the alphabet check, so the quotes hold.
    vars.iter()
        .map(|(k, v)| format!("\\set {k} '{v}'\n"))
        .collect()
}

fn maria_vars(vars: &[(&str, &str)]) -> String {
    let sets: Vec<String> = vars.iter().map(|(k, v)| format!("@{k} = '{v}'")).collect();
    format!("SET {};\n", sets.join(", "))
}

/// A MariaDB statement built from user variables and run as a prepared statement: the
/// identifier gets backtick quoting with any backtick doubled, literals go through QUOTE().
fn maria_exec(concat: &str) -> String {
    format!(
        "SET @s = CONCAT({concat});\nPREPARE st FROM @s;\nEXECUTE st;\nDEALLOCATE PREPARE st;\n"
    )
}
const MARIA_DB_IDENT: &str = "'`', REPLACE(@db, '`', '``'), '`'";
/// In a GRANT, `_` in a database name is a wildcard (`hl_foo_bar` would also cover
/// `hl_fooxbar`, and let the login create it): escaped there as `\_`.
const MARIA_GRANT_IDENT: &str = "'`', REPLACE(REPLACE(@db, '`', '``'), '_', '\\\\_'), '`'";

/// Prints `database=yes|no` and `login=yes|no`.
pub fn exists(engine: Engine, db: &str, login: &str) -> Result<Script, SqlError> {
    let (db, login) = (check_name(db)?, check_name(login)?);
    let text = match engine {
        Engine::Postgres => format!(
            "{}SELECT 'database=' || CASE WHEN EXISTS (SELECT FROM pg_database WHERE datname = :'db') THEN 'yes' ELSE 'no' END;\n\
             SELECT 'login=' || CASE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = :'login') THEN 'yes' ELSE 'no' END;\n\\q\n",
            pg_vars(&[("db", db), ("login", login)])
        ),
        Engine::Mariadb => format!(
            "{}SELECT CONCAT('database=', IF(EXISTS(SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = @db), 'yes', 'no'));\n\
             SELECT CONCAT('login=', IF(EXISTS(SELECT 1 FROM mysql.user WHERE User = @login AND Host = '%'), 'yes', 'no'));\nquit\n",
            maria_vars(&[("db", db), ("login", login)])
        ),
    };
    Ok(base(engine, text))
}

/// Creates (or brings back in line) an app's database and login: the login owns its own
/// database and nothing else — no superuser, no creating roles or databases, and no other
/// login may connect to that database. Safe to repeat: what exists is reused, and the
/// password is set to the one given (the app's stored secret).
pub fn provision(
    engine: Engine,
    db: &str,
    login: &str,
    password: &str,
    extensions: &[String],
) -> Result<Script, SqlError> {
    let (db, login, pw) = (
        check_name(db)?,
        check_name(login)?,
        check_password(password)?,
    );
    if let Some(bad) = extensions
        .iter()
        .find(|e| !engine.extensions().contains(&e.as_str()))
    {
        return Err(SqlError::BadExtension {
            engine,
            extension: bad.clone(),
        });
    }
    let text = match engine {
        Engine::Postgres => {
            let ext = extensions.join(",");
            format!(
                "{vars}\
                 SET search_path = pg_catalog, pg_temp;\n\
                 REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;\n\
                 REVOKE CONNECT ON DATABASE template1 FROM PUBLIC;\n\
                 SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'login', :'pw') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'login') \\gexec\n\
                 SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %L', :'login', :'pw') \\gexec\n\
                 SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'login') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \\gexec\n\
                 SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'login') \\gexec\n\
                 SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \\gexec\n\
                 SELECT format('GRANT ALL ON DATABASE %I TO %I', :'db', :'login') \\gexec\n\
                 \\connect :\"db\"\n\
                 SET search_path = pg_catalog, pg_temp;\n\
                 REVOKE ALL ON SCHEMA public FROM PUBLIC;\n\
                 SELECT format('ALTER SCHEMA public OWNER TO %I', :'login') \\gexec\n\
                 SET ROLE :\"login\";\n\
                 SELECT format('CREATE EXTENSION IF NOT EXISTS %I SCHEMA public', e) FROM unnest(string_to_array(:'ext', ',')) AS e WHERE e <> '' \\gexec\n\
                 RESET ROLE;\n\
                 \\q\n",
                vars = pg_vars(&[("db", db), ("login", login), ("pw", pw), ("ext", &ext)]),
            )
        }
        Engine::Mariadb => format!(
            "{vars}{create_db}{create_user}{alter_user}{grant}FLUSH PRIVILEGES;\nquit\n",
            vars = maria_vars(&[("db", db), ("login", login), ("pw", pw)]),
            create_db = maria_exec(&format!(
                "'CREATE DATABASE IF NOT EXISTS ', {MARIA_DB_IDENT}, ' CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci'"
            )),
            create_user = maria_exec(
                "'CREATE USER IF NOT EXISTS ', QUOTE(@login), '@''%'' IDENTIFIED BY ', QUOTE(@pw)"
            ),
            alter_user =
                maria_exec("'ALTER USER ', QUOTE(@login), '@''%'' IDENTIFIED BY ', QUOTE(@pw)"),
            grant = maria_exec(&format!(
                "'GRANT ALL PRIVILEGES ON ', {MARIA_GRANT_IDENT}, '.* TO ', QUOTE(@login), '@''%'''"
            )),
        ),
    };
    Ok(base(engine, text))
}

/// Drops an app's database and/or login (each only if asked; absent ones are fine). Open
/// connections to the database are ended first, so a stopped-but-lingering app cannot block it.
pub fn drop(
    engine: Engine,
    db: &str,
    login: &str,
    drop_db: bool,
    drop_login: bool,
) -> Result<Script, SqlError> {
    let (db, login) = (check_name(db)?, check_name(login)?);
    let mut text = String::new();
    match engine {
        Engine::Postgres => {
            text.push_str(&pg_vars(&[("db", db), ("login", login)]));
            if drop_db {
                text.push_str(
                    "SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', :'db') \\gexec\n",
                );
            }
            if drop_login {
                text.push_str("SELECT format('DROP ROLE IF EXISTS %I', :'login') \\gexec\n");
            }
            text.push_str("\\q\n");
        }
        Engine::Mariadb => {
            text.push_str(&maria_vars(&[("db", db), ("login", login)]));
            if drop_db {
                text.push_str(&maria_exec(&format!(
                    "'DROP DATABASE IF EXISTS ', {MARIA_DB_IDENT}"
                )));
            }
            if drop_login {
                text.push_str(&maria_exec(
                    "'DROP USER IF EXISTS ', QUOTE(@login), '@''%'''",
                ));
            }
            text.push_str("quit\n");
        }
    }
    Ok(base(engine, text))
}

/// Prints `<database> <bytes>` for each of Homelab's databases in the instance.
pub fn sizes(engine: Engine) -> Script {
    let text = match engine {
        Engine::Postgres => {
            "SELECT datname || ' ' || pg_database_size(datname) FROM pg_database WHERE datname LIKE 'hl\\_%' ORDER BY 1;\n\\q\n"
        }
        Engine::Mariadb => {
            "SELECT SCHEMA_NAME, (SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.TABLES t WHERE t.table_schema = s.SCHEMA_NAME) FROM information_schema.SCHEMATA s WHERE SCHEMA_NAME LIKE 'hl\\_%' ORDER BY 1;\nquit\n"
        }
    };
    base(engine, text.to_string())
}

/// Reads `sizes` output.
pub fn parse_sizes(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect()
}

/// Reads `exists` output: (database exists, login exists).
pub fn parse_exists(text: &str) -> Option<(bool, bool)> {
    let find = |k: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(k))
            .map(|v| v == "yes")
    };
    Some((find("database=")?, find("login=")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metacharacters_never_reach_the_text() {
        for bad in [
            "hl_x'; drop table y; --",
            "hl_`x`",
            "hl_x\\",
            "x",
            "hl_X",
            "hl_a-b",
        ] {
            assert!(provision(Engine::Postgres, bad, "hl_ok", &"a".repeat(20), &[]).is_err());
            assert!(provision(Engine::Mariadb, "hl_ok", bad, &"a".repeat(20), &[]).is_err());
            assert!(drop(Engine::Mariadb, bad, "hl_ok", true, true).is_err());
        }
        for pw in [
            "short",
            "has space and enough",
            "quote'inside1234567",
            "\\backslash12345678",
        ] {
            assert_eq!(
                provision(Engine::Postgres, "hl_a", "hl_a", pw, &[]).unwrap_err(),
                SqlError::BadPassword
            );
        }
        let err = provision(
            Engine::Postgres,
            "hl_a",
            "hl_a",
            &"a".repeat(20),
            &["vchord".into()],
        );
        assert!(matches!(err, Err(SqlError::BadExtension { .. })));
    }

    #[test]
    fn the_password_is_on_stdin_never_in_the_command() {
        let pw = "Abcdefghijklmnop1234";
        for engine in Engine::ALL {
            let s = provision(engine, "hl_app", "hl_app", pw, &[]).unwrap();
            assert!(s.stdin.contains(pw));
            assert!(
                s.cmd
                    .iter()
                    .all(|a| !a.contains(pw) && !a.contains("hl_app"))
            );
        }
    }

    #[test]
    fn outputs_are_read() {
        assert_eq!(
            parse_exists("database=yes\nlogin=no\n"),
            Some((true, false))
        );
        assert_eq!(parse_exists("database=yes\n"), None);
        assert_eq!(
            parse_sizes("hl_a 8000\nhl_b\tx\nhl_c 12\n"),
            vec![("hl_a".into(), 8000), ("hl_c".into(), 12)]
        );
    }
}
