//! Key/value settings and sealed secrets. The store never sees a plaintext secret: callers hand
//! it blobs sealed by the vault.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, now_unix};

impl Store {
    /// Reads a setting.
    pub async fn setting(&self, key: &'static str) -> Result<Option<String>, StoreError> {
        self.call(move |c| {
            Ok(
                c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .optional()?,
            )
        })
        .await
    }

    /// Writes (or replaces) a setting.
    pub async fn set_setting(&self, key: &'static str, value: String) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO settings(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
        .await
    }

    /// Removes a setting (absent already is fine).
    pub async fn delete_setting(&self, key: &'static str) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute("DELETE FROM settings WHERE key = ?1", [key])?;
            Ok(())
        })
        .await
    }

    /// Writes a setting only if it is not set yet; returns the value now stored. Used for facts
    /// fixed at first start (e.g. when the claim window opened).
    pub async fn setting_init(
        &self,
        key: &'static str,
        value: String,
    ) -> Result<String, StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO settings(key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
            Ok(
                c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
    }

    /// Stores a sealed secret, replacing an earlier one for the same owner and purpose.
    pub async fn put_secret(
        &self,
        owner: String,
        purpose: impl Into<String>,
        sealed: Vec<u8>,
    ) -> Result<(), StoreError> {
        let purpose = purpose.into();
        self.call(move |c| {
            c.execute(
                "INSERT INTO secrets(owner, purpose, sealed, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(owner, purpose) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
                params![owner, purpose, sealed, now_unix()],
            )?;
            Ok(())
        })
        .await
    }

    /// Reads a sealed secret.
    pub async fn secret(
        &self,
        owner: String,
        purpose: impl Into<String>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let purpose = purpose.into();
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT sealed FROM secrets WHERE owner = ?1 AND purpose = ?2",
                params![owner, purpose],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    /// Deletes a sealed secret (no error if it does not exist).
    pub async fn delete_secret(
        &self,
        owner: String,
        purpose: impl Into<String>,
    ) -> Result<(), StoreError> {
        let purpose = purpose.into();
        self.call(move |c| {
            c.execute(
                "DELETE FROM secrets WHERE owner = ?1 AND purpose = ?2",
                params![owner, purpose],
            )?;
            Ok(())
        })
        .await
    }

    /// The purposes of every secret an owner has (e.g. an app's generated secrets).
    pub async fn secret_purposes(&self, owner: String) -> Result<Vec<String>, StoreError> {
        self.call(move |c| {
            let mut st =
                c.prepare("SELECT purpose FROM secrets WHERE owner = ?1 ORDER BY purpose")?;
            let rows = st.query_map([owner], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
        .await
    }

    /// Deletes every secret of an owner; returns how many there were.
    pub async fn delete_secrets_of(&self, owner: String) -> Result<usize, StoreError> {
        self.call(move |c| Ok(c.execute("DELETE FROM secrets WHERE owner = ?1", [owner])?))
            .await
    }
}
