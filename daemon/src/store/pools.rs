//! Shared databases: which app's database and login live in which device's shared instance.
//! A row outlives its app when the app was removed keeping its data (its database stays, and
//! a redeploy reuses it).

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError, now_unix};

/// An app's private database in a device's shared instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedDbRow {
    pub device_id: i64,
    /// `postgres` | `mariadb`
    pub engine: String,
    pub slug: String,
    pub database: String,
    pub login: String,
    pub created_at: i64,
}

const COLUMNS: &str = "device_id, engine, slug, database, login, created_at";

fn shared_row(r: &Row<'_>) -> rusqlite::Result<SharedDbRow> {
    Ok(SharedDbRow {
        device_id: r.get(0)?,
        engine: r.get(1)?,
        slug: r.get(2)?,
        database: r.get(3)?,
        login: r.get(4)?,
        created_at: r.get(5)?,
    })
}

impl Store {
    /// Every shared database, by device and engine.
    pub async fn shared_databases(&self) -> Result<Vec<SharedDbRow>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {COLUMNS} FROM shared_databases ORDER BY device_id, engine, slug"
            ))?;
            let rows = st.query_map([], shared_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// The app's database in a device's shared instance, if it has one there (a removed app
    /// may keep one on a device and have another where it runs now).
    pub async fn shared_database_of(
        &self,
        slug: String,
        device_id: i64,
    ) -> Result<Option<SharedDbRow>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {COLUMNS} FROM shared_databases WHERE slug = ?1 AND device_id = ?2"
                ),
                params![slug, device_id],
                shared_row,
            )
            .optional()?)
        })
        .await
    }

    /// Records (or keeps) an app's shared database; its creation time stays the first one.
    pub async fn put_shared_database(&self, row: SharedDbRow) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO shared_databases (device_id, engine, slug, database, login, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (device_id, slug) DO UPDATE SET
                   engine = excluded.engine, database = excluded.database, login = excluded.login",
                params![row.device_id, row.engine, row.slug, row.database, row.login, now_unix()],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn delete_shared_database(
        &self,
        slug: String,
        device_id: i64,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "DELETE FROM shared_databases WHERE slug = ?1 AND device_id = ?2",
                params![slug, device_id],
            )?;
            Ok(())
        })
        .await
    }
}
