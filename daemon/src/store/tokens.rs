//! API tokens, stored by the SHA-256 of their value.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, now_unix};

/// An API token as listed in Settings (never its value).
#[derive(Debug, Clone)]
pub struct ApiTokenRow {
    pub id: i64,
    pub name: String,
    /// The first characters of the token, so a user can tell tokens apart.
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl Store {
    pub async fn create_api_token(
        &self,
        name: String,
        token_hash: Vec<u8>,
        prefix: String,
        created_by: i64,
    ) -> Result<ApiTokenRow, StoreError> {
        self.call(move |c| {
            let now = now_unix();
            c.execute(
                "INSERT INTO api_tokens(name, token_hash, prefix, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![name, token_hash, prefix, created_by, now],
            )?;
            Ok(ApiTokenRow { id: c.last_insert_rowid(), name, prefix, created_at: now, last_used_at: None })
        })
        .await
    }

    pub async fn api_tokens(&self) -> Result<Vec<ApiTokenRow>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare(
                "SELECT id, name, prefix, created_at, last_used_at FROM api_tokens ORDER BY created_at DESC, id DESC",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(ApiTokenRow {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        prefix: r.get(2)?,
                        created_at: r.get(3)?,
                        last_used_at: r.get(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Finds a token by hash and records its use (at most once a minute).
    pub async fn use_api_token(
        &self,
        token_hash: Vec<u8>,
    ) -> Result<Option<(i64, String)>, StoreError> {
        // Looked up on the reader (an API client must not queue behind a write); the writer
        // only for the once-a-minute `last_used_at`.
        let found: Option<(i64, String, Option<i64>)> = self
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT id, name, last_used_at FROM api_tokens WHERE token_hash = ?1",
                    [&token_hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?)
            })
            .await?;
        let Some((id, name, last)) = found else {
            return Ok(None);
        };
        let now = now_unix();
        if last.is_none_or(|t| now - t > 60) {
            self.call(move |c| {
                c.execute(
                    "UPDATE api_tokens SET last_used_at = ?1 WHERE id = ?2",
                    params![now, id],
                )?;
                Ok(())
            })
            .await?;
        }
        Ok(Some((id, name)))
    }

    /// Deletes a token; returns its name if it existed.
    pub async fn revoke_api_token(&self, id: i64) -> Result<Option<String>, StoreError> {
        self.call(move |c| {
            let name: Option<String> = c
                .query_row(
                    "DELETE FROM api_tokens WHERE id = ?1 RETURNING name",
                    [id],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(name)
        })
        .await
    }
}
