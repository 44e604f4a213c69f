//! Versioned schema migrations, tracked in SQLite's `user_version`.
//!
//! Each entry moves the schema from version N to N+1 and runs inside one transaction together
//! with the version bump, so a crash leaves either the old or the new schema, never half.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

/// Migration N (1-based) is `MIGRATIONS[N-1]`. Append only; never edit a released entry.
const MIGRATIONS: &[&str] = &[
    // 1: the foundation: settings, sealed secrets, users, sessions, API tokens, audit log.
    r#"
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT;

    -- Sealed credentials; the AAD of each blob binds it to (owner, purpose).
    CREATE TABLE secrets (
        owner      TEXT NOT NULL,
        purpose    TEXT NOT NULL,
        sealed     BLOB NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (owner, purpose)
    ) STRICT;

    CREATE TABLE users (
        id            INTEGER PRIMARY KEY,
        username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        ui_mode       TEXT NOT NULL DEFAULT 'basic' CHECK (ui_mode IN ('basic', 'advanced')),
        created_at    INTEGER NOT NULL
    ) STRICT;

    -- Only the SHA-256 of a session token is stored: a stolen database opens no session.
    CREATE TABLE sessions (
        token_hash   BLOB PRIMARY KEY,
        user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at   INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        client_addr  TEXT NOT NULL,
        user_agent   TEXT NOT NULL
    ) STRICT;
    CREATE INDEX sessions_user ON sessions(user_id);

    CREATE TABLE api_tokens (
        id           INTEGER PRIMARY KEY,
        name         TEXT NOT NULL,
        token_hash   BLOB NOT NULL UNIQUE,
        prefix       TEXT NOT NULL,
        created_by   INTEGER REFERENCES users(id) ON DELETE SET NULL,
        created_at   INTEGER NOT NULL,
        last_used_at INTEGER
    ) STRICT;

    CREATE TABLE audit_log (
        id          INTEGER PRIMARY KEY,
        at          INTEGER NOT NULL,
        actor       TEXT NOT NULL,
        action      TEXT NOT NULL,
        detail      TEXT NOT NULL,
        client_addr TEXT NOT NULL,
        request_id  TEXT NOT NULL
    ) STRICT;
    "#,
    // 2: devices, their last known status, and a bounded history of samples for graphs.
    r#"
    CREATE TABLE devices (
        id               INTEGER PRIMARY KEY,
        name             TEXT NOT NULL UNIQUE COLLATE NOCASE,
        host             TEXT NOT NULL,
        port             INTEGER NOT NULL,
        username         TEXT NOT NULL,
        -- Pinned at adoption (OpenSSH public key); a different key blocks the device.
        host_key         TEXT NOT NULL,
        -- A changed key the device presented, kept until the user trusts or rejects it.
        pending_host_key TEXT,
        docker_socket    TEXT NOT NULL,
        -- The comment on our line in the device's authorized_keys (empty: the user's own key).
        key_comment      TEXT NOT NULL,
        created_at       INTEGER NOT NULL,
        UNIQUE (host, port)
    ) STRICT;

    CREATE TABLE device_status (
        device_id    INTEGER PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
        state        TEXT NOT NULL,
        reason       TEXT NOT NULL,
        facts        TEXT NOT NULL,
        last_seen_at INTEGER,
        checked_at   INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE device_samples (
        device_id  INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        at         INTEGER NOT NULL,
        online     INTEGER NOT NULL,
        load1      REAL,
        mem_used   INTEGER,
        mem_total  INTEGER,
        disk_used  INTEGER,
        disk_total INTEGER,
        PRIMARY KEY (device_id, at)
    ) STRICT;
    "#,
    // 3: deployed apps and the deploy journal.
    r#"
    CREATE TABLE apps (
        slug       TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        device_id  INTEGER NOT NULL REFERENCES devices(id),
        version    TEXT NOT NULL,
        -- running | stopped | failed | missing
        state      TEXT NOT NULL,
        message    TEXT NOT NULL DEFAULT '',
        -- JSON object of the user's settings (secrets live in the vault, never here)
        settings   TEXT NOT NULL,
        url        TEXT NOT NULL,
        app_dir    TEXT NOT NULL,
        -- the Compose file as deployed (an update can go back to it)
        compose    TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE deployments (
        id          INTEGER PRIMARY KEY,
        slug        TEXT NOT NULL,
        -- deploy | update | remove
        kind        TEXT NOT NULL,
        device_id   INTEGER NOT NULL,
        device_name TEXT NOT NULL,
        state       TEXT NOT NULL,
        progress    INTEGER NOT NULL DEFAULT 0,
        message     TEXT NOT NULL DEFAULT '',
        error       TEXT,
        -- JSON: the placement verdicts shown to the user
        placement   TEXT NOT NULL DEFAULT '[]',
        -- JSON: the request (settings without secrets) so a restart can finish or undo it
        request     TEXT NOT NULL DEFAULT '{}',
        compose     TEXT NOT NULL DEFAULT '',
        env_keys    TEXT NOT NULL DEFAULT '[]',
        started_at  INTEGER NOT NULL,
        finished_at INTEGER
    ) STRICT;
    CREATE INDEX deployments_slug ON deployments(slug, id);
    -- The journal: each step is written with its undo before it acts.
    CREATE TABLE deployment_steps (
        deployment_id INTEGER NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
        seq           INTEGER NOT NULL,
        step          TEXT NOT NULL,
        undo          TEXT NOT NULL,
        -- started | done | undone
        status        TEXT NOT NULL,
        PRIMARY KEY (deployment_id, seq)
    ) STRICT;
    -- "What I did": every remote command and Docker call, secrets never included.
    CREATE TABLE deployment_actions (
        deployment_id INTEGER NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
        seq           INTEGER NOT NULL,
        at            INTEGER NOT NULL,
        what          TEXT NOT NULL,
        outcome       TEXT NOT NULL,
        millis        INTEGER NOT NULL,
        output        TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (deployment_id, seq)
    ) STRICT;
    "#,
    // 4: browsers that signed in successfully, so a stranger's failures cannot lock them out.
    r#"
    -- Only the SHA-256 of the cookie value is stored, like session tokens.
    CREATE TABLE known_browsers (
        token_hash   BLOB PRIMARY KEY,
        user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at   INTEGER NOT NULL,
        last_used_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX known_browsers_user ON known_browsers(user_id, last_used_at);
    "#,
    // 5: hourly uptime rollups, kept in the transaction that writes each minute sample, so the
    // uptime of every device is one small query instead of an AVG over each device's history.
    r#"
    CREATE TABLE device_uptime_hours (
        device_id      INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        -- Start of the hour, Unix seconds (a multiple of 3600).
        hour           INTEGER NOT NULL,
        -- Minute samples written in that hour (a replaced minute counts once, as its latest
        -- value), and how many of them were online. Downsampling does not change them.
        minutes        INTEGER NOT NULL,
        online_minutes INTEGER NOT NULL,
        PRIMARY KEY (device_id, hour)
    ) STRICT, WITHOUT ROWID;
    -- From the history kept so far: exact for the last day (still one sample a minute); older
    -- hours count the samples that downsampling left.
    INSERT INTO device_uptime_hours(device_id, hour, minutes, online_minutes)
        SELECT device_id, at - at % 3600, COUNT(*), SUM(online)
        FROM device_samples GROUP BY device_id, at - at % 3600;
    "#,
    // 6: when a deployment entered its current state, so its page can say how long the step
    // has taken and how long it may still take (an honest "time left").
    r#"
    ALTER TABLE deployments ADD COLUMN state_at INTEGER NOT NULL DEFAULT 0;
    UPDATE deployments SET state_at = COALESCE(finished_at, started_at);
    "#,
    // 7: each app's name (its DNS record, wherever it lives) and the certificate Homelab's own
    // CA issued for it; the certificate's key is sealed in `secrets` (owner `name:<slug>`).
    r#"
    CREATE TABLE app_names (
        slug            TEXT PRIMARY KEY,
        -- The full name, lower-case (vaultwarden.home.arpa, vaultwarden.local): one app per name.
        name            TEXT NOT NULL UNIQUE,
        -- Where the record lives: mdns | adguard | opnsense | none (reachable by address only).
        provider        TEXT NOT NULL,
        device_id       INTEGER NOT NULL,
        -- The address the record points at (the app's device).
        answer          TEXT NOT NULL,
        -- The provider's own id for the record (OPNsense's uuid), or empty.
        reference       TEXT NOT NULL DEFAULT '',
        -- ok | failed: a provider that could not be reached leaves the app reachable by address.
        record_state    TEXT NOT NULL,
        record_message  TEXT NOT NULL DEFAULT '',
        cert_pem        TEXT NOT NULL DEFAULT '',
        cert_not_before INTEGER NOT NULL DEFAULT 0,
        cert_not_after  INTEGER NOT NULL DEFAULT 0,
        -- Why the last renewal failed, with the fix; empty when fine.
        cert_message    TEXT NOT NULL DEFAULT '',
        updated_at      INTEGER NOT NULL
    ) STRICT;
    "#,
    // 8: shared databases (pool/): one row per app whose database lives in a device's shared
    // instance; kept when the app is removed keeping its data.
    r#"
    CREATE TABLE shared_databases (
        slug       TEXT NOT NULL,
        device_id  INTEGER NOT NULL,
        -- postgres | mariadb
        engine     TEXT NOT NULL,
        database   TEXT NOT NULL,
        login      TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        -- An app removed keeping its data on one device may run on another with a second one.
        PRIMARY KEY (device_id, slug)
    ) STRICT;
    CREATE INDEX shared_databases_instance ON shared_databases (device_id, engine);
    "#,
    // 9: backups (backup/): where they go, and every run of an app's backup. A destination's
    // secrets (its repository password, SSH key or S3 keys) are sealed in `secrets`
    // (owner `backup-destination:<id>`).
    r#"
    CREATE TABLE backup_destinations (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
        -- JSON of backup::Target (sftp: host, port, user, path; s3: endpoint, bucket, prefix).
        target        TEXT NOT NULL,
        -- SFTP: the server's host key (OpenSSH), pinned when it was added.
        host_key      TEXT NOT NULL DEFAULT '',
        -- The last "Test connection" (or backup): when, whether it worked, the words shown.
        checked_at    INTEGER NOT NULL DEFAULT 0,
        check_ok      INTEGER NOT NULL DEFAULT 0,
        check_message TEXT NOT NULL DEFAULT '',
        created_at    INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE backup_runs (
        id             INTEGER PRIMARY KEY,
        slug           TEXT NOT NULL,
        destination_id INTEGER NOT NULL,
        device_id      INTEGER NOT NULL,
        -- The job that ran it (its journal and "What I did").
        deployment_id  INTEGER NOT NULL,
        started_at     INTEGER NOT NULL,
        finished_at    INTEGER,
        -- running | done | failed
        state          TEXT NOT NULL,
        snapshot_id    TEXT NOT NULL DEFAULT '',
        files          INTEGER NOT NULL DEFAULT 0,
        -- What restic read, and what it had to store (after deduplication and compression).
        bytes          INTEGER NOT NULL DEFAULT 0,
        added          INTEGER NOT NULL DEFAULT 0,
        message        TEXT NOT NULL DEFAULT ''
    ) STRICT;
    CREATE INDEX backup_runs_app ON backup_runs (slug, started_at);
    "#,
    // 10: backup schedules and the box's upkeep of destinations. A policy per app, or the
    // default (slug '') every app without its own follows; what the scheduler last handled per
    // app (so a run missed while the box was off is made once it starts); when each
    // destination was last pruned and checked, and the damage a check found.
    r#"
    CREATE TABLE backup_policies (
        slug         TEXT PRIMARY KEY,
        -- A five-field cron expression in the box's time zone, or 'off'.
        schedule     TEXT NOT NULL,
        keep_within_days INTEGER NOT NULL,
        keep_hourly  INTEGER NOT NULL,
        keep_daily   INTEGER NOT NULL,
        keep_weekly  INTEGER NOT NULL,
        keep_monthly INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE backup_schedule (
        slug       TEXT PRIMARY KEY,
        -- The latest scheduled time (unix) the scheduler started a backup for, or skipped.
        handled_at INTEGER NOT NULL
    ) STRICT;
    ALTER TABLE backup_destinations ADD COLUMN maintained_at INTEGER NOT NULL DEFAULT 0;
    -- What the last check of the stored data found wrong, in words with the fix ('' when sound).
    ALTER TABLE backup_destinations ADD COLUMN damage TEXT NOT NULL DEFAULT '';
    "#,
    // 11: what a destination holds (restic's own statistics: the bytes stored, and the bytes
    // of every backup in it before deduplication) and, where the server says, its disk's size
    // and free space; all in bytes, measured at `space_at` (0: never).
    r#"
    ALTER TABLE backup_destinations ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE backup_destinations ADD COLUMN logical_bytes INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE backup_destinations ADD COLUMN disk_total INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE backup_destinations ADD COLUMN disk_free INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE backup_destinations ADD COLUMN space_at INTEGER NOT NULL DEFAULT 0;
    "#,
    // 12: when an app's keep rules last held at a destination, so restic's `forget` runs
    // there at most about once a day rather than after every backup. A row goes with its
    // destination; an app's policy change removes its rows (the new rules apply at once).
    r#"
    CREATE TABLE backup_forgets (
        slug           TEXT NOT NULL,
        destination_id INTEGER NOT NULL REFERENCES backup_destinations (id) ON DELETE CASCADE,
        -- Unix seconds: when restic's forget last worked there, or the app's first backup
        -- there (nothing of it to forget yet).
        forgot_at      INTEGER NOT NULL,
        PRIMARY KEY (slug, destination_id)
    ) STRICT;
    "#,
    // 13: revisions of the desired state (store/desired.rs): one for each audited change that
    // moved it, with who and the audit's words; the document is the state after the change
    // (no secrets, nothing the box only observed), `digest` its SHA-256. The newest
    // `desired::REVISIONS_KEEP` are kept.
    r#"
    CREATE TABLE revisions (
        id       INTEGER PRIMARY KEY,
        at       INTEGER NOT NULL,
        actor    TEXT NOT NULL,
        what     TEXT NOT NULL,
        document TEXT NOT NULL,
        digest   BLOB NOT NULL
    ) STRICT;
    "#,
];

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(super) fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

pub(super) fn check_not_newer(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let found = user_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    Ok(())
}

pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    // IMMEDIATE takes the write lock first, so two processes starting at once cannot both apply
    // the same migration; the loser re-reads the version after the winner commits.
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current = user_version(&tx)?;
        check_not_newer(&tx, path)?;
        let Some(sql) = MIGRATIONS.get(current as usize) else {
            return Ok(()); // up to date (dropping `tx` ends the empty transaction)
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", current + 1)?;
        tx.commit()?;
        tracing::info!(from = current, to = current + 1, "database schema migrated");
    }
}

/// Applies the migrations up to `version` only: tests build a database as an older release
/// left it, then migrate it.
#[cfg(test)]
pub(super) fn migrate_to(conn: &mut Connection, version: i64) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    for (i, sql) in MIGRATIONS.iter().enumerate().take(version as usize) {
        if user_version(&tx)? <= i as i64 {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
        }
    }
    tx.commit()?;
    Ok(())
}
