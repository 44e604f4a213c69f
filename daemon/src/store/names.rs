//! App names: the DNS record each app has (or failed to get) and the certificate issued for it.

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError, now_unix};

/// An app's name, where its record lives, and its certificate (the key is sealed elsewhere).
// Serialisable: a move's undo keeps the row as it was, to put it back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NameRow {
    pub slug: String,
    pub name: String,
    pub provider: String,
    pub device_id: i64,
    pub answer: String,
    pub reference: String,
    pub record_state: String,
    pub record_message: String,
    pub cert_pem: String,
    pub cert_not_before: i64,
    pub cert_not_after: i64,
    pub cert_message: String,
    pub updated_at: i64,
}

const COLUMNS: &str = "slug, name, provider, device_id, answer, reference, record_state, record_message, cert_pem, cert_not_before, cert_not_after, cert_message, updated_at";

fn name_row(r: &Row<'_>) -> rusqlite::Result<NameRow> {
    Ok(NameRow {
        slug: r.get(0)?,
        name: r.get(1)?,
        provider: r.get(2)?,
        device_id: r.get(3)?,
        answer: r.get(4)?,
        reference: r.get(5)?,
        record_state: r.get(6)?,
        record_message: r.get(7)?,
        cert_pem: r.get(8)?,
        cert_not_before: r.get(9)?,
        cert_not_after: r.get(10)?,
        cert_message: r.get(11)?,
        updated_at: r.get(12)?,
    })
}

impl Store {
    pub async fn names(&self) -> Result<Vec<NameRow>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(&format!("SELECT {COLUMNS} FROM app_names ORDER BY name"))?;
            let rows = st.query_map([], name_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn name_of(&self, slug: String) -> Result<Option<NameRow>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                &format!("SELECT {COLUMNS} FROM app_names WHERE slug = ?1"),
                [slug],
                name_row,
            )
            .optional()?)
        })
        .await
    }

    /// The app holding a name, if any (names are unique in the homelab).
    pub async fn name_holder(&self, name: String) -> Result<Option<String>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT slug FROM app_names WHERE name = ?1",
                [name.to_ascii_lowercase()],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    /// Inserts or replaces an app's name record. A name another app holds is refused by the
    /// UNIQUE constraint (`StoreError::Conflict` when the caller checks `name_holder` first).
    pub async fn put_name(&self, n: NameRow) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                &format!(
                    "INSERT OR REPLACE INTO app_names({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                ),
                params![
                    n.slug,
                    n.name.to_ascii_lowercase(),
                    n.provider,
                    n.device_id,
                    n.answer,
                    n.reference,
                    n.record_state,
                    n.record_message,
                    n.cert_pem,
                    n.cert_not_before,
                    n.cert_not_after,
                    n.cert_message,
                    now_unix()
                ],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn delete_name(&self, slug: String) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute("DELETE FROM app_names WHERE slug = ?1", [slug])?;
            Ok(())
        })
        .await
    }

    /// Records why renewing a certificate failed (empty when it is fine again).
    pub async fn set_cert_message(&self, slug: String, message: String) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "UPDATE app_names SET cert_message = ?2, updated_at = ?3 WHERE slug = ?1",
                params![slug, message, now_unix()],
            )?;
            Ok(())
        })
        .await
    }
}
